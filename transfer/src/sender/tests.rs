use std::time::{Duration, Instant, UNIX_EPOCH};

use super::*;
use crate::digest::Sha256Digest;
use crate::message::RefusalReason;
use crate::message::manifest::tests::{KIB, MIB, manifest};
use crate::range::ChunkRange;

fn resend(m: &Manifest, runs: &[(u64, u64)]) -> Resend {
    Resend::new(
        m.transfer_id().clone(),
        runs.iter().map(|&(s, e)| ChunkRange::new(s, e)).collect(),
    )
    .expect("valid runs")
}

fn receipt(m: &Manifest) -> Receipt {
    Receipt {
        transfer_id: m.transfer_id().clone(),
        object_id: m.object_id().clone(),
        sha256: m.sha256(),
        size: m.size(),
        committed_at: UNIX_EPOCH,
    }
}

fn drain(s: &mut Sender) -> Vec<u64> {
    std::iter::from_fn(|| s.poll_chunk())
        .map(|c| c.index)
        .collect()
}

fn config(window: usize) -> SenderConfig {
    SenderConfig {
        window,
        ..SenderConfig::default()
    }
}

#[test]
fn nothing_is_sent_before_the_receiver_answers() {
    let m = manifest(10 * 64 * KIB, 64 * KIB);
    let mut s = Sender::new(m.clone(), config(4), Instant::now());
    assert_eq!(s.state(), SenderState::AwaitingReply);
    assert_eq!(s.poll_chunk(), None);

    let now = Instant::now();
    assert_eq!(s.on_resend(now, &resend(&m, &[(0, 10)])), Ok(10));
    assert_eq!(s.state(), SenderState::Sending);
    let first = s.poll_chunk().expect("a chunk");
    assert_eq!(
        first,
        ChunkToSend {
            index: 0,
            offset: 0,
            len: 64 * KIB
        }
    );
}

#[test]
fn the_window_is_never_exceeded() {
    let m = manifest(1000 * 64 * KIB + 1, 64 * KIB);
    let window = 7;
    let t0 = Instant::now();
    let mut s = Sender::new(m.clone(), config(window), t0);
    s.on_resend(t0, &resend(&m, &[(0, m.chunk_count())]))
        .expect("valid");

    // A deterministic mix of confirms, nacks and lost connections.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut in_flight: Vec<u64> = Vec::new();
    let mut steps = 0u32;
    while s.state() != SenderState::AwaitingReceipt {
        steps += 1;
        assert!(steps < 100_000, "no progress");
        in_flight.extend(drain(&mut s));
        assert!(s.unconfirmed() <= window);
        assert_eq!(s.unconfirmed(), in_flight.len());
        let now = t0 + Duration::from_millis(u64::from(steps));
        match rand() % 20 {
            0 => {
                s.on_connection_lost();
                in_flight.clear();
            }
            1..=3 if !in_flight.is_empty() => {
                let i = in_flight.remove(rand() as usize % in_flight.len());
                assert!(s.on_nack(i));
            }
            _ if !in_flight.is_empty() => {
                let i = in_flight.remove(rand() as usize % in_flight.len());
                assert!(s.on_confirm(now, i));
            }
            _ => {}
        }
    }
    assert_eq!(s.progress(t0).bytes_done, m.size());
}

#[test]
fn a_resend_after_a_restart_sends_only_what_is_missing() {
    let m = manifest(100 * MIB, MIB);
    // The sender restarted: it knows nothing but the manifest.
    let mut s = Sender::new(m.clone(), config(64), Instant::now());
    s.on_resend(Instant::now(), &resend(&m, &[(3, 5), (40, 42), (99, 100)]))
        .expect("valid");
    assert_eq!(drain(&mut s), vec![3, 4, 40, 41, 99]);
}

#[test]
fn nacks_and_lost_connections_publish_again() {
    let m = manifest(10 * MIB, MIB);
    let mut s = Sender::new(m.clone(), config(3), Instant::now());
    let now = Instant::now();
    s.on_resend(now, &resend(&m, &[(0, 10)])).expect("valid");
    assert_eq!(drain(&mut s), vec![0, 1, 2]);
    assert!(s.on_nack(1));
    assert!(s.on_confirm(now, 0));
    assert!(!s.on_confirm(now, 0), "a second confirm is ignored");
    assert_eq!(drain(&mut s), vec![1, 3]);
    assert_eq!(s.on_connection_lost(), 3);
    assert_eq!(drain(&mut s), vec![1, 2, 3]);
    assert!(!s.on_confirm(now, 7), "never published");
}

#[test]
fn a_resend_during_sending_skips_what_is_on_its_way() {
    let m = manifest(10 * MIB, MIB);
    let mut s = Sender::new(m.clone(), config(2), Instant::now());
    let now = Instant::now();
    s.on_resend(now, &resend(&m, &[(0, 10)])).expect("valid");
    assert_eq!(drain(&mut s), vec![0, 1]);
    s.on_confirm(now, 0);
    assert_eq!(s.progress(now).bytes_done, MIB);
    // The receiver lost chunk 0 (corrupt), asks for 0..3; 1 is unconfirmed,
    // 2 already queued: only 0 is queued again, and stops counting as done.
    assert_eq!(s.on_resend(now, &resend(&m, &[(0, 3)])), Ok(1));
    assert_eq!(s.progress(now).bytes_done, 0);
    assert_eq!(drain(&mut s), vec![0]);
}

#[test]
fn bad_resends_change_nothing() {
    let m = manifest(10 * MIB, MIB);
    let mut s = Sender::new(m.clone(), config(2), Instant::now());
    let now = Instant::now();
    assert_eq!(
        s.on_resend(now, &resend(&m, &[(5, 11)])),
        Err(SenderError::ResendOutOfRange {
            end: 11,
            chunk_count: 10
        })
    );
    let other = Resend::new(TransferId::new("other").expect("valid"), vec![]).expect("valid");
    assert!(matches!(
        s.on_resend(now, &other),
        Err(SenderError::ForeignTransfer { .. })
    ));
    assert_eq!(s.state(), SenderState::AwaitingReply);
}

#[test]
fn an_empty_resend_means_wait_for_the_receipt() {
    let m = manifest(3 * MIB, MIB);
    let mut s = Sender::new(m.clone(), config(2), Instant::now());
    s.on_resend(Instant::now(), &resend(&m, &[]))
        .expect("valid");
    assert_eq!(s.state(), SenderState::AwaitingReceipt);
    assert_eq!(s.poll_chunk(), None);
}

#[test]
fn receipts_and_refusals_end_the_transfer_once() {
    let m = manifest(3 * MIB, MIB);
    let now = Instant::now();

    let mut s = Sender::new(m.clone(), config(2), Instant::now());
    s.on_resend(now, &resend(&m, &[(0, 3)])).expect("valid");
    drain(&mut s);
    let r = receipt(&m);
    assert_eq!(s.on_receipt(&r), Ok(&Outcome::Delivered(r.clone())));
    assert_eq!(s.unconfirmed(), 0);
    assert_eq!(s.progress(now).bytes_done, m.size());
    // A duplicate receipt, a stray refusal, a stale resend: nothing changes.
    let stray = Refusal::new(m.transfer_id().clone(), RefusalReason::UnknownTransfer, "");
    assert_eq!(s.on_refusal(&stray), Ok(&Outcome::Delivered(r.clone())));
    assert_eq!(s.on_resend(now, &resend(&m, &[(0, 3)])), Ok(0));
    assert_eq!(s.poll_chunk(), None);
    assert_eq!(s.state(), SenderState::Finished(Outcome::Delivered(r)));

    let mut s = Sender::new(m.clone(), config(2), Instant::now());
    let mut wrong = receipt(&m);
    wrong.sha256 = Sha256Digest::of(b"something else");
    assert_eq!(
        s.on_receipt(&wrong),
        Ok(&Outcome::ReceiptMismatch(wrong.clone()))
    );

    let mut s = Sender::new(m.clone(), config(2), Instant::now());
    let full = Refusal::new(m.transfer_id().clone(), RefusalReason::NoSpace, "full");
    assert_eq!(s.on_refusal(&full), Ok(&Outcome::Refused(full.clone())));
    assert_eq!(s.poll_chunk(), None);
}

#[test]
fn progress_reports_rate_and_eta() {
    let m = manifest(100 * MIB, MIB);
    let mut s = Sender::new(m.clone(), config(4), Instant::now());
    let t0 = Instant::now();
    s.on_resend(t0, &resend(&m, &[(0, 100)])).expect("valid");
    // 1 MiB confirmed every 100 ms: 10 MiB/s.
    for step in 1..=50u32 {
        let c = s.poll_chunk().expect("a chunk");
        assert!(s.on_confirm(t0 + Duration::from_millis(100) * step, c.index));
    }
    let p = s.progress(t0 + Duration::from_secs(5));
    assert_eq!(p.bytes_done, 50 * MIB);
    assert_eq!(p.total, 100 * MIB);
    let rate = p.rate.expect("known");
    assert!((rate / (10.0 * MIB as f64) - 1.0).abs() < 0.05, "{rate}");
    let eta = p.eta.expect("known").as_secs_f64();
    assert!((eta - 5.0).abs() < 0.5, "{eta}");
}

#[test]
fn the_state_of_a_4_gib_transfer_is_small() {
    let m = manifest(4 << 30, MIB);
    let s = Sender::new(m, SenderConfig::default(), Instant::now());
    // Two 4096-bit bitmaps; nothing proportional to the bytes.
    assert_eq!(s.to_publish.encode().len(), Bitmap::encoded_len(4096));
    assert_eq!(Bitmap::encoded_len(4096), 21 + 512);
}

#[test]
fn the_manifest_is_announced_again_when_the_receiver_is_silent() {
    let m = manifest(3 * MIB, MIB);
    let t0 = Instant::now();
    let after = SenderConfig::default().reannounce_after;
    let mut s = Sender::new(m.clone(), config(2), t0);
    assert_eq!(s.next_reannounce(), Some(t0 + after));
    assert!(!s.poll_reannounce(t0 + after / 2));
    assert!(s.poll_reannounce(t0 + after));
    assert!(!s.poll_reannounce(t0 + after), "the timer starts again");

    // Sending: no re-announcement, the window is the receiver's business.
    let t1 = t0 + 2 * after;
    s.on_resend(t1, &resend(&m, &[(0, 3)])).expect("valid");
    assert_eq!(s.next_reannounce(), None);
    while let Some(c) = s.poll_chunk() {
        assert!(s.on_confirm(t1, c.index));
    }
    // All confirmed, no receipt yet: announce again after a silence.
    assert_eq!(s.next_reannounce(), Some(t1 + after));
    assert!(s.poll_reannounce(t1 + after));
    s.on_receipt(&receipt(&m)).expect("ours");
    assert_eq!(s.next_reannounce(), None);
    assert!(!s.poll_reannounce(t1 + 10 * after));
}
