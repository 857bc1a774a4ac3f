//! A broker's `Status`.

use intercloud_proto::v1::StatusResponse;
use serde::Serialize;
use time::OffsetDateTime;

use super::capacity::{Capacity, Readiness};
use super::clock::{from_proto, when};
use super::table::fields;
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

/// `intercloudctl status` against a broker context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
        let keys: Vec<&String> = json.as_object().expect("object").keys().collect();
        assert_eq!(keys.len(), 20);
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
