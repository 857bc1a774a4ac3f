//! Timestamps as operators read them: RFC 3339 plus a relative hint.

use intercloud_proto::Timestamp;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::table::EMPTY;

/// A protobuf timestamp as a date; `None` when unset, zero (the epoch,
/// which servers use for "never") or out of range.
pub fn from_proto(ts: Option<&Timestamp>) -> Option<OffsetDateTime> {
    let ts = ts?;
    if ts.seconds == 0 && ts.nanos == 0 {
        return None;
    }
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// RFC 3339 to the second, e.g. `2026-05-01T10:00:00Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// How far `t` is from `now`: `in 23h`, `5m ago`, `now`.
pub fn relative(now: OffsetDateTime, t: OffsetDateTime) -> String {
    let seconds = (t - now).whole_seconds();
    let abs = seconds.unsigned_abs();
    if abs == 0 {
        return "now".to_owned();
    }
    let amount = if abs < 90 {
        format!("{abs}s")
    } else if abs < 3600 {
        format!("{}m", abs / 60)
    } else if abs < 48 * 3600 {
        format!("{}h", abs / 3600)
    } else {
        format!("{}d", abs / 86_400)
    };
    if seconds > 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// `2026-05-01T10:00:00Z (in 23h)`, or [`EMPTY`] when there is no date.
pub fn when(t: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    match t {
        Some(t) => format!("{} ({})", rfc3339(t), relative(now, t)),
        None => EMPTY.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn relative_hints_pick_a_readable_unit() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        assert_eq!(relative(now, now), "now");
        assert_eq!(relative(now, datetime!(2026-05-01 10:00:42 UTC)), "in 42s");
        assert_eq!(relative(now, datetime!(2026-05-01 09:55:00 UTC)), "5m ago");
        assert_eq!(relative(now, datetime!(2026-05-02 09:59:00 UTC)), "in 23h");
        assert_eq!(relative(now, datetime!(2026-04-21 10:00:00 UTC)), "10d ago");
    }

    #[test]
    fn proto_timestamps_convert_and_unset_ones_are_none() {
        let t = from_proto(Some(&Timestamp {
            seconds: 1_777_629_600,
            nanos: 500,
        }))
        .expect("date");
        assert_eq!(rfc3339(t), "2026-05-01T10:00:00Z");
        assert_eq!(from_proto(None), None);
        assert_eq!(
            from_proto(Some(&Timestamp {
                seconds: 0,
                nanos: 0
            })),
            None
        );
        assert_eq!(
            from_proto(Some(&Timestamp {
                seconds: i64::MAX,
                nanos: 0
            })),
            None
        );
        assert_eq!(when(None, t), "-");
        assert_eq!(when(Some(t), t), "2026-05-01T10:00:00Z (now)");
    }
}
