//! The policy set: who owns which domain, which rules exist, which are
//! agreed, and whether a flow is allowed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{FlowRule, PolicyError, Proto};
use crate::name::{Domain, TenantId};

/// Where a rule stands.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleState {
    /// Proposed by one owner; the other owner has not agreed yet. It lets
    /// nothing through.
    Proposed {
        /// The owner that proposed it.
        by: TenantId,
    },
    /// Agreed by both owners (or by the single owner of both domains).
    Agreed,
}

impl fmt::Display for RuleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Proposed { by } => write!(f, "proposed by tenant {by}"),
            Self::Agreed => f.write_str("agreed"),
        }
    }
}

/// The domains' owners and the rules between domains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPolicySet", into = "RawPolicySet")]
pub struct PolicySet {
    owners: BTreeMap<Domain, TenantId>,
    rules: BTreeMap<FlowRule, RuleState>,
    // Who proposed each rule: [`RuleState::Agreed`] forgets it, and the
    // parties still want to see it. Absent for a rule restored without it.
    proposers: BTreeMap<FlowRule, TenantId>,
}

/// The serialized form; every rule is checked again on the way in.
#[derive(Serialize, Deserialize)]
struct RawPolicySet {
    owners: BTreeMap<Domain, TenantId>,
    rules: Vec<RuleEntry>,
}

#[derive(Serialize, Deserialize)]
struct RuleEntry {
    rule: FlowRule,
    state: RuleState,
    /// Who proposed an agreed rule (a proposal names it in its state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proposed_by: Option<TenantId>,
}

impl PolicySet {
    /// No domains, no rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `owner` as the owner of `domain`. Declaring it again for the
    /// same owner changes nothing; for another owner it is refused.
    pub fn declare_domain(&mut self, domain: Domain, owner: TenantId) -> Result<(), PolicyError> {
        match self.owners.get(&domain) {
            Some(existing) if *existing != owner => Err(PolicyError::DomainOwned {
                domain,
                owner: existing.clone(),
                claimant: owner,
            }),
            Some(_) => Ok(()),
            None => {
                self.owners.insert(domain, owner);
                Ok(())
            }
        }
    }

    /// The owner of `domain`, if declared.
    pub fn owner(&self, domain: &Domain) -> Option<&TenantId> {
        self.owners.get(domain)
    }

    /// Proposes `rule` on behalf of `by`, who must own one of its domains.
    /// If one tenant owns both domains the rule is agreed at once; otherwise
    /// it waits for the other owner. Returns the new rule's state.
    pub fn propose(&mut self, rule: FlowRule, by: &TenantId) -> Result<RuleState, PolicyError> {
        let (from_owner, to_owner) = self.owners_of(&rule)?;
        if by != from_owner && by != to_owner {
            return Err(PolicyError::NotAnOwner {
                rule,
                by: by.clone(),
            });
        }
        if let Some(state) = self.rules.get(&rule) {
            return Err(PolicyError::AlreadyExists {
                rule,
                state: state.clone(),
            });
        }
        let state = if from_owner == to_owner {
            RuleState::Agreed
        } else {
            RuleState::Proposed { by: by.clone() }
        };
        self.proposers.insert(rule.clone(), by.clone());
        self.rules.insert(rule, state.clone());
        Ok(state)
    }

    /// `by` agrees to the proposed `rule`. Only the owner who did not
    /// propose it can.
    pub fn agree(&mut self, rule: &FlowRule, by: &TenantId) -> Result<(), PolicyError> {
        let (from_owner, to_owner) = self.owners_of(rule)?;
        let proposer = match self.rules.get(rule) {
            None => return Err(PolicyError::NoSuchRule { rule: rule.clone() }),
            Some(RuleState::Agreed) => {
                return Err(PolicyError::AlreadyAgreed { rule: rule.clone() });
            }
            Some(RuleState::Proposed { by: proposer }) => proposer,
        };
        let other = if proposer == from_owner {
            to_owner
        } else {
            from_owner
        };
        if by == proposer {
            return Err(PolicyError::ProposerCannotAgree {
                rule: rule.clone(),
                by: by.clone(),
                other: other.clone(),
            });
        }
        if by != other {
            return Err(PolicyError::NotTheOtherOwner {
                rule: rule.clone(),
                by: by.clone(),
                other: other.clone(),
            });
        }
        self.rules.insert(rule.clone(), RuleState::Agreed);
        Ok(())
    }

    /// Removes `rule`, agreed or not, on behalf of `by`, who must own one
    /// of its domains: either owner may take back its consent (or decline a
    /// proposal). Returns the state it had.
    pub fn withdraw(&mut self, rule: &FlowRule, by: &TenantId) -> Result<RuleState, PolicyError> {
        let (from_owner, to_owner) = self.owners_of(rule)?;
        if by != from_owner && by != to_owner {
            return Err(PolicyError::NotAnOwner {
                rule: rule.clone(),
                by: by.clone(),
            });
        }
        let state = self
            .rules
            .remove(rule)
            .ok_or_else(|| PolicyError::NoSuchRule { rule: rule.clone() })?;
        self.proposers.remove(rule);
        Ok(state)
    }

    /// Where `rule` stands, if it exists.
    pub fn state(&self, rule: &FlowRule) -> Option<&RuleState> {
        self.rules.get(rule)
    }

    /// The owner who proposed `rule`, if it exists and that is known (a
    /// rule agreed before proposers were recorded has none).
    pub fn proposer(&self, rule: &FlowRule) -> Option<&TenantId> {
        match self.rules.get(rule)? {
            RuleState::Proposed { by } => Some(by),
            RuleState::Agreed => self.proposers.get(rule),
        }
    }

    /// The owner whose agreement `rule` waits for: the owner of its other
    /// domain while it is proposed; `None` once agreed or if it does not
    /// exist.
    pub fn awaited(&self, rule: &FlowRule) -> Option<&TenantId> {
        let RuleState::Proposed { by } = self.rules.get(rule)? else {
            return None;
        };
        let (from_owner, to_owner) = self.owners_of(rule).ok()?;
        Some(if by == from_owner {
            to_owner
        } else {
            from_owner
        })
    }

    /// Every rule with its state, in rule order.
    pub fn rules(&self) -> impl Iterator<Item = (&FlowRule, &RuleState)> {
        self.rules.iter()
    }

    /// The rules that count: the agreed ones. This is what a driver turns
    /// into firewall rules.
    pub fn agreed(&self) -> impl Iterator<Item = &FlowRule> {
        self.rules
            .iter()
            .filter(|(_, state)| **state == RuleState::Agreed)
            .map(|(rule, _)| rule)
    }

    /// The proposals waiting for `tenant` to agree.
    pub fn awaiting<'a>(
        &'a self,
        tenant: &TenantId,
    ) -> impl Iterator<Item = &'a FlowRule> + use<'a> {
        let tenant = tenant.clone();
        self.rules
            .iter()
            .filter_map(move |(rule, state)| match state {
                RuleState::Proposed { by } if *by != tenant => {
                    let owners = (self.owner(rule.from_domain()), self.owner(rule.to_domain()));
                    (owners.0 == Some(&tenant) || owners.1 == Some(&tenant)).then_some(rule)
                }
                _ => None,
            })
    }

    /// Whether a flow from domain `from` to domain `to` with `proto` to
    /// `port` is allowed: always inside one domain; between domains only if
    /// an agreed rule matches (see [`FlowRule::matches`]).
    pub fn allows(&self, from: &Domain, to: &Domain, proto: Proto, port: Option<u16>) -> bool {
        from == to
            || self.agreed().any(|rule| {
                rule.from_domain() == from && rule.to_domain() == to && rule.matches(proto, port)
            })
    }

    fn owners_of(&self, rule: &FlowRule) -> Result<(&TenantId, &TenantId), PolicyError> {
        let owner = |domain: &Domain| {
            self.owners
                .get(domain)
                .ok_or_else(|| PolicyError::UnknownDomain {
                    domain: domain.clone(),
                })
        };
        Ok((owner(rule.from_domain())?, owner(rule.to_domain())?))
    }
}

impl TryFrom<RawPolicySet> for PolicySet {
    type Error = PolicyError;
    fn try_from(raw: RawPolicySet) -> Result<Self, Self::Error> {
        let mut set = PolicySet {
            owners: raw.owners,
            rules: BTreeMap::new(),
            proposers: BTreeMap::new(),
        };
        for RuleEntry {
            rule,
            state,
            proposed_by,
        } in raw.rules
        {
            let (from_owner, to_owner) = set.owners_of(&rule)?;
            let an_owner = |t: &TenantId| t == from_owner || t == to_owner;
            let fits = match &state {
                RuleState::Agreed => proposed_by.as_ref().is_none_or(an_owner),
                RuleState::Proposed { by } => {
                    from_owner != to_owner
                        && an_owner(by)
                        && proposed_by.as_ref().is_none_or(|p| p == by)
                }
            };
            let proposer = match &state {
                RuleState::Agreed => proposed_by,
                RuleState::Proposed { by } => Some(by.clone()),
            };
            if !fits {
                return Err(PolicyError::InconsistentState { rule, state });
            }
            if let Some(existing) = set.rules.get(&rule) {
                return Err(PolicyError::AlreadyExists {
                    rule,
                    state: existing.clone(),
                });
            }
            if let Some(proposer) = proposer {
                set.proposers.insert(rule.clone(), proposer);
            }
            set.rules.insert(rule, state);
        }
        Ok(set)
    }
}

impl From<PolicySet> for RawPolicySet {
    fn from(set: PolicySet) -> Self {
        Self {
            owners: set.owners,
            rules: set
                .rules
                .into_iter()
                .map(|(rule, state)| RuleEntry {
                    proposed_by: match state {
                        RuleState::Agreed => set.proposers.get(&rule).cloned(),
                        RuleState::Proposed { .. } => None,
                    },
                    rule,
                    state,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rule::tests::{domain, rule};

    fn tenant(s: &str) -> TenantId {
        TenantId::new(s).expect("valid tenant")
    }

    /// web and api belong to acme, db to globex.
    fn policies() -> PolicySet {
        let mut set = PolicySet::new();
        set.declare_domain(domain("web"), tenant("acme"))
            .expect("declared");
        set.declare_domain(domain("api"), tenant("acme"))
            .expect("declared");
        set.declare_domain(domain("db"), tenant("globex"))
            .expect("declared");
        set
    }

    fn web_to_db() -> FlowRule {
        rule("web", "db", Proto::Tcp, Some("5432"))
    }

    #[test]
    fn traffic_inside_a_domain_is_always_allowed() {
        let set = PolicySet::new();
        assert!(set.allows(&domain("web"), &domain("web"), Proto::Any, None));
        assert!(set.allows(&domain("db"), &domain("db"), Proto::Tcp, Some(22)));
    }

    #[test]
    fn traffic_between_domains_is_denied_without_a_rule() {
        let set = policies();
        assert!(!set.allows(&domain("web"), &domain("db"), Proto::Tcp, Some(5432)));
        assert!(!set.allows(&domain("web"), &domain("api"), Proto::Icmp, None));
    }

    #[test]
    fn a_rule_between_domains_of_one_owner_is_agreed_at_once() {
        let mut set = policies();
        let state = set
            .propose(
                rule("web", "api", Proto::Tcp, Some("8080")),
                &tenant("acme"),
            )
            .expect("proposed");
        assert_eq!(state, RuleState::Agreed);
        assert!(set.allows(&domain("web"), &domain("api"), Proto::Tcp, Some(8080)));
    }

    #[test]
    fn a_rule_between_owners_lets_nothing_through_until_agreed() {
        let mut set = policies();
        let state = set.propose(web_to_db(), &tenant("acme")).expect("proposed");
        assert_eq!(state, RuleState::Proposed { by: tenant("acme") });
        assert!(!set.allows(&domain("web"), &domain("db"), Proto::Tcp, Some(5432)));
        assert_eq!(
            set.awaiting(&tenant("globex")).collect::<Vec<_>>(),
            vec![&web_to_db()]
        );
        assert_eq!(set.awaiting(&tenant("acme")).count(), 0);

        set.agree(&web_to_db(), &tenant("globex")).expect("agreed");
        assert!(set.allows(&domain("web"), &domain("db"), Proto::Tcp, Some(5432)));
        assert_eq!(set.agreed().collect::<Vec<_>>(), vec![&web_to_db()]);
    }

    #[test]
    fn the_other_owner_may_propose_too() {
        let mut set = policies();
        set.propose(web_to_db(), &tenant("globex"))
            .expect("proposed");
        set.agree(&web_to_db(), &tenant("acme")).expect("agreed");
        assert!(set.allows(&domain("web"), &domain("db"), Proto::Tcp, Some(5432)));
    }

    #[test]
    fn rules_are_directional_and_match_only_their_flows() {
        let mut set = policies();
        set.propose(web_to_db(), &tenant("acme")).expect("proposed");
        set.agree(&web_to_db(), &tenant("globex")).expect("agreed");
        assert!(!set.allows(&domain("db"), &domain("web"), Proto::Tcp, Some(5432)));
        assert!(!set.allows(&domain("web"), &domain("db"), Proto::Tcp, Some(22)));
        assert!(!set.allows(&domain("web"), &domain("db"), Proto::Udp, Some(5432)));
    }

    #[test]
    fn the_proposer_cannot_agree_to_its_own_proposal() {
        let mut set = policies();
        set.propose(web_to_db(), &tenant("acme")).expect("proposed");
        let error = set
            .agree(&web_to_db(), &tenant("acme"))
            .expect_err("proposer");
        assert_eq!(
            error.to_string(),
            "tenant acme proposed rule web -> db tcp/5432 and cannot also agree to it; tenant globex must"
        );
        assert!(!set.allows(&domain("web"), &domain("db"), Proto::Tcp, Some(5432)));
    }

    #[test]
    fn someone_other_than_the_other_owner_cannot_agree() {
        let mut set = policies();
        set.propose(web_to_db(), &tenant("acme")).expect("proposed");
        let error = set
            .agree(&web_to_db(), &tenant("initech"))
            .expect_err("stranger");
        assert_eq!(
            error.to_string(),
            "tenant initech cannot agree to rule web -> db tcp/5432: only tenant globex can"
        );
    }

    #[test]
    fn agreeing_to_a_missing_or_agreed_rule_is_refused() {
        let mut set = policies();
        let error = set
            .agree(&web_to_db(), &tenant("globex"))
            .expect_err("missing");
        assert_eq!(error.to_string(), "there is no rule web -> db tcp/5432");
        set.propose(web_to_db(), &tenant("acme")).expect("proposed");
        set.agree(&web_to_db(), &tenant("globex")).expect("agreed");
        let error = set
            .agree(&web_to_db(), &tenant("globex"))
            .expect_err("twice");
        assert_eq!(
            error.to_string(),
            "rule web -> db tcp/5432 is already agreed"
        );
    }

    #[test]
    fn only_an_owner_of_one_of_the_domains_may_propose() {
        let mut set = policies();
        let error = set
            .propose(web_to_db(), &tenant("initech"))
            .expect_err("stranger");
        assert_eq!(
            error.to_string(),
            "tenant initech owns neither domain of rule web -> db tcp/5432"
        );
    }

    #[test]
    fn rules_between_undeclared_domains_are_refused() {
        let mut set = policies();
        let error = set
            .propose(rule("web", "cache", Proto::Any, None), &tenant("acme"))
            .expect_err("undeclared");
        assert_eq!(
            error.to_string(),
            "domain cache has no owner; it must be declared first"
        );
    }

    #[test]
    fn a_rule_proposed_twice_is_refused_with_its_state() {
        let mut set = policies();
        set.propose(web_to_db(), &tenant("acme")).expect("proposed");
        let error = set
            .propose(web_to_db(), &tenant("globex"))
            .expect_err("twice");
        assert_eq!(
            error.to_string(),
            "rule web -> db tcp/5432 already exists (proposed by tenant acme)"
        );
    }

    #[test]
    fn a_domain_cannot_change_owner() {
        let mut set = policies();
        set.declare_domain(domain("db"), tenant("globex"))
            .expect("same owner again");
        let error = set
            .declare_domain(domain("db"), tenant("acme"))
            .expect_err("other owner");
        assert_eq!(
            error.to_string(),
            "domain db is owned by tenant globex, not acme"
        );
        assert_eq!(set.owner(&domain("db")), Some(&tenant("globex")));
    }

    #[test]
    fn either_owner_may_withdraw_a_rule_and_it_stops_counting() {
        let mut set = policies();
        set.propose(web_to_db(), &tenant("acme")).expect("proposed");
        set.agree(&web_to_db(), &tenant("globex")).expect("agreed");
        let before = set
            .withdraw(&web_to_db(), &tenant("globex"))
            .expect("withdrawn");
        assert_eq!(before, RuleState::Agreed);
        assert!(!set.allows(&domain("web"), &domain("db"), Proto::Tcp, Some(5432)));
        // Declining a proposal is withdrawing it.
        set.propose(web_to_db(), &tenant("acme"))
            .expect("proposed again");
        let before = set
            .withdraw(&web_to_db(), &tenant("globex"))
            .expect("declined");
        assert_eq!(before, RuleState::Proposed { by: tenant("acme") });
        assert_eq!(set.rules().count(), 0);
    }

    #[test]
    fn withdrawing_is_refused_to_strangers_and_for_missing_rules() {
        let mut set = policies();
        set.propose(web_to_db(), &tenant("acme")).expect("proposed");
        let error = set
            .withdraw(&web_to_db(), &tenant("initech"))
            .expect_err("stranger");
        assert!(matches!(error, PolicyError::NotAnOwner { .. }));
        let other = rule("web", "db", Proto::Icmp, None);
        let error = set.withdraw(&other, &tenant("acme")).expect_err("missing");
        assert_eq!(error.to_string(), "there is no rule web -> db icmp");
        assert_eq!(set.rules().count(), 1);
    }

    #[test]
    fn a_rule_remembers_its_proposer_and_whom_it_awaits() {
        let mut set = policies();
        assert_eq!(set.state(&web_to_db()), None);
        assert_eq!(set.proposer(&web_to_db()), None);
        set.propose(web_to_db(), &tenant("globex"))
            .expect("proposed");
        assert_eq!(
            set.state(&web_to_db()),
            Some(&RuleState::Proposed {
                by: tenant("globex")
            })
        );
        assert_eq!(set.proposer(&web_to_db()), Some(&tenant("globex")));
        assert_eq!(set.awaited(&web_to_db()), Some(&tenant("acme")));
        set.agree(&web_to_db(), &tenant("acme")).expect("agreed");
        assert_eq!(set.state(&web_to_db()), Some(&RuleState::Agreed));
        assert_eq!(
            set.proposer(&web_to_db()),
            Some(&tenant("globex")),
            "agreeing keeps the proposer"
        );
        assert_eq!(set.awaited(&web_to_db()), None);
        set.withdraw(&web_to_db(), &tenant("acme"))
            .expect("withdrawn");
        assert_eq!(set.proposer(&web_to_db()), None);

        let inside = rule("web", "api", Proto::Any, None);
        set.propose(inside.clone(), &tenant("acme"))
            .expect("agreed");
        assert_eq!(set.proposer(&inside), Some(&tenant("acme")));
        assert_eq!(set.awaited(&inside), None);
    }

    #[test]
    fn the_proposer_of_an_agreed_rule_survives_serde_and_may_be_missing() {
        let mut set = policies();
        set.propose(web_to_db(), &tenant("globex"))
            .expect("proposed");
        set.agree(&web_to_db(), &tenant("acme")).expect("agreed");
        let text = serde_json::to_string(&set).expect("serializes");
        assert!(text.contains(r#""proposed_by":"globex""#), "{text}");
        let back: PolicySet = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(back.proposer(&web_to_db()), Some(&tenant("globex")));
        assert_eq!(back, set);

        // Written before proposers were kept: agreed, proposer unknown.
        let older = text.replace(r#","proposed_by":"globex""#, "");
        assert_ne!(older, text);
        let back: PolicySet = serde_json::from_str(&older).expect("deserializes");
        assert_eq!(back.state(&web_to_db()), Some(&RuleState::Agreed));
        assert_eq!(back.proposer(&web_to_db()), None);

        let stranger = text.replace(r#""proposed_by":"globex""#, r#""proposed_by":"initech""#);
        let error = serde_json::from_str::<PolicySet>(&stranger).expect_err("not an owner");
        assert!(
            error
                .to_string()
                .contains("restored rule web -> db tcp/5432 is agreed"),
            "{error}"
        );
    }

    #[test]
    fn the_set_round_trips_through_serde_and_is_checked_on_the_way_in() {
        let mut set = policies();
        set.propose(web_to_db(), &tenant("acme")).expect("proposed");
        set.propose(rule("web", "api", Proto::Any, None), &tenant("acme"))
            .expect("agreed");
        let text = serde_json::to_string(&set).expect("serializes");
        assert_eq!(
            serde_json::from_str::<PolicySet>(&text).expect("deserializes"),
            set
        );

        let stranger = text.replace(
            r#"{"proposed":{"by":"acme"}}"#,
            r#"{"proposed":{"by":"initech"}}"#,
        );
        assert_ne!(stranger, text);
        let error = serde_json::from_str::<PolicySet>(&stranger).expect_err("stranger proposed");
        assert!(
            error
                .to_string()
                .contains("restored rule web -> db tcp/5432 is proposed by tenant initech")
        );
        let undeclared = text.replace(r#""db":"globex""#, r#""dbx":"globex""#);
        assert!(serde_json::from_str::<PolicySet>(&undeclared).is_err());
    }
}
