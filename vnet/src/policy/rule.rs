//! Protocols, port ranges and flow rules.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::PolicyError;
use crate::name::{Domain, snippet};

/// The protocol a rule lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Proto {
    /// TCP (`tcp`).
    Tcp,
    /// UDP (`udp`).
    Udp,
    /// ICMP (`icmp`).
    Icmp,
    /// Any protocol (`any`).
    Any,
}

impl Proto {
    /// Whether the protocol has ports.
    pub fn has_ports(self) -> bool {
        matches!(self, Self::Tcp | Self::Udp)
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Icmp => "icmp",
            Self::Any => "any",
        }
    }
}

impl FromStr for Proto {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(Self::Tcp),
            "udp" => Ok(Self::Udp),
            "icmp" => Ok(Self::Icmp),
            "any" => Ok(Self::Any),
            other => Err(PolicyError::UnknownProto(snippet(other))),
        }
    }
}

impl TryFrom<String> for Proto {
    type Error = PolicyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Proto> for String {
    fn from(proto: Proto) -> Self {
        proto.as_str().to_owned()
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An inclusive range of ports 1 to 65535, written `443` or `8000-8080`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// Validates both ends (1 to 65535) and their order.
    pub fn new(first: u16, last: u16) -> Result<Self, PolicyError> {
        let written = || {
            if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            }
        };
        if first == 0 || last == 0 {
            return Err(PolicyError::BadPortRange {
                range: written(),
                reason: "port 0 is not a port",
            });
        }
        if first > last {
            return Err(PolicyError::BadPortRange {
                range: written(),
                reason: "its first port is above its last",
            });
        }
        Ok(Self { first, last })
    }

    /// The single port `port`.
    pub fn single(port: u16) -> Result<Self, PolicyError> {
        Self::new(port, port)
    }

    /// The lowest port of the range.
    pub fn first(&self) -> u16 {
        self.first
    }

    /// The highest port of the range.
    pub fn last(&self) -> u16 {
        self.last
    }

    /// Whether `port` lies within the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl FromStr for PortRange {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let port = |p: &str| -> Result<u16, PolicyError> {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PolicyError::BadPortRange {
                    range: snippet(s),
                    reason: "it is not <port> or <first>-<last> (e.g. 443 or 8000-8080)",
                });
            }
            p.parse().map_err(|_| PolicyError::BadPortRange {
                range: snippet(s),
                reason: "ports go up to 65535",
            })
        };
        match s.split_once('-') {
            Some((first, last)) => Self::new(port(first)?, port(last)?),
            None => Self::single(port(s)?),
        }
    }
}

impl TryFrom<String> for PortRange {
    type Error = PolicyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PortRange> for String {
    fn from(range: PortRange) -> Self {
        range.to_string()
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// Lets flows from domain `from` to domain `to` through, for one protocol
/// and, for TCP and UDP, optionally only to some destination ports.
/// Displayed `web -> db tcp/5432`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RawFlowRule", into = "RawFlowRule")]
pub struct FlowRule {
    from: Domain,
    to: Domain,
    proto: Proto,
    port: Option<PortRange>,
}

/// The serialized form, checked on the way in.
#[derive(Serialize, Deserialize)]
struct RawFlowRule {
    from: Domain,
    to: Domain,
    proto: Proto,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    port: Option<PortRange>,
}

impl FlowRule {
    /// Refuses a rule from a domain to itself (it would change nothing) and a
    /// port with ICMP or any protocol.
    pub fn new(
        from: Domain,
        to: Domain,
        proto: Proto,
        port: Option<PortRange>,
    ) -> Result<Self, PolicyError> {
        if from == to {
            return Err(PolicyError::SameDomain { domain: from });
        }
        if let Some(port) = port
            && !proto.has_ports()
        {
            return Err(PolicyError::PortWithoutPorts { proto, port });
        }
        Ok(Self {
            from,
            to,
            proto,
            port,
        })
    }

    /// The domain flows come from.
    pub fn from_domain(&self) -> &Domain {
        &self.from
    }

    /// The domain flows go to.
    pub fn to_domain(&self) -> &Domain {
        &self.to
    }

    /// The protocol let through.
    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// The destination ports let through; `None` is every port.
    pub fn port(&self) -> Option<PortRange> {
        self.port
    }

    /// Whether the rule lets a flow of `proto` to `port` through. A rule for
    /// any protocol matches everything; otherwise the protocols must be equal
    /// and, if the rule names ports, the flow's port must be among them.
    pub fn matches(&self, proto: Proto, port: Option<u16>) -> bool {
        if self.proto == Proto::Any {
            return true;
        }
        if self.proto != proto {
            return false;
        }
        match self.port {
            None => true,
            Some(range) => port.is_some_and(|p| range.contains(p)),
        }
    }
}

impl TryFrom<RawFlowRule> for FlowRule {
    type Error = PolicyError;
    fn try_from(raw: RawFlowRule) -> Result<Self, Self::Error> {
        Self::new(raw.from, raw.to, raw.proto, raw.port)
    }
}

impl From<FlowRule> for RawFlowRule {
    fn from(rule: FlowRule) -> Self {
        Self {
            from: rule.from,
            to: rule.to,
            proto: rule.proto,
            port: rule.port,
        }
    }
}

impl fmt::Display for FlowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {} {}", self.from, self.to, self.proto)?;
        if let Some(port) = self.port {
            write!(f, "/{port}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn domain(s: &str) -> Domain {
        Domain::new(s).expect("valid domain")
    }

    pub(crate) fn rule(from: &str, to: &str, proto: Proto, port: Option<&str>) -> FlowRule {
        FlowRule::new(
            domain(from),
            domain(to),
            proto,
            port.map(|p| p.parse().expect("valid port range")),
        )
        .expect("valid rule")
    }

    #[test]
    fn protocols_parse_and_display_by_name() {
        for (text, proto) in [
            ("tcp", Proto::Tcp),
            ("udp", Proto::Udp),
            ("icmp", Proto::Icmp),
            ("any", Proto::Any),
        ] {
            assert_eq!(text.parse::<Proto>(), Ok(proto));
            assert_eq!(proto.to_string(), text);
        }
        let error = "sctp".parse::<Proto>().expect_err("unknown");
        assert_eq!(
            error.to_string(),
            "protocol \"sctp\" is unknown; the protocols are tcp, udp, icmp and any"
        );
        assert!("TCP".parse::<Proto>().is_err());
    }

    #[test]
    fn port_ranges_parse_a_port_or_a_range() {
        let single: PortRange = "443".parse().expect("valid");
        assert_eq!((single.first(), single.last()), (443, 443));
        assert_eq!(single.to_string(), "443");
        let range: PortRange = "8000-8080".parse().expect("valid");
        assert_eq!(range.to_string(), "8000-8080");
        assert!(range.contains(8000) && range.contains(8080) && !range.contains(8081));
        assert_eq!(
            "1-65535".parse::<PortRange>().map(|r| r.contains(65535)),
            Ok(true)
        );
    }

    #[test]
    fn bad_port_ranges_are_refused_with_the_reason() {
        let refuse = |s: &str| s.parse::<PortRange>().expect_err("refused").to_string();
        assert_eq!(
            refuse("0"),
            "port range \"0\" is refused: port 0 is not a port"
        );
        assert_eq!(
            refuse("0-80"),
            "port range \"0-80\" is refused: port 0 is not a port"
        );
        assert_eq!(
            refuse("8080-8000"),
            "port range \"8080-8000\" is refused: its first port is above its last"
        );
        assert_eq!(
            refuse("65536"),
            "port range \"65536\" is refused: ports go up to 65535"
        );
        for s in ["", "http", "80-", "-80", "+80", "80 ", "1-2-3", "80,443"] {
            assert_eq!(
                refuse(s),
                format!(
                    "port range {s:?} is refused: it is not <port> or <first>-<last> (e.g. 443 or 8000-8080)"
                )
            );
        }
    }

    #[test]
    fn ports_are_for_tcp_and_udp_only() {
        let port = Some(PortRange::single(53).expect("valid"));
        assert!(FlowRule::new(domain("web"), domain("db"), Proto::Udp, port).is_ok());
        let error =
            FlowRule::new(domain("web"), domain("db"), Proto::Icmp, port).expect_err("icmp");
        assert_eq!(
            error.to_string(),
            "a port (53) makes no sense with icmp; ports are for tcp and udp only"
        );
        assert!(matches!(
            FlowRule::new(domain("web"), domain("db"), Proto::Any, port),
            Err(PolicyError::PortWithoutPorts {
                proto: Proto::Any,
                ..
            })
        ));
    }

    #[test]
    fn a_rule_from_a_domain_to_itself_is_refused() {
        let error =
            FlowRule::new(domain("web"), domain("web"), Proto::Tcp, None).expect_err("same");
        assert_eq!(
            error.to_string(),
            "a rule from domain web to itself is pointless: traffic inside a domain is always allowed"
        );
    }

    #[test]
    fn rules_match_protocol_and_port() {
        let https = rule("web", "db", Proto::Tcp, Some("443"));
        assert!(https.matches(Proto::Tcp, Some(443)));
        assert!(!https.matches(Proto::Tcp, Some(80)));
        assert!(!https.matches(Proto::Udp, Some(443)));
        assert!(!https.matches(Proto::Tcp, None), "a port rule needs a port");
        let all_tcp = rule("web", "db", Proto::Tcp, None);
        assert!(all_tcp.matches(Proto::Tcp, Some(1)) && all_tcp.matches(Proto::Tcp, None));
        assert!(!all_tcp.matches(Proto::Icmp, None));
        let anything = rule("web", "db", Proto::Any, None);
        assert!(anything.matches(Proto::Icmp, None) && anything.matches(Proto::Udp, Some(53)));
        let ping = rule("web", "db", Proto::Icmp, None);
        assert!(ping.matches(Proto::Icmp, None) && !ping.matches(Proto::Any, None));
    }

    #[test]
    fn rules_display_and_serialize_readably() {
        let https = rule("web", "db", Proto::Tcp, Some("8000-8080"));
        assert_eq!(https.to_string(), "web -> db tcp/8000-8080");
        assert_eq!(
            rule("web", "db", Proto::Icmp, None).to_string(),
            "web -> db icmp"
        );
        let text = serde_json::to_string(&https).expect("serializes");
        assert_eq!(
            text,
            r#"{"from":"web","to":"db","proto":"tcp","port":"8000-8080"}"#
        );
        assert_eq!(
            serde_json::from_str::<FlowRule>(&text).expect("deserializes"),
            https
        );
        let icmp_port = text.replace("tcp", "icmp");
        assert!(serde_json::from_str::<FlowRule>(&icmp_port).is_err());
    }
}
