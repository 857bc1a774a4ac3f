//! Traffic between VNets and Mirror VNets end to end, on the real kernel:
//! security domains that meet only as their owners agreed (nftables at each
//! broker), and a Mirror VNet that receives its share of the production's
//! input, never answers outside, and swaps in and back.
//!
//! Needs root (CI runs as root): without it every test here fails saying
//! so.

use std::process::{Command, Stdio};
use std::time::Duration;

use intercloud_proto::v1::broker_client::BrokerClient;
use intercloud_proto::v1::{
    AllowFlowRequest, CreateMirrorRequest, CreateVnetRequest, DeleteVnetRequest, FlowPolicy,
    FlowRule, ListFlowsRequest, RevokeFlowRequest, SwapMirrorRequest, Vnet, VnetDetail,
};
use intercloud_tests::underlay::{netns_exec, ping};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::vnets::{
    CLOUDS, Clouds, attach, create_instance, instance_ns, refused, wait_local, wait_realized,
};

async fn create_vnet_in(
    client: &mut BrokerClient<Channel>,
    name: &str,
    cidr: &str,
    domain: &str,
) -> Vnet {
    client
        .create_vnet(CreateVnetRequest {
            name: name.into(),
            cidr: cidr.into(),
            clouds: CLOUDS.iter().map(|c| (*c).to_owned()).collect(),
            domain: domain.into(),
            bandwidth: String::new(),
        })
        .await
        .unwrap_or_else(|s| panic!("create {name}: {s:?}"))
        .into_inner()
}

fn rule(from: &str, to: &str, proto: &str, port: &str) -> FlowRule {
    FlowRule {
        from_domain: from.into(),
        to_domain: to.into(),
        proto: proto.into(),
        port: port.into(),
    }
}

async fn allow(client: &mut BrokerClient<Channel>, rule: &FlowRule) -> Result<FlowPolicy, Status> {
    client
        .allow_flow(AllowFlowRequest {
            rule: Some(rule.clone()),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Whether a TCP connection from `from` to `ip:port` is accepted by a
/// listener in `listener_ns` (which is there either way, so a refusal is
/// the network's).
async fn tcp_connects(listener_ns: &str, from: &str, ip: &str, port: u16) -> (bool, String) {
    let listener = format!(
        "import socket\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0', {port}))\n\
         s.listen(1)\n\
         s.settimeout(6)\n\
         c, peer = s.accept()\n\
         print('accepted from', peer[0], flush=True)\n"
    );
    let client = format!(
        "import socket, time\n\
         time.sleep(0.5)\n\
         s = socket.create_connection(('{ip}', {port}), timeout=3)\n\
         s.sendall(b'hello')\n\
         print('connected', flush=True)\n"
    );
    let listener_ns = listener_ns.to_owned();
    let served =
        tokio::spawn(
            async move { netns_exec(&listener_ns, 8, &["python3", "-c", &listener]).await },
        );
    let connected = netns_exec(from, 6, &["python3", "-c", &client]).await;
    let served = served.await.expect("listener task");
    (
        connected.ok && served.ok,
        format!("client: {}\nlistener: {}", connected.output, served.output),
    )
}

/// Counts ICMP echo requests arriving at, and echo replies leaving, the
/// namespace `ns` (a table of the test's own inside it).
fn count_icmp(ns: &str) {
    let ruleset = "table inet probe {\n\
                   chain in { type filter hook input priority 0; policy accept; icmp type echo-request counter; }\n\
                   chain out { type filter hook output priority 0; policy accept; icmp type echo-reply counter; }\n\
                   }\n";
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), ruleset.as_bytes())
        .expect("ruleset");
    drop(child.stdin.take());
    assert!(child.wait().expect("nft").success(), "nft in {ns}");
}

/// (echo requests in, echo replies out) of `ns` since [`count_icmp`].
fn icmp_counts(ns: &str) -> (u64, u64) {
    let out = Command::new("ip")
        .args([
            "netns", "exec", ns, "nft", "-j", "list", "table", "inet", "probe",
        ])
        .output()
        .expect("nft list");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("nft JSON");
    let mut counts = (0, 0);
    for item in json["nftables"].as_array().into_iter().flatten() {
        let Some(rule) = item.get("rule") else {
            continue;
        };
        let packets = rule["expr"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|e| e.get("counter").and_then(|c| c["packets"].as_u64()))
            .unwrap_or(0);
        match rule["chain"].as_str() {
            Some("in") => counts.0 = packets,
            Some("out") => counts.1 = packets,
            _ => {}
        }
    }
    counts
}

/// Pings `count` times, fast; returns (replies, duplicates).
async fn burst(ns: &str, dst: &str, count: u32) -> (u32, bool, String) {
    let run = netns_exec(
        ns,
        20,
        &[
            "ping",
            "-n",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            "0.02",
            "-W",
            "1",
            dst,
        ],
    )
    .await;
    let received = run
        .output
        .split(", ")
        .find_map(|part| part.strip_suffix(" received"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let duplicates = run.output.contains("duplicates");
    (received, duplicates, run.output)
}

fn rules_of(detail: &VnetDetail) -> Vec<String> {
    detail
        .local
        .as_ref()
        .map(|l| l.rules.clone())
        .unwrap_or_default()
}

fn gateway_of(detail: &VnetDetail) -> String {
    detail
        .local
        .as_ref()
        .map(|l| l.gateway.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn domains_meet_only_where_both_owners_agreed() {
    let clouds = Clouds::start("d", 5).await;
    let u = &clouds.underlay;
    let mut a = clouds.client("cloud-a").await;
    let mut b = clouds.client("cloud-b").await;
    let mut c = clouds.client("cloud-c").await;
    let (web, db, adm) = (u.instance("web"), u.instance("db"), u.instance("adm"));
    create_instance(&mut a, &web).await;
    create_instance(&mut c, &db).await;
    create_instance(&mut c, &adm).await;

    // cloud-a owns domain web (front, admin); cloud-c owns domain db (back).
    create_vnet_in(&mut a, "front", "10.50.0.0/24", "web").await;
    create_vnet_in(&mut a, "admin", "10.52.0.0/24", "web").await;
    create_vnet_in(&mut c, "back", "10.51.0.0/24", "db").await;
    attach(&mut a, "", "front", &web, "")
        .await
        .expect("attach web");
    attach(&mut c, "cloud-a", "admin", &adm, "")
        .await
        .expect("attach adm");
    attach(&mut c, "", "back", &db, "")
        .await
        .expect("attach db");
    for (tenant, vnet) in [
        ("cloud-a", "front"),
        ("cloud-a", "admin"),
        ("cloud-c", "back"),
    ] {
        wait_realized(&a, tenant, vnet).await;
        wait_realized(&c, tenant, vnet).await;
    }
    let (web_ns, db_ns, adm_ns) = (
        instance_ns("cloud-a", &web),
        instance_ns("cloud-c", &db),
        instance_ns("cloud-c", &adm),
    );

    // One domain: routed across clouds, everything allowed.
    let same = ping(&web_ns, "10.52.0.2", 3, 2).await;
    assert!(same.ok, "web -> adm, one domain:\n{}", same.output);
    let back = ping(&adm_ns, "10.50.0.2", 2, 2).await;
    assert!(back.ok, "adm -> web, one domain:\n{}", back.output);
    let front = wait_local(&a, "cloud-a", "front", "realized", |d| {
        gateway_of(d).starts_with("10.50.0.1/24 on icb")
    })
    .await;
    assert!(
        gateway_of(&front).contains("10.52.0.0/24 via"),
        "{}",
        gateway_of(&front)
    );

    // Two domains and no rule: nothing passes, either way.
    let (ok, output) = tcp_connects(&db_ns, &web_ns, "10.51.0.2", 443).await;
    assert!(!ok, "web -> db 443 passed without a rule:\n{output}");
    assert!(!ping(&web_ns, "10.51.0.2", 2, 1).await.ok);
    assert!(!ping(&db_ns, "10.50.0.2", 2, 1).await.ok);

    // cloud-a proposes; cloud-c's agreement is awaited and nothing passes yet.
    let https = rule("web", "db", "tcp", "443");
    let proposed = allow(&mut a, &https).await.expect("propose");
    assert!(!proposed.agreed);
    assert_eq!(proposed.awaiting, "cloud-c");
    refused(
        allow(&mut b, &https).await,
        Code::PermissionDenied,
        &["web", "db"],
    );
    refused(
        allow(&mut a, &rule("web", "db", "icmp", "443")).await,
        Code::InvalidArgument,
        &["443"],
    );
    refused(
        allow(&mut a, &rule("web", "nosuch", "tcp", "443")).await,
        Code::NotFound,
        &["nosuch"],
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (ok, output) = tcp_connects(&db_ns, &web_ns, "10.51.0.2", 443).await;
    assert!(!ok, "passed with only one owner's word:\n{output}");

    // cloud-c agrees: web may open TCP 443 in db, and nothing else.
    let agreed = allow(&mut c, &https).await.expect("agree");
    assert!(agreed.agreed, "{agreed:?}");
    let listed = c
        .list_flows(ListFlowsRequest {})
        .await
        .expect("list")
        .into_inner()
        .policies;
    assert!(
        listed
            .iter()
            .any(|p| p.agreed && p.rule.as_ref() == Some(&https)),
        "{listed:?}"
    );
    let policy_line = "front -> back: policy web -> db tcp/443";
    for client in [&a, &c] {
        wait_local(client, "cloud-a", "front", "realized", |d| {
            rules_of(d).iter().any(|l| l.starts_with(policy_line))
        })
        .await;
    }
    let (ok, output) = tcp_connects(&db_ns, &web_ns, "10.51.0.2", 443).await;
    assert!(ok, "web -> db 443 refused after agreement:\n{output}");
    assert!(output.contains("accepted from 10.50.0.2"), "{output}");
    let (ok, output) = tcp_connects(&db_ns, &web_ns, "10.51.0.2", 444).await;
    assert!(!ok, "web -> db 444 passed:\n{output}");
    assert!(
        !ping(&web_ns, "10.51.0.2", 2, 1).await.ok,
        "ICMP passed a TCP rule"
    );
    let (ok, output) = tcp_connects(&web_ns, &db_ns, "10.50.0.2", 443).await;
    assert!(!ok, "db opened a connection to web:\n{output}");
    let front = wait_local(&a, "cloud-a", "front", "realized", |_| true).await;
    let counted = rules_of(&front)
        .into_iter()
        .find(|l| l.starts_with(policy_line))
        .expect("the policy's rule");
    assert!(!counted.contains(": 0 packets"), "{counted}");

    // Either owner withdraws it: closed again.
    c.revoke_flow(RevokeFlowRequest {
        rule: Some(https.clone()),
    })
    .await
    .expect("revoke");
    wait_local(&a, "cloud-a", "front", "realized", |d| {
        !rules_of(d).iter().any(|l| l.starts_with(policy_line))
    })
    .await;
    let (ok, output) = tcp_connects(&db_ns, &web_ns, "10.51.0.2", 443).await;
    assert!(!ok, "passed after revocation:\n{output}");
    for cloud in CLOUDS {
        let log = clouds.log(cloud);
        assert!(!log.contains("panicked"), "{cloud}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mirror_sees_its_share_never_answers_outside_and_swaps_back() {
    let clouds = Clouds::start("m", 6).await;
    let u = &clouds.underlay;
    let mut a = clouds.client("cloud-a").await;
    let mut c = clouds.client("cloud-c").await;
    let (app, user) = (u.instance("app"), u.instance("user"));
    create_instance(&mut c, &app).await;
    create_instance(&mut a, &user).await;
    // shop (production, app in cloud-c) and ext (user in cloud-a), one domain.
    create_vnet_in(&mut a, "shop", "10.60.0.0/24", "prod").await;
    create_vnet_in(&mut a, "ext", "10.61.0.0/24", "prod").await;
    attach(&mut c, "cloud-a", "shop", &app, "")
        .await
        .expect("attach app");
    attach(&mut a, "", "ext", &user, "")
        .await
        .expect("attach user");
    for vnet in ["shop", "ext"] {
        wait_realized(&a, "cloud-a", vnet).await;
        wait_realized(&c, "cloud-a", vnet).await;
    }
    let (app_ns, user_ns) = (instance_ns("cloud-c", &app), instance_ns("cloud-a", &user));
    let clone_ns = format!("{app_ns}.mirror");

    // A full mirror: a clone of app at the same address, in its own namespace.
    let mirror = a
        .create_mirror(CreateMirrorRequest {
            vnet: "shop".into(),
            name: String::new(),
            strategy: "full".into(),
        })
        .await
        .expect("mirror")
        .into_inner();
    assert_eq!(mirror.name, "shop-mirror");
    assert_eq!(mirror.mirror_of, "shop");
    assert_eq!(mirror.cidr, "10.60.0.0/24");
    let clone = mirror
        .bindings
        .iter()
        .find(|b| b.instance == app)
        .expect("app's clone");
    assert_eq!(clone.ip, "10.60.0.2");
    refused(
        a.create_mirror(CreateMirrorRequest {
            vnet: "shop".into(),
            name: "again".into(),
            strategy: "stats".into(),
        })
        .await,
        Code::FailedPrecondition,
        &["shop"],
    );
    refused(
        a.create_mirror(CreateMirrorRequest {
            vnet: "ext".into(),
            name: String::new(),
            strategy: "sample:0.3".into(),
        })
        .await,
        Code::InvalidArgument,
        &["0.3"],
    );
    let tap_line = format!("mirror full of {app} from shop to shop-mirror");
    wait_local(&c, "cloud-a", "shop-mirror", "realized", |d| {
        rules_of(d).iter().any(|l| l.starts_with(&tap_line))
    })
    .await;
    let mirror_side = wait_realized(&a, "cloud-a", "shop-mirror").await;
    assert!(
        gateway_of(&mirror_side).starts_with("none"),
        "{mirror_side:?}"
    );
    count_icmp(&app_ns);
    count_icmp(&clone_ns);
    count_icmp(&user_ns);

    // The clone receives every request; its answers never reach the user.
    let (received, duplicates, output) = burst(&user_ns, "10.60.0.2", 20).await;
    assert_eq!((received, duplicates), (20, false), "{output}");
    assert_eq!(icmp_counts(&app_ns), (20, 20));
    assert_eq!(
        icmp_counts(&clone_ns),
        (20, 20),
        "the clone saw and answered every request"
    );
    assert_eq!(icmp_counts(&user_ns).0, 0);

    // Swapped: the clone serves the user, production gets the copies.
    let swapped = a
        .swap_mirror(SwapMirrorRequest {
            vnet: "shop".into(),
        })
        .await
        .expect("swap")
        .into_inner();
    assert!(swapped.swapped);
    for client in [&a, &c] {
        wait_local(client, "cloud-a", "shop-mirror", "realized", |d| {
            gateway_of(d).starts_with("10.60.0.1/24 on")
        })
        .await;
    }
    let (received, duplicates, output) = burst(&user_ns, "10.60.0.2", 20).await;
    if received != 20 {
        for cloud in ["cloud-a", "cloud-c"] {
            let ns = u.namespace(cloud);
            for cmd in [
                "nft list ruleset",
                "ip rule",
                "ip route show table all",
                "ip neigh",
                "ip -br addr",
                "bridge fdb",
            ] {
                let out = Command::new("sh")
                    .args(["-c", &format!("ip netns exec {ns} {cmd}")])
                    .output()
                    .expect("dump");
                eprintln!(
                    "== {cloud}: {cmd}\n{}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
        for ns in [&app_ns, &clone_ns, &user_ns] {
            let out = Command::new("sh")
                .args(["-c", &format!("ip netns exec {ns} ip -br addr; ip netns exec {ns} ip route; ip netns exec {ns} ip neigh")])
                .output()
                .expect("dump");
            eprintln!("== {ns}\n{}", String::from_utf8_lossy(&out.stdout));
        }
    }
    assert_eq!((received, duplicates), (20, false), "{output}");
    assert_eq!(icmp_counts(&clone_ns), (40, 40));
    assert_eq!(
        icmp_counts(&app_ns),
        (40, 40),
        "production gets the copies now"
    );

    // Swapped again: rolled back.
    let back = a
        .swap_mirror(SwapMirrorRequest {
            vnet: "shop".into(),
        })
        .await
        .expect("swap back")
        .into_inner();
    assert!(!back.swapped);
    for client in [&a, &c] {
        wait_local(client, "cloud-a", "shop", "realized", |d| {
            gateway_of(d).starts_with("10.60.0.1/24 on")
        })
        .await;
    }
    let (received, duplicates, output) = burst(&user_ns, "10.60.0.2", 20).await;
    assert_eq!((received, duplicates), (20, false), "{output}");
    assert_eq!(icmp_counts(&app_ns), (60, 60));
    assert_eq!(icmp_counts(&clone_ns), (60, 60));

    // A sampling mirror: about one request in four reaches the clone.
    a.delete_vnet(DeleteVnetRequest {
        name: "shop-mirror".into(),
    })
    .await
    .expect("delete the mirror");
    a.create_mirror(CreateMirrorRequest {
        vnet: "shop".into(),
        name: "shop-sample".into(),
        strategy: "sample:1/4".into(),
    })
    .await
    .expect("sampling mirror");
    wait_local(&c, "cloud-a", "shop-sample", "realized", |d| {
        rules_of(d).iter().any(|l| l.contains("sample:1/4"))
    })
    .await;
    count_icmp(&clone_ns);
    let (received, _, output) = burst(&user_ns, "10.60.0.2", 200).await;
    assert_eq!(received, 200, "{output}");
    let (copies, answered) = icmp_counts(&clone_ns);
    assert!(
        (20..=100).contains(&copies),
        "{copies} of 200 copied at 1/4"
    );
    assert_eq!(answered, copies);

    // Stats only: the clone gets nothing, the counter counts.
    a.delete_vnet(DeleteVnetRequest {
        name: "shop-sample".into(),
    })
    .await
    .expect("delete the sampling mirror");
    a.create_mirror(CreateMirrorRequest {
        vnet: "shop".into(),
        name: "shop-stats".into(),
        strategy: "stats".into(),
    })
    .await
    .expect("stats mirror");
    let stats_line = format!("mirror stats of {app} from shop to shop-stats");
    wait_local(&c, "cloud-a", "shop-stats", "realized", |d| {
        rules_of(d).iter().any(|l| l.starts_with(&stats_line))
    })
    .await;
    count_icmp(&clone_ns);
    let (received, _, output) = burst(&user_ns, "10.60.0.2", 10).await;
    assert_eq!(received, 10, "{output}");
    assert_eq!(icmp_counts(&clone_ns), (0, 0));
    let counted = wait_local(&c, "cloud-a", "shop-stats", "realized", |d| {
        rules_of(d).iter().any(|l| {
            l.starts_with(&stats_line) && !l.contains(": 0 packets") && !l.contains("not counted")
        })
    })
    .await;
    eprintln!("{:#?}", rules_of(&counted));
    for cloud in CLOUDS {
        let log = clouds.log(cloud);
        assert!(!log.contains("panicked"), "{cloud}:\n{log}");
    }
}
