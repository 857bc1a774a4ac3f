//! Routing between one broker's VNets, the filter that enforces the
//! inter-domain flow policies, and the taps that feed Mirror VNets.
//!
//! Each VNet carrying production traffic gets a gateway on its bridge (the
//! same address and MAC at every member cloud) and a routing table of its
//! own holding only the networks it may reach: those of its own security
//! domain, and those an agreed flow rule connects it with, in either
//! direction (replies need the way back). A network overlapping the VNet's
//! own or one already in its table is left out with a note: two tenants may
//! use the same network, and such VNets can never route to each other.
//!
//! Inter-VNet traffic is routed by the sender's cloud, and the reply by the
//! other end's: neither sees both directions, so the filter cannot rely on
//! connection tracking. Rules are directional: `web -> db tcp/443` lets
//! `web` open connections to port 443 in `db`; the way back allows what
//! comes from port 443 except connection openings (a SYN without ACK).
//!
//! A production/mirror pair both present here gets a tap per local instance:
//! what leaves towards the production instance is copied (whole, or one
//! packet in N) to its clone, or only counted. The VNet not carrying
//! production traffic has no gateway and no allowed way out of its bridge,
//! so what the clones answer never leaves the mirror.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;

use super::dataplane::{Allow, DataPlane, Gateway, L4, NeighborEntry, ROUTE_TABLE_BASE, Tap};
use super::desired_state::{BrokerInput, MemberVnet};
use super::names::IfName;
use crate::ipam;
use crate::mirror::MirrorStrategy;
use crate::policy::{FlowRule, Proto};

/// Adds the gateways, routes, filter and taps of `vnets` (those admitted to
/// the plan) to `plane`.
pub(super) fn add_routing(
    input: &BrokerInput<'_>,
    vnets: &[MemberVnet<'_>],
    plane: &mut DataPlane,
) {
    let active: Vec<&MemberVnet<'_>> = vnets.iter().filter(|v| v.is_active()).collect();
    for vnet in vnets {
        let cidr = vnet.record.spec.cidr().trunc();
        plane.bridge_macs.insert(
            IfName::bridge(vnet.record.vni),
            ipam::mac_for(pair_vni(vnet, vnets), ipam::gateway(&cidr)),
        );
    }
    for vnet in &active {
        add_gateway(vnet, vnets, plane);
    }
    for vnet in vnets {
        let gateway = ipam::gateway(&vnet.record.spec.cidr().trunc());
        for binding in vnet.attachments.bindings() {
            if binding.cloud == input.cloud {
                plane
                    .default_routes
                    .insert(vnet.namespace(&input.cloud, &binding.instance), gateway);
            }
        }
        let bridge = IfName::bridge(vnet.record.vni);
        plane.filter.push(Allow {
            iif: bridge.clone(),
            oif: bridge,
            l4: L4::Any,
            comment: format!("within vnet {}", vnet.record.spec.name()),
        });
    }
    for from in &active {
        for to in active.iter().filter(|to| to.record.vni != from.record.vni) {
            let allows = allows_between(from, to, &input.policies);
            if !allows.is_empty() && add_route(from, to, plane) {
                plane.filter.extend(allows);
            }
        }
    }
    add_taps(input, vnets, plane);
}

/// The VNI a VNet's gateway MAC derives from: its production's, for a
/// Mirror VNet whose production is planned here too (the pair has one
/// gateway MAC); its own otherwise.
fn pair_vni(vnet: &MemberVnet<'_>, vnets: &[MemberVnet<'_>]) -> crate::vni::Vni {
    production_of(vnet, vnets).map_or(vnet.record.vni, |production| production.record.vni)
}

/// The production of `mirror` among `vnets`, if it is a Mirror VNet and its
/// production is planned here.
fn production_of<'v, 'a>(
    mirror: &MemberVnet<'_>,
    vnets: &'v [MemberVnet<'a>],
) -> Option<&'v MemberVnet<'a>> {
    let of = mirror.record.mirror_of.as_ref()?;
    vnets.iter().find(|v| {
        v.record.spec.tenant() == mirror.record.spec.tenant()
            && *v.record.spec.name() == of.production
    })
}

/// The gateway of `vnet` and its neighbor entries.
fn add_gateway(vnet: &MemberVnet<'_>, vnets: &[MemberVnet<'_>], plane: &mut DataPlane) {
    let (vni, cidr) = (vnet.record.vni, vnet.record.spec.cidr().trunc());
    let bridge = IfName::bridge(vni);
    let address = ipam::gateway(&cidr);
    plane.gateways.insert(
        bridge.clone(),
        Gateway {
            vni,
            // The prefix length comes from a valid network: this cannot fail.
            address: Ipv4Net::new(address, cidr.prefix_len()).unwrap_or(cidr),
            mac: ipam::mac_for(pair_vni(vnet, vnets), address),
            table: ROUTE_TABLE_BASE + vni.value(),
            routes: BTreeMap::new(),
        },
    );
    plane
        .gateway_neighbors
        .extend(vnet.attachments.bindings().map(|b| NeighborEntry {
            device: bridge.clone(),
            ip: b.ip,
            mac: b.mac,
        }));
}

/// Routes `to`'s network in `from`'s table, unless it overlaps `from`'s own
/// or one already there (then a note says why). Returns whether it did.
fn add_route(from: &MemberVnet<'_>, to: &MemberVnet<'_>, plane: &mut DataPlane) -> bool {
    let (own, target) = (
        from.record.spec.cidr().trunc(),
        to.record.spec.cidr().trunc(),
    );
    let Some(gateway) = plane.gateways.get_mut(&IfName::bridge(from.record.vni)) else {
        return false;
    };
    let clash = if overlaps(&own, &target) {
        Some(format!("its own network {own}"))
    } else {
        gateway
            .routes
            .iter()
            .find(|(routed, _)| overlaps(routed, &target))
            .map(|(routed, bridge)| format!("{routed}, already routed to {bridge}"))
    };
    match clash {
        None => {
            gateway.routes.insert(target, IfName::bridge(to.record.vni));
            true
        }
        Some(clash) => {
            plane
                .notes
                .entry(from.record.vni)
                .or_default()
                .push(format!(
                    "no route to vnet {}/{} ({target}): it overlaps {clash}",
                    to.record.spec.tenant(),
                    to.record.spec.name()
                ));
            false
        }
    }
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// What may pass from `from`'s bridge to `to`'s: everything within one
/// domain (of one tenant), else what the agreed rules allow each way.
fn allows_between(from: &MemberVnet<'_>, to: &MemberVnet<'_>, policies: &[FlowRule]) -> Vec<Allow> {
    let (iif, oif) = (
        IfName::bridge(from.record.vni),
        IfName::bridge(to.record.vni),
    );
    let (a, b) = (&from.record.spec, &to.record.spec);
    let allow = |l4: L4, why: String| Allow {
        iif: iif.clone(),
        oif: oif.clone(),
        l4,
        comment: format!("{} -> {}: {why}", a.name(), b.name()),
    };
    if a.domain() == b.domain() {
        if a.tenant() != b.tenant() {
            return Vec::new();
        }
        return vec![allow(L4::Any, format!("domain {}", a.domain()))];
    }
    let mut allows = Vec::new();
    for rule in policies {
        if rule.from_domain() == a.domain() && rule.to_domain() == b.domain() {
            allows.push(allow(forward(rule), format!("policy {rule}")));
        }
        if rule.from_domain() == b.domain() && rule.to_domain() == a.domain() {
            allows.extend(
                reply(rule)
                    .into_iter()
                    .map(|l4| allow(l4, format!("reply of policy {rule}"))),
            );
        }
    }
    allows
}

/// What a rule lets its `from` side send.
fn forward(rule: &FlowRule) -> L4 {
    match rule.proto() {
        Proto::Tcp => L4::Tcp {
            dport: rule.port(),
            sport: None,
            no_new: false,
        },
        Proto::Udp => L4::Udp {
            dport: rule.port(),
            sport: None,
        },
        Proto::Icmp => L4::Icmp {
            replies_only: false,
        },
        Proto::Any => L4::Any,
    }
}

/// What a rule lets its `to` side send back: replies, never openings.
fn reply(rule: &FlowRule) -> Vec<L4> {
    match rule.proto() {
        Proto::Tcp => vec![L4::Tcp {
            dport: None,
            sport: rule.port(),
            no_new: true,
        }],
        Proto::Udp => vec![L4::Udp {
            dport: None,
            sport: rule.port(),
        }],
        Proto::Icmp => vec![L4::Icmp { replies_only: true }],
        Proto::Any => vec![
            L4::Tcp {
                dport: None,
                sport: None,
                no_new: true,
            },
            L4::NotTcp,
        ],
    }
}

/// A tap per local instance of each production/mirror pair present here,
/// from the VNet carrying production traffic to the other.
fn add_taps(input: &BrokerInput<'_>, vnets: &[MemberVnet<'_>], plane: &mut DataPlane) {
    for mirror in vnets {
        let Some(of) = &mirror.record.mirror_of else {
            continue;
        };
        let Some(production) = production_of(mirror, vnets) else {
            plane
                .notes
                .entry(mirror.record.vni)
                .or_default()
                .push(format!(
                    "its production vnet {} is not planned here: nothing is mirrored",
                    of.production
                ));
            continue;
        };
        let (active, passive) = if mirror.swapped {
            (mirror, production)
        } else {
            (production, mirror)
        };
        let (to_clone, every) = match of.strategy {
            MirrorStrategy::Full => (true, 1),
            MirrorStrategy::Sample { every } => (true, every),
            MirrorStrategy::Stats => (false, 1),
            MirrorStrategy::Headers => {
                plane.notes.entry(mirror.record.vni).or_default().push(
                    "strategy headers needs packets cut after their headers, which this \
                         data plane (nftables dup) cannot do: packets are counted, not copied"
                        .to_owned(),
                );
                (false, 1)
            }
        };
        for binding in active
            .attachments
            .bindings()
            .filter(|b| b.cloud == input.cloud)
        {
            let clone = passive
                .attachments
                .binding(&binding.instance)
                .filter(|c| c.cloud == input.cloud);
            let to = match (to_clone, clone) {
                (true, Some(clone)) => Some(IfName::veth(passive.record.vni, clone.index)),
                (true, None) => {
                    plane
                        .notes
                        .entry(mirror.record.vni)
                        .or_default()
                        .push(format!(
                            "instance {} has no counterpart in vnet {}: only counted",
                            binding.instance,
                            passive.record.spec.name()
                        ));
                    None
                }
                (false, _) => None,
            };
            plane.taps.push(Tap {
                device: IfName::veth(active.record.vni, binding.index),
                to,
                every,
                pair: [production.record.vni, mirror.record.vni],
                comment: format!(
                    "mirror {} of {} from {} to {}",
                    of.strategy,
                    binding.instance,
                    active.record.spec.name(),
                    passive.record.spec.name()
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::attach::Attachments;
    use crate::mirror::mirror_record;
    use crate::name::{Domain, TenantId, VnetName};
    use crate::plan::dataplane::{RULE_PRIORITY_LOOKUP, RULE_PRIORITY_PROHIBIT};
    use crate::plan::desired_state::desired;
    use crate::plan::fixtures::{Federation, attachments, cloud, instance, ip, vni};
    use crate::plan::names::NetnsName;
    use crate::policy::PortRange;
    use crate::registry::VnetRecord;
    use crate::spec::VnetSpec;

    fn name(s: &str) -> IfName {
        IfName::new(s).expect("valid name")
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("valid network")
    }

    /// A VNet of `tenant` in `domain`, on cloud-a and cloud-b.
    fn vnet_in(tenant: &str, domain: &str, vnet: &str, vni_value: u32, cidr: &str) -> VnetRecord {
        VnetRecord {
            spec: VnetSpec::new(
                VnetName::new(vnet).expect("valid"),
                TenantId::new(tenant).expect("valid"),
                net(cidr),
                [cloud("cloud-a"), cloud("cloud-b")].into(),
                Domain::new(domain).expect("valid"),
                None,
            )
            .expect("valid spec"),
            vni: vni(vni_value),
            mirror_of: None,
        }
    }

    /// Unswapped members made of (record, attachments).
    fn members<'a>(vnets: &[(&'a VnetRecord, &'a Attachments)]) -> Vec<MemberVnet<'a>> {
        vnets
            .iter()
            .map(|(record, attachments)| MemberVnet {
                record,
                attachments,
                swapped: false,
            })
            .collect()
    }

    fn rule(from: &str, to: &str, proto: Proto, port: Option<u16>) -> FlowRule {
        FlowRule::new(
            Domain::new(from).expect("valid"),
            Domain::new(to).expect("valid"),
            proto,
            port.map(|p| PortRange::single(p).expect("valid port")),
        )
        .expect("valid rule")
    }

    fn allows<'p>(plane: &'p DataPlane, iif: &str, oif: &str) -> Vec<&'p Allow> {
        plane
            .filter
            .iter()
            .filter(|a| a.iif.as_str() == iif && a.oif.as_str() == oif)
            .collect()
    }

    #[test]
    fn each_production_vnet_gets_an_anycast_gateway_and_a_table_of_its_own() {
        let plane = desired(&Federation::new().input()).expect("plans");
        let blue = &plane.gateways[&name("icb00002a")];
        assert_eq!(blue.address, net("10.20.0.1/24"));
        assert_eq!(blue.mac, ipam::mac_for(vni(42), ip("10.20.0.1")));
        assert_eq!(blue.table, ROUTE_TABLE_BASE + 42);
        assert!(blue.table > 255 && RULE_PRIORITY_LOOKUP < RULE_PRIORITY_PROHIBIT);
        // Every instance of blue, here or elsewhere, is a neighbor of its gateway.
        let neighbors: Vec<Ipv4Addr> = plane
            .gateway_neighbors
            .iter()
            .filter(|n| n.device.as_str() == "icb00002a")
            .map(|n| n.ip)
            .collect();
        assert_eq!(
            neighbors,
            [ip("10.20.0.2"), ip("10.20.0.3"), ip("10.20.0.4")]
        );
        assert_eq!(
            plane.default_routes[&NetnsName::of(&cloud("cloud-a"), &instance("web-1"))],
            ip("10.20.0.1")
        );
        assert_eq!(
            plane.default_routes[&NetnsName::of(&cloud("cloud-a"), &instance("api-1"))],
            ip("10.30.0.1")
        );
    }

    #[test]
    fn vnets_of_one_domain_reach_each_other_and_every_bridge_its_own_members() {
        // blue and green are both acme's, in domain prod.
        let plane = desired(&Federation::new().input()).expect("plans");
        assert_eq!(
            plane.gateways[&name("icb00002a")].routes,
            BTreeMap::from([(net("10.30.0.0/24"), name("icb00002b"))])
        );
        assert_eq!(
            plane.gateways[&name("icb00002b")].routes,
            BTreeMap::from([(net("10.20.0.0/24"), name("icb00002a"))])
        );
        for (iif, oif) in [
            ("icb00002a", "icb00002b"),
            ("icb00002b", "icb00002a"),
            ("icb00002a", "icb00002a"),
            ("icb00002b", "icb00002b"),
        ] {
            let found = allows(&plane, iif, oif);
            assert_eq!(found.len(), 1, "{iif} -> {oif}");
            assert_eq!(found[0].l4, L4::Any);
        }
    }

    #[test]
    fn domains_reach_each_other_only_as_an_agreed_rule_says() {
        let web = vnet_in("cloud-a", "web", "front", 60, "10.60.0.0/24");
        let db = vnet_in("cloud-b", "db", "back", 61, "10.61.0.0/24");
        let (web_attachments, db_attachments) = (attachments(&web, &[]), attachments(&db, &[]));
        let federation = Federation::new();
        let mut input = federation.input();
        input.vnets = members(&[(&web, &web_attachments), (&db, &db_attachments)]);
        let plane = desired(&input).expect("plans");
        assert!(plane.gateways.values().all(|g| g.routes.is_empty()));
        assert!(allows(&plane, "icb00003c", "icb00003d").is_empty());
        assert!(allows(&plane, "icb00003d", "icb00003c").is_empty());

        input.policies = vec![rule("web", "db", Proto::Tcp, Some(443))];
        let plane = desired(&input).expect("plans");
        let there = allows(&plane, "icb00003c", "icb00003d");
        let back = allows(&plane, "icb00003d", "icb00003c");
        let port = PortRange::single(443).ok();
        assert_eq!(
            there.iter().map(|a| a.l4).collect::<Vec<_>>(),
            [L4::Tcp {
                dport: port,
                sport: None,
                no_new: false
            }]
        );
        assert_eq!(
            back.iter().map(|a| a.l4).collect::<Vec<_>>(),
            [L4::Tcp {
                dport: None,
                sport: port,
                no_new: true
            }]
        );
        assert_eq!(there[0].comment, "front -> back: policy web -> db tcp/443");
        assert_eq!(
            back[0].comment,
            "back -> front: reply of policy web -> db tcp/443"
        );
        // Replies need the way back: both tables route.
        assert_eq!(
            plane.gateways[&name("icb00003c")].routes,
            BTreeMap::from([(net("10.61.0.0/24"), name("icb00003d"))])
        );
        assert_eq!(
            plane.gateways[&name("icb00003d")].routes,
            BTreeMap::from([(net("10.60.0.0/24"), name("icb00003c"))])
        );

        // Any protocol: replies are anything but a TCP opening.
        input.policies = vec![rule("web", "db", Proto::Any, None)];
        let plane = desired(&input).expect("plans");
        assert_eq!(
            allows(&plane, "icb00003d", "icb00003c")
                .iter()
                .map(|a| a.l4)
                .collect::<Vec<_>>(),
            [
                L4::Tcp {
                    dport: None,
                    sport: None,
                    no_new: true
                },
                L4::NotTcp
            ]
        );
    }

    #[test]
    fn one_domain_name_of_two_tenants_is_not_one_domain() {
        let ours = vnet_in("cloud-a", "prod", "one", 60, "10.60.0.0/24");
        let theirs = vnet_in("cloud-b", "prod", "two", 61, "10.61.0.0/24");
        let (a, b) = (attachments(&ours, &[]), attachments(&theirs, &[]));
        let federation = Federation::new();
        let mut input = federation.input();
        input.vnets = members(&[(&ours, &a), (&theirs, &b)]);
        let plane = desired(&input).expect("plans");
        assert!(allows(&plane, "icb00003c", "icb00003d").is_empty());
        assert!(plane.gateways.values().all(|g| g.routes.is_empty()));
    }

    #[test]
    fn overlapping_networks_are_never_routed_and_the_note_says_why() {
        let ours = vnet_in("cloud-a", "web", "front", 60, "10.60.0.0/24");
        let theirs = vnet_in("cloud-b", "db", "back", 61, "10.60.0.0/25");
        let (a, b) = (attachments(&ours, &[]), attachments(&theirs, &[]));
        let federation = Federation::new();
        let mut input = federation.input();
        input.vnets = members(&[(&ours, &a), (&theirs, &b)]);
        input.policies = vec![rule("web", "db", Proto::Tcp, Some(443))];
        let plane = desired(&input).expect("plans");
        assert!(plane.gateways.values().all(|g| g.routes.is_empty()));
        assert!(allows(&plane, "icb00003c", "icb00003d").is_empty());
        assert_eq!(
            plane.notes[&vni(60)],
            [
                "no route to vnet cloud-b/back (10.60.0.0/25): it overlaps its own network 10.60.0.0/24"
            ]
        );
    }

    /// blue (VNI 42) with its mirror blue-m (VNI 50, strategy `strategy`),
    /// whose clones are blue's instances.
    fn mirrored(strategy: MirrorStrategy) -> (Federation, VnetRecord, Attachments) {
        let federation = Federation::new();
        let mirror = mirror_record(
            &federation.blue,
            VnetName::new("blue-m").expect("valid"),
            strategy,
            vni(50),
        )
        .expect("mirror");
        let mut clones = Attachments::new(mirror.spec.name().clone(), mirror.spec.cidr());
        for b in federation.blue_attachments.bindings() {
            clones
                .attach(b.instance.clone(), b.cloud.clone(), b.ip, b.mac)
                .expect("clone");
        }
        (federation, mirror, clones)
    }

    fn with_mirror<'a>(
        federation: &'a Federation,
        mirror: &'a VnetRecord,
        clones: &'a Attachments,
        swapped: bool,
    ) -> DataPlane {
        let mut input = federation.input();
        input.vnets[0].swapped = swapped;
        input.vnets.push(MemberVnet {
            record: mirror,
            attachments: clones,
            swapped,
        });
        desired(&input).expect("plans")
    }

    #[test]
    fn a_mirror_gets_copies_of_what_production_instances_receive_and_no_way_out() {
        let (federation, mirror, clones) = mirrored(MirrorStrategy::Full);
        let plane = with_mirror(&federation, &mirror, &clones, false);
        // The clone lives in a namespace of its own, with the same address.
        let clone_ns = NetnsName::clone_of(&cloud("cloud-a"), &instance("web-1"));
        assert_eq!(plane.default_routes[&clone_ns], ip("10.20.0.1"));
        assert!(plane.namespaces().contains(&clone_ns));
        // Only production has a gateway; the mirror's bridge forwards only
        // within itself.
        assert!(plane.gateways.contains_key(&name("icb00002a")));
        assert!(!plane.gateways.contains_key(&name("icb000032")));
        let out_of_mirror: Vec<&Allow> = plane
            .filter
            .iter()
            .filter(|a| a.iif.as_str() == "icb000032" || a.oif.as_str() == "icb000032")
            .collect();
        assert_eq!(out_of_mirror.len(), 1);
        assert_eq!(out_of_mirror[0].iif, out_of_mirror[0].oif);
        // web-1 is blue's only local instance: one tap, to its clone.
        let web = federation
            .blue_attachments
            .binding(&instance("web-1"))
            .expect("attached");
        let clone = clones.binding(&instance("web-1")).expect("cloned");
        assert_eq!(
            plane.taps,
            [Tap {
                device: IfName::veth(vni(42), web.index),
                to: Some(IfName::veth(vni(50), clone.index)),
                every: 1,
                pair: [vni(42), vni(50)],
                comment: "mirror full of web-1 from blue to blue-m".to_owned(),
            }]
        );
    }

    #[test]
    fn a_swap_moves_the_gateway_and_turns_the_taps_round() {
        let (federation, mirror, clones) = mirrored(MirrorStrategy::Sample { every: 10 });
        let plane = with_mirror(&federation, &mirror, &clones, true);
        assert!(!plane.gateways.contains_key(&name("icb00002a")));
        let gateway = &plane.gateways[&name("icb000032")];
        assert_eq!(gateway.address, net("10.20.0.1/24"));
        // One gateway MAC for the pair: cached entries stay right.
        let mac = ipam::mac_for(vni(42), ip("10.20.0.1"));
        assert_eq!(gateway.mac, mac);
        assert_eq!(plane.bridge_macs[&name("icb000032")], mac);
        assert_eq!(plane.bridge_macs[&name("icb00002a")], mac);
        // The mirror now routes where production did (green, same domain).
        assert_eq!(
            gateway.routes,
            BTreeMap::from([(net("10.30.0.0/24"), name("icb00002b"))])
        );
        assert_eq!(plane.taps.len(), 1);
        assert_eq!(plane.taps[0].device.vni(), Some(vni(50)));
        assert_eq!(
            plane.taps[0].to.as_ref().and_then(IfName::vni),
            Some(vni(42))
        );
        assert_eq!(plane.taps[0].every, 10);
        assert_eq!(
            plane.taps[0].comment,
            "mirror sample:1/10 of web-1 from blue-m to blue"
        );
    }

    #[test]
    fn stats_count_and_headers_say_they_cannot_cut() {
        let (federation, mirror, clones) = mirrored(MirrorStrategy::Stats);
        let plane = with_mirror(&federation, &mirror, &clones, false);
        assert_eq!(plane.taps.len(), 1);
        assert_eq!(plane.taps[0].to, None);
        assert!(!plane.notes.contains_key(&vni(50)));

        let (federation, mirror, clones) = mirrored(MirrorStrategy::Headers);
        let plane = with_mirror(&federation, &mirror, &clones, false);
        assert_eq!(plane.taps[0].to, None);
        assert!(plane.notes[&vni(50)][0].contains("strategy headers"));
    }

    #[test]
    fn a_mirror_without_its_production_here_is_noted_not_tapped() {
        let (federation, mirror, clones) = mirrored(MirrorStrategy::Full);
        let mut input = federation.input();
        input.vnets.remove(0);
        input.vnets.push(MemberVnet {
            record: &mirror,
            attachments: &clones,
            swapped: false,
        });
        let plane = desired(&input).expect("plans");
        assert!(plane.taps.is_empty());
        assert!(plane.notes[&vni(50)][0].contains("production vnet blue"));
    }
}
