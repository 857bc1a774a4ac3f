//! Reading certificates: serial, validity, fingerprint and the SPIFFE URI SAN.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::{IdentityError, SpiffeId};

/// Why a certificate could not be read as a federation certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The bytes are not a DER X.509 certificate.
    #[error("not a DER X.509 certificate: {0}")]
    Malformed(String),
    /// The certificate has no `spiffe://` URI SAN.
    #[error("certificate has no spiffe:// URI SAN")]
    NoSpiffeId,
    /// The certificate has more than one `spiffe://` URI SAN.
    #[error("certificate has more than one spiffe:// URI SAN")]
    SeveralSpiffeIds,
    /// The URI SAN is not one of the federation's shapes.
    #[error(transparent)]
    BadSpiffeId(#[from] IdentityError),
}

/// What the federation reads off a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The single `spiffe://` URI SAN, parsed.
    pub spiffe_id: SpiffeId,
    /// Serial number, lower-case hex without leading zero bytes.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// SHA-256 of the DER certificate, lower-case hex.
    pub fingerprint: String,
}

impl CertInfo {
    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| CertError::Malformed(e.to_string()))?;
        Ok(Self {
            spiffe_id: spiffe_id_of(&cert)?,
            serial: serial_hex(cert.raw_serial()),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            fingerprint: fingerprint(der),
        })
    }
}

/// The single `spiffe://` URI SAN of a parsed certificate.
pub fn spiffe_id_of(cert: &X509Certificate<'_>) -> Result<SpiffeId, CertError> {
    let mut uris = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name
                && uri.starts_with("spiffe://")
            {
                uris.push(*uri);
            }
        }
    }
    match uris.as_slice() {
        [] => Err(CertError::NoSpiffeId),
        [uri] => Ok(SpiffeId::parse(uri)?),
        _ => Err(CertError::SeveralSpiffeIds),
    }
}

/// Serials (hex) listed by a DER CRL; empty if it does not parse. The
/// signature is not checked here: webpki checks it where the CRL is used.
pub fn crl_serials(der: &[u8]) -> Vec<String> {
    use x509_parser::revocation_list::CertificateRevocationList;
    CertificateRevocationList::from_der(der)
        .map(|(_, crl)| {
            crl.iter_revoked_certificates()
                .map(|r| serial_hex(r.raw_serial()))
                .collect()
        })
        .unwrap_or_default()
}

/// Lower-case hex of a serial number, leading zero bytes dropped.
pub fn serial_hex(raw: &[u8]) -> String {
    let trimmed: &[u8] = match raw.iter().position(|b| *b != 0) {
        Some(first) => &raw[first..],
        None => &[0],
    };
    hex::encode(trimmed)
}

/// SHA-256 of DER bytes, lower-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_drop_leading_zero_bytes() {
        assert_eq!(serial_hex(&[0, 0x1f, 0x02]), "1f02");
        assert_eq!(serial_hex(&[0]), "00");
        assert_eq!(serial_hex(&[0x80]), "80");
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            CertInfo::from_der(b"nope"),
            Err(CertError::Malformed(_))
        ));
    }
}
