//! The local cloud's instances: one just created, and the list.

use intercloud_proto::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;

use super::Render;
use super::capacity::{bytes, mebibytes};
use super::clock::{from_proto, relative, when};
use super::table::{Table, fields, one_line};

/// One instance of the local cloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instance {
    pub name: String,
    /// `running` or `migrating`.
    pub state: String,
    pub vcpu: u32,
    pub memory_mib: u64,
    /// The disk's virtual size.
    pub disk_bytes: u64,
    /// The cloud it migrated from; empty when created here.
    pub origin: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

impl From<&pb::Instance> for Instance {
    fn from(i: &pb::Instance) -> Self {
        Self {
            name: i.name.clone(),
            state: i.state.clone(),
            vcpu: i.vcpu,
            memory_mib: i.memory_mib,
            disk_bytes: i.disk_bytes,
            origin: i.origin.clone(),
            created_at: from_proto(i.created_at.as_ref()),
        }
    }
}

/// `intercloudctl instance create`: the instance the broker made.
impl Render for Instance {
    fn table(&self, now: OffsetDateTime) -> String {
        let headline = format!("created instance {}\n", one_line(&self.name));
        headline
            + &fields(&[
                ("State", self.state.clone()),
                ("vCPU", self.vcpu.to_string()),
                ("Memory", mebibytes(self.memory_mib)),
                ("Disk", bytes(self.disk_bytes)),
                ("Origin", self.origin.clone()),
                ("Created", when(self.created_at, now)),
            ])
    }
}

/// `intercloudctl instance ls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceList {
    pub instances: Vec<Instance>,
}

impl From<&pb::ListInstancesResponse> for InstanceList {
    fn from(response: &pb::ListInstancesResponse) -> Self {
        Self {
            instances: response.instances.iter().map(Instance::from).collect(),
        }
    }
}

impl Render for InstanceList {
    fn table(&self, now: OffsetDateTime) -> String {
        if self.instances.is_empty() {
            return "no instances\n".to_owned();
        }
        let mut table = Table::new(&[
            "NAME", "STATE", "VCPU", "MEMORY", "DISK", "ORIGIN", "CREATED",
        ]);
        for i in &self.instances {
            table.row(vec![
                i.name.clone(),
                i.state.clone(),
                i.vcpu.to_string(),
                mebibytes(i.memory_mib),
                bytes(i.disk_bytes),
                i.origin.clone(),
                i.created_at.map(|t| relative(now, t)).unwrap_or_default(),
            ]);
        }
        table.render()
    }
}

#[cfg(test)]
mod tests {
    use intercloud_proto::Timestamp;
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    /// 2026-05-01T10:00:00Z.
    const NOW: i64 = 1_777_629_600;

    fn web() -> pb::Instance {
        pb::Instance {
            name: "web-1".into(),
            state: "running".into(),
            vcpu: 2,
            memory_mib: 512,
            disk_bytes: 64 << 20,
            origin: String::new(),
            created_at: Some(Timestamp {
                seconds: NOW - 300,
                nanos: 0,
            }),
        }
    }

    #[test]
    fn a_created_instance_reads_as_fields() {
        assert_eq!(
            Instance::from(&web()).table(datetime!(2026-05-01 10:00:00 UTC)),
            "created instance web-1\n\
             State:    running\n\
             vCPU:     2\n\
             Memory:   512 MiB\n\
             Disk:     64 MiB\n\
             Origin:   -\n\
             Created:  2026-05-01T09:55:00Z (5m ago)\n"
        );
    }

    #[test]
    fn the_list_shows_sizes_and_where_an_instance_came_from() {
        let mut moved = web();
        moved.name = "db-1".into();
        moved.state = "migrating".into();
        moved.memory_mib = 4096;
        moved.disk_bytes = 10 << 30;
        moved.origin = "cloud-b".into();
        moved.created_at = None;
        let list = InstanceList::from(&pb::ListInstancesResponse {
            instances: vec![web(), moved],
        });
        assert_eq!(
            list.table(datetime!(2026-05-01 10:00:00 UTC)),
            "NAME    STATE       VCPU   MEMORY    DISK     ORIGIN    CREATED\n\
             web-1   running     2      512 MiB   64 MiB   -         5m ago\n\
             db-1    migrating   2      4 GiB     10 GiB   cloud-b   -\n"
        );
        assert_eq!(
            serde_json::to_value(&list).expect("json"),
            json!({"instances": [
                {
                    "name": "web-1",
                    "state": "running",
                    "vcpu": 2,
                    "memory_mib": 512,
                    "disk_bytes": 67_108_864,
                    "origin": "",
                    "created_at": "2026-05-01T09:55:00Z",
                },
                {
                    "name": "db-1",
                    "state": "migrating",
                    "vcpu": 2,
                    "memory_mib": 4096,
                    "disk_bytes": 10_737_418_240_u64,
                    "origin": "cloud-b",
                    "created_at": null,
                },
            ]})
        );
        assert_eq!(
            InstanceList::from(&pb::ListInstancesResponse::default())
                .table(datetime!(2026-05-01 10:00:00 UTC)),
            "no instances\n"
        );
    }
}
