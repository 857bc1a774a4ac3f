//! A broker's `Status`.

use intercloud_proto::v1::StatusResponse;
use serde::Serialize;
use time::OffsetDateTime;

use super::clock::{from_proto, when};
use super::table::fields;
use super::{Render, federation_state_word};

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
            ("Version", self.broker_version.clone()),
            ("Started", when(self.started_at, now)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use intercloud_proto::Timestamp;
    use intercloud_proto::v1::FederationState;
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
        let keys: Vec<&String> = json.as_object().expect("object").keys().collect();
        assert_eq!(keys.len(), 16);
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
