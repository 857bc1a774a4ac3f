//! The Intercloud transfer protocol — moving an image or object from one
//! cloud to another over AMQP (RabbitMQ) without losing it or committing
//! it twice — without I/O.
//!
//! No sockets, no files, no clocks here: the drivers around this crate own
//! the AMQP channels (lapin), the staging files and the time, and pass
//! `now` in. What is left is the protocol: the wire messages, which chunk
//! to publish next, what to do with each delivery, when to ask for what is
//! missing, whether to commit, and what a restarted receiver does with what
//! it finds on disk. All of it is tested with an in-memory pair, made-up
//! times and injected faults (duplicates, redeliveries, corruption,
//! restarts), in `tests/protocol.rs`.
//!
//! The exchange:
//!
//! ```text
//!  sender                                   receiver
//!    │── Manifest ───────────────────────────▶│  validate, create staging file
//!    │◀────────────── Resend (what it lacks) ─│  (everything, if new)
//!    │── Chunk i (window of unconfirmed) ────▶│  digest ok → write, fsync, ack
//!    │       …                                │  corrupt → drop, Resend [i]
//!    │◀──────────── Resend (after silence) ───│  only what is missing
//!    │── Chunk j ───────────────────────────▶│  complete → whole digest →
//!    │◀────────────────────────── Receipt ────│  record, rename (once)
//!    │   or ◀──────────────────── Refusal ────│
//! ```
//!
//! Map:
//! - [`id`] — [`TransferId`], [`ObjectId`] (safe as file names) and
//!   [`CloudId`].
//! - [`digest`] — [`Sha256Digest`].
//! - [`range`] — [`ChunkRange`], a run of chunk indices.
//! - [`message`] — the five messages ([`Manifest`], [`Chunk`], [`Resend`],
//!   [`Receipt`], [`Refusal`]), their validation, and the encoding — a
//!   binary frame for chunks, versioned JSON for the rest —
//!   [`Message::decode`] refusing malformed input with precise errors.
//! - [`bitmap`] — [`Bitmap`], the chunks held (or still to publish), and its
//!   persisted form.
//! - [`receiver`] — [`Receiver`], one transfer's receiving state machine.
//! - [`recovery`] — the receiver's commit steps and its restart decision
//!   table.
//! - [`sender`] — [`Sender`], one transfer's sending state machine, with a
//!   bounded window of unconfirmed chunks.
//! - [`progress`] — [`Progress`] (bytes, rate, ETA) and the rate meter.
//! - [`checker`] — a Jepsen-style [`Checker`] of a test run's outcomes
//!   (lost and duplicated must be 0).
//!
//! Memory is bounded whatever the object's size: state is a manifest, one
//! bit per chunk and counters; payloads are borrowed from the delivery
//! (receiver) or read from disk when a chunk is named (sender). A 4 GiB
//! object in 1 MiB chunks costs a 512-byte bitmap; the limits below bound
//! what a peer can make a receiver allocate.

#![forbid(unsafe_code)]

pub mod bitmap;
pub mod checker;
pub mod digest;
pub mod id;
pub mod message;
pub mod prefix;
pub mod progress;
pub mod range;
pub mod receiver;
pub mod recovery;
pub mod sender;

pub use bitmap::Bitmap;
pub use checker::{Checker, Report};
pub use digest::Sha256Digest;
pub use id::{CloudId, ObjectId, TransferId};
pub use message::{
    Chunk, Manifest, ManifestSpec, Message, MessageError, ObjectKind, Receipt, Refusal,
    RefusalReason, Resend,
};
pub use prefix::PrefixDigest;
pub use progress::Progress;
pub use range::ChunkRange;
pub use receiver::{
    ChunkDecision, ManifestAnswer, Receiver, ReceiverConfig, Timeout, Verdict, Written,
};
pub use sender::{ChunkToSend, Outcome, Sender, SenderConfig, SenderState};

/// The smallest chunk size a manifest may declare: 64 KiB.
pub const MIN_CHUNK_SIZE: u64 = 64 * 1024;

/// The largest chunk size a manifest may declare: 8 MiB (what one AMQP
/// message carries comfortably under RabbitMQ's default 128 MiB limit, and
/// what a driver holds per unconfirmed chunk).
pub const MAX_CHUNK_SIZE: u64 = 8 * 1024 * 1024;

/// The most chunks a transfer may have: 2^24, so a receiver's bitmap is at
/// most 2 MiB (and an object at most 128 TiB in 8 MiB chunks).
pub const MAX_CHUNK_COUNT: u64 = 1 << 24;
