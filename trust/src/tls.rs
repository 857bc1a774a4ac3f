//! rustls configurations for the federation.
//!
//! Both directions check the chain up to the federation CA and the CRL with
//! webpki, then read the peer's `spiffe://` URI SAN and apply a policy:
//! a server states who may connect ([`ClientPolicy`]), a client states whom
//! it expects to reach (one [`SpiffeId`]). Host names play no part.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};

use crate::cert::CertInfo;
use crate::identity::{FederationDomain, SpiffeId};
use crate::pem::PemError;

/// A TLS configuration that could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate, key or CRL file was unusable.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// The trust bundle holds no usable CA certificate.
    #[error("trust bundle: {0}")]
    TrustBundle(String),
    /// rustls refused the configuration (e.g. key does not match certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The verifier could not be built (e.g. a CRL does not parse).
    #[error("TLS verifier: {0}")]
    Verifier(String),
}

/// The ring crypto provider every configuration uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The federation CA certificate(s) and the CRLs in force, with what is
/// derived from them computed once: the revoked serials and the webpki
/// verifier of client (member) certificates.
#[derive(Debug, Clone)]
pub struct TrustAnchors {
    roots: Arc<RootCertStore>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    revoked: Arc<HashSet<String>>,
    member_verifier: Arc<dyn ClientCertVerifier>,
}

impl TrustAnchors {
    fn new(
        roots: Arc<RootCertStore>,
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Result<Self, TlsError> {
        let member_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
                .with_crls(crls.clone())
                .only_check_end_entity_revocation()
                .allow_unknown_revocation_status()
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let revoked = crls
            .iter()
            .flat_map(|der| crate::cert::crl_serials(der))
            .collect();
        Ok(Self {
            roots,
            crls,
            revoked: Arc::new(revoked),
            member_verifier,
        })
    }

    /// Trusts the CA certificates in `bundle_pem`.
    pub fn from_pem(bundle_pem: &[u8]) -> Result<Self, TlsError> {
        let certs = crate::pem::certificates_from_pem(bundle_pem)
            .ok_or_else(|| TlsError::TrustBundle("no PEM CERTIFICATE".into()))?;
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| TlsError::TrustBundle(e.to_string()))?;
        }
        Self::new(Arc::new(roots), Vec::new())
    }

    /// Trusts the CA certificates in a PEM file.
    pub fn load(bundle: &Path) -> Result<Self, TlsError> {
        let pem = std::fs::read(bundle).map_err(|source| PemError::Read {
            path: bundle.to_owned(),
            source,
        })?;
        Self::from_pem(&pem)
            .map_err(|e| TlsError::TrustBundle(format!("{}: {e}", bundle.display())))
    }

    /// The same anchors with these CRLs in force (replacing earlier ones).
    /// Only the first CRL of an issuer counts, so pass one CRL per CA.
    pub fn with_crls(
        &self,
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Result<Self, TlsError> {
        Self::new(self.roots.clone(), crls)
    }

    /// Whether a CRL in force lists the certificate with this serial (hex).
    pub fn lists_serial(&self, serial: &str) -> bool {
        self.revoked.contains(serial)
    }

    /// A client configuration that trusts these roots and checks the
    /// server's DNS name the usual way (for servers that are not federation
    /// members, such as the XMPP server, whose certificates name hosts).
    pub fn host_client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// Checks a federation member's end-entity certificate outside a TLS
    /// handshake (e.g. one carried in a signed XMPP payload): it must chain
    /// to the anchors, be valid at `now`, allow clientAuth and not be listed
    /// by a CRL in force. Returns what the certificate says; `Err` is a
    /// readable reason ("UnknownIssuer", "Revoked", "certificate expired: …").
    pub fn verify_identity(&self, der: &[u8], now: UnixTime) -> Result<CertInfo, String> {
        self.member_verifier
            .verify_client_cert(&CertificateDer::from(der), &[], now)
            .map_err(|e| match e {
                rustls::Error::InvalidCertificate(reason) => reason.to_string(),
                other => other.to_string(),
            })?;
        CertInfo::from_der(der).map_err(|e| e.to_string())
    }
}

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Credentials {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Credentials {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Credentials {
    /// Loads a PEM certificate chain and a PEM private key.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        Ok(Self {
            chain: crate::pem::certificates(cert)?,
            key: crate::pem::private_key(key)?,
        })
    }

    /// Builds credentials from PEM text.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, TlsError> {
        use rustls_pki_types::pem::PemObject as _;
        let chain = crate::pem::certificates_from_pem(cert_pem.as_bytes())
            .ok_or_else(|| TlsError::Verifier("certificate: no PEM CERTIFICATE".into()))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|_| TlsError::Verifier("key: no PEM PRIVATE KEY".into()))?;
        Ok(Self { chain, key })
    }

    /// What the leaf certificate says.
    pub fn leaf_info(&self) -> Option<CertInfo> {
        self.chain
            .first()
            .and_then(|der| CertInfo::from_der(der).ok())
    }
}

/// Decides whether an authenticated federation identity may connect.
/// `Err` carries the reason, which ends up in the server's log.
pub type ClientPolicy = Arc<dyn Fn(&SpiffeId) -> Result<(), String> + Send + Sync>;

/// A refusal by policy, carried through rustls as a certificate error.
#[derive(Debug)]
struct PolicyRefusal(String);

impl fmt::Display for PolicyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyRefusal {}

fn refuse(reason: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
        PolicyRefusal(reason),
    ))))
}

/// Reads and checks the SPIFFE id of an end-entity certificate.
fn federation_identity(
    der: &CertificateDer<'_>,
    federation: &FederationDomain,
) -> Result<SpiffeId, rustls::Error> {
    let info = CertInfo::from_der(der).map_err(|e| refuse(e.to_string()))?;
    if &info.spiffe_id.federation != federation {
        return Err(refuse(format!(
            "{} belongs to another federation (expected spiffe://{federation}/…)",
            info.spiffe_id
        )));
    }
    Ok(info.spiffe_id)
}

/// Client-certificate verifier: webpki (chain, validity, CRL, clientAuth
/// usage), then the SPIFFE id and the policy.
struct SpiffeClientVerifier {
    webpki: Arc<dyn ClientCertVerifier>,
    federation: FederationDomain,
    policy: ClientPolicy,
}

impl fmt::Debug for SpiffeClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiffeClientVerifier")
            .field("federation", &self.federation)
            .finish()
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.webpki
            .verify_client_cert(end_entity, intermediates, now)?;
        let id = federation_identity(end_entity, &self.federation)?;
        (self.policy)(&id).map_err(refuse)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Who a server lets in.
pub enum ClientAuth {
    /// Server authentication only (the root's enrolment port).
    None,
    /// A certificate of the federation is required and must satisfy the policy.
    Required {
        /// The trust domain client identities must belong to.
        federation: FederationDomain,
        /// Who may connect.
        policy: ClientPolicy,
    },
}

/// A server configuration speaking HTTP/2 (ALPN `h2`).
pub fn server_config(
    anchors: &TrustAnchors,
    credentials: &Credentials,
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Required { federation, policy } => {
            builder.with_client_cert_verifier(Arc::new(SpiffeClientVerifier {
                webpki: anchors.member_verifier.clone(),
                federation,
                policy,
            }))
        }
    };
    let mut config =
        builder.with_single_cert(credentials.chain.clone(), credentials.key.clone_key())?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Server-certificate verifier: webpki (chain, validity, CRL, serverAuth
/// usage) without host-name matching, then the expected SPIFFE id.
#[derive(Debug)]
struct SpiffeServerVerifier {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    expected: SpiffeId,
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain and revocation before the name; a name
        // mismatch therefore means the chain is good, and in this federation
        // the SPIFFE id, not the host name, says who the server is.
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(_)
            | Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => {}
            Err(e) => return Err(e),
        }
        let id = federation_identity(end_entity, &self.expected.federation)?;
        if id != self.expected {
            return Err(refuse(format!(
                "server is {id}, expected {}",
                self.expected
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// A client configuration (ALPN `h2`) that accepts only a server proving
/// `expected`, presenting `credentials` when given.
pub fn client_config(
    anchors: &TrustAnchors,
    expected: SpiffeId,
    credentials: Option<&Credentials>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
        anchors.roots.clone(),
        provider(),
    )
    .with_crls(anchors.crls.clone())
    .only_check_end_entity_revocation()
    .allow_unknown_revocation_status()
    .build()
    .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SpiffeServerVerifier { webpki, expected }));
    let mut config = match credentials {
        Some(c) => builder.with_client_auth_cert(c.chain.clone(), c.key.clone_key())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}
