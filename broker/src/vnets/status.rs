//! What this broker has made of each VNet, as of its last reconciliation
//! (pure): the `LocalDataplane` of `ShowVnet`.

use std::collections::BTreeMap;

use intercloud_daemon::grpc::timestamp_opt;
use intercloud_proto::v1::{LocalDataplane, Vnet};
use time::OffsetDateTime;

/// The kernel matches the plan.
pub const REALIZED: &str = "realized";
/// Not reconciled yet (waiting for the root, or for a peer's VTEP).
pub const PENDING: &str = "pending";
/// Could not be realized; the detail says why.
pub const FAILED: &str = "failed";

/// One VNet's interfaces and forwarding entries as read from the kernel,
/// one line each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lines {
    /// `icx001000 vxlan vni 4096 local 10.231.0.1 …`.
    pub interfaces: Vec<String>,
    /// `00:00:00:00:00:00 dst 10.231.0.2`.
    pub fdb: Vec<String>,
    /// The gateway here, in words; empty when there is none.
    pub gateway: String,
    /// The nftables rules for the VNet (flow filter and taps), with their
    /// packet counters.
    pub rules: Vec<String>,
}

/// One VNet's local side.
#[derive(Debug, Clone, PartialEq)]
struct VniState {
    state: &'static str,
    detail: String,
    lines: Lines,
    /// The VNet as the round that made this state saw it.
    seen: Vnet,
}

/// What one reconciliation found and did, by VNI.
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// When it ended.
    pub at: Option<OffsetDateTime>,
    /// The VNets visible to this broker, as this round saw them, by VNI.
    pub visible: BTreeMap<u32, Vnet>,
    /// VNets left out of the plan, with the reason.
    pub refused: BTreeMap<u32, String>,
    /// VNets whose changes failed (and were rolled back), with the reason.
    pub failed: BTreeMap<u32, String>,
    /// Member clouds without a known VTEP, by VNI.
    pub unreachable: BTreeMap<u32, Vec<String>>,
    /// Notes that do not make a VNet fail (an instance that does not exist
    /// here), by VNI.
    pub notes: BTreeMap<u32, Vec<String>>,
    /// What the kernel has, by VNI.
    pub lines: BTreeMap<u32, Lines>,
}

/// Every VNet's local side.
#[derive(Debug, Clone, Default)]
pub struct Status {
    vnis: BTreeMap<u32, VniState>,
    /// A reason that concerns every VNet: the kernel could not be read, the
    /// root refused this cloud's VTEP, the watch is down.
    trouble: Option<String>,
    /// A note that concerns every VNet without making it fail (the root's
    /// watch is down: the data plane follows the last state known).
    caveat: Option<String>,
    reconciled_at: Option<OffsetDateTime>,
}

impl Status {
    /// Nothing reconciled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in a round's outcome.
    pub fn after_round(&mut self, round: Round) {
        let mut vnis = BTreeMap::new();
        for (vni, seen) in round.visible {
            let vni = &vni;
            let lines = round.lines.get(vni).cloned().unwrap_or_default();
            let notes = round.notes.get(vni).map(|n| n.join("; "));
            let (state, detail) = if let Some(reason) = round.refused.get(vni) {
                (FAILED, reason.clone())
            } else if let Some(reason) = round.failed.get(vni) {
                (FAILED, reason.clone())
            } else if let Some(clouds) = round.unreachable.get(vni).filter(|c| !c.is_empty()) {
                (
                    PENDING,
                    format!(
                        "no VTEP known yet for {}: nothing is sent there until it is declared",
                        clouds.join(", ")
                    ),
                )
            } else {
                (REALIZED, String::new())
            };
            let detail = match (detail.is_empty(), notes) {
                (_, None) => detail,
                (true, Some(notes)) => notes,
                (false, Some(notes)) => format!("{detail}; {notes}"),
            };
            vnis.insert(
                *vni,
                VniState {
                    state,
                    detail,
                    lines,
                    seen,
                },
            );
        }
        self.vnis = vnis;
        self.reconciled_at = round.at.or(self.reconciled_at);
    }

    /// Sets (or clears) the reason that concerns every VNet.
    pub fn set_trouble(&mut self, trouble: Option<String>) {
        self.trouble = trouble;
    }

    /// Sets (or clears) the note that concerns every VNet.
    pub fn set_caveat(&mut self, caveat: Option<String>) {
        self.caveat = caveat;
    }

    /// The reason that concerns every VNet, if any.
    pub fn trouble(&self) -> Option<&str> {
        self.trouble.as_deref()
    }

    /// The local side of the VNet `vni`. With `current`, the root's record
    /// of it as of now: a side made from an older record is only pending
    /// (an attachment the root has, say, that this broker has not made yet).
    pub fn local(&self, vni: u32, current: Option<&Vnet>) -> LocalDataplane {
        let mut local = self.local_without_caveat(vni);
        if let (Some(current), Some(known)) = (current, self.vnis.get(&vni))
            && *current != known.seen
            && local.state == REALIZED
        {
            local.state = PENDING.into();
            local.detail = "the root's latest record of this VNet is not applied here yet: it follows within a moment".into();
        }
        if let Some(caveat) = &self.caveat {
            local.detail = if local.detail.is_empty() {
                caveat.clone()
            } else {
                format!("{}; {caveat}", local.detail)
            };
        }
        local
    }

    fn local_without_caveat(&self, vni: u32) -> LocalDataplane {
        let at = timestamp_opt(self.reconciled_at);
        let Some(known) = self.vnis.get(&vni) else {
            let detail = match (&self.trouble, self.reconciled_at) {
                (Some(trouble), _) => trouble.clone(),
                (None, None) => "not reconciled yet: waiting for the root's list of VNets".into(),
                (None, Some(_)) => {
                    "not in this broker's copy of the root's VNets yet: it follows within a moment"
                        .into()
                }
            };
            return LocalDataplane {
                state: PENDING.into(),
                detail,
                interfaces: Vec::new(),
                fdb: Vec::new(),
                reconciled_at: at,
                gateway: String::new(),
                rules: Vec::new(),
            };
        };
        let (state, detail) = match &self.trouble {
            Some(trouble) if known.state == REALIZED => (FAILED, trouble.clone()),
            Some(trouble) => (known.state, format!("{}; {trouble}", known.detail)),
            None => (known.state, known.detail.clone()),
        };
        LocalDataplane {
            state: state.into(),
            detail,
            interfaces: known.lines.interfaces.clone(),
            fdb: known.lines.fdb.clone(),
            reconciled_at: at,
            gateway: known.lines.gateway.clone(),
            rules: known.lines.rules.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn vnet(vni: u32) -> Vnet {
        Vnet {
            name: format!("net-{vni}"),
            tenant: "cloud-a".into(),
            vni,
            ..Vnet::default()
        }
    }

    fn round() -> Round {
        Round {
            at: Some(datetime!(2026-05-01 10:00:00 UTC)),
            visible: [4096, 4097, 4098, 4099]
                .into_iter()
                .map(|vni| (vni, vnet(vni)))
                .collect(),
            refused: [(
                4097,
                "the root's record of vnet x/y is not usable: …".to_owned(),
            )]
            .into(),
            failed: [(4098, "creating vxlan icx001002 …: File exists".to_owned())].into(),
            unreachable: [(4099, vec!["cloud-b".to_owned()])].into(),
            notes: [(
                4096,
                vec![
                    "instance db-9 is attached at the root but does not exist in cloud-a: left out"
                        .to_owned(),
                ],
            )]
            .into(),
            lines: [(
                4096,
                Lines {
                    interfaces: vec!["icb001000 bridge up".into()],
                    fdb: vec!["00:00:00:00:00:00 dst 10.231.0.2".into()],
                    ..Lines::default()
                },
            )]
            .into(),
        }
    }

    #[test]
    fn each_vnet_is_realized_pending_or_failed_with_its_reason() {
        let mut status = Status::new();
        let before = status.local(4096, None);
        assert_eq!(before.state, PENDING);
        assert!(
            before.detail.contains("waiting for the root"),
            "{}",
            before.detail
        );
        assert_eq!(before.reconciled_at, None);

        status.after_round(round());
        let blue = status.local(4096, None);
        assert_eq!(blue.state, REALIZED);
        assert_eq!(
            blue.detail,
            "instance db-9 is attached at the root but does not exist in cloud-a: left out"
        );
        assert_eq!(blue.interfaces, ["icb001000 bridge up"]);
        assert_eq!(blue.fdb, ["00:00:00:00:00:00 dst 10.231.0.2"]);
        assert!(blue.reconciled_at.is_some());
        assert_eq!(status.local(4097, None).state, FAILED);
        let failed = status.local(4098, None);
        assert_eq!(
            (failed.state.as_str(), failed.detail.as_str()),
            (FAILED, "creating vxlan icx001002 …: File exists")
        );
        let waiting = status.local(4099, None);
        assert_eq!(waiting.state, PENDING);
        assert_eq!(
            waiting.detail,
            "no VTEP known yet for cloud-b: nothing is sent there until it is declared"
        );
        // Against the root's record as of now: one with a binding this
        // round did not see is not realized yet.
        assert_eq!(status.local(4096, Some(&vnet(4096))).state, REALIZED);
        let mut newer = vnet(4096);
        newer
            .bindings
            .push(intercloud_proto::v1::Binding::default());
        let behind = status.local(4096, Some(&newer));
        assert_eq!(behind.state, PENDING);
        assert!(
            behind.detail.contains("not applied here yet"),
            "{}",
            behind.detail
        );
        assert_eq!(behind.interfaces, ["icb001000 bridge up"]);
        let unseen = status.local(5000, None);
        assert_eq!(unseen.state, PENDING);
        assert!(
            unseen.detail.contains("not in this broker's copy"),
            "{}",
            unseen.detail
        );
    }

    #[test]
    fn trouble_that_concerns_every_vnet_is_shown_on_each() {
        let mut status = Status::new();
        status.after_round(round());
        status.set_trouble(Some("the kernel could not be read: …".into()));
        let blue = status.local(4096, None);
        assert_eq!(blue.state, FAILED);
        assert_eq!(blue.detail, "the kernel could not be read: …");
        assert_eq!(blue.interfaces.len(), 1, "the last lines read stay");
        let waiting = status.local(4099, None);
        assert_eq!(waiting.state, PENDING);
        assert!(
            waiting
                .detail
                .ends_with("; the kernel could not be read: …")
        );
        assert_eq!(
            status.local(5000, None).detail,
            "the kernel could not be read: …"
        );
        status.set_trouble(None);
        assert_eq!(status.local(4096, None).state, REALIZED);
        status.set_caveat(Some("the root's watch is down".into()));
        let blue = status.local(4096, None);
        assert_eq!(blue.state, REALIZED, "the kernel still has the last state");
        assert_eq!(
            blue.detail,
            "instance db-9 is attached at the root but does not exist in cloud-a: left out; the root's watch is down"
        );
    }
}
