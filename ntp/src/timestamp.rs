//! NTP time formats (RFC 5905 §6): the 64-bit timestamp and the 32-bit
//! short format, with era handling.
//!
//! A [`Timestamp`] is 32 bits of seconds and 32 bits of fraction (unit
//! 2^-32 s ≈ 233 ps) since 1900-01-01T00:00:00Z. Its seconds wrap every
//! 2^32 s: era 0 ends at 2036-02-07T06:28:16Z ([`ERA_0_END_UNIX_SECONDS`])
//! and era 1 starts there at zero again. The packet does not carry the era;
//! RFC 5905 §6 leaves it to the receiver, who knows roughly what time it is.
//! So converting *to* Unix time takes a *pivot* (usually the local clock)
//! and picks the era that puts the timestamp closest to it — correct as long
//! as the true time is within 68 years of the pivot.
//!
//! Differences need no era at all: RFC 5905 §6 computes them in 64-bit
//! two's-complement arithmetic, which gives the right signed answer across an
//! era boundary whenever the two timestamps are less than 68 years apart.
//! [`Timestamp::duration_since`] (and `-` on timestamps) does exactly that, so
//! the on-wire calculation of [`crate::client`] works unchanged in 2036.
//!
//! A [`ShortTime`] is 16 bits of seconds and 16 bits of fraction; the header
//! uses it for root delay and root dispersion (RFC 5905 §7.3).

use std::fmt;
use std::ops::Sub;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::duration::SignedDuration;

/// Seconds from the NTP prime epoch (1900-01-01T00:00:00Z, the start of era
/// 0) to the Unix epoch (1970-01-01T00:00:00Z).
pub const NTP_TO_UNIX_SECONDS: i64 = 2_208_988_800;

/// The Unix time at which era 0 ends and era 1 begins:
/// 2036-02-07T06:28:16Z, 2^32 seconds after 1900-01-01.
pub const ERA_0_END_UNIX_SECONDS: i64 = (1 << 32) - NTP_TO_UNIX_SECONDS;

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const SECONDS_PER_ERA: i128 = 1 << 32;

/// An NTP timestamp: seconds and 2^-32 fractions since the start of the
/// timestamp's (unknown) era. Zero is special: RFC 5905 uses it for "not
/// set".
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The unset timestamp.
    pub const ZERO: Self = Self(0);

    /// A timestamp from its 64 on-wire bits (seconds in the high half).
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The 64 on-wire bits.
    pub const fn to_bits(self) -> u64 {
        self.0
    }

    /// A timestamp from seconds (within the era) and fraction (2^-32 s).
    pub const fn from_parts(seconds: u32, fraction: u32) -> Self {
        Self(((seconds as u64) << 32) | fraction as u64)
    }

    /// Seconds within the era.
    pub const fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Fraction of a second, in units of 2^-32 s.
    pub const fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// Whether this is the unset timestamp.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The timestamp of `unix_nanos` nanoseconds since the Unix epoch
    /// (negative before 1970), rounded to the nearest 2^-32 s. The era is
    /// dropped, as on the wire. Total: any `i128` maps to some timestamp.
    pub fn from_unix_nanos(unix_nanos: i128) -> Self {
        // Reduce to one era before shifting the epoch, so that no input
        // can overflow.
        let unix_seconds = unix_nanos.div_euclid(NANOS_PER_SECOND);
        let nanos = unix_nanos.rem_euclid(NANOS_PER_SECOND);
        let seconds = (unix_seconds.rem_euclid(SECONDS_PER_ERA) + i128::from(NTP_TO_UNIX_SECONDS))
            .rem_euclid(SECONDS_PER_ERA);
        // Rounded to nearest; at most 4_294_967_292 for 999_999_999 ns, so
        // it never carries into the seconds.
        let fraction = ((nanos << 32) + NANOS_PER_SECOND / 2) / NANOS_PER_SECOND;
        Self(((seconds as u64) << 32) | fraction as u64)
    }

    /// Nanoseconds since the Unix epoch, in the era that puts the timestamp
    /// closest to `pivot_unix_nanos` (RFC 5905 §6). Exact (to the
    /// nanosecond) for a timestamp made by [`Self::from_unix_nanos`] from a
    /// time within 68 years of the pivot.
    pub fn to_unix_nanos(self, pivot_unix_nanos: i128) -> i128 {
        let pivot = Self::from_unix_nanos(pivot_unix_nanos);
        pivot_unix_nanos.saturating_add(i128::from(self.duration_since(pivot).as_nanos()))
    }

    /// The era (0 for 1900–2036, 1 for 2036–2172, −1 before 1900) in which
    /// [`Self::to_unix_nanos`] places this timestamp for the same pivot.
    pub fn era(self, pivot_unix_nanos: i128) -> i64 {
        let ntp_seconds = self
            .to_unix_nanos(pivot_unix_nanos)
            .div_euclid(NANOS_PER_SECOND)
            .saturating_add(i128::from(NTP_TO_UNIX_SECONDS));
        let era = ntp_seconds.div_euclid(SECONDS_PER_ERA);
        i64::try_from(era).unwrap_or(if era < 0 { i64::MIN } else { i64::MAX })
    }

    /// The wall-clock time this timestamp denotes, in the era closest to
    /// `pivot` (normally the local clock's reading). `None` only if the
    /// result cannot be represented as a `SystemTime` on this platform.
    pub fn to_system_time(self, pivot: SystemTime) -> Option<SystemTime> {
        system_time_from_unix_nanos(self.to_unix_nanos(unix_nanos(pivot)))
    }

    /// `self − earlier` as a signed duration, in RFC 5905 §6 wraparound
    /// arithmetic: correct across an era boundary whenever the two are less
    /// than 68 years apart, which is always the case for the timestamps of
    /// one NTP exchange. Rounded to the nearest nanosecond.
    pub fn duration_since(self, earlier: Self) -> SignedDuration {
        let fixed = self.0.wrapping_sub(earlier.0) as i64;
        // 32.32 fixed point to nanoseconds, rounded; |result| ≤ 2^31 s.
        let nanos = ((i128::from(fixed) * NANOS_PER_SECOND) + (1 << 31)) >> 32;
        SignedDuration::from_nanos_saturating(nanos)
    }

    /// `self + span`, wrapping around the era like the wire format does.
    pub fn wrapping_add(self, span: SignedDuration) -> Self {
        let nanos = i128::from(span.as_nanos());
        let fixed = ((nanos << 32) + NANOS_PER_SECOND / 2).div_euclid(NANOS_PER_SECOND);
        // Truncating to 64 bits is the modulo-2^64 arithmetic we want.
        Self(self.0.wrapping_add(fixed as u64))
    }

    /// This timestamp with the fraction bits below `precision` (log2
    /// seconds) replaced by the same bits of `random`. A client sends its
    /// transmit timestamp so perturbed (as chrony does) so that an off-path
    /// attacker cannot guess the origin timestamp a genuine reply must echo;
    /// the error added is below the clock's precision anyway.
    pub fn with_random_low_bits(self, precision: i8, random: u32) -> Self {
        // Fraction bits worth less than 2^precision s: 32 + precision of them.
        let bits = (32 + i32::from(precision)).clamp(0, 32);
        let mask: u64 = if bits == 32 {
            u64::from(u32::MAX)
        } else {
            (1u64 << bits) - 1
        };
        Self((self.0 & !mask) | (u64::from(random) & mask))
    }
}

/// `a - b` is [`Timestamp::duration_since`]: signed, wraparound-correct.
impl Sub for Timestamp {
    type Output = SignedDuration;

    fn sub(self, earlier: Self) -> SignedDuration {
        self.duration_since(earlier)
    }
}

/// The era is dropped, as on the wire.
impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        Self::from_unix_nanos(unix_nanos(time))
    }
}

/// Seconds and fraction in hexadecimal, as `ntpq` prints them.
impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Timestamp({:08x}.{:08x})",
            self.seconds(),
            self.fraction()
        )
    }
}

/// Seconds and fraction in hexadecimal, as `ntpq` prints them.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}.{:08x}", self.seconds(), self.fraction())
    }
}

/// Nanoseconds since the Unix epoch, negative before it.
pub(crate) fn unix_nanos(time: SystemTime) -> i128 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
        Err(before) => i128::try_from(before.duration().as_nanos())
            .map(|n| -n)
            .unwrap_or(i128::MIN),
    }
}

fn system_time_from_unix_nanos(nanos: i128) -> Option<SystemTime> {
    let magnitude = u64::try_from(nanos.unsigned_abs() / NANOS_PER_SECOND.unsigned_abs()).ok()?;
    let sub_second = (nanos.unsigned_abs() % NANOS_PER_SECOND.unsigned_abs()) as u32;
    let span = Duration::new(magnitude, sub_second);
    if nanos < 0 {
        UNIX_EPOCH.checked_sub(span)
    } else {
        UNIX_EPOCH.checked_add(span)
    }
}

/// The NTP short format: 16 bits of seconds, 16 bits of fraction (unit
/// 2^-16 s ≈ 15 µs), unsigned; RFC 5905 §6. Spans up to 65536 s.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShortTime(u32);

impl ShortTime {
    /// Zero seconds.
    pub const ZERO: Self = Self(0);
    /// The largest value, just under 65536 s.
    pub const MAX: Self = Self(u32::MAX);

    /// From the 32 on-wire bits.
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The 32 on-wire bits.
    pub const fn to_bits(self) -> u32 {
        self.0
    }

    /// Whole seconds (the value is exact).
    pub const fn from_secs(seconds: u16) -> Self {
        Self((seconds as u32) << 16)
    }

    /// From a duration, rounded to the nearest 2^-16 s and saturating at
    /// [`Self::MAX`].
    pub fn from_duration(duration: Duration) -> Self {
        let fixed = ((duration.as_nanos() << 16) + NANOS_PER_SECOND.unsigned_abs() / 2)
            / NANOS_PER_SECOND.unsigned_abs();
        Self(u32::try_from(fixed).unwrap_or(u32::MAX))
    }

    /// As a duration, rounded to the nearest nanosecond.
    pub fn to_duration(self) -> Duration {
        let nanos = (u64::from(self.0) * NANOS_PER_SECOND.unsigned_abs() as u64 + (1 << 15)) >> 16;
        Duration::from_nanos(nanos)
    }
}

/// Seconds with the 2^-16 resolution shown as microseconds.
impl fmt::Debug for ShortTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShortTime({:?})", self.to_duration())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NANOS: i128 = 1_000_000_000;

    fn unix(seconds: i64) -> i128 {
        i128::from(seconds) * NANOS
    }

    #[test]
    fn epochs_and_the_end_of_era_0() {
        // RFC 5905 §6: 1970-01-01 is NTP second 2_208_988_800.
        assert_eq!(
            Timestamp::from_unix_nanos(0),
            Timestamp::from_parts(2_208_988_800, 0)
        );
        // 2036-02-07T06:28:16Z (Unix 2_085_978_496) is second 0 of era 1.
        assert_eq!(ERA_0_END_UNIX_SECONDS, 2_085_978_496);
        let rollover = unix(ERA_0_END_UNIX_SECONDS);
        assert_eq!(Timestamp::from_unix_nanos(rollover), Timestamp::ZERO);
        assert_eq!(
            Timestamp::from_unix_nanos(rollover - NANOS),
            Timestamp::from_parts(u32::MAX, 0)
        );
        // 1900-01-01 is also second 0, of era 0.
        assert_eq!(
            Timestamp::from_unix_nanos(unix(-NTP_TO_UNIX_SECONDS)),
            Timestamp::ZERO
        );
    }

    #[test]
    fn fraction_resolution_is_2_to_the_minus_32() {
        let half = Timestamp::from_unix_nanos(500_000_000);
        assert_eq!(half.fraction(), 1 << 31);
        let one_ns = Timestamp::from_unix_nanos(1);
        assert_eq!(one_ns.fraction(), 4); // 4.294967296 rounded
        let last = Timestamp::from_unix_nanos(999_999_999);
        assert_eq!(last.seconds(), 2_208_988_800);
        assert_eq!(last.fraction(), 4_294_967_292);
        // One unit of fraction is 0.23 ns: it rounds to zero nanoseconds.
        assert_eq!(
            Timestamp::from_bits(1) - Timestamp::ZERO,
            SignedDuration::ZERO
        );
        assert_eq!(
            Timestamp::from_parts(0, 1 << 31) - Timestamp::ZERO,
            SignedDuration::from_millis(500)
        );
    }

    #[test]
    fn unix_round_trip_is_exact_to_the_nanosecond() {
        let pivot = unix(1_750_000_000);
        for n in [
            pivot,
            pivot + 1,
            pivot - 1,
            pivot + 999_999_999,
            pivot + 123_456_789_012_345,
            0,
            -1,
            unix(ERA_0_END_UNIX_SECONDS) - 1,
            unix(ERA_0_END_UNIX_SECONDS),
        ] {
            assert_eq!(Timestamp::from_unix_nanos(n).to_unix_nanos(pivot), n, "{n}");
        }
    }

    #[test]
    fn era_is_chosen_closest_to_the_pivot() {
        // A timestamp just after the rollover (era 1, small seconds) read
        // with a pivot just before it lands in 2036, not 1900.
        let before = unix(ERA_0_END_UNIX_SECONDS - 60);
        let after = unix(ERA_0_END_UNIX_SECONDS + 60);
        let ts_after = Timestamp::from_unix_nanos(after);
        assert_eq!(ts_after.seconds(), 60);
        assert_eq!(ts_after.to_unix_nanos(before), after);
        assert_eq!(ts_after.era(before), 1);
        // And the reverse: a late era-0 timestamp read in era 1.
        let ts_before = Timestamp::from_unix_nanos(before);
        assert_eq!(ts_before.to_unix_nanos(after), before);
        assert_eq!(ts_before.era(after), 0);
        // Far into era 1 (2100), with a pivot a few years off.
        let y2100 = unix(4_102_444_800);
        let ts = Timestamp::from_unix_nanos(y2100);
        assert_eq!(ts.to_unix_nanos(y2100 - unix(5 * 365 * 86_400)), y2100);
        assert_eq!(ts.era(y2100), 1);
        // The same bits read with a 1990 pivot mean 1964 (era 0).
        let y1990 = unix(631_152_000);
        assert_eq!(ts.era(y1990), 0);
        assert_eq!(
            ts.to_unix_nanos(y1990),
            y2100 - (1 << 32) * NANOS,
            "one era (2^32 s) earlier"
        );
    }

    #[test]
    fn system_time_conversions() {
        let t = UNIX_EPOCH + Duration::new(1_750_000_000, 123_456_789);
        let ts = Timestamp::from(t);
        assert_eq!(ts.to_system_time(t), Some(t));
        assert_eq!(
            ts.to_system_time(t + Duration::from_secs(86_400 * 3650)),
            Some(t)
        );
        let before_1970 = UNIX_EPOCH - Duration::from_secs(86_400);
        let ts = Timestamp::from(before_1970);
        assert_eq!(ts.to_system_time(UNIX_EPOCH), Some(before_1970));
        let in_2040 = UNIX_EPOCH + Duration::from_secs(2_208_988_800);
        assert_eq!(Timestamp::from(in_2040).to_system_time(t), Some(in_2040));
    }

    #[test]
    fn differences_are_signed_and_survive_the_rollover() {
        let rollover = unix(ERA_0_END_UNIX_SECONDS);
        let t1 = Timestamp::from_unix_nanos(rollover - 250_000_000);
        let t2 = Timestamp::from_unix_nanos(rollover + 750_000_000);
        assert!(
            t2.to_bits() < t1.to_bits(),
            "era 1 bits are numerically smaller"
        );
        assert_eq!(t2 - t1, SignedDuration::from_secs(1));
        assert_eq!(t1 - t2, SignedDuration::from_secs(-1));
        assert_eq!(t1.duration_since(t1), SignedDuration::ZERO);
        // The limit: just under 2^31 s (68 years) apart still works.
        let far = Timestamp::from_parts(0x7fff_ffff, 0);
        assert_eq!(
            far - Timestamp::ZERO,
            SignedDuration::from_secs(0x7fff_ffff)
        );
        // 2^31 s apart is ambiguous; two's complement says negative.
        let half_era = Timestamp::from_parts(0x8000_0000, 0);
        assert_eq!(
            half_era - Timestamp::ZERO,
            SignedDuration::from_secs(-0x8000_0000)
        );
    }

    #[test]
    fn wrapping_add_is_the_inverse_of_difference() {
        let base = Timestamp::from_parts(u32::MAX, 0x1234_5678);
        for nanos in [0, 1, -1, 1_500_000_000, -86_400_000_000_000, 999_999_999] {
            let span = SignedDuration::from_nanos(nanos);
            assert_eq!(base.wrapping_add(span) - base, span, "{nanos}");
        }
        assert_eq!(
            base.wrapping_add(SignedDuration::from_secs(1)).seconds(),
            0,
            "wraps into the next era"
        );
    }

    #[test]
    fn random_low_bits_stay_below_the_precision() {
        let t = Timestamp::from_parts(7, 0xabcd_ef01);
        // Precision 2^-20 s: the low 12 fraction bits are noise.
        let r = t.with_random_low_bits(-20, 0xffff_ffff);
        assert_eq!(r.to_bits(), (7u64 << 32) | 0xabcd_efff);
        assert!((r - t).abs() < Duration::from_micros(1));
        // Precision 1 s or coarser: the whole fraction; finer than 2^-32: nothing.
        assert_eq!(t.with_random_low_bits(0, 5).fraction(), 5);
        assert_eq!(t.with_random_low_bits(3, 5).fraction(), 5);
        assert_eq!(t.with_random_low_bits(-32, 5), t);
        assert_eq!(t.with_random_low_bits(i8::MIN, 5), t);
        assert_eq!(t.with_random_low_bits(i8::MAX, 5).seconds(), 7);
    }

    #[test]
    fn short_format() {
        assert_eq!(ShortTime::from_secs(1).to_bits(), 0x0001_0000);
        assert_eq!(
            ShortTime::from_secs(16).to_duration(),
            Duration::from_secs(16)
        );
        let d = ShortTime::from_duration(Duration::from_millis(25));
        assert_eq!(d.to_bits(), 1638); // 0.025 × 65536 = 1638.4
        assert_eq!(d.to_duration(), Duration::from_nanos(24_993_896));
        assert_eq!(ShortTime::from_duration(Duration::MAX), ShortTime::MAX);
        assert_eq!(
            ShortTime::MAX.to_duration(),
            Duration::from_nanos(65_535_999_984_741)
        );
        assert_eq!(
            ShortTime::from_bits(0x8000).to_duration(),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn debug_shows_hex_like_ntpq() {
        let t = Timestamp::from_parts(0xe5d6_1234, 0x8000_0000);
        assert_eq!(format!("{t:?}"), "Timestamp(e5d61234.80000000)");
        assert_eq!(t.to_string(), "e5d61234.80000000");
    }
}
