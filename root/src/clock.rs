//! What the root says about its clock, to NTP clients and over `Time.Now`:
//! stratum, reference id, leap indicator, precision. Built once from the
//! `[ntp]` configuration; [`ClockSource::state`] gives the NTP system
//! variables for a moment (the reference time follows the clock, as
//! ntpd's local-clock driver does, so a client never sees a stale one).

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use intercloud_ntp::Timestamp;
use intercloud_ntp::packet::{LeapIndicator, ReferenceId};
use intercloud_ntp::server::{ServerConfigError, ServerState, Upstream};

/// Where the root's time comes from, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// The host's own clock, served at this stratum with reference id
    /// "LOCL" (the host may discipline it; the root cannot see that).
    Local {
        /// 1 to 15.
        stratum: u8,
    },
    /// The host's clock follows an upstream server (e.g. through chrony);
    /// the root serves at its stratum + 1 with its reference id.
    Upstream {
        /// The upstream's stratum.
        stratum: u8,
        /// Its IPv4 address, or a reference clock's code such as "GPS".
        id: ReferenceId,
    },
}

/// The reference id of an upstream: an IPv4 address, or one to four
/// printable ASCII characters.
pub fn parse_reference_id(text: &str) -> Option<ReferenceId> {
    text.parse::<Ipv4Addr>()
        .ok()
        .map(ReferenceId::from_ipv4)
        .or_else(|| ReferenceId::from_ascii(text))
}

/// The root's clock as NTP describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSource {
    reference: Reference,
    precision: i8,
}

impl ClockSource {
    /// Checks the configuration; `precision` is the clock's, log2 seconds.
    pub fn new(reference: Reference, precision: i8) -> Result<Self, ServerConfigError> {
        let source = Self {
            reference,
            precision,
        };
        if let Reference::Local { stratum } = reference {
            ServerState::local_clock(stratum, precision, Timestamp::ZERO)?;
        }
        Ok(source)
    }

    /// The NTP system variables at `now`.
    pub fn state(&self, now: SystemTime) -> ServerState {
        let reference_time = Timestamp::from(now);
        match self.reference {
            Reference::Local { stratum } => {
                ServerState::local_clock(stratum, self.precision, reference_time)
                    .unwrap_or_else(|_| ServerState::unsynchronised(self.precision))
            }
            Reference::Upstream { stratum, id } => ServerState::following(
                &Upstream {
                    leap: LeapIndicator::NoWarning,
                    stratum,
                    id,
                    root_delay: Duration::ZERO,
                    root_dispersion: Duration::ZERO,
                    reference_time,
                },
                self.precision,
            ),
        }
    }

    /// The clock's precision, log2 seconds.
    pub fn precision(&self) -> i8 {
        self.precision
    }
}

/// The precision of `read`'s clock, log2 seconds: the smallest step seen
/// between successive distinct readings (ntpd measures it the same way),
/// rounded up to a power of two and clamped to −30..=0.
pub fn measure_precision(mut read: impl FnMut() -> SystemTime) -> i8 {
    let mut smallest = Duration::from_secs(1);
    let mut last = read();
    for _ in 0..1000 {
        let now = read();
        if let Ok(step) = now.duration_since(last)
            && !step.is_zero()
        {
            smallest = smallest.min(step);
        }
        last = now;
    }
    let nanos = smallest.as_nanos().max(1) as f64;
    let log2 = (nanos / 1e9).log2().ceil();
    log2.clamp(-30.0, 0.0) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_clock_is_locl_at_its_stratum_and_its_reference_time_is_now() {
        let source = ClockSource::new(Reference::Local { stratum: 10 }, -20).expect("valid");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let state = source.state(now);
        assert_eq!(state.stratum, 10);
        assert_eq!(state.reference_id, ReferenceId::LOCAL_CLOCK);
        assert_eq!(state.leap, LeapIndicator::NoWarning);
        assert_eq!(state.reference_time, Timestamp::from(now));
        assert_eq!(state.precision, -20);
    }

    #[test]
    fn an_upstream_gives_its_stratum_plus_one_and_its_id() {
        let id = parse_reference_id("192.0.2.7").expect("ipv4");
        let source = ClockSource::new(Reference::Upstream { stratum: 2, id }, -20).expect("valid");
        let state = source.state(SystemTime::now());
        assert_eq!((state.stratum, state.reference_id), (3, id));
        let gps = parse_reference_id("GPS").expect("ascii");
        assert_eq!(gps.ascii(), Some("GPS"));
        assert_eq!(parse_reference_id("toolong"), None);
        let last = ClockSource::new(Reference::Upstream { stratum: 15, id }, -20).expect("valid");
        assert_eq!(
            last.state(SystemTime::now()).leap,
            LeapIndicator::Unsynchronised
        );
    }

    #[test]
    fn a_local_stratum_out_of_range_is_refused() {
        for stratum in [0, 16, 255] {
            assert!(
                ClockSource::new(Reference::Local { stratum }, -20).is_err(),
                "{stratum}"
            );
        }
    }

    #[test]
    fn precision_is_the_smallest_step_as_a_power_of_two() {
        let mut t = SystemTime::UNIX_EPOCH;
        // A clock that moves by 3 µs per reading: 2^-18 s ≈ 3.8 µs.
        let precision = measure_precision(|| {
            t += Duration::from_micros(3);
            t
        });
        assert_eq!(precision, -18);
        let real = measure_precision(SystemTime::now);
        assert!((-30..=-5).contains(&real), "{real}");
    }
}
