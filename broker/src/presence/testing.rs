//! Test fixtures: the committed dev PKI (`certs-dev/pki`) plus certificates
//! issued here for the cases the fixtures lack (a cloud certificate from a
//! rogue CA, a revoked cloud certificate), and announcements made with them.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use intercloud_trust::ca::{
    CertificateAuthority, RevokedSerial, SigningRequest, generate_key_and_csr,
};
use intercloud_trust::tls::TrustAnchors;
use intercloud_trust::{CloudId, FederationDomain, SpiffeId};
use time::OffsetDateTime;
use time::macros::datetime;

use super::announcement::{
    Announcement, Capacity, Readiness, SigningKey, UnsignedAnnouncement, unix_ms,
};
use super::verify::{Sender, VerifiedAnnouncement, verify};

/// The virtual "now" of the tests (inside the dev certificates' validity).
pub(crate) const NOW: OffsetDateTime = datetime!(2030-01-01 00:00 UTC);

/// The timestamp skew the tests allow.
pub(crate) const SKEW: Duration = Duration::from_secs(30);

/// [`NOW`] in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    unix_ms(NOW)
}

/// A certificate (DER) and its key (PKCS#8 PEM).
pub(crate) struct Party {
    pub(crate) cert_der: Vec<u8>,
    pub(crate) key_pem: String,
}

pub(crate) struct Pki {
    /// The federation CA with a CRL revoking `revoked_cloud_a` and `revoked_fixture`.
    pub(crate) anchors: TrustAnchors,
    pub(crate) cloud_a: Party,
    pub(crate) cloud_b: Party,
    /// `spiffe://intercloud.lab/cloud/cloud-a`, issued by the committed Rogue CA.
    pub(crate) rogue_cloud_a: Party,
    /// `spiffe://intercloud.lab/cloud/cloud-a`, federation CA, revoked.
    pub(crate) revoked_cloud_a: Party,
    /// `bad/other-ca.crt`.
    pub(crate) other_ca: Party,
    /// `bad/revoked.crt` (listed in `crl.pem`).
    pub(crate) revoked_fixture: Party,
}

fn pki_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../certs-dev/pki")
}

fn read(name: &str) -> String {
    let path = pki_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn der(cert_pem: &str) -> Vec<u8> {
    intercloud_trust::pem::certificates_from_pem(cert_pem.as_bytes())
        .and_then(|certs| certs.into_iter().next())
        .expect("a PEM certificate")
        .to_vec()
}

fn party(name: &str) -> Party {
    Party {
        cert_der: der(&read(&format!("{name}.crt"))),
        key_pem: read(&format!("{name}.key")),
    }
}

fn issue(ca: &CertificateAuthority, cloud_id: &str) -> (Party, String) {
    let id = SpiffeId::cloud(&fed(), &cloud(cloud_id));
    let (key_pem, csr) = generate_key_and_csr(&id).expect("key and CSR");
    let request = SigningRequest::parse(&csr).expect("CSR");
    let issued = ca
        .issue(
            &request,
            &id,
            NOW - Duration::from_secs(3600),
            Duration::from_secs(10 * 86_400),
        )
        .expect("issue");
    (
        Party {
            cert_der: der(&issued.cert_pem),
            key_pem,
        },
        issued.info.serial,
    )
}

/// The fixtures, built once per test binary.
pub(crate) fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let federation_ca =
            CertificateAuthority::from_pem(&read("ca.crt"), &read("ca.key")).expect("dev CA");
        let rogue_ca = CertificateAuthority::from_pem(
            &read("bad/other-ca-ca.crt"),
            &read("bad/other-ca-ca.key"),
        )
        .expect("rogue CA");
        let (rogue_cloud_a, _) = issue(&rogue_ca, "cloud-a");
        let (revoked_cloud_a, serial) = issue(&federation_ca, "cloud-a");
        // One CRL per issuer counts, so merge the committed one into ours.
        let mut revoked = federation_ca
            .read_crl(read("crl.pem").as_bytes(), "crl.pem")
            .expect("committed CRL");
        revoked.push(RevokedSerial {
            serial,
            revoked_at: NOW - Duration::from_secs(60),
        });
        let crl_pem = federation_ca
            .sign_crl(
                &revoked,
                1_000,
                NOW - Duration::from_secs(60),
                NOW + Duration::from_secs(7 * 86_400),
            )
            .expect("CRL");
        let crls = intercloud_trust::pem::crls_from_pem(crl_pem.as_bytes()).expect("CRL PEM");
        let anchors = TrustAnchors::from_pem(read("ca.crt").as_bytes())
            .expect("anchors")
            .with_crls(crls)
            .expect("CRL in force");
        Pki {
            anchors,
            cloud_a: party("cloud-a"),
            cloud_b: party("cloud-b"),
            rogue_cloud_a,
            revoked_cloud_a,
            other_ca: party("bad/other-ca"),
            revoked_fixture: party("bad/revoked"),
        }
    })
}

pub(crate) fn cloud(id: &str) -> CloudId {
    CloudId::new(id).expect("cloud id")
}

pub(crate) fn fed() -> FederationDomain {
    FederationDomain::new("intercloud.lab").expect("federation")
}

/// The sender of a presence from `cloud_id`'s broker.
pub(crate) fn sender(cloud_id: &str) -> Sender {
    Sender {
        real_jid_domain: format!("{cloud_id}.intercloud.lab"),
    }
}

/// Announcement fields for `cloud_id` with `party`'s certificate.
pub(crate) fn unsigned(
    party: &Party,
    cloud_id: &str,
    timestamp_ms: i64,
    sequence: u64,
) -> UnsignedAnnouncement {
    UnsignedAnnouncement {
        cloud: cloud(cloud_id),
        readiness: Readiness {
            ready: true,
            willing: true,
            able: true,
        },
        capacity: Capacity {
            vcpu: 64,
            memory_mib: 262_144,
            storage_gib: 10_000,
        },
        descriptor_version: 3,
        grpc_endpoint: "127.0.0.1:7501".into(),
        timestamp_ms,
        sequence,
        certificate_der: party.cert_der.clone(),
    }
}

/// An announcement for `cloud_id` signed with `party`'s key.
pub(crate) fn sample(
    party: &Party,
    cloud_id: &str,
    timestamp_ms: i64,
    sequence: u64,
) -> Announcement {
    sign(unsigned(party, cloud_id, timestamp_ms, sequence), party)
}

/// Signs `fields` with `party`'s key.
pub(crate) fn sign(fields: UnsignedAnnouncement, party: &Party) -> Announcement {
    let key = SigningKey::from_pem(&party.key_pem).expect("key");
    fields.sign(&key).expect("sign")
}

/// The time `timestamp_ms` denotes.
pub(crate) fn at(timestamp_ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(timestamp_ms) * 1_000_000).expect("time")
}

/// Verifies `fields` signed by the matching dev cloud, received at its own timestamp.
pub(crate) fn verified(fields: UnsignedAnnouncement) -> VerifiedAnnouncement {
    let party = match fields.cloud.as_str() {
        "cloud-a" => &pki().cloud_a,
        "cloud-b" => &pki().cloud_b,
        other => panic!("no fixture for {other}"),
    };
    let from = sender(fields.cloud.as_str());
    let now = at(fields.timestamp_ms);
    verify(
        sign(fields, party),
        &from,
        &pki().anchors,
        &fed(),
        now,
        SKEW,
    )
    .expect("verifies")
}
