//! The local cloud driver: what a broker fronts — instances and their disks —
//! kept under the broker's data directory.
//!
//! Map:
//! - [`instance`]: what an instance is (pure): its specification and bounds,
//!   its state, its JSON record.
//! - [`ovf`]: the OVF 2.0 descriptor of one VM on one qcow2 disk (pure).
//! - [`qemu_img`]: the `qemu-img` binary (create, info, check).
//! - [`error`]: what the driver refuses or fails at.
//! - [`netns`]: the network namespace standing in for an instance's VM
//!   network while it is attached to a VNet (made and removed by the VNet
//!   data plane, [`crate::vnets`]).
//!
//! [`LocalCloud`] keeps `<data_dir>/cloud/instances/<name>.json` (the record)
//! and `<data_dir>/cloud/disks/<name>.qcow2` (the disk). A migration exports
//! a [`Package`] (disk + descriptor) at the source; the destination checks
//! what arrived with [`LocalCloud::verify_package`] and takes it in with
//! [`LocalCloud::import`]; the source then [`release`](LocalCloud::release)s.
//!
//! Invariants:
//! - The record is the commit point. A disk is made durable before its
//!   record is written, and a record is deleted before its disk; so a crash
//!   can leave a disk without a record, never a record without a disk, and
//!   [`LocalCloud::open`] deletes such disks (and temporary files and
//!   tombstones).
//! - Records are replaced atomically (temporary file, fsync, rename, fsync
//!   of the directory).
//! - Changes are serialised in the process, so a name checked free is still
//!   free when it is taken. One process owns a data directory.
//! - Instance names are validated before they become paths.
//!
//! All methods block (`qemu-img`, fsync); async callers use `spawn_blocking`.

pub mod error;
pub mod instance;
pub mod netns;
pub mod ovf;
pub mod qemu_img;

#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;

pub use error::{CloudError, OvfError, SpecError};
pub use instance::{Instance, InstanceSpec, InstanceState, validate_name};
pub use qemu_img::QemuImg;

use error::io_error;

const RECORD_SUFFIX: &str = ".json";
const DISK_SUFFIX: &str = ".qcow2";
const TEMPORARY_SUFFIX: &str = ".tmp";
const TOMBSTONE_SUFFIX: &str = ".released";

/// The local cloud: instances and their qcow2 disks under a data directory.
#[derive(Debug)]
pub struct LocalCloud {
    instances_dir: PathBuf,
    disks_dir: PathBuf,
    qemu_img: QemuImg,
    /// Held across each change, from the check of a name to its record.
    changes: Mutex<()>,
    /// Counts the instances created, imported and released, so that
    /// watchers (the VNet data plane) learn that the set changed.
    generation: tokio::sync::watch::Sender<u64>,
}

/// An instance ready to leave: its disk and the descriptor to send with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// The instance as recorded here.
    pub instance: Instance,
    /// Its disk, `<data_dir>/cloud/disks/<name>.qcow2`.
    pub disk_path: PathBuf,
    /// The disk file's length in bytes.
    pub disk_size: u64,
    /// The OVF descriptor naming the disk file `<name>.qcow2` of that length.
    pub ovf: String,
}

/// A package that passed [`LocalCloud::verify_package`]: what
/// [`LocalCloud::import`] will create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportPlan {
    /// The instance the descriptor describes.
    pub spec: InstanceSpec,
    /// The disk file's length when it was verified; import refuses a disk
    /// that has changed length since.
    pub disk_size: u64,
    /// Leaked clusters `qemu-img check` found (wasted space, harmless).
    pub leaked_clusters: u64,
}

impl LocalCloud {
    /// Opens (creating if needed) the cloud under `data_dir`, and clears what
    /// an interrupted change left: temporary records, tombstones, disks
    /// without a record.
    pub fn open(data_dir: &Path) -> Result<Self, CloudError> {
        let root = data_dir.join("cloud");
        let cloud = LocalCloud {
            instances_dir: root.join("instances"),
            disks_dir: root.join("disks"),
            qemu_img: QemuImg::default(),
            changes: Mutex::new(()),
            generation: tokio::sync::watch::Sender::new(0),
        };
        for dir in [&cloud.instances_dir, &cloud.disks_dir] {
            fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
        }
        cloud.clear_leftovers()?;
        Ok(cloud)
    }

    /// Creates an instance with a new, empty disk; it is running.
    pub fn create_instance(&self, spec: InstanceSpec) -> Result<Instance, CloudError> {
        spec.validate()?;
        let _changing = self.lock();
        self.refuse_existing(&spec.name)?;
        let disk = self.disk_path(&spec.name);
        let created = self
            .qemu_img
            .create(&disk, spec.disk_bytes)
            .and_then(|()| sync_file(&disk))
            .and_then(|()| sync_dir(&self.disks_dir));
        if let Err(e) = created {
            // qemu-img may have left part of an image.
            self.discard_disk(&disk);
            return Err(e);
        }
        let instance = Instance {
            spec,
            state: InstanceState::Running,
            origin: None,
            created_at: OffsetDateTime::now_utc(),
        };
        if let Err(e) = self.write_record(&instance) {
            // Never a record without its disk.
            if self.discard_record(instance.name()) {
                self.discard_disk(&disk);
            }
            return Err(e);
        }
        tracing::info!(
            instance = instance.name(),
            disk_bytes = instance.spec.disk_bytes,
            "instance created"
        );
        self.changed();
        Ok(instance)
    }

    /// A receiver that sees a new value whenever an instance is created,
    /// imported or released.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn changed(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Every instance, sorted by name.
    pub fn list(&self) -> Result<Vec<Instance>, CloudError> {
        let entries =
            fs::read_dir(&self.instances_dir).map_err(io_error("list", &self.instances_dir))?;
        let mut instances = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error("list", &self.instances_dir))?;
            let file_name = entry.file_name();
            let Some(name) = file_name
                .to_str()
                .filter(|n| !n.starts_with('.'))
                .and_then(|n| n.strip_suffix(RECORD_SUFFIX))
            else {
                continue;
            };
            let path = entry.path();
            match self.read_record(name)? {
                Some(instance) => instances.push(instance),
                // Released between the listing and the read.
                None => tracing::debug!(record = %path.display(), "record gone while listing"),
            }
        }
        instances.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(instances)
    }

    /// The instance `name`, if there is one.
    pub fn get(&self, name: &str) -> Result<Option<Instance>, CloudError> {
        validate_name(name)?;
        self.read_record(name)
    }

    /// The instance `name`'s disk and its OVF descriptor, for a migration.
    pub fn export(&self, name: &str) -> Result<Package, CloudError> {
        let instance = self.existing(name)?;
        let disk_path = self.disk_path(name);
        let disk_size = file_len(&disk_path)?;
        let ovf = ovf::generate(&instance.spec, &format!("{name}{DISK_SUFFIX}"), disk_size);
        Ok(Package {
            instance,
            disk_path,
            disk_size,
            ovf,
        })
    }

    /// Checks a package that arrived — the descriptor, then the disk against
    /// it — and says what importing it would create. Refuses a name that is
    /// taken here.
    pub fn verify_package(&self, disk: &Path, ovf: &str) -> Result<ImportPlan, CloudError> {
        let package = ovf::parse(ovf)?;
        self.refuse_existing(&package.spec.name)?;
        let disk_size = file_len(disk)?;
        if disk_size != package.disk_file_size {
            return Err(CloudError::FileSizeMismatch {
                path: disk.to_path_buf(),
                ovf: package.disk_file_size,
                actual: disk_size,
            });
        }
        let info = self.qemu_img.info(disk)?;
        if info.format != "qcow2" {
            return Err(CloudError::NotQcow2 {
                path: disk.to_path_buf(),
                format: info.format,
            });
        }
        let external = [
            ("backing file", info.backing_file),
            ("external data file", info.data_file),
        ];
        if let Some((kind, Some(target))) = external.into_iter().find(|(_, f)| f.is_some()) {
            return Err(CloudError::ExternalFile {
                path: disk.to_path_buf(),
                kind,
                target,
            });
        }
        if info.virtual_size != package.disk_capacity {
            return Err(CloudError::CapacityMismatch {
                ovf: package.disk_capacity,
                qemu_img: info.virtual_size,
            });
        }
        // Last: it reads all of the image's metadata.
        let report = self.qemu_img.check(disk)?;
        if !report.is_sound() {
            return Err(CloudError::Damaged {
                path: disk.to_path_buf(),
                corruptions: report.corruptions,
                check_errors: report.check_errors,
            });
        }
        Ok(ImportPlan {
            spec: package.spec,
            disk_size,
            leaked_clusters: report.leaks,
        })
    }

    /// Takes in a verified package: moves `disk` (on the data directory's
    /// filesystem) into place and records the instance as running, imported
    /// from `origin`. On failure the disk is back at `disk` and nothing is
    /// recorded.
    pub fn import(
        &self,
        plan: &ImportPlan,
        disk: &Path,
        origin: &str,
    ) -> Result<Instance, CloudError> {
        plan.spec.validate()?;
        let _changing = self.lock();
        self.refuse_existing(&plan.spec.name)?;
        let disk_size = file_len(disk)?;
        if disk_size != plan.disk_size {
            return Err(CloudError::FileSizeMismatch {
                path: disk.to_path_buf(),
                ovf: plan.disk_size,
                actual: disk_size,
            });
        }
        let target = self.disk_path(&plan.spec.name);
        rename(disk, &target)?;
        let instance = Instance {
            spec: plan.spec.clone(),
            state: InstanceState::Running,
            origin: Some(origin.to_owned()),
            created_at: OffsetDateTime::now_utc(),
        };
        let recorded = sync_file(&target)
            .and_then(|()| sync_dir(&self.disks_dir))
            .and_then(|()| self.write_record(&instance));
        if let Err(e) = recorded {
            if self.discard_record(instance.name())
                && let Err(back) = rename(&target, disk)
            {
                tracing::warn!(error = %back, "cannot give the disk back; deleting it");
                self.discard_disk(&target);
            }
            return Err(e);
        }
        tracing::info!(instance = instance.name(), origin, "instance imported");
        self.changed();
        Ok(instance)
    }

    /// Deletes the instance `name`: its record (so it is gone even if the
    /// disk's deletion is interrupted), then its disk.
    pub fn release(&self, name: &str) -> Result<(), CloudError> {
        validate_name(name)?;
        let _changing = self.lock();
        let record = self.record_path(name);
        let tombstone = self
            .instances_dir
            .join(format!(".{name}{RECORD_SUFFIX}{TOMBSTONE_SUFFIX}"));
        match fs::rename(&record, &tombstone) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CloudError::NoSuchInstance {
                    name: name.to_owned(),
                });
            }
            Err(source) => {
                return Err(CloudError::Rename {
                    from: record,
                    to: tombstone,
                    source,
                });
            }
        }
        sync_dir(&self.instances_dir)?;
        remove_if_exists(&tombstone)?;
        sync_dir(&self.instances_dir)?;
        remove_if_exists(&self.disk_path(name))?;
        sync_dir(&self.disks_dir)?;
        tracing::info!(instance = name, "instance released");
        self.changed();
        Ok(())
    }

    /// Sets the instance `name`'s state (migrating while it moves, running
    /// again if the move fails).
    pub fn set_state(&self, name: &str, state: InstanceState) -> Result<Instance, CloudError> {
        validate_name(name)?;
        let _changing = self.lock();
        let mut instance = self.existing(name)?;
        instance.state = state;
        self.write_record(&instance)?;
        Ok(instance)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The mutex guards no data: a panic while holding it leaves nothing
        // inconsistent in memory.
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.instances_dir.join(format!("{name}{RECORD_SUFFIX}"))
    }

    fn disk_path(&self, name: &str) -> PathBuf {
        self.disks_dir.join(format!("{name}{DISK_SUFFIX}"))
    }

    fn existing(&self, name: &str) -> Result<Instance, CloudError> {
        self.get(name)?.ok_or_else(|| CloudError::NoSuchInstance {
            name: name.to_owned(),
        })
    }

    fn refuse_existing(&self, name: &str) -> Result<(), CloudError> {
        let record = self.record_path(name);
        if record.try_exists().map_err(io_error("stat", &record))? {
            return Err(CloudError::Exists {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// The record of `name` (a valid name), or `None`.
    fn read_record(&self, name: &str) -> Result<Option<Instance>, CloudError> {
        let path = self.record_path(name);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("read", &path)(e)),
        };
        let corrupt = |detail: String| CloudError::CorruptRecord {
            path: path.clone(),
            detail,
        };
        let instance: Instance =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if instance.spec.name != name {
            return Err(corrupt(format!(
                "it names instance {:?}",
                instance.spec.name
            )));
        }
        instance
            .spec
            .validate()
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(Some(instance))
    }

    /// Replaces the record atomically: write a temporary file, fsync it,
    /// rename it over the record, fsync the directory.
    fn write_record(&self, instance: &Instance) -> Result<(), CloudError> {
        let path = self.record_path(instance.name());
        let tmp = self.instances_dir.join(format!(
            ".{}{RECORD_SUFFIX}{TEMPORARY_SUFFIX}",
            instance.name()
        ));
        let mut bytes =
            serde_json::to_vec_pretty(instance).map_err(|e| CloudError::CorruptRecord {
                path: path.clone(),
                detail: format!("does not encode: {e}"),
            })?;
        bytes.push(b'\n');
        let written = File::create(&tmp)
            .map_err(io_error("create", &tmp))
            .and_then(|mut file| {
                file.write_all(&bytes).map_err(io_error("write", &tmp))?;
                file.sync_all().map_err(io_error("fsync", &tmp))
            })
            .and_then(|()| rename(&tmp, &path))
            .and_then(|()| sync_dir(&self.instances_dir));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// Deletes the record of a failed creation or import, in case its write
    /// failed only at the directory's fsync, after the rename. False if the
    /// record may still be there (then its disk must stay).
    fn discard_record(&self, name: &str) -> bool {
        let removed =
            remove_if_exists(&self.record_path(name)).and_then(|_| sync_dir(&self.instances_dir));
        if let Err(e) = &removed {
            tracing::warn!(error = %e, "cannot delete the record of a failed change");
        }
        removed.is_ok()
    }

    /// Deletes a disk that must not outlive a failed change; a failure here
    /// is logged (open clears a disk without a record).
    fn discard_disk(&self, disk: &Path) {
        let removed = remove_if_exists(disk).and_then(|_| sync_dir(&self.disks_dir));
        if let Err(e) = removed {
            tracing::warn!(error = %e, "cannot delete the disk of a failed change");
        }
    }

    fn clear_leftovers(&self) -> Result<(), CloudError> {
        for path in dir_entries(&self.instances_dir)? {
            let name = file_name(&path);
            if name.starts_with('.')
                && (name.ends_with(TEMPORARY_SUFFIX) || name.ends_with(TOMBSTONE_SUFFIX))
            {
                tracing::warn!(file = %path.display(), "deleting what an interrupted change left");
                remove_if_exists(&path)?;
            }
        }
        for path in dir_entries(&self.disks_dir)? {
            let name = file_name(&path);
            let recorded = name
                .strip_suffix(DISK_SUFFIX)
                .filter(|n| validate_name(n).is_ok())
                .map(|n| {
                    self.record_path(n)
                        .try_exists()
                        .map_err(io_error("stat", &path))
                })
                .transpose()?;
            if recorded == Some(false) {
                tracing::warn!(disk = %path.display(), "deleting a disk without a record");
                remove_if_exists(&path)?;
            }
        }
        sync_dir(&self.instances_dir)?;
        sync_dir(&self.disks_dir)
    }
}

fn dir_entries(dir: &Path) -> Result<Vec<PathBuf>, CloudError> {
    fs::read_dir(dir)
        .and_then(|entries| entries.map(|e| e.map(|e| e.path())).collect())
        .map_err(io_error("list", dir))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn file_len(path: &Path) -> Result<u64, CloudError> {
    fs::metadata(path)
        .map(|m| m.len())
        .map_err(io_error("stat", path))
}

fn sync_file(path: &Path) -> Result<(), CloudError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_error("fsync", path))
}

/// Makes a directory's entries (creations, renames, deletions) durable.
fn sync_dir(dir: &Path) -> Result<(), CloudError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("fsync directory", dir))
}

fn rename(from: &Path, to: &Path) -> Result<(), CloudError> {
    fs::rename(from, to).map_err(|source| CloudError::Rename {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    })
}

/// Deletes `path`; true if it was there.
fn remove_if_exists(path: &Path) -> Result<bool, CloudError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error("delete", path)(e)),
    }
}
