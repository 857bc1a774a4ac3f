//! The protocol end to end, in memory: a sender driver and a receiver
//! driver written against the public API as the real (lapin, filesystem)
//! drivers must be, a broker with durable queues, confirms and
//! redelivery, virtual time, and faults — crashes of either side at every
//! step of a commit, broker restarts that lose unconfirmed publishes and
//! redeliver unacked ones, flipped bytes, duplicates, a full disk. Every
//! run is checked like Jepsen: lost 0, duplicated 0.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use intercloud_transfer::recovery::{self, OnDisk, Recovery};
use intercloud_transfer::{
    Bitmap, Checker, Chunk, ChunkDecision, CloudId, Manifest, ManifestAnswer, ManifestSpec,
    Message, ObjectId, ObjectKind, Outcome, Receipt, Receiver, ReceiverConfig, Refusal,
    RefusalReason, Sender, SenderConfig, Sha256Digest, Timeout, TransferId, Verdict,
};

const CHUNK: u64 = 64 * 1024;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

fn cloud(s: &str) -> CloudId {
    CloudId::new(s).expect("valid")
}

fn object(seed: u64, len: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

fn manifest_for(id: &str, object: &[u8]) -> Manifest {
    Manifest::new(ManifestSpec {
        transfer_id: TransferId::new(id).expect("valid"),
        object_id: ObjectId::new(&format!("obj-{id}")).expect("valid"),
        kind: ObjectKind::Object,
        size: object.len() as u64,
        chunk_size: CHUNK,
        sha256: Sha256Digest::of(object),
        metadata: BTreeMap::new(),
        sender: cloud("cloud-a"),
        receiver: cloud("cloud-b"),
    })
    .expect("valid")
}

fn encode(message: impl Into<Message<'static>>) -> Vec<u8> {
    message.into().encode().expect("encodes")
}

// ---------------------------------------------------------------- broker

/// Two durable queues. Publishes to the receiver's queue are confirmed
/// later (or lost, if the broker restarts first); deliveries stay unacked
/// until acked, and come back if the consumer dies.
#[derive(Default)]
struct Broker {
    to_receiver: VecDeque<(u64, Vec<u8>)>,
    unacked: Vec<(u64, Vec<u8>)>,
    to_sender: VecDeque<Vec<u8>>,
    /// The sender's unconfirmed chunk publishes: message id, transfer, index.
    unconfirmed: VecDeque<(u64, TransferId, u64)>,
    next_id: u64,
}

impl Broker {
    fn publish(&mut self, body: Vec<u8>) -> u64 {
        self.next_id += 1;
        self.to_receiver.push_back((self.next_id, body));
        self.next_id
    }

    fn reply(&mut self, message: impl Into<Message<'static>>) {
        self.to_sender.push_back(encode(message));
    }

    fn deliver(&mut self) -> Option<(u64, Vec<u8>)> {
        let (id, body) = self.to_receiver.pop_front()?;
        self.unacked.push((id, body.clone()));
        Some((id, body))
    }

    fn ack(&mut self, id: u64) {
        self.unacked.retain(|(i, _)| *i != id);
    }

    /// The receiver's connection is gone: its unacked deliveries go back
    /// to the head of the queue.
    fn requeue(&mut self) {
        for entry in self.unacked.drain(..).rev() {
            self.to_receiver.push_front(entry);
        }
    }

    /// RabbitMQ restarts: unacked deliveries are requeued, unconfirmed
    /// publishes may be lost, both sides lose their channels.
    fn restart(&mut self, rng: &mut Rng) {
        self.requeue();
        for (id, _, _) in std::mem::take(&mut self.unconfirmed) {
            if rng.one_in(2) {
                self.to_receiver.retain(|(i, _)| *i != id);
            }
        }
    }
}

// ---------------------------------------------------------------- sender

struct Outgoing {
    object: Vec<u8>,
    sender: Sender,
}

#[derive(Default)]
struct SenderNode {
    /// The durable outbox: transfers not yet over.
    outbox: BTreeMap<TransferId, Outgoing>,
    outcomes: BTreeMap<TransferId, Outcome>,
    /// How many times each chunk was published.
    publishes: BTreeMap<(TransferId, u64), u32>,
    window: usize,
}

impl SenderNode {
    fn new(window: usize) -> Self {
        Self {
            window,
            ..Self::default()
        }
    }

    fn config(&self) -> SenderConfig {
        SenderConfig {
            window: self.window,
            reannounce_after: Duration::from_millis(500),
            ..SenderConfig::default()
        }
    }

    fn start(
        &mut self,
        now: Instant,
        object: Vec<u8>,
        manifest: Manifest,
        broker: &mut Broker,
        checker: &mut Checker,
    ) {
        checker.attempted(manifest.transfer_id().clone(), manifest.sha256());
        broker.publish(encode(manifest.clone()));
        let sender = Sender::new(manifest.clone(), self.config(), now);
        self.outbox
            .insert(manifest.transfer_id().clone(), Outgoing { object, sender });
    }

    /// Publishes whatever the senders want published.
    fn pump(&mut self, now: Instant, broker: &mut Broker) {
        for (tid, out) in &mut self.outbox {
            if out.sender.poll_reannounce(now) {
                broker.publish(encode(out.sender.manifest().clone()));
            }
            while let Some(c) = out.sender.poll_chunk() {
                assert!(out.sender.unconfirmed() <= self.window);
                let payload = &out.object[c.offset as usize..(c.offset + c.len) as usize];
                let body = Chunk::new(tid.clone(), c.index, payload)
                    .encode()
                    .expect("encodes");
                let id = broker.publish(body);
                broker.unconfirmed.push_back((id, tid.clone(), c.index));
                *self.publishes.entry((tid.clone(), c.index)).or_default() += 1;
            }
        }
    }

    fn confirm(&mut self, now: Instant, broker: &mut Broker, n: usize) {
        for _ in 0..n {
            let Some((_, tid, index)) = broker.unconfirmed.pop_front() else {
                return;
            };
            if let Some(out) = self.outbox.get_mut(&tid) {
                out.sender.on_confirm(now, index);
            }
        }
    }

    fn on_reply(&mut self, now: Instant, body: &[u8], checker: &mut Checker) {
        let message = Message::decode(body).expect("receivers publish valid messages");
        let tid = message.transfer_id().clone();
        let Some(out) = self.outbox.get_mut(&tid) else {
            return; // over: a late duplicate
        };
        let outcome = match &message {
            Message::Resend(r) => {
                out.sender.on_resend(now, r).expect("a valid request");
                None
            }
            Message::Receipt(r) => Some(out.sender.on_receipt(r).expect("ours").clone()),
            Message::Refusal(r) => Some(out.sender.on_refusal(r).expect("ours").clone()),
            other => panic!("{} sent to the sender", other.kind()),
        };
        if let Some(outcome) = outcome {
            if matches!(outcome, Outcome::Delivered(_)) {
                checker.acknowledged(tid.clone());
            }
            self.outbox.remove(&tid);
            self.outcomes.insert(tid, outcome);
        }
    }

    /// The broker connection dropped: every unconfirmed publish again.
    fn connection_lost(&mut self) {
        for out in self.outbox.values_mut() {
            out.sender.on_connection_lost();
        }
    }

    /// `kill -9` and restart: only the outbox survives; every transfer in
    /// it starts again from its manifest.
    fn crash_and_restart(&mut self, now: Instant, broker: &mut Broker) {
        broker.unconfirmed.clear();
        let config = self.config();
        for out in self.outbox.values_mut() {
            let manifest = out.sender.manifest().clone();
            broker.publish(encode(manifest.clone()));
            out.sender = Sender::new(manifest, config, now);
        }
    }
}

// ---------------------------------------------------------------- receiver

/// What survives a receiver crash.
#[derive(Default)]
struct Disk {
    staging: BTreeMap<TransferId, Vec<u8>>,
    /// The in-progress state: manifest (JSON message) and bitmap.
    state: BTreeMap<TransferId, (Vec<u8>, Vec<u8>)>,
    records: BTreeMap<TransferId, Vec<u8>>,
    objects: BTreeMap<ObjectId, Vec<u8>>,
    /// Bytes left for staging files.
    free: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CrashPoint {
    /// Chunk written, fsynced, bitmap maybe persisted; not acked.
    Written,
    /// Commit step 1 done.
    Recorded,
    /// Commit step 2 done.
    Renamed,
    /// Commit step 3 done; the receipt not published.
    CleanedUp,
}

struct Crashed;

struct ReceiverNode {
    local: CloudId,
    config: ReceiverConfig,
    disk: Disk,
    live: BTreeMap<TransferId, Receiver>,
    /// Armed by the test: the next time this point is reached, crash.
    crash_at: Option<CrashPoint>,
    /// Chunk writes fail with ENOSPC.
    disk_full: bool,
}

fn crash_if(armed: &mut Option<CrashPoint>, here: CrashPoint) -> Result<(), Crashed> {
    if *armed == Some(here) {
        *armed = None;
        return Err(Crashed);
    }
    Ok(())
}

impl ReceiverNode {
    fn new(free: u64, persist_every: u64) -> Self {
        Self {
            local: cloud("cloud-b"),
            config: ReceiverConfig {
                resend_after: Duration::from_millis(50),
                abandon_after: Duration::from_secs(60),
                persist_every,
            },
            disk: Disk {
                free,
                ..Disk::default()
            },
            live: BTreeMap::new(),
            crash_at: None,
            disk_full: false,
        }
    }

    fn record(&self, tid: &TransferId) -> Option<Receipt> {
        let bytes = self.disk.records.get(tid)?;
        match Message::decode(bytes).expect("our own record") {
            Message::Receipt(r) => Some(r),
            _ => None,
        }
    }

    fn drop_staging(&mut self, tid: &TransferId) {
        if let Some(staging) = self.disk.staging.remove(tid) {
            self.disk.free += staging.len() as u64;
        }
        self.disk.state.remove(tid);
    }

    /// Handles one delivery; `Ok` means "ack it".
    fn handle(
        &mut self,
        now: Instant,
        wall: SystemTime,
        body: &[u8],
        broker: &mut Broker,
        checker: &mut Checker,
    ) -> Result<(), Crashed> {
        let message = match Message::decode(body) {
            Ok(m) => m,
            Err(e) => {
                if let Some((_, refusal)) = e.refusal() {
                    broker.reply(refusal);
                }
                return Ok(());
            }
        };
        match message {
            Message::Manifest(m) => self.on_manifest(now, wall, m, broker, checker),
            Message::Chunk(c) => self.on_chunk(now, wall, &c, broker, checker),
            _ => Ok(()),
        }
    }

    fn on_manifest(
        &mut self,
        now: Instant,
        wall: SystemTime,
        m: Manifest,
        broker: &mut Broker,
        checker: &mut Checker,
    ) -> Result<(), Crashed> {
        let tid = m.transfer_id().clone();
        let answer = if let Some(record) = self.record(&tid) {
            ManifestAnswer::from_record(&record, &m)
        } else if let Some(rx) = self.live.get_mut(&tid) {
            rx.on_manifest(now, &m)
        } else {
            let mut rx = match Receiver::admit(m.clone(), &self.local, self.config, now) {
                Ok(rx) => rx,
                Err(refusal) => {
                    broker.reply(refusal);
                    return Ok(());
                }
            };
            if self.disk.free < m.size() {
                let refusal = rx
                    .fail(
                        RefusalReason::NoSpace,
                        format!("{} bytes free", self.disk.free),
                    )
                    .expect("not committed");
                broker.reply(refusal);
                return Ok(());
            }
            self.disk.free -= m.size();
            self.disk
                .staging
                .insert(tid.clone(), vec![0; m.size() as usize]);
            self.disk
                .state
                .insert(tid.clone(), (encode(m.clone()), rx.bitmap().encode()));
            let answer = rx.on_manifest(now, &m);
            self.live.insert(tid.clone(), rx);
            answer
        };
        match answer {
            ManifestAnswer::Resend(r) => broker.reply(r),
            ManifestAnswer::Receipt(r) => broker.reply(r),
            ManifestAnswer::Refusal(r) => broker.reply(r),
        }
        // An empty object is complete at once.
        if self.live.get(&tid).is_some_and(Receiver::ready_to_commit) {
            self.commit(wall, &tid, broker, checker)?;
        }
        Ok(())
    }

    fn on_chunk(
        &mut self,
        now: Instant,
        wall: SystemTime,
        c: &Chunk<'_>,
        broker: &mut Broker,
        checker: &mut Checker,
    ) -> Result<(), Crashed> {
        let tid = c.transfer_id.clone();
        if let Some(record) = self.record(&tid) {
            broker.reply(record);
            return Ok(());
        }
        let Some(rx) = self.live.get_mut(&tid) else {
            if !c.is_intact() {
                return Ok(()); // its transfer id may be the damage
            }
            broker.reply(Refusal::new(
                tid,
                RefusalReason::UnknownTransfer,
                "no manifest for this transfer",
            ));
            return Ok(());
        };
        match rx.on_chunk(now, c) {
            ChunkDecision::Write { index, offset, len } => {
                if self.disk_full {
                    let refusal = rx
                        .fail(RefusalReason::NoSpace, "no space left on device")
                        .expect("not committed");
                    self.drop_staging(&tid);
                    broker.reply(refusal);
                    return Ok(());
                }
                let staging = self.disk.staging.get_mut(&tid).expect("staging exists");
                staging[offset as usize..(offset + len) as usize].copy_from_slice(c.payload);
                // (fsync)
                let written = rx.written(index).expect("receiving");
                if written.persist_bitmap {
                    let bitmap = rx.bitmap().encode();
                    self.disk.state.get_mut(&tid).expect("state exists").1 = bitmap;
                }
                crash_if(&mut self.crash_at, CrashPoint::Written)?;
                if written.complete {
                    self.commit(wall, &tid, broker, checker)?;
                }
            }
            ChunkDecision::Duplicate { .. }
            | ChunkDecision::Foreign { .. }
            | ChunkDecision::OutOfRange { .. } => {}
            ChunkDecision::Corrupt { resend, .. } | ChunkDecision::WrongLength { resend, .. } => {
                broker.reply(resend);
            }
            ChunkDecision::AlreadyCommitted(r) => broker.reply(r),
            ChunkDecision::AlreadyRefused(r) => broker.reply(r),
        }
        Ok(())
    }

    fn commit(
        &mut self,
        wall: SystemTime,
        tid: &TransferId,
        broker: &mut Broker,
        checker: &mut Checker,
    ) -> Result<(), Crashed> {
        let rx = self.live.get_mut(tid).expect("live");
        let digest = Sha256Digest::of(&self.disk.staging[tid]);
        match rx.verify(digest, wall).expect("complete") {
            Verdict::Commit(receipt) => {
                let object_id = rx.manifest().object_id().clone();
                self.live.remove(tid);
                self.disk
                    .records
                    .insert(tid.clone(), encode(receipt.clone()));
                crash_if(&mut self.crash_at, CrashPoint::Recorded)?;
                self.rename(tid, object_id, checker);
                crash_if(&mut self.crash_at, CrashPoint::Renamed)?;
                self.disk.state.remove(tid);
                crash_if(&mut self.crash_at, CrashPoint::CleanedUp)?;
                broker.reply(receipt);
            }
            Verdict::Refetch(resend) => {
                self.disk.state.get_mut(tid).expect("state exists").1 = rx.bitmap().encode();
                broker.reply(resend);
            }
            Verdict::Refuse(refusal) => {
                self.drop_staging(tid);
                broker.reply(refusal);
            }
        }
        Ok(())
    }

    fn rename(&mut self, tid: &TransferId, object_id: ObjectId, checker: &mut Checker) {
        let staging = self.disk.staging.remove(tid).expect("staging exists");
        checker.committed(tid.clone(), Sha256Digest::of(&staging));
        self.disk.objects.insert(object_id, staging);
    }

    /// `kill -9`, then a restart that runs recovery before consuming.
    fn crash_and_restart(&mut self, now: Instant, broker: &mut Broker, checker: &mut Checker) {
        self.live.clear();
        broker.requeue();
        let ids: Vec<TransferId> = self
            .disk
            .staging
            .keys()
            .chain(self.disk.state.keys())
            .chain(self.disk.records.keys())
            .cloned()
            .collect();
        for tid in ids {
            let found = OnDisk {
                receipt_record: self.disk.records.contains_key(&tid),
                in_progress: self.disk.state.contains_key(&tid),
                staging: self.disk.staging.contains_key(&tid),
            };
            let manifest = || -> Manifest {
                match Message::decode(&self.disk.state[&tid].0).expect("our own state") {
                    Message::Manifest(m) => m,
                    _ => panic!("not a manifest"),
                }
            };
            match recovery::plan(found) {
                Recovery::Unknown | Recovery::Committed => {}
                Recovery::FinishCommit => {
                    let record = self.record(&tid).expect("exists");
                    self.rename(&tid, record.object_id, checker);
                    self.disk.state.remove(&tid);
                }
                Recovery::CleanUp => {
                    self.disk.state.remove(&tid);
                }
                Recovery::Resume => {
                    let m = manifest();
                    let bitmap = Bitmap::decode(&self.disk.state[&tid].1)
                        .unwrap_or_else(|_| Bitmap::new(m.chunk_count()).expect("valid"));
                    let rx = Receiver::resume(m, bitmap, self.config, now).expect("same length");
                    self.live.insert(tid, rx);
                }
                Recovery::StartOver => {
                    let m = manifest();
                    self.disk
                        .staging
                        .insert(tid.clone(), vec![0; m.size() as usize]);
                    self.live.insert(tid, Receiver::new(m, self.config, now));
                }
                Recovery::DiscardStaging => self.drop_staging(&tid),
            }
        }
    }

    fn poll(&mut self, now: Instant, broker: &mut Broker) {
        let mut abandoned = Vec::new();
        for (tid, rx) in &mut self.live {
            match rx.poll_timeout(now) {
                Some(Timeout::Resend(r)) => broker.reply(r),
                Some(Timeout::Abandon(r)) => {
                    abandoned.push(tid.clone());
                    broker.reply(r);
                }
                None => {}
            }
        }
        for tid in abandoned {
            self.drop_staging(&tid);
        }
    }
}

// ---------------------------------------------------------------- world

struct World {
    t0: Instant,
    step: u64,
    broker: Broker,
    tx: SenderNode,
    rx: ReceiverNode,
    checker: Checker,
    originals: BTreeMap<TransferId, (ObjectId, Vec<u8>)>,
}

impl World {
    fn new(window: usize, free: u64, persist_every: u64) -> Self {
        Self {
            t0: Instant::now(),
            step: 0,
            broker: Broker::default(),
            tx: SenderNode::new(window),
            rx: ReceiverNode::new(free, persist_every),
            checker: Checker::new(),
            originals: BTreeMap::new(),
        }
    }

    fn now(&self) -> Instant {
        self.t0 + Duration::from_millis(self.step)
    }

    fn wall(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_767_225_600) + Duration::from_millis(self.step)
    }

    fn start(&mut self, id: &str, len: u64) -> Manifest {
        let obj = object(len ^ id.len() as u64 ^ 0x9e37_79b9, len);
        let m = manifest_for(id, &obj);
        self.originals.insert(
            m.transfer_id().clone(),
            (m.object_id().clone(), obj.clone()),
        );
        let now = self.now();
        self.tx
            .start(now, obj, m.clone(), &mut self.broker, &mut self.checker);
        m
    }

    /// Delivers one message to the receiver; a crash restarts it.
    fn deliver_one(&mut self) -> bool {
        let Some((id, body)) = self.broker.deliver() else {
            return false;
        };
        let (now, wall) = (self.now(), self.wall());
        match self
            .rx
            .handle(now, wall, &body, &mut self.broker, &mut self.checker)
        {
            Ok(()) => self.broker.ack(id),
            Err(Crashed) => self
                .rx
                .crash_and_restart(now, &mut self.broker, &mut self.checker),
        }
        true
    }

    fn reply_one(&mut self) -> bool {
        let Some(body) = self.broker.to_sender.pop_front() else {
            return false;
        };
        let now = self.now();
        self.tx.on_reply(now, &body, &mut self.checker);
        true
    }

    /// One tick without faults: publish, confirm, deliver, answer.
    fn tick(&mut self) -> bool {
        self.tick_with(4, 4, 1)
    }

    /// One tick: `confirms` confirms, `deliveries` deliveries, `replies`
    /// replies.
    fn tick_with(&mut self, confirms: usize, deliveries: usize, replies: usize) -> bool {
        self.step += 1;
        let now = self.now();
        self.tx.pump(now, &mut self.broker);
        self.tx.confirm(now, &mut self.broker, confirms);
        let mut busy = false;
        for _ in 0..deliveries {
            busy |= self.deliver_one();
        }
        for _ in 0..replies {
            busy |= self.reply_one();
        }
        self.rx.poll(now, &mut self.broker);
        busy || !self.broker.unconfirmed.is_empty()
    }

    fn run(&mut self) {
        for _ in 0..200_000 {
            if self.tx.outbox.is_empty() && self.broker.to_receiver.is_empty() {
                return;
            }
            if !self.tick() {
                self.step += 10; // idle: let time pass
            }
        }
        panic!(
            "no convergence: {} transfers still out, {} queued",
            self.tx.outbox.len(),
            self.broker.to_receiver.len()
        );
    }

    /// Every transfer delivered, every object intact, exactly once.
    fn assert_all_delivered(&self) {
        let report = self.checker.report();
        assert!(report.is_valid(), "{report}");
        assert!(report.lost.is_empty() && report.duplicated.is_empty());
        assert_eq!(report.acknowledged, report.attempted, "{report}");
        for (tid, (object_id, bytes)) in &self.originals {
            assert!(
                matches!(self.tx.outcomes.get(tid), Some(Outcome::Delivered(_))),
                "{tid}: {:?}",
                self.tx.outcomes.get(tid)
            );
            assert!(
                self.rx.disk.objects.get(object_id) == Some(bytes),
                "{tid} differs"
            );
        }
        assert!(self.rx.disk.staging.is_empty() && self.rx.disk.state.is_empty());
    }

    fn chunk_publishes(&self, tid: &TransferId) -> BTreeMap<u64, u32> {
        self.tx
            .publishes
            .iter()
            .filter(|((t, _), _)| t == tid)
            .map(|((_, i), n)| (*i, *n))
            .collect()
    }
}

const BIG_DISK: u64 = 1 << 40;

// ---------------------------------------------------------------- scenarios

#[test]
fn a_clean_transfer_publishes_each_chunk_once() {
    let mut w = World::new(4, BIG_DISK, 1);
    let m = w.start("clean", 10 * CHUNK + 123);
    w.run();
    w.assert_all_delivered();
    let publishes = w.chunk_publishes(m.transfer_id());
    assert_eq!(publishes.len(), 11);
    assert!(publishes.values().all(|&n| n == 1), "{publishes:?}");
}

#[test]
fn replaying_every_message_after_the_commit_commits_nothing_more() {
    let mut w = World::new(4, BIG_DISK, 1);
    let m = w.start("replay", 5 * CHUNK);
    w.run();
    w.assert_all_delivered();
    let replies_before = w.broker.to_sender.len();

    // RabbitMQ redelivers the manifest and every chunk, twice.
    let object = &w.originals[m.transfer_id()].1;
    for _ in 0..2 {
        w.broker.publish(encode(m.clone()));
        for i in 0..m.chunk_count() {
            let start = m.chunk_offset(i).expect("exists") as usize;
            let end = start + m.chunk_len(i).expect("exists") as usize;
            let body = Chunk::new(m.transfer_id().clone(), i, &object[start..end])
                .encode()
                .expect("encodes");
            w.broker.publish(body);
        }
    }
    while w.deliver_one() {}
    w.assert_all_delivered();
    // Each redelivery got the same receipt back.
    let receipts: Vec<Vec<u8>> = w.broker.to_sender.drain(replies_before..).collect();
    assert_eq!(receipts.len(), 12);
    assert!(receipts.windows(2).all(|p| p[0] == p[1]));
    assert!(matches!(
        Message::decode(&receipts[0]),
        Ok(Message::Receipt(_))
    ));
}

#[test]
fn a_receiver_killed_mid_transfer_resumes_and_asks_only_for_what_is_missing() {
    let mut w = World::new(64, BIG_DISK, 1);
    let m = w.start("rx-crash", 20 * CHUNK);
    // The manifest is answered; the sender publishes all 20 chunks.
    for _ in 0..3 {
        w.tick();
    }
    // The receiver has 12 chunks and is killed after writing the 13th,
    // before acking it; meanwhile the queue was lost (a purge, the worst
    // case): what is missing must be asked for.
    while w
        .rx
        .disk
        .state
        .get(m.transfer_id())
        .is_some_and(|(_, b)| Bitmap::decode(b).expect("valid").count() < 12)
    {
        assert!(w.deliver_one());
    }
    w.rx.crash_at = Some(CrashPoint::Written);
    assert!(w.deliver_one());
    assert!(w.rx.crash_at.is_none(), "crashed");
    w.broker.to_receiver.clear(); // the redelivered 13th goes too
    w.run();
    w.assert_all_delivered();
    // Chunks 0..13 were on disk: published once; 13..20 again.
    let publishes = w.chunk_publishes(m.transfer_id());
    for (i, n) in publishes {
        if i < 13 {
            assert_eq!(n, 1, "chunk {i}");
        } else {
            assert!((2..=3).contains(&n), "chunk {i}: {n}");
        }
    }
}

#[test]
fn a_receiver_killed_at_each_commit_step_commits_exactly_once() {
    for point in [
        CrashPoint::Recorded,
        CrashPoint::Renamed,
        CrashPoint::CleanedUp,
    ] {
        let mut w = World::new(4, BIG_DISK, 1);
        w.start("commit-crash", 3 * CHUNK + 1);
        w.rx.crash_at = Some(point);
        w.run();
        assert!(w.rx.crash_at.is_none(), "{point:?} reached");
        w.assert_all_delivered();
    }
}

#[test]
fn a_sender_killed_mid_transfer_resends_only_what_is_missing() {
    let mut w = World::new(4, BIG_DISK, 1);
    let m = w.start("tx-crash", 16 * CHUNK);
    for _ in 0..3 {
        w.tick();
    }
    // Drain what was published, so the answer to the new manifest is exact.
    while w.deliver_one() {}
    let have = Bitmap::decode(&w.rx.disk.state[m.transfer_id()].1)
        .expect("valid")
        .count();
    assert!(have > 0 && have < 16, "{have}");
    let now = w.now();
    w.tx.crash_and_restart(now, &mut w.broker);
    w.run();
    w.assert_all_delivered();
    let twice = w
        .chunk_publishes(m.transfer_id())
        .values()
        .filter(|&&n| n > 1)
        .count();
    // Only chunks published but unconfirmed at the crash can go twice.
    assert!(twice <= 4, "{twice} chunks published twice");
}

#[test]
fn a_broker_restart_loses_nothing_and_duplicates_are_harmless() {
    let mut rng = Rng(7);
    let mut w = World::new(8, BIG_DISK, 1);
    w.start("broker", 12 * CHUNK + 5);
    for _ in 0..4 {
        w.tick();
    }
    w.broker.restart(&mut rng);
    w.tx.connection_lost();
    w.run();
    w.assert_all_delivered();
}

#[test]
fn a_flipped_byte_is_detected_and_the_chunk_fetched_again() {
    let mut w = World::new(4, BIG_DISK, 1);
    let m = w.start("flip", 4 * CHUNK);
    w.tick(); // the manifest is answered
    let now = w.now();
    w.tx.pump(now, &mut w.broker); // chunks are published
    let (_, body) = w
        .broker
        .to_receiver
        .iter_mut()
        .find(|(_, b)| b.starts_with(b"ICTC"))
        .expect("a chunk is queued");
    let last = body.len() - 1;
    body[last] ^= 0x01;
    w.run();
    w.assert_all_delivered();
    let publishes = w.chunk_publishes(m.transfer_id());
    assert_eq!(publishes.values().filter(|&&n| n == 2).count(), 1);
}

#[test]
fn a_chunk_for_an_unknown_transfer_is_refused() {
    let mut w = World::new(4, BIG_DISK, 1);
    let stray = TransferId::new("stray").expect("valid");
    w.broker.publish(
        Chunk::new(stray.clone(), 0, b"x")
            .encode()
            .expect("encodes"),
    );
    assert!(w.deliver_one());
    let reply = w.broker.to_sender.pop_front().expect("an answer");
    let Ok(Message::Refusal(r)) = Message::decode(&reply) else {
        panic!("a refusal");
    };
    assert_eq!(
        (r.transfer_id, r.reason),
        (stray, RefusalReason::UnknownTransfer)
    );
    assert!(w.broker.unacked.is_empty(), "acked, not requeued");
}

#[test]
fn a_manifest_whose_size_does_not_match_is_refused_before_any_chunk() {
    let mut w = World::new(4, BIG_DISK, 1);
    let m = w.start("lying", 10 * CHUNK);
    // The manifest in the queue now claims 9 chunks for 10 chunks' bytes.
    let (_, body) = w.broker.to_receiver.front_mut().expect("queued");
    let text = String::from_utf8(body.clone()).expect("json");
    *body = text
        .replace(r#""chunk_count":10"#, r#""chunk_count":9"#)
        .into_bytes();
    w.run();
    let Some(Outcome::Refused(r)) = w.tx.outcomes.get(m.transfer_id()) else {
        panic!("{:?}", w.tx.outcomes);
    };
    assert_eq!(r.reason, RefusalReason::InvalidManifest);
    assert!(r.detail.contains("make 10 chunks"), "{}", r.detail);
    assert!(w.tx.publishes.is_empty(), "no chunk was published");
    assert!(w.rx.disk.staging.is_empty() && w.rx.disk.objects.is_empty());
    let report = w.checker.report();
    assert!(report.is_valid() && report.acknowledged == 0, "{report}");
}

#[test]
fn a_full_disk_fails_cleanly() {
    // Not even room for the staging file: refused at the manifest.
    let mut w = World::new(4, 5 * CHUNK, 1);
    let m = w.start("too-big", 10 * CHUNK);
    w.run();
    assert!(matches!(
        w.tx.outcomes.get(m.transfer_id()),
        Some(Outcome::Refused(Refusal {
            reason: RefusalReason::NoSpace,
            ..
        }))
    ));
    assert!(w.tx.publishes.is_empty());

    // Room was reserved, then the disk fails mid-transfer.
    let mut w = World::new(4, BIG_DISK, 1);
    let m = w.start("enospc", 10 * CHUNK);
    for _ in 0..3 {
        w.tick();
    }
    w.rx.disk_full = true;
    w.run();
    assert!(matches!(
        w.tx.outcomes.get(m.transfer_id()),
        Some(Outcome::Refused(Refusal {
            reason: RefusalReason::NoSpace,
            ..
        }))
    ));
    assert!(w.rx.disk.staging.is_empty() && w.rx.disk.state.is_empty());
    assert!(w.rx.disk.objects.is_empty());
    assert_eq!(w.rx.disk.free, BIG_DISK, "the reservation was released");
    let report = w.checker.report();
    assert!(report.is_valid(), "{report}");
}

#[test]
fn an_empty_object_is_delivered() {
    let mut w = World::new(4, BIG_DISK, 1);
    w.start("empty", 0);
    w.run();
    w.assert_all_delivered();
}

/// Many transfers, random interleavings and every fault at random, under
/// several seeds: nothing lost, nothing committed twice, every object
/// intact.
#[test]
fn random_faults_lose_nothing_and_commit_nothing_twice() {
    for seed in 1..=24u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let persist_every = 1 + rng.below(3);
        let mut w = World::new(1 + rng.below(8) as usize, BIG_DISK, persist_every);
        for t in 0..8 {
            let len = rng.below(6 * CHUNK);
            w.start(&format!("s{seed}-t{t}"), len);
        }
        let mut faults = 0;
        for _ in 0..100_000 {
            if w.tx.outbox.is_empty() && w.broker.to_receiver.is_empty() {
                break;
            }
            if rng.one_in(8) {
                faults += 1;
                match rng.below(6) {
                    0 => {
                        let points = [
                            CrashPoint::Written,
                            CrashPoint::Recorded,
                            CrashPoint::Renamed,
                            CrashPoint::CleanedUp,
                        ];
                        w.rx.crash_at = Some(points[rng.below(4) as usize]);
                    }
                    1 => {
                        let now = w.now();
                        w.rx.crash_and_restart(now, &mut w.broker, &mut w.checker);
                    }
                    2 => {
                        let now = w.now();
                        w.tx.crash_and_restart(now, &mut w.broker);
                    }
                    3 => {
                        w.broker.restart(&mut rng);
                        w.tx.connection_lost();
                        let now = w.now();
                        w.rx.crash_and_restart(now, &mut w.broker, &mut w.checker);
                    }
                    4 => {
                        // Flip a byte anywhere in a queued message.
                        let n = w.broker.to_receiver.len() as u64;
                        if n > 0 {
                            let (_, body) = &mut w.broker.to_receiver[rng.below(n) as usize];
                            let at = rng.below(body.len() as u64) as usize;
                            body[at] ^= 1 << rng.below(8);
                        }
                    }
                    _ => {
                        // Duplicate a queued message.
                        let n = w.broker.to_receiver.len() as u64;
                        if n > 0 {
                            let entry = w.broker.to_receiver[rng.below(n) as usize].clone();
                            w.broker.to_receiver.push_back(entry);
                        }
                    }
                }
            }
            let (c, d, r) = (rng.below(4), rng.below(4), rng.below(3));
            if !w.tick_with(c as usize, d as usize, r as usize) {
                w.step += 10;
            }
        }
        // A flipped byte in a manifest or a header can make a transfer
        // fail cleanly (refused, or stuck until the sender's deadline):
        // those are not deliveries, and not losses either.
        let report = w.checker.report();
        assert!(report.is_valid(), "seed {seed}, {faults} faults: {report}");
        assert!(report.lost.is_empty() && report.duplicated.is_empty());
        for (tid, outcome) in &w.tx.outcomes {
            if let Outcome::Delivered(_) = outcome {
                let (object_id, bytes) = &w.originals[tid];
                assert!(
                    w.rx.disk.objects.get(object_id) == Some(bytes),
                    "seed {seed}: {tid}"
                );
            }
        }
        assert!(report.acknowledged >= 1, "seed {seed}: {report}");
    }
}
