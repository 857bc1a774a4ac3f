//! Sizes typed on the command line: `64M`, `512MiB`, `2G`, `1048576`.
//!
//! Suffixes are binary whatever their spelling (`1K` = `1KiB` = `1KB` =
//! 1024 bytes), because disks and memory are sized in powers of two and an
//! operator who types `512M` for a VM means 512 MiB, not 512 000 000 bytes.

use std::fmt;
use std::str::FromStr;

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(u64);

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

impl Size {
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// The size in whole MiB, or `None` when it is not a multiple of 1 MiB.
    pub fn whole_mebibytes(self) -> Option<u64> {
        self.0.is_multiple_of(MIB).then_some(self.0 / MIB)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

/// Why a size was refused; the message is what clap prints after the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeError {
    /// Not a whole number followed by a known suffix.
    Malformed,
    /// More than 16 EiB.
    TooLarge,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => {
                "expected a whole number with an optional K, M, G or T suffix (binary: 1K = 1024), e.g. 512M"
            }
            Self::TooLarge => "too large",
        })
    }
}

impl std::error::Error for SizeError {}

impl FromStr for Size {
    type Err = SizeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, suffix) = text.split_at(digits_end);
        if digits.is_empty() {
            return Err(SizeError::Malformed);
        }
        let shift = match suffix.trim_start().to_ascii_uppercase().as_str() {
            "" | "B" => 0,
            "K" | "KB" | "KIB" => 10,
            "M" | "MB" | "MIB" => 20,
            "G" | "GB" | "GIB" => 30,
            "T" | "TB" | "TIB" => 40,
            _ => return Err(SizeError::Malformed),
        };
        let number: u64 = digits.parse().map_err(|_| SizeError::TooLarge)?;
        number
            .checked_mul(1 << shift)
            .map(Size)
            .ok_or(SizeError::TooLarge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(text: &str) -> Result<u64, SizeError> {
        text.parse::<Size>().map(Size::bytes)
    }

    #[test]
    fn suffixes_are_binary_in_any_spelling() {
        assert_eq!(size("0"), Ok(0));
        assert_eq!(size("1048576"), Ok(MIB));
        assert_eq!(size("512B"), Ok(512));
        assert_eq!(size("1K"), Ok(1024));
        assert_eq!(size("1k"), Ok(1024));
        assert_eq!(size("1KB"), Ok(1024));
        assert_eq!(size("1KiB"), Ok(1024));
        assert_eq!(size("512M"), Ok(512 * MIB));
        assert_eq!(size("512 MiB"), Ok(512 * MIB));
        assert_eq!(size("64m"), Ok(64 * MIB));
        assert_eq!(size("2G"), Ok(2 << 30));
        assert_eq!(size("2gib"), Ok(2 << 30));
        assert_eq!(size("3T"), Ok(3 << 40));
        assert_eq!(size(" 8M "), Ok(8 * MIB));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in ["", "M", "-1", "1.5G", "12X", "1 2M", "1MM", "1P", "0x10"] {
            assert_eq!(size(bad), Err(SizeError::Malformed), "{bad:?}");
        }
        assert_eq!(size("16777216T"), Err(SizeError::TooLarge));
        assert_eq!(size("99999999999999999999"), Err(SizeError::TooLarge));
        assert_eq!(size("16777215T"), Ok(16_777_215 << 40));
    }

    #[test]
    fn whole_mebibytes_only_for_multiples() {
        assert_eq!(Size(512 * MIB).whole_mebibytes(), Some(512));
        assert_eq!(Size(0).whole_mebibytes(), Some(0));
        assert_eq!(Size(1536 * 1024).whole_mebibytes(), None);
    }
}
