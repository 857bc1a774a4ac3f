//! The signed presence announcement: its fields, its XML form in
//! `urn:intercloud:presence:1`, its canonical signing bytes, and signing.
//!
//! ```xml
//! <announcement xmlns="urn:intercloud:presence:1" cloud="cloud-a" ready="true"
//!     willing="true" able="true" descriptor-version="3" endpoint="127.0.0.1:7501"
//!     fingerprint="<hex sha256 of the certificate DER>" timestamp="<unix ms>" seq="17">
//!   <capacity vcpu="64" memory-mib="262144" storage-gib="10000"/>
//!   <certificate>BASE64 DER</certificate>
//!   <signature alg="ecdsa-p256-sha256">BASE64 ASN.1 DER ECDSA signature</signature>
//! </announcement>
//! ```
//!
//! Parsing is strict (every attribute required, nothing unknown), so what is
//! accepted is exactly what [`Announcement::signing_bytes`] covers. Parsing
//! does not check the signature or the certificate: that is
//! [`verify`](super::verify::verify).

use std::fmt;
use std::net::Ipv6Addr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use intercloud_trust::CloudId;
use intercloud_trust::cert::fingerprint;
use minidom::Element;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use rustls::pki_types::PrivateKeyDer;
use time::OffsetDateTime;

use super::xml::{has_text, name, parse_u64, snippet, unknown_attribute};

/// The presence payload namespace.
pub const NS: &str = "urn:intercloud:presence:1";

/// The only signature algorithm: ECDSA over P-256 with SHA-256, ASN.1 DER.
pub const SIGNATURE_ALGORITHM: &str = "ecdsa-p256-sha256";

/// Largest serialized `<announcement>` element a receiver looks at.
pub const MAX_SERIALIZED_BYTES: usize = 8192;

/// Whether the cloud takes transactions: "ready, willing and able".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Readiness {
    /// The broker is up and its services answer.
    pub ready: bool,
    /// The operator's policy lets it take work from the federation.
    pub willing: bool,
    /// It has free capacity to take work.
    pub able: bool,
}

/// An amount of compute, memory and storage (free capacity, a request, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capacity {
    /// Virtual CPUs.
    pub vcpu: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Storage in GiB.
    pub storage_gib: u64,
}

impl Capacity {
    /// Whether `wanted` fits in `self` for every resource.
    pub fn covers(&self, wanted: &Capacity) -> bool {
        self.vcpu >= wanted.vcpu
            && self.memory_mib >= wanted.memory_mib
            && self.storage_gib >= wanted.storage_gib
    }

    /// `self - other` per resource, floored at zero.
    pub fn saturating_sub(&self, other: &Capacity) -> Capacity {
        Capacity {
            vcpu: self.vcpu.saturating_sub(other.vcpu),
            memory_mib: self.memory_mib.saturating_sub(other.memory_mib),
            storage_gib: self.storage_gib.saturating_sub(other.storage_gib),
        }
    }

    /// `self + other` per resource, capped at the type's maximum.
    pub fn saturating_add(&self, other: &Capacity) -> Capacity {
        Capacity {
            vcpu: self.vcpu.saturating_add(other.vcpu),
            memory_mib: self.memory_mib.saturating_add(other.memory_mib),
            storage_gib: self.storage_gib.saturating_add(other.storage_gib),
        }
    }
}

/// A signed presence announcement, as sent and as received (not yet verified).
#[derive(Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The announcing cloud.
    pub cloud: CloudId,
    /// Ready / willing / able.
    pub readiness: Readiness,
    /// Free capacity.
    pub capacity: Capacity,
    /// Version of the cloud's service descriptor, bumped when it changes.
    pub descriptor_version: u64,
    /// Where the broker's gRPC API listens, `host:port` (`[v6]:port`).
    pub grpc_endpoint: String,
    /// SHA-256 of `certificate_der`, lower-case hex.
    pub fingerprint: String,
    /// When it was made, Unix milliseconds (sender's clock).
    pub timestamp_ms: i64,
    /// Sender's counter; orders announcements made within the same millisecond.
    pub sequence: u64,
    /// The broker's X.509 certificate, DER.
    pub certificate_der: Vec<u8>,
    /// ECDSA P-256 SHA-256 signature (ASN.1 DER) over [`Announcement::signing_bytes`].
    pub signature: Vec<u8>,
}

impl fmt::Debug for Announcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Announcement")
            .field("cloud", &self.cloud)
            .field("readiness", &self.readiness)
            .field("capacity", &self.capacity)
            .field("descriptor_version", &self.descriptor_version)
            .field("grpc_endpoint", &self.grpc_endpoint)
            .field("fingerprint", &self.fingerprint)
            .field("timestamp_ms", &self.timestamp_ms)
            .field("sequence", &self.sequence)
            .field(
                "certificate_der",
                &format_args!("{} bytes", self.certificate_der.len()),
            )
            .field("signature", &format_args!("{} bytes", self.signature.len()))
            .finish()
    }
}

/// Why a received `<announcement>` was refused before any cryptography.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnnouncementError {
    /// The serialized payload exceeds [`MAX_SERIALIZED_BYTES`].
    #[error("announcement is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The element is not `<announcement xmlns="urn:intercloud:presence:1">`.
    #[error("expected <announcement xmlns=\"{NS}\">, got <{name} xmlns=\"{ns}\">")]
    NotAnAnnouncement {
        /// The element's name.
        name: String,
        /// The element's namespace.
        ns: String,
    },
    /// A required attribute is absent.
    #[error("<{element}> lacks the {attribute:?} attribute")]
    MissingAttribute {
        /// The element.
        element: &'static str,
        /// The attribute.
        attribute: &'static str,
    },
    /// An attribute that is not part of the format.
    #[error("<{element}> has an unknown attribute {attribute:?}")]
    UnknownAttribute {
        /// The element.
        element: &'static str,
        /// The attribute (excerpt).
        attribute: String,
    },
    /// A numeric attribute is not a non-negative decimal integer in range.
    #[error("{attribute:?} must be a non-negative decimal integer in range, got {value:?}")]
    BadNumber {
        /// The attribute.
        attribute: &'static str,
        /// Its value (excerpt).
        value: String,
    },
    /// A boolean attribute is neither `true` nor `false`.
    #[error("{attribute:?} must be \"true\" or \"false\", got {value:?}")]
    BadBoolean {
        /// The attribute.
        attribute: &'static str,
        /// Its value (excerpt).
        value: String,
    },
    /// The `cloud` attribute is not a valid cloud id.
    #[error("cloud: {0}")]
    BadCloud(String),
    /// The endpoint is not `host:port`.
    #[error(
        "endpoint must be host:port (or [ipv6]:port) of at most 255 printable ASCII characters, got {0:?}"
    )]
    BadEndpoint(String),
    /// The fingerprint is not 64 lower-case hex digits.
    #[error("fingerprint must be 64 lower-case hex digits (SHA-256), got {0:?}")]
    BadFingerprint(String),
    /// A child element that is not part of the format.
    #[error("<announcement> has an unknown child <{name} xmlns=\"{ns}\">")]
    UnknownChild {
        /// Its name (excerpt).
        name: String,
        /// Its namespace (excerpt).
        ns: String,
    },
    /// A required child element is absent.
    #[error("<announcement> lacks its <{0}> child")]
    MissingChild(&'static str),
    /// A child element appears more than once.
    #[error("<announcement> has more than one <{0}>")]
    DuplicateChild(&'static str),
    /// Text where only elements belong.
    #[error("<{0}> must not contain text")]
    UnexpectedText(&'static str),
    /// An element that must be empty has children.
    #[error("<{0}> must not have child elements")]
    UnexpectedChildren(&'static str),
    /// The content is not standard base64 or decodes to nothing.
    #[error("<{0}> must hold non-empty standard base64")]
    BadBase64(&'static str),
    /// The signature algorithm is not [`SIGNATURE_ALGORITHM`].
    #[error("signature algorithm {0:?} is not supported (only {SIGNATURE_ALGORITHM})")]
    UnsupportedAlgorithm(String),
}

/// Refuses a serialized payload larger than [`MAX_SERIALIZED_BYTES`].
/// Call it before parsing.
pub fn check_size(serialized_len: usize) -> Result<(), AnnouncementError> {
    if serialized_len > MAX_SERIALIZED_BYTES {
        Err(AnnouncementError::TooLarge {
            len: serialized_len,
            max: MAX_SERIALIZED_BYTES,
        })
    } else {
        Ok(())
    }
}

/// `now` as Unix milliseconds, for [`UnsignedAnnouncement::timestamp_ms`].
pub fn unix_ms(now: OffsetDateTime) -> i64 {
    let ms = now.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

const ANNOUNCEMENT_ATTRIBUTES: &[&str] = &[
    "cloud",
    "ready",
    "willing",
    "able",
    "descriptor-version",
    "endpoint",
    "fingerprint",
    "timestamp",
    "seq",
];
const CAPACITY_ATTRIBUTES: &[&str] = &["vcpu", "memory-mib", "storage-gib"];

impl Announcement {
    /// The canonical bytes the signature covers: every field but the
    /// signature, one `key=value` line each in a fixed order after the
    /// namespace. The certificate enters through its fingerprint, which the
    /// verifier checks against the DER. No value can hold a newline (cloud
    /// ids are DNS labels, endpoints printable ASCII without spaces, the rest
    /// numbers or hex), so the encoding is unambiguous.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let b = |v: bool| if v { "true" } else { "false" };
        format!(
            "{NS}\ncloud={}\nready={}\nwilling={}\nable={}\nvcpu={}\nmemory-mib={}\n\
             storage-gib={}\ndescriptor-version={}\nendpoint={}\nfingerprint={}\n\
             timestamp={}\nseq={}\n",
            self.cloud,
            b(self.readiness.ready),
            b(self.readiness.willing),
            b(self.readiness.able),
            self.capacity.vcpu,
            self.capacity.memory_mib,
            self.capacity.storage_gib,
            self.descriptor_version,
            self.grpc_endpoint,
            self.fingerprint,
            self.timestamp_ms,
            self.sequence,
        )
        .into_bytes()
    }

    /// When it was made, if the timestamp is a representable time.
    pub fn timestamp(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.timestamp_ms) * 1_000_000).ok()
    }

    /// The `<announcement>` element, to put in a `<presence>`.
    pub fn to_element(&self) -> Element {
        let capacity = Element::builder("capacity", NS)
            .attr(name("vcpu"), self.capacity.vcpu.to_string())
            .attr(name("memory-mib"), self.capacity.memory_mib.to_string())
            .attr(name("storage-gib"), self.capacity.storage_gib.to_string())
            .build();
        let certificate = Element::builder("certificate", NS)
            .append(BASE64.encode(&self.certificate_der))
            .build();
        let signature = Element::builder("signature", NS)
            .attr(name("alg"), SIGNATURE_ALGORITHM)
            .append(BASE64.encode(&self.signature))
            .build();
        Element::builder("announcement", NS)
            .attr(name("cloud"), self.cloud.as_str())
            .attr(name("ready"), self.readiness.ready.to_string())
            .attr(name("willing"), self.readiness.willing.to_string())
            .attr(name("able"), self.readiness.able.to_string())
            .attr(
                name("descriptor-version"),
                self.descriptor_version.to_string(),
            )
            .attr(name("endpoint"), self.grpc_endpoint.as_str())
            .attr(name("fingerprint"), self.fingerprint.as_str())
            .attr(name("timestamp"), self.timestamp_ms.to_string())
            .attr(name("seq"), self.sequence.to_string())
            .append(capacity)
            .append(certificate)
            .append(signature)
            .build()
    }

    /// Reads an `<announcement>` strictly. Call [`check_size`] on the
    /// serialized payload first.
    pub fn from_element(element: &Element) -> Result<Announcement, AnnouncementError> {
        if !element.is("announcement", NS) {
            return Err(AnnouncementError::NotAnAnnouncement {
                name: snippet(element.name()),
                ns: snippet(&element.ns()),
            });
        }
        const EL: &str = "announcement";
        if let Some(attribute) = unknown_attribute(element, ANNOUNCEMENT_ATTRIBUTES) {
            return Err(AnnouncementError::UnknownAttribute {
                element: EL,
                attribute,
            });
        }
        if has_text(element) {
            return Err(AnnouncementError::UnexpectedText(EL));
        }
        let cloud_text = required(element, EL, "cloud")?;
        let cloud = CloudId::new(cloud_text)
            .map_err(|e| AnnouncementError::BadCloud(snippet(&e.to_string())))?;
        let readiness = Readiness {
            ready: boolean(element, EL, "ready")?,
            willing: boolean(element, EL, "willing")?,
            able: boolean(element, EL, "able")?,
        };
        let descriptor_version = number(element, EL, "descriptor-version")?;
        let grpc_endpoint = required(element, EL, "endpoint")?;
        if !is_endpoint(grpc_endpoint) {
            return Err(AnnouncementError::BadEndpoint(snippet(grpc_endpoint)));
        }
        let fingerprint = required(element, EL, "fingerprint")?;
        if !is_fingerprint(fingerprint) {
            return Err(AnnouncementError::BadFingerprint(snippet(fingerprint)));
        }
        let timestamp_ms = number(element, EL, "timestamp")?;
        let timestamp_ms =
            i64::try_from(timestamp_ms).map_err(|_| AnnouncementError::BadNumber {
                attribute: "timestamp",
                value: timestamp_ms.to_string(),
            })?;
        let sequence = number(element, EL, "seq")?;

        let mut capacity = None;
        let mut certificate = None;
        let mut signature = None;
        for child in element.children() {
            let slot: (&'static str, &mut Option<&Element>) = if child.is("capacity", NS) {
                ("capacity", &mut capacity)
            } else if child.is("certificate", NS) {
                ("certificate", &mut certificate)
            } else if child.is("signature", NS) {
                ("signature", &mut signature)
            } else {
                return Err(AnnouncementError::UnknownChild {
                    name: snippet(child.name()),
                    ns: snippet(&child.ns()),
                });
            };
            if slot.1.replace(child).is_some() {
                return Err(AnnouncementError::DuplicateChild(slot.0));
            }
        }
        let capacity = capacity.ok_or(AnnouncementError::MissingChild("capacity"))?;
        let certificate = certificate.ok_or(AnnouncementError::MissingChild("certificate"))?;
        let signature = signature.ok_or(AnnouncementError::MissingChild("signature"))?;

        Ok(Announcement {
            cloud,
            readiness,
            capacity: parse_capacity(capacity)?,
            descriptor_version,
            grpc_endpoint: grpc_endpoint.to_owned(),
            fingerprint: fingerprint.to_owned(),
            timestamp_ms,
            sequence,
            certificate_der: base64_content(certificate, "certificate", &[])?,
            signature: {
                let alg = required(signature, "signature", "alg")?;
                if alg != SIGNATURE_ALGORITHM {
                    return Err(AnnouncementError::UnsupportedAlgorithm(snippet(alg)));
                }
                base64_content(signature, "signature", &["alg"])?
            },
        })
    }
}

fn parse_capacity(element: &Element) -> Result<Capacity, AnnouncementError> {
    const EL: &str = "capacity";
    if let Some(attribute) = unknown_attribute(element, CAPACITY_ATTRIBUTES) {
        return Err(AnnouncementError::UnknownAttribute {
            element: EL,
            attribute,
        });
    }
    if has_text(element) {
        return Err(AnnouncementError::UnexpectedText(EL));
    }
    if element.children().next().is_some() {
        return Err(AnnouncementError::UnexpectedChildren(EL));
    }
    let vcpu = number(element, EL, "vcpu")?;
    Ok(Capacity {
        vcpu: u32::try_from(vcpu).map_err(|_| AnnouncementError::BadNumber {
            attribute: "vcpu",
            value: vcpu.to_string(),
        })?,
        memory_mib: number(element, EL, "memory-mib")?,
        storage_gib: number(element, EL, "storage-gib")?,
    })
}

fn base64_content(
    element: &Element,
    name: &'static str,
    allowed_attributes: &[&str],
) -> Result<Vec<u8>, AnnouncementError> {
    if let Some(attribute) = unknown_attribute(element, allowed_attributes) {
        return Err(AnnouncementError::UnknownAttribute {
            element: name,
            attribute,
        });
    }
    if element.children().next().is_some() {
        return Err(AnnouncementError::UnexpectedChildren(name));
    }
    let bytes = BASE64
        .decode(element.text().trim())
        .map_err(|_| AnnouncementError::BadBase64(name))?;
    if bytes.is_empty() {
        return Err(AnnouncementError::BadBase64(name));
    }
    Ok(bytes)
}

fn required<'a>(
    element: &'a Element,
    el: &'static str,
    attribute: &'static str,
) -> Result<&'a str, AnnouncementError> {
    element
        .attr(attribute)
        .ok_or(AnnouncementError::MissingAttribute {
            element: el,
            attribute,
        })
}

fn number(
    element: &Element,
    el: &'static str,
    attribute: &'static str,
) -> Result<u64, AnnouncementError> {
    let text = required(element, el, attribute)?;
    parse_u64(text).ok_or_else(|| AnnouncementError::BadNumber {
        attribute,
        value: snippet(text),
    })
}

fn boolean(
    element: &Element,
    el: &'static str,
    attribute: &'static str,
) -> Result<bool, AnnouncementError> {
    match required(element, el, attribute)? {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(AnnouncementError::BadBoolean {
            attribute,
            value: snippet(other),
        }),
    }
}

fn is_fingerprint(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `host:port` with a DNS-ish or IPv4 host, or `[ipv6]:port`; port 1-65535.
pub(crate) fn is_endpoint(text: &str) -> bool {
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return false;
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    let port_ok = parse_u64(port).is_some_and(|p| (1..=u64::from(u16::MAX)).contains(&p));
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }
    };
    port_ok && host_ok
}

/// Why an announcement could not be signed (a local configuration problem).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The key is not a PKCS#8 ECDSA P-256 key.
    #[error("signing key is not a PKCS#8 ECDSA P-256 key: {0}")]
    BadKey(String),
    /// The certificate does not parse.
    #[error("own certificate does not parse: {0}")]
    BadCertificate(String),
    /// The key is not the certificate's key.
    #[error("signing key does not match the certificate's public key")]
    KeyMismatch,
    /// The endpoint would not pass a receiver's parser.
    #[error("gRPC endpoint {0:?} is not host:port")]
    BadEndpoint(String),
    /// ring failed to sign.
    #[error("ECDSA signing failed")]
    Signing,
}

/// The broker's ECDSA P-256 private key, parsed once.
pub struct SigningKey {
    pair: EcdsaKeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").finish_non_exhaustive()
    }
}

impl SigningKey {
    /// From PKCS#8 DER.
    pub fn from_pkcs8_der(pkcs8: &[u8]) -> Result<Self, SignError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &SystemRandom::new())
                .map_err(|e| SignError::BadKey(e.to_string()))?;
        Ok(Self { pair })
    }

    /// From a PEM `PRIVATE KEY` (PKCS#8), as in `identity/key.pem`.
    pub fn from_pem(pem: &str) -> Result<Self, SignError> {
        use rustls::pki_types::pem::PemObject as _;
        let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| SignError::BadKey(format!("PEM: {e}")))?;
        Self::from_private_key(&key)
    }

    /// From a loaded private key (e.g. `Credentials::key`); PKCS#8 only.
    pub fn from_private_key(key: &PrivateKeyDer<'_>) -> Result<Self, SignError> {
        match key {
            PrivateKeyDer::Pkcs8(pkcs8) => Self::from_pkcs8_der(pkcs8.secret_pkcs8_der()),
            _ => Err(SignError::BadKey("not PKCS#8".into())),
        }
    }
}

/// Everything an announcement says, before signing. The fingerprint is
/// computed from `certificate_der`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedAnnouncement {
    /// The announcing cloud (must match the certificate).
    pub cloud: CloudId,
    /// Ready / willing / able.
    pub readiness: Readiness,
    /// Free capacity.
    pub capacity: Capacity,
    /// Version of the service descriptor.
    pub descriptor_version: u64,
    /// `host:port` of the broker's gRPC API.
    pub grpc_endpoint: String,
    /// Unix milliseconds, see [`unix_ms`].
    pub timestamp_ms: i64,
    /// Strictly increasing per sender within a millisecond.
    pub sequence: u64,
    /// The broker's certificate, DER (the leaf).
    pub certificate_der: Vec<u8>,
}

impl UnsignedAnnouncement {
    /// Signs with the certificate's key.
    pub fn sign(self, key: &SigningKey) -> Result<Announcement, SignError> {
        if !is_endpoint(&self.grpc_endpoint) {
            return Err(SignError::BadEndpoint(self.grpc_endpoint));
        }
        let spki = subject_public_key(&self.certificate_der).map_err(SignError::BadCertificate)?;
        if spki != key.pair.public_key().as_ref() {
            return Err(SignError::KeyMismatch);
        }
        let mut announcement = Announcement {
            cloud: self.cloud,
            readiness: self.readiness,
            capacity: self.capacity,
            descriptor_version: self.descriptor_version,
            grpc_endpoint: self.grpc_endpoint,
            fingerprint: fingerprint(&self.certificate_der),
            timestamp_ms: self.timestamp_ms,
            sequence: self.sequence,
            certificate_der: self.certificate_der,
            signature: Vec::new(),
        };
        let signature = key
            .pair
            .sign(&SystemRandom::new(), &announcement.signing_bytes())
            .map_err(|_| SignError::Signing)?;
        announcement.signature = signature.as_ref().to_vec();
        Ok(announcement)
    }
}

/// The raw subjectPublicKey bits of a DER certificate (for P-256: the
/// uncompressed point, as ring expects it).
pub(crate) fn subject_public_key(der: &[u8]) -> Result<Vec<u8>, String> {
    use x509_parser::prelude::{FromDer as _, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::testing::{cloud, pki, sample};

    fn round_trip_text(a: &Announcement) -> String {
        String::from(&a.to_element())
    }

    #[test]
    fn round_trips_through_xml_text() {
        let a = sample(&pki().cloud_a, "cloud-a", 1_000, 1);
        let text = round_trip_text(&a);
        check_size(text.len()).expect("fits");
        let parsed: Element = text.parse().expect("xml");
        assert_eq!(Announcement::from_element(&parsed).expect("parse"), a);
    }

    #[test]
    fn accepts_pretty_printed_whitespace() {
        let a = sample(&pki().cloud_a, "cloud-a", 1_000, 1);
        let text = round_trip_text(&a).replace("><", ">\n  <");
        let parsed: Element = text.parse().expect("xml");
        assert_eq!(Announcement::from_element(&parsed).expect("parse"), a);
    }

    #[test]
    fn signing_bytes_cover_every_field_but_the_signature() {
        let a = sample(&pki().cloud_a, "cloud-a", 1_000, 1);
        let base = a.signing_bytes();
        let text = String::from_utf8(base.clone()).expect("utf8");
        assert!(text.starts_with(NS));
        let mutations: [fn(&mut Announcement); 12] = [
            |a| a.cloud = cloud("cloud-b"),
            |a| a.readiness.ready = !a.readiness.ready,
            |a| a.readiness.willing = !a.readiness.willing,
            |a| a.readiness.able = !a.readiness.able,
            |a| a.capacity.vcpu += 1,
            |a| a.capacity.memory_mib += 1,
            |a| a.capacity.storage_gib += 1,
            |a| a.descriptor_version += 1,
            |a| a.grpc_endpoint.push('1'),
            |a| a.fingerprint = "0".repeat(64),
            |a| a.timestamp_ms += 1,
            |a| a.sequence += 1,
        ];
        for mutate in mutations {
            let mut changed = a.clone();
            mutate(&mut changed);
            assert_ne!(changed.signing_bytes(), base);
        }
        let mut resigned = a.clone();
        resigned.signature = vec![1, 2, 3];
        assert_eq!(resigned.signing_bytes(), base);
    }

    #[test]
    fn sizes_above_the_limit_are_refused() {
        assert!(check_size(MAX_SERIALIZED_BYTES).is_ok());
        assert_eq!(
            check_size(MAX_SERIALIZED_BYTES + 1),
            Err(AnnouncementError::TooLarge {
                len: MAX_SERIALIZED_BYTES + 1,
                max: MAX_SERIALIZED_BYTES
            })
        );
    }

    #[test]
    fn signing_refuses_a_key_that_is_not_the_certificates() {
        let pki = pki();
        let key = SigningKey::from_pem(&pki.cloud_b.key_pem).expect("key");
        let mut unsigned = crate::presence::testing::unsigned(&pki.cloud_a, "cloud-a", 1, 1);
        assert_eq!(
            unsigned.clone().sign(&key).map(|_| ()),
            Err(SignError::KeyMismatch)
        );
        unsigned.grpc_endpoint = "no port".into();
        assert!(matches!(
            unsigned.sign(&key),
            Err(SignError::BadEndpoint(_))
        ));
        assert!(matches!(
            SigningKey::from_pem("junk"),
            Err(SignError::BadKey(_))
        ));
        assert!(matches!(
            SigningKey::from_pkcs8_der(b"junk"),
            Err(SignError::BadKey(_))
        ));
    }

    #[test]
    fn endpoints() {
        for good in [
            "127.0.0.1:7501",
            "broker.cloud-a.lab:443",
            "[::1]:7501",
            "localhost:1",
        ] {
            assert!(is_endpoint(good), "{good}");
        }
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            ":7501",
            "a b:1",
            "::1:7501",
            "[zz]:1",
            "host:+1",
            "ho\nst:1",
            "https://x:1",
        ] {
            assert!(!is_endpoint(bad), "{bad:?}");
        }
    }

    /// The sample announcement as XML text with `edit` applied.
    fn parse_edited(edit: impl Fn(String) -> String) -> Result<Announcement, AnnouncementError> {
        let a = sample(&pki().cloud_a, "cloud-a", 1_000, 1);
        let text = edit(round_trip_text(&a));
        let element: Element = text.parse().expect("still XML");
        Announcement::from_element(&element)
    }

    fn set_attr(text: String, attr: &str, value: &str) -> String {
        let start = text.find(&format!(" {attr}='")).expect("attribute") + attr.len() + 3;
        let end = start + text[start..].find('\'').expect("quote");
        format!("{}{value}{}", &text[..start], &text[end..])
    }

    fn drop_attr(text: String, attr: &str) -> String {
        let start = text.find(&format!(" {attr}='")).expect("attribute");
        let value_start = start + attr.len() + 3;
        let end = value_start + text[value_start..].find('\'').expect("quote") + 1;
        format!("{}{}", &text[..start], &text[end..])
    }

    #[test]
    fn every_malformation_is_refused_with_its_reason() {
        use AnnouncementError as E;
        for attr in ANNOUNCEMENT_ATTRIBUTES {
            let err = parse_edited(|t| drop_attr(t, attr)).expect_err(attr);
            assert!(
                matches!(err, E::MissingAttribute { attribute, .. } if attribute == *attr),
                "{attr}: {err}"
            );
        }
        for attr in CAPACITY_ATTRIBUTES {
            let err = parse_edited(|t| drop_attr(t, attr)).expect_err(attr);
            assert!(
                matches!(
                    err,
                    E::MissingAttribute {
                        element: "capacity",
                        ..
                    }
                ),
                "{attr}: {err}"
            );
        }
        for attr in [
            "descriptor-version",
            "timestamp",
            "seq",
            "vcpu",
            "memory-mib",
            "storage-gib",
        ] {
            for value in ["-1", "1.5", "lots", "", "+3", "99999999999999999999999"] {
                let err = parse_edited(|t| set_attr(t, attr, value)).expect_err(attr);
                assert!(
                    matches!(err, E::BadNumber { attribute, .. } if attribute == attr),
                    "{attr}={value}: {err}"
                );
            }
        }
        // In range for u64 but not for the field.
        assert!(matches!(
            parse_edited(|t| set_attr(t, "vcpu", "4294967296")),
            Err(E::BadNumber {
                attribute: "vcpu",
                ..
            })
        ));
        assert!(matches!(
            parse_edited(|t| set_attr(t, "timestamp", "9223372036854775808")),
            Err(E::BadNumber {
                attribute: "timestamp",
                ..
            })
        ));
        for attr in ["ready", "willing", "able"] {
            assert!(matches!(
                parse_edited(|t| set_attr(t, attr, "yes")),
                Err(E::BadBoolean { attribute, .. }) if attribute == attr
            ));
        }
        assert!(matches!(
            parse_edited(|t| set_attr(t, "cloud", "Cloud_A")),
            Err(E::BadCloud(_))
        ));
        assert!(matches!(
            parse_edited(|t| set_attr(t, "cloud", "root")),
            Err(E::BadCloud(_))
        ));
        assert!(matches!(
            parse_edited(|t| set_attr(t, "endpoint", "nowhere")),
            Err(E::BadEndpoint(_))
        ));
        assert!(matches!(
            parse_edited(|t| set_attr(t, "fingerprint", "ABCD")),
            Err(E::BadFingerprint(_))
        ));
        assert!(matches!(
            parse_edited(|t| set_attr(t, "fingerprint", &"A".repeat(64))),
            Err(E::BadFingerprint(_))
        ));
        assert!(matches!(
            parse_edited(|t| t.replacen(" cloud=", " extra=\"1\" cloud=", 1)),
            Err(E::UnknownAttribute {
                element: "announcement",
                ..
            })
        ));
        assert!(matches!(
            parse_edited(|t| t.replacen("<capacity ", "<capacity gpu=\"1\" ", 1)),
            Err(E::UnknownAttribute {
                element: "capacity",
                ..
            })
        ));
        assert!(matches!(
            parse_edited(|t| t.replacen("<certificate>", "<certificate x=\"1\">", 1)),
            Err(E::UnknownAttribute {
                element: "certificate",
                ..
            })
        ));
        assert!(matches!(
            parse_edited(|t| t.replace("</announcement>", "<extra/></announcement>")),
            Err(E::UnknownChild { .. })
        ));
        assert!(matches!(
            parse_edited(|t| t.replace(
                "</announcement>",
                "<capacity xmlns=\"urn:other\"/></announcement>"
            )),
            Err(E::UnknownChild { .. })
        ));
        assert!(matches!(
            parse_edited(|t| t.replace("</announcement>", "text</announcement>")),
            Err(E::UnexpectedText("announcement"))
        ));
        assert!(matches!(
            parse_edited(|t| t.replace(
                "</announcement>",
                "<capacity vcpu=\"1\" memory-mib=\"1\" storage-gib=\"1\"/></announcement>"
            )),
            Err(E::DuplicateChild("capacity"))
        ));
        assert!(matches!(
            parse_edited(|t| {
                let start = t.find("<signature").expect("sig");
                let end = t.find("</signature>").expect("end") + "</signature>".len();
                format!("{}{}", &t[..start], &t[end..])
            }),
            Err(E::MissingChild("signature"))
        ));
        assert!(matches!(
            parse_edited(|t| t.replacen("<certificate>", "<certificate>!!", 1)),
            Err(E::BadBase64("certificate"))
        ));
        assert!(matches!(
            parse_edited(|t| {
                let start = t.find("<certificate>").expect("c") + "<certificate>".len();
                let end = t.find("</certificate>").expect("end");
                format!("{}{}", &t[..start], &t[end..])
            }),
            Err(E::BadBase64("certificate"))
        ));
        assert!(matches!(
            parse_edited(|t| set_attr(t, "alg", "rsa-sha1")),
            Err(E::UnsupportedAlgorithm(_))
        ));
        let other: Element = "<announcement xmlns='urn:other'/>".parse().expect("xml");
        assert!(matches!(
            Announcement::from_element(&other),
            Err(E::NotAnAnnouncement { .. })
        ));
        let text_in_capacity: Element = round_trip_text(&sample(&pki().cloud_a, "cloud-a", 1, 1))
            .replacen("'/><certificate>", "'>5</capacity><certificate>", 1)
            .parse()
            .expect("xml");
        assert_eq!(
            Announcement::from_element(&text_in_capacity),
            Err(E::UnexpectedText("capacity"))
        );
    }

    #[test]
    fn timestamps_convert() {
        let now = time::macros::datetime!(2030-01-01 00:00:00.123 UTC);
        let mut a = sample(&pki().cloud_a, "cloud-a", unix_ms(now), 1);
        assert_eq!(a.timestamp(), Some(now));
        a.timestamp_ms = i64::MAX;
        assert_eq!(a.timestamp(), None);
    }
}
