//! [`Receiver`]: what to do with each manifest and chunk of one transfer,
//! when to ask for what is missing, and whether to commit.
//!
//! The driver owns the queue, the staging file and the clocks. Per chunk:
//!
//! 1. [`Receiver::on_chunk`] says [`ChunkDecision::Write`] (a chunk it
//!    lacks, of the right length, matching its digest) or why not;
//! 2. for `Write`, the driver writes the payload at `offset` in the
//!    staging file and fsyncs it, then calls [`Receiver::written`], which
//!    marks the chunk present and says whether to persist the bitmap now;
//! 3. only then does the driver ack the delivery. Every other decision is
//!    acked too (dropped), never requeued: a corrupt message would come
//!    back corrupt; the receiver asks the sender for the chunk instead.
//!
//! So the bitmap never claims a chunk that is not on disk, and an acked
//! chunk is on disk (or, if the bitmap persisted lags behind, asked for
//! again after a restart: a duplicate, never a loss).
//!
//! The driver routes each delivery by transfer id: a transfer with a
//! receipt record is answered from it ([`ManifestAnswer::from_record`],
//! or the record itself for a chunk); a live one goes to its `Receiver`;
//! a manifest for a new one to [`Receiver::admit`]; a chunk for an
//! unknown one is refused (`unknown_transfer`) if
//! [`Chunk::is_intact`] — otherwise its transfer id may be the damage,
//! and it is dropped.
//!
//! When every chunk is present, [`Receiver::ready_to_commit`] is true; the
//! driver hashes the staging file as a stream and calls
//! [`Receiver::verify`], which says [`Verdict::Commit`] at most once per
//! transfer. Commit steps and restart rules are in [`crate::recovery`].
//!
//! Whole-object digest mismatch (every chunk matched its own digest, the
//! whole does not): the receiver cannot tell which chunk is wrong, so it
//! drops them all and asks for everything once ([`Verdict::Refetch`]);
//! a second mismatch means the sender's source changed under it (or its
//! disk lies) and the transfer is refused ([`Verdict::Refuse`], reason
//! `digest_mismatch`) rather than fetched forever. The count is not
//! persisted: a receiver restarted in between allows one more refetch.

use std::time::{Duration, Instant, SystemTime};

use crate::bitmap::Bitmap;
use crate::digest::Sha256Digest;
use crate::id::{CloudId, TransferId};
use crate::message::outcome::truncate_to_millis;
use crate::message::{Chunk, Manifest, Receipt, Refusal, RefusalReason, Resend};

/// The whole-object digest mismatch that refuses the transfer; each one
/// before it drops every chunk and fetches them again (2: one refetch).
pub const MAX_DIGEST_FAILURES: u32 = 2;

/// How the receiver paces itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// Ask for what is missing when no chunk of the transfer arrived for
    /// this long (the queue is drained: what is missing is not coming).
    pub resend_after: Duration,
    /// Give the transfer up when no new chunk arrived for this long
    /// (the sender is gone for good, or the manifest was a stray
    /// duplicate of a finished transfer): refuse it (`abandoned`) and free
    /// its staging file.
    pub abandon_after: Duration,
    /// Persist the bitmap after this many newly written chunks (at least
    /// 1), and always when the last one is written. More than 1 saves
    /// fsyncs; a restart then asks again for up to that many chunks the
    /// staging file already holds.
    pub persist_every: u64,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            resend_after: Duration::from_secs(10),
            abandon_after: Duration::from_secs(24 * 3600),
            persist_every: 1,
        }
    }
}

/// The answer to a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestAnswer {
    /// Publish these chunks (all of them for a new transfer, none if every
    /// chunk is here and the commit is under way).
    Resend(Resend),
    /// Already committed: this receipt, again.
    Receipt(Receipt),
    /// Refused (conflict, wrong receiver, or an earlier refusal again).
    Refusal(Refusal),
}

impl ManifestAnswer {
    /// The answer for a transfer the driver holds only a receipt record
    /// of: the receipt again if the manifest is the one committed, a
    /// conflict otherwise.
    pub fn from_record(record: &Receipt, manifest: &Manifest) -> Self {
        if record.matches(manifest) {
            Self::Receipt(record.clone())
        } else {
            Self::Refusal(conflict(
                manifest,
                record.object_id.as_str(),
                record.size,
                record.sha256,
            ))
        }
    }
}

fn conflict(announced: &Manifest, object: &str, size: u64, sha256: Sha256Digest) -> Refusal {
    Refusal::new(
        announced.transfer_id().clone(),
        RefusalReason::Conflict,
        format!(
            "transfer {} is already object {object} ({size} bytes, sha256 {sha256}); \
             announced again as {} ({} bytes, sha256 {})",
            announced.transfer_id(),
            announced.object_id(),
            announced.size(),
            announced.sha256()
        ),
    )
}

/// What to do with a chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkDecision {
    /// Write the payload at `offset` in the staging file, fsync, call
    /// [`Receiver::written`], then ack.
    Write {
        /// The chunk index.
        index: u64,
        /// Where it goes in the staging file.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// Already on disk (a redelivery or a duplicate publish): ack.
    Duplicate {
        /// The chunk index.
        index: u64,
    },
    /// The payload does not match its digest: ack (drop) and publish the
    /// resend.
    Corrupt {
        /// The chunk index.
        index: u64,
        /// The digest in the frame.
        expected: Sha256Digest,
        /// The payload's digest.
        actual: Sha256Digest,
        /// The request for this chunk again.
        resend: Resend,
    },
    /// The payload's length is not the manifest's for that index: ack
    /// (drop) and publish the resend.
    WrongLength {
        /// The chunk index.
        index: u64,
        /// The manifest's length for it.
        expected: u64,
        /// The payload's.
        actual: u64,
        /// The request for this chunk again.
        resend: Resend,
    },
    /// Another transfer's chunk (the driver routed it wrong): drop.
    Foreign {
        /// The chunk's transfer.
        transfer_id: TransferId,
    },
    /// An index the manifest does not have: drop.
    OutOfRange {
        /// The chunk index.
        index: u64,
        /// The manifest's chunk count.
        chunk_count: u64,
    },
    /// The transfer is committed: ack and publish this receipt again (the
    /// sender may not have it: this may be the redelivery of the chunk
    /// whose commit's receipt could not be published).
    AlreadyCommitted(Receipt),
    /// The transfer was refused: ack and publish this refusal again.
    AlreadyRefused(Refusal),
}

/// What the passing of time calls for ([`Receiver::poll_timeout`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// Publish this request for what is missing.
    Resend(Resend),
    /// The transfer is given up: delete its staging file and state,
    /// publish this refusal.
    Abandon(Refusal),
}

/// After a chunk was written and fsynced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// Persist [`Receiver::bitmap`] now (atomically), before acking.
    pub persist_bitmap: bool,
    /// Every chunk is present: hash the staging file and call
    /// [`Receiver::verify`].
    pub complete: bool,
}

/// The outcome of the whole-object check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The digest matches: commit (steps in [`crate::recovery`]), then
    /// publish this receipt. Said once per transfer.
    Commit(Receipt),
    /// It does not: every chunk is missing again. Persist the (now empty)
    /// bitmap, then publish this request for everything.
    Refetch(Resend),
    /// It does not, again: delete the staging file, publish the refusal.
    Refuse(Refusal),
}

/// A call the receiver's state does not allow: a driver bug, not a peer's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiverError {
    /// A persisted bitmap of another length than the manifest's chunk count.
    #[error("bitmap of {bitmap} chunks for a manifest of {chunk_count}")]
    BitmapLength {
        /// The bitmap's length.
        bitmap: u64,
        /// The manifest's chunk count.
        chunk_count: u64,
    },
    /// `written` for an index the manifest does not have.
    #[error("chunk {index} written, but the transfer has {chunk_count} chunks")]
    NoSuchChunk {
        /// The index.
        index: u64,
        /// The manifest's chunk count.
        chunk_count: u64,
    },
    /// `verify` before every chunk is present.
    #[error("verify called with {missing} chunks still missing")]
    Incomplete {
        /// How many are missing.
        missing: u64,
    },
    /// The transfer is already committed or refused.
    #[error("transfer {0} is already over")]
    Over(TransferId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Receiving,
    Committed(Receipt),
    Refused(Refusal),
}

/// The receiving side of one transfer.
#[derive(Clone, Debug)]
pub struct Receiver {
    manifest: Manifest,
    config: ReceiverConfig,
    present: Bitmap,
    state: State,
    unsaved: u64,
    last_activity: Instant,
    last_progress: Instant,
    digest_failures: u32,
}

impl Receiver {
    /// Checks that `manifest` is addressed to `local`, then starts a new
    /// transfer. A refusal is to be published to the manifest's sender.
    pub fn admit(
        manifest: Manifest,
        local: &CloudId,
        config: ReceiverConfig,
        now: Instant,
    ) -> Result<Self, Refusal> {
        if manifest.receiver() != local {
            return Err(Refusal::new(
                manifest.transfer_id().clone(),
                RefusalReason::WrongReceiver,
                format!(
                    "manifest is addressed to {}, this is {local}",
                    manifest.receiver()
                ),
            ));
        }
        Ok(Self::new(manifest, config, now))
    }

    /// A new transfer: no chunk present.
    pub fn new(manifest: Manifest, config: ReceiverConfig, now: Instant) -> Self {
        let present = Bitmap::with_len(manifest.chunk_count());
        Self::with_bitmap(manifest, present, config, now)
    }

    /// A transfer resumed after a restart, from its persisted bitmap.
    pub fn resume(
        manifest: Manifest,
        present: Bitmap,
        config: ReceiverConfig,
        now: Instant,
    ) -> Result<Self, ReceiverError> {
        if present.len() != manifest.chunk_count() {
            return Err(ReceiverError::BitmapLength {
                bitmap: present.len(),
                chunk_count: manifest.chunk_count(),
            });
        }
        Ok(Self::with_bitmap(manifest, present, config, now))
    }

    fn with_bitmap(
        manifest: Manifest,
        present: Bitmap,
        config: ReceiverConfig,
        now: Instant,
    ) -> Self {
        Self {
            manifest,
            config: ReceiverConfig {
                persist_every: config.persist_every.max(1),
                ..config
            },
            present,
            state: State::Receiving,
            unsaved: 0,
            last_activity: now,
            last_progress: now,
            digest_failures: 0,
        }
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The chunks on disk, to persist when [`Written::persist_bitmap`] says.
    pub fn bitmap(&self) -> &Bitmap {
        &self.present
    }

    /// The receipt, once committed.
    pub fn receipt(&self) -> Option<&Receipt> {
        match &self.state {
            State::Committed(r) => Some(r),
            _ => None,
        }
    }

    /// The refusal, once refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match &self.state {
            State::Refused(r) => Some(r),
            _ => None,
        }
    }

    /// Bytes on disk so far.
    pub fn received_bytes(&self) -> u64 {
        let has_last = self
            .manifest
            .chunk_count()
            .checked_sub(1)
            .is_some_and(|last| self.present.contains(last));
        self.manifest.bytes_in(self.present.count(), has_last)
    }

    /// What is missing, as a request (cut at
    /// [`crate::message::resend::MAX_RESEND_RANGES`] runs).
    pub fn missing(&self) -> Resend {
        Resend::from_sorted_runs(
            self.manifest.transfer_id().clone(),
            self.present.missing_ranges(),
        )
    }

    /// The manifest again (the sender restarted, or RabbitMQ redelivered
    /// it): what is missing, the receipt, or the refusal — or a conflict
    /// if it is not the same manifest.
    pub fn on_manifest(&mut self, now: Instant, manifest: &Manifest) -> ManifestAnswer {
        if *manifest != self.manifest {
            return ManifestAnswer::Refusal(conflict(
                manifest,
                self.manifest.object_id().as_str(),
                self.manifest.size(),
                self.manifest.sha256(),
            ));
        }
        match &self.state {
            State::Committed(r) => ManifestAnswer::Receipt(r.clone()),
            State::Refused(r) => ManifestAnswer::Refusal(r.clone()),
            State::Receiving => {
                self.last_activity = now;
                ManifestAnswer::Resend(self.missing())
            }
        }
    }

    /// What to do with `chunk` (see [`ChunkDecision`]). Computes the
    /// payload's SHA-256 unless the chunk is a duplicate.
    pub fn on_chunk(&mut self, now: Instant, chunk: &Chunk<'_>) -> ChunkDecision {
        if chunk.transfer_id != *self.manifest.transfer_id() {
            return ChunkDecision::Foreign {
                transfer_id: chunk.transfer_id.clone(),
            };
        }
        match &self.state {
            State::Committed(r) => return ChunkDecision::AlreadyCommitted(r.clone()),
            State::Refused(r) => return ChunkDecision::AlreadyRefused(r.clone()),
            State::Receiving => {}
        }
        let index = chunk.index;
        let (Some(offset), Some(expected_len)) = (
            self.manifest.chunk_offset(index),
            self.manifest.chunk_len(index),
        ) else {
            return ChunkDecision::OutOfRange {
                index,
                chunk_count: self.manifest.chunk_count(),
            };
        };
        self.last_activity = now;
        if self.present.contains(index) {
            return ChunkDecision::Duplicate { index };
        }
        let resend = || Resend::single(chunk.transfer_id.clone(), index);
        let actual_len = chunk.payload.len() as u64;
        if actual_len != expected_len {
            return ChunkDecision::WrongLength {
                index,
                expected: expected_len,
                actual: actual_len,
                resend: resend(),
            };
        }
        let actual = chunk.actual_sha256();
        if actual != chunk.sha256 {
            return ChunkDecision::Corrupt {
                index,
                expected: chunk.sha256,
                actual,
                resend: resend(),
            };
        }
        self.last_progress = now;
        ChunkDecision::Write {
            index,
            offset,
            len: expected_len,
        }
    }

    /// Chunk `index` is written and fsynced in the staging file. Idempotent.
    pub fn written(&mut self, index: u64) -> Result<Written, ReceiverError> {
        if self.state != State::Receiving {
            return Err(ReceiverError::Over(self.manifest.transfer_id().clone()));
        }
        if index >= self.manifest.chunk_count() {
            return Err(ReceiverError::NoSuchChunk {
                index,
                chunk_count: self.manifest.chunk_count(),
            });
        }
        if self.present.insert(index) {
            self.unsaved += 1;
        }
        let complete = self.present.is_complete();
        let persist_bitmap =
            self.unsaved >= self.config.persist_every || (complete && self.unsaved > 0);
        if persist_bitmap {
            self.unsaved = 0;
        }
        Ok(Written {
            persist_bitmap,
            complete,
        })
    }

    /// What the passing of time calls for, if anything:
    ///
    /// - [`Timeout::Resend`], a request for what is missing, when the
    ///   transfer has been silent for [`ReceiverConfig::resend_after`]
    ///   (since the last chunk, manifest or request). After a restart this
    ///   is how the receiver asks for what it lacks: not at once, because
    ///   the durable queue may still hold much of it, and asking would
    ///   make the sender publish it all again;
    /// - [`Timeout::Abandon`] when no new chunk came for
    ///   [`ReceiverConfig::abandon_after`]: delete the staging file and
    ///   the state, publish the refusal.
    pub fn poll_timeout(&mut self, now: Instant) -> Option<Timeout> {
        if !self.waiting_for_chunks() {
            return None;
        }
        if now >= self.last_progress + self.config.abandon_after {
            let refusal = Refusal::new(
                self.manifest.transfer_id().clone(),
                RefusalReason::Abandoned,
                format!(
                    "no new chunk for {} s; {} of {} chunks received",
                    self.config.abandon_after.as_secs(),
                    self.present.count(),
                    self.present.len()
                ),
            );
            self.state = State::Refused(refusal.clone());
            return Some(Timeout::Abandon(refusal));
        }
        if now >= self.last_activity + self.config.resend_after {
            self.last_activity = now;
            return Some(Timeout::Resend(self.missing()));
        }
        None
    }

    /// When [`poll_timeout`](Self::poll_timeout) will have something to
    /// say, if nothing happens before (for the driver's timer).
    pub fn next_timeout(&self) -> Option<Instant> {
        self.waiting_for_chunks().then(|| {
            (self.last_activity + self.config.resend_after)
                .min(self.last_progress + self.config.abandon_after)
        })
    }

    fn waiting_for_chunks(&self) -> bool {
        self.state == State::Receiving && !self.present.is_complete()
    }

    /// Every chunk is on disk and the transfer is not over: hash the
    /// staging file and call [`verify`](Self::verify).
    pub fn ready_to_commit(&self) -> bool {
        self.state == State::Receiving && self.present.is_complete()
    }

    /// The whole-object check, with the digest of the staging file. On
    /// [`Verdict::Commit`], `now` becomes the receipt's time.
    pub fn verify(
        &mut self,
        actual: Sha256Digest,
        now: SystemTime,
    ) -> Result<Verdict, ReceiverError> {
        if self.state != State::Receiving {
            return Err(ReceiverError::Over(self.manifest.transfer_id().clone()));
        }
        if !self.present.is_complete() {
            return Err(ReceiverError::Incomplete {
                missing: self.present.len() - self.present.count(),
            });
        }
        let expected = self.manifest.sha256();
        if actual == expected {
            let receipt = Receipt {
                transfer_id: self.manifest.transfer_id().clone(),
                object_id: self.manifest.object_id().clone(),
                sha256: actual,
                size: self.manifest.size(),
                committed_at: truncate_to_millis(now),
            };
            self.state = State::Committed(receipt.clone());
            return Ok(Verdict::Commit(receipt));
        }
        self.digest_failures += 1;
        if self.digest_failures >= MAX_DIGEST_FAILURES {
            let refusal = Refusal::new(
                self.manifest.transfer_id().clone(),
                RefusalReason::DigestMismatch,
                format!(
                    "the object's SHA-256 is {actual}, the manifest says {expected}, \
                     after {} complete fetches",
                    self.digest_failures
                ),
            );
            self.state = State::Refused(refusal.clone());
            return Ok(Verdict::Refuse(refusal));
        }
        self.present.clear();
        self.unsaved = 0;
        Ok(Verdict::Refetch(self.missing()))
    }

    /// The driver gives up on the transfer (disk full, I/O error): delete
    /// the staging file and publish the refusal returned. Not after a
    /// commit.
    pub fn fail(
        &mut self,
        reason: RefusalReason,
        detail: impl Into<String>,
    ) -> Result<Refusal, ReceiverError> {
        match &self.state {
            State::Committed(_) => Err(ReceiverError::Over(self.manifest.transfer_id().clone())),
            State::Refused(r) => Ok(r.clone()),
            State::Receiving => {
                let refusal = Refusal::new(self.manifest.transfer_id().clone(), reason, detail);
                self.state = State::Refused(refusal.clone());
                Ok(refusal)
            }
        }
    }
}

#[cfg(test)]
mod tests;
