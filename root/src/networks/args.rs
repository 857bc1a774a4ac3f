//! Request fields, parsed into the VNet crate's checked types. Every error
//! names the field.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use intercloud_vnet::{Bandwidth, CloudId, Domain, InstanceId, TenantId, VnetName};
use ipnet::Ipv4Net;

use super::error::NetworkError;

/// The security domain of a VNet created without one.
pub const DEFAULT_DOMAIN: &str = "default";

/// Most member clouds one VNet may name: each member floods broadcast
/// traffic to every other one, so a VNet over hundreds of clouds is a
/// mistake, not a design.
pub const MAX_CLOUDS: usize = 64;

fn invalid(field: &'static str, reason: impl std::fmt::Display) -> NetworkError {
    NetworkError::Invalid {
        field,
        reason: reason.to_string(),
    }
}

/// A VNet name.
pub fn vnet_name(field: &'static str, text: &str) -> Result<VnetName, NetworkError> {
    VnetName::new(text.trim()).map_err(|e| invalid(field, e))
}

/// An IPv4 network such as `10.20.0.0/24` (its other rules are checked by
/// [`intercloud_vnet::VnetSpec::new`]).
pub fn cidr(text: &str) -> Result<Ipv4Net, NetworkError> {
    text.trim().parse().map_err(|_| {
        invalid(
            "cidr",
            format!(
                "{:?} is not an IPv4 network written address/prefix (e.g. 10.20.0.0/24)",
                snippet(text)
            ),
        )
    })
}

/// Member clouds; duplicates count once.
pub fn clouds(texts: &[String]) -> Result<BTreeSet<CloudId>, NetworkError> {
    if texts.len() > MAX_CLOUDS {
        return Err(invalid(
            "clouds",
            format!(
                "{} clouds named; a VNet may span at most {MAX_CLOUDS}",
                texts.len()
            ),
        ));
    }
    texts
        .iter()
        .map(|t| CloudId::new(t.trim()).map_err(|e| invalid("clouds", e)))
        .collect()
}

/// A security domain; empty means [`DEFAULT_DOMAIN`].
pub fn domain(text: &str) -> Result<Domain, NetworkError> {
    let text = text.trim();
    let text = if text.is_empty() {
        DEFAULT_DOMAIN
    } else {
        text
    };
    Domain::new(text).map_err(|e| invalid("domain", e))
}

/// An optional rate cap; empty means none.
pub fn bandwidth(text: &str) -> Result<Option<Bandwidth>, NetworkError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| invalid("bandwidth", e))
}

/// An instance name.
pub fn instance(text: &str) -> Result<InstanceId, NetworkError> {
    InstanceId::new(text.trim()).map_err(|e| invalid("instance", e))
}

/// An optional IPv4 address; empty means none.
pub fn optional_ip(field: &'static str, text: &str) -> Result<Option<Ipv4Addr>, NetworkError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    ip(field, text).map(Some)
}

/// An IPv4 address, dotted quad.
pub fn ip(field: &'static str, text: &str) -> Result<Ipv4Addr, NetworkError> {
    text.trim().parse().map_err(|_| {
        invalid(
            field,
            format!(
                "{:?} is not an IPv4 address (e.g. 192.0.2.10)",
                snippet(text)
            ),
        )
    })
}

/// The tenant a request names; empty means the caller's own cloud.
pub fn tenant(text: &str, caller: Option<&CloudId>) -> Result<TenantId, NetworkError> {
    let text = text.trim();
    match (text.is_empty(), caller) {
        (false, _) => TenantId::new(text).map_err(|e| invalid("tenant", e)),
        (true, Some(cloud)) => tenant_of(cloud),
        (true, None) => Err(invalid(
            "tenant",
            "is required: the caller speaks for no cloud",
        )),
    }
}

/// The tenant a cloud creates its VNets as: the cloud's own id.
pub fn tenant_of(cloud: &CloudId) -> Result<TenantId, NetworkError> {
    TenantId::new(cloud.as_str()).map_err(|e| {
        invalid(
            "tenant",
            format!("cloud {cloud} cannot own VNets: its id is not a valid tenant id ({e})"),
        )
    })
}

/// Refused text quoted in a message, cut short.
fn snippet(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_and_errors_name_the_field() {
        assert_eq!(
            cidr("10.1.0.0/16").map(|c| c.to_string()),
            Ok("10.1.0.0/16".into())
        );
        let bad = cidr("10.1.0.0").expect_err("no prefix").to_string();
        assert!(
            bad.starts_with("cidr: \"10.1.0.0\" is not an IPv4 network"),
            "{bad}"
        );
        let bad = vnet_name("name", "Blue")
            .expect_err("uppercase")
            .to_string();
        assert!(bad.starts_with("name: vnet name \"Blue\""), "{bad}");
        let bad = clouds(&["cloud-a".into(), "Cloud_B".into()])
            .expect_err("bad cloud")
            .to_string();
        assert!(bad.starts_with("clouds: cloud id \"Cloud_B\""), "{bad}");
        let many: Vec<String> = (0..=MAX_CLOUDS).map(|i| format!("c{i}")).collect();
        assert!(clouds(&many).is_err());
        assert_eq!(
            clouds(&["cloud-b".into(), "cloud-a".into(), "cloud-b".into()])
                .expect("clouds")
                .len(),
            2
        );
        assert_eq!(domain("").expect("default").as_str(), DEFAULT_DOMAIN);
        assert_eq!(bandwidth(""), Ok(None));
        assert!(
            bandwidth("10mbps")
                .expect_err("unit")
                .to_string()
                .starts_with("bandwidth: ")
        );
        assert_eq!(optional_ip("ip", " "), Ok(None));
        let bad = optional_ip("ip", "10.0.0.300")
            .expect_err("octet")
            .to_string();
        assert_eq!(
            bad,
            "ip: \"10.0.0.300\" is not an IPv4 address (e.g. 192.0.2.10)"
        );
        assert!(instance("web 1").is_err());
    }

    #[test]
    fn the_tenant_defaults_to_the_callers_cloud() {
        let cloud = CloudId::new("cloud-a").expect("cloud");
        assert_eq!(tenant("", Some(&cloud)).expect("own").as_str(), "cloud-a");
        assert_eq!(
            tenant("cloud-b", Some(&cloud)).expect("named").as_str(),
            "cloud-b"
        );
        assert!(tenant("", None).is_err());
        let digit = CloudId::new("9c").expect("cloud ids may start with a digit");
        let refused = tenant_of(&digit).expect_err("tenant ids may not");
        assert!(
            refused.to_string().contains("cloud 9c cannot own VNets"),
            "{refused}"
        );
    }
}
