//! The peer table: who is in the federation, as verified announcements say,
//! with leases. Pure state: the driver feeds it verified announcements,
//! unavailable presences and timer ticks (`expire` at [`PeerTable::next_expiry`])
//! and forwards the returned [`PeerEvent`]s to `WatchPeers` subscribers.
//!
//! Invariants:
//! - an announcement is accepted only if its `(timestamp, sequence)` is
//!   strictly greater than the last accepted from that cloud; this memory
//!   survives the peer going offline, so an old announcement cannot bring it
//!   back;
//! - the event stream per cloud alternates `Joined` … `Left`: `Joined` is
//!   emitted only for a cloud the table holds as offline (or has never seen),
//!   `Left` only for one it holds as online.

use std::collections::BTreeMap;
use std::time::Duration;

use intercloud_trust::CloudId;
use time::OffsetDateTime;

use super::announcement::{Capacity, Readiness};
use super::verify::{Rejection, VerifiedAnnouncement};

/// What the table knows about one cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The cloud.
    pub cloud: CloudId,
    /// Heard within the lease and not gone.
    pub online: bool,
    /// When the last accepted announcement arrived (local clock).
    pub last_seen: OffsetDateTime,
    /// Ready / willing / able, as last announced.
    pub readiness: Readiness,
    /// Free capacity, as last announced.
    pub capacity: Capacity,
    /// Its service descriptor version.
    pub descriptor_version: u64,
    /// Its broker's gRPC endpoint, `host:port`.
    pub grpc_endpoint: String,
    /// SHA-256 of its certificate, hex.
    pub fingerprint: String,
    /// Its certificate's serial, hex (compare with CRLs).
    pub certificate_serial: String,
    /// When its certificate expires.
    pub certificate_not_after: OffsetDateTime,
    /// The last accepted announcement's timestamp (sender's clock, Unix ms).
    pub timestamp_ms: i64,
    /// The last accepted announcement's sequence number.
    pub sequence: u64,
}

impl Peer {
    fn from_verified(now: OffsetDateTime, verified: VerifiedAnnouncement) -> Peer {
        let (a, cert) = verified.into_parts();
        Peer {
            cloud: a.cloud,
            online: true,
            last_seen: now,
            readiness: a.readiness,
            capacity: a.capacity,
            descriptor_version: a.descriptor_version,
            grpc_endpoint: a.grpc_endpoint,
            fingerprint: a.fingerprint,
            certificate_serial: cert.serial,
            certificate_not_after: cert.not_after,
            timestamp_ms: a.timestamp_ms,
            sequence: a.sequence,
        }
    }

    /// Whether the two say the same thing (apart from when they were said).
    fn same_content(&self, other: &Peer) -> bool {
        self.readiness == other.readiness
            && self.capacity == other.capacity
            && self.descriptor_version == other.descriptor_version
            && self.grpc_endpoint == other.grpc_endpoint
            && self.fingerprint == other.fingerprint
    }
}

/// Why a peer left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LeaveReason {
    /// Not heard within the lease.
    LeaseExpired,
    /// Its broker left the room (XMPP unavailable presence).
    Unavailable,
    /// Its certificate was revoked.
    Revoked,
}

impl std::fmt::Display for LeaveReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::LeaseExpired => "lease expired",
            Self::Unavailable => "unavailable",
            Self::Revoked => "certificate revoked",
        })
    }
}

/// A change in the table, for `WatchPeers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// A cloud came online (new, or back after leaving).
    Joined(Peer),
    /// An online cloud announced something new.
    Updated(Peer),
    /// A cloud went offline.
    Left {
        /// The cloud.
        cloud: CloudId,
        /// Why.
        reason: LeaveReason,
    },
}

/// The peers heard from, keyed by cloud.
#[derive(Debug, Clone)]
pub struct PeerTable {
    lease: time::Duration,
    peers: BTreeMap<CloudId, Peer>,
}

impl PeerTable {
    /// A table where a peer not heard for `lease` goes offline.
    pub fn new(lease: Duration) -> Self {
        Self {
            lease: time::Duration::try_from(lease).unwrap_or(time::Duration::MAX),
            peers: BTreeMap::new(),
        }
    }

    /// Takes a verified announcement received at `now`.
    ///
    /// `Ok(None)` is a refresh that changes nothing but the lease;
    /// `Err(Rejection::Replay)` leaves the table as it was.
    pub fn observe(
        &mut self,
        now: OffsetDateTime,
        verified: VerifiedAnnouncement,
    ) -> Result<Option<PeerEvent>, Rejection> {
        let a = verified.announcement();
        let previous = self.peers.get(&a.cloud);
        if let Some(last) = previous
            && (a.timestamp_ms, a.sequence) <= (last.timestamp_ms, last.sequence)
        {
            return Err(Rejection::Replay {
                cloud: a.cloud.clone(),
                timestamp_ms: a.timestamp_ms,
                sequence: a.sequence,
                last_timestamp_ms: last.timestamp_ms,
                last_sequence: last.sequence,
            });
        }
        let peer = Peer::from_verified(now, verified);
        let event = match previous {
            Some(last) if last.online && last.same_content(&peer) => None,
            Some(last) if last.online => Some(PeerEvent::Updated(peer.clone())),
            _ => Some(PeerEvent::Joined(peer.clone())),
        };
        self.peers.insert(peer.cloud.clone(), peer);
        Ok(event)
    }

    /// The cloud's broker sent an unavailable presence (left the room).
    /// `Left` if it was online; `None` if unknown or already offline.
    pub fn unavailable(&mut self, now: OffsetDateTime, cloud: &CloudId) -> Option<PeerEvent> {
        let lease = self.lease;
        let peer = self.peers.get_mut(cloud).filter(|p| p.online)?;
        peer.online = false;
        // If the lease ran out before the goodbye, say so.
        let reason = if lease_over(peer, lease, now) {
            LeaveReason::LeaseExpired
        } else {
            LeaveReason::Unavailable
        };
        Some(PeerEvent::Left {
            cloud: cloud.clone(),
            reason,
        })
    }

    /// Marks offline every online peer not heard within the lease at `now`.
    pub fn expire(&mut self, now: OffsetDateTime) -> Vec<PeerEvent> {
        let lease = self.lease;
        self.peers
            .values_mut()
            .filter(|p| p.online && lease_over(p, lease, now))
            .map(|p| {
                p.online = false;
                PeerEvent::Left {
                    cloud: p.cloud.clone(),
                    reason: LeaveReason::LeaseExpired,
                }
            })
            .collect()
    }

    /// Drops the peers whose certificate serial (hex) `is_revoked` says is
    /// revoked, e.g. `|s| anchors.lists_serial(s)` after a CRL refresh.
    /// `Left` for each one that was online.
    pub fn forget_revoked(&mut self, is_revoked: impl Fn(&str) -> bool) -> Vec<PeerEvent> {
        let revoked: Vec<CloudId> = self
            .peers
            .values()
            .filter(|p| is_revoked(&p.certificate_serial))
            .map(|p| p.cloud.clone())
            .collect();
        revoked
            .into_iter()
            .filter_map(|cloud| {
                let peer = self.peers.remove(&cloud)?;
                peer.online.then_some(PeerEvent::Left {
                    cloud,
                    reason: LeaveReason::Revoked,
                })
            })
            .collect()
    }

    /// Every peer ever heard (and not revoked), sorted by cloud; `online` is
    /// as of `now`, even if [`expire`](Self::expire) has not run yet.
    pub fn peers(&self, now: OffsetDateTime) -> Vec<Peer> {
        self.peers.values().map(|p| self.as_of(p, now)).collect()
    }

    /// One peer, as of `now`.
    pub fn peer(&self, now: OffsetDateTime, cloud: &CloudId) -> Option<Peer> {
        self.peers.get(cloud).map(|p| self.as_of(p, now))
    }

    /// When the next online peer's lease runs out: the time to call
    /// [`expire`](Self::expire). `None` if no peer is online (or no lease
    /// can end, with an absurdly long lease).
    pub fn next_expiry(&self) -> Option<OffsetDateTime> {
        self.peers
            .values()
            .filter(|p| p.online)
            .filter_map(|p| p.last_seen.checked_add(self.lease))
            .min()
    }

    /// The lease.
    pub fn lease(&self) -> Duration {
        Duration::try_from(self.lease).unwrap_or(Duration::MAX)
    }

    fn as_of(&self, peer: &Peer, now: OffsetDateTime) -> Peer {
        let mut peer = peer.clone();
        peer.online = peer.online && !lease_over(&peer, self.lease, now);
        peer
    }
}

/// Whether `now` is at or past the end of the peer's lease.
fn lease_over(peer: &Peer, lease: time::Duration, now: OffsetDateTime) -> bool {
    peer.last_seen
        .checked_add(lease)
        .is_some_and(|end| now >= end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::testing::{NOW, cloud, now_ms, pki, unsigned, verified};

    const LEASE: Duration = Duration::from_secs(30);

    fn announce(cloud_id: &str, offset_ms: i64, seq: u64) -> VerifiedAnnouncement {
        let party = if cloud_id == "cloud-a" {
            &pki().cloud_a
        } else {
            &pki().cloud_b
        };
        verified(unsigned(party, cloud_id, now_ms() + offset_ms, seq))
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn joins_refreshes_and_updates() {
        let mut table = PeerTable::new(LEASE);
        assert_eq!(table.next_expiry(), None);
        let event = table.observe(NOW, announce("cloud-a", 0, 1)).expect("ok");
        let Some(PeerEvent::Joined(peer)) = event.clone() else {
            panic!("expected Joined, got {event:?}");
        };
        assert!(peer.online);
        assert_eq!(peer.capacity.vcpu, 64);
        assert_eq!(peer.certificate_serial.len() % 2, 0);
        assert_eq!(table.next_expiry(), Some(NOW + LEASE));

        // Same content, later: only the lease moves.
        let later = NOW + secs(10);
        assert_eq!(
            table.observe(later, announce("cloud-a", 10_000, 2)),
            Ok(None)
        );
        assert_eq!(table.next_expiry(), Some(later + LEASE));

        // New content: Updated.
        let mut fields = unsigned(&pki().cloud_a, "cloud-a", now_ms() + 11_000, 3);
        fields.capacity.memory_mib = 1024;
        let event = table.observe(later, verified(fields)).expect("ok");
        assert!(
            matches!(&event, Some(PeerEvent::Updated(p)) if p.capacity.memory_mib == 1024),
            "{event:?}"
        );
        assert_eq!(
            table
                .peer(later, &cloud("cloud-a"))
                .map(|p| p.capacity.memory_mib),
            Some(1024)
        );
    }

    #[test]
    fn replays_are_refused() {
        let mut table = PeerTable::new(LEASE);
        table
            .observe(NOW, announce("cloud-a", 0, 5))
            .expect("first");
        for (offset, seq) in [(0, 5), (0, 4), (-1, 99)] {
            let err = table
                .observe(NOW, announce("cloud-a", offset, seq))
                .expect_err("replay");
            assert!(matches!(err, Rejection::Replay { .. }), "{err}");
            assert!(err.to_string().contains("replayed"));
        }
        // Same millisecond, higher sequence: newer.
        assert_eq!(table.observe(NOW, announce("cloud-a", 0, 6)), Ok(None));
        // Another cloud has its own history.
        assert!(matches!(
            table.observe(NOW, announce("cloud-b", -5, 0)),
            Ok(Some(PeerEvent::Joined(_)))
        ));
    }

    #[test]
    fn leases_expire() {
        let mut table = PeerTable::new(LEASE);
        table.observe(NOW, announce("cloud-a", 0, 1)).expect("a");
        table
            .observe(NOW + secs(5), announce("cloud-b", 5_000, 1))
            .expect("b");
        assert_eq!(table.next_expiry(), Some(NOW + LEASE));

        assert!(table.expire(NOW + LEASE - secs(1)).is_empty());
        // Offline as seen by peers(now) even before expire runs.
        let listed = table.peers(NOW + LEASE);
        assert_eq!(
            listed
                .iter()
                .map(|p| (p.cloud.as_str(), p.online))
                .collect::<Vec<_>>(),
            [("cloud-a", false), ("cloud-b", true)]
        );

        assert_eq!(
            table.expire(NOW + LEASE),
            [PeerEvent::Left {
                cloud: cloud("cloud-a"),
                reason: LeaveReason::LeaseExpired
            }]
        );
        assert!(table.expire(NOW + LEASE).is_empty(), "left only once");
        assert_eq!(table.next_expiry(), Some(NOW + secs(5) + LEASE));

        // An old announcement cannot bring it back; a new one can.
        assert!(matches!(
            table.observe(NOW + LEASE, announce("cloud-a", 0, 1)),
            Err(Rejection::Replay { .. })
        ));
        assert!(matches!(
            table.observe(NOW + LEASE, announce("cloud-a", 30_000, 1)),
            Ok(Some(PeerEvent::Joined(_)))
        ));
    }

    #[test]
    fn unavailable_presence_takes_a_peer_offline() {
        let mut table = PeerTable::new(LEASE);
        assert_eq!(table.unavailable(NOW, &cloud("cloud-a")), None);
        table.observe(NOW, announce("cloud-a", 0, 1)).expect("a");
        assert_eq!(
            table.unavailable(NOW + secs(1), &cloud("cloud-a")),
            Some(PeerEvent::Left {
                cloud: cloud("cloud-a"),
                reason: LeaveReason::Unavailable
            })
        );
        assert_eq!(table.unavailable(NOW + secs(2), &cloud("cloud-a")), None);
        assert!(table.expire(NOW + secs(60)).is_empty());
        assert_eq!(table.next_expiry(), None);
        assert!(!table.peers(NOW + secs(2))[0].online);
        // Back with a fresh announcement.
        assert!(matches!(
            table.observe(NOW + secs(3), announce("cloud-a", 3_000, 1)),
            Ok(Some(PeerEvent::Joined(_)))
        ));
        // A goodbye after the lease already ran out reports the lease.
        assert_eq!(
            table.unavailable(NOW + secs(3) + LEASE, &cloud("cloud-a")),
            Some(PeerEvent::Left {
                cloud: cloud("cloud-a"),
                reason: LeaveReason::LeaseExpired
            })
        );
    }

    #[test]
    fn revoked_peers_are_forgotten() {
        let mut table = PeerTable::new(LEASE);
        table.observe(NOW, announce("cloud-a", 0, 1)).expect("a");
        table.observe(NOW, announce("cloud-b", 0, 1)).expect("b");
        let serial_a = table.peers(NOW)[0].certificate_serial.clone();
        assert!(table.forget_revoked(|_| false).is_empty());
        assert_eq!(
            table.forget_revoked(|s| s == serial_a),
            [PeerEvent::Left {
                cloud: cloud("cloud-a"),
                reason: LeaveReason::Revoked
            }]
        );
        let remaining: Vec<_> = table.peers(NOW).into_iter().map(|p| p.cloud).collect();
        assert_eq!(remaining, [cloud("cloud-b")]);
        // An offline peer is dropped silently.
        table.unavailable(NOW, &cloud("cloud-b"));
        assert!(table.forget_revoked(|_| true).is_empty());
        assert!(table.peers(NOW).is_empty());
    }

    #[test]
    fn peers_carry_their_certificate_facts() {
        let mut table = PeerTable::new(LEASE);
        let v = announce("cloud-b", 0, 1);
        let cert = v.certificate().clone();
        table.observe(NOW, v).expect("b");
        table.observe(NOW, announce("cloud-a", 0, 1)).expect("a");
        let peers = table.peers(NOW);
        assert_eq!(peers[0].cloud, cloud("cloud-a"));
        assert_eq!(peers[1].certificate_serial, cert.serial);
        assert_eq!(peers[1].certificate_not_after, cert.not_after);
        assert_eq!(peers[1].fingerprint, cert.fingerprint);
        assert_eq!(peers[1].grpc_endpoint, "127.0.0.1:7501");
        assert_eq!(peers[1].last_seen, NOW);
        assert_eq!(table.lease(), LEASE);
    }

    #[test]
    fn a_huge_lease_never_expires() {
        let mut table = PeerTable::new(Duration::MAX);
        table.observe(NOW, announce("cloud-a", 0, 1)).expect("a");
        assert!(table.expire(NOW + secs(10 * 365 * 86_400)).is_empty());
        assert_eq!(table.next_expiry(), None);
    }
}
