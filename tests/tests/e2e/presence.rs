//! Presence and dialog over a real Prosody: brokers see each other online
//! with their capacity, lose a killed peer within the lease, negotiate
//! reservations, and converge again after Prosody restarts.

use std::time::Duration;

use intercloud_proto::v1::broker_client::BrokerClient;
use intercloud_proto::v1::{
    Capacity, ListPeersRequest, ListPeersResponse, NegotiateRequest, StatusRequest,
    WatchPeersRequest, peer_event,
};
use intercloud_tests::prosody::Prosody;
use intercloud_tests::{
    BrokerIdentity, RootOptions, TestBroker, TestRoot, client_tls, cloud_id, connect,
};
use tonic::transport::Channel;

/// Lease and announce interval used in these tests (seconds).
pub const LEASE: u64 = 4;

/// The extra config of a broker with presence.
pub fn presence_config(prosody: &Prosody, cloud: &str, vcpu: u32) -> String {
    format!(
        "[capacity]\nvcpu = {vcpu}\nmemory_mib = 16384\nstorage_gib = 500\n{}lease_seconds = {LEASE}\nannounce_seconds = 1\n",
        prosody.xmpp_section(cloud)
    )
}

/// A broker of `cloud` with the dev certificate, presence through `prosody`
/// and `vcpu` virtual CPUs to offer.
pub fn presence_broker(
    dir: &std::path::Path,
    root: &TestRoot,
    prosody: &Prosody,
    cloud: &str,
    vcpu: u32,
) -> TestBroker {
    TestBroker::start(
        dir,
        cloud,
        root,
        &BrokerIdentity::DevCert,
        &presence_config(prosody, cloud, vcpu),
    )
}

pub async fn operator(broker: &TestBroker, cloud: &str) -> BrokerClient<Channel> {
    let tls = client_tls(
        &cloud_id(cloud),
        Some((
            &format!("operator-{cloud}.crt"),
            &format!("operator-{cloud}.key"),
        )),
    );
    BrokerClient::new(connect(&broker.api, tls).await.expect("operator connects"))
}

pub async fn peers(broker: &TestBroker, cloud: &str) -> ListPeersResponse {
    operator(broker, cloud)
        .await
        .list_peers(ListPeersRequest {})
        .await
        .expect("ListPeers")
        .into_inner()
}

/// Asks `cloud`'s broker for its peers until `wanted` holds of the list
/// (returned), or panics after `timeout` saying it never saw `what`.
async fn wait_for_peers(
    broker: &TestBroker,
    cloud: &str,
    timeout: Duration,
    what: &str,
    wanted: impl Fn(&ListPeersResponse) -> bool,
) -> ListPeersResponse {
    let deadline = std::time::Instant::now() + timeout;
    let mut last = None;
    while std::time::Instant::now() < deadline {
        let list = peers(broker, cloud).await;
        if wanted(&list) {
            return list;
        }
        last = Some(list);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{cloud} never saw {what}; last: {last:#?}\nlog:\n{}",
        broker.daemon.log_text()
    );
}

/// Waits until `cloud`'s broker lists exactly `online` as online peers.
pub async fn wait_for_online(
    broker: &TestBroker,
    cloud: &str,
    online: &[&str],
    timeout: Duration,
) -> ListPeersResponse {
    let what = format!("exactly {online:?} online");
    wait_for_peers(broker, cloud, timeout, &what, |list| {
        let now_online: Vec<&str> = list
            .peers
            .iter()
            .filter(|p| p.online)
            .map(|p| p.cloud_id.as_str())
            .collect();
        now_online == online
    })
    .await
}

/// Waits until `cloud`'s broker sees `peer` announce itself ready.
async fn wait_for_ready(
    broker: &TestBroker,
    cloud: &str,
    peer: &str,
    timeout: Duration,
) -> ListPeersResponse {
    wait_for_peers(broker, cloud, timeout, &format!("{peer} ready"), |list| {
        list.peers
            .iter()
            .any(|p| p.cloud_id == peer && p.readiness.is_some_and(|r| r.ready))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn brokers_see_each_other_lose_a_killed_peer_and_negotiate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prosody = Prosody::start(
        &dir.path().join("xmpp"),
        "intercloud.lab",
        &["cloud-a", "cloud-b", "cloud-c"],
    );
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let a = presence_broker(dir.path(), &root, &prosody, "cloud-a", 8);
    let b = presence_broker(dir.path(), &root, &prosody, "cloud-b", 16);
    let mut c = presence_broker(dir.path(), &root, &prosody, "cloud-c", 32);

    wait_for_online(
        &a,
        "cloud-a",
        &["cloud-b", "cloud-c"],
        Duration::from_secs(20),
    )
    .await;
    // A peer is online in XMPP before its link to the root is federated,
    // and announces `ready` only then: wait for that announcement.
    let list = wait_for_ready(&a, "cloud-a", "cloud-b", Duration::from_secs(20)).await;
    assert!(list.presence_connected);
    assert_eq!(list.lease_seconds, LEASE as u32);
    let peer_b = list
        .peers
        .iter()
        .find(|p| p.cloud_id == "cloud-b")
        .expect("cloud-b listed");
    assert_eq!(
        peer_b.free,
        Some(Capacity {
            vcpu: 16,
            memory_mib: 16384,
            storage_gib: 500
        })
    );
    let readiness = peer_b.readiness.expect("readiness");
    assert!(
        readiness.ready && readiness.willing && readiness.able,
        "{readiness:?}"
    );
    assert_eq!(peer_b.grpc_endpoint, b.api);
    wait_for_online(
        &b,
        "cloud-b",
        &["cloud-a", "cloud-c"],
        Duration::from_secs(10),
    )
    .await;

    // Negotiate: cloud-a asks cloud-b for capacity it has, then for more than it has.
    let mut client_a = operator(&a, "cloud-a").await;
    let accepted = client_a
        .negotiate(NegotiateRequest {
            cloud_id: "cloud-b".into(),
            want: Some(Capacity {
                vcpu: 10,
                memory_mib: 4096,
                storage_gib: 0,
            }),
            duration_seconds: 60,
        })
        .await
        .expect("negotiate")
        .into_inner();
    assert!(accepted.accepted, "{accepted:?}");
    assert_eq!(accepted.reservation_id.len(), 32);
    let declined = client_a
        .negotiate(NegotiateRequest {
            cloud_id: "cloud-b".into(),
            want: Some(Capacity {
                vcpu: 10,
                memory_mib: 1,
                storage_gib: 0,
            }),
            duration_seconds: 60,
        })
        .await
        .expect("negotiate")
        .into_inner();
    assert!(!declined.accepted);
    assert!(
        declined.reason.contains("insufficient vcpu"),
        "{}",
        declined.reason
    );
    // cloud-b re-announces its smaller free capacity.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = peers(&a, "cloud-a").await;
        let free_b = list
            .peers
            .iter()
            .find(|p| p.cloud_id == "cloud-b")
            .and_then(|p| p.free);
        if free_b
            == Some(Capacity {
                vcpu: 6,
                memory_mib: 12288,
                storage_gib: 500,
            })
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cloud-b's free capacity never dropped: {free_b:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status_b = operator(&b, "cloud-b")
        .await
        .status(StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        status_b.free,
        Some(Capacity {
            vcpu: 6,
            memory_mib: 12288,
            storage_gib: 500
        })
    );
    assert!(status_b.presence_connected);
    assert_eq!(status_b.peers_online, 2);

    // kill -9 cloud-c: the others see it leave within the lease.
    let mut watch = client_a
        .watch_peers(WatchPeersRequest {
            include_current: false,
        })
        .await
        .expect("watch")
        .into_inner();
    let killed_at = std::time::Instant::now();
    c.daemon.kill();
    let event = tokio::time::timeout(Duration::from_secs(LEASE + 3), async {
        loop {
            let event = watch
                .message()
                .await
                .expect("watch stream")
                .expect("an event");
            if event.kind == peer_event::Kind::Left as i32 {
                return event;
            }
        }
    })
    .await
    .expect("a LEFT event within the lease");
    assert_eq!(event.peer.map(|p| p.cloud_id).as_deref(), Some("cloud-c"));
    assert!(
        killed_at.elapsed() <= Duration::from_secs(LEASE + 2),
        "{:?}",
        killed_at.elapsed()
    );
    wait_for_online(&a, "cloud-a", &["cloud-b"], Duration::from_secs(2)).await;
    wait_for_online(&b, "cloud-b", &["cloud-a"], Duration::from_secs(LEASE + 2)).await;
    let _ = &mut c;
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_converges_again_after_prosody_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut prosody = Prosody::start(
        &dir.path().join("xmpp"),
        "intercloud.lab",
        &["cloud-a", "cloud-b"],
    );
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let a = presence_broker(dir.path(), &root, &prosody, "cloud-a", 8);
    let b = presence_broker(dir.path(), &root, &prosody, "cloud-b", 8);
    wait_for_online(&a, "cloud-a", &["cloud-b"], Duration::from_secs(20)).await;

    prosody.kill();
    let deadline = std::time::Instant::now() + Duration::from_secs(LEASE + 5);
    loop {
        let list = peers(&a, "cloud-a").await;
        if !list.presence_connected && list.peers.iter().all(|p| !p.online) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cloud-a still thinks it is connected: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    prosody.restart();
    wait_for_online(&a, "cloud-a", &["cloud-b"], Duration::from_secs(30)).await;
    wait_for_online(&b, "cloud-b", &["cloud-a"], Duration::from_secs(10)).await;
    assert!(
        a.daemon.log_text().contains("XMPP connection lost"),
        "{}",
        a.daemon.log_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn intercloudctl_lists_watches_and_negotiates_with_peers() {
    use intercloud_tests::{intercloudctl, write_cli_config};
    let dir = tempfile::tempdir().expect("tempdir");
    let prosody = Prosody::start(
        &dir.path().join("xmpp"),
        "intercloud.lab",
        &["cloud-a", "cloud-b", "cloud-c"],
    );
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let a = presence_broker(dir.path(), &root, &prosody, "cloud-a", 8);
    let b = presence_broker(dir.path(), &root, &prosody, "cloud-b", 16);
    let c = TestBroker::start(dir.path(), "cloud-c", &root, &BrokerIdentity::DevCert, "");
    wait_for_online(&a, "cloud-a", &["cloud-b"], Duration::from_secs(20)).await;
    let cli = write_cli_config(
        dir.path(),
        &root,
        &[("cloud-a", &a), ("cloud-b", &b), ("cloud-c", &c)],
    );

    let (code, out, err) =
        intercloudctl(&cli, &["--context", "cloud-a", "--output", "json", "peers"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["presence_connected"], true);
    let listed = json["peers"].as_array().expect("peers");
    assert_eq!(listed.len(), 1, "{json}");
    assert_eq!(listed[0]["cloud_id"], "cloud-b");
    assert_eq!(listed[0]["online"], true);
    assert_eq!(listed[0]["free"]["vcpu"], 16);
    let (code, table, _) = intercloudctl(&cli, &["--context", "cloud-a", "peers"]);
    assert_eq!(code, 0);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("cloud-b") && l.contains("online") && l.contains("16")),
        "{table}"
    );

    // A broker without [xmpp] says so in one line.
    let (code, _, err) = intercloudctl(&cli, &["--context", "cloud-c", "peers"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("presence is not configured") && err.contains("[xmpp]"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // negotiate: accepted exits 0, declined exits 3.
    let (code, out, err) = intercloudctl(
        &cli,
        &[
            "--context",
            "cloud-a",
            "--output",
            "json",
            "negotiate",
            "cloud-b",
            "--vcpu",
            "4",
            "--duration",
            "60",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("\"accepted\": true") || out.contains("\"accepted\":true"),
        "{out}"
    );
    let (code, out, _) = intercloudctl(
        &cli,
        &[
            "--context",
            "cloud-a",
            "negotiate",
            "cloud-b",
            "--vcpu",
            "400",
            "--duration",
            "60",
        ],
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("declined") && out.contains("insufficient vcpu"),
        "{out}"
    );

    // peers --watch sees cloud-b leave when it stops (once cloud-a has seen
    // cloud-b's capacity after the reservation, so no update is in flight).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while peers(&a, "cloud-a")
        .await
        .peers
        .iter()
        .find(|p| p.cloud_id == "cloud-b")
        .and_then(|p| p.free)
        .map(|f| f.vcpu)
        != Some(12)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "cloud-b never announced 12 free vCPU"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let watch = std::process::Command::new(intercloud_tests::bin("intercloudctl"))
        .args(["--config"])
        .arg(&cli)
        .args([
            "--context",
            "cloud-a",
            "--output",
            "json",
            "peers",
            "--watch",
            "--count",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("watch");
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(b);
    let output = tokio::task::spawn_blocking(move || watch.wait_with_output())
        .await
        .expect("join")
        .expect("watch output");
    assert!(output.status.success(), "{output:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0]["kind"], "joined",
        "the current peers come first: {lines:?}"
    );
    assert_eq!(lines[1]["kind"], "left", "{lines:?}");
    assert_eq!(lines[1]["cloud_id"], "cloud-b");
}
