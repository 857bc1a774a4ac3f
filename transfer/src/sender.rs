//! [`Sender`]: which chunk to publish next, and when the transfer is over.
//!
//! The driver publishes the manifest (persistent, confirmed) and then asks
//! [`Sender::poll_chunk`] what to publish, until it says nothing; it reads
//! each chunk from disk when it is named, publishes it (persistent, with
//! publisher confirms) and forgets the payload. The broker's confirms and
//! nacks come back through [`Sender::on_confirm`] and [`Sender::on_nack`];
//! when the channel or connection is lost, [`Sender::on_connection_lost`]
//! (the fate of every unconfirmed publish is unknown: they are published
//! again, and the receiver takes duplicates as such). The receiver's
//! answers come through [`Sender::on_resend`], [`Sender::on_receipt`] and
//! [`Sender::on_refusal`].
//!
//! Nothing is sent before the receiver's first answer: every manifest,
//! first or repeated, is answered with a [`Resend`] naming what the
//! receiver lacks (everything, for a new transfer), a [`Receipt`] or a
//! [`Refusal`]. That costs one round trip and buys three things: an
//! inconsistent manifest, a conflict or a full disk is refused before
//! gigabytes are queued; a sender restarted after `kill -9` (it cannot
//! know what was confirmed) starts again with [`Sender::new`], re-publishes
//! the manifest and then sends only what is missing; and since manifests
//! and chunks share the receiver's queue, the answer to a manifest is
//! written after every chunk published before it was read, so it is exact.
//!
//! At most `window` chunks are unconfirmed at once. The state is the
//! manifest, two bitmaps (chunks to publish, chunks confirmed), the set of
//! unconfirmed indices (at most `window`) and a rate meter: never a payload.
//!
//! A chunk the receiver asks for while it is unconfirmed is not published
//! again (it is on its way); a publish that is never confirmed nor nacked
//! means a dead channel, which the driver reports with
//! [`Sender::on_connection_lost`].

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::bitmap::Bitmap;
use crate::id::TransferId;
use crate::message::{Manifest, Receipt, Refusal, Resend};
use crate::progress::{Progress, RateMeter};

/// How the sender paces itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderConfig {
    /// At most this many chunks published and not yet confirmed (at least
    /// 1). The driver holds at most this many payloads in memory.
    pub window: usize,
    /// The rate is averaged over this long.
    pub rate_window: Duration,
    /// Publish the manifest again when the receiver has said nothing for
    /// this long while the sender waits for it (for its first answer, or
    /// for the receipt): the manifest may have been dropped as malformed,
    /// or the receiver may have lost its state. Always safe; during a
    /// long backlog it may cost duplicates (the receiver answers both
    /// announcements), so keep it long.
    pub reannounce_after: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            window: 16,
            rate_window: Duration::from_secs(10),
            reannounce_after: Duration::from_secs(120),
        }
    }
}

/// A chunk to publish: read `len` bytes at `offset` of the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkToSend {
    /// The chunk index.
    pub index: u64,
    /// Where it starts in the object.
    pub offset: u64,
    /// How long it is.
    pub len: u64,
}

/// How a transfer ended, for the sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver committed what the manifest describes.
    Delivered(Receipt),
    /// The receiver refused it.
    Refused(Refusal),
    /// The receiver committed something else (another digest or size):
    /// not delivered.
    ReceiptMismatch(Receipt),
}

/// Where the sender is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SenderState {
    /// Manifest published; waiting for the receiver's first answer.
    AwaitingReply,
    /// Chunks to publish or unconfirmed.
    Sending,
    /// Everything asked for is confirmed; waiting for the receipt (or a
    /// request for more).
    AwaitingReceipt,
    /// Over.
    Finished(Outcome),
}

/// A message the sender cannot apply. The driver logs it and goes on: the
/// state did not change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SenderError {
    /// The message is about another transfer.
    #[error("message for transfer {got} delivered to the sender of {expected}")]
    ForeignTransfer {
        /// This sender's transfer.
        expected: TransferId,
        /// The message's.
        got: TransferId,
    },
    /// A resend asks for chunks the manifest does not have.
    #[error("resend asks for chunks up to {end}, but the transfer has {chunk_count}")]
    ResendOutOfRange {
        /// One past the highest index asked for.
        end: u64,
        /// The manifest's chunk count.
        chunk_count: u64,
    },
}

/// The sending side of one transfer.
#[derive(Clone, Debug)]
pub struct Sender {
    manifest: Manifest,
    window: usize,
    answered: bool,
    to_publish: Bitmap,
    /// No index below this is in `to_publish`.
    cursor: u64,
    unconfirmed: BTreeSet<u64>,
    confirmed: Bitmap,
    meter: RateMeter,
    outcome: Option<Outcome>,
    reannounce_after: Duration,
    /// The last time the manifest was published or the receiver heard.
    last_heard: Instant,
}

impl Sender {
    /// The sender of `manifest`, which the driver published at `now` (or
    /// published again, after a restart).
    pub fn new(manifest: Manifest, config: SenderConfig, now: Instant) -> Self {
        let chunks = manifest.chunk_count();
        Self {
            window: config.window.max(1),
            answered: false,
            to_publish: Bitmap::with_len(chunks),
            cursor: 0,
            unconfirmed: BTreeSet::new(),
            confirmed: Bitmap::with_len(chunks),
            meter: RateMeter::new(config.rate_window),
            outcome: None,
            reannounce_after: config.reannounce_after,
            last_heard: now,
            manifest,
        }
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Where the sender is.
    pub fn state(&self) -> SenderState {
        if let Some(outcome) = &self.outcome {
            SenderState::Finished(outcome.clone())
        } else if !self.answered {
            SenderState::AwaitingReply
        } else if self.to_publish.is_empty() && self.unconfirmed.is_empty() {
            SenderState::AwaitingReceipt
        } else {
            SenderState::Sending
        }
    }

    /// How the transfer ended, if it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// How many chunks are published and not confirmed (never more than
    /// the window).
    pub fn unconfirmed(&self) -> usize {
        self.unconfirmed.len()
    }

    /// The next chunk to publish, if the window has room and one is due.
    /// The driver calls it until it returns `None`, and again after each
    /// confirm, nack or answer.
    pub fn poll_chunk(&mut self) -> Option<ChunkToSend> {
        if self.outcome.is_some() || self.unconfirmed.len() >= self.window {
            return None;
        }
        let index = self.to_publish.next_present(self.cursor)?;
        let chunk = ChunkToSend {
            index,
            offset: self.manifest.chunk_offset(index)?,
            len: self.manifest.chunk_len(index)?,
        };
        self.to_publish.remove(index);
        self.cursor = index + 1;
        self.unconfirmed.insert(index);
        Some(chunk)
    }

    fn queue(&mut self, index: u64) {
        if self.to_publish.insert(index) {
            self.cursor = self.cursor.min(index);
        }
    }

    /// The broker confirmed chunk `index`: it is on disk in the queue.
    /// False if it was not unconfirmed (a late or foreign confirm).
    pub fn on_confirm(&mut self, now: Instant, index: u64) -> bool {
        if !self.unconfirmed.remove(&index) {
            return false;
        }
        if self.confirmed.insert(index) {
            self.meter
                .record(now, self.manifest.chunk_len(index).unwrap_or(0));
        }
        true
    }

    /// The broker refused chunk `index`: publish it again.
    pub fn on_nack(&mut self, index: u64) -> bool {
        if !self.unconfirmed.remove(&index) || self.outcome.is_some() {
            return false;
        }
        self.queue(index);
        true
    }

    /// The channel or connection is gone: every unconfirmed chunk is
    /// published again. Returns how many.
    pub fn on_connection_lost(&mut self) -> usize {
        let lost = std::mem::take(&mut self.unconfirmed);
        if self.outcome.is_none() {
            for &index in &lost {
                self.queue(index);
            }
        }
        lost.len()
    }

    fn check_transfer(&self, got: &TransferId) -> Result<(), SenderError> {
        if got == self.manifest.transfer_id() {
            Ok(())
        } else {
            Err(SenderError::ForeignTransfer {
                expected: self.manifest.transfer_id().clone(),
                got: got.clone(),
            })
        }
    }

    /// The receiver lacks these chunks: publish them (unless already
    /// unconfirmed, hence on their way). A chunk confirmed earlier stops
    /// counting as done. Returns how many chunks were queued. Ignored once
    /// the transfer is over.
    pub fn on_resend(&mut self, now: Instant, resend: &Resend) -> Result<u64, SenderError> {
        self.check_transfer(resend.transfer_id())?;
        let chunk_count = self.manifest.chunk_count();
        if resend.end() > chunk_count {
            return Err(SenderError::ResendOutOfRange {
                end: resend.end(),
                chunk_count,
            });
        }
        if self.outcome.is_some() {
            return Ok(0);
        }
        self.answered = true;
        self.last_heard = now;
        self.meter.start(now);
        let mut queued = 0;
        for range in resend.missing() {
            for index in range.start..range.end {
                if self.unconfirmed.contains(&index) || self.to_publish.contains(index) {
                    continue;
                }
                self.confirmed.remove(index);
                self.queue(index);
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Whether to publish the manifest again now (see
    /// [`SenderConfig::reannounce_after`]); if so, the timer starts again.
    pub fn poll_reannounce(&mut self, now: Instant) -> bool {
        match self.next_reannounce() {
            Some(due) if now >= due => {
                self.last_heard = now;
                true
            }
            _ => false,
        }
    }

    /// When [`poll_reannounce`](Self::poll_reannounce) will say yes, if
    /// nothing is heard before (for the driver's timer).
    pub fn next_reannounce(&self) -> Option<Instant> {
        matches!(
            self.state(),
            SenderState::AwaitingReply | SenderState::AwaitingReceipt
        )
        .then(|| self.last_heard + self.reannounce_after)
    }

    fn finish(&mut self, outcome: Outcome) -> &Outcome {
        self.unconfirmed.clear();
        self.to_publish.clear();
        self.outcome.get_or_insert(outcome)
    }

    /// The receiver committed. Delivered if the receipt matches the
    /// manifest (digest and size); a receipt after the end changes nothing.
    pub fn on_receipt(&mut self, receipt: &Receipt) -> Result<&Outcome, SenderError> {
        self.check_transfer(&receipt.transfer_id)?;
        let outcome = if receipt.matches(&self.manifest) {
            if self.outcome.is_none() {
                self.confirmed.fill();
            }
            Outcome::Delivered(receipt.clone())
        } else {
            Outcome::ReceiptMismatch(receipt.clone())
        };
        Ok(self.finish(outcome))
    }

    /// The receiver refused. A refusal after the end changes nothing (a
    /// stray chunk can draw one after the receipt).
    pub fn on_refusal(&mut self, refusal: &Refusal) -> Result<&Outcome, SenderError> {
        self.check_transfer(&refusal.transfer_id)?;
        Ok(self.finish(Outcome::Refused(refusal.clone())))
    }

    /// Bytes confirmed, total, rate and ETA.
    pub fn progress(&mut self, now: Instant) -> Progress {
        let has_last = self
            .manifest
            .chunk_count()
            .checked_sub(1)
            .is_some_and(|last| self.confirmed.contains(last));
        let done = self.manifest.bytes_in(self.confirmed.count(), has_last);
        Progress::new(done, self.manifest.size(), self.meter.rate(now))
    }
}

#[cfg(test)]
mod tests;
