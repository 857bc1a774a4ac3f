//! Deciding whether a received announcement may enter the peer table.
//!
//! In order: the fingerprint is the certificate's; the certificate chains to
//! the federation CA, is valid now and not revoked; its SPIFFE id is the
//! announced cloud's; the XMPP sender is that cloud's domain; the signature
//! verifies with the certificate's key; the timestamp is within the allowed
//! skew of `now`. Replays are the peer table's business (it remembers what
//! it accepted), but share the [`Rejection`] type so the driver logs one kind
//! of refusal.

use std::time::Duration;

use intercloud_trust::cert::{CertInfo, fingerprint};
use intercloud_trust::tls::TrustAnchors;
use intercloud_trust::{CloudId, FederationDomain, SpiffeId};
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use rustls::pki_types::UnixTime;
use time::OffsetDateTime;

use super::announcement::{Announcement, subject_public_key};

/// Who sent the presence, as the XMPP server vouches for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// Domain part of the occupant's real JID (e.g. `cloud-a.intercloud.lab`).
    pub real_jid_domain: String,
}

/// The XMPP domain of a cloud's broker: `<cloud>.<federation>`.
pub fn expected_jid_domain(cloud: &CloudId, federation: &FederationDomain) -> String {
    format!("{cloud}.{federation}")
}

/// An announcement that passed every check of [`verify`]; only `verify`
/// makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAnnouncement {
    announcement: Announcement,
    certificate: CertInfo,
}

impl VerifiedAnnouncement {
    /// The announcement.
    pub fn announcement(&self) -> &Announcement {
        &self.announcement
    }

    /// What its (verified) certificate says.
    pub fn certificate(&self) -> &CertInfo {
        &self.certificate
    }

    /// The announcing cloud.
    pub fn cloud(&self) -> &CloudId {
        &self.announcement.cloud
    }

    /// Both parts.
    pub fn into_parts(self) -> (Announcement, CertInfo) {
        (self.announcement, self.certificate)
    }
}

/// Why an announcement was dropped. The Display text names the cloud and the
/// reason, for the warning log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The announced fingerprint is not the SHA-256 of the enclosed certificate.
    #[error(
        "announcement from {cloud}: fingerprint {claimed} does not match the enclosed certificate ({actual})"
    )]
    FingerprintMismatch {
        /// The announced cloud.
        cloud: CloudId,
        /// The fingerprint in the announcement.
        claimed: String,
        /// SHA-256 of the enclosed certificate.
        actual: String,
    },
    /// The certificate does not chain to the federation CA, is not valid
    /// now, is revoked, or is not a client certificate.
    #[error("announcement from {cloud}: certificate refused: {reason}")]
    CertificateRefused {
        /// The announced cloud.
        cloud: CloudId,
        /// webpki's verdict ("UnknownIssuer", "Revoked", "certificate expired: …").
        reason: String,
    },
    /// The certificate belongs to someone other than the announced cloud.
    #[error("announcement from {cloud}: certificate is {found}, expected {expected}")]
    WrongIdentity {
        /// The announced cloud.
        cloud: CloudId,
        /// `spiffe://<federation>/cloud/<cloud>`.
        expected: String,
        /// The certificate's SPIFFE id.
        found: String,
    },
    /// The XMPP sender is not the announced cloud's broker.
    #[error(
        "announcement for {cloud} sent from the JID domain {sender_domain:?}, expected {expected_domain:?}"
    )]
    WrongSender {
        /// The announced cloud.
        cloud: CloudId,
        /// `<cloud>.<federation>`.
        expected_domain: String,
        /// The sender's real JID domain.
        sender_domain: String,
    },
    /// The signature does not verify with the certificate's key.
    #[error("announcement from {cloud}: signature does not verify with its certificate's key")]
    BadSignature {
        /// The announced cloud.
        cloud: CloudId,
    },
    /// The timestamp is older than the allowed skew.
    #[error(
        "announcement from {cloud} is stale: made {age_ms} ms ago, allowed skew {max_skew_ms} ms"
    )]
    Stale {
        /// The announced cloud.
        cloud: CloudId,
        /// How old it is.
        age_ms: i128,
        /// The allowed skew.
        max_skew_ms: u128,
    },
    /// The timestamp is ahead of `now` by more than the allowed skew.
    #[error(
        "announcement from {cloud} is from the future: {ahead_ms} ms ahead, allowed skew {max_skew_ms} ms"
    )]
    FromTheFuture {
        /// The announced cloud.
        cloud: CloudId,
        /// How far ahead it is.
        ahead_ms: i128,
        /// The allowed skew.
        max_skew_ms: u128,
    },
    /// Not newer than the last announcement accepted from that cloud.
    #[error(
        "announcement from {cloud} replayed: (timestamp {timestamp_ms}, seq {sequence}) is not newer than the accepted (timestamp {last_timestamp_ms}, seq {last_sequence})"
    )]
    Replay {
        /// The announced cloud.
        cloud: CloudId,
        /// Its timestamp.
        timestamp_ms: i64,
        /// Its sequence number.
        sequence: u64,
        /// Timestamp of the last accepted one.
        last_timestamp_ms: i64,
        /// Sequence number of the last accepted one.
        last_sequence: u64,
    },
}

impl Rejection {
    /// The cloud the refused announcement claimed to come from.
    pub fn cloud(&self) -> &CloudId {
        match self {
            Self::FingerprintMismatch { cloud, .. }
            | Self::CertificateRefused { cloud, .. }
            | Self::WrongIdentity { cloud, .. }
            | Self::WrongSender { cloud, .. }
            | Self::BadSignature { cloud }
            | Self::Stale { cloud, .. }
            | Self::FromTheFuture { cloud, .. }
            | Self::Replay { cloud, .. } => cloud,
        }
    }
}

/// Checks a parsed announcement; see the module docs for the order.
pub fn verify(
    announcement: Announcement,
    sender: &Sender,
    anchors: &TrustAnchors,
    federation: &FederationDomain,
    now: OffsetDateTime,
    max_skew: Duration,
) -> Result<VerifiedAnnouncement, Rejection> {
    let cloud = announcement.cloud.clone();

    let actual = fingerprint(&announcement.certificate_der);
    if actual != announcement.fingerprint {
        return Err(Rejection::FingerprintMismatch {
            cloud,
            claimed: announcement.fingerprint,
            actual,
        });
    }

    let certificate = anchors
        .verify_identity(&announcement.certificate_der, unix_time(now))
        .map_err(|reason| Rejection::CertificateRefused {
            cloud: cloud.clone(),
            reason,
        })?;

    let expected = SpiffeId::cloud(federation, &cloud);
    if certificate.spiffe_id != expected {
        return Err(Rejection::WrongIdentity {
            cloud,
            expected: expected.to_string(),
            found: certificate.spiffe_id.to_string(),
        });
    }

    let expected_domain = expected_jid_domain(&cloud, federation);
    if !sender
        .real_jid_domain
        .eq_ignore_ascii_case(&expected_domain)
    {
        return Err(Rejection::WrongSender {
            cloud,
            expected_domain,
            sender_domain: super::xml::snippet(&sender.real_jid_domain),
        });
    }

    let public_key =
        subject_public_key(&announcement.certificate_der).map_err(|_| Rejection::BadSignature {
            cloud: cloud.clone(),
        })?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &public_key)
        .verify(&announcement.signing_bytes(), &announcement.signature)
        .map_err(|_| Rejection::BadSignature {
            cloud: cloud.clone(),
        })?;

    let now_ms = now.unix_timestamp_nanos() / 1_000_000;
    let max_skew_ms = max_skew.as_millis();
    let skew = i128::try_from(max_skew_ms).unwrap_or(i128::MAX);
    let ahead_ms = i128::from(announcement.timestamp_ms) - now_ms;
    if ahead_ms > skew {
        return Err(Rejection::FromTheFuture {
            cloud,
            ahead_ms,
            max_skew_ms,
        });
    }
    if -ahead_ms > skew {
        return Err(Rejection::Stale {
            cloud,
            age_ms: -ahead_ms,
            max_skew_ms,
        });
    }

    Ok(VerifiedAnnouncement {
        announcement,
        certificate,
    })
}

fn unix_time(now: OffsetDateTime) -> UnixTime {
    let secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::testing::{NOW, SKEW, cloud, fed, now_ms, pki, sample, sender};

    fn check(a: Announcement, from: &str) -> Result<VerifiedAnnouncement, Rejection> {
        verify(a, &sender(from), &pki().anchors, &fed(), NOW, SKEW)
    }

    #[test]
    fn a_good_announcement_verifies() {
        let a = sample(&pki().cloud_a, "cloud-a", now_ms(), 1);
        let v = check(a.clone(), "cloud-a").expect("verifies");
        assert_eq!(v.announcement(), &a);
        assert_eq!(v.cloud(), &cloud("cloud-a"));
        assert_eq!(v.certificate().fingerprint, a.fingerprint);
        // The sender's domain is compared case-insensitively, as XMPP does.
        let upper = Sender {
            real_jid_domain: "Cloud-A.Intercloud.Lab".into(),
        };
        assert!(verify(a, &upper, &pki().anchors, &fed(), NOW, SKEW).is_ok());
    }

    #[test]
    fn a_tampered_field_breaks_the_signature() {
        let a = sample(&pki().cloud_a, "cloud-a", now_ms(), 1);
        let mut tampered = a.clone();
        tampered.capacity.vcpu += 1;
        assert_eq!(
            check(tampered, "cloud-a"),
            Err(Rejection::BadSignature {
                cloud: cloud("cloud-a")
            })
        );
        let mut tampered = a.clone();
        tampered.grpc_endpoint = "10.0.0.66:7501".into();
        assert!(matches!(
            check(tampered, "cloud-a"),
            Err(Rejection::BadSignature { .. })
        ));
        let mut tampered = a;
        tampered.signature[10] ^= 1;
        assert!(matches!(
            check(tampered, "cloud-a"),
            Err(Rejection::BadSignature { .. })
        ));
    }

    #[test]
    fn a_fingerprint_must_match_the_certificate() {
        let mut a = sample(&pki().cloud_a, "cloud-a", now_ms(), 1);
        a.fingerprint = "0".repeat(64);
        let err = check(a, "cloud-a").expect_err("mismatch");
        assert!(matches!(err, Rejection::FingerprintMismatch { .. }));
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn a_swapped_certificate_is_caught() {
        // cloud-b's certificate slipped under cloud-a's signed fields.
        let mut a = sample(&pki().cloud_a, "cloud-a", now_ms(), 1);
        a.certificate_der = pki().cloud_b.cert_der.clone();
        a.fingerprint = fingerprint(&a.certificate_der);
        assert!(matches!(
            check(a, "cloud-a"),
            Err(Rejection::WrongIdentity { .. })
        ));
    }

    #[test]
    fn another_cas_certificate_is_refused() {
        let a = sample(&pki().rogue_cloud_a, "cloud-a", now_ms(), 1);
        let err = check(a, "cloud-a").expect_err("untrusted");
        assert!(
            matches!(&err, Rejection::CertificateRefused { reason, .. } if reason.contains("UnknownIssuer")),
            "{err}"
        );
        // The committed fixture too.
        let a = sample(&pki().other_ca, "cloud-a", now_ms(), 1);
        assert!(matches!(
            check(a, "cloud-a"),
            Err(Rejection::CertificateRefused { .. })
        ));
    }

    #[test]
    fn a_revoked_certificate_is_refused() {
        let a = sample(&pki().revoked_cloud_a, "cloud-a", now_ms(), 1);
        let err = check(a.clone(), "cloud-a").expect_err("revoked");
        assert!(
            matches!(&err, Rejection::CertificateRefused { reason, .. } if reason.contains("Revoked")),
            "{err}"
        );
        // Without the CRL in force, the same announcement passes.
        let no_crl = pki().anchors.with_crls(Vec::new()).expect("anchors");
        assert!(verify(a, &sender("cloud-a"), &no_crl, &fed(), NOW, SKEW).is_ok());
        // The committed fixture (bad/revoked.crt + crl.pem).
        let a = sample(&pki().revoked_fixture, "cloud-a", now_ms(), 1);
        let err = check(a, "cloud-a").expect_err("revoked");
        assert!(
            matches!(&err, Rejection::CertificateRefused { reason, .. } if reason.contains("Revoked")),
            "{err}"
        );
    }

    #[test]
    fn an_expired_certificate_is_refused() {
        let a = sample(&pki().cloud_a, "cloud-a", now_ms(), 1);
        let later = time::macros::datetime!(2040-01-01 00:00 UTC);
        let mut a = a;
        a.timestamp_ms = crate::presence::announcement::unix_ms(later);
        let err = verify(a, &sender("cloud-a"), &pki().anchors, &fed(), later, SKEW)
            .expect_err("expired");
        assert!(
            matches!(&err, Rejection::CertificateRefused { reason, .. } if reason.contains("expired")),
            "{err}"
        );
    }

    #[test]
    fn cloud_bs_certificate_cannot_announce_cloud_a() {
        let a = sample(&pki().cloud_b, "cloud-a", now_ms(), 1);
        let err = check(a, "cloud-a").expect_err("wrong identity");
        assert_eq!(
            err,
            Rejection::WrongIdentity {
                cloud: cloud("cloud-a"),
                expected: "spiffe://intercloud.lab/cloud/cloud-a".into(),
                found: "spiffe://intercloud.lab/cloud/cloud-b".into(),
            }
        );
    }

    #[test]
    fn a_cloud_b_announcement_from_cloud_as_jid_is_refused() {
        let a = sample(&pki().cloud_b, "cloud-b", now_ms(), 1);
        let err = check(a, "cloud-a").expect_err("wrong sender");
        assert_eq!(
            err,
            Rejection::WrongSender {
                cloud: cloud("cloud-b"),
                expected_domain: "cloud-b.intercloud.lab".into(),
                sender_domain: "cloud-a.intercloud.lab".into(),
            }
        );
        assert!(err.to_string().contains("cloud-a.intercloud.lab"));
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let skew_ms = i64::try_from(SKEW.as_millis()).expect("small");
        let edge_old = sample(&pki().cloud_a, "cloud-a", now_ms() - skew_ms, 1);
        assert!(check(edge_old, "cloud-a").is_ok());
        let edge_new = sample(&pki().cloud_a, "cloud-a", now_ms() + skew_ms, 1);
        assert!(check(edge_new, "cloud-a").is_ok());

        let old = sample(&pki().cloud_a, "cloud-a", now_ms() - skew_ms - 1, 1);
        let err = check(old, "cloud-a").expect_err("stale");
        assert!(
            matches!(err, Rejection::Stale { age_ms, .. } if age_ms == i128::from(skew_ms) + 1)
        );
        assert!(err.to_string().contains("stale"));

        let future = sample(&pki().cloud_a, "cloud-a", now_ms() + skew_ms + 1, 1);
        assert!(matches!(
            check(future, "cloud-a"),
            Err(Rejection::FromTheFuture { .. })
        ));
        let extreme = sample(&pki().cloud_a, "cloud-a", i64::MIN, 1);
        assert!(matches!(
            check(extreme, "cloud-a"),
            Err(Rejection::Stale { .. })
        ));
    }

    #[test]
    fn rejections_name_their_cloud() {
        let r = Rejection::BadSignature {
            cloud: cloud("cloud-c"),
        };
        assert_eq!(r.cloud(), &cloud("cloud-c"));
        assert!(r.to_string().contains("cloud-c"));
    }
}
