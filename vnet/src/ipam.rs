//! Addresses for attachments inside a VNet's network, and their MACs.
//!
//! In every VNet the network and broadcast addresses are never handed out,
//! and the first host address (`.1` of a /24) is kept for a gateway, so a
//! routed exit can be added later without renumbering anyone.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::mac::MacAddr;
use crate::vni::Vni;

/// Why an address could not be handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpamError {
    /// The wanted address is not in the VNet's network.
    #[error("{ip} is outside {cidr}")]
    OutsideCidr {
        /// The refused address.
        ip: Ipv4Addr,
        /// The VNet's network.
        cidr: Ipv4Net,
    },
    /// The wanted address is the network address.
    #[error("{ip} is the network address of {cidr}")]
    NetworkAddress {
        /// The refused address.
        ip: Ipv4Addr,
        /// The VNet's network.
        cidr: Ipv4Net,
    },
    /// The wanted address is the broadcast address.
    #[error("{ip} is the broadcast address of {cidr}")]
    BroadcastAddress {
        /// The refused address.
        ip: Ipv4Addr,
        /// The VNet's network.
        cidr: Ipv4Net,
    },
    /// The wanted address is kept for the gateway.
    #[error("{ip} is reserved for the gateway of {cidr}")]
    GatewayReserved {
        /// The refused address.
        ip: Ipv4Addr,
        /// The VNet's network.
        cidr: Ipv4Net,
    },
    /// The wanted address is already used.
    #[error("{ip} is already taken in {cidr}")]
    Taken {
        /// The refused address.
        ip: Ipv4Addr,
        /// The VNet's network.
        cidr: Ipv4Net,
    },
    /// Every assignable address is used.
    #[error("no free address is left in {cidr}")]
    Full {
        /// The VNet's network.
        cidr: Ipv4Net,
    },
}

/// The address kept for the VNet's gateway: the first host address.
pub fn gateway(cidr: &Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()).saturating_add(1))
}

/// Whether `ip` may be given to an attachment of `cidr` at all (inside it,
/// and neither the network, broadcast nor gateway address), whoever uses it.
pub fn check_assignable(cidr: &Ipv4Net, ip: Ipv4Addr) -> Result<(), IpamError> {
    let cidr = cidr.trunc();
    if !cidr.contains(&ip) {
        Err(IpamError::OutsideCidr { ip, cidr })
    } else if ip == cidr.network() {
        Err(IpamError::NetworkAddress { ip, cidr })
    } else if ip == cidr.broadcast() {
        Err(IpamError::BroadcastAddress { ip, cidr })
    } else if ip == gateway(&cidr) {
        Err(IpamError::GatewayReserved { ip, cidr })
    } else {
        Ok(())
    }
}

/// An address for a new attachment of `cidr`: `wanted` if it is assignable
/// and not in `used`, otherwise (when nothing is wanted) the lowest free one.
/// Addresses of `used` outside `cidr` are ignored.
pub fn allocate(
    cidr: &Ipv4Net,
    used: &BTreeSet<Ipv4Addr>,
    wanted: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, IpamError> {
    let cidr = cidr.trunc();
    if let Some(ip) = wanted {
        check_assignable(&cidr, ip)?;
        if used.contains(&ip) {
            return Err(IpamError::Taken { ip, cidr });
        }
        return Ok(ip);
    }
    let full = IpamError::Full { cidr };
    // First host after the gateway up to the last before broadcast; a /31 or
    // /32 has none.
    let first = u32::from(cidr.network())
        .checked_add(2)
        .ok_or(full.clone())?;
    let last = u32::from(cidr.broadcast())
        .checked_sub(1)
        .ok_or(full.clone())?;
    if first > last {
        return Err(full);
    }
    // Walk the used addresses in order (not every address of a /8) and take
    // the first gap.
    let mut candidate = first;
    for ip in used.range(Ipv4Addr::from(first)..=Ipv4Addr::from(last)) {
        let ip = u32::from(*ip);
        if ip > candidate {
            break;
        }
        candidate = ip + 1;
    }
    if candidate <= last {
        Ok(Ipv4Addr::from(candidate))
    } else {
        Err(full)
    }
}

/// The MAC of the attachment with address `ip` in the VNet `vni`.
///
/// Deterministic, so an instance keeps its MAC across restarts and
/// migrations (peers' ARP caches and forwarding entries stay right), and
/// locally administered unicast (first octet 0x02), so it clashes with no
/// vendor's. The layout is `02:vv:vv:hh:hh:hh`: `vv` is the VNI folded to 16
/// bits, `hh` the low 24 bits of the address. A VNet's prefix is at least /8,
/// so its addresses differ only in those 24 bits: MACs within one VNet never
/// collide. (Across VNets they may; each VNet is its own Ethernet segment.)
pub fn mac_for(vni: Vni, ip: Ipv4Addr) -> MacAddr {
    let vni = vni.value();
    let folded = ((vni & 0xFFFF) ^ (vni >> 16)).to_be_bytes();
    let [_, h2, h1, h0] = ip.octets();
    MacAddr::new([0x02, folded[2], folded[3], h2, h1, h0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("valid CIDR")
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("valid address")
    }

    fn used(ips: &[&str]) -> BTreeSet<Ipv4Addr> {
        ips.iter().map(|s| ip(s)).collect()
    }

    #[test]
    fn the_first_address_handed_out_is_after_the_gateway() {
        assert_eq!(gateway(&net("10.20.0.0/24")), ip("10.20.0.1"));
        assert_eq!(
            allocate(&net("10.20.0.0/24"), &used(&[]), None),
            Ok(ip("10.20.0.2"))
        );
    }

    #[test]
    fn the_lowest_free_address_fills_gaps() {
        let taken = used(&["10.20.0.2", "10.20.0.3", "10.20.0.5", "192.168.0.4"]);
        assert_eq!(
            allocate(&net("10.20.0.0/24"), &taken, None),
            Ok(ip("10.20.0.4"))
        );
    }

    #[test]
    fn a_full_network_says_which() {
        // A /29 has 8 addresses: network, gateway, 5 hosts, broadcast.
        let cidr = net("10.0.0.8/29");
        let taken = used(&[
            "10.0.0.10",
            "10.0.0.11",
            "10.0.0.12",
            "10.0.0.13",
            "10.0.0.14",
        ]);
        let error = allocate(&cidr, &taken, None).expect_err("full");
        assert_eq!(error.to_string(), "no free address is left in 10.0.0.8/29");
        // The broadcast address is never the way out of a full network.
        let mut almost = taken.clone();
        almost.remove(&ip("10.0.0.14"));
        assert_eq!(allocate(&cidr, &almost, None), Ok(ip("10.0.0.14")));
    }

    #[test]
    fn networks_without_host_addresses_are_full() {
        for cidr in ["10.0.0.0/30", "10.0.0.0/31", "10.0.0.0/32"] {
            let expected = if cidr.ends_with("/30") {
                // network, gateway, one host, broadcast
                Ok(ip("10.0.0.2"))
            } else {
                Err(IpamError::Full { cidr: net(cidr) })
            };
            assert_eq!(allocate(&net(cidr), &used(&[]), None), expected, "{cidr}");
        }
        assert!(allocate(&net("255.255.255.255/32"), &used(&[]), None).is_err());
    }

    #[test]
    fn a_wanted_free_address_is_granted() {
        let cidr = net("10.20.0.0/24");
        assert_eq!(
            allocate(&cidr, &used(&["10.20.0.2"]), Some(ip("10.20.0.77"))),
            Ok(ip("10.20.0.77"))
        );
    }

    #[test]
    fn a_wanted_address_outside_the_network_is_refused() {
        let error =
            allocate(&net("10.20.0.0/24"), &used(&[]), Some(ip("10.21.0.7"))).expect_err("outside");
        assert_eq!(error.to_string(), "10.21.0.7 is outside 10.20.0.0/24");
    }

    #[test]
    fn wanted_reserved_addresses_are_refused_with_the_reason() {
        let cidr = net("10.20.0.0/24");
        let refuse = |s: &str| {
            allocate(&cidr, &used(&[]), Some(ip(s)))
                .expect_err("reserved")
                .to_string()
        };
        assert_eq!(
            refuse("10.20.0.0"),
            "10.20.0.0 is the network address of 10.20.0.0/24"
        );
        assert_eq!(
            refuse("10.20.0.255"),
            "10.20.0.255 is the broadcast address of 10.20.0.0/24"
        );
        assert_eq!(
            refuse("10.20.0.1"),
            "10.20.0.1 is reserved for the gateway of 10.20.0.0/24"
        );
    }

    #[test]
    fn a_wanted_taken_address_is_refused() {
        let error = allocate(
            &net("10.20.0.0/24"),
            &used(&["10.20.0.9"]),
            Some(ip("10.20.0.9")),
        )
        .expect_err("taken");
        assert_eq!(
            error.to_string(),
            "10.20.0.9 is already taken in 10.20.0.0/24"
        );
    }

    #[test]
    fn allocation_in_a_large_network_does_not_walk_every_address() {
        // The first 9998 host addresses of a /8 are taken: the answer is the
        // one right after them, found by walking the used set once.
        let cidr = net("10.0.0.0/8");
        let taken: BTreeSet<Ipv4Addr> = (2..10_000u32)
            .map(|i| Ipv4Addr::from(u32::from(ip("10.0.0.0")) + i))
            .collect();
        assert_eq!(
            allocate(&cidr, &taken, None),
            Ok(Ipv4Addr::from(u32::from(ip("10.0.0.0")) + 10_000))
        );
    }

    #[test]
    fn macs_are_local_unicast_and_deterministic() {
        let vni = Vni::new(42).expect("valid");
        let mac = mac_for(vni, ip("10.20.0.5"));
        assert_eq!(mac.to_string(), "02:00:2a:14:00:05");
        assert!(mac.is_local_unicast());
        assert_eq!(mac_for(vni, ip("10.20.0.5")), mac);
        assert_ne!(mac_for(Vni::new(43).expect("valid"), ip("10.20.0.5")), mac);
    }

    #[test]
    fn macs_fold_the_top_byte_of_large_vnis() {
        let vni = Vni::new(0x12_3456).expect("valid");
        // 0x3456 ^ 0x12 = 0x3444
        assert_eq!(
            mac_for(vni, ip("10.1.2.3")).to_string(),
            "02:34:44:01:02:03"
        );
    }

    #[test]
    fn macs_never_collide_within_one_vnet() {
        let vni = Vni::new(7).expect("valid");
        // Addresses that differ only in the top octet could collide, but no
        // VNet (prefix >= /8) holds two of them; within a /8 all differ.
        let base = u32::from(ip("10.0.0.0"));
        let macs: BTreeSet<MacAddr> = (0..70_000u32)
            .map(|i| mac_for(vni, Ipv4Addr::from(base + i * 239)))
            .collect();
        assert_eq!(macs.len(), 70_000);
    }
}
