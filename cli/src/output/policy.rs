//! Flow rules between security domains: one allowed or revoked, and the list.

use intercloud_proto::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;

use super::Render;
use super::table::{Table, one_line};

/// A directional rule: flows from `from_domain` to `to_domain` with this
/// protocol (and destination ports) pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlowRule {
    pub from_domain: String,
    pub to_domain: String,
    /// `tcp`, `udp`, `icmp` or `any`.
    pub proto: String,
    /// `443` or `8000-8080`; empty for every port.
    pub port: String,
}

impl From<&pb::FlowRule> for FlowRule {
    fn from(r: &pb::FlowRule) -> Self {
        Self {
            from_domain: r.from_domain.clone(),
            to_domain: r.to_domain.clone(),
            proto: r.proto.clone(),
            port: r.port.clone(),
        }
    }
}

impl FlowRule {
    /// `web -> db tcp/443`, as the vnet crate writes a rule.
    fn words(&self) -> String {
        let mut words = format!(
            "{} -> {} {}",
            one_line(&self.from_domain),
            one_line(&self.to_domain),
            one_line(&self.proto)
        );
        if !self.port.is_empty() {
            words += &format!("/{}", one_line(&self.port));
        }
        words
    }

    /// The `PORT` cell: the range, `all` for tcp and udp without one, and
    /// empty (`-`) for protocols without ports.
    fn port_cell(&self) -> String {
        match (self.port.is_empty(), self.proto.as_str()) {
            (true, "tcp" | "udp") => "all".to_owned(),
            _ => self.port.clone(),
        }
    }
}

/// A rule and how far its agreement has come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowPolicy {
    pub rule: Option<FlowRule>,
    /// Whether both owners agreed (or one owns both domains).
    pub agreed: bool,
    /// The cloud (tenant) that proposed it.
    pub proposed_by: String,
    /// The owner whose agreement is awaited; empty once agreed.
    pub awaiting: String,
}

impl From<&pb::FlowPolicy> for FlowPolicy {
    fn from(p: &pb::FlowPolicy) -> Self {
        Self {
            rule: p.rule.as_ref().map(FlowRule::from),
            agreed: p.agreed,
            proposed_by: p.proposed_by.clone(),
            awaiting: p.awaiting.clone(),
        }
    }
}

impl FlowPolicy {
    fn rule_words(&self) -> String {
        self.rule
            .as_ref()
            .map_or_else(|| "(unnamed)".to_owned(), FlowRule::words)
    }

    /// `agreed` or `awaiting cloud-c`.
    fn state(&self) -> String {
        if self.agreed {
            "agreed".to_owned()
        } else {
            format!("awaiting {}", one_line(&self.awaiting))
        }
    }
}

/// `intercloudctl policy allow`: the rule as it stands after the call.
impl Render for FlowPolicy {
    fn table(&self, _now: OffsetDateTime) -> String {
        let rule = self.rule_words();
        if self.agreed {
            return format!("rule {rule}: agreed\n");
        }
        let awaiting = one_line(&self.awaiting);
        format!(
            "rule {rule}: proposed by {}, awaiting {awaiting}\n\
             {awaiting} agrees by running the same `intercloudctl policy allow` command\n",
            one_line(&self.proposed_by)
        )
    }
}

/// `intercloudctl policy revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowRevoked {
    pub revoked: Option<FlowPolicy>,
}

impl Render for FlowRevoked {
    fn table(&self, _now: OffsetDateTime) -> String {
        match &self.revoked {
            Some(policy) => format!(
                "revoked rule {} (it was {})\n",
                policy.rule_words(),
                policy.state()
            ),
            None => "revoked\n".to_owned(),
        }
    }
}

/// `intercloudctl policy ls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowList {
    pub policies: Vec<FlowPolicy>,
}

impl From<&pb::ListFlowsResponse> for FlowList {
    fn from(response: &pb::ListFlowsResponse) -> Self {
        Self {
            policies: response.policies.iter().map(FlowPolicy::from).collect(),
        }
    }
}

impl Render for FlowList {
    fn table(&self, _now: OffsetDateTime) -> String {
        if self.policies.is_empty() {
            return "no flow rules\n".to_owned();
        }
        let mut table = Table::new(&["FROM", "TO", "PROTO", "PORT", "STATE", "PROPOSED BY"]);
        for p in &self.policies {
            let rule = p.rule.clone().unwrap_or_default();
            table.row(vec![
                rule.from_domain.clone(),
                rule.to_domain.clone(),
                rule.proto.clone(),
                rule.port_cell(),
                p.state(),
                p.proposed_by.clone(),
            ]);
        }
        table.render()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn policy(from: &str, to: &str, proto: &str, port: &str, awaiting: &str) -> pb::FlowPolicy {
        pb::FlowPolicy {
            rule: Some(pb::FlowRule {
                from_domain: from.into(),
                to_domain: to.into(),
                proto: proto.into(),
                port: port.into(),
            }),
            agreed: awaiting.is_empty(),
            proposed_by: "cloud-a".into(),
            awaiting: awaiting.into(),
        }
    }

    #[test]
    fn an_allowed_rule_says_whose_agreement_it_awaits() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        assert_eq!(
            FlowPolicy::from(&policy("web", "db", "tcp", "443", "cloud-c")).table(now),
            "rule web -> db tcp/443: proposed by cloud-a, awaiting cloud-c\n\
             cloud-c agrees by running the same `intercloudctl policy allow` command\n"
        );
        assert_eq!(
            FlowPolicy::from(&policy("web", "cache", "icmp", "", "")).table(now),
            "rule web -> cache icmp: agreed\n"
        );
        assert_eq!(
            serde_json::to_value(FlowPolicy::from(&policy(
                "web",
                "db",
                "tcp",
                "8000-8080",
                "cloud-c"
            )))
            .expect("json"),
            json!({
                "rule": {"from_domain": "web", "to_domain": "db", "proto": "tcp", "port": "8000-8080"},
                "agreed": false,
                "proposed_by": "cloud-a",
                "awaiting": "cloud-c"
            })
        );
    }

    #[test]
    fn a_revoked_rule_says_what_it_was() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        let revoked = |p| FlowRevoked {
            revoked: Some(FlowPolicy::from(&p)),
        };
        assert_eq!(
            revoked(policy("web", "db", "udp", "", "")).table(now),
            "revoked rule web -> db udp (it was agreed)\n"
        );
        assert_eq!(
            revoked(policy("web", "db", "tcp", "443", "cloud-c")).table(now),
            "revoked rule web -> db tcp/443 (it was awaiting cloud-c)\n"
        );
        assert_eq!(FlowRevoked { revoked: None }.table(now), "revoked\n");
    }

    #[test]
    fn the_list_shows_each_rule_s_state() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        let list = FlowList::from(&pb::ListFlowsResponse {
            policies: vec![
                policy("web", "db", "tcp", "443", "cloud-c"),
                policy("web", "cache", "udp", "", ""),
                policy("ops", "web", "icmp", "", ""),
            ],
        });
        assert_eq!(
            list.table(now),
            "FROM   TO      PROTO   PORT   STATE              PROPOSED BY\n\
             web    db      tcp     443    awaiting cloud-c   cloud-a\n\
             web    cache   udp     all    agreed             cloud-a\n\
             ops    web     icmp    -      agreed             cloud-a\n"
        );
        assert_eq!(
            FlowList::from(&pb::ListFlowsResponse { policies: vec![] }).table(now),
            "no flow rules\n"
        );
    }
}
