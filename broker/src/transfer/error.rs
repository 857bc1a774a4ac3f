//! [`StoreError`]: what went wrong on disk, naming the file and the
//! operation, and the refusal it means for the sender.

use std::io;
use std::path::PathBuf;

use intercloud_transfer::{Refusal, RefusalReason, TransferId};

/// A failure of the transfer store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A filesystem call failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done ("fsync", "create", …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// A rename failed.
    #[error("cannot rename {} to {}: {source}", from.display(), to.display())]
    Rename {
        /// The file renamed.
        from: PathBuf,
        /// Its new name.
        to: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// The filesystem has too little room for the object.
    #[error(
        "no room for transfer {transfer_id} under {}: {needed} bytes needed, {available} available",
        path.display()
    )]
    NoSpace {
        /// The transfer.
        transfer_id: TransferId,
        /// The directory checked.
        path: PathBuf,
        /// What the object and its state need.
        needed: u64,
        /// What the filesystem has for unprivileged users.
        available: u64,
    },
    /// A state file or record this store wrote does not read back.
    #[error("{} does not decode: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A commit of a transfer with neither a staging file nor a record.
    #[error("cannot commit transfer {transfer_id}: {} does not exist", path.display())]
    NothingToCommit {
        /// The transfer.
        transfer_id: TransferId,
        /// The staging file looked for.
        path: PathBuf,
    },
}

impl StoreError {
    /// Why the transfer cannot go on, for the sender: `no_space` when the
    /// disk is full (a retryable refusal), `storage_failure` otherwise.
    pub fn refusal_reason(&self) -> RefusalReason {
        let source = match self {
            Self::NoSpace { .. } => return RefusalReason::NoSpace,
            Self::Io { source, .. } | Self::Rename { source, .. } => source,
            Self::Corrupt { .. } | Self::NothingToCommit { .. } => {
                return RefusalReason::StorageFailure;
            }
        };
        if source.kind() == io::ErrorKind::StorageFull
            || source.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error())
        {
            RefusalReason::NoSpace
        } else {
            RefusalReason::StorageFailure
        }
    }

    /// The refusal to publish for `transfer_id` (when there is no
    /// [`Receiver`](intercloud_transfer::Receiver) to
    /// [`fail`](intercloud_transfer::Receiver::fail) yet).
    pub fn refusal(&self, transfer_id: TransferId) -> Refusal {
        Refusal::new(transfer_id, self.refusal_reason(), self.to_string())
    }
}
