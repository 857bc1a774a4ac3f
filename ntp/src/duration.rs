//! A signed duration with nanosecond resolution, for clock offsets.
//!
//! `std::time::Duration` cannot be negative, yet half of all clock offsets
//! are: a clock behind its reference has a positive offset, one ahead a
//! negative one (RFC 5905 §8 defines θ as the reference's time minus ours).
//! An `i64` of nanoseconds spans ±292 years, more than the ±68 years over
//! which two NTP timestamps can be compared at all (RFC 5905 §6), so every
//! timestamp difference fits. Arithmetic saturates instead of panicking:
//! the values come from peers.

use std::fmt;
use std::ops::{Add, Neg, Sub};
use std::time::Duration;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// A signed span of time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignedDuration {
    nanos: i64,
}

impl SignedDuration {
    /// No time at all.
    pub const ZERO: Self = Self { nanos: 0 };
    /// The longest positive span (about 292 years).
    pub const MAX: Self = Self { nanos: i64::MAX };
    /// The longest negative span.
    pub const MIN: Self = Self { nanos: i64::MIN };

    /// A span of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: i64) -> Self {
        Self { nanos }
    }

    /// A span of `millis` milliseconds, saturating.
    pub const fn from_millis(millis: i64) -> Self {
        Self {
            nanos: millis.saturating_mul(1_000_000),
        }
    }

    /// A span of `seconds` seconds, saturating.
    pub const fn from_secs(seconds: i64) -> Self {
        Self {
            nanos: seconds.saturating_mul(NANOS_PER_SECOND),
        }
    }

    /// A span from an `i128` count of nanoseconds, saturating at
    /// [`Self::MIN`] and [`Self::MAX`].
    pub fn from_nanos_saturating(nanos: i128) -> Self {
        let nanos = i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX });
        Self { nanos }
    }

    /// A non-negative span, saturating at [`Self::MAX`].
    pub fn from_duration(duration: Duration) -> Self {
        Self {
            nanos: i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX),
        }
    }

    /// A span of `seconds` seconds (fractional), saturating; NaN is zero.
    pub fn from_secs_f64(seconds: f64) -> Self {
        // `as` from f64 saturates and maps NaN to 0, which is what we want.
        Self {
            nanos: (seconds * 1e9).round() as i64,
        }
    }

    /// The span in nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.nanos
    }

    /// The span in seconds, as a float (for logs and metrics).
    pub fn as_secs_f64(self) -> f64 {
        self.nanos as f64 / 1e9
    }

    /// The magnitude, whatever the sign.
    pub const fn abs(self) -> Duration {
        Duration::from_nanos(self.nanos.unsigned_abs())
    }

    /// Whether the span is below zero.
    pub const fn is_negative(self) -> bool {
        self.nanos < 0
    }

    /// `self + other`, saturating.
    pub const fn saturating_add(self, other: Self) -> Self {
        Self {
            nanos: self.nanos.saturating_add(other.nanos),
        }
    }

    /// `self - other`, saturating.
    pub const fn saturating_sub(self, other: Self) -> Self {
        Self {
            nanos: self.nanos.saturating_sub(other.nanos),
        }
    }
}

/// Saturating, like [`SignedDuration::saturating_add`].
impl Add for SignedDuration {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        self.saturating_add(other)
    }
}

/// Saturating, like [`SignedDuration::saturating_sub`].
impl Sub for SignedDuration {
    type Output = Self;

    fn sub(self, other: Self) -> Self {
        self.saturating_sub(other)
    }
}

/// Saturating: the negation of [`SignedDuration::MIN`] is [`SignedDuration::MAX`].
impl Neg for SignedDuration {
    type Output = Self;

    fn neg(self) -> Self {
        Self {
            nanos: self.nanos.saturating_neg(),
        }
    }
}

/// Signed seconds with nine decimals, e.g. `+0.012500000s`, `-1.000000000s`.
impl fmt::Display for SignedDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.nanos < 0 { '-' } else { '+' };
        let magnitude = self.nanos.unsigned_abs();
        let per_second = NANOS_PER_SECOND.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:09}s",
            magnitude / per_second,
            magnitude % per_second
        )
    }
}

/// `2^exponent` seconds, the unit of the header's poll and precision fields
/// (RFC 5905 §7.3, "log2 seconds"). Saturates at `Duration::MAX`; exponents
/// below −30 round to zero nanoseconds.
pub fn from_log2_seconds(exponent: i8) -> Duration {
    Duration::try_from_secs_f64(2f64.powi(i32::from(exponent))).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_magnitude_and_display() {
        let d = SignedDuration::from_millis(-12) + SignedDuration::from_nanos(-500_000);
        assert_eq!(d.as_nanos(), -12_500_000);
        assert!(d.is_negative());
        assert_eq!(d.abs(), Duration::from_micros(12_500));
        assert_eq!(d.to_string(), "-0.012500000s");
        assert_eq!((-d).to_string(), "+0.012500000s");
        assert_eq!(SignedDuration::ZERO.to_string(), "+0.000000000s");
        assert_eq!(SignedDuration::from_secs(-3).to_string(), "-3.000000000s");
        assert_eq!(SignedDuration::MIN.abs(), Duration::from_nanos(1 << 63));
    }

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        assert_eq!(
            SignedDuration::MAX + SignedDuration::from_nanos(1),
            SignedDuration::MAX
        );
        assert_eq!(
            SignedDuration::MIN - SignedDuration::from_nanos(1),
            SignedDuration::MIN
        );
        assert_eq!(-SignedDuration::MIN, SignedDuration::MAX);
        assert_eq!(
            SignedDuration::from_nanos_saturating(i128::MAX),
            SignedDuration::MAX
        );
        assert_eq!(
            SignedDuration::from_nanos_saturating(i128::MIN),
            SignedDuration::MIN
        );
        assert_eq!(
            SignedDuration::from_duration(Duration::MAX),
            SignedDuration::MAX
        );
        assert_eq!(SignedDuration::from_secs(i64::MAX), SignedDuration::MAX);
    }

    #[test]
    fn float_conversions() {
        assert_eq!(
            SignedDuration::from_secs_f64(-0.25),
            SignedDuration::from_millis(-250)
        );
        assert_eq!(
            SignedDuration::from_secs_f64(f64::NAN),
            SignedDuration::ZERO
        );
        assert_eq!(
            SignedDuration::from_secs_f64(f64::INFINITY),
            SignedDuration::MAX
        );
        assert!((SignedDuration::from_millis(1500).as_secs_f64() - 1.5).abs() < 1e-12);
    }

    #[test]
    fn log2_seconds() {
        assert_eq!(from_log2_seconds(0), Duration::from_secs(1));
        assert_eq!(from_log2_seconds(6), Duration::from_secs(64));
        assert_eq!(from_log2_seconds(-1), Duration::from_millis(500));
        // 2^-20 s ≈ 953.67 ns.
        assert_eq!(from_log2_seconds(-20), Duration::from_nanos(954));
        assert_eq!(from_log2_seconds(-128), Duration::ZERO);
        assert_eq!(from_log2_seconds(127), Duration::MAX);
    }
}
