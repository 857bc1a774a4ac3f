//! Loading PEM files, with errors that name the file.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

/// A PEM file that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no object of the expected kind, or a broken one.
    #[error("{path} holds no valid PEM {kind}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What was expected ("CERTIFICATE", "PRIVATE KEY", "X509 CRL").
        kind: &'static str,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, PemError> {
    std::fs::read(path).map_err(|source| PemError::Read {
        path: path.to_owned(),
        source,
    })
}

/// All certificates of a PEM file (at least one).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    certificates_from_pem(&read(path)?).ok_or_else(|| PemError::Invalid {
        path: path.to_owned(),
        kind: "CERTIFICATE",
    })
}

/// All certificates of PEM text, or `None` if there are none or one is broken.
pub fn certificates_from_pem(pem: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    certs.ok().filter(|c| !c.is_empty())
}

/// The private key of a PEM file.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|_| PemError::Invalid {
        path: path.to_owned(),
        kind: "PRIVATE KEY",
    })
}

/// All CRLs of a PEM file (at least one).
pub fn crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, PemError> {
    crls_from_pem(&read(path)?).ok_or_else(|| PemError::Invalid {
        path: path.to_owned(),
        kind: "X509 CRL",
    })
}

/// All CRLs of PEM text, or `None` if there are none or one is broken.
pub fn crls_from_pem(pem: &[u8]) -> Option<Vec<CertificateRevocationListDer<'static>>> {
    let crls: Result<Vec<_>, _> = CertificateRevocationListDer::pem_slice_iter(pem).collect();
    crls.ok().filter(|c| !c.is_empty())
}

/// Encodes DER bytes as PEM with the given label.
pub fn encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
