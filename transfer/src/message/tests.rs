use std::time::{Duration, UNIX_EPOCH};

use super::manifest::tests::{KIB, MIB, manifest};
use super::*;
use crate::digest::Sha256Digest;
use crate::id::ObjectId;
use crate::range::ChunkRange;

fn tid() -> TransferId {
    TransferId::new("t-1").expect("valid")
}

fn round_trip(message: Message<'_>) {
    let bytes = message.encode().expect("encodes");
    assert_eq!(Message::decode(&bytes).expect("decodes"), message);
}

fn manifest_json(size: u64, chunk_count: u64) -> String {
    format!(
        r#"{{"type":"manifest","v":1,"transfer_id":"t-1","object_id":"disk.qcow2","kind":"image","size":{size},"chunk_size":1048576,"chunk_count":{chunk_count},"sha256":"{}","metadata":{{}},"sender":"cloud-a","receiver":"cloud-b"}}"#,
        "ab".repeat(32)
    )
}

#[test]
fn every_message_round_trips() {
    round_trip(manifest(4 << 30, MIB).into());
    round_trip(manifest(0, 64 * KIB).into());
    round_trip(Chunk::new(tid(), 7, b"payload").into());
    round_trip(
        Resend::new(
            tid(),
            vec![ChunkRange::new(0, 10), ChunkRange::new(12, 4096)],
        )
        .expect("valid")
        .into(),
    );
    round_trip(Resend::new(tid(), vec![]).expect("valid").into());
    round_trip(
        Receipt {
            transfer_id: tid(),
            object_id: ObjectId::new("disk.qcow2").expect("valid"),
            sha256: Sha256Digest::of(b"x"),
            size: 4 << 30,
            committed_at: UNIX_EPOCH + Duration::from_millis(1_767_225_600_123),
        }
        .into(),
    );
    round_trip(Refusal::new(tid(), RefusalReason::NoSpace, "disk full: 10 bytes left").into());
}

#[test]
fn control_messages_are_readable_json() {
    let m = manifest(4 << 30, MIB);
    let text = String::from_utf8(Message::from(m).encode().expect("encodes")).expect("utf-8");
    assert!(
        text.starts_with(r#"{"type":"manifest","v":1,"transfer_id":"t-1","#),
        "{text}"
    );
    assert!(text.contains(r#""size":4294967296,"chunk_size":1048576,"chunk_count":4096"#));

    let r = Resend::new(tid(), vec![ChunkRange::new(0, 4096)]).expect("valid");
    assert_eq!(
        Message::from(r).encode().expect("encodes"),
        br#"{"type":"resend","v":1,"transfer_id":"t-1","missing":[[0,4096]]}"#
    );
}

#[test]
fn a_manifest_whose_size_does_not_match_is_refused_with_the_numbers() {
    // 4 GiB in 1 MiB chunks is 4096 chunks, not 4095.
    let json = manifest_json(4 << 30, 4095);
    let err = Message::decode(json.as_bytes()).expect_err("inconsistent");
    let MessageError::InvalidManifest { error, .. } = &err else {
        panic!("unexpected {err}");
    };
    assert_eq!(
        *error,
        ManifestError::SizeMismatch {
            size: 4 << 30,
            chunk_size: MIB,
            chunk_count: 4095,
            expected: 4096
        }
    );
    let (to, refusal) = err.refusal().expect("answerable");
    assert_eq!(to.as_str(), "cloud-a");
    assert_eq!(refusal.reason, RefusalReason::InvalidManifest);
    assert!(refusal.detail.contains("4096"), "{}", refusal.detail);

    assert!(Message::decode(manifest_json(4 << 30, 4096).as_bytes()).is_ok());
}

#[test]
fn versions_types_and_fields_are_checked() {
    let v2 = manifest_json(1, 1).replace(r#""v":1"#, r#""v":2"#);
    assert!(matches!(
        Message::decode(v2.as_bytes()),
        Err(MessageError::UnsupportedVersion(2))
    ));
    let no_v = manifest_json(1, 1).replace(r#""v":1,"#, "");
    assert!(matches!(
        Message::decode(no_v.as_bytes()),
        Err(MessageError::MissingField("v"))
    ));
    assert!(matches!(
        Message::decode(br#"{"v":1,"type":"ping"}"#),
        Err(MessageError::UnknownType(t)) if t == "ping"
    ));
    assert!(matches!(
        Message::decode(br#"{"v":1}"#),
        Err(MessageError::MissingField("type"))
    ));
    let extra = manifest_json(1, 1).replace(r#""v":1,"#, r#""v":1,"colour":"red","#);
    let err = Message::decode(extra.as_bytes()).expect_err("unknown field");
    assert!(err.to_string().contains("colour"), "{err}");
    let path = manifest_json(1, 1).replace(r#""object_id":"disk.qcow2""#, r#""object_id":"../x""#);
    let err = Message::decode(path.as_bytes()).expect_err("unsafe id");
    assert!(err.to_string().contains("not a safe name"), "{err}");
    let hex = manifest_json(1, 1).replace(&"ab".repeat(32), &"AB".repeat(32));
    assert!(Message::decode(hex.as_bytes()).is_err());
}

#[test]
fn malformed_bodies_are_refused() {
    assert!(matches!(Message::decode(b""), Err(MessageError::Empty)));
    assert!(matches!(
        Message::decode(b"\x00\x01"),
        Err(MessageError::UnknownFormat { first: Some(0) })
    ));
    assert!(matches!(
        Message::decode(b"{not json"),
        Err(MessageError::Json(_))
    ));
    let huge = format!(
        r#"{{"v":1,"type":"refusal","detail":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    assert!(matches!(
        Message::decode(huge.as_bytes()),
        Err(MessageError::ControlTooLarge { .. })
    ));
    assert!(matches!(
        Message::decode(br#"{"type":"resend","v":1,"transfer_id":"t","missing":[[5,9],[0,2]]}"#),
        Err(MessageError::InvalidResend { .. })
    ));
    assert!(matches!(
        Message::decode(br#"{"type":"resend","v":1,"transfer_id":"t","missing":[[5,9,1]]}"#),
        Err(MessageError::Json(_))
    ));
}

#[test]
fn a_refusal_reason_from_a_newer_peer_is_unknown_not_an_error() {
    let m = Message::decode(
        br#"{"type":"refusal","v":1,"transfer_id":"t","reason":"quota_exceeded","detail":"d"}"#,
    )
    .expect("decodes");
    let Message::Refusal(r) = m else {
        panic!("not a refusal");
    };
    assert_eq!(r.reason, RefusalReason::Unknown);
}

#[test]
fn decode_never_panics_on_mutations() {
    let bodies = [
        Message::from(manifest(150 * KIB, 64 * KIB))
            .encode()
            .expect("encodes"),
        Message::from(Chunk::new(tid(), 3, &[5u8; 300]))
            .encode()
            .expect("encodes"),
    ];
    for body in bodies {
        for i in 0..body.len() {
            for bit in [0x01u8, 0x80] {
                let mut b = body.clone();
                b[i] ^= bit;
                let _ = Message::decode(&b);
            }
            let _ = Message::decode(&body[..i]);
        }
    }
}
