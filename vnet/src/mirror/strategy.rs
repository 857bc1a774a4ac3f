//! How much of a production VNet's input its mirror receives.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::MirrorError;
use crate::name::snippet;

/// What a Mirror VNet receives of its production's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum MirrorStrategy {
    /// Every packet, whole (`full`).
    Full,
    /// Every packet, cut after its headers (`headers`).
    Headers,
    /// No packets, only counters (`stats`).
    Stats,
    /// One packet in `every`, whole (`sample:<rate>`).
    Sample {
        /// The 1-in-N of the sampling, at least 1 (1 is every packet).
        every: u32,
    },
}

impl FromStr for MirrorStrategy {
    type Err = MirrorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(Self::Full),
            "headers" => Ok(Self::Headers),
            "stats" => Ok(Self::Stats),
            _ => match s.strip_prefix("sample:") {
                Some(rate) => Ok(Self::Sample {
                    every: parse_rate(rate)?,
                }),
                None => Err(MirrorError::UnknownStrategy(snippet(s))),
            },
        }
    }
}

/// Turns a rate (`0.1`, `1/100`, `1`) into its 1-in-N. Exact arithmetic, no
/// floating point: a rate whose inverse is not a whole number (`0.3`) is
/// refused rather than silently rounded.
fn parse_rate(rate: &str) -> Result<u32, MirrorError> {
    let bad = |reason: &'static str| MirrorError::BadSampleRate {
        rate: snippet(rate),
        reason,
    };
    let (numerator, denominator) = match rate.split_once('/') {
        Some((n, d)) => (
            whole(n).ok_or(bad(NOT_A_NUMBER))?,
            whole(d).ok_or(bad(NOT_A_NUMBER))?,
        ),
        None => decimal(rate).ok_or(bad(NOT_A_NUMBER))?,
    };
    if numerator == 0 || denominator == 0 {
        return Err(bad("it is zero or divides by zero; it must be above 0"));
    }
    if numerator > denominator {
        return Err(bad("it is above 1"));
    }
    if denominator % numerator != 0 {
        return Err(bad(
            "it is not 1 in a whole number of packets; write it as 1/N",
        ));
    }
    u32::try_from(denominator / numerator).map_err(|_| bad("it is too small"))
}

const NOT_A_NUMBER: &str = "it is not a fraction such as 0.1 or 1/100";

/// A whole number made of ASCII digits only (no sign, no spaces).
fn whole(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A decimal such as `0.25` as the fraction 25/100.
fn decimal(s: &str) -> Option<(u64, u64)> {
    let (integer, fraction) = s.split_once('.').unwrap_or((s, ""));
    // More than 18 digits after the point would overflow the denominator.
    if fraction.len() > 18 || (s.contains('.') && fraction.is_empty()) {
        return None;
    }
    let integer = whole(integer)?;
    let denominator = 10u64.pow(u32::try_from(fraction.len()).ok()?);
    let fraction = if fraction.is_empty() {
        0
    } else {
        whole(fraction)?
    };
    let numerator = integer.checked_mul(denominator)?.checked_add(fraction)?;
    Some((numerator, denominator))
}

impl TryFrom<String> for MirrorStrategy {
    type Error = MirrorError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<MirrorStrategy> for String {
    fn from(strategy: MirrorStrategy) -> Self {
        strategy.to_string()
    }
}

impl fmt::Display for MirrorStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("full"),
            Self::Headers => f.write_str("headers"),
            Self::Stats => f.write_str("stats"),
            Self::Sample { every } => write!(f, "sample:1/{every}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> MirrorStrategy {
        s.parse().expect("valid strategy")
    }

    fn every(s: &str) -> u32 {
        match parse(s) {
            MirrorStrategy::Sample { every } => every,
            other => panic!("{s} parsed as {other}, not a sample"),
        }
    }

    #[test]
    fn the_plain_strategies_parse_by_name() {
        assert_eq!(parse("full"), MirrorStrategy::Full);
        assert_eq!(parse("headers"), MirrorStrategy::Headers);
        assert_eq!(parse("stats"), MirrorStrategy::Stats);
    }

    #[test]
    fn sample_rates_become_one_in_n() {
        assert_eq!(every("sample:0.1"), 10);
        assert_eq!(every("sample:0.25"), 4);
        assert_eq!(every("sample:1/100"), 100);
        assert_eq!(every("sample:2/200"), 100);
        assert_eq!(every("sample:1"), 1);
        assert_eq!(every("sample:1.0"), 1);
        assert_eq!(every("sample:0.000001"), 1_000_000);
    }

    #[test]
    fn display_round_trips() {
        for s in ["full", "headers", "stats", "sample:1/10", "sample:1/1"] {
            assert_eq!(parse(s).to_string(), s);
            assert_eq!(parse(&parse(s).to_string()), parse(s));
        }
        assert_eq!(parse("sample:0.1").to_string(), "sample:1/10");
    }

    #[test]
    fn zero_rates_are_refused() {
        for rate in ["0", "0.0", "0/5", "1/0"] {
            let error = format!("sample:{rate}")
                .parse::<MirrorStrategy>()
                .expect_err("zero");
            assert_eq!(
                error.to_string(),
                format!(
                    "sample rate {rate:?} is refused: it is zero or divides by zero; it must be above 0"
                )
            );
        }
    }

    #[test]
    fn rates_above_one_are_refused() {
        let error = "sample:1.5".parse::<MirrorStrategy>().expect_err("above 1");
        assert_eq!(
            error.to_string(),
            "sample rate \"1.5\" is refused: it is above 1"
        );
        assert!("sample:3/2".parse::<MirrorStrategy>().is_err());
        assert!("sample:2".parse::<MirrorStrategy>().is_err());
    }

    #[test]
    fn negative_and_non_numeric_rates_are_refused() {
        for rate in [
            "-0.1", "abc", "", "0.", ".5", "1/", "/4", "0.1.2", "+0.5", " 0.1", "1e-2", "1/-4",
        ] {
            let error = format!("sample:{rate}")
                .parse::<MirrorStrategy>()
                .expect_err("not a number");
            assert_eq!(
                error.to_string(),
                format!(
                    "sample rate {rate:?} is refused: it is not a fraction such as 0.1 or 1/100"
                ),
                "rate {rate:?}"
            );
        }
    }

    #[test]
    fn rates_that_are_not_one_in_a_whole_number_are_refused() {
        let error = "sample:0.3"
            .parse::<MirrorStrategy>()
            .expect_err("1 in 3.33");
        assert_eq!(
            error.to_string(),
            "sample rate \"0.3\" is refused: it is not 1 in a whole number of packets; write it as 1/N"
        );
    }

    #[test]
    fn rates_below_one_in_four_billion_are_refused() {
        let error = "sample:1/5000000000"
            .parse::<MirrorStrategy>()
            .expect_err("tiny");
        assert_eq!(
            error.to_string(),
            "sample rate \"1/5000000000\" is refused: it is too small"
        );
    }

    #[test]
    fn unknown_strategies_are_refused() {
        let error = "everything".parse::<MirrorStrategy>().expect_err("unknown");
        assert_eq!(
            error.to_string(),
            "mirror strategy \"everything\" is unknown; the strategies are full, headers, stats and sample:<rate>"
        );
        assert!("Full".parse::<MirrorStrategy>().is_err());
        assert!("sample".parse::<MirrorStrategy>().is_err());
    }

    #[test]
    fn strategies_serialize_as_text() {
        let strategy = parse("sample:0.01");
        let text = serde_json::to_string(&strategy).expect("serializes");
        assert_eq!(text, "\"sample:1/100\"");
        assert_eq!(
            serde_json::from_str::<MirrorStrategy>(&text).expect("deserializes"),
            strategy
        );
        assert!(serde_json::from_str::<MirrorStrategy>("\"sample:7\"").is_err());
    }
}
