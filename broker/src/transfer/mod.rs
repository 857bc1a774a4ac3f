//! Transfers of images and objects between clouds over AMQP (RabbitMQ):
//! the drivers of [`intercloud_transfer`]'s state machines.
//!
//! The protocol (what to write, when to persist the bitmap, whether to
//! commit, what a restart does, which chunk to publish next) is decided by
//! the pure crate; these modules carry it out, durably, under
//! `<data_dir>/transfers/`.
//!
//! Map:
//! - [`amqp`]: the connection (TLS, SASL EXTERNAL), queue names, publishing
//!   with `user_id`, who sent a delivery.
//! - [`inbound`]: the receiving engine (batches of deliveries → staging
//!   files → fsync → ack) and its consumer; [`inbound::Hooks`] let the
//!   broker inspect an object before its commit and act after it.
//! - [`outbound`]: the outbox — one task per outgoing transfer, durable
//!   records, the control-queue dispatcher.
//! - [`view`]: progress for `ListTransfers`/`WatchTransfers`.
//! - [`service`]: [`Transfers`], all of it started together.
//! - [`store`]: [`TransferStore`] — staging files, in-progress state,
//!   receipt records and committed objects; the commit steps and the
//!   restart scan of [`intercloud_transfer::recovery`].
//! - [`error`]: [`StoreError`], naming the file and the operation.
//! - `durable`: atomic replacement, directory fsync, preallocation and the
//!   free-space check.

pub mod amqp;
pub mod error;
pub mod inbound;
pub mod outbound;
pub mod service;
pub mod store;
pub mod view;

mod durable;

pub use error::StoreError;
pub use service::Transfers;
pub use store::{Found, FreeSpace, Recovered, TransferStore};
