//! Workload migration between real brokers: the offer over a real Prosody,
//! the VM package (qcow2 made by qemu-img, OVF) over a real RabbitMQ, the
//! target's verification and import, the source's release — and the
//! failures that must leave the instance running where it was.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use futures::StreamExt as _;
use intercloud_proto::v1::broker_client::BrokerClient;
use intercloud_proto::v1::{
    CreateInstanceRequest, Instance, ListInstancesRequest, MigrateRequest, MigrationStep,
    migrate_request,
};
use intercloud_tests::prosody::Prosody;
use intercloud_tests::rabbitmq::RabbitMq;
use intercloud_tests::{
    BrokerIdentity, RootOptions, TestBroker, TestRoot, intercloudctl, write_cli_config,
};
use tonic::transport::Channel;

use crate::presence::{operator, presence_config, wait_for_online};
use crate::transfers::TEST_CHUNK;

struct Clouds {
    dir: tempfile::TempDir,
    _prosody: Prosody,
    _rabbit: RabbitMq,
    root: TestRoot,
    a: TestBroker,
    b: TestBroker,
}

/// Root, Prosody, RabbitMQ, and brokers a (8 vCPU) and b (4 vCPU) that see
/// each other; `before_b` runs before b starts (to mount its disk).
async fn clouds(before_b: impl FnOnce(&Path)) -> Clouds {
    let dir = tempfile::tempdir().expect("tempdir");
    let prosody = Prosody::start(
        &dir.path().join("xmpp"),
        "intercloud.lab",
        &["cloud-a", "cloud-b"],
    );
    let rabbit = RabbitMq::start(
        &dir.path().join("rabbitmq"),
        "intercloud.lab",
        &["cloud-a", "cloud-b"],
    );
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let broker = |cloud: &str, vcpu: u32| {
        TestBroker::start(
            dir.path(),
            cloud,
            &root,
            &BrokerIdentity::DevCert,
            &format!(
                "{}{}",
                presence_config(&prosody, cloud, vcpu),
                rabbit.broker_section(TEST_CHUNK)
            ),
        )
    };
    let a = broker("cloud-a", 8);
    before_b(&dir.path().join("cloud-b"));
    let b = broker("cloud-b", 4);
    wait_for_online(&a, "cloud-a", &["cloud-b"], Duration::from_secs(30)).await;
    wait_for_online(&b, "cloud-b", &["cloud-a"], Duration::from_secs(30)).await;
    Clouds {
        _prosody: prosody,
        _rabbit: rabbit,
        dir,
        root,
        a,
        b,
    }
}

async fn instances(client: &mut BrokerClient<Channel>) -> Vec<Instance> {
    client
        .list_instances(ListInstancesRequest {})
        .await
        .expect("list instances")
        .into_inner()
        .instances
}

async fn create(client: &mut BrokerClient<Channel>, name: &str, vcpu: u32, disk: u64) -> Instance {
    client
        .create_instance(CreateInstanceRequest {
            name: name.into(),
            vcpu,
            memory_mib: 512,
            disk_bytes: disk,
        })
        .await
        .expect("create instance")
        .into_inner()
}

async fn migrate(client: &mut BrokerClient<Channel>, name: &str, to: &str) -> Vec<MigrationStep> {
    let mut stream = client
        .migrate(MigrateRequest {
            instance: name.into(),
            target: Some(migrate_request::Target::ToCloud(to.into())),
        })
        .await
        .expect("migrate")
        .into_inner();
    let mut steps = Vec::new();
    while let Some(step) = stream.next().await {
        steps.push(step.expect("step"));
    }
    steps
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_migrates_and_is_released_only_after_the_target_runs_it() {
    let clouds = clouds(|_| {}).await;
    let mut a = operator(&clouds.a, "cloud-a").await;
    let mut b = operator(&clouds.b, "cloud-b").await;
    let created = create(&mut a, "web-1", 2, 64 << 20).await;
    assert_eq!(created.state, "running");
    let disk = clouds.a.data_dir.join("cloud/disks/web-1.qcow2");
    assert!(disk.is_file(), "qemu-img made {}", disk.display());

    // Through the CLI, as an operator would: every step on its own line.
    let config = write_cli_config(
        clouds.dir.path(),
        &clouds.root,
        &[("cloud-a", &clouds.a), ("cloud-b", &clouds.b)],
    );
    let (code, out, err) = intercloudctl(
        &config,
        &[
            "--context",
            "cloud-a",
            "migrate",
            "web-1",
            "--to",
            "cloud-b",
        ],
    );
    assert_eq!(
        code,
        0,
        "migrate failed:\n{out}\n{err}\n{}",
        clouds.a.daemon.log_text()
    );
    let mut last = 0;
    for step in [
        "[target]",
        "[offer]",
        "[transfer]",
        "[verify]",
        "[import]",
        "[release]",
        "[done]",
    ] {
        let at = out
            .find(step)
            .unwrap_or_else(|| panic!("no {step} line in:\n{out}"));
        assert!(at >= last, "{step} out of order in:\n{out}");
        last = at;
    }
    assert!(out.contains("reservation"), "{out}");

    let there = instances(&mut b).await;
    assert_eq!(there.len(), 1, "{there:#?}");
    assert_eq!(there[0].name, "web-1");
    assert_eq!(there[0].state, "running");
    assert_eq!(there[0].origin, "cloud-a");
    assert_eq!(there[0].vcpu, 2);
    assert_eq!(there[0].disk_bytes, 64 << 20);
    assert!(instances(&mut a).await.is_empty(), "released at the source");
    assert!(!disk.exists(), "the source's disk is gone");
    assert!(clouds.b.data_dir.join("cloud/disks/web-1.qcow2").is_file());

    // Refusals before anything moves.
    let steps = migrate(&mut a, "web-1", "cloud-b").await;
    assert_eq!(steps.last().map(|s| s.step.as_str()), Some("failed"));
    assert!(steps[0].detail.contains("no instance"), "{steps:#?}");
    let err = a
        .migrate(MigrateRequest {
            instance: "Bad Name".into(),
            target: Some(migrate_request::Target::ToCloud("cloud-b".into())),
        })
        .await
        .expect_err("an invalid name is refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    create(&mut a, "web-2", 1, 1 << 20).await;
    let steps = migrate(&mut a, "web-2", "cloud-a").await;
    assert!(
        steps
            .last()
            .is_some_and(|s| s.step == "failed" && s.detail.contains("already runs in cloud-a")),
        "{steps:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_offer_leaves_the_instance_running_here() {
    let clouds = clouds(|_| {}).await;
    let mut a = operator(&clouds.a, "cloud-a").await;
    // cloud-b offers 4 vCPUs.
    create(&mut a, "big", 6, 1 << 20).await;
    let steps = migrate(&mut a, "big", "cloud-b").await;
    let last = steps.last().expect("steps");
    assert_eq!(last.step, "failed", "{steps:#?}");
    assert!(last.detail.contains("declined"), "{}", last.detail);
    assert!(
        last.detail.contains("keeps running here"),
        "{}",
        last.detail
    );
    let here = instances(&mut a).await;
    assert_eq!(here.len(), 1);
    assert_eq!(here[0].state, "running");
}

/// A tmpfs of `size` mounted at `path` for the test's lifetime.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount (the suite runs as root)");
        assert!(status.success(), "mount tmpfs at {}", path.display());
        Self(path.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_at_the_target_fails_the_migration_and_the_source_keeps_the_instance() {
    let mut mounted = None;
    let clouds = clouds(|b_dir| {
        // cloud-b's transfers live on a 4 MiB filesystem.
        mounted = Some(Tmpfs::mount(&b_dir.join("transfers"), "4m"));
    })
    .await;
    let mut a = operator(&clouds.a, "cloud-a").await;
    create(&mut a, "data-1", 1, 32 << 20).await;
    // Give its disk 12 MiB of data: a qcow2 that no 4 MiB disk can take.
    let raw = clouds.dir.path().join("data.raw");
    let mut bytes: Vec<u8> = (0..(12 << 20)).map(|_| rand::random::<u8>()).collect();
    bytes.resize(32 << 20, 0);
    std::fs::write(&raw, &bytes).expect("raw image");
    let disk = clouds.a.data_dir.join("cloud/disks/data-1.qcow2");
    let status = Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&disk)
        .status()
        .expect("qemu-img convert");
    assert!(status.success());
    let size_before = std::fs::metadata(&disk).expect("disk").len();
    assert!(size_before > 8 << 20, "{size_before}");

    let steps = migrate(&mut a, "data-1", "cloud-b").await;
    let last = steps.last().expect("steps");
    assert_eq!(last.step, "failed", "{steps:#?}");
    assert!(last.detail.contains("no_space"), "{}", last.detail);
    assert!(
        last.detail.contains("keeps running here"),
        "{}",
        last.detail
    );
    let here = instances(&mut a).await;
    assert_eq!(here.len(), 1, "{here:#?}");
    assert_eq!(here[0].state, "running", "back to running, not migrating");
    assert_eq!(
        std::fs::metadata(&disk).expect("disk kept").len(),
        size_before
    );
    let mut b = operator(&clouds.b, "cloud-b").await;
    assert!(instances(&mut b).await.is_empty());
    let staging = std::fs::read_dir(clouds.b.data_dir.join("transfers/staging"))
        .map(|e| e.count())
        .unwrap_or(0);
    assert_eq!(staging, 0, "nothing half-written at the target");
    drop(clouds);
    drop(mounted);
}

/// A migrated instance keeps its VNet address and MAC: the binding moves
/// with it at the root, the target builds its side, the source removes its
/// own, and packets from the source cloud reach it at its new home. An
/// instance whose VNet does not span the target is not migrated at all.
#[tokio::test(flavor = "multi_thread")]
async fn a_migrated_instance_keeps_its_vnet_address_and_mac() {
    use intercloud_proto::v1::{AttachRequest, CreateVnetRequest, GetVnetRequest};
    use intercloud_tests::underlay::{Underlay, namespaces, ping};

    let clouds_ab = ["cloud-a", "cloud-b"];
    let underlay = Underlay::new("g", 7, &clouds_ab);
    let dir = tempfile::tempdir().expect("tempdir");
    let prosody = Prosody::start(&dir.path().join("xmpp"), "intercloud.lab", &clouds_ab);
    let rabbit = RabbitMq::start(&dir.path().join("rabbitmq"), "intercloud.lab", &clouds_ab);
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let broker = |cloud: &str| {
        TestBroker::start(
            dir.path(),
            cloud,
            &root,
            &BrokerIdentity::DevCert,
            &format!(
                "{}{}{}",
                presence_config(&prosody, cloud, 8),
                rabbit.broker_section(TEST_CHUNK),
                underlay.network_section(cloud, 2)
            ),
        )
    };
    let (broker_a, broker_b) = (broker("cloud-a"), broker("cloud-b"));
    wait_for_online(&broker_a, "cloud-a", &["cloud-b"], Duration::from_secs(30)).await;
    wait_for_online(&broker_b, "cloud-b", &["cloud-a"], Duration::from_secs(30)).await;
    let mut a = operator(&broker_a, "cloud-a").await;
    let b = operator(&broker_b, "cloud-b").await;
    let (web, probe, solo) = (
        underlay.instance("web"),
        underlay.instance("probe"),
        underlay.instance("solo"),
    );
    for name in [&web, &probe, &solo] {
        create(&mut a, name, 1, 16 << 20).await;
    }
    for (vnet, cidr, clouds) in [
        ("blue", "10.70.0.0/24", vec!["cloud-a", "cloud-b"]),
        ("edge", "10.71.0.0/24", vec!["cloud-a"]),
    ] {
        a.create_vnet(CreateVnetRequest {
            name: vnet.into(),
            cidr: cidr.into(),
            clouds: clouds.iter().map(|c| (*c).to_owned()).collect(),
            domain: String::new(),
            bandwidth: String::new(),
        })
        .await
        .expect("create vnet");
    }
    let attach = |vnet: &str, instance: &str| AttachRequest {
        tenant: String::new(),
        vnet: vnet.into(),
        instance: instance.into(),
        ip: String::new(),
    };
    let before = a
        .attach_vnet(attach("blue", &web))
        .await
        .expect("attach web")
        .into_inner();
    a.attach_vnet(attach("blue", &probe))
        .await
        .expect("attach probe");
    a.attach_vnet(attach("edge", &solo))
        .await
        .expect("attach solo");
    let probe_ns = format!("ic-cloud-a.{probe}");
    // The brokers build their side within a reconciliation or two.
    let ping_until = |ip: String| {
        let ns = probe_ns.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let run = if namespaces().contains(&ns) {
                    ping(&ns, &ip, 2, 1).await
                } else {
                    intercloud_tests::underlay::Run {
                        ok: false,
                        output: format!("no namespace {ns} yet"),
                    }
                };
                if run.ok || std::time::Instant::now() > deadline {
                    return run;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let reached = ping_until(before.ip.clone()).await;
    assert!(
        reached.ok,
        "probe -> web before the move:\n{}",
        reached.output
    );

    // Its VNet does not reach cloud-b: refused before anything is sent.
    let steps = migrate(&mut a, &solo, "cloud-b").await;
    let last = steps.last().expect("a last step");
    assert_eq!(last.step, "failed", "{steps:?}");
    assert!(
        last.detail.contains("edge") && last.detail.contains("spans only cloud-a"),
        "{}",
        last.detail
    );

    // web moves with its address.
    let steps = migrate(&mut a, &web, "cloud-b").await;
    assert_eq!(
        steps.last().map(|s| s.step.as_str()),
        Some("done"),
        "{steps:?}"
    );
    let network = steps
        .iter()
        .find(|s| s.step == "network")
        .unwrap_or_else(|| panic!("no network step in {steps:?}"));
    assert!(network.detail.contains(&before.ip), "{}", network.detail);
    let shown = b
        .clone()
        .show_vnet(GetVnetRequest {
            tenant: "cloud-a".into(),
            name: "blue".into(),
        })
        .await
        .expect("show")
        .into_inner();
    let after = shown
        .vnet
        .expect("vnet")
        .bindings
        .into_iter()
        .find(|x| x.instance == web)
        .expect("web's binding");
    assert_eq!(
        (after.cloud.as_str(), &after.ip, &after.mac),
        ("cloud-b", &before.ip, &before.mac)
    );
    let (old_ns, new_ns) = (format!("ic-cloud-a.{web}"), format!("ic-cloud-b.{web}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let present = namespaces();
        if present.contains(&new_ns) && !present.contains(&old_ns) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{new_ns} not made or {old_ns} not removed: {present:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reached = ping_until(before.ip.clone()).await;
    assert!(
        reached.ok,
        "probe (cloud-a) -> web (now cloud-b):\n{}",
        reached.output
    );
}
