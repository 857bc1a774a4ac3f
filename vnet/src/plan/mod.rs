//! The data plane one broker should have, and how to get there.
//!
//! - [`names`]: interface and namespace names. Every interface this crate
//!   manages carries one of the prefixes `icx` (VXLAN), `icb` (bridge) or
//!   `icv` (veth), so stale ones can be found after a crash and nothing else
//!   is ever touched.
//! - [`dataplane`]: the pieces: links, forwarding entries, neighbor entries,
//!   rate caps.
//! - [`desired_state`]: from the broker's VNets, attachments and peers to the
//!   [`DataPlane`] it should have.
//! - [`namespaces`]: the instances' namespaces to have, and the stale ones.
//! - [`routing`]: gateways and routing between VNets, the filter enforcing
//!   the inter-domain flow policies, and the taps feeding Mirror VNets
//!   (applied by the driver with netlink and nftables, not by [`reconcile`]).
//! - [`reconciliation`]: from what is there ([`ActualState`]) to what should be,
//!   as an ordered list of [`Action`]s for the netlink/tc driver.

pub mod dataplane;
pub mod desired_state;
pub mod names;
pub mod namespaces;
pub mod reconciliation;
pub mod routing;

#[cfg(test)]
mod fixtures;

pub use dataplane::{
    Allow, DataPlane, FdbEntry, Gateway, L4, Link, NeighborEntry, ROUTE_TABLE_BASE,
    RULE_PRIORITY_LOOKUP, RULE_PRIORITY_PROHIBIT, Tap, UnreachablePeer, VXLAN_OVERHEAD, VXLAN_PORT,
};
pub use desired_state::{BrokerInput, MemberVnet, Planned, desired, desired_with_refusals};
pub use names::{IfName, NetnsName};
pub use namespaces::stale_namespaces;
pub use reconciliation::{Action, ActualLink, ActualState, reconcile};

use crate::name::{CloudId, InstanceId, VnetName};
use crate::vni::Vni;

/// Why a data plane could not be planned, or a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Not a valid Linux interface name.
    #[error("interface name {name:?} is refused: {reason}")]
    BadInterfaceName {
        /// The refused name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not `ic-<cloud>.<instance>`.
    #[error("network namespace {0:?} is not ic-<cloud>.<instance>")]
    BadNetnsName(String),
    /// A VNet given to the broker that does not span its cloud.
    #[error("vnet {vnet:?} (VNI {vni}) does not span cloud {cloud}")]
    NotAMember {
        /// The VNet.
        vnet: VnetName,
        /// Its VNI.
        vni: Vni,
        /// The broker's cloud.
        cloud: CloudId,
    },
    /// Attachments given with the record of another VNet.
    #[error("attachments of vnet {found:?} were given for vnet {expected:?}")]
    AttachmentsMismatch {
        /// The VNet of the record.
        expected: VnetName,
        /// The VNet of the attachments.
        found: VnetName,
    },
    /// Two VNets with one VNI.
    #[error("VNI {vni} is given for both vnet {first:?} and vnet {second:?}")]
    DuplicateVni {
        /// The VNI.
        vni: Vni,
        /// The first VNet.
        first: VnetName,
        /// The second VNet.
        second: VnetName,
    },
    /// An attachment in a cloud the VNet does not span.
    #[error(
        "instance {instance} is attached to vnet {vnet:?} in cloud {cloud}, which the vnet does not span"
    )]
    BindingOutsideVnet {
        /// The instance.
        instance: InstanceId,
        /// The VNet.
        vnet: VnetName,
        /// The instance's cloud.
        cloud: CloudId,
    },
    /// One local instance attached to two VNets: its namespace has one `eth0`.
    #[error(
        "instance {instance} is attached to both vnet {first:?} and vnet {second:?} here; its namespace has room for one eth0"
    )]
    InstanceInTwoVnets {
        /// The instance.
        instance: InstanceId,
        /// The first VNet.
        first: VnetName,
        /// The second VNet.
        second: VnetName,
    },
    /// An underlay MTU that leaves too little for the overlay.
    #[error(
        "underlay MTU {mtu} is below {min}: VXLAN takes {VXLAN_OVERHEAD} bytes and the overlay needs at least 576"
    )]
    UnderlayMtuTooSmall {
        /// The refused MTU.
        mtu: u16,
        /// The smallest accepted.
        min: u16,
    },
}
