//! What a tenant asks for when it creates a VNet, checked before anything
//! is allocated.

use std::collections::BTreeSet;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::bandwidth::Bandwidth;
use crate::name::{CloudId, Domain, TenantId, VnetName};

/// The shortest prefix a VNet may have: a /8 is already 16 million addresses.
pub const MIN_PREFIX_LEN: u8 = 8;
/// The longest prefix a VNet may have: a /29 leaves 5 addresses for
/// instances once the network, gateway and broadcast addresses are set aside.
pub const MAX_PREFIX_LEN: u8 = 29;

/// Why a VNet specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The CIDR has host bits set.
    #[error("{cidr} is not a network address; the network is {network}")]
    NotNetworkAddress {
        /// The refused CIDR.
        cidr: Ipv4Net,
        /// The network the caller probably meant.
        network: Ipv4Net,
    },
    /// The prefix length is outside 8..=29.
    #[error(
        "{cidr} has prefix length {}; a VNet's prefix length must be {MIN_PREFIX_LEN} to {MAX_PREFIX_LEN}",
        cidr.prefix_len()
    )]
    PrefixLength {
        /// The refused CIDR.
        cidr: Ipv4Net,
    },
    /// A VNet must span at least one cloud.
    #[error("vnet {name:?} spans no cloud; it needs at least one")]
    NoClouds {
        /// The VNet's name.
        name: VnetName,
    },
}

/// A VNet as its tenant specifies it: an IPv4 network stretched over one or
/// more clouds, in one security domain, optionally capped in bandwidth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawVnetSpec", into = "RawVnetSpec")]
pub struct VnetSpec {
    name: VnetName,
    tenant: TenantId,
    cidr: Ipv4Net,
    clouds: BTreeSet<CloudId>,
    domain: Domain,
    bandwidth: Option<Bandwidth>,
}

/// The serialized form, checked on the way in.
#[derive(Serialize, Deserialize)]
struct RawVnetSpec {
    name: VnetName,
    tenant: TenantId,
    cidr: Ipv4Net,
    clouds: BTreeSet<CloudId>,
    domain: Domain,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bandwidth: Option<Bandwidth>,
}

impl VnetSpec {
    /// Checks the network (the network address itself, prefix length 8 to
    /// 29) and that at least one cloud is named.
    pub fn new(
        name: VnetName,
        tenant: TenantId,
        cidr: Ipv4Net,
        clouds: BTreeSet<CloudId>,
        domain: Domain,
        bandwidth: Option<Bandwidth>,
    ) -> Result<Self, SpecError> {
        if !(MIN_PREFIX_LEN..=MAX_PREFIX_LEN).contains(&cidr.prefix_len()) {
            return Err(SpecError::PrefixLength { cidr });
        }
        if cidr.addr() != cidr.network() {
            return Err(SpecError::NotNetworkAddress {
                cidr,
                network: cidr.trunc(),
            });
        }
        if clouds.is_empty() {
            return Err(SpecError::NoClouds { name });
        }
        Ok(Self {
            name,
            tenant,
            cidr,
            clouds,
            domain,
            bandwidth,
        })
    }

    /// The VNet's name, unique within its tenant.
    pub fn name(&self) -> &VnetName {
        &self.name
    }

    /// The tenant that owns the VNet.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The VNet's IPv4 network.
    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    /// The clouds the VNet is stretched over; never empty.
    pub fn clouds(&self) -> &BTreeSet<CloudId> {
        &self.clouds
    }

    /// Whether the VNet reaches `cloud`.
    pub fn spans(&self, cloud: &CloudId) -> bool {
        self.clouds.contains(cloud)
    }

    /// The security domain the VNet belongs to.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The bandwidth cap, if any.
    pub fn bandwidth(&self) -> Option<Bandwidth> {
        self.bandwidth
    }

    /// The same specification under another name (a Mirror VNet's).
    pub(crate) fn renamed(&self, name: VnetName) -> Self {
        Self {
            name,
            ..self.clone()
        }
    }
}

impl TryFrom<RawVnetSpec> for VnetSpec {
    type Error = SpecError;
    fn try_from(raw: RawVnetSpec) -> Result<Self, Self::Error> {
        Self::new(
            raw.name,
            raw.tenant,
            raw.cidr,
            raw.clouds,
            raw.domain,
            raw.bandwidth,
        )
    }
}

impl From<VnetSpec> for RawVnetSpec {
    fn from(spec: VnetSpec) -> Self {
        Self {
            name: spec.name,
            tenant: spec.tenant,
            cidr: spec.cidr,
            clouds: spec.clouds,
            domain: spec.domain,
            bandwidth: spec.bandwidth,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid spec for tests elsewhere in the crate.
    pub(crate) fn spec(tenant: &str, name: &str, cidr: &str, clouds: &[&str]) -> VnetSpec {
        try_spec(tenant, name, cidr, clouds).expect("valid spec")
    }

    fn try_spec(
        tenant: &str,
        name: &str,
        cidr: &str,
        clouds: &[&str],
    ) -> Result<VnetSpec, SpecError> {
        VnetSpec::new(
            VnetName::new(name).expect("valid name"),
            TenantId::new(tenant).expect("valid tenant"),
            cidr.parse().expect("valid CIDR syntax"),
            clouds
                .iter()
                .map(|c| CloudId::new(c).expect("valid cloud"))
                .collect(),
            Domain::new("prod").expect("valid domain"),
            None,
        )
    }

    #[test]
    fn a_valid_spec_keeps_what_it_was_given() {
        let spec = spec("acme", "blue", "10.20.0.0/24", &["cloud-a", "cloud-b"]);
        assert_eq!(spec.name().as_str(), "blue");
        assert_eq!(spec.tenant().as_str(), "acme");
        assert_eq!(spec.cidr().to_string(), "10.20.0.0/24");
        assert_eq!(spec.domain().as_str(), "prod");
        assert!(spec.spans(&CloudId::new("cloud-b").expect("valid")));
        assert!(!spec.spans(&CloudId::new("cloud-c").expect("valid")));
        assert_eq!(spec.bandwidth(), None);
    }

    #[test]
    fn the_cidr_must_be_the_network_address() {
        let error = try_spec("acme", "blue", "10.20.0.5/24", &["cloud-a"]).expect_err("host bits");
        assert_eq!(
            error.to_string(),
            "10.20.0.5/24 is not a network address; the network is 10.20.0.0/24"
        );
    }

    #[test]
    fn the_prefix_length_must_be_8_to_29() {
        assert!(try_spec("acme", "a", "10.0.0.0/8", &["cloud-a"]).is_ok());
        assert!(try_spec("acme", "a", "10.0.0.8/29", &["cloud-a"]).is_ok());
        let error = try_spec("acme", "a", "10.0.0.0/30", &["cloud-a"]).expect_err("/30");
        assert_eq!(
            error.to_string(),
            "10.0.0.0/30 has prefix length 30; a VNet's prefix length must be 8 to 29"
        );
        assert!(matches!(
            try_spec("acme", "a", "10.0.0.0/7", &["cloud-a"]),
            Err(SpecError::PrefixLength { .. })
        ));
        assert!(matches!(
            try_spec("acme", "a", "10.0.0.1/32", &["cloud-a"]),
            Err(SpecError::PrefixLength { .. })
        ));
    }

    #[test]
    fn at_least_one_cloud_is_needed() {
        let error = try_spec("acme", "blue", "10.20.0.0/24", &[]).expect_err("no cloud");
        assert_eq!(
            error.to_string(),
            "vnet \"blue\" spans no cloud; it needs at least one"
        );
    }

    #[test]
    fn specs_round_trip_through_serde_and_are_checked_on_the_way_in() {
        let mut spec = spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]);
        spec.bandwidth = Some("100mbit".parse().expect("valid"));
        let text = serde_json::to_string(&spec).expect("serializes");
        assert_eq!(
            text,
            r#"{"name":"blue","tenant":"acme","cidr":"10.20.0.0/24","clouds":["cloud-a"],"domain":"prod","bandwidth":"100mbit"}"#
        );
        assert_eq!(
            serde_json::from_str::<VnetSpec>(&text).expect("deserializes"),
            spec
        );

        let bad_cidr = text.replace("10.20.0.0/24", "10.20.0.9/24");
        let error = serde_json::from_str::<VnetSpec>(&bad_cidr).expect_err("host bits");
        assert!(error.to_string().contains("the network is 10.20.0.0/24"));
        let bad_cloud = text.replace("cloud-a", "Cloud_A");
        let error = serde_json::from_str::<VnetSpec>(&bad_cloud).expect_err("bad cloud id");
        assert!(error.to_string().contains("cloud id \"Cloud_A\""));
        let no_cloud = text.replace(r#"["cloud-a"]"#, "[]");
        assert!(serde_json::from_str::<VnetSpec>(&no_cloud).is_err());
    }
}
