//! The clock filter (RFC 5905 §10, simplified) and the clock-health
//! verdict every broker reports.
//!
//! The filter keeps the last [`STAGES`] samples and trusts the one with the
//! lowest delay: its offset error is bounded by half its delay, and queues
//! only ever add delay, so the fastest exchange is the least distorted. The
//! jitter ψ is the RMS of the other samples' offsets relative to it, as RFC
//! 5905 §10 defines it. Simplifications: no popcorn-spike suppressor, no
//! "use each sample once" rule, and stages not yet filled do not count in
//! the dispersion (RFC 5905 counts them as MAXDISP, so early estimates here
//! look better than an RFC 5905 implementation would report them).
//!
//! [`HealthPolicy::assess`] turns the filter into a [`Health`] verdict, and
//! [`HealthWatch`] says when the verdict changes, so that the broker logs
//! one line per change rather than one per poll.

use std::collections::VecDeque;
use std::mem;
use std::time::{Duration, Instant};

use crate::client::{CristianSample, Sample};
use crate::duration::SignedDuration;
use crate::frequency_tolerance;

/// How many samples the filter keeps (RFC 5905 NSTAGE).
pub const STAGES: usize = 8;

/// One measurement, as the filter keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterSample {
    /// The reference's clock minus ours.
    pub offset: SignedDuration,
    /// The round-trip delay (the offset's error is at most half of it).
    pub delay: Duration,
    /// The measurement's own error bound, apart from the delay.
    pub dispersion: Duration,
    /// When it was taken (our monotonic clock).
    pub at: Instant,
}

impl FilterSample {
    /// From an NTP exchange checked by [`crate::client::check_reply`].
    pub fn from_ntp(sample: &Sample, at: Instant) -> Self {
        Self {
            offset: sample.offset,
            delay: sample.delay,
            dispersion: sample.dispersion,
            at,
        }
    }

    /// From a Cristian reading ([`crate::client::cristian`]): its round trip
    /// plays the role of the delay.
    pub fn from_cristian(sample: &CristianSample, at: Instant) -> Self {
        Self {
            offset: sample.offset,
            delay: sample.round_trip,
            dispersion: Duration::ZERO,
            at,
        }
    }
}

/// What the filter believes now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    /// The offset of the lowest-delay sample.
    pub offset: SignedDuration,
    /// That sample's delay.
    pub delay: Duration,
    /// Σ (εᵢ + Φ·ageᵢ) / 2^(i+1) over the samples sorted by delay (RFC 5905 §10).
    pub dispersion: Duration,
    /// ψ: √(Σ (θ₀ − θᵢ)² / (n − 1)); zero with a single sample.
    pub jitter: Duration,
    /// When the chosen sample was taken.
    pub at: Instant,
    /// How many samples the filter holds.
    pub samples: usize,
}

/// The last [`STAGES`] samples from one source.
#[derive(Clone, Debug, Default)]
pub struct ClockFilter {
    samples: VecDeque<FilterSample>,
}

impl ClockFilter {
    /// An empty filter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sample, forgetting the oldest beyond [`STAGES`].
    pub fn add(&mut self, sample: FilterSample) {
        if self.samples.len() == STAGES {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// Forgets every sample (e.g. after the local clock was stepped, which
    /// makes old offsets meaningless).
    pub fn clear(&mut self) {
        self.samples.clear();
    }

    /// How many samples are held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// When the newest sample was added.
    pub fn last_sample_at(&self) -> Option<Instant> {
        self.samples.iter().map(|s| s.at).max()
    }

    /// The current estimate, or `None` before the first sample. `now` ages
    /// the dispersion (Φ = 15 ppm of each sample's age).
    pub fn estimate(&self, now: Instant) -> Option<Estimate> {
        let mut sorted: Vec<FilterSample> = self.samples.iter().copied().collect();
        // Lowest delay first; on a tie, the newer sample.
        sorted.sort_by(|a, b| a.delay.cmp(&b.delay).then(b.at.cmp(&a.at)));
        let best = *sorted.first()?;

        let dispersion = sorted
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let aged = s
                    .dispersion
                    .saturating_add(frequency_tolerance(now.saturating_duration_since(s.at)));
                // i < STAGES = 8, so the shift cannot overflow.
                aged / (2u32 << i)
            })
            .fold(Duration::ZERO, Duration::saturating_add);

        let jitter = if sorted.len() < 2 {
            Duration::ZERO
        } else {
            let sum_of_squares: f64 = sorted[1..]
                .iter()
                .map(|s| (best.offset - s.offset).as_nanos() as f64)
                .map(|d| d * d)
                .sum();
            let rms_nanos = (sum_of_squares / (sorted.len() - 1) as f64).sqrt();
            // `as` saturates; the value is finite and non-negative.
            Duration::from_nanos(rms_nanos.round() as u64)
        };

        Some(Estimate {
            offset: best.offset,
            delay: best.delay,
            dispersion,
            jitter,
            at: best.at,
            samples: sorted.len(),
        })
    }
}

/// When the clock counts as degraded or unsynchronised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Above this |offset| the clock is [`Health::Degraded`]. Default 128 ms,
    /// RFC 5905's step threshold (STEPT): past it, ntpd stops slewing and
    /// steps the clock, i.e. it considers the clock plainly wrong.
    pub max_offset: Duration,
    /// With no valid sample for longer than this, the clock is
    /// [`Health::Unsynchronised`]. Default 512 s: eight polls at 64 s, the
    /// depth of RFC 5905's reachability register, after which a server
    /// counts as unreachable.
    pub max_silence: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            max_offset: Duration::from_millis(128),
            max_silence: Duration::from_secs(512),
        }
    }
}

/// The clock-health verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// No sample yet, and not yet for longer than `max_silence` since start.
    Starting,
    /// Recent samples, offset within `max_offset`.
    Ok,
    /// Recent samples, but the offset is larger than `max_offset`.
    Degraded {
        /// The estimated offset (reference minus local).
        offset: SignedDuration,
    },
    /// No valid sample for longer than `max_silence` (the time source is
    /// unreachable, or keeps sending unusable replies).
    Unsynchronised {
        /// When the last valid sample was taken, or when we started if
        /// there never was one.
        since: Instant,
    },
}

impl Health {
    /// Whether two verdicts are the same kind, whatever their details.
    pub fn same_kind(&self, other: &Self) -> bool {
        mem::discriminant(self) == mem::discriminant(other)
    }
}

impl HealthPolicy {
    /// The verdict at `now` for a filter fed since `started`.
    pub fn assess(&self, filter: &ClockFilter, started: Instant, now: Instant) -> Health {
        let last = filter.last_sample_at();
        let silent_since = last.unwrap_or(started);
        if now.saturating_duration_since(silent_since) > self.max_silence {
            return Health::Unsynchronised {
                since: silent_since,
            };
        }
        match filter.estimate(now) {
            None => Health::Starting,
            Some(estimate) if estimate.offset.abs() > self.max_offset => Health::Degraded {
                offset: estimate.offset,
            },
            Some(_) => Health::Ok,
        }
    }
}

/// A change of verdict, to be logged once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthChange {
    /// The previous verdict; `None` for the first one.
    pub from: Option<Health>,
    /// The new verdict.
    pub to: Health,
}

/// Remembers the last verdict and reports changes of kind only: a
/// degraded clock whose offset moves from 200 ms to 210 ms is no news.
#[derive(Clone, Copy, Debug, Default)]
pub struct HealthWatch {
    last: Option<Health>,
}

impl HealthWatch {
    /// A watch that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `health`; returns the change if its kind differs from the
    /// previous verdict (always, for the first verdict).
    pub fn observe(&mut self, health: Health) -> Option<HealthChange> {
        let previous = self.last.replace(health);
        match previous {
            Some(previous) if previous.same_kind(&health) => None,
            from => Some(HealthChange { from, to: health }),
        }
    }

    /// The last verdict observed.
    pub fn last(&self) -> Option<Health> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t0: Instant, secs: u64, offset_ms: i64, delay_ms: u64) -> FilterSample {
        FilterSample {
            offset: SignedDuration::from_millis(offset_ms),
            delay: Duration::from_millis(delay_ms),
            dispersion: Duration::ZERO,
            at: t0 + Duration::from_secs(secs),
        }
    }

    #[test]
    fn chooses_the_lowest_delay_sample() {
        let t0 = Instant::now();
        let mut filter = ClockFilter::new();
        assert_eq!(filter.estimate(t0), None);
        filter.add(sample(t0, 0, 30, 50));
        filter.add(sample(t0, 64, 2, 4)); // fastest: least distorted
        filter.add(sample(t0, 128, -20, 40));
        let e = filter
            .estimate(t0 + Duration::from_secs(128))
            .expect("samples");
        assert_eq!(e.offset, SignedDuration::from_millis(2));
        assert_eq!(e.delay, Duration::from_millis(4));
        assert_eq!(e.at, t0 + Duration::from_secs(64));
        assert_eq!(e.samples, 3);
    }

    #[test]
    fn keeps_only_the_last_eight() {
        let t0 = Instant::now();
        let mut filter = ClockFilter::new();
        filter.add(sample(t0, 0, 99, 1)); // the best, but it will fall out
        for i in 1..=8 {
            filter.add(sample(t0, i * 64, 5, 10 + i));
        }
        assert_eq!(filter.len(), STAGES);
        let e = filter
            .estimate(t0 + Duration::from_secs(600))
            .expect("samples");
        assert_eq!(e.offset, SignedDuration::from_millis(5));
        assert_eq!(e.delay, Duration::from_millis(11));
        filter.clear();
        assert!(filter.is_empty());
    }

    #[test]
    fn jitter_is_the_rms_of_offset_differences_to_the_chosen_sample() {
        let t0 = Instant::now();
        let mut filter = ClockFilter::new();
        filter.add(sample(t0, 0, 10, 1)); // chosen
        filter.add(sample(t0, 1, 13, 2)); // +3
        filter.add(sample(t0, 2, 6, 3)); // −4
        // √((3² + 4²) / (3 − 1)) = √12.5 ms ≈ 3.5355339 ms.
        let e = filter
            .estimate(t0 + Duration::from_secs(2))
            .expect("samples");
        assert_eq!(e.jitter, Duration::from_nanos(3_535_534));

        let mut single = ClockFilter::new();
        single.add(sample(t0, 0, 10, 1));
        assert_eq!(
            single.estimate(t0).expect("one sample").jitter,
            Duration::ZERO
        );
    }

    #[test]
    fn dispersion_is_weighted_by_rank_and_aged() {
        let t0 = Instant::now();
        let mut filter = ClockFilter::new();
        let with_dispersion = |s: FilterSample, ms| FilterSample {
            dispersion: Duration::from_millis(ms),
            ..s
        };
        filter.add(with_dispersion(sample(t0, 0, 0, 1), 8));
        filter.add(with_dispersion(sample(t0, 0, 0, 2), 8));
        // 8/2 + 8/4 = 6 ms when fresh.
        let fresh = filter.estimate(t0).expect("samples");
        assert_eq!(fresh.dispersion, Duration::from_millis(6));
        // 1000 s later each has aged by 15 ppm × 1000 s = 15 ms: 23/2 + 23/4.
        let aged = filter
            .estimate(t0 + Duration::from_secs(1000))
            .expect("samples");
        assert_eq!(aged.dispersion, Duration::from_micros(17_250));
    }

    #[test]
    fn samples_from_both_paths() {
        let t0 = Instant::now();
        let cristian = CristianSample {
            offset: SignedDuration::from_millis(-3),
            round_trip: Duration::from_millis(12),
        };
        let s = FilterSample::from_cristian(&cristian, t0);
        assert_eq!((s.offset, s.delay), (cristian.offset, cristian.round_trip));
    }

    #[test]
    fn health_verdicts() {
        let policy = HealthPolicy {
            max_offset: Duration::from_millis(100),
            max_silence: Duration::from_secs(300),
        };
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut filter = ClockFilter::new();

        assert_eq!(policy.assess(&filter, start, at(10)), Health::Starting);
        assert_eq!(
            policy.assess(&filter, start, at(301)),
            Health::Unsynchronised { since: start },
            "never synchronised"
        );

        filter.add(sample(start, 20, 40, 5));
        assert_eq!(policy.assess(&filter, start, at(30)), Health::Ok);
        filter.add(sample(start, 40, -250, 2));
        assert_eq!(
            policy.assess(&filter, start, at(50)),
            Health::Degraded {
                offset: SignedDuration::from_millis(-250)
            },
            "negative offsets count by magnitude"
        );
        // Exactly at the threshold is still fine.
        filter.add(sample(start, 60, 100, 1));
        assert_eq!(policy.assess(&filter, start, at(60)), Health::Ok);
        // Silence past max_silence since the last sample.
        assert_eq!(policy.assess(&filter, start, at(360)), Health::Ok);
        assert_eq!(
            policy.assess(&filter, start, at(361)),
            Health::Unsynchronised { since: at(60) }
        );
        assert_eq!(
            HealthPolicy::default().max_offset,
            Duration::from_millis(128)
        );
    }

    #[test]
    fn the_watch_reports_each_change_of_kind_once() {
        let start = Instant::now();
        let mut watch = HealthWatch::new();
        assert_eq!(
            watch.observe(Health::Starting),
            Some(HealthChange {
                from: None,
                to: Health::Starting
            })
        );
        assert_eq!(watch.observe(Health::Starting), None);
        assert_eq!(
            watch.observe(Health::Ok),
            Some(HealthChange {
                from: Some(Health::Starting),
                to: Health::Ok
            })
        );
        let degraded = |ms| Health::Degraded {
            offset: SignedDuration::from_millis(ms),
        };
        assert!(watch.observe(degraded(200)).is_some());
        assert_eq!(watch.observe(degraded(210)), None, "same kind, new offset");
        assert_eq!(watch.observe(degraded(-300)), None);
        assert_eq!(watch.last(), Some(degraded(-300)));
        let lost = Health::Unsynchronised { since: start };
        assert_eq!(
            watch.observe(lost),
            Some(HealthChange {
                from: Some(degraded(-300)),
                to: lost
            })
        );
        assert_eq!(watch.observe(lost), None);
        assert!(
            watch.observe(Health::Ok).is_some(),
            "recovery is a change too"
        );
    }
}
