//! [`TransferStore`]: the receiver's files, laid out for the commit steps
//! and restart rules of [`intercloud_transfer::recovery`].
//!
//! Under the root (one filesystem, so that a rename moves an object):
//!
//! ```text
//! staging/<transfer_id>.part       the object as it arrives, full length from the start
//! staging/<transfer_id>.manifest   the manifest (its JSON message)       } in-progress
//! staging/<transfer_id>.bitmap     the chunks fsynced in .part           } state
//! receipts/<transfer_id>.receipt   the receipt (JSON): the commit's durable mark, kept
//! objects/<object_id>              committed objects
//! ```
//!
//! File names come only from validated [`TransferId`]s and [`ObjectId`]s,
//! which are safe as one path component. The store holds no state of its
//! own (no open files, no caches): every call reopens what it needs, so
//! dropping it is a crash, and [`TransferStore::scan`] is the restart.
//!
//! What is fsynced when:
//!
//! - [`admit`](TransferStore::admit): the staging file after
//!   preallocation, then the staging directory; then the manifest and the
//!   empty bitmap, each replaced atomically (temporary file, fsync,
//!   rename, fsync the directory);
//! - [`write_chunk`](TransferStore::write_chunk): the staging file's data
//!   (`fdatasync`; its length was fixed and synced at admission), before
//!   the caller calls [`Receiver::written`](intercloud_transfer::Receiver::written);
//! - [`persist_bitmap`](TransferStore::persist_bitmap): atomically;
//! - [`commit`](TransferStore::commit): the receipt record atomically; the
//!   rename, then `objects/` and `staging/`; the deletions, then `staging/`;
//! - [`discard`](TransferStore::discard): the deletions, then `staging/`.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use intercloud_transfer::recovery::{self, OnDisk, Recovery};
use intercloud_transfer::{
    Bitmap, Manifest, Message, ObjectId, PrefixDigest, Receipt, Sha256Digest, TransferId,
};

use super::StoreError;
use super::durable::{
    self, Allocation, exists, io_error, read_if_exists, remove_if_exists, replace_atomically,
    sync_dir,
};

/// The buffer [`TransferStore::digest`] streams the staging file through:
/// the memory a digest costs, whatever the object's size.
pub const DIGEST_BUFFER: usize = 1 << 20;

/// Room asked for beyond the object itself: the manifest, the bitmap and
/// its temporary copy, the receipt. A generous bound (a manifest's
/// metadata is small; a bitmap is at most 2 MiB).
const STATE_HEADROOM: u64 = 64 * 1024;

const STAGING_DIR: &str = "staging";
const RECEIPTS_DIR: &str = "receipts";
const OBJECTS_DIR: &str = "objects";

const PART: &str = ".part";
const MANIFEST: &str = ".manifest";
const BITMAP: &str = ".bitmap";
const RECEIPT: &str = ".receipt";
const TMP: &str = ".tmp";

/// Where [`TransferStore::admit`] learns how much room there is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeSpace {
    /// `statvfs(2)` on the store's root: the blocks available to
    /// unprivileged users.
    Filesystem,
    /// A fixed number of bytes (tests, or an operator's quota).
    Fixed(u64),
}

/// What [`TransferStore::scan`] left in place for one transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// Committed (now, if the scan finished the commit): answer every
    /// manifest and chunk of it with this record.
    Committed(Receipt),
    /// In progress: [`Receiver::resume`](intercloud_transfer::Receiver::resume)
    /// with this manifest and bitmap (empty if the bitmap was missing or
    /// did not decode, or if the staging file had to be created again).
    Receiving {
        /// The manifest admitted.
        manifest: Manifest,
        /// The chunks the staging file holds.
        bitmap: Bitmap,
    },
    /// Nothing is left (an orphan staging file was deleted).
    Gone,
}

/// One transfer found on disk at start.
#[derive(Debug)]
pub struct Recovered {
    /// The transfer.
    pub transfer_id: TransferId,
    /// The decision of [`recovery::plan`].
    pub plan: Recovery,
    /// What carrying it out left, or why it failed (the driver then
    /// refuses the transfer and [`discard`](TransferStore::discard)s it).
    pub outcome: Result<Found, StoreError>,
}

/// The receiver's files for every transfer, under one root directory.
#[derive(Clone, Debug)]
pub struct TransferStore {
    root: PathBuf,
    staging: PathBuf,
    receipts: PathBuf,
    objects: PathBuf,
    free_space: FreeSpace,
}

impl TransferStore {
    /// Opens (creating if needed) the store under `root`, for example
    /// `<data_dir>/transfers`, checking free space with `statvfs`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        Self::open_with(root, FreeSpace::Filesystem)
    }

    /// Opens the store with another source of free space.
    pub fn open_with(root: impl Into<PathBuf>, free_space: FreeSpace) -> Result<Self, StoreError> {
        let root = root.into();
        let store = Self {
            staging: root.join(STAGING_DIR),
            receipts: root.join(RECEIPTS_DIR),
            objects: root.join(OBJECTS_DIR),
            root,
            free_space,
        };
        for dir in [&store.staging, &store.receipts, &store.objects] {
            fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
        }
        sync_dir(&store.root)?;
        Ok(store)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a committed object lives.
    pub fn object_path(&self, object_id: &ObjectId) -> PathBuf {
        self.objects.join(object_id.as_str())
    }

    /// The staging file of a transfer.
    pub fn staging_path(&self, id: &TransferId) -> PathBuf {
        self.staging.join(format!("{id}{PART}"))
    }

    fn manifest_path(&self, id: &TransferId) -> PathBuf {
        self.staging.join(format!("{id}{MANIFEST}"))
    }

    fn bitmap_path(&self, id: &TransferId) -> PathBuf {
        self.staging.join(format!("{id}{BITMAP}"))
    }

    fn receipt_path(&self, id: &TransferId) -> PathBuf {
        self.receipts.join(format!("{id}{RECEIPT}"))
    }

    /// Bytes available for new staging files.
    pub fn available_bytes(&self) -> Result<u64, StoreError> {
        match self.free_space {
            FreeSpace::Filesystem => durable::available_bytes(&self.root),
            FreeSpace::Fixed(bytes) => Ok(bytes),
        }
    }

    /// A new transfer (one with no record and no state: the caller routes
    /// known ones elsewhere): creates its staging file at full length,
    /// then its in-progress state with an empty bitmap. Refused with
    /// [`StoreError::NoSpace`] (see [`StoreError::refusal_reason`]) before
    /// anything is written if the filesystem lacks room.
    pub fn admit(&self, manifest: &Manifest) -> Result<(), StoreError> {
        let id = manifest.transfer_id();
        let needed = manifest.size().saturating_add(STATE_HEADROOM);
        let available = self.available_bytes()?;
        if available < needed {
            return Err(StoreError::NoSpace {
                transfer_id: id.clone(),
                path: self.root.clone(),
                needed,
                available,
            });
        }
        self.create_staging(manifest)?;
        let encoded =
            Message::from(manifest.clone())
                .encode()
                .map_err(|e| StoreError::Corrupt {
                    path: self.manifest_path(id),
                    detail: format!("the manifest does not encode: {e}"),
                })?;
        replace_atomically(&self.staging, &format!("{id}{MANIFEST}"), &encoded)?;
        self.persist_bitmap(id, &self.empty_bitmap(manifest)?)
    }

    /// Creates (or truncates) the staging file at the manifest's size,
    /// reserving its blocks if the filesystem can, and makes it durable.
    fn create_staging(&self, manifest: &Manifest) -> Result<(), StoreError> {
        let id = manifest.transfer_id();
        let path = self.staging_path(id);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_error("create", &path))?;
        let result = durable::preallocate(&file, &path, manifest.size()).and_then(|allocation| {
            if allocation == Allocation::Sparse {
                tracing::warn!(
                    transfer_id = %id,
                    path = %path.display(),
                    "the filesystem cannot preallocate: a full disk will show at a chunk write"
                );
            }
            file.sync_all().map_err(io_error("fsync", &path))
        });
        if let Err(e) = result {
            drop(file);
            // Leave no orphan: its blocks would count against the next one.
            let _ = remove_if_exists(&path);
            return Err(e);
        }
        sync_dir(&self.staging)
    }

    fn empty_bitmap(&self, manifest: &Manifest) -> Result<Bitmap, StoreError> {
        Bitmap::new(manifest.chunk_count()).map_err(|e| StoreError::Corrupt {
            path: self.manifest_path(manifest.transfer_id()),
            detail: e.to_string(),
        })
    }

    /// Writes a chunk's payload at `offset` of the staging file and
    /// fsyncs it. Then, and only then, the caller calls
    /// [`Receiver::written`](intercloud_transfer::Receiver::written).
    pub fn write_chunk(
        &self,
        id: &TransferId,
        offset: u64,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        self.write_chunk_unsynced(id, offset, payload)?;
        self.sync_staging(id)
    }

    /// Writes a chunk's payload without fsyncing: the receiver writes a
    /// batch of deliveries, then calls [`sync_staging`](Self::sync_staging)
    /// once per file, and only then
    /// [`Receiver::written`](intercloud_transfer::Receiver::written) and the
    /// acks.
    pub fn write_chunk_unsynced(
        &self,
        id: &TransferId,
        offset: u64,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        let path = self.staging_path(id);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_error("open", &path))?;
        file.write_all_at(payload, offset)
            .map_err(io_error("write a chunk to", &path))
    }

    /// Makes what was written to a staging file durable (`fdatasync`).
    pub fn sync_staging(&self, id: &TransferId) -> Result<(), StoreError> {
        let path = self.staging_path(id);
        // Not `create`: a staging file that is gone is an error.
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_error("open", &path))?;
        file.sync_data().map_err(io_error("fsync", &path))
    }

    /// Replaces the persisted bitmap atomically (when
    /// [`Written::persist_bitmap`](intercloud_transfer::Written) says, and
    /// after a [`Verdict::Refetch`](intercloud_transfer::Verdict)).
    pub fn persist_bitmap(&self, id: &TransferId, bitmap: &Bitmap) -> Result<(), StoreError> {
        replace_atomically(&self.staging, &format!("{id}{BITMAP}"), &bitmap.encode())
    }

    /// The SHA-256 of the whole staging file, streamed through a
    /// [`DIGEST_BUFFER`]-byte buffer (the engine finishes its running
    /// digest instead).
    #[cfg(test)]
    pub fn digest(&self, id: &TransferId) -> Result<Sha256Digest, StoreError> {
        let manifest = self.read_manifest(id)?;
        self.finish_digest(id, PrefixDigest::new(&manifest))
    }

    /// Completes `prefix` (the SHA-256 of the staging file's first
    /// `prefix.hashed()` bytes) by reading the rest of the file.
    pub fn finish_digest(
        &self,
        id: &TransferId,
        mut prefix: PrefixDigest,
    ) -> Result<Sha256Digest, StoreError> {
        let path = self.staging_path(id);
        let file = File::open(&path).map_err(io_error("open", &path))?;
        let mut buffer = vec![0u8; DIGEST_BUFFER];
        while !prefix.is_complete() {
            let n = match file.read_at(&mut buffer, prefix.hashed()) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error("read", &path)(e)),
            };
            prefix.absorb(buffer.get(..n).unwrap_or_default());
        }
        Ok(prefix.finish())
    }

    /// Reads `len` bytes at `offset` of the staging file (a chunk already
    /// on disk, for the running digest).
    pub fn read_staged(
        &self,
        id: &TransferId,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let path = self.staging_path(id);
        let file = File::open(&path).map_err(io_error("open", &path))?;
        let mut buffer = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
        file.read_exact_at(&mut buffer, offset)
            .map_err(io_error("read", &path))?;
        Ok(buffer)
    }

    /// The receipt record of a transfer, if it is committed.
    pub fn receipt_record(&self, id: &TransferId) -> Result<Option<Receipt>, StoreError> {
        let path = self.receipt_path(id);
        let Some(bytes) = read_if_exists(&path)? else {
            return Ok(None);
        };
        match Message::decode(&bytes) {
            Ok(Message::Receipt(receipt)) if receipt.transfer_id == *id => Ok(Some(receipt)),
            Ok(other) => Err(StoreError::Corrupt {
                path,
                detail: format!("a {} message, not this transfer's receipt", other.kind()),
            }),
            Err(e) => Err(StoreError::Corrupt {
                path,
                detail: e.to_string(),
            }),
        }
    }

    /// Commits after [`Verdict::Commit`](intercloud_transfer::Verdict):
    /// writes the receipt record, renames the staging file to
    /// [`object_path`](Self::object_path), fsyncs, deletes the in-progress
    /// state — in that order, so the rename happens at most once (see
    /// [`recovery`]). Returns the record.
    ///
    /// Idempotent: if the record exists, only the steps it still lacks are
    /// done (none, after a complete commit) and the record on disk is
    /// returned, whatever `receipt` says.
    pub fn commit(&self, receipt: &Receipt) -> Result<Receipt, StoreError> {
        let id = &receipt.transfer_id;
        if let Some(record) = self.receipt_record(id)? {
            self.finish_commit(&record)?;
            return Ok(record);
        }
        let staging = self.staging_path(id);
        if !exists(&staging)? {
            return Err(StoreError::NothingToCommit {
                transfer_id: id.clone(),
                path: staging,
            });
        }
        self.write_record(receipt)?;
        self.finish_commit(receipt)?;
        Ok(receipt.clone())
    }

    /// Commit step 1.
    fn write_record(&self, receipt: &Receipt) -> Result<(), StoreError> {
        let id = &receipt.transfer_id;
        let encoded = Message::from(receipt.clone())
            .encode()
            .map_err(|e| StoreError::Corrupt {
                path: self.receipt_path(id),
                detail: format!("the receipt does not encode: {e}"),
            })?;
        replace_atomically(&self.receipts, &format!("{id}{RECEIPT}"), &encoded)
    }

    /// Commit steps 2 and 3, each only if not done yet.
    fn finish_commit(&self, record: &Receipt) -> Result<(), StoreError> {
        let id = &record.transfer_id;
        let staging = self.staging_path(id);
        if exists(&staging)? {
            durable::rename(&staging, &self.object_path(&record.object_id))?;
            sync_dir(&self.objects)?;
            sync_dir(&self.staging)?;
        }
        self.delete_state(id)
    }

    /// Deletes the manifest and bitmap, then fsyncs the directory if any
    /// was there.
    fn delete_state(&self, id: &TransferId) -> Result<(), StoreError> {
        let manifest = remove_if_exists(&self.manifest_path(id))?;
        let bitmap = remove_if_exists(&self.bitmap_path(id))?;
        if manifest || bitmap {
            sync_dir(&self.staging)?;
        }
        Ok(())
    }

    /// Deletes the staging file and in-progress state of a transfer that
    /// will not be committed (refused, abandoned, failed). Not its record.
    pub fn discard(&self, id: &TransferId) -> Result<(), StoreError> {
        remove_if_exists(&self.staging_path(id))?;
        remove_if_exists(&self.manifest_path(id))?;
        remove_if_exists(&self.bitmap_path(id))?;
        sync_dir(&self.staging)
    }

    /// At start, before any delivery is consumed: plans every transfer on
    /// disk with [`recovery::plan`] and carries out the mechanical part —
    /// finishes commits, deletes what a commit left, deletes orphan staging
    /// and temporary files, creates a staging file again for state that
    /// lost it. Fails only if a directory cannot be listed.
    pub fn scan(&self) -> Result<Vec<Recovered>, StoreError> {
        let mut ids = BTreeSet::new();
        for dir in [&self.staging, &self.receipts] {
            let entries = fs::read_dir(dir).map_err(io_error("list", dir))?;
            for entry in entries {
                let entry = entry.map_err(io_error("list", dir))?;
                let name = entry.file_name();
                let path = entry.path();
                let Some(name) = name.to_str() else {
                    tracing::warn!(path = %path.display(), "not a transfer file; left alone");
                    continue;
                };
                if name.ends_with(TMP) {
                    // A replacement cut short by a crash: the file it was
                    // to replace is intact.
                    remove_if_exists(&path)?;
                    continue;
                }
                let stem = [PART, MANIFEST, BITMAP, RECEIPT]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix));
                match stem.map(TransferId::new) {
                    Some(Ok(id)) => {
                        ids.insert(id);
                    }
                    _ => tracing::warn!(path = %path.display(), "not a transfer file; left alone"),
                }
            }
        }
        Ok(ids
            .into_iter()
            .map(|id| {
                let (plan, outcome) = match self.on_disk(&id) {
                    Ok(found) => {
                        let plan = recovery::plan(found);
                        (plan, self.recover(&id, plan))
                    }
                    Err(e) => (Recovery::Unknown, Err(e)),
                };
                Recovered {
                    transfer_id: id,
                    plan,
                    outcome,
                }
            })
            .collect())
    }

    fn on_disk(&self, id: &TransferId) -> Result<OnDisk, StoreError> {
        Ok(OnDisk {
            receipt_record: exists(&self.receipt_path(id))?,
            // The manifest is written before the bitmap: a manifest alone
            // is state whose bitmap is empty (see `read_bitmap`).
            in_progress: exists(&self.manifest_path(id))?,
            staging: exists(&self.staging_path(id))?,
        })
    }

    fn recover(&self, id: &TransferId, plan: Recovery) -> Result<Found, StoreError> {
        let record = || {
            self.receipt_record(id)?.ok_or_else(|| StoreError::Corrupt {
                path: self.receipt_path(id),
                detail: "disappeared during the scan".to_owned(),
            })
        };
        match plan {
            Recovery::Unknown => Ok(Found::Gone),
            Recovery::Committed => Ok(Found::Committed(record()?)),
            Recovery::FinishCommit | Recovery::CleanUp => {
                let record = record()?;
                tracing::info!(transfer_id = %id, ?plan, "finishing an interrupted commit");
                self.finish_commit(&record)?;
                Ok(Found::Committed(record))
            }
            Recovery::Resume => {
                let manifest = self.read_manifest(id)?;
                let bitmap = self.read_bitmap(&manifest)?;
                Ok(Found::Receiving { manifest, bitmap })
            }
            Recovery::StartOver => {
                let manifest = self.read_manifest(id)?;
                tracing::warn!(transfer_id = %id, "staging file lost; receiving from the start");
                self.create_staging(&manifest)?;
                let bitmap = self.empty_bitmap(&manifest)?;
                self.persist_bitmap(id, &bitmap)?;
                Ok(Found::Receiving { manifest, bitmap })
            }
            Recovery::DiscardStaging => {
                self.discard(id)?;
                Ok(Found::Gone)
            }
        }
    }

    fn read_manifest(&self, id: &TransferId) -> Result<Manifest, StoreError> {
        let path = self.manifest_path(id);
        let bytes = fs::read(&path).map_err(io_error("read", &path))?;
        match Message::decode(&bytes) {
            Ok(Message::Manifest(m)) if m.transfer_id() == id => Ok(m),
            Ok(other) => Err(StoreError::Corrupt {
                path,
                detail: format!("a {} message, not this transfer's manifest", other.kind()),
            }),
            Err(e) => Err(StoreError::Corrupt {
                path,
                detail: e.to_string(),
            }),
        }
    }

    /// The persisted bitmap, or an empty one if it is missing, does not
    /// decode or does not fit the manifest: never trust a bitmap that
    /// might claim chunks the staging file lacks.
    fn read_bitmap(&self, manifest: &Manifest) -> Result<Bitmap, StoreError> {
        let path = self.bitmap_path(manifest.transfer_id());
        let decoded = read_if_exists(&path)?.map(|bytes| Bitmap::decode(&bytes));
        match decoded {
            Some(Ok(bitmap)) if bitmap.len() == manifest.chunk_count() => Ok(bitmap),
            other => {
                if other.is_some() {
                    tracing::warn!(
                        path = %path.display(),
                        "bitmap unreadable or of the wrong length; resuming with an empty one"
                    );
                }
                self.empty_bitmap(manifest)
            }
        }
    }
}

#[cfg(test)]
mod tests;
