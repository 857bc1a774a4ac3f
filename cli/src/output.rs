//! Rendering of every command's result, as an aligned table for people or
//! as one JSON document for scripts (`--output json`).
//!
//! Each result is a view: a plain struct built from the server's response
//! (or from local data), serializable to the JSON contract and rendered to
//! text by [`Render::table`]. All of it is pure: the caller passes `now` for
//! the relative hints ("in 23h"), so tests need neither servers nor clocks.
//!
//! JSON rules: keys are the proto field names (snake_case); enums are
//! lower-case words (`"state": "federated"`); timestamps are RFC 3339 strings,
//! or `null` when unset, as are absent messages (`"free": null`); strings are
//! passed through as the server sent them. A stream (`peers --watch`,
//! `directory watch`, `transfers --watch`, the steps of `migrate` and
//! `object put`) prints JSON Lines: one compact object per event.
//! `query --output json` is the exception: it prints the root's SPARQL JSON
//! results (or JSON-LD) as they came.
//!
//! Map: `broker` (a broker's status), `federation` (the root's members,
//! tokens, revocations), `presence` (peers, their events, negotiation),
//! `descriptor` (`describe`'s check), `directory` (published descriptors and
//! their events), `matching` (`match`'s ranked candidates), `sparql` (SPARQL
//! JSON results as a table), `root_time` (`time`'s reading of the root's
//! clock), `local` (contexts, enrolment), `transfer` (a broker's AMQP
//! transfers: the list, update lines, progress bar texts), `instance` (the
//! local cloud's instances), `object` (stored objects and their replicas),
//! `vnet` (cross-cloud VNets), `mirror` (Mirror VNets created and swapped),
//! `policy` (flow rules between security domains),
//! `step` (the steps of `migrate` and `object put`), and the helpers
//! `table`, `clock` (timestamps), `capacity` (sizes), `iri`.

mod broker;
pub mod capacity;
pub mod clock;
mod descriptor;
mod directory;
mod federation;
mod instance;
mod iri;
mod local;
mod matching;
mod mirror;
mod object;
mod policy;
mod presence;
mod root_time;
mod sparql;
mod step;
pub mod table;
mod transfer;
mod vnet;

pub use broker::{BrokerStatus, Presence};
pub use descriptor::DescriptorCheck;
pub use directory::{DescriptorDocument, DirectoryChange, Published, Withdrawn};
pub use federation::{JoinToken, Member, MemberList, Revocations, Revoked, RootStatus};
pub use instance::{Instance, InstanceList};
pub use local::{ContextList, Enrolled};
pub use matching::MatchResult;
pub use mirror::{MirrorCreated, Swapped};
pub use object::{Fetched, Object, ObjectList};
pub use policy::{FlowList, FlowPolicy, FlowRevoked};
pub use presence::{PeerChange, PeerList, Reservation};
pub use root_time::{RootTime, TimeReading, best};
pub use sparql::results_table;
pub use step::{MigrationStep, ObjectStep, step_line, transfer_line};
pub use transfer::{Transfer, TransferList};
pub use vnet::{Attached, Deleted, Detached, Vnet, VnetDetail, VnetList};

use intercloud_proto::v1::{FederationState, MemberState};
use serde::Serialize;
use time::OffsetDateTime;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    Table,
    /// One JSON document on stdout.
    Json,
}

/// A result that can be shown as a table (and, through `Serialize`, as JSON).
pub trait Render: Serialize {
    /// The human-friendly text, ending with a newline.
    fn table(&self, now: OffsetDateTime) -> String;
}

/// `value` in the requested format, ending with a newline.
pub fn render(value: &impl Render, format: Format, now: OffsetDateTime) -> anyhow::Result<String> {
    match format {
        Format::Table => Ok(value.table(now)),
        Format::Json => Ok(serde_json::to_string_pretty(value)? + "\n"),
    }
}

/// The word for a broker's `FederationState`: `not-enrolled`, `enrolling`,
/// `connecting`, `federated`, `root-unreachable`, `revoked` (`unspecified`
/// for 0, `unknown-<n>` for a value newer than this CLI).
pub fn federation_state_word(raw: i32) -> String {
    let word = match FederationState::try_from(raw) {
        Ok(FederationState::Unspecified) => "unspecified",
        Ok(FederationState::NotEnrolled) => "not-enrolled",
        Ok(FederationState::Enrolling) => "enrolling",
        Ok(FederationState::Connecting) => "connecting",
        Ok(FederationState::Federated) => "federated",
        Ok(FederationState::RootUnreachable) => "root-unreachable",
        Ok(FederationState::Revoked) => "revoked",
        Err(_) => return format!("unknown-{raw}"),
    };
    word.to_owned()
}

/// The word for a member's `MemberState`: `enrolled`, `active`, `inactive`, `revoked`
/// (`unspecified` for 0, `unknown-<n>` for a value newer than this CLI).
pub fn member_state_word(raw: i32) -> String {
    let word = match MemberState::try_from(raw) {
        Ok(MemberState::Unspecified) => "unspecified",
        Ok(MemberState::Enrolled) => "enrolled",
        Ok(MemberState::Active) => "active",
        Ok(MemberState::Revoked) => "revoked",
        Ok(MemberState::Inactive) => "inactive",
        Err(_) => return format!("unknown-{raw}"),
    };
    word.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federation_states_map_to_lower_case_words() {
        let cases = [
            (FederationState::Unspecified, "unspecified"),
            (FederationState::NotEnrolled, "not-enrolled"),
            (FederationState::Enrolling, "enrolling"),
            (FederationState::Connecting, "connecting"),
            (FederationState::Federated, "federated"),
            (FederationState::RootUnreachable, "root-unreachable"),
            (FederationState::Revoked, "revoked"),
        ];
        for (state, word) in cases {
            assert_eq!(federation_state_word(state as i32), word);
        }
        assert_eq!(federation_state_word(99), "unknown-99");
        assert_eq!(federation_state_word(-1), "unknown--1");
    }

    #[test]
    fn member_states_map_to_lower_case_words() {
        assert_eq!(member_state_word(MemberState::Enrolled as i32), "enrolled");
        assert_eq!(member_state_word(MemberState::Active as i32), "active");
        assert_eq!(member_state_word(MemberState::Revoked as i32), "revoked");
        assert_eq!(member_state_word(0), "unspecified");
        assert_eq!(member_state_word(7), "unknown-7");
    }
}
