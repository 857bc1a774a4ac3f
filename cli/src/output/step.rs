//! The steps a migration or a put reports as it goes, one line each:
//! `[target] cloud-b (…)`, `[transfer] …`, `[done] …`.

use intercloud_proto::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;

use super::clock::from_proto;
use super::object::Object;
use super::table::one_line;
use super::transfer::Transfer;

/// One step of `intercloudctl migrate`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationStep {
    /// `target`, `offer`, `transfer`, `verify`, `import`, `release`,
    /// `done` or `failed`.
    pub step: String,
    pub detail: String,
    /// The progress of the transfer, during the transfer step.
    pub transfer: Option<Transfer>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
}

impl From<&pb::MigrationStep> for MigrationStep {
    fn from(s: &pb::MigrationStep) -> Self {
        Self {
            step: s.step.clone(),
            detail: s.detail.clone(),
            transfer: s.transfer.as_ref().map(Transfer::from),
            at: from_proto(s.at.as_ref()),
        }
    }
}

impl MigrationStep {
    /// The step as one compact JSON object (JSON Lines).
    pub fn json_line(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string(self)? + "\n")
    }
}

/// One step of `intercloudctl object put`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectStep {
    /// `upload`, `placement`, `transfer`, `stored`, `done` or `failed`.
    pub step: String,
    pub detail: String,
    /// The progress of a replica's transfer.
    pub transfer: Option<Transfer>,
    /// With `done`: the object and its replicas.
    pub object: Option<Object>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
}

impl From<&pb::ObjectStep> for ObjectStep {
    fn from(s: &pb::ObjectStep) -> Self {
        Self {
            step: s.step.clone(),
            detail: s.detail.clone(),
            transfer: s.transfer.as_ref().map(Transfer::from),
            object: s.object.as_ref().map(Object::from),
            at: from_proto(s.at.as_ref()),
        }
    }
}

impl ObjectStep {
    /// The step as one compact JSON object (JSON Lines).
    pub fn json_line(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string(self)? + "\n")
    }
}

/// `[target] cloud-b (best of 3 candidates)`, or `[verify]` without detail.
pub fn step_line(step: &str, detail: &str) -> String {
    let step = one_line(step);
    let step = if step.is_empty() { "step" } else { &step };
    let detail = one_line(detail);
    if detail.is_empty() {
        format!("[{step}]\n")
    } else {
        format!("[{step}] {detail}\n")
    }
}

/// A transfer's progress within a step when stdout is not a terminal:
/// `[transfer] <transfer_id> <state> <bytes_done>/<size> <rate>[ <detail>]`
/// (see [`Transfer::line`]).
pub fn transfer_line(step: &str, transfer: &Transfer) -> String {
    let head = step_line(step, "");
    format!("{} {}", head.trim_end(), transfer.line())
}

#[cfg(test)]
mod tests {
    use intercloud_proto::Timestamp;
    use serde_json::json;

    use super::*;

    #[test]
    fn steps_read_as_a_bracketed_word_and_the_detail() {
        assert_eq!(
            step_line("target", "cloud-b (best of 3)"),
            "[target] cloud-b (best of 3)\n"
        );
        assert_eq!(step_line("verify", ""), "[verify]\n");
        assert_eq!(
            step_line("failed", "cloud-b refused:\nno space"),
            "[failed] cloud-b refused: no space\n"
        );
        assert_eq!(step_line("", "?"), "[step] ?\n");
    }

    #[test]
    fn a_transfer_inside_a_step_is_the_update_line_behind_the_step() {
        let transfer = Transfer::from(&pb::Transfer {
            transfer_id: "t-1".into(),
            state: "sending".into(),
            size: 100,
            bytes_done: 50,
            rate: 2048.0,
            ..pb::Transfer::default()
        });
        assert_eq!(
            transfer_line("transfer", &transfer),
            "[transfer] t-1 sending 50/100 2KiB/s\n"
        );
    }

    #[test]
    fn step_json_has_the_proto_names_and_nulls() {
        let step = MigrationStep::from(&pb::MigrationStep {
            step: "target".into(),
            detail: "cloud-b".into(),
            transfer: None,
            at: Some(Timestamp {
                seconds: 1_777_629_600,
                nanos: 0,
            }),
        });
        assert_eq!(
            step.json_line().expect("json"),
            "{\"step\":\"target\",\"detail\":\"cloud-b\",\"transfer\":null,\"at\":\"2026-05-01T10:00:00Z\"}\n"
        );
        let step = ObjectStep::from(&pb::ObjectStep {
            step: "done".into(),
            object: Some(pb::ObjectInfo {
                name: "x".into(),
                ..pb::ObjectInfo::default()
            }),
            ..pb::ObjectStep::default()
        });
        let json: serde_json::Value =
            serde_json::from_str(&step.json_line().expect("json")).expect("parse");
        assert_eq!(json["transfer"], serde_json::Value::Null);
        assert_eq!(json["at"], serde_json::Value::Null);
        assert_eq!(json["object"]["name"], "x");
        assert_eq!(json["object"]["replicas"], json!([]));
    }
}
