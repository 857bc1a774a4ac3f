//! Benchmark transfers over a real RabbitMQ (issue 6).
//!
//! 1. Migrate a 1 GiB image (a qcow2 holding 1 GiB of random data) from
//!    cloud-a to cloud-b through the brokers: throughput of the transfer
//!    (bytes of the qcow2 over the time from the `transfer` step to the
//!    `verify` step, which includes the target's checks) and the peak RSS (`VmHWM`) of both brokers.
//! 2. The baseline, in the same run on the same RabbitMQ, once before and
//!    once after the migration (the mean is the baseline): raw lapin
//!    publish/consume of the same bytes in the same chunk size with the
//!    same durability — a durable queue, persistent messages, publisher
//!    confirms with the same window, a consumer with the same prefetch
//!    that writes each chunk to a file and fdatasyncs before acking each
//!    batch. No digests, no protocol. Each measurement starts after a
//!    `sync`, so none pays for another's writeback.
//! 3. The same raw lapin run with only the protocol's SHA-256 work added
//!    (a digest per chunk at the publisher, checked at the consumer, and the
//!    whole object's digest at the consumer): how much of the gap to the
//!    baseline is the integrity the issue asks for, not the protocol.
//! 4. `object put` of 100 MiB with three replicas (cloud-a, cloud-b,
//!    cloud-c): the time until the third receipt.
//!
//! `cargo run --release -p intercloud-tests --bin bench-transfer [-- MiB [ROUNDS]]`
//! (default 1024 MiB, 5 rounds; each round migrates the other way and the
//! figures are medians)
//! (daemons next to this binary, or `INTERCLOUD_BIN_DIR`). Runs as root.

use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use intercloud_proto::v1::broker_client::BrokerClient;
use intercloud_proto::v1::{
    CreateInstanceRequest, MigrateRequest, PutObjectHeader, PutObjectRequest, migrate_request,
    put_object_request,
};
use intercloud_tests::prosody::Prosody;
use intercloud_tests::rabbitmq::RabbitMq;
use intercloud_tests::{
    BrokerIdentity, RootOptions, TestBroker, TestRoot, client_tls, cloud_id, connect, pki,
};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use sha2::Digest as _;
use tonic::transport::Channel;

const FEDERATION: &str = "intercloud.lab";
const CHUNK: usize = 1 << 20;
const WINDOW: usize = 32;
const PREFETCH: u16 = 64;
/// The baseline's message header: the chunk index, then room for a digest.
const HEADER: usize = 8 + 32;

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The median of a few measurements.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Every measurement, for the record.
fn seconds(values: &[f64]) -> String {
    let each: Vec<String> = values.iter().map(|v| format!("{v:.1}")).collect();
    format!("(each: {} s)", each.join(", "))
}

/// Migrates `bench-vm` to `to` through `client`'s broker: the seconds of
/// the whole migration and of its transfer (from the `transfer` step to
/// the `verify` step, so the target's checks are in it).
async fn migrate(client: &mut BrokerClient<Channel>, to: &str) -> (f64, f64) {
    let started = Instant::now();
    let mut steps = client
        .migrate(MigrateRequest {
            instance: "bench-vm".into(),
            target: Some(migrate_request::Target::ToCloud(to.into())),
        })
        .await
        .expect("migrate")
        .into_inner();
    let (mut transfer_started, mut transfer_done) = (None, None);
    while let Some(step) = steps.next().await {
        let step = step.expect("step");
        if step.step == "transfer" && transfer_started.is_none() {
            transfer_started = Some(Instant::now());
        }
        if step.step == "verify" && transfer_done.is_none() {
            transfer_done = Some(Instant::now());
        }
        assert_ne!(step.step, "failed", "migration failed: {}", step.detail);
    }
    let transfer = transfer_done
        .zip(transfer_started)
        .map(|(d, s)| d.duration_since(s).as_secs_f64())
        .expect("transfer steps");
    (started.elapsed().as_secs_f64(), transfer)
}

/// `sync(1)`: writes back every dirty page, so that one measurement does
/// not pay for the previous one's writes.
fn flush_to_disk() {
    let status = Command::new("sync").status().expect("sync");
    assert!(status.success(), "sync failed");
}

async fn operator(broker: &TestBroker, cloud: &str) -> BrokerClient<Channel> {
    let tls = client_tls(
        &cloud_id(cloud),
        Some((
            &format!("operator-{cloud}.crt"),
            &format!("operator-{cloud}.key"),
        )),
    );
    BrokerClient::new(connect(&broker.api, tls).await.expect("operator connects"))
        .max_decoding_message_size(16 << 20)
}

/// What the raw baseline does besides moving bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Integrity {
    /// Nothing: the baseline.
    None,
    /// The protocol's SHA-256 work and nothing else of it: the publisher
    /// hashes each chunk into its message; the consumer checks each chunk's
    /// digest and hashes the whole object as it arrives.
    Sha256,
}

/// Raw lapin: publish `source` in CHUNK-byte persistent messages with
/// confirms (WINDOW in flight) while a consumer (PREFETCH) writes them to
/// `sink` and fdatasyncs before acking each batch. Returns the seconds.
async fn raw_baseline(rabbit: &RabbitMq, source: &Path, sink: &Path, integrity: Integrity) -> f64 {
    let connect = || async {
        let tls = OwnedTLSConfig {
            identity: Some(OwnedIdentity::PKCS8 {
                pem: std::fs::read(pki("cloud-c.crt")).expect("cert"),
                key: std::fs::read(pki("cloud-c.key")).expect("key"),
            }),
            cert_chain: Some(std::fs::read_to_string(pki("ca.crt")).expect("ca")),
        };
        Connection::connect_with_config(
            &format!(
                "amqps://localhost:{}/%2f?auth_mechanism=external&heartbeat=10",
                rabbit.amqps.port()
            ),
            ConnectionProperties::default(),
            tls,
            lapin::runtime::default_runtime().expect("runtime"),
        )
        .await
        .expect("connect")
    };
    let queue = "cloud-c.bench";
    let publisher = connect().await;
    let consumer_conn = connect().await;
    let channel = publisher.create_channel().await.expect("channel");
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let total = std::fs::metadata(source).expect("source").len();
    let chunks = total.div_ceil(CHUNK as u64);
    let start = Instant::now();
    let consume = {
        let sink = sink.to_owned();
        tokio::spawn(async move {
            let channel = consumer_conn.create_channel().await.expect("channel");
            channel
                .basic_qos(PREFETCH, BasicQosOptions::default())
                .await
                .expect("qos");
            let mut consumer = channel
                .basic_consume(
                    queue.into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("consume");
            let file = std::fs::File::create(&sink).expect("sink");
            let mut whole = sha2::Sha256::new();
            let mut received = 0u64;
            while received < chunks {
                let Some(Ok(first)) = consumer.next().await else {
                    panic!("the baseline consumer stopped");
                };
                let mut batch = vec![first];
                while batch.len() < usize::from(PREFETCH) {
                    match futures::FutureExt::now_or_never(consumer.next()) {
                        Some(Some(Ok(d))) => batch.push(d),
                        _ => break,
                    }
                }
                for d in &batch {
                    let index = u64::from_be_bytes(d.data[..8].try_into().expect("index"));
                    let payload = &d.data[HEADER..];
                    if integrity == Integrity::Sha256 {
                        let digest: [u8; 32] = sha2::Sha256::digest(payload).into();
                        assert_eq!(&d.data[8..HEADER], digest, "chunk {index} damaged");
                        whole.update(payload);
                    }
                    file.write_all_at(payload, index * CHUNK as u64)
                        .expect("write");
                }
                file.sync_data().expect("fdatasync");
                received += batch.len() as u64;
                let last = batch.last().map_or(0, |d| d.delivery_tag);
                channel
                    .basic_ack(last, BasicAckOptions { multiple: true })
                    .await
                    .expect("ack");
            }
            let _ = whole.finalize();
        })
    };
    let file = std::fs::File::open(source).expect("source");
    let mut confirms = futures::stream::FuturesUnordered::new();
    for index in 0..chunks {
        let offset = index * CHUNK as u64;
        let len = (total - offset).min(CHUNK as u64) as usize;
        let mut body = vec![0u8; HEADER + len];
        body[..8].copy_from_slice(&index.to_be_bytes());
        file.read_exact_at(&mut body[HEADER..], offset)
            .expect("read");
        if integrity == Integrity::Sha256 {
            let digest: [u8; 32] = sha2::Sha256::digest(&body[HEADER..]).into();
            body[8..HEADER].copy_from_slice(&digest);
        }
        while confirms.len() >= WINDOW {
            confirms.next().await;
        }
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish");
        confirms.push(confirm);
    }
    while confirms.next().await.is_some() {}
    consume.await.expect("consumer");
    start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let mib: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let rounds: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let prosody = Prosody::start(
        &dir.path().join("xmpp"),
        FEDERATION,
        &["cloud-a", "cloud-b", "cloud-c"],
    );
    let rabbit = RabbitMq::start(
        &dir.path().join("rabbitmq"),
        FEDERATION,
        &["cloud-a", "cloud-b", "cloud-c"],
    );
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let broker = |cloud: &str| {
        TestBroker::start(
            dir.path(),
            cloud,
            &root,
            &BrokerIdentity::DevCert,
            &format!(
                "[capacity]\nvcpu = 64\nmemory_mib = 262144\nstorage_gib = 10000\n{}lease_seconds = 10\nannounce_seconds = 1\n[amqp]\nurl = \"amqps://localhost:{}/%2f\"\n",
                prosody.xmpp_section(cloud),
                rabbit.amqps.port()
            ),
        )
    };
    let a = broker("cloud-a");
    let b = broker("cloud-b");
    let c = broker("cloud-c");
    let mut client_a = operator(&a, "cloud-a").await;
    // Wait for presence: the offer goes over XMPP.
    for _ in 0..300 {
        let peers = client_a
            .list_peers(intercloud_proto::v1::ListPeersRequest {})
            .await
            .expect("peers")
            .into_inner();
        if peers.peers.iter().filter(|p| p.online).count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The image: a qcow2 holding `mib` MiB of random data.
    let bytes = mib << 20;
    let raw = dir.path().join("image.raw");
    {
        let mut f = std::fs::File::create(&raw).expect("raw");
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..mib {
            for b in block.iter_mut() {
                *b = rand::random();
            }
            f.write_all(&block).expect("write raw");
        }
    }
    client_a
        .create_instance(CreateInstanceRequest {
            name: "bench-vm".into(),
            vcpu: 2,
            memory_mib: 2048,
            disk_bytes: bytes,
        })
        .await
        .expect("create instance");
    let disk = a.data_dir.join("cloud/disks/bench-vm.qcow2");
    let status = Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&disk)
        .status()
        .expect("qemu-img");
    assert!(status.success());
    let image_len = std::fs::metadata(&disk).expect("disk").len();
    let hwm_before = (vm_hwm_kib(a.daemon.pid()), vm_hwm_kib(b.daemon.pid()));

    // Rounds: the baseline, a migration (a → b, then back), the baseline
    // with the SHA-256 work. Each measurement starts with nothing dirty in
    // the page cache (`sync`): the writeback of the image just made, or of
    // the last measurement, must not land in the next one.
    let mut client_b = operator(&b, "cloud-b").await;
    let sink = dir.path().join("baseline.out");
    let (mut raw, mut hashed, mut transfer, mut migration) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        let (client, from, to) = if round % 2 == 0 {
            (&mut client_a, &a, "cloud-b")
        } else {
            (&mut client_b, &b, "cloud-a")
        };
        let source = from.data_dir.join("cloud/disks/bench-vm.qcow2");
        flush_to_disk();
        raw.push(raw_baseline(&rabbit, &source, &sink, Integrity::None).await);
        std::fs::remove_file(&sink).expect("remove the baseline's sink");
        flush_to_disk();
        let (whole, moved) = migrate(client, to).await;
        migration.push(whole);
        transfer.push(moved);
        flush_to_disk();
        let target = if to == "cloud-b" { &b } else { &a };
        let arrived = target.data_dir.join("cloud/disks/bench-vm.qcow2");
        hashed.push(raw_baseline(&rabbit, &arrived, &sink, Integrity::Sha256).await);
        std::fs::remove_file(&sink).expect("remove the baseline's sink");
    }
    let hwm_after = (vm_hwm_kib(a.daemon.pid()), vm_hwm_kib(b.daemon.pid()));
    flush_to_disk();

    // 100 MiB on three clouds.
    let object = dir.path().join("object.bin");
    {
        let mut f = std::fs::File::create(&object).expect("object");
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..100 {
            for b in block.iter_mut() {
                *b = rand::random();
            }
            f.write_all(&block).expect("write object");
        }
    }
    let object_bytes = std::fs::read(&object).expect("object");
    let mut messages = vec![PutObjectRequest {
        part: Some(put_object_request::Part::Header(PutObjectHeader {
            name: "bench-object".into(),
            replicas: 3,
            region: String::new(),
            size: object_bytes.len() as u64,
            clouds: vec!["cloud-a".into(), "cloud-b".into(), "cloud-c".into()],
        })),
    }];
    for part in object_bytes.chunks(1 << 20) {
        messages.push(PutObjectRequest {
            part: Some(put_object_request::Part::Data(part.to_vec())),
        });
    }
    let put_started = Instant::now();
    let mut put_steps = client_a
        .put_object(tokio_stream::iter(messages))
        .await
        .expect("put")
        .into_inner();
    let mut last = String::new();
    while let Some(step) = put_steps.next().await {
        let step = step.expect("step");
        last = step.step;
    }
    assert_eq!(last, "done", "the put did not finish");
    let put_secs = put_started.elapsed().as_secs_f64();

    let mbps = |secs: f64| image_len as f64 / secs / 1e6;
    let (ours, baseline, with_sha) = (median(&transfer), median(&raw), median(&hashed));
    println!(
        "bench-transfer ({mib} MiB of random data in a qcow2 of {image_len} bytes; chunk {CHUNK}, window {WINDOW}, prefetch {PREFETCH}; {rounds} rounds, medians)"
    );
    println!(
        "  migration, whole (target → release): {:.1} s   {}",
        median(&migration),
        seconds(&migration)
    );
    println!(
        "  transfer of the image, ours: {ours:.1} s = {:.1} MB/s   {}",
        mbps(ours),
        seconds(&transfer)
    );
    println!(
        "  raw lapin baseline (same bytes, chunk, durability, confirms): {baseline:.1} s = {:.1} MB/s   {}",
        mbps(baseline),
        seconds(&raw)
    );
    println!("  ratio ours / baseline: {:.2}", baseline / ours);
    println!(
        "  raw lapin + only the protocol's SHA-256 work (chunk digests at both ends, whole digest at the consumer): {with_sha:.1} s = {:.1} MB/s   {}; ours / that: {:.2}",
        mbps(with_sha),
        seconds(&hashed),
        with_sha / ours
    );
    println!(
        "  peak RSS (VmHWM) cloud-a {} → {} MiB, cloud-b {} → {} MiB",
        hwm_before.0 / 1024,
        hwm_after.0 / 1024,
        hwm_before.1 / 1024,
        hwm_after.1 / 1024
    );
    println!(
        "  object put 100 MiB × 3 replicas (cloud-a, cloud-b, cloud-c): {put_secs:.1} s; peak RSS cloud-c {} MiB",
        vm_hwm_kib(c.daemon.pid()) / 1024
    );
}
