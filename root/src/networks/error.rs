//! Why the VNet registry refused a request.

use std::net::Ipv4Addr;

use intercloud_vnet::{
    AttachError, CloudId, InstanceId, RegistryError, SpecError, TenantId, VnetName,
};

/// A refused VNet operation. Mapped to gRPC codes only at the edge
/// ([`crate::networks::api::status_of`]); every message names the value
/// refused and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// A request field does not parse.
    #[error("{field}: {reason}")]
    Invalid {
        /// The request field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The specification is not a valid VNet (CIDR, clouds).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The creator left its own cloud out of the VNet.
    #[error(
        "clouds must include the caller's own cloud {caller}: a cloud creates VNets it is a member of"
    )]
    CreatorNotMember {
        /// The calling cloud.
        caller: CloudId,
    },
    /// A named cloud is not a member of the federation.
    #[error("clouds: {0} is not a member of the federation")]
    UnknownCloud(CloudId),
    /// A named cloud was revoked.
    #[error("clouds: {0} is revoked and cannot join a VNet")]
    RevokedCloud(CloudId),
    /// The registry refused it (duplicate, overlap, VNI space full, mirror).
    #[error("{0}")]
    Registry(#[from] RegistryError),
    /// No such VNet.
    #[error("tenant {tenant} has no vnet {name:?}")]
    NotFound {
        /// The tenant asked for.
        tenant: TenantId,
        /// The name asked for.
        name: VnetName,
    },
    /// The caller's cloud is not a member of the VNet.
    #[error(
        "{cloud} is not a member cloud of vnet {name:?} of tenant {tenant} (its clouds: {members})"
    )]
    NotMember {
        /// The calling cloud.
        cloud: CloudId,
        /// The VNet's tenant.
        tenant: TenantId,
        /// The VNet.
        name: VnetName,
        /// Its member clouds, comma-separated.
        members: String,
    },
    /// A VNet with attachments cannot be deleted.
    #[error(
        "vnet {name:?} of tenant {tenant} still has {count} attached instance(s): {instances}; detach them first"
    )]
    HasBindings {
        /// The VNet's tenant.
        tenant: TenantId,
        /// The VNet.
        name: VnetName,
        /// How many.
        count: usize,
        /// The first few, comma-separated.
        instances: String,
    },
    /// Attaching or detaching was refused.
    #[error(transparent)]
    Attach(#[from] AttachError),
    /// Only the cloud an instance runs in may detach it.
    #[error(
        "instance {instance} is attached to vnet {name:?} from {owner}; only {owner} may detach it, not {caller}"
    )]
    NotYourBinding {
        /// The instance.
        instance: InstanceId,
        /// The VNet.
        name: VnetName,
        /// The cloud the binding is on.
        owner: CloudId,
        /// The calling cloud.
        caller: CloudId,
    },
    /// The address cannot be a VTEP.
    #[error("address: {address} cannot be a VTEP: {reason}")]
    BadVtep {
        /// The refused address.
        address: Ipv4Addr,
        /// Why, in words.
        reason: &'static str,
    },
    /// Another cloud declared this VTEP address.
    #[error(
        "address: {address} is already the VTEP of {cloud}; each cloud needs its own underlay address"
    )]
    VtepTaken {
        /// The refused address.
        address: Ipv4Addr,
        /// The cloud that has it.
        cloud: CloudId,
    },
}
