//! Flow rules between security domains: proposed by one owner, agreed by
//! the other (at once when one tenant owns both domains), withdrawn by
//! either. The rules themselves are `intercloud-vnet`'s [`PolicySet`]; this
//! adds who may see which, and the watchers' view of the agreed ones.

use std::collections::{BTreeMap, BTreeSet};

use intercloud_vnet::{CloudId, Domain, FlowRule, PolicyError, PolicySet, RuleState, TenantId};
use time::OffsetDateTime;

use super::{NetworkState, Outcome, Viewer};
use crate::networks::error::NetworkError;

/// A flow rule as its owners see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The rule.
    pub rule: FlowRule,
    /// Whether it counts: both owners agreed (or one owns both domains).
    pub agreed: bool,
    /// The owner that proposed it, when known (a rule agreed before
    /// proposers were recorded has none).
    pub proposed_by: Option<TenantId>,
    /// The owner whose agreement it waits for; `None` once agreed.
    pub awaiting: Option<TenantId>,
}

impl Policy {
    fn of(policies: &PolicySet, rule: &FlowRule) -> Option<Self> {
        let state = policies.state(rule)?;
        Some(Self {
            rule: rule.clone(),
            agreed: *state == RuleState::Agreed,
            proposed_by: policies.proposer(rule).cloned(),
            awaiting: policies.awaited(rule).cloned(),
        })
    }
}

/// The agreed rules, each with the clouds that see a VNet in one of its
/// two domains: what a watcher is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgreedPolicies {
    rules: Vec<(Policy, BTreeSet<CloudId>)>,
}

impl AgreedPolicies {
    /// The rules `viewer` is sent: those touching a domain of a VNet it
    /// sees (every one, for [`Viewer::Everything`]), in rule order.
    pub fn visible_to(&self, viewer: &Viewer) -> Vec<Policy> {
        self.rules
            .iter()
            .filter(|(_, audience)| match viewer {
                Viewer::Cloud(cloud) => audience.contains(cloud),
                Viewer::Everything => true,
            })
            .map(|(policy, _)| policy.clone())
            .collect()
    }
}

impl NetworkState {
    /// `tenant` allows `rule`: proposes it if it does not exist (agreed at
    /// once when the tenant owns both domains), agrees to it if it awaits
    /// the tenant. The tenant must own one of the two domains. Returns the
    /// rule as it stands after.
    pub fn allow_flow(
        &mut self,
        tenant: &TenantId,
        rule: FlowRule,
        now: OffsetDateTime,
    ) -> Result<Outcome<Policy>, NetworkError> {
        self.an_owner(tenant, &rule)?;
        let agreed_before = self.policies.state(&rule) == Some(&RuleState::Agreed);
        match self.policies.state(&rule) {
            None => {
                self.policies.propose(rule.clone(), tenant)?;
            }
            Some(_) => self.policies.agree(&rule, tenant)?,
        }
        let policy = self.policy(&rule)?;
        self.revision += 1;
        let events = if policy.agreed && !agreed_before {
            vec![self.policies_event(now)]
        } else {
            Vec::new()
        };
        Ok((policy, events))
    }

    /// `tenant`, an owner of one of its domains, withdraws `rule`, agreed
    /// or not. Returns the rule as it stood.
    pub fn revoke_flow(
        &mut self,
        tenant: &TenantId,
        rule: &FlowRule,
        now: OffsetDateTime,
    ) -> Result<Outcome<Policy>, NetworkError> {
        self.an_owner(tenant, rule)?;
        let policy = self.policy(rule)?;
        self.policies.withdraw(rule, tenant)?;
        self.revision += 1;
        let events = if policy.agreed {
            vec![self.policies_event(now)]
        } else {
            Vec::new()
        };
        Ok((policy, events))
    }

    /// The rules `viewer` may list, agreed or not, in rule order: those
    /// touching a domain its cloud's tenant owns; every rule for
    /// [`Viewer::Everything`].
    pub fn flows(&self, viewer: &Viewer) -> Vec<Policy> {
        let tenant = match viewer {
            // A cloud whose id is no tenant id owns no VNet, so no domain.
            Viewer::Cloud(cloud) => match TenantId::new(cloud.as_str()) {
                Ok(tenant) => Some(tenant),
                Err(_) => return Vec::new(),
            },
            Viewer::Everything => None,
        };
        self.policies
            .rules()
            .filter(|(rule, _)| {
                tenant.as_ref().is_none_or(|t| {
                    self.policies.owner(rule.from_domain()) == Some(t)
                        || self.policies.owner(rule.to_domain()) == Some(t)
                })
            })
            .filter_map(|(rule, _)| Policy::of(&self.policies, rule))
            .collect()
    }

    /// Every agreed rule with the clouds that see a VNet in one of its
    /// domains.
    pub fn agreed_policies(&self) -> AgreedPolicies {
        let mut clouds_of: BTreeMap<&Domain, BTreeSet<CloudId>> = BTreeMap::new();
        for record in self.registry.all() {
            clouds_of
                .entry(record.spec.domain())
                .or_default()
                .extend(record.spec.clouds().iter().cloned());
        }
        let rules = self
            .policies
            .agreed()
            .filter_map(|rule| {
                let mut audience = BTreeSet::new();
                for domain in [rule.from_domain(), rule.to_domain()] {
                    audience.extend(clouds_of.get(domain).into_iter().flatten().cloned());
                }
                Policy::of(&self.policies, rule).map(|p| (p, audience))
            })
            .collect();
        AgreedPolicies { rules }
    }

    /// The owner of `domain`, if any VNet ever used it.
    pub fn domain_owner(&self, domain: &Domain) -> Option<&TenantId> {
        self.policies.owner(domain)
    }

    /// Refuses a rule naming an unowned domain, and a tenant owning neither
    /// of its domains (the refusal names both owners).
    fn an_owner(&self, tenant: &TenantId, rule: &FlowRule) -> Result<(), NetworkError> {
        let owner = |domain: &Domain| {
            self.policies
                .owner(domain)
                .cloned()
                .ok_or_else(|| NetworkError::UnknownDomain {
                    domain: domain.clone(),
                })
        };
        let (from_owner, to_owner) = (owner(rule.from_domain())?, owner(rule.to_domain())?);
        if *tenant == from_owner || *tenant == to_owner {
            return Ok(());
        }
        Err(NetworkError::NotAnOwner {
            rule: Box::new(rule.clone()),
            tenant: tenant.clone(),
            from_owner,
            to_owner,
        })
    }

    fn policy(&self, rule: &FlowRule) -> Result<Policy, NetworkError> {
        Policy::of(&self.policies, rule)
            .ok_or_else(|| PolicyError::NoSuchRule { rule: rule.clone() }.into())
    }
}
