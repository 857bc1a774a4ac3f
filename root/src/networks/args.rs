//! Request fields, parsed into the VNet crate's checked types. Every error
//! names the field.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use intercloud_proto::v1::FlowRule as FlowRuleMsg;
use intercloud_vnet::{
    Bandwidth, CloudId, Domain, FlowRule, InstanceId, MirrorStrategy, PortRange, Proto, TenantId,
    VnetName,
};
use ipnet::Ipv4Net;

use super::error::NetworkError;

/// What a mirror created without a strategy receives: everything.
pub const DEFAULT_MIRROR_STRATEGY: MirrorStrategy = MirrorStrategy::Full;

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

/// A security domain; empty means the tenant's own, named after it (a
/// domain belongs to one tenant, so a federation-wide "default" would be
/// the first tenant's and refused to every other).
pub fn domain(text: &str, tenant: &TenantId) -> Result<Domain, NetworkError> {
    let text = text.trim();
    let text = if text.is_empty() {
        tenant.as_str()
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

/// A flow rule: two domains (both required), a protocol (tcp, udp, icmp or
/// any) and, for tcp and udp, an optional port or port range.
pub fn flow_rule(message: Option<&FlowRuleMsg>) -> Result<FlowRule, NetworkError> {
    let message = message.ok_or_else(|| invalid("rule", "is required"))?;
    let domain = |field: &'static str, text: &str| {
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid(field, "is required"));
        }
        Domain::new(text).map_err(|e| invalid(field, e))
    };
    let from = domain("rule.from_domain", &message.from_domain)?;
    let to = domain("rule.to_domain", &message.to_domain)?;
    let proto: Proto = message
        .proto
        .trim()
        .parse()
        .map_err(|e| invalid("rule.proto", e))?;
    let port = match message.port.trim() {
        "" => None,
        text => Some(
            text.parse::<PortRange>()
                .map_err(|e| invalid("rule.port", e))?,
        ),
    };
    FlowRule::new(from, to, proto, port).map_err(|e| invalid("rule", e))
}

/// What a mirror receives; empty means [`DEFAULT_MIRROR_STRATEGY`].
/// `headers` is refused: the brokers copy with nftables `dup`, which copies
/// whole packets and cannot cut them after their headers.
pub fn mirror_strategy(text: &str) -> Result<MirrorStrategy, NetworkError> {
    let strategy = match text.trim() {
        "" => DEFAULT_MIRROR_STRATEGY,
        text => text.parse().map_err(|e| invalid("strategy", e))?,
    };
    if strategy == MirrorStrategy::Headers {
        return Err(invalid(
            "strategy",
            "headers is not available: the brokers' data plane copies whole packets (nftables dup) and cannot cut them after their headers; use full, stats or sample:<rate>",
        ));
    }
    Ok(strategy)
}

/// A mirror's name; empty means `<production>-mirror`.
pub fn mirror_name(text: &str, production: &VnetName) -> Result<VnetName, NetworkError> {
    if !text.trim().is_empty() {
        return vnet_name("name", text);
    }
    VnetName::new(&format!("{production}-mirror")).map_err(|e| {
        invalid(
            "name",
            format!("the default mirror name does not fit ({e}); name the mirror"),
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
        let tenant = TenantId::new("cloud-a").expect("valid");
        assert_eq!(domain("", &tenant).expect("default").as_str(), "cloud-a");
        assert_eq!(domain(" web ", &tenant).expect("named").as_str(), "web");
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

    fn rule(from: &str, to: &str, proto: &str, port: &str) -> Result<FlowRule, String> {
        flow_rule(Some(&FlowRuleMsg {
            from_domain: from.into(),
            to_domain: to.into(),
            proto: proto.into(),
            port: port.into(),
        }))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn flow_rules_parse_and_refusals_carry_the_vnet_crates_reason() {
        assert_eq!(
            rule("web", "db", "tcp", "5432").map(|r| r.to_string()),
            Ok("web -> db tcp/5432".into())
        );
        assert_eq!(
            rule(" web ", "db", "tcp", "8000-8080").map(|r| r.to_string()),
            Ok("web -> db tcp/8000-8080".into())
        );
        assert_eq!(
            rule("web", "db", "any", "").map(|r| r.to_string()),
            Ok("web -> db any".into())
        );
        for (from, to, proto, port, error) in [
            (
                "web",
                "db",
                "sctp",
                "",
                "rule.proto: protocol \"sctp\" is unknown; the protocols are tcp, udp, icmp and any",
            ),
            (
                "web",
                "db",
                "icmp",
                "443",
                "rule: a port (443) makes no sense with icmp; ports are for tcp and udp only",
            ),
            (
                "web",
                "db",
                "tcp",
                "0",
                "rule.port: port range \"0\" is refused: port 0 is not a port",
            ),
            (
                "web",
                "db",
                "tcp",
                "70000",
                "rule.port: port range \"70000\" is refused: ports go up to 65535",
            ),
            (
                "web",
                "db",
                "tcp",
                "443-80",
                "rule.port: port range \"443-80\" is refused: its first port is above its last",
            ),
            (
                "web",
                "web",
                "tcp",
                "",
                "rule: a rule from domain web to itself is pointless: traffic inside a domain is always allowed",
            ),
            ("", "db", "tcp", "", "rule.from_domain: is required"),
        ] {
            assert_eq!(rule(from, to, proto, port), Err(error.to_owned()));
        }
        assert_eq!(
            flow_rule(None).map_err(|e| e.to_string()),
            Err("rule: is required".into())
        );
    }

    #[test]
    fn mirror_strategies_and_names_have_defaults() {
        assert_eq!(mirror_strategy(""), Ok(MirrorStrategy::Full));
        assert_eq!(
            mirror_strategy("sample:0.1"),
            Ok(MirrorStrategy::Sample { every: 10 })
        );
        let headers = mirror_strategy("headers")
            .expect_err("not available")
            .to_string();
        assert!(headers.contains("headers is not available"), "{headers}");
        let bad = mirror_strategy("most").expect_err("unknown").to_string();
        assert!(
            bad.starts_with("strategy: mirror strategy \"most\" is unknown"),
            "{bad}"
        );
        let blue = VnetName::new("blue").expect("name");
        assert_eq!(
            mirror_name("", &blue).map(|n| n.to_string()),
            Ok("blue-mirror".into())
        );
        assert_eq!(
            mirror_name("shadow", &blue).map(|n| n.to_string()),
            Ok("shadow".into())
        );
        let long = VnetName::new(&"a".repeat(30)).expect("name");
        let bad = mirror_name("", &long).expect_err("too long").to_string();
        assert!(bad.ends_with("; name the mirror"), "{bad}");
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
