//! Transfers over AMQP as operators follow them: the list, the line printed
//! per update when stdout is not a terminal, and the words and numbers the
//! progress bars show.

use intercloud_proto::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;

use super::capacity::bytes;
use super::clock::from_proto;
use super::table::{EMPTY, Table, one_line};
use super::{Format, Render};

/// Characters of a transfer id the tables and bars show.
const SHORT_ID: usize = 8;

/// One transfer, in or out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transfer {
    pub transfer_id: String,
    pub object_id: String,
    /// `image` or `object`.
    pub kind: String,
    /// `outgoing` or `incoming` (see [`direction_word`]).
    pub direction: String,
    pub peer_cloud: String,
    pub size: u64,
    pub bytes_done: u64,
    /// Bytes per second; 0 when unknown.
    pub rate: f64,
    /// `null` when unknown.
    pub eta_seconds: Option<f64>,
    pub state: String,
    pub detail: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    pub sha256: String,
    pub finished: bool,
}

impl From<&pb::Transfer> for Transfer {
    fn from(t: &pb::Transfer) -> Self {
        Self {
            transfer_id: t.transfer_id.clone(),
            object_id: t.object_id.clone(),
            kind: t.kind.clone(),
            direction: direction_word(t.direction),
            peer_cloud: t.peer_cloud.clone(),
            size: t.size,
            bytes_done: t.bytes_done,
            rate: t.rate,
            eta_seconds: t.eta_seconds,
            state: t.state.clone(),
            detail: t.detail.clone(),
            started_at: from_proto(t.started_at.as_ref()),
            updated_at: from_proto(t.updated_at.as_ref()),
            sha256: t.sha256.clone(),
            finished: t.finished,
        }
    }
}

impl Transfer {
    /// `out` or `in`, for tables and bars.
    fn arrow(&self) -> &str {
        match self.direction.as_str() {
            "outgoing" => "out",
            "incoming" => "in",
            other => other,
        }
    }

    /// What a progress bar is labelled with:
    /// `3f2a9c1e out cloud-b vm-1.qcow2`.
    pub fn label(&self) -> String {
        [
            short_id(&self.transfer_id),
            self.arrow().to_owned(),
            one_line(&self.peer_cloud),
            one_line(&self.object_id),
        ]
        .iter()
        .map(|s| if s.is_empty() { EMPTY } else { s.as_str() })
        .collect::<Vec<_>>()
        .join(" ")
    }

    /// [`Transfer::label`] with the object's name cut to fit a bar's line:
    /// `3f2a9c1e out cloud-b a-very-long-object-nam…`.
    pub fn bar_label(&self) -> String {
        const WIDEST_OBJECT: usize = 24;
        let object = one_line(&self.object_id);
        if object.chars().count() <= WIDEST_OBJECT {
            return self.label();
        }
        let cut: String = object.chars().take(WIDEST_OBJECT - 1).collect();
        Self {
            object_id: format!("{cut}…"),
            ..self.clone()
        }
        .label()
    }

    /// What a progress bar shows after bytes/total: `1.5 MiB/s eta 42s sending`.
    pub fn bar_message(&self) -> String {
        format!(
            "{} eta {} {}",
            rate(self.rate),
            eta(self.eta_seconds),
            one_line(&self.state)
        )
    }

    /// The line left when a finished transfer's bar goes:
    /// `3f2a9c1e out cloud-b vm-1.qcow2: committed (64 MiB)`, or
    /// `…: refused: no space left`.
    pub fn final_line(&self) -> String {
        let state = one_line(&self.state);
        let detail = one_line(&self.detail);
        let outcome = if state == "committed" {
            format!("committed ({})", bytes(self.size))
        } else if detail.is_empty() {
            state
        } else {
            format!("{state}: {detail}")
        };
        format!("{}: {outcome}\n", self.label())
    }

    /// One update as one line, for logs and tests (stdout not a terminal):
    /// `<transfer_id> <state> <bytes_done>/<size> <rate>[ <detail>]`, e.g.
    /// `3f2a9c1e-… sending 1048576/67108864 1.5MiB/s` or
    /// `3f2a9c1e-… refused 0/67108864 - no space left`. The first four
    /// fields hold no spaces: a state of several words is hyphenated
    /// (`awaiting-receipt`), the rate is `-` when unknown.
    pub fn line(&self) -> String {
        let id = one_line(&self.transfer_id);
        let state = one_line(&self.state).replace(' ', "-");
        let or_empty = |s: String| if s.is_empty() { EMPTY.to_owned() } else { s };
        let mut line = format!(
            "{} {} {}/{} {}",
            or_empty(id),
            or_empty(state),
            self.bytes_done,
            self.size,
            rate(self.rate).replace(' ', "")
        );
        let detail = one_line(&self.detail);
        if !detail.is_empty() {
            line.push(' ');
            line.push_str(&detail);
        }
        line.push('\n');
        line
    }

    /// One update in the chosen format: [`Transfer::line`], or one compact
    /// JSON object (JSON Lines).
    pub fn update(&self, format: Format) -> anyhow::Result<String> {
        match format {
            Format::Table => Ok(self.line()),
            Format::Json => Ok(serde_json::to_string(self)? + "\n"),
        }
    }
}

/// `intercloudctl transfers`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransferList {
    pub transfers: Vec<Transfer>,
    /// Whether finished transfers were asked for (`--all`), for the words
    /// of an empty list.
    #[serde(skip)]
    pub include_finished: bool,
}

impl TransferList {
    pub fn new(response: &pb::ListTransfersResponse, include_finished: bool) -> Self {
        Self {
            transfers: response.transfers.iter().map(Transfer::from).collect(),
            include_finished,
        }
    }
}

impl Render for TransferList {
    fn table(&self, _now: OffsetDateTime) -> String {
        if self.transfers.is_empty() {
            return if self.include_finished {
                "no transfers\n".to_owned()
            } else {
                "no active transfers (--all shows the finished ones too)\n".to_owned()
            };
        }
        let mut table = Table::new(&[
            "ID",
            "DIRECTION",
            "PEER",
            "OBJECT",
            "KIND",
            "SIZE",
            "DONE",
            "RATE",
            "ETA",
            "STATE",
            "DETAIL",
        ]);
        for t in &self.transfers {
            let (rate_cell, eta_cell) = if t.finished {
                (String::new(), String::new())
            } else {
                (rate(t.rate), eta(t.eta_seconds))
            };
            table.row(vec![
                short_id(&t.transfer_id),
                t.arrow().to_owned(),
                t.peer_cloud.clone(),
                t.object_id.clone(),
                t.kind.clone(),
                bytes(t.size),
                percent(t.bytes_done, t.size),
                rate_cell,
                eta_cell,
                t.state.clone(),
                t.detail.clone(),
            ]);
        }
        table.render()
    }
}

/// The word for a `TransferDirection`: `outgoing`, `incoming`
/// (`unspecified` for 0, `unknown-<n>` for a value newer than this CLI).
pub fn direction_word(raw: i32) -> String {
    let word = match pb::TransferDirection::try_from(raw) {
        Ok(pb::TransferDirection::Unspecified) => "unspecified",
        Ok(pb::TransferDirection::Outgoing) => "outgoing",
        Ok(pb::TransferDirection::Incoming) => "incoming",
        Err(_) => return format!("unknown-{raw}"),
    };
    word.to_owned()
}

/// The first characters of an id, enough to tell transfers apart on screen.
pub fn short_id(id: &str) -> String {
    one_line(id).chars().take(SHORT_ID).collect()
}

/// Bytes per second as `1.5 MiB/s`; [`EMPTY`] when unknown (0).
pub fn rate(bytes_per_second: f64) -> String {
    if bytes_per_second.is_finite() && bytes_per_second > 0.0 {
        // Display only: whole bytes per second are precise enough.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = bytes_per_second.round() as u64;
        format!("{}/s", bytes(whole))
    } else {
        EMPTY.to_owned()
    }
}

/// Seconds left as `42s`, `4m05s`, `2h05m`; [`EMPTY`] when unknown.
pub fn eta(seconds: Option<f64>) -> String {
    let Some(seconds) = seconds.filter(|s| s.is_finite() && *s >= 0.0) else {
        return EMPTY.to_owned();
    };
    // Display only; `as` saturates for absurd values.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let s = seconds.round() as u64;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// How much of `size` is done, rounded down (100% only when all is done):
/// `42%`; [`EMPTY`] for an empty object.
pub fn percent(done: u64, size: u64) -> String {
    if size == 0 {
        return EMPTY.to_owned();
    }
    let percent = (u128::from(done) * 100 / u128::from(size)).min(100);
    format!("{percent}%")
}

#[cfg(test)]
mod tests {
    use intercloud_proto::Timestamp;
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    /// 2026-05-01T10:00:00Z.
    const NOW: i64 = 1_777_629_600;

    fn sending() -> pb::Transfer {
        pb::Transfer {
            transfer_id: "3f2a9c1e-7b1d-4c1a-9e0f-0123456789ab".into(),
            object_id: "vm-1.qcow2".into(),
            kind: "image".into(),
            direction: pb::TransferDirection::Outgoing as i32,
            peer_cloud: "cloud-b".into(),
            size: 64 << 20,
            bytes_done: 16 << 20,
            rate: 1_572_864.0,
            eta_seconds: Some(32.4),
            state: "sending".into(),
            detail: String::new(),
            started_at: Some(Timestamp {
                seconds: NOW - 10,
                nanos: 0,
            }),
            updated_at: Some(Timestamp {
                seconds: NOW,
                nanos: 0,
            }),
            sha256: "ab".repeat(32),
            finished: false,
        }
    }

    fn refused() -> pb::Transfer {
        pb::Transfer {
            transfer_id: "77aa00bb-0000-4000-8000-000000000001".into(),
            object_id: "report.pdf".into(),
            kind: "object".into(),
            direction: pb::TransferDirection::Incoming as i32,
            peer_cloud: "cloud-c".into(),
            size: 1536,
            bytes_done: 0,
            rate: 0.0,
            eta_seconds: None,
            state: "refused".into(),
            detail: "no space\nleft".into(),
            finished: true,
            ..pb::Transfer::default()
        }
    }

    #[test]
    fn rates_etas_and_percentages_read_as_people_expect() {
        assert_eq!(rate(0.0), "-");
        assert_eq!(rate(-5.0), "-");
        assert_eq!(rate(f64::NAN), "-");
        assert_eq!(rate(f64::INFINITY), "-");
        assert_eq!(rate(512.0), "512 B/s");
        assert_eq!(rate(1_572_864.0), "1.5 MiB/s");
        assert_eq!(rate(104_857_600.4), "100 MiB/s");
        assert_eq!(eta(None), "-");
        assert_eq!(eta(Some(f64::NAN)), "-");
        assert_eq!(eta(Some(-1.0)), "-");
        assert_eq!(eta(Some(0.2)), "0s");
        assert_eq!(eta(Some(42.4)), "42s");
        assert_eq!(eta(Some(59.6)), "1m00s");
        assert_eq!(eta(Some(245.0)), "4m05s");
        assert_eq!(eta(Some(7500.0)), "2h05m");
        assert_eq!(eta(Some(360_000.0)), "100h00m");
        assert_eq!(percent(0, 0), "-");
        assert_eq!(percent(0, 10), "0%");
        assert_eq!(percent(999, 1000), "99%");
        assert_eq!(percent(1000, 1000), "100%");
        assert_eq!(percent(2000, 1000), "100%");
        assert_eq!(percent(u64::MAX, u64::MAX), "100%");
        assert_eq!(direction_word(1), "outgoing");
        assert_eq!(direction_word(2), "incoming");
        assert_eq!(direction_word(0), "unspecified");
        assert_eq!(direction_word(9), "unknown-9");
        assert_eq!(short_id("3f2a9c1e-7b1d"), "3f2a9c1e");
        assert_eq!(short_id("ab"), "ab");
    }

    #[test]
    fn the_table_shortens_ids_and_leaves_rate_and_eta_of_finished_ones_empty() {
        let list = TransferList::new(
            &pb::ListTransfersResponse {
                transfers: vec![sending(), refused()],
            },
            true,
        );
        assert_eq!(
            list.table(datetime!(2026-05-01 10:00:00 UTC)),
            "ID         DIRECTION   PEER      OBJECT       KIND     SIZE      DONE   RATE        ETA   STATE     DETAIL\n\
             3f2a9c1e   out         cloud-b   vm-1.qcow2   image    64 MiB    25%    1.5 MiB/s   32s   sending   -\n\
             77aa00bb   in          cloud-c   report.pdf   object   1.5 KiB   0%     -           -     refused   no space left\n"
        );
    }

    #[test]
    fn an_empty_list_says_whether_finished_ones_were_asked_for() {
        let empty = pb::ListTransfersResponse::default();
        let now = datetime!(2026-05-01 10:00:00 UTC);
        assert_eq!(
            TransferList::new(&empty, false).table(now),
            "no active transfers (--all shows the finished ones too)\n"
        );
        assert_eq!(TransferList::new(&empty, true).table(now), "no transfers\n");
        assert_eq!(
            serde_json::to_value(TransferList::new(&empty, true)).expect("json"),
            json!({"transfers": []})
        );
    }

    #[test]
    fn json_has_the_proto_names_words_and_nulls() {
        let json = serde_json::to_value(Transfer::from(&sending())).expect("json");
        assert_eq!(
            json,
            json!({
                "transfer_id": "3f2a9c1e-7b1d-4c1a-9e0f-0123456789ab",
                "object_id": "vm-1.qcow2",
                "kind": "image",
                "direction": "outgoing",
                "peer_cloud": "cloud-b",
                "size": 67_108_864,
                "bytes_done": 16_777_216,
                "rate": 1_572_864.0,
                "eta_seconds": 32.4,
                "state": "sending",
                "detail": "",
                "started_at": "2026-05-01T09:59:50Z",
                "updated_at": "2026-05-01T10:00:00Z",
                "sha256": "ab".repeat(32),
                "finished": false,
            })
        );
        let json = serde_json::to_value(Transfer::from(&refused())).expect("json");
        assert_eq!(json["eta_seconds"], serde_json::Value::Null);
        assert_eq!(json["started_at"], serde_json::Value::Null);
        assert_eq!(json["direction"], "incoming");
    }

    #[test]
    fn update_lines_split_on_whitespace_and_end_with_the_detail() {
        let t = Transfer::from(&sending());
        assert_eq!(
            t.line(),
            "3f2a9c1e-7b1d-4c1a-9e0f-0123456789ab sending 16777216/67108864 1.5MiB/s\n"
        );
        let mut awaiting = sending();
        awaiting.state = "awaiting receipt".into();
        awaiting.bytes_done = awaiting.size;
        awaiting.rate = 0.0;
        assert_eq!(
            Transfer::from(&awaiting).line(),
            "3f2a9c1e-7b1d-4c1a-9e0f-0123456789ab awaiting-receipt 67108864/67108864 -\n"
        );
        assert_eq!(
            Transfer::from(&refused()).line(),
            "77aa00bb-0000-4000-8000-000000000001 refused 0/1536 - no space left\n"
        );
        assert_eq!(
            Transfer::from(&pb::Transfer::default()).line(),
            "- - 0/0 -\n"
        );
        let json = Transfer::from(&refused())
            .update(Format::Json)
            .expect("json");
        assert!(
            json.starts_with(r#"{"transfer_id":"77aa00bb-0000-4000-8000-000000000001","#),
            "{json}"
        );
        assert_eq!(json.matches('\n').count(), 1);
    }

    #[test]
    fn bars_are_labelled_and_finish_with_the_outcome() {
        let t = Transfer::from(&sending());
        assert_eq!(t.label(), "3f2a9c1e out cloud-b vm-1.qcow2");
        assert_eq!(t.bar_label(), t.label());
        let long = Transfer {
            object_id: "a-very-long-object-name-indeed.tar.gz".into(),
            ..t.clone()
        };
        assert_eq!(
            long.bar_label(),
            "3f2a9c1e out cloud-b a-very-long-object-name…"
        );
        assert_eq!(t.bar_message(), "1.5 MiB/s eta 32s sending");
        let mut committed = sending();
        committed.state = "committed".into();
        committed.finished = true;
        assert_eq!(
            Transfer::from(&committed).final_line(),
            "3f2a9c1e out cloud-b vm-1.qcow2: committed (64 MiB)\n"
        );
        assert_eq!(
            Transfer::from(&refused()).final_line(),
            "77aa00bb in cloud-c report.pdf: refused: no space left\n"
        );
        let mut failed = refused();
        failed.state = "failed".into();
        failed.detail = String::new();
        assert_eq!(
            Transfer::from(&failed).final_line(),
            "77aa00bb in cloud-c report.pdf: failed\n"
        );
        assert_eq!(
            Transfer::from(&pb::Transfer::default()).label(),
            "- unspecified - -"
        );
    }
}
