//! What an instance is (pure): its specification, its bounds, its state and
//! the JSON record the driver keeps of it.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::error::{SpecError, snippet};

/// The longest instance name (a DNS label).
pub const MAX_NAME_LEN: usize = 63;
const MIB: u64 = 1024 * 1024;
const VCPU: (u64, u64) = (1, 256);
const MEMORY_MIB: (u64, u64) = (16, 4 * 1024 * 1024);
const DISK_BYTES: (u64, u64) = (MIB, 64 * 1024 * 1024 * MIB);
/// qemu-img rounds a disk up to whole sectors; a size it would round could
/// not match the image's virtual size after a migration.
const SECTOR: u64 = 512;

/// What an instance is made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSpec {
    /// Its name, unique in this cloud (see [`validate_name`]).
    pub name: String,
    /// Virtual CPUs.
    pub vcpu: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// The disk's virtual size in bytes.
    pub disk_bytes: u64,
}

impl InstanceSpec {
    /// Checks the name and every quantity against this cloud's bounds.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_name(&self.name)?;
        in_range("vcpu", u64::from(self.vcpu), VCPU, "1 to 256 virtual CPUs")?;
        in_range("memory_mib", self.memory_mib, MEMORY_MIB, "16 MiB to 4 TiB")?;
        in_range("disk_bytes", self.disk_bytes, DISK_BYTES, "1 MiB to 64 TiB")?;
        if !self.disk_bytes.is_multiple_of(SECTOR) {
            return Err(SpecError::NotAMultiple {
                field: "disk_bytes",
                value: self.disk_bytes,
                multiple: SECTOR,
            });
        }
        Ok(())
    }
}

/// Checks an instance name: 1 to 63 characters, `[a-z0-9][a-z0-9-]*`. The
/// name becomes a file name, so this is also what keeps paths inside the
/// data directory.
pub fn validate_name(name: &str) -> Result<(), SpecError> {
    let refuse = |rule| {
        Err(SpecError::Name {
            name: snippet(name),
            rule,
        })
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return refuse("must be 1 to 63 characters long");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return refuse("must start with a lowercase letter or a digit");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return refuse("may contain only lowercase letters, digits and '-'");
    }
    Ok(())
}

fn in_range(
    field: &'static str,
    value: u64,
    (min, max): (u64, u64),
    bounds: &'static str,
) -> Result<(), SpecError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(SpecError::OutOfRange {
            field,
            value,
            min,
            max,
            bounds,
        })
    }
}

/// Where an instance is in its life here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    /// Running in this cloud.
    Running,
    /// Being moved to another cloud; back to running if the move fails.
    Migrating,
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InstanceState::Running => "running",
            InstanceState::Migrating => "migrating",
        })
    }
}

/// An instance of this cloud, as recorded in `instances/<name>.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// What it is made of (flattened into the record).
    #[serde(flatten)]
    pub spec: InstanceSpec,
    /// Where it is in its life.
    pub state: InstanceState,
    /// The cloud it was imported from; `None` if created here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// When it was created or imported here.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Instance {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> InstanceSpec {
        InstanceSpec {
            name: name.to_owned(),
            vcpu: 2,
            memory_mib: 512,
            disk_bytes: 2 * MIB,
        }
    }

    #[test]
    fn names_follow_the_dns_label_rule() {
        for good in ["a", "0", "web-1", "a-", &"x".repeat(63)] {
            assert_eq!(validate_name(good), Ok(()), "{good:?}");
        }
        let rule_of = |name: &str| match validate_name(name) {
            Err(SpecError::Name { rule, .. }) => rule,
            other => panic!("{name:?}: {other:?}"),
        };
        assert_eq!(rule_of(""), "must be 1 to 63 characters long");
        assert_eq!(rule_of(&"x".repeat(64)), "must be 1 to 63 characters long");
        assert_eq!(
            rule_of("-a"),
            "must start with a lowercase letter or a digit"
        );
        assert_eq!(
            rule_of("Web"),
            "must start with a lowercase letter or a digit"
        );
        for bad in ["a_b", "a.b", "a/b", "ab..", "wEb", "aé"] {
            assert_eq!(
                rule_of(bad),
                "may contain only lowercase letters, digits and '-'",
                "{bad:?}"
            );
        }
        let message = validate_name("a/b").expect_err("refused").to_string();
        assert_eq!(
            message,
            "instance name \"a/b\" is invalid: it may contain only lowercase letters, digits and '-'"
        );
    }

    #[test]
    fn quantities_are_bounded_and_errors_name_the_field() {
        assert_eq!(spec("ok").validate(), Ok(()));
        let out_of_range = |s: InstanceSpec| match s.validate() {
            Err(SpecError::OutOfRange {
                field, min, max, ..
            }) => (field, min, max),
            other => panic!("{s:?}: {other:?}"),
        };
        for vcpu in [0, 257] {
            let s = InstanceSpec { vcpu, ..spec("a") };
            assert_eq!(out_of_range(s), ("vcpu", 1, 256));
        }
        for memory_mib in [15, 4 * 1024 * 1024 + 1] {
            let s = InstanceSpec {
                memory_mib,
                ..spec("a")
            };
            assert_eq!(out_of_range(s), ("memory_mib", 16, 4 * 1024 * 1024));
        }
        for disk_bytes in [MIB - SECTOR, 64 * 1024 * 1024 * MIB + SECTOR] {
            let s = InstanceSpec {
                disk_bytes,
                ..spec("a")
            };
            assert_eq!(out_of_range(s), ("disk_bytes", MIB, 64 * 1024 * 1024 * MIB));
        }
        let edges = InstanceSpec {
            name: "a".into(),
            vcpu: 256,
            memory_mib: 16,
            disk_bytes: 64 * 1024 * 1024 * MIB,
        };
        assert_eq!(edges.validate(), Ok(()));

        let message = InstanceSpec {
            vcpu: 0,
            ..spec("a")
        }
        .validate()
        .expect_err("refused")
        .to_string();
        assert_eq!(
            message,
            "vcpu = 0 is out of range: it must be 1..=256 (1 to 256 virtual CPUs)"
        );
        let unaligned = InstanceSpec {
            disk_bytes: MIB + 1,
            ..spec("a")
        };
        assert_eq!(
            unaligned.validate(),
            Err(SpecError::NotAMultiple {
                field: "disk_bytes",
                value: MIB + 1,
                multiple: 512
            })
        );
    }

    #[test]
    fn records_are_flat_json_with_rfc3339_times() {
        let instance = Instance {
            spec: spec("web-1"),
            state: InstanceState::Migrating,
            origin: Some("cloud-b".into()),
            created_at: time::macros::datetime!(2025-03-04 05:06:07.5 UTC),
        };
        let json = serde_json::to_value(&instance).expect("encodes");
        assert_eq!(
            json,
            serde_json::json!({
                "name": "web-1", "vcpu": 2, "memory_mib": 512, "disk_bytes": 2097152,
                "state": "migrating", "origin": "cloud-b",
                "created_at": "2025-03-04T05:06:07.5Z"
            })
        );
        let back: Instance = serde_json::from_value(json).expect("decodes");
        assert_eq!(back, instance);

        let local = Instance {
            origin: None,
            state: InstanceState::Running,
            ..instance
        };
        let json = serde_json::to_value(&local).expect("encodes");
        assert_eq!(json.get("origin"), None);
        assert_eq!(json["state"], "running");
        assert_eq!(InstanceState::Running.to_string(), "running");
        assert_eq!(InstanceState::Migrating.to_string(), "migrating");
    }
}
