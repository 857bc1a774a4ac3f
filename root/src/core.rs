//! What the root's services share.

use std::sync::Arc;
use std::time::Duration;

use intercloud_trust::FederationDomain;
use intercloud_trust::cert::CertInfo;
use tonic::{Request, Status};
use tracing::error;

use crate::crl::CrlPublisher;
use crate::directory::Directory;
use crate::state::FederationError;
use crate::store::{StateStore, StoreError};

/// The root's state and signing machinery.
#[derive(Debug)]
pub struct RootCore {
    /// The federation's domain.
    pub federation: FederationDomain,
    /// Membership, tokens, revocations.
    pub store: StateStore,
    /// The CA and the CRL.
    pub publisher: CrlPublisher,
    /// Lifetime of issued certificates.
    pub cert_ttl: Duration,
    /// Default and maximum lifetime of join tokens.
    pub token_ttl: (Duration, Duration),
    /// Heartbeat interval asked of brokers.
    pub heartbeat_interval: Duration,
    /// The service directory.
    pub directory: Arc<Directory>,
}

impl RootCore {
    /// Refuses a caller whose certificate or cloud has been revoked since
    /// its connection was opened.
    pub async fn not_revoked(&self, caller: &CertInfo) -> Result<(), Status> {
        self.store
            .read(|s| crate::authz::not_revoked(s, caller))
            .await
    }

    /// The verified caller of `request`, unless revoked since it connected.
    pub async fn admitted<'a, T>(&self, request: &'a Request<T>) -> Result<&'a CertInfo, Status> {
        let caller = crate::authz::caller(request)?;
        self.not_revoked(caller).await?;
        Ok(caller)
    }
}

/// The gRPC status of a refused or failed change.
pub fn status_of(error: StoreError) -> Status {
    match error {
        StoreError::Refused(e) => refusal(e),
        StoreError::Io { .. } => {
            error!(%error, "cannot persist federation state");
            Status::internal(format!("the root could not persist the change: {error}"))
        }
    }
}

/// The gRPC status of a refusal.
pub fn refusal(error: FederationError) -> Status {
    let message = error.to_string();
    match error {
        FederationError::UnknownToken
        | FederationError::TokenExpired(_)
        | FederationError::TokenUsed(_) => Status::unauthenticated(message),
        FederationError::TokenForAnotherCloud { .. } | FederationError::Revoked(_) => {
            Status::permission_denied(message)
        }
        FederationError::UnknownMember(_) => Status::not_found(message),
        FederationError::BadTokenTtl { .. } => Status::invalid_argument(message),
    }
}

/// Now, in UTC.
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
