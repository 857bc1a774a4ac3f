//! Broker-to-broker dialog in `urn:intercloud:negotiate:1`: an `<offer>`
//! (the payload of an IQ set) asks for resources for a while; the answer is
//! `<accept>` with a reservation id and expiry, or `<decline>` with a reason.
//!
//! ```xml
//! <offer xmlns="urn:intercloud:negotiate:1">
//!   <resource kind="vcpu" amount="4"/>
//!   <resource kind="memory" amount="8" unit="GiB"/>     <!-- MiB GiB TiB -->
//!   <resource kind="storage" amount="100" unit="GiB"/>  <!-- GiB TiB -->
//!   <duration seconds="3600"/>
//! </offer>
//! <accept xmlns="urn:intercloud:negotiate:1" reservation="<32 hex>" expires="<RFC 3339>"/>
//! <decline xmlns="urn:intercloud:negotiate:1" reason="insufficient memory: …"/>
//! ```
//!
//! An offer that does not parse gets an XMPP error reply whose text is the
//! [`OfferError`]'s Display; one that parses is put to the
//! [`ReservationBook`], which accepts it if it fits the free capacity.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use intercloud_trust::CloudId;
use minidom::Element;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::announcement::Capacity;
use super::xml::{has_text, is_digits, name, parse_u64, snippet, unknown_attribute};

/// The negotiation namespace.
pub const NS: &str = "urn:intercloud:negotiate:1";

/// Longest reservation an offer may ask for.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);
/// Most vCPUs an offer may ask for.
pub const MAX_VCPU: u64 = 1_000_000;
/// Most memory an offer may ask for: 1 PiB, in MiB.
pub const MAX_MEMORY_MIB: u64 = 1 << 30;
/// Most storage an offer may ask for: 1 EiB, in GiB.
pub const MAX_STORAGE_GIB: u64 = 1 << 30;

/// A kind of resource an offer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    /// Virtual CPUs (no unit).
    Vcpu,
    /// Memory (`MiB`, `GiB`, `TiB`).
    Memory,
    /// Storage (`GiB`, `TiB`).
    Storage,
}

impl ResourceKind {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "vcpu" => Some(Self::Vcpu),
            "memory" => Some(Self::Memory),
            "storage" => Some(Self::Storage),
            _ => None,
        }
    }

    /// The units this kind accepts, as listed in errors.
    fn units(self) -> &'static str {
        match self {
            Self::Vcpu => "none",
            Self::Memory => "MiB, GiB, TiB",
            Self::Storage => "GiB, TiB",
        }
    }

    /// How many base units (1, MiB, GiB) one `unit` is.
    fn multiplier(self, unit: &str) -> Option<u64> {
        match (self, unit) {
            (Self::Memory, "MiB") | (Self::Storage, "GiB") => Some(1),
            (Self::Memory, "GiB") | (Self::Storage, "TiB") => Some(1 << 10),
            (Self::Memory, "TiB") => Some(1 << 20),
            _ => None,
        }
    }

    /// The largest amount an offer may ask for, in base units, and how to say it.
    fn limit(self) -> (u64, &'static str) {
        match self {
            Self::Vcpu => (MAX_VCPU, "1000000 vcpu"),
            Self::Memory => (MAX_MEMORY_MIB, "1 PiB (1073741824 MiB)"),
            Self::Storage => (MAX_STORAGE_GIB, "1 EiB (1073741824 GiB)"),
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Vcpu => "vcpu",
            Self::Memory => "memory",
            Self::Storage => "storage",
        })
    }
}

/// What a peer asks for: resources (kinds not mentioned are zero) for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// vCPUs, memory in MiB, storage in GiB.
    pub resources: Capacity,
    /// How long to hold them, 1 s to [`MAX_DURATION`].
    pub duration: Duration,
}

/// Why an `<offer>` was refused; the Display goes into the XMPP error reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OfferError {
    /// The element is not `<offer xmlns="urn:intercloud:negotiate:1">`.
    #[error("expected <offer xmlns=\"{NS}\">, got <{name} xmlns=\"{ns}\">")]
    NotAnOffer {
        /// The element's name.
        name: String,
        /// Its namespace.
        ns: String,
    },
    /// A child that is not `<resource>` or `<duration>`.
    #[error(
        "unknown element <{name} xmlns=\"{ns}\"> in the offer (expected <resource> and <duration>)"
    )]
    UnknownChild {
        /// Its name.
        name: String,
        /// Its namespace.
        ns: String,
    },
    /// An attribute that is not part of the format.
    #[error("unknown attribute {attribute:?} on <{element}>")]
    UnknownAttribute {
        /// The element.
        element: &'static str,
        /// The attribute.
        attribute: String,
    },
    /// Text or child elements where none belong.
    #[error("<{0}> must not contain text or child elements")]
    UnexpectedContent(&'static str),
    /// A `<resource>` without `kind`.
    #[error("a <resource> lacks its kind attribute (vcpu, memory or storage)")]
    MissingKind,
    /// A kind other than vcpu, memory, storage.
    #[error("unknown resource kind {0:?} (expected vcpu, memory or storage)")]
    UnknownKind(String),
    /// The same kind asked for twice.
    #[error("{0} is asked for more than once")]
    DuplicateKind(ResourceKind),
    /// A `<resource>` without `amount`.
    #[error("{0} lacks its amount attribute")]
    MissingAmount(ResourceKind),
    /// The amount is not a non-negative integer.
    #[error("{kind} amount {value:?} is not a non-negative integer")]
    BadAmount {
        /// The resource.
        kind: ResourceKind,
        /// The value given.
        value: String,
    },
    /// vcpu has no unit.
    #[error("vcpu takes no unit, got unit {0:?}")]
    UnexpectedUnit(String),
    /// memory and storage need a unit.
    #[error("{kind} needs a unit ({allowed})", allowed = .0.units(), kind = .0)]
    MissingUnit(ResourceKind),
    /// A unit this kind does not take.
    #[error("unknown unit {unit:?} for {kind} (expected one of {allowed})", allowed = .kind.units())]
    UnknownUnit {
        /// The resource.
        kind: ResourceKind,
        /// The unit given.
        unit: String,
    },
    /// More than the federation allows in one offer (or than fits in 64 bits).
    #[error("{kind} amount too large: at most {limit} per offer", limit = .kind.limit().1)]
    TooLarge {
        /// The resource.
        kind: ResourceKind,
    },
    /// No `<resource>` at all.
    #[error("the offer asks for no resource (add <resource kind=… amount=…/>)")]
    NoResources,
    /// No `<duration>`.
    #[error("the offer lacks <duration seconds=\"…\"/>")]
    MissingDuration,
    /// More than one `<duration>`.
    #[error("the offer has more than one <duration>")]
    DuplicateDuration,
    /// `<duration>` without `seconds`.
    #[error("<duration> lacks its seconds attribute")]
    MissingSeconds,
    /// `seconds` is not a non-negative integer.
    #[error("duration seconds {0:?} is not a non-negative integer")]
    BadDuration(String),
    /// `seconds` is 0 or more than [`MAX_DURATION`].
    #[error("duration must be 1 to 2592000 seconds (30 days), got {0}")]
    DurationOutOfRange(String),
}

impl Offer {
    /// Reads an `<offer>` strictly.
    pub fn from_element(element: &Element) -> Result<Offer, OfferError> {
        if !element.is("offer", NS) {
            return Err(OfferError::NotAnOffer {
                name: snippet(element.name()),
                ns: snippet(&element.ns()),
            });
        }
        if let Some(attribute) = unknown_attribute(element, &[]) {
            return Err(OfferError::UnknownAttribute {
                element: "offer",
                attribute,
            });
        }
        if has_text(element) {
            return Err(OfferError::UnexpectedContent("offer"));
        }
        let mut resources: BTreeMap<ResourceKind, u64> = BTreeMap::new();
        let mut duration = None;
        for child in element.children() {
            if child.is("resource", NS) {
                let (kind, amount) = parse_resource(child)?;
                if resources.insert(kind, amount).is_some() {
                    return Err(OfferError::DuplicateKind(kind));
                }
            } else if child.is("duration", NS) {
                if duration.replace(parse_duration(child)?).is_some() {
                    return Err(OfferError::DuplicateDuration);
                }
            } else {
                return Err(OfferError::UnknownChild {
                    name: snippet(child.name()),
                    ns: snippet(&child.ns()),
                });
            }
        }
        if resources.is_empty() {
            return Err(OfferError::NoResources);
        }
        let duration = duration.ok_or(OfferError::MissingDuration)?;
        let amount = |kind| resources.get(&kind).copied().unwrap_or(0);
        Ok(Offer {
            resources: Capacity {
                vcpu: u32::try_from(amount(ResourceKind::Vcpu)).map_err(|_| {
                    OfferError::TooLarge {
                        kind: ResourceKind::Vcpu,
                    }
                })?,
                memory_mib: amount(ResourceKind::Memory),
                storage_gib: amount(ResourceKind::Storage),
            },
            duration,
        })
    }

    /// The `<offer>` element, for the requesting side's IQ set. Every kind
    /// is listed, in its base unit.
    pub fn to_element(&self) -> Element {
        let resource = |kind: &str, amount: u64, unit: Option<&str>| {
            Element::builder("resource", NS)
                .attr(name("kind"), kind)
                .attr(name("amount"), amount.to_string())
                .attr(name("unit"), unit)
                .build()
        };
        Element::builder("offer", NS)
            .append(resource("vcpu", u64::from(self.resources.vcpu), None))
            .append(resource("memory", self.resources.memory_mib, Some("MiB")))
            .append(resource("storage", self.resources.storage_gib, Some("GiB")))
            .append(
                Element::builder("duration", NS)
                    .attr(name("seconds"), self.duration.as_secs().to_string())
                    .build(),
            )
            .build()
    }
}

fn empty(element: &Element) -> bool {
    !has_text(element) && element.children().next().is_none()
}

/// One `<resource>`: its kind and amount in base units, within limits.
fn parse_resource(element: &Element) -> Result<(ResourceKind, u64), OfferError> {
    if let Some(attribute) = unknown_attribute(element, &["kind", "amount", "unit"]) {
        return Err(OfferError::UnknownAttribute {
            element: "resource",
            attribute,
        });
    }
    if !empty(element) {
        return Err(OfferError::UnexpectedContent("resource"));
    }
    let kind_text = element.attr("kind").ok_or(OfferError::MissingKind)?;
    let kind = ResourceKind::parse(kind_text)
        .ok_or_else(|| OfferError::UnknownKind(snippet(kind_text)))?;
    let amount_text = element
        .attr("amount")
        .ok_or(OfferError::MissingAmount(kind))?;
    let amount = match parse_u64(amount_text) {
        Some(amount) => amount,
        None if is_digits(amount_text) => return Err(OfferError::TooLarge { kind }),
        None => {
            return Err(OfferError::BadAmount {
                kind,
                value: snippet(amount_text),
            });
        }
    };
    let multiplier = match (kind, element.attr("unit")) {
        (ResourceKind::Vcpu, None) => 1,
        (ResourceKind::Vcpu, Some(unit)) => return Err(OfferError::UnexpectedUnit(snippet(unit))),
        (_, None) => return Err(OfferError::MissingUnit(kind)),
        (_, Some(unit)) => kind
            .multiplier(unit)
            .ok_or_else(|| OfferError::UnknownUnit {
                kind,
                unit: snippet(unit),
            })?,
    };
    let base = amount
        .checked_mul(multiplier)
        .filter(|base| *base <= kind.limit().0)
        .ok_or(OfferError::TooLarge { kind })?;
    Ok((kind, base))
}

fn parse_duration(element: &Element) -> Result<Duration, OfferError> {
    if let Some(attribute) = unknown_attribute(element, &["seconds"]) {
        return Err(OfferError::UnknownAttribute {
            element: "duration",
            attribute,
        });
    }
    if !empty(element) {
        return Err(OfferError::UnexpectedContent("duration"));
    }
    let text = element.attr("seconds").ok_or(OfferError::MissingSeconds)?;
    match parse_u64(text) {
        Some(seconds) if (1..=MAX_DURATION.as_secs()).contains(&seconds) => {
            Ok(Duration::from_secs(seconds))
        }
        Some(_) => Err(OfferError::DurationOutOfRange(text.to_owned())),
        None if is_digits(text) => Err(OfferError::DurationOutOfRange(snippet(text))),
        None => Err(OfferError::BadDuration(snippet(text))),
    }
}

/// The answer to an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The resources are held until `expires_at` under `reservation`.
    Accept {
        /// The reservation id (see [`new_reservation_id`]).
        reservation: String,
        /// When the hold ends unless used (whole seconds).
        expires_at: OffsetDateTime,
    },
    /// Not this time.
    Decline {
        /// Why, for the requesting operator.
        reason: String,
    },
}

/// Why an `<accept>` / `<decline>` from a peer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// Neither `<accept>` nor `<decline>` in the negotiation namespace.
    #[error("expected <accept> or <decline xmlns=\"{NS}\">, got <{name} xmlns=\"{ns}\">")]
    NotAnAnswer {
        /// The element's name.
        name: String,
        /// Its namespace.
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
    #[error("unknown attribute {attribute:?} on <{element}>")]
    UnknownAttribute {
        /// The element.
        element: &'static str,
        /// The attribute.
        attribute: String,
    },
    /// Text or child elements where none belong.
    #[error("<{0}> must not contain text or child elements")]
    UnexpectedContent(&'static str),
    /// The reservation id is not 1-64 ASCII letters, digits or '-'.
    #[error("reservation id {0:?} is not 1-64 ASCII letters, digits or '-'")]
    BadReservation(String),
    /// `expires` is not an RFC 3339 time.
    #[error("expires {0:?} is not an RFC 3339 time")]
    BadExpiry(String),
}

impl Answer {
    /// The `<accept>` or `<decline>` element, for the IQ result.
    pub fn to_element(&self) -> Element {
        match self {
            Answer::Accept {
                reservation,
                expires_at,
            } => Element::builder("accept", NS)
                .attr(name("reservation"), reservation.as_str())
                .attr(name("expires"), rfc3339(*expires_at))
                .build(),
            Answer::Decline { reason } => Element::builder("decline", NS)
                .attr(name("reason"), reason.as_str())
                .build(),
        }
    }

    /// Reads an `<accept>` or `<decline>` strictly.
    pub fn from_element(element: &Element) -> Result<Answer, AnswerError> {
        let (el, allowed): (&'static str, &[&str]) = if element.is("accept", NS) {
            ("accept", &["reservation", "expires"])
        } else if element.is("decline", NS) {
            ("decline", &["reason"])
        } else {
            return Err(AnswerError::NotAnAnswer {
                name: snippet(element.name()),
                ns: snippet(&element.ns()),
            });
        };
        if let Some(attribute) = unknown_attribute(element, allowed) {
            return Err(AnswerError::UnknownAttribute {
                element: el,
                attribute,
            });
        }
        if !empty(element) {
            return Err(AnswerError::UnexpectedContent(el));
        }
        let required = |attribute: &'static str| {
            element
                .attr(attribute)
                .ok_or(AnswerError::MissingAttribute {
                    element: el,
                    attribute,
                })
        };
        if el == "decline" {
            return Ok(Answer::Decline {
                reason: bounded_reason(required("reason")?),
            });
        }
        let reservation = required("reservation")?;
        if !is_reservation_id(reservation) {
            return Err(AnswerError::BadReservation(snippet(reservation)));
        }
        let expires = required("expires")?;
        let expires_at = OffsetDateTime::parse(expires, &Rfc3339)
            .map_err(|_| AnswerError::BadExpiry(snippet(expires)))?;
        Ok(Answer::Accept {
            reservation: reservation.to_owned(),
            expires_at,
        })
    }
}

fn is_reservation_id(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A peer's decline reason, printable and at most 1024 characters.
fn bounded_reason(text: &str) -> String {
    text.chars()
        .take(1024)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn rfc3339(t: OffsetDateTime) -> String {
    // Fails only for years outside 0..=9999, which `now + 30 days` never reaches;
    // an empty attribute would then be refused by the peer as a bad expiry.
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// A fresh reservation id: 128 random bits, lower-case hex.
pub fn new_reservation_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Resources held for a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The id given in the accept.
    pub id: String,
    /// Who asked.
    pub from: CloudId,
    /// What is held.
    pub resources: Capacity,
    /// When the hold ends.
    pub expires_at: OffsetDateTime,
}

/// This cloud's capacity and the reservations held against it.
#[derive(Debug, Clone)]
pub struct ReservationBook {
    total: Capacity,
    reservations: BTreeMap<String, Reservation>,
}

impl ReservationBook {
    /// A book over `total` capacity, nothing reserved.
    pub fn new(total: Capacity) -> Self {
        Self {
            total,
            reservations: BTreeMap::new(),
        }
    }

    /// The capacity reservations are taken from.
    pub fn total(&self) -> Capacity {
        self.total
    }

    /// Changes the total (e.g. the cloud grew or shrank); existing
    /// reservations stay.
    pub fn set_total(&mut self, total: Capacity) {
        self.total = total;
    }

    /// Accepts `offer` from `from` if it fits the free capacity at `now`,
    /// recording a reservation `id` (see [`new_reservation_id`]) that
    /// expires after the offer's duration; declines naming the first
    /// resource short otherwise.
    pub fn consider(
        &mut self,
        now: OffsetDateTime,
        from: CloudId,
        offer: &Offer,
        id: String,
    ) -> Answer {
        let free = self.free(now);
        let want = offer.resources;
        let shortage = if want.vcpu > free.vcpu {
            Some(format!(
                "insufficient vcpu: want {}, free {}",
                want.vcpu, free.vcpu
            ))
        } else if want.memory_mib > free.memory_mib {
            Some(format!(
                "insufficient memory: want {} MiB, free {} MiB",
                want.memory_mib, free.memory_mib
            ))
        } else if want.storage_gib > free.storage_gib {
            Some(format!(
                "insufficient storage: want {} GiB, free {} GiB",
                want.storage_gib, free.storage_gib
            ))
        } else {
            None
        };
        if let Some(reason) = shortage {
            return Answer::Decline { reason };
        }
        if self.reservations.contains_key(&id) {
            return Answer::Decline {
                reason: "reservation id already in use, try again".into(),
            };
        }
        let Some(expires_at) = time::Duration::try_from(offer.duration)
            .ok()
            .and_then(|d| now.checked_add(d))
            .map(|t| t.replace_nanosecond(0).unwrap_or(t))
        else {
            return Answer::Decline {
                reason: "duration out of range".into(),
            };
        };
        self.reservations.insert(
            id.clone(),
            Reservation {
                id: id.clone(),
                from,
                resources: want,
                expires_at,
            },
        );
        Answer::Accept {
            reservation: id,
            expires_at,
        }
    }

    /// Removes and returns the reservations whose hold has ended at `now`.
    pub fn expire(&mut self, now: OffsetDateTime) -> Vec<Reservation> {
        let ended: Vec<String> = self
            .reservations
            .values()
            .filter(|r| r.expires_at <= now)
            .map(|r| r.id.clone())
            .collect();
        ended
            .iter()
            .filter_map(|id| self.reservations.remove(id))
            .collect()
    }

    /// Total minus the reservations still held at `now`: what to announce.
    pub fn free(&self, now: OffsetDateTime) -> Capacity {
        let held = self
            .reservations
            .values()
            .filter(|r| r.expires_at > now)
            .fold(Capacity::default(), |sum, r| {
                sum.saturating_add(&r.resources)
            });
        self.total.saturating_sub(&held)
    }

    /// Ends a reservation early (used or cancelled); whether it existed.
    pub fn release(&mut self, id: &str) -> bool {
        self.reservations.remove(id).is_some()
    }

    /// The reservations still held at `now`, by id.
    pub fn reservations(&self, now: OffsetDateTime) -> Vec<Reservation> {
        self.reservations
            .values()
            .filter(|r| r.expires_at > now)
            .cloned()
            .collect()
    }

    /// When the next reservation ends: the time to call [`expire`](Self::expire).
    pub fn next_expiry(&self) -> Option<OffsetDateTime> {
        self.reservations.values().map(|r| r.expires_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::testing::{NOW, cloud};

    fn parse(xml: &str) -> Result<Offer, OfferError> {
        let element: Element = xml.parse().expect("XML");
        Offer::from_element(&element)
    }

    fn offer_with(resources: &str, duration: &str) -> Result<Offer, OfferError> {
        parse(&format!(
            "<offer xmlns='{NS}'>{resources}{duration}</offer>"
        ))
    }

    fn one(resource: &str) -> Result<Offer, OfferError> {
        offer_with(resource, "<duration seconds='3600'/>")
    }

    #[test]
    fn parses_the_documented_offer() {
        let offer = parse(&format!(
            "<offer xmlns='{NS}'>
               <resource kind='vcpu' amount='4'/>
               <resource kind='memory' amount='8' unit='GiB'/>
               <resource kind='storage' amount='1' unit='TiB'/>
               <duration seconds='3600'/>
             </offer>"
        ))
        .expect("valid");
        assert_eq!(
            offer,
            Offer {
                resources: Capacity {
                    vcpu: 4,
                    memory_mib: 8192,
                    storage_gib: 1024
                },
                duration: Duration::from_secs(3600),
            }
        );
        let again = Offer::from_element(&offer.to_element()).expect("round trip");
        assert_eq!(again, offer);
        let text: Element = String::from(&offer.to_element()).parse().expect("XML");
        assert_eq!(Offer::from_element(&text), Ok(offer));
    }

    #[test]
    fn units_convert() {
        let memory = |unit: &str| {
            one(&format!(
                "<resource kind='memory' amount='2' unit='{unit}'/>"
            ))
        };
        assert_eq!(memory("MiB").map(|o| o.resources.memory_mib), Ok(2));
        assert_eq!(memory("GiB").map(|o| o.resources.memory_mib), Ok(2048));
        assert_eq!(memory("TiB").map(|o| o.resources.memory_mib), Ok(2 << 20));
        let storage = one("<resource kind='storage' amount='2' unit='TiB'/>").expect("ok");
        assert_eq!(
            storage.resources,
            Capacity {
                vcpu: 0,
                memory_mib: 0,
                storage_gib: 2048
            }
        );
        // Limits are inclusive.
        assert!(one("<resource kind='memory' amount='1024' unit='TiB'/>").is_ok());
        assert!(one("<resource kind='vcpu' amount='1000000'/>").is_ok());
        assert!(one("<resource kind='vcpu' amount='0'/>").is_ok());
    }

    #[test]
    fn nonsense_amounts_are_refused_naming_the_resource() {
        for value in ["-1", "1.5", "lots", "", " 4", "+4", "1e3"] {
            let err = one(&format!(
                "<resource kind='memory' amount='{value}' unit='GiB'/>"
            ))
            .expect_err(value);
            assert_eq!(
                err,
                OfferError::BadAmount {
                    kind: ResourceKind::Memory,
                    value: value.into()
                }
            );
            assert!(err.to_string().starts_with("memory amount"), "{err}");
        }
        let err = one("<resource kind='vcpu' amount='-1'/>").expect_err("negative");
        assert_eq!(
            err.to_string(),
            "vcpu amount \"-1\" is not a non-negative integer"
        );
    }

    #[test]
    fn huge_amounts_are_too_large() {
        for (resource, kind) in [
            (
                "<resource kind='vcpu' amount='1000001'/>",
                ResourceKind::Vcpu,
            ),
            (
                "<resource kind='vcpu' amount='99999999999999999999999'/>",
                ResourceKind::Vcpu,
            ),
            (
                "<resource kind='memory' amount='1025' unit='TiB'/>",
                ResourceKind::Memory,
            ),
            (
                "<resource kind='memory' amount='18446744073709551615' unit='TiB'/>",
                ResourceKind::Memory,
            ),
            (
                "<resource kind='storage' amount='18446744073709551615' unit='GiB'/>",
                ResourceKind::Storage,
            ),
            (
                "<resource kind='storage' amount='1048577' unit='TiB'/>",
                ResourceKind::Storage,
            ),
        ] {
            let err = one(resource).expect_err(resource);
            assert_eq!(err, OfferError::TooLarge { kind }, "{resource}");
            assert!(err.to_string().contains("too large"));
        }
    }

    #[test]
    fn units_must_fit_the_kind() {
        assert_eq!(
            one("<resource kind='memory' amount='8' unit='GB'/>"),
            Err(OfferError::UnknownUnit {
                kind: ResourceKind::Memory,
                unit: "GB".into()
            })
        );
        let err = one("<resource kind='storage' amount='8' unit='MiB'/>").expect_err("MiB");
        assert_eq!(
            err.to_string(),
            "unknown unit \"MiB\" for storage (expected one of GiB, TiB)"
        );
        assert_eq!(
            one("<resource kind='vcpu' amount='8' unit='GiB'/>"),
            Err(OfferError::UnexpectedUnit("GiB".into()))
        );
        let err = one("<resource kind='memory' amount='8'/>").expect_err("no unit");
        assert_eq!(err, OfferError::MissingUnit(ResourceKind::Memory));
        assert_eq!(err.to_string(), "memory needs a unit (MiB, GiB, TiB)");
    }

    #[test]
    fn structure_errors() {
        assert_eq!(
            one("<resource kind='gpu' amount='1'/>"),
            Err(OfferError::UnknownKind("gpu".into()))
        );
        assert_eq!(one("<resource amount='1'/>"), Err(OfferError::MissingKind));
        assert_eq!(
            one("<resource kind='vcpu'/>"),
            Err(OfferError::MissingAmount(ResourceKind::Vcpu))
        );
        assert_eq!(
            one("<resource kind='vcpu' amount='1'/><resource kind='vcpu' amount='2'/>"),
            Err(OfferError::DuplicateKind(ResourceKind::Vcpu))
        );
        assert!(matches!(
            one("<resource kind='vcpu' amount='1' colour='red'/>"),
            Err(OfferError::UnknownAttribute {
                element: "resource",
                ..
            })
        ));
        assert_eq!(
            one("<resource kind='vcpu' amount='1'>4</resource>"),
            Err(OfferError::UnexpectedContent("resource"))
        );
        assert!(matches!(
            one("<resource kind='vcpu' amount='1'/><price/>"),
            Err(OfferError::UnknownChild { .. })
        ));
        assert_eq!(
            offer_with("", "<duration seconds='60'/>"),
            Err(OfferError::NoResources)
        );
        assert_eq!(
            offer_with("<resource kind='vcpu' amount='1'/>", ""),
            Err(OfferError::MissingDuration)
        );
        assert_eq!(
            offer_with(
                "<resource kind='vcpu' amount='1'/>",
                "<duration seconds='60'/><duration seconds='60'/>"
            ),
            Err(OfferError::DuplicateDuration)
        );
        assert!(matches!(
            parse("<offer xmlns='urn:other'/>"),
            Err(OfferError::NotAnOffer { .. })
        ));
        assert!(matches!(
            parse(&format!("<offer xmlns='{NS}' urgent='yes'/>")),
            Err(OfferError::UnknownAttribute {
                element: "offer",
                ..
            })
        ));
        assert_eq!(
            parse(&format!("<offer xmlns='{NS}'>please</offer>")),
            Err(OfferError::UnexpectedContent("offer"))
        );
    }

    #[test]
    fn durations_are_bounded() {
        let with = |d: &str| offer_with("<resource kind='vcpu' amount='1'/>", d);
        assert_eq!(with("<duration/>"), Err(OfferError::MissingSeconds));
        for bad in ["-5", "1.5", "soon", ""] {
            assert_eq!(
                with(&format!("<duration seconds='{bad}'/>")),
                Err(OfferError::BadDuration(bad.into()))
            );
        }
        for out in ["0", "2592001", "99999999999999999999999"] {
            assert_eq!(
                with(&format!("<duration seconds='{out}'/>")),
                Err(OfferError::DurationOutOfRange(out.into()))
            );
        }
        assert_eq!(
            with("<duration seconds='2592000'/>").map(|o| o.duration),
            Ok(MAX_DURATION)
        );
        assert_eq!(
            with("<duration seconds='1'/>").map(|o| o.duration),
            Ok(Duration::from_secs(1))
        );
    }

    #[test]
    fn answers_round_trip() {
        let accept = Answer::Accept {
            reservation: new_reservation_id(),
            expires_at: time::macros::datetime!(2030-01-01 01:00 UTC),
        };
        let decline = Answer::Decline {
            reason: "insufficient memory: want 8192 MiB, free 4096 MiB".into(),
        };
        for answer in [accept, decline] {
            let element = answer.to_element();
            let text: Element = String::from(&element).parse().expect("XML");
            assert_eq!(Answer::from_element(&text), Ok(answer));
        }
        let element: Element =
            format!("<accept xmlns='{NS}' reservation='abc' expires='2030-01-01T01:00:00+02:00'/>")
                .parse()
                .expect("XML");
        assert_eq!(
            Answer::from_element(&element),
            Ok(Answer::Accept {
                reservation: "abc".into(),
                expires_at: time::macros::datetime!(2029-12-31 23:00 UTC)
            })
        );
    }

    #[test]
    fn malformed_answers_are_refused() {
        let parse = |xml: &str| {
            let element: Element = xml.replace("NS", NS).parse().expect("XML");
            Answer::from_element(&element)
        };
        assert!(matches!(
            parse("<maybe xmlns='NS'/>"),
            Err(AnswerError::NotAnAnswer { .. })
        ));
        assert!(matches!(
            parse("<accept xmlns='urn:other' reservation='a' expires='2030-01-01T00:00:00Z'/>"),
            Err(AnswerError::NotAnAnswer { .. })
        ));
        assert_eq!(
            parse("<accept xmlns='NS' expires='2030-01-01T00:00:00Z'/>"),
            Err(AnswerError::MissingAttribute {
                element: "accept",
                attribute: "reservation"
            })
        );
        assert_eq!(
            parse("<accept xmlns='NS' reservation='a'/>"),
            Err(AnswerError::MissingAttribute {
                element: "accept",
                attribute: "expires"
            })
        );
        assert!(matches!(
            parse("<accept xmlns='NS' reservation='a b' expires='2030-01-01T00:00:00Z'/>"),
            Err(AnswerError::BadReservation(_))
        ));
        assert!(matches!(
            parse("<accept xmlns='NS' reservation='a' expires='tomorrow'/>"),
            Err(AnswerError::BadExpiry(_))
        ));
        assert!(matches!(
            parse("<decline xmlns='NS' reason='no' extra='1'/>"),
            Err(AnswerError::UnknownAttribute {
                element: "decline",
                ..
            })
        ));
        assert_eq!(
            parse("<decline xmlns='NS'/>"),
            Err(AnswerError::MissingAttribute {
                element: "decline",
                attribute: "reason"
            })
        );
        assert_eq!(
            parse("<decline xmlns='NS' reason='no'><why/></decline>"),
            Err(AnswerError::UnexpectedContent("decline"))
        );
    }

    fn offer(vcpu: u32, memory_mib: u64, storage_gib: u64, secs: u64) -> Offer {
        Offer {
            resources: Capacity {
                vcpu,
                memory_mib,
                storage_gib,
            },
            duration: Duration::from_secs(secs),
        }
    }

    const TOTAL: Capacity = Capacity {
        vcpu: 8,
        memory_mib: 16_384,
        storage_gib: 100,
    };

    #[test]
    fn accepts_what_fits_and_holds_it_until_expiry() {
        let mut book = ReservationBook::new(TOTAL);
        assert_eq!(book.free(NOW), TOTAL);
        let answer = book.consider(
            NOW,
            cloud("cloud-b"),
            &offer(4, 12_288, 10, 60),
            "r1".into(),
        );
        assert_eq!(
            answer,
            Answer::Accept {
                reservation: "r1".into(),
                expires_at: NOW + Duration::from_secs(60)
            }
        );
        assert_eq!(
            book.free(NOW),
            Capacity {
                vcpu: 4,
                memory_mib: 4096,
                storage_gib: 90
            }
        );
        assert_eq!(book.reservations(NOW).len(), 1);
        assert_eq!(book.next_expiry(), Some(NOW + Duration::from_secs(60)));

        let answer = book.consider(NOW, cloud("cloud-c"), &offer(1, 8192, 1, 60), "r2".into());
        assert_eq!(
            answer,
            Answer::Decline {
                reason: "insufficient memory: want 8192 MiB, free 4096 MiB".into()
            }
        );
        assert_eq!(
            book.consider(NOW, cloud("cloud-c"), &offer(5, 0, 0, 60), "r2".into()),
            Answer::Decline {
                reason: "insufficient vcpu: want 5, free 4".into()
            }
        );
        assert_eq!(
            book.consider(NOW, cloud("cloud-c"), &offer(0, 0, 91, 60), "r2".into()),
            Answer::Decline {
                reason: "insufficient storage: want 91 GiB, free 90 GiB".into()
            }
        );
        assert!(matches!(
            book.consider(NOW, cloud("cloud-c"), &offer(1, 1, 1, 60), "r1".into()),
            Answer::Decline { .. }
        ));

        // At expiry the hold is gone, whether or not expire() ran.
        let end = NOW + Duration::from_secs(60);
        assert_eq!(book.free(end), TOTAL);
        assert!(book.expire(end - Duration::from_secs(1)).is_empty());
        let expired = book.expire(end);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].id, "r1");
        assert_eq!(expired[0].from, cloud("cloud-b"));
        assert_eq!(book.next_expiry(), None);
        assert!(matches!(
            book.consider(end, cloud("cloud-c"), &offer(1, 8192, 1, 60), "r2".into()),
            Answer::Accept { .. }
        ));
    }

    #[test]
    fn releasing_frees_capacity() {
        let mut book = ReservationBook::new(TOTAL);
        book.consider(NOW, cloud("cloud-b"), &offer(8, 0, 0, 600), "r1".into());
        assert_eq!(book.free(NOW).vcpu, 0);
        assert!(book.release("r1"));
        assert!(!book.release("r1"));
        assert_eq!(book.free(NOW), TOTAL);
        // Shrinking the total below what is held floors at zero.
        book.consider(NOW, cloud("cloud-b"), &offer(8, 0, 0, 600), "r2".into());
        book.set_total(Capacity { vcpu: 2, ..TOTAL });
        assert_eq!(book.free(NOW).vcpu, 0);
        assert_eq!(book.total().vcpu, 2);
    }

    #[test]
    fn reservation_ids_are_128_bit_hex() {
        let a = new_reservation_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_reservation_id());
        assert!(is_reservation_id(&a));
    }
}
