//! The owner's record of a federated object (pure): its name rules, its
//! replicas and their states, and the placement decision.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The most replicas an object may ask for.
pub const MAX_REPLICAS: u32 = 10;

/// The longest object name (the object id at a holder is
/// `<owner>.<name>`, at most 128 bytes with the cloud id).
pub const MAX_NAME_LEN: usize = 64;

/// Checks an object name: 1..=64 of `[A-Za-z0-9._-]`, not starting with
/// `.` or `-`.
pub fn validate_name(name: &str) -> Result<(), String> {
    let first = name.bytes().next().ok_or("the object name is empty")?;
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "the object name {name:?} is {} bytes, more than {MAX_NAME_LEN}",
            name.len()
        ));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if first == b'.' || first == b'-' || !name.bytes().all(allowed) {
        return Err(format!(
            "the object name {name:?} may hold only letters, digits, '.', '_' and '-', and not start with '.' or '-'"
        ));
    }
    Ok(())
}

/// The object id a holder stores `name` of `owner` under.
pub fn holder_object_id(owner: &str, name: &str) -> String {
    format!("{owner}.{name}")
}

/// Where a replica stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaState {
    /// Transfer under way.
    Pending,
    /// The holder receipted a persisted copy.
    Stored,
    /// The transfer failed, or the holder is gone.
    Lost,
}

impl ReplicaState {
    /// The word the API shows.
    pub fn words(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Stored => "stored",
            Self::Lost => "lost",
        }
    }
}

/// One copy of an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    /// The holder.
    pub cloud: String,
    /// Where it stands.
    pub state: ReplicaState,
    /// The transfer that made (or is making) it.
    pub transfer_id: String,
    /// When the holder committed it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub receipted_at: Option<OffsetDateTime>,
    /// Why it is lost.
    pub detail: String,
}

/// What the owner knows of one of its objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Its name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// How many stored replicas it must have.
    pub replicas_wanted: u32,
    /// The region constraint of its placement, if any.
    pub region: String,
    /// When it was put.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Every replica, including lost ones.
    pub replicas: Vec<Replica>,
}

impl ObjectRecord {
    /// The clouds holding a stored replica.
    pub fn stored(&self) -> impl Iterator<Item = &Replica> {
        self.replicas
            .iter()
            .filter(|r| r.state == ReplicaState::Stored)
    }

    /// Replicas stored or on their way.
    pub fn live(&self) -> usize {
        self.replicas
            .iter()
            .filter(|r| r.state != ReplicaState::Lost)
            .count()
    }

    /// How many more replicas must be placed.
    pub fn missing(&self) -> usize {
        (self.replicas_wanted as usize).saturating_sub(self.live())
    }

    /// Whether `cloud` holds (or is getting) a copy.
    pub fn holds(&self, cloud: &str) -> bool {
        self.replicas
            .iter()
            .any(|r| r.cloud == cloud && r.state != ReplicaState::Lost)
    }

    /// Marks the replica made by `transfer_id`.
    pub fn settle(
        &mut self,
        transfer_id: &str,
        state: ReplicaState,
        at: Option<OffsetDateTime>,
        detail: &str,
    ) -> bool {
        match self
            .replicas
            .iter_mut()
            .find(|r| r.transfer_id == transfer_id)
        {
            Some(r) => {
                r.state = state;
                r.receipted_at = at.or(r.receipted_at);
                detail.clone_into(&mut r.detail);
                true
            }
            None => false,
        }
    }

    /// Marks every live replica on `cloud` lost.
    pub fn lose(&mut self, cloud: &str, why: &str) -> bool {
        let mut changed = false;
        for r in &mut self.replicas {
            if r.cloud == cloud && r.state != ReplicaState::Lost {
                r.state = ReplicaState::Lost;
                why.clone_into(&mut r.detail);
                changed = true;
            }
        }
        changed
    }
}

/// Chooses `n` clouds among `candidates` (best first, possibly repeated)
/// that are not in `exclude`. Errs naming how many there were.
pub fn place(candidates: &[String], exclude: &[&str], n: usize) -> Result<Vec<String>, String> {
    let mut chosen: Vec<String> = Vec::new();
    for c in candidates {
        if chosen.len() == n {
            break;
        }
        if !exclude.contains(&c.as_str()) && !chosen.contains(c) {
            chosen.push(c.clone());
        }
    }
    if chosen.len() < n {
        return Err(format!(
            "{n} replica(s) wanted but only {} suitable cloud(s) are available: {}",
            chosen.len(),
            if chosen.is_empty() {
                "none".to_owned()
            } else {
                chosen.join(", ")
            }
        ));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ObjectRecord {
        ObjectRecord {
            name: "o".into(),
            size: 1,
            sha256: "00".into(),
            replicas_wanted: 2,
            region: String::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            replicas: vec![
                Replica {
                    cloud: "cloud-b".into(),
                    state: ReplicaState::Stored,
                    transfer_id: "t1".into(),
                    receipted_at: None,
                    detail: String::new(),
                },
                Replica {
                    cloud: "cloud-c".into(),
                    state: ReplicaState::Pending,
                    transfer_id: "t2".into(),
                    receipted_at: None,
                    detail: String::new(),
                },
            ],
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("backup-2026.tar").is_ok());
        assert!(validate_name("").expect_err("refused").contains("empty"));
        assert!(
            validate_name(".hidden")
                .expect_err("refused")
                .contains("not start")
        );
        assert!(
            validate_name("a/b")
                .expect_err("refused")
                .contains("only letters")
        );
        assert!(
            validate_name(&"x".repeat(65))
                .expect_err("refused")
                .contains("65 bytes")
        );
    }

    #[test]
    fn placement_skips_excluded_and_repeated_clouds() {
        let candidates = ["cloud-a", "cloud-b", "cloud-a", "cloud-c"].map(String::from);
        assert_eq!(
            place(&candidates, &["cloud-b"], 2).expect("accepted"),
            vec!["cloud-a".to_owned(), "cloud-c".to_owned()]
        );
        let err = place(&candidates, &["cloud-b"], 3).expect_err("refused");
        assert!(err.contains("3 replica(s) wanted but only 2"), "{err}");
    }

    #[test]
    fn losing_a_holder_makes_a_replica_missing() {
        let mut r = record();
        assert_eq!(r.missing(), 0);
        assert!(r.holds("cloud-c"));
        assert!(r.lose("cloud-b", "revoked"));
        assert_eq!(r.missing(), 1);
        assert!(!r.holds("cloud-b"));
        assert!(!r.lose("cloud-b", "again"));
        assert!(r.settle("t2", ReplicaState::Stored, None, ""));
        assert_eq!(r.stored().count(), 1);
        assert!(!r.settle("t9", ReplicaState::Stored, None, ""));
    }
}
