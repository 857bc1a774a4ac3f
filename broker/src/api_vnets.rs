//! The operator API's VNet calls: the root's `Networks` calls made in this
//! cloud's name over the broker's own mutual-TLS channel to the root (the
//! root's refusals come back with their codes and words), plus what only
//! this broker knows — whether an instance exists here, and the local side
//! of a VNet.

use std::future::Future;

use intercloud_proto::v1::networks_client::NetworksClient;
use intercloud_proto::v1::{
    AllowFlowRequest, AttachRequest, Binding, CreateMirrorRequest, CreateVnetRequest,
    DeleteVnetRequest, DeleteVnetResponse, DetachRequest, DetachResponse, FlowPolicy,
    GetVnetRequest, ListFlowsRequest, ListFlowsResponse, ListVnetsRequest, ListVnetsResponse,
    LocalDataplane, RevokeFlowRequest, RevokeFlowResponse, SwapMirrorRequest, Vnet, VnetDetail,
};
use tonic::Status;
use tonic::transport::Channel;

use crate::core::BrokerCore;
use crate::vnets::status::FAILED;

/// What an operator reads when this broker has no VNet data plane.
fn data_plane_off() -> String {
    "this broker's VNet data plane is off: set network.vtep (this cloud's underlay IPv4 address) in broker.toml".to_owned()
}

pub(crate) fn networks(core: &BrokerCore) -> Result<NetworksClient<Channel>, Status> {
    core.root_channel()
        .map(NetworksClient::new)
        .map_err(Status::unavailable)
}

/// Calls the root under the configured deadline. The root's own answers
/// keep their code and message; a root that cannot be reached is named.
pub(crate) async fn call<T>(
    core: &BrokerCore,
    future: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(core.config.timers.root_call_timeout(), future).await {
        Err(_) => Err(Status::deadline_exceeded(format!(
            "the root at {} did not answer in time",
            core.config.root.api
        ))),
        Ok(Ok(response)) => Ok(response.into_inner()),
        // A transport failure carries its cause; the root's refusals do not.
        Ok(Err(status)) if std::error::Error::source(&status).is_some() => {
            Err(Status::unavailable(format!(
                "the root at {} cannot be reached: {}",
                core.config.root.api,
                intercloud_trust::connect::error_chain(&status)
            )))
        }
        Ok(Err(status)) => Err(Status::new(status.code(), status.message())),
    }
}

/// `CreateVnet`.
pub async fn create_vnet(core: &BrokerCore, request: CreateVnetRequest) -> Result<Vnet, Status> {
    let created = call(core, networks(core)?.create_vnet(request)).await?;
    wake(core);
    Ok(created)
}

/// `DeleteVnet`.
pub async fn delete_vnet(
    core: &BrokerCore,
    request: DeleteVnetRequest,
) -> Result<DeleteVnetResponse, Status> {
    let deleted = call(core, networks(core)?.delete_vnet(request)).await?;
    wake(core);
    Ok(deleted)
}

/// `ListVnets`.
pub async fn list_vnets(core: &BrokerCore) -> Result<ListVnetsResponse, Status> {
    call(core, networks(core)?.list_vnets(ListVnetsRequest {})).await
}

/// `ShowVnet`: the root's record and this broker's side of it.
pub async fn show_vnet(core: &BrokerCore, request: GetVnetRequest) -> Result<VnetDetail, Status> {
    let vnet = call(core, networks(core)?.get_vnet(request)).await?;
    let local = match core.vnets.get() {
        Some(vnets) => {
            let mut local = vnets.local(&vnet);
            if !local.rules.is_empty() {
                // The counters as of now, not as of the last round.
                let namespace = core.config.network.namespace.as_deref();
                let counters = match intercloud_netplane::Nft::new(namespace).counters().await {
                    Ok(counters) => counters,
                    Err(e) => {
                        tracing::debug!(error = %e, "nftables counters unreadable");
                        Vec::new()
                    }
                };
                local.rules = crate::vnets::routed::counted(&local.rules, &counters);
            }
            local
        }
        None => LocalDataplane {
            state: FAILED.into(),
            detail: data_plane_off(),
            ..LocalDataplane::default()
        },
    };
    Ok(VnetDetail {
        vnet: Some(vnet),
        local: Some(local),
    })
}

/// `AttachVnet`: only an instance of this cloud, which this broker can
/// give an `eth0`.
pub async fn attach_vnet(core: &BrokerCore, request: AttachRequest) -> Result<Binding, Status> {
    crate::cloud::validate_name(&request.instance)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let Some(vnets) = core.vnets.get() else {
        return Err(Status::failed_precondition(format!(
            "cannot attach {}: {}",
            request.instance,
            data_plane_off()
        )));
    };
    let cloud = core
        .cloud
        .get()
        .cloned()
        .ok_or_else(|| Status::unavailable("the local cloud is not open yet"))?;
    let name = request.instance.clone();
    let found = tokio::task::spawn_blocking(move || cloud.get(&name))
        .await
        .map_err(|e| Status::internal(format!("looking up the instance: {e}")))?
        .map_err(|e| Status::internal(e.to_string()))?;
    if found.is_none() {
        return Err(Status::not_found(format!(
            "instance {} does not exist in cloud {}",
            request.instance, core.config.cloud_id
        )));
    }
    let wanted = format!(
        "{}/{}",
        if request.tenant.is_empty() {
            core.config.cloud_id.as_str()
        } else {
            request.tenant.as_str()
        },
        request.vnet
    );
    if let Some(attached) = vnets.attached_vnet(&request.instance)
        && attached != wanted
    {
        return Err(Status::failed_precondition(format!(
            "instance {} is already attached to vnet {attached} here, and its namespace has room for one eth0: detach it from {attached} first",
            request.instance
        )));
    }
    let binding = call(core, networks(core)?.attach(request)).await?;
    vnets.wake();
    Ok(binding)
}

/// `DetachVnet`.
pub async fn detach_vnet(
    core: &BrokerCore,
    request: DetachRequest,
) -> Result<DetachResponse, Status> {
    let detached = call(core, networks(core)?.detach(request)).await?;
    wake(core);
    Ok(detached)
}

/// `AllowFlow`: proposes a flow rule, or agrees to the other owner's.
pub async fn allow_flow(
    core: &BrokerCore,
    request: AllowFlowRequest,
) -> Result<FlowPolicy, Status> {
    let policy = call(core, networks(core)?.allow_flow(request)).await?;
    wake(core);
    Ok(policy)
}

/// `RevokeFlow`.
pub async fn revoke_flow(
    core: &BrokerCore,
    request: RevokeFlowRequest,
) -> Result<RevokeFlowResponse, Status> {
    let revoked = call(core, networks(core)?.revoke_flow(request)).await?;
    wake(core);
    Ok(revoked)
}

/// `ListFlows`.
pub async fn list_flows(core: &BrokerCore) -> Result<ListFlowsResponse, Status> {
    call(core, networks(core)?.list_flows(ListFlowsRequest {})).await
}

/// `CreateMirror`.
pub async fn create_mirror(
    core: &BrokerCore,
    request: CreateMirrorRequest,
) -> Result<Vnet, Status> {
    let mirror = call(core, networks(core)?.create_mirror(request)).await?;
    wake(core);
    Ok(mirror)
}

/// `SwapMirror`.
pub async fn swap_mirror(core: &BrokerCore, request: SwapMirrorRequest) -> Result<Vnet, Status> {
    let production = call(core, networks(core)?.swap_mirror(request)).await?;
    wake(core);
    Ok(production)
}

fn wake(core: &BrokerCore) {
    if let Some(vnets) = core.vnets.get() {
        vnets.wake();
    }
}
