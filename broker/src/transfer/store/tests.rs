use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use intercloud_transfer::{
    Chunk, ChunkDecision, ChunkRange, CloudId, ManifestSpec, ObjectKind, Receiver, ReceiverConfig,
    RefusalReason, Verdict,
};

use super::*;

const CHUNK: u64 = intercloud_transfer::MIN_CHUNK_SIZE;

fn source(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn cloud(s: &str) -> CloudId {
    CloudId::new(s).expect("valid")
}

fn manifest_for(id: &str, object: &[u8]) -> Manifest {
    Manifest::new(ManifestSpec {
        transfer_id: TransferId::new(id).expect("valid"),
        object_id: ObjectId::new(&format!("obj-{id}")).expect("valid"),
        kind: ObjectKind::Object,
        size: object.len() as u64,
        chunk_size: CHUNK,
        sha256: Sha256Digest::of(object),
        metadata: BTreeMap::new(),
        sender: cloud("cloud-a"),
        receiver: cloud("cloud-b"),
    })
    .expect("valid")
}

fn config() -> ReceiverConfig {
    ReceiverConfig {
        persist_every: 1,
        ..ReceiverConfig::default()
    }
}

fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// Six chunks, the last one short.
fn six_chunks() -> Vec<u8> {
    source(5 * CHUNK as usize + 1000)
}

/// A new transfer, admitted by the receiver and the store.
fn admit(store: &TransferStore, manifest: &Manifest) -> Receiver {
    let rx = Receiver::admit(
        manifest.clone(),
        &cloud("cloud-b"),
        config(),
        Instant::now(),
    )
    .expect("addressed to us");
    store.admit(manifest).expect("admitted");
    rx
}

/// What the driver does with one delivered chunk; true when complete.
fn deliver(store: &TransferStore, rx: &mut Receiver, object: &[u8], index: u64) -> bool {
    let manifest = rx.manifest().clone();
    let tid = manifest.transfer_id();
    let offset = manifest.chunk_offset(index).expect("in range") as usize;
    let len = manifest.chunk_len(index).expect("in range") as usize;
    let chunk = Chunk::new(tid.clone(), index, &object[offset..offset + len]);
    match rx.on_chunk(Instant::now(), &chunk) {
        ChunkDecision::Write { index, offset, .. } => {
            store
                .write_chunk(tid, offset, chunk.payload)
                .expect("written");
            let written = rx.written(index).expect("receiving");
            if written.persist_bitmap {
                store.persist_bitmap(tid, rx.bitmap()).expect("persisted");
            }
            written.complete
        }
        other => panic!("chunk {index}: {other:?}"),
    }
}

fn verify(store: &TransferStore, rx: &mut Receiver) -> Verdict {
    assert!(rx.ready_to_commit());
    let digest = store.digest(rx.manifest().transfer_id()).expect("digested");
    rx.verify(digest, wall()).expect("complete")
}

fn commit_receipt(verdict: Verdict) -> Receipt {
    match verdict {
        Verdict::Commit(receipt) => receipt,
        other => panic!("expected a commit, got {other:?}"),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("listed")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    names
}

fn only(mut recovered: Vec<Recovered>) -> (Recovery, Found) {
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    let r = recovered.pop().expect("one");
    (r.plan, r.outcome.expect("recovered"))
}

#[test]
fn a_full_receive_commits_the_source_bytes_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TransferStore::open(dir.path().join("transfers")).expect("opened");
    let object = six_chunks();
    let manifest = manifest_for("t1", &object);
    let tid = manifest.transfer_id().clone();
    let mut rx = admit(&store, &manifest);
    let staging = store.staging_path(&tid);
    assert_eq!(
        fs::metadata(&staging).expect("staged").len(),
        object.len() as u64,
        "full length from the start"
    );
    assert_eq!(
        names(&store.staging),
        ["t1.bitmap", "t1.manifest", "t1.part"]
    );

    let order = [3, 0, 5, 1, 4, 2];
    let completes: Vec<bool> = order
        .iter()
        .map(|&i| deliver(&store, &mut rx, &object, i))
        .collect();
    assert_eq!(completes, [false, false, false, false, false, true]);

    let receipt = commit_receipt(verify(&store, &mut rx));
    assert_eq!(receipt.sha256, Sha256Digest::of(&object));
    let record = store.commit(&receipt).expect("committed");
    assert_eq!(record, receipt);

    let committed = fs::read(store.object_path(manifest.object_id())).expect("object");
    assert_eq!(committed, object);
    assert_eq!(Sha256Digest::of(&committed), manifest.sha256());
    assert!(names(&store.staging).is_empty(), "state deleted");
    assert_eq!(names(&store.receipts), ["t1.receipt"]);
    assert_eq!(
        store.receipt_record(&tid).expect("read"),
        Some(receipt.clone())
    );

    // Again, even with another receipt: nothing changes, the record wins.
    let later = Receipt {
        committed_at: wall() + Duration::from_secs(60),
        ..receipt.clone()
    };
    assert_eq!(store.commit(&later).expect("no-op"), receipt);
    assert_eq!(names(&store.objects), ["obj-t1"]);
    assert_eq!(
        fs::read(store.object_path(manifest.object_id())).expect("object"),
        object
    );

    let (plan, found) = only(store.scan().expect("scanned"));
    assert_eq!(plan, Recovery::Committed);
    assert_eq!(found, Found::Committed(receipt));
}

#[test]
fn a_crash_mid_transfer_resumes_with_only_the_missing_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("transfers");
    let object = six_chunks();
    let manifest = manifest_for("t2", &object);
    let tid = manifest.transfer_id().clone();
    {
        let store = TransferStore::open(&root).expect("opened");
        let mut rx = admit(&store, &manifest);
        for i in [0, 1, 4] {
            assert!(!deliver(&store, &mut rx, &object, i));
        }
        // kill -9: the receiver and the store are gone.
    }

    let store = TransferStore::open(&root).expect("reopened");
    let (plan, found) = only(store.scan().expect("scanned"));
    assert_eq!(plan, Recovery::Resume);
    let Found::Receiving {
        manifest: resumed,
        bitmap,
    } = found
    else {
        panic!("expected a transfer in progress, got {found:?}");
    };
    assert_eq!(resumed, manifest);
    let mut rx = Receiver::resume(resumed, bitmap, config(), Instant::now()).expect("same length");
    assert_eq!(
        rx.missing().missing(),
        [ChunkRange::new(2, 4), ChunkRange::new(5, 6)]
    );

    for i in [2, 3] {
        assert!(!deliver(&store, &mut rx, &object, i));
    }
    assert!(deliver(&store, &mut rx, &object, 5));
    let receipt = commit_receipt(verify(&store, &mut rx));
    assert_eq!(store.commit(&receipt).expect("committed"), receipt);
    assert_eq!(store.commit(&receipt).expect("no-op"), receipt);
    assert_eq!(
        fs::read(store.object_path(manifest.object_id())).expect("object"),
        object
    );
    assert_eq!(names(&store.objects), ["obj-t2"]);
    assert_eq!(store.receipt_record(&tid).expect("read"), Some(receipt));
}

/// Receives everything and verifies, then commits only up to `steps`
/// (1: record written; 2: renamed too) before a "crash".
fn crash_during_commit(root: &Path, object: &[u8], steps: u8) -> (Manifest, Receipt) {
    let store = TransferStore::open(root).expect("opened");
    let manifest = manifest_for("t3", object);
    let mut rx = admit(&store, &manifest);
    for i in 0..manifest.chunk_count() {
        deliver(&store, &mut rx, object, i);
    }
    let receipt = commit_receipt(verify(&store, &mut rx));
    store.write_record(&receipt).expect("recorded");
    if steps >= 2 {
        let tid = manifest.transfer_id();
        fs::rename(
            store.staging_path(tid),
            store.object_path(manifest.object_id()),
        )
        .expect("renamed");
    }
    (manifest, receipt)
}

#[test]
fn a_crash_between_record_and_rename_is_finished_by_the_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("transfers");
    let object = six_chunks();
    let (manifest, receipt) = crash_during_commit(&root, &object, 1);

    let store = TransferStore::open(&root).expect("reopened");
    assert!(!store.object_path(manifest.object_id()).exists());
    let (plan, found) = only(store.scan().expect("scanned"));
    assert_eq!(plan, Recovery::FinishCommit);
    assert_eq!(found, Found::Committed(receipt.clone()));
    assert_eq!(
        fs::read(store.object_path(manifest.object_id())).expect("object"),
        object
    );
    assert!(names(&store.staging).is_empty());

    // A second scan, and a late commit, find it done.
    let (plan, found) = only(store.scan().expect("scanned"));
    assert_eq!(plan, Recovery::Committed);
    assert_eq!(found, Found::Committed(receipt.clone()));
    assert_eq!(store.commit(&receipt).expect("no-op"), receipt);
    assert_eq!(names(&store.objects), ["obj-t3"]);
}

#[test]
fn a_crash_after_the_rename_only_cleans_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("transfers");
    let object = six_chunks();
    let (manifest, receipt) = crash_during_commit(&root, &object, 2);

    let store = TransferStore::open(&root).expect("reopened");
    let (plan, found) = only(store.scan().expect("scanned"));
    assert_eq!(plan, Recovery::CleanUp);
    assert_eq!(found, Found::Committed(receipt));
    assert!(names(&store.staging).is_empty());
    assert_eq!(
        fs::read(store.object_path(manifest.object_id())).expect("object"),
        object
    );
}

#[test]
fn a_flipped_byte_in_staging_is_caught_and_everything_fetched_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TransferStore::open(dir.path()).expect("opened");
    let object = six_chunks();
    let manifest = manifest_for("t4", &object);
    let tid = manifest.transfer_id().clone();
    let mut rx = admit(&store, &manifest);
    for i in 0..manifest.chunk_count() {
        deliver(&store, &mut rx, &object, i);
    }

    // The disk lies: one bit of chunk 2 flips after its fsync.
    let staging = store.staging_path(&tid);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&staging)
        .expect("open");
    let at = 2 * CHUNK + 17;
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).expect("read");
    file.write_all_at(&[byte[0] ^ 0x20], at).expect("flip");
    drop(file);

    assert_ne!(store.digest(&tid).expect("digested"), manifest.sha256());
    let resend = match verify(&store, &mut rx) {
        Verdict::Refetch(resend) => resend,
        other => panic!("expected a refetch, got {other:?}"),
    };
    assert_eq!(resend.missing(), [ChunkRange::new(0, 6)]);
    store.persist_bitmap(&tid, rx.bitmap()).expect("persisted");

    // A restart now resumes from nothing.
    let (plan, found) = only(store.scan().expect("scanned"));
    assert_eq!(plan, Recovery::Resume);
    assert!(matches!(found, Found::Receiving { ref bitmap, .. } if bitmap.is_empty()));

    for i in 0..manifest.chunk_count() {
        deliver(&store, &mut rx, &object, i);
    }
    let receipt = commit_receipt(verify(&store, &mut rx));
    store.commit(&receipt).expect("committed");
    assert_eq!(
        fs::read(store.object_path(manifest.object_id())).expect("object"),
        object
    );
}

#[test]
fn an_object_larger_than_the_free_space_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let object = six_chunks();
    let manifest = manifest_for("t5", &object);
    let tid = manifest.transfer_id().clone();
    let store = TransferStore::open_with(dir.path(), FreeSpace::Fixed(CHUNK)).expect("opened");
    let mut rx = Receiver::admit(
        manifest.clone(),
        &cloud("cloud-b"),
        config(),
        Instant::now(),
    )
    .expect("addressed to us");

    let error = store.admit(&manifest).expect_err("no room");
    assert!(
        matches!(error, StoreError::NoSpace { needed, available, .. }
            if available == CHUNK && needed > object.len() as u64),
        "{error}"
    );
    assert_eq!(error.refusal_reason(), RefusalReason::NoSpace);
    let refusal = rx
        .fail(error.refusal_reason(), error.to_string())
        .expect("not committed");
    assert_eq!(refusal.reason, RefusalReason::NoSpace);
    assert!(refusal.detail.contains("t5"), "{}", refusal.detail);
    assert_eq!(error.refusal(tid).reason, RefusalReason::NoSpace);
    assert!(names(&store.staging).is_empty());
    assert!(store.scan().expect("scanned").is_empty());

    // The real filesystem has room for it.
    let store = TransferStore::open(dir.path()).expect("opened");
    assert!(store.available_bytes().expect("statvfs") > 0);
    store.admit(&manifest).expect("admitted");
}

#[test]
fn orphans_and_lost_staging_files_follow_the_recovery_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TransferStore::open(dir.path()).expect("opened");
    let object = six_chunks();

    // A staging file whose state was never written: deleted.
    let orphan = manifest_for("orphan", &object);
    store.create_staging(&orphan).expect("staged");
    // A transfer whose staging file vanished: created again, empty bitmap.
    let lost = manifest_for("lost", &object);
    let mut rx = admit(&store, &lost);
    deliver(&store, &mut rx, &object, 0);
    fs::remove_file(store.staging_path(lost.transfer_id())).expect("removed");
    // A transfer whose bitmap is garbage: resumed with an empty one.
    let garbled = manifest_for("garbled", &object);
    let mut rx = admit(&store, &garbled);
    deliver(&store, &mut rx, &object, 0);
    fs::write(store.bitmap_path(garbled.transfer_id()), b"ICTB?").expect("garbled");
    // A temporary file left by a crash mid-replacement: deleted.
    fs::write(store.staging.join("garbled.bitmap.tmp"), b"half").expect("tmp");
    // Not ours: left alone.
    fs::write(store.staging.join(".hidden.part"), b"x").expect("stray");

    let recovered: BTreeMap<String, (Recovery, Found)> = store
        .scan()
        .expect("scanned")
        .into_iter()
        .map(|r| {
            (
                r.transfer_id.to_string(),
                (r.plan, r.outcome.expect("recovered")),
            )
        })
        .collect();
    assert_eq!(recovered.len(), 3, "{recovered:?}");
    assert_eq!(recovered["orphan"], (Recovery::DiscardStaging, Found::Gone));
    for (id, plan, manifest) in [
        ("lost", Recovery::StartOver, &lost),
        ("garbled", Recovery::Resume, &garbled),
    ] {
        let (actual_plan, found) = &recovered[id];
        assert_eq!(actual_plan, &plan, "{id}");
        match found {
            Found::Receiving {
                manifest: m,
                bitmap,
            } => {
                assert_eq!(m, manifest);
                assert!(bitmap.is_empty() && bitmap.len() == 6, "{id}: {bitmap:?}");
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    assert_eq!(
        names(&store.staging),
        [
            ".hidden.part",
            "garbled.bitmap",
            "garbled.manifest",
            "garbled.part",
            "lost.bitmap",
            "lost.manifest",
            "lost.part",
        ]
    );
    assert_eq!(
        fs::metadata(store.staging_path(lost.transfer_id()))
            .expect("staged again")
            .len(),
        object.len() as u64
    );
}

#[test]
fn an_empty_object_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TransferStore::open(dir.path()).expect("opened");
    let manifest = manifest_for("empty", &[]);
    let mut rx = admit(&store, &manifest);
    let receipt = commit_receipt(verify(&store, &mut rx));
    store.commit(&receipt).expect("committed");
    assert_eq!(
        fs::read(store.object_path(manifest.object_id())).expect("object"),
        b""
    );
}

#[test]
fn errors_name_the_file_and_the_operation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TransferStore::open(dir.path()).expect("opened");
    let tid = TransferId::new("never-admitted").expect("valid");
    let error = store
        .write_chunk(&tid, 0, b"x")
        .expect_err("no staging file");
    let text = error.to_string();
    assert!(text.starts_with("cannot open "), "{text}");
    assert!(text.contains("never-admitted.part"), "{text}");
    assert_eq!(error.refusal_reason(), RefusalReason::StorageFailure);
    let manifest = manifest_for("never-admitted", &[]);
    let receipt = Receipt {
        transfer_id: tid,
        object_id: manifest.object_id().clone(),
        sha256: manifest.sha256(),
        size: 0,
        committed_at: wall(),
    };
    assert!(matches!(
        store.commit(&receipt),
        Err(StoreError::NothingToCommit { .. })
    ));
}

#[test]
fn a_running_digest_is_finished_from_the_staging_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TransferStore::open(dir.path().join("transfers")).expect("opened");
    let object = six_chunks();
    let manifest = manifest_for("t1", &object);
    let tid = manifest.transfer_id().clone();
    let mut rx = admit(&store, &manifest);
    for i in [0, 2, 1, 5, 3, 4] {
        deliver(&store, &mut rx, &object, i);
    }
    // Chunk 0 was hashed as it arrived, the rest is read back.
    let mut prefix = PrefixDigest::new(&manifest);
    assert!(prefix.feed(0, &object[..CHUNK as usize]));
    let one = store
        .read_staged(&tid, CHUNK, CHUNK)
        .expect("chunk 1 on disk");
    assert_eq!(one, &object[CHUNK as usize..2 * CHUNK as usize]);
    assert!(prefix.feed(1, &one));
    assert_eq!(
        store.finish_digest(&tid, prefix).expect("digested"),
        manifest.sha256()
    );
    // From nothing hashed, and the same as the whole-file digest.
    assert_eq!(
        store
            .finish_digest(&tid, PrefixDigest::new(&manifest))
            .expect("digested"),
        store.digest(&tid).expect("digested")
    );
    // A chunk read past the end names the file.
    let err = store
        .read_staged(&tid, 5 * CHUNK, CHUNK)
        .expect_err("past the end");
    assert!(err.to_string().contains("t1.part"), "{err}");
}
