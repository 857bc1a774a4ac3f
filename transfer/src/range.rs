//! [`ChunkRange`]: a run of chunk indices, the unit of a resend request.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The chunk indices `start..end` (half-open, like `Range<u64>`). On the
/// JSON wire it is the pair `[start, end]`, so a request for every chunk
/// of a 4 GiB object is `[[0,4096]]`, whatever the object's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "(u64, u64)", into = "(u64, u64)")]
pub struct ChunkRange {
    /// The first index of the run.
    pub start: u64,
    /// One past the last index of the run.
    pub end: u64,
}

impl ChunkRange {
    /// `start..end`.
    pub const fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }

    /// The one index `index`.
    pub const fn single(index: u64) -> Self {
        Self {
            start: index,
            end: index.saturating_add(1),
        }
    }

    /// How many indices the run holds (0 if `end <= start`).
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the run holds no index.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `index` is in the run.
    pub const fn contains(&self, index: u64) -> bool {
        self.start <= index && index < self.end
    }
}

impl From<(u64, u64)> for ChunkRange {
    fn from((start, end): (u64, u64)) -> Self {
        Self { start, end }
    }
}

impl From<ChunkRange> for (u64, u64) {
    fn from(r: ChunkRange) -> Self {
        (r.start, r.end)
    }
}

impl fmt::Display for ChunkRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_a_pair() {
        let r = ChunkRange::new(3, 7);
        assert_eq!(serde_json::to_string(&r).expect("serialises"), "[3,7]");
        assert_eq!(
            serde_json::from_str::<ChunkRange>("[3,7]").expect("parses"),
            r
        );
        assert_eq!(r.len(), 4);
        assert!(r.contains(3) && r.contains(6) && !r.contains(7));
        assert!(ChunkRange::new(5, 5).is_empty());
        assert_eq!(ChunkRange::single(9), ChunkRange::new(9, 10));
    }
}
