//! The federation CA's operations (issue from a CSR, sign a CRL) and the
//! requester's side (generate a key and a CSR for an identity).
//!
//! Pure computation: callers pass `now` and do the file and network I/O.

use std::path::Path;
use std::time::Duration;

use rcgen::{
    CertificateParams, CertificateRevocationListParams, CertificateSigningRequestParams,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use time::OffsetDateTime;

use crate::cert::{CertInfo, fingerprint, serial_hex};
use crate::identity::SpiffeId;

/// A CA operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The CA certificate or key could not be loaded.
    #[error("cannot load the federation CA: {0}")]
    Load(String),
    /// The CSR is not a PEM PKCS#10 request, or its signature does not verify.
    #[error("malformed CSR: {0}")]
    MalformedCsr(String),
    /// The CSR asks for no federation identity, or for several.
    #[error("CSR must request exactly one spiffe:// URI SAN, it requests {0}")]
    CsrIdentity(String),
    /// rcgen refused to sign.
    #[error("signing failed: {0}")]
    Sign(#[from] rcgen::Error),
    /// A CRL to import is not signed by this CA.
    #[error("CRL {0} is not signed by the federation CA")]
    ForeignCrl(String),
}

/// How long before `now` an issued certificate starts, to absorb clock skew.
pub const BACKDATE: Duration = Duration::from_secs(60);

/// The federation CA: its certificate and signing key.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// A certificate the CA issued.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// The leaf, PEM.
    pub cert_pem: String,
    /// What it says.
    pub info: CertInfo,
}

/// An entry of the CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSerial {
    /// Serial, lower-case hex.
    pub serial: String,
    /// When the CA processed the revocation.
    pub revoked_at: OffsetDateTime,
}

impl CertificateAuthority {
    /// Loads the CA from a PEM certificate file and a PEM PKCS#8 key file.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, CaError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| CaError::Load(format!("cannot read {}: {e}", p.display())))
        };
        Self::from_pem(&read(cert_path)?, &read(key_path)?)
    }

    /// Builds the CA from PEM text.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CaError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| CaError::Load(format!("key: {e}")))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| CaError::Load(format!("certificate: {e}")))?;
        let cert_der = crate::pem::certificates_from_pem(cert_pem.as_bytes())
            .and_then(|certs| certs.into_iter().next())
            .ok_or_else(|| CaError::Load("certificate: no PEM CERTIFICATE".into()))?
            .to_vec();
        Ok(Self {
            issuer,
            cert_pem: cert_pem.to_owned(),
            cert_der,
        })
    }

    /// The trust bundle handed to members: the CA certificate, PEM.
    pub fn bundle_pem(&self) -> &str {
        &self.cert_pem
    }

    /// SHA-256 of the CA certificate (DER), hex.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// Issues a certificate for `id` to the key of `request`, valid from
    /// `now - BACKDATE` to `now + ttl`, usable for TLS server and client auth.
    /// The CSR's other fields are ignored: the CA decides what it signs.
    pub fn issue(
        &self,
        request: &SigningRequest,
        id: &SpiffeId,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<IssuedCert, CaError> {
        let mut params = CertificateParams::default();
        params.not_before = now - BACKDATE;
        params.not_after = now + ttl;
        params.serial_number = Some(random_serial());
        params.distinguished_name = common_name(id);
        params.subject_alt_names = vec![SanType::URI(id.to_string().try_into()?)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        let cert = params.signed_by(&request.csr.public_key, &self.issuer)?;
        let info = CertInfo::from_der(cert.der())
            .map_err(|e| CaError::Load(format!("issued certificate does not parse: {e}")))?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            info,
        })
    }

    /// Signs a CRL listing `revoked`, PEM.
    pub fn sign_crl(
        &self,
        revoked: &[RevokedSerial],
        number: u64,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<String, CaError> {
        let revoked_certs = revoked
            .iter()
            .filter_map(|r| {
                let bytes = hex::decode(&r.serial).ok()?;
                Some(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&bytes),
                    revocation_time: r.revoked_at,
                    reason_code: Some(RevocationReason::CessationOfOperation),
                    invalidity_date: None,
                })
            })
            .collect();
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }

    /// Reads the entries of a CRL (PEM) that this CA signed, for merging into
    /// the CRL the root publishes.
    pub fn read_crl(&self, crl_pem: &[u8], name: &str) -> Result<Vec<RevokedSerial>, CaError> {
        use x509_parser::prelude::FromDer as _;
        let crls = crate::pem::crls_from_pem(crl_pem)
            .ok_or_else(|| CaError::ForeignCrl(format!("{name} (no PEM X509 CRL)")))?;
        let (_, ca) = x509_parser::certificate::X509Certificate::from_der(&self.cert_der)
            .map_err(|e| CaError::Load(e.to_string()))?;
        let mut out = Vec::new();
        for der in &crls {
            let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der)
                .map_err(|_| CaError::ForeignCrl(format!("{name} (malformed)")))?;
            crl.verify_signature(ca.public_key())
                .map_err(|_| CaError::ForeignCrl(name.to_owned()))?;
            for entry in crl.iter_revoked_certificates() {
                out.push(RevokedSerial {
                    serial: serial_hex(entry.raw_serial()),
                    revoked_at: entry.revocation_date.to_datetime(),
                });
            }
        }
        Ok(out)
    }
}

fn common_name(id: &SpiffeId) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    let cn = match &id.principal {
        crate::identity::Principal::Root => "intercloud-root".to_owned(),
        crate::identity::Principal::Cloud(c) => c.to_string(),
        crate::identity::Principal::Operator { scope, name } => format!("{name}@{scope}"),
    };
    dn.push(DnType::CommonName, cn);
    dn
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

/// A parsed, signature-checked CSR.
#[derive(Debug)]
pub struct SigningRequest {
    csr: CertificateSigningRequestParams,
    /// The `spiffe://` identity the CSR asks for.
    pub requested: SpiffeId,
}

impl SigningRequest {
    /// Parses a PEM CSR, checks its self-signature and reads the one
    /// `spiffe://` URI SAN it requests.
    pub fn parse(pem: &str) -> Result<Self, CaError> {
        let csr = CertificateSigningRequestParams::from_pem(pem)
            .map_err(|e| CaError::MalformedCsr(e.to_string()))?;
        let uris: Vec<&str> = csr
            .params
            .subject_alt_names
            .iter()
            .filter_map(|san| match san {
                SanType::URI(uri) if uri.as_str().starts_with("spiffe://") => Some(uri.as_str()),
                _ => None,
            })
            .collect();
        let requested = match uris.as_slice() {
            [uri] => SpiffeId::parse(uri).map_err(|e| CaError::CsrIdentity(e.to_string()))?,
            [] => return Err(CaError::CsrIdentity("none".into())),
            many => return Err(CaError::CsrIdentity(many.join(", "))),
        };
        Ok(Self { csr, requested })
    }
}

/// A fresh private key (PKCS#8 PEM) and a CSR (PEM) asking for `id`.
pub fn generate_key_and_csr(id: &SpiffeId) -> Result<(String, String), CaError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(id);
    params.subject_alt_names = vec![SanType::URI(id.to_string().try_into()?)];
    let csr = params.serialize_request(&key)?;
    Ok((key.serialize_pem(), csr.pem()?))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::identity::{CloudId, FederationDomain};

    /// A throwaway CA for unit tests.
    pub(crate) fn test_ca() -> CertificateAuthority {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, "test CA");
        let cert = params.self_signed(&key).expect("self-signed");
        CertificateAuthority::from_pem(&cert.pem(), &key.serialize_pem()).expect("ca")
    }

    fn fed() -> FederationDomain {
        FederationDomain::new("intercloud.lab").expect("domain")
    }

    #[test]
    fn issues_the_requested_identity_with_the_given_lifetime() {
        let ca = test_ca();
        let id = SpiffeId::cloud(&fed(), &CloudId::new("cloud-d").expect("id"));
        let (_key, csr) = generate_key_and_csr(&id).expect("csr");
        let request = SigningRequest::parse(&csr).expect("parse");
        assert_eq!(request.requested, id);
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).expect("ns");
        let issued = ca
            .issue(&request, &id, now, Duration::from_secs(3600))
            .expect("issue");
        assert_eq!(issued.info.spiffe_id, id);
        assert_eq!(issued.info.not_after, now + Duration::from_secs(3600));
        assert_eq!(issued.info.not_before, now - BACKDATE);
    }

    #[test]
    fn refuses_garbage_and_identity_less_csrs() {
        assert!(matches!(
            SigningRequest::parse("junk"),
            Err(CaError::MalformedCsr(_))
        ));
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let csr = CertificateParams::new(vec!["example.org".to_owned()])
            .expect("params")
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem");
        assert!(matches!(
            SigningRequest::parse(&csr),
            Err(CaError::CsrIdentity(_))
        ));
    }

    #[test]
    fn signed_crls_read_back() {
        let ca = test_ca();
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).expect("ns");
        let revoked = vec![RevokedSerial {
            serial: "7f0102".into(),
            revoked_at: now,
        }];
        let pem = ca
            .sign_crl(&revoked, 3, now, now + Duration::from_secs(60))
            .expect("crl");
        assert_eq!(ca.read_crl(pem.as_bytes(), "test").expect("read"), revoked);
        let other = test_ca();
        assert!(matches!(
            other.read_crl(pem.as_bytes(), "test"),
            Err(CaError::ForeignCrl(_))
        ));
    }
}
