//! The pure core of Intercloud's cross-cloud virtual networks (VNets).
//!
//! A VNet is an IPv4 network stretched over several clouds as a VXLAN
//! overlay: each member cloud's broker runs a VXLAN device per VNet, bound to
//! its VTEP (underlay) address, and replicates broadcast traffic to the other
//! members' VTEPs. Every VNet belongs to a security domain; traffic between
//! domains passes only where both domains' owners agreed. A Mirror VNet is a
//! clone of a production VNet that receives (part of) its input, and the two
//! can swap roles.
//!
//! This crate does no I/O: no files, sockets or clocks. State comes in as
//! arguments and goes out as values (all serializable), so the drivers around
//! it (netlink, nftables, tc, gRPC, persistence) stay thin.
//!
//! Map of the crate:
//! - [`name`]: validated names: [`VnetName`], [`Domain`], [`TenantId`],
//!   [`InstanceId`], [`CloudId`].
//! - [`vni`]: [`Vni`] (24 bits, 0 and 0xFFFFFF reserved), [`VniRange`] and
//!   the [`VniAllocator`] that avoids reusing a just-released VNI.
//! - [`bandwidth`]: a VNet's rate cap, [`Bandwidth`] (`100mbit`).
//! - [`spec`]: what a tenant asks for, [`VnetSpec`], checked.
//! - [`registry`]: every VNet with its VNI, as the root persists them
//!   ([`Registry`], [`VnetRecord`]): names unique per tenant, no overlapping
//!   networks within a tenant, mirrors tied to their production.
//! - [`mac`]: Ethernet addresses, [`MacAddr`].
//! - [`ipam`]: addresses inside a VNet (network, gateway and broadcast kept
//!   out) and the deterministic MAC of an attachment.
//! - [`attach`]: which instance is attached to a VNet where, [`Attachments`]
//!   and [`Binding`].
//! - [`policy`]: flow rules between security domains, agreed by both owners
//!   ([`PolicySet`], [`FlowRule`]).
//! - [`mirror`]: Mirror VNets: [`MirrorStrategy`], [`MirrorPlan`] and the
//!   production/mirror [`Swap`].
//! - [`plan`]: one broker's desired data plane ([`DataPlane`]: links, FDB and
//!   neighbor entries, rate caps) and [`reconcile`], the ordered
//!   [`Action`]s from what the host has to it; gateways, routes, the flow
//!   filter and mirror taps ([`plan::routing`]).
//!
//! Each module has one error enum; every message names the refused value
//! and what is wrong with it.
//!
//! # Example
//!
//! ```
//! use std::collections::BTreeMap;
//! use intercloud_vnet::{
//!     ActualState, Attachments, BrokerInput, MemberVnet, Registry, VniAllocator, VniRange,
//!     VnetSpec, desired, ipam, reconcile,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut registry = Registry::new();
//! let mut vnis = VniAllocator::new(VniRange::new(1000, 1999)?, registry.vnis());
//! let spec = VnetSpec::new(
//!     "blue".parse()?,
//!     "acme".parse()?,
//!     "10.20.0.0/24".parse()?,
//!     ["cloud-a".parse()?, "cloud-b".parse()?].into(),
//!     "prod".parse()?,
//!     Some("100mbit".parse()?),
//! )?;
//! let blue = registry.create(spec, &mut vnis)?;
//!
//! let mut attachments = Attachments::new(blue.spec.name().clone(), blue.spec.cidr());
//! let ip = ipam::allocate(&blue.spec.cidr(), &attachments.used_ips(), None)?;
//! attachments.attach("web-1".parse()?, "cloud-a".parse()?, ip, ipam::mac_for(blue.vni, ip))?;
//!
//! let input = BrokerInput {
//!     cloud: "cloud-a".parse()?,
//!     vtep: "192.0.2.1".parse()?,
//!     underlay_mtu: 1500,
//!     arp_proxy: false,
//!     peers: BTreeMap::from([("cloud-b".parse()?, "192.0.2.2".parse()?)]),
//!     vnets: vec![MemberVnet { record: &blue, attachments: &attachments, swapped: false }],
//!     policies: Vec::new(),
//! };
//! let plane = desired(&input)?;
//! let actions = reconcile(&plane, &ActualState::default());
//! // A bridge, a VXLAN device, a veth; a cap; a flooding entry to cloud-b.
//! assert_eq!(actions.len(), 5);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod attach;
pub mod bandwidth;
pub mod ipam;
pub mod mac;
pub mod mirror;
pub mod name;
pub mod plan;
pub mod policy;
pub mod registry;
pub mod spec;
pub mod vni;

pub use attach::{AttachError, Attachments, Binding};
pub use bandwidth::{Bandwidth, BandwidthError, BandwidthUnit};
pub use ipam::IpamError;
pub use mac::{MacAddr, MacError};
pub use mirror::{InstanceClone, MirrorError, MirrorPlan, MirrorStrategy, Swap, SwapStep};
pub use name::{CloudId, Domain, InstanceId, NameError, TenantId, VnetName};
pub use plan::{
    Action, ActualLink, ActualState, Allow, BrokerInput, DataPlane, FdbEntry, Gateway, IfName, L4,
    Link, MemberVnet, NeighborEntry, NetnsName, PlanError, Planned, Tap, desired,
    desired_with_refusals, reconcile, stale_namespaces,
};
pub use policy::{FlowRule, PolicyError, PolicySet, PortRange, Proto, RuleState};
pub use registry::{MirrorOf, Registry, RegistryError, VnetRecord};
pub use spec::{SpecError, VnetSpec};
pub use vni::{Vni, VniAllocator, VniError, VniRange};
