//! `Broker`: the operator API (its VNet calls are in [`crate::api_vnets`],
//! transfers, instances and objects in [`crate::api_workloads`]).

use std::sync::Arc;

use intercloud_daemon::grpc::{timestamp, timestamp_opt};
use intercloud_proto::v1::broker_server::Broker;
use std::pin::Pin;

use futures::{Stream, StreamExt as _};
use intercloud_proto::v1::{
    AllowFlowRequest, AttachRequest, Binding, CreateMirrorRequest, CreateVnetRequest,
    DeleteVnetRequest, DeleteVnetResponse, DetachRequest, DetachResponse, FlowPolicy,
    GetVnetRequest, ListFlowsRequest, ListFlowsResponse, ListVnetsRequest, ListVnetsResponse,
    RevokeFlowRequest, RevokeFlowResponse, SwapMirrorRequest, Vnet, VnetDetail,
};
use intercloud_proto::v1::{
    ClockStatus, DescriptorStatus, FederationState, ListPeersRequest, ListPeersResponse,
    NegotiateRequest, NegotiateResponse, PeerEvent, StatusRequest, StatusResponse,
    WatchPeersRequest, peer_event,
};
use intercloud_proto::v1::{
    CreateInstanceRequest, GetObjectRequest, GetObjectResponse, Instance, ListInstancesRequest,
    ListInstancesResponse, ListObjectsRequest, ListObjectsResponse, ListTransfersRequest,
    ListTransfersResponse, MigrateRequest, MigrationStep, ObjectStep, PutObjectRequest, Transfer,
    WatchTransfersRequest,
};
use tonic::Streaming;

use crate::api_vnets as vnets;
use crate::api_workloads::{self as workloads, Streamed};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
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
        let (readiness, free) = core.peers.own();
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
            presence_connected: core.peers.connected(),
            peers_online: u32::try_from(core.peers.peers().iter().filter(|p| p.online).count())
                .unwrap_or(u32::MAX),
            readiness: Some(readiness),
            free: Some(free),
            descriptor: Some(descriptor_message(core.descriptor())),
            clock: Some(clock_message(core.clock(), time::OffsetDateTime::now_utc())),
        }))
    }

    async fn list_peers(
        &self,
        _request: Request<ListPeersRequest>,
    ) -> Result<Response<ListPeersResponse>, Status> {
        let view = &self.core.peers;
        if !view.configured() {
            return Err(presence_not_configured());
        }
        Ok(Response::new(ListPeersResponse {
            peers: view.peers(),
            presence_connected: view.connected(),
            lease_seconds: u32::try_from(view.lease().as_secs()).unwrap_or(u32::MAX),
        }))
    }

    type WatchPeersStream = Pin<Box<dyn Stream<Item = Result<PeerEvent, Status>> + Send>>;

    async fn watch_peers(
        &self,
        request: Request<WatchPeersRequest>,
    ) -> Result<Response<Self::WatchPeersStream>, Status> {
        let view = &self.core.peers;
        if !view.configured() {
            return Err(presence_not_configured());
        }
        // Subscribe before the snapshot so that no event falls in between.
        let events = BroadcastStream::new(view.subscribe()).map(|item| match item {
            Ok(event) => Ok(event),
            Err(BroadcastStreamRecvError::Lagged(n)) => Err(Status::data_loss(format!(
                "this watcher fell {n} events behind; call ListPeers and watch again"
            ))),
        });
        let now = Some(timestamp(time::OffsetDateTime::now_utc()));
        let current: Vec<Result<PeerEvent, Status>> = if request.get_ref().include_current {
            view.peers()
                .into_iter()
                .filter(|p| p.online)
                .map(|peer| {
                    Ok(PeerEvent {
                        kind: peer_event::Kind::Joined as i32,
                        peer: Some(peer),
                        reason: String::new(),
                        at: now,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Response::new(Box::pin(
            tokio_stream::iter(current).chain(events),
        )))
    }

    async fn list_transfers(
        &self,
        request: Request<ListTransfersRequest>,
    ) -> Result<Response<ListTransfersResponse>, Status> {
        workloads::list_transfers(&self.core, request.get_ref().include_finished).map(Response::new)
    }

    type WatchTransfersStream = Streamed<Transfer>;

    async fn watch_transfers(
        &self,
        request: Request<WatchTransfersRequest>,
    ) -> Result<Response<Self::WatchTransfersStream>, Status> {
        workloads::watch_transfers(&self.core, request.get_ref().include_finished)
            .map(Response::new)
    }

    async fn create_instance(
        &self,
        request: Request<CreateInstanceRequest>,
    ) -> Result<Response<Instance>, Status> {
        workloads::create_instance(&self.core, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_instances(
        &self,
        _request: Request<ListInstancesRequest>,
    ) -> Result<Response<ListInstancesResponse>, Status> {
        workloads::list_instances(&self.core)
            .await
            .map(Response::new)
    }

    type MigrateStream = Streamed<MigrationStep>;

    async fn migrate(
        &self,
        request: Request<MigrateRequest>,
    ) -> Result<Response<Self::MigrateStream>, Status> {
        workloads::migrate(&self.core, request.into_inner())
            .await
            .map(Response::new)
    }

    type PutObjectStream = Streamed<ObjectStep>;

    async fn put_object(
        &self,
        request: Request<Streaming<PutObjectRequest>>,
    ) -> Result<Response<Self::PutObjectStream>, Status> {
        workloads::put_object(&self.core, request.into_inner())
            .await
            .map(Response::new)
    }

    type GetObjectStream = Streamed<GetObjectResponse>;

    async fn get_object(
        &self,
        request: Request<GetObjectRequest>,
    ) -> Result<Response<Self::GetObjectStream>, Status> {
        workloads::get_object(&self.core, &request.get_ref().name)
            .await
            .map(Response::new)
    }

    async fn list_objects(
        &self,
        _request: Request<ListObjectsRequest>,
    ) -> Result<Response<ListObjectsResponse>, Status> {
        workloads::list_objects(&self.core).map(Response::new)
    }

    async fn create_vnet(
        &self,
        request: Request<CreateVnetRequest>,
    ) -> Result<Response<Vnet>, Status> {
        vnets::create_vnet(&self.core, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn delete_vnet(
        &self,
        request: Request<DeleteVnetRequest>,
    ) -> Result<Response<DeleteVnetResponse>, Status> {
        vnets::delete_vnet(&self.core, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_vnets(
        &self,
        _request: Request<ListVnetsRequest>,
    ) -> Result<Response<ListVnetsResponse>, Status> {
        vnets::list_vnets(&self.core).await.map(Response::new)
    }

    async fn show_vnet(
        &self,
        request: Request<GetVnetRequest>,
    ) -> Result<Response<VnetDetail>, Status> {
        vnets::show_vnet(&self.core, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn attach_vnet(
        &self,
        request: Request<AttachRequest>,
    ) -> Result<Response<Binding>, Status> {
        vnets::attach_vnet(&self.core, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn detach_vnet(
        &self,
        request: Request<DetachRequest>,
    ) -> Result<Response<DetachResponse>, Status> {
        vnets::detach_vnet(&self.core, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn allow_flow(
        &self,
        request: Request<AllowFlowRequest>,
    ) -> Result<Response<FlowPolicy>, Status> {
        vnets::allow_flow(&self.core, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn revoke_flow(
        &self,
        request: Request<RevokeFlowRequest>,
    ) -> Result<Response<RevokeFlowResponse>, Status> {
        vnets::revoke_flow(&self.core, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_flows(
        &self,
        _request: Request<ListFlowsRequest>,
    ) -> Result<Response<ListFlowsResponse>, Status> {
        vnets::list_flows(&self.core).await.map(Response::new)
    }

    async fn create_mirror(
        &self,
        request: Request<CreateMirrorRequest>,
    ) -> Result<Response<Vnet>, Status> {
        vnets::create_mirror(&self.core, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn swap_mirror(
        &self,
        request: Request<SwapMirrorRequest>,
    ) -> Result<Response<Vnet>, Status> {
        vnets::swap_mirror(&self.core, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn negotiate(
        &self,
        request: Request<NegotiateRequest>,
    ) -> Result<Response<NegotiateResponse>, Status> {
        let view = &self.core.peers;
        if !view.configured() {
            return Err(presence_not_configured());
        }
        let request = request.into_inner();
        intercloud_trust::CloudId::new(&request.cloud_id)
            .map_err(|e| Status::invalid_argument(format!("cloud_id: {e}")))?;
        let negotiator = view
            .negotiator()
            .ok_or_else(|| Status::unavailable("the XMPP driver is not running"))?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        negotiator
            .send(crate::peers::NegotiateCommand { request, reply })
            .await
            .map_err(|_| Status::unavailable("the XMPP driver stopped"))?;
        answer
            .await
            .map(Response::new)
            .map_err(|_| Status::unavailable("the XMPP driver dropped the request"))
    }
}

fn descriptor_message(status: crate::directory::DescriptorStatus) -> DescriptorStatus {
    DescriptorStatus {
        path: status.path,
        published_version: status.published_version,
        state: status.state.words().to_owned(),
        last_error: status.last_error.unwrap_or_default(),
        published_at: timestamp_opt(status.published_at),
        triples: status.triples,
    }
}

fn clock_message(status: crate::clock::ClockStatus, now: time::OffsetDateTime) -> ClockStatus {
    let estimate = status.estimate;
    ClockStatus {
        detail: status.detail(now),
        server: status.server,
        health: status.health.words().to_owned(),
        offset_ms: estimate.map_or(0.0, |e| nanos_as_millis(e.offset.as_nanos())),
        delay_ms: estimate.map_or(0.0, |e| duration_as_millis(e.delay)),
        jitter_ms: estimate.map_or(0.0, |e| duration_as_millis(e.jitter)),
        last_sync: timestamp_opt(status.last_sync),
        samples: estimate.map_or(0, |e| e.samples),
        stratum: status.root.map_or(0, |r| u32::from(r.stratum)),
        reference_id: status
            .root
            .map(|r| r.reference_id.to_string())
            .unwrap_or_default(),
    }
}

fn nanos_as_millis(nanos: i64) -> f64 {
    nanos as f64 / 1e6
}

fn duration_as_millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn presence_not_configured() -> Status {
    Status::failed_precondition(
        "presence is not configured on this broker: add an [xmpp] section to its config",
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use intercloud_ntp::SignedDuration;
    use intercloud_ntp::packet::ReferenceId;
    use time::macros::datetime;

    use super::*;
    use crate::clock::state::{ClockEstimate, RootClock};
    use crate::clock::{ClockHealth, ClockStatus as Clock};

    #[test]
    fn the_clock_status_is_in_milliseconds_with_its_detail() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        let status = Clock {
            health: ClockHealth::Ok,
            estimate: Some(ClockEstimate {
                offset: SignedDuration::from_nanos(-42_000),
                delay: Duration::from_micros(120),
                jitter: Duration::from_micros(10),
                samples: 8,
            }),
            last_sync: Some(datetime!(2026-05-01 09:59:59 UTC)),
            root: Some(RootClock {
                stratum: 10,
                reference_id: ReferenceId::LOCAL_CLOCK,
            }),
            max_offset: Duration::from_millis(100),
            ..Clock::starting("127.0.0.1:7123".into())
        };
        let message = clock_message(status, now);
        assert_eq!(message.server, "127.0.0.1:7123");
        assert_eq!(message.health, "ok");
        assert_eq!(
            message.detail,
            "offset -0.042 ms within the 100 ms threshold"
        );
        assert!((message.offset_ms + 0.042).abs() < 1e-9);
        assert!((message.delay_ms - 0.12).abs() < 1e-9);
        assert!((message.jitter_ms - 0.01).abs() < 1e-9);
        assert_eq!(message.samples, 8);
        assert_eq!(message.stratum, 10);
        assert_eq!(message.reference_id, "LOCL");
        assert_eq!(
            message.last_sync.map(|t| t.seconds),
            Some(now.unix_timestamp() - 1)
        );

        let message = clock_message(Clock::not_configured(), now);
        assert_eq!(message.health, "not configured");
        assert_eq!(message.server, "");
        assert_eq!(message.samples, 0);
        assert_eq!(message.last_sync, None);
        assert_eq!(message.reference_id, "");
    }
}
