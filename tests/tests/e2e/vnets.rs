//! Cross-cloud VNets end to end, on the real kernel: a root and three
//! brokers, each cloud with its own underlay namespace on a test "WAN"
//! (`intercloud_tests::underlay`), instances whose namespaces the brokers
//! make, and real packets — ping and TCP across clouds inside a VNet,
//! nothing between two VNets with the same network, clear refusals, a
//! failed creation rolled back, and a broker killed with -9 that comes back
//! without touching the VNet's interfaces and cleans what is stale.
//!
//! Needs root (CI runs as root): without it every test here fails saying
//! so.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use intercloud_proto::v1::broker_client::BrokerClient;
use intercloud_proto::v1::{
    AttachRequest, Binding, CreateInstanceRequest, CreateVnetRequest, DeleteVnetRequest,
    DetachRequest, FederationState, GetVnetRequest, ListVnetsRequest, StatusRequest, VnetDetail,
};
use intercloud_tests::underlay::{self, Underlay, ip, netns_exec, ping};
use intercloud_tests::{BrokerIdentity, RootOptions, TestBroker, TestRoot, eventually};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::presence::operator;

pub(crate) const CLOUDS: [&str; 3] = ["cloud-a", "cloud-b", "cloud-c"];
/// Seconds between the brokers' periodic reconciliations in these tests.
const RECONCILE_SECONDS: u64 = 2;
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// A root and a broker per cloud, each with its underlay host.
pub(crate) struct Clouds {
    dir: tempfile::TempDir,
    root: TestRoot,
    pub(crate) brokers: BTreeMap<&'static str, TestBroker>,
    // Dropped last: the brokers are killed before their namespaces go.
    pub(crate) underlay: Underlay,
}

impl Clouds {
    pub(crate) async fn start(tag: &str, subnet: u8) -> Self {
        let underlay = Underlay::new(tag, subnet, &CLOUDS);
        let dir = tempfile::tempdir().expect("tempdir");
        let root = TestRoot::start(
            dir.path(),
            &RootOptions {
                extra: "[networks]\nvni_range = \"4096-4200\"\n".into(),
                ..RootOptions::default()
            },
        );
        let mut clouds = Self {
            dir,
            root,
            brokers: BTreeMap::new(),
            underlay,
        };
        for cloud in CLOUDS {
            let broker = clouds.start_broker(cloud);
            clouds.brokers.insert(cloud, broker);
        }
        for cloud in CLOUDS {
            clouds.wait_federated(cloud).await;
        }
        clouds
    }

    fn start_broker(&self, cloud: &str) -> TestBroker {
        TestBroker::start(
            self.dir.path(),
            cloud,
            &self.root,
            &BrokerIdentity::DevCert,
            &self.underlay.network_section(cloud, RECONCILE_SECONDS),
        )
    }

    async fn wait_federated(&self, cloud: &str) {
        let client = self.client(cloud).await;
        eventually(&format!("{cloud} federated"), WAIT, || {
            let mut client = client.clone();
            async move {
                let status = client.status(StatusRequest {}).await.ok()?.into_inner();
                (status.state == FederationState::Federated as i32).then_some(())
            }
        })
        .await;
    }

    pub(crate) async fn client(&self, cloud: &str) -> BrokerClient<Channel> {
        operator(&self.brokers[cloud], cloud).await
    }

    pub(crate) fn log(&self, cloud: &str) -> String {
        self.brokers[cloud].daemon.log_text()
    }
}

pub(crate) async fn create_instance(client: &mut BrokerClient<Channel>, name: &str) {
    client
        .create_instance(CreateInstanceRequest {
            name: name.into(),
            vcpu: 1,
            memory_mib: 64,
            disk_bytes: 1024 * 1024,
        })
        .await
        .unwrap_or_else(|s| panic!("create instance {name}: {s:?}"));
}

pub(crate) async fn create_vnet(
    client: &mut BrokerClient<Channel>,
    name: &str,
    cidr: &str,
) -> Result<intercloud_proto::v1::Vnet, Status> {
    client
        .create_vnet(CreateVnetRequest {
            name: name.into(),
            cidr: cidr.into(),
            clouds: CLOUDS.iter().map(|c| (*c).to_owned()).collect(),
            domain: "prod".into(),
            bandwidth: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) async fn attach(
    client: &mut BrokerClient<Channel>,
    tenant: &str,
    vnet: &str,
    instance: &str,
    ip: &str,
) -> Result<Binding, Status> {
    client
        .attach_vnet(AttachRequest {
            tenant: tenant.into(),
            vnet: vnet.into(),
            instance: instance.into(),
            ip: ip.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) async fn detach(
    client: &mut BrokerClient<Channel>,
    tenant: &str,
    vnet: &str,
    instance: &str,
) -> Result<Binding, Status> {
    client
        .detach_vnet(DetachRequest {
            tenant: tenant.into(),
            vnet: vnet.into(),
            instance: instance.into(),
        })
        .await
        .map(|r| r.into_inner().detached.expect("the detached binding"))
}

pub(crate) async fn show(
    client: &mut BrokerClient<Channel>,
    tenant: &str,
    vnet: &str,
) -> Result<VnetDetail, Status> {
    client
        .show_vnet(GetVnetRequest {
            tenant: tenant.into(),
            name: vnet.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Waits until `client`'s broker reports its side of the VNet in `state`
/// with `check` true of it.
pub(crate) async fn wait_local(
    client: &BrokerClient<Channel>,
    tenant: &str,
    vnet: &str,
    state: &str,
    check: impl Fn(&VnetDetail) -> bool,
) -> VnetDetail {
    let last = std::sync::Mutex::new(None);
    let found = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(detail) = show(&mut client.clone(), tenant, vnet).await {
                if detail.local.as_ref().is_some_and(|l| l.state == state) && check(&detail) {
                    return detail;
                }
                *last.lock().expect("lock") = Some(detail);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| {
        panic!(
            "{tenant}/{vnet} not {state} within {WAIT:?}; last seen: {:#?}",
            last.lock().expect("lock")
        )
    })
}

pub(crate) async fn wait_realized(
    client: &BrokerClient<Channel>,
    tenant: &str,
    vnet: &str,
) -> VnetDetail {
    wait_local(client, tenant, vnet, "realized", |_| true).await
}

#[track_caller]
pub(crate) fn refused<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, needles: &[&str]) {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), code, "{status:?}");
    for needle in needles {
        assert!(
            status.message().contains(needle),
            "{:?} lacks {needle:?}",
            status.message()
        );
    }
}

/// Whether `name` is one of our interfaces (`icx`, `icb`, `icv`) of `vni`.
fn of_vni(name: &str, vni: u32) -> bool {
    ["icx", "icb", "icv"].iter().any(|prefix| {
        name.strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with(&format!("{vni:06x}")))
    })
}

/// `N: eth0@ifM:` and its MAC: what a deletion and re-creation would change.
fn identity_of(ns: &str, link: &str) -> String {
    let line = ip(&["-n", ns, "-o", "link", "show", link]);
    let head = line.split('<').next().unwrap_or_default().to_owned();
    let mac = line
        .split("link/ether ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default();
    format!("{head}{mac}")
}

/// The namespace of `instance` of `cloud`.
pub(crate) fn instance_ns(cloud: &str, instance: &str) -> String {
    format!("ic-{cloud}.{instance}")
}

/// Sends one line over TCP from `from` to `to_ip:port`, where a listener in
/// `listener_ns` prints what it got and from where.
async fn tcp_line(listener_ns: &str, from: &str, to_ip: &str, line: &str) -> (bool, String) {
    const PORT: &str = "7070";
    let script = format!(
        "import socket\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0', {PORT}))\n\
         s.listen(1)\n\
         s.settimeout(8)\n\
         c, peer = s.accept()\n\
         c.settimeout(5)\n\
         print(c.recv(200).decode().strip(), 'from', peer[0], flush=True)\n"
    );
    let listener_ns_owned = listener_ns.to_owned();
    let listener = tokio::spawn(async move {
        netns_exec(&listener_ns_owned, 10, &["python3", "-c", &script]).await
    });
    // The listener needs a moment to bind: the client retries.
    let client_script = format!(
        "for i in $(seq 1 20); do (echo '{line}' > /dev/tcp/{to_ip}/{PORT}) 2>/dev/null && exit 0; sleep 0.25; done; exit 1"
    );
    let client = netns_exec(from, 8, &["bash", "-c", &client_script]).await;
    let served = listener.await.expect("listener task");
    (
        client.ok && served.ok,
        format!("client: {}\nlistener: {}", client.output, served.output),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vnet_over_three_clouds_carries_ping_and_tcp_and_two_vnets_never_meet() {
    let clouds = Clouds::start("p", 1).await;
    let u = &clouds.underlay;
    let mut a = clouds.client("cloud-a").await;
    let mut b = clouds.client("cloud-b").await;
    let mut c = clouds.client("cloud-c").await;
    let (web, db) = (u.instance("web"), u.instance("db"));
    let (web2, db2) = (u.instance("webtwo"), u.instance("dbtwo"));
    create_instance(&mut a, &web).await;
    create_instance(&mut a, &web2).await;
    create_instance(&mut c, &db).await;
    create_instance(&mut c, &db2).await;

    // cloud-a's VNet over the three clouds; web in a, db in c.
    let started = Instant::now();
    let blue = create_vnet(&mut a, "blue", "10.20.0.0/24")
        .await
        .expect("create blue");
    let web_binding = attach(&mut a, "", "blue", &web, "")
        .await
        .expect("attach web");
    let db_binding = attach(&mut c, "cloud-a", "blue", &db, "")
        .await
        .expect("attach db");
    assert_eq!(web_binding.ip, "10.20.0.2");
    assert_eq!(db_binding.ip, "10.20.0.3");
    let at_a = wait_realized(&a, "cloud-a", "blue").await;
    wait_realized(&b, "cloud-a", "blue").await;
    wait_realized(&c, "cloud-a", "blue").await;
    let realized_after = started.elapsed();

    // What cloud-a's broker reports is what its kernel has.
    let local = at_a.local.expect("local side");
    let vxlan = format!(
        "icx{:06x} vxlan vni {} local {}",
        blue.vni,
        blue.vni,
        u.vtep("cloud-a")
    );
    assert!(
        local
            .interfaces
            .iter()
            .any(|l| l.starts_with(&vxlan) && l.ends_with(" up")),
        "{vxlan:?} not in {:#?}",
        local.interfaces
    );
    assert!(
        local.interfaces.iter().any(|l| l.contains(&format!(
            "peer eth0 in {} {} 10.20.0.2/24 up",
            instance_ns("cloud-a", &web),
            web_binding.mac
        ))),
        "{:#?}",
        local.interfaces
    );
    for needle in [
        format!("00:00:00:00:00:00 dst {}", u.vtep("cloud-b")),
        format!("00:00:00:00:00:00 dst {}", u.vtep("cloud-c")),
        format!("{} dst {}", db_binding.mac, u.vtep("cloud-c")),
    ] {
        assert!(
            local.fdb.contains(&needle),
            "{needle:?} not in {:#?}",
            local.fdb
        );
    }

    // Real packets: ping and TCP from cloud-a's instance to cloud-c's.
    let web_ns = instance_ns("cloud-a", &web);
    let db_ns = instance_ns("cloud-c", &db);
    let pinged = ping(&web_ns, "10.20.0.3", 3, 2).await;
    assert!(
        pinged.ok,
        "web (cloud-a) -> db (cloud-c):\n{}",
        pinged.output
    );
    eprintln!(
        "blue realized on three clouds {realized_after:?} after its creation; first ping done {:?} after it",
        started.elapsed()
    );
    let hello = format!("hello-{}", u.tag());
    let (ok, output) = tcp_line(&db_ns, &web_ns, "10.20.0.3", &hello).await;
    assert!(ok, "TCP web -> db:\n{output}");
    assert!(
        output.contains(&format!("{hello} from 10.20.0.2")),
        "{output}"
    );

    // cloud-b's own "blue", same network: another VNet, another VNI.
    // (In a domain of its own: domain prod is cloud-a's.)
    let other = b
        .create_vnet(CreateVnetRequest {
            name: "blue".into(),
            cidr: "10.20.0.0/24".into(),
            clouds: CLOUDS.iter().map(|c| (*c).to_owned()).collect(),
            domain: "prod-b".into(),
            bandwidth: String::new(),
        })
        .await
        .expect("another tenant may reuse the network")
        .into_inner();
    assert_ne!(other.vni, blue.vni);
    attach(&mut a, "cloud-b", "blue", &web2, "10.20.0.10")
        .await
        .expect("attach web2");
    attach(&mut c, "cloud-b", "blue", &db2, "10.20.0.11")
        .await
        .expect("attach db2");
    wait_realized(&a, "cloud-b", "blue").await;
    wait_realized(&c, "cloud-b", "blue").await;
    let web2_ns = instance_ns("cloud-a", &web2);
    let inside = ping(&web2_ns, "10.20.0.11", 3, 2).await;
    assert!(inside.ok, "web2 -> db2 in cloud-b/blue:\n{}", inside.output);
    let (across_1, across_2) = tokio::join!(
        ping(&web_ns, "10.20.0.11", 2, 1),
        ping(&web2_ns, "10.20.0.3", 2, 1)
    );
    assert!(
        !across_1.ok,
        "cloud-a/blue reached cloud-b/blue:\n{}",
        across_1.output
    );
    assert!(
        !across_2.ok,
        "cloud-b/blue reached cloud-a/blue:\n{}",
        across_2.output
    );

    // Refusals, with the root's codes and words where they are the root's.
    refused(
        attach(&mut a, "", "blue", &web, "").await,
        Code::AlreadyExists,
        &[&web, "blue"],
    );
    refused(
        detach(&mut a, "cloud-b", "blue", &web).await,
        Code::NotFound,
        &[&web, "not attached"],
    );
    refused(
        attach(&mut a, "", "blue", "nosuch-instance", "").await,
        Code::NotFound,
        &["nosuch-instance", "does not exist in cloud cloud-a"],
    );
    refused(
        attach(&mut a, "cloud-b", "blue", &web, "").await,
        Code::FailedPrecondition,
        &[&web, "cloud-a/blue", "eth0"],
    );
    refused(
        create_vnet(&mut a, "green", "10.20.0.0/16").await,
        Code::FailedPrecondition,
        &["blue", "10.20.0.0/24", "10.20.0.0/16"],
    );
    refused(
        show(&mut a, "cloud-a", "nosuch").await,
        Code::NotFound,
        &["nosuch"],
    );
    let listed: Vec<String> = a
        .list_vnets(ListVnetsRequest {})
        .await
        .expect("list")
        .into_inner()
        .vnets
        .iter()
        .map(|v| format!("{}/{}", v.tenant, v.name))
        .collect();
    assert_eq!(listed, ["cloud-a/blue", "cloud-b/blue"]);

    // Detached, db's veth and namespace go; its MAC leaves cloud-a's FDB.
    detach(&mut c, "cloud-a", "blue", &db)
        .await
        .expect("detach db");
    eventually("db's namespace removed", WAIT, || async {
        (!underlay::namespaces().contains(&db_ns)).then_some(())
    })
    .await;
    wait_local(&a, "cloud-a", "blue", "realized", |d| {
        d.local
            .as_ref()
            .is_some_and(|l| !l.fdb.iter().any(|e| e.starts_with(&db_binding.mac)))
    })
    .await;
    let gone = ping(&web_ns, "10.20.0.3", 2, 1).await;
    assert!(
        !gone.ok,
        "db answered after its detachment:\n{}",
        gone.output
    );

    // Deleted, cloud-b's VNet leaves no interface behind anywhere.
    detach(&mut a, "cloud-b", "blue", &web2)
        .await
        .expect("detach web2");
    detach(&mut c, "cloud-b", "blue", &db2)
        .await
        .expect("detach db2");
    b.delete_vnet(DeleteVnetRequest {
        name: "blue".into(),
    })
    .await
    .expect("delete cloud-b/blue");
    for cloud in CLOUDS {
        eventually(
            &format!("{cloud} drops VNI {}", other.vni),
            WAIT,
            || async {
                (!u.links(cloud)
                    .iter()
                    .any(|(name, _)| of_vni(name, other.vni)))
                .then_some(())
            },
        )
        .await;
        assert!(
            u.links(cloud)
                .iter()
                .any(|(name, _)| of_vni(name, blue.vni)),
            "{cloud} lost cloud-a/blue too: {:?}",
            u.links(cloud)
        );
    }
    for cloud in CLOUDS {
        let log = clouds.log(cloud);
        assert!(!log.contains("panicked"), "{cloud}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_killed_and_restarted_keeps_the_vnet_and_removes_what_is_stale() {
    let mut clouds = Clouds::start("r", 2).await;
    let mut a = clouds.client("cloud-a").await;
    let mut c = clouds.client("cloud-c").await;
    let (web, db) = (
        clouds.underlay.instance("web"),
        clouds.underlay.instance("db"),
    );
    create_instance(&mut a, &web).await;
    create_instance(&mut c, &db).await;
    let blue = create_vnet(&mut a, "blue", "10.30.0.0/24")
        .await
        .expect("create");
    attach(&mut a, "", "blue", &web, "")
        .await
        .expect("attach web");
    attach(&mut c, "cloud-a", "blue", &db, "")
        .await
        .expect("attach db");
    wait_realized(&a, "cloud-a", "blue").await;
    wait_realized(&c, "cloud-a", "blue").await;
    let web_ns = instance_ns("cloud-a", &web);
    let before = ping(&web_ns, "10.30.0.3", 3, 2).await;
    assert!(before.ok, "before the kill:\n{}", before.output);

    let hex = format!("{:06x}", blue.vni);
    let ours = |links: Vec<(String, u32)>| -> Vec<(String, u32)> {
        links
            .into_iter()
            .filter(|(name, _)| of_vni(name, blue.vni))
            .collect()
    };
    let links_before = ours(clouds.underlay.links("cloud-a"));
    eprintln!("cloud-a's interfaces of blue before the kill: {links_before:?}");
    assert_eq!(links_before.len(), 3, "{links_before:?}");
    let eth0_before = identity_of(&web_ns, "eth0");

    // kill -9: the data plane is the kernel's, it carries on without the broker.
    clouds.brokers.get_mut("cloud-a").expect("a").daemon.kill();
    let meanwhile = ping(&web_ns, "10.30.0.3", 2, 2).await;
    assert!(
        meanwhile.ok,
        "while cloud-a's broker is down:\n{}",
        meanwhile.output
    );
    // Left by the crash: a VXLAN device of a VNI that no longer exists.
    let underlay_a = clouds.underlay.namespace("cloud-a").to_owned();
    ip(&[
        "-n",
        &underlay_a,
        "link",
        "add",
        "icx00fffe",
        "type",
        "vxlan",
        "id",
        "65534",
        "local",
        &clouds.underlay.vtep("cloud-a").to_string(),
        "dstport",
        "4789",
        "nolearning",
    ]);
    let old_log = clouds.log("cloud-a");
    let restarted_at = Instant::now();
    let broker = clouds.start_broker("cloud-a");
    clouds.brokers.insert("cloud-a", broker);
    eventually("the stale icx00fffe removed", WAIT, || async {
        (!clouds
            .underlay
            .links("cloud-a")
            .iter()
            .any(|(name, _)| name == "icx00fffe"))
        .then_some(())
    })
    .await;
    eprintln!(
        "stale interface removed {:?} after the restart",
        restarted_at.elapsed()
    );
    let a = clouds.client("cloud-a").await;
    wait_realized(&a, "cloud-a", "blue").await;

    // The VNet's interfaces were never removed: same names, same indexes.
    assert_eq!(ours(clouds.underlay.links("cloud-a")), links_before);
    assert_eq!(identity_of(&web_ns, "eth0"), eth0_before);
    let log = clouds.log("cloud-a");
    assert!(log.contains("delete link icx00fffe"), "{log}");
    assert!(!log.contains(&format!("delete link icx{hex}")), "{log}");
    assert!(!log.contains(&format!("create vxlan icx{hex}")), "{log}");
    assert!(!old_log.contains("panicked"), "{old_log}");
    let after = ping(&web_ns, "10.30.0.3", 3, 2).await;
    assert!(after.ok, "after the restart:\n{}", after.output);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_attachment_is_rolled_back_and_realized_once_the_obstacle_is_gone() {
    let clouds = Clouds::start("f", 3).await;
    let mut a = clouds.client("cloud-a").await;
    let web = clouds.underlay.instance("web");
    create_instance(&mut a, &web).await;
    let blue = create_vnet(&mut a, "blue", "10.40.0.0/24")
        .await
        .expect("create");
    wait_realized(&a, "cloud-a", "blue").await;

    // An eth0 already in the instance's namespace: the veth cannot be
    // renamed into place.
    let web_ns = instance_ns("cloud-a", &web);
    ip(&["netns", "add", &web_ns]);
    ip(&["-n", &web_ns, "link", "add", "eth0", "type", "bridge"]);
    attach(&mut a, "", "blue", &web, "").await.expect("attach");
    let failed = wait_local(&a, "cloud-a", "blue", "failed", |_| true).await;
    let detail = failed.local.expect("local").detail;
    assert!(
        detail.contains("renaming") && detail.contains("eth0"),
        "{detail}"
    );
    assert!(detail.contains("removed again"), "{detail}");
    // Nothing half-made: no veth in the underlay, none in the namespace.
    let veth = format!("icv{:06x}", blue.vni);
    assert!(
        !clouds
            .underlay
            .links("cloud-a")
            .iter()
            .any(|(n, _)| n.starts_with(&veth)),
        "{:?}",
        clouds.underlay.links("cloud-a")
    );
    let inside = ip(&["-n", &web_ns, "-o", "link", "show"]);
    assert!(!inside.contains("icp"), "{inside}");
    assert!(clouds.log("cloud-a").contains("an action failed"));

    // The obstacle gone, the next round makes it.
    ip(&["-n", &web_ns, "link", "del", "eth0"]);
    wait_realized(&a, "cloud-a", "blue").await;
    let eth0 = ip(&["-n", &web_ns, "-o", "address", "show", "dev", "eth0"]);
    assert!(eth0.contains("10.40.0.2/24"), "{eth0}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_vtep_the_data_plane_is_off_and_attachments_say_which_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(
        dir.path(),
        &RootOptions {
            extra: "[networks]\nvni_range = \"4096-4200\"\n".into(),
            ..RootOptions::default()
        },
    );
    let broker = TestBroker::start(dir.path(), "cloud-a", &root, &BrokerIdentity::DevCert, "");
    let mut a = operator(&broker, "cloud-a").await;
    let instance = format!("off-{}", std::process::id());
    create_instance(&mut a, &instance).await;
    let created = eventually("cloud-a federated and its VNet created", WAIT, || {
        let mut a = a.clone();
        async move { create_vnet_on(&mut a, "solo", "10.50.0.0/24").await.ok() }
    })
    .await;
    assert_eq!(created.clouds, ["cloud-a"]);
    refused(
        attach(&mut a, "", "solo", &instance, "").await,
        Code::FailedPrecondition,
        &["network.vtep"],
    );
    let shown = show(&mut a, "", "solo").await.expect("show");
    let local = shown.local.expect("local");
    assert_eq!(local.state, "failed");
    assert!(local.detail.contains("network.vtep"), "{}", local.detail);
    assert!(!broker.daemon.log_text().contains("vnet data plane on"));
}

async fn create_vnet_on(
    client: &mut BrokerClient<Channel>,
    name: &str,
    cidr: &str,
) -> Result<intercloud_proto::v1::Vnet, Status> {
    client
        .create_vnet(CreateVnetRequest {
            name: name.into(),
            cidr: cidr.into(),
            clouds: vec!["cloud-a".into()],
            domain: String::new(),
            bandwidth: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Bits per second iperf3 in `client_ns` sent to a one-shot server in
/// `server_ns` at `server_ip` for `seconds`, as the receiver counted them.
async fn iperf(server_ns: &str, client_ns: &str, server_ip: &str, seconds: u32) -> f64 {
    const PORT: &str = "5299";
    let server_ns_owned = server_ns.to_owned();
    let server = tokio::spawn(async move {
        netns_exec(
            &server_ns_owned,
            seconds + 20,
            &["iperf3", "-s", "-1", "-p", PORT],
        )
        .await
    });
    // The server needs a moment to listen: the client retries.
    let secs = seconds.to_string();
    let mut last = String::new();
    for _ in 0..25 {
        let run = netns_exec(
            client_ns,
            seconds + 15,
            &["iperf3", "-c", server_ip, "-p", PORT, "-t", &secs, "-J"],
        )
        .await;
        // iperf3 -J may exit 0 with an "error" in its report (a refused
        // connection while the server is not listening yet): only a report
        // with a received sum is a measurement; anything else is retried.
        let json = &run.output[run.output.find('{').unwrap_or(0)..];
        let received = serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|report| report["end"]["sum_received"]["bits_per_second"].as_f64());
        if let (true, Some(bits_per_second)) = (run.ok, received) {
            // The one-off server ends with the run; its status is not the
            // measurement.
            let _ = server.await;
            return bits_per_second;
        }
        last = run.output;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.abort();
    panic!("iperf3 {client_ns} -> {server_ip} never ran:\n{last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bandwidth_cap_declared_at_creation_limits_what_crosses_clouds() {
    let clouds = Clouds::start("t", 4).await;
    let u = &clouds.underlay;
    let mut a = clouds.client("cloud-a").await;
    let mut c = clouds.client("cloud-c").await;
    let (web, db) = (u.instance("web"), u.instance("db"));
    create_instance(&mut a, &web).await;
    create_instance(&mut c, &db).await;
    let capped = a
        .create_vnet(CreateVnetRequest {
            name: "capped".into(),
            cidr: "10.60.0.0/24".into(),
            clouds: CLOUDS.iter().map(|c| (*c).to_owned()).collect(),
            domain: "prod".into(),
            bandwidth: "20mbit".into(),
        })
        .await
        .expect("create capped")
        .into_inner();
    attach(&mut a, "", "capped", &web, "10.60.0.2")
        .await
        .expect("attach web");
    attach(&mut c, "cloud-a", "capped", &db, "10.60.0.3")
        .await
        .expect("attach db");

    // Each broker reports the cap its kernel has, and no caveat about it.
    let vxlan = format!("icx{:06x}", capped.vni);
    let cap_line = format!("{vxlan} qdisc tbf rate 20mbit");
    for client in [&a, &c] {
        let detail = wait_local(client, "cloud-a", "capped", "realized", |d| {
            d.local
                .as_ref()
                .is_some_and(|l| l.interfaces.contains(&cap_line))
        })
        .await;
        let local = detail.local.expect("local");
        assert!(!local.detail.contains("not enforced"), "{}", local.detail);
    }
    let qdisc = ip(&["-n", u.namespace("cloud-a"), "-d", "link", "show", &vxlan]);
    assert!(qdisc.contains("qdisc tbf"), "{qdisc}");

    // Real traffic from cloud-a to cloud-c is held to the cap.
    let (web_ns, db_ns) = (instance_ns("cloud-a", &web), instance_ns("cloud-c", &db));
    let pinged = ping(&web_ns, "10.60.0.3", 3, 2).await;
    assert!(pinged.ok, "web -> db:\n{}", pinged.output);
    let bps = iperf(&db_ns, &web_ns, "10.60.0.3", 3).await;
    eprintln!("iperf3 through a 20mbit VNet: {:.1} Mbit/s", bps / 1e6);
    assert!(
        (10e6..=25e6).contains(&bps),
        "{:.1} Mbit/s through a 20mbit cap",
        bps / 1e6
    );
}
