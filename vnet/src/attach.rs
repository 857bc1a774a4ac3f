//! Which instances are attached to a VNet, where, and with which address.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::ipam::{self, IpamError};
use crate::mac::MacAddr;
use crate::name::{CloudId, InstanceId, VnetName};

/// Why an attachment or a detachment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// The instance already has an attachment to this VNet.
    #[error("instance {instance} is already attached to vnet {vnet:?} (with {ip})")]
    AlreadyAttached {
        /// The instance.
        instance: InstanceId,
        /// The VNet.
        vnet: VnetName,
        /// The address it already has there.
        ip: Ipv4Addr,
    },
    /// Detaching an instance that is not attached.
    #[error("instance {instance} is not attached to vnet {vnet:?}")]
    NotAttached {
        /// The instance.
        instance: InstanceId,
        /// The VNet.
        vnet: VnetName,
    },
    /// The address cannot be given to any attachment of the VNet.
    #[error("vnet {vnet:?}: {source}")]
    Address {
        /// The VNet.
        vnet: VnetName,
        /// What is wrong with the address.
        source: IpamError,
    },
    /// Another instance of the VNet has this address.
    #[error("{ip} is already bound to instance {holder} in vnet {vnet:?}")]
    IpTaken {
        /// The refused address.
        ip: Ipv4Addr,
        /// The VNet.
        vnet: VnetName,
        /// The instance that has it.
        holder: InstanceId,
    },
    /// Another instance of the VNet has this MAC.
    #[error("MAC {mac} is already bound to instance {holder} in vnet {vnet:?}")]
    MacTaken {
        /// The refused MAC.
        mac: MacAddr,
        /// The VNet.
        vnet: VnetName,
        /// The instance that has it.
        holder: InstanceId,
    },
    /// A multicast or all-zeros MAC cannot identify one instance.
    #[error("MAC {mac} cannot be bound in vnet {vnet:?}: {reason}")]
    MacNotUsable {
        /// The refused MAC.
        mac: MacAddr,
        /// The VNet.
        vnet: VnetName,
        /// Why, in words.
        reason: &'static str,
    },
    /// Two bindings with the same interface index (only in restored state).
    #[error("index {index} is already used by instance {holder} in vnet {vnet:?}")]
    IndexTaken {
        /// The refused index.
        index: u16,
        /// The VNet.
        vnet: VnetName,
        /// The instance that has it.
        holder: InstanceId,
    },
    /// All 65536 attachment indexes are used.
    #[error("vnet {vnet:?} has 65536 attachments, the most it can have")]
    NoFreeIndex {
        /// The VNet.
        vnet: VnetName,
    },
}

/// One instance's attachment to a VNet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Binding {
    /// The attached instance.
    pub instance: InstanceId,
    /// The cloud the instance runs in; its broker's VTEP reaches it.
    pub cloud: CloudId,
    /// The instance's address in the VNet.
    pub ip: Ipv4Addr,
    /// The instance's MAC in the VNet.
    pub mac: MacAddr,
    /// A number unique within the VNet and stable for the attachment's life,
    /// so the host-side interface name (see [`crate::plan`]) does not change
    /// when other instances come and go.
    pub index: u16,
}

/// The attachments of one VNet, keyed by instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawAttachments", into = "RawAttachments")]
pub struct Attachments {
    vnet: VnetName,
    cidr: Ipv4Net,
    bindings: BTreeMap<InstanceId, Binding>,
    // Who holds each address, MAC and index: every check stays a lookup,
    // even in a VNet with tens of thousands of attachments.
    by_ip: BTreeMap<Ipv4Addr, InstanceId>,
    by_mac: BTreeMap<MacAddr, InstanceId>,
    by_index: BTreeMap<u16, InstanceId>,
}

/// The serialized form; every binding is checked again on the way in.
#[derive(Serialize, Deserialize)]
struct RawAttachments {
    vnet: VnetName,
    cidr: Ipv4Net,
    bindings: Vec<Binding>,
}

impl Attachments {
    /// No attachments yet to the VNet `vnet` with network `cidr`.
    pub fn new(vnet: VnetName, cidr: Ipv4Net) -> Self {
        Self {
            vnet,
            cidr: cidr.trunc(),
            bindings: BTreeMap::new(),
            by_ip: BTreeMap::new(),
            by_mac: BTreeMap::new(),
            by_index: BTreeMap::new(),
        }
    }

    /// Attaches `instance`, running in `cloud`, with `ip` and `mac` (usually
    /// from [`ipam::allocate`] and [`ipam::mac_for`]). The address must be
    /// assignable in the VNet, and neither it nor the MAC used by another
    /// instance of it.
    pub fn attach(
        &mut self,
        instance: InstanceId,
        cloud: CloudId,
        ip: Ipv4Addr,
        mac: MacAddr,
    ) -> Result<&Binding, AttachError> {
        let index = self.free_index()?;
        self.insert(Binding {
            instance,
            cloud,
            ip,
            mac,
            index,
        })
    }

    /// The attachments `bindings` of the VNet `vnet` with network `cidr`, as
    /// another party (the root) recorded them, indexes included: how a
    /// broker rebuilds a VNet's attachments from what it is told. Every
    /// binding is checked as [`Attachments::attach`] checks it, and its index
    /// must be free too.
    pub fn restore(
        vnet: VnetName,
        cidr: Ipv4Net,
        bindings: impl IntoIterator<Item = Binding>,
    ) -> Result<Self, AttachError> {
        let mut attachments = Attachments::new(vnet, cidr);
        for binding in bindings {
            attachments.insert(binding)?;
        }
        Ok(attachments)
    }

    /// Removes the attachment of `instance` and returns it.
    pub fn detach(&mut self, instance: &InstanceId) -> Result<Binding, AttachError> {
        let binding = self
            .bindings
            .remove(instance)
            .ok_or_else(|| AttachError::NotAttached {
                instance: instance.clone(),
                vnet: self.vnet.clone(),
            })?;
        self.by_ip.remove(&binding.ip);
        self.by_mac.remove(&binding.mac);
        self.by_index.remove(&binding.index);
        Ok(binding)
    }

    /// The attachment of `instance`, if any.
    pub fn binding(&self, instance: &InstanceId) -> Option<&Binding> {
        self.bindings.get(instance)
    }

    /// Every attachment, in instance order.
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.values()
    }

    /// The attachments of instances running in `cloud`.
    pub fn on_cloud<'a>(&'a self, cloud: &CloudId) -> impl Iterator<Item = &'a Binding> + use<'a> {
        let cloud = cloud.clone();
        self.bindings().filter(move |b| b.cloud == cloud)
    }

    /// The addresses in use, for [`ipam::allocate`].
    pub fn used_ips(&self) -> BTreeSet<Ipv4Addr> {
        self.by_ip.keys().copied().collect()
    }

    /// The VNet these attachments belong to.
    pub fn vnet(&self) -> &VnetName {
        &self.vnet
    }

    /// The VNet's network.
    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    /// How many instances are attached.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Whether no instance is attached.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// The lowest index no binding uses: the first gap in the used ones.
    fn free_index(&self) -> Result<u16, AttachError> {
        let mut candidate: u32 = 0;
        for used in self.by_index.keys() {
            if u32::from(*used) > candidate {
                break;
            }
            candidate = u32::from(*used) + 1;
        }
        u16::try_from(candidate).map_err(|_| AttachError::NoFreeIndex {
            vnet: self.vnet.clone(),
        })
    }

    /// Adds `binding` after every check; nothing changes on refusal.
    fn insert(&mut self, binding: Binding) -> Result<&Binding, AttachError> {
        let vnet = || self.vnet.clone();
        if let Some(existing) = self.bindings.get(&binding.instance) {
            return Err(AttachError::AlreadyAttached {
                instance: binding.instance,
                vnet: vnet(),
                ip: existing.ip,
            });
        }
        ipam::check_assignable(&self.cidr, binding.ip).map_err(|source| AttachError::Address {
            vnet: vnet(),
            source,
        })?;
        let unusable = if binding.mac == MacAddr::ZERO {
            Some("all zeros means \"flood\" in a VXLAN forwarding database")
        } else if binding.mac.octets()[0] & 1 == 1 {
            Some("it is a multicast address")
        } else {
            None
        };
        if let Some(reason) = unusable {
            return Err(AttachError::MacNotUsable {
                mac: binding.mac,
                vnet: vnet(),
                reason,
            });
        }
        if let Some(holder) = self.by_ip.get(&binding.ip) {
            return Err(AttachError::IpTaken {
                ip: binding.ip,
                vnet: vnet(),
                holder: holder.clone(),
            });
        }
        if let Some(holder) = self.by_mac.get(&binding.mac) {
            return Err(AttachError::MacTaken {
                mac: binding.mac,
                vnet: vnet(),
                holder: holder.clone(),
            });
        }
        if let Some(holder) = self.by_index.get(&binding.index) {
            return Err(AttachError::IndexTaken {
                index: binding.index,
                vnet: vnet(),
                holder: holder.clone(),
            });
        }
        let instance = binding.instance.clone();
        self.by_ip.insert(binding.ip, instance.clone());
        self.by_mac.insert(binding.mac, instance.clone());
        self.by_index.insert(binding.index, instance.clone());
        Ok(self.bindings.entry(instance).or_insert(binding))
    }
}

impl TryFrom<RawAttachments> for Attachments {
    type Error = AttachError;
    fn try_from(raw: RawAttachments) -> Result<Self, Self::Error> {
        Attachments::restore(raw.vnet, raw.cidr, raw.bindings)
    }
}

impl From<Attachments> for RawAttachments {
    fn from(attachments: Attachments) -> Self {
        Self {
            vnet: attachments.vnet,
            cidr: attachments.cidr,
            bindings: attachments.bindings.into_values().collect(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vni::Vni;

    pub(crate) fn instance(s: &str) -> InstanceId {
        InstanceId::new(s).expect("valid instance")
    }

    pub(crate) fn cloud(s: &str) -> CloudId {
        CloudId::new(s).expect("valid cloud")
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("valid address")
    }

    fn blue() -> Attachments {
        Attachments::new(
            VnetName::new("blue").expect("valid"),
            "10.20.0.0/24".parse().expect("valid"),
        )
    }

    fn mac(ip_text: &str) -> MacAddr {
        ipam::mac_for(Vni::new(42).expect("valid"), ip(ip_text))
    }

    #[test]
    fn attaching_records_the_binding_with_the_lowest_free_index() {
        let mut blue = blue();
        let web = blue
            .attach(
                instance("web-1"),
                cloud("cloud-a"),
                ip("10.20.0.2"),
                mac("10.20.0.2"),
            )
            .expect("attaches")
            .clone();
        assert_eq!(web.index, 0);
        assert_eq!(web.cloud, cloud("cloud-a"));
        blue.attach(
            instance("db-1"),
            cloud("cloud-b"),
            ip("10.20.0.3"),
            mac("10.20.0.3"),
        )
        .expect("attaches");
        assert_eq!(blue.binding(&instance("db-1")).map(|b| b.index), Some(1));
        assert_eq!(blue.len(), 2);
        assert_eq!(blue.used_ips(), [ip("10.20.0.2"), ip("10.20.0.3")].into());
        let on_b: Vec<&InstanceId> = blue
            .on_cloud(&cloud("cloud-b"))
            .map(|b| &b.instance)
            .collect();
        assert_eq!(on_b, vec![&instance("db-1")]);
    }

    #[test]
    fn indexes_are_stable_and_freed_ones_reused() {
        let mut blue = blue();
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            let address = format!("10.20.0.{}", i + 2);
            blue.attach(
                instance(name),
                cloud("cloud-a"),
                ip(&address),
                mac(&address),
            )
            .expect("attaches");
        }
        blue.detach(&instance("a")).expect("attached");
        // b and c keep their indexes; the next attachment takes a's.
        assert_eq!(blue.binding(&instance("c")).map(|b| b.index), Some(2));
        let d = blue
            .attach(
                instance("d"),
                cloud("cloud-a"),
                ip("10.20.0.9"),
                mac("10.20.0.9"),
            )
            .expect("attaches");
        assert_eq!(d.index, 0);
    }

    #[test]
    fn an_instance_already_attached_is_refused_naming_the_vnet() {
        let mut blue = blue();
        blue.attach(
            instance("web-1"),
            cloud("cloud-a"),
            ip("10.20.0.2"),
            mac("10.20.0.2"),
        )
        .expect("attaches");
        let error = blue
            .attach(
                instance("web-1"),
                cloud("cloud-a"),
                ip("10.20.0.3"),
                mac("10.20.0.3"),
            )
            .expect_err("twice");
        assert_eq!(
            error.to_string(),
            "instance web-1 is already attached to vnet \"blue\" (with 10.20.0.2)"
        );
        assert_eq!(blue.len(), 1);
    }

    #[test]
    fn detaching_an_instance_not_attached_is_refused() {
        let mut blue = blue();
        let error = blue.detach(&instance("ghost")).expect_err("not attached");
        assert_eq!(
            error.to_string(),
            "instance ghost is not attached to vnet \"blue\""
        );
    }

    #[test]
    fn detaching_returns_the_binding_and_frees_its_address() {
        let mut blue = blue();
        blue.attach(
            instance("web-1"),
            cloud("cloud-a"),
            ip("10.20.0.2"),
            mac("10.20.0.2"),
        )
        .expect("attaches");
        let gone = blue.detach(&instance("web-1")).expect("attached");
        assert_eq!(gone.ip, ip("10.20.0.2"));
        assert!(blue.is_empty() && blue.used_ips().is_empty());
    }

    #[test]
    fn an_address_another_instance_has_is_refused_naming_it() {
        let mut blue = blue();
        blue.attach(
            instance("web-1"),
            cloud("cloud-a"),
            ip("10.20.0.2"),
            mac("10.20.0.2"),
        )
        .expect("attaches");
        let error = blue
            .attach(
                instance("web-2"),
                cloud("cloud-b"),
                ip("10.20.0.2"),
                mac("10.20.0.3"),
            )
            .expect_err("same address");
        assert_eq!(
            error.to_string(),
            "10.20.0.2 is already bound to instance web-1 in vnet \"blue\""
        );
    }

    #[test]
    fn a_mac_another_instance_has_is_refused_naming_it() {
        let mut blue = blue();
        blue.attach(
            instance("web-1"),
            cloud("cloud-a"),
            ip("10.20.0.2"),
            mac("10.20.0.2"),
        )
        .expect("attaches");
        let error = blue
            .attach(
                instance("web-2"),
                cloud("cloud-a"),
                ip("10.20.0.3"),
                mac("10.20.0.2"),
            )
            .expect_err("same MAC");
        assert_eq!(
            error.to_string(),
            "MAC 02:00:2a:14:00:02 is already bound to instance web-1 in vnet \"blue\""
        );
    }

    #[test]
    fn unassignable_addresses_are_refused_naming_the_vnet() {
        let mut blue = blue();
        let error = blue
            .attach(
                instance("web-1"),
                cloud("cloud-a"),
                ip("10.20.0.1"),
                mac("10.20.0.1"),
            )
            .expect_err("gateway");
        assert_eq!(
            error.to_string(),
            "vnet \"blue\": 10.20.0.1 is reserved for the gateway of 10.20.0.0/24"
        );
        assert!(matches!(
            blue.attach(
                instance("web-1"),
                cloud("cloud-a"),
                ip("10.9.0.2"),
                mac("10.9.0.2")
            ),
            Err(AttachError::Address {
                source: IpamError::OutsideCidr { .. },
                ..
            })
        ));
    }

    #[test]
    fn zero_and_multicast_macs_are_refused() {
        let mut blue = blue();
        let error = blue
            .attach(
                instance("web-1"),
                cloud("cloud-a"),
                ip("10.20.0.2"),
                MacAddr::ZERO,
            )
            .expect_err("zero MAC");
        assert_eq!(
            error.to_string(),
            "MAC 00:00:00:00:00:00 cannot be bound in vnet \"blue\": all zeros means \"flood\" in a VXLAN forwarding database"
        );
        let multicast = MacAddr::new([0x01, 0, 0x5e, 0, 0, 1]);
        let error = blue
            .attach(
                instance("web-1"),
                cloud("cloud-a"),
                ip("10.20.0.2"),
                multicast,
            )
            .expect_err("multicast MAC");
        assert!(error.to_string().ends_with("it is a multicast address"));
    }

    #[test]
    fn a_vnet_with_65536_attachments_has_no_index_left() {
        let mut big = Attachments::new(
            VnetName::new("big").expect("valid"),
            "10.0.0.0/15".parse().expect("valid"),
        );
        let base = u32::from(ip("10.0.0.2"));
        for index in 0..=u16::MAX {
            let address = Ipv4Addr::from(base + u32::from(index));
            big.insert(Binding {
                instance: instance(&format!("i{index}")),
                cloud: cloud("cloud-a"),
                ip: address,
                mac: ipam::mac_for(Vni::new(9).expect("valid"), address),
                index,
            })
            .expect("fits");
        }
        let error = big
            .attach(
                instance("one-more"),
                cloud("cloud-a"),
                ip("10.1.0.200"),
                mac("10.1.0.200"),
            )
            .expect_err("no index");
        assert_eq!(
            error.to_string(),
            "vnet \"big\" has 65536 attachments, the most it can have"
        );
        big.detach(&instance("i300")).expect("attached");
        let again = big
            .attach(
                instance("one-more"),
                cloud("cloud-a"),
                ip("10.1.0.200"),
                mac("10.1.0.200"),
            )
            .expect("index 300 is free again");
        assert_eq!(again.index, 300);
    }

    #[test]
    fn attachments_round_trip_through_serde_and_are_checked_on_the_way_in() {
        let mut blue = blue();
        blue.attach(
            instance("web-1"),
            cloud("cloud-a"),
            ip("10.20.0.2"),
            mac("10.20.0.2"),
        )
        .expect("attaches");
        blue.attach(
            instance("web-2"),
            cloud("cloud-b"),
            ip("10.20.0.3"),
            mac("10.20.0.3"),
        )
        .expect("attaches");
        let text = serde_json::to_string(&blue).expect("serializes");
        assert_eq!(
            serde_json::from_str::<Attachments>(&text).expect("deserializes"),
            blue
        );

        let clash = text.replace("10.20.0.3", "10.20.0.2");
        let error = serde_json::from_str::<Attachments>(&clash).expect_err("same address");
        assert!(
            error
                .to_string()
                .contains("already bound to instance web-1")
        );
        let same_index = text.replace(r#""index":1"#, r#""index":0"#);
        let error = serde_json::from_str::<Attachments>(&same_index).expect_err("same index");
        assert!(
            error
                .to_string()
                .contains("index 0 is already used by instance web-1")
        );
    }

    #[test]
    fn restored_attachments_keep_the_recorded_indexes_and_are_checked() {
        let binding = |who: &str, at: &str, index: u16| Binding {
            instance: instance(who),
            cloud: cloud("cloud-a"),
            ip: ip(at),
            mac: mac(at),
            index,
        };
        let restored = Attachments::restore(
            "blue".parse().expect("valid"),
            "10.20.0.0/24".parse().expect("valid"),
            [
                binding("web-1", "10.20.0.2", 7),
                binding("web-2", "10.20.0.3", 3),
            ],
        )
        .expect("restores");
        assert_eq!(
            restored.binding(&instance("web-1")).map(|b| b.index),
            Some(7)
        );
        assert_eq!(
            restored.binding(&instance("web-2")).map(|b| b.index),
            Some(3)
        );
        assert_eq!(restored.len(), 2);

        let error = Attachments::restore(
            "blue".parse().expect("valid"),
            "10.20.0.0/24".parse().expect("valid"),
            [
                binding("web-1", "10.20.0.2", 7),
                binding("web-2", "10.20.0.3", 7),
            ],
        )
        .expect_err("one index twice");
        assert_eq!(
            error.to_string(),
            "index 7 is already used by instance web-1 in vnet \"blue\""
        );
        let error = Attachments::restore(
            "blue".parse().expect("valid"),
            "10.20.0.0/24".parse().expect("valid"),
            [binding("web-1", "10.30.0.2", 0)],
        )
        .expect_err("outside the network");
        assert!(error.to_string().starts_with("vnet \"blue\": "), "{error}");
    }
}
