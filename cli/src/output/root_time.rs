//! `time`: readings of the root's clock (`Time.Now`) by Cristian's method,
//! the choice of the best one, and the local clock's offset to it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use intercloud_ntp::client::{CristianSample, cristian};
use intercloud_proto::Timestamp;
use intercloud_proto::v1::NowResponse;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Render;
use super::table::{fields, one_line};
use crate::report::hinted;

/// One `Time.Now` answer, read against the local clock.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeReading {
    /// The root's clock, as it answered.
    pub root_time: SystemTime,
    /// The offset (root minus local) and the round trip.
    pub sample: CristianSample,
    pub stratum: u32,
    pub reference_id: String,
    pub synchronised: bool,
    pub precision_seconds: f64,
}

impl TimeReading {
    /// The reading of an answer asked for at `asked` and received at
    /// `answered` (local clock). `None` when the local clock stepped back in
    /// between (the reading means nothing; the others may still do); an
    /// error when the answer carries no time.
    pub fn new(
        asked: SystemTime,
        response: &NowResponse,
        answered: SystemTime,
    ) -> anyhow::Result<Option<Self>> {
        let root_time = response
            .time
            .as_ref()
            .and_then(system_time)
            .ok_or_else(|| {
                hinted(
                    "the root's Time.Now answer carries no valid time",
                    "check the root's version and log",
                )
            })?;
        let Ok(sample) = cristian(asked, root_time, answered) else {
            return Ok(None);
        };
        Ok(Some(Self {
            root_time,
            sample,
            stratum: response.stratum,
            reference_id: response.reference_id.clone(),
            synchronised: response.synchronised,
            precision_seconds: response.precision_seconds,
        }))
    }
}

/// The reading with the shortest round trip (the first of equals): the
/// root read its clock somewhere within the round trip, so the shortest
/// one bounds the error best.
pub fn best(readings: &[TimeReading]) -> Option<&TimeReading> {
    readings.iter().min_by_key(|r| r.sample.round_trip)
}

/// A protobuf timestamp as a `SystemTime`; `None` if out of range.
fn system_time(ts: &Timestamp) -> Option<SystemTime> {
    let nanos = u32::try_from(ts.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    let whole = Duration::from_secs(ts.seconds.unsigned_abs());
    let at = if ts.seconds >= 0 {
        UNIX_EPOCH.checked_add(whole)?
    } else {
        UNIX_EPOCH.checked_sub(whole)?
    };
    at.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// `intercloudctl time`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RootTime {
    /// The root's API endpoint asked.
    pub root: String,
    /// The root's clock in the best reading.
    #[serde(with = "time::serde::rfc3339")]
    pub root_time: OffsetDateTime,
    /// θ, the root's clock minus the local clock (positive: the local clock
    /// is behind).
    pub offset_ms: f64,
    /// `behind`, `ahead` or `in step`: the local clock against the root.
    pub local_clock: &'static str,
    /// The best reading's round trip.
    pub round_trip_ms: f64,
    /// How far the true offset can be from `offset_ms`: half the round trip.
    pub max_error_ms: f64,
    /// Readings compared.
    pub samples: u32,
    pub stratum: u32,
    pub reference_id: String,
    /// Whether the root considers its own clock synchronised.
    pub synchronised: bool,
    pub precision_seconds: f64,
}

impl RootTime {
    /// The view of the `best` of `samples` readings of the root at `root`.
    pub fn new(root: &str, best: &TimeReading, samples: usize) -> Self {
        let offset = best.sample.offset;
        let local_clock = match offset.as_nanos() {
            0 => "in step",
            n if n > 0 => "behind",
            _ => "ahead",
        };
        Self {
            root: root.to_owned(),
            root_time: OffsetDateTime::from(best.root_time),
            offset_ms: offset.as_nanos() as f64 / 1e6,
            local_clock,
            round_trip_ms: best.sample.round_trip.as_secs_f64() * 1e3,
            max_error_ms: best.sample.max_error().as_secs_f64() * 1e3,
            samples: u32::try_from(samples).unwrap_or(u32::MAX),
            stratum: best.stratum,
            reference_id: best.reference_id.clone(),
            synchronised: best.synchronised,
            precision_seconds: best.precision_seconds,
        }
    }

    fn offset_words(&self) -> String {
        let relation = match self.local_clock {
            "in step" => "the local clock is in step with the root",
            "ahead" => "the local clock is ahead of the root",
            _ => "the local clock is behind the root",
        };
        format!("{:+.3} ms ({relation})", self.offset_ms)
    }

    fn root_clock_words(&self) -> String {
        let mut words = vec![format!("stratum {}", self.stratum)];
        let reference = one_line(&self.reference_id);
        if !reference.is_empty() {
            words.push(format!("reference {reference}"));
        }
        words.push(
            if self.synchronised {
                "synchronised"
            } else {
                "not synchronised"
            }
            .to_owned(),
        );
        if self.precision_seconds > 0.0 {
            words.push(format!("precision {:.3} µs", self.precision_seconds * 1e6));
        }
        words.join(", ")
    }
}

impl Render for RootTime {
    fn table(&self, _now: OffsetDateTime) -> String {
        let readings = match self.samples {
            1 => "1 reading".to_owned(),
            n => format!("shortest of {n} readings"),
        };
        fields(&[
            ("Root", self.root.clone()),
            (
                "Root time",
                self.root_time
                    .format(&Rfc3339)
                    .unwrap_or_else(|_| self.root_time.to_string()),
            ),
            ("Offset", self.offset_words()),
            (
                "Round trip",
                format!("{:.3} ms ({readings})", self.round_trip_ms),
            ),
            (
                "Error bound",
                format!("±{:.3} ms (half the round trip)", self.max_error_ms),
            ),
            ("Root clock", self.root_clock_words()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Format, render};

    /// Unix seconds of 2026-05-01T10:00:00Z.
    const T: u64 = 1_777_629_600;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(T * 1000 + ms)
    }

    fn answer(root_ms: u64) -> NowResponse {
        let root = at(root_ms).duration_since(UNIX_EPOCH).expect("after 1970");
        NowResponse {
            time: Some(Timestamp {
                seconds: i64::try_from(root.as_secs()).expect("fits"),
                nanos: i32::try_from(root.subsec_nanos()).expect("fits"),
            }),
            stratum: 10,
            reference_id: "LOCL".into(),
            synchronised: true,
            precision_seconds: 2f64.powi(-20),
        }
    }

    fn reading(asked: u64, root: u64, answered: u64) -> TimeReading {
        TimeReading::new(at(asked), &answer(root), at(answered))
            .expect("a time")
            .expect("a sane reading")
    }

    #[test]
    fn the_shortest_round_trip_wins_and_the_first_of_equals() {
        let readings = [
            reading(0, 50, 30),     // 30 ms
            reading(100, 145, 110), // 10 ms: the best
            reading(200, 240, 210), // 10 ms too, later
            reading(300, 400, 500), // 200 ms
        ];
        let chosen = best(&readings).expect("one");
        assert_eq!(chosen.sample.round_trip, Duration::from_millis(10));
        assert_eq!(chosen.root_time, at(145));
        // 145 + 5 - 110 = 40 ms: the root is 40 ms ahead.
        assert_eq!(chosen.sample.offset.as_nanos(), 40_000_000);
        assert!(best(&[]).is_none());
    }

    #[test]
    fn a_clock_step_drops_the_reading_and_a_missing_time_is_an_error() {
        assert!(
            TimeReading::new(at(100), &answer(100), at(40))
                .expect("a time")
                .is_none()
        );
        let error = TimeReading::new(
            at(0),
            &NowResponse {
                time: None,
                ..answer(0)
            },
            at(1),
        )
        .expect_err("no time");
        assert_eq!(
            crate::report::line(&error),
            "error: the root's Time.Now answer carries no valid time — check the root's version and log"
        );
        let bad_nanos = NowResponse {
            time: Some(Timestamp {
                seconds: 1,
                nanos: -1,
            }),
            ..answer(0)
        };
        assert!(TimeReading::new(at(0), &bad_nanos, at(1)).is_err());
    }

    #[test]
    fn the_table_gives_the_sign_and_its_meaning() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let behind = RootTime::new("127.0.0.1:7443", &reading(100, 145, 110), 5);
        assert_eq!(
            behind.table(now),
            "Root:         127.0.0.1:7443\n\
             Root time:    2026-05-01T10:00:00.145Z\n\
             Offset:       +40.000 ms (the local clock is behind the root)\n\
             Round trip:   10.000 ms (shortest of 5 readings)\n\
             Error bound:  ±5.000 ms (half the round trip)\n\
             Root clock:   stratum 10, reference LOCL, synchronised, precision 0.954 µs\n"
        );
        // The root 20 ms behind us, and not synchronised.
        let mut ahead = RootTime::new("127.0.0.1:7443", &reading(100, 84, 108), 1);
        ahead.synchronised = false;
        ahead.reference_id = String::new();
        let text = ahead.table(now);
        assert!(
            text.contains("Offset:       -20.000 ms (the local clock is ahead of the root)\n"),
            "{text}"
        );
        assert!(
            text.contains("Round trip:   8.000 ms (1 reading)\n"),
            "{text}"
        );
        assert!(
            text.contains("Root clock:   stratum 10, not synchronised, precision 0.954 µs\n"),
            "{text}"
        );
        let in_step = RootTime::new("r:1", &reading(0, 5, 10), 2);
        assert_eq!(in_step.local_clock, "in step");
        assert!(
            in_step
                .table(now)
                .contains("+0.000 ms (the local clock is in step with the root)")
        );
    }

    #[test]
    fn json_has_the_offset_its_bound_and_the_roots_clock() {
        let view = RootTime::new("127.0.0.1:7443", &reading(100, 145, 110), 5);
        let text = render(&view, Format::Json, OffsetDateTime::UNIX_EPOCH).expect("json");
        let json: serde_json::Value = serde_json::from_str(&text).expect("parses");
        assert_eq!(
            json,
            serde_json::json!({
                "root": "127.0.0.1:7443",
                "root_time": "2026-05-01T10:00:00.145Z",
                "offset_ms": 40.0,
                "local_clock": "behind",
                "round_trip_ms": 10.0,
                "max_error_ms": 5.0,
                "samples": 5,
                "stratum": 10,
                "reference_id": "LOCL",
                "synchronised": true,
                "precision_seconds": 2f64.powi(-20),
            })
        );
    }
}
