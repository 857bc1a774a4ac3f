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
use crate::name::{InstanceId, snippet};
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

/// The network namespace of an instance: `ic-<instance>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NetnsName(String);

impl NetnsName {
    /// The namespace of `instance`.
    pub fn of(instance: &InstanceId) -> Self {
        Self(format!("{NETNS_PREFIX}{instance}"))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NetnsName {
    type Err = PlanError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix(NETNS_PREFIX)
            .and_then(|instance| InstanceId::new(instance).ok())
            .map(|instance| Self::of(&instance))
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
        name.0
    }
}

impl fmt::Debug for NetnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for NetnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
    fn namespaces_are_ic_dash_instance() {
        let web = InstanceId::new("web-1").expect("valid");
        assert_eq!(NetnsName::of(&web).as_str(), "ic-web-1");
        assert_eq!("ic-web-1".parse::<NetnsName>(), Ok(NetnsName::of(&web)));
        let error = "web-1".parse::<NetnsName>().expect_err("no prefix");
        assert_eq!(
            error.to_string(),
            "network namespace \"web-1\" is not ic-<instance name>"
        );
        assert!("ic-Web".parse::<NetnsName>().is_err());
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
