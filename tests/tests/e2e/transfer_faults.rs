//! A real receiving broker against a sender that misbehaves: the test
//! itself speaks the transfer protocol over a raw AMQP connection as
//! cloud-c (its RabbitMQ user exists; no cloud-c broker runs) to a real
//! cloud-b broker, and injects what a well-behaved broker never sends — a
//! corrupted chunk, a chunk without a manifest, a manifest whose numbers
//! disagree, image packages that are not what they claim, a manifest in
//! another cloud's name and a forged `user_id` — then checks each answer
//! on cloud-c's control queue, and what cloud-b left on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt as _;
use intercloud_broker::cloud::InstanceSpec;
use intercloud_broker::cloud::ovf;
use intercloud_broker::mobility::ovf_to_metadata;
use intercloud_proto::v1::ListInstancesRequest;
use intercloud_tests::TestBroker;
use intercloud_tests::pki;
use intercloud_tests::rabbitmq::user_of;
use intercloud_transfer::{
    Chunk, ChunkRange, CloudId, Manifest, ManifestSpec, Message, ObjectId, ObjectKind, Receipt,
    Refusal, RefusalReason, Resend, Sha256Digest, TransferId,
};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer};

use crate::presence::operator;
use crate::transfers::Federation;

const FEDERATION: &str = "intercloud.lab";
/// The cloud the test plays.
const SENDER: &str = "cloud-c";
/// The cloud whose broker receives.
const RECEIVER: &str = "cloud-b";
const CHUNK_SIZE: u64 = 65536;
/// About 300 KiB, not a multiple of the chunk size: five chunks, the last
/// one short.
const OBJECT_LEN: usize = 300 * 1024 + 17;
/// How long an answer may take (the broker answers at once; this bounds a
/// loaded machine).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long silence must last to count as "no answer".
const QUIET: Duration = Duration::from_secs(3);

/// What cloud-b publishes on cloud-c's control queue.
#[derive(Debug)]
enum Answer {
    Resend(Resend),
    Receipt(Receipt),
    Refusal(Refusal),
}

/// A raw AMQP client holding cloud-c's certificate: a publishing channel
/// in confirm mode and a consumer of cloud-c's control queue.
struct RawCloud {
    connection: Connection,
    publisher: Channel,
    answers: Consumer,
    user_id: String,
}

async fn connect_as(fed: &Federation, cloud: &str) -> Connection {
    let tls = OwnedTLSConfig {
        identity: Some(OwnedIdentity::PKCS8 {
            pem: std::fs::read(pki(&format!("{cloud}.crt"))).expect("cert"),
            key: std::fs::read(pki(&format!("{cloud}.key"))).expect("key"),
        }),
        cert_chain: Some(std::fs::read_to_string(pki("ca.crt")).expect("ca")),
    };
    let uri = format!(
        "amqps://localhost:{}/%2f?auth_mechanism=external&heartbeat=10",
        fed.rabbit.amqps.port()
    );
    tokio::time::timeout(
        Duration::from_secs(15),
        Connection::connect_with_config(
            &uri,
            ConnectionProperties::default(),
            tls,
            lapin::runtime::default_runtime().expect("runtime"),
        ),
    )
    .await
    .expect("connecting to RabbitMQ timed out")
    .expect("cloud-c connects")
}

async fn confirm_channel(connection: &Connection) -> Channel {
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm mode");
    channel
}

fn properties(kind: &str, user_id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_user_id(user_id.into())
        .with_type(kind.into())
}

impl RawCloud {
    /// Connects as cloud-c, declares its control queue (durable, as its
    /// broker would) and consumes it.
    async fn connect(fed: &Federation) -> Self {
        let connection = connect_as(fed, SENDER).await;
        let publisher = confirm_channel(&connection).await;
        let control = format!("{SENDER}.transfers.control");
        let consuming = connection.create_channel().await.expect("channel");
        consuming
            .queue_declare(
                control.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("cloud-c declares its control queue");
        let answers = consuming
            .basic_consume(
                control.as_str().into(),
                "transfer-faults".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("cloud-c reads its control queue");
        Self {
            connection,
            publisher,
            answers,
            user_id: user_of(FEDERATION, SENDER),
        }
    }

    /// Publishes `body` to cloud-b's data queue as cloud-c; RabbitMQ must
    /// confirm it and route it.
    async fn publish(&self, kind: &str, body: &[u8]) {
        let confirmation = tokio::time::timeout(ANSWER_TIMEOUT, async {
            self.publisher
                .basic_publish(
                    "".into(),
                    format!("{RECEIVER}.transfers.data").as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    body,
                    properties(kind, &self.user_id),
                )
                .await
                .expect("publish")
                .await
                .expect("confirm")
        })
        .await
        .expect("RabbitMQ confirms within the timeout");
        assert_eq!(
            confirmation,
            Confirmation::Ack(None),
            "a {kind} routed to cloud-b's data queue"
        );
    }

    async fn publish_message(&self, message: Message<'_>) {
        let body = message.encode().expect("encodes");
        self.publish(message.kind(), &body).await;
    }

    /// The next message on cloud-c's control queue, checked to come from
    /// cloud-b with the AMQP `type` of what it is.
    async fn answer(&mut self) -> Answer {
        let delivery = tokio::time::timeout(ANSWER_TIMEOUT, self.answers.next())
            .await
            .unwrap_or_else(|_| panic!("no answer from cloud-b within {ANSWER_TIMEOUT:?}"))
            .expect("the consumer is open")
            .expect("a delivery");
        let kind = delivery
            .properties
            .kind()
            .as_ref()
            .map(|k| k.as_str().to_owned());
        let user = delivery
            .properties
            .user_id()
            .as_ref()
            .map(|u| u.as_str().to_owned());
        assert_eq!(
            user.as_deref(),
            Some(user_of(FEDERATION, RECEIVER).as_str())
        );
        let message = Message::decode(&delivery.data).expect("an answer decodes");
        assert_eq!(kind.as_deref(), Some(message.kind()), "{message:?}");
        match message {
            Message::Resend(r) => Answer::Resend(r),
            Message::Receipt(r) => Answer::Receipt(r),
            Message::Refusal(r) => Answer::Refusal(r),
            other => panic!("cloud-b sent a {} to a control queue", other.kind()),
        }
    }

    async fn resend(&mut self) -> Resend {
        match self.answer().await {
            Answer::Resend(r) => r,
            other => panic!("expected a resend, got {other:?}"),
        }
    }

    async fn refusal(&mut self) -> Refusal {
        match self.answer().await {
            Answer::Refusal(r) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Nothing arrives on the control queue for [`QUIET`].
    async fn no_answer(&mut self) {
        if let Ok(delivery) = tokio::time::timeout(QUIET, self.answers.next()).await {
            let text = delivery
                .and_then(Result::ok)
                .map(|d| String::from_utf8_lossy(&d.data).into_owned());
            panic!("expected silence on cloud-c's control queue, got {text:?}");
        }
    }

    /// Publishes a chunk for an unknown transfer and waits for its
    /// refusal: cloud-b consumes its data queue in order, so once this
    /// answer is here, everything published before it has been handled.
    async fn wait_until_all_handled(&mut self, probe: &str) {
        let id = tid(probe);
        let payload = [1u8; 16];
        self.publish_message(Chunk::new(id.clone(), 0, &payload).into())
            .await;
        let refusal = self.refusal().await;
        assert_eq!(
            (refusal.transfer_id, refusal.reason),
            (id, RefusalReason::UnknownTransfer),
            "the first answer is the probe's: nothing answered what came before it"
        );
    }
}

fn tid(s: &str) -> TransferId {
    TransferId::new(s).expect("transfer id")
}

fn random_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|_| rand::random::<u8>()).collect()
}

fn manifest(
    transfer: &str,
    object: &str,
    kind: ObjectKind,
    bytes: &[u8],
    metadata: BTreeMap<String, String>,
) -> Manifest {
    Manifest::new(ManifestSpec {
        transfer_id: tid(transfer),
        object_id: ObjectId::new(object).expect("object id"),
        kind,
        size: bytes.len() as u64,
        chunk_size: CHUNK_SIZE,
        sha256: Sha256Digest::of(bytes),
        metadata,
        sender: CloudId::new(SENDER).expect("cloud id"),
        receiver: CloudId::new(RECEIVER).expect("cloud id"),
    })
    .expect("a valid manifest")
}

/// Chunk `index` of `bytes`, encoded.
fn chunk_frame(manifest: &Manifest, bytes: &[u8], index: u64) -> Vec<u8> {
    let start = usize::try_from(index * CHUNK_SIZE).expect("small object");
    let end = (start + CHUNK_SIZE as usize).min(bytes.len());
    Chunk::new(manifest.transfer_id().clone(), index, &bytes[start..end])
        .encode()
        .expect("encodes")
}

/// Announces `manifest` and checks that cloud-b asks for every chunk.
async fn announce(raw: &mut RawCloud, manifest: &Manifest) {
    raw.publish_message(manifest.clone().into()).await;
    let resend = raw.resend().await;
    assert_eq!(resend.transfer_id(), manifest.transfer_id());
    assert_eq!(
        resend.missing(),
        [ChunkRange::new(0, manifest.chunk_count())],
        "a new transfer: everything is asked for"
    );
}

async fn send_all_chunks(raw: &RawCloud, manifest: &Manifest, bytes: &[u8]) {
    for index in 0..manifest.chunk_count() {
        raw.publish("chunk", &chunk_frame(manifest, bytes, index))
            .await;
    }
}

fn transfers_dir(broker: &TestBroker, sub: &str) -> PathBuf {
    broker.data_dir.join("transfers").join(sub)
}

fn file_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The staging, receipt and object files cloud-b holds for `transfer`
/// (or under `object`'s name).
fn traces(broker: &TestBroker, transfer: &str, object: &str) -> Vec<String> {
    let prefix = format!("{transfer}.");
    let mut found: Vec<String> = ["staging", "receipts"]
        .into_iter()
        .flat_map(|sub| {
            file_names(&transfers_dir(broker, sub))
                .into_iter()
                .filter(|n| n.starts_with(&prefix))
                .map(move |n| format!("{sub}/{n}"))
        })
        .collect();
    if transfers_dir(broker, "objects").join(object).exists() {
        found.push(format!("objects/{object}"));
    }
    found
}

/// A federation with cloud-c's RabbitMQ user, cloud-b's broker connected
/// to RabbitMQ (its queues exist), and the test connected as cloud-c.
async fn setup() -> (Federation, TestBroker, RawCloud) {
    let fed = Federation::start(&["cloud-a", RECEIVER, SENDER]);
    let b = fed.broker(RECEIVER, "");
    b.daemon
        .wait_for_log("connected to RabbitMQ", Duration::from_secs(30));
    let raw = RawCloud::connect(&fed).await;
    (fed, b, raw)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_chunk_is_asked_for_again_and_the_transfer_then_commits() {
    let (_fed, b, mut raw) = setup().await;
    let bytes = random_bytes(OBJECT_LEN);
    let m = manifest(
        "t-corrupt",
        "cloud-c.corrupt",
        ObjectKind::Object,
        &bytes,
        BTreeMap::new(),
    );
    assert_eq!(m.chunk_count(), 5);
    announce(&mut raw, &m).await;

    const DAMAGED: u64 = 2;
    for index in 0..m.chunk_count() {
        let mut frame = chunk_frame(&m, &bytes, index);
        if index == DAMAGED {
            // The payload is the frame's tail: its digest no longer matches.
            let last = frame.len() - 1;
            frame[last] ^= 0x01;
            let decoded = Chunk::decode(&frame).expect("still a well-formed frame");
            assert!(!decoded.is_intact());
        }
        raw.publish("chunk", &frame).await;
    }
    let resend = raw.resend().await;
    assert_eq!(resend.transfer_id(), m.transfer_id());
    assert_eq!(
        resend.missing(),
        [ChunkRange::single(DAMAGED)],
        "exactly the damaged chunk is asked for again"
    );

    raw.publish("chunk", &chunk_frame(&m, &bytes, DAMAGED))
        .await;
    let receipt = match raw.answer().await {
        Answer::Receipt(r) => r,
        other => panic!("expected a receipt, got {other:?}\n{}", b.daemon.log_text()),
    };
    assert!(receipt.matches(&m), "{receipt:?} is the commit of {m:?}");
    let committed = std::fs::read(transfers_dir(&b, "objects").join("cloud-c.corrupt"))
        .expect("the committed object");
    assert_eq!(Sha256Digest::of(&committed), m.sha256());
    assert_eq!(committed, bytes);
    let staging: Vec<String> = file_names(&transfers_dir(&b, "staging"))
        .into_iter()
        .filter(|n| n.starts_with("t-corrupt."))
        .collect();
    assert!(staging.is_empty(), "left in staging: {staging:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_without_a_manifest_is_refused_as_unknown_transfer() {
    let (_fed, b, mut raw) = setup().await;
    let bytes = random_bytes(OBJECT_LEN);
    let m = manifest(
        "t-never-announced",
        "cloud-c.never-announced",
        ObjectKind::Object,
        &bytes,
        BTreeMap::new(),
    );
    raw.publish("chunk", &chunk_frame(&m, &bytes, 1)).await;
    let refusal = raw.refusal().await;
    assert_eq!(&refusal.transfer_id, m.transfer_id());
    assert_eq!(refusal.reason, RefusalReason::UnknownTransfer);
    assert_eq!(
        refusal.detail,
        "cloud-b has no manifest for transfer t-never-announced"
    );
    assert_eq!(
        traces(&b, "t-never-announced", "cloud-c.never-announced"),
        Vec::<String>::new()
    );
    assert!(
        file_names(&transfers_dir(&b, "staging")).is_empty(),
        "nothing staged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_whose_size_and_chunk_count_disagree_is_refused_with_the_numbers() {
    let (_fed, b, mut raw) = setup().await;
    let bytes = random_bytes(OBJECT_LEN);
    let m = manifest(
        "t-miscounted",
        "cloud-c.miscounted",
        ObjectKind::Object,
        &bytes,
        BTreeMap::new(),
    );
    let json = String::from_utf8(Message::from(m.clone()).encode().expect("encodes"))
        .expect("JSON is UTF-8");
    assert!(json.contains("\"chunk_count\":5"), "{json}");
    let edited = json.replace("\"chunk_count\":5", "\"chunk_count\":3");
    raw.publish("manifest", edited.as_bytes()).await;

    let refusal = raw.refusal().await;
    assert_eq!(&refusal.transfer_id, m.transfer_id());
    assert_eq!(refusal.reason, RefusalReason::InvalidManifest);
    assert_eq!(
        refusal.detail,
        format!("{OBJECT_LEN} bytes in chunks of 65536 make 5 chunks, but the manifest declares 3")
    );
    assert_eq!(
        traces(&b, "t-miscounted", "cloud-c.miscounted"),
        Vec::<String>::new()
    );
    assert!(
        file_names(&transfers_dir(&b, "staging")).is_empty(),
        "nothing staged"
    );
}

/// A VM package's metadata: the OVF in pieces, the instance, a reservation.
fn package_metadata(ovf: &str) -> BTreeMap<String, String> {
    let mut metadata = ovf_to_metadata(ovf);
    metadata.insert("instance".into(), "vm-1".into());
    metadata.insert("reservation".into(), "r-1".into());
    metadata
}

/// Sends a whole image and returns cloud-b's refusal of it.
async fn refused_image(raw: &mut RawCloud, transfer: &str, disk: &[u8], ovf: &str) -> Refusal {
    let m = manifest(
        transfer,
        &format!("cloud-c.{transfer}.qcow2"),
        ObjectKind::Image,
        disk,
        package_metadata(ovf),
    );
    announce(raw, &m).await;
    send_all_chunks(raw, &m, disk).await;
    let refusal = raw.refusal().await;
    assert_eq!(&refusal.transfer_id, m.transfer_id());
    assert_eq!(refusal.reason, RefusalReason::InvalidContent, "{refusal:?}");
    refusal
}

#[tokio::test(flavor = "multi_thread")]
async fn image_packages_that_are_not_a_qcow2_or_whose_ovf_does_not_parse_are_refused() {
    let (fed, b, mut raw) = setup().await;
    let spec = InstanceSpec {
        name: "vm-1".into(),
        vcpu: 1,
        memory_mib: 64,
        disk_bytes: 1 << 20,
    };

    // Random bytes with a valid OVF that gives their exact length.
    let not_qcow2 = random_bytes(OBJECT_LEN);
    let good_ovf = ovf::generate(&spec, "vm-1.qcow2", not_qcow2.len() as u64);
    ovf::parse(&good_ovf).expect("the generated OVF parses");
    let refusal = refused_image(&mut raw, "t-not-qcow2", &not_qcow2, &good_ovf).await;
    assert!(
        refusal
            .detail
            .contains("is not a qcow2 image: qemu-img says format raw"),
        "{}",
        refusal.detail
    );

    // A real qcow2 with an OVF cut in half.
    let qcow2_path = fed.dir.path().join("real.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&qcow2_path)
        .arg("1M")
        .status()
        .expect("qemu-img runs");
    assert!(made.success(), "qemu-img create");
    let qcow2 = std::fs::read(&qcow2_path).expect("read the qcow2");
    let ovf = ovf::generate(&spec, "vm-1.qcow2", qcow2.len() as u64);
    let cut = &ovf[..ovf.len() / 2];
    assert!(ovf::parse(cut).is_err());
    let refusal = refused_image(&mut raw, "t-bad-ovf", &qcow2, cut).await;
    assert!(
        refusal.detail.starts_with("OVF: not well-formed XML"),
        "{}",
        refusal.detail
    );

    // Nothing imported, nothing committed, nothing left staged.
    let mut client = operator(&b, RECEIVER).await;
    let instances = client
        .list_instances(ListInstancesRequest {})
        .await
        .expect("ListInstances")
        .into_inner()
        .instances;
    assert!(instances.is_empty(), "{instances:#?}");
    assert_eq!(
        file_names(&b.data_dir.join("cloud/disks")),
        Vec::<String>::new()
    );
    for transfer in ["t-not-qcow2", "t-bad-ovf"] {
        assert_eq!(
            traces(&b, transfer, &format!("cloud-c.{transfer}.qcow2")),
            Vec::<String>::new()
        );
    }
    assert_eq!(
        file_names(&transfers_dir(&b, "objects")),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sender_cannot_speak_in_another_cloud_s_name() {
    let (_fed, b, mut raw) = setup().await;
    let bytes = random_bytes(OBJECT_LEN);

    // A manifest that names cloud-a as its sender, published as cloud-c:
    // dropped without an answer and without admission.
    let mut spec = manifest(
        "t-impostor",
        "cloud-a.impostor",
        ObjectKind::Object,
        &bytes,
        BTreeMap::new(),
    )
    .spec()
    .clone();
    spec.sender = CloudId::new("cloud-a").expect("cloud id");
    let impostor = Manifest::new(spec).expect("valid");
    raw.publish_message(impostor.clone().into()).await;
    raw.wait_until_all_handled("t-probe-1").await;
    raw.no_answer().await;
    assert_eq!(
        traces(&b, "t-impostor", "cloud-a.impostor"),
        Vec::<String>::new()
    );

    // The same manifest with cloud-a's user_id: RabbitMQ itself refuses a
    // user_id that is not the publisher's login, and closes the channel.
    let forging = confirm_channel(&raw.connection).await;
    let body = Message::from(impostor).encode().expect("encodes");
    let outcome = tokio::time::timeout(ANSWER_TIMEOUT, async {
        match forging
            .basic_publish(
                "".into(),
                format!("{RECEIVER}.transfers.data").as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &body,
                properties("manifest", &user_of(FEDERATION, "cloud-a")),
            )
            .await
        {
            Ok(confirm) => confirm.await,
            Err(e) => Err(e),
        }
    })
    .await
    .expect("RabbitMQ answers the forged publication in time");
    let error = outcome.expect_err("a forged user_id is refused");
    match error.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => {
            assert_eq!(
                amqp.kind(),
                &AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED),
                "{error}"
            );
            assert!(amqp.get_message().as_str().contains("user_id"), "{error}");
        }
        other => panic!("expected PRECONDITION_FAILED, got {other:?}"),
    }
    assert!(
        !forging.status().connected(),
        "RabbitMQ closed the forging channel"
    );

    // Nothing of it reached cloud-b; cloud-c's own channel still works.
    raw.wait_until_all_handled("t-probe-2").await;
    raw.no_answer().await;
    assert_eq!(
        traces(&b, "t-impostor", "cloud-a.impostor"),
        Vec::<String>::new()
    );
    assert!(
        file_names(&transfers_dir(&b, "staging")).is_empty(),
        "nothing staged"
    );
}
