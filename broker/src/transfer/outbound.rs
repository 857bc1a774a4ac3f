//! The sending side: one task per outgoing transfer drives an
//! [`intercloud_transfer::Sender`] over the shared AMQP link, reading each
//! chunk from the source file when the window has room, a few ahead of the
//! one being published (so memory is the window, whatever the size), and a
//! dispatcher routes the receivers' answers from
//! `<cloud>.transfers.control` to the right task.
//!
//! Every outgoing transfer has a record in `<data_dir>/transfers/outgoing/`
//! (its manifest, the source file, what it is for, and once over its
//! outcome), written before the manifest is published: a broker that
//! crashes mid-transfer announces the manifest again at start, and the
//! receiver answers with what it still lacks.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use intercloud_proto::v1::TransferDirection;
use intercloud_transfer::{
    Chunk, ChunkToSend, CloudId, Manifest, ManifestSpec, Message, ObjectId, ObjectKind, Outcome,
    Receipt, Sender, SenderConfig, SenderState, Sha256Digest, TransferId,
};
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::FieldTable;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use tokio::sync::{mpsc, watch};

use super::amqp::{self, Link, PublishError};
use super::view::{self, TransferView};

/// What an outgoing transfer is for: what the broker does when it ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Purpose {
    /// A replica of a federated object this cloud owns.
    Replica {
        /// The object's name.
        name: String,
    },
    /// A copy of an object this cloud holds for `owner`, sent back to it.
    Return {
        /// The object's name.
        name: String,
    },
    /// The VM package of an instance migrating away.
    Migration {
        /// The instance.
        instance: String,
        /// The target's reservation.
        reservation: String,
    },
}

/// How an outgoing transfer ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    /// The receiver committed exactly what the manifest describes.
    pub delivered: bool,
    /// The refusal or error, in words.
    pub detail: String,
    /// The receipt, when delivered (its JSON message).
    pub receipt: Option<String>,
}

impl Finished {
    /// The receipt, decoded.
    pub fn receipt(&self) -> Option<Receipt> {
        match Message::decode(self.receipt.as_ref()?.as_bytes()) {
            Ok(Message::Receipt(r)) => Some(r),
            _ => None,
        }
    }
}

/// The durable record of an outgoing transfer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutgoingRecord {
    /// The manifest, as its JSON message.
    pub manifest: String,
    /// The file the chunks are read from.
    pub source: PathBuf,
    /// What it is for.
    pub purpose: Purpose,
    /// Set once it is over.
    pub finished: Option<Finished>,
}

impl OutgoingRecord {
    /// The manifest, decoded.
    pub fn manifest(&self) -> Result<Manifest, String> {
        match Message::decode(self.manifest.as_bytes()) {
            Ok(Message::Manifest(m)) => Ok(m),
            Ok(other) => Err(format!("a {} message, not a manifest", other.kind())),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// What to send.
#[derive(Clone, Debug)]
pub struct SendRequest {
    /// The file; it must not change until the transfer is over.
    pub source: PathBuf,
    /// The object's id at the receiver.
    pub object_id: ObjectId,
    /// Image or object.
    pub kind: ObjectKind,
    /// Carried in the manifest.
    pub metadata: BTreeMap<String, String>,
    /// The receiving cloud.
    pub to: CloudId,
    /// What it is for.
    pub purpose: Purpose,
    /// The source's SHA-256 and length, if the caller knows them (else the
    /// file is read once to compute them).
    pub digest: Option<(Sha256Digest, u64)>,
}

/// Called when an outgoing transfer ends (on the blocking pool), after its
/// outcome is recorded.
pub trait OutboundHooks: Send + Sync {
    /// `record.finished` is set.
    fn finished(&self, record: &OutgoingRecord);
}

/// Outgoing transfers.
pub struct Outbox {
    dir: PathBuf,
    local: CloudId,
    links: watch::Receiver<Option<Link>>,
    view: Arc<TransferView>,
    config: SenderConfig,
    chunk_size: u64,
    routes: Mutex<HashMap<TransferId, (CloudId, mpsc::UnboundedSender<Message<'static>>)>>,
    outcomes: Mutex<HashMap<TransferId, watch::Sender<Option<Finished>>>>,
    hooks: Arc<dyn OutboundHooks>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn new_transfer_id() -> TransferId {
    let bytes: [u8; 12] = rand::random();
    // Hex is always a valid id.
    TransferId::new(&format!("t{}", hex::encode(bytes))).unwrap_or_else(|_| unreachable!())
}

/// SHA-256 and length of a file, streamed.
pub fn file_digest(path: &Path) -> std::io::Result<(Sha256Digest, u64)> {
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut hasher = sha2::Sha256::new();
    let mut len = 0u64;
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(buffer.get(..n).unwrap_or_default());
        len += n as u64;
    }
    Ok((Sha256Digest::from_bytes(hasher.finalize().into()), len))
}

impl Outbox {
    /// An outbox keeping its records under `dir`.
    pub fn new(
        dir: PathBuf,
        local: CloudId,
        links: watch::Receiver<Option<Link>>,
        view: Arc<TransferView>,
        config: SenderConfig,
        chunk_size: u64,
        hooks: Arc<dyn OutboundHooks>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            local,
            links,
            view,
            config,
            chunk_size,
            routes: Mutex::new(HashMap::new()),
            outcomes: Mutex::new(HashMap::new()),
            hooks,
        })
    }

    fn record_path(&self, id: &TransferId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn write_record(&self, id: &TransferId, record: &OutgoingRecord) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        intercloud_trust::files::write_atomically(&self.record_path(id), &json, 0o600)
    }

    /// Starts a transfer: hashes the source, records it, spawns its task.
    /// Returns its id at once; [`watch`](Self::watch) tells when it ends.
    pub async fn send(self: &Arc<Self>, request: SendRequest) -> Result<TransferId, String> {
        let (sha256, size) = match request.digest {
            Some(known) => known,
            None => {
                let source = request.source.clone();
                tokio::task::spawn_blocking(move || file_digest(&source))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("{}: {e}", request.source.display()))?
            }
        };
        let id = new_transfer_id();
        let manifest = Manifest::new(ManifestSpec {
            transfer_id: id.clone(),
            object_id: request.object_id,
            kind: request.kind,
            size,
            chunk_size: self.chunk_size,
            sha256,
            metadata: request.metadata,
            sender: self.local.clone(),
            receiver: request.to,
        })
        .map_err(|e| format!("manifest: {e}"))?;
        let record = OutgoingRecord {
            manifest: String::from_utf8(
                Message::from(manifest.clone())
                    .encode()
                    .map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?,
            source: request.source,
            purpose: request.purpose,
            finished: None,
        };
        let this = self.clone();
        let record_id = id.clone();
        let written = record.clone();
        tokio::task::spawn_blocking(move || this.write_record(&record_id, &written))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("recording the transfer: {e}"))?;
        self.spawn(manifest, record);
        Ok(id)
    }

    /// Resumes every unfinished transfer on record (at start). Returns how
    /// many.
    pub fn resume(self: &Arc<Self>) -> std::io::Result<usize> {
        let mut resumed = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let record: OutgoingRecord = match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "unreadable outgoing transfer record; left alone");
                    continue;
                }
            };
            if record.finished.is_some() {
                continue;
            }
            match record.manifest() {
                Ok(manifest) => {
                    tracing::info!(transfer_id = %manifest.transfer_id(), to = %manifest.receiver(), "outgoing transfer resumed");
                    self.spawn(manifest, record);
                    resumed += 1;
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "unreadable manifest in an outgoing record; left alone")
                }
            }
        }
        Ok(resumed)
    }

    /// Every record, finished or not.
    pub fn records(&self) -> Vec<OutgoingRecord> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().and_then(|x| x.to_str()) == Some("json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }

    /// Tells when transfer `id` ends (`None` if this process did not start
    /// or resume it).
    pub fn watch(&self, id: &TransferId) -> Option<watch::Receiver<Option<Finished>>> {
        let outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        outcomes.get(id).map(watch::Sender::subscribe)
    }

    fn spawn(self: &Arc<Self>, manifest: Manifest, record: OutgoingRecord) {
        let id = manifest.transfer_id().clone();
        let (control, inbox) = mpsc::unbounded_channel();
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), (manifest.receiver().clone(), control));
        self.outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), watch::channel(None).0);
        self.view.start(view::new_transfer(
            &manifest,
            TransferDirection::Outgoing,
            view::state::ANNOUNCING,
        ));
        let this = self.clone();
        tokio::spawn(async move {
            let finished = match File::open(&record.source) {
                Ok(file) => this.drive(manifest, Arc::new(file), inbox).await,
                Err(e) => Finished {
                    delivered: false,
                    detail: format!("{}: {e}", record.source.display()),
                    receipt: None,
                },
            };
            this.finish(&id, record, finished).await;
        });
    }

    async fn finish(
        self: &Arc<Self>,
        id: &TransferId,
        mut record: OutgoingRecord,
        finished: Finished,
    ) {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        let (state, detail) = if finished.delivered {
            (view::state::COMMITTED, String::new())
        } else {
            (view::state::REFUSED, finished.detail.clone())
        };
        self.view
            .set_state(&view::outgoing(id.as_str()), state, &detail);
        tracing::info!(transfer_id = %id, delivered = finished.delivered, detail = %finished.detail, "outgoing transfer over");
        record.finished = Some(finished.clone());
        let this = self.clone();
        let record_id = id.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = this.write_record(&record_id, &record) {
                tracing::error!(transfer_id = %record_id, error = %e, "cannot record the outcome");
            }
            this.hooks.finished(&record);
        })
        .await;
        if let Some(outcome) = self
            .outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            outcome.send_replace(Some(finished));
        }
    }

    /// One transfer's loop: announce, publish what the window allows, apply
    /// confirms and answers, announce again after silence or a reconnect.
    async fn drive(
        &self,
        manifest: Manifest,
        file: Arc<File>,
        mut inbox: mpsc::UnboundedReceiver<Message<'static>>,
    ) -> Finished {
        let id = manifest.transfer_id().clone();
        let queue = amqp::data_queue(manifest.receiver());
        let announcement = match Message::from(manifest.clone()).encode() {
            Ok(b) => b,
            Err(e) => {
                return Finished {
                    delivered: false,
                    detail: format!("the manifest does not encode: {e}"),
                    receipt: None,
                };
            }
        };
        let mut sender = Sender::new(manifest, self.config, Instant::now());
        let mut links = self.links.clone();
        let mut generation = 0;
        let mut link: Option<Link> = None;
        // Set when a publication shows the link is gone.
        let mut lost = false;
        let mut announce = true;
        let mut confirms = FuturesUnordered::new();
        let mut ticker = tokio::time::interval(Duration::from_millis(250));
        let mut shown_state = String::new();
        loop {
            if let Some(outcome) = sender.outcome() {
                return match outcome {
                    Outcome::Delivered(receipt) => Finished {
                        delivered: true,
                        detail: String::new(),
                        receipt: Message::from(receipt.clone())
                            .encode()
                            .ok()
                            .and_then(|b| String::from_utf8(b).ok()),
                    },
                    Outcome::Refused(refusal) => Finished {
                        delivered: false,
                        detail: format!("refused: {}: {}", refusal.reason, refusal.detail),
                        receipt: None,
                    },
                    Outcome::ReceiptMismatch(receipt) => Finished {
                        delivered: false,
                        detail: format!(
                            "the receiver committed something else: {} bytes, sha256 {}",
                            receipt.size, receipt.sha256
                        ),
                        receipt: None,
                    },
                };
            }
            let current = match &link {
                Some(l) if l.is_up() && !lost => l.clone(),
                _ => {
                    if link.take().is_some() {
                        // Every unconfirmed chunk is published again on
                        // the next connection.
                        sender.on_connection_lost();
                        confirms = FuturesUnordered::new();
                    }
                    lost = false;
                    let up = links.borrow().as_ref().is_some_and(Link::is_up);
                    if !up {
                        let state = if shown_state.is_empty() {
                            view::state::ANNOUNCING
                        } else {
                            shown_state.as_str()
                        };
                        self.view.set_state(
                            &view::outgoing(id.as_str()),
                            state,
                            "waiting for RabbitMQ",
                        );
                    }
                    let Some(l) = amqp::next_link(&mut links, generation).await else {
                        return Finished {
                            delivered: false,
                            detail: "the broker is stopping".into(),
                            receipt: None,
                        };
                    };
                    generation = l.generation;
                    announce = true;
                    link = Some(l.clone());
                    l
                }
            };
            if announce {
                match current
                    .publish_confirmed(&queue, "manifest", &announcement)
                    .await
                {
                    Ok(()) => announce = false,
                    Err(e) if e.link_lost() => {
                        tracing::warn!(transfer_id = %id, error = %e, "cannot announce; waiting for the connection");
                        lost = true;
                        continue;
                    }
                    // The receiver's queue does not exist: its broker has
                    // never connected, or the cloud does not exist. Durable
                    // queues do not come and go, so waiting will not help.
                    Err(PublishError::Unroutable) => {
                        return Finished {
                            delivered: false,
                            detail: format!(
                                "no queue {queue}: {} is not a member, or its broker has never connected to RabbitMQ",
                                sender.manifest().receiver()
                            ),
                            receipt: None,
                        };
                    }
                    Err(e) => {
                        self.view.set_state(
                            &view::outgoing(id.as_str()),
                            view::state::ANNOUNCING,
                            &e.to_string(),
                        );
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            // What the window allows now, read and framed on the blocking
            // pool a few at a time (the next ones are read while one is
            // published), published in order.
            let due: Vec<ChunkToSend> = std::iter::from_fn(|| sender.poll_chunk()).collect();
            let mut frames = futures::stream::iter(due)
                .map(|chunk| frame(file.clone(), id.clone(), chunk))
                .buffered(READ_AHEAD);
            while let Some((index, body)) = frames.next().await {
                let body = match body {
                    Ok(b) => b,
                    Err(detail) => {
                        return Finished {
                            delivered: false,
                            detail,
                            receipt: None,
                        };
                    }
                };
                match current.publish(&queue, "chunk", &body).await {
                    Ok(confirm) => {
                        let generation = current.generation;
                        confirms.push(async move {
                            (index, generation, amqp::confirm_within(confirm).await)
                        });
                    }
                    Err(e) => {
                        // The chunks polled but not published are
                        // unconfirmed: the next connection publishes them.
                        tracing::warn!(transfer_id = %id, error = %e, "publishing failed; waiting for the connection");
                        lost = true;
                        break;
                    }
                }
            }
            if lost {
                continue;
            }
            tokio::select! {
                Some((index, of_generation, result)) = confirms.next(), if !confirms.is_empty() => {
                    if of_generation == generation {
                        match result {
                            Ok(()) => {
                                sender.on_confirm(Instant::now(), index);
                            }
                            Err(e) if e.link_lost() => {
                                tracing::warn!(transfer_id = %id, index, error = %e, "no confirm; waiting for the connection");
                                lost = true;
                            }
                            Err(e) => {
                                tracing::warn!(transfer_id = %id, index, error = %e, "chunk not taken; publishing it again");
                                sender.on_nack(index);
                                tokio::time::sleep(Duration::from_millis(500)).await;
                            }
                        }
                    }
                }
                message = inbox.recv() => {
                    let Some(message) = message else { continue };
                    let now = Instant::now();
                    let applied = match &message {
                        Message::Resend(r) => sender.on_resend(now, r).map(|n| {
                            tracing::debug!(transfer_id = %id, chunks = n, "receiver asks for chunks");
                        }),
                        Message::Receipt(r) => sender.on_receipt(r).map(|_| ()),
                        Message::Refusal(r) => sender.on_refusal(r).map(|_| ()),
                        _ => Ok(()),
                    };
                    if let Err(e) = applied {
                        tracing::warn!(transfer_id = %id, error = %e, "an answer the sender cannot apply");
                    }
                }
                _ = ticker.tick() => {
                    if sender.poll_reannounce(Instant::now()) {
                        tracing::info!(transfer_id = %id, "no answer; announcing the manifest again");
                        announce = true;
                    }
                }
            }
            let state = match sender.state() {
                SenderState::AwaitingReply => view::state::ANNOUNCING,
                SenderState::Sending => view::state::SENDING,
                SenderState::AwaitingReceipt => view::state::AWAITING_RECEIPT,
                SenderState::Finished(_) => continue,
            };
            if state != shown_state {
                self.view.set_state(&view::outgoing(id.as_str()), state, "");
                shown_state = state.to_owned();
            }
            self.view.progress(
                &view::outgoing(id.as_str()),
                &sender.progress(Instant::now()),
            );
        }
    }

    /// Routes answers from this cloud's control queue to the transfers
    /// they belong to, until `stopped`.
    pub async fn run_control(
        self: Arc<Self>,
        queue: String,
        federation: intercloud_trust::FederationDomain,
        stopped: impl std::future::Future<Output = ()>,
    ) {
        let mut links = self.links.clone();
        let dispatch = async {
            let mut generation = 0;
            loop {
                let Some(link) = amqp::next_link(&mut links, generation).await else {
                    return;
                };
                generation = link.generation;
                if let Err(e) = self.consume_control(&link, &queue, &federation).await {
                    tracing::warn!(error = %e, "the control consumer stopped; waiting for the next connection");
                }
            }
        };
        tokio::select! {
            () = dispatch => {}
            () = stopped => {}
        }
    }

    async fn consume_control(
        &self,
        link: &Link,
        queue: &str,
        federation: &intercloud_trust::FederationDomain,
    ) -> Result<(), lapin::Error> {
        let channel = link.connection.create_channel().await?;
        let mut consumer = channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            let delivery = tokio::select! {
                d = consumer.next() => d,
                _ = ticker.tick() => {
                    if link.is_up() {
                        continue;
                    }
                    return Ok(());
                }
            };
            let Some(delivery) = delivery else {
                return Ok(());
            };
            let delivery = delivery?;
            self.route(&delivery.properties, &delivery.data, federation);
            channel
                .basic_ack(delivery.delivery_tag, BasicAckOptions::default())
                .await?;
        }
    }

    fn route(
        &self,
        properties: &lapin::BasicProperties,
        body: &[u8],
        federation: &intercloud_trust::FederationDomain,
    ) {
        let from = match amqp::sender_cloud(properties, federation) {
            Ok(c) => c,
            Err(why) => {
                tracing::warn!(%why, "a control message nobody vouches for; dropped");
                return;
            }
        };
        let message = match Message::decode(body) {
            Ok(Message::Chunk(_)) | Ok(Message::Manifest(_)) => {
                tracing::warn!(%from, "a data message on the control queue; dropped");
                return;
            }
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%from, error = %e, "malformed control message; dropped");
                return;
            }
        };
        let id = message.transfer_id().clone();
        let owned: Message<'static> = match message {
            Message::Resend(r) => Message::Resend(r),
            Message::Receipt(r) => Message::Receipt(r),
            Message::Refusal(r) => Message::Refusal(r),
            _ => return,
        };
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        match routes.get(&id) {
            // Only the transfer's receiver may answer for it.
            Some((receiver, _)) if *receiver != from => {
                tracing::warn!(transfer_id = %id, %from, %receiver, "an answer from a cloud that is not the receiver; dropped")
            }
            Some((_, route)) => {
                let _ = route.send(owned);
            }
            None => {
                tracing::debug!(transfer_id = %id, %from, "an answer for a transfer that is over or unknown; dropped")
            }
        }
    }
}

/// How many chunks are read and framed ahead of the one being published.
const READ_AHEAD: usize = 4;

/// Reads chunk `chunk` of the source and frames it (its digest computed),
/// on the blocking pool. Returns its index and the frame, or why not.
async fn frame(
    file: Arc<File>,
    id: TransferId,
    chunk: ChunkToSend,
) -> (u64, Result<Vec<u8>, String>) {
    let index = chunk.index;
    let framed = tokio::task::spawn_blocking(move || {
        // The payload is read straight into the frame, after the room for
        // its header: no copy.
        let len = usize::try_from(chunk.len).map_err(|e| format!("chunk {index}: {e}"))?;
        let header = Chunk::header_len(&id);
        let mut frame = vec![0u8; header + len];
        file.read_exact_at(&mut frame[header..], chunk.offset)
            .map_err(|e| format!("reading the source: {e}"))?;
        Chunk::frame_in_place(&id, index, &mut frame)
            .map_err(|e| format!("chunk {index} does not frame: {e}"))?;
        Ok(frame)
    })
    .await
    .unwrap_or_else(|e| Err(format!("reading chunk {index}: {e}")));
    (index, framed)
}
