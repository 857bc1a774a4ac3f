//! Validated names: VNets, security domains, tenants, instances and clouds.
//!
//! Every name is a newtype so that a tenant id can never be passed where a
//! VNet name is expected. All of them travel as plain strings (serde,
//! `FromStr`, `Display`) and are checked on the way in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The text was empty.
    #[error("{kind} is empty; it needs 1 to {max} characters")]
    Empty {
        /// What kind of name it was meant to be ("vnet name", "tenant id", ...).
        kind: &'static str,
        /// The longest length allowed.
        max: usize,
    },
    /// Longer than this kind of name allows.
    #[error("{kind} {value:?} is {len} characters long; at most {max} are allowed")]
    TooLong {
        /// What kind of name it was meant to be.
        kind: &'static str,
        /// The refused text (cut short if very long).
        value: String,
        /// Its length in characters.
        len: usize,
        /// The longest length allowed.
        max: usize,
    },
    /// The first character is not one this kind of name may start with.
    #[error("{kind} {value:?} starts with {first:?}; it must start with {rule}")]
    BadStart {
        /// What kind of name it was meant to be.
        kind: &'static str,
        /// The refused text (cut short if very long).
        value: String,
        /// The offending first character.
        first: char,
        /// What it must start with, in words.
        rule: &'static str,
    },
    /// A character outside lowercase ASCII letters, digits and '-'.
    #[error(
        "{kind} {value:?} contains {found:?} at position {position}; only lowercase ASCII letters, digits and '-' are allowed"
    )]
    BadCharacter {
        /// What kind of name it was meant to be.
        kind: &'static str,
        /// The refused text (cut short if very long).
        value: String,
        /// The offending character.
        found: char,
        /// Its byte position.
        position: usize,
    },
    /// A cloud id is a DNS label, which cannot end with '-'.
    #[error("{kind} {value:?} ends with '-'; it must end with a letter or a digit")]
    EndsWithHyphen {
        /// What kind of name it was meant to be.
        kind: &'static str,
        /// The refused text (cut short if very long).
        value: String,
    },
    /// A name kept for the federation's own use.
    #[error("{kind} {value:?} is reserved")]
    Reserved {
        /// What kind of name it was meant to be.
        kind: &'static str,
        /// The refused text.
        value: String,
    },
}

/// What a kind of name must start with.
#[derive(Clone, Copy)]
enum Start {
    Letter,
    LetterOrDigit,
}

/// The rules of one kind of name.
struct Rules {
    kind: &'static str,
    max: usize,
    start: Start,
    /// DNS labels (cloud ids) cannot end with '-'.
    no_trailing_hyphen: bool,
    reserved: &'static [&'static str],
}

/// Error messages quote the refused text; a megabyte of it helps no one.
pub(crate) fn snippet(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

fn check(s: &str, rules: &Rules) -> Result<(), NameError> {
    let kind = rules.kind;
    let Some(first) = s.chars().next() else {
        return Err(NameError::Empty {
            kind,
            max: rules.max,
        });
    };
    let len = s.chars().count();
    if len > rules.max {
        return Err(NameError::TooLong {
            kind,
            value: snippet(s),
            len,
            max: rules.max,
        });
    }
    let (starts_well, rule) = match rules.start {
        Start::Letter => (first.is_ascii_lowercase(), "a lowercase ASCII letter"),
        Start::LetterOrDigit => (
            first.is_ascii_lowercase() || first.is_ascii_digit(),
            "a lowercase ASCII letter or a digit",
        ),
    };
    if !starts_well {
        return Err(NameError::BadStart {
            kind,
            value: snippet(s),
            first,
            rule,
        });
    }
    if let Some((position, found)) = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        return Err(NameError::BadCharacter {
            kind,
            value: snippet(s),
            found,
            position,
        });
    }
    if rules.no_trailing_hyphen && s.ends_with('-') {
        return Err(NameError::EndsWithHyphen {
            kind,
            value: s.to_owned(),
        });
    }
    if rules.reserved.contains(&s) {
        return Err(NameError::Reserved {
            kind,
            value: s.to_owned(),
        });
    }
    Ok(())
}

/// Declares a string newtype checked against `$rules`, with `FromStr`,
/// `Display`, `AsRef<str>` and serde as a plain string.
macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $rules:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The rules this kind of name follows.
            const RULES: Rules = $rules;

            /// Validates `s`.
            pub fn new(s: &str) -> Result<Self, NameError> {
                check(s, &Self::RULES)?;
                Ok(Self(s.to_owned()))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                check(&s, &Self::RULES)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> Self {
                name.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Debug shows the quoted text (`"blue"`), which is how error
        /// messages quote names.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A VNet's name, unique within its tenant: 1 to 32 of lowercase ASCII
    /// letters, digits and '-', starting with a letter (`blue`, `db-net`).
    VnetName,
    Rules {
        kind: "vnet name",
        max: 32,
        start: Start::Letter,
        no_trailing_hyphen: false,
        reserved: &[],
    }
);

name_type!(
    /// A security domain's name, with the same rules as a VNet name. Traffic
    /// flows freely inside a domain; between domains only agreed rules let it
    /// through (see [`crate::policy`]).
    Domain,
    Rules {
        kind: "domain",
        max: 32,
        start: Start::Letter,
        no_trailing_hyphen: false,
        reserved: &[],
    }
);

name_type!(
    /// A tenant's id: 1 to 63 of lowercase ASCII letters, digits and '-',
    /// starting with a letter (`acme`).
    TenantId,
    Rules {
        kind: "tenant id",
        max: 63,
        start: Start::Letter,
        no_trailing_hyphen: false,
        reserved: &[],
    }
);

name_type!(
    /// An instance's name, following the broker's instance naming rules: 1 to
    /// 63 of lowercase ASCII letters, digits and '-', starting with a letter or
    /// a digit (`web-1`). Its network namespace is `ic-<cloud>.<instance>`.
    InstanceId,
    Rules {
        kind: "instance name",
        max: 63,
        start: Start::LetterOrDigit,
        no_trailing_hyphen: false,
        reserved: &[],
    }
);

name_type!(
    /// A cloud's id in the federation, a DNS label such as `cloud-a`. The
    /// rules are those of `intercloud_trust::CloudId` (including the reserved
    /// `root`), so ids convert both ways without surprises.
    CloudId,
    Rules {
        kind: "cloud id",
        max: 63,
        start: Start::LetterOrDigit,
        no_trailing_hyphen: true,
        reserved: &["root"],
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_are_accepted_and_displayed_unchanged() {
        for s in ["blue", "db-net", "a", "x1-2-3", "z-"] {
            assert_eq!(VnetName::new(s).expect("valid vnet name").to_string(), s);
            assert_eq!(Domain::new(s).expect("valid domain").as_str(), s);
            assert_eq!(TenantId::new(s).expect("valid tenant").as_ref(), s);
        }
    }

    #[test]
    fn empty_names_are_refused() {
        let error = VnetName::new("").expect_err("empty");
        assert_eq!(
            error.to_string(),
            "vnet name is empty; it needs 1 to 32 characters"
        );
    }

    #[test]
    fn vnet_names_and_domains_stop_at_32_characters() {
        let longest = format!("a{}", "b".repeat(31));
        assert!(VnetName::new(&longest).is_ok());
        assert!(Domain::new(&longest).is_ok());
        let too_long = format!("{longest}c");
        let error = VnetName::new(&too_long).expect_err("33 characters");
        assert_eq!(
            error.to_string(),
            format!("vnet name {too_long:?} is 33 characters long; at most 32 are allowed")
        );
        assert!(matches!(
            Domain::new(&too_long),
            Err(NameError::TooLong { max: 32, .. })
        ));
    }

    #[test]
    fn tenant_ids_and_instances_stop_at_63_characters() {
        let longest = format!("a{}", "b".repeat(62));
        assert!(TenantId::new(&longest).is_ok());
        assert!(InstanceId::new(&longest).is_ok());
        let too_long = format!("{longest}c");
        assert!(matches!(
            TenantId::new(&too_long),
            Err(NameError::TooLong {
                len: 64,
                max: 63,
                ..
            })
        ));
        assert!(matches!(
            InstanceId::new(&too_long),
            Err(NameError::TooLong {
                len: 64,
                max: 63,
                ..
            })
        ));
    }

    #[test]
    fn names_must_start_with_a_letter() {
        let error = VnetName::new("1blue").expect_err("starts with a digit");
        assert_eq!(
            error.to_string(),
            "vnet name \"1blue\" starts with '1'; it must start with a lowercase ASCII letter"
        );
        assert!(matches!(
            TenantId::new("-acme"),
            Err(NameError::BadStart { first: '-', .. })
        ));
        assert!(matches!(
            Domain::new("Prod"),
            Err(NameError::BadStart { first: 'P', .. })
        ));
    }

    #[test]
    fn instances_and_clouds_may_start_with_a_digit() {
        assert!(InstanceId::new("1web").is_ok());
        assert!(CloudId::new("9c").is_ok());
        assert!(matches!(
            InstanceId::new("-web"),
            Err(NameError::BadStart { first: '-', .. })
        ));
    }

    #[test]
    fn only_lowercase_letters_digits_and_hyphens_are_allowed() {
        let error = VnetName::new("blue_net").expect_err("underscore");
        assert_eq!(
            error.to_string(),
            "vnet name \"blue_net\" contains '_' at position 4; only lowercase ASCII letters, digits and '-' are allowed"
        );
        assert!(matches!(
            TenantId::new("acMe"),
            Err(NameError::BadCharacter {
                found: 'M',
                position: 2,
                ..
            })
        ));
        assert!(matches!(
            Domain::new("prodé"),
            Err(NameError::BadCharacter { found: 'é', .. })
        ));
        assert!(matches!(
            InstanceId::new("web 1"),
            Err(NameError::BadCharacter { found: ' ', .. })
        ));
    }

    #[test]
    fn cloud_ids_are_dns_labels_and_root_is_reserved() {
        assert!(CloudId::new("cloud-a").is_ok());
        let error = CloudId::new("cloud-").expect_err("trailing hyphen");
        assert_eq!(
            error.to_string(),
            "cloud id \"cloud-\" ends with '-'; it must end with a letter or a digit"
        );
        let error = CloudId::new("root").expect_err("reserved");
        assert_eq!(error.to_string(), "cloud id \"root\" is reserved");
        assert!(matches!(
            CloudId::new(&"c".repeat(64)),
            Err(NameError::TooLong { .. })
        ));
    }

    #[test]
    fn very_long_refused_names_are_cut_short_in_messages() {
        let huge = "A".repeat(10_000);
        let message = VnetName::new(&huge).expect_err("too long").to_string();
        assert!(message.len() < 300, "message is {} bytes", message.len());
        assert!(message.contains("10000 characters"));
    }

    #[test]
    fn debug_quotes_the_name_as_messages_do() {
        let name = VnetName::new("blue").expect("valid");
        assert_eq!(format!("{name:?}"), "\"blue\"");
    }

    #[test]
    fn names_parse_and_serialize_as_plain_strings() {
        let name: VnetName = "blue".parse().expect("valid");
        assert_eq!(
            serde_json::to_string(&name).expect("serializes"),
            "\"blue\""
        );
        let back: VnetName = serde_json::from_str("\"blue\"").expect("deserializes");
        assert_eq!(back, name);
        let refused = serde_json::from_str::<TenantId>("\"Acme\"").expect_err("uppercase");
        assert!(
            refused
                .to_string()
                .contains("tenant id \"Acme\" starts with 'A'")
        );
        assert!("no_good".parse::<Domain>().is_err());
    }
}
