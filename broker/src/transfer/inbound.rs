//! The receiving side: deliveries from `<cloud>.transfers.data` through
//! [`intercloud_transfer::Receiver`]s into the [`TransferStore`], and the
//! answers back to each sender's control queue.
//!
//! [`Engine`] is synchronous (it owns the files; it runs on the blocking
//! pool, one batch at a time): for a batch of deliveries it writes every
//! chunk, fsyncs each staging file once, then tells the receivers, persists
//! bitmaps, verifies and commits what is complete, and returns the answers
//! to publish. [`run`] is the AMQP driver around it: it consumes with a
//! prefetch window, hands the engine what has arrived, publishes the
//! answers (confirmed), and only then acks the batch — so an ack always
//! means "on disk". A crash anywhere loses at most unacked deliveries,
//! which RabbitMQ hands out again.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::{FutureExt as _, StreamExt as _};
use intercloud_proto::v1::TransferDirection;
use intercloud_transfer::recovery::Recovery;
use intercloud_transfer::{
    ChunkDecision, CloudId, Manifest, ManifestAnswer, Message, PrefixDigest, Receipt, Receiver,
    ReceiverConfig, Refusal, RefusalReason, Timeout, TransferId, Verdict,
};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::sync::watch;

use super::amqp::{self, Link};
use super::store::{Found, TransferStore};
use super::view::{self, TransferView};

/// What the broker does with objects beyond storing them: checks before a
/// commit, actions after one, and after an outgoing transfer ends.
pub trait Hooks: Send + Sync {
    /// Every chunk is here and the digest matches: may `staging` be
    /// committed as what `manifest` announces? `Err` refuses it with the
    /// reason and the words for the sender. Runs on the blocking pool.
    fn before_commit(
        &self,
        manifest: &Manifest,
        staging: &Path,
    ) -> Result<(), (RefusalReason, String)>;

    /// `manifest`'s object is committed at `path`. Runs on the blocking
    /// pool, before the receipt is published.
    fn after_commit(&self, manifest: &Manifest, receipt: &Receipt, path: &Path);

    /// A message of another `type` on the data queue (a `fetch`), from a
    /// cloud RabbitMQ vouched for. Runs on the blocking pool.
    fn other(&self, kind: &str, from: &CloudId, body: &[u8]) {
        tracing::warn!(%from, kind, len = body.len(), "a message of an unknown type on the data queue; dropped");
    }
}

/// Hooks that accept everything and do nothing more.
#[derive(Debug, Default)]
pub struct NoHooks;

impl Hooks for NoHooks {
    fn before_commit(&self, _: &Manifest, _: &Path) -> Result<(), (RefusalReason, String)> {
        Ok(())
    }
    fn after_commit(&self, _: &Manifest, _: &Receipt, _: &Path) {}
}

/// One delivery, as the engine sees it.
pub struct Incoming {
    /// The cloud RabbitMQ vouches for (`user_id`), or why there is none.
    pub from: Result<CloudId, String>,
    /// The AMQP `type` property.
    pub kind: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// An answer to publish to a sender's control queue.
#[derive(Debug)]
pub struct Reply {
    /// The sender.
    pub to: CloudId,
    /// The message type (`resend`, `receipt`, `refusal`).
    pub kind: &'static str,
    /// The encoded message.
    pub body: Vec<u8>,
}

fn reply(to: &CloudId, message: Message<'_>) -> Option<Reply> {
    match message.encode() {
        Ok(body) => Some(Reply {
            to: to.clone(),
            kind: message.kind(),
            body,
        }),
        Err(e) => {
            tracing::error!(error = %e, "an answer does not encode; not sent");
            None
        }
    }
}

/// The receiving state of every incoming transfer.
pub struct Engine {
    store: TransferStore,
    local: CloudId,
    config: ReceiverConfig,
    reserve_bytes: u64,
    receivers: HashMap<TransferId, Receiver>,
    /// The running digest of each receiver's leading chunks (memory only).
    prefixes: HashMap<TransferId, PrefixDigest>,
    hooks: Arc<dyn Hooks>,
    view: Arc<TransferView>,
}

impl Engine {
    /// Opens the store and resumes what it holds (the restart).
    pub fn start(
        store: TransferStore,
        local: CloudId,
        config: ReceiverConfig,
        reserve_bytes: u64,
        hooks: Arc<dyn Hooks>,
        view: Arc<TransferView>,
    ) -> Result<Self, super::StoreError> {
        let mut engine = Self {
            store,
            local,
            config,
            reserve_bytes,
            receivers: HashMap::new(),
            prefixes: HashMap::new(),
            hooks,
            view,
        };
        let now = Instant::now();
        for recovered in engine.store.scan()? {
            let id = recovered.transfer_id;
            match recovered.outcome {
                Ok(Found::Receiving { manifest, bitmap }) => {
                    match Receiver::resume(manifest.clone(), bitmap, engine.config, now) {
                        Ok(receiver) => {
                            tracing::info!(transfer_id = %id, plan = ?recovered.plan, held = receiver.bitmap().count(), of = manifest.chunk_count(), "incoming transfer resumed");
                            engine.show(&receiver, view::state::RECEIVING, "");
                            engine
                                .prefixes
                                .insert(id.clone(), PrefixDigest::new(&manifest));
                            engine.receivers.insert(id, receiver);
                        }
                        Err(e) => {
                            tracing::error!(transfer_id = %id, error = %e, "cannot resume; discarded");
                            let _ = engine.store.discard(&id);
                        }
                    }
                }
                Ok(Found::Committed(_)) if recovered.plan == Recovery::FinishCommit => {
                    tracing::info!(transfer_id = %id, "commit finished after the restart");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(transfer_id = %id, error = %e, "unreadable transfer state; discarded");
                    let _ = engine.store.discard(&id);
                }
            }
        }
        Ok(engine)
    }

    fn show(&self, receiver: &Receiver, state: &str, detail: &str) {
        let id = view::incoming(receiver.manifest().transfer_id().as_str());
        if self.view.get(&id).is_none() {
            self.view.start(view::new_transfer(
                receiver.manifest(),
                TransferDirection::Incoming,
                state,
            ));
        }
        self.view.set_state(&id, state, detail);
        let done = receiver.received_bytes();
        self.view.progress(
            &id,
            &intercloud_transfer::Progress::new(done, receiver.manifest().size(), None),
        );
    }

    /// Handles a batch of deliveries; returns the answers to publish
    /// before the batch is acked.
    pub fn process(&mut self, batch: Vec<Incoming>) -> Vec<Reply> {
        let now = Instant::now();
        let mut replies = Vec::new();
        let mut written: Vec<(TransferId, u64)> = Vec::new();
        for incoming in &batch {
            let from = match &incoming.from {
                Ok(cloud) => cloud,
                Err(why) => {
                    tracing::warn!(%why, "a delivery nobody vouches for; dropped");
                    continue;
                }
            };
            if let Some(kind) = incoming.kind.as_deref()
                && !["manifest", "chunk"].contains(&kind)
            {
                self.hooks.other(kind, from, &incoming.body);
                continue;
            }
            let message = match Message::decode(&incoming.body) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(%from, error = %e, "malformed transfer message; dropped");
                    if let Some((_, refusal)) = e.refusal() {
                        replies.extend(reply(from, refusal.into()));
                    }
                    continue;
                }
            };
            match message {
                Message::Manifest(manifest) => {
                    replies.extend(self.on_manifest(now, from, manifest));
                }
                Message::Chunk(chunk) => {
                    if let Some(r) = self.on_chunk(now, from, &chunk, &mut written) {
                        replies.push(r);
                    }
                }
                other => {
                    tracing::warn!(%from, kind = other.kind(), "a control message on the data queue; dropped");
                }
            }
        }
        replies.extend(self.after_writes(written));
        replies
    }

    fn on_manifest(&mut self, now: Instant, from: &CloudId, manifest: Manifest) -> Option<Reply> {
        let id = manifest.transfer_id().clone();
        if manifest.sender() != from {
            tracing::warn!(%from, claimed = %manifest.sender(), transfer_id = %id, "a manifest in another cloud's name; dropped");
            return None;
        }
        if let Some(receiver) = self.receivers.get_mut(&id) {
            return match receiver.on_manifest(now, &manifest) {
                ManifestAnswer::Resend(r) => reply(from, r.into()),
                ManifestAnswer::Receipt(r) => reply(from, r.into()),
                ManifestAnswer::Refusal(r) => reply(from, r.into()),
            };
        }
        match self.store.receipt_record(&id) {
            Ok(Some(record)) => {
                return match ManifestAnswer::from_record(&record, &manifest) {
                    ManifestAnswer::Receipt(r) => reply(from, r.into()),
                    ManifestAnswer::Refusal(r) => reply(from, r.into()),
                    ManifestAnswer::Resend(r) => reply(from, r.into()),
                };
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(transfer_id = %id, error = %e, "unreadable receipt record");
                return reply(from, e.refusal(id).into());
            }
        }
        let receiver = match Receiver::admit(manifest, &self.local, self.config, now) {
            Ok(r) => r,
            Err(refusal) => return reply(from, refusal.into()),
        };
        if let Err(refusal) = self.admit(receiver.manifest()) {
            tracing::warn!(transfer_id = %id, %from, reason = %refusal.reason, detail = %refusal.detail, "incoming transfer refused");
            return reply(from, refusal.into());
        }
        tracing::info!(transfer_id = %id, %from, object = %receiver.manifest().object_id(), size = receiver.manifest().size(), "incoming transfer admitted");
        self.show(&receiver, view::state::RECEIVING, "");
        let missing = receiver.missing();
        self.prefixes
            .insert(id.clone(), PrefixDigest::new(receiver.manifest()));
        self.receivers.insert(id, receiver);
        reply(from, missing.into())
    }

    fn admit(&self, manifest: &Manifest) -> Result<(), Refusal> {
        let id = manifest.transfer_id();
        let available = self
            .store
            .available_bytes()
            .map_err(|e| e.refusal(id.clone()))?;
        let needed = manifest.size().saturating_add(self.reserve_bytes);
        if available < needed {
            return Err(Refusal::new(
                id.clone(),
                RefusalReason::NoSpace,
                format!(
                    "{} bytes free on the receiver, the object needs {} (plus {} kept free)",
                    available,
                    manifest.size(),
                    self.reserve_bytes
                ),
            ));
        }
        self.store
            .admit(manifest)
            .map_err(|e| e.refusal(id.clone()))
    }

    fn on_chunk(
        &mut self,
        now: Instant,
        from: &CloudId,
        chunk: &intercloud_transfer::Chunk<'_>,
        written: &mut Vec<(TransferId, u64)>,
    ) -> Option<Reply> {
        let id = &chunk.transfer_id;
        let Some(receiver) = self.receivers.get_mut(id) else {
            // A damaged chunk's transfer id may be the damaged part: drop
            // it rather than answer for a transfer nobody announced.
            if !chunk.is_intact() {
                tracing::warn!(%from, index = chunk.index, "a damaged chunk of no known transfer; dropped");
                return None;
            }
            return match self.store.receipt_record(id) {
                Ok(Some(record)) => reply(from, record.into()),
                _ => {
                    tracing::warn!(transfer_id = %id, %from, index = chunk.index, "a chunk for an unknown transfer; refused");
                    reply(
                        from,
                        Refusal::new(
                            id.clone(),
                            RefusalReason::UnknownTransfer,
                            format!("{} has no manifest for transfer {id}", self.local),
                        )
                        .into(),
                    )
                }
            };
        };
        if receiver.manifest().sender() != from {
            tracing::warn!(transfer_id = %id, %from, owner = %receiver.manifest().sender(), "a chunk of another cloud's transfer; dropped");
            return None;
        }
        match receiver.on_chunk(now, chunk) {
            ChunkDecision::Write { index, offset, .. } => {
                match self.store.write_chunk_unsynced(id, offset, chunk.payload) {
                    Ok(()) => {
                        written.push((id.clone(), index));
                        if let Some(prefix) = self.prefixes.get_mut(id) {
                            prefix.feed(index, chunk.payload);
                        }
                        None
                    }
                    Err(e) => self.give_up(id, e.refusal_reason(), &e.to_string()),
                }
            }
            ChunkDecision::Duplicate { .. } => None,
            ChunkDecision::Corrupt {
                index,
                expected,
                actual,
                resend,
            } => {
                tracing::warn!(transfer_id = %id, index, %expected, %actual, "corrupt chunk; asked for again");
                reply(from, resend.into())
            }
            ChunkDecision::WrongLength {
                index,
                expected,
                actual,
                resend,
            } => {
                tracing::warn!(transfer_id = %id, index, expected, actual, "chunk of the wrong length; asked for again");
                reply(from, resend.into())
            }
            ChunkDecision::OutOfRange { index, chunk_count } => {
                tracing::warn!(transfer_id = %id, index, chunk_count, "chunk index out of range; dropped");
                None
            }
            ChunkDecision::Foreign { .. } => None,
            ChunkDecision::AlreadyCommitted(r) => reply(from, r.into()),
            ChunkDecision::AlreadyRefused(r) => reply(from, r.into()),
        }
    }

    /// Refuses a transfer for a local failure and frees its staging file.
    fn give_up(&mut self, id: &TransferId, reason: RefusalReason, detail: &str) -> Option<Reply> {
        self.prefixes.remove(id);
        let receiver = self.receivers.remove(id)?;
        let sender = receiver.manifest().sender().clone();
        let mut receiver = receiver;
        let refusal = receiver.fail(reason, detail).ok()?;
        tracing::warn!(transfer_id = %id, %reason, %detail, "incoming transfer failed; staging file deleted");
        if let Err(e) = self.store.discard(id) {
            tracing::error!(transfer_id = %id, error = %e, "cannot delete the staging file");
        }
        self.view.set_state(
            &view::incoming(id.as_str()),
            view::state::REFUSED,
            &format!("{reason}: {detail}"),
        );
        reply(&sender, refusal.into())
    }

    fn after_writes(&mut self, written: Vec<(TransferId, u64)>) -> Vec<Reply> {
        let mut replies = Vec::new();
        let touched: BTreeSet<TransferId> = written.iter().map(|(id, _)| id.clone()).collect();
        let mut failed = BTreeSet::new();
        for id in &touched {
            if let Err(e) = self.store.sync_staging(id) {
                replies.extend(self.give_up(id, e.refusal_reason(), &e.to_string()));
                failed.insert(id.clone());
            }
        }
        let mut complete = BTreeSet::new();
        for (id, index) in written {
            if failed.contains(&id) {
                continue;
            }
            let Some(receiver) = self.receivers.get_mut(&id) else {
                continue;
            };
            let Ok(w) = receiver.written(index) else {
                continue;
            };
            if w.persist_bitmap
                && let Err(e) = self.store.persist_bitmap(&id, receiver.bitmap())
            {
                replies.extend(self.give_up(&id, e.refusal_reason(), &e.to_string()));
                failed.insert(id.clone());
                continue;
            }
            if w.complete {
                complete.insert(id);
            }
        }
        for id in touched.difference(&failed) {
            self.catch_up(id);
            if let Some(receiver) = self.receivers.get(id) {
                let progress = intercloud_transfer::Progress::new(
                    receiver.received_bytes(),
                    receiver.manifest().size(),
                    None,
                );
                self.view.progress(&view::incoming(id.as_str()), &progress);
            }
        }
        for id in complete {
            replies.extend(self.finish(&id));
        }
        replies
    }

    /// Extends the running digest with chunks that arrived early and are
    /// on disk now (read back; each at most once).
    fn catch_up(&mut self, id: &TransferId) {
        let (Some(prefix), Some(receiver)) = (self.prefixes.get_mut(id), self.receivers.get(id))
        else {
            return;
        };
        while !prefix.is_complete() {
            let next = prefix.next_index();
            let Some(len) = receiver.manifest().chunk_len(next) else {
                return;
            };
            if !receiver.bitmap().contains(next) {
                return;
            }
            match self.store.read_staged(id, prefix.hashed(), len) {
                Ok(bytes) => {
                    prefix.feed(next, &bytes);
                }
                // The final check reads from here and reports it.
                Err(_) => return,
            }
        }
    }

    /// Every chunk is on disk: check the whole, inspect, commit.
    fn finish(&mut self, id: &TransferId) -> Option<Reply> {
        self.view
            .set_state(&view::incoming(id.as_str()), view::state::VERIFYING, "");
        let manifest = self.receivers.get(id)?.manifest().clone();
        // Every receiver has its running digest; none would mean reading
        // the whole file from its start.
        let prefix = self
            .prefixes
            .remove(id)
            .unwrap_or_else(|| PrefixDigest::new(&manifest));
        let actual = match self.store.finish_digest(id, prefix) {
            Ok(d) => d,
            Err(e) => return self.give_up(id, e.refusal_reason(), &e.to_string()),
        };
        let sender = manifest.sender().clone();
        if actual == manifest.sha256()
            && let Err((reason, detail)) = self
                .hooks
                .before_commit(&manifest, &self.store.staging_path(id))
        {
            return self.give_up(id, reason, &detail);
        }
        let receiver = self.receivers.get_mut(id)?;
        match receiver.verify(actual, SystemTime::now()) {
            Ok(Verdict::Commit(receipt)) => match self.store.commit(&receipt) {
                Ok(record) => {
                    self.receivers.remove(id);
                    let path = self.store.object_path(&record.object_id);
                    self.hooks.after_commit(&manifest, &record, &path);
                    tracing::info!(transfer_id = %id, object = %record.object_id, sha256 = %record.sha256, "incoming transfer committed");
                    self.view
                        .set_state(&view::incoming(id.as_str()), view::state::COMMITTED, "");
                    reply(&sender, record.into())
                }
                Err(e) => {
                    // The receiver says committed but the disk does not:
                    // leave the state as it is; the restart scan decides.
                    tracing::error!(transfer_id = %id, error = %e, "commit failed");
                    self.receivers.remove(id);
                    self.view
                        .set_state(id.as_str(), view::state::FAILED, &e.to_string());
                    None
                }
            },
            Ok(Verdict::Refetch(resend)) => {
                tracing::warn!(transfer_id = %id, %actual, expected = %manifest.sha256(), "whole-object digest mismatch; fetching every chunk again");
                self.prefixes
                    .insert(id.clone(), PrefixDigest::new(receiver.manifest()));
                if let Err(e) = self.store.persist_bitmap(id, receiver.bitmap()) {
                    return self.give_up(id, e.refusal_reason(), &e.to_string());
                }
                self.view.set_state(
                    &view::incoming(id.as_str()),
                    view::state::RECEIVING,
                    "digest mismatch: fetching again",
                );
                reply(&sender, resend.into())
            }
            Ok(Verdict::Refuse(refusal)) => {
                self.receivers.remove(id);
                let _ = self.store.discard(id);
                self.view
                    .set_state(id.as_str(), view::state::REFUSED, &refusal.detail);
                reply(&sender, refusal.into())
            }
            Err(e) => {
                tracing::error!(transfer_id = %id, error = %e, "verify called out of turn");
                None
            }
        }
    }

    /// Timeouts: ask for what is missing, or give up.
    pub fn tick(&mut self) -> Vec<Reply> {
        let now = Instant::now();
        let mut replies = Vec::new();
        let mut abandoned = Vec::new();
        for (id, receiver) in &mut self.receivers {
            let sender = receiver.manifest().sender().clone();
            match receiver.poll_timeout(now) {
                Some(Timeout::Resend(resend)) => {
                    tracing::info!(transfer_id = %id, missing = resend.chunk_count(), "asking again for what is missing");
                    replies.extend(reply(&sender, resend.into()));
                }
                Some(Timeout::Abandon(refusal)) => {
                    abandoned.push(id.clone());
                    replies.extend(reply(&sender, refusal.into()));
                }
                _ => {}
            }
        }
        for id in abandoned {
            self.receivers.remove(&id);
            self.prefixes.remove(&id);
            let _ = self.store.discard(&id);
            self.view
                .set_state(id.as_str(), view::state::REFUSED, "abandoned");
        }
        replies
    }
}

/// Publishes the answers; false if the link failed (the batch must not be
/// acked then: the channel is gone anyway).
async fn publish_replies(link: &Link, replies: Vec<Reply>) -> bool {
    let mut pending = Vec::with_capacity(replies.len());
    for r in &replies {
        match link
            .publish(&amqp::control_queue(&r.to), r.kind, &r.body)
            .await
        {
            Ok(confirm) => pending.push((r, confirm)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot publish an answer");
                return false;
            }
        }
    }
    for (r, confirm) in pending {
        match amqp::confirm_within(confirm).await {
            Ok(()) => {}
            Err(e) if e.link_lost() => {
                tracing::warn!(error = %e, "an answer was not confirmed");
                return false;
            }
            // Its sender's queue is gone, or RabbitMQ would not take it:
            // the sender announces its manifest again and gets the answer
            // then.
            Err(e) => {
                tracing::warn!(to = %r.to, kind = r.kind, error = %e, "an answer was not delivered")
            }
        }
    }
    true
}

/// Consumes this cloud's data queue until `stopped`, reconnecting with the
/// link.
pub async fn run(
    engine: Engine,
    mut links: watch::Receiver<Option<Link>>,
    queue: String,
    prefetch: u16,
    federation: intercloud_trust::FederationDomain,
    stopped: impl std::future::Future<Output = ()>,
) {
    let engine = Arc::new(Mutex::new(engine));
    let consume = async {
        let mut generation = 0;
        loop {
            let Some(link) = amqp::next_link(&mut links, generation).await else {
                return;
            };
            generation = link.generation;
            if let Err(e) = consume_link(&engine, &link, &queue, prefetch, &federation).await {
                tracing::warn!(error = %e, "the transfer consumer stopped; waiting for the next connection");
            }
        }
    };
    tokio::select! {
        () = consume => {}
        () = stopped => {}
    }
}

fn run_engine<T: Send + 'static>(
    engine: &Arc<Mutex<Engine>>,
    f: impl FnOnce(&mut Engine) -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || {
        let mut engine = engine.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut engine)
    })
}

async fn consume_link(
    engine: &Arc<Mutex<Engine>>,
    link: &Link,
    queue: &str,
    prefetch: u16,
    federation: &intercloud_trust::FederationDomain,
) -> Result<(), lapin::Error> {
    let channel = link.connection.create_channel().await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
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
        let first = tokio::select! {
            d = consumer.next() => d,
            _ = ticker.tick() => {
                if !link.is_up() {
                    return Ok(());
                }
                let replies = run_engine(engine, Engine::tick).await.unwrap_or_default();
                if !publish_replies(link, replies).await {
                    return Ok(());
                }
                continue;
            }
        };
        let Some(first) = first else {
            return Ok(());
        };
        let mut deliveries = vec![first?];
        while deliveries.len() < usize::from(prefetch) {
            match consumer.next().now_or_never() {
                Some(Some(d)) => deliveries.push(d?),
                _ => break,
            }
        }
        let last_tag = deliveries.last().map_or(0, |d| d.delivery_tag);
        let batch: Vec<Incoming> = deliveries
            .into_iter()
            .map(|d| Incoming {
                from: amqp::sender_cloud(&d.properties, federation),
                kind: d.properties.kind().as_ref().map(|k| k.as_str().to_owned()),
                body: d.data,
            })
            .collect();
        let replies = run_engine(engine, move |e| e.process(batch))
            .await
            .unwrap_or_default();
        if !publish_replies(link, replies).await {
            return Ok(());
        }
        channel
            .basic_ack(last_tag, BasicAckOptions { multiple: true })
            .await?;
    }
}
