//! What an NTP server answers (server mode 4, RFC 5905 §8 and §9.2; RFC
//! 4330 §6), without sockets or clock reads.
//!
//! The driver owns the UDP socket and the clock. Per datagram it reads the
//! clock as early as it can (that is T2, the receive timestamp), hands the
//! bytes to [`ServerState::respond`] with a way to consult the rate limiter
//! and a way to read the clock again as late as it can (T3, the transmit
//! timestamp), and sends what comes back:
//!
//! ```
//! # use intercloud_ntp::{server::{Response, ServerState}, ratelimit::Verdict, timestamp::Timestamp};
//! # let state = ServerState::unsynchronised(-20);
//! # let datagram = [0u8; 48];
//! # let clock = || Timestamp::ZERO;
//! match state.respond(&datagram, clock(), || Verdict::Allow, clock) {
//!     Response::Reply(bytes) | Response::KissOfDeath(bytes) => { /* send_to(&bytes, peer) */ }
//!     Response::Drop(reason) => { /* debug!(%reason, "ntp request dropped") */ }
//! }
//! ```
//!
//! The rules, in order (each has a [`DropReason`]):
//! 1. The bytes must parse as a time packet ([`crate::packet::parse`]). This
//!    drops the all-zeros packet (version 0) and the all-ones packet
//!    (version 7), truncated packets, reserved mode 0 and the control and
//!    private modes 6 and 7 (we run no `ntpq`/`ntpdc` service).
//!    Every version the parser accepts (1 to 4) is answered, in that
//!    version (RFC 4330 §6).
//! 2. Only client requests (mode 3) are answered. Symmetric modes 1 and 2
//!    would need per-peer state and are the door of old ntpd attacks
//!    (unauthenticated ephemeral associations); a server (4) or broadcast
//!    (5) packet sent to us is not a question. None gets an answer.
//! 3. The request's transmit timestamp must not be zero. RFC 5905 and RFC
//!    4330 do not tell a server to check it, and ntpd's server path does
//!    not (its zero-transmit tests are on the client side), but the reply
//!    would carry a zero origin timestamp that no correct client can match
//!    to its request, and a zero transmit timestamp is the mark of a bogus
//!    packet (or of an all-zero probe). Answering serves no one, so we drop.
//! 4. Then, and only then, the rate limiter is asked (so junk costs a client
//!    nothing): allow → a reply; over the limit for the first time in the
//!    interval → a Kiss-o'-Death "RATE"; otherwise silence.
//!
//! Requests with extension fields or a MAC are answered with a bare header:
//! we hold no keys. An authenticating client discards that, as it should.

use std::time::Duration;

use crate::packet::{self, HEADER_LEN, LeapIndicator, Mode, Packet, PacketError, ReferenceId};
use crate::ratelimit::Verdict;
use crate::timestamp::{ShortTime, Timestamp};
use crate::{MAX_DISPERSION, MAX_POLL, MIN_POLL, UNSYNCHRONISED_STRATUM};

/// The stratum a server serving its own clock announces unless configured
/// otherwise: 10, as chrony's `local` directive and the customary ntpd
/// local-clock setup do. High enough that any client with a real
/// reference prefers that; low enough to be served.
pub const DEFAULT_LOCAL_STRATUM: u8 = 10;

/// A conservative precision for a server that timestamps in user space:
/// 2^-20 s ≈ 1 µs. (The kernel clock is finer; the path through the UDP
/// socket and the runtime is not.)
pub const DEFAULT_PRECISION: i8 = -20;

/// What the server says about its clock in every reply (RFC 5905 §7.3
/// system variables). Fields are public so the driver can refresh them,
/// e.g. `reference_time` when its clock is corrected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerState {
    /// Leap warning; [`LeapIndicator::Unsynchronised`] when we have no time to give.
    pub leap: LeapIndicator,
    /// Our stratum: 1–15, or 16 when unsynchronised.
    pub stratum: u8,
    /// Our clock's precision, log2 seconds.
    pub precision: i8,
    /// Round-trip delay from us to the primary reference.
    pub root_delay: ShortTime,
    /// Error bound relative to the primary reference.
    pub root_dispersion: ShortTime,
    /// "LOCL", a reference clock name, or our upstream's address.
    pub reference_id: ReferenceId,
    /// When our clock was last set or corrected.
    pub reference_time: Timestamp,
    /// The lowest poll exponent we echo (a request's poll is clamped to
    /// `min_poll..=MAX_POLL` in the reply); [`MIN_POLL`] (16 s) by default,
    /// which also keeps a client that obeys it under the default rate limit.
    pub min_poll: i8,
}

/// What the server we follow reports, for [`ServerState::following`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// Its leap indicator.
    pub leap: LeapIndicator,
    /// Its stratum; ours is one more.
    pub stratum: u8,
    /// Its identity as a reference id: its IPv4 address, or the first four
    /// octets of the MD5 of its IPv6 address (RFC 5905 §7.3).
    pub id: ReferenceId,
    /// Its root delay plus our round-trip delay to it.
    pub root_delay: Duration,
    /// Its root dispersion plus our dispersion and jitter relative to it.
    pub root_dispersion: Duration,
    /// When we last corrected our clock from it.
    pub reference_time: Timestamp,
}

/// A server configuration that cannot be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerConfigError {
    /// A local clock's stratum must be 1 (primary) to 15.
    #[error("local clock stratum {stratum} is out of range: use 1 (a primary reference) to 15")]
    LocalStratum {
        /// The configured stratum.
        stratum: u8,
    },
}

/// Why a datagram gets no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// Not an NTP time packet at all.
    #[error("not an NTP time packet: {0}")]
    Malformed(#[from] PacketError),
    /// A time packet, but not a client request.
    #[error("mode {} ({mode:?}) is not a client request; only mode 3 is answered", mode.number())]
    NotAClientRequest {
        /// The packet's mode.
        mode: Mode,
    },
    /// A client request whose transmit timestamp is zero.
    #[error("the request's transmit timestamp is zero, so no client could match a reply")]
    ZeroTransmitTime,
    /// The client is over its rate limit and has had its Kiss-o'-Death.
    #[error("the client exceeds the rate limit and has already been sent a kiss-o'-death")]
    RateLimited,
}

/// The server's answer to one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// Send this reply.
    Reply([u8; HEADER_LEN]),
    /// Send this Kiss-o'-Death "RATE" (it carries no time).
    KissOfDeath([u8; HEADER_LEN]),
    /// Send nothing.
    Drop(DropReason),
}

impl Response {
    /// The bytes to send, if any.
    pub fn bytes(&self) -> Option<&[u8; HEADER_LEN]> {
        match self {
            Self::Reply(bytes) | Self::KissOfDeath(bytes) => Some(bytes),
            Self::Drop(_) => None,
        }
    }
}

impl ServerState {
    /// A server that serves its own clock, not synchronised to anything it
    /// can see (the host may still discipline it): reference id "LOCL",
    /// root delay and dispersion zero, stratum `stratum`
    /// ([`DEFAULT_LOCAL_STRATUM`] unless the operator knows better, e.g. 1
    /// for a GPS-disciplined host). `reference_time` is when the clock was
    /// last known good; the driver refreshes it (ntpd's local clock driver
    /// does so every poll).
    pub fn local_clock(
        stratum: u8,
        precision: i8,
        reference_time: Timestamp,
    ) -> Result<Self, ServerConfigError> {
        if !(1..UNSYNCHRONISED_STRATUM).contains(&stratum) {
            return Err(ServerConfigError::LocalStratum { stratum });
        }
        Ok(Self {
            leap: LeapIndicator::NoWarning,
            stratum,
            precision,
            root_delay: ShortTime::ZERO,
            root_dispersion: ShortTime::ZERO,
            reference_id: ReferenceId::LOCAL_CLOCK,
            reference_time,
            min_poll: MIN_POLL,
        })
    }

    /// A server synchronised to an upstream server of stratum S: stratum
    /// S + 1, the upstream's leap warning, its address as reference id.
    /// Falls back to [`Self::unsynchronised`] if the upstream is itself
    /// unsynchronised, or if S + 1 would reach 16.
    pub fn following(upstream: &Upstream, precision: i8) -> Self {
        let stratum = upstream.stratum.saturating_add(1);
        if upstream.leap == LeapIndicator::Unsynchronised
            || upstream.stratum == 0
            || stratum >= UNSYNCHRONISED_STRATUM
        {
            return Self::unsynchronised(precision);
        }
        Self {
            leap: upstream.leap,
            stratum,
            precision,
            root_delay: ShortTime::from_duration(upstream.root_delay),
            root_dispersion: ShortTime::from_duration(upstream.root_dispersion),
            reference_id: upstream.id,
            reference_time: upstream.reference_time,
            min_poll: MIN_POLL,
        }
    }

    /// A server with no time to give: leap 3, stratum 16 (RFC 5905 §7.3
    /// "unsynchronized"), root dispersion at its maximum. It still answers,
    /// so that clients see why they cannot synchronise instead of a timeout;
    /// every correct client discards such a reply.
    pub fn unsynchronised(precision: i8) -> Self {
        Self {
            leap: LeapIndicator::Unsynchronised,
            stratum: UNSYNCHRONISED_STRATUM,
            precision,
            root_delay: ShortTime::ZERO,
            root_dispersion: ShortTime::from_duration(MAX_DISPERSION),
            reference_id: ReferenceId::from_bytes([0; 4]),
            reference_time: Timestamp::ZERO,
            min_poll: MIN_POLL,
        }
    }

    /// The answer to one datagram: `receive` is T2, read as soon as the
    /// datagram arrived; `admit` consults the rate limiter (called only for
    /// a well-formed client request); `transmit` reads T3 (called only for
    /// a reply, last). See the module doc for the rules.
    pub fn respond(
        &self,
        request: &[u8],
        receive: Timestamp,
        admit: impl FnOnce() -> Verdict,
        transmit: impl FnOnce() -> Timestamp,
    ) -> Response {
        let request = match check_request(request) {
            Ok(request) => request,
            Err(reason) => return Response::Drop(reason),
        };
        match admit() {
            Verdict::Allow => {
                let mut reply = self.reply(&request, receive, Timestamp::ZERO);
                // Read the clock after everything else is done.
                reply.transmit_time = transmit();
                Response::Reply(packet::serialize(&reply))
            }
            Verdict::KissOfDeath => {
                Response::KissOfDeath(packet::serialize(&self.kiss_of_death(&request)))
            }
            Verdict::Drop => Response::Drop(DropReason::RateLimited),
        }
    }

    /// The reply to an accepted client request (RFC 5905 §9.2; RFC 4330
    /// §6): our system variables, the request's version, its poll clamped
    /// to `min_poll..=MAX_POLL`, origin = the request's transmit time.
    pub fn reply(&self, request: &Packet, receive: Timestamp, transmit: Timestamp) -> Packet {
        Packet {
            leap: self.leap,
            version: request.version,
            mode: Mode::Server,
            stratum: self.stratum,
            poll: self.reply_poll(request.poll),
            precision: self.precision,
            root_delay: self.root_delay,
            root_dispersion: self.root_dispersion,
            reference_id: self.reference_id,
            reference_time: self.reference_time,
            origin_time: request.transmit_time,
            receive_time: receive,
            transmit_time: transmit,
        }
    }

    /// The Kiss-o'-Death "RATE" for a client over its limit (RFC 5905
    /// §7.4): leap 3, stratum 0. Like ntpd, it reveals no time: origin,
    /// receive and transmit all carry the request's transmit timestamp, so
    /// the client can match it to its request (and must, before believing
    /// it) but cannot synchronise to it.
    pub fn kiss_of_death(&self, request: &Packet) -> Packet {
        Packet {
            leap: LeapIndicator::Unsynchronised,
            version: request.version,
            mode: Mode::Server,
            stratum: 0,
            poll: self.reply_poll(request.poll),
            precision: self.precision,
            root_delay: ShortTime::ZERO,
            root_dispersion: ShortTime::ZERO,
            reference_id: ReferenceId::RATE,
            reference_time: Timestamp::ZERO,
            origin_time: request.transmit_time,
            receive_time: request.transmit_time,
            transmit_time: request.transmit_time,
        }
    }

    /// The poll exponent we echo for a request's `requested` one.
    pub fn reply_poll(&self, requested: i8) -> i8 {
        // Not `clamp`: it panics if a driver set `min_poll` above MAX_POLL.
        requested.max(self.min_poll).min(MAX_POLL)
    }
}

/// Rules 1–3 of the module doc: the request as a packet, or why it is
/// dropped.
pub fn check_request(request: &[u8]) -> Result<Packet, DropReason> {
    let packet = packet::parse(request)?;
    if packet.mode != Mode::Client {
        return Err(DropReason::NotAClientRequest { mode: packet.mode });
    }
    if packet.transmit_time.is_zero() {
        return Err(DropReason::ZeroTransmitTime);
    }
    Ok(packet)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::packet::Version;

    const T1: Timestamp = Timestamp::from_parts(0xea2a_5f80, 0x1111_0000);
    const T2: Timestamp = Timestamp::from_parts(0xea2a_5f80, 0x2222_0000);
    const T3: Timestamp = Timestamp::from_parts(0xea2a_5f80, 0x3333_0000);
    const REF: Timestamp = Timestamp::from_parts(0xea2a_5f00, 0);

    fn request_bytes(first_octet: u8, poll: i8, transmit: Timestamp) -> [u8; 48] {
        let mut bytes = [0u8; 48];
        bytes[0] = first_octet;
        bytes[2] = poll.to_be_bytes()[0];
        bytes[40..48].copy_from_slice(&transmit.to_bits().to_be_bytes());
        bytes
    }

    fn local() -> ServerState {
        ServerState::local_clock(DEFAULT_LOCAL_STRATUM, -20, REF).expect("stratum 10 is valid")
    }

    fn respond(state: &ServerState, bytes: &[u8], verdict: Verdict) -> Response {
        state.respond(bytes, T2, || verdict, || T3)
    }

    fn reply_packet(response: Response) -> Packet {
        match response {
            Response::Reply(bytes) => packet::parse(&bytes).expect("our reply parses"),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn answers_a_client_with_its_timestamps_and_our_variables() {
        let reply = reply_packet(respond(
            &local(),
            &request_bytes(0x23, 6, T1),
            Verdict::Allow,
        ));
        assert_eq!(reply.mode, Mode::Server);
        assert_eq!(reply.version, Version::V4);
        assert_eq!(reply.leap, LeapIndicator::NoWarning);
        assert_eq!(reply.stratum, 10);
        assert_eq!(reply.reference_id, ReferenceId::LOCAL_CLOCK);
        assert_eq!(reply.reference_time, REF);
        assert_eq!(reply.precision, -20);
        assert_eq!(reply.poll, 6);
        assert_eq!(reply.origin_time, T1);
        assert_eq!(reply.receive_time, T2);
        assert_eq!(reply.transmit_time, T3);
    }

    #[test]
    fn echoes_the_version_of_v3_and_older_clients() {
        for (octet, version) in [
            (0x1b, Version::V3),
            (0x13, Version::V2),
            (0x0b, Version::V1),
        ] {
            let reply = reply_packet(respond(
                &local(),
                &request_bytes(octet, 4, T1),
                Verdict::Allow,
            ));
            assert_eq!(reply.version, version);
        }
    }

    #[test]
    fn clamps_the_echoed_poll() {
        let state = local();
        for (asked, echoed) in [
            (0, 4),
            (-3, 4),
            (4, 4),
            (10, 10),
            (17, 17),
            (18, 17),
            (127, 17),
        ] {
            let reply = reply_packet(respond(
                &state,
                &request_bytes(0x23, asked, T1),
                Verdict::Allow,
            ));
            assert_eq!(reply.poll, echoed, "asked {asked}");
        }
        let odd = ServerState {
            min_poll: 100,
            ..state
        };
        assert_eq!(odd.reply_poll(3), MAX_POLL, "no panic on a bad min_poll");
    }

    #[test]
    fn drops_every_mode_but_client() {
        for (mode, octet) in [
            (Mode::SymmetricActive, 0x21),
            (Mode::SymmetricPassive, 0x22),
            (Mode::Server, 0x24),
            (Mode::Broadcast, 0x25),
        ] {
            assert_eq!(
                respond(&local(), &request_bytes(octet, 6, T1), Verdict::Allow),
                Response::Drop(DropReason::NotAClientRequest { mode })
            );
        }
        for mode in [6, 7] {
            assert_eq!(
                respond(&local(), &request_bytes(0x20 | mode, 6, T1), Verdict::Allow),
                Response::Drop(DropReason::Malformed(PacketError::ManagementMode { mode }))
            );
        }
        assert_eq!(
            respond(&local(), &request_bytes(0x20, 6, T1), Verdict::Allow),
            Response::Drop(DropReason::Malformed(PacketError::ReservedMode))
        );
    }

    #[test]
    fn drops_all_zeros_all_ones_truncated_and_zero_transmit() {
        // All zeros: version 0 (rule 1), before mode 0 or the zero transmit.
        assert_eq!(
            respond(&local(), &[0u8; 48], Verdict::Allow),
            Response::Drop(DropReason::Malformed(PacketError::UnsupportedVersion {
                version: 0
            }))
        );
        // All ones: version 7 (rule 1), before mode 7.
        assert_eq!(
            respond(&local(), &[0xffu8; 48], Verdict::Allow),
            Response::Drop(DropReason::Malformed(PacketError::UnsupportedVersion {
                version: 7
            }))
        );
        assert_eq!(
            respond(&local(), &request_bytes(0x23, 6, T1)[..40], Verdict::Allow),
            Response::Drop(DropReason::Malformed(PacketError::Truncated { len: 40 }))
        );
        assert_eq!(
            respond(
                &local(),
                &request_bytes(0x23, 6, Timestamp::ZERO),
                Verdict::Allow
            ),
            Response::Drop(DropReason::ZeroTransmitTime)
        );
    }

    #[test]
    fn junk_does_not_touch_the_rate_limiter_or_the_clock() {
        let asked = Cell::new(0);
        let read = Cell::new(0);
        let response = local().respond(
            &[0u8; 48],
            T2,
            || {
                asked.set(asked.get() + 1);
                Verdict::Allow
            },
            || {
                read.set(read.get() + 1);
                T3
            },
        );
        assert!(matches!(response, Response::Drop(DropReason::Malformed(_))));
        assert_eq!((asked.get(), read.get()), (0, 0));
    }

    #[test]
    fn kiss_of_death_reveals_no_time() {
        let read = Cell::new(false);
        let response = local().respond(
            &request_bytes(0x23, 6, T1),
            T2,
            || Verdict::KissOfDeath,
            || {
                read.set(true);
                T3
            },
        );
        let Response::KissOfDeath(bytes) = response else {
            panic!("expected a kiss-o'-death, got {response:?}");
        };
        assert!(!read.get(), "no clock read for a KoD");
        let kod = packet::parse(&bytes).expect("our KoD parses");
        assert_eq!(kod.leap, LeapIndicator::Unsynchronised);
        assert_eq!(kod.stratum, 0);
        assert_eq!(kod.reference_id, ReferenceId::RATE);
        assert_eq!(kod.mode, Mode::Server);
        assert_eq!(kod.poll, 6);
        assert_eq!(
            (kod.origin_time, kod.receive_time, kod.transmit_time),
            (T1, T1, T1)
        );
        assert_eq!(kod.reference_time, Timestamp::ZERO);
    }

    #[test]
    fn rate_limited_clients_get_silence() {
        assert_eq!(
            respond(&local(), &request_bytes(0x23, 6, T1), Verdict::Drop),
            Response::Drop(DropReason::RateLimited)
        );
        assert_eq!(Response::Drop(DropReason::RateLimited).bytes(), None);
    }

    #[test]
    fn replies_to_requests_with_a_trailer_with_a_bare_header() {
        let mut bytes = request_bytes(0x23, 6, T1).to_vec();
        bytes.extend_from_slice(&[0u8; 24]); // key id + MAC
        let response = respond(&local(), &bytes, Verdict::Allow);
        assert_eq!(response.bytes().map(|b| b.len()), Some(48));
    }

    #[test]
    fn local_clock_stratum_is_checked() {
        assert_eq!(
            ServerState::local_clock(0, -20, REF),
            Err(ServerConfigError::LocalStratum { stratum: 0 })
        );
        assert_eq!(
            ServerState::local_clock(16, -20, REF),
            Err(ServerConfigError::LocalStratum { stratum: 16 })
        );
        assert_eq!(
            ServerConfigError::LocalStratum { stratum: 16 }.to_string(),
            "local clock stratum 16 is out of range: use 1 (a primary reference) to 15"
        );
        assert_eq!(
            ServerState::local_clock(1, -20, REF).map(|s| s.stratum),
            Ok(1)
        );
    }

    #[test]
    fn following_an_upstream_adds_one_stratum() {
        let upstream = Upstream {
            leap: LeapIndicator::InsertSecond,
            stratum: 2,
            id: ReferenceId::from_bytes([192, 0, 2, 1]),
            root_delay: Duration::from_millis(30),
            root_dispersion: Duration::from_millis(5),
            reference_time: REF,
        };
        let state = ServerState::following(&upstream, -22);
        assert_eq!(state.stratum, 3);
        assert_eq!(state.leap, LeapIndicator::InsertSecond);
        assert_eq!(state.reference_id, upstream.id);
        assert_eq!(
            state.root_delay,
            ShortTime::from_duration(Duration::from_millis(30))
        );
        assert_eq!(state.reference_time, REF);
        for bad in [
            Upstream {
                stratum: 15,
                ..upstream
            },
            Upstream {
                stratum: 0,
                ..upstream
            },
            Upstream {
                leap: LeapIndicator::Unsynchronised,
                ..upstream
            },
        ] {
            assert_eq!(
                ServerState::following(&bad, -22),
                ServerState::unsynchronised(-22)
            );
        }
    }

    #[test]
    fn an_unsynchronised_server_still_answers_with_leap_3() {
        let reply = reply_packet(respond(
            &ServerState::unsynchronised(-20),
            &request_bytes(0x23, 6, T1),
            Verdict::Allow,
        ));
        assert_eq!(reply.leap, LeapIndicator::Unsynchronised);
        assert_eq!(reply.stratum, 16);
        assert_eq!(reply.root_dispersion, ShortTime::from_secs(16));
    }
}
