//! Who may call what on the root's `Federation` service.
//!
//! The TLS layer has already checked the chain, the CRL and that the caller
//! is a broker or an operator of this federation; these rules add the
//! per-method decisions and refuse clouds revoked since the connection
//! was opened.

use intercloud_trust::cert::CertInfo;
use intercloud_trust::identity::Principal;
use intercloud_trust::serve::PeerInfo;
use intercloud_trust::{CloudId, OperatorScope, SpiffeId};
use tonic::{Request, Status};

use crate::state::FederationState;

/// The verified certificate of the caller.
pub fn caller<T>(request: &Request<T>) -> Result<&CertInfo, Status> {
    request
        .extensions()
        .get::<PeerInfo>()
        .and_then(|p| p.certificate.as_deref())
        .ok_or_else(|| Status::unauthenticated("no verified client certificate on this connection"))
}

/// The cloud a caller acts for, if any: a broker's own, or the cloud of a
/// cloud operator.
pub fn cloud_of(id: &SpiffeId) -> Option<&CloudId> {
    match &id.principal {
        Principal::Cloud(c)
        | Principal::Operator {
            scope: OperatorScope::Cloud(c),
            ..
        } => Some(c),
        _ => None,
    }
}

/// Refuses callers whose cloud or certificate has been revoked.
pub fn not_revoked(state: &FederationState, caller: &CertInfo) -> Result<(), Status> {
    if state.is_serial_revoked(&caller.serial) {
        return Err(Status::permission_denied(format!(
            "certificate {} of {} is revoked",
            caller.serial, caller.spiffe_id
        )));
    }
    if let Some(cloud) = cloud_of(&caller.spiffe_id)
        && state.is_revoked(cloud)
    {
        return Err(Status::permission_denied(format!("{cloud} is revoked")));
    }
    Ok(())
}

/// The broker identity of the caller, for broker-only methods.
pub fn broker<'a>(caller: &'a CertInfo, method: &str) -> Result<&'a CloudId, Status> {
    caller.spiffe_id.as_cloud().ok_or_else(|| {
        Status::permission_denied(format!(
            "{method} is for brokers; {} is not a broker",
            caller.spiffe_id
        ))
    })
}

/// Refuses anyone but an operator of the root.
pub fn root_operator(caller: &CertInfo, method: &str) -> Result<(), Status> {
    if caller.spiffe_id.is_operator_of(&OperatorScope::Root) {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "{method} needs a root operator certificate (spiffe://<federation>/operator/root/<name>); {} is not one",
            caller.spiffe_id
        )))
    }
}
