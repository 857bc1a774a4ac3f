//! A broker's view of its peers through XMPP presence: the peer list, the
//! stream of join/update/leave events, and the answer to a negotiation.

use intercloud_proto::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;

use super::capacity::{Capacity, Readiness, gibibytes, mebibytes};
use super::clock::{from_proto, relative, rfc3339, when};
use super::table::{EMPTY, Table, one_line};
use super::{Format, Render};

/// One peer as the broker sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    pub cloud_id: String,
    pub online: bool,
    /// `null` when the broker sent none.
    pub readiness: Option<Readiness>,
    /// `null` when the broker sent none.
    pub free: Option<Capacity>,
    pub descriptor_version: u64,
    pub grpc_endpoint: String,
    pub certificate_fingerprint: String,
    pub certificate_serial: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub certificate_not_after: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub announced_at: Option<OffsetDateTime>,
}

impl From<&pb::Peer> for Peer {
    fn from(p: &pb::Peer) -> Self {
        Self {
            cloud_id: p.cloud_id.clone(),
            online: p.online,
            readiness: p.readiness.as_ref().map(Readiness::from),
            free: p.free.as_ref().map(Capacity::from),
            descriptor_version: p.descriptor_version,
            grpc_endpoint: p.grpc_endpoint.clone(),
            certificate_fingerprint: p.certificate_fingerprint.clone(),
            certificate_serial: p.certificate_serial.clone(),
            certificate_not_after: from_proto(p.certificate_not_after.as_ref()),
            last_seen: from_proto(p.last_seen.as_ref()),
            announced_at: from_proto(p.announced_at.as_ref()),
        }
    }
}

impl Peer {
    /// `online` or `offline`.
    fn state(&self) -> &'static str {
        if self.online { "online" } else { "offline" }
    }

    fn readiness_words(&self) -> String {
        self.readiness
            .map_or_else(|| EMPTY.to_owned(), |r| r.words())
    }

    /// `ready,willing,able vcpu=16 mem=256GiB storage=9.8TiB`.
    fn summary(&self) -> String {
        match self.free {
            Some(free) => format!("{} {}", self.readiness_words(), free.summary()),
            None => self.readiness_words(),
        }
    }
}

/// `intercloudctl peers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerList {
    /// Whether the broker is connected to its XMPP server right now.
    pub presence_connected: bool,
    /// How long a silent peer stays listed as online.
    pub lease_seconds: u32,
    pub peers: Vec<Peer>,
}

impl From<&pb::ListPeersResponse> for PeerList {
    fn from(response: &pb::ListPeersResponse) -> Self {
        Self {
            presence_connected: response.presence_connected,
            lease_seconds: response.lease_seconds,
            peers: response.peers.iter().map(Peer::from).collect(),
        }
    }
}

impl Render for PeerList {
    fn table(&self, now: OffsetDateTime) -> String {
        let connection = if self.presence_connected {
            "connected"
        } else {
            "disconnected"
        };
        let mut out = format!("presence: {connection}, lease {}s\n", self.lease_seconds);
        if self.peers.is_empty() {
            out.push_str("no peers seen\n");
            return out;
        }
        let mut table = Table::new(&[
            "CLOUD",
            "STATE",
            "READINESS",
            "VCPU",
            "MEMORY",
            "STORAGE",
            "DESCRIPTOR",
            "ENDPOINT",
            "LAST SEEN",
        ]);
        for p in &self.peers {
            let (vcpu, memory, storage) = match p.free {
                Some(free) => (
                    free.vcpu.to_string(),
                    mebibytes(free.memory_mib),
                    gibibytes(free.storage_gib),
                ),
                None => (String::new(), String::new(), String::new()),
            };
            table.row(vec![
                p.cloud_id.clone(),
                p.state().to_owned(),
                p.readiness_words(),
                vcpu,
                memory,
                storage,
                p.descriptor_version.to_string(),
                p.grpc_endpoint.clone(),
                p.last_seen.map(|t| relative(now, t)).unwrap_or_default(),
            ]);
        }
        out.push_str(&table.render());
        out
    }
}

/// The word for a `PeerEvent.Kind`: `joined`, `updated`, `left`
/// (`unspecified` for 0, `unknown-<n>` for a value newer than this CLI).
pub fn peer_event_word(raw: i32) -> String {
    use pb::peer_event::Kind;
    let word = match Kind::try_from(raw) {
        Ok(Kind::Unspecified) => "unspecified",
        Ok(Kind::Joined) => "joined",
        Ok(Kind::Updated) => "updated",
        Ok(Kind::Left) => "left",
        Err(_) => return format!("unknown-{raw}"),
    };
    word.to_owned()
}

/// One event of `intercloudctl peers --watch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerChange {
    /// When the broker saw it; the time it arrived if the broker sent none.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `joined`, `updated` or `left` (see [`peer_event_word`]).
    pub kind: String,
    pub cloud_id: String,
    /// Why a peer left; empty otherwise.
    pub reason: String,
    pub peer: Option<Peer>,
}

impl PeerChange {
    /// The view of `event`, which arrived at `received`.
    pub fn new(event: &pb::PeerEvent, received: OffsetDateTime) -> Self {
        let peer = event.peer.as_ref().map(Peer::from);
        Self {
            at: from_proto(event.at.as_ref()).unwrap_or(received),
            kind: peer_event_word(event.kind),
            cloud_id: peer
                .as_ref()
                .map(|p| p.cloud_id.clone())
                .unwrap_or_default(),
            reason: event.reason.clone(),
            peer,
        }
    }

    /// One line ending with a newline: a line of text, or one compact JSON
    /// object (JSON Lines).
    pub fn line(&self, format: Format) -> anyhow::Result<String> {
        match format {
            Format::Table => Ok(self.text()),
            Format::Json => Ok(serde_json::to_string(self)? + "\n"),
        }
    }

    /// `2026-05-01T10:00:00Z  joined   cloud-b  ready,willing,able vcpu=16 …`.
    fn text(&self) -> String {
        let summary = match (self.kind.as_str(), &self.peer) {
            ("joined" | "updated", Some(peer)) => peer.summary(),
            _ => one_line(&self.reason),
        };
        let or_empty = |s: String| if s.is_empty() { EMPTY.to_owned() } else { s };
        format!(
            "{}  {:<7}  {}  {}\n",
            rfc3339(self.at),
            self.kind,
            or_empty(one_line(&self.cloud_id)),
            or_empty(summary)
        )
    }
}

/// `intercloudctl negotiate`: the peer's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reservation {
    pub accepted: bool,
    pub reservation_id: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Why the peer declined; empty when it accepted.
    pub reason: String,
}

impl From<&pb::NegotiateResponse> for Reservation {
    fn from(r: &pb::NegotiateResponse) -> Self {
        Self {
            accepted: r.accepted,
            reservation_id: r.reservation_id.clone(),
            expires_at: from_proto(r.expires_at.as_ref()),
            reason: r.reason.clone(),
        }
    }
}

impl Render for Reservation {
    fn table(&self, now: OffsetDateTime) -> String {
        if !self.accepted {
            let reason = one_line(&self.reason);
            let reason = if reason.is_empty() {
                "the peer gave no reason".to_owned()
            } else {
                reason
            };
            return format!("declined: {reason}\n");
        }
        let id = one_line(&self.reservation_id);
        match self.expires_at {
            Some(t) => format!("accepted: reservation {id} until {}\n", when(Some(t), now)),
            None => format!("accepted: reservation {id}\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use intercloud_proto::Timestamp;
    use intercloud_proto::v1::peer_event::Kind;
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    /// 2026-05-01T10:00:00Z.
    const NOW: i64 = 1_777_629_600;

    fn at(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: 0 })
    }

    fn peer(cloud: &str, online: bool) -> pb::Peer {
        pb::Peer {
            cloud_id: cloud.into(),
            online,
            readiness: Some(pb::Readiness {
                ready: true,
                willing: true,
                able: online,
            }),
            free: Some(pb::Capacity {
                vcpu: 16,
                memory_mib: 262_144,
                storage_gib: 10_035,
            }),
            descriptor_version: 3,
            grpc_endpoint: "127.0.0.1:7502".into(),
            certificate_fingerprint: "cd".repeat(32),
            certificate_serial: "2a".into(),
            certificate_not_after: at(NOW + 86_400),
            last_seen: at(NOW - 5),
            announced_at: at(NOW - 65),
        }
    }

    #[test]
    fn peer_json_has_the_proto_names_and_rfc3339_or_null_times() {
        let mut bare = peer("cloud-c", false);
        bare.readiness = None;
        bare.free = None;
        bare.announced_at = None;
        let list = PeerList::from(&pb::ListPeersResponse {
            peers: vec![peer("cloud-b", true), bare],
            presence_connected: true,
            lease_seconds: 15,
        });
        let json = serde_json::to_value(&list).expect("json");
        assert_eq!(
            json["peers"][0],
            json!({
                "cloud_id": "cloud-b",
                "online": true,
                "readiness": {"ready": true, "willing": true, "able": true},
                "free": {"vcpu": 16, "memory_mib": 262_144, "storage_gib": 10_035},
                "descriptor_version": 3,
                "grpc_endpoint": "127.0.0.1:7502",
                "certificate_fingerprint": "cd".repeat(32),
                "certificate_serial": "2a",
                "certificate_not_after": "2026-05-02T10:00:00Z",
                "last_seen": "2026-05-01T09:59:55Z",
                "announced_at": "2026-05-01T09:58:55Z",
            })
        );
        assert_eq!(json["peers"][1]["readiness"], serde_json::Value::Null);
        assert_eq!(json["peers"][1]["free"], serde_json::Value::Null);
        assert_eq!(json["peers"][1]["announced_at"], serde_json::Value::Null);
        assert_eq!(json["presence_connected"], true);
        assert_eq!(json["lease_seconds"], 15);
        assert_eq!(json.as_object().expect("object").len(), 3);
    }

    #[test]
    fn peer_table_has_a_presence_line_and_human_sizes() {
        let mut bare = peer("cloud-c", false);
        bare.readiness = None;
        bare.free = None;
        bare.last_seen = at(NOW - 600);
        let list = PeerList::from(&pb::ListPeersResponse {
            peers: vec![peer("cloud-b", true), bare],
            presence_connected: true,
            lease_seconds: 15,
        });
        let text = list.table(datetime!(2026-05-01 10:00:00 UTC));
        assert_eq!(
            text,
            "presence: connected, lease 15s\n\
             CLOUD     STATE     READINESS            VCPU   MEMORY    STORAGE   DESCRIPTOR   ENDPOINT         LAST SEEN\n\
             cloud-b   online    ready,willing,able   16     256 GiB   9.8 TiB   3            127.0.0.1:7502   5s ago\n\
             cloud-c   offline   -                    -      -         -         3            127.0.0.1:7502   10m ago\n"
        );
    }

    #[test]
    fn an_empty_peer_list_still_shows_the_presence_line() {
        let list = PeerList::from(&pb::ListPeersResponse {
            peers: Vec::new(),
            presence_connected: false,
            lease_seconds: 30,
        });
        assert_eq!(
            list.table(datetime!(2026-05-01 10:00:00 UTC)),
            "presence: disconnected, lease 30s\nno peers seen\n"
        );
    }

    #[test]
    fn event_kinds_map_to_lower_case_words() {
        assert_eq!(peer_event_word(Kind::Joined as i32), "joined");
        assert_eq!(peer_event_word(Kind::Updated as i32), "updated");
        assert_eq!(peer_event_word(Kind::Left as i32), "left");
        assert_eq!(peer_event_word(0), "unspecified");
        assert_eq!(peer_event_word(9), "unknown-9");
    }

    #[test]
    fn event_lines_summarize_joins_and_give_the_reason_for_leaving() {
        let received = datetime!(2026-05-01 10:00:07 UTC);
        let joined = pb::PeerEvent {
            kind: Kind::Joined as i32,
            peer: Some(peer("cloud-b", true)),
            reason: String::new(),
            at: at(NOW),
        };
        assert_eq!(
            PeerChange::new(&joined, received)
                .line(Format::Table)
                .expect("line"),
            "2026-05-01T10:00:00Z  joined   cloud-b  ready,willing,able vcpu=16 mem=256GiB storage=9.8TiB\n"
        );
        let mut busy = peer("cloud-b", true);
        busy.readiness = Some(pb::Readiness {
            ready: true,
            willing: false,
            able: false,
        });
        let updated = pb::PeerEvent {
            kind: Kind::Updated as i32,
            peer: Some(busy),
            reason: String::new(),
            at: at(NOW + 1),
        };
        assert_eq!(
            PeerChange::new(&updated, received)
                .line(Format::Table)
                .expect("line"),
            "2026-05-01T10:00:01Z  updated  cloud-b  ready vcpu=16 mem=256GiB storage=9.8TiB\n"
        );
        // No time from the broker: the time of arrival.
        let left = pb::PeerEvent {
            kind: Kind::Left as i32,
            peer: Some(peer("cloud-b", false)),
            reason: "lease\nexpired".into(),
            at: None,
        };
        assert_eq!(
            PeerChange::new(&left, received)
                .line(Format::Table)
                .expect("line"),
            "2026-05-01T10:00:07Z  left     cloud-b  lease expired\n"
        );
        let empty = pb::PeerEvent::default();
        assert_eq!(
            PeerChange::new(&empty, received)
                .line(Format::Table)
                .expect("line"),
            "2026-05-01T10:00:07Z  unspecified  -  -\n"
        );
    }

    #[test]
    fn event_json_is_one_compact_object_per_line() {
        let left = pb::PeerEvent {
            kind: Kind::Left as i32,
            peer: Some(peer("cloud-b", false)),
            reason: "revoked".into(),
            at: at(NOW),
        };
        let line = PeerChange::new(&left, datetime!(2026-05-01 10:00:07 UTC))
            .line(Format::Json)
            .expect("line");
        assert!(line.ends_with("}\n"), "{line}");
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let json: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert!(
            line.starts_with(r#"{"at":"2026-05-01T10:00:00Z","kind":"left","cloud_id":"cloud-b","reason":"revoked","peer":{"cloud_id":"cloud-b","#),
            "{line}"
        );
        assert_eq!(json.as_object().expect("object").len(), 5);
        assert_eq!(json["at"], "2026-05-01T10:00:00Z");
        assert_eq!(json["kind"], "left");
        assert_eq!(json["cloud_id"], "cloud-b");
        assert_eq!(json["reason"], "revoked");
        assert_eq!(json["peer"]["online"], false);
        assert_eq!(json["peer"]["free"]["vcpu"], 16);
        let bare = PeerChange::new(
            &pb::PeerEvent::default(),
            datetime!(2026-05-01 10:00:07 UTC),
        );
        let json = serde_json::to_value(&bare).expect("json");
        assert_eq!(json["peer"], serde_json::Value::Null);
        assert_eq!(json["cloud_id"], "");
    }

    #[test]
    fn a_reservation_reads_accepted_or_declined() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        let accepted = Reservation::from(&pb::NegotiateResponse {
            accepted: true,
            reservation_id: "r-7f3a".into(),
            expires_at: at(NOW + 300),
            reason: String::new(),
        });
        assert_eq!(
            accepted.table(now),
            "accepted: reservation r-7f3a until 2026-05-01T10:05:00Z (in 5m)\n"
        );
        assert_eq!(
            serde_json::to_value(&accepted).expect("json"),
            json!({
                "accepted": true,
                "reservation_id": "r-7f3a",
                "expires_at": "2026-05-01T10:05:00Z",
                "reason": "",
            })
        );
        let declined = Reservation::from(&pb::NegotiateResponse {
            accepted: false,
            reason: "not enough free vCPU".into(),
            ..pb::NegotiateResponse::default()
        });
        assert_eq!(declined.table(now), "declined: not enough free vCPU\n");
        assert_eq!(
            serde_json::to_value(&declined).expect("json"),
            json!({
                "accepted": false,
                "reservation_id": "",
                "expires_at": null,
                "reason": "not enough free vCPU",
            })
        );
        let silent = Reservation::from(&pb::NegotiateResponse::default());
        assert_eq!(silent.table(now), "declined: the peer gave no reason\n");
    }
}
