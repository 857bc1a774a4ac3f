//! What the operator API shows of presence: the current peers, a stream of
//! peer events, and a way to hand negotiation requests to the XMPP driver.
//! The driver ([`crate::xmpp`]) writes here; [`crate::api`] reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use intercloud_proto::v1::{
    Capacity, NegotiateRequest, NegotiateResponse, Peer, PeerEvent, Readiness,
};
use tokio::sync::{broadcast, mpsc, oneshot};

/// A negotiation the operator asked for, with the channel for its answer.
#[derive(Debug)]
pub struct NegotiateCommand {
    /// What to ask for, and of whom.
    pub request: NegotiateRequest,
    /// Where the driver sends the outcome.
    pub reply: oneshot::Sender<NegotiateResponse>,
}

/// Shared view of presence.
#[derive(Debug)]
pub struct PeerView {
    peers: Mutex<Vec<Peer>>,
    events: broadcast::Sender<PeerEvent>,
    connected: AtomicBool,
    configured: bool,
    lease: Duration,
    negotiations: Mutex<Option<mpsc::Sender<NegotiateCommand>>>,
    own: Mutex<(Readiness, Capacity)>,
}

impl PeerView {
    /// A view; `configured` says whether this broker has presence at all.
    pub fn new(configured: bool, lease: Duration) -> Self {
        let (events, _) = broadcast::channel(256);
        Self {
            peers: Mutex::new(Vec::new()),
            events,
            connected: AtomicBool::new(false),
            configured,
            lease,
            negotiations: Mutex::new(None),
            own: Mutex::new((Readiness::default(), Capacity::default())),
        }
    }

    /// Whether presence is configured.
    pub fn configured(&self) -> bool {
        self.configured
    }

    /// The lease after which a silent peer is offline.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The peers, sorted by cloud id.
    pub fn peers(&self) -> Vec<Peer> {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the peers (the driver calls this after each change).
    pub fn set_peers(&self, mut peers: Vec<Peer>) {
        peers.sort_by(|a, b| a.cloud_id.cmp(&b.cloud_id));
        *self.peers.lock().unwrap_or_else(PoisonError::into_inner) = peers;
    }

    /// Publishes an event to watchers (none listening is fine).
    pub fn publish(&self, event: PeerEvent) {
        let _ = self.events.send(event);
    }

    /// A receiver of future events.
    pub fn subscribe(&self) -> broadcast::Receiver<PeerEvent> {
        self.events.subscribe()
    }

    /// Whether the XMPP connection is up.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Records the XMPP connection state.
    pub fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }

    /// This broker's own readiness and free capacity, as last announced.
    pub fn own(&self) -> (Readiness, Capacity) {
        *self.own.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records what this broker announces.
    pub fn set_own(&self, readiness: Readiness, free: Capacity) {
        *self.own.lock().unwrap_or_else(PoisonError::into_inner) = (readiness, free);
    }

    /// Where negotiation requests go (set by the driver).
    pub fn set_negotiator(&self, tx: mpsc::Sender<NegotiateCommand>) {
        *self
            .negotiations
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(tx);
    }

    /// The negotiation channel, if a driver runs.
    pub fn negotiator(&self) -> Option<mpsc::Sender<NegotiateCommand>> {
        self.negotiations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
