//! The pieces of a broker's data plane.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::names::{IfName, NetnsName};
use crate::bandwidth::Bandwidth;
use crate::mac::MacAddr;
use crate::name::CloudId;
use crate::vni::Vni;

/// The IANA port of VXLAN.
pub const VXLAN_PORT: u16 = 4789;

/// Bytes VXLAN adds to every frame over IPv4: outer IPv4 (20), UDP (8),
/// VXLAN (8) and inner Ethernet (14) headers. The overlay's MTU is the
/// underlay's less this, or large packets would be dropped.
pub const VXLAN_OVERHEAD: u16 = 50;

/// A network interface the broker should have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// A VNet's bridge, joining its VXLAN device and local attachments.
    Bridge {
        /// `icb<vni>`.
        name: IfName,
    },
    /// A VNet's VXLAN device. Learning is off: the forwarding entries come
    /// from the plan (head-end replication), so a spoofed or stray frame
    /// cannot redirect a MAC to another VTEP.
    Vxlan {
        /// `icx<vni>`.
        name: IfName,
        /// The VNet's VNI.
        vni: Vni,
        /// The broker's own VTEP address, the tunnel's source.
        local: Ipv4Addr,
        /// The UDP port, [`VXLAN_PORT`].
        port: u16,
        /// Whether the device learns MACs from traffic: always false.
        learning: bool,
        /// Whether the device answers ARP from the neighbor entries.
        arp_proxy: bool,
        /// The overlay MTU.
        mtu: u16,
        /// The bridge it is a port of.
        bridge: IfName,
    },
    /// The host side of a local attachment's veth pair; the other side is
    /// `peer` inside the instance's namespace.
    Veth {
        /// `icv<vni><index>`.
        name: IfName,
        /// The bridge it is a port of.
        bridge: IfName,
        /// The instance's network namespace.
        netns: NetnsName,
        /// The instance-side name, `eth0`.
        peer: IfName,
        /// The instance's address with the VNet's prefix length.
        address: Ipv4Net,
        /// The instance's MAC, set on `peer`.
        mac: MacAddr,
        /// The overlay MTU, set on both sides.
        mtu: u16,
    },
}

impl Link {
    /// The interface's name.
    pub fn name(&self) -> &IfName {
        match self {
            Self::Bridge { name } | Self::Vxlan { name, .. } | Self::Veth { name, .. } => name,
        }
    }

    /// The bridge the link is a port of, if any.
    pub fn bridge(&self) -> Option<&IfName> {
        match self {
            Self::Bridge { .. } => None,
            Self::Vxlan { bridge, .. } | Self::Veth { bridge, .. } => Some(bridge),
        }
    }

    /// Bridges first, then VXLAN devices, then veths: the order in which
    /// they can be created (a port needs its bridge). Deletion goes the
    /// other way.
    pub(crate) fn creation_rank(&self) -> u8 {
        match self {
            Self::Bridge { .. } => 0,
            Self::Vxlan { .. } => 1,
            Self::Veth { .. } => 2,
        }
    }
}

/// A forwarding entry of a VXLAN device: frames for `mac` go to the VTEP
/// `dst`. With [`MacAddr::ZERO`] it is a flooding entry: broadcast and
/// unknown frames are copied to `dst` (head-end replication, one entry per
/// remote VTEP).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FdbEntry {
    /// The VXLAN device.
    pub device: IfName,
    /// The destination MAC, or all zeros for flooding.
    pub mac: MacAddr,
    /// The remote VTEP.
    pub dst: Ipv4Addr,
}

/// A neighbor (ARP) entry of a VXLAN device with ARP proxy on: the device
/// answers who-has `ip` with `mac` itself instead of flooding the request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NeighborEntry {
    /// The VXLAN device.
    pub device: IfName,
    /// The remote instance's address.
    pub ip: Ipv4Addr,
    /// The remote instance's MAC.
    pub mac: MacAddr,
}

/// A cloud of a VNet whose VTEP the broker does not know: nothing is sent
/// there until it is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnreachablePeer {
    /// The VNet's VNI.
    pub vni: Vni,
    /// The cloud without a known VTEP.
    pub cloud: CloudId,
}

/// Everything one broker's data plane should consist of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPlane {
    /// The interfaces, by name.
    pub links: BTreeMap<IfName, Link>,
    /// The forwarding entries of the VXLAN devices.
    pub fdb: BTreeSet<FdbEntry>,
    /// The neighbor entries of the VXLAN devices (only with ARP proxy).
    pub neighbors: BTreeSet<NeighborEntry>,
    /// Egress rate caps, by VXLAN device: a VNet's cap limits what this
    /// broker sends into the overlay for it.
    pub rates: BTreeMap<IfName, Bandwidth>,
    /// Peers left out for want of a VTEP address; not part of the data
    /// plane itself, reported so the driver can log them.
    pub unreachable: BTreeSet<UnreachablePeer>,
}

impl DataPlane {
    /// The remote VTEPs the VNet `vni` floods broadcast and unknown frames to.
    pub fn flood_targets(&self, vni: Vni) -> BTreeSet<Ipv4Addr> {
        let vxlan = IfName::vxlan(vni);
        self.fdb
            .iter()
            .filter(|e| e.device == vxlan && e.mac == MacAddr::ZERO)
            .map(|e| e.dst)
            .collect()
    }
}
