//! The Intercloud time source's protocol code: NTP version 4 (RFC 5905),
//! without I/O.
//!
//! The root runs an NTP server; every broker runs an NTP client against it
//! and reports its clock's health. Both drivers own their UDP sockets and
//! read their clocks; this crate does the rest and never reads a clock
//! itself: every "now" is an argument, so all of it is tested with made-up
//! times (2036 included) and fuzzed with made-up bytes. No NTP crate is
//! needed for 48-byte packets.
//!
//! Map:
//! - [`timestamp`]: the 64-bit timestamp (32.32 fixed point since 1900) and
//!   the 32-bit short format; Unix/`SystemTime` conversion with era
//!   handling around a pivot (2036 and later); wraparound-safe differences
//!   (RFC 5905 §6).
//! - [`duration`]: [`SignedDuration`], the signed nanoseconds that offsets
//!   are measured in.
//! - [`packet`]: the 48-byte header (RFC 5905 §7.3): [`packet::parse`]
//!   refuses anything else with an error naming the problem and never
//!   panics (it is the fuzz target, `ntp/fuzz/`); [`packet::serialize`].
//! - [`server`]: what the server answers to a datagram — a reply, a
//!   Kiss-o'-Death "RATE", or nothing and why.
//! - [`ratelimit`]: the per-client token bucket behind the KoD, in a
//!   bounded table.
//! - [`client`]: the request, the checks a reply must pass, the on-wire
//!   offset and delay (RFC 5905 §8), and Cristian's method for the
//!   `Time.Now` gRPC path.
//! - [`filter`]: the clock filter (RFC 5905 §10, simplified) and the
//!   `Ok` / `Degraded` / `Unsynchronised` verdict, with change detection.
//!
//! The constants below are RFC 5905's global parameters (§7.2) that more
//! than one module needs.

#![forbid(unsafe_code)]

use std::time::Duration;

pub mod client;
pub mod duration;
pub mod filter;
pub mod packet;
pub mod ratelimit;
pub mod server;
pub mod timestamp;

pub use duration::SignedDuration;
pub use packet::Packet;
pub use timestamp::{ShortTime, Timestamp};

/// The shortest poll interval, log2 seconds (MINPOLL: 16 s).
pub const MIN_POLL: i8 = 4;

/// The longest poll interval, log2 seconds (MAXPOLL: 36.4 h).
pub const MAX_POLL: i8 = 17;

/// The stratum that means "unsynchronised" (MAXSTRAT); 1–15 are valid.
pub const UNSYNCHRONISED_STRATUM: u8 = 16;

/// The largest dispersion, and the bound on a server's root distance
/// (MAXDISP: 16 s).
pub const MAX_DISPERSION: Duration = Duration::from_secs(16);

/// Parts per million a clock is assumed to drift at most (Φ, TOLERANCE).
pub const FREQUENCY_TOLERANCE_PPM: u64 = 15;

/// The dispersion a clock accumulates over `elapsed`: Φ × elapsed.
pub(crate) fn frequency_tolerance(elapsed: Duration) -> Duration {
    let nanos = elapsed.as_nanos() * u128::from(FREQUENCY_TOLERANCE_PPM) / 1_000_000;
    let (seconds, sub_second) = (nanos / 1_000_000_000, nanos % 1_000_000_000);
    match u64::try_from(seconds) {
        Ok(seconds) => Duration::new(seconds, sub_second as u32),
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequency_tolerance_is_15_ppm_and_saturates() {
        assert_eq!(
            frequency_tolerance(Duration::from_secs(1000)),
            Duration::from_millis(15)
        );
        assert_eq!(frequency_tolerance(Duration::ZERO), Duration::ZERO);
        // Φ × the longest Duration: 15 ppm of 2^64 s, no overflow.
        let huge = frequency_tolerance(Duration::MAX);
        assert_eq!(huge.as_secs(), 276_701_161_105_643);
    }
}
