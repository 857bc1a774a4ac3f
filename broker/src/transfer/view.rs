//! What the operator API shows of transfers: the latest state of each, and
//! a broadcast of changes for `WatchTransfers`.
//!
//! Drivers report often (every confirm, every batch of writes); the view
//! keeps every report but broadcasts a transfer's progress at most every
//! [`PROGRESS_EVERY`], and a change of state always.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use intercloud_proto::v1::{Transfer, TransferDirection};
use intercloud_transfer::{Manifest, Progress};
use tokio::sync::broadcast;

/// The least time between two broadcasts of one transfer's progress.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Finished transfers remembered for `ListTransfers --all`.
const KEEP_FINISHED: usize = 256;

/// Words for the states a transfer goes through.
pub mod state {
    /// Outgoing: the manifest is out, no answer yet.
    pub const ANNOUNCING: &str = "announcing";
    /// Outgoing: publishing chunks.
    pub const SENDING: &str = "sending";
    /// Outgoing: everything confirmed by RabbitMQ, waiting for the receipt.
    pub const AWAITING_RECEIPT: &str = "awaiting receipt";
    /// Incoming: chunks arriving.
    pub const RECEIVING: &str = "receiving";
    /// Incoming: every chunk here, checking the whole.
    pub const VERIFYING: &str = "verifying";
    /// Committed at the receiver (both directions).
    pub const COMMITTED: &str = "committed";
    /// Refused by the receiver (both directions).
    pub const REFUSED: &str = "refused";
    /// Given up for another reason.
    pub const FAILED: &str = "failed";
}

struct Entry {
    transfer: Transfer,
    last_broadcast: Option<Instant>,
    finished_seq: Option<u64>,
}

/// The table of transfers.
pub struct TransferView {
    entries: Mutex<BTreeMap<String, Entry>>,
    changes: broadcast::Sender<Transfer>,
    finished: Mutex<u64>,
}

impl std::fmt::Debug for TransferView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferView").finish_non_exhaustive()
    }
}

impl Default for TransferView {
    fn default() -> Self {
        Self {
            entries: Mutex::new(BTreeMap::new()),
            changes: broadcast::channel(1024).0,
            finished: Mutex::new(0),
        }
    }
}

/// A transfer as first reported.
pub fn new_transfer(manifest: &Manifest, direction: TransferDirection, state: &str) -> Transfer {
    let peer = match direction {
        TransferDirection::Incoming => manifest.sender(),
        _ => manifest.receiver(),
    };
    let now = intercloud_daemon::grpc::timestamp(time::OffsetDateTime::now_utc());
    Transfer {
        transfer_id: manifest.transfer_id().to_string(),
        object_id: manifest.object_id().to_string(),
        kind: manifest.kind().to_string(),
        direction: direction as i32,
        peer_cloud: peer.to_string(),
        size: manifest.size(),
        bytes_done: 0,
        rate: 0.0,
        eta_seconds: None,
        state: state.to_owned(),
        detail: String::new(),
        started_at: Some(now),
        updated_at: Some(now),
        sha256: manifest.sha256().to_string(),
        finished: false,
    }
}

/// The view's key of an incoming transfer (a cloud may send to itself: the
/// same transfer is then both incoming and outgoing).
pub fn incoming(id: &str) -> String {
    format!("in:{id}")
}

/// The view's key of an outgoing transfer.
pub fn outgoing(id: &str) -> String {
    format!("out:{id}")
}

impl TransferView {
    /// Adds or replaces a transfer.
    pub fn start(&self, transfer: Transfer) {
        let key = if transfer.direction == TransferDirection::Incoming as i32 {
            incoming(&transfer.transfer_id)
        } else {
            outgoing(&transfer.transfer_id)
        };
        self.report(&key, |t| *t = transfer);
    }

    /// Updates the progress of a transfer (by its [`incoming`] or
    /// [`outgoing`] key).
    pub fn progress(&self, id: &str, progress: &Progress) {
        self.report(id, |t| {
            t.bytes_done = progress.bytes_done;
            t.rate = progress.rate.unwrap_or(0.0);
            t.eta_seconds = progress.eta.map(|d| d.as_secs_f64());
        });
    }

    /// Moves a transfer to `state`, with `detail` (empty if all is well).
    pub fn set_state(&self, id: &str, state: &str, detail: &str) {
        let finished = [
            self::state::COMMITTED,
            self::state::REFUSED,
            self::state::FAILED,
        ]
        .contains(&state);
        self.report(id, |t| {
            t.state = state.to_owned();
            t.detail = detail.to_owned();
            t.finished = finished;
            if state == self::state::COMMITTED {
                t.bytes_done = t.size;
                t.eta_seconds = Some(0.0);
            }
        });
    }

    fn report(&self, id: &str, change: impl FnOnce(&mut Transfer)) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry(id.to_owned()).or_insert_with(|| Entry {
            transfer: Transfer {
                transfer_id: id.split_once(':').map_or(id, |(_, plain)| plain).to_owned(),
                ..Transfer::default()
            },
            last_broadcast: None,
            finished_seq: None,
        });
        let before = (entry.transfer.state.clone(), entry.transfer.detail.clone());
        change(&mut entry.transfer);
        entry.transfer.updated_at = Some(intercloud_daemon::grpc::timestamp(
            time::OffsetDateTime::now_utc(),
        ));
        let state_changed = before != (entry.transfer.state.clone(), entry.transfer.detail.clone());
        let due = entry
            .last_broadcast
            .is_none_or(|at| now.duration_since(at) >= PROGRESS_EVERY);
        if state_changed || due {
            entry.last_broadcast = Some(now);
            let _ = self.changes.send(entry.transfer.clone());
        }
        if entry.transfer.finished && entry.finished_seq.is_none() {
            let mut finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
            *finished += 1;
            entry.finished_seq = Some(*finished);
            let oldest_kept = finished.saturating_sub(KEEP_FINISHED as u64);
            entries.retain(|_, e| e.finished_seq.is_none_or(|seq| seq > oldest_kept));
        }
    }

    /// Every transfer (finished ones only with `include_finished`), oldest
    /// first.
    pub fn list(&self, include_finished: bool) -> Vec<Transfer> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<Transfer> = entries
            .values()
            .filter(|e| include_finished || !e.transfer.finished)
            .map(|e| e.transfer.clone())
            .collect();
        list.sort_by_key(|t| t.started_at.map(|s| (s.seconds, s.nanos)));
        list
    }

    /// One transfer.
    pub fn get(&self, id: &str) -> Option<Transfer> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(id).map(|e| e.transfer.clone())
    }

    /// Changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Transfer> {
        self.changes.subscribe()
    }
}
