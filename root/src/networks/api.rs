//! The `Networks` gRPC service: who the caller acts for, request parsing,
//! and the mapping of refusals to gRPC codes, around [`super::state`].

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use intercloud_proto::v1::networks_server::Networks;
use intercloud_proto::v1::{
    AllowFlowRequest, AttachRequest, Binding as BindingMsg, CreateMirrorRequest, CreateVnetRequest,
    DeleteVnetRequest, DeleteVnetResponse, DetachRequest, DetachResponse,
    FlowPolicy as FlowPolicyMsg, GetVnetRequest, ListFlowsRequest, ListFlowsResponse,
    ListVnetsRequest, ListVnetsResponse, MoveBindingRequest, RevokeFlowRequest, RevokeFlowResponse,
    SetVtepRequest, SetVtepResponse, SwapMirrorRequest, Vnet as VnetMsg, VnetEvent,
    WatchVnetsRequest,
};
use intercloud_trust::OperatorScope;
use intercloud_trust::cert::CertInfo;
use intercloud_trust::identity::Principal;
use intercloud_vnet::ipam::IpamError;
use intercloud_vnet::{AttachError, CloudId, PolicyError, RegistryError, VnetSpec, VniError};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::{error, info};

use super::args;
use super::convert::{binding_message, flow_policy_message, vnet_message, vtep_message};
use super::error::NetworkError;
use super::state::{Standing, Viewer};
use super::store::{NetworkStore, NetworkStoreError};
use crate::authz;
use crate::core::{RootCore, now};
use crate::state::{FederationState, MemberState};

/// The service.
#[derive(Debug, Clone)]
pub struct NetworksApi {
    core: Arc<RootCore>,
    networks: Arc<NetworkStore>,
}

impl NetworksApi {
    /// A service over the root's core and its VNet registry.
    pub fn new(core: Arc<RootCore>, networks: Arc<NetworkStore>) -> Self {
        Self { core, networks }
    }
}

/// The gRPC status of a refusal.
pub fn status_of(error: NetworkError) -> Status {
    let message = error.to_string();
    match &error {
        NetworkError::Invalid { .. }
        | NetworkError::Spec(_)
        | NetworkError::CreatorNotMember { .. }
        | NetworkError::UnknownCloud(_)
        | NetworkError::RevokedCloud(_)
        | NetworkError::BadVtep { .. } => Status::invalid_argument(message),
        NetworkError::NotFound { .. } => Status::not_found(message),
        NetworkError::NotMember { .. }
        | NetworkError::NotYourBinding { .. }
        | NetworkError::DomainOwned { .. }
        | NetworkError::NotAnOwner { .. } => Status::permission_denied(message),
        NetworkError::HasBindings { .. }
        | NetworkError::MoveOutside { .. }
        | NetworkError::MirrorBindings { .. }
        | NetworkError::NoMirror { .. }
        | NetworkError::SwapOfMirror { .. } => Status::failed_precondition(message),
        NetworkError::UnknownDomain { .. } => Status::not_found(message),
        NetworkError::Inconsistent(_) => internal(message),
        NetworkError::Policy(policy) => match policy {
            PolicyError::UnknownProto(_)
            | PolicyError::BadPortRange { .. }
            | PolicyError::PortWithoutPorts { .. }
            | PolicyError::SameDomain { .. } => Status::invalid_argument(message),
            PolicyError::UnknownDomain { .. } | PolicyError::NoSuchRule { .. } => {
                Status::not_found(message)
            }
            PolicyError::DomainOwned { .. }
            | PolicyError::NotAnOwner { .. }
            | PolicyError::NotTheOtherOwner { .. } => Status::permission_denied(message),
            PolicyError::AlreadyExists { .. }
            | PolicyError::AlreadyAgreed { .. }
            | PolicyError::ProposerCannotAgree { .. } => Status::already_exists(message),
            _ => internal(message),
        },
        NetworkError::VtepTaken { .. } => Status::already_exists(message),
        NetworkError::Registry(registry) => match registry {
            RegistryError::Duplicate { .. } => Status::already_exists(message),
            RegistryError::NotFound { .. } => Status::not_found(message),
            RegistryError::Overlap { .. }
            | RegistryError::HasMirror { .. }
            | RegistryError::AlreadyMirrored { .. }
            | RegistryError::Mirror(_) => Status::failed_precondition(message),
            RegistryError::Vni(VniError::Exhausted { .. }) => Status::resource_exhausted(format!(
                "{message}: delete unused VNets or widen the root's networks.vni_range"
            )),
            _ => internal(message),
        },
        NetworkError::Attach(attach) => match attach {
            AttachError::AlreadyAttached { .. }
            | AttachError::IpTaken { .. }
            | AttachError::MacTaken { .. }
            | AttachError::Address {
                source: IpamError::Taken { .. },
                ..
            } => Status::already_exists(message),
            AttachError::NotAttached { .. } => Status::not_found(message),
            AttachError::NoFreeIndex { .. }
            | AttachError::Address {
                source: IpamError::Full { .. },
                ..
            } => Status::resource_exhausted(message),
            AttachError::Address { .. } | AttachError::MacNotUsable { .. } => {
                Status::invalid_argument(message)
            }
            _ => internal(message),
        },
    }
}

fn internal(message: String) -> Status {
    error!(error = %message, "VNet registry inconsistency");
    Status::internal(format!(
        "the root's VNet registry is inconsistent: {message}"
    ))
}

/// The gRPC status of a change that was refused or could not be persisted.
pub fn store_status(error: NetworkStoreError) -> Status {
    match error {
        NetworkStoreError::Refused(e) => status_of(e),
        NetworkStoreError::Io { .. } => {
            error!(%error, "cannot persist the VNet registry");
            Status::internal(format!("the root could not persist the change: {error}"))
        }
    }
}

/// The cloud the caller acts for: its broker's, or that of a cloud operator.
fn acting_cloud(caller: &CertInfo, method: &str) -> Result<CloudId, Status> {
    let cloud = authz::cloud_of(&caller.spiffe_id).ok_or_else(|| {
        Status::permission_denied(format!(
            "{method} acts for a cloud; {} is neither a cloud's broker nor its operator",
            caller.spiffe_id
        ))
    })?;
    CloudId::new(cloud.as_str()).map_err(|e| Status::invalid_argument(format!("caller: {e}")))
}

/// What the caller may see: its cloud's VNets, or all for the root's
/// operators (and the root itself).
fn viewer(caller: &CertInfo) -> Result<Viewer, Status> {
    if caller.spiffe_id.is_operator_of(&OperatorScope::Root)
        || matches!(caller.spiffe_id.principal, Principal::Root)
    {
        return Ok(Viewer::Everything);
    }
    acting_cloud(caller, "this call").map(Viewer::Cloud)
}

/// What the federation says of `cloud`.
fn standing(state: &FederationState, cloud: &CloudId) -> Standing {
    let member = intercloud_trust::CloudId::new(cloud.as_str())
        .ok()
        .and_then(|c| state.members.get(&c));
    match member {
        None => Standing::Unknown,
        Some(m) if m.state == MemberState::Revoked => Standing::Revoked,
        Some(_) => Standing::Member,
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<VnetEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Networks for NetworksApi {
    async fn create_vnet(
        &self,
        request: Request<CreateVnetRequest>,
    ) -> Result<Response<VnetMsg>, Status> {
        let caller = self.core.admitted(&request).await?;
        let cloud = acting_cloud(caller, "CreateVnet")?;
        let body = request.get_ref();
        let tenant = args::tenant_of(&cloud).map_err(status_of)?;
        let spec = VnetSpec::new(
            args::vnet_name("name", &body.name).map_err(status_of)?,
            tenant.clone(),
            args::cidr(&body.cidr).map_err(status_of)?,
            args::clouds(&body.clouds).map_err(status_of)?,
            args::domain(&body.domain, &tenant).map_err(status_of)?,
            args::bandwidth(&body.bandwidth).map_err(status_of)?,
        )
        .map_err(|e| status_of(e.into()))?;
        let standings: BTreeMap<CloudId, Standing> = self
            .core
            .store
            .read(|s| {
                spec.clouds()
                    .iter()
                    .map(|c| (c.clone(), standing(s, c)))
                    .collect()
            })
            .await;
        let view = self
            .networks
            .update(|s| {
                s.create(
                    &cloud,
                    spec,
                    |c| standings.get(c).copied().unwrap_or(Standing::Unknown),
                    now(),
                )
            })
            .await
            .inspect_err(|e| info!(%cloud, reason = %e, "vnet refused"))
            .map_err(store_status)?;
        let spec = &view.record.spec;
        info!(
            tenant = %spec.tenant(),
            vnet = %spec.name(),
            cidr = %spec.cidr(),
            vni = %view.record.vni,
            clouds = spec.clouds().len(),
            "vnet created"
        );
        Ok(Response::new(vnet_message(&view)))
    }

    async fn delete_vnet(
        &self,
        request: Request<DeleteVnetRequest>,
    ) -> Result<Response<DeleteVnetResponse>, Status> {
        let caller = self.core.admitted(&request).await?;
        let cloud = acting_cloud(caller, "DeleteVnet")?;
        let tenant = args::tenant_of(&cloud).map_err(status_of)?;
        let name = args::vnet_name("name", &request.get_ref().name).map_err(status_of)?;
        let view = self
            .networks
            .update(|s| s.delete(&tenant, &name, now()))
            .await
            .map_err(store_status)?;
        info!(%tenant, vnet = %name, vni = %view.record.vni, "vnet deleted; VNI released");
        Ok(Response::new(DeleteVnetResponse {
            deleted: Some(vnet_message(&view)),
        }))
    }

    async fn list_vnets(
        &self,
        request: Request<ListVnetsRequest>,
    ) -> Result<Response<ListVnetsResponse>, Status> {
        let caller = self.core.admitted(&request).await?;
        let viewer = viewer(caller)?;
        let vnets = self
            .networks
            .read(|s| s.visible(&viewer).iter().map(vnet_message).collect())
            .await;
        Ok(Response::new(ListVnetsResponse { vnets }))
    }

    async fn get_vnet(
        &self,
        request: Request<GetVnetRequest>,
    ) -> Result<Response<VnetMsg>, Status> {
        let caller = self.core.admitted(&request).await?;
        let viewer = viewer(caller)?;
        let body = request.get_ref();
        let own = match &viewer {
            Viewer::Cloud(cloud) => Some(cloud),
            Viewer::Everything => None,
        };
        let tenant = args::tenant(&body.tenant, own).map_err(status_of)?;
        let name = args::vnet_name("name", &body.name).map_err(status_of)?;
        self.networks
            .read(|s| s.get(&viewer, &tenant, &name).map(|v| vnet_message(&v)))
            .await
            .map(Response::new)
            .map_err(status_of)
    }

    async fn attach(
        &self,
        request: Request<AttachRequest>,
    ) -> Result<Response<BindingMsg>, Status> {
        let caller = self.core.admitted(&request).await?;
        let cloud = acting_cloud(caller, "Attach")?;
        let body = request.get_ref();
        let tenant = args::tenant(&body.tenant, Some(&cloud)).map_err(status_of)?;
        let name = args::vnet_name("vnet", &body.vnet).map_err(status_of)?;
        let instance = args::instance(&body.instance).map_err(status_of)?;
        let wanted = args::optional_ip("ip", &body.ip).map_err(status_of)?;
        let binding = self
            .networks
            .update(|s| s.attach(&cloud, &tenant, &name, instance, wanted, now()))
            .await
            .map_err(store_status)?;
        info!(
            %tenant,
            vnet = %name,
            instance = %binding.instance,
            %cloud,
            ip = %binding.ip,
            mac = %binding.mac,
            "instance attached"
        );
        Ok(Response::new(binding_message(&tenant, &name, &binding)))
    }

    async fn detach(
        &self,
        request: Request<DetachRequest>,
    ) -> Result<Response<DetachResponse>, Status> {
        let caller = self.core.admitted(&request).await?;
        let cloud = acting_cloud(caller, "Detach")?;
        let body = request.get_ref();
        let tenant = args::tenant(&body.tenant, Some(&cloud)).map_err(status_of)?;
        let name = args::vnet_name("vnet", &body.vnet).map_err(status_of)?;
        let instance = args::instance(&body.instance).map_err(status_of)?;
        let binding = self
            .networks
            .update(|s| s.detach(&cloud, &tenant, &name, &instance, now()))
            .await
            .map_err(store_status)?;
        info!(%tenant, vnet = %name, %instance, %cloud, ip = %binding.ip, "instance detached");
        Ok(Response::new(DetachResponse {
            detached: Some(binding_message(&tenant, &name, &binding)),
        }))
    }

    async fn move_binding(
        &self,
        request: Request<MoveBindingRequest>,
    ) -> Result<Response<BindingMsg>, Status> {
        let caller = self.core.admitted(&request).await?;
        let cloud = acting_cloud(caller, "MoveBinding")?;
        let body = request.get_ref();
        let tenant = args::tenant(&body.tenant, Some(&cloud)).map_err(status_of)?;
        let name = args::vnet_name("vnet", &body.vnet).map_err(status_of)?;
        let instance = args::instance(&body.instance).map_err(status_of)?;
        let to = CloudId::new(body.to_cloud.trim())
            .map_err(|e| Status::invalid_argument(format!("to_cloud: {e}")))?;
        let binding = self
            .networks
            .update(|s| s.move_binding(&cloud, &tenant, &name, &instance, &to, now()))
            .await
            .map_err(store_status)?;
        info!(%tenant, vnet = %name, %instance, from = %cloud, %to, ip = %binding.ip, "binding moved with its instance");
        Ok(Response::new(binding_message(&tenant, &name, &binding)))
    }

    async fn set_vtep(
        &self,
        request: Request<SetVtepRequest>,
    ) -> Result<Response<SetVtepResponse>, Status> {
        let caller = self.core.admitted(&request).await?;
        let cloud = acting_cloud(caller, "SetVtep")?;
        let address = args::ip("address", &request.get_ref().address).map_err(status_of)?;
        let changed = self
            .networks
            .update(|s| s.set_vtep(&cloud, address, now()))
            .await
            .map_err(store_status)?;
        if changed {
            info!(%cloud, %address, "VTEP declared");
        }
        Ok(Response::new(SetVtepResponse {
            vtep: Some(vtep_message(&cloud, address)),
            changed,
        }))
    }

    async fn allow_flow(
        &self,
        request: Request<AllowFlowRequest>,
    ) -> Result<Response<FlowPolicyMsg>, Status> {
        let caller = self.core.admitted(&request).await?;
        let cloud = acting_cloud(caller, "AllowFlow")?;
        let tenant = args::tenant_of(&cloud).map_err(status_of)?;
        let rule = args::flow_rule(request.get_ref().rule.as_ref()).map_err(status_of)?;
        let policy = self
            .networks
            .update(|s| s.allow_flow(&tenant, rule.clone(), now()))
            .await
            .inspect_err(|e| info!(%tenant, %rule, reason = %e, "flow rule refused"))
            .map_err(store_status)?;
        match &policy.awaiting {
            Some(awaiting) => info!(%tenant, %rule, %awaiting, "flow rule proposed"),
            None => info!(%tenant, %rule, "flow rule agreed"),
        }
        Ok(Response::new(flow_policy_message(&policy)))
    }

    async fn revoke_flow(
        &self,
        request: Request<RevokeFlowRequest>,
    ) -> Result<Response<RevokeFlowResponse>, Status> {
        let caller = self.core.admitted(&request).await?;
        let cloud = acting_cloud(caller, "RevokeFlow")?;
        let tenant = args::tenant_of(&cloud).map_err(status_of)?;
        let rule = args::flow_rule(request.get_ref().rule.as_ref()).map_err(status_of)?;
        let policy = self
            .networks
            .update(|s| s.revoke_flow(&tenant, &rule, now()))
            .await
            .map_err(store_status)?;
        info!(%tenant, %rule, was_agreed = policy.agreed, "flow rule withdrawn");
        Ok(Response::new(RevokeFlowResponse {
            revoked: Some(flow_policy_message(&policy)),
        }))
    }

    async fn list_flows(
        &self,
        request: Request<ListFlowsRequest>,
    ) -> Result<Response<ListFlowsResponse>, Status> {
        let caller = self.core.admitted(&request).await?;
        let viewer = viewer(caller)?;
        let policies = self
            .networks
            .read(|s| s.flows(&viewer).iter().map(flow_policy_message).collect())
            .await;
        Ok(Response::new(ListFlowsResponse { policies }))
    }

    async fn create_mirror(
        &self,
        request: Request<CreateMirrorRequest>,
    ) -> Result<Response<VnetMsg>, Status> {
        let caller = self.core.admitted(&request).await?;
        let cloud = acting_cloud(caller, "CreateMirror")?;
        let tenant = args::tenant_of(&cloud).map_err(status_of)?;
        let body = request.get_ref();
        let production = args::vnet_name("vnet", &body.vnet).map_err(status_of)?;
        let name = args::mirror_name(&body.name, &production).map_err(status_of)?;
        let strategy = args::mirror_strategy(&body.strategy).map_err(status_of)?;
        let view = self
            .networks
            .update(|s| s.create_mirror(&tenant, &production, name, strategy, now()))
            .await
            .inspect_err(|e| info!(%tenant, vnet = %production, reason = %e, "mirror refused"))
            .map_err(store_status)?;
        info!(
            %tenant,
            vnet = %production,
            mirror = %view.record.spec.name(),
            vni = %view.record.vni,
            %strategy,
            clones = view.bindings.len(),
            "mirror created"
        );
        Ok(Response::new(vnet_message(&view)))
    }

    async fn swap_mirror(
        &self,
        request: Request<SwapMirrorRequest>,
    ) -> Result<Response<VnetMsg>, Status> {
        let caller = self.core.admitted(&request).await?;
        let cloud = acting_cloud(caller, "SwapMirror")?;
        let tenant = args::tenant_of(&cloud).map_err(status_of)?;
        let name = args::vnet_name("vnet", &request.get_ref().vnet).map_err(status_of)?;
        let view = self
            .networks
            .update(|s| s.swap_mirror(&tenant, &name, now()))
            .await
            .map_err(store_status)?;
        info!(
            %tenant,
            vnet = %name,
            mirror = ?view.mirror.as_ref().map(ToString::to_string),
            swapped = view.swapped,
            "mirror swapped"
        );
        Ok(Response::new(vnet_message(&view)))
    }

    type WatchVnetsStream = EventStream;

    async fn watch_vnets(
        &self,
        request: Request<WatchVnetsRequest>,
    ) -> Result<Response<Self::WatchVnetsStream>, Status> {
        let caller = self.core.admitted(&request).await?;
        let viewer = viewer(caller)?;
        let stream = super::watch::watch(
            self.core.clone(),
            self.networks.clone(),
            caller.clone(),
            viewer,
        );
        Ok(Response::new(Box::pin(stream)))
    }
}
