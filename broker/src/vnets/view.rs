//! The VNets this broker can see, as the root's `WatchVnets` tells them
//! (pure), and their translation into what the plan takes.
//!
//! Every event but `SNAPSHOT_END` carries a whole VNet, so the view simply
//! replaces its copy. A snapshot (after a connection, or after the watcher
//! fell behind) replaces the whole view only once it is complete: until
//! then, and while the watch is down, the last complete view stays in force,
//! so a reconnection never looks like every VNet disappearing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use intercloud_proto::v1::vnet_event::Kind;
use intercloud_proto::v1::{Binding as BindingMsg, FlowPolicy, Vnet, VnetEvent};
use intercloud_vnet::{
    Attachments, Binding, BrokerInput, CloudId, Domain, FlowRule, InstanceId, MemberVnet, MirrorOf,
    TenantId, VnetName, VnetRecord, VnetSpec, Vni,
};

/// A VNet's key: its tenant and its name.
pub type VnetKey = (String, String);

/// The VNets visible to this broker.
#[derive(Debug, Clone, Default)]
pub struct View {
    vnets: BTreeMap<VnetKey, Vnet>,
    /// The agreed flow rules touching this cloud's VNets' domains.
    policies: Vec<FlowPolicy>,
    /// A snapshot being received.
    incoming: Option<BTreeMap<VnetKey, Vnet>>,
    /// The rules of a snapshot being received.
    incoming_policies: Option<Vec<FlowPolicy>>,
    /// Whether a snapshot has ever been complete: before that, the view
    /// says nothing (an empty view would mean "delete everything").
    complete: bool,
    revision: u64,
}

/// What an event did to the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The view in force changed (or a snapshot completed).
    Changed,
    /// Nothing in force changed (a snapshot is still arriving).
    Unchanged,
}

fn key(vnet: &Vnet) -> VnetKey {
    (vnet.tenant.clone(), vnet.name.clone())
}

impl View {
    /// An empty view, not complete yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one event in.
    pub fn apply(&mut self, event: VnetEvent) -> Applied {
        self.revision = self.revision.max(event.revision);
        let kind = Kind::try_from(event.kind).unwrap_or(Kind::Unspecified);
        match (kind, event.vnet) {
            (Kind::Snapshot, Some(vnet)) => {
                self.incoming
                    .get_or_insert_default()
                    .insert(key(&vnet), vnet);
                Applied::Unchanged
            }
            (Kind::SnapshotEnd, _) => {
                self.vnets = self.incoming.take().unwrap_or_default();
                self.policies = self.incoming_policies.take().unwrap_or_default();
                self.complete = true;
                Applied::Changed
            }
            (Kind::Policies, _) if self.incoming.is_some() => {
                self.incoming_policies = Some(event.policies);
                Applied::Unchanged
            }
            (Kind::Policies, _) => {
                self.policies = event.policies;
                Applied::Changed
            }
            (Kind::Deleted, Some(vnet)) => {
                self.incoming = None;
                self.incoming_policies = None;
                self.vnets.remove(&key(&vnet));
                Applied::Changed
            }
            (
                Kind::Created
                | Kind::BindingAdded
                | Kind::BindingRemoved
                | Kind::VtepChanged
                | Kind::Swapped,
                Some(vnet),
            ) => {
                self.incoming = None;
                self.incoming_policies = None;
                self.vnets.insert(key(&vnet), vnet);
                Applied::Changed
            }
            // An event this broker does not know, or without its VNet.
            _ => Applied::Unchanged,
        }
    }

    /// Forgets a snapshot that was arriving (the watch broke off); the view
    /// in force stays.
    pub fn interrupted(&mut self) {
        self.incoming = None;
        self.incoming_policies = None;
    }

    /// The agreed flow rules the root sent.
    pub fn policies(&self) -> &[FlowPolicy] {
        &self.policies
    }

    /// Whether a snapshot has ever been complete.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The registry's revision of the last event.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The VNets, by tenant and name.
    pub fn vnets(&self) -> impl Iterator<Item = &Vnet> {
        self.vnets.values()
    }

    /// The VNet with VNI `vni`.
    pub fn by_vni(&self, vni: u32) -> Option<&Vnet> {
        self.vnets.values().find(|v| v.vni == vni)
    }

    /// The VNet `instance` of `cloud` is attached to, if any (an instance's
    /// namespace has room for one `eth0`). Mirror VNets hold clones, which
    /// have namespaces of their own: they do not count.
    pub fn attached_vnet(&self, cloud: &str, instance: &str) -> Option<&Vnet> {
        self.attachments_of(cloud, instance)
            .next()
            .map(|(vnet, _)| vnet)
    }

    /// The production VNets `instance` of `cloud` is bound to, with its
    /// binding in each (clones in Mirror VNets left out).
    pub fn attachments_of<'v, 'a>(
        &'v self,
        cloud: &'a str,
        instance: &'a str,
    ) -> impl Iterator<Item = (&'v Vnet, &'v BindingMsg)> + use<'v, 'a> {
        self.vnets
            .values()
            .filter(|v| v.mirror_of.is_empty())
            .filter_map(move |v| {
                v.bindings
                    .iter()
                    .find(|b| b.cloud == cloud && b.instance == instance)
                    .map(|b| (v, b))
            })
    }
}

/// The view in the plan's terms, for one cloud.
#[derive(Debug, Clone, Default)]
pub struct Members {
    /// The VNets that could be read, with their attachments (local ones only
    /// for instances that exist here) and whether their pair is swapped.
    pub vnets: Vec<(VnetRecord, Attachments, bool)>,
    /// The agreed flow rules that could be read.
    pub policies: Vec<FlowRule>,
    /// Rules that could not be read, with the reason.
    pub bad_policies: Vec<String>,
    /// The VTEP of each cloud, as the VNets list them.
    pub peers: BTreeMap<CloudId, Ipv4Addr>,
    /// VNets whose record could not be read, by VNI, with the reason.
    pub refused: BTreeMap<u32, String>,
    /// Local bindings left out because the instance does not exist here
    /// (released, say), by VNI.
    pub missing: BTreeMap<u32, Vec<String>>,
}

impl Members {
    /// The plan's input: this broker's VNets and peers.
    pub fn input(&self, cloud: &CloudId, vtep: Ipv4Addr, underlay_mtu: u16) -> BrokerInput<'_> {
        BrokerInput {
            cloud: cloud.clone(),
            vtep,
            underlay_mtu,
            arp_proxy: false,
            peers: self.peers.clone(),
            vnets: self
                .vnets
                .iter()
                .map(|(record, attachments, swapped)| MemberVnet {
                    record,
                    attachments,
                    swapped: *swapped,
                })
                .collect(),
            policies: self.policies.clone(),
        }
    }
}

/// Reads `view` for `cloud`, whose existing instances are `local`.
pub fn members(view: &View, cloud: &CloudId, local: &BTreeSet<String>) -> Members {
    let mut members = Members::default();
    for vnet in view.vnets() {
        for vtep in &vnet.vteps {
            if let (Ok(c), Ok(address)) = (CloudId::new(&vtep.cloud), vtep.address.parse()) {
                members.peers.insert(c, address);
            }
        }
        match read_vnet(vnet, cloud, local) {
            Ok((record, attachments, missing)) => {
                if !missing.is_empty() {
                    members.missing.insert(vnet.vni, missing);
                }
                members.vnets.push((record, attachments, vnet.swapped));
            }
            Err(reason) => {
                members.refused.insert(
                    vnet.vni,
                    format!(
                        "the root's record of vnet {}/{} is not usable: {reason}",
                        vnet.tenant, vnet.name
                    ),
                );
            }
        }
    }
    for policy in view.policies().iter().filter(|p| p.agreed) {
        match read_rule(policy) {
            Ok(rule) => members.policies.push(rule),
            Err(reason) => members.bad_policies.push(reason),
        }
    }
    // Plan in VNI order: a VNet that cannot be planned with the ones before
    // it is the later one, whatever the order of names.
    members.vnets.sort_by_key(|(record, _, _)| record.vni);
    members
}

/// An agreed rule as the root sent it.
fn read_rule(policy: &FlowPolicy) -> Result<FlowRule, String> {
    let rule = policy
        .rule
        .as_ref()
        .ok_or_else(|| "a flow policy without its rule".to_owned())?;
    let bad = |e: &dyn std::fmt::Display| {
        format!(
            "flow rule {} -> {} {} {:?} is not usable: {e}",
            rule.from_domain, rule.to_domain, rule.proto, rule.port
        )
    };
    let port = match rule.port.as_str() {
        "" => None,
        port => Some(port.parse().map_err(|e| bad(&e))?),
    };
    FlowRule::new(
        Domain::new(&rule.from_domain).map_err(|e| bad(&e))?,
        Domain::new(&rule.to_domain).map_err(|e| bad(&e))?,
        rule.proto.parse().map_err(|e| bad(&e))?,
        port,
    )
    .map_err(|e| bad(&e))
}

type Read = (VnetRecord, Attachments, Vec<String>);

fn read_vnet(vnet: &Vnet, cloud: &CloudId, local: &BTreeSet<String>) -> Result<Read, String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    let name = VnetName::new(&vnet.name).map_err(|e| text(&e))?;
    let clouds = vnet
        .clouds
        .iter()
        .map(|c| CloudId::new(c))
        .collect::<Result<BTreeSet<_>, _>>()
        .map_err(|e| text(&e))?;
    let bandwidth = match vnet.bandwidth.as_str() {
        "" => None,
        b => Some(b.parse().map_err(|e| text(&e))?),
    };
    let spec = VnetSpec::new(
        name.clone(),
        TenantId::new(&vnet.tenant).map_err(|e| text(&e))?,
        vnet.cidr
            .parse()
            .map_err(|_| format!("cidr {:?} is not an IPv4 network", vnet.cidr))?,
        clouds,
        Domain::new(&vnet.domain).map_err(|e| text(&e))?,
        bandwidth,
    )
    .map_err(|e| text(&e))?;
    let vni = Vni::new(vnet.vni).map_err(|e| text(&e))?;
    let mut missing = Vec::new();
    let mut bindings = Vec::new();
    for b in &vnet.bindings {
        let binding = Binding {
            instance: InstanceId::new(&b.instance).map_err(|e| text(&e))?,
            cloud: CloudId::new(&b.cloud).map_err(|e| text(&e))?,
            ip: b
                .ip
                .parse()
                .map_err(|_| format!("binding of {}: ip {:?}", b.instance, b.ip))?,
            mac: b.mac.parse().map_err(|e| text(&e))?,
            index: u16::try_from(b.index)
                .map_err(|_| format!("binding of {}: index {}", b.instance, b.index))?,
        };
        if binding.cloud == *cloud && !local.contains(binding.instance.as_str()) {
            missing.push(b.instance.clone());
            continue;
        }
        bindings.push(binding);
    }
    let attachments = Attachments::restore(name, spec.cidr(), bindings).map_err(|e| text(&e))?;
    let mirror_of = match vnet.mirror_of.as_str() {
        "" => None,
        production => Some(MirrorOf {
            production: VnetName::new(production).map_err(|e| text(&e))?,
            strategy: vnet.mirror_strategy.parse().map_err(|e| text(&e))?,
        }),
    };
    Ok((
        VnetRecord {
            spec,
            vni,
            mirror_of,
        },
        attachments,
        missing,
    ))
}

#[cfg(test)]
mod tests {
    use intercloud_proto::v1::{Binding as BindingMsg, Vtep};

    use super::*;

    fn vnet(tenant: &str, name: &str, vni: u32, bindings: &[(&str, &str, &str, u32)]) -> Vnet {
        Vnet {
            name: name.into(),
            tenant: tenant.into(),
            cidr: "10.20.0.0/24".into(),
            clouds: vec!["cloud-a".into(), "cloud-b".into(), "cloud-c".into()],
            domain: "prod".into(),
            vni,
            bandwidth: String::new(),
            bindings: bindings
                .iter()
                .map(|(instance, cloud, ip, index)| BindingMsg {
                    vnet: name.into(),
                    tenant: tenant.into(),
                    instance: (*instance).into(),
                    cloud: (*cloud).into(),
                    ip: (*ip).into(),
                    mac: format!("02:00:00:00:00:{:02x}", index + 1),
                    index: *index,
                })
                .collect(),
            vteps: vec![
                Vtep {
                    cloud: "cloud-a".into(),
                    address: "10.231.0.1".into(),
                },
                Vtep {
                    cloud: "cloud-c".into(),
                    address: "10.231.0.3".into(),
                },
            ],
            created_at: None,
            ..Vnet::default()
        }
    }

    fn event(kind: Kind, vnet: Option<Vnet>, revision: u64) -> VnetEvent {
        VnetEvent {
            kind: kind as i32,
            vnet,
            binding: None,
            vtep: None,
            revision,
            at: None,
            policies: Vec::new(),
        }
    }

    fn names(view: &View) -> Vec<String> {
        view.vnets()
            .map(|v| format!("{}/{} {}", v.tenant, v.name, v.bindings.len()))
            .collect()
    }

    fn local(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn a_snapshot_replaces_the_view_only_once_complete() {
        let mut view = View::new();
        assert!(!view.is_complete());
        let blue = vnet("cloud-a", "blue", 4096, &[]);
        assert_eq!(
            view.apply(event(Kind::Snapshot, Some(blue.clone()), 5)),
            Applied::Unchanged
        );
        assert!(!view.is_complete());
        assert!(names(&view).is_empty());
        assert_eq!(
            view.apply(event(Kind::SnapshotEnd, None, 5)),
            Applied::Changed
        );
        assert!(view.is_complete());
        assert_eq!(names(&view), ["cloud-a/blue 0"]);
        assert_eq!(view.revision(), 5);

        // A later snapshot that breaks off changes nothing...
        let green = vnet("cloud-b", "green", 4097, &[]);
        view.apply(event(Kind::Snapshot, Some(green.clone()), 9));
        view.interrupted();
        assert_eq!(names(&view), ["cloud-a/blue 0"]);
        // ...and a complete one replaces everything, even with no VNet.
        view.apply(event(Kind::Snapshot, Some(green), 9));
        view.apply(event(Kind::SnapshotEnd, None, 9));
        assert_eq!(names(&view), ["cloud-b/green 0"]);
        view.apply(event(Kind::SnapshotEnd, None, 10));
        assert!(names(&view).is_empty());
        assert!(view.is_complete());
    }

    #[test]
    fn changes_replace_or_remove_the_vnet_they_carry() {
        let mut view = View::new();
        view.apply(event(Kind::SnapshotEnd, None, 1));
        let blue = vnet("cloud-a", "blue", 4096, &[]);
        view.apply(event(Kind::Created, Some(blue.clone()), 2));
        let attached = vnet(
            "cloud-a",
            "blue",
            4096,
            &[("web-1", "cloud-a", "10.20.0.2", 0)],
        );
        view.apply(event(Kind::BindingAdded, Some(attached), 3));
        // Same name, another tenant: another VNet.
        view.apply(event(
            Kind::Created,
            Some(vnet("cloud-b", "blue", 4097, &[])),
            4,
        ));
        assert_eq!(names(&view), ["cloud-a/blue 1", "cloud-b/blue 0"]);
        assert_eq!(
            view.by_vni(4097).map(|v| v.tenant.as_str()),
            Some("cloud-b")
        );
        assert_eq!(
            view.attached_vnet("cloud-a", "web-1").map(|v| v.vni),
            Some(4096)
        );
        assert!(view.attached_vnet("cloud-b", "web-1").is_none());
        assert_eq!(
            view.apply(event(Kind::Deleted, Some(blue), 5)),
            Applied::Changed
        );
        assert_eq!(names(&view), ["cloud-b/blue 0"]);
        assert_eq!(
            view.apply(event(Kind::Unspecified, None, 6)),
            Applied::Unchanged
        );
    }

    #[test]
    fn members_read_records_peers_and_local_instances_that_exist() {
        let mut view = View::new();
        view.apply(event(
            Kind::Snapshot,
            Some(vnet(
                "cloud-a",
                "blue",
                4096,
                &[
                    ("web-1", "cloud-a", "10.20.0.2", 0),
                    ("gone-1", "cloud-a", "10.20.0.3", 1),
                    ("db-1", "cloud-c", "10.20.0.4", 2),
                ],
            )),
            1,
        ));
        let mut broken = vnet("cloud-b", "red", 4097, &[]);
        broken.cidr = "10.20.0.0".into();
        view.apply(event(Kind::Snapshot, Some(broken), 1));
        view.apply(event(Kind::SnapshotEnd, None, 1));

        let cloud: CloudId = "cloud-a".parse().expect("valid");
        let members = members(&view, &cloud, &local(&["web-1"]));
        assert_eq!(members.vnets.len(), 1);
        let (record, attachments, _) = &members.vnets[0];
        assert_eq!(record.vni.value(), 4096);
        let kept: Vec<(String, u16)> = attachments
            .bindings()
            .map(|b| (b.instance.to_string(), b.index))
            .collect();
        assert_eq!(kept, [("db-1".to_owned(), 2), ("web-1".to_owned(), 0)]);
        assert_eq!(members.missing.get(&4096), Some(&vec!["gone-1".to_owned()]));
        assert_eq!(
            members.refused.get(&4097).map(String::as_str),
            Some(
                "the root's record of vnet cloud-b/red is not usable: cidr \"10.20.0.0\" is not an IPv4 network"
            )
        );
        let peers: Vec<String> = members
            .peers
            .iter()
            .map(|(c, a)| format!("{c}={a}"))
            .collect();
        assert_eq!(peers, ["cloud-a=10.231.0.1", "cloud-c=10.231.0.3"]);

        let input = members.input(&cloud, "10.231.0.1".parse().expect("ip"), 1500);
        let plane = intercloud_vnet::desired(&input).expect("plans");
        // Bridge, VXLAN, web-1's veth; flooding to cloud-c (cloud-b has no
        // VTEP yet), db-1's MAC.
        assert_eq!(plane.links.len(), 3);
        assert_eq!(plane.fdb.len(), 2);
        assert_eq!(plane.unreachable.len(), 1);
    }

    fn policy(from: &str, to: &str, proto: &str, port: &str, agreed: bool) -> FlowPolicy {
        FlowPolicy {
            rule: Some(intercloud_proto::v1::FlowRule {
                from_domain: from.into(),
                to_domain: to.into(),
                proto: proto.into(),
                port: port.into(),
            }),
            agreed,
            ..FlowPolicy::default()
        }
    }

    fn policies_event(policies: Vec<FlowPolicy>, revision: u64) -> VnetEvent {
        VnetEvent {
            policies,
            ..event(Kind::Policies, None, revision)
        }
    }

    #[test]
    fn the_snapshot_s_rules_count_once_it_is_complete_and_later_ones_replace_them() {
        let mut view = View::new();
        view.apply(event(
            Kind::Snapshot,
            Some(vnet("cloud-a", "blue", 4096, &[])),
            1,
        ));
        let first = vec![policy("web", "db", "tcp", "443", true)];
        assert_eq!(
            view.apply(policies_event(first.clone(), 1)),
            Applied::Unchanged
        );
        assert!(view.policies().is_empty());
        view.apply(event(Kind::SnapshotEnd, None, 1));
        assert_eq!(view.policies(), first.as_slice());

        let later = vec![
            policy("web", "db", "udp", "53", true),
            policy("web", "db", "tcp", "", false),
            policy("web", "db", "icmp", "443", true),
        ];
        assert_eq!(view.apply(policies_event(later, 2)), Applied::Changed);
        let cloud: CloudId = "cloud-a".parse().expect("valid");
        let members = members(&view, &cloud, &local(&[]));
        // Only agreed, readable rules reach the plan; the unreadable one is named.
        let rules: Vec<String> = members.policies.iter().map(ToString::to_string).collect();
        assert_eq!(rules, ["web -> db udp/53"]);
        assert_eq!(members.bad_policies.len(), 1);
        assert!(
            members.bad_policies[0].contains("icmp"),
            "{:?}",
            members.bad_policies
        );
    }

    #[test]
    fn a_mirror_is_read_with_its_production_strategy_and_swap() {
        let mut view = View::new();
        let mut mirror = vnet(
            "cloud-a",
            "blue-m",
            4097,
            &[("web-1", "cloud-a", "10.20.0.2", 0)],
        );
        mirror.mirror_of = "blue".into();
        mirror.mirror_strategy = "sample:1/10".into();
        mirror.swapped = true;
        let production = vnet(
            "cloud-a",
            "blue",
            4096,
            &[("web-1", "cloud-a", "10.20.0.2", 0)],
        );
        view.apply(event(Kind::Snapshot, Some(production), 1));
        view.apply(event(Kind::Snapshot, Some(mirror.clone()), 1));
        view.apply(event(Kind::SnapshotEnd, None, 1));
        // The clone does not make web-1 attached twice.
        assert_eq!(
            view.attached_vnet("cloud-a", "web-1")
                .map(|v| v.name.as_str()),
            Some("blue")
        );
        let cloud: CloudId = "cloud-a".parse().expect("valid");
        let read = members(&view, &cloud, &local(&["web-1"]));
        let (record, _, swapped) = &read.vnets[1];
        let of = record.mirror_of.as_ref().expect("a mirror");
        assert_eq!(of.production.as_str(), "blue");
        assert_eq!(of.strategy.to_string(), "sample:1/10");
        assert!(*swapped);

        mirror.swapped = false;
        assert_eq!(
            view.apply(event(Kind::Swapped, Some(mirror), 2)),
            Applied::Changed
        );
        let read = members(&view, &cloud, &local(&["web-1"]));
        assert!(!read.vnets[1].2);
    }
}
