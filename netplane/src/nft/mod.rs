//! nftables: the VNet firewall (what may be routed between VNet bridges)
//! and traffic taps (copies of what leaves a device), each one table that
//! is replaced whole.
//!
//! - The model ([`Firewall`], [`Taps`]) is plain data the rest of the code
//!   builds; `render` turns it into nftables' JSON schema (the `nftables`
//!   crate's types), and [`Nft`] sends it to `nft -j -f -` as one
//!   transaction, in the current namespace or through `ip netns exec`.
//! - [`Nft::counters`] reads the rules' counters back from `nft -j list
//!   table`, deserialized with the same schema.
//!
//! The firewall is stateless (no conntrack): a reply direction is allowed
//! by a rule of its own, e.g. TCP from the server's port with
//! [`L4Match::Tcp`]'s `no_new`, which refuses connection attempts.

mod render;
mod run;

pub use run::Nft;

/// The firewall's table (family `inet`).
pub const FIREWALL_TABLE: &str = "intercloud";
/// The taps' table (family `netdev`).
pub const TAPS_TABLE: &str = "intercloud_taps";

/// What may be routed between the VNet bridges of one namespace, rendered
/// as `table inet intercloud`.
///
/// Chain `forward` (hook forward, policy accept) sends what comes in on a
/// managed bridge to chain `vnets` and drops what would be routed into one
/// from elsewhere. Chain `vnets` accepts what one of `allow` matches and
/// drops the rest ("default deny"). Traffic that touches no managed bridge
/// is not judged.
///
/// With br_netfilter on (bridge-nf-call-iptables), frames bridged inside
/// one bridge pass the forward hook too, with the bridge as both input and
/// output interface: they need an allow of their own ([`L4Match::Any`]
/// from the bridge to itself) like any other traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firewall {
    /// The interface-name prefix of the bridges whose forwarding is judged
    /// (`"icb"` matches `iifname "icb*"`).
    pub managed_prefix: String,
    /// What is allowed, tried in order.
    pub allow: Vec<ForwardAllow>,
}

/// One allowed flow: `iifname IIF oifname OIF <l4> counter accept`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardAllow {
    /// The input interface (a bridge), exactly.
    pub iif: String,
    /// The output interface (a bridge), exactly.
    pub oif: String,
    /// What the packet must be, past the interfaces.
    pub l4: L4Match,
    /// Shown to operators ("web->db tcp 443"); kept as the rule's comment
    /// and returned with its counter. At most 128 bytes.
    pub comment: String,
}

/// The layer-4 part of a [`ForwardAllow`]. Port ranges are inclusive
/// (`(443, 443)` is one port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L4Match {
    /// Every packet.
    Any,
    /// TCP, optionally by port.
    Tcp {
        /// Destination ports.
        dport: Option<(u16, u16)>,
        /// Source ports.
        sport: Option<(u16, u16)>,
        /// Refuse connection attempts: a SYN without ACK does not match.
        no_new: bool,
    },
    /// UDP, optionally by port.
    Udp {
        /// Destination ports.
        dport: Option<(u16, u16)>,
        /// Source ports.
        sport: Option<(u16, u16)>,
    },
    /// ICMP (IPv4).
    Icmp {
        /// Only echo-reply, destination-unreachable and time-exceeded.
        replies_only: bool,
    },
    /// Every protocol but TCP.
    NotTcp,
}

/// Traffic taps, rendered as `table netdev intercloud_taps`; an empty list
/// removes the table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Taps {
    /// One per tapped device (a device at most once).
    pub taps: Vec<Tap>,
}

/// A tap on what leaves one device: chain `tap_<device>` (hook egress
/// device DEVICE), one rule `counter [numgen random mod N == 0] [dup to
/// TO]`.
///
/// nft resolves `to` to an interface index when the taps are applied: it
/// must exist then (applying fails otherwise), and the taps must be applied
/// again once it is recreated. Older kernels also refuse a chain on a
/// `device` that does not exist; 6.18 takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tap {
    /// The device whose outgoing packets are tapped.
    pub device: String,
    /// Where copies are sent, unchanged; `None` only counts.
    pub to: Option<String>,
    /// 1 copies every packet; N copies one in N, at random.
    pub every: u32,
    /// Kept as the rule's comment (at most 128 bytes).
    pub comment: String,
}

/// The counter of one rule of ours, as the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCounter {
    /// [`FIREWALL_TABLE`] or [`TAPS_TABLE`].
    pub table: String,
    /// The chain the rule is in (`forward`, `vnets`, `tap_<device>`).
    pub chain: String,
    /// The rule's comment (empty without one).
    pub comment: String,
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}
