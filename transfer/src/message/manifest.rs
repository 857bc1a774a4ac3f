//! [`Manifest`]: what is about to be sent, announced before any chunk.
//!
//! A manifest exists only validated: the chunk size is within
//! [`MIN_CHUNK_SIZE`]`..=`[`MAX_CHUNK_SIZE`], the chunk count is exactly
//! `⌈size / chunk_size⌉` and at most [`MAX_CHUNK_COUNT`] (which bounds the
//! receiver's bitmap, hence its memory, whatever a peer declares), the
//! metadata is small and printable. Every chunk but the last is
//! `chunk_size` bytes long; the last one holds the rest (1 to `chunk_size`
//! bytes); an empty object has no chunk at all.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::id::{CloudId, ObjectId, TransferId};
use crate::{MAX_CHUNK_COUNT, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};

/// At most this many metadata entries.
pub const MAX_METADATA_ENTRIES: usize = 64;
/// A metadata key is at most this many bytes.
pub const MAX_METADATA_KEY_LEN: usize = 128;
/// A metadata value is at most this many bytes.
pub const MAX_METADATA_VALUE_LEN: usize = 1024;

/// What the object is, for the receiver's storage layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A virtual machine image (workload mobility).
    Image,
    /// A stored object (storage federation).
    Object,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Image => "image",
            Self::Object => "object",
        })
    }
}

/// A manifest that cannot be valid, with the numbers that show why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The chunk size is outside the allowed bounds.
    #[error("chunk size {chunk_size} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE} bytes")]
    ChunkSizeOutOfBounds {
        /// The declared chunk size.
        chunk_size: u64,
    },
    /// The declared chunk count does not cover the declared size.
    #[error(
        "{size} bytes in chunks of {chunk_size} make {expected} chunks, but the manifest declares {chunk_count}"
    )]
    SizeMismatch {
        /// The declared object size.
        size: u64,
        /// The declared chunk size.
        chunk_size: u64,
        /// The declared chunk count.
        chunk_count: u64,
        /// `⌈size / chunk_size⌉`.
        expected: u64,
    },
    /// More chunks than a receiver keeps a bitmap for.
    #[error(
        "{size} bytes in chunks of {chunk_size} make {chunk_count} chunks, more than the limit of {MAX_CHUNK_COUNT}"
    )]
    TooManyChunks {
        /// The declared object size.
        size: u64,
        /// The declared chunk size.
        chunk_size: u64,
        /// The chunk count.
        chunk_count: u64,
    },
    /// Too many metadata entries.
    #[error("{count} metadata entries, more than {MAX_METADATA_ENTRIES}")]
    TooMuchMetadata {
        /// How many there are.
        count: usize,
    },
    /// A metadata key that is empty, too long or has other characters than
    /// ASCII letters, digits and `. _ - : /`.
    #[error(
        "metadata key {0:?} must be 1 to {MAX_METADATA_KEY_LEN} of ASCII letters, digits, '.', '_', '-', ':', '/'"
    )]
    BadMetadataKey(String),
    /// A metadata value that is too long or holds control characters.
    #[error(
        "metadata value of {key:?} must be at most {MAX_METADATA_VALUE_LEN} bytes without control characters ({len} bytes)"
    )]
    BadMetadataValue {
        /// Its key.
        key: String,
        /// Its length.
        len: usize,
    },
}

/// What the sender knows when it plans a transfer; [`Manifest::new`]
/// derives the chunk count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestSpec {
    /// This transfer.
    pub transfer_id: TransferId,
    /// The object moved.
    pub object_id: ObjectId,
    /// Image or object.
    pub kind: ObjectKind,
    /// The object's size in bytes.
    pub size: u64,
    /// Every chunk's size but the last one's.
    pub chunk_size: u64,
    /// SHA-256 of the whole object.
    pub sha256: Sha256Digest,
    /// Free-form, small (content type, image format, …).
    pub metadata: BTreeMap<String, String>,
    /// The sending cloud.
    pub sender: CloudId,
    /// The receiving cloud.
    pub receiver: CloudId,
}

/// A validated manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    spec: ManifestSpec,
    chunk_count: u64,
}

impl Manifest {
    /// The sender's constructor: derives the chunk count from the size.
    pub fn new(spec: ManifestSpec) -> Result<Self, ManifestError> {
        check_chunk_size(spec.chunk_size)?;
        let chunk_count = spec.size.div_ceil(spec.chunk_size);
        Self::validate(spec, chunk_count)
    }

    /// The receiver's constructor: checks a declared chunk count against
    /// the declared size, and everything else.
    pub fn validate(spec: ManifestSpec, chunk_count: u64) -> Result<Self, ManifestError> {
        let ManifestSpec {
            size, chunk_size, ..
        } = spec;
        check_chunk_size(chunk_size)?;
        let expected = size.div_ceil(chunk_size);
        if chunk_count != expected {
            return Err(ManifestError::SizeMismatch {
                size,
                chunk_size,
                chunk_count,
                expected,
            });
        }
        if chunk_count > MAX_CHUNK_COUNT {
            return Err(ManifestError::TooManyChunks {
                size,
                chunk_size,
                chunk_count,
            });
        }
        check_metadata(&spec.metadata)?;
        Ok(Self { spec, chunk_count })
    }

    /// This transfer.
    pub fn transfer_id(&self) -> &TransferId {
        &self.spec.transfer_id
    }

    /// The object moved.
    pub fn object_id(&self) -> &ObjectId {
        &self.spec.object_id
    }

    /// Image or object.
    pub fn kind(&self) -> ObjectKind {
        self.spec.kind
    }

    /// The object's size in bytes.
    pub fn size(&self) -> u64 {
        self.spec.size
    }

    /// Every chunk's size but the last one's.
    pub fn chunk_size(&self) -> u64 {
        self.spec.chunk_size
    }

    /// `⌈size / chunk_size⌉`.
    pub fn chunk_count(&self) -> u64 {
        self.chunk_count
    }

    /// SHA-256 of the whole object.
    pub fn sha256(&self) -> Sha256Digest {
        self.spec.sha256
    }

    /// The metadata.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.spec.metadata
    }

    /// The sending cloud.
    pub fn sender(&self) -> &CloudId {
        &self.spec.sender
    }

    /// The receiving cloud.
    pub fn receiver(&self) -> &CloudId {
        &self.spec.receiver
    }

    /// All fields but the chunk count.
    pub fn spec(&self) -> &ManifestSpec {
        &self.spec
    }

    /// Where chunk `index` starts in the object, if it exists.
    pub fn chunk_offset(&self, index: u64) -> Option<u64> {
        (index < self.chunk_count).then(|| index * self.spec.chunk_size)
    }

    /// How long chunk `index` is, if it exists: `chunk_size`, or the rest
    /// for the last one.
    pub fn chunk_len(&self, index: u64) -> Option<u64> {
        let offset = self.chunk_offset(index)?;
        Some((self.spec.size - offset).min(self.spec.chunk_size))
    }

    /// The bytes in `count` distinct chunks, `has_last` saying whether the
    /// last (possibly short) chunk is one of them: progress from a bitmap's
    /// count, without summing lengths.
    pub(crate) fn bytes_in(&self, count: u64, has_last: bool) -> u64 {
        let last_short = self
            .chunk_count
            .checked_sub(1)
            .and_then(|last| self.chunk_len(last))
            .map_or(0, |len| self.spec.chunk_size - len);
        (count * self.spec.chunk_size).saturating_sub(if has_last { last_short } else { 0 })
    }
}

fn check_chunk_size(chunk_size: u64) -> Result<(), ManifestError> {
    if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        Ok(())
    } else {
        Err(ManifestError::ChunkSizeOutOfBounds { chunk_size })
    }
}

fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), ManifestError> {
    if metadata.len() > MAX_METADATA_ENTRIES {
        return Err(ManifestError::TooMuchMetadata {
            count: metadata.len(),
        });
    }
    for (key, value) in metadata {
        let key_ok = !key.is_empty()
            && key.len() <= MAX_METADATA_KEY_LEN
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_:/".contains(&b));
        if !key_ok {
            return Err(ManifestError::BadMetadataKey(key.clone()));
        }
        if value.len() > MAX_METADATA_VALUE_LEN || value.chars().any(char::is_control) {
            return Err(ManifestError::BadMetadataValue {
                key: key.clone(),
                len: value.len(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const KIB: u64 = 1024;
    pub(crate) const MIB: u64 = 1024 * KIB;

    pub(crate) fn spec(size: u64, chunk_size: u64) -> ManifestSpec {
        ManifestSpec {
            transfer_id: TransferId::new("t-1").expect("valid"),
            object_id: ObjectId::new("disk.qcow2").expect("valid"),
            kind: ObjectKind::Image,
            size,
            chunk_size,
            sha256: Sha256Digest::of(b"whatever"),
            metadata: BTreeMap::from([("format".to_owned(), "qcow2".to_owned())]),
            sender: CloudId::new("cloud-a").expect("valid"),
            receiver: CloudId::new("cloud-b").expect("valid"),
        }
    }

    pub(crate) fn manifest(size: u64, chunk_size: u64) -> Manifest {
        Manifest::new(spec(size, chunk_size)).expect("valid manifest")
    }

    #[test]
    fn chunk_geometry() {
        let m = manifest(150 * KIB, 64 * KIB);
        assert_eq!(m.chunk_count(), 3);
        assert_eq!(m.chunk_len(0), Some(64 * KIB));
        assert_eq!(m.chunk_len(2), Some(22 * KIB));
        assert_eq!(m.chunk_offset(2), Some(128 * KIB));
        assert_eq!(m.chunk_len(3), None);
        assert_eq!(m.bytes_in(3, true), 150 * KIB);
        assert_eq!(m.bytes_in(2, false), 128 * KIB);
        assert_eq!(m.bytes_in(1, true), 22 * KIB);

        let exact = manifest(128 * KIB, 64 * KIB);
        assert_eq!(exact.chunk_count(), 2);
        assert_eq!(exact.chunk_len(1), Some(64 * KIB));

        let tiny = manifest(10, 64 * KIB);
        assert_eq!(tiny.chunk_count(), 1);
        assert_eq!(tiny.chunk_len(0), Some(10));

        let empty = manifest(0, 64 * KIB);
        assert_eq!(empty.chunk_count(), 0);
        assert_eq!(empty.chunk_len(0), None);
        assert_eq!(empty.bytes_in(0, false), 0);

        let big = manifest(4 << 30, MIB);
        assert_eq!(big.chunk_count(), 4096);
    }

    #[test]
    fn inconsistent_sizes_are_refused_with_the_numbers() {
        let err = Manifest::validate(spec(150 * KIB, 64 * KIB), 2).expect_err("mismatch");
        assert_eq!(
            err,
            ManifestError::SizeMismatch {
                size: 150 * KIB,
                chunk_size: 64 * KIB,
                chunk_count: 2,
                expected: 3
            }
        );
        assert_eq!(
            err.to_string(),
            "153600 bytes in chunks of 65536 make 3 chunks, but the manifest declares 2"
        );
        assert!(Manifest::validate(spec(150 * KIB, 64 * KIB), 4).is_err());
        assert!(Manifest::validate(spec(0, 64 * KIB), 1).is_err());
        assert!(Manifest::validate(spec(150 * KIB, 64 * KIB), 3).is_ok());
    }

    #[test]
    fn chunk_size_and_count_bounds() {
        for bad in [0, 1, 64 * KIB - 1, 8 * MIB + 1, u64::MAX] {
            assert_eq!(
                Manifest::new(spec(MIB, bad)),
                Err(ManifestError::ChunkSizeOutOfBounds { chunk_size: bad })
            );
        }
        assert!(Manifest::new(spec(MIB, 64 * KIB)).is_ok());
        assert!(Manifest::new(spec(MIB, 8 * MIB)).is_ok());
        let too_big = MAX_CHUNK_COUNT * 64 * KIB + 1;
        assert!(matches!(
            Manifest::new(spec(too_big, 64 * KIB)),
            Err(ManifestError::TooManyChunks { .. })
        ));
        assert!(Manifest::new(spec(MAX_CHUNK_COUNT * 64 * KIB, 64 * KIB)).is_ok());
        assert!(matches!(
            Manifest::new(spec(u64::MAX, 64 * KIB)),
            Err(ManifestError::TooManyChunks { .. })
        ));
    }

    #[test]
    fn metadata_rules() {
        let with = |k: &str, v: &str| {
            let mut s = spec(MIB, MIB);
            s.metadata.insert(k.to_owned(), v.to_owned());
            Manifest::new(s)
        };
        assert!(with("content-type", "application/octet-stream").is_ok());
        assert!(with("os:distro/version", "debian 13").is_ok());
        assert!(matches!(
            with("", "x"),
            Err(ManifestError::BadMetadataKey(_))
        ));
        assert!(matches!(
            with("a b", "x"),
            Err(ManifestError::BadMetadataKey(_))
        ));
        assert!(matches!(
            with("k", "line\nbreak"),
            Err(ManifestError::BadMetadataValue { .. })
        ));
        assert!(matches!(
            with("k", &"v".repeat(1025)),
            Err(ManifestError::BadMetadataValue { len: 1025, .. })
        ));
        let mut s = spec(MIB, MIB);
        s.metadata = (0..65).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(
            Manifest::new(s),
            Err(ManifestError::TooMuchMetadata { count: 65 })
        );
    }
}
