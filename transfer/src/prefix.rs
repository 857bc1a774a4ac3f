//! [`PrefixDigest`]: the SHA-256 of an object's leading bytes, computed
//! while the chunks arrive, so that the whole-object check at the end only
//! has to read what did not arrive in order.
//!
//! Chunks mostly arrive in index order, each one in memory anyway (its own
//! digest was just checked). Feeding the next one to a running SHA-256 costs
//! one more pass over bytes that are already in the cache; the alternative is
//! reading the whole staging file back once every chunk is there, which on a
//! large object is seconds between the last chunk and the receipt.
//!
//! The state lives in memory only: after a restart the driver starts a new
//! one at byte 0 and reads back what it needs. It never decides anything on
//! its own: the driver still compares the final digest with the manifest's.

use sha2::{Digest as _, Sha256};

use crate::digest::Sha256Digest;
use crate::message::Manifest;

/// A running SHA-256 over the first [`hashed`](Self::hashed) bytes of an
/// object.
#[derive(Clone)]
pub struct PrefixDigest {
    hasher: Sha256,
    hashed: u64,
    chunk_size: u64,
    size: u64,
}

impl std::fmt::Debug for PrefixDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixDigest")
            .field("hashed", &self.hashed)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl PrefixDigest {
    /// Nothing hashed yet, for the object `manifest` describes.
    pub fn new(manifest: &Manifest) -> Self {
        Self {
            hasher: Sha256::new(),
            hashed: 0,
            chunk_size: manifest.chunk_size(),
            size: manifest.size(),
        }
    }

    /// How many leading bytes are hashed.
    pub fn hashed(&self) -> u64 {
        self.hashed
    }

    /// The index of the chunk that would extend the prefix.
    pub fn next_index(&self) -> u64 {
        self.hashed / self.chunk_size
    }

    /// Whether the whole object is hashed.
    pub fn is_complete(&self) -> bool {
        self.hashed == self.size
    }

    /// Hashes chunk `index` if it is the next one (and `payload` fits the
    /// object); says whether it did. A chunk that is not next is left for
    /// later: the driver feeds it from disk with [`absorb`](Self::absorb).
    pub fn feed(&mut self, index: u64, payload: &[u8]) -> bool {
        let fits = self.hashed.is_multiple_of(self.chunk_size)
            && index == self.next_index()
            && (payload.len() as u64) <= self.size - self.hashed;
        if fits {
            self.absorb(payload);
        }
        fits
    }

    /// Hashes the next `bytes` of the object, read back from the staging
    /// file from offset [`hashed`](Self::hashed). Bytes beyond the object's
    /// size are ignored.
    pub fn absorb(&mut self, bytes: &[u8]) {
        let room = usize::try_from(self.size - self.hashed).unwrap_or(usize::MAX);
        let take = bytes.get(..room.min(bytes.len())).unwrap_or_default();
        self.hasher.update(take);
        self.hashed += take.len() as u64;
    }

    /// The digest of the hashed prefix: the whole object's once
    /// [`is_complete`](Self::is_complete).
    pub fn finish(self) -> Sha256Digest {
        Sha256Digest::from_bytes(self.hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CloudId, ManifestSpec, ObjectId, ObjectKind, TransferId};

    fn manifest(data: &[u8], chunk_size: u64) -> Manifest {
        Manifest::new(ManifestSpec {
            transfer_id: TransferId::new("t1").expect("valid"),
            object_id: ObjectId::new("o1").expect("valid"),
            kind: ObjectKind::Object,
            size: data.len() as u64,
            chunk_size,
            sha256: Sha256Digest::of(data),
            metadata: Default::default(),
            sender: CloudId::new("cloud-a").expect("valid"),
            receiver: CloudId::new("cloud-b").expect("valid"),
        })
        .expect("valid")
    }

    const C: u64 = crate::MIN_CHUNK_SIZE;

    fn data() -> Vec<u8> {
        (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn chunks_in_order_give_the_whole_digest() {
        let data = data();
        let m = manifest(&data, C);
        let mut p = PrefixDigest::new(&m);
        for (i, chunk) in data.chunks(C as usize).enumerate() {
            assert!(p.feed(i as u64, chunk), "chunk {i}");
        }
        assert!(p.is_complete());
        assert_eq!(p.finish(), m.sha256());
    }

    #[test]
    fn a_chunk_out_of_order_waits_and_the_rest_is_absorbed() {
        let data = data();
        let m = manifest(&data, C);
        let mut p = PrefixDigest::new(&m);
        let c = C as usize;
        assert!(p.feed(0, &data[..c]));
        assert!(!p.feed(2, &data[2 * c..3 * c]), "chunk 2 is not next");
        assert!(!p.feed(0, &data[..c]), "chunk 0 again is not next");
        assert_eq!(p.hashed(), C);
        assert_eq!(p.next_index(), 1);
        // The driver reads the rest back from the staging file, in pieces
        // of any size, and may read past the end.
        let mut rest = data[c..].to_vec();
        rest.extend_from_slice(&[0xff; 100]);
        for piece in rest.chunks(30_000) {
            p.absorb(piece);
        }
        assert!(p.is_complete());
        assert_eq!(p.finish(), m.sha256());
    }

    #[test]
    fn a_payload_longer_than_the_rest_is_not_fed() {
        let data = data();
        let big = 4 * C as usize;
        let m = manifest(&data, 4 * C);
        let mut p = PrefixDigest::new(&m);
        assert!(p.feed(0, &data[..big]));
        // The last chunk is 37,856 bytes; a full chunk would run past the end.
        assert!(!p.feed(1, &vec![0u8; big]));
        assert!(p.feed(1, &data[big..]));
        assert_eq!(p.finish(), m.sha256());
    }

    #[test]
    fn a_damaged_chunk_fed_in_order_gives_a_digest_that_does_not_match() {
        let data = data();
        let m = manifest(&data, C);
        let mut p = PrefixDigest::new(&m);
        let mut bad = data.clone();
        bad[200_000] ^= 1;
        for (i, chunk) in bad.chunks(C as usize).enumerate() {
            p.feed(i as u64, chunk);
        }
        assert_ne!(p.finish(), m.sha256());
    }
}
