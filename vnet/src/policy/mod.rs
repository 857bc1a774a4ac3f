//! Flow policies between security domains.
//!
//! Traffic inside one domain is always allowed. Between two domains it is
//! denied unless an agreed [`FlowRule`] matches it. A rule between domains of
//! two different owners (tenants) needs both: it is proposed by one and
//! counts only once the other agrees. Rules are directional: `web -> db`
//! lets `web` open flows to `db`; replies are the driver's (stateful
//! firewall's) concern.
//!
//! - [`rule`]: protocols, port ranges and rules.
//! - [`set`]: the domains' owners, the rules and their agreement, and the
//!   allow/deny decision.

pub mod rule;
pub mod set;

pub use rule::{FlowRule, PortRange, Proto};
pub use set::{PolicySet, RuleState};

use crate::name::{Domain, TenantId};

/// Why a rule, a port range or a change to a policy set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not one of the protocol names.
    #[error("protocol {0:?} is unknown; the protocols are tcp, udp, icmp and any")]
    UnknownProto(String),
    /// A port range that is not `<port>` or `<first>-<last>` of ports 1 to 65535.
    #[error("port range {range:?} is refused: {reason}")]
    BadPortRange {
        /// The refused text.
        range: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A port with a protocol that has none.
    #[error("a port ({port}) makes no sense with {proto}; ports are for tcp and udp only")]
    PortWithoutPorts {
        /// The protocol.
        proto: Proto,
        /// The port range given with it.
        port: PortRange,
    },
    /// A rule from a domain to itself.
    #[error(
        "a rule from domain {domain} to itself is pointless: traffic inside a domain is always allowed"
    )]
    SameDomain {
        /// The domain.
        domain: Domain,
    },
    /// A domain nobody has declared.
    #[error("domain {domain} has no owner; it must be declared first")]
    UnknownDomain {
        /// The domain.
        domain: Domain,
    },
    /// Declaring a domain another tenant owns.
    #[error("domain {domain} is owned by tenant {owner}, not {claimant}")]
    DomainOwned {
        /// The domain.
        domain: Domain,
        /// Its owner.
        owner: TenantId,
        /// The tenant that claimed it.
        claimant: TenantId,
    },
    /// A tenant acting on a rule between domains it does not own.
    #[error("tenant {by} owns neither domain of rule {rule}")]
    NotAnOwner {
        /// The rule.
        rule: FlowRule,
        /// The tenant.
        by: TenantId,
    },
    /// Proposing a rule that exists.
    #[error("rule {rule} already exists ({state})")]
    AlreadyExists {
        /// The rule.
        rule: FlowRule,
        /// Its state.
        state: RuleState,
    },
    /// Acting on a rule that does not exist.
    #[error("there is no rule {rule}")]
    NoSuchRule {
        /// The rule.
        rule: FlowRule,
    },
    /// Agreeing to a rule that is already agreed.
    #[error("rule {rule} is already agreed")]
    AlreadyAgreed {
        /// The rule.
        rule: FlowRule,
    },
    /// The proposer agreeing to its own proposal.
    #[error("tenant {by} proposed rule {rule} and cannot also agree to it; tenant {other} must")]
    ProposerCannotAgree {
        /// The rule.
        rule: FlowRule,
        /// The proposer.
        by: TenantId,
        /// The owner whose agreement is awaited.
        other: TenantId,
    },
    /// Someone other than the awaited owner agreeing.
    #[error("tenant {by} cannot agree to rule {rule}: only tenant {other} can")]
    NotTheOtherOwner {
        /// The rule.
        rule: FlowRule,
        /// The tenant that tried.
        by: TenantId,
        /// The owner whose agreement is awaited.
        other: TenantId,
    },
    /// A restored rule whose state does not fit its domains' owners.
    #[error("restored rule {rule} is {state}, which does not fit its domains' owners")]
    InconsistentState {
        /// The rule.
        rule: FlowRule,
        /// Its restored state.
        state: RuleState,
    },
}
