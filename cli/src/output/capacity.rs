//! What a cloud offers, as its presence announces it: "ready, willing, and
//! able" and its free capacity, with the words and sizes the tables show.

use intercloud_proto::v1 as pb;
use serde::Serialize;

/// The Blueprint's "ready, willing, and able".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub willing: bool,
    pub able: bool,
}

impl From<&pb::Readiness> for Readiness {
    fn from(r: &pb::Readiness) -> Self {
        Self {
            ready: r.ready,
            willing: r.willing,
            able: r.able,
        }
    }
}

impl Readiness {
    /// The words that hold, e.g. `ready,willing,able` or `ready,able`;
    /// `none` when none does.
    pub fn words(&self) -> String {
        let words: Vec<&str> = [
            (self.ready, "ready"),
            (self.willing, "willing"),
            (self.able, "able"),
        ]
        .into_iter()
        .filter_map(|(holds, word)| holds.then_some(word))
        .collect();
        if words.is_empty() {
            "none".to_owned()
        } else {
            words.join(",")
        }
    }
}

/// Free capacity, in the proto's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capacity {
    pub vcpu: u32,
    pub memory_mib: u64,
    pub storage_gib: u64,
}

impl From<&pb::Capacity> for Capacity {
    fn from(c: &pb::Capacity) -> Self {
        Self {
            vcpu: c.vcpu,
            memory_mib: c.memory_mib,
            storage_gib: c.storage_gib,
        }
    }
}

impl Capacity {
    /// `16 vCPU, 256 GiB memory, 9.8 TiB storage`.
    pub fn words(&self) -> String {
        format!(
            "{} vCPU, {} memory, {} storage",
            self.vcpu,
            mebibytes(self.memory_mib),
            gibibytes(self.storage_gib)
        )
    }

    /// `vcpu=16 mem=256GiB storage=9.8TiB`: no spaces inside a value, so a
    /// line of them splits on whitespace.
    pub fn summary(&self) -> String {
        format!(
            "vcpu={} mem={} storage={}",
            self.vcpu,
            mebibytes(self.memory_mib).replace(' ', ""),
            gibibytes(self.storage_gib).replace(' ', "")
        )
    }
}

const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// An amount of bytes in the largest binary unit that keeps it at 1 or
/// more: `512 B`, `1.5 KiB`, `64 MiB`.
pub fn bytes(amount: u64) -> String {
    human(amount, 0)
}

/// An amount of MiB the same way: `512 MiB`, `1.5 GiB`, `256 GiB`.
pub fn mebibytes(mib: u64) -> String {
    human(mib, 2)
}

/// An amount of GiB the same way: `500 GiB`, `9.8 TiB`.
pub fn gibibytes(gib: u64) -> String {
    human(gib, 3)
}

/// One decimal below 10, none from 10 on, and never a trailing `.0`.
fn human(amount: u64, mut unit: usize) -> String {
    // Display only: the precision f64 loses above 2^53 does not show.
    #[allow(clippy::cast_precision_loss)]
    let mut value = amount as f64;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let mut text = if value < 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    };
    // Rounding can reach the next unit: 1023.97 GiB is 1 TiB, not 1024 GiB.
    if text == "1024" && unit + 1 < UNITS.len() {
        text = "1".to_owned();
        unit += 1;
    }
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_pick_the_largest_unit_that_keeps_one_or_more() {
        assert_eq!(mebibytes(0), "0 MiB");
        assert_eq!(mebibytes(512), "512 MiB");
        assert_eq!(mebibytes(1023), "1023 MiB");
        assert_eq!(mebibytes(1024), "1 GiB");
        assert_eq!(mebibytes(1536), "1.5 GiB");
        assert_eq!(mebibytes(262_144), "256 GiB");
        assert_eq!(mebibytes(1_048_575), "1 TiB");
        assert_eq!(gibibytes(500), "500 GiB");
        assert_eq!(gibibytes(10_035), "9.8 TiB");
        assert_eq!(gibibytes(10_230), "10 TiB");
        assert_eq!(gibibytes(12 * 1024), "12 TiB");
        assert_eq!(mebibytes(u64::MAX), "16 YiB");
        assert_eq!(gibibytes(u64::MAX), "16384 YiB");
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(64 << 20), "64 MiB");
        assert_eq!(bytes(u64::MAX), "16 EiB");
    }

    #[test]
    fn readiness_lists_the_words_that_hold() {
        let all = Readiness {
            ready: true,
            willing: true,
            able: true,
        };
        assert_eq!(all.words(), "ready,willing,able");
        let unwilling = Readiness {
            willing: false,
            ..all
        };
        assert_eq!(unwilling.words(), "ready,able");
        let none = Readiness {
            ready: false,
            willing: false,
            able: false,
        };
        assert_eq!(none.words(), "none");
    }

    #[test]
    fn capacity_reads_as_words_and_as_a_summary() {
        let free = Capacity {
            vcpu: 16,
            memory_mib: 262_144,
            storage_gib: 10_035,
        };
        assert_eq!(free.words(), "16 vCPU, 256 GiB memory, 9.8 TiB storage");
        assert_eq!(free.summary(), "vcpu=16 mem=256GiB storage=9.8TiB");
        assert_eq!(
            serde_json::to_value(free).expect("json"),
            serde_json::json!({"vcpu": 16, "memory_mib": 262_144, "storage_gib": 10_035})
        );
    }
}
