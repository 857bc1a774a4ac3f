//! The federation as the root knows it: members, join tokens, revocations.
//!
//! Pure logic: every operation takes `now` and returns a result; nothing here
//! touches a disk or a socket. [`crate::store`] persists the whole state after
//! each successful change, and only then makes it visible.

use std::collections::BTreeMap;
use std::time::Duration;

use intercloud_trust::CloudId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Why the root refused an operation. Mapped to gRPC codes at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FederationError {
    /// No token with this value was ever issued.
    #[error("unknown join token")]
    UnknownToken,
    /// The token's lifetime is over.
    #[error("join token expired at {0}")]
    TokenExpired(String),
    /// The token was already redeemed.
    #[error("join token was already used at {0}")]
    TokenUsed(String),
    /// The token was issued for another cloud.
    #[error("join token is for {token_cloud}, not for {requested}")]
    TokenForAnotherCloud {
        /// The cloud the token names.
        token_cloud: CloudId,
        /// The cloud the request names.
        requested: CloudId,
    },
    /// The cloud was revoked; it may not enrol, renew or register again.
    #[error("{0} is revoked")]
    Revoked(CloudId),
    /// No such member.
    #[error("{0} is not a member of the federation")]
    UnknownMember(CloudId),
    /// A token lifetime out of bounds.
    #[error("token ttl {asked}s is out of range 1..={max}s")]
    BadTokenTtl {
        /// What was asked.
        asked: u64,
        /// The configured maximum.
        max: u64,
    },
}

/// How far a member has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Holds a certificate, has not registered yet.
    Enrolled,
    /// Registered.
    Active,
    /// Revoked: refused everywhere.
    Revoked,
}

/// A certificate the root issued or saw for a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownCert {
    /// Serial, lower-case hex.
    pub serial: String,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// A cloud of the federation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The cloud.
    pub cloud: CloudId,
    /// Where it is.
    pub state: MemberState,
    /// Its broker's operator endpoint, as registered.
    pub endpoint: String,
    /// Broker software version, as registered.
    pub broker_version: String,
    /// First enrolment or registration.
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
    /// Last registration or heartbeat.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen: Option<OffsetDateTime>,
    /// Certificates issued to it or presented by it, oldest first.
    pub certificates: Vec<KnownCert>,
}

impl Member {
    /// Whether the member has not been heard from for longer than `silence`.
    pub fn is_silent(&self, now: OffsetDateTime, silence: Duration) -> bool {
        self.last_seen.is_none_or(|seen| now - seen > silence)
    }

    /// The newest certificate known.
    pub fn current_certificate(&self) -> Option<&KnownCert> {
        self.certificates.last()
    }
}

/// A join token, kept only as a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    /// SHA-256 of the token text, hex.
    pub digest: String,
    /// The cloud it admits.
    pub cloud: CloudId,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was redeemed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub used_at: Option<OffsetDateTime>,
}

/// A revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Serial, lower-case hex.
    pub serial: String,
    /// Its cloud, when known (imported CRL entries have none).
    pub cloud: Option<CloudId>,
    /// Why.
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
}

/// The whole persisted state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederationState {
    /// Members by cloud id.
    pub members: BTreeMap<CloudId, Member>,
    /// Join tokens not yet pruned.
    pub tokens: Vec<JoinToken>,
    /// Revocations made by this root.
    pub revocations: Vec<Revocation>,
    /// Number of the newest CRL; grows with every change of the revocations.
    pub crl_number: u64,
}

/// How long spent tokens are kept for the "already used" answer.
const SPENT_TOKEN_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// SHA-256 of a token, hex.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Whether a cloud counts as present, from the root's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Registered and heard from within the lease.
    Online,
    /// Why not: never registered, silent past the lease, revoked, unknown.
    Offline(String),
}

impl FederationState {
    /// Whether `cloud` is online: registered, not revoked, and heard from
    /// (registration or heartbeat) within `lease` before `now`.
    pub fn liveness(&self, cloud: &str, now: OffsetDateTime, lease: Duration) -> Liveness {
        let Some(member) = CloudId::new(cloud).ok().and_then(|c| self.members.get(&c)) else {
            return Liveness::Offline(format!(
                "offline: {cloud} is not a member of the federation"
            ));
        };
        match member.state {
            MemberState::Revoked => Liveness::Offline("offline: revoked".into()),
            MemberState::Enrolled => {
                Liveness::Offline("offline: enrolled but never registered".into())
            }
            MemberState::Active if member.is_silent(now, lease) => Liveness::Offline(format!(
                "offline: no heartbeat for more than {} s{}",
                lease.as_secs(),
                member
                    .last_seen
                    .and_then(|t| t
                        .format(&time::format_description::well_known::Rfc3339)
                        .ok())
                    .map(|t| format!(" (last seen {t})"))
                    .unwrap_or_default()
            )),
            MemberState::Active => Liveness::Online,
        }
    }

    /// Whether `cloud` was revoked.
    pub fn is_revoked(&self, cloud: &CloudId) -> bool {
        self.members
            .get(cloud)
            .is_some_and(|m| m.state == MemberState::Revoked)
    }

    /// Whether the certificate with `serial` was revoked.
    pub fn is_serial_revoked(&self, serial: &str) -> bool {
        self.revocations.iter().any(|r| r.serial == serial)
    }

    /// Records a new token (given as text: only its digest is kept) for
    /// `cloud`, valid for `ttl`; drops tokens long expired or spent.
    pub fn create_token(
        &mut self,
        cloud: &CloudId,
        token: &str,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<JoinToken, FederationError> {
        if self.is_revoked(cloud) {
            return Err(FederationError::Revoked(cloud.clone()));
        }
        self.tokens
            .retain(|t| t.used_at.unwrap_or(t.expires_at) + SPENT_TOKEN_RETENTION > now);
        let record = JoinToken {
            digest: token_digest(token),
            cloud: cloud.clone(),
            created_at: now,
            expires_at: now + ttl,
            used_at: None,
        };
        self.tokens.push(record.clone());
        Ok(record)
    }

    /// Checks that `token` admits `cloud` now, without spending it.
    pub fn check_token(
        &self,
        token: &str,
        cloud: &CloudId,
        now: OffsetDateTime,
    ) -> Result<(), FederationError> {
        let digest = token_digest(token);
        let record = self
            .tokens
            .iter()
            .find(|t| t.digest == digest)
            .ok_or(FederationError::UnknownToken)?;
        if let Some(used) = record.used_at {
            return Err(FederationError::TokenUsed(rfc3339(used)));
        }
        if now >= record.expires_at {
            return Err(FederationError::TokenExpired(rfc3339(record.expires_at)));
        }
        if &record.cloud != cloud {
            return Err(FederationError::TokenForAnotherCloud {
                token_cloud: record.cloud.clone(),
                requested: cloud.clone(),
            });
        }
        if self.is_revoked(cloud) {
            return Err(FederationError::Revoked(cloud.clone()));
        }
        Ok(())
    }

    /// Spends `token` for `cloud` and records the certificate issued with it.
    pub fn redeem_token(
        &mut self,
        token: &str,
        cloud: &CloudId,
        issued: KnownCert,
        now: OffsetDateTime,
    ) -> Result<&Member, FederationError> {
        self.check_token(token, cloud, now)?;
        let digest = token_digest(token);
        if let Some(record) = self.tokens.iter_mut().find(|t| t.digest == digest) {
            record.used_at = Some(now);
        }
        let member = self.members.entry(cloud.clone()).or_insert_with(|| Member {
            cloud: cloud.clone(),
            state: MemberState::Enrolled,
            endpoint: String::new(),
            broker_version: String::new(),
            joined_at: now,
            last_seen: None,
            certificates: Vec::new(),
        });
        member.certificates.push(issued);
        Ok(member)
    }

    /// Records a renewed certificate of a member.
    pub fn record_renewal(
        &mut self,
        cloud: &CloudId,
        issued: KnownCert,
    ) -> Result<(), FederationError> {
        if self.is_revoked(cloud) {
            return Err(FederationError::Revoked(cloud.clone()));
        }
        let member = self
            .members
            .get_mut(cloud)
            .ok_or_else(|| FederationError::UnknownMember(cloud.clone()))?;
        member.certificates.push(issued);
        Ok(())
    }

    /// A broker registers (or heartbeats) with the certificate it presents.
    /// A cloud holding any valid certificate of the federation CA is a member.
    pub fn register(
        &mut self,
        cloud: &CloudId,
        presented: KnownCert,
        endpoint: &str,
        broker_version: &str,
        now: OffsetDateTime,
    ) -> Result<&Member, FederationError> {
        if self.is_revoked(cloud) || self.is_serial_revoked(&presented.serial) {
            return Err(FederationError::Revoked(cloud.clone()));
        }
        let member = self.members.entry(cloud.clone()).or_insert_with(|| Member {
            cloud: cloud.clone(),
            state: MemberState::Active,
            endpoint: String::new(),
            broker_version: String::new(),
            joined_at: now,
            last_seen: None,
            certificates: Vec::new(),
        });
        member.state = MemberState::Active;
        member.endpoint = endpoint.to_owned();
        member.broker_version = broker_version.to_owned();
        member.last_seen = Some(now);
        if !member
            .certificates
            .iter()
            .any(|c| c.serial == presented.serial)
        {
            member.certificates.push(presented);
        }
        Ok(member)
    }

    /// Whether a registration would change anything but `last_seen`
    /// (heartbeats that change nothing else need not be written to disk).
    pub fn registration_changes(
        &self,
        cloud: &CloudId,
        serial: &str,
        endpoint: &str,
        version: &str,
    ) -> bool {
        match self.members.get(cloud) {
            Some(m) => {
                m.state != MemberState::Active
                    || m.endpoint != endpoint
                    || m.broker_version != version
                    || !m.certificates.iter().any(|c| c.serial == serial)
            }
            None => true,
        }
    }

    /// Revokes every known certificate of `cloud` and bars it from now on.
    pub fn revoke(
        &mut self,
        cloud: &CloudId,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Revocation>, FederationError> {
        let member = self
            .members
            .get_mut(cloud)
            .ok_or_else(|| FederationError::UnknownMember(cloud.clone()))?;
        if member.state == MemberState::Revoked {
            return Err(FederationError::Revoked(cloud.clone()));
        }
        member.state = MemberState::Revoked;
        let new: Vec<Revocation> = member
            .certificates
            .iter()
            .map(|c| Revocation {
                serial: c.serial.clone(),
                cloud: Some(cloud.clone()),
                reason: reason.to_owned(),
                revoked_at: now,
            })
            .collect();
        self.revocations.extend(new.iter().cloned());
        for token in self
            .tokens
            .iter_mut()
            .filter(|t| &t.cloud == cloud && t.used_at.is_none())
        {
            token.expires_at = token.expires_at.min(now);
        }
        self.crl_number += 1;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> CloudId {
        CloudId::new(s).expect("cloud id")
    }

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time")
    }

    fn cert(serial: &str) -> KnownCert {
        KnownCert {
            serial: serial.into(),
            not_after: t0() + Duration::from_secs(86400),
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_token_admits_its_cloud_once() {
        let mut s = FederationState::default();
        s.create_token(&id("cloud-d"), "tok", HOUR, t0())
            .expect("create");
        s.redeem_token("tok", &id("cloud-d"), cert("01"), t0())
            .expect("redeem");
        assert_eq!(s.members[&id("cloud-d")].state, MemberState::Enrolled);
        let again = s.redeem_token("tok", &id("cloud-d"), cert("02"), t0());
        assert!(
            matches!(again, Err(FederationError::TokenUsed(_))),
            "{again:?}"
        );
        assert_eq!(s.members[&id("cloud-d")].certificates.len(), 1);
    }

    #[test]
    fn tokens_refuse_strangers_latecomers_and_other_clouds() {
        let mut s = FederationState::default();
        s.create_token(&id("cloud-d"), "tok", HOUR, t0())
            .expect("create");
        assert_eq!(
            s.check_token("nope", &id("cloud-d"), t0()),
            Err(FederationError::UnknownToken)
        );
        assert!(matches!(
            s.check_token("tok", &id("cloud-d"), t0() + HOUR),
            Err(FederationError::TokenExpired(_))
        ));
        assert_eq!(
            s.check_token("tok", &id("cloud-e"), t0()),
            Err(FederationError::TokenForAnotherCloud {
                token_cloud: id("cloud-d"),
                requested: id("cloud-e")
            })
        );
        assert!(
            s.check_token("tok", &id("cloud-d"), t0()).is_ok(),
            "checking does not spend"
        );
    }

    #[test]
    fn revocation_bars_the_cloud_and_lists_its_serials() {
        let mut s = FederationState::default();
        s.register(&id("cloud-b"), cert("0b"), "127.0.0.1:1", "0.1.0", t0())
            .expect("register");
        s.create_token(&id("cloud-b"), "pending", HOUR, t0())
            .expect("token");
        let revoked = s.revoke(&id("cloud-b"), "test", t0()).expect("revoke");
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0].serial, "0b");
        assert_eq!(s.crl_number, 1);
        assert!(s.is_serial_revoked("0b"));
        assert_eq!(
            s.register(&id("cloud-b"), cert("0c"), "x", "v", t0())
                .map(|_| ()),
            Err(FederationError::Revoked(id("cloud-b")))
        );
        assert_eq!(
            s.create_token(&id("cloud-b"), "t2", HOUR, t0()).map(|_| ()),
            Err(FederationError::Revoked(id("cloud-b")))
        );
        assert!(
            s.check_token("pending", &id("cloud-b"), t0()).is_err(),
            "pending tokens die with the cloud"
        );
        assert_eq!(
            s.revoke(&id("cloud-b"), "again", t0()).map(|_| ()),
            Err(FederationError::Revoked(id("cloud-b")))
        );
        assert_eq!(
            s.revoke(&id("cloud-x"), "?", t0()).map(|_| ()),
            Err(FederationError::UnknownMember(id("cloud-x")))
        );
    }

    #[test]
    fn members_fall_silent_after_the_given_time() {
        let mut s = FederationState::default();
        let m = s
            .register(&id("cloud-a"), cert("0a"), "e", "v", t0())
            .expect("register")
            .clone();
        assert!(!m.is_silent(t0() + Duration::from_secs(15), Duration::from_secs(15)));
        assert!(m.is_silent(t0() + Duration::from_secs(16), Duration::from_secs(15)));
    }

    #[test]
    fn liveness_says_why_a_cloud_is_offline() {
        let mut s = FederationState::default();
        let lease = Duration::from_secs(15);
        s.register(&id("cloud-a"), cert("0a"), "e", "v", t0())
            .expect("register");
        s.create_token(&id("cloud-d"), "tok", HOUR, t0())
            .expect("token");
        s.redeem_token("tok", &id("cloud-d"), cert("0d"), t0())
            .expect("redeem");
        assert_eq!(s.liveness("cloud-a", t0() + lease, lease), Liveness::Online);
        let Liveness::Offline(silent) = s.liveness("cloud-a", t0() + lease + HOUR, lease) else {
            panic!("silent past the lease");
        };
        assert!(
            silent.starts_with("offline: no heartbeat for more than 15 s (last seen 2027-"),
            "{silent}"
        );
        assert_eq!(
            s.liveness("cloud-d", t0(), lease),
            Liveness::Offline("offline: enrolled but never registered".into())
        );
        assert_eq!(
            s.liveness("cloud-x", t0(), lease),
            Liveness::Offline("offline: cloud-x is not a member of the federation".into())
        );
        s.revoke(&id("cloud-a"), "test", t0()).expect("revoke");
        assert_eq!(
            s.liveness("cloud-a", t0(), lease),
            Liveness::Offline("offline: revoked".into())
        );
    }

    #[test]
    fn heartbeats_change_only_last_seen() {
        let mut s = FederationState::default();
        assert!(s.registration_changes(&id("cloud-a"), "0a", "e", "v"));
        s.register(&id("cloud-a"), cert("0a"), "e", "v", t0())
            .expect("register");
        assert!(!s.registration_changes(&id("cloud-a"), "0a", "e", "v"));
        assert!(s.registration_changes(&id("cloud-a"), "0a", "e2", "v"));
        assert!(s.registration_changes(&id("cloud-a"), "0z", "e", "v"));
    }

    #[test]
    fn spent_tokens_are_pruned_after_retention() {
        let mut s = FederationState::default();
        s.create_token(&id("cloud-d"), "old", HOUR, t0())
            .expect("create");
        let later = t0() + SPENT_TOKEN_RETENTION + HOUR + HOUR;
        s.create_token(&id("cloud-d"), "new", HOUR, later)
            .expect("create");
        assert_eq!(s.tokens.len(), 1);
    }
}
