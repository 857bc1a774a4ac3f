//! The receiving side of the transfer protocol on disk: the driver of
//! [`intercloud_transfer`]'s receiver that owns the files.
//!
//! The protocol (what to write, when to persist the bitmap, whether to
//! commit, what a restart does) is decided by the pure crate; this module
//! only carries it out, durably, under `<data_dir>/transfers/`.
//!
//! Map:
//! - [`store`]: [`TransferStore`] — staging files, in-progress state,
//!   receipt records and committed objects; the commit steps and the
//!   restart scan of [`intercloud_transfer::recovery`].
//! - [`error`]: [`StoreError`], naming the file and the operation.
//! - `durable`: atomic replacement, directory fsync, preallocation and the
//!   free-space check.

pub mod error;
pub mod store;

mod durable;

pub use error::StoreError;
pub use store::{Found, FreeSpace, Recovered, TransferStore};
