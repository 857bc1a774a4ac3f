use std::time::{Duration, Instant, UNIX_EPOCH};

use super::*;
use crate::message::manifest::tests::{KIB, MIB, spec};
use crate::message::{Manifest, ManifestSpec};
use crate::range::ChunkRange;

/// A manifest whose digest is the real one of `object`.
fn manifest_of(object: &[u8], chunk_size: u64) -> Manifest {
    Manifest::new(ManifestSpec {
        sha256: Sha256Digest::of(object),
        ..spec(object.len() as u64, chunk_size)
    })
    .expect("valid")
}

fn object(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn chunk<'a>(m: &Manifest, object: &'a [u8], index: u64) -> Chunk<'a> {
    let start = m.chunk_offset(index).expect("exists") as usize;
    let end = start + m.chunk_len(index).expect("exists") as usize;
    Chunk::new(m.transfer_id().clone(), index, &object[start..end])
}

fn runs(r: &Resend) -> Vec<(u64, u64)> {
    r.missing().iter().map(|&r| r.into()).collect()
}

fn config() -> ReceiverConfig {
    ReceiverConfig::default()
}

/// Delivers chunk `index` and writes it, as a driver would.
fn deliver(rx: &mut Receiver, now: Instant, c: &Chunk<'_>) -> Written {
    match rx.on_chunk(now, c) {
        ChunkDecision::Write { index, .. } => rx.written(index).expect("writable"),
        other => panic!("expected a write, got {other:?}"),
    }
}

#[test]
fn a_fresh_transfer_from_manifest_to_receipt() {
    let obj = object(150 * KIB as usize);
    let m = manifest_of(&obj, 64 * KIB);
    let now = Instant::now();
    let mut rx = Receiver::new(m.clone(), config(), now);
    let ManifestAnswer::Resend(all) = rx.on_manifest(now, &m) else {
        panic!("a new transfer asks for everything");
    };
    assert_eq!(runs(&all), vec![(0, 3)]);

    let c2 = chunk(&m, &obj, 2);
    assert_eq!(
        rx.on_chunk(now, &c2),
        ChunkDecision::Write {
            index: 2,
            offset: 128 * KIB,
            len: 22 * KIB
        }
    );
    assert_eq!(
        rx.written(2),
        Ok(Written {
            persist_bitmap: true,
            complete: false
        })
    );
    assert_eq!(rx.received_bytes(), 22 * KIB);
    deliver(&mut rx, now, &chunk(&m, &obj, 0));
    assert!(!rx.ready_to_commit());
    let w = deliver(&mut rx, now, &chunk(&m, &obj, 1));
    assert!(w.complete && w.persist_bitmap);
    assert!(rx.ready_to_commit());
    assert_eq!(rx.received_bytes(), m.size());

    let at = UNIX_EPOCH + Duration::from_nanos(1_767_225_600_123_456_789);
    let Ok(Verdict::Commit(receipt)) = rx.verify(Sha256Digest::of(&obj), at) else {
        panic!("the digest matches");
    };
    assert!(receipt.matches(&m));
    assert_eq!(
        receipt.committed_at,
        UNIX_EPOCH + Duration::from_millis(1_767_225_600_123)
    );
    assert_eq!(rx.receipt(), Some(&receipt));
}

#[test]
fn exactly_once_commit_under_replays() {
    let obj = object(3 * 64 * KIB as usize);
    let m = manifest_of(&obj, 64 * KIB);
    let now = Instant::now();
    let mut rx = Receiver::new(m.clone(), config(), now);
    for i in 0..3 {
        deliver(&mut rx, now, &chunk(&m, &obj, i));
    }
    let at = UNIX_EPOCH;
    let Ok(Verdict::Commit(receipt)) = rx.verify(Sha256Digest::of(&obj), at) else {
        panic!("commit");
    };

    // RabbitMQ redelivers everything, twice: the same receipt, never a
    // second commit.
    for _ in 0..2 {
        assert_eq!(
            rx.on_manifest(now, &m),
            ManifestAnswer::Receipt(receipt.clone())
        );
        for i in 0..3 {
            assert_eq!(
                rx.on_chunk(now, &chunk(&m, &obj, i)),
                ChunkDecision::AlreadyCommitted(receipt.clone())
            );
        }
    }
    assert!(!rx.ready_to_commit());
    assert_eq!(
        rx.verify(Sha256Digest::of(&obj), at),
        Err(ReceiverError::Over(m.transfer_id().clone()))
    );
    assert!(rx.written(0).is_err());
    assert!(rx.fail(RefusalReason::NoSpace, "late").is_err());
    assert_eq!(rx.receipt(), Some(&receipt));
    assert_eq!(rx.poll_timeout(now + Duration::from_secs(48 * 3600)), None);

    // The driver kept only the record: same answers.
    assert_eq!(
        ManifestAnswer::from_record(&receipt, &m),
        ManifestAnswer::Receipt(receipt.clone())
    );
}

#[test]
fn duplicates_and_redeliveries_are_idempotent() {
    let obj = object(4 * 64 * KIB as usize);
    let m = manifest_of(&obj, 64 * KIB);
    let now = Instant::now();
    let mut rx = Receiver::new(m.clone(), config(), now);
    deliver(&mut rx, now, &chunk(&m, &obj, 1));
    assert_eq!(
        rx.on_chunk(now, &chunk(&m, &obj, 1)),
        ChunkDecision::Duplicate { index: 1 }
    );
    // Two copies in flight at once (redelivery while the first is being
    // written): both are written, the second `written` changes nothing.
    let c = chunk(&m, &obj, 2);
    assert!(matches!(rx.on_chunk(now, &c), ChunkDecision::Write { .. }));
    assert!(matches!(rx.on_chunk(now, &c), ChunkDecision::Write { .. }));
    assert!(rx.written(2).expect("ok").persist_bitmap);
    assert!(!rx.written(2).expect("ok").persist_bitmap);
    assert_eq!(rx.bitmap().count(), 2);
    assert_eq!(runs(&rx.missing()), vec![(0, 1), (3, 4)]);
}

#[test]
fn resume_after_a_restart_asks_only_for_what_is_missing() {
    let obj = object(10 * 64 * KIB as usize);
    let m = manifest_of(&obj, 64 * KIB);
    let t0 = Instant::now();
    let mut before = Receiver::new(m.clone(), config(), t0);
    for i in [0, 1, 2, 5, 9] {
        deliver(&mut before, t0, &chunk(&m, &obj, i));
    }
    // kill -9: what survives is the persisted bitmap.
    let persisted = before.bitmap().encode();
    drop(before);

    let t1 = t0 + Duration::from_secs(100);
    let bitmap = Bitmap::decode(&persisted).expect("round-trips");
    let mut rx = Receiver::resume(m.clone(), bitmap, config(), t1).expect("same length");
    assert_eq!(runs(&rx.missing()), vec![(3, 5), (6, 9)]);
    // Not at once: the queue may still hold the rest.
    assert_eq!(rx.poll_timeout(t1), None);
    assert_eq!(rx.next_timeout(), Some(t1 + config().resend_after));
    let Some(Timeout::Resend(asked)) = rx.poll_timeout(t1 + config().resend_after) else {
        panic!("silent long enough");
    };
    assert_eq!(runs(&asked), vec![(3, 5), (6, 9)]);
    // The sender restarted too and announces again: the same answer.
    assert_eq!(
        runs(&match rx.on_manifest(t1, &m) {
            ManifestAnswer::Resend(r) => r,
            other => panic!("{other:?}"),
        }),
        vec![(3, 5), (6, 9)]
    );
    assert_eq!(
        rx.on_chunk(t1, &chunk(&m, &obj, 0)),
        ChunkDecision::Duplicate { index: 0 }
    );
    for i in [3, 4, 6, 7, 8] {
        deliver(&mut rx, t1, &chunk(&m, &obj, i));
    }
    assert!(rx.ready_to_commit());
    assert_eq!(rx.next_timeout(), None);
    assert!(matches!(
        rx.verify(Sha256Digest::of(&obj), UNIX_EPOCH),
        Ok(Verdict::Commit(_))
    ));

    let wrong = Bitmap::new(9).expect("small");
    assert_eq!(
        Receiver::resume(m, wrong, config(), t1).err(),
        Some(ReceiverError::BitmapLength {
            bitmap: 9,
            chunk_count: 10
        })
    );
}

#[test]
fn silence_triggers_a_request_and_activity_postpones_it() {
    let obj = object(4 * 64 * KIB as usize);
    let m = manifest_of(&obj, 64 * KIB);
    let t0 = Instant::now();
    let after = config().resend_after;
    let mut rx = Receiver::new(m.clone(), config(), t0);
    assert_eq!(rx.poll_timeout(t0 + after / 2), None);
    deliver(&mut rx, t0 + after / 2, &chunk(&m, &obj, 0));
    assert_eq!(rx.poll_timeout(t0 + after), None);
    let Some(Timeout::Resend(r)) = rx.poll_timeout(t0 + after / 2 + after) else {
        panic!("silent");
    };
    assert_eq!(runs(&r), vec![(1, 4)]);
    // Asked: the next request waits another period.
    assert_eq!(rx.poll_timeout(t0 + after / 2 + after), None);
    assert_eq!(rx.next_timeout(), Some(t0 + after / 2 + 2 * after));
}

#[test]
fn a_transfer_without_new_chunks_for_too_long_is_abandoned() {
    let obj = object(4 * 64 * KIB as usize);
    let m = manifest_of(&obj, 64 * KIB);
    let t0 = Instant::now();
    let cfg = ReceiverConfig {
        resend_after: Duration::from_secs(10),
        abandon_after: Duration::from_secs(60),
        ..config()
    };
    let mut rx = Receiver::new(m.clone(), cfg, t0);
    deliver(&mut rx, t0 + Duration::from_secs(30), &chunk(&m, &obj, 0));
    // Duplicates and requests are not progress.
    let mut t = t0 + Duration::from_secs(30);
    let mut requests = 0;
    while t < t0 + Duration::from_secs(89) {
        t += Duration::from_secs(1);
        assert_eq!(
            rx.on_chunk(t, &chunk(&m, &obj, 0)),
            ChunkDecision::Duplicate { index: 0 }
        );
        match rx.poll_timeout(t) {
            Some(Timeout::Resend(_)) => requests += 1,
            None => {}
            Some(other) => panic!("too early: {other:?}"),
        }
    }
    assert_eq!(requests, 0, "duplicates are activity: no request needed");
    assert_eq!(rx.next_timeout(), Some(t0 + Duration::from_secs(90)));
    let Some(Timeout::Abandon(refusal)) = rx.poll_timeout(t0 + Duration::from_secs(90)) else {
        panic!("abandoned");
    };
    assert_eq!(refusal.reason, RefusalReason::Abandoned);
    assert!(
        refusal.detail.contains("1 of 4 chunks"),
        "{}",
        refusal.detail
    );
    assert_eq!(rx.refusal(), Some(&refusal));
    assert_eq!(rx.next_timeout(), None);
}

#[test]
fn a_flipped_byte_is_detected_and_fetched_again() {
    let obj = object(2 * 64 * KIB as usize);
    let m = manifest_of(&obj, 64 * KIB);
    let now = Instant::now();
    let mut rx = Receiver::new(m.clone(), config(), now);

    let good = chunk(&m, &obj, 1);
    let mut frame = good.encode().expect("encodes");
    let last = frame.len() - 1;
    frame[last] ^= 0x20;
    let bad = Chunk::decode(&frame).expect("the frame is fine");
    let ChunkDecision::Corrupt {
        index,
        expected,
        actual,
        resend,
    } = rx.on_chunk(now, &bad)
    else {
        panic!("corruption not detected");
    };
    assert_eq!(index, 1);
    assert_eq!(expected, good.sha256);
    assert_ne!(actual, expected);
    assert_eq!(runs(&resend), vec![(1, 2)]);
    assert!(!rx.bitmap().contains(1));
    // The sender publishes it again.
    deliver(&mut rx, now, &good);
    assert!(rx.bitmap().contains(1));
}

#[test]
fn wrong_lengths_foreign_and_out_of_range_chunks() {
    let obj = object(150 * KIB as usize);
    let m = manifest_of(&obj, 64 * KIB);
    let now = Instant::now();
    let mut rx = Receiver::new(m.clone(), config(), now);
    let tid = m.transfer_id().clone();

    // A full-size payload where the short last chunk belongs.
    let long = vec![0u8; 64 * KIB as usize];
    assert!(matches!(
        rx.on_chunk(now, &Chunk::new(tid.clone(), 2, &long)),
        ChunkDecision::WrongLength {
            index: 2,
            expected,
            actual,
            ..
        } if expected == 22 * KIB && actual == 64 * KIB
    ));
    assert!(matches!(
        rx.on_chunk(now, &Chunk::new(tid.clone(), 0, &long[..10])),
        ChunkDecision::WrongLength { index: 0, .. }
    ));
    assert_eq!(
        rx.on_chunk(now, &Chunk::new(tid, 3, &long)),
        ChunkDecision::OutOfRange {
            index: 3,
            chunk_count: 3
        }
    );
    let other = TransferId::new("other").expect("valid");
    assert_eq!(
        rx.on_chunk(now, &Chunk::new(other.clone(), 0, &long)),
        ChunkDecision::Foreign { transfer_id: other }
    );
    assert_eq!(
        rx.written(3),
        Err(ReceiverError::NoSuchChunk {
            index: 3,
            chunk_count: 3
        })
    );
    assert!(rx.bitmap().is_empty());
}

#[test]
fn another_manifest_under_the_same_id_is_a_conflict() {
    let obj = object(2 * 64 * KIB as usize);
    let m = manifest_of(&obj, 64 * KIB);
    let now = Instant::now();
    let mut rx = Receiver::new(m.clone(), config(), now);
    let other = manifest_of(&object(3 * 64 * KIB as usize), 64 * KIB);
    let ManifestAnswer::Refusal(r) = rx.on_manifest(now, &other) else {
        panic!("conflict expected");
    };
    assert_eq!(r.reason, RefusalReason::Conflict);
    assert!(r.detail.contains("131072 bytes"), "{}", r.detail);
    // The transfer in progress is untouched.
    assert!(matches!(rx.on_manifest(now, &m), ManifestAnswer::Resend(_)));

    let record = Receipt {
        transfer_id: m.transfer_id().clone(),
        object_id: m.object_id().clone(),
        sha256: m.sha256(),
        size: m.size(),
        committed_at: UNIX_EPOCH,
    };
    assert!(matches!(
        ManifestAnswer::from_record(&record, &other),
        ManifestAnswer::Refusal(Refusal {
            reason: RefusalReason::Conflict,
            ..
        })
    ));
}

#[test]
fn a_manifest_for_another_cloud_is_refused() {
    let m = manifest_of(&object(10), 64 * KIB);
    let here = CloudId::new("cloud-c").expect("valid");
    let r = Receiver::admit(m.clone(), &here, config(), Instant::now()).expect_err("not ours");
    assert_eq!(r.reason, RefusalReason::WrongReceiver);
    assert_eq!(
        r.detail,
        "manifest is addressed to cloud-b, this is cloud-c"
    );
    assert!(Receiver::admit(m.clone(), m.receiver(), config(), Instant::now()).is_ok());
}

#[test]
fn a_whole_digest_mismatch_refetches_once_then_refuses() {
    let obj = object(3 * 64 * KIB as usize);
    let m = manifest_of(&obj, 64 * KIB);
    let now = Instant::now();
    let mut rx = Receiver::new(m.clone(), config(), now);
    let fill = |rx: &mut Receiver| {
        for i in 0..3 {
            deliver(rx, now, &chunk(&m, &obj, i));
        }
    };
    fill(&mut rx);
    let bad = Sha256Digest::of(b"not the object");
    let Ok(Verdict::Refetch(all)) = rx.verify(bad, UNIX_EPOCH) else {
        panic!("refetch expected");
    };
    assert_eq!(runs(&all), vec![(0, 3)]);
    assert!(rx.bitmap().is_empty());
    assert!(!rx.ready_to_commit());
    assert!(matches!(
        rx.verify(bad, UNIX_EPOCH),
        Err(ReceiverError::Incomplete { missing: 3 })
    ));
    fill(&mut rx);
    let Ok(Verdict::Refuse(refusal)) = rx.verify(bad, UNIX_EPOCH) else {
        panic!("refusal expected");
    };
    assert_eq!(refusal.reason, RefusalReason::DigestMismatch);
    assert_eq!(
        rx.on_chunk(now, &chunk(&m, &obj, 0)),
        ChunkDecision::AlreadyRefused(refusal.clone())
    );
    assert_eq!(rx.on_manifest(now, &m), ManifestAnswer::Refusal(refusal));
}

#[test]
fn a_full_disk_fails_cleanly() {
    let obj = object(3 * 64 * KIB as usize);
    let m = manifest_of(&obj, 64 * KIB);
    let now = Instant::now();
    let mut rx = Receiver::new(m.clone(), config(), now);
    deliver(&mut rx, now, &chunk(&m, &obj, 0));
    assert!(matches!(
        rx.on_chunk(now, &chunk(&m, &obj, 1)),
        ChunkDecision::Write { .. }
    ));
    // The write fails with ENOSPC.
    let refusal = rx
        .fail(RefusalReason::NoSpace, "no space left on device")
        .expect("not committed");
    assert_eq!(refusal.reason, RefusalReason::NoSpace);
    assert!(rx.written(1).is_err());
    assert!(!rx.ready_to_commit());
    assert_eq!(rx.next_timeout(), None);
    assert_eq!(
        rx.fail(RefusalReason::StorageFailure, "again"),
        Ok(refusal.clone())
    );
    assert_eq!(
        rx.on_chunk(now, &chunk(&m, &obj, 2)),
        ChunkDecision::AlreadyRefused(refusal)
    );
}

#[test]
fn batched_bitmap_persistence() {
    let obj = object(5 * 64 * KIB as usize);
    let m = manifest_of(&obj, 64 * KIB);
    let now = Instant::now();
    let cfg = ReceiverConfig {
        persist_every: 2,
        ..config()
    };
    let mut rx = Receiver::new(m.clone(), cfg, now);
    let persisted: Vec<bool> = (0..5)
        .map(|i| deliver(&mut rx, now, &chunk(&m, &obj, i)).persist_bitmap)
        .collect();
    // Every second chunk, and always the last.
    assert_eq!(persisted, vec![false, true, false, true, true]);
}

#[test]
fn an_empty_object_is_complete_at_once() {
    let m = manifest_of(&[], 64 * KIB);
    let now = Instant::now();
    let mut rx = Receiver::new(m.clone(), config(), now);
    assert!(rx.ready_to_commit());
    let ManifestAnswer::Resend(r) = rx.on_manifest(now, &m) else {
        panic!("resend expected");
    };
    assert!(r.missing().is_empty());
    assert!(matches!(
        rx.verify(Sha256Digest::of(&[]), UNIX_EPOCH),
        Ok(Verdict::Commit(_))
    ));
}

#[test]
fn a_4_gib_transfer_keeps_a_512_byte_bitmap() {
    let m = Manifest::new(spec(4 << 30, MIB)).expect("valid");
    let mut rx = Receiver::new(m.clone(), config(), Instant::now());
    assert_eq!(rx.bitmap().encode().len(), 21 + 512);
    assert_eq!(runs(&rx.missing()), vec![(0, 4096)]);
    // Every other chunk: still 512 bytes.
    for i in (0..4096).step_by(2) {
        rx.written(i).expect("exists");
    }
    assert_eq!(rx.bitmap().encode().len(), 21 + 512);
    assert_eq!(rx.missing().missing().len(), 2048);
    assert_eq!(rx.missing().missing()[0], ChunkRange::new(1, 2));
}

#[test]
fn a_fragmented_request_is_cut_at_its_limit() {
    use crate::message::resend::MAX_RESEND_RANGES;
    // 1 GiB in 64 KiB chunks, every other one present: 8192 runs missing.
    let m = Manifest::new(spec(1 << 30, 64 * KIB)).expect("valid");
    let mut rx = Receiver::new(m, config(), Instant::now());
    for i in (0..16384).step_by(2) {
        rx.written(i).expect("exists");
    }
    let r = rx.missing();
    assert_eq!(r.missing().len(), MAX_RESEND_RANGES);
    assert_eq!(r.end(), 2 * MAX_RESEND_RANGES as u64);
    // What a driver publishes must decode on the other side.
    let bytes = crate::message::Message::from(r.clone())
        .encode()
        .expect("encodes");
    assert!(bytes.len() < crate::message::MAX_CONTROL_LEN);
    assert_eq!(
        crate::message::Message::decode(&bytes).expect("decodes"),
        crate::message::Message::Resend(r)
    );
}
