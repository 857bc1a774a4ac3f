//! The pieces of a broker's data plane.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::names::{IfName, NetnsName};
use crate::bandwidth::Bandwidth;
use crate::mac::MacAddr;
use crate::name::CloudId;
use crate::policy::PortRange;
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
    /// The gateways of the VNets carrying production traffic, by bridge.
    pub gateways: BTreeMap<IfName, Gateway>,
    /// Every bridge's MAC: its VNet's gateway MAC, the same for both VNets
    /// of a production/mirror pair, so that an instance's (or clone's)
    /// cached gateway stays right across a swap.
    pub bridge_macs: BTreeMap<IfName, MacAddr>,
    /// Neighbor (ARP) entries on the gateways' bridges: every instance of
    /// the VNet, so the gateway never has to resolve an address (a remote
    /// instance answers its own cloud's gateway, which has the same MAC).
    pub gateway_neighbors: BTreeSet<NeighborEntry>,
    /// Each local instance's (and clone's) default route: its VNet's
    /// gateway address.
    pub default_routes: BTreeMap<NetnsName, Ipv4Addr>,
    /// What may be forwarded between (and within) the bridges; everything
    /// else routed from or into a bridge is dropped.
    pub filter: Vec<Allow>,
    /// The mirror taps: copies of what production instances receive.
    pub taps: Vec<Tap>,
    /// Why parts of the routing or mirroring were left out, by VNet.
    pub notes: BTreeMap<Vni, Vec<String>>,
}

/// A VNet's gateway on this broker: the first address of its network on its
/// bridge, with the same MAC at every member cloud (an anycast gateway:
/// each cloud routes what its own instances send). Traffic arriving on the
/// bridge is looked up in the VNet's own routing table, which holds only
/// the networks it may reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gateway {
    /// The VNet's VNI.
    pub vni: Vni,
    /// The gateway address with the VNet's prefix length.
    pub address: Ipv4Net,
    /// The gateway's MAC, the same at every cloud.
    pub mac: MacAddr,
    /// The VNet's routing table.
    pub table: u32,
    /// The networks it may reach, each through its bridge.
    pub routes: BTreeMap<Ipv4Net, IfName>,
}

/// The first routing table of the VNets' tables: a VNet's is this plus its
/// VNI, above every table number Linux reserves (253-255) and any small one
/// an operator picks.
pub const ROUTE_TABLE_BASE: u32 = 0x0100_0000;
/// The priority of the rules sending a bridge's traffic to its table.
pub const RULE_PRIORITY_LOOKUP: u32 = 20_000;
/// The priority of the rules refusing what a bridge's table has no route
/// for (nothing falls through to the host's main table).
pub const RULE_PRIORITY_PROHIBIT: u32 = 20_001;

/// Forwarding from one bridge to another (or within one) that is allowed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Allow {
    /// The bridge the traffic arrives on.
    pub iif: IfName,
    /// The bridge it leaves by.
    pub oif: IfName,
    /// What of it.
    pub l4: L4,
    /// Why, in words: the policy or the domain.
    pub comment: String,
}

/// The transport-layer part of an [`Allow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum L4 {
    /// Everything.
    Any,
    /// TCP, by destination or source ports; `no_new` refuses connection
    /// openings (a SYN without ACK).
    Tcp {
        /// Destination ports.
        dport: Option<PortRange>,
        /// Source ports.
        sport: Option<PortRange>,
        /// Refuse SYN without ACK.
        no_new: bool,
    },
    /// UDP by destination or source ports.
    Udp {
        /// Destination ports.
        dport: Option<PortRange>,
        /// Source ports.
        sport: Option<PortRange>,
    },
    /// ICMP; `replies_only`: echo replies and errors only.
    Icmp {
        /// Only echo replies, unreachables and time-exceeded.
        replies_only: bool,
    },
    /// Every protocol but TCP.
    NotTcp,
}

/// A copy of what leaves `device` (a production instance's veth, towards the
/// instance) to `to` (its clone's veth), or only counted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tap {
    /// The production instance's veth (host side).
    pub device: IfName,
    /// The clone's veth (host side); none: only counted.
    pub to: Option<IfName>,
    /// One packet in `every` is copied (1: all).
    pub every: u32,
    /// The VNIs of the production/mirror pair it serves.
    pub pair: [Vni; 2],
    /// What it is, in words.
    pub comment: String,
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
