//! [`Checker`]: counts what happened to every transfer of a test run, the
//! way Jepsen's set checker does, and says whether anything was lost or
//! committed twice.
//!
//! Events come from the test harness: a transfer is **attempted** (the
//! sender was asked to move an object with this digest), **acknowledged**
//! (the sender holds a matching receipt: it may forget the transfer), and
//! **committed** (the receiver renamed an object into place, with the
//! digest it had; one event per rename, read from the receiver's log or
//! store).
//!
//! - **lost**: acknowledged, never committed with the right digest — the
//!   one failure that matters most; must be 0;
//! - **duplicated**: committed more than once; must be 0;
//! - **corrupt**: committed with a digest other than the attempted one;
//! - **unexpected**: acknowledged or committed without being attempted;
//! - **recovered**: committed but not acknowledged (the sender died before
//!   the receipt, or the run ended): fine, and counted.

use std::collections::BTreeMap;
use std::fmt;

use crate::digest::Sha256Digest;
use crate::id::TransferId;

#[derive(Clone, Debug, Default)]
struct Record {
    expected: Option<Sha256Digest>,
    acknowledged: bool,
    commits: u64,
    right_commits: u64,
}

/// The event log of a test run.
#[derive(Clone, Debug, Default)]
pub struct Checker {
    transfers: BTreeMap<TransferId, Record>,
}

impl Checker {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sender was asked to move an object whose SHA-256 is `expected`.
    pub fn attempted(&mut self, transfer: TransferId, expected: Sha256Digest) {
        self.transfers.entry(transfer).or_default().expected = Some(expected);
    }

    /// The sender holds a receipt for the transfer.
    pub fn acknowledged(&mut self, transfer: TransferId) {
        self.transfers.entry(transfer).or_default().acknowledged = true;
    }

    /// The receiver committed the transfer's object, whose SHA-256 is
    /// `actual`.
    pub fn committed(&mut self, transfer: TransferId, actual: Sha256Digest) {
        let record = self.transfers.entry(transfer).or_default();
        record.commits += 1;
        if record.expected == Some(actual) {
            record.right_commits += 1;
        }
    }

    /// The verdict.
    pub fn report(&self) -> Report {
        let mut report = Report::default();
        for (id, r) in &self.transfers {
            if r.expected.is_none() {
                report.unexpected.push(id.clone());
                continue;
            }
            report.attempted += 1;
            report.acknowledged += u64::from(r.acknowledged);
            report.committed += u64::from(r.commits > 0);
            if r.acknowledged && r.right_commits == 0 {
                report.lost.push(id.clone());
            }
            if r.commits > 1 {
                report.duplicated.push(id.clone());
            }
            if r.commits > r.right_commits {
                report.corrupt.push(id.clone());
            }
            if !r.acknowledged && r.right_commits > 0 {
                report.recovered += 1;
            }
        }
        report
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Transfers attempted.
    pub attempted: u64,
    /// Of those, acknowledged to the sender.
    pub acknowledged: u64,
    /// Of those, committed at least once.
    pub committed: u64,
    /// Committed with the right digest though not acknowledged.
    pub recovered: u64,
    /// Acknowledged but never committed with the right digest.
    pub lost: Vec<TransferId>,
    /// Committed more than once.
    pub duplicated: Vec<TransferId>,
    /// Committed with a wrong digest.
    pub corrupt: Vec<TransferId>,
    /// Acknowledged or committed, never attempted.
    pub unexpected: Vec<TransferId>,
}

impl Report {
    /// Nothing lost, duplicated, corrupt or unexpected.
    pub fn is_valid(&self) -> bool {
        self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.corrupt.is_empty()
            && self.unexpected.is_empty()
    }
}

fn ids(f: &mut fmt::Formatter<'_>, what: &str, ids: &[TransferId]) -> fmt::Result {
    const SHOWN: usize = 10;
    if ids.is_empty() {
        return Ok(());
    }
    write!(f, "\n  {what}:")?;
    for id in ids.iter().take(SHOWN) {
        write!(f, " {id}")?;
    }
    if ids.len() > SHOWN {
        write!(f, " … ({} more)", ids.len() - SHOWN)?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: attempted {}, acknowledged {}, committed {} ({} recovered), \
             lost {}, duplicated {}, corrupt {}, unexpected {}",
            if self.is_valid() { "valid" } else { "INVALID" },
            self.attempted,
            self.acknowledged,
            self.committed,
            self.recovered,
            self.lost.len(),
            self.duplicated.len(),
            self.corrupt.len(),
            self.unexpected.len()
        )?;
        ids(f, "lost", &self.lost)?;
        ids(f, "duplicated", &self.duplicated)?;
        ids(f, "corrupt", &self.corrupt)?;
        ids(f, "unexpected", &self.unexpected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> TransferId {
        TransferId::new(s).expect("valid")
    }

    #[test]
    fn a_clean_run() {
        let mut c = Checker::new();
        let d = Sha256Digest::of(b"a");
        for t in ["a", "b", "c"] {
            c.attempted(id(t), d);
        }
        c.committed(id("a"), d);
        c.acknowledged(id("a"));
        c.committed(id("b"), d); // the sender died before the receipt
        let r = c.report();
        assert!(r.is_valid(), "{r}");
        assert_eq!(
            (r.attempted, r.acknowledged, r.committed, r.recovered),
            (3, 1, 2, 1)
        );
        assert_eq!(
            r.to_string(),
            "valid: attempted 3, acknowledged 1, committed 2 (1 recovered), \
             lost 0, duplicated 0, corrupt 0, unexpected 0"
        );
    }

    #[test]
    fn loss_duplication_corruption_and_strays_are_counted() {
        let mut c = Checker::new();
        let good = Sha256Digest::of(b"good");
        let bad = Sha256Digest::of(b"bad");
        c.attempted(id("lost"), good);
        c.acknowledged(id("lost"));
        c.attempted(id("twice"), good);
        c.committed(id("twice"), good);
        c.committed(id("twice"), good);
        c.acknowledged(id("twice"));
        c.attempted(id("wrong"), good);
        c.committed(id("wrong"), bad);
        c.acknowledged(id("wrong"));
        c.committed(id("stray"), good);
        let r = c.report();
        assert!(!r.is_valid());
        assert_eq!(r.lost, vec![id("lost"), id("wrong")]);
        assert_eq!(r.duplicated, vec![id("twice")]);
        assert_eq!(r.corrupt, vec![id("wrong")]);
        assert_eq!(r.unexpected, vec![id("stray")]);
        let text = r.to_string();
        assert!(text.starts_with("INVALID"), "{text}");
        assert!(text.contains("\n  lost: lost wrong"), "{text}");
    }
}
