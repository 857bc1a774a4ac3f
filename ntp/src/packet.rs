//! The 48-byte NTP header (RFC 5905 §7.3): parsing and serialisation.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |LI | VN  |Mode |    Stratum    |     Poll      |   Precision   |
//! |                          Root Delay                           |
//! |                        Root Dispersion                        |
//! |                          Reference ID                         |
//! |                     Reference Timestamp (64)                  |
//! |                      Origin Timestamp (64)                    |
//! |                      Receive Timestamp (64)                   |
//! |                      Transmit Timestamp (64)                  |
//! ```
//!
//! [`parse`] takes untrusted bytes (it is the fuzz target) and never panics.
//! It checks, in this order, so that the error names what the sender meant:
//! 1. something was received at all ([`PacketError::Truncated`] with 0);
//! 2. the version in the first octet is 1 to 4 ([`PacketError::UnsupportedVersion`]).
//!    Those are the versions whose time packet is this 48-byte header (RFC
//!    1059, 1119, 1305, 5905); many SNTP clients still send version 3, chrony
//!    and ntpd send version 4, and RFC 4330 §6 has a server answer in the
//!    request's version. Version 0 and 5–7 do not exist (NTPv5 is a draft
//!    with another layout);
//! 3. the mode is not 0, which RFC 5905 §7.3 reserves ([`PacketError::ReservedMode`]) —
//!    so the NTPv1 requests of 1988, which had no mode field, are refused —
//!    nor 6 or 7, which carry control (`ntpq`) and private (`ntpdc`)
//!    messages in a different layout ([`PacketError::ManagementMode`]);
//! 4. there are at least 48 bytes ([`PacketError::Truncated`], naming the length).
//!
//! Bytes after the header (RFC 7822 extension fields, a MAC, NTS) are not
//! interpreted; [`parse_with_trailer`] hands them back so the caller can
//! note their length. Every bit of the header is kept, so
//! `serialize(&parse(b)?) == b[..48]` for every accepted `b`.

use std::fmt;
use std::net::Ipv4Addr;

use crate::timestamp::{ShortTime, Timestamp};

/// Length of the NTP header, without extension fields or MAC.
pub const HEADER_LEN: usize = 48;

/// The leap indicator (RFC 5905 §7.3): a warning of a leap
/// second at the end of the current UTC day, or "clock unsynchronised".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeapIndicator {
    /// 0: no warning.
    NoWarning,
    /// 1: the last minute of the day has 61 seconds.
    InsertSecond,
    /// 2: the last minute of the day has 59 seconds.
    DeleteSecond,
    /// 3: the clock is unsynchronised (alarm condition).
    Unsynchronised,
}

impl LeapIndicator {
    /// From the two LI bits (only the low two bits of `bits` are read).
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0 => Self::NoWarning,
            1 => Self::InsertSecond,
            2 => Self::DeleteSecond,
            _ => Self::Unsynchronised,
        }
    }

    /// The two LI bits.
    pub const fn to_bits(self) -> u8 {
        match self {
            Self::NoWarning => 0,
            Self::InsertSecond => 1,
            Self::DeleteSecond => 2,
            Self::Unsynchronised => 3,
        }
    }
}

/// The NTP versions whose time packet is the 48-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// NTPv1, RFC 1059.
    V1,
    /// NTPv2, RFC 1119.
    V2,
    /// NTPv3, RFC 1305 (and SNTPv3, RFC 1769).
    V3,
    /// NTPv4, RFC 5905 (and SNTPv4, RFC 4330).
    V4,
}

impl Version {
    /// From the version number, if it is 1 to 4.
    pub const fn from_number(number: u8) -> Option<Self> {
        match number {
            1 => Some(Self::V1),
            2 => Some(Self::V2),
            3 => Some(Self::V3),
            4 => Some(Self::V4),
            _ => None,
        }
    }

    /// The version number.
    pub const fn number(self) -> u8 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
            Self::V3 => 3,
            Self::V4 => 4,
        }
    }
}

/// The association modes that use the time header (RFC 5905 §7.3). Mode
/// 0 (reserved), 6 (control) and 7 (private) are refused by [`parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// 1: symmetric active.
    SymmetricActive,
    /// 2: symmetric passive.
    SymmetricPassive,
    /// 3: client.
    Client,
    /// 4: server.
    Server,
    /// 5: broadcast.
    Broadcast,
}

impl Mode {
    /// From the mode number, if it is one of the time modes 1 to 5.
    pub const fn from_number(number: u8) -> Option<Self> {
        match number {
            1 => Some(Self::SymmetricActive),
            2 => Some(Self::SymmetricPassive),
            3 => Some(Self::Client),
            4 => Some(Self::Server),
            5 => Some(Self::Broadcast),
            _ => None,
        }
    }

    /// The mode number.
    pub const fn number(self) -> u8 {
        match self {
            Self::SymmetricActive => 1,
            Self::SymmetricPassive => 2,
            Self::Client => 3,
            Self::Server => 4,
            Self::Broadcast => 5,
        }
    }
}

/// The 4-byte reference identifier (RFC 5905 §7.3). Its meaning depends
/// on the stratum: at stratum 0 a kiss code ([`KissCode`], §7.4), at stratum
/// 1 an ASCII name of the reference clock ("GPS", "PPS", or "LOCL" for an
/// undisciplined local clock by common practice), above that the IPv4
/// address of the server we follow, or the first four octets of the MD5
/// hash of its IPv6 address (which this crate does not compute: it has no
/// MD5; the caller passes the four bytes).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ReferenceId([u8; 4]);

impl ReferenceId {
    /// "LOCL": the server's own, undisciplined clock.
    pub const LOCAL_CLOCK: Self = Self(*b"LOCL");
    /// Kiss code "RATE": the client sends too often.
    pub const RATE: Self = Self(*b"RATE");
    /// Kiss code "DENY": access denied.
    pub const DENY: Self = Self(*b"DENY");
    /// Kiss code "RSTR": access restricted.
    pub const RESTRICT: Self = Self(*b"RSTR");
    /// Kiss code "INIT": the association has not synchronised yet.
    pub const INIT: Self = Self(*b"INIT");

    /// From the four on-wire bytes.
    pub const fn from_bytes(bytes: [u8; 4]) -> Self {
        Self(bytes)
    }

    /// The four on-wire bytes.
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0
    }

    /// An ASCII code (stratum 0 or 1) of one to four printable characters,
    /// left justified and zero padded (RFC 5905 §7.3). `None` otherwise.
    pub fn from_ascii(code: &str) -> Option<Self> {
        let bytes = code.as_bytes();
        if bytes.is_empty() || bytes.len() > 4 || !bytes.iter().all(u8::is_ascii_graphic) {
            return None;
        }
        let mut id = [0u8; 4];
        id[..bytes.len()].copy_from_slice(bytes);
        Some(Self(id))
    }

    /// The ASCII code, without its zero padding, if the bytes are one to four
    /// printable ASCII characters followed only by zeros.
    pub fn ascii(&self) -> Option<&str> {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(4);
        let (code, padding) = self.0.split_at(len);
        if code.is_empty()
            || !code.iter().all(u8::is_ascii_graphic)
            || padding.iter().any(|&b| b != 0)
        {
            return None;
        }
        std::str::from_utf8(code).ok()
    }

    /// The identifier of a secondary server following `address` (stratum ≥ 2).
    pub const fn from_ipv4(address: Ipv4Addr) -> Self {
        Self(address.octets())
    }

    /// The four bytes read as an IPv4 address (meaningful at stratum ≥ 2).
    pub const fn to_ipv4(self) -> Ipv4Addr {
        Ipv4Addr::new(self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// ASCII codes as themselves, anything else as a dotted quad (the bytes
/// alone do not say whether they are an address or an MD5 prefix).
impl fmt::Display for ReferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ascii() {
            Some(code) => f.write_str(code),
            None => write!(f, "{}", self.to_ipv4()),
        }
    }
}

impl fmt::Debug for ReferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReferenceId({self})")
    }
}

/// What a Kiss-o'-Death packet (stratum 0) tells the client (RFC 5905
/// §7.4). The three codes RFC 5905 gives an obligation for have variants;
/// the others are informative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KissCode {
    /// "DENY": access denied; the client MUST stop sending to this server.
    Deny,
    /// "RSTR": access restricted; the client MUST stop sending to this server.
    Restrict,
    /// "RATE": rate exceeded; the client MUST reduce its polling rate.
    Rate,
    /// Any other code ("INIT", "STEP", …), informative only.
    Other(ReferenceId),
}

impl KissCode {
    /// The kiss code carried in a stratum-0 packet's reference id.
    pub const fn from_reference_id(id: ReferenceId) -> Self {
        match &id.0 {
            b"DENY" => Self::Deny,
            b"RSTR" => Self::Restrict,
            b"RATE" => Self::Rate,
            _ => Self::Other(id),
        }
    }

    /// The reference id that carries this code.
    pub const fn reference_id(self) -> ReferenceId {
        match self {
            Self::Deny => ReferenceId::DENY,
            Self::Restrict => ReferenceId::RESTRICT,
            Self::Rate => ReferenceId::RATE,
            Self::Other(id) => id,
        }
    }

    /// Whether RFC 5905 §7.4 requires the client to stop sending to the server.
    pub const fn demands_silence(self) -> bool {
        matches!(self, Self::Deny | Self::Restrict)
    }
}

impl fmt::Display for KissCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.reference_id().fmt(f)
    }
}

/// The NTP header's fields, decoded (RFC 5905 §7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    /// Leap second warning or "unsynchronised".
    pub leap: LeapIndicator,
    /// Protocol version.
    pub version: Version,
    /// Association mode.
    pub mode: Mode,
    /// 0 unspecified (a Kiss-o'-Death), 1 primary, 2–15 secondary, 16
    /// unsynchronised, 17–255 reserved.
    pub stratum: u8,
    /// Maximum interval between successive messages, log2 seconds.
    pub poll: i8,
    /// Precision of the sender's clock, log2 seconds.
    pub precision: i8,
    /// Round-trip delay to the reference clock.
    pub root_delay: ShortTime,
    /// Dispersion (error bound) relative to the reference clock.
    pub root_dispersion: ShortTime,
    /// Reference clock, upstream server or kiss code; see [`ReferenceId`].
    pub reference_id: ReferenceId,
    /// When the sender's clock was last set or corrected.
    pub reference_time: Timestamp,
    /// T1: the client's transmit time, echoed by a server.
    pub origin_time: Timestamp,
    /// T2: when the request arrived at the server.
    pub receive_time: Timestamp,
    /// T3 (server) or T1 (client): when the packet left its sender.
    pub transmit_time: Timestamp,
}

/// Why bytes are not an NTP time packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Fewer bytes than the 48 of the header.
    #[error("packet is {len} bytes; an NTP header needs {HEADER_LEN}")]
    Truncated {
        /// How many bytes arrived.
        len: usize,
    },
    /// The version field is not 1 to 4.
    #[error("NTP version {version} is not supported; versions 1 to 4 are")]
    UnsupportedVersion {
        /// The version field.
        version: u8,
    },
    /// Mode 0, reserved by RFC 5905 (and used by NTPv1, which had no mode).
    #[error("mode 0 is reserved (RFC 5905 §7.3)")]
    ReservedMode,
    /// Mode 6 (control) or 7 (private): not a time packet.
    #[error(
        "mode {mode} carries {} messages, not time; they are not served",
        management_kind(.mode)
    )]
    ManagementMode {
        /// The mode field: 6 or 7.
        mode: u8,
    },
}

fn management_kind(mode: &u8) -> &'static str {
    if *mode == 6 {
        "control (ntpq)"
    } else {
        "private (ntpdc)"
    }
}

/// Decodes the header at the start of `bytes`; see the module doc for the
/// checks. Never panics.
pub fn parse(bytes: &[u8]) -> Result<Packet, PacketError> {
    parse_with_trailer(bytes).map(|(packet, _)| packet)
}

/// Like [`parse`], and also returns what follows the header (extension
/// fields, MAC), uninterpreted.
pub fn parse_with_trailer(bytes: &[u8]) -> Result<(Packet, &[u8]), PacketError> {
    let Some(&first) = bytes.first() else {
        return Err(PacketError::Truncated { len: 0 });
    };
    let version_number = (first >> 3) & 0b111;
    let version = Version::from_number(version_number).ok_or(PacketError::UnsupportedVersion {
        version: version_number,
    })?;
    let mode_number = first & 0b111;
    let mode = match Mode::from_number(mode_number) {
        Some(mode) => mode,
        None if mode_number == 0 => return Err(PacketError::ReservedMode),
        None => return Err(PacketError::ManagementMode { mode: mode_number }),
    };
    let Some((header, trailer)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(PacketError::Truncated { len: bytes.len() });
    };
    let u32_at = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let timestamp_at =
        |at: usize| Timestamp::from_bits((u64::from(u32_at(at)) << 32) | u64::from(u32_at(at + 4)));
    let packet = Packet {
        leap: LeapIndicator::from_bits(first >> 6),
        version,
        mode,
        stratum: header[1],
        poll: i8::from_be_bytes([header[2]]),
        precision: i8::from_be_bytes([header[3]]),
        root_delay: ShortTime::from_bits(u32_at(4)),
        root_dispersion: ShortTime::from_bits(u32_at(8)),
        reference_id: ReferenceId::from_bytes([header[12], header[13], header[14], header[15]]),
        reference_time: timestamp_at(16),
        origin_time: timestamp_at(24),
        receive_time: timestamp_at(32),
        transmit_time: timestamp_at(40),
    };
    Ok((packet, trailer))
}

/// Encodes the header; the inverse of [`parse`].
pub fn serialize(packet: &Packet) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0] = (packet.leap.to_bits() << 6) | (packet.version.number() << 3) | packet.mode.number();
    out[1] = packet.stratum;
    out[2] = packet.poll.to_be_bytes()[0];
    out[3] = packet.precision.to_be_bytes()[0];
    out[4..8].copy_from_slice(&packet.root_delay.to_bits().to_be_bytes());
    out[8..12].copy_from_slice(&packet.root_dispersion.to_bits().to_be_bytes());
    out[12..16].copy_from_slice(&packet.reference_id.to_bytes());
    out[16..24].copy_from_slice(&packet.reference_time.to_bits().to_be_bytes());
    out[24..32].copy_from_slice(&packet.origin_time.to_bits().to_be_bytes());
    out[32..40].copy_from_slice(&packet.receive_time.to_bits().to_be_bytes());
    out[40..48].copy_from_slice(&packet.transmit_time.to_bits().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stratum-2 server reply, assembled by hand (timestamps in 2024).
    const CHRONY_REPLY: [u8; 48] = [
        0x24, 0x02, 0x06, 0xe9, // LI 0, VN 4, mode 4; stratum 2; poll 6; precision -23
        0x00, 0x00, 0x01, 0x2b, // root delay 0x012b / 65536 s
        0x00, 0x00, 0x00, 0x3e, // root dispersion
        0xc0, 0x00, 0x02, 0x01, // refid 192.0.2.1
        0xea, 0x2a, 0x5f, 0x10, 0x12, 0x34, 0x56, 0x78, // reference
        0xea, 0x2a, 0x5f, 0x80, 0x00, 0x00, 0x00, 0x01, // origin
        0xea, 0x2a, 0x5f, 0x80, 0x40, 0x00, 0x00, 0x00, // receive
        0xea, 0x2a, 0x5f, 0x80, 0x40, 0x01, 0x00, 0x00, // transmit
    ];

    fn sntp_request(first_octet: u8) -> [u8; 48] {
        let mut bytes = [0u8; 48];
        bytes[0] = first_octet;
        bytes[40..48].copy_from_slice(&0xea2a_5f80_0000_0001u64.to_be_bytes());
        bytes
    }

    #[test]
    fn parses_every_field() {
        let p = parse(&CHRONY_REPLY).expect("a valid reply");
        assert_eq!(p.leap, LeapIndicator::NoWarning);
        assert_eq!(p.version, Version::V4);
        assert_eq!(p.mode, Mode::Server);
        assert_eq!(p.stratum, 2);
        assert_eq!(p.poll, 6);
        assert_eq!(p.precision, -23);
        assert_eq!(p.root_delay, ShortTime::from_bits(0x012b));
        assert_eq!(p.root_dispersion, ShortTime::from_bits(0x3e));
        assert_eq!(p.reference_id.to_ipv4(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            p.reference_time,
            Timestamp::from_parts(0xea2a_5f10, 0x1234_5678)
        );
        assert_eq!(p.origin_time, Timestamp::from_parts(0xea2a_5f80, 1));
        assert_eq!(
            p.receive_time,
            Timestamp::from_parts(0xea2a_5f80, 0x4000_0000)
        );
        assert_eq!(
            p.transmit_time,
            Timestamp::from_parts(0xea2a_5f80, 0x4001_0000)
        );
    }

    #[test]
    fn serialize_is_the_exact_inverse() {
        let p = parse(&CHRONY_REPLY).expect("a valid reply");
        assert_eq!(serialize(&p), CHRONY_REPLY);
        let mut q = p;
        q.leap = LeapIndicator::DeleteSecond;
        q.version = Version::V3;
        q.mode = Mode::Broadcast;
        q.poll = -6;
        q.precision = i8::MIN;
        assert_eq!(parse(&serialize(&q)), Ok(q));
    }

    #[test]
    fn accepts_versions_1_to_4_with_a_time_mode() {
        // 0x1b: LI 0, VN 3, mode 3 (an NTPv3/SNTPv3 client); 0x23: VN 4 (RFC 4330);
        // 0xe3: LI 3, VN 4, mode 3 (a client that is unsynchronised itself).
        for (octet, version) in [
            (0x0b, Version::V1),
            (0x13, Version::V2),
            (0x1b, Version::V3),
            (0x23, Version::V4),
            (0xe3, Version::V4),
        ] {
            let p = parse(&sntp_request(octet)).expect("a client request");
            assert_eq!((p.version, p.mode), (version, Mode::Client));
        }
    }

    #[test]
    fn refuses_with_a_precise_error() {
        assert_eq!(parse(&[]), Err(PacketError::Truncated { len: 0 }));
        assert_eq!(
            parse(&sntp_request(0x23)[..12]),
            Err(PacketError::Truncated { len: 12 })
        );
        assert_eq!(
            parse(&sntp_request(0x23)[..47]),
            Err(PacketError::Truncated { len: 47 })
        );
        assert_eq!(
            PacketError::Truncated { len: 12 }.to_string(),
            "packet is 12 bytes; an NTP header needs 48"
        );
        // All zeros: version 0 is checked before the (reserved) mode 0.
        assert_eq!(
            parse(&[0u8; 48]),
            Err(PacketError::UnsupportedVersion { version: 0 })
        );
        // All ones: LI 3, version 7, mode 7.
        assert_eq!(
            parse(&[0xffu8; 48]),
            Err(PacketError::UnsupportedVersion { version: 7 })
        );
        assert_eq!(
            parse(&sntp_request(0x2b)),
            Err(PacketError::UnsupportedVersion { version: 5 })
        );
        // NTPv1 had no mode field: its requests carry mode 0.
        assert_eq!(parse(&sntp_request(0x08)), Err(PacketError::ReservedMode));
        // ntpq's 12-byte control query: the mode is named, not the length.
        assert_eq!(
            parse(&[0x16, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(PacketError::ManagementMode { mode: 6 })
        );
        assert_eq!(
            parse(&sntp_request(0x27)),
            Err(PacketError::ManagementMode { mode: 7 })
        );
        assert_eq!(
            PacketError::ManagementMode { mode: 6 }.to_string(),
            "mode 6 carries control (ntpq) messages, not time; they are not served"
        );
    }

    #[test]
    fn keeps_the_header_and_returns_the_trailer() {
        let mut bytes = sntp_request(0x23).to_vec();
        // A 4-byte crypto-NAK, then a 16-byte extension field.
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&[0x01, 0x04, 0x00, 0x10]);
        bytes.extend_from_slice(&[0xaa; 12]);
        let (p, trailer) = parse_with_trailer(&bytes).expect("header plus trailer");
        assert_eq!(trailer.len(), 20);
        assert_eq!(p, parse(&sntp_request(0x23)).expect("header alone"));
    }

    #[test]
    fn never_panics_on_any_short_or_odd_input() {
        for len in 0..=64 {
            for fill in [0x00, 0x23, 0x55, 0xaa, 0xe4, 0xff] {
                let bytes = vec![fill; len];
                if let Ok(p) = parse(&bytes) {
                    assert_eq!(serialize(&p)[..], bytes[..HEADER_LEN]);
                }
            }
        }
    }

    #[test]
    fn reference_ids() {
        assert_eq!(
            ReferenceId::from_ascii("GPS"),
            Some(ReferenceId::from_bytes(*b"GPS\0"))
        );
        assert_eq!(
            ReferenceId::from_ascii("LOCL"),
            Some(ReferenceId::LOCAL_CLOCK)
        );
        assert_eq!(ReferenceId::from_ascii(""), None);
        assert_eq!(ReferenceId::from_ascii("TOOLONG"), None);
        assert_eq!(ReferenceId::from_ascii("a b"), None);
        assert_eq!(ReferenceId::from_bytes(*b"GPS\0").ascii(), Some("GPS"));
        assert_eq!(ReferenceId::from_bytes(*b"G\0S\0").ascii(), None);
        assert_eq!(ReferenceId::from_bytes([192, 0, 2, 1]).ascii(), None);
        let ip = Ipv4Addr::new(203, 0, 113, 9);
        assert_eq!(ReferenceId::from_ipv4(ip).to_ipv4(), ip);
        assert_eq!(ReferenceId::from_ipv4(ip).to_string(), "203.0.113.9");
        assert_eq!(ReferenceId::RATE.to_string(), "RATE");
        assert_eq!(
            format!("{:?}", ReferenceId::LOCAL_CLOCK),
            "ReferenceId(LOCL)"
        );
    }

    #[test]
    fn kiss_codes() {
        assert_eq!(
            KissCode::from_reference_id(ReferenceId::RATE),
            KissCode::Rate
        );
        assert_eq!(
            KissCode::from_reference_id(ReferenceId::DENY),
            KissCode::Deny
        );
        assert_eq!(
            KissCode::from_reference_id(ReferenceId::RESTRICT),
            KissCode::Restrict
        );
        let init = KissCode::from_reference_id(ReferenceId::INIT);
        assert_eq!(init, KissCode::Other(ReferenceId::INIT));
        assert_eq!(init.to_string(), "INIT");
        assert!(KissCode::Deny.demands_silence());
        assert!(KissCode::Restrict.demands_silence());
        assert!(!KissCode::Rate.demands_silence());
        assert_eq!(KissCode::Rate.reference_id(), ReferenceId::RATE);
    }

    #[test]
    fn field_codes_round_trip() {
        for bits in 0..4 {
            assert_eq!(LeapIndicator::from_bits(bits).to_bits(), bits);
        }
        for n in 0..8 {
            assert_eq!(
                Version::from_number(n).map(Version::number),
                (1..=4).contains(&n).then_some(n)
            );
            assert_eq!(
                Mode::from_number(n).map(Mode::number),
                (1..=5).contains(&n).then_some(n)
            );
        }
    }
}
