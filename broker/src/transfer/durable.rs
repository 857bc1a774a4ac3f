//! The filesystem calls whose order makes the store crash-safe.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::Path;

use rustix::fs::FallocateFlags;
use rustix::io::Errno;

use super::StoreError;

/// Wraps an I/O error with the operation and the path.
pub(super) fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

/// Makes a directory's entries (creations, renames, deletions) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("fsync directory", dir))
}

/// Replaces `dir/name` with `bytes` so that a crash leaves either the old
/// content or the new one: write `name.tmp`, fsync it, rename it over
/// `name`, fsync the directory.
pub(super) fn replace_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&tmp).map_err(io_error("create", &tmp))?;
    file.write_all(bytes).map_err(io_error("write", &tmp))?;
    file.sync_all().map_err(io_error("fsync", &tmp))?;
    drop(file);
    rename(&tmp, &path)?;
    sync_dir(dir)
}

pub(super) fn rename(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::rename(from, to).map_err(|source| StoreError::Rename {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    })
}

/// Deletes `path`; true if it was there.
pub(super) fn remove_if_exists(path: &Path) -> Result<bool, StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error("delete", path)(e)),
    }
}

/// Whether `path` exists (an error other than "not found" is reported).
pub(super) fn exists(path: &Path) -> Result<bool, StoreError> {
    path.try_exists().map_err(io_error("stat", path))
}

/// Reads `path`, or `None` if it does not exist.
pub(super) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", path)(e)),
    }
}

/// Whether the blocks were reserved or the file is only sparse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Allocation {
    /// `fallocate` reserved every block: later writes cannot hit ENOSPC.
    Reserved,
    /// The filesystem does not support `fallocate`: the file has its
    /// length but no blocks; a full disk shows at a chunk write.
    Sparse,
}

/// Gives `file` its final length `len`, reserving its blocks where the
/// filesystem can (`fallocate(2)`, mode 0 — no zeros written).
pub(super) fn preallocate(file: &File, path: &Path, len: u64) -> Result<Allocation, StoreError> {
    if len == 0 {
        return Ok(Allocation::Reserved);
    }
    match rustix::fs::fallocate(file, FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(Allocation::Reserved),
        Err(e) if e == Errno::OPNOTSUPP || e == Errno::NOSYS => {
            file.set_len(len)
                .map_err(io_error("set the length of", path))?;
            Ok(Allocation::Sparse)
        }
        Err(e) => Err(io_error("preallocate", path)(e.into())),
    }
}

/// Bytes available to unprivileged users on the filesystem of `path`.
pub(super) fn available_bytes(path: &Path) -> Result<u64, StoreError> {
    let stat = rustix::fs::statvfs(path).map_err(|e| io_error("statvfs", path)(e.into()))?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn preallocation_gives_the_full_length_and_reserves_blocks_where_it_can() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.part");
        let file = File::create(&path).expect("created");
        let len = 3 * 1024 * 1024 + 5;
        let allocation = preallocate(&file, &path, len).expect("preallocated");
        let meta = fs::metadata(&path).expect("stat");
        assert_eq!(meta.len(), len);
        if allocation == Allocation::Reserved {
            assert!(meta.blocks() * 512 >= len, "{} blocks", meta.blocks());
        }
        assert_eq!(
            preallocate(&file, &path, 0).expect("nothing"),
            Allocation::Reserved
        );
    }

    #[test]
    fn a_replacement_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        replace_atomically(dir.path(), "state", b"one").expect("written");
        replace_atomically(dir.path(), "state", b"two").expect("replaced");
        assert_eq!(fs::read(dir.path().join("state")).expect("read"), b"two");
        assert!(!dir.path().join("state.tmp").exists());
    }
}
