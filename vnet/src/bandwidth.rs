//! A VNet's bandwidth cap, written the way `tc` writes rates (`100mbit`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::name::snippet;

/// Why a bandwidth was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BandwidthError {
    /// No digits before the unit.
    #[error("bandwidth {0:?} does not start with a whole number (e.g. 100mbit)")]
    NoNumber(String),
    /// A unit other than kbit, mbit and gbit.
    #[error("bandwidth {value:?} has unit {unit:?}; the units are kbit, mbit and gbit")]
    UnknownUnit {
        /// The refused text.
        value: String,
        /// The unit found after the number.
        unit: String,
    },
    /// A cap of zero would cut the VNet off.
    #[error("bandwidth {0:?} is zero; a cap must be above zero")]
    Zero(String),
    /// More bits per second than a u64 holds.
    #[error("bandwidth {0:?} is too large")]
    TooLarge(String),
}

/// The unit a bandwidth was written in. Decimal, as in `tc`: 1 kbit is 1000
/// bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BandwidthUnit {
    /// 1000 bits per second.
    Kbit,
    /// 1 000 000 bits per second.
    Mbit,
    /// 1 000 000 000 bits per second.
    Gbit,
}

impl BandwidthUnit {
    fn bits_per_second(self) -> u64 {
        match self {
            Self::Kbit => 1_000,
            Self::Mbit => 1_000_000,
            Self::Gbit => 1_000_000_000,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Kbit => "kbit",
            Self::Mbit => "mbit",
            Self::Gbit => "gbit",
        }
    }
}

/// A rate cap: a whole number and a unit. It keeps the unit it was written
/// in, so `1gbit` displays as `1gbit`, not `1000mbit`; but it compares by
/// rate, so `1gbit == 1000mbit` (a cap read back from `tc` in another unit is
/// still the same cap).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Bandwidth {
    amount: u64,
    unit: BandwidthUnit,
}

impl Bandwidth {
    /// A cap of `amount` `unit`s; refuses zero and overflow.
    pub fn new(amount: u64, unit: BandwidthUnit) -> Result<Self, BandwidthError> {
        let written = || format!("{amount}{}", unit.as_str());
        if amount == 0 {
            return Err(BandwidthError::Zero(written()));
        }
        if amount.checked_mul(unit.bits_per_second()).is_none() {
            return Err(BandwidthError::TooLarge(written()));
        }
        Ok(Self { amount, unit })
    }

    /// The cap in bits per second.
    pub fn bits_per_second(&self) -> u64 {
        // `new` checked that this does not overflow.
        self.amount.saturating_mul(self.unit.bits_per_second())
    }

    /// The number as written.
    pub fn amount(&self) -> u64 {
        self.amount
    }

    /// The unit as written.
    pub fn unit(&self) -> BandwidthUnit {
        self.unit
    }
}

impl PartialEq for Bandwidth {
    fn eq(&self, other: &Self) -> bool {
        self.bits_per_second() == other.bits_per_second()
    }
}

impl Eq for Bandwidth {}

impl std::hash::Hash for Bandwidth {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bits_per_second().hash(state);
    }
}

impl PartialOrd for Bandwidth {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bandwidth {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bits_per_second().cmp(&other.bits_per_second())
    }
}

impl FromStr for Bandwidth {
    type Err = BandwidthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(digits_end);
        if number.is_empty() {
            return Err(BandwidthError::NoNumber(snippet(s)));
        }
        let unit = match unit {
            "kbit" => BandwidthUnit::Kbit,
            "mbit" => BandwidthUnit::Mbit,
            "gbit" => BandwidthUnit::Gbit,
            other => {
                return Err(BandwidthError::UnknownUnit {
                    value: snippet(s),
                    unit: snippet(other),
                });
            }
        };
        // Only digits are left, so the one failure is overflow.
        let amount: u64 = number
            .parse()
            .map_err(|_| BandwidthError::TooLarge(snippet(s)))?;
        if amount == 0 {
            return Err(BandwidthError::Zero(s.to_owned()));
        }
        Self::new(amount, unit)
    }
}

impl TryFrom<String> for Bandwidth {
    type Error = BandwidthError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Bandwidth> for String {
    fn from(bandwidth: Bandwidth) -> Self {
        bandwidth.to_string()
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Bandwidth {
        s.parse().expect("valid bandwidth")
    }

    #[test]
    fn units_are_decimal_bits_per_second() {
        assert_eq!(parse("500kbit").bits_per_second(), 500_000);
        assert_eq!(parse("100mbit").bits_per_second(), 100_000_000);
        assert_eq!(parse("1gbit").bits_per_second(), 1_000_000_000);
    }

    #[test]
    fn display_keeps_the_unit_as_written() {
        for s in ["500kbit", "100mbit", "1gbit", "1000mbit"] {
            assert_eq!(parse(s).to_string(), s);
        }
        assert_eq!(parse("0100mbit").to_string(), "100mbit");
    }

    #[test]
    fn caps_compare_by_rate_whatever_the_unit() {
        assert_eq!(parse("1gbit"), parse("1000mbit"));
        assert!(parse("999mbit") < parse("1gbit"));
        assert_ne!(parse("1gbit"), parse("1mbit"));
    }

    #[test]
    fn zero_is_refused() {
        let error = "0mbit".parse::<Bandwidth>().expect_err("zero");
        assert_eq!(
            error.to_string(),
            "bandwidth \"0mbit\" is zero; a cap must be above zero"
        );
        assert!(matches!(
            Bandwidth::new(0, BandwidthUnit::Gbit),
            Err(BandwidthError::Zero(_))
        ));
    }

    #[test]
    fn unknown_units_are_refused() {
        let error = "10mbps".parse::<Bandwidth>().expect_err("mbps");
        assert_eq!(
            error.to_string(),
            "bandwidth \"10mbps\" has unit \"mbps\"; the units are kbit, mbit and gbit"
        );
        for s in ["10", "10Mbit", "10 mbit", "10mbit ", "10tbit", "1.5gbit"] {
            assert!(
                matches!(
                    s.parse::<Bandwidth>(),
                    Err(BandwidthError::UnknownUnit { .. })
                ),
                "{s:?} should have an unknown unit"
            );
        }
    }

    #[test]
    fn a_missing_number_is_refused() {
        let error = "mbit".parse::<Bandwidth>().expect_err("no number");
        assert_eq!(
            error.to_string(),
            "bandwidth \"mbit\" does not start with a whole number (e.g. 100mbit)"
        );
        assert!(matches!(
            "-5mbit".parse::<Bandwidth>(),
            Err(BandwidthError::NoNumber(_))
        ));
        assert!(matches!(
            "".parse::<Bandwidth>(),
            Err(BandwidthError::NoNumber(_))
        ));
    }

    #[test]
    fn overflowing_caps_are_refused() {
        assert!(matches!(
            "99999999999999999999gbit".parse::<Bandwidth>(),
            Err(BandwidthError::TooLarge(_))
        ));
        assert!(matches!(
            "18446744074gbit".parse::<Bandwidth>(),
            Err(BandwidthError::TooLarge(_))
        ));
    }

    #[test]
    fn bandwidth_serializes_as_its_text() {
        let cap = parse("250mbit");
        assert_eq!(
            serde_json::to_string(&cap).expect("serializes"),
            "\"250mbit\""
        );
        assert_eq!(
            serde_json::from_str::<Bandwidth>("\"250mbit\"").expect("deserializes"),
            cap
        );
        assert!(serde_json::from_str::<Bandwidth>("\"0kbit\"").is_err());
    }
}
