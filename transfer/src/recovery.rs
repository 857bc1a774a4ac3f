//! The receiver's commit steps, and what a restarted receiver does with
//! what it finds on disk ([`plan`]).
//!
//! Per transfer the receiver's driver keeps, on the filesystem of the
//! object store (so that a rename moves the object):
//!
//! - the **staging file**, `<transfer_id>.part`, created at the manifest
//!   (preallocated, so that a full disk shows before any chunk: refuse
//!   with `no_space` then), written at chunk offsets, fsynced before every
//!   [`Receiver::written`](crate::receiver::Receiver::written);
//! - the **in-progress state**: the manifest (its JSON message) and the
//!   [`Bitmap`](crate::bitmap::Bitmap), each replaced atomically (write a
//!   temporary file, fsync, rename, fsync the directory);
//! - the **receipt record**, `<transfer_id>.receipt` (the receipt's JSON
//!   message), written atomically. It is the commit's durable mark: a
//!   transfer with a record is committed, forever, and every later
//!   manifest or chunk of it is answered with this receipt
//!   ([`ManifestAnswer::from_record`](crate::receiver::ManifestAnswer::from_record)).
//!
//! A new transfer: create and fsync the staging file, then write the
//! in-progress state, then publish the answer, then ack the manifest.
//!
//! Commit, after [`Verdict::Commit`](crate::receiver::Verdict::Commit),
//! before the next delivery of that transfer is handled:
//!
//! 1. write the receipt record (atomically);
//! 2. rename the staging file to the object's final name; fsync the
//!    directory — the object is visible, once;
//! 3. delete the in-progress state;
//! 4. publish the receipt (persistent, confirmed), and only then ack the
//!    delivery that completed the transfer — if the publish fails, the
//!    redelivered chunk draws
//!    [`ChunkDecision::AlreadyCommitted`](crate::receiver::ChunkDecision::AlreadyCommitted)
//!    and the receipt is published again.
//!
//! The record comes first so that the rename is done at most once: after
//! a crash, a record with a staging file still there means "rename it";
//! a record without one means "renamed". Without a record, no rename can
//! have happened, and the transfer resumes (and is verified again).
//! Recovery runs before the consumer starts, so no delivery sees a
//! half-done commit.

/// What a restarted receiver finds for one transfer id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnDisk {
    /// The receipt record exists.
    pub receipt_record: bool,
    /// The manifest and bitmap exist (a bitmap that does not decode counts
    /// as present but empty: resume with a new one, never trust it).
    pub in_progress: bool,
    /// The staging file exists.
    pub staging: bool,
}

/// What to do with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing on disk: the transfer is unknown.
    Unknown,
    /// Committed and tidy: answer with the record.
    Committed,
    /// The crash came between the record and the rename: rename the
    /// staging file now (it was verified before the record was written),
    /// fsync the directory, delete the in-progress state.
    FinishCommit,
    /// Renamed, but the in-progress state is left: delete it.
    CleanUp,
    /// In progress: [`Receiver::resume`](crate::receiver::Receiver::resume)
    /// from the bitmap.
    Resume,
    /// The staging file is gone but the state is not (it was deleted by
    /// hand, or the filesystem lost it): create a new staging file and
    /// resume with an empty bitmap — the bitmap must not claim chunks that
    /// are not there.
    StartOver,
    /// A staging file without state or record: the crash came before the
    /// state was written (the manifest was not acked: it comes again), or
    /// while a refused transfer was being cleaned up. Delete it.
    DiscardStaging,
}

/// The decision table.
pub fn plan(found: OnDisk) -> Recovery {
    match (found.receipt_record, found.staging, found.in_progress) {
        (true, true, _) => Recovery::FinishCommit,
        (true, false, true) => Recovery::CleanUp,
        (true, false, false) => Recovery::Committed,
        (false, true, true) => Recovery::Resume,
        (false, false, true) => Recovery::StartOver,
        (false, true, false) => Recovery::DiscardStaging,
        (false, false, false) => Recovery::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_disk(receipt_record: bool, in_progress: bool, staging: bool) -> OnDisk {
        OnDisk {
            receipt_record,
            in_progress,
            staging,
        }
    }

    #[test]
    fn every_crash_point_of_a_commit_has_one_answer() {
        // Walk the commit steps; a crash after each leaves this on disk.
        let steps = [
            // all chunks written, verified, nothing else yet
            (on_disk(false, true, true), Recovery::Resume),
            // 1. record written
            (on_disk(true, true, true), Recovery::FinishCommit),
            // 2. renamed
            (on_disk(true, true, false), Recovery::CleanUp),
            // 3. state deleted
            (on_disk(true, false, false), Recovery::Committed),
        ];
        for (found, expected) in steps {
            assert_eq!(plan(found), expected, "{found:?}");
        }
    }

    #[test]
    fn a_rename_is_only_ever_asked_for_with_a_record() {
        for bits in 0..8u8 {
            let found = on_disk(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
            if plan(found) == Recovery::FinishCommit {
                assert!(found.receipt_record && found.staging);
            }
            if !found.receipt_record {
                assert!(!matches!(
                    plan(found),
                    Recovery::FinishCommit | Recovery::Committed | Recovery::CleanUp
                ));
            }
        }
        assert_eq!(plan(on_disk(false, false, true)), Recovery::DiscardStaging);
        assert_eq!(plan(on_disk(false, true, false)), Recovery::StartOver);
        assert_eq!(plan(on_disk(false, false, false)), Recovery::Unknown);
    }
}
