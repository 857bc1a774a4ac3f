//! [`Bitmap`]: which chunks of a transfer the receiver holds (durably), or
//! which ones the sender still has to publish.
//!
//! One bit per chunk in `u64` words, so a 4 GiB object in 1 MiB chunks
//! costs 512 bytes and the largest transfer allowed
//! ([`MAX_CHUNK_COUNT`] chunks) 2 MiB. The receiver's driver persists it
//! next to the staging file (write a temporary file, fsync, rename, fsync
//! the directory) in this layout:
//!
//! ```text
//! offset  size        field
//!  0      4           magic "ICTB" (Intercloud Transfer Bitmap)
//!  4      1           format version, 1
//!  5      8           number of chunks n, u64 big-endian (at most MAX_CHUNK_COUNT)
//! 13      8           number of bits set, u64 big-endian (a consistency check)
//! 21      8·⌈n/64⌉    the words, each u64 little-endian; chunk i is
//!                     bit i mod 64 of word i div 64; bits past n are 0
//! ```
//!
//! [`Bitmap::decode`] refuses anything else (wrong length, bits past the
//! end, a count that does not match) rather than guess: a bitmap that
//! claimed a chunk the staging file does not hold would be caught by the
//! whole-object digest, but only after the whole object had been fetched.

use std::fmt;

use crate::MAX_CHUNK_COUNT;
use crate::range::ChunkRange;

const MAGIC: &[u8; 4] = b"ICTB";
const VERSION: u8 = 1;
/// Length of the encoded header, before the words.
pub const HEADER_LEN: usize = 21;

/// A persisted bitmap that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BitmapError {
    /// Fewer bytes than the header.
    #[error("bitmap is {len} bytes long, shorter than its {HEADER_LEN}-byte header")]
    Truncated {
        /// The length received.
        len: usize,
    },
    /// Not a bitmap file.
    #[error("bitmap does not start with \"ICTB\"")]
    BadMagic,
    /// A format version this code does not know.
    #[error("bitmap format version {0} is not supported (only 1 is)")]
    UnsupportedVersion(u8),
    /// More chunks than any valid manifest has.
    #[error("bitmap has {len} chunks, more than the limit of {MAX_CHUNK_COUNT}")]
    TooLong {
        /// The declared number of chunks.
        len: u64,
    },
    /// The words do not match the declared number of chunks.
    #[error("bitmap of {chunks} chunks must be {expected} bytes long, not {actual}")]
    WrongLength {
        /// The declared number of chunks.
        chunks: u64,
        /// The length that number implies.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// A bit is set for a chunk that does not exist.
    #[error("bitmap of {chunks} chunks has bits set past its end")]
    BitsPastEnd {
        /// The declared number of chunks.
        chunks: u64,
    },
    /// The declared count is not the number of bits set.
    #[error("bitmap declares {declared} chunks present but has {actual} bits set")]
    CountMismatch {
        /// The count in the header.
        declared: u64,
        /// The bits actually set.
        actual: u64,
    },
}

/// A set of chunk indices `0..len`.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitmap {
    len: u64,
    count: u64,
    words: Vec<u64>,
}

impl fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bitmap({}/{})", self.count, self.len)
    }
}

fn words_for(len: u64) -> usize {
    // len <= MAX_CHUNK_COUNT (2^24), so the word count fits any usize.
    usize::try_from(len.div_ceil(64)).unwrap_or(usize::MAX)
}

impl Bitmap {
    /// An empty set over `0..len`; refused above [`MAX_CHUNK_COUNT`].
    pub fn new(len: u64) -> Result<Self, BitmapError> {
        if len > MAX_CHUNK_COUNT {
            return Err(BitmapError::TooLong { len });
        }
        Ok(Self::with_len(len))
    }

    /// For lengths already checked (a validated manifest's chunk count).
    pub(crate) fn with_len(len: u64) -> Self {
        let len = len.min(MAX_CHUNK_COUNT);
        Self {
            len,
            count: 0,
            words: vec![0; words_for(len)],
        }
    }

    /// The number of chunks the set ranges over.
    pub const fn len(&self) -> u64 {
        self.len
    }

    /// How many chunks are in the set.
    pub const fn count(&self) -> u64 {
        self.count
    }

    /// Whether no chunk is in the set.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether every chunk is in the set.
    pub const fn is_complete(&self) -> bool {
        self.count == self.len
    }

    fn locate(&self, index: u64) -> Option<(usize, u64)> {
        if index >= self.len {
            return None;
        }
        let word = usize::try_from(index / 64).ok()?;
        Some((word, 1u64 << (index % 64)))
    }

    /// Whether `index` is in the set (false past the end).
    pub fn contains(&self, index: u64) -> bool {
        self.locate(index)
            .and_then(|(w, bit)| self.words.get(w).map(|word| word & bit != 0))
            .unwrap_or(false)
    }

    /// Adds `index`; true if it was not there. Indices past the end are
    /// ignored (false): callers check them against the manifest first.
    pub fn insert(&mut self, index: u64) -> bool {
        let Some((w, bit)) = self.locate(index) else {
            return false;
        };
        match self.words.get_mut(w) {
            Some(word) if *word & bit == 0 => {
                *word |= bit;
                self.count += 1;
                true
            }
            _ => false,
        }
    }

    /// Removes `index`; true if it was there.
    pub fn remove(&mut self, index: u64) -> bool {
        let Some((w, bit)) = self.locate(index) else {
            return false;
        };
        match self.words.get_mut(w) {
            Some(word) if *word & bit != 0 => {
                *word &= !bit;
                self.count -= 1;
                true
            }
            _ => false,
        }
    }

    /// Adds every index of `range` that is below [`len`](Self::len);
    /// returns how many were not there.
    pub fn insert_range(&mut self, range: ChunkRange) -> u64 {
        (range.start..range.end.min(self.len))
            .map(|i| u64::from(self.insert(i)))
            .sum()
    }

    /// Adds every index: the set becomes complete.
    pub fn fill(&mut self) {
        self.words.fill(u64::MAX);
        if let (Some(last), rem @ 1..) = (self.words.last_mut(), self.len % 64) {
            *last = (1u64 << rem) - 1;
        }
        self.count = self.len;
    }

    /// Removes every index.
    pub fn clear(&mut self) {
        self.words.fill(0);
        self.count = 0;
    }

    fn next_matching(&self, from: u64, present: bool) -> Option<u64> {
        if from >= self.len {
            return None;
        }
        let first = usize::try_from(from / 64).ok()?;
        let mut mask = u64::MAX << (from % 64);
        for (w, &word) in self.words.iter().enumerate().skip(first) {
            let word = if present { word } else { !word } & mask;
            if word != 0 {
                let index = (w as u64) * 64 + u64::from(word.trailing_zeros());
                // Past the end, the words hold zeros: "absent" bits there
                // are not chunks.
                return (index < self.len).then_some(index);
            }
            mask = u64::MAX;
        }
        None
    }

    /// The lowest index `>= from` in the set.
    pub fn next_present(&self, from: u64) -> Option<u64> {
        self.next_matching(from, true)
    }

    /// The lowest index `>= from` not in the set.
    pub fn next_absent(&self, from: u64) -> Option<u64> {
        self.next_matching(from, false)
    }

    /// The runs of indices not in the set, in order, each as long as it
    /// can be.
    pub fn missing_ranges(&self) -> MissingRanges<'_> {
        MissingRanges {
            bitmap: self,
            from: 0,
        }
    }

    /// The length of [`encode`](Self::encode)'s output for `len` chunks.
    pub fn encoded_len(len: u64) -> usize {
        HEADER_LEN + 8 * words_for(len)
    }

    /// The persisted form (layout in the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::encoded_len(self.len));
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        for word in &self.words {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// Reads the persisted form back, refusing anything inconsistent.
    pub fn decode(bytes: &[u8]) -> Result<Self, BitmapError> {
        let (Some(magic), Some(&version), Some(len), Some(count), Some(body)) = (
            bytes.get(0..4),
            bytes.get(4),
            bytes.get(5..13).and_then(read_u64_be),
            bytes.get(13..21).and_then(read_u64_be),
            bytes.get(HEADER_LEN..),
        ) else {
            return Err(BitmapError::Truncated { len: bytes.len() });
        };
        if magic != MAGIC {
            return Err(BitmapError::BadMagic);
        }
        if version != VERSION {
            return Err(BitmapError::UnsupportedVersion(version));
        }
        if len > MAX_CHUNK_COUNT {
            return Err(BitmapError::TooLong { len });
        }
        let expected = Self::encoded_len(len);
        if bytes.len() != expected {
            return Err(BitmapError::WrongLength {
                chunks: len,
                expected,
                actual: bytes.len(),
            });
        }
        let words: Vec<u64> = body
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                u64::from_le_bytes(b)
            })
            .collect();
        let tail_bits = len % 64;
        if let (Some(last), 1..) = (words.last(), tail_bits)
            && last >> tail_bits != 0
        {
            return Err(BitmapError::BitsPastEnd { chunks: len });
        }
        let actual: u64 = words.iter().map(|w| u64::from(w.count_ones())).sum();
        if actual != count {
            return Err(BitmapError::CountMismatch {
                declared: count,
                actual,
            });
        }
        Ok(Self { len, count, words })
    }
}

fn read_u64_be(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// The iterator of [`Bitmap::missing_ranges`].
#[derive(Debug)]
pub struct MissingRanges<'a> {
    bitmap: &'a Bitmap,
    from: u64,
}

impl Iterator for MissingRanges<'_> {
    type Item = ChunkRange;

    fn next(&mut self) -> Option<ChunkRange> {
        let start = self.bitmap.next_absent(self.from)?;
        let end = self.bitmap.next_present(start).unwrap_or(self.bitmap.len());
        self.from = end;
        Some(ChunkRange::new(start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(b: &Bitmap) -> Vec<(u64, u64)> {
        b.missing_ranges().map(Into::into).collect()
    }

    fn with(len: u64, present: &[u64]) -> Bitmap {
        let mut b = Bitmap::new(len).expect("small");
        for &i in present {
            assert!(b.insert(i), "{i} inserted twice");
        }
        b
    }

    #[test]
    fn ranges_at_word_boundaries() {
        // 0, 63, 64 and the last chunk present in a 130-chunk map.
        let b = with(130, &[0, 63, 64, 129]);
        assert_eq!(ranges(&b), vec![(1, 63), (65, 129)]);
        assert_eq!(b.count(), 4);
        assert!(!b.is_complete());

        // Only the boundaries missing.
        let mut b = Bitmap::new(130).expect("small");
        b.fill();
        for i in [0, 63, 64, 129] {
            assert!(b.remove(i));
        }
        assert_eq!(ranges(&b), vec![(0, 1), (63, 65), (129, 130)]);
        assert_eq!(b.count(), 126);
    }

    #[test]
    fn exact_multiple_of_64_and_empty_maps() {
        let mut b = with(128, &[127]);
        assert_eq!(ranges(&b), vec![(0, 127)]);
        b.fill();
        assert!(b.is_complete());
        assert_eq!(ranges(&b), vec![]);
        assert_eq!(b.count(), 128);

        let empty = Bitmap::new(0).expect("empty");
        assert!(empty.is_complete());
        assert_eq!(ranges(&empty), vec![]);
        assert_eq!(Bitmap::decode(&empty.encode()), Ok(empty));
    }

    #[test]
    fn fill_sets_only_real_chunks() {
        let mut b = Bitmap::new(70).expect("small");
        b.fill();
        assert_eq!(b.count(), 70);
        assert_eq!(b.next_absent(0), None);
        assert_eq!(Bitmap::decode(&b.encode()), Ok(b));
    }

    #[test]
    fn insert_remove_and_past_the_end() {
        let mut b = Bitmap::new(10).expect("small");
        assert!(b.insert(3));
        assert!(!b.insert(3));
        assert!(!b.insert(10));
        assert!(!b.contains(10));
        assert!(b.remove(3));
        assert!(!b.remove(3));
        assert_eq!(b.insert_range(ChunkRange::new(8, 20)), 2);
        assert_eq!(ranges(&b), vec![(0, 8)]);
        assert_eq!(b.next_present(0), Some(8));
        assert_eq!(b.next_present(10), None);
    }

    #[test]
    fn round_trip() {
        let b = with(4097, &[0, 1, 63, 64, 1000, 4095, 4096]);
        let bytes = b.encode();
        assert_eq!(bytes.len(), Bitmap::encoded_len(4097));
        assert_eq!(Bitmap::decode(&bytes), Ok(b));
    }

    #[test]
    fn four_gib_in_one_mib_chunks_is_small() {
        let chunks = (4u64 << 30) / (1 << 20);
        let mut b = Bitmap::new(chunks).expect("4096 chunks");
        b.insert_range(ChunkRange::new(0, 1000));
        assert_eq!(b.encode().len(), HEADER_LEN + 512);
    }

    #[test]
    fn corrupt_encodings_are_refused() {
        let good = with(70, &[1, 69]).encode();
        assert_eq!(
            Bitmap::decode(&good[..10]),
            Err(BitmapError::Truncated { len: 10 })
        );
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(Bitmap::decode(&bad), Err(BitmapError::BadMagic));
        let mut bad = good.clone();
        bad[4] = 2;
        assert_eq!(
            Bitmap::decode(&bad),
            Err(BitmapError::UnsupportedVersion(2))
        );
        assert!(matches!(
            Bitmap::decode(&good[..good.len() - 1]),
            Err(BitmapError::WrongLength { chunks: 70, .. })
        ));
        let mut bad = good.clone();
        bad.push(0);
        assert!(matches!(
            Bitmap::decode(&bad),
            Err(BitmapError::WrongLength { .. })
        ));
        // Chunk 70 does not exist: bit 6 of word 1.
        let mut bad = good.clone();
        bad[HEADER_LEN + 8] |= 1 << 6;
        assert_eq!(
            Bitmap::decode(&bad),
            Err(BitmapError::BitsPastEnd { chunks: 70 })
        );
        let mut bad = good.clone();
        bad[HEADER_LEN] |= 1 << 4;
        assert_eq!(
            Bitmap::decode(&bad),
            Err(BitmapError::CountMismatch {
                declared: 2,
                actual: 3
            })
        );
        let mut huge = good;
        huge[5..13].copy_from_slice(&(MAX_CHUNK_COUNT + 1).to_be_bytes());
        assert!(matches!(
            Bitmap::decode(&huge),
            Err(BitmapError::TooLong { .. })
        ));
        assert!(Bitmap::new(MAX_CHUNK_COUNT + 1).is_err());
    }
}
