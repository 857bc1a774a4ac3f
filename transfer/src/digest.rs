//! [`Sha256Digest`]: the SHA-256 of a chunk or of a whole object.
//!
//! On the JSON wire it is 64 lower-case hex digits (upper case is refused,
//! so one digest has one spelling and records compare as text); in the
//! binary chunk header it is the 32 raw bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Digest([u8; 32]);

/// A digest that is not 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a SHA-256 digest (64 lower-case hex digits)")]
pub struct DigestError(pub String);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The digest of the concatenation of `parts`.
    pub fn of_parts(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Self(hasher.finalize().into())
    }

    /// From the 32 raw bytes (for example `sha2::Sha256::finalize().into()`,
    /// when the driver hashes a staging file as a stream).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 lower-case hex digits.
    pub fn from_hex(s: &str) -> Result<Self, DigestError> {
        let lower = s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let mut bytes = [0u8; 32];
        match hex::decode_to_slice(s, &mut bytes) {
            Ok(()) if lower => Ok(Self(bytes)),
            _ => Err(DigestError(s.to_owned())),
        }
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

impl FromStr for Sha256Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

impl TryFrom<String> for Sha256Digest {
    type Error = DigestError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::from_hex(&s)
    }
}

impl From<Sha256Digest> for String {
    fn from(d: Sha256Digest) -> Self {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_and_hex_round_trip() {
        let d = Sha256Digest::of(b"abc");
        let text = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(d.to_string(), text);
        assert_eq!(Sha256Digest::from_hex(text), Ok(d));
        assert_eq!(Sha256Digest::of_parts(&[b"a", b"", b"bc"]), d);
    }

    #[test]
    fn bad_spellings_are_refused() {
        let upper = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
        for bad in [
            "",
            "abc",
            upper,
            &"0".repeat(63),
            &"0".repeat(65),
            &"g".repeat(64),
        ] {
            assert!(Sha256Digest::from_hex(bad).is_err(), "{bad}");
        }
    }
}
