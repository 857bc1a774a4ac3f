//! The development PKI, built in memory.
//!
//! Nothing here touches the file system: [`build`] returns every file's
//! relative path and contents, and the caller decides how to put them on
//! disk. That keeps the set all-or-nothing and lets tests inspect it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, RevocationReason, RevokedCertParams, SanType,
    SerialNumber, SigningKey,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// The federation CA's certificate; its presence marks a directory as holding a PKI.
pub const CA_CERT_FILE: &str = "ca.crt";

/// A trust domain that is not the federation's, for the `wrong-san` fixture.
pub const FOREIGN_TRUST_DOMAIN: &str = "other.example";

const ORGANIZATION: &str = "Intercloud dev";
const FEDERATION_CA_NAME: &str = "Intercloud Dev Federation CA";
const ROGUE_CA_NAME: &str = "Rogue CA";

/// Validity of the CA and of every certificate that is meant to be valid.
const NORMAL_VALIDITY: Validity = Validity {
    not_before: datetime!(2026-01-01 00:00 UTC),
    not_after: datetime!(2036-01-01 00:00 UTC),
};
const EXPIRED_VALIDITY: Validity = Validity {
    not_before: datetime!(2020-01-01 00:00 UTC),
    not_after: datetime!(2021-01-01 00:00 UTC),
};
const NOT_YET_VALID_VALIDITY: Validity = Validity {
    not_before: datetime!(2099-01-01 00:00 UTC),
    not_after: datetime!(2100-01-01 00:00 UTC),
};
const REVOCATION_TIME: OffsetDateTime = datetime!(2026-01-02 00:00 UTC);

/// One file of the PKI, relative to the output directory.
#[derive(Debug)]
pub struct PkiFile {
    /// Where the file goes, relative to the output directory (`bad/expired.crt`).
    pub path: PathBuf,
    /// PEM text.
    pub contents: String,
    /// What the file is for, one line, for the generated README.
    pub purpose: String,
}

#[derive(Debug, Clone, Copy)]
struct Validity {
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

/// What a leaf certificate says about its subject.
struct LeafProfile {
    common_name: String,
    subject_alt_names: Vec<SanType>,
    extended_key_usages: Vec<ExtendedKeyUsagePurpose>,
    validity: Validity,
}

/// A certificate together with its private key, both PEM.
struct Issued {
    cert_pem: String,
    key_pem: String,
    serial: SerialNumber,
}

/// Builds the whole development PKI for `federation` and its `clouds`.
///
/// `clouds` must not be empty: the bad fixtures impersonate the first cloud's operator.
pub fn build(federation: &str, clouds: &[String]) -> Result<Vec<PkiFile>> {
    let first_cloud = clouds
        .first()
        .context("at least one cloud is needed: the bad fixtures impersonate the first")?;
    let mut files = Vec::new();

    let ca_key = new_key()?;
    let ca = CertifiedIssuer::self_signed(ca_params(FEDERATION_CA_NAME)?, ca_key)?;
    push_pair(
        &mut files,
        "ca",
        ca.pem(),
        ca.key().serialize_pem(),
        format!("federation CA ({FEDERATION_CA_NAME}): the trust anchor every party loads"),
    );

    let root = issue(&server_profile("intercloud-root", federation, "root")?, &ca)?;
    push_issued(
        &mut files,
        "root",
        &root,
        format!(
            "root server: TLS server and client, `{}`",
            spiffe_id(federation, "root")
        ),
    );
    let root_operator = issue(&operator_profile(federation, "root")?, &ca)?;
    push_issued(
        &mut files,
        "operator-root",
        &root_operator,
        format!(
            "the root's operator: TLS client only, `{}`",
            operator_id(federation, "root")
        ),
    );

    for cloud in clouds {
        let broker_id = spiffe_id(federation, &format!("cloud/{cloud}"));
        let broker = issue(
            &server_profile(cloud, federation, &format!("cloud/{cloud}"))?,
            &ca,
        )?;
        push_issued(
            &mut files,
            cloud,
            &broker,
            format!("broker of {cloud}: TLS server and client, `{broker_id}`"),
        );
        let operator = issue(&operator_profile(federation, cloud)?, &ca)?;
        push_issued(
            &mut files,
            &format!("operator-{cloud}"),
            &operator,
            format!(
                "operator of {cloud}: TLS client only, `{}`",
                operator_id(federation, cloud)
            ),
        );
    }

    let impostor = |validity| -> Result<LeafProfile> {
        let mut profile = operator_profile(federation, first_cloud)?;
        profile.validity = validity;
        Ok(profile)
    };
    let who = format!("operator of {first_cloud}");

    let expired = issue(&impostor(EXPIRED_VALIDITY)?, &ca)?;
    push_issued(
        &mut files,
        "bad/expired",
        &expired,
        format!("{who}, federation CA, valid 2020-01-01..2021-01-01: refuse as expired"),
    );

    let not_yet_valid = issue(&impostor(NOT_YET_VALID_VALIDITY)?, &ca)?;
    push_issued(
        &mut files,
        "bad/not-yet-valid",
        &not_yet_valid,
        format!("{who}, federation CA, valid 2099-01-01..2100-01-01: refuse as not yet valid"),
    );

    let revoked = issue(&impostor(NORMAL_VALIDITY)?, &ca)?;
    push_issued(
        &mut files,
        "bad/revoked",
        &revoked,
        format!("{who}, federation CA, serial listed in `crl.pem`: refuse as revoked"),
    );

    let rogue_key = new_key()?;
    let rogue_ca = CertifiedIssuer::self_signed(ca_params(ROGUE_CA_NAME)?, rogue_key)?;
    push_pair(
        &mut files,
        "bad/other-ca-ca",
        rogue_ca.pem(),
        rogue_ca.key().serialize_pem(),
        format!("an unrelated CA ({ROGUE_CA_NAME}) that issued `bad/other-ca.crt`"),
    );
    let other_ca = issue(&impostor(NORMAL_VALIDITY)?, &rogue_ca)?;
    push_issued(
        &mut files,
        "bad/other-ca",
        &other_ca,
        format!("{who}, signed by {ROGUE_CA_NAME}: refuse as untrusted issuer"),
    );

    let mut wrong_san_profile = impostor(NORMAL_VALIDITY)?;
    let foreign_id = operator_id(FOREIGN_TRUST_DOMAIN, first_cloud);
    wrong_san_profile.subject_alt_names = vec![uri(&foreign_id)?];
    let wrong_san = issue(&wrong_san_profile, &ca)?;
    push_issued(
        &mut files,
        "bad/wrong-san",
        &wrong_san,
        format!(
            "federation CA, but SAN `{foreign_id}` (another trust domain): refuse the identity"
        ),
    );

    let mut wrong_key_usage_profile = impostor(NORMAL_VALIDITY)?;
    wrong_key_usage_profile.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let wrong_key_usage = issue(&wrong_key_usage_profile, &ca)?;
    push_issued(
        &mut files,
        "bad/wrong-key-usage",
        &wrong_key_usage,
        format!("{who}, federation CA, EKU serverAuth only: refuse as a TLS client certificate"),
    );

    let crl = CertificateRevocationListParams {
        this_update: NORMAL_VALIDITY.not_before,
        next_update: NORMAL_VALIDITY.not_after,
        crl_number: SerialNumber::from(1),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: revoked.serial.clone(),
            revocation_time: REVOCATION_TIME,
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        // Must match the CA's own method, or the CRL's authority key identifier
        // would not match the CA's subject key identifier.
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca)?;
    files.push(PkiFile {
        path: PathBuf::from("crl.pem"),
        contents: crl.pem()?,
        purpose: format!(
            "CRL number 1 from the federation CA, revoking only `bad/revoked.crt` (serial {})",
            revoked.serial
        ),
    });

    Ok(files)
}

/// `spiffe://<trust_domain>/<path>`.
pub fn spiffe_id(trust_domain: &str, path: &str) -> String {
    format!("spiffe://{trust_domain}/{path}")
}

/// The SPIFFE ID of the administrator operating `party` (a cloud id or `root`).
pub fn operator_id(trust_domain: &str, party: &str) -> String {
    spiffe_id(trust_domain, &format!("operator/{party}/admin"))
}

fn ca_params(common_name: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(common_name, Some(ORGANIZATION));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = NORMAL_VALIDITY.not_before;
    params.not_after = NORMAL_VALIDITY.not_after;
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

/// A server that also dials its peers: the root and every broker.
fn server_profile(common_name: &str, federation: &str, id_path: &str) -> Result<LeafProfile> {
    Ok(LeafProfile {
        common_name: common_name.to_owned(),
        subject_alt_names: vec![
            uri(&spiffe_id(federation, id_path))?,
            SanType::DnsName("localhost".try_into()?),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ],
        extended_key_usages: vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        validity: NORMAL_VALIDITY,
    })
}

/// A human administrator of `party`, who only ever dials.
fn operator_profile(federation: &str, party: &str) -> Result<LeafProfile> {
    Ok(LeafProfile {
        common_name: format!("admin@{party}"),
        subject_alt_names: vec![uri(&operator_id(federation, party))?],
        extended_key_usages: vec![ExtendedKeyUsagePurpose::ClientAuth],
        validity: NORMAL_VALIDITY,
    })
}

/// Issues a leaf for `profile` under a fresh key, signed by `issuer`.
fn issue(profile: &LeafProfile, issuer: &CertifiedIssuer<'_, impl SigningKey>) -> Result<Issued> {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(&profile.common_name, None);
    params.subject_alt_names = profile.subject_alt_names.clone();
    // Explicit `CA:FALSE`; with the default `NoCa` rcgen would also omit the
    // subject key identifier.
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = profile.extended_key_usages.clone();
    params.not_before = profile.validity.not_before;
    params.not_after = profile.validity.not_after;
    params.use_authority_key_identifier_extension = true;
    let serial = random_serial()?;
    params.serial_number = Some(serial.clone());

    let key = new_key()?;
    // The first argument is the subject's public key; the issuer carries the signing key.
    let cert = params
        .signed_by(&key, issuer)
        .with_context(|| format!("signing the certificate of {}", profile.common_name))?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        serial,
    })
}

fn push_issued(files: &mut Vec<PkiFile>, stem: &str, issued: &Issued, purpose: String) {
    push_pair(
        files,
        stem,
        issued.cert_pem.clone(),
        issued.key_pem.clone(),
        purpose,
    );
}

fn push_pair(
    files: &mut Vec<PkiFile>,
    stem: &str,
    cert_pem: String,
    key_pem: String,
    purpose: String,
) {
    files.push(PkiFile {
        path: PathBuf::from(format!("{stem}.crt")),
        contents: cert_pem,
        purpose: format!("certificate: {purpose}"),
    });
    files.push(PkiFile {
        path: PathBuf::from(format!("{stem}.key")),
        contents: key_pem,
        purpose: format!("private key (PKCS#8) of `{stem}.crt`"),
    });
}

fn distinguished_name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    // Replaces rcgen's default subject, which is "CN=rcgen self signed cert".
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    if let Some(organization) = organization {
        name.push(DnType::OrganizationName, organization);
    }
    name
}

fn uri(value: &str) -> Result<SanType> {
    Ok(SanType::URI(value.try_into().with_context(|| {
        format!("{value:?} is not a valid URI SAN (IA5String)")
    })?))
}

pub(crate) fn new_key() -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("generating a P-256 key")
}

/// A random, positive serial number of 16 bytes.
///
/// The crate has no random number generator of its own, and rcgen's default
/// serial is a hash of the subject key rather than random. So the bytes are
/// the start of the x-coordinate of a throwaway P-256 key, which rcgen draws
/// from ring's `SystemRandom` (the operating system's CSPRNG).
pub(crate) fn random_serial() -> Result<SerialNumber> {
    let throwaway = new_key()?;
    // Uncompressed point: 0x04 || x || y.
    let mut bytes: [u8; 16] = throwaway
        .public_key_raw()
        .get(1..17)
        .and_then(|x| x.try_into().ok())
        .context("P-256 public key shorter than expected")?;
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_and_distinct() {
        let first = random_serial().expect("first serial");
        let second = random_serial().expect("second serial");
        assert_eq!(first.len(), 16);
        assert!(first.to_bytes()[0] < 0x80, "serial must be positive");
        assert_ne!(first, second);
    }

    #[test]
    fn build_needs_a_cloud() {
        let error = build("intercloud.lab", &[]).expect_err("no clouds must be refused");
        assert!(error.to_string().contains("at least one cloud"), "{error}");
    }
}
