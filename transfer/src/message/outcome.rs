//! How a transfer ends, as the receiver tells the sender: a [`Receipt`]
//! (committed) or a [`Refusal`] (will not be).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::id::{ObjectId, TransferId};
use crate::message::Manifest;

/// The receiver committed the object. Sent after the commit is durable,
/// and sent again, identical, for any later manifest or chunk of the same
/// transfer: the receiver keeps it as its record of the commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The transfer.
    pub transfer_id: TransferId,
    /// The object committed.
    pub object_id: ObjectId,
    /// The digest the receiver computed over the committed bytes.
    pub sha256: Sha256Digest,
    /// The committed size.
    pub size: u64,
    /// When the receiver committed, to the millisecond (the wire's
    /// precision, so that a receipt read back compares equal).
    pub committed_at: SystemTime,
}

impl Receipt {
    /// Whether this receipt is the commit of `manifest`: same transfer,
    /// object, digest and size.
    pub fn matches(&self, manifest: &Manifest) -> bool {
        self.transfer_id == *manifest.transfer_id()
            && self.object_id == *manifest.object_id()
            && self.sha256 == manifest.sha256()
            && self.size == manifest.size()
    }
}

/// Milliseconds since the Unix epoch (0 before it, saturating far after).
pub(crate) fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `t` with its sub-millisecond part dropped.
pub(crate) fn truncate_to_millis(t: SystemTime) -> SystemTime {
    from_unix_millis(unix_millis(t)).unwrap_or(t)
}

pub(crate) fn from_unix_millis(ms: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

/// Why a receiver will not commit a transfer. On the wire, the snake_case
/// name; a code from a newer peer reads as [`RefusalReason::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefusalReason {
    /// The manifest is inconsistent (size against chunk count, chunk size
    /// bounds, metadata); the detail has the numbers.
    InvalidManifest,
    /// The manifest names another cloud as receiver.
    WrongReceiver,
    /// The transfer id is already used by a different manifest.
    Conflict,
    /// A chunk for a transfer the receiver has no manifest for.
    UnknownTransfer,
    /// The receiver's disk is full.
    NoSpace,
    /// The whole object's digest did not match, even after fetching every
    /// chunk again: the source changed under the sender, most likely.
    DigestMismatch,
    /// Another storage failure on the receiver.
    StorageFailure,
    /// The bytes are intact but not what the object's kind requires (an
    /// image that is not a valid qcow2, an OVF that does not parse).
    InvalidContent,
    /// No new chunk came for so long that the receiver gave up.
    Abandoned,
    /// A reason this version does not know.
    #[serde(other)]
    Unknown,
}

impl RefusalReason {
    /// Whether a new transfer of the same object may succeed later without
    /// anyone changing anything but time (space freed, disk repaired, the
    /// network back).
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::NoSpace | Self::StorageFailure | Self::Abandoned)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidManifest => "invalid_manifest",
            Self::WrongReceiver => "wrong_receiver",
            Self::Conflict => "conflict",
            Self::UnknownTransfer => "unknown_transfer",
            Self::NoSpace => "no_space",
            Self::DigestMismatch => "digest_mismatch",
            Self::StorageFailure => "storage_failure",
            Self::InvalidContent => "invalid_content",
            Self::Abandoned => "abandoned",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// At most this many bytes of a refusal's detail go on the wire.
pub const MAX_REFUSAL_DETAIL_LEN: usize = 1024;

/// The receiver will not commit this transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The transfer.
    pub transfer_id: TransferId,
    /// Why, for programs.
    pub reason: RefusalReason,
    /// Why, for operators (at most [`MAX_REFUSAL_DETAIL_LEN`] bytes).
    pub detail: String,
}

impl Refusal {
    /// A refusal; `detail` is cut to [`MAX_REFUSAL_DETAIL_LEN`] bytes on a
    /// character boundary.
    pub fn new(transfer_id: TransferId, reason: RefusalReason, detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        if detail.len() > MAX_REFUSAL_DETAIL_LEN {
            let mut cut = MAX_REFUSAL_DETAIL_LEN;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
        }
        Self {
            transfer_id,
            reason,
            detail,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "transfer {} refused ({}): {}",
            self.transfer_id, self.reason, self.detail
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_is_cut_on_a_char_boundary() {
        let tid = TransferId::new("t").expect("valid");
        let r = Refusal::new(tid, RefusalReason::NoSpace, "é".repeat(600));
        assert_eq!(r.detail.len(), MAX_REFUSAL_DETAIL_LEN);
        assert!(r.reason.is_retryable());
        assert!(!RefusalReason::Conflict.is_retryable());
    }

    #[test]
    fn millis() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(unix_millis(t), 1_700_000_000_123);
        assert_eq!(
            truncate_to_millis(t),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
        );
        assert_eq!(unix_millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
