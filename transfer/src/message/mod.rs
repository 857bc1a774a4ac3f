//! The wire messages and their encoding.
//!
//! Five messages travel over AMQP. Towards the receiver (one durable queue
//! per receiving cloud, manifests and chunks in the same queue so that a
//! manifest is read after every chunk published before it): [`Manifest`],
//! then [`Chunk`]s. Towards the sender (its reply queue): [`Resend`],
//! [`Receipt`], [`Refusal`].
//!
//! The body says what it is, whatever the AMQP properties say: a chunk is
//! a binary frame starting with `ICTC` and a version octet ([`chunk`] has
//! the layout); a control message is a JSON object with `"type"` and `"v"`
//! first and no unknown field:
//!
//! ```text
//! {"type":"manifest","v":1,"transfer_id":"t-1","object_id":"disk.qcow2","kind":"image",
//!  "size":4294967296,"chunk_size":1048576,"chunk_count":4096,"sha256":"<64 hex>",
//!  "metadata":{"format":"qcow2"},"sender":"cloud-a","receiver":"cloud-b"}
//! {"type":"resend","v":1,"transfer_id":"t-1","missing":[[0,10],[12,4096]]}
//! {"type":"receipt","v":1,"transfer_id":"t-1","object_id":"disk.qcow2","sha256":"<64 hex>",
//!  "size":4294967296,"committed_at_ms":1767225600000}
//! {"type":"refusal","v":1,"transfer_id":"t-1","reason":"no_space","detail":"…"}
//! ```
//!
//! `missing` holds half-open runs `[start, end)`. [`Message::decode`]
//! looks at the first byte and refuses anything else, with an error that
//! names the problem; it never panics and never allocates more than the
//! input's length implies (control messages are refused above
//! [`MAX_CONTROL_LEN`] before they are parsed). It reads `v` and `type`
//! before the rest, so a message of a newer version is refused as such
//! ([`MessageError::UnsupportedVersion`]) rather than for a field it does
//! not know; within version 1 an unknown field is an error (a typo must
//! not pass for an absent field; a new field means a new version).

pub mod chunk;
mod json;
pub mod manifest;
pub mod outcome;
pub mod resend;

pub use chunk::Chunk;
pub use manifest::{Manifest, ManifestError, ManifestSpec, ObjectKind};
pub use outcome::{Receipt, Refusal, RefusalReason};
pub use resend::{Resend, ResendError};

use crate::id::{CloudId, TransferId};

/// The version of both encodings (the chunk frame's octet, the JSON `v`).
pub const FORMAT_VERSION: u8 = 1;

/// The largest control message read: 1 MiB (a resend of
/// [`resend::MAX_RESEND_RANGES`] runs is far below it).
pub const MAX_CONTROL_LEN: usize = 1 << 20;

/// A message body that was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// An empty body.
    #[error("empty message")]
    Empty,
    /// Neither a chunk frame nor a JSON object.
    #[error("not a transfer message (first byte {first:?}; expected \"ICTC\" or '{{')")]
    UnknownFormat {
        /// The first byte, if any.
        first: Option<u8>,
    },
    /// A version of the encoding this code does not read.
    #[error("message format version {0} is not supported (only {FORMAT_VERSION} is)")]
    UnsupportedVersion(u64),
    /// The chunk frame ends before its header does.
    #[error("chunk frame is {len} bytes long, its header needs at least {needed}")]
    Truncated {
        /// The length the header needs so far.
        needed: usize,
        /// The frame's length.
        len: usize,
    },
    /// The chunk frame's transfer id is not a valid [`TransferId`].
    #[error("chunk frame's transfer id {0:?} is not a safe name")]
    BadChunkTransferId(String),
    /// A chunk without payload (no valid chunk is empty).
    #[error("chunk payload is empty")]
    EmptyPayload,
    /// A chunk payload larger than [`crate::MAX_CHUNK_SIZE`].
    #[error("chunk payload of {len} bytes is larger than {max}", max = crate::MAX_CHUNK_SIZE)]
    PayloadTooLarge {
        /// The declared or actual length.
        len: u64,
    },
    /// The frame's payload length field and its actual payload disagree.
    #[error("chunk frame declares {declared} payload bytes but carries {actual}")]
    PayloadLengthMismatch {
        /// The length field.
        declared: u32,
        /// The bytes after the header.
        actual: usize,
    },
    /// A control message larger than [`MAX_CONTROL_LEN`].
    #[error("control message of {len} bytes is larger than {MAX_CONTROL_LEN}")]
    ControlTooLarge {
        /// Its length.
        len: usize,
    },
    /// Not JSON, or JSON of the wrong shape (the error names the field).
    #[error("control message: {0}")]
    Json(#[source] serde_json::Error),
    /// A control message without `v` or `type`.
    #[error("control message has no {0:?} field")]
    MissingField(&'static str),
    /// A control message type this version does not know.
    #[error("control message type {0:?} is not one of manifest, resend, receipt, refusal")]
    UnknownType(String),
    /// A well-formed manifest whose content is inconsistent. The sender
    /// and transfer are known, so the receiver can refuse it.
    #[error("manifest of transfer {transfer_id} from {sender}: {error}")]
    InvalidManifest {
        /// The transfer.
        transfer_id: TransferId,
        /// Who sent it (where the refusal goes).
        sender: CloudId,
        /// What is wrong.
        #[source]
        error: ManifestError,
    },
    /// A resend whose runs are not sorted, disjoint, non-empty, or too many.
    #[error("resend for transfer {transfer_id}: {error}")]
    InvalidResend {
        /// The transfer.
        transfer_id: TransferId,
        /// What is wrong.
        #[source]
        error: ResendError,
    },
    /// A receipt time that no clock can hold.
    #[error("receipt time {0} ms after the epoch is out of range")]
    BadTimestamp(u64),
}

impl MessageError {
    /// For an invalid manifest: the cloud to answer and the refusal to
    /// send it. Other errors have nobody to answer (log and drop them).
    pub fn refusal(&self) -> Option<(&CloudId, Refusal)> {
        match self {
            Self::InvalidManifest {
                transfer_id,
                sender,
                error,
            } => Some((
                sender,
                Refusal::new(
                    transfer_id.clone(),
                    RefusalReason::InvalidManifest,
                    error.to_string(),
                ),
            )),
            _ => None,
        }
    }
}

/// Any transfer message; a chunk's payload is borrowed from the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Sender → receiver: what is coming.
    Manifest(Manifest),
    /// Sender → receiver: a piece of it.
    Chunk(Chunk<'a>),
    /// Receiver → sender: publish these chunks.
    Resend(Resend),
    /// Receiver → sender: committed.
    Receipt(Receipt),
    /// Receiver → sender: will not be committed.
    Refusal(Refusal),
}

impl<'a> Message<'a> {
    /// Reads a message body.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, MessageError> {
        match bytes.first() {
            None => Err(MessageError::Empty),
            Some(b'{') => json::decode(bytes),
            Some(_) if bytes.starts_with(chunk::CHUNK_MAGIC) => {
                Chunk::decode(bytes).map(Message::Chunk)
            }
            Some(&first) => Err(MessageError::UnknownFormat { first: Some(first) }),
        }
    }

    /// The body to publish.
    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        json::encode(self)
    }

    /// The transfer the message belongs to.
    pub fn transfer_id(&self) -> &TransferId {
        match self {
            Self::Manifest(m) => m.transfer_id(),
            Self::Chunk(c) => &c.transfer_id,
            Self::Resend(r) => r.transfer_id(),
            Self::Receipt(r) => &r.transfer_id,
            Self::Refusal(r) => &r.transfer_id,
        }
    }

    /// The message's type, as in the JSON `"type"` (`"chunk"` for chunks):
    /// for logs and for the AMQP `type` property.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Manifest(_) => "manifest",
            Self::Chunk(_) => "chunk",
            Self::Resend(_) => "resend",
            Self::Receipt(_) => "receipt",
            Self::Refusal(_) => "refusal",
        }
    }
}

impl From<Manifest> for Message<'_> {
    fn from(m: Manifest) -> Self {
        Self::Manifest(m)
    }
}

impl<'a> From<Chunk<'a>> for Message<'a> {
    fn from(c: Chunk<'a>) -> Self {
        Self::Chunk(c)
    }
}

impl From<Resend> for Message<'_> {
    fn from(r: Resend) -> Self {
        Self::Resend(r)
    }
}

impl From<Receipt> for Message<'_> {
    fn from(r: Receipt) -> Self {
        Self::Receipt(r)
    }
}

impl From<Refusal> for Message<'_> {
    fn from(r: Refusal) -> Self {
        Self::Refusal(r)
    }
}

#[cfg(test)]
mod tests;
