//! Names of the interfaces and namespaces the data plane uses.
//!
//! `icx<vni>` is a VNet's VXLAN device, `icb<vni>` its bridge, and
//! `icv<vni><index>` the host side of an attachment's veth pair, with the VNI
//! as six hex digits and the attachment index as four: at most 13 characters,
//! within Linux's 15 (IFNAMSIZ less the NUL).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::PlanError;
use crate::name::{CloudId, InstanceId, snippet};
use crate::vni::Vni;

/// Prefix of a VNet's VXLAN device.
pub const VXLAN_PREFIX: &str = "icx";
/// Prefix of a VNet's bridge.
pub const BRIDGE_PREFIX: &str = "icb";
/// Prefix of the host side of an attachment's veth pair.
pub const VETH_PREFIX: &str = "icv";
/// The name of the instance's side of its veth pair, inside its namespace.
pub const INSTANCE_SIDE: &str = "eth0";
/// Prefix of an instance's network namespace.
pub const NETNS_PREFIX: &str = "ic-";
/// Between the cloud and the instance in a namespace's name.
pub const NETNS_SEPARATOR: char = '.';
/// Suffix of the namespace of an instance's clone in a Mirror VNet.
pub const MIRROR_SUFFIX: &str = ".mirror";
/// Prefix of the instance side of a veth pair while it is still in the
/// underlay namespace, before it is moved into the instance's namespace
/// and renamed [`INSTANCE_SIDE`].
pub const STAGING_PREFIX: &str = "icp";

/// The longest interface name Linux takes (IFNAMSIZ is 16 with the NUL).
pub const MAX_IFNAME_LEN: usize = 15;

/// A Linux network interface name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IfName(String);

impl IfName {
    /// Validates `s` as the kernel does: 1 to 15 bytes, not `.` or `..`, no
    /// '/', ':' or whitespace.
    pub fn new(s: &str) -> Result<Self, PlanError> {
        let refuse = |reason| {
            Err(PlanError::BadInterfaceName {
                name: snippet(s),
                reason,
            })
        };
        if s.is_empty() {
            return refuse("it is empty");
        }
        if s.len() > MAX_IFNAME_LEN {
            return refuse("it is longer than 15 bytes");
        }
        if s == "." || s == ".." {
            return refuse("'.' and '..' are not interface names");
        }
        if s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
            return refuse("it contains '/', ':' or whitespace");
        }
        Ok(Self(s.to_owned()))
    }

    /// The VXLAN device of the VNet `vni`: `icx` and six hex digits.
    pub fn vxlan(vni: Vni) -> Self {
        Self(format!("{VXLAN_PREFIX}{}", vni.hex()))
    }

    /// The bridge of the VNet `vni`: `icb` and six hex digits.
    pub fn bridge(vni: Vni) -> Self {
        Self(format!("{BRIDGE_PREFIX}{}", vni.hex()))
    }

    /// The host side of attachment `index` of the VNet `vni`: `icv`, six and
    /// four hex digits.
    pub fn veth(vni: Vni, index: u16) -> Self {
        Self(format!("{VETH_PREFIX}{}{index:04x}", vni.hex()))
    }

    /// The instance side of every veth pair, inside the instance's namespace.
    pub fn instance_side() -> Self {
        Self(INSTANCE_SIDE.to_owned())
    }

    /// The instance side of the veth `host` (`icv…`) while it is made:
    /// `icp` and the same digits. It lives in the underlay namespace only
    /// between the pair's creation and its move; deleting `host` deletes
    /// it too, so a crash in between leaves nothing that a reconciliation
    /// would not remove. `None` for a name that is not a veth's.
    pub fn staging_peer(host: &IfName) -> Option<Self> {
        host.0
            .strip_prefix(VETH_PREFIX)
            .map(|digits| Self(format!("{STAGING_PREFIX}{digits}")))
    }

    /// The VNI an interface of ours is for, read from its name (`icx`,
    /// `icb` or `icv` and six hex digits); `None` for any other name.
    pub fn vni(&self) -> Option<Vni> {
        let digits = [VXLAN_PREFIX, BRIDGE_PREFIX, VETH_PREFIX]
            .iter()
            .find_map(|prefix| self.0.strip_prefix(prefix))?;
        let hex = digits.get(..6)?;
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        u32::from_str_radix(hex, 16)
            .ok()
            .and_then(|v| Vni::new(v).ok())
    }

    /// Whether the name carries one of this crate's prefixes. Interfaces
    /// without one are never touched.
    pub fn is_ours(&self) -> bool {
        [VXLAN_PREFIX, BRIDGE_PREFIX, VETH_PREFIX]
            .iter()
            .any(|prefix| self.0.starts_with(prefix))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IfName {
    type Err = PlanError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for IfName {
    type Error = PlanError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<IfName> for String {
    fn from(name: IfName) -> Self {
        name.0
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The network namespace of an instance of a cloud:
/// `ic-<cloud>.<instance>`, e.g. `ic-cloud-a.web-1`.
///
/// The cloud is part of the name so that two clouds' brokers on one host
/// (a lab, a test) never claim each other's instances' namespaces, and a
/// broker can tell its own from the rest. The separator is a '.', which
/// neither a cloud id nor an instance name may contain, so a name reads back
/// one way only (`ic-cloud-a-web-1` could be cloud `cloud` with instance
/// `a-web-1`). The clone of an instance in a Mirror VNet has a namespace
/// of its own, `ic-<cloud>.<instance>.mirror` (the same address and MAC as
/// the instance, on the mirror's VNI). At most 137 bytes (3 + 63 + 1 + 63 +
/// 7), well within a file name's 255: no truncation or hashing is needed.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NetnsName {
    cloud: CloudId,
    instance: InstanceId,
    mirror: bool,
}

impl NetnsName {
    /// The namespace of `instance`, running in `cloud`.
    pub fn of(cloud: &CloudId, instance: &InstanceId) -> Self {
        Self {
            cloud: cloud.clone(),
            instance: instance.clone(),
            mirror: false,
        }
    }

    /// The namespace of `instance`'s clone in a Mirror VNet.
    pub fn clone_of(cloud: &CloudId, instance: &InstanceId) -> Self {
        Self {
            mirror: true,
            ..Self::of(cloud, instance)
        }
    }

    /// Whether this is the namespace of a clone in a Mirror VNet.
    pub fn is_clone(&self) -> bool {
        self.mirror
    }

    /// What the names of `cloud`'s instances' namespaces start with
    /// (`ic-cloud-a.`).
    pub fn prefix(cloud: &CloudId) -> String {
        format!("{NETNS_PREFIX}{cloud}{NETNS_SEPARATOR}")
    }

    /// The cloud the instance runs in.
    pub fn cloud(&self) -> &CloudId {
        &self.cloud
    }

    /// The instance.
    pub fn instance(&self) -> &InstanceId {
        &self.instance
    }
}

impl FromStr for NetnsName {
    type Err = PlanError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix(NETNS_PREFIX)
            .and_then(|rest| rest.split_once(NETNS_SEPARATOR))
            .and_then(|(cloud, rest)| {
                let (instance, mirror) = match rest.strip_suffix(MIRROR_SUFFIX) {
                    Some(instance) => (instance, true),
                    None => (rest, false),
                };
                Some(Self {
                    cloud: CloudId::new(cloud).ok()?,
                    instance: InstanceId::new(instance).ok()?,
                    mirror,
                })
            })
            .ok_or_else(|| PlanError::BadNetnsName(snippet(s)))
    }
}

impl TryFrom<String> for NetnsName {
    type Error = PlanError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<NetnsName> for String {
    fn from(name: NetnsName) -> Self {
        name.to_string()
    }
}

impl fmt::Debug for NetnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

impl fmt::Display for NetnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{NETNS_PREFIX}{}{NETNS_SEPARATOR}{}{}",
            self.cloud,
            self.instance,
            if self.mirror { MIRROR_SUFFIX } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vni(value: u32) -> Vni {
        Vni::new(value).expect("valid")
    }

    #[test]
    fn our_names_carry_the_vni_in_six_hex_digits() {
        assert_eq!(IfName::vxlan(vni(42)).as_str(), "icx00002a");
        assert_eq!(IfName::bridge(vni(42)).as_str(), "icb00002a");
        assert_eq!(IfName::veth(vni(42), 7).as_str(), "icv00002a0007");
    }

    #[test]
    fn the_longest_of_our_names_fits_in_ifnamsiz() {
        let longest = IfName::veth(Vni::MAX, u16::MAX);
        assert_eq!(longest.as_str(), "icvfffffeffff");
        assert!(longest.as_str().len() <= MAX_IFNAME_LEN);
        assert!(IfName::new(longest.as_str()).is_ok());
    }

    #[test]
    fn only_our_prefixes_are_ours() {
        assert!(IfName::vxlan(vni(1)).is_ours());
        assert!(IfName::bridge(vni(1)).is_ours());
        assert!(IfName::veth(vni(1), 0).is_ours());
        for other in ["eth0", "lo", "docker0", "vxlan100", "ic-web", "ICX00002a"] {
            assert!(!IfName::new(other).expect("valid").is_ours(), "{other}");
        }
    }

    #[test]
    fn interface_names_follow_the_kernel_rules() {
        let refuse = |s: &str| IfName::new(s).expect_err("refused").to_string();
        assert_eq!(refuse(""), "interface name \"\" is refused: it is empty");
        assert_eq!(
            refuse("a-very-long-name"),
            "interface name \"a-very-long-name\" is refused: it is longer than 15 bytes"
        );
        assert!(refuse("..").ends_with("'.' and '..' are not interface names"));
        for s in ["a/b", "eth0:1", "eth 0", "eth\t0"] {
            assert!(
                refuse(s).ends_with("it contains '/', ':' or whitespace"),
                "{s:?}"
            );
        }
        assert!(IfName::new("eth0.100").is_ok());
    }

    #[test]
    fn namespaces_name_the_cloud_and_the_instance() {
        let web = InstanceId::new("web-1").expect("valid");
        let a = CloudId::new("cloud-a").expect("valid");
        let name = NetnsName::of(&a, &web);
        assert_eq!(name.to_string(), "ic-cloud-a.web-1");
        assert_eq!("ic-cloud-a.web-1".parse::<NetnsName>(), Ok(name.clone()));
        assert_eq!(name.cloud(), &a);
        assert_eq!(name.instance(), &web);
        assert!(name.to_string().starts_with(&NetnsName::prefix(&a)));
        assert_eq!(
            serde_json::to_string(&name).expect("serializes"),
            "\"ic-cloud-a.web-1\""
        );
        for bad in [
            "web-1",
            "ic-web-1",
            "ic-cloud-a.Web",
            "ic-.web-1",
            "ic-cloud-a.",
            "ic-root.x",
        ] {
            let error = bad.parse::<NetnsName>().expect_err(bad);
            assert_eq!(
                error.to_string(),
                format!("network namespace {bad:?} is not ic-<cloud>.<instance>")
            );
        }
    }

    #[test]
    fn a_clone_s_namespace_reads_back_as_a_clone() {
        let web = InstanceId::new("web-1").expect("valid");
        let a = CloudId::new("cloud-a").expect("valid");
        let clone = NetnsName::clone_of(&a, &web);
        assert_eq!(clone.to_string(), "ic-cloud-a.web-1.mirror");
        assert_eq!(
            "ic-cloud-a.web-1.mirror".parse::<NetnsName>(),
            Ok(clone.clone())
        );
        assert!(clone.is_clone());
        assert!(!NetnsName::of(&a, &web).is_clone());
        assert_ne!(clone, NetnsName::of(&a, &web));
        assert_eq!(clone.instance(), &web);
        assert!(clone.to_string().starts_with(&NetnsName::prefix(&a)));
        assert!("ic-cloud-a.web-1.other".parse::<NetnsName>().is_err());
    }

    #[test]
    fn two_clouds_on_one_host_never_share_a_namespace_name() {
        // With '-' between them these two would both be ic-cloud-a-web-1.
        let one = NetnsName::of(
            &CloudId::new("cloud-a").expect("valid"),
            &InstanceId::new("web-1").expect("valid"),
        );
        let other = NetnsName::of(
            &CloudId::new("cloud").expect("valid"),
            &InstanceId::new("a-web-1").expect("valid"),
        );
        assert_ne!(one.to_string(), other.to_string());
        assert_eq!(other.to_string(), "ic-cloud.a-web-1");
        // The longest possible name is a valid file name.
        let longest = NetnsName::of(
            &CloudId::new(&"c".repeat(63)).expect("valid"),
            &InstanceId::new(&"i".repeat(63)).expect("valid"),
        );
        assert_eq!(longest.to_string().len(), 130);
    }

    #[test]
    fn our_names_give_their_vni_back() {
        assert_eq!(IfName::vxlan(vni(42)).vni(), Some(vni(42)));
        assert_eq!(IfName::bridge(Vni::MAX).vni(), Some(Vni::MAX));
        assert_eq!(IfName::veth(vni(4096), 9).vni(), Some(vni(4096)));
        for other in [
            "eth0",
            "icx",
            "icx00002",
            "icx00002g",
            "icxffffff",
            "icx000000",
            "icp00002a0000",
        ] {
            assert_eq!(IfName::new(other).expect("valid").vni(), None, "{other}");
        }
    }

    #[test]
    fn a_veth_is_staged_under_icp_with_the_same_digits() {
        let host = IfName::veth(vni(42), 7);
        let staged = IfName::staging_peer(&host).expect("a veth");
        assert_eq!(staged.as_str(), "icp00002a0007");
        assert!(!staged.is_ours());
        assert_eq!(IfName::staging_peer(&IfName::vxlan(vni(42))), None);
    }

    #[test]
    fn names_serialize_as_text() {
        let name = IfName::vxlan(vni(42));
        assert_eq!(
            serde_json::to_string(&name).expect("serializes"),
            "\"icx00002a\""
        );
        assert!(serde_json::from_str::<IfName>("\"way-too-long-name\"").is_err());
    }
}
