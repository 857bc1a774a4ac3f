//! The routed side of this broker's VNets, after the links of a round: the
//! nftables filter (flow policies) and taps (Mirror VNets), each bridge's
//! gateway address, MAC and forwarding switch, the per-VNet routing tables
//! and the rules leading into them, the gateways' neighbor entries, and the
//! instances' default routes.
//!
//! Idempotent: what is there is read and only what differs is changed, so a
//! restarted broker converges on the same state without disturbing traffic.
//! The filter is applied first, so a gateway never forwards before the
//! filter that judges it is in place. A step that fails is reported and
//! retried next round; the other steps go on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use intercloud_netplane::{Firewall, ForwardAllow, L4Match, Nft, RuleCounter, Taps};
use intercloud_netplane::{Ipv4Net, MAIN_TABLE, Netplane, RuleAction, RuleSpec};
use intercloud_vnet::plan::dataplane::ROUTE_TABLE_BASE;
use intercloud_vnet::plan::dataplane::{RULE_PRIORITY_LOOKUP, RULE_PRIORITY_PROHIBIT};
use intercloud_vnet::plan::names::{BRIDGE_PREFIX, INSTANCE_SIDE};
use intercloud_vnet::{DataPlane, IfName, L4, Link, NetnsName, PortRange};

/// What was applied last, so unchanged rulesets are not replaced (which
/// would reset their counters).
#[derive(Debug, Default)]
pub struct Routed {
    firewall: Option<Firewall>,
    taps: Option<Taps>,
    /// The last round's failures that concern no single VNet.
    trouble: Option<String>,
}

impl Routed {
    /// Records this round's general trouble; whether it differs from the
    /// last round's (to log and report only changes).
    pub fn trouble_changed(&mut self, trouble: &Option<String>) -> bool {
        let changed = self.trouble != *trouble;
        self.trouble.clone_from(trouble);
        changed
    }

    /// Applies the flow filter of `plane` if it changed. Called before the
    /// round's links are made: a new bridge's own traffic is allowed by
    /// name before the bridge exists, so no frame of a new VNet is ever
    /// judged by a filter that does not know it yet.
    pub async fn apply_filter(
        &mut self,
        namespace: Option<&str>,
        plane: &DataPlane,
    ) -> Result<(), String> {
        let firewall = firewall(plane);
        if self.firewall.as_ref() == Some(&firewall) {
            return Ok(());
        }
        match Nft::new(namespace).apply_firewall(&firewall).await {
            Ok(()) => {
                self.firewall = Some(firewall);
                Ok(())
            }
            Err(e) => {
                self.firewall = None;
                Err(format!("the flow filter could not be applied: {e}"))
            }
        }
    }

    /// Brings the rest of the routed side to `plane`, after the links:
    /// taps, gateways, tables, rules, neighbors, default routes. `np` is the
    /// underlay handle, `namespace` the underlay namespace (`None`: the
    /// broker's own); `links_changed`: links were made or deleted this round
    /// (a tap copies to an interface index resolved when it is applied, so
    /// the taps are applied again).
    pub async fn apply(
        &mut self,
        np: &Netplane,
        namespace: Option<&str>,
        plane: &DataPlane,
        links_changed: bool,
    ) -> Failures {
        let mut failures = Failures::default();
        let nft = Nft::new(namespace);
        // Applied before the links unless that failed; without its filter
        // no gateway may forward.
        if let Err(e) = self.apply_filter(namespace, plane).await {
            failures.general.push(e);
            for bridge in bridges(plane) {
                if let Err(e) = np.set_forwarding(bridge.as_str(), false).await {
                    failures.of(bridge, format!("forwarding off on {bridge}: {e}"));
                }
            }
            return failures;
        }
        let taps = taps(plane);
        // (A change of links matters to taps only when there are taps.)
        let relinked = links_changed && !taps.taps.is_empty();
        if relinked || self.taps.as_ref() != Some(&taps) {
            match nft.apply_taps(&taps).await {
                Ok(()) => self.taps = Some(taps),
                Err(e) => {
                    self.taps = None;
                    failures
                        .general
                        .push(format!("the mirror taps could not be applied: {e}"));
                }
            }
        }
        for bridge in bridges(plane) {
            if let Err(e) = bridge_side(np, plane, bridge).await {
                failures.of(bridge, format!("its gateway on {bridge}: {e}"));
            }
        }
        if let Err(e) = rules(np, plane).await {
            failures.general.push(format!("the routing rules: {e}"));
        }
        for (netns, gateway) in &plane.default_routes {
            if let Err(e) = default_route(netns, *gateway).await {
                failures
                    .general
                    .push(format!("the default route of {netns}: {e}"));
            }
        }
        failures
    }
}

/// What failed in a round of the routed side.
#[derive(Debug, Default)]
pub struct Failures {
    /// By VNI.
    pub by_vni: BTreeMap<u32, Vec<String>>,
    /// Concerning no single VNet.
    pub general: Vec<String>,
}

impl Failures {
    fn of(&mut self, bridge: &IfName, what: String) {
        match bridge.vni() {
            Some(vni) => self.by_vni.entry(vni.value()).or_default().push(what),
            None => self.general.push(what),
        }
    }
}

/// The note prefix of a rule line: not a rule, nothing to count.
const NOTE: &str = "note: ";

/// `rules` (as [`lines`] gives them) with their packet counters: summed by
/// comment, as one policy can make several nftables rules.
pub fn counted(rules: &[String], counters: &[RuleCounter]) -> Vec<String> {
    let mut sums: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for counter in counters {
        let sum = sums.entry(counter.comment.as_str()).or_default();
        sum.0 += counter.packets;
        sum.1 += counter.bytes;
    }
    rules
        .iter()
        .map(|rule| {
            if rule.starts_with(NOTE) {
                return rule.clone();
            }
            match sums.get(rule.as_str()) {
                Some((packets, bytes)) => format!("{rule}: {packets} packets, {bytes} bytes"),
                None => format!("{rule}: not counted yet"),
            }
        })
        .collect()
}

/// Each VNet's gateway and its rules (their comments, then notes) in words,
/// by VNI.
pub fn lines(plane: &DataPlane) -> BTreeMap<u32, (String, Vec<String>)> {
    let mut lines = BTreeMap::new();
    for bridge in bridges(plane) {
        let Some(vni) = bridge.vni() else { continue };
        let gateway = match plane.gateways.get(bridge) {
            Some(g) if g.routes.is_empty() => {
                format!("{} on {bridge}, no routes to other VNets", g.address)
            }
            Some(g) => format!(
                "{} on {bridge}, routes to {}",
                g.address,
                g.routes
                    .iter()
                    .map(|(net, via)| format!("{net} via {via}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "none here: this VNet does not carry production traffic (the other VNet of its mirror pair does)".to_owned(),
        };
        let mut rules = Vec::new();
        let mut seen = BTreeSet::new();
        let comments = plane
            .filter
            .iter()
            .filter(|a| a.iif == *bridge || a.oif == *bridge)
            .map(|a| a.comment.as_str())
            .chain(
                plane
                    .taps
                    .iter()
                    .filter(|t| t.pair.contains(&vni))
                    .map(|t| t.comment.as_str()),
            );
        for comment in comments {
            if seen.insert(comment) {
                rules.push(comment.to_owned());
            }
        }
        if let Some(notes) = plane.notes.get(&vni) {
            rules.extend(notes.iter().map(|n| format!("{NOTE}{n}")));
        }
        lines.insert(vni.value(), (gateway, rules));
    }
    lines
}

/// The plan's bridges.
fn bridges(plane: &DataPlane) -> impl Iterator<Item = &IfName> {
    plane.links.values().filter_map(|link| match link {
        Link::Bridge { name } => Some(name),
        _ => None,
    })
}

/// One bridge: its gateway (address, MAC, forwarding, table, neighbors) or,
/// for a VNet not carrying production traffic, none of them.
async fn bridge_side(
    np: &Netplane,
    plane: &DataPlane,
    bridge: &IfName,
) -> Result<(), intercloud_netplane::Error> {
    let name = bridge.as_str();
    let gateway = plane.gateways.get(bridge);
    let Some(link) = np.link(name).await? else {
        // Its creation failed this round; nothing to configure yet.
        return Ok(());
    };
    let wanted_addresses: Vec<Ipv4Net> = gateway.map(|g| g.address).into_iter().collect();
    if let Some(mac) = plane.bridge_macs.get(bridge).map(|m| m.octets())
        && link.mac != Some(mac)
    {
        np.set_mac(name, mac).await?;
    }
    let present = np.addresses(name).await?;
    for address in present.iter().filter(|a| !wanted_addresses.contains(a)) {
        np.delete_address(name, *address).await?;
    }
    for address in wanted_addresses.iter().filter(|a| !present.contains(a)) {
        np.add_address(name, *address).await?;
    }

    // The VNet's table: the networks it may reach, each by its bridge.
    let vni = bridge.vni().map_or(0, |v| v.value());
    let table = ROUTE_TABLE_BASE + vni;
    let wanted: BTreeMap<Ipv4Net, &str> = gateway
        .map(|g| g.routes.iter().map(|(n, b)| (*n, b.as_str())).collect())
        .unwrap_or_default();
    let routes = np.routes(table).await?;
    for route in &routes {
        if wanted.get(&route.dst).copied() != route.link.as_deref() || route.gateway.is_some() {
            np.route_delete(table, route.dst).await?;
        }
    }
    for (dst, via) in &wanted {
        let there = routes
            .iter()
            .any(|r| r.dst == *dst && r.link.as_deref() == Some(*via) && r.gateway.is_none());
        if !there {
            np.route_replace(table, *dst, via).await?;
        }
    }

    // Every instance of the VNet is a permanent neighbor of its gateway.
    let wanted: BTreeMap<Ipv4Addr, [u8; 6]> = plane
        .gateway_neighbors
        .iter()
        .filter(|n| n.device == *bridge)
        .map(|n| (n.ip, n.mac.octets()))
        .collect();
    let neighbors = np.neighbors(name).await?;
    for (ip, mac) in &neighbors {
        if wanted.get(ip) != Some(mac) {
            np.neigh_delete(name, *ip).await?;
        }
    }
    for (ip, mac) in &wanted {
        if !neighbors.contains(&(*ip, *mac)) {
            np.neigh_replace(name, *ip, *mac).await?;
        }
    }

    // A bridge answers ARP only for its own address: without this, a
    // passive bridge would answer for the gateway address of the bridge
    // beside it (with its own MAC), and its clones would remember that.
    if !np.arp_ignore(name).await? {
        np.set_arp_ignore(name, true).await?;
    }
    let forward = gateway.is_some();
    if np.forwarding(name).await? != forward {
        np.set_forwarding(name, forward).await?;
    }
    Ok(())
}

/// The rules sending each gateway bridge's traffic to its table, and
/// refusing what the table has no route for; stale ones (of bridges gone
/// or no longer gateways) are removed.
async fn rules(np: &Netplane, plane: &DataPlane) -> Result<(), intercloud_netplane::Error> {
    let wanted: Vec<RuleSpec> = plane
        .gateways
        .iter()
        .flat_map(|(bridge, gateway)| {
            [
                RuleSpec {
                    priority: RULE_PRIORITY_LOOKUP,
                    iif: bridge.to_string(),
                    action: RuleAction::Lookup(gateway.table),
                },
                RuleSpec {
                    priority: RULE_PRIORITY_PROHIBIT,
                    iif: bridge.to_string(),
                    action: RuleAction::Prohibit,
                },
            ]
        })
        .collect();
    let present = np
        .rules(RULE_PRIORITY_LOOKUP..=RULE_PRIORITY_PROHIBIT)
        .await?;
    for rule in present.iter().filter(|r| !wanted.contains(r)) {
        if rule.iif.starts_with(BRIDGE_PREFIX) {
            np.rule_delete(rule).await?;
        }
    }
    for rule in wanted.iter().filter(|r| !present.contains(r)) {
        np.rule_add(rule).await?;
    }
    Ok(())
}

/// An instance's (or clone's) default route through its VNet's gateway.
async fn default_route(
    netns: &NetnsName,
    gateway: Ipv4Addr,
) -> Result<(), intercloud_netplane::Error> {
    let inside = Netplane::in_namespace(&netns.to_string()).await?;
    let default = Ipv4Net::default();
    let present = inside.routes(MAIN_TABLE).await?;
    let there = present
        .iter()
        .any(|r| r.dst == default && r.gateway == Some(gateway));
    if !there {
        inside
            .route_replace_via(MAIN_TABLE, default, gateway, INSTANCE_SIDE)
            .await?;
    }
    Ok(())
}

/// The plan's filter in nftables terms.
pub fn firewall(plane: &DataPlane) -> Firewall {
    Firewall {
        managed_prefix: BRIDGE_PREFIX.to_owned(),
        allow: plane
            .filter
            .iter()
            .map(|allow| ForwardAllow {
                iif: allow.iif.to_string(),
                oif: allow.oif.to_string(),
                l4: l4(allow.l4),
                comment: allow.comment.clone(),
            })
            .collect(),
    }
}

fn ports(range: Option<PortRange>) -> Option<(u16, u16)> {
    range.map(|r| (r.first(), r.last()))
}

fn l4(l4: L4) -> L4Match {
    match l4 {
        L4::Any => L4Match::Any,
        L4::Tcp {
            dport,
            sport,
            no_new,
        } => L4Match::Tcp {
            dport: ports(dport),
            sport: ports(sport),
            no_new,
        },
        L4::Udp { dport, sport } => L4Match::Udp {
            dport: ports(dport),
            sport: ports(sport),
        },
        L4::Icmp { replies_only } => L4Match::Icmp { replies_only },
        L4::NotTcp => L4Match::NotTcp,
    }
}

/// The plan's taps in nftables terms.
pub fn taps(plane: &DataPlane) -> Taps {
    Taps {
        taps: plane
            .taps
            .iter()
            .map(|tap| intercloud_netplane::Tap {
                device: tap.device.to_string(),
                to: tap.to.as_ref().map(ToString::to_string),
                every: tap.every,
                comment: tap.comment.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use intercloud_netplane::RuleCounter;
    use intercloud_vnet::{Allow, Gateway, MacAddr, Tap, Vni};

    use super::*;

    fn name(s: &str) -> IfName {
        IfName::new(s).expect("valid")
    }

    fn vni(v: u32) -> Vni {
        Vni::new(v).expect("valid")
    }

    /// blue (VNI 42) routed to green (43) by a policy, and blue's mirror
    /// (50) fed by a tap.
    fn plane() -> DataPlane {
        let mut plane = DataPlane::default();
        for v in [42, 43, 50] {
            let bridge = IfName::bridge(vni(v));
            plane
                .links
                .insert(bridge.clone(), Link::Bridge { name: bridge });
        }
        plane.gateways.insert(
            name("icb00002a"),
            Gateway {
                vni: vni(42),
                address: "10.20.0.1/24".parse().expect("net"),
                mac: MacAddr::ZERO,
                table: ROUTE_TABLE_BASE + 42,
                routes: [("10.30.0.0/24".parse().expect("net"), name("icb00002b"))].into(),
            },
        );
        let port = PortRange::single(443).ok();
        plane.filter = vec![
            Allow {
                iif: name("icb00002a"),
                oif: name("icb00002b"),
                l4: L4::Tcp {
                    dport: port,
                    sport: None,
                    no_new: false,
                },
                comment: "blue -> green: policy web -> db tcp/443".into(),
            },
            Allow {
                iif: name("icb00002b"),
                oif: name("icb00002a"),
                l4: L4::Any,
                comment: "green -> blue: reply of policy web -> db any".into(),
            },
            Allow {
                iif: name("icb00002b"),
                oif: name("icb00002a"),
                l4: L4::NotTcp,
                comment: "green -> blue: reply of policy web -> db any".into(),
            },
        ];
        plane.taps = vec![Tap {
            device: IfName::veth(vni(42), 0),
            to: None,
            every: 1,
            pair: [vni(42), vni(50)],
            comment: "mirror stats of web-1 from blue to blue-m".into(),
        }];
        plane
    }

    #[test]
    fn the_filter_keeps_every_rule_and_its_ports() {
        let firewall = firewall(&plane());
        assert_eq!(firewall.managed_prefix, "icb");
        assert_eq!(firewall.allow.len(), 3);
        assert_eq!(
            firewall.allow[0].l4,
            L4Match::Tcp {
                dport: Some((443, 443)),
                sport: None,
                no_new: false
            }
        );
        assert_eq!(firewall.allow[2].l4, L4Match::NotTcp);
        let taps = taps(&plane());
        assert_eq!(taps.taps[0].device, "icv00002a0000");
        assert_eq!(taps.taps[0].to, None);
    }

    #[test]
    fn each_vnet_reads_its_gateway_and_its_rules_with_summed_counters() {
        let counter = |comment: &str, packets| RuleCounter {
            table: "intercloud".into(),
            chain: "vnets".into(),
            comment: comment.into(),
            packets,
            bytes: packets * 100,
        };
        let counters = [
            counter("blue -> green: policy web -> db tcp/443", 3),
            counter("green -> blue: reply of policy web -> db any", 2),
            counter("green -> blue: reply of policy web -> db any", 5),
        ];
        let lines = lines(&plane());
        let (gateway, rules) = &lines[&42];
        assert_eq!(
            gateway,
            "10.20.0.1/24 on icb00002a, routes to 10.30.0.0/24 via icb00002b"
        );
        assert_eq!(
            counted(rules, &counters),
            [
                "blue -> green: policy web -> db tcp/443: 3 packets, 300 bytes",
                "green -> blue: reply of policy web -> db any: 7 packets, 700 bytes",
                "mirror stats of web-1 from blue to blue-m: not counted yet",
            ]
        );
        // The mirror has no gateway, and its tap is listed with it too.
        let (gateway, rules) = &lines[&50];
        assert!(gateway.starts_with("none here"), "{gateway}");
        assert_eq!(rules, &["mirror stats of web-1 from blue to blue-m"]);
    }
}
