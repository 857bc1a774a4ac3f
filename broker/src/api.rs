//! `Broker`: the operator API.

use std::sync::Arc;

use intercloud_daemon::grpc::{timestamp, timestamp_opt};
use intercloud_proto::v1::broker_server::Broker;
use intercloud_proto::v1::{FederationState, StatusRequest, StatusResponse};
use tonic::{Request, Response, Status};

use crate::core::BrokerCore;
use crate::link_state::Phase;

/// The operator API service.
#[derive(Debug, Clone)]
pub struct BrokerApi {
    core: Arc<BrokerCore>,
}

impl BrokerApi {
    /// Serves `core`.
    pub fn new(core: Arc<BrokerCore>) -> Self {
        Self { core }
    }
}

fn state_message(phase: Phase) -> FederationState {
    match phase {
        Phase::Enrolling => FederationState::Enrolling,
        Phase::Connecting => FederationState::Connecting,
        Phase::Federated => FederationState::Federated,
        Phase::RootUnreachable => FederationState::RootUnreachable,
        Phase::Revoked => FederationState::Revoked,
    }
}

#[tonic::async_trait]
impl Broker for BrokerApi {
    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let core = &self.core;
        let identity = core.identity();
        let link = core.link(|l| l.clone());
        Ok(Response::new(StatusResponse {
            cloud_id: core.config.cloud_id.to_string(),
            federation: core.config.federation.to_string(),
            spiffe_id: identity.info.spiffe_id.to_string(),
            state: state_message(link.phase) as i32,
            state_detail: link.phase.words().to_owned(),
            certificate_serial: identity.info.serial.clone(),
            certificate_not_after: Some(timestamp(identity.info.not_after)),
            certificate_fingerprint: identity.info.fingerprint.clone(),
            root_endpoint: core.config.root.api.clone(),
            root_reachable: matches!(link.phase, Phase::Federated),
            last_root_contact: timestamp_opt(link.last_contact),
            last_error: link.last_error.unwrap_or_default(),
            broker_version: env!("CARGO_PKG_VERSION").to_owned(),
            federation_members: link.members,
            started_at: Some(timestamp(core.started_at)),
        }))
    }
}
