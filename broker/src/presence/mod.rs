//! Broker presence and negotiation as pure logic: no sockets, no files, no
//! clock. The XMPP driver feeds it what arrives, with `now`, and sends what
//! it returns.
//!
//! Map:
//! - [`announcement`]: the signed `<announcement>` in `urn:intercloud:presence:1`
//!   — fields, strict XML codec, canonical signing bytes, signing.
//! - [`verify`](mod@verify): whether a received announcement may be believed (fingerprint,
//!   chain to the federation CA, CRL, SPIFFE id = announced cloud, XMPP sender
//!   = that cloud's domain, signature, timestamp skew); a [`Rejection`] names why not.
//! - [`peer_table`]: peers from verified announcements, with replay refusal,
//!   leases and join / update / leave events.
//! - [`negotiate`]: `<offer>` / `<accept>` / `<decline>` in
//!   `urn:intercloud:negotiate:1` and the reservation book that answers offers.
//!
//! Flow on receipt of a presence: [`check_size`] → [`Announcement::from_element`]
//! → [`verify()`] → [`PeerTable::observe`]; any error is logged and the
//! presence dropped. Timers: [`PeerTable::next_expiry`] → [`PeerTable::expire`],
//! [`ReservationBook::next_expiry`] → [`ReservationBook::expire`].

pub mod announcement;
pub mod negotiate;
pub mod peer_table;
pub mod verify;

mod xml;

#[cfg(test)]
pub(crate) mod testing;

pub use announcement::{
    Announcement, AnnouncementError, Capacity, MAX_SERIALIZED_BYTES, Readiness, SignError,
    SigningKey, UnsignedAnnouncement, check_size, unix_ms,
};
pub use negotiate::{
    Answer, AnswerError, Offer, OfferError, Reservation, ReservationBook, ResourceKind,
    new_reservation_id,
};
pub use peer_table::{LeaveReason, Peer, PeerEvent, PeerTable};
pub use verify::{Rejection, Sender, VerifiedAnnouncement, expected_jid_domain, verify};

/// The features a broker lists in its disco#info (XEP-0030) answer.
pub const FEATURES: &[&str] = &[announcement::NS, negotiate::NS];
