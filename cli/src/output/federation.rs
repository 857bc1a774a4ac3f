//! The root's `Federation` service: members, revocations, join tokens, and
//! the root's status summary.

use intercloud_proto::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;

use super::clock::{from_proto, when};
use super::table::{Table, fields};
use super::{Render, member_state_word};

/// One member of the federation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub cloud_id: String,
    pub spiffe_id: String,
    /// `enrolled`, `active` or `revoked`.
    pub state: String,
    pub grpc_endpoint: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub joined_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen: Option<OffsetDateTime>,
    pub certificate_serial: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub certificate_not_after: Option<OffsetDateTime>,
    pub broker_version: String,
}

impl From<&pb::Member> for Member {
    fn from(m: &pb::Member) -> Self {
        Self {
            cloud_id: m.cloud_id.clone(),
            spiffe_id: m.spiffe_id.clone(),
            state: member_state_word(m.state),
            grpc_endpoint: m.grpc_endpoint.clone(),
            joined_at: from_proto(m.joined_at.as_ref()),
            last_seen: from_proto(m.last_seen.as_ref()),
            certificate_serial: m.certificate_serial.clone(),
            certificate_not_after: from_proto(m.certificate_not_after.as_ref()),
            broker_version: m.broker_version.clone(),
        }
    }
}

impl Render for Member {
    fn table(&self, now: OffsetDateTime) -> String {
        fields(&[
            ("Cloud", self.cloud_id.clone()),
            ("SPIFFE ID", self.spiffe_id.clone()),
            ("State", self.state.clone()),
            ("Endpoint", self.grpc_endpoint.clone()),
            ("Joined", when(self.joined_at, now)),
            ("Last seen", when(self.last_seen, now)),
            ("Certificate serial", self.certificate_serial.clone()),
            ("Certificate expires", when(self.certificate_not_after, now)),
            ("Broker version", self.broker_version.clone()),
        ])
    }
}

/// `intercloudctl members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberList {
    pub members: Vec<Member>,
}

impl From<&pb::ListMembersResponse> for MemberList {
    fn from(response: &pb::ListMembersResponse) -> Self {
        Self {
            members: response.members.iter().map(Member::from).collect(),
        }
    }
}

impl Render for MemberList {
    fn table(&self, now: OffsetDateTime) -> String {
        if self.members.is_empty() {
            return "no members yet\n".to_owned();
        }
        let mut table = Table::new(&[
            "CLOUD",
            "STATE",
            "ENDPOINT",
            "LAST SEEN",
            "CERT EXPIRES",
            "SERIAL",
        ]);
        for m in &self.members {
            table.row(vec![
                m.cloud_id.clone(),
                m.state.clone(),
                m.grpc_endpoint.clone(),
                when(m.last_seen, now),
                when(m.certificate_not_after, now),
                m.certificate_serial.clone(),
            ]);
        }
        table.render()
    }
}

/// How many members are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemberCounts {
    pub total: usize,
    pub enrolled: usize,
    pub active: usize,
    pub inactive: usize,
    pub revoked: usize,
}

/// `intercloudctl status` against a root context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootStatus {
    /// Always `"root"`, to tell this document from a broker's status.
    pub kind: &'static str,
    pub federation: String,
    pub root_endpoint: String,
    pub members: MemberCounts,
    /// How many certificates the CRL lists.
    pub revocations: usize,
    pub crl_number: u64,
}

impl RootStatus {
    /// Summarizes the members and revocations the root at `root_endpoint` reported.
    pub fn new(
        federation: &str,
        root_endpoint: &str,
        members: &pb::ListMembersResponse,
        revocations: &pb::ListRevocationsResponse,
    ) -> Self {
        let mut counts = MemberCounts {
            total: members.members.len(),
            ..MemberCounts::default()
        };
        for m in &members.members {
            match pb::MemberState::try_from(m.state) {
                Ok(pb::MemberState::Enrolled) => counts.enrolled += 1,
                Ok(pb::MemberState::Active) => counts.active += 1,
                Ok(pb::MemberState::Revoked) => counts.revoked += 1,
                Ok(pb::MemberState::Inactive) => counts.inactive += 1,
                _ => {}
            }
        }
        Self {
            kind: "root",
            federation: federation.to_owned(),
            root_endpoint: root_endpoint.to_owned(),
            members: counts,
            revocations: revocations.revocations.len(),
            crl_number: revocations.crl_number,
        }
    }
}

impl Render for RootStatus {
    fn table(&self, _now: OffsetDateTime) -> String {
        let m = &self.members;
        fields(&[
            ("Federation", self.federation.clone()),
            ("Root endpoint", self.root_endpoint.clone()),
            (
                "Members",
                format!(
                    "{} ({} active, {} inactive, {} enrolled, {} revoked)",
                    m.total, m.active, m.inactive, m.enrolled, m.revoked
                ),
            ),
            ("Revoked certificates", self.revocations.to_string()),
            ("CRL number", self.crl_number.to_string()),
        ])
    }
}

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revocation {
    pub serial: String,
    pub cloud_id: String,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<&pb::Revocation> for Revocation {
    fn from(r: &pb::Revocation) -> Self {
        Self {
            serial: r.serial.clone(),
            cloud_id: r.cloud_id.clone(),
            reason: r.reason.clone(),
            revoked_at: from_proto(r.revoked_at.as_ref()),
        }
    }
}

fn revocation_table(revocations: &[Revocation], now: OffsetDateTime) -> String {
    let mut table = Table::new(&["SERIAL", "CLOUD", "REVOKED", "REASON"]);
    for r in revocations {
        table.row(vec![
            r.serial.clone(),
            r.cloud_id.clone(),
            when(r.revoked_at, now),
            r.reason.clone(),
        ]);
    }
    table.render()
}

/// `intercloudctl revocations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revocations {
    pub revocations: Vec<Revocation>,
    pub crl_number: u64,
}

impl From<&pb::ListRevocationsResponse> for Revocations {
    fn from(response: &pb::ListRevocationsResponse) -> Self {
        Self {
            revocations: response.revocations.iter().map(Revocation::from).collect(),
            crl_number: response.crl_number,
        }
    }
}

impl Render for Revocations {
    fn table(&self, now: OffsetDateTime) -> String {
        let mut text = if self.revocations.is_empty() {
            "no revoked certificates\n".to_owned()
        } else {
            revocation_table(&self.revocations, now)
        };
        text.push_str(&format!("\nCRL number: {}\n", self.crl_number));
        text
    }
}

/// `intercloudctl revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revoked {
    pub cloud_id: String,
    pub revoked: Vec<Revocation>,
    pub crl_number: u64,
}

impl Revoked {
    /// The root's answer to revoking `cloud_id`.
    pub fn new(cloud_id: &str, response: &pb::RevokeResponse) -> Self {
        Self {
            cloud_id: cloud_id.to_owned(),
            revoked: response.revoked.iter().map(Revocation::from).collect(),
            crl_number: response.crl_number,
        }
    }
}

impl Render for Revoked {
    fn table(&self, now: OffsetDateTime) -> String {
        let mut text = format!(
            "revoked {} certificate(s) of {}; CRL number is now {}\n",
            self.revoked.len(),
            self.cloud_id,
            self.crl_number
        );
        if !self.revoked.is_empty() {
            text.push('\n');
            text.push_str(&revocation_table(&self.revoked, now));
        }
        text
    }
}

/// `intercloudctl token create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JoinToken {
    pub token: String,
    pub cloud_id: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// SHA-256 of the federation CA certificate (DER), hex.
    pub ca_fingerprint: String,
}

impl From<&pb::CreateJoinTokenResponse> for JoinToken {
    fn from(r: &pb::CreateJoinTokenResponse) -> Self {
        Self {
            token: r.token.clone(),
            cloud_id: r.cloud_id.clone(),
            expires_at: from_proto(r.expires_at.as_ref()),
            ca_fingerprint: r.ca_fingerprint.clone(),
        }
    }
}

impl Render for JoinToken {
    fn table(&self, now: OffsetDateTime) -> String {
        let mut text = fields(&[
            ("Token", self.token.clone()),
            ("Cloud", self.cloud_id.clone()),
            ("Expires", when(self.expires_at, now)),
            ("CA fingerprint", self.ca_fingerprint.clone()),
        ]);
        text.push_str(&format!(
            "\nUse it once: set enrollment.token = \"{token}\" in the intercloud-broker config of {cloud}, \
             or run: intercloudctl enroll --cloud {cloud} --token {token} --out DIR\n",
            token = self.token,
            cloud = self.cloud_id,
        ));
        text
    }
}

#[cfg(test)]
mod tests {
    use intercloud_proto::Timestamp;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-05-01 10:00:00 UTC);
    const NOW_SECONDS: i64 = 1_777_629_600;

    fn member(id: &str, state: pb::MemberState) -> pb::Member {
        pb::Member {
            cloud_id: id.into(),
            spiffe_id: format!("spiffe://intercloud.lab/cloud/{id}"),
            state: state as i32,
            grpc_endpoint: "127.0.0.1:7501".into(),
            joined_at: Some(Timestamp {
                seconds: NOW_SECONDS - 3600,
                nanos: 0,
            }),
            last_seen: Some(Timestamp {
                seconds: NOW_SECONDS - 12,
                nanos: 0,
            }),
            certificate_serial: "6ab2".into(),
            certificate_not_after: Some(Timestamp {
                seconds: NOW_SECONDS + 86_400,
                nanos: 0,
            }),
            broker_version: "0.1.0".into(),
        }
    }

    fn members() -> pb::ListMembersResponse {
        pb::ListMembersResponse {
            members: vec![
                member("cloud-a", pb::MemberState::Active),
                member("cloud-b", pb::MemberState::Active),
                member("cloud-c", pb::MemberState::Revoked),
                member("cloud-d", pb::MemberState::Enrolled),
            ],
        }
    }

    #[test]
    fn members_json_is_an_object_with_a_list_and_state_words() {
        let json = serde_json::to_value(MemberList::from(&members())).expect("json");
        let list = json["members"].as_array().expect("members array");
        assert_eq!(list.len(), 4);
        assert_eq!(list[0]["cloud_id"], "cloud-a");
        assert_eq!(list[0]["state"], "active");
        assert_eq!(list[2]["state"], "revoked");
        assert_eq!(list[0]["last_seen"], "2026-05-01T09:59:48Z");
        assert_eq!(list[0]["certificate_not_after"], "2026-05-02T10:00:00Z");
    }

    #[test]
    fn members_table_has_the_expected_columns() {
        let text = MemberList::from(&members()).table(NOW);
        let header = text.lines().next().expect("header");
        let columns: Vec<&str> = header
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            columns,
            [
                "CLOUD",
                "STATE",
                "ENDPOINT",
                "LAST SEEN",
                "CERT EXPIRES",
                "SERIAL"
            ]
        );
        assert!(text.contains("12s ago"), "{text}");
        assert!(text.contains("2026-05-02T10:00:00Z (in 24h)"), "{text}");
        assert_eq!(text.lines().count(), 5);
        assert_eq!(
            MemberList { members: vec![] }.table(NOW),
            "no members yet\n"
        );
    }

    #[test]
    fn root_status_counts_members_by_state() {
        let revocations = pb::ListRevocationsResponse {
            revocations: vec![pb::Revocation {
                serial: "6ab2".into(),
                cloud_id: "cloud-c".into(),
                reason: "compromised".into(),
                revoked_at: None,
            }],
            crl_number: 4,
        };
        let status = RootStatus::new("intercloud.lab", "127.0.0.1:7443", &members(), &revocations);
        let json = serde_json::to_value(&status).expect("json");
        assert_eq!(json["kind"], "root");
        assert_eq!(json["crl_number"], 4);
        assert_eq!(json["revocations"], 1);
        assert_eq!(
            json["members"],
            serde_json::json!({"total": 4, "enrolled": 1, "active": 2, "inactive": 0, "revoked": 1})
        );
        let text = status.table(NOW);
        assert!(
            text.contains("4 (2 active, 0 inactive, 1 enrolled, 1 revoked)"),
            "{text}"
        );
        assert!(text.contains("CRL number:            4"), "{text}");
    }

    #[test]
    fn token_table_shows_how_to_use_it() {
        let token = JoinToken::from(&pb::CreateJoinTokenResponse {
            token: "tok123".into(),
            cloud_id: "cloud-d".into(),
            expires_at: Some(Timestamp {
                seconds: NOW_SECONDS + 3600,
                nanos: 0,
            }),
            ca_fingerprint: "ff".into(),
        });
        let text = token.table(NOW);
        assert!(
            text.contains("Expires:         2026-05-01T11:00:00Z (in 1h)"),
            "{text}"
        );
        assert!(text.contains("enrollment.token = \"tok123\""), "{text}");
        assert!(
            text.contains("intercloudctl enroll --cloud cloud-d --token tok123 --out DIR"),
            "{text}"
        );
        let json = serde_json::to_value(&token).expect("json");
        assert_eq!(json["expires_at"], "2026-05-01T11:00:00Z");
        assert_eq!(json["token"], "tok123");
    }

    #[test]
    fn revoke_reports_serials_and_crl_number() {
        let revoked = Revoked::new(
            "cloud-c",
            &pb::RevokeResponse {
                revoked: vec![pb::Revocation {
                    serial: "6ab2".into(),
                    cloud_id: "cloud-c".into(),
                    reason: "decommissioned".into(),
                    revoked_at: Some(Timestamp {
                        seconds: NOW_SECONDS,
                        nanos: 0,
                    }),
                }],
                crl_number: 5,
            },
        );
        let text = revoked.table(NOW);
        assert!(
            text.starts_with("revoked 1 certificate(s) of cloud-c; CRL number is now 5\n"),
            "{text}"
        );
        assert!(text.contains("6ab2"), "{text}");
        let json = serde_json::to_value(&revoked).expect("json");
        assert_eq!(json["revoked"][0]["serial"], "6ab2");
        assert_eq!(json["crl_number"], 5);
    }
}
