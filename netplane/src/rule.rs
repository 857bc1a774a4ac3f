//! IPv4 policy routing rules matched on the input interface (`ip rule`).

use std::ops::RangeInclusive;

use futures::TryStreamExt;
use rtnetlink::IpVersion;
use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
use rtnetlink::packet_route::route::RouteHeader;
use rtnetlink::packet_route::rule::{RuleAction as NlRuleAction, RuleAttribute, RuleMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::types::{check_ifname, check_table};
use crate::{Error, Netplane, Removed, RuleAction, RuleSpec};

const ENOENT: i32 = nix::errno::Errno::ENOENT as i32;

impl RuleSpec {
    /// The rule in words, for errors and logs.
    fn describe(&self) -> String {
        match self.action {
            RuleAction::Lookup(table) => {
                format!("rule {} iif {} lookup {table}", self.priority, self.iif)
            }
            RuleAction::Prohibit => format!("rule {} iif {} prohibit", self.priority, self.iif),
        }
    }
}

impl Netplane {
    /// `ip rule add priority P iif IIF lookup T` (or `prohibit`). The same
    /// rule twice is an error (EEXIST); two rules may share a priority.
    pub async fn rule_add(&self, rule: &RuleSpec) -> Result<(), Error> {
        let action = format!("adding {}", rule.describe());
        check_rule(rule)?;
        tracing::debug!(netns = ?self.namespace, "{action}");
        // The same message as for deleting it, so that what is added is
        // exactly what a delete (and the listing) describes.
        self.acked(
            &action,
            RouteNetlinkMessage::NewRule(rule_message(rule)),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .await
    }

    /// `ip rule del priority P iif IIF lookup T` (or `prohibit`). An absent
    /// rule is [`Removed::WasAbsent`].
    pub async fn rule_delete(&self, rule: &RuleSpec) -> Result<Removed, Error> {
        let action = format!("deleting {}", rule.describe());
        check_rule(rule)?;
        tracing::debug!(netns = ?self.namespace, "{action}");
        match self.handle.rule().del(rule_message(rule)).execute().await {
            Ok(()) => Ok(Removed::Deleted),
            Err(e) => match self.err(action, e) {
                Error::Kernel { errno, .. } if errno == ENOENT => Ok(Removed::WasAbsent),
                other => Err(other),
            },
        }
    }

    /// The IPv4 rules whose priority is in `priorities` and that match on
    /// an input interface, sorted by priority. Rules with another action
    /// than a table lookup or prohibit are left out; other selectors a
    /// rule may have (from, to, fwmark) are not reported.
    pub async fn rules(&self, priorities: RangeInclusive<u32>) -> Result<Vec<RuleSpec>, Error> {
        let action = format!(
            "listing the rules of priority {}..={}",
            priorities.start(),
            priorities.end()
        );
        let messages: Vec<RuleMessage> = self
            .handle
            .rule()
            .get(IpVersion::V4)
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.err(action, e))?;
        let mut rules: Vec<RuleSpec> = messages
            .iter()
            .filter_map(to_rule_spec)
            .filter(|r| priorities.contains(&r.priority))
            .collect();
        rules.sort_by(|a, b| (a.priority, &a.iif).cmp(&(b.priority, &b.iif)));
        Ok(rules)
    }
}

fn check_rule(rule: &RuleSpec) -> Result<(), Error> {
    check_ifname(&rule.iif)?;
    if let RuleAction::Lookup(table) = rule.action {
        check_table(table)?;
    }
    Ok(())
}

/// The RTM_NEWRULE / RTM_DELRULE body of `rule`.
fn rule_message(rule: &RuleSpec) -> RuleMessage {
    let mut msg = RuleMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.attributes.push(RuleAttribute::Priority(rule.priority));
    msg.attributes
        .push(RuleAttribute::Iifname(rule.iif.clone()));
    match rule.action {
        RuleAction::Lookup(table) => {
            msg.header.action = NlRuleAction::ToTable;
            match u8::try_from(table) {
                Ok(small) => msg.header.table = small,
                Err(_) => {
                    msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
                    msg.attributes.push(RuleAttribute::Table(table));
                }
            }
        }
        RuleAction::Prohibit => {
            msg.header.action = NlRuleAction::Prohibit;
            msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
        }
    }
    msg
}

/// A dumped rule as a [`RuleSpec`], when it is an IPv4 rule on an input
/// interface that looks a table up or prohibits.
fn to_rule_spec(msg: &RuleMessage) -> Option<RuleSpec> {
    if msg.header.family != AddressFamily::Inet {
        return None;
    }
    let mut priority = 0;
    let mut iif = None;
    let mut table = u32::from(msg.header.table);
    for attr in &msg.attributes {
        match attr {
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::Iifname(name) => iif = Some(name.clone()),
            RuleAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    let action = match msg.header.action {
        NlRuleAction::ToTable => RuleAction::Lookup(table),
        NlRuleAction::Prohibit => RuleAction::Prohibit,
        _ => return None,
    };
    Some(RuleSpec {
        priority,
        iif: iif?,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(priority: u32, action: RuleAction) -> RuleSpec {
        RuleSpec {
            priority,
            iif: "icb1".to_owned(),
            action,
        }
    }

    #[test]
    fn rules_read_back_as_they_were_written() {
        for rule in [
            spec(100, RuleAction::Lookup(100)),
            spec(101, RuleAction::Lookup(1000)),
            spec(102, RuleAction::Prohibit),
        ] {
            assert_eq!(to_rule_spec(&rule_message(&rule)), Some(rule));
        }
    }

    #[test]
    fn big_tables_go_in_fra_table() {
        let m = rule_message(&spec(7, RuleAction::Lookup(70_000)));
        assert_eq!(m.header.table, 0);
        assert!(m.attributes.contains(&RuleAttribute::Table(70_000)));
    }

    #[test]
    fn rules_without_an_input_interface_are_not_ours() {
        let mut m = rule_message(&spec(5, RuleAction::Lookup(254)));
        m.attributes
            .retain(|a| !matches!(a, RuleAttribute::Iifname(_)));
        assert_eq!(to_rule_spec(&m), None);
        let mut blackhole = rule_message(&spec(5, RuleAction::Prohibit));
        blackhole.header.action = NlRuleAction::Blackhole;
        assert_eq!(to_rule_spec(&blackhole), None);
    }
}
