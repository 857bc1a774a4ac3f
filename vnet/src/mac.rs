//! Ethernet MAC addresses, written `02:00:2a:0a:14:05`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::name::snippet;

/// Why a MAC address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MacError {
    /// Not six two-digit hexadecimal octets separated by ':'.
    #[error(
        "MAC address {0:?} is not six hexadecimal octets separated by ':' (e.g. 02:00:2a:0a:14:05)"
    )]
    BadSyntax(String),
}

/// An Ethernet MAC address. Displayed in lowercase, colon-separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddr([u8; 6]);

impl MacAddr {
    /// `00:00:00:00:00:00`: in a VXLAN forwarding database, the entry that
    /// floods broadcast and unknown traffic to a remote VTEP.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The address made of these octets.
    pub const fn new(octets: [u8; 6]) -> Self {
        Self(octets)
    }

    /// The six octets.
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// Locally administered (bit 1 of the first octet set) and unicast (bit 0
    /// clear): the kind of address software may assign without clashing with
    /// any vendor's.
    pub const fn is_local_unicast(self) -> bool {
        self.0[0] & 0b11 == 0b10
    }
}

impl FromStr for MacAddr {
    type Err = MacError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || MacError::BadSyntax(snippet(s));
        let mut octets = [0u8; 6];
        let mut parts = s.split(':');
        for octet in &mut octets {
            let part = parts.next().ok_or_else(bad)?;
            // from_str_radix alone would take "+5".
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self(octets))
    }
}

impl TryFrom<String> for MacAddr {
    type Error = MacError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<MacAddr> for String {
    fn from(mac: MacAddr) -> Self {
        mac.to_string()
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_display_lowercase_with_colons_and_parse_back() {
        let mac = MacAddr::new([0x02, 0x00, 0x2a, 0x0a, 0xBC, 0x05]);
        assert_eq!(mac.to_string(), "02:00:2a:0a:bc:05");
        assert_eq!("02:00:2A:0a:bc:05".parse::<MacAddr>(), Ok(mac));
        assert_eq!(MacAddr::ZERO.to_string(), "00:00:00:00:00:00");
    }

    #[test]
    fn malformed_macs_are_refused() {
        for s in [
            "",
            "02:00:2a:0a:bc",
            "02:00:2a:0a:bc:05:06",
            "02-00-2a-0a-bc-05",
            "2:00:2a:0a:bc:05",
            "02:00:2a:0a:bc:zz",
            "02:00:2a:0a:bc:+5",
        ] {
            assert_eq!(
                s.parse::<MacAddr>(),
                Err(MacError::BadSyntax(s.to_owned())),
                "{s:?} should be refused"
            );
        }
        let error = "nope".parse::<MacAddr>().expect_err("malformed");
        assert_eq!(
            error.to_string(),
            "MAC address \"nope\" is not six hexadecimal octets separated by ':' (e.g. 02:00:2a:0a:14:05)"
        );
    }

    #[test]
    fn local_unicast_is_bit_1_set_and_bit_0_clear() {
        assert!(MacAddr::new([0x02, 0, 0, 0, 0, 1]).is_local_unicast());
        assert!(!MacAddr::new([0x03, 0, 0, 0, 0, 1]).is_local_unicast());
        assert!(!MacAddr::new([0x00, 0x1b, 0x21, 0, 0, 1]).is_local_unicast());
    }

    #[test]
    fn macs_serialize_as_text() {
        let mac = MacAddr::new([2, 0, 0, 0, 0, 9]);
        let text = serde_json::to_string(&mac).expect("serializes");
        assert_eq!(text, "\"02:00:00:00:00:09\"");
        assert_eq!(
            serde_json::from_str::<MacAddr>(&text).expect("deserializes"),
            mac
        );
        assert!(serde_json::from_str::<MacAddr>("\"02:00\"").is_err());
    }
}
