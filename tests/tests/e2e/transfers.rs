//! Transfers over a real RabbitMQ between real brokers: objects put on
//! several clouds and read back, and the faults of issue 6 — kill -9 of the
//! sending or the receiving broker and a restart of RabbitMQ mid-transfer —
//! counted like a Jepsen checker (attempted, acknowledged, lost,
//! duplicated).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use intercloud_proto::v1::broker_client::BrokerClient;
use intercloud_proto::v1::{
    GetObjectRequest, ListObjectsRequest, ListTransfersRequest, ObjectStep, PutObjectHeader,
    PutObjectRequest, TransferDirection, WatchTransfersRequest, get_object_response,
    put_object_request,
};
use intercloud_tests::rabbitmq::RabbitMq;
use intercloud_tests::{BrokerIdentity, RootOptions, TestBroker, TestRoot};
use intercloud_transfer::{Checker, Sha256Digest, TransferId};
use sha2::Digest as _;
use tonic::transport::Channel;

use crate::presence::operator;

const FEDERATION: &str = "intercloud.lab";

/// Small chunks, so that a few MiB make many of them and a kill lands
/// mid-transfer.
pub const TEST_CHUNK: &str = "chunk_size = 65536\nwindow = 8\nprefetch = 16\n";

/// A root, a RabbitMQ and brokers with transfers.
pub struct Federation {
    pub dir: tempfile::TempDir,
    pub root: TestRoot,
    pub rabbit: RabbitMq,
}

impl Federation {
    pub fn start(clouds: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = TestRoot::start(dir.path(), &RootOptions::default());
        let rabbit = RabbitMq::start(&dir.path().join("rabbitmq"), FEDERATION, clouds);
        Self { dir, root, rabbit }
    }

    pub fn broker(&self, cloud: &str, extra: &str) -> TestBroker {
        TestBroker::start(
            self.dir.path(),
            cloud,
            &self.root,
            &BrokerIdentity::DevCert,
            &format!("{}{extra}", self.rabbit.broker_section(TEST_CHUNK)),
        )
    }

    /// Starts `cloud`'s broker again after a kill, keeping a copy of the
    /// previous log (a new process truncates it).
    pub fn restart(&self, broker: &mut TestBroker, cloud: &str, extra: &str) {
        broker.daemon.kill();
        let log = self.dir.path().join(format!("{cloud}.log"));
        let mut n = 1;
        while self.dir.path().join(format!("{cloud}.log.{n}")).exists() {
            n += 1;
        }
        let _ = std::fs::copy(&log, self.dir.path().join(format!("{cloud}.log.{n}")));
        *broker = self.broker(cloud, extra);
    }

    /// Everything `cloud`'s broker logged, across restarts.
    pub fn all_logs(&self, cloud: &str) -> String {
        let mut text = String::new();
        let mut n = 1;
        while let Ok(t) = std::fs::read_to_string(self.dir.path().join(format!("{cloud}.log.{n}")))
        {
            text.push_str(&t);
            n += 1;
        }
        text.push_str(
            &std::fs::read_to_string(self.dir.path().join(format!("{cloud}.log")))
                .unwrap_or_default(),
        );
        text
    }
}

/// A file of `len` pseudo-random bytes and its SHA-256.
pub fn random_file(dir: &Path, name: &str, len: usize) -> (PathBuf, Sha256Digest) {
    let bytes: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).expect("write the test file");
    (
        path,
        Sha256Digest::from_bytes(sha2::Sha256::digest(&bytes).into()),
    )
}

fn file_sha256(path: &Path) -> Option<Sha256Digest> {
    let bytes = std::fs::read(path).ok()?;
    Some(Sha256Digest::from_bytes(
        sha2::Sha256::digest(&bytes).into(),
    ))
}

/// Puts `path` as `name` on `clouds`; returns every step.
pub async fn put(
    client: &mut BrokerClient<Channel>,
    name: &str,
    path: &Path,
    clouds: &[&str],
) -> Result<Vec<ObjectStep>, tonic::Status> {
    let bytes = std::fs::read(path).expect("read the test file");
    let mut messages = vec![PutObjectRequest {
        part: Some(put_object_request::Part::Header(PutObjectHeader {
            name: name.to_owned(),
            replicas: clouds.len() as u32,
            region: String::new(),
            size: bytes.len() as u64,
            clouds: clouds.iter().map(|c| (*c).to_owned()).collect(),
        })),
    }];
    for part in bytes.chunks(1 << 20) {
        messages.push(PutObjectRequest {
            part: Some(put_object_request::Part::Data(part.to_vec())),
        });
    }
    let mut stream = client
        .put_object(tokio_stream::iter(messages))
        .await?
        .into_inner();
    let mut steps = Vec::new();
    while let Some(step) = stream.next().await {
        steps.push(step?);
    }
    Ok(steps)
}

fn last_step(steps: &[ObjectStep]) -> (&str, &str) {
    steps
        .last()
        .map_or(("", ""), |s| (s.step.as_str(), s.detail.as_str()))
}

/// The committed copy of `owner`'s object `name` at a holder.
pub fn holder_copy(holder: &TestBroker, owner: &str, name: &str) -> PathBuf {
    holder
        .data_dir
        .join("transfers/objects")
        .join(format!("{owner}.{name}"))
}

fn staging_files(broker: &TestBroker) -> Vec<String> {
    std::fs::read_dir(broker.data_dir.join("transfers/staging"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_is_stored_on_two_clouds_and_read_back_from_a_replica() {
    let fed = Federation::start(&["cloud-a", "cloud-b", "cloud-c"]);
    let a = fed.broker("cloud-a", "");
    let b = fed.broker("cloud-b", "");
    let c = fed.broker("cloud-c", "");
    let (path, digest) = random_file(fed.dir.path(), "payload.bin", 3 * 1024 * 1024 + 17);
    let mut client = operator(&a, "cloud-a").await;

    let steps = put(&mut client, "payload", &path, &["cloud-b", "cloud-c"])
        .await
        .expect("put");
    assert_eq!(last_step(&steps).0, "done", "steps: {steps:#?}");
    let names: Vec<&str> = steps.iter().map(|s| s.step.as_str()).collect();
    for expected in ["upload", "placement", "transfer", "stored", "done"] {
        assert!(names.contains(&expected), "no {expected} step in {names:?}");
    }
    let progress: Vec<u64> = steps
        .iter()
        .filter_map(|s| s.transfer.as_ref().map(|t| t.bytes_done))
        .collect();
    assert!(!progress.is_empty(), "no progress reported: {steps:#?}");
    let done = steps
        .last()
        .and_then(|s| s.object.clone())
        .expect("object info");
    assert_eq!(done.sha256, digest.to_string());
    assert_eq!(
        done.replicas.iter().filter(|r| r.state == "stored").count(),
        2
    );

    // Each holder has exactly the bytes, committed, with no staging left.
    for (holder, cloud) in [(&b, "cloud-b"), (&c, "cloud-c")] {
        let copy = holder_copy(holder, "cloud-a", "payload");
        assert_eq!(
            file_sha256(&copy),
            Some(digest),
            "{cloud}'s copy at {}",
            copy.display()
        );
        assert!(
            staging_files(holder).is_empty(),
            "{cloud} staging: {:?}",
            staging_files(holder)
        );
    }
    // The owner holds no copy itself: a get must fetch one from a holder.
    assert!(!holder_copy(&a, "cloud-a", "payload").exists());
    let mut stream = client
        .get_object(GetObjectRequest {
            name: "payload".into(),
        })
        .await
        .expect("get")
        .into_inner();
    let mut bytes = Vec::new();
    let mut from = String::new();
    while let Some(part) = stream.next().await {
        let part = part.expect("get part");
        match part.part {
            Some(get_object_response::Part::Info(info)) => {
                assert_eq!(info.sha256, digest.to_string());
                from = part.from_cloud;
            }
            Some(get_object_response::Part::Data(d)) => bytes.extend_from_slice(&d),
            None => {}
        }
    }
    assert!(from == "cloud-b" || from == "cloud-c", "served by {from:?}");
    assert_eq!(
        Sha256Digest::from_bytes(sha2::Sha256::digest(&bytes).into()),
        digest
    );

    let listed = client
        .list_objects(ListObjectsRequest {})
        .await
        .expect("ls")
        .into_inner();
    assert_eq!(listed.objects.len(), 1);
    assert_eq!(listed.objects[0].name, "payload");

    // Both ends show the transfers, finished.
    let outgoing = client
        .list_transfers(ListTransfersRequest {
            include_finished: true,
        })
        .await
        .expect("transfers")
        .into_inner()
        .transfers;
    let sent: Vec<_> = outgoing
        .iter()
        .filter(|t| t.direction == TransferDirection::Outgoing as i32 && t.kind == "object")
        .collect();
    assert!(sent.len() >= 2, "{outgoing:#?}");
    assert!(
        sent.iter()
            .all(|t| t.state == "committed" && t.bytes_done == t.size)
    );

    // Bad requests are refused with their reason.
    let err = put(&mut client, "../etc", &path, &["cloud-b"])
        .await
        .expect_err("refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("only letters"), "{}", err.message());
    let err = client
        .get_object(GetObjectRequest {
            name: "nothing".into(),
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    let steps = put(&mut client, "to-nowhere", &path, &["cloud-zz"])
        .await
        .expect("put");
    let (step, detail) = last_step(&steps);
    assert_eq!(step, "failed", "{steps:#?}");
    assert!(detail.contains("cloud-zz"), "{detail}");
}

/// Runs `objects` puts of `size` bytes from `a` to `cloud-b`, applies
/// `fault` once the receiver holds part of them, and checks the outcome.
async fn puts_survive(
    fed: &mut Federation,
    a: &mut TestBroker,
    b: &mut TestBroker,
    objects: usize,
    size: usize,
    fault: &str,
) {
    let mut checker = Checker::new();
    let mut expected = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..objects {
        let name = format!("obj-{i}");
        let (path, digest) = random_file(fed.dir.path(), &name, size);
        expected.push((name.clone(), digest));
        let mut client = operator(a, "cloud-a").await;
        tasks.push(tokio::spawn(async move {
            put(&mut client, &name, &path, &["cloud-b"]).await
        }));
    }
    // Wait until the receiver has part of a transfer on disk.
    let b_dir = b.data_dir.clone();
    let in_flight = async || {
        std::fs::read_dir(b_dir.join("transfers/staging"))
            .map(|e| {
                e.flatten()
                    .filter(|f| f.path().extension().is_some_and(|x| x == "bitmap"))
                    .count()
            })
            .unwrap_or(0)
    };
    wait_until(
        "chunks at the receiver",
        Duration::from_secs(60),
        async || in_flight().await > 0,
    )
    .await;
    eprintln!(
        "{fault}: {} transfer(s) part-way at the receiver",
        in_flight().await
    );
    match fault {
        "kill the receiver" => fed.restart(b, "cloud-b", ""),
        "kill the sender" => fed.restart(a, "cloud-a", ""),
        "restart RabbitMQ" => fed.rabbit.restart_after_kill(),
        other => panic!("unknown fault {other}"),
    }
    // Every transfer's receiver-side outcome: wait for all to commit.
    let b_dir = b.data_dir.clone();
    let names: Vec<String> = expected.iter().map(|(n, _)| n.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !names.iter().all(|n| {
        b_dir
            .join("transfers/objects")
            .join(format!("cloud-a.{n}"))
            .exists()
    }) {
        assert!(
            Instant::now() < deadline,
            "{fault}: not every object committed at cloud-b\n--- cloud-a ---\n{}\n--- cloud-b ---\n{}",
            fed.all_logs("cloud-a"),
            fed.all_logs("cloud-b")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut acknowledged = 0;
    for (task, (name, digest)) in tasks.into_iter().zip(&expected) {
        let id = TransferId::new(name).expect("id");
        checker.attempted(id.clone(), *digest);
        // A put whose sender was killed under it breaks off: not
        // acknowledged, but its transfer must still complete.
        if let Ok(Ok(steps)) = task.await
            && last_step(&steps).0 == "done"
        {
            checker.acknowledged(id.clone());
            acknowledged += 1;
        }
        if let Some(actual) = file_sha256(&holder_copy(b, "cloud-a", name)) {
            checker.committed(id, actual);
        }
    }
    // Exactly one commit per transfer, across restarts.
    let log = fed.all_logs("cloud-b");
    let commits = log.matches("incoming transfer committed").count();
    let report = checker.report();
    eprintln!(
        "{fault}: attempted {}, acknowledged {}, committed {}, lost {}, duplicated {} (commit log lines {commits})",
        report.attempted,
        report.acknowledged,
        report.committed,
        report.lost.len(),
        report.duplicated.len()
    );
    assert!(report.is_valid(), "{fault}: {report:?}");
    assert!(report.lost.is_empty(), "{fault}: lost {:?}", report.lost);
    assert!(
        report.duplicated.is_empty(),
        "{fault}: duplicated {:?}",
        report.duplicated
    );
    assert_eq!(report.attempted, objects as u64);
    assert_eq!(report.committed, objects as u64);
    assert_eq!(commits, objects, "{fault}: one commit per transfer:\n{log}");
    if fault != "kill the sender" {
        assert_eq!(acknowledged, objects, "{fault}: every put acknowledged");
    }
    // No partial file is visible: every committed object is whole, nothing
    // stays in staging.
    for (name, digest) in &expected {
        assert_eq!(file_sha256(&holder_copy(b, "cloud-a", name)), Some(*digest));
    }
    wait_until("staging empty", Duration::from_secs(10), async || {
        staging_files(b).is_empty()
    })
    .await;
    // The owner's records end stored, even for puts that broke off.
    let mut client = operator(a, "cloud-a").await;
    wait_until(
        "the owner's records settle",
        Duration::from_secs(30),
        async || {
            let listed = client
                .list_objects(ListObjectsRequest {})
                .await
                .map(|r| r.into_inner().objects)
                .unwrap_or_default();
            listed.len() == objects
                && listed.iter().all(|o| {
                    o.replicas
                        .iter()
                        .any(|r| r.state == "stored" && r.cloud_id == "cloud-b")
                })
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transfers_survive_kill_9_of_the_receiving_broker() {
    let mut fed = Federation::start(&["cloud-a", "cloud-b"]);
    let mut a = fed.broker("cloud-a", "");
    let mut b = fed.broker("cloud-b", "");
    puts_survive(&mut fed, &mut a, &mut b, 4, 12 << 20, "kill the receiver").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transfers_survive_kill_9_of_the_sending_broker() {
    let mut fed = Federation::start(&["cloud-a", "cloud-b"]);
    let mut a = fed.broker("cloud-a", "");
    let mut b = fed.broker("cloud-b", "");
    puts_survive(&mut fed, &mut a, &mut b, 4, 12 << 20, "kill the sender").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transfers_survive_a_rabbitmq_restart() {
    let mut fed = Federation::start(&["cloud-a", "cloud-b"]);
    let mut a = fed.broker("cloud-a", "");
    let mut b = fed.broker("cloud-b", "");
    puts_survive(&mut fed, &mut a, &mut b, 4, 12 << 20, "restart RabbitMQ").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_transfers_shows_progress_to_the_end() {
    let fed = Federation::start(&["cloud-a", "cloud-b"]);
    let a = fed.broker("cloud-a", "");
    let _b = fed.broker("cloud-b", "");
    let (path, _) = random_file(fed.dir.path(), "watched.bin", 4 << 20);
    let mut watcher = operator(&a, "cloud-a").await;
    let mut events = watcher
        .watch_transfers(WatchTransfersRequest {
            include_finished: false,
        })
        .await
        .expect("watch")
        .into_inner();
    let mut client = operator(&a, "cloud-a").await;
    let steps = put(&mut client, "watched", &path, &["cloud-b"])
        .await
        .expect("put");
    assert_eq!(last_step(&steps).0, "done", "{steps:#?}");
    let mut seen = Vec::new();
    while let Ok(Some(Ok(t))) = tokio::time::timeout(Duration::from_secs(5), events.next()).await {
        let finished = t.finished;
        seen.push(t);
        if finished {
            break;
        }
    }
    let last = seen.last().expect("events");
    assert_eq!(last.state, "committed", "{seen:#?}");
    assert_eq!(last.bytes_done, 4 << 20);
    assert!(
        seen.iter()
            .any(|t| t.bytes_done > 0 && t.bytes_done < t.size),
        "no intermediate progress: {seen:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_whose_cloud_is_gone_is_placed_again() {
    use crate::presence::{presence_config, wait_for_online};
    let clouds = ["cloud-a", "cloud-b", "cloud-c"];
    let fed = Federation::start(&clouds);
    let prosody = intercloud_tests::prosody::Prosody::start(
        &fed.dir.path().join("xmpp"),
        FEDERATION,
        &clouds,
    );
    // Every cloud offers storage (generated descriptors), so the owner
    // can match a new holder.
    let broker = |cloud: &str, seed: u64| {
        let descriptor = fed.dir.path().join(format!("{cloud}.ttl"));
        std::fs::write(
            &descriptor,
            intercloud_tests::descriptors::descriptor(cloud, 1, seed, 1),
        )
        .expect("descriptor");
        fed.broker(
            cloud,
            &format!(
                "{}[directory]\ndescriptor = {:?}\ncheck_seconds = 1\n",
                presence_config(&prosody, cloud, 8),
                descriptor
            ),
        )
    };
    let a = broker("cloud-a", 1);
    let _b = broker("cloud-b", 2);
    let mut c = broker("cloud-c", 3);
    wait_for_online(
        &a,
        "cloud-a",
        &["cloud-b", "cloud-c"],
        Duration::from_secs(30),
    )
    .await;
    let (path, digest) = random_file(fed.dir.path(), "kept.bin", 1 << 20);
    let mut client = operator(&a, "cloud-a").await;
    let steps = put(&mut client, "kept", &path, &["cloud-b", "cloud-c"])
        .await
        .expect("put");
    assert_eq!(last_step(&steps).0, "done", "{steps:#?}");

    // cloud-c dies for good.
    c.daemon.kill();
    // The only storage cloud left that holds no copy is the owner itself.
    let holders = [("cloud-a", &a)];
    let deadline = Instant::now() + Duration::from_secs(90);
    let new_holder = loop {
        let objects = client
            .list_objects(ListObjectsRequest {})
            .await
            .expect("ls")
            .into_inner()
            .objects;
        let kept = objects
            .iter()
            .find(|o| o.name == "kept")
            .expect("kept listed");
        let stored: Vec<&str> = kept
            .replicas
            .iter()
            .filter(|r| r.state == "stored")
            .map(|r| r.cloud_id.as_str())
            .collect();
        let c_lost = kept
            .replicas
            .iter()
            .any(|r| r.cloud_id == "cloud-c" && r.state == "lost");
        if c_lost && stored.len() == 2 {
            assert!(stored.contains(&"cloud-b"), "{kept:#?}");
            break stored
                .into_iter()
                .find(|c| *c != "cloud-b")
                .expect("a new holder")
                .to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no new replica: {kept:#?}\n{}",
            a.daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (_, holder) = holders
        .iter()
        .find(|(name, _)| *name == new_holder)
        .expect("the new holder is cloud-a");
    assert_eq!(
        file_sha256(&holder_copy(holder, "cloud-a", "kept")),
        Some(digest)
    );
    assert!(a.daemon.log_text().contains("re-replicating"));
}
