//! From the data plane there is to the one there should be.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::dataplane::{DataPlane, FdbEntry, Link, NeighborEntry};
use super::names::{BRIDGE_PREFIX, IfName, VETH_PREFIX, VXLAN_PREFIX};
use crate::bandwidth::Bandwidth;
use crate::vni::Vni;

/// An interface as the driver found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActualLink {
    /// An interface the driver could read fully into a [`Link`]; compared
    /// with the desired one field by field.
    Known(Link),
    /// Any other interface, by name: left alone unless it carries one of our
    /// prefixes (then it is stale, or in the way of a desired one).
    Unknown {
        /// The interface's name.
        name: IfName,
    },
}

impl ActualLink {
    /// The interface's name.
    pub fn name(&self) -> &IfName {
        match self {
            Self::Known(link) => link.name(),
            Self::Unknown { name } => name,
        }
    }
}

/// What the driver found on the host. Interfaces, entries and caps on
/// interfaces without our prefixes may be included; they are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActualState {
    /// The interfaces.
    pub links: Vec<ActualLink>,
    /// The static forwarding entries of VXLAN devices.
    pub fdb: BTreeSet<FdbEntry>,
    /// The neighbor entries of VXLAN devices.
    pub neighbors: BTreeSet<NeighborEntry>,
    /// The egress rate caps, by interface.
    pub rates: BTreeMap<IfName, Bandwidth>,
}

impl ActualState {
    /// The state a host has once `plane` is fully applied.
    pub fn applied(plane: &DataPlane) -> Self {
        Self {
            links: plane
                .links
                .values()
                .cloned()
                .map(ActualLink::Known)
                .collect(),
            fdb: plane.fdb.clone(),
            neighbors: plane.neighbors.clone(),
            rates: plane.rates.clone(),
        }
    }
}

impl ActualState {
    /// The state without the interfaces, entries and caps of the VNets
    /// `vnis` (read from their names): a reconciliation against it leaves
    /// those VNets as they are. For a VNet that cannot be planned right now
    /// (see [`crate::plan::desired_with_refusals`]): leaving it out of the
    /// plan alone would delete what it has.
    pub fn leaving_out(mut self, vnis: &BTreeSet<Vni>) -> Self {
        let kept = |name: &IfName| !name.vni().is_some_and(|vni| vnis.contains(&vni));
        self.links.retain(|link| kept(link.name()));
        self.fdb.retain(|entry| kept(&entry.device));
        self.neighbors.retain(|entry| kept(&entry.device));
        self.rates.retain(|device, _| kept(device));
        self
    }
}

/// One change for the driver to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Remove a neighbor entry that is not desired.
    DeleteNeighbor(NeighborEntry),
    /// Remove a forwarding entry that is not desired.
    DeleteFdb(FdbEntry),
    /// Remove the rate cap of an interface.
    ClearRate {
        /// The interface.
        device: IfName,
    },
    /// Remove an interface (stale, or to be created anew).
    DeleteLink {
        /// The interface.
        name: IfName,
    },
    /// Create an interface as described.
    CreateLink(Link),
    /// Cap an interface's egress rate (replacing any cap).
    SetRate {
        /// The interface.
        device: IfName,
        /// The cap.
        rate: Bandwidth,
    },
    /// Add a forwarding entry.
    AddFdb(FdbEntry),
    /// Add a neighbor entry.
    AddNeighbor(NeighborEntry),
}

/// The actions that turn `actual` into `desired`, in the order to perform
/// them.
///
/// Stale things go first: entries and caps not desired on interfaces that
/// stay, then interfaces with our prefixes that are not desired or differ
/// from the desired ones (veths, then VXLAN devices, then bridges). Then
/// creation: bridges, VXLAN devices, veths (each after the bridge it joins),
/// then rate caps, forwarding and neighbor entries (after their device).
///
/// An interface that differs from its description is deleted and created
/// anew rather than patched, which is simpler and always reaches the
/// described state; when a bridge is created anew, its existing ports are
/// too, since deleting a bridge frees them. Entries and caps of a deleted
/// interface go with it, so they are not deleted one by one, and are added
/// again if the interface is created anew. Interfaces without our prefixes,
/// and whatever is on them, are never touched.
pub fn reconcile(desired: &DataPlane, actual: &ActualState) -> Vec<Action> {
    let existing: BTreeMap<&IfName, &ActualLink> = actual
        .links
        .iter()
        .filter(|link| link.name().is_ours())
        .map(|link| (link.name(), link))
        .collect();

    let create = links_to_create(desired, &existing);

    // Our interfaces to delete: not desired, or in the way of a new one.
    let delete: BTreeSet<&IfName> = existing
        .keys()
        .copied()
        .filter(|name| !desired.links.contains_key(*name) || create.contains(name))
        .collect();
    // Entries and caps live on; they need handling one by one only on
    // interfaces of ours that stay.
    let stays = |device: &IfName| {
        device.is_ours() && existing.contains_key(device) && !delete.contains(device)
    };
    let fresh = |device: &IfName| create.contains(device);

    let mut actions = Vec::new();
    actions.extend(
        actual
            .neighbors
            .iter()
            .filter(|e| stays(&e.device) && !desired.neighbors.contains(e))
            .cloned()
            .map(Action::DeleteNeighbor),
    );
    actions.extend(
        actual
            .fdb
            .iter()
            .filter(|e| stays(&e.device) && !desired.fdb.contains(e))
            .cloned()
            .map(Action::DeleteFdb),
    );
    actions.extend(
        actual
            .rates
            .keys()
            .filter(|device| stays(device) && !desired.rates.contains_key(*device))
            .map(|device| Action::ClearRate {
                device: device.clone(),
            }),
    );

    let mut doomed: Vec<&IfName> = delete.into_iter().collect();
    doomed.sort_by_key(|name| (std::cmp::Reverse(rank_by_prefix(name)), *name));
    actions.extend(
        doomed
            .into_iter()
            .map(|name| Action::DeleteLink { name: name.clone() }),
    );

    let mut born: Vec<&Link> = desired
        .links
        .iter()
        .filter(|(name, _)| create.contains(name))
        .map(|(_, link)| link)
        .collect();
    born.sort_by_key(|link| (link.creation_rank(), link.name()));
    actions.extend(born.into_iter().cloned().map(Action::CreateLink));

    actions.extend(
        desired
            .rates
            .iter()
            .filter(|(device, rate)| fresh(device) || actual.rates.get(*device) != Some(*rate))
            .map(|(device, rate)| Action::SetRate {
                device: device.clone(),
                rate: *rate,
            }),
    );
    actions.extend(
        desired
            .fdb
            .iter()
            .filter(|e| fresh(&e.device) || !actual.fdb.contains(e))
            .cloned()
            .map(Action::AddFdb),
    );
    actions.extend(
        desired
            .neighbors
            .iter()
            .filter(|e| fresh(&e.device) || !actual.neighbors.contains(e))
            .cloned()
            .map(Action::AddNeighbor),
    );
    actions
}

/// The desired interfaces to create: missing, different from described, or
/// ports of a bridge that is created anew (deleting a bridge frees them).
fn links_to_create<'a>(
    desired: &'a DataPlane,
    existing: &BTreeMap<&IfName, &ActualLink>,
) -> BTreeSet<&'a IfName> {
    let mut create: BTreeSet<&IfName> = desired
        .links
        .iter()
        .filter(|(name, link)| match existing.get(name) {
            Some(ActualLink::Known(found)) => found != *link,
            Some(ActualLink::Unknown { .. }) | None => true,
        })
        .map(|(name, _)| name)
        .collect();
    let rebuilt_bridges = create.clone();
    for (name, link) in &desired.links {
        if link
            .bridge()
            .is_some_and(|bridge| rebuilt_bridges.contains(bridge))
        {
            create.insert(name);
        }
    }
    create
}

/// The creation rank (bridge 0, VXLAN 1, veth 2) read from the name, which
/// works for interfaces the driver could not describe as well.
fn rank_by_prefix(name: &IfName) -> u8 {
    let name = name.as_str();
    if name.starts_with(BRIDGE_PREFIX) {
        0
    } else if name.starts_with(VXLAN_PREFIX) {
        1
    } else if name.starts_with(VETH_PREFIX) {
        2
    } else {
        3
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mac::MacAddr;
    use crate::plan::desired_state::desired;
    use crate::plan::fixtures::{Federation, cloud, instance, ip, vni};

    fn name(s: &str) -> IfName {
        IfName::new(s).expect("valid name")
    }

    fn plane() -> DataPlane {
        desired(&Federation::new().input()).expect("plans")
    }

    fn deleted(actions: &[Action]) -> Vec<&str> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::DeleteLink { name } => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    fn created(actions: &[Action]) -> Vec<&str> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::CreateLink(link) => Some(link.name().as_str()),
                _ => None,
            })
            .collect()
    }

    /// The position of the first action satisfying `what`.
    fn position(actions: &[Action], what: impl Fn(&Action) -> bool) -> usize {
        actions.iter().position(what).expect("such an action")
    }

    #[test]
    fn an_unchanged_state_needs_no_action() {
        let desired = plane();
        assert_eq!(reconcile(&desired, &ActualState::applied(&desired)), vec![]);
    }

    #[test]
    fn from_nothing_devices_come_before_what_is_attached_to_them() {
        let desired = plane();
        let actions = reconcile(&desired, &ActualState::default());
        assert_eq!(
            created(&actions),
            vec![
                "icb00002a",
                "icb00002b",
                "icx00002a",
                "icx00002b",
                "icv00002a0000",
                "icv00002b0000"
            ]
        );
        let last_link = position(
            &actions,
            |a| matches!(a, Action::CreateLink(Link::Veth { name, .. }) if name.as_str() == "icv00002b0000"),
        );
        let first_entry = position(&actions, |a| {
            matches!(a, Action::SetRate { .. } | Action::AddFdb(_))
        });
        assert!(last_link < first_entry, "{actions:#?}");
        // 3 flooding entries (b, c for blue; b for green) + 2 remote MACs.
        let fdb = actions
            .iter()
            .filter(|a| matches!(a, Action::AddFdb(_)))
            .count();
        assert_eq!(fdb, 5);
        assert!(actions.contains(&Action::SetRate {
            device: name("icx00002a"),
            rate: "100mbit".parse().expect("valid"),
        }));
        assert_eq!(deleted(&actions), Vec::<&str>::new());
    }

    #[test]
    fn stale_interfaces_left_by_a_crash_are_deleted_first() {
        let desired = plane();
        let mut actual = ActualState::applied(&desired);
        // A VNet (VNI 0x99) deleted while the broker was down left its
        // bridge, device and a veth; one stray left half-made.
        let gone = vni(0x99);
        actual.links.push(ActualLink::Known(Link::Bridge {
            name: IfName::bridge(gone),
        }));
        actual.links.push(ActualLink::Unknown {
            name: IfName::vxlan(gone),
        });
        actual.links.push(ActualLink::Unknown {
            name: IfName::veth(gone, 3),
        });
        actual.fdb.insert(FdbEntry {
            device: IfName::vxlan(gone),
            mac: MacAddr::ZERO,
            dst: ip("192.0.2.2"),
        });
        // web-2 was detached while the broker was down.
        actual.links.push(ActualLink::Unknown {
            name: IfName::veth(vni(42), 1),
        });
        // And a new attachment is desired at the same time.
        let mut desired = desired;
        let extra = Link::Veth {
            name: IfName::veth(vni(43), 1),
            bridge: IfName::bridge(vni(43)),
            netns: crate::plan::NetnsName::of(&cloud("cloud-a"), &instance("api-2")),
            peer: IfName::instance_side(),
            address: "10.30.0.3/24".parse().expect("valid"),
            mac: MacAddr::new([2, 0, 0, 43, 0, 3]),
            mtu: 1450,
        };
        desired.links.insert(extra.name().clone(), extra);

        let actions = reconcile(&desired, &actual);
        // Ports before their bridge; the stale device's FDB goes with it.
        assert_eq!(
            deleted(&actions),
            vec!["icv00002a0001", "icv0000990003", "icx000099", "icb000099"]
        );
        assert!(!actions.iter().any(|a| matches!(a, Action::DeleteFdb(_))));
        assert_eq!(created(&actions), vec!["icv00002b0001"]);
        let last_delete = actions
            .iter()
            .rposition(|a| matches!(a, Action::DeleteLink { .. }))
            .expect("deletes");
        let first_create = position(&actions, |a| matches!(a, Action::CreateLink(_)));
        assert!(last_delete < first_create);
        assert_eq!(actions.len(), 5);
    }

    #[test]
    fn interfaces_without_our_prefixes_are_never_touched() {
        let desired = plane();
        let mut actual = ActualState::applied(&desired);
        for other in ["eth0", "lo", "docker0", "vxlan42", "br-42"] {
            actual.links.push(ActualLink::Unknown { name: name(other) });
        }
        actual
            .links
            .push(ActualLink::Known(Link::Bridge { name: name("br0") }));
        actual.fdb.insert(FdbEntry {
            device: name("vxlan42"),
            mac: MacAddr::ZERO,
            dst: ip("198.51.100.7"),
        });
        actual.neighbors.insert(NeighborEntry {
            device: name("vxlan42"),
            ip: ip("10.0.0.9"),
            mac: MacAddr::new([2, 0, 0, 0, 0, 9]),
        });
        actual
            .rates
            .insert(name("eth0"), "1gbit".parse().expect("valid"));
        assert_eq!(reconcile(&desired, &actual), vec![]);
    }

    #[test]
    fn a_new_remote_binding_is_one_fdb_add() {
        let mut federation = Federation::new();
        let before = desired(&federation.input()).expect("plans");
        let address = ip("10.20.0.5");
        let mac = crate::ipam::mac_for(vni(42), address);
        federation
            .blue_attachments
            .attach(instance("db-2"), cloud("cloud-b"), address, mac)
            .expect("attaches");
        let after = desired(&federation.input()).expect("plans");
        assert_eq!(
            reconcile(&after, &ActualState::applied(&before)),
            vec![Action::AddFdb(FdbEntry {
                device: name("icx00002a"),
                mac,
                dst: ip("192.0.2.2"),
            })]
        );
    }

    #[test]
    fn with_arp_proxy_a_new_remote_binding_also_adds_its_neighbor_entry() {
        let mut federation = Federation::new();
        let mut input = federation.input();
        input.arp_proxy = true;
        let before = desired(&input).expect("plans");
        let address = ip("10.20.0.5");
        let mac = crate::ipam::mac_for(vni(42), address);
        federation
            .blue_attachments
            .attach(instance("db-2"), cloud("cloud-b"), address, mac)
            .expect("attaches");
        let mut input = federation.input();
        input.arp_proxy = true;
        let after = desired(&input).expect("plans");
        let device = name("icx00002a");
        assert_eq!(
            reconcile(&after, &ActualState::applied(&before)),
            vec![
                Action::AddFdb(FdbEntry {
                    device: device.clone(),
                    mac,
                    dst: ip("192.0.2.2")
                }),
                Action::AddNeighbor(NeighborEntry {
                    device,
                    ip: address,
                    mac
                }),
            ]
        );
    }

    #[test]
    fn a_moved_binding_has_its_fdb_entry_replaced() {
        let mut federation = Federation::new();
        let before = desired(&federation.input()).expect("plans");
        // db-1 migrates from cloud-b to cloud-c, keeping address and MAC.
        let db = federation
            .blue_attachments
            .detach(&instance("db-1"))
            .expect("attached");
        federation
            .blue_attachments
            .attach(db.instance.clone(), cloud("cloud-c"), db.ip, db.mac)
            .expect("attaches");
        let after = desired(&federation.input()).expect("plans");
        let device = name("icx00002a");
        assert_eq!(
            reconcile(&after, &ActualState::applied(&before)),
            vec![
                Action::DeleteFdb(FdbEntry {
                    device: device.clone(),
                    mac: db.mac,
                    dst: ip("192.0.2.2")
                }),
                Action::AddFdb(FdbEntry {
                    device,
                    mac: db.mac,
                    dst: ip("192.0.2.3")
                }),
            ]
        );
    }

    #[test]
    fn a_device_that_drifted_is_recreated_with_its_entries() {
        let desired = plane();
        let mut actual = ActualState::applied(&desired);
        // Someone turned learning on for blue's VXLAN device.
        for link in &mut actual.links {
            if let ActualLink::Known(Link::Vxlan { name, learning, .. }) = link
                && name.as_str() == "icx00002a"
            {
                *learning = true;
            }
        }
        let actions = reconcile(&desired, &actual);
        assert_eq!(deleted(&actions), vec!["icx00002a"]);
        assert_eq!(created(&actions), vec!["icx00002a"]);
        // Its cap and its 2 flooding + 2 MAC entries went with it.
        assert_eq!(
            actions
                .iter()
                .filter(|a| matches!(a, Action::AddFdb(_)))
                .count(),
            4
        );
        assert!(actions.iter().any(|a| matches!(a, Action::SetRate { .. })));
        assert_eq!(actions.len(), 7);
    }

    #[test]
    fn a_bridge_created_anew_takes_its_ports_with_it() {
        let desired = plane();
        let mut actual = ActualState::applied(&desired);
        actual.links.retain(|l| l.name().as_str() != "icb00002a");
        actual.links.push(ActualLink::Unknown {
            name: name("icb00002a"),
        });
        let actions = reconcile(&desired, &actual);
        assert_eq!(
            deleted(&actions),
            vec!["icv00002a0000", "icx00002a", "icb00002a"]
        );
        assert_eq!(
            created(&actions),
            vec!["icb00002a", "icx00002a", "icv00002a0000"]
        );
    }

    #[test]
    fn stale_entries_and_caps_on_kept_devices_are_removed_first() {
        let desired = plane();
        let mut actual = ActualState::applied(&desired);
        let stale_fdb = FdbEntry {
            device: name("icx00002b"),
            mac: MacAddr::ZERO,
            dst: ip("192.0.2.9"),
        };
        let stale_neighbor = NeighborEntry {
            device: name("icx00002b"),
            ip: ip("10.30.0.7"),
            mac: MacAddr::new([2, 0, 0, 43, 0, 7]),
        };
        actual.fdb.insert(stale_fdb.clone());
        actual.neighbors.insert(stale_neighbor.clone());
        actual
            .rates
            .insert(name("icx00002b"), "5mbit".parse().expect("valid"));
        assert_eq!(
            reconcile(&desired, &actual),
            vec![
                Action::DeleteNeighbor(stale_neighbor),
                Action::DeleteFdb(stale_fdb),
                Action::ClearRate {
                    device: name("icx00002b")
                },
            ]
        );
    }

    #[test]
    fn a_changed_cap_is_set_again_and_equal_caps_in_other_units_are_left() {
        let desired = plane();
        let mut actual = ActualState::applied(&desired);
        actual
            .rates
            .insert(name("icx00002a"), "0100000kbit".parse().expect("valid"));
        assert_eq!(
            reconcile(&desired, &actual),
            vec![],
            "100000kbit is 100mbit"
        );
        actual
            .rates
            .insert(name("icx00002a"), "50mbit".parse().expect("valid"));
        assert_eq!(
            reconcile(&desired, &actual),
            vec![Action::SetRate {
                device: name("icx00002a"),
                rate: "100mbit".parse().expect("valid"),
            }]
        );
    }

    #[test]
    fn actions_serialize_for_the_driver() {
        let action = Action::DeleteLink {
            name: name("icx00002a"),
        };
        assert_eq!(
            serde_json::to_string(&action).expect("serializes"),
            r#"{"delete_link":{"name":"icx00002a"}}"#
        );
    }

    #[test]
    fn a_vnet_left_out_of_the_plan_and_of_the_actual_state_is_left_alone() {
        let all = plane();
        let actual = ActualState::applied(&all);
        // green (VNI 43) cannot be planned this round: not in the plan...
        let mut without_green = all.clone();
        without_green
            .links
            .retain(|name, _| name.vni() != Some(vni(43)));
        without_green
            .fdb
            .retain(|e| e.device.vni() != Some(vni(43)));
        // ...so, alone, its interfaces would go.
        let naive = reconcile(&without_green, &actual);
        assert_eq!(
            deleted(&naive),
            vec!["icv00002b0000", "icx00002b", "icb00002b"]
        );
        // Left out of what is there too, nothing of it is touched.
        let careful = reconcile(&without_green, &actual.leaving_out(&[vni(43)].into()));
        assert_eq!(careful, vec![]);
    }
}
