//! Plain data: what the caller asks for and what the kernel reports.

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::Error;

/// A 48-bit Ethernet address.
pub type Mac = [u8; 6];

/// The all-zeros MAC: as a VXLAN FDB key it is the default entry, used for
/// broadcast and unknown-unicast traffic; one entry per remote VTEP gives
/// head-end replication.
pub const ZERO_MAC: Mac = [0; 6];

/// The IANA VXLAN UDP port.
pub const VXLAN_PORT: u16 = 4789;

/// The largest VNI (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// The longest interface name the kernel takes (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

/// A MAC written the usual way (`02:00:0a:14:00:0b`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MacDisplay(pub Mac);

impl fmt::Display for MacDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A VXLAN device to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanSpec {
    /// Interface name (at most 15 bytes).
    pub name: String,
    /// The VNI (24 bits).
    pub vni: u32,
    /// Source address of the encapsulated packets: this VTEP's underlay address.
    pub local: Ipv4Addr,
    /// UDP destination port (4789, [`VXLAN_PORT`]).
    pub port: u16,
    /// Whether the device learns remote MACs from received packets. Off for
    /// a broker-driven overlay: the FDB is programmed, never learned.
    pub learning: bool,
    /// The underlay device to send from, when routing alone must not choose.
    pub underlay_dev: Option<String>,
}

impl VxlanSpec {
    /// A spec with port 4789, learning off and no underlay device.
    pub fn new(name: impl Into<String>, vni: u32, local: Ipv4Addr) -> VxlanSpec {
        VxlanSpec {
            name: name.into(),
            vni,
            local,
            port: VXLAN_PORT,
            learning: false,
            underlay_dev: None,
        }
    }
}

/// One interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface name.
    pub name: String,
    /// Interface index (in its namespace).
    pub index: u32,
    /// The kind the link was created as ("vxlan", "bridge", "veth", ...);
    /// `None` for devices without one (loopback, physical NICs).
    pub kind: Option<String>,
    /// Name of the bridge (or other master) the link is enslaved to.
    pub master: Option<String>,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// The VNI, for a VXLAN device.
    pub vni: Option<u32>,
    /// The rest of a VXLAN device's settings.
    pub vxlan: Option<VxlanInfo>,
    /// The link-layer address, when it is an Ethernet one.
    pub mac: Option<Mac>,
    /// The MTU.
    pub mtu: Option<u32>,
    /// IFLA_LINK: for a veth, the index of its peer, in the peer's
    /// namespace (which may be another one).
    pub peer_index: Option<u32>,
}

/// A VXLAN device's settings as the kernel reports them (`None`: the
/// attribute was not in the answer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VxlanInfo {
    /// The local (source) address.
    pub local: Option<Ipv4Addr>,
    /// The UDP destination port.
    pub port: Option<u16>,
    /// Whether it learns remote MACs from received packets.
    pub learning: Option<bool>,
    /// Whether it answers ARP itself from its neighbor entries.
    pub proxy: Option<bool>,
}

/// One entry of a VXLAN device's own forwarding database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FdbEntry {
    /// The inner destination MAC ([`ZERO_MAC`] for the default entry).
    pub mac: Mac,
    /// The remote VTEP the frames are sent to (`None` if the entry has no
    /// IPv4 destination).
    pub dst: Option<Ipv4Addr>,
    /// Installed as permanent (never aged out).
    pub permanent: bool,
}

/// The main routing table (`ip route` without `table`).
pub const MAIN_TABLE: u32 = 254;

/// One IPv4 unicast route of a table, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteInfo {
    /// The destination prefix (`0.0.0.0/0` for the default route).
    pub dst: Ipv4Net,
    /// The output device, by name (`None` for a multipath route, or a
    /// device that went away).
    pub link: Option<String>,
    /// The next hop, for a route via a gateway.
    pub gateway: Option<Ipv4Addr>,
}

/// A policy routing rule matched on the input interface (`ip rule add
/// priority P iif IIF lookup T` or `... prohibit`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleSpec {
    /// The rule's priority (lower is tried first); also what tells rules
    /// apart.
    pub priority: u32,
    /// The input interface the rule matches (by name: the device need not
    /// exist yet).
    pub iif: String,
    /// What a matching packet gets.
    pub action: RuleAction,
}

/// What a [`RuleSpec`] does with a packet it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// Look the destination up in this routing table (falling through to
    /// the next rule when the table has no route for it).
    Lookup(u32),
    /// Refuse: the sender gets an ICMP "administratively prohibited".
    Prohibit,
}

/// The outcome of a removal: removing what is not there is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// It existed and was removed.
    Deleted,
    /// It did not exist; nothing was done.
    WasAbsent,
}

pub(crate) fn check_ifname(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_IFNAME {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("reserved")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        Some("contains '/', ':', whitespace or a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidArgument {
            what: "interface name",
            value: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_nsname(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > 255 {
        Some("longer than 255 bytes")
    } else if name == "." || name == ".." {
        Some("reserved")
    } else if name.chars().any(|c| c == '/' || c == '\0') {
        Some("contains '/' or NUL")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidArgument {
            what: "namespace name",
            value: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_table(table: u32) -> Result<(), Error> {
    if table == 0 {
        return Err(Error::InvalidArgument {
            what: "routing table",
            value: table.to_string(),
            reason: "0 is no table (RT_TABLE_UNSPEC)",
        });
    }
    Ok(())
}

pub(crate) fn check_vni(vni: u32) -> Result<(), Error> {
    if vni > MAX_VNI {
        return Err(Error::InvalidArgument {
            what: "vni",
            value: vni.to_string(),
            reason: "more than 24 bits",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_the_kernel_rules() {
        assert!(check_ifname("icx0000a1").is_ok());
        assert!(check_ifname("abcdefghijklmno").is_ok());
        assert!(check_ifname("abcdefghijklmnop").is_err());
        assert!(check_ifname("").is_err());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("a b").is_err());
        assert!(check_ifname("..").is_err());
        let e = check_ifname("a/b").expect_err("rejected");
        assert!(e.to_string().contains("interface name \"a/b\""), "{e}");
    }

    #[test]
    fn namespace_names_are_single_path_components() {
        assert!(check_nsname("ictest-u1").is_ok());
        assert!(check_nsname("../etc").is_err());
        assert!(check_nsname(".").is_err());
        assert!(check_nsname("").is_err());
    }

    #[test]
    fn vni_is_24_bits() {
        assert!(check_vni(MAX_VNI).is_ok());
        assert!(check_vni(MAX_VNI + 1).is_err());
    }

    #[test]
    fn macs_print_in_colon_form() {
        assert_eq!(
            MacDisplay([0x02, 0, 0x0a, 0x14, 0, 0x0b]).to_string(),
            "02:00:0a:14:00:0b"
        );
        assert_eq!(MacDisplay(ZERO_MAC).to_string(), "00:00:00:00:00:00");
    }

    #[test]
    fn vxlan_spec_defaults_to_the_iana_port_without_learning() {
        let s = VxlanSpec::new("icx1", 161, Ipv4Addr::new(10, 99, 0, 1));
        assert_eq!(s.port, 4789);
        assert!(!s.learning);
        assert_eq!(s.underlay_dev, None);
    }
}
