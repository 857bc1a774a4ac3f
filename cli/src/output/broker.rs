//! A broker's `Status`.

use intercloud_proto::v1::{self as pb, StatusResponse};
use serde::Serialize;
use time::OffsetDateTime;

use super::capacity::{Capacity, Readiness};
use super::clock::{from_proto, relative, when};
use super::table::{fields, one_line};
use super::{Render, federation_state_word};

/// Whether the broker's presence (XMPP) is up, as far as we can tell.
///
/// `Status.presence_connected` is false both when presence is not configured
/// and when it is disconnected; the `status` command tells them apart by
/// asking `ListPeers`, which fails with FAILED_PRECONDITION when there is no
/// `[xmpp]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Connected,
    Disconnected,
    NotConfigured,
    /// Not connected, and we could not learn whether it is configured.
    NotConnected,
}

impl Presence {
    fn words(self) -> &'static str {
        match self {
            Self::Connected => "yes",
            Self::Disconnected | Self::NotConnected => "no",
            Self::NotConfigured => "not configured",
        }
    }
}

/// Where the cloud's descriptor stands in the root's directory
/// (`DescriptorStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DescriptorStatus {
    /// The descriptor file; empty when none is configured.
    pub path: String,
    /// The version in force at the root; 0 before the first publication.
    pub published_version: u64,
    /// `not configured`, `pending`, `published`, `invalid`, `refused` or
    /// `root unreachable`, as the broker wrote it.
    pub state: String,
    pub last_error: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub published_at: Option<OffsetDateTime>,
    pub triples: u64,
}

impl From<&pb::DescriptorStatus> for DescriptorStatus {
    fn from(d: &pb::DescriptorStatus) -> Self {
        Self {
            path: d.path.clone(),
            published_version: d.published_version,
            state: d.state.clone(),
            last_error: d.last_error.clone(),
            published_at: from_proto(d.published_at.as_ref()),
            triples: d.triples,
        }
    }
}

impl DescriptorStatus {
    /// `published v3 (142 triples) from /etc/x.ttl, 2026-… (5m ago)`,
    /// `not configured`, `refused: <why>; v2 stays published`.
    fn words(&self, now: OffsetDateTime) -> String {
        let state = one_line(&self.state);
        match state.as_str() {
            "" | "not configured" => "not configured".to_owned(),
            "published" => {
                let mut words = format!(
                    "published v{} ({} triples)",
                    self.published_version, self.triples
                );
                if !self.path.is_empty() {
                    words.push_str(&format!(" from {}", one_line(&self.path)));
                }
                if self.published_at.is_some() {
                    words.push_str(&format!(", {}", when(self.published_at, now)));
                }
                words
            }
            // pending, invalid, refused, root unreachable, or newer words.
            _ => {
                let mut words = state;
                let error = one_line(&self.last_error);
                if !error.is_empty() {
                    words.push_str(&format!(": {error}"));
                }
                if self.published_version > 0 {
                    words.push_str(&format!("; v{} stays published", self.published_version));
                }
                words
            }
        }
    }
}

/// This broker's clock against the root's NTP server (`ClockStatus`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClockStatus {
    /// The root's NTP address; empty when not configured.
    pub server: String,
    /// `not configured`, `starting`, `ok`, `degraded` or `unsynchronised`,
    /// as the broker wrote it.
    pub health: String,
    pub detail: String,
    /// The root's clock minus the local clock (positive: the local clock
    /// is behind).
    pub offset_ms: f64,
    pub delay_ms: f64,
    pub jitter_ms: f64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_sync: Option<OffsetDateTime>,
    pub samples: u32,
    pub stratum: u32,
    pub reference_id: String,
}

impl From<&pb::ClockStatus> for ClockStatus {
    fn from(c: &pb::ClockStatus) -> Self {
        Self {
            server: c.server.clone(),
            health: c.health.clone(),
            detail: c.detail.clone(),
            offset_ms: c.offset_ms,
            delay_ms: c.delay_ms,
            jitter_ms: c.jitter_ms,
            last_sync: from_proto(c.last_sync.as_ref()),
            samples: c.samples,
            stratum: c.stratum,
            reference_id: c.reference_id.clone(),
        }
    }
}

impl ClockStatus {
    /// `ok, offset +0.042 ms, delay 0.120 ms, jitter 0.010 ms (8 samples,
    /// root stratum 10 LOCL, synced 1s ago)`; `degraded: <why> (delay …)`;
    /// `unsynchronised: <why> (root 127.0.0.1:7123)`; `not configured`.
    fn words(&self, now: OffsetDateTime) -> String {
        let health = one_line(&self.health);
        let detail = one_line(&self.detail);
        match health.as_str() {
            "" | "not configured" => "not configured".to_owned(),
            "ok" => format!(
                "ok, offset {:+.3} ms, delay {:.3} ms, jitter {:.3} ms ({})",
                self.offset_ms,
                self.delay_ms,
                self.jitter_ms,
                self.context(now)
            ),
            "degraded" => format!(
                "degraded: {detail} (delay {:.3} ms, jitter {:.3} ms, {})",
                self.delay_ms,
                self.jitter_ms,
                self.context(now)
            ),
            // starting, unsynchronised, or newer words.
            _ => {
                let mut words = health;
                if !detail.is_empty() {
                    words.push_str(&format!(": {detail}"));
                }
                let server = one_line(&self.server);
                if !server.is_empty() {
                    words.push_str(&format!(" (root {server})"));
                }
                words
            }
        }
    }

    /// `8 samples, root stratum 10 LOCL, synced 1s ago`.
    fn context(&self, now: OffsetDateTime) -> String {
        let mut parts = vec![match self.samples {
            1 => "1 sample".to_owned(),
            n => format!("{n} samples"),
        }];
        if self.stratum > 0 {
            let reference = one_line(&self.reference_id);
            parts.push(if reference.is_empty() {
                format!("root stratum {}", self.stratum)
            } else {
                format!("root stratum {} {reference}", self.stratum)
            });
        }
        if let Some(t) = self.last_sync {
            parts.push(match relative(now, t).as_str() {
                "now" => "synced just now".to_owned(),
                ago => format!("synced {ago}"),
            });
        }
        parts.join(", ")
    }
}

/// `intercloudctl status` against a broker context.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrokerStatus {
    /// Always `"broker"`, to tell this document from a root's status.
    pub kind: &'static str,
    pub cloud_id: String,
    pub federation: String,
    pub spiffe_id: String,
    /// A word such as `federated` (see [`federation_state_word`]).
    pub state: String,
    pub state_detail: String,
    pub certificate_serial: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub certificate_not_after: Option<OffsetDateTime>,
    pub certificate_fingerprint: String,
    pub root_endpoint: String,
    pub root_reachable: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_root_contact: Option<OffsetDateTime>,
    pub last_error: String,
    pub federation_members: u32,
    pub broker_version: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// False both when presence is not configured and when it is down.
    pub presence_connected: bool,
    pub peers_online: u32,
    /// This cloud's own readiness; `null` when the broker sent none.
    pub readiness: Option<Readiness>,
    /// This cloud's own free capacity; `null` when the broker sent none.
    pub free: Option<Capacity>,
    /// This cloud's descriptor in the root's directory; `null` when the
    /// broker sent none (a broker older than the directory).
    pub descriptor: Option<DescriptorStatus>,
    /// This broker's clock against the root's NTP server; `null` when the
    /// broker sent none (a broker older than the time source).
    pub clock: Option<ClockStatus>,
    /// The table's reading of `presence_connected` (not in the JSON, whose
    /// keys are a contract).
    #[serde(skip)]
    pub presence: Presence,
}

impl From<&StatusResponse> for BrokerStatus {
    fn from(status: &StatusResponse) -> Self {
        Self {
            kind: "broker",
            cloud_id: status.cloud_id.clone(),
            federation: status.federation.clone(),
            spiffe_id: status.spiffe_id.clone(),
            state: federation_state_word(status.state),
            state_detail: status.state_detail.clone(),
            certificate_serial: status.certificate_serial.clone(),
            certificate_not_after: from_proto(status.certificate_not_after.as_ref()),
            certificate_fingerprint: status.certificate_fingerprint.clone(),
            root_endpoint: status.root_endpoint.clone(),
            root_reachable: status.root_reachable,
            last_root_contact: from_proto(status.last_root_contact.as_ref()),
            last_error: status.last_error.clone(),
            federation_members: status.federation_members,
            broker_version: status.broker_version.clone(),
            started_at: from_proto(status.started_at.as_ref()),
            presence_connected: status.presence_connected,
            peers_online: status.peers_online,
            readiness: status.readiness.as_ref().map(Readiness::from),
            free: status.free.as_ref().map(Capacity::from),
            descriptor: status.descriptor.as_ref().map(DescriptorStatus::from),
            clock: status.clock.as_ref().map(ClockStatus::from),
            presence: if status.presence_connected {
                Presence::Connected
            } else {
                Presence::NotConnected
            },
        }
    }
}

impl Render for BrokerStatus {
    fn table(&self, now: OffsetDateTime) -> String {
        let root = match (self.root_endpoint.as_str(), self.root_reachable) {
            ("", _) => String::new(),
            (endpoint, true) => format!("{endpoint} (reachable)"),
            (endpoint, false) => format!("{endpoint} (unreachable)"),
        };
        fields(&[
            ("Cloud", self.cloud_id.clone()),
            ("SPIFFE ID", self.spiffe_id.clone()),
            ("State", self.state.clone()),
            ("State detail", self.state_detail.clone()),
            ("Certificate serial", self.certificate_serial.clone()),
            ("Certificate expires", when(self.certificate_not_after, now)),
            (
                "Certificate fingerprint",
                self.certificate_fingerprint.clone(),
            ),
            ("Root", root),
            ("Last root contact", when(self.last_root_contact, now)),
            ("Last error", self.last_error.clone()),
            ("Federation members", self.federation_members.to_string()),
            ("Presence connected", self.presence.words().to_owned()),
            ("Peers online", self.peers_online.to_string()),
            (
                "Readiness",
                self.readiness.map(|r| r.words()).unwrap_or_default(),
            ),
            (
                "Free capacity",
                self.free.map(|f| f.words()).unwrap_or_default(),
            ),
            (
                "Descriptor",
                self.descriptor
                    .as_ref()
                    .map(|d| d.words(now))
                    .unwrap_or_default(),
            ),
            (
                "Clock",
                self.clock
                    .as_ref()
                    .map(|c| c.words(now))
                    .unwrap_or_default(),
            ),
            ("Version", self.broker_version.clone()),
            ("Started", when(self.started_at, now)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use intercloud_proto::Timestamp;
    use intercloud_proto::v1::{self as pb, FederationState};
    use time::macros::datetime;

    use super::*;

    pub(crate) fn sample() -> StatusResponse {
        StatusResponse {
            cloud_id: "cloud-a".into(),
            federation: "intercloud.lab".into(),
            spiffe_id: "spiffe://intercloud.lab/cloud/cloud-a".into(),
            state: FederationState::Federated as i32,
            state_detail: "federated with intercloud.lab".into(),
            certificate_serial: "1f02".into(),
            certificate_not_after: Some(Timestamp {
                seconds: 1_777_712_400,
                nanos: 0,
            }),
            certificate_fingerprint: "ab".repeat(32),
            root_endpoint: "127.0.0.1:7443".into(),
            root_reachable: true,
            last_root_contact: Some(Timestamp {
                seconds: 1_777_629_595,
                nanos: 0,
            }),
            last_error: String::new(),
            broker_version: "0.1.0".into(),
            federation_members: 3,
            started_at: None,
            presence_connected: true,
            peers_online: 2,
            readiness: Some(pb::Readiness {
                ready: true,
                willing: true,
                able: false,
            }),
            free: Some(pb::Capacity {
                vcpu: 0,
                memory_mib: 1536,
                storage_gib: 500,
            }),
            descriptor: Some(pb::DescriptorStatus {
                path: "/etc/intercloud/cloud-a.ttl".into(),
                published_version: 3,
                state: "published".into(),
                last_error: String::new(),
                published_at: Some(Timestamp {
                    seconds: 1_777_629_300,
                    nanos: 0,
                }),
                triples: 142,
            }),
            clock: Some(pb::ClockStatus {
                server: "127.0.0.1:7123".into(),
                health: "ok".into(),
                detail: "offset +0.042 ms within the 100 ms threshold".into(),
                offset_ms: 0.042,
                delay_ms: 0.12,
                jitter_ms: 0.01,
                last_sync: Some(Timestamp {
                    seconds: 1_777_629_599,
                    nanos: 0,
                }),
                samples: 8,
                stratum: 10,
                reference_id: "LOCL".into(),
            }),
        }
    }

    #[test]
    fn json_has_snake_case_keys_and_the_state_as_a_word() {
        let json = serde_json::to_value(BrokerStatus::from(&sample())).expect("json");
        assert_eq!(json["kind"], "broker");
        assert_eq!(json["state"], "federated");
        assert_eq!(json["cloud_id"], "cloud-a");
        assert_eq!(json["spiffe_id"], "spiffe://intercloud.lab/cloud/cloud-a");
        assert_eq!(json["certificate_not_after"], "2026-05-02T09:00:00Z");
        assert_eq!(json["last_root_contact"], "2026-05-01T09:59:55Z");
        assert_eq!(json["started_at"], serde_json::Value::Null);
        assert_eq!(json["root_reachable"], true);
        assert_eq!(json["federation_members"], 3);
        assert_eq!(json["last_error"], "");
        assert_eq!(json["presence_connected"], true);
        assert_eq!(json["peers_online"], 2);
        assert_eq!(
            json["readiness"],
            serde_json::json!({"ready": true, "willing": true, "able": false})
        );
        assert_eq!(
            json["free"],
            serde_json::json!({"vcpu": 0, "memory_mib": 1536, "storage_gib": 500})
        );
        assert_eq!(
            json["descriptor"],
            serde_json::json!({
                "path": "/etc/intercloud/cloud-a.ttl",
                "published_version": 3,
                "state": "published",
                "last_error": "",
                "published_at": "2026-05-01T09:55:00Z",
                "triples": 142,
            })
        );
        assert_eq!(
            json["clock"],
            serde_json::json!({
                "server": "127.0.0.1:7123",
                "health": "ok",
                "detail": "offset +0.042 ms within the 100 ms threshold",
                "offset_ms": 0.042,
                "delay_ms": 0.12,
                "jitter_ms": 0.01,
                "last_sync": "2026-05-01T09:59:59Z",
                "samples": 8,
                "stratum": 10,
                "reference_id": "LOCL",
            })
        );
        let keys: Vec<&String> = json.as_object().expect("object").keys().collect();
        assert_eq!(keys.len(), 22);
    }

    #[test]
    fn the_descriptor_line_says_published_not_configured_or_why_not() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        let mut status = sample();
        let text = BrokerStatus::from(&status).table(now);
        assert!(
            text.contains(
                "Descriptor:               published v3 (142 triples) from /etc/intercloud/cloud-a.ttl, 2026-05-01T09:55:00Z (5m ago)\n"
            ),
            "{text}"
        );
        status.descriptor = Some(pb::DescriptorStatus {
            state: "not configured".into(),
            ..pb::DescriptorStatus::default()
        });
        let text = BrokerStatus::from(&status).table(now);
        assert!(
            text.contains("Descriptor:               not configured\n"),
            "{text}"
        );
        status.descriptor = Some(pb::DescriptorStatus {
            path: "/etc/intercloud/cloud-a.ttl".into(),
            published_version: 3,
            state: "refused".into(),
            last_error: "version 2 is lower than\nthe published 3".into(),
            published_at: None,
            triples: 142,
        });
        let text = BrokerStatus::from(&status).table(now);
        assert!(
            text.contains(
                "Descriptor:               refused: version 2 is lower than the published 3; v3 stays published\n"
            ),
            "{text}"
        );
        status.descriptor = Some(pb::DescriptorStatus {
            path: "/etc/intercloud/cloud-a.ttl".into(),
            state: "invalid".into(),
            last_error: "ics:StorageClassShape ic:replicationFactor minInclusive".into(),
            ..pb::DescriptorStatus::default()
        });
        let text = BrokerStatus::from(&status).table(now);
        assert!(
            text.contains(
                "Descriptor:               invalid: ics:StorageClassShape ic:replicationFactor minInclusive\n"
            ),
            "{text}"
        );
        // A broker older than the directory sends nothing.
        status.descriptor = None;
        let view = BrokerStatus::from(&status);
        assert!(
            view.table(now).contains("Descriptor:               -\n"),
            "{}",
            view.table(now)
        );
        assert_eq!(
            serde_json::to_value(&view).expect("json")["descriptor"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn the_clock_line_says_how_far_and_how_sure_or_why_not() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        let line = |clock: Option<pb::ClockStatus>| {
            let mut status = sample();
            status.clock = clock;
            let text = BrokerStatus::from(&status).table(now);
            text.lines()
                .find_map(|l| l.strip_prefix("Clock:"))
                .expect("a clock line")
                .trim()
                .to_owned()
        };
        assert_eq!(
            line(sample().clock),
            "ok, offset +0.042 ms, delay 0.120 ms, jitter 0.010 ms (8 samples, root stratum 10 LOCL, synced 1s ago)"
        );
        assert_eq!(
            line(Some(pb::ClockStatus {
                health: "degraded".into(),
                detail: "offset -212.400 ms above the 100 ms threshold".into(),
                offset_ms: -212.4,
                samples: 1,
                last_sync: Some(Timestamp {
                    seconds: 1_777_629_600,
                    nanos: 0
                }),
                ..sample().clock.expect("clock")
            })),
            "degraded: offset -212.400 ms above the 100 ms threshold (delay 0.120 ms, jitter 0.010 ms, 1 sample, root stratum 10 LOCL, synced just now)"
        );
        assert_eq!(
            line(Some(pb::ClockStatus {
                server: "127.0.0.1:7123".into(),
                health: "unsynchronised".into(),
                detail: "no valid reply for 31 s: timeout".into(),
                stratum: 10,
                reference_id: "LOCL".into(),
                ..pb::ClockStatus::default()
            })),
            "unsynchronised: no valid reply for 31 s: timeout (root 127.0.0.1:7123)"
        );
        assert_eq!(
            line(Some(pb::ClockStatus {
                server: "127.0.0.1:7123".into(),
                health: "starting".into(),
                detail: "waiting for the first reply".into(),
                ..pb::ClockStatus::default()
            })),
            "starting: waiting for the first reply (root 127.0.0.1:7123)"
        );
        assert_eq!(
            line(Some(pb::ClockStatus {
                health: "not configured".into(),
                detail: "no [clock] ntp_server in the broker's config".into(),
                ..pb::ClockStatus::default()
            })),
            "not configured"
        );
        // A broker older than the time source sends nothing.
        assert_eq!(line(None), "-");
        let mut status = sample();
        status.clock = None;
        assert_eq!(
            serde_json::to_value(BrokerStatus::from(&status)).expect("json")["clock"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn an_old_broker_without_readiness_or_capacity_gives_nulls() {
        let mut status = sample();
        status.presence_connected = false;
        status.peers_online = 0;
        status.readiness = None;
        status.free = None;
        let view = BrokerStatus::from(&status);
        let json = serde_json::to_value(&view).expect("json");
        assert_eq!(json["presence_connected"], false);
        assert_eq!(json["readiness"], serde_json::Value::Null);
        assert_eq!(json["free"], serde_json::Value::Null);
        let text = view.table(datetime!(2026-05-01 10:00:00 UTC));
        assert!(text.contains("Presence connected:       no\n"), "{text}");
        assert!(text.contains("Readiness:                -\n"), "{text}");
        assert!(text.contains("Free capacity:            -\n"), "{text}");
    }

    #[test]
    fn presence_reads_yes_no_or_not_configured() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        let mut view = BrokerStatus::from(&sample());
        assert_eq!(view.presence, Presence::Connected);
        let text = view.table(now);
        assert!(text.contains("Presence connected:       yes\n"), "{text}");
        assert!(text.contains("Peers online:             2\n"), "{text}");
        assert!(
            text.contains("Readiness:                ready,willing\n"),
            "{text}"
        );
        assert!(
            text.contains("Free capacity:            0 vCPU, 1.5 GiB memory, 500 GiB storage\n"),
            "{text}"
        );
        view.presence = Presence::NotConfigured;
        assert!(
            view.table(now)
                .contains("Presence connected:       not configured\n")
        );
        view.presence = Presence::Disconnected;
        assert!(view.table(now).contains("Presence connected:       no\n"));
    }

    #[test]
    fn table_shows_state_expiry_hint_and_reachability() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        let text = BrokerStatus::from(&sample()).table(now);
        assert!(
            text.contains("State:                    federated\n"),
            "{text}"
        );
        assert!(
            text.contains("Certificate expires:      2026-05-02T09:00:00Z (in 23h)"),
            "{text}"
        );
        assert!(
            text.contains("Root:                     127.0.0.1:7443 (reachable)"),
            "{text}"
        );
        assert!(
            text.contains("Last root contact:        2026-05-01T09:59:55Z (5s ago)"),
            "{text}"
        );
        assert!(text.contains("Last error:               -"), "{text}");
    }

    #[test]
    fn unknown_state_numbers_do_not_break_rendering() {
        let mut status = sample();
        status.state = 42;
        let view = BrokerStatus::from(&status);
        assert_eq!(view.state, "unknown-42");
    }
}
