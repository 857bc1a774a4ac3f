//! The JSON encoding of the control messages (manifest, resend, receipt,
//! refusal); the format is described in the parent module.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    FORMAT_VERSION, MAX_CONTROL_LEN, Manifest, ManifestSpec, Message, MessageError, ObjectKind,
    Receipt, Refusal, RefusalReason, Resend,
};
use crate::digest::Sha256Digest;
use crate::id::{CloudId, ObjectId, TransferId};
use crate::message::outcome::{from_unix_millis, unix_millis};
use crate::range::ChunkRange;

const TYPES: &[&str] = &["manifest", "resend", "receipt", "refusal"];

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Control {
    Manifest(ManifestWire),
    Resend(ResendWire),
    Receipt(ReceiptWire),
    Refusal(RefusalWire),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestWire {
    v: u64,
    transfer_id: TransferId,
    object_id: ObjectId,
    kind: ObjectKind,
    size: u64,
    chunk_size: u64,
    chunk_count: u64,
    sha256: Sha256Digest,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    sender: CloudId,
    receiver: CloudId,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResendWire {
    v: u64,
    transfer_id: TransferId,
    missing: Vec<ChunkRange>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptWire {
    v: u64,
    transfer_id: TransferId,
    object_id: ObjectId,
    sha256: Sha256Digest,
    size: u64,
    committed_at_ms: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefusalWire {
    v: u64,
    transfer_id: TransferId,
    reason: RefusalReason,
    detail: String,
}

/// Only the fields that say how to read the rest.
#[derive(Deserialize)]
struct Probe {
    v: Option<u64>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

const V: u64 = FORMAT_VERSION as u64;

pub(super) fn encode(message: &Message<'_>) -> Result<Vec<u8>, MessageError> {
    let control = match message {
        Message::Chunk(chunk) => return chunk.encode(),
        Message::Manifest(m) => {
            let s = m.spec().clone();
            Control::Manifest(ManifestWire {
                v: V,
                chunk_count: m.chunk_count(),
                transfer_id: s.transfer_id,
                object_id: s.object_id,
                kind: s.kind,
                size: s.size,
                chunk_size: s.chunk_size,
                sha256: s.sha256,
                metadata: s.metadata,
                sender: s.sender,
                receiver: s.receiver,
            })
        }
        Message::Resend(r) => Control::Resend(ResendWire {
            v: V,
            transfer_id: r.transfer_id().clone(),
            missing: r.missing().to_vec(),
        }),
        Message::Receipt(r) => Control::Receipt(ReceiptWire {
            v: V,
            transfer_id: r.transfer_id.clone(),
            object_id: r.object_id.clone(),
            sha256: r.sha256,
            size: r.size,
            committed_at_ms: unix_millis(r.committed_at),
        }),
        Message::Refusal(r) => Control::Refusal(RefusalWire {
            v: V,
            transfer_id: r.transfer_id.clone(),
            reason: r.reason,
            detail: r.detail.clone(),
        }),
    };
    serde_json::to_vec(&control).map_err(MessageError::Json)
}

pub(super) fn decode(bytes: &[u8]) -> Result<Message<'static>, MessageError> {
    if bytes.len() > MAX_CONTROL_LEN {
        return Err(MessageError::ControlTooLarge { len: bytes.len() });
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(MessageError::Json)?;
    let v = probe.v.ok_or(MessageError::MissingField("v"))?;
    if v != V {
        return Err(MessageError::UnsupportedVersion(v));
    }
    let kind = probe.kind.ok_or(MessageError::MissingField("type"))?;
    if !TYPES.contains(&kind.as_str()) {
        return Err(MessageError::UnknownType(kind));
    }
    let control: Control = serde_json::from_slice(bytes).map_err(MessageError::Json)?;
    Ok(match control {
        Control::Manifest(w) => {
            let transfer_id = w.transfer_id.clone();
            let sender = w.sender.clone();
            let spec = ManifestSpec {
                transfer_id: w.transfer_id,
                object_id: w.object_id,
                kind: w.kind,
                size: w.size,
                chunk_size: w.chunk_size,
                sha256: w.sha256,
                metadata: w.metadata,
                sender: w.sender,
                receiver: w.receiver,
            };
            let manifest = Manifest::validate(spec, w.chunk_count).map_err(|error| {
                MessageError::InvalidManifest {
                    transfer_id,
                    sender,
                    error,
                }
            })?;
            Message::Manifest(manifest)
        }
        Control::Resend(w) => {
            let transfer_id = w.transfer_id.clone();
            let resend = Resend::new(w.transfer_id, w.missing)
                .map_err(|error| MessageError::InvalidResend { transfer_id, error })?;
            Message::Resend(resend)
        }
        Control::Receipt(w) => Message::Receipt(Receipt {
            committed_at: from_unix_millis(w.committed_at_ms)
                .ok_or(MessageError::BadTimestamp(w.committed_at_ms))?,
            transfer_id: w.transfer_id,
            object_id: w.object_id,
            sha256: w.sha256,
            size: w.size,
        }),
        Control::Refusal(w) => Message::Refusal(Refusal::new(w.transfer_id, w.reason, w.detail)),
    })
}
