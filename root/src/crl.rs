//! The CRL the root publishes, and the TLS configuration of the API port
//! that enforces it.
//!
//! The CRL lists every revocation of the root plus the entries of imported
//! CRLs of the same CA (webpki consults only one CRL per issuer, so they are
//! merged into one). It is re-signed on every revocation and at half its
//! validity, and each re-signing swaps the API port's server configuration
//! so that new connections are checked against it at once.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use intercloud_trust::ca::{CaError, CertificateAuthority, RevokedSerial};
use intercloud_trust::identity::Principal;
use intercloud_trust::tls::{
    ClientAuth, ClientPolicy, Credentials, TlsError, TrustAnchors, server_config,
};
use intercloud_trust::{FederationDomain, SpiffeId};
use rustls::ServerConfig;
use time::OffsetDateTime;

use crate::state::FederationState;

/// A signed CRL.
#[derive(Debug, Clone)]
pub struct SignedCrl {
    /// PEM.
    pub pem: String,
    /// CRL number; strictly increasing.
    pub number: u64,
    /// When it stops being valid.
    pub next_update: OffsetDateTime,
}

/// A CRL or TLS configuration that could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// Signing failed.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The new TLS configuration was refused.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Who may open a connection to the root's API port: brokers and operators
/// of this federation. Finer, per-method rules live in [`crate::authz`].
pub fn api_policy() -> ClientPolicy {
    Arc::new(|id: &SpiffeId| match id.principal {
        Principal::Root => Err(format!("{id} is the root's own identity, not a client")),
        Principal::Cloud(_) | Principal::Operator { .. } => Ok(()),
    })
}

/// What the root signs and serves with.
pub struct RootPki {
    /// The federation CA.
    pub ca: CertificateAuthority,
    /// Trust anchors (the CA certificate).
    pub anchors: TrustAnchors,
    /// The root's own server certificate and key.
    pub credentials: Credentials,
    /// The federation's domain.
    pub federation: FederationDomain,
    /// Entries of imported CRLs.
    pub imported: Vec<RevokedSerial>,
}

/// Signs CRLs and keeps the API port's TLS configuration in step.
pub struct CrlPublisher {
    ca: CertificateAuthority,
    anchors: TrustAnchors,
    credentials: Credentials,
    federation: FederationDomain,
    imported: Vec<RevokedSerial>,
    validity: Duration,
    current: ArcSwap<SignedCrl>,
    api_config: Arc<ArcSwap<ServerConfig>>,
    http_config: Arc<ArcSwap<ServerConfig>>,
}

impl std::fmt::Debug for CrlPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlPublisher")
            .field("number", &self.current.load().number)
            .finish_non_exhaustive()
    }
}

impl CrlPublisher {
    /// Signs the first CRL for `state` and builds the API configuration.
    pub fn new(
        pki: RootPki,
        validity: Duration,
        state: &FederationState,
        now: OffsetDateTime,
    ) -> Result<Self, PublishError> {
        let RootPki {
            ca,
            anchors,
            credentials,
            federation,
            imported,
        } = pki;
        let crl = sign(&ca, &imported, state, 0, validity, now)?;
        let config = api_server_config(&anchors, &credentials, &federation, &crl)?;
        Ok(Self {
            ca,
            anchors,
            credentials,
            federation,
            imported,
            validity,
            current: ArcSwap::from_pointee(crl),
            http_config: Arc::new(ArcSwap::new(http_variant(&config))),
            api_config: Arc::new(ArcSwap::new(config)),
        })
    }

    /// The CRL in force.
    pub fn current(&self) -> Arc<SignedCrl> {
        self.current.load_full()
    }

    /// The API port's configuration, swapped on every publication.
    pub fn api_config(&self) -> Arc<ArcSwap<ServerConfig>> {
        self.api_config.clone()
    }

    /// The SPARQL endpoint's configuration: the API port's (same clients,
    /// same CRL) speaking HTTP/1.1 as well as HTTP/2; swapped with it.
    pub fn http_config(&self) -> Arc<ArcSwap<ServerConfig>> {
        self.http_config.clone()
    }

    /// The CA.
    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// Entries carried over from imported CRLs.
    pub fn imported(&self) -> &[RevokedSerial] {
        &self.imported
    }

    /// How long a CRL is valid.
    pub fn validity(&self) -> Duration {
        self.validity
    }

    /// Signs a new CRL for `state` and applies it to the API port.
    pub fn publish(
        &self,
        state: &FederationState,
        now: OffsetDateTime,
    ) -> Result<Arc<SignedCrl>, PublishError> {
        let previous = self.current.load().number;
        let crl = sign(
            &self.ca,
            &self.imported,
            state,
            previous,
            self.validity,
            now,
        )?;
        let config = api_server_config(&self.anchors, &self.credentials, &self.federation, &crl)?;
        self.http_config.store(http_variant(&config));
        self.api_config.store(config);
        let crl = Arc::new(crl);
        self.current.store(crl.clone());
        Ok(crl)
    }
}

fn http_variant(config: &ServerConfig) -> Arc<ServerConfig> {
    let mut config = config.clone();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

fn sign(
    ca: &CertificateAuthority,
    imported: &[RevokedSerial],
    state: &FederationState,
    previous: u64,
    validity: Duration,
    now: OffsetDateTime,
) -> Result<SignedCrl, CaError> {
    let mut entries: Vec<RevokedSerial> = imported.to_vec();
    for r in &state.revocations {
        if !entries.iter().any(|e| e.serial == r.serial) {
            entries.push(RevokedSerial {
                serial: r.serial.clone(),
                revoked_at: r.revoked_at,
            });
        }
    }
    // Seconds since the epoch keep the number increasing across restarts;
    // `previous + 1` keeps it increasing within one second.
    let number = u64::try_from(now.unix_timestamp())
        .unwrap_or(0)
        .max(previous + 1);
    let next_update = now + validity;
    let pem = ca.sign_crl(
        &entries,
        number,
        now - intercloud_trust::ca::BACKDATE,
        next_update,
    )?;
    Ok(SignedCrl {
        pem,
        number,
        next_update,
    })
}

fn api_server_config(
    anchors: &TrustAnchors,
    credentials: &Credentials,
    federation: &FederationDomain,
    crl: &SignedCrl,
) -> Result<Arc<ServerConfig>, TlsError> {
    let crls = intercloud_trust::pem::crls_from_pem(crl.pem.as_bytes())
        .ok_or_else(|| TlsError::Verifier("freshly signed CRL does not parse".into()))?;
    server_config(
        &anchors.with_crls(crls)?,
        credentials,
        ClientAuth::Required {
            federation: federation.clone(),
            policy: api_policy(),
        },
    )
}
