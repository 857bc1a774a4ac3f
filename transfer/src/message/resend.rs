//! [`Resend`]: the receiver tells the sender which chunks to publish.
//!
//! It answers every manifest (for a new transfer: everything; after a
//! restart of either side: only what is missing), asks again for a chunk
//! that arrived corrupt, and asks for what is still missing when the queue
//! has fallen silent. The sender publishes the chunks named and nothing
//! else, so a request is idempotent and a stale one costs duplicates, never
//! a loss.
//!
//! Runs keep it small: a fresh 4 GiB transfer is `[[0,4096]]`. A
//! pathologically fragmented set is cut at [`MAX_RESEND_RANGES`] runs (the
//! lowest ones); the receiver asks for the rest once those have arrived
//! and the queue is silent again.

use crate::id::TransferId;
use crate::range::ChunkRange;

/// At most this many runs per request: 4096 runs are about 60 KiB of JSON.
pub const MAX_RESEND_RANGES: usize = 4096;

/// A request whose runs are not a sorted list of disjoint, non-empty runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResendError {
    /// More than [`MAX_RESEND_RANGES`] runs.
    #[error("{count} runs, more than {MAX_RESEND_RANGES}")]
    TooManyRanges {
        /// How many there are.
        count: usize,
    },
    /// A run with no index in it.
    #[error("run {0} is empty")]
    EmptyRange(ChunkRange),
    /// A run that starts before the previous one ends.
    #[error("run {next} does not start after run {previous}")]
    Unordered {
        /// The earlier run.
        previous: ChunkRange,
        /// The run that overlaps it or comes before it.
        next: ChunkRange,
    },
}

/// Please publish these chunks of this transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resend {
    transfer_id: TransferId,
    missing: Vec<ChunkRange>,
}

impl Resend {
    /// Checks that `missing` is sorted, disjoint, without empty runs and
    /// not longer than [`MAX_RESEND_RANGES`]. An empty list is valid: "I
    /// have everything, wait for the receipt".
    pub fn new(transfer_id: TransferId, missing: Vec<ChunkRange>) -> Result<Self, ResendError> {
        if missing.len() > MAX_RESEND_RANGES {
            return Err(ResendError::TooManyRanges {
                count: missing.len(),
            });
        }
        let mut previous: Option<ChunkRange> = None;
        for &range in &missing {
            if range.is_empty() {
                return Err(ResendError::EmptyRange(range));
            }
            if let Some(previous) = previous
                && range.start < previous.end
            {
                return Err(ResendError::Unordered {
                    previous,
                    next: range,
                });
            }
            previous = Some(range);
        }
        Ok(Self {
            transfer_id,
            missing,
        })
    }

    /// From runs already known to be valid (a bitmap's missing runs, cut
    /// at the limit).
    pub(crate) fn from_sorted_runs(
        transfer_id: TransferId,
        runs: impl Iterator<Item = ChunkRange>,
    ) -> Self {
        Self {
            transfer_id,
            missing: runs.take(MAX_RESEND_RANGES).collect(),
        }
    }

    /// Chunk `index` alone (after it arrived corrupt).
    pub fn single(transfer_id: TransferId, index: u64) -> Self {
        Self {
            transfer_id,
            missing: vec![ChunkRange::single(index)],
        }
    }

    /// The transfer.
    pub fn transfer_id(&self) -> &TransferId {
        &self.transfer_id
    }

    /// The runs, sorted and disjoint.
    pub fn missing(&self) -> &[ChunkRange] {
        &self.missing
    }

    /// How many chunks are asked for.
    pub fn chunk_count(&self) -> u64 {
        self.missing.iter().map(ChunkRange::len).sum()
    }

    /// One past the highest index asked for (0 if none).
    pub fn end(&self) -> u64 {
        self.missing.last().map_or(0, |r| r.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid() -> TransferId {
        TransferId::new("t").expect("valid")
    }

    #[test]
    fn validation() {
        let r = |s, e| ChunkRange::new(s, e);
        assert!(Resend::new(tid(), vec![]).is_ok());
        let ok = Resend::new(tid(), vec![r(0, 3), r(3, 4), r(10, 12)]).expect("valid");
        assert_eq!(ok.chunk_count(), 6);
        assert_eq!(ok.end(), 12);
        assert_eq!(
            Resend::new(tid(), vec![r(0, 3), r(2, 4)]),
            Err(ResendError::Unordered {
                previous: r(0, 3),
                next: r(2, 4)
            })
        );
        assert!(Resend::new(tid(), vec![r(5, 6), r(0, 1)]).is_err());
        assert_eq!(
            Resend::new(tid(), vec![r(4, 4)]),
            Err(ResendError::EmptyRange(r(4, 4)))
        );
        let many = (0..=MAX_RESEND_RANGES as u64)
            .map(|i| r(2 * i, 2 * i + 1))
            .collect();
        assert_eq!(
            Resend::new(tid(), many),
            Err(ResendError::TooManyRanges {
                count: MAX_RESEND_RANGES + 1
            })
        );
    }
}
