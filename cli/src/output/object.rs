//! Objects of the storage federation: one with its replicas (what `object
//! put` prints when it is done), and the list.

use intercloud_proto::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;

use super::Render;
use super::capacity::bytes;
use super::clock::{from_proto, when};
use super::table::{EMPTY, Table, one_line};
use super::transfer::short_id;

/// Hex digits of a SHA-256 the tables show.
const SHORT_DIGEST: usize = 12;

/// A copy of an object on one cloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replica {
    pub cloud_id: String,
    /// `pending`, `stored` or `lost`.
    pub state: String,
    pub transfer_id: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub receipted_at: Option<OffsetDateTime>,
    /// Why it is lost.
    pub detail: String,
}

impl From<&pb::Replica> for Replica {
    fn from(r: &pb::Replica) -> Self {
        Self {
            cloud_id: r.cloud_id.clone(),
            state: r.state.clone(),
            transfer_id: r.transfer_id.clone(),
            receipted_at: from_proto(r.receipted_at.as_ref()),
            detail: r.detail.clone(),
        }
    }
}

/// An object and its replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Object {
    pub name: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    pub replicas_wanted: u32,
    pub replicas: Vec<Replica>,
    pub region: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

impl From<&pb::ObjectInfo> for Object {
    fn from(o: &pb::ObjectInfo) -> Self {
        Self {
            name: o.name.clone(),
            size: o.size,
            sha256: o.sha256.clone(),
            replicas_wanted: o.replicas_wanted,
            replicas: o.replicas.iter().map(Replica::from).collect(),
            region: o.region.clone(),
            created_at: from_proto(o.created_at.as_ref()),
        }
    }
}

impl Object {
    /// `2/3`: replicas stored out of those wanted.
    fn replica_count(&self) -> String {
        let stored = self.replicas.iter().filter(|r| r.state == "stored").count();
        format!("{stored}/{}", self.replicas_wanted)
    }

    /// `cloud-b:stored cloud-c:pending`.
    fn clouds(&self) -> String {
        self.replicas
            .iter()
            .map(|r| format!("{}:{}", one_line(&r.cloud_id), one_line(&r.state)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The object and a table of its replicas.
impl Render for Object {
    fn table(&self, now: OffsetDateTime) -> String {
        let region = if self.region.trim().is_empty() {
            String::new()
        } else {
            format!(", region {}", one_line(&self.region))
        };
        let mut out = format!(
            "object {}: {}, sha256 {}, {} replicas stored{region}\n",
            one_line(&self.name),
            bytes(self.size),
            or_empty(&one_line(&self.sha256)),
            self.replica_count(),
        );
        if self.replicas.is_empty() {
            out.push_str("no replicas\n");
            return out;
        }
        let mut table = Table::new(&["CLOUD", "STATE", "TRANSFER", "RECEIPTED", "DETAIL"]);
        for r in &self.replicas {
            table.row(vec![
                r.cloud_id.clone(),
                r.state.clone(),
                short_id(&r.transfer_id),
                r.receipted_at
                    .map(|t| when(Some(t), now))
                    .unwrap_or_default(),
                r.detail.clone(),
            ]);
        }
        out.push_str(&table.render());
        out
    }
}

/// `intercloudctl object ls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectList {
    pub objects: Vec<Object>,
}

impl From<&pb::ListObjectsResponse> for ObjectList {
    fn from(response: &pb::ListObjectsResponse) -> Self {
        Self {
            objects: response.objects.iter().map(Object::from).collect(),
        }
    }
}

impl Render for ObjectList {
    fn table(&self, _now: OffsetDateTime) -> String {
        if self.objects.is_empty() {
            return "no objects\n".to_owned();
        }
        let mut table = Table::new(&["NAME", "SIZE", "SHA256", "REPLICAS", "REGION", "CLOUDS"]);
        for o in &self.objects {
            table.row(vec![
                o.name.clone(),
                bytes(o.size),
                one_line(&o.sha256).chars().take(SHORT_DIGEST).collect(),
                o.replica_count(),
                o.region.clone(),
                o.clouds(),
            ]);
        }
        table.render()
    }
}

/// `intercloudctl object get`: the object, verified and in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fetched {
    pub name: String,
    /// The file written.
    pub path: String,
    pub size: u64,
    /// Lowercase hex, as checked.
    pub sha256: String,
    /// The cloud whose replica served it.
    pub from_cloud: String,
}

/// `wrote report.pdf: 1536 bytes, sha256 …`.
impl Render for Fetched {
    fn table(&self, _now: OffsetDateTime) -> String {
        format!(
            "wrote {}: {} bytes, sha256 {}\n",
            self.path, self.size, self.sha256
        )
    }
}

fn or_empty(text: &str) -> &str {
    if text.is_empty() { EMPTY } else { text }
}

#[cfg(test)]
mod tests {
    use intercloud_proto::Timestamp;
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    /// 2026-05-01T10:00:00Z.
    const NOW: i64 = 1_777_629_600;

    fn report() -> pb::ObjectInfo {
        pb::ObjectInfo {
            name: "report.pdf".into(),
            size: 1536,
            sha256: "0123456789abcdef".repeat(4),
            replicas_wanted: 3,
            replicas: vec![
                pb::Replica {
                    cloud_id: "cloud-b".into(),
                    state: "stored".into(),
                    transfer_id: "3f2a9c1e-7b1d".into(),
                    receipted_at: Some(Timestamp {
                        seconds: NOW - 5,
                        nanos: 0,
                    }),
                    detail: String::new(),
                },
                pb::Replica {
                    cloud_id: "cloud-c".into(),
                    state: "lost".into(),
                    transfer_id: "77aa00bb-0000".into(),
                    receipted_at: None,
                    detail: "refused: no space left".into(),
                },
                pb::Replica {
                    cloud_id: "cloud-d".into(),
                    state: "stored".into(),
                    transfer_id: String::new(),
                    receipted_at: None,
                    detail: String::new(),
                },
            ],
            region: "EU".into(),
            created_at: Some(Timestamp {
                seconds: NOW - 60,
                nanos: 0,
            }),
        }
    }

    #[test]
    fn an_object_reads_as_a_headline_and_its_replicas() {
        assert_eq!(
            Object::from(&report()).table(datetime!(2026-05-01 10:00:00 UTC)),
            format!(
                "object report.pdf: 1.5 KiB, sha256 {}, 2/3 replicas stored, region EU\n\
                 CLOUD     STATE    TRANSFER   RECEIPTED                       DETAIL\n\
                 cloud-b   stored   3f2a9c1e   2026-05-01T09:59:55Z (5s ago)   -\n\
                 cloud-c   lost     77aa00bb   -                               refused: no space left\n\
                 cloud-d   stored   -          -                               -\n",
                "0123456789abcdef".repeat(4)
            )
        );
        let bare = Object::from(&pb::ObjectInfo {
            name: "x".into(),
            replicas_wanted: 1,
            ..pb::ObjectInfo::default()
        });
        assert_eq!(
            bare.table(datetime!(2026-05-01 10:00:00 UTC)),
            "object x: 0 B, sha256 -, 0/1 replicas stored\nno replicas\n"
        );
    }

    #[test]
    fn the_list_shortens_the_digest_and_names_the_clouds() {
        let list = ObjectList::from(&pb::ListObjectsResponse {
            objects: vec![report()],
        });
        assert_eq!(
            list.table(datetime!(2026-05-01 10:00:00 UTC)),
            "NAME         SIZE      SHA256         REPLICAS   REGION   CLOUDS\n\
             report.pdf   1.5 KiB   0123456789ab   2/3        EU       cloud-b:stored cloud-c:lost cloud-d:stored\n"
        );
        assert_eq!(
            ObjectList::from(&pb::ListObjectsResponse::default())
                .table(datetime!(2026-05-01 10:00:00 UTC)),
            "no objects\n"
        );
    }

    #[test]
    fn a_fetched_object_says_where_it_went() {
        let fetched = Fetched {
            name: "r.pdf".into(),
            path: "/tmp/r.pdf".into(),
            size: 5,
            sha256: "ab".repeat(32),
            from_cloud: "cloud-b".into(),
        };
        assert_eq!(
            fetched.table(datetime!(2026-05-01 10:00:00 UTC)),
            format!("wrote /tmp/r.pdf: 5 bytes, sha256 {}\n", "ab".repeat(32))
        );
        assert_eq!(
            serde_json::to_value(&fetched).expect("json"),
            json!({
                "name": "r.pdf",
                "path": "/tmp/r.pdf",
                "size": 5,
                "sha256": "ab".repeat(32),
                "from_cloud": "cloud-b",
            })
        );
    }

    #[test]
    fn json_has_the_proto_names_and_rfc3339_or_null_times() {
        let json = serde_json::to_value(ObjectList::from(&pb::ListObjectsResponse {
            objects: vec![report()],
        }))
        .expect("json");
        assert_eq!(
            json["objects"][0]["replicas"][0],
            json!({
                "cloud_id": "cloud-b",
                "state": "stored",
                "transfer_id": "3f2a9c1e-7b1d",
                "receipted_at": "2026-05-01T09:59:55Z",
                "detail": "",
            })
        );
        assert_eq!(
            json["objects"][0]["replicas"][1]["receipted_at"],
            serde_json::Value::Null
        );
        let object = json["objects"][0].as_object().expect("object");
        assert_eq!(
            object.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "created_at",
                "name",
                "region",
                "replicas",
                "replicas_wanted",
                "sha256",
                "size"
            ]
        );
        assert_eq!(json["objects"][0]["created_at"], "2026-05-01T09:59:00Z");
        assert_eq!(json["objects"][0]["size"], 1536);
    }
}
