//! The names a transfer carries: [`TransferId`], [`ObjectId`], [`CloudId`].
//!
//! Transfer and object ids become file names on the receiver (the staging
//! file, the bitmap, the receipt record, the committed object), so they
//! are refused unless they are safe as one path component on every system
//! we run on: ASCII letters, digits, `-`, `_` and `.`, not starting with
//! `.` or `-` (no `..`, no hidden files, nothing an option parser takes
//! for a flag), at most [`MAX_ID_LEN`] bytes. Cloud ids follow the rules of
//! `intercloud_trust::CloudId` (a DNS label, `root` reserved); that type is
//! not reused here so that this crate does not pull the TLS stack.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest transfer or object id, in bytes. Short enough that
/// `<id>.bitmap.tmp` stays well inside a 255-byte file name.
pub const MAX_ID_LEN: usize = 128;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// An empty id.
    #[error("{what} is empty")]
    Empty {
        /// Which kind of id.
        what: &'static str,
    },
    /// Longer than [`MAX_ID_LEN`] (or 63 for a cloud id).
    #[error("{what} {value:?} is {len} bytes long, more than {max}")]
    TooLong {
        /// Which kind of id.
        what: &'static str,
        /// The refused value.
        value: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A character outside the allowed set, or a forbidden first character.
    #[error("{what} {value:?} is not a safe name ({rule})")]
    Unsafe {
        /// Which kind of id.
        what: &'static str,
        /// The refused value.
        value: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A cloud id the federation reserves for itself.
    #[error("cloud id {0:?} is reserved")]
    Reserved(String),
}

const SAFE_RULE: &str =
    "ASCII letters, digits, '-', '_' and '.' only, not starting with '.' or '-'";
const DNS_RULE: &str = "a DNS label: lower-case letters, digits and '-', not at either end";

fn check_safe_name(what: &'static str, s: &str) -> Result<(), IdError> {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(IdError::Empty { what });
    };
    if bytes.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            what,
            value: s.to_owned(),
            len: bytes.len(),
            max: MAX_ID_LEN,
        });
    }
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if first == b'.' || first == b'-' || !bytes.iter().all(allowed) {
        return Err(IdError::Unsafe {
            what,
            value: s.to_owned(),
            rule: SAFE_RULE,
        });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `s`.
            pub fn new(s: &str) -> Result<Self, IdError> {
                $check($what, s)?;
                Ok(Self(s.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $check($what, &s)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// One transfer of one object from one cloud to another. Chosen by the
    /// sender, unique per transfer (a UUID or a random hex string); it keys
    /// every message, the receiver's staging file and its receipt record.
    TransferId,
    "transfer id",
    check_safe_name
);

string_id!(
    /// The object (image or stored object) being moved; the name it is
    /// committed under on the receiver.
    ObjectId,
    "object id",
    check_safe_name
);

string_id!(
    /// A cloud of the federation, as in its SPIFFE id
    /// (`spiffe://<federation>/cloud/<id>`).
    CloudId,
    "cloud id",
    check_cloud_id
);

fn check_cloud_id(what: &'static str, s: &str) -> Result<(), IdError> {
    let bytes = s.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return Err(IdError::Empty { what });
    };
    if bytes.len() > 63 {
        return Err(IdError::TooLong {
            what,
            value: s.to_owned(),
            len: bytes.len(),
            max: 63,
        });
    }
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    if first == b'-' || last == b'-' || !bytes.iter().all(allowed) {
        return Err(IdError::Unsafe {
            what,
            value: s.to_owned(),
            rule: DNS_RULE,
        });
    }
    if s == "root" {
        return Err(IdError::Reserved(s.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_are_accepted() {
        for ok in [
            "a",
            "t-1",
            "0f3a9c",
            "image_v2.qcow2",
            "A.B-c_d",
            &"x".repeat(128),
        ] {
            assert!(TransferId::new(ok).is_ok(), "{ok}");
            assert!(ObjectId::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn path_characters_and_tricks_are_refused() {
        for bad in [
            "", ".", "..", "../etc", "a/b", "a\\b", ".hidden", "-rf", "a b", "é", "a\0", "a:b",
        ] {
            assert!(TransferId::new(bad).is_err(), "{bad:?}");
            assert!(ObjectId::new(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            TransferId::new(&"x".repeat(129)),
            Err(IdError::TooLong { len: 129, .. })
        ));
    }

    #[test]
    fn cloud_ids_are_dns_labels() {
        assert!(CloudId::new("cloud-a").is_ok());
        for bad in ["", "Cloud", "-a", "a-", "a.b", "root", &"a".repeat(64)] {
            assert!(CloudId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_validates() {
        let id: TransferId = serde_json::from_str("\"t1\"").expect("a valid id");
        assert_eq!(id.as_str(), "t1");
        assert!(serde_json::from_str::<TransferId>("\"../x\"").is_err());
        assert!(serde_json::from_str::<CloudId>("\"root\"").is_err());
    }
}
