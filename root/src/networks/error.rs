//! Why the VNet registry refused a request.

use std::net::Ipv4Addr;

use intercloud_vnet::{
    AttachError, CloudId, Domain, FlowRule, InstanceId, PolicyError, RegistryError, SpecError,
    TenantId, VnetName,
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
    /// A binding would move to a cloud the VNet does not span.
    #[error(
        "instance {instance} cannot take its address on vnet {name:?} of tenant {tenant} to {to}: the vnet spans only {members}"
    )]
    MoveOutside {
        /// The instance.
        instance: InstanceId,
        /// The VNet's tenant.
        tenant: TenantId,
        /// The VNet.
        name: VnetName,
        /// The cloud it would move to.
        to: CloudId,
        /// The VNet's clouds.
        members: String,
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
    /// The VNet's security domain belongs to another tenant.
    #[error(
        "domain {domain} is owned by tenant {owner}; tenant {tenant} cannot create vnet {name:?} in it: choose a domain of its own (traffic between domains passes where both owners agree a flow rule)"
    )]
    DomainOwned {
        /// The domain asked for.
        domain: Domain,
        /// The tenant that owns it.
        owner: TenantId,
        /// The tenant that asked.
        tenant: TenantId,
        /// The VNet it asked for.
        name: VnetName,
    },
    /// A flow rule names a domain no VNet ever used.
    #[error("domain {domain} has no owner: no vnet was ever created in it")]
    UnknownDomain {
        /// The domain.
        domain: Domain,
    },
    /// The caller's tenant owns neither domain of a flow rule.
    #[error(
        "tenant {tenant} owns neither domain of rule {rule}: {} is owned by tenant {from_owner}, {} by tenant {to_owner}",
        rule.from_domain(),
        rule.to_domain()
    )]
    NotAnOwner {
        /// The rule (boxed: it would make every refusal this large).
        rule: Box<FlowRule>,
        /// The caller's tenant.
        tenant: TenantId,
        /// The owner of the rule's source domain.
        from_owner: TenantId,
        /// The owner of the rule's destination domain.
        to_owner: TenantId,
    },
    /// The flow rules refused the change (exists, already agreed, none).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Attaching to or detaching from a mirror: its bindings follow its
    /// production's.
    #[error(
        "vnet {name:?} of tenant {tenant} is a mirror of {production:?}; {action} {production:?} (its mirror follows)"
    )]
    MirrorBindings {
        /// The tenant.
        tenant: TenantId,
        /// The mirror named.
        name: VnetName,
        /// Its production.
        production: VnetName,
        /// What to do instead: "attach to" or "detach from".
        action: &'static str,
    },
    /// Swapping a VNet that has no mirror.
    #[error("vnet {name:?} of tenant {tenant} has no mirror; create one first (CreateMirror)")]
    NoMirror {
        /// The tenant.
        tenant: TenantId,
        /// The VNet named.
        name: VnetName,
    },
    /// Swapping by the mirror's name.
    #[error(
        "vnet {name:?} of tenant {tenant} is a mirror of {production:?}; name the production {production:?} to swap the pair"
    )]
    SwapOfMirror {
        /// The tenant.
        tenant: TenantId,
        /// The mirror named.
        name: VnetName,
        /// Its production.
        production: VnetName,
    },
    /// The registry contradicts itself (a bug, or a damaged file).
    #[error("{0}")]
    Inconsistent(String),
}
