//! The client's side: building a request, checking a reply, and the
//! on-wire calculation of offset and delay (RFC 5905 §8), plus Cristian's
//! method for the `Time.Now` gRPC path.
//!
//! One exchange, with the four timestamps of RFC 5905 §8:
//!
//! ```text
//!  client  T1 ──request──▶ T2  server
//!          T4 ◀──reply──── T3
//! ```
//!
//! The driver reads its clock for T1, perturbs the bits below its
//! precision with random ones ([`Timestamp::with_random_low_bits`]) so an
//! off-path attacker cannot guess it, sends [`request`]`(t1, poll)`, keeps
//! T1, reads T4 when a datagram arrives and calls [`check_reply`]. The
//! reply must echo T1 as its origin timestamp; once one has, the driver
//! forgets T1, so a duplicate or replayed reply fails the same check.

use std::time::{Duration, SystemTime};

use crate::duration::{SignedDuration, from_log2_seconds};
use crate::packet::{
    self, HEADER_LEN, KissCode, LeapIndicator, Mode, Packet, PacketError, ReferenceId, Version,
};
use crate::timestamp::{ShortTime, Timestamp, unix_nanos};
use crate::{MAX_DISPERSION, UNSYNCHRONISED_STRATUM, frequency_tolerance};

/// A client request (mode 3, version 4), all zero but the first octet, the
/// poll and the transmit timestamp, as RFC 4330 §5 describes. `transmit` is
/// T1; keep it to check the reply's origin timestamp.
pub fn request(transmit: Timestamp, poll: i8) -> [u8; HEADER_LEN] {
    packet::serialize(&Packet {
        leap: LeapIndicator::NoWarning,
        version: Version::V4,
        mode: Mode::Client,
        stratum: 0,
        poll,
        precision: 0,
        root_delay: ShortTime::ZERO,
        root_dispersion: ShortTime::ZERO,
        reference_id: ReferenceId::from_bytes([0; 4]),
        reference_time: Timestamp::ZERO,
        origin_time: Timestamp::ZERO,
        receive_time: Timestamp::ZERO,
        transmit_time: transmit,
    })
}

/// Offset and round-trip delay of one exchange (RFC 5905 §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnWire {
    /// θ = ((T2 − T1) + (T3 − T4)) / 2: how far the server's clock is ahead
    /// of ours (positive: ours is behind).
    pub offset: SignedDuration,
    /// δ = (T4 − T1) − (T3 − T2): the round trip minus the server's
    /// processing time. Negative only if a clock misbehaved.
    pub delay: SignedDuration,
}

/// The on-wire calculation from the four timestamps (RFC 5905 §8). Each
/// difference is taken in wraparound arithmetic ([`Timestamp::duration_since`]),
/// so it is right across the 2036 era rollover. The offset is exact if the
/// two legs of the trip take equally long; otherwise it is off by half their
/// difference, which is why the delay bounds its error.
pub fn on_wire(t1: Timestamp, t2: Timestamp, t3: Timestamp, t4: Timestamp) -> OnWire {
    let outbound = i128::from((t2 - t1).as_nanos());
    let inbound = i128::from((t3 - t4).as_nanos());
    let round_trip = i128::from((t4 - t1).as_nanos());
    let in_server = i128::from((t3 - t2).as_nanos());
    OnWire {
        offset: SignedDuration::from_nanos_saturating((outbound + inbound) / 2),
        delay: SignedDuration::from_nanos_saturating(round_trip - in_server),
    }
}

/// What one good reply tells us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// θ, the server's clock minus ours.
    pub offset: SignedDuration,
    /// δ, no less than our precision (the `packet()` routine of RFC 5905
    /// Appendix A).
    pub delay: Duration,
    /// ε = 2^server precision + 2^our precision + Φ × (T4 − T1), Φ = 15 ppm.
    pub dispersion: Duration,
    /// The server's leap warning (never "unsynchronised" in a sample).
    pub leap: LeapIndicator,
    /// The server's stratum, 1 to 15.
    pub stratum: u8,
    /// The server's reference id.
    pub reference_id: ReferenceId,
    /// The server's root delay.
    pub root_delay: Duration,
    /// The server's root dispersion.
    pub root_dispersion: Duration,
    /// The poll exponent the server echoed (it may have raised ours).
    pub poll: i8,
}

impl Sample {
    /// Our distance to the primary reference through this server, an upper
    /// bound of our error: (root delay + δ) / 2 + root dispersion + ε
    /// (RFC 5905's root distance without its jitter and aging terms).
    pub fn root_distance(&self) -> Duration {
        (self.root_delay.saturating_add(self.delay)) / 2
            + self.root_dispersion.saturating_add(self.dispersion)
    }
}

/// Which timestamp of a reply was zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimestampField {
    /// T2.
    Receive,
    /// T3.
    Transmit,
}

impl std::fmt::Display for TimestampField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Receive => "receive (T2)",
            Self::Transmit => "transmit (T3)",
        })
    }
}

/// Why a datagram is not a reply we can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// Not an NTP time packet.
    #[error("not an NTP time packet: {0}")]
    Malformed(#[from] PacketError),
    /// A time packet, but not from a server.
    #[error("mode {} ({mode:?}) is not a server reply", mode.number())]
    NotAServerReply {
        /// The packet's mode.
        mode: Mode,
    },
    /// Its origin timestamp is not the transmit timestamp we sent: a stale,
    /// duplicate or spoofed packet.
    #[error(
        "origin timestamp {received} does not match our request's {expected}: stale, duplicate or spoofed"
    )]
    OriginMismatch {
        /// What we sent (T1).
        expected: Timestamp,
        /// What the reply echoed.
        received: Timestamp,
    },
    /// A Kiss-o'-Death (stratum 0): the server tells us something instead
    /// of the time. "RATE": poll less often; "DENY"/"RSTR": stop
    /// ([`KissCode::demands_silence`]).
    #[error("kiss-o'-death from the server: {0}")]
    KissOfDeath(KissCode),
    /// The server says it has no time to give (leap 3 or stratum 16).
    #[error("the server is unsynchronised (leap {}, stratum {stratum})", leap.to_bits())]
    ServerUnsynchronised {
        /// Its leap indicator.
        leap: LeapIndicator,
        /// Its stratum.
        stratum: u8,
    },
    /// Stratum 17–255, reserved.
    #[error("stratum {0} is reserved; 1 to 15 are valid")]
    ReservedStratum(u8),
    /// A timestamp a server must fill is zero.
    #[error("the reply's {0} timestamp is zero")]
    ZeroTimestamp(TimestampField),
    /// The server's clock was set after the reply left it (RFC 5905
    /// Appendix A, `packet()`: "invalid header values").
    #[error("reference timestamp {reference} is after transmit timestamp {transmit}")]
    ReferenceAfterTransmit {
        /// The reference timestamp.
        reference: Timestamp,
        /// The transmit timestamp.
        transmit: Timestamp,
    },
    /// Root delay / 2 + root dispersion reaches MAXDISP, 16 s (RFC 5905
    /// Appendix A, `packet()`): the server's own error is unbounded.
    #[error(
        "root delay {root_delay:?} / 2 + root dispersion {root_dispersion:?} reaches the 16 s maximum"
    )]
    RootDistanceTooLarge {
        /// The server's root delay.
        root_delay: Duration,
        /// The server's root dispersion.
        root_dispersion: Duration,
    },
}

/// Checks a reply to the request we sent at `sent` (T1), received at
/// `received` (T4), and computes the sample. `local_precision` is our
/// clock's precision (log2 s), the floor of the delay. The checks, in
/// order: it parses; it is a server reply (mode 4); its origin timestamp is
/// our T1 (before anything else is believed, a Kiss-o'-Death included, so
/// that an off-path attacker cannot forge one); stratum 0 → the kiss code;
/// leap 3 or stratum 16 → unsynchronised; stratum above 16 → reserved;
/// non-zero receive and transmit timestamps; reference time not after
/// transmit time; root delay / 2 + root dispersion below 16 s.
pub fn check_reply(
    reply: &[u8],
    sent: Timestamp,
    received: Timestamp,
    local_precision: i8,
) -> Result<Sample, ReplyError> {
    let p = packet::parse(reply)?;
    if p.mode != Mode::Server {
        return Err(ReplyError::NotAServerReply { mode: p.mode });
    }
    if p.origin_time != sent {
        return Err(ReplyError::OriginMismatch {
            expected: sent,
            received: p.origin_time,
        });
    }
    if p.stratum == 0 {
        return Err(ReplyError::KissOfDeath(KissCode::from_reference_id(
            p.reference_id,
        )));
    }
    if p.leap == LeapIndicator::Unsynchronised || p.stratum == UNSYNCHRONISED_STRATUM {
        return Err(ReplyError::ServerUnsynchronised {
            leap: p.leap,
            stratum: p.stratum,
        });
    }
    if p.stratum > UNSYNCHRONISED_STRATUM {
        return Err(ReplyError::ReservedStratum(p.stratum));
    }
    if p.receive_time.is_zero() {
        return Err(ReplyError::ZeroTimestamp(TimestampField::Receive));
    }
    if p.transmit_time.is_zero() {
        return Err(ReplyError::ZeroTimestamp(TimestampField::Transmit));
    }
    if !p.reference_time.is_zero() && (p.transmit_time - p.reference_time).is_negative() {
        return Err(ReplyError::ReferenceAfterTransmit {
            reference: p.reference_time,
            transmit: p.transmit_time,
        });
    }
    let root_delay = p.root_delay.to_duration();
    let root_dispersion = p.root_dispersion.to_duration();
    if root_delay / 2 + root_dispersion >= MAX_DISPERSION {
        return Err(ReplyError::RootDistanceTooLarge {
            root_delay,
            root_dispersion,
        });
    }

    let exchange = on_wire(sent, p.receive_time, p.transmit_time, received);
    let our_precision = from_log2_seconds(local_precision);
    let delay = Duration::from_nanos(u64::try_from(exchange.delay.as_nanos()).unwrap_or(0))
        .max(our_precision);
    let round_trip = (received - sent).abs();
    let dispersion = from_log2_seconds(p.precision)
        .saturating_add(our_precision)
        .saturating_add(frequency_tolerance(round_trip));
    Ok(Sample {
        offset: exchange.offset,
        delay,
        dispersion,
        leap: p.leap,
        stratum: p.stratum,
        reference_id: p.reference_id,
        root_delay,
        root_dispersion,
        poll: p.poll,
    })
}

/// One reading by Cristian's method: ask the server for its time, take
/// the midpoint of the round trip as the moment it was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CristianSample {
    /// The server's clock minus ours: server time + round trip / 2 − t1.
    pub offset: SignedDuration,
    /// t1 − t0. The server read its clock somewhere in it, so the true
    /// offset is within half of it of `offset` ([`Self::max_error`]).
    pub round_trip: Duration,
}

impl CristianSample {
    /// How far the true offset can be from `offset`: half the round trip.
    pub fn max_error(&self) -> Duration {
        self.round_trip / 2
    }
}

/// A Cristian reading that makes no sense.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CristianError {
    /// The answer came back before the question left: our clock was set
    /// backwards in between. Retry.
    #[error("the reply arrived {0:?} before the request left: the local clock stepped; retry")]
    ClockStepped(Duration),
}

/// Cristian's method: the request left at `t0` (our clock), the server
/// answered `server_time`, the answer arrived at `t1` (our clock). The
/// offset is `server_time + (t1 − t0)/2 − t1`, with an error bound of half
/// the round trip. This is the `Time.Now` gRPC path, where there is no
/// server receive/transmit pair to subtract the server's own delay with.
pub fn cristian(
    t0: SystemTime,
    server_time: SystemTime,
    t1: SystemTime,
) -> Result<CristianSample, CristianError> {
    let (t0, server, t1) = (unix_nanos(t0), unix_nanos(server_time), unix_nanos(t1));
    let round_trip = t1.saturating_sub(t0);
    if round_trip < 0 {
        return Err(CristianError::ClockStepped(nanos_duration(
            round_trip.unsigned_abs(),
        )));
    }
    let offset = server.saturating_add(round_trip / 2).saturating_sub(t1);
    Ok(CristianSample {
        offset: SignedDuration::from_nanos_saturating(offset),
        round_trip: nanos_duration(round_trip.unsigned_abs()),
    })
}

fn nanos_duration(nanos: u128) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::timestamp::ERA_0_END_UNIX_SECONDS;

    fn ts(unix_ms: i128) -> Timestamp {
        Timestamp::from_unix_nanos(unix_ms * 1_000_000)
    }

    /// 2025-06-15T12:00:00Z, in milliseconds.
    const NOW_MS: i128 = 1_749_988_800_000;

    /// A server reply to a request sent at `t1`, with T2 and T3.
    fn reply(t1: Timestamp, t2: Timestamp, t3: Timestamp) -> Packet {
        Packet {
            leap: LeapIndicator::NoWarning,
            version: Version::V4,
            mode: Mode::Server,
            stratum: 2,
            poll: 6,
            precision: -20,
            root_delay: ShortTime::from_duration(Duration::from_millis(20)),
            root_dispersion: ShortTime::from_duration(Duration::from_millis(10)),
            reference_id: ReferenceId::from_bytes([192, 0, 2, 1]),
            reference_time: t2.wrapping_add(SignedDuration::from_secs(-30)),
            origin_time: t1,
            receive_time: t2,
            transmit_time: t3,
        }
    }

    #[test]
    fn builds_an_sntp_request() {
        let t1 = ts(NOW_MS);
        let bytes = request(t1, 6);
        assert_eq!(bytes[0], 0x23, "LI 0, VN 4, mode 3");
        assert_eq!(bytes[2], 6);
        assert!(bytes[3..40].iter().all(|&b| b == 0));
        let p = packet::parse(&bytes).expect("our request parses");
        assert_eq!(p.transmit_time, t1);
    }

    #[test]
    fn symmetric_paths_give_the_exact_offset() {
        // Server 250 ms ahead, 10 ms each way, 1 ms inside the server.
        let t1 = ts(NOW_MS);
        let t2 = ts(NOW_MS + 10 + 250);
        let t3 = ts(NOW_MS + 11 + 250);
        let t4 = ts(NOW_MS + 21);
        let w = on_wire(t1, t2, t3, t4);
        assert_eq!(w.offset, SignedDuration::from_millis(250));
        assert_eq!(w.delay, SignedDuration::from_millis(20));
    }

    #[test]
    fn negative_offsets() {
        // Server 1.5 s behind us.
        let t1 = ts(NOW_MS);
        let t2 = ts(NOW_MS + 5 - 1500);
        let t3 = ts(NOW_MS + 6 - 1500);
        let t4 = ts(NOW_MS + 11);
        let w = on_wire(t1, t2, t3, t4);
        assert_eq!(w.offset, SignedDuration::from_millis(-1500));
        assert_eq!(w.delay, SignedDuration::from_millis(10));
    }

    #[test]
    fn asymmetric_paths_err_by_half_the_asymmetry() {
        // Clocks agree; 30 ms out, 10 ms back: θ is off by (30 − 10)/2.
        let t1 = ts(NOW_MS);
        let t2 = ts(NOW_MS + 30);
        let t3 = ts(NOW_MS + 30);
        let t4 = ts(NOW_MS + 40);
        let w = on_wire(t1, t2, t3, t4);
        assert_eq!(w.offset, SignedDuration::from_millis(10));
        assert_eq!(w.delay, SignedDuration::from_millis(40));
        assert!(
            w.offset.abs() <= w.delay.abs() / 2,
            "the delay bounds the error"
        );
    }

    #[test]
    fn the_calculation_survives_the_2036_rollover() {
        // T1 and T2 in era 0, T3 and T4 in era 1; server 2 ms ahead.
        let rollover_ms = i128::from(ERA_0_END_UNIX_SECONDS) * 1000;
        let t1 = ts(rollover_ms - 5);
        let t2 = ts(rollover_ms - 5 + 3 + 2);
        let t3 = ts(rollover_ms + 1 + 2);
        let t4 = ts(rollover_ms + 4);
        assert_eq!(t3.seconds(), 0);
        let w = on_wire(t1, t2, t3, t4);
        assert_eq!(w.offset, SignedDuration::from_millis(2));
        assert_eq!(w.delay, SignedDuration::from_millis(6));
        // And a full check of a reply, well inside era 1.
        let later = rollover_ms + 86_400_000 * 365;
        let (t1, t2, t3, t4) = (ts(later), ts(later + 7), ts(later + 8), ts(later + 11));
        let bytes = packet::serialize(&reply(t1, t2, t3));
        let s = check_reply(&bytes, t1, t4, -20).expect("a valid era-1 reply");
        assert_eq!(s.offset, SignedDuration::from_millis(2));
        assert_eq!(s.delay, Duration::from_millis(10));
    }

    #[test]
    fn a_good_reply_gives_a_sample() {
        let (t1, t2, t3, t4) = (ts(NOW_MS), ts(NOW_MS + 8), ts(NOW_MS + 9), ts(NOW_MS + 17));
        let s = check_reply(&packet::serialize(&reply(t1, t2, t3)), t1, t4, -20)
            .expect("a valid reply");
        assert_eq!(s.offset, SignedDuration::ZERO);
        assert_eq!(s.delay, Duration::from_millis(16));
        assert_eq!(s.stratum, 2);
        assert_eq!(s.poll, 6);
        // ε = 2^-20 + 2^-20 + 15 ppm × 17 ms = 954 + 954 + 255 ns.
        assert_eq!(s.dispersion, Duration::from_nanos(954 + 954 + 255));
        // (20 ms + 16 ms) / 2 + 10 ms + ε, give or take the 15 µs of the
        // short format's resolution.
        let distance = s.root_distance().as_secs_f64();
        assert!((distance - 0.028).abs() < 30e-6, "{distance}");
    }

    #[test]
    fn the_delay_is_clamped_at_our_precision() {
        // A server whose T3 − T2 exceeds the round trip (a misbehaving clock).
        let (t1, t2, t3, t4) = (ts(NOW_MS), ts(NOW_MS + 1), ts(NOW_MS + 9), ts(NOW_MS + 4));
        assert!(on_wire(t1, t2, t3, t4).delay.is_negative());
        let s = check_reply(&packet::serialize(&reply(t1, t2, t3)), t1, t4, -10)
            .expect("a valid reply");
        assert_eq!(s.delay, from_log2_seconds(-10));
    }

    #[test]
    fn refuses_stale_or_spoofed_replies_before_believing_a_kiss() {
        let (t1, t2, t3, t4) = (ts(NOW_MS), ts(NOW_MS + 8), ts(NOW_MS + 9), ts(NOW_MS + 17));
        let mut kod = reply(ts(NOW_MS - 64_000), t2, t3);
        kod.stratum = 0;
        kod.reference_id = ReferenceId::DENY;
        assert_eq!(
            check_reply(&packet::serialize(&kod), t1, t4, -20),
            Err(ReplyError::OriginMismatch {
                expected: t1,
                received: ts(NOW_MS - 64_000)
            })
        );
    }

    #[test]
    fn reports_kiss_codes() {
        let t1 = ts(NOW_MS);
        for (id, code) in [
            (ReferenceId::RATE, KissCode::Rate),
            (ReferenceId::DENY, KissCode::Deny),
            (ReferenceId::RESTRICT, KissCode::Restrict),
            (ReferenceId::INIT, KissCode::Other(ReferenceId::INIT)),
        ] {
            let mut kod = reply(t1, t1, t1);
            kod.leap = LeapIndicator::Unsynchronised;
            kod.stratum = 0;
            kod.reference_id = id;
            assert_eq!(
                check_reply(&packet::serialize(&kod), t1, ts(NOW_MS + 5), -20),
                Err(ReplyError::KissOfDeath(code))
            );
        }
    }

    #[test]
    fn refuses_each_bad_reply() {
        let (t1, t2, t3, t4) = (ts(NOW_MS), ts(NOW_MS + 8), ts(NOW_MS + 9), ts(NOW_MS + 17));
        let good = reply(t1, t2, t3);
        let check = |p: Packet| check_reply(&packet::serialize(&p), t1, t4, -20);

        assert_eq!(
            check_reply(&[0x24; 20], t1, t4, -20),
            Err(ReplyError::Malformed(PacketError::Truncated { len: 20 }))
        );
        assert_eq!(
            check(Packet {
                mode: Mode::Client,
                ..good
            }),
            Err(ReplyError::NotAServerReply { mode: Mode::Client })
        );
        assert_eq!(
            check(Packet {
                leap: LeapIndicator::Unsynchronised,
                ..good
            }),
            Err(ReplyError::ServerUnsynchronised {
                leap: LeapIndicator::Unsynchronised,
                stratum: 2
            })
        );
        assert_eq!(
            check(Packet {
                stratum: 16,
                ..good
            }),
            Err(ReplyError::ServerUnsynchronised {
                leap: LeapIndicator::NoWarning,
                stratum: 16
            })
        );
        assert_eq!(
            check(Packet {
                stratum: 17,
                ..good
            }),
            Err(ReplyError::ReservedStratum(17))
        );
        assert_eq!(
            check(Packet {
                receive_time: Timestamp::ZERO,
                ..good
            }),
            Err(ReplyError::ZeroTimestamp(TimestampField::Receive))
        );
        assert_eq!(
            check(Packet {
                transmit_time: Timestamp::ZERO,
                ..good
            }),
            Err(ReplyError::ZeroTimestamp(TimestampField::Transmit))
        );
        assert_eq!(
            ReplyError::ZeroTimestamp(TimestampField::Transmit).to_string(),
            "the reply's transmit (T3) timestamp is zero"
        );
        let future = ts(NOW_MS + 60_000);
        assert_eq!(
            check(Packet {
                reference_time: future,
                ..good
            }),
            Err(ReplyError::ReferenceAfterTransmit {
                reference: future,
                transmit: t3
            })
        );
        assert!(
            check(Packet {
                reference_time: Timestamp::ZERO,
                ..good
            })
            .is_ok()
        );
        assert_eq!(
            check(Packet {
                root_delay: ShortTime::from_secs(20),
                root_dispersion: ShortTime::from_secs(6),
                ..good
            }),
            Err(ReplyError::RootDistanceTooLarge {
                root_delay: Duration::from_secs(20),
                root_dispersion: Duration::from_secs(6)
            })
        );
        assert!(
            check(Packet {
                root_dispersion: ShortTime::from_secs(15),
                ..good
            })
            .is_ok()
        );
    }

    #[test]
    fn our_server_and_our_client_agree() {
        use crate::ratelimit::Verdict;
        use crate::server::{Response, ServerState};

        let state = ServerState::local_clock(10, -20, ts(NOW_MS - 1000)).expect("valid");
        let t1 = ts(NOW_MS).with_random_low_bits(-20, 0x5a5);
        let (t2, t3, t4) = (ts(NOW_MS + 3 + 40), ts(NOW_MS + 4 + 40), ts(NOW_MS + 7));
        let Response::Reply(bytes) = state.respond(&request(t1, 6), t2, || Verdict::Allow, || t3)
        else {
            panic!("a reply");
        };
        let s = check_reply(&bytes, t1, t4, -20).expect("our own reply is valid");
        assert!((s.offset - SignedDuration::from_millis(40)).abs() < Duration::from_micros(1));
        assert_eq!(s.reference_id, ReferenceId::LOCAL_CLOCK);
        // A second copy of the same reply no longer matches once T1 is forgotten.
        assert!(matches!(
            check_reply(&bytes, ts(NOW_MS + 64_000), t4, -20),
            Err(ReplyError::OriginMismatch { .. })
        ));
        // And the KoD path is reported as such.
        let Response::KissOfDeath(kod) =
            state.respond(&request(t1, 6), t2, || Verdict::KissOfDeath, || t3)
        else {
            panic!("a kiss-o'-death");
        };
        assert_eq!(
            check_reply(&kod, t1, t4, -20),
            Err(ReplyError::KissOfDeath(KissCode::Rate))
        );
    }

    #[test]
    fn cristian_midpoint_and_error_bound() {
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(1_750_000_000_000 + ms);
        // Sent at 0, the server said 1000 + 40 (it is 40 ms ahead), back at 80.
        let s = cristian(at(0), at(1040), at(80)).expect("a sane reading");
        assert_eq!(s.round_trip, Duration::from_millis(80));
        assert_eq!(s.max_error(), Duration::from_millis(40));
        // server + rtt/2 − t1 = 1040 + 40 − 80 = 1000 ms.
        assert_eq!(s.offset, SignedDuration::from_millis(1000));
        // The server behind us.
        let s = cristian(at(1000), at(500), at(1010)).expect("a sane reading");
        assert_eq!(s.offset, SignedDuration::from_millis(-505));
        // Our clock stepped back between request and reply.
        assert_eq!(
            cristian(at(100), at(100), at(40)),
            Err(CristianError::ClockStepped(Duration::from_millis(60)))
        );
    }
}
