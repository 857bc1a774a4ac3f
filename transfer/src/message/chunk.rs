//! [`Chunk`]: one piece of the object, in a binary frame.
//!
//! ```text
//! offset  size  field
//!  0      4     magic "ICTC" (Intercloud Transfer Chunk)
//!  4      1     format version, 1
//!  5      1     L, the transfer id's length (1..=128)
//!  6      L     the transfer id, ASCII (the rules of `TransferId`)
//!  6+L    8     the chunk index, u64 big-endian
//! 14+L   32     the chunk digest (below)
//! 46+L    4     n, the payload length, u32 big-endian (1..=MAX_CHUNK_SIZE)
//! 50+L    n     the payload; nothing after it
//! ```
//!
//! The chunk digest is SHA-256 over the transfer id's length octet, the
//! transfer id, the index (8 octets, big-endian) and the payload — the
//! frame minus its digest and length fields. It covers the header as well
//! as the payload so that a flipped bit in the index or the transfer id is
//! caught like one in the payload: a chunk is never written at the wrong
//! place or into another transfer, where only the whole object's digest
//! would notice, at the cost of fetching every chunk again.
//!
//! A fixed binary header rather than JSON, so that the payload is not
//! base64-inflated and a receiver can decode a frame without copying the
//! payload: [`Chunk::decode`] borrows it from the AMQP delivery's body.
//! Whether the payload matches its digest, and whether its index and length
//! fit the manifest, is the receiver's business, not the frame's: a frame
//! with a flipped payload byte decodes, [`Chunk::is_intact`] is false, and
//! the receiver says [`crate::receiver::ChunkDecision::Corrupt`].

use crate::MAX_CHUNK_SIZE;
use crate::digest::Sha256Digest;
use crate::id::{MAX_ID_LEN, TransferId};
use crate::message::{FORMAT_VERSION, MessageError};

/// The first four bytes of every chunk frame.
pub const CHUNK_MAGIC: &[u8; 4] = b"ICTC";

/// The frame's length before the transfer id and after it, without the
/// payload.
const FIXED_LEN: usize = 4 + 1 + 1 + 8 + 32 + 4;

/// One chunk, its payload borrowed.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// The transfer it belongs to.
    pub transfer_id: TransferId,
    /// Its position: it starts at `index × chunk_size` in the object.
    pub index: u64,
    /// The chunk digest the sender computed ([`chunk_digest`]).
    pub sha256: Sha256Digest,
    /// The bytes.
    pub payload: &'a [u8],
}

impl std::fmt::Debug for Chunk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("transfer_id", &self.transfer_id)
            .field("index", &self.index)
            .field("sha256", &self.sha256)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<'a> Chunk<'a> {
    /// Chunk `index` of `transfer_id`, with its digest.
    pub fn new(transfer_id: TransferId, index: u64, payload: &'a [u8]) -> Self {
        Self {
            sha256: chunk_digest(&transfer_id, index, payload),
            transfer_id,
            index,
            payload,
        }
    }

    /// The length of the encoded frame.
    pub fn encoded_len(&self) -> usize {
        FIXED_LEN + self.transfer_id.as_str().len() + self.payload.len()
    }

    /// Appends the frame to `out` (a buffer the sender's driver reuses).
    /// Refuses an empty payload or one longer than [`MAX_CHUNK_SIZE`].
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), MessageError> {
        let len = self.payload.len();
        let n = match u32::try_from(len) {
            Ok(0) => return Err(MessageError::EmptyPayload),
            Ok(n) if u64::from(n) <= MAX_CHUNK_SIZE => n,
            _ => {
                return Err(MessageError::PayloadTooLarge { len: len as u64 });
            }
        };
        let id = self.transfer_id.as_str().as_bytes();
        // A TransferId is 1..=MAX_ID_LEN (128) bytes: it fits the octet.
        const _: () = assert!(MAX_ID_LEN <= u8::MAX as usize);
        let id_len = id.len() as u8;
        out.reserve(self.encoded_len());
        out.extend_from_slice(CHUNK_MAGIC);
        out.push(FORMAT_VERSION);
        out.push(id_len);
        out.extend_from_slice(id);
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(self.sha256.as_bytes());
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(self.payload);
        Ok(())
    }

    /// How many bytes of a frame of `transfer_id` precede the payload.
    pub fn header_len(transfer_id: &TransferId) -> usize {
        FIXED_LEN + transfer_id.as_str().len()
    }

    /// Frames a payload that is already in its place, without copying it:
    /// `frame` holds [`header_len`](Self::header_len) bytes of room, then
    /// the payload (read there by the sender's driver); the header, with the
    /// chunk digest, is written into the room. The result is what
    /// [`encode`](Self::encode) gives for the same chunk.
    pub fn frame_in_place(
        transfer_id: &TransferId,
        index: u64,
        frame: &mut [u8],
    ) -> Result<(), MessageError> {
        let header = Self::header_len(transfer_id);
        let (room, payload) = frame
            .split_at_mut_checked(header)
            .ok_or(MessageError::EmptyPayload)?;
        let n = match u32::try_from(payload.len()) {
            Ok(0) => return Err(MessageError::EmptyPayload),
            Ok(n) if u64::from(n) <= MAX_CHUNK_SIZE => n,
            _ => {
                return Err(MessageError::PayloadTooLarge {
                    len: payload.len() as u64,
                });
            }
        };
        let sha256 = chunk_digest(transfer_id, index, payload);
        let id = transfer_id.as_str().as_bytes();
        let mut at = 0;
        for part in [
            CHUNK_MAGIC.as_slice(),
            &[FORMAT_VERSION],
            // A TransferId is 1..=MAX_ID_LEN (128) bytes: it fits the octet.
            &[id.len() as u8],
            id,
            &index.to_be_bytes(),
            sha256.as_bytes(),
            &n.to_be_bytes(),
        ] {
            room[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        Ok(())
    }

    /// The frame, in a new buffer.
    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Reads a frame; the payload is borrowed from `bytes`. Never panics.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, MessageError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(4)? != CHUNK_MAGIC {
            return Err(MessageError::UnknownFormat {
                first: bytes.first().copied(),
            });
        }
        let version = r.take_array::<1>()?[0];
        if version != FORMAT_VERSION {
            return Err(MessageError::UnsupportedVersion(u64::from(version)));
        }
        let id_len = usize::from(r.take_array::<1>()?[0]);
        let id = r.take(id_len)?;
        let id = std::str::from_utf8(id)
            .map_err(|_| MessageError::BadChunkTransferId(String::from_utf8_lossy(id).into()))
            .and_then(|s| {
                TransferId::new(s).map_err(|_| MessageError::BadChunkTransferId(s.to_owned()))
            })?;
        let index = u64::from_be_bytes(r.take_array()?);
        let sha256 = Sha256Digest::from_bytes(r.take_array()?);
        let declared = u32::from_be_bytes(r.take_array()?);
        if declared == 0 {
            return Err(MessageError::EmptyPayload);
        }
        if u64::from(declared) > MAX_CHUNK_SIZE {
            return Err(MessageError::PayloadTooLarge {
                len: u64::from(declared),
            });
        }
        let payload = r.rest();
        if payload.len() as u64 != u64::from(declared) {
            return Err(MessageError::PayloadLengthMismatch {
                declared,
                actual: payload.len(),
            });
        }
        Ok(Self {
            transfer_id: id,
            index,
            sha256,
            payload,
        })
    }

    /// The chunk digest of what was received (compare with `sha256`).
    pub fn actual_sha256(&self) -> Sha256Digest {
        chunk_digest(&self.transfer_id, self.index, self.payload)
    }

    /// Whether the chunk matches its digest: neither its payload nor its
    /// index nor its transfer id was changed on the way. A driver that
    /// knows no such transfer refuses an intact chunk (`unknown_transfer`)
    /// and drops a damaged one (its transfer id may be the damage).
    pub fn is_intact(&self) -> bool {
        self.actual_sha256() == self.sha256
    }
}

/// The chunk digest: SHA-256 over the transfer id's length octet, the
/// transfer id, the index (u64 big-endian) and the payload.
pub fn chunk_digest(transfer_id: &TransferId, index: u64, payload: &[u8]) -> Sha256Digest {
    let id = transfer_id.as_str().as_bytes();
    // A TransferId is 1..=MAX_ID_LEN (128) bytes: it fits the octet.
    let id_len = [id.len() as u8];
    Sha256Digest::of_parts(&[&id_len, id, &index.to_be_bytes(), payload])
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        let end = self.pos.saturating_add(n);
        let out = self
            .bytes
            .get(self.pos..end)
            .ok_or(MessageError::Truncated {
                needed: end,
                len: self.bytes.len(),
            })?;
        self.pos = end;
        Ok(out)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], MessageError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid() -> TransferId {
        TransferId::new("t-42").expect("valid")
    }

    #[test]
    fn round_trip_and_layout() {
        let payload = vec![7u8; 1000];
        let chunk = Chunk::new(tid(), 513, &payload);
        let bytes = chunk.encode().expect("encodes");
        assert_eq!(bytes.len(), 50 + 4 + 1000);
        assert_eq!(&bytes[..6], b"ICTC\x01\x04");
        assert_eq!(&bytes[6..10], b"t-42");
        assert_eq!(&bytes[10..18], &513u64.to_be_bytes());
        let mut covered = b"\x04t-42".to_vec();
        covered.extend_from_slice(&513u64.to_be_bytes());
        covered.extend_from_slice(&payload);
        assert_eq!(&bytes[18..50], Sha256Digest::of(&covered).as_bytes());
        assert_eq!(&bytes[50..54], &1000u32.to_be_bytes());
        let back = Chunk::decode(&bytes).expect("decodes");
        assert_eq!(back, chunk);
        assert_eq!(back.actual_sha256(), back.sha256);
    }

    #[test]
    fn a_frame_made_in_place_is_the_encoded_frame() {
        let payload: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
        let header = Chunk::header_len(&tid());
        assert_eq!(header, 50 + 4);
        let mut frame = vec![0xeeu8; header];
        frame.extend_from_slice(&payload);
        Chunk::frame_in_place(&tid(), 77, &mut frame).expect("framed");
        let encoded = Chunk::new(tid(), 77, &payload).encode().expect("encodes");
        assert_eq!(frame, encoded);
        // No payload, or no room for the header: refused.
        let mut empty = vec![0u8; header];
        assert!(matches!(
            Chunk::frame_in_place(&tid(), 0, &mut empty),
            Err(MessageError::EmptyPayload)
        ));
        let mut short = vec![0u8; header - 1];
        assert!(Chunk::frame_in_place(&tid(), 0, &mut short).is_err());
    }

    #[test]
    fn a_flipped_payload_byte_still_decodes_but_does_not_match() {
        let payload = vec![1u8; 100];
        let mut bytes = Chunk::new(tid(), 0, &payload).encode().expect("encodes");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let chunk = Chunk::decode(&bytes).expect("the frame is fine");
        assert_ne!(chunk.actual_sha256(), chunk.sha256);
        assert!(!chunk.is_intact());
    }

    #[test]
    fn a_flipped_bit_in_the_index_or_the_transfer_id_is_caught_too() {
        let payload = vec![1u8; 100];
        let good = Chunk::new(tid(), 2, &payload).encode().expect("encodes");
        assert!(Chunk::decode(&good).expect("decodes").is_intact());
        // Index byte (2 → 3), then transfer id ('4' → '5').
        for at in [17, 9] {
            let mut bytes = good.clone();
            bytes[at] ^= 0x01;
            let chunk = Chunk::decode(&bytes).expect("still a valid frame");
            assert!(!chunk.is_intact(), "flip at {at}: {chunk:?}");
        }
    }

    #[test]
    fn malformed_frames_are_refused_precisely() {
        let payload = [9u8; 10];
        let good = Chunk::new(tid(), 1, &payload).encode().expect("encodes");

        // Every truncation is refused, none panics.
        for cut in 0..good.len() {
            assert!(Chunk::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            Chunk::decode(&long),
            Err(MessageError::PayloadLengthMismatch {
                declared: 10,
                actual: 11
            })
        ));
        let mut v2 = good.clone();
        v2[4] = 2;
        assert!(matches!(
            Chunk::decode(&v2),
            Err(MessageError::UnsupportedVersion(2))
        ));
        let mut path = good.clone();
        path[6] = b'/';
        assert!(matches!(
            Chunk::decode(&path),
            Err(MessageError::BadChunkTransferId(id)) if id == "/-42"
        ));
        let mut no_id = good.clone();
        no_id[5] = 0;
        assert!(Chunk::decode(&no_id).is_err());
        let mut huge = good.clone();
        huge[46 + 4..50 + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Chunk::decode(&huge),
            Err(MessageError::PayloadTooLarge { .. })
        ));
        let mut empty = good[..54].to_vec();
        empty[50..54].copy_from_slice(&0u32.to_be_bytes());
        assert!(matches!(
            Chunk::decode(&empty),
            Err(MessageError::EmptyPayload)
        ));
        assert!(matches!(
            Chunk::decode(b"ICTX\x01"),
            Err(MessageError::UnknownFormat { first: Some(b'I') })
        ));
    }

    #[test]
    fn payload_bounds_on_encode() {
        assert!(matches!(
            Chunk::new(tid(), 0, &[]).encode(),
            Err(MessageError::EmptyPayload)
        ));
        let big = vec![0u8; MAX_CHUNK_SIZE as usize + 1];
        assert!(matches!(
            Chunk::new(tid(), 0, &big).encode(),
            Err(MessageError::PayloadTooLarge { .. })
        ));
    }
}
