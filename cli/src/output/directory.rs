//! The root's directory of descriptors: what `publish`, `directory get`,
//! `directory withdraw` and `directory watch` print.

use intercloud_proto::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;

use super::clock::{from_proto, rfc3339, when};
use super::table::{EMPTY, fields, one_line};
use super::{Format, Render};

/// A descriptor as the directory files it (`DescriptorInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DescriptorInfo {
    pub cloud_id: String,
    pub version: u64,
    pub triples: u64,
    pub digest: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub published_at: Option<OffsetDateTime>,
    pub published_by: String,
    pub graph: String,
}

impl From<&pb::DescriptorInfo> for DescriptorInfo {
    fn from(info: &pb::DescriptorInfo) -> Self {
        Self {
            cloud_id: info.cloud_id.clone(),
            version: info.version,
            triples: info.triples,
            digest: info.digest.clone(),
            published_at: from_proto(info.published_at.as_ref()),
            published_by: info.published_by.clone(),
            graph: info.graph.clone(),
        }
    }
}

impl DescriptorInfo {
    fn fields(&self, now: OffsetDateTime) -> String {
        fields(&[
            ("Cloud", self.cloud_id.clone()),
            ("Version", self.version.to_string()),
            ("Triples", self.triples.to_string()),
            ("Digest", self.digest.clone()),
            ("Published", when(self.published_at, now)),
            ("Published by", self.published_by.clone()),
            ("Graph", self.graph.clone()),
        ])
    }

    /// `cloud-a v3 (142 triples)`.
    fn summary(&self) -> String {
        format!(
            "{} v{} ({} triples)",
            one_line(&self.cloud_id),
            self.version,
            self.triples
        )
    }
}

/// `intercloudctl publish`: the root's answer (`PublishResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    /// `null` if the root sent none.
    pub descriptor: Option<DescriptorInfo>,
    /// The same version with the same triples was already published.
    pub unchanged: bool,
}

impl From<&pb::PublishResponse> for Published {
    fn from(response: &pb::PublishResponse) -> Self {
        Self {
            descriptor: response.descriptor.as_ref().map(DescriptorInfo::from),
            unchanged: response.unchanged,
        }
    }
}

impl Render for Published {
    fn table(&self, now: OffsetDateTime) -> String {
        let Some(info) = &self.descriptor else {
            return if self.unchanged {
                "unchanged: the root already had this descriptor\n".to_owned()
            } else {
                "published\n".to_owned()
            };
        };
        let headline = if self.unchanged {
            format!("unchanged: {} was already published\n", info.summary())
        } else {
            format!("published {}\n", info.summary())
        };
        headline + &info.fields(now)
    }
}

/// `intercloudctl directory get`: a cloud's descriptor and its Turtle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DescriptorDocument {
    pub descriptor: Option<DescriptorInfo>,
    pub turtle: String,
}

impl From<&pb::GetDescriptorResponse> for DescriptorDocument {
    fn from(response: &pb::GetDescriptorResponse) -> Self {
        Self {
            descriptor: response.descriptor.as_ref().map(DescriptorInfo::from),
            turtle: response.turtle.clone(),
        }
    }
}

impl Render for DescriptorDocument {
    /// The Turtle alone, so that it can be saved and published again.
    fn table(&self, _now: OffsetDateTime) -> String {
        if self.turtle.is_empty() || self.turtle.ends_with('\n') {
            self.turtle.clone()
        } else {
            format!("{}\n", self.turtle)
        }
    }
}

/// `intercloudctl directory withdraw`: what was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Withdrawn {
    pub withdrawn: Option<DescriptorInfo>,
}

impl From<&pb::WithdrawResponse> for Withdrawn {
    fn from(response: &pb::WithdrawResponse) -> Self {
        Self {
            withdrawn: response.withdrawn.as_ref().map(DescriptorInfo::from),
        }
    }
}

impl Render for Withdrawn {
    fn table(&self, _now: OffsetDateTime) -> String {
        match &self.withdrawn {
            Some(info) => format!("withdrawn {}\n", info.summary()),
            None => "withdrawn\n".to_owned(),
        }
    }
}

/// The word for a `DirectoryEvent.Kind`: `current`, `published`,
/// `withdrawn` (`unspecified` for 0, `unknown-<n>` for a value newer than
/// this CLI).
pub fn directory_event_word(raw: i32) -> String {
    use pb::directory_event::Kind;
    let word = match Kind::try_from(raw) {
        Ok(Kind::Unspecified) => "unspecified",
        Ok(Kind::Current) => "current",
        Ok(Kind::Published) => "published",
        Ok(Kind::Withdrawn) => "withdrawn",
        Err(_) => return format!("unknown-{raw}"),
    };
    word.to_owned()
}

/// One event of `intercloudctl directory watch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectoryChange {
    /// When the root saw it; the time it arrived if the root sent none.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `current`, `published` or `withdrawn` (see [`directory_event_word`]).
    pub kind: String,
    pub cloud_id: String,
    pub version: u64,
    pub triples: u64,
    /// For a withdrawal: by whom and why; empty otherwise.
    pub reason: String,
    /// `null` if the root sent none.
    pub descriptor: Option<DescriptorInfo>,
}

impl DirectoryChange {
    /// The view of `event`, which arrived at `received`.
    pub fn new(event: &pb::DirectoryEvent, received: OffsetDateTime) -> Self {
        let descriptor = event.descriptor.as_ref().map(DescriptorInfo::from);
        Self {
            at: from_proto(event.at.as_ref()).unwrap_or(received),
            kind: directory_event_word(event.kind),
            cloud_id: descriptor
                .as_ref()
                .map(|d| d.cloud_id.clone())
                .unwrap_or_default(),
            version: descriptor.as_ref().map_or(0, |d| d.version),
            triples: descriptor.as_ref().map_or(0, |d| d.triples),
            reason: event.reason.clone(),
            descriptor,
        }
    }

    /// One line ending with a newline: a line of text, or one compact JSON
    /// object (JSON Lines).
    pub fn line(&self, format: Format) -> anyhow::Result<String> {
        match format {
            Format::Table => Ok(self.text()),
            Format::Json => Ok(serde_json::to_string(self)? + "\n"),
        }
    }

    /// `2026-05-01T10:00:00Z  PUBLISHED  cloud-a  v3  142 triples  -`.
    fn text(&self) -> String {
        let or_empty = |s: String| if s.is_empty() { EMPTY.to_owned() } else { s };
        format!(
            "{}  {:<9}  {}  v{}  {} triples  {}\n",
            rfc3339(self.at),
            self.kind.to_ascii_uppercase(),
            or_empty(one_line(&self.cloud_id)),
            self.version,
            self.triples,
            or_empty(one_line(&self.reason))
        )
    }
}

#[cfg(test)]
mod tests {
    use intercloud_proto::Timestamp;
    use intercloud_proto::v1::directory_event::Kind;
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    /// 2026-05-01T10:00:00Z.
    const NOW: i64 = 1_777_629_600;

    fn at(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: 0 })
    }

    fn info(cloud: &str, version: u64) -> pb::DescriptorInfo {
        pb::DescriptorInfo {
            cloud_id: cloud.into(),
            version,
            triples: 142,
            digest: "5e".repeat(32),
            published_at: at(NOW - 300),
            published_by: format!("spiffe://intercloud.lab/cloud/{cloud}"),
            graph: format!("https://w3id.org/intercloud/cloud/{cloud}"),
        }
    }

    #[test]
    fn publish_json_mirrors_the_response() {
        let published = Published::from(&pb::PublishResponse {
            descriptor: Some(info("cloud-a", 3)),
            unchanged: false,
        });
        assert_eq!(
            serde_json::to_value(&published).expect("json"),
            json!({
                "descriptor": {
                    "cloud_id": "cloud-a",
                    "version": 3,
                    "triples": 142,
                    "digest": "5e".repeat(32),
                    "published_at": "2026-05-01T09:55:00Z",
                    "published_by": "spiffe://intercloud.lab/cloud/cloud-a",
                    "graph": "https://w3id.org/intercloud/cloud/cloud-a",
                },
                "unchanged": false,
            })
        );
        let bare = Published::from(&pb::PublishResponse::default());
        assert_eq!(
            serde_json::to_value(&bare).expect("json"),
            json!({"descriptor": null, "unchanged": false})
        );
    }

    #[test]
    fn publish_table_says_published_or_unchanged() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        let mut response = pb::PublishResponse {
            descriptor: Some(info("cloud-a", 3)),
            unchanged: false,
        };
        let text = Published::from(&response).table(now);
        assert_eq!(
            text,
            format!(
                "published cloud-a v3 (142 triples)\n\
                 Cloud:         cloud-a\n\
                 Version:       3\n\
                 Triples:       142\n\
                 Digest:        {}\n\
                 Published:     2026-05-01T09:55:00Z (5m ago)\n\
                 Published by:  spiffe://intercloud.lab/cloud/cloud-a\n\
                 Graph:         https://w3id.org/intercloud/cloud/cloud-a\n",
                "5e".repeat(32)
            )
        );
        response.unchanged = true;
        let text = Published::from(&response).table(now);
        assert!(
            text.starts_with("unchanged: cloud-a v3 (142 triples) was already published\n"),
            "{text}"
        );
    }

    #[test]
    fn get_prints_the_turtle_and_json_adds_the_info() {
        let document = DescriptorDocument::from(&pb::GetDescriptorResponse {
            descriptor: Some(info("cloud-b", 2)),
            turtle: "<a> <b> <c> .".into(),
        });
        assert_eq!(
            document.table(datetime!(2026-05-01 10:00:00 UTC)),
            "<a> <b> <c> .\n"
        );
        let json = serde_json::to_value(&document).expect("json");
        assert_eq!(json["turtle"], "<a> <b> <c> .");
        assert_eq!(json["descriptor"]["cloud_id"], "cloud-b");
        assert_eq!(json["descriptor"]["version"], 2);
        assert_eq!(json.as_object().expect("object").len(), 2);
    }

    #[test]
    fn withdraw_names_what_went() {
        let withdrawn = Withdrawn::from(&pb::WithdrawResponse {
            withdrawn: Some(info("cloud-b", 2)),
        });
        assert_eq!(
            withdrawn.table(datetime!(2026-05-01 10:00:00 UTC)),
            "withdrawn cloud-b v2 (142 triples)\n"
        );
        assert_eq!(
            serde_json::to_value(&withdrawn).expect("json")["withdrawn"]["cloud_id"],
            "cloud-b"
        );
    }

    #[test]
    fn event_kinds_map_to_lower_case_words() {
        assert_eq!(directory_event_word(Kind::Current as i32), "current");
        assert_eq!(directory_event_word(Kind::Published as i32), "published");
        assert_eq!(directory_event_word(Kind::Withdrawn as i32), "withdrawn");
        assert_eq!(directory_event_word(0), "unspecified");
        assert_eq!(directory_event_word(8), "unknown-8");
    }

    #[test]
    fn event_lines_show_kind_cloud_version_triples_and_reason() {
        let received = datetime!(2026-05-01 10:00:07 UTC);
        let published = pb::DirectoryEvent {
            kind: Kind::Published as i32,
            descriptor: Some(info("cloud-a", 3)),
            at: at(NOW),
            reason: String::new(),
        };
        assert_eq!(
            DirectoryChange::new(&published, received)
                .line(Format::Table)
                .expect("line"),
            "2026-05-01T10:00:00Z  PUBLISHED  cloud-a  v3  142 triples  -\n"
        );
        let withdrawn = pb::DirectoryEvent {
            kind: Kind::Withdrawn as i32,
            descriptor: Some(info("cloud-b", 2)),
            at: None,
            reason: "revoked\nby root".into(),
        };
        assert_eq!(
            DirectoryChange::new(&withdrawn, received)
                .line(Format::Table)
                .expect("line"),
            "2026-05-01T10:00:07Z  WITHDRAWN  cloud-b  v2  142 triples  revoked by root\n"
        );
        let current = pb::DirectoryEvent {
            kind: Kind::Current as i32,
            descriptor: Some(info("cloud-c", 1)),
            at: at(NOW),
            reason: String::new(),
        };
        assert_eq!(
            DirectoryChange::new(&current, received)
                .line(Format::Table)
                .expect("line"),
            "2026-05-01T10:00:00Z  CURRENT    cloud-c  v1  142 triples  -\n"
        );
    }

    #[test]
    fn event_json_is_one_compact_object_per_line() {
        let withdrawn = pb::DirectoryEvent {
            kind: Kind::Withdrawn as i32,
            descriptor: Some(info("cloud-b", 2)),
            at: at(NOW),
            reason: "withdrawn by spiffe://intercloud.lab/root".into(),
        };
        let line = DirectoryChange::new(&withdrawn, datetime!(2026-05-01 10:00:07 UTC))
            .line(Format::Json)
            .expect("line");
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(
            line.starts_with(
                r#"{"at":"2026-05-01T10:00:00Z","kind":"withdrawn","cloud_id":"cloud-b","version":2,"triples":142,"reason":"withdrawn by spiffe://intercloud.lab/root","descriptor":{"cloud_id":"cloud-b","#
            ),
            "{line}"
        );
        let json: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(json.as_object().expect("object").len(), 7);
        let bare = DirectoryChange::new(
            &pb::DirectoryEvent::default(),
            datetime!(2026-05-01 10:00:07 UTC),
        );
        let json = serde_json::to_value(&bare).expect("json");
        assert_eq!(json["descriptor"], serde_json::Value::Null);
        assert_eq!(json["kind"], "unspecified");
        assert_eq!(json["at"], "2026-05-01T10:00:07Z");
    }
}
