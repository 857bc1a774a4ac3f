//! [`Progress`] (bytes, rate, ETA) and the [`RateMeter`] behind it.
//!
//! The rate is measured over a sliding window of the `now`s the driver
//! passes in, in a fixed number of time slots, so its memory does not grow
//! with the number of chunks or the speed.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// How many slots the window is cut into.
const SLOTS: u32 = 16;

/// Bytes per second over a sliding window.
#[derive(Clone, Debug)]
pub struct RateMeter {
    window: Duration,
    slot: Duration,
    /// (slot start, bytes recorded in the slot), oldest first.
    slots: VecDeque<(Instant, u64)>,
    started: Option<Instant>,
    evicted: bool,
}

impl RateMeter {
    /// A meter averaging over `window` (at least 1 ms).
    pub fn new(window: Duration) -> Self {
        let window = window.max(Duration::from_millis(1));
        Self {
            window,
            slot: window / SLOTS,
            slots: VecDeque::with_capacity(SLOTS as usize + 2),
            started: None,
            evicted: false,
        }
    }

    /// Starts the clock without bytes (when sending begins), so that the
    /// first chunk's time counts.
    pub fn start(&mut self, now: Instant) {
        self.started.get_or_insert(now);
    }

    /// `bytes` were done at `now`.
    pub fn record(&mut self, now: Instant, bytes: u64) {
        self.start(now);
        match self.slots.back_mut() {
            Some((start, total)) if now < *start + self.slot => *total += bytes,
            _ => self.slots.push_back((now, bytes)),
        }
        self.evict(now);
    }

    fn evict(&mut self, now: Instant) {
        while let Some(&(start, _)) = self.slots.front() {
            if now.saturating_duration_since(start) < self.window + self.slot {
                break;
            }
            self.slots.pop_front();
            self.evicted = true;
        }
    }

    /// Bytes per second over the window ending at `now`; `None` before
    /// anything was recorded or when no time has passed; 0 when nothing
    /// was recorded within the window.
    pub fn rate(&mut self, now: Instant) -> Option<f64> {
        let started = self.started?;
        self.evict(now);
        // Once slots have expired, the window starts at the oldest kept.
        let since = match self.slots.front() {
            Some(&(oldest, _)) if self.evicted => oldest,
            _ => started,
        };
        let span = now.saturating_duration_since(since).as_secs_f64();
        if span <= 0.0 {
            return None;
        }
        let bytes: u64 = self.slots.iter().map(|&(_, b)| b).sum();
        Some(bytes as f64 / span)
    }

    /// How many slots are held (bounded whatever the traffic).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }
}

/// How far a transfer is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Bytes done: on the sender, in distinct chunks the broker confirmed
    /// (a chunk the receiver asks for again stops counting).
    pub bytes_done: u64,
    /// The object's size.
    pub total: u64,
    /// Bytes per second over the recent window, if known.
    pub rate: Option<f64>,
    /// Time left at that rate, if the rate is known and not zero.
    pub eta: Option<Duration>,
}

impl Progress {
    /// From the counts and a rate.
    pub fn new(bytes_done: u64, total: u64, rate: Option<f64>) -> Self {
        let left = total.saturating_sub(bytes_done);
        let eta = match rate {
            _ if left == 0 => Some(Duration::ZERO),
            Some(r) if r > 0.0 => Duration::try_from_secs_f64(left as f64 / r).ok(),
            _ => None,
        };
        Self {
            bytes_done,
            total,
            rate,
            eta,
        }
    }

    /// Done as a fraction of the total (1 for an empty object).
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.bytes_done as f64 / self.total as f64
        }
    }
}

fn human(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} ({:.1}%)",
            human(self.bytes_done as f64),
            human(self.total as f64),
            100.0 * self.fraction()
        )?;
        match self.rate {
            Some(r) => write!(f, ", {}/s", human(r))?,
            None => f.write_str(", rate unknown")?,
        }
        match self.eta {
            Some(eta) => write!(f, ", ETA {} s", eta.as_secs()),
            None => f.write_str(", ETA unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn steady_rate_and_eta() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(Duration::from_secs(10));
        m.start(t0);
        assert_eq!(m.rate(t0), None);
        // 1 MiB every 100 ms for 30 s: 10 MiB/s.
        for i in 1..=300u32 {
            m.record(t0 + Duration::from_millis(100) * i, MIB);
        }
        let now = t0 + Duration::from_secs(30);
        let rate = m.rate(now).expect("known");
        assert!((rate / (10.0 * MIB as f64) - 1.0).abs() < 0.1, "{rate}");
        assert!(m.slots() <= SLOTS as usize + 2);

        let p = Progress::new(300 * MIB, 400 * MIB, Some(rate));
        let eta = p.eta.expect("known").as_secs_f64();
        assert!((eta - 10.0).abs() < 1.0, "{eta}");
        assert_eq!(
            p.to_string().split(',').next(),
            Some("300.0 MiB of 400.0 MiB (75.0%)")
        );
    }

    #[test]
    fn a_stall_brings_the_rate_to_zero_and_the_eta_to_unknown() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(Duration::from_secs(10));
        m.record(t0, MIB);
        m.record(t0 + Duration::from_secs(1), MIB);
        assert!(m.rate(t0 + Duration::from_secs(2)).expect("known") > 0.0);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(m.rate(later), Some(0.0));
        assert_eq!(Progress::new(2 * MIB, 10 * MIB, Some(0.0)).eta, None);
        assert_eq!(m.slots(), 0);
    }

    #[test]
    fn memory_is_bounded_at_any_speed() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(Duration::from_secs(1));
        for i in 0..100_000u32 {
            m.record(t0 + Duration::from_micros(50) * i, 64 * 1024);
        }
        assert!(m.slots() <= SLOTS as usize + 2, "{}", m.slots());
    }

    #[test]
    fn done_and_empty() {
        let p = Progress::new(0, 0, None);
        assert_eq!(p.fraction(), 1.0);
        assert_eq!(p.eta, Some(Duration::ZERO));
        assert_eq!(
            Progress::new(5, 5, None).to_string(),
            "5 B of 5 B (100.0%), rate unknown, ETA 0 s"
        );
    }
}
