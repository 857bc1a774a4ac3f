//! From what a broker is a member of to the data plane it should have.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::PlanError;
use super::dataplane::{
    DataPlane, FdbEntry, Link, NeighborEntry, UnreachablePeer, VXLAN_OVERHEAD, VXLAN_PORT,
};
use super::names::{IfName, NetnsName};
use super::routing;
use crate::attach::Attachments;
use crate::mac::MacAddr;
use crate::name::{CloudId, InstanceId, VnetName};
use crate::policy::FlowRule;
use crate::registry::VnetRecord;
use crate::vni::Vni;

/// The smallest overlay MTU planned for: the minimum datagram every IPv4
/// host must accept.
const MIN_OVERLAY_MTU: u16 = 576;

/// A VNet the broker is a member of, with all its attachments (local and
/// remote).
#[derive(Debug, Clone, Copy)]
pub struct MemberVnet<'a> {
    /// The VNet's record (VNI, network, clouds, cap).
    pub record: &'a VnetRecord,
    /// Its attachments in every cloud.
    pub attachments: &'a Attachments,
    /// For a VNet of a production/mirror pair: whether the pair is swapped
    /// (the mirror carries production traffic). False for any other VNet.
    pub swapped: bool,
}

impl MemberVnet<'_> {
    /// Whether the VNet carries production traffic: it has the gateway and
    /// takes part in routing and flow policies. A Mirror VNet does only while
    /// swapped, its production only while not.
    pub fn is_active(&self) -> bool {
        self.record.is_mirror() == self.swapped
    }

    /// The namespace of an instance attached to this VNet here: the
    /// instance's own, or its clone's for a Mirror VNet.
    pub fn namespace(&self, cloud: &CloudId, instance: &InstanceId) -> NetnsName {
        if self.record.is_mirror() {
            NetnsName::clone_of(cloud, instance)
        } else {
            NetnsName::of(cloud, instance)
        }
    }
}

/// What the broker knows: itself, its peers and its VNets.
#[derive(Debug, Clone)]
pub struct BrokerInput<'a> {
    /// The broker's cloud.
    pub cloud: CloudId,
    /// The broker's VTEP (underlay) address.
    pub vtep: Ipv4Addr,
    /// The underlay MTU; the overlay gets [`VXLAN_OVERHEAD`] less.
    pub underlay_mtu: u16,
    /// Whether VXLAN devices answer ARP for remote instances themselves
    /// (fewer flooded requests) from planned neighbor entries.
    pub arp_proxy: bool,
    /// The VTEP addresses of the other clouds. An entry for the broker's own
    /// cloud is ignored.
    pub peers: BTreeMap<CloudId, Ipv4Addr>,
    /// The VNets the broker is a member of.
    pub vnets: Vec<MemberVnet<'a>>,
    /// The agreed inter-domain flow rules.
    pub policies: Vec<FlowRule>,
}

/// The data plane the broker described by `input` should have.
///
/// Per VNet: a bridge, a VXLAN device bound to the broker's VTEP, and a veth
/// pair per local attachment; a flooding entry per remote VTEP of the VNet
/// and a forwarding entry (and, with ARP proxy, a neighbor entry) per remote
/// attachment. A remote cloud with no known VTEP is left out and reported in
/// [`DataPlane::unreachable`] rather than failing the whole plan: the other
/// clouds and VNets keep working.
pub fn desired(input: &BrokerInput<'_>) -> Result<DataPlane, PlanError> {
    let mtu = overlay_mtu(input)?;
    let mut seen = Seen::default();
    for vnet in &input.vnets {
        seen.admit(input, vnet)?;
    }
    let mut plane = DataPlane::default();
    for vnet in &input.vnets {
        add_vnet(input, vnet, mtu, &mut plane);
    }
    routing::add_routing(input, &input.vnets, &mut plane);
    Ok(plane)
}

/// A plan made of the VNets that could be planned, and why the others
/// could not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    /// The data plane of the VNets that could be planned.
    pub plane: DataPlane,
    /// The VNets left out, by VNI, each with the reason.
    pub refused: BTreeMap<Vni, PlanError>,
}

/// As [`desired`], but a VNet that cannot be planned together with the ones
/// before it (in the order of `input.vnets`) is left out with its reason,
/// rather than failing every VNet: one inconsistent VNet (an instance
/// attached to two VNets here, say) must not tear down the others. Only an
/// error that concerns them all (the underlay MTU) fails the whole plan.
pub fn desired_with_refusals(input: &BrokerInput<'_>) -> Result<Planned, PlanError> {
    let mtu = overlay_mtu(input)?;
    let mut seen = Seen::default();
    let mut planned = Planned::default();
    let mut admitted = Vec::new();
    for vnet in &input.vnets {
        match seen.admit(input, vnet) {
            Ok(()) => {
                add_vnet(input, vnet, mtu, &mut planned.plane);
                admitted.push(*vnet);
            }
            Err(error) => {
                planned.refused.insert(vnet.record.vni, error);
            }
        }
    }
    routing::add_routing(input, &admitted, &mut planned.plane);
    Ok(planned)
}

/// The overlay MTU, or the refusal of a too small underlay MTU.
fn overlay_mtu(input: &BrokerInput<'_>) -> Result<u16, PlanError> {
    let min = MIN_OVERLAY_MTU + VXLAN_OVERHEAD;
    if input.underlay_mtu < min {
        return Err(PlanError::UnderlayMtuTooSmall {
            mtu: input.underlay_mtu,
            min,
        });
    }
    Ok(input.underlay_mtu - VXLAN_OVERHEAD)
}

/// What the VNets admitted so far use: their VNIs and the local instances
/// attached to them.
#[derive(Default)]
struct Seen<'a> {
    vnis: BTreeMap<Vni, &'a VnetName>,
    local_instances: BTreeMap<NetnsName, &'a VnetName>,
}

impl<'a> Seen<'a> {
    /// Checks `vnet` against the input and the VNets admitted before it,
    /// and admits it; on refusal nothing is recorded.
    fn admit(&mut self, input: &BrokerInput<'_>, vnet: &MemberVnet<'a>) -> Result<(), PlanError> {
        let record: &'a VnetRecord = vnet.record;
        let attachments: &'a Attachments = vnet.attachments;
        let name = record.spec.name();
        if !record.spec.spans(&input.cloud) {
            return Err(PlanError::NotAMember {
                vnet: name.clone(),
                vni: record.vni,
                cloud: input.cloud.clone(),
            });
        }
        if attachments.vnet() != name {
            return Err(PlanError::AttachmentsMismatch {
                expected: name.clone(),
                found: attachments.vnet().clone(),
            });
        }
        if let Some(first) = self.vnis.get(&record.vni) {
            return Err(PlanError::DuplicateVni {
                vni: record.vni,
                first: (*first).clone(),
                second: name.clone(),
            });
        }
        let mut local = Vec::new();
        for binding in attachments.bindings() {
            if !record.spec.spans(&binding.cloud) {
                return Err(PlanError::BindingOutsideVnet {
                    instance: binding.instance.clone(),
                    vnet: name.clone(),
                    cloud: binding.cloud.clone(),
                });
            }
            if binding.cloud == input.cloud {
                let namespace = vnet.namespace(&input.cloud, &binding.instance);
                if let Some(first) = self.local_instances.get(&namespace) {
                    return Err(PlanError::InstanceInTwoVnets {
                        instance: binding.instance.clone(),
                        first: (*first).clone(),
                        second: name.clone(),
                    });
                }
                local.push(namespace);
            }
        }
        self.vnis.insert(record.vni, name);
        self.local_instances
            .extend(local.into_iter().map(|instance| (instance, name)));
        Ok(())
    }
}

fn add_vnet(input: &BrokerInput<'_>, vnet: &MemberVnet<'_>, mtu: u16, plane: &mut DataPlane) {
    let MemberVnet {
        record,
        attachments,
        ..
    } = vnet;
    let vni = record.vni;
    let (vxlan, bridge) = (IfName::vxlan(vni), IfName::bridge(vni));
    plane.links.insert(
        bridge.clone(),
        Link::Bridge {
            name: bridge.clone(),
        },
    );
    plane.links.insert(
        vxlan.clone(),
        Link::Vxlan {
            name: vxlan.clone(),
            vni,
            local: input.vtep,
            port: VXLAN_PORT,
            learning: false,
            arp_proxy: input.arp_proxy,
            mtu,
            bridge: bridge.clone(),
        },
    );
    if let Some(rate) = record.spec.bandwidth() {
        plane.rates.insert(vxlan.clone(), rate);
    }

    // The VTEP of each other cloud of the VNet; unknown ones are reported.
    let mut remote_vteps: BTreeMap<&CloudId, Ipv4Addr> = BTreeMap::new();
    for cloud in record.spec.clouds().iter().filter(|c| **c != input.cloud) {
        match input.peers.get(cloud) {
            Some(vtep) => {
                remote_vteps.insert(cloud, *vtep);
                plane.fdb.insert(FdbEntry {
                    device: vxlan.clone(),
                    mac: MacAddr::ZERO,
                    dst: *vtep,
                });
            }
            None => {
                plane.unreachable.insert(UnreachablePeer {
                    vni,
                    cloud: cloud.clone(),
                });
            }
        }
    }

    let prefix_len = record.spec.cidr().prefix_len();
    for binding in attachments.bindings() {
        if binding.cloud == input.cloud {
            let name = IfName::veth(vni, binding.index);
            // The prefix length comes from a valid Ipv4Net, so this cannot
            // fail; a host route is the harmless fallback.
            let address =
                Ipv4Net::new(binding.ip, prefix_len).unwrap_or_else(|_| Ipv4Net::from(binding.ip));
            plane.links.insert(
                name.clone(),
                Link::Veth {
                    name,
                    bridge: bridge.clone(),
                    netns: vnet.namespace(&input.cloud, &binding.instance),
                    peer: IfName::instance_side(),
                    address,
                    mac: binding.mac,
                    mtu,
                },
            );
        } else if let Some(vtep) = remote_vteps.get(&binding.cloud) {
            plane.fdb.insert(FdbEntry {
                device: vxlan.clone(),
                mac: binding.mac,
                dst: *vtep,
            });
            if input.arp_proxy {
                plane.neighbors.insert(NeighborEntry {
                    device: vxlan.clone(),
                    ip: binding.ip,
                    mac: binding.mac,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::{Federation, attachments, cloud, instance, ip, record, vni};

    fn plan(federation: &Federation) -> DataPlane {
        desired(&federation.input()).expect("plans")
    }

    fn link<'p>(plane: &'p DataPlane, name: &str) -> &'p Link {
        plane
            .links
            .get(&IfName::new(name).expect("valid name"))
            .unwrap_or_else(|| panic!("no link {name} in {:?}", plane.links.keys()))
    }

    #[test]
    fn each_vnet_gets_a_bridge_and_a_vxlan_device_on_the_local_vtep() {
        let plane = plan(&Federation::new());
        assert_eq!(
            link(&plane, "icb00002a"),
            &Link::Bridge {
                name: IfName::bridge(vni(42))
            }
        );
        assert_eq!(
            link(&plane, "icx00002a"),
            &Link::Vxlan {
                name: IfName::vxlan(vni(42)),
                vni: vni(42),
                local: ip("192.0.2.1"),
                port: 4789,
                learning: false,
                arp_proxy: false,
                mtu: 1450,
                bridge: IfName::bridge(vni(42)),
            }
        );
        assert!(
            matches!(link(&plane, "icx00002b"), Link::Vxlan { vni, .. } if *vni == self::vni(43))
        );
        assert!(matches!(link(&plane, "icb00002b"), Link::Bridge { .. }));
    }

    #[test]
    fn each_local_attachment_gets_a_veth_into_its_namespace() {
        let federation = Federation::new();
        let plane = plan(&federation);
        let web = federation
            .blue_attachments
            .binding(&instance("web-1"))
            .expect("attached");
        assert_eq!(
            link(&plane, "icv00002a0000"),
            &Link::Veth {
                name: IfName::veth(vni(42), web.index),
                bridge: IfName::bridge(vni(42)),
                netns: NetnsName::of(&cloud("cloud-a"), &instance("web-1")),
                peer: IfName::new("eth0").expect("valid"),
                address: "10.20.0.2/24".parse().expect("valid"),
                mac: web.mac,
                mtu: 1450,
            }
        );
        // Remote attachments get no veth here: 2 VNets x (bridge + vxlan) +
        // web-1 and api-1.
        assert_eq!(plane.links.len(), 6);
        assert!(plane.links.keys().all(|name| name.as_str().len() <= 15));
    }

    #[test]
    fn broadcast_is_flooded_to_every_remote_vtep_of_the_vnet_only() {
        let plane = plan(&Federation::new());
        assert_eq!(
            plane.flood_targets(vni(42)),
            [ip("192.0.2.2"), ip("192.0.2.3")].into()
        );
        // green does not span cloud-c; never to our own VTEP.
        assert_eq!(plane.flood_targets(vni(43)), [ip("192.0.2.2")].into());
    }

    #[test]
    fn each_remote_attachment_is_forwarded_to_its_cloud_s_vtep() {
        let federation = Federation::new();
        let plane = plan(&federation);
        let unicast: Vec<(String, Ipv4Addr)> = plane
            .fdb
            .iter()
            .filter(|e| e.mac != MacAddr::ZERO)
            .map(|e| (e.mac.to_string(), e.dst))
            .collect();
        let mac_of = |who: &str| {
            federation
                .blue_attachments
                .binding(&instance(who))
                .expect("attached")
                .mac
                .to_string()
        };
        let mut expected = vec![
            (mac_of("db-1"), ip("192.0.2.2")),
            (mac_of("cache-1"), ip("192.0.2.3")),
        ];
        expected.sort();
        let mut unicast_sorted = unicast;
        unicast_sorted.sort();
        assert_eq!(unicast_sorted, expected);
        assert!(
            plane
                .fdb
                .iter()
                .all(|e| e.device.as_str().starts_with("icx"))
        );
    }

    #[test]
    fn neighbor_entries_come_with_arp_proxy_only() {
        let federation = Federation::new();
        assert!(plan(&federation).neighbors.is_empty());
        let mut input = federation.input();
        input.arp_proxy = true;
        let plane = desired(&input).expect("plans");
        let neighbors: Vec<Ipv4Addr> = plane.neighbors.iter().map(|n| n.ip).collect();
        assert_eq!(neighbors, vec![ip("10.20.0.3"), ip("10.20.0.4")]);
        assert!(matches!(
            link(&plane, "icx00002a"),
            Link::Vxlan {
                arp_proxy: true,
                ..
            }
        ));
    }

    #[test]
    fn a_vnet_cap_limits_its_vxlan_device() {
        let plane = plan(&Federation::new());
        let caps: Vec<(String, String)> = plane
            .rates
            .iter()
            .map(|(d, r)| (d.to_string(), r.to_string()))
            .collect();
        assert_eq!(caps, vec![("icx00002a".to_owned(), "100mbit".to_owned())]);
    }

    #[test]
    fn a_peer_without_a_known_vtep_is_left_out_and_reported() {
        let federation = Federation::new();
        let mut input = federation.input();
        input.peers.remove(&cloud("cloud-c"));
        let plane = desired(&input).expect("plans");
        assert_eq!(plane.flood_targets(vni(42)), [ip("192.0.2.2")].into());
        assert!(plane.fdb.iter().all(|e| e.dst != ip("192.0.2.3")));
        let unreachable: Vec<(u32, String)> = plane
            .unreachable
            .iter()
            .map(|u| (u.vni.value(), u.cloud.to_string()))
            .collect();
        assert_eq!(unreachable, vec![(42, "cloud-c".to_owned())]);
    }

    #[test]
    fn the_overlay_mtu_is_the_underlay_s_less_the_vxlan_overhead() {
        let federation = Federation::new();
        let mut input = federation.input();
        input.underlay_mtu = 9000;
        let plane = desired(&input).expect("plans");
        assert!(matches!(
            link(&plane, "icx00002a"),
            Link::Vxlan { mtu: 8950, .. }
        ));
        input.underlay_mtu = 600;
        let error = desired(&input).expect_err("too small");
        assert_eq!(
            error.to_string(),
            "underlay MTU 600 is below 626: VXLAN takes 50 bytes and the overlay needs at least 576"
        );
    }

    #[test]
    fn a_vnet_that_does_not_span_the_broker_s_cloud_is_refused() {
        let federation = Federation::new();
        let elsewhere = record("red", 44, "10.40.0.0/24", &["cloud-b"], None);
        let red_attachments = attachments(&elsewhere, &[]);
        let mut input = federation.input();
        input.vnets.push(MemberVnet {
            record: &elsewhere,
            attachments: &red_attachments,
            swapped: false,
        });
        let error = desired(&input).expect_err("not a member");
        assert_eq!(
            error.to_string(),
            "vnet \"red\" (VNI 44) does not span cloud cloud-a"
        );
    }

    #[test]
    fn attachments_of_another_vnet_are_refused() {
        let federation = Federation::new();
        let mut input = federation.input();
        input.vnets[1].attachments = &federation.blue_attachments;
        let error = desired(&input).expect_err("mismatch");
        assert_eq!(
            error.to_string(),
            "attachments of vnet \"blue\" were given for vnet \"green\""
        );
    }

    #[test]
    fn two_vnets_with_one_vni_are_refused() {
        let federation = Federation::new();
        let clash = record("red", 42, "10.40.0.0/24", &["cloud-a"], None);
        let clash_attachments = attachments(&clash, &[]);
        let mut input = federation.input();
        input.vnets.push(MemberVnet {
            record: &clash,
            attachments: &clash_attachments,
            swapped: false,
        });
        let error = desired(&input).expect_err("same VNI");
        assert_eq!(
            error.to_string(),
            "VNI 42 is given for both vnet \"blue\" and vnet \"red\""
        );
    }

    #[test]
    fn an_attachment_in_a_cloud_the_vnet_does_not_span_is_refused() {
        let federation = Federation::new();
        let green_on_c = attachments(&federation.green, &[("stray-1", "cloud-c", "10.30.0.9")]);
        let mut input = federation.input();
        input.vnets[1].attachments = &green_on_c;
        let error = desired(&input).expect_err("outside");
        assert_eq!(
            error.to_string(),
            "instance stray-1 is attached to vnet \"green\" in cloud cloud-c, which the vnet does not span"
        );
    }

    #[test]
    fn a_local_instance_in_two_vnets_is_refused() {
        let federation = Federation::new();
        let green_with_web = attachments(&federation.green, &[("web-1", "cloud-a", "10.30.0.9")]);
        let mut input = federation.input();
        input.vnets[1].attachments = &green_with_web;
        let error = desired(&input).expect_err("two eth0");
        assert_eq!(
            error.to_string(),
            "instance web-1 is attached to both vnet \"blue\" and vnet \"green\" here; its namespace has room for one eth0"
        );
        // The same instance name in two VNets on other clouds is not our
        // namespace's problem.
        let green_remote = attachments(&federation.green, &[("web-1", "cloud-b", "10.30.0.9")]);
        input.vnets[1].attachments = &green_remote;
        assert!(desired(&input).is_ok());
    }

    #[test]
    fn with_refusals_a_vnet_that_cannot_be_planned_is_left_out_alone() {
        let federation = Federation::new();
        let green_with_web = attachments(&federation.green, &[("web-1", "cloud-a", "10.30.0.9")]);
        let mut input = federation.input();
        input.vnets[1].attachments = &green_with_web;
        let planned = desired_with_refusals(&input).expect("plans");
        // blue is planned as if green were not there; green is refused.
        let blue_only = {
            let mut alone = federation.input();
            alone.vnets.truncate(1);
            desired(&alone).expect("plans")
        };
        assert_eq!(planned.plane, blue_only);
        let refused: Vec<(u32, String)> = planned
            .refused
            .iter()
            .map(|(vni, e)| (vni.value(), e.to_string()))
            .collect();
        assert_eq!(
            refused,
            vec![(
                43,
                "instance web-1 is attached to both vnet \"blue\" and vnet \"green\" here; its namespace has room for one eth0".to_owned()
            )]
        );
        // A refused VNet takes nothing with it: a third VNet with green's
        // local instance api-1 would be planned.
        assert!(
            planned
                .plane
                .links
                .keys()
                .all(|name| name.vni() == Some(vni(42)))
        );
    }

    #[test]
    fn with_refusals_a_consistent_input_plans_as_desired_does() {
        let federation = Federation::new();
        let planned = desired_with_refusals(&federation.input()).expect("plans");
        assert_eq!(planned.plane, plan(&federation));
        assert!(planned.refused.is_empty());
        let mut input = federation.input();
        input.underlay_mtu = 600;
        assert!(matches!(
            desired_with_refusals(&input),
            Err(PlanError::UnderlayMtuTooSmall { .. })
        ));
    }
}
