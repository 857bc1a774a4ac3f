//! The XMPP driver: one task owns the tokio-xmpp client (which reconnects by
//! itself), joins the federation room, announces this broker, feeds received
//! presence to the [`PeerTable`], answers disco#info and negotiation offers,
//! and sends offers for the operator API. All decisions are made in
//! [`crate::presence`]; this file only moves stanzas.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use intercloud_proto::v1 as pb;
use intercloud_trust::CloudId;
use minidom::Element;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::parsers::disco::{DiscoInfoResult, Identity};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::muc::Muc;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::stanzastream::{Event, StanzaStream, StreamEvent};
use tokio_xmpp::xmlstream::Timeouts;
use tracing::{debug, info, warn};

use crate::config::Xmpp as XmppConfig;
use crate::core::BrokerCore;
use crate::link_state::Phase;
use crate::peers::NegotiateCommand;
use crate::presence::{
    self, Announcement, Answer, Capacity, LeaveReason, Offer, PeerEvent, PeerTable, Readiness,
    ReservationBook, Sender, SigningKey, UnsignedAnnouncement,
};
use crate::xmpp::connector::FederationStartTls;

const DISCO_INFO_NS: &str = "http://jabber.org/protocol/disco#info";
const MUC_USER_NS: &str = "http://jabber.org/protocol/muc#user";
/// How long the driver waits for one stanza to leave.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an offer waits for its answer.
const OFFER_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the driver needs besides the shared core.
#[derive(Debug, Clone)]
pub struct XmppSettings {
    /// The account.
    pub jid: BareJid,
    /// Its password.
    pub password: String,
    /// The connector (address + TLS).
    pub connector: FederationStartTls,
    /// The room.
    pub room: BareJid,
    /// Lease, announce interval, skew.
    pub lease: Duration,
    /// See [`XmppConfig::announce_seconds`].
    pub announce: Duration,
    /// See [`XmppConfig::max_skew_seconds`].
    pub max_skew: Duration,
    /// The operator API endpoint peers are told about.
    pub endpoint: String,
}

impl XmppSettings {
    /// Builds the settings from the configuration.
    pub fn from_config(
        config: &XmppConfig,
        password: String,
        ca_bundle: &std::path::Path,
        endpoint: String,
    ) -> Result<Self, String> {
        let tls = intercloud_trust::tls::TrustAnchors::load(ca_bundle)
            .and_then(|anchors| anchors.host_client_config())
            .map_err(|e| format!("xmpp.ca_bundle: {e}"))?;
        Ok(Self {
            jid: BareJid::new(&config.jid).map_err(|e| format!("xmpp.jid: {e}"))?,
            password,
            connector: FederationStartTls {
                server: config.server,
                tls,
            },
            room: BareJid::new(&config.room).map_err(|e| format!("xmpp.room: {e}"))?,
            lease: Duration::from_secs(config.lease_seconds),
            announce: Duration::from_secs(config.announce_seconds),
            max_skew: Duration::from_secs(config.max_skew_seconds),
            endpoint,
        })
    }
}

/// Runs the driver until `stopped` completes.
pub async fn run(core: Arc<BrokerCore>, settings: XmppSettings, stopped: impl Future<Output = ()>) {
    let (negotiations_tx, mut negotiations) = mpsc::channel(16);
    core.peers.set_negotiator(negotiations_tx);
    let client = StanzaStream::new_c2s(
        settings.connector.clone(),
        Jid::from(settings.jid.clone()),
        settings.password.clone(),
        Timeouts::tight(),
        64,
    );
    let total = capacity_of(&core);
    let mut driver = Driver {
        core,
        settings,
        client,
        table: PeerTable::new(Duration::ZERO),
        book: ReservationBook::new(total),
        occupants: BTreeMap::new(),
        online: false,
        joined: false,
        nick: String::new(),
        last_timestamp_ms: 0,
        sequence: 0,
        last_announced: None,
        signing_key: None,
        pending: BTreeMap::new(),
    };
    driver.table = PeerTable::new(driver.settings.lease);
    driver.nick = driver.core.config.cloud_id.to_string();
    let mut announce = tokio::time::interval(driver.settings.announce);
    announce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut housekeeping = tokio::time::interval(Duration::from_millis(250));
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            event = driver.client.next() => match event {
                Some(event) => driver.on_event(event).await,
                None => {
                    warn!("the XMPP client ended");
                    break;
                }
            },
            _ = announce.tick() => driver.announce(true).await,
            _ = housekeeping.tick() => driver.housekeeping().await,
            Some(command) = negotiations.recv() => driver.negotiate(command).await,
            () = &mut stopped => break,
        }
    }
    driver.core.peers.set_connected(false);
    if driver.online {
        let leave = Presence::new(PresenceType::Unavailable).with_to(driver.room_occupant());
        driver.send(leave.into()).await;
    }
    let _ = tokio::time::timeout(SEND_TIMEOUT, driver.client.close()).await;
}

fn capacity_of(core: &BrokerCore) -> Capacity {
    let c = &core.config.capacity;
    Capacity {
        vcpu: c.vcpu,
        memory_mib: c.memory_mib,
        storage_gib: c.storage_gib,
    }
}

struct Driver {
    core: Arc<BrokerCore>,
    settings: XmppSettings,
    client: StanzaStream,
    table: PeerTable,
    book: ReservationBook,
    /// Real full JIDs of the room's occupants, by cloud.
    occupants: BTreeMap<CloudId, FullJid>,
    online: bool,
    /// Whether the room has confirmed our join (self-presence, status 110).
    joined: bool,
    nick: String,
    last_timestamp_ms: i64,
    sequence: u64,
    /// What the last announcement said: readiness, free capacity, link
    /// phase and the descriptor version in force.
    last_announced: Option<(Readiness, Capacity, Phase, u64)>,
    /// The signing key of the certificate with this serial.
    signing_key: Option<(String, SigningKey)>,
    /// Our IQ requests awaiting an answer: id → (addressee, deadline, reply).
    pending: BTreeMap<String, PendingIq>,
}

/// What an IQ request of ours came back with.
type IqOutcome = Result<Option<Element>, StanzaError>;

struct PendingIq {
    to: Jid,
    deadline: tokio::time::Instant,
    reply: oneshot::Sender<IqOutcome>,
}

impl Driver {
    fn room_occupant(&self) -> FullJid {
        self.settings
            .room
            .with_resource_str(&self.nick)
            .unwrap_or_else(|_| {
                self.settings
                    .room
                    .with_resource_str("broker")
                    .expect("a constant resource is valid")
            })
    }

    async fn send(&mut self, stanza: Stanza) {
        // Only queues: the stream sends when it can.
        let _ = self.client.send(Box::new(stanza)).await;
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Stream(StreamEvent::Reset { bound_jid, .. }) => {
                info!(jid = %bound_jid, room = %self.settings.room, "XMPP online; joining the federation room");
                self.came_online().await;
            }
            Event::Stream(StreamEvent::Resumed) => {
                info!("XMPP stream resumed");
                self.came_online().await;
            }
            Event::Stream(StreamEvent::Suspended) => {
                if self.online {
                    warn!("XMPP connection lost; reconnecting with backoff");
                }
                self.online = false;
                self.core.peers.set_connected(false);
                // Presence seen through the lost connection is no longer
                // current: peers are offline until they announce again.
                let now = OffsetDateTime::now_utc();
                let clouds: Vec<CloudId> = self.occupants.keys().cloned().collect();
                self.occupants.clear();
                for cloud in clouds {
                    if let Some(event) = self.table.unavailable(now, &cloud) {
                        self.publish(now, event);
                    }
                }
            }
            Event::Stanza(Stanza::Presence(presence)) => {
                if self.join_refused(&presence) {
                    self.announce(true).await;
                } else {
                    self.on_presence(presence);
                }
            }
            Event::Stanza(Stanza::Iq(iq)) => self.on_iq(iq).await,
            Event::Stanza(Stanza::Message(_)) => {}
        }
    }

    async fn came_online(&mut self) {
        self.online = true;
        self.joined = false;
        self.core.peers.set_connected(true);
        self.last_announced = None;
        self.announce(true).await;
    }

    /// This broker's readiness, free capacity, link phase and descriptor
    /// version in force now.
    fn own_state(&self, now: OffsetDateTime) -> (Readiness, Capacity, Phase, u64) {
        let free = self.book.free(now);
        let phase = self.core.link(|l| l.phase);
        let readiness = Readiness {
            ready: phase == Phase::Federated && self.online,
            willing: self.core.config.capacity.willing,
            able: free.vcpu > 0 && free.memory_mib > 0,
        };
        (readiness, free, phase, self.core.descriptor_version())
    }

    /// Sends the join presence with a fresh signed announcement; with
    /// `always` false, only when readiness, capacity or the descriptor
    /// version changed (housekeeping asks every 250 ms).
    async fn announce(&mut self, always: bool) {
        let now = OffsetDateTime::now_utc();
        let own = self.own_state(now);
        let (readiness, free, _, descriptor_version) = own;
        self.core.peers.set_own(
            pb::Readiness {
                ready: readiness.ready,
                willing: readiness.willing,
                able: readiness.able,
            },
            pb::Capacity {
                vcpu: free.vcpu,
                memory_mib: free.memory_mib,
                storage_gib: free.storage_gib,
            },
        );
        if !self.online || (!always && self.last_announced == Some(own)) {
            return;
        }
        let announcement = match self.signed_announcement(now, readiness, free, descriptor_version)
        {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "cannot sign the presence announcement");
                return;
            }
        };
        let mut presence = Presence::new(PresenceType::None).with_to(self.room_occupant());
        // The MUC <x/> marks a join; once in the room, updates go without it
        // (a repeated join makes the room resend every occupant's presence).
        if !self.joined {
            presence.add_payload(Muc::new());
        }
        presence.payloads.push(announcement.to_element());
        self.send(presence.into()).await;
        self.last_announced = Some(own);
    }

    fn signed_announcement(
        &mut self,
        now: OffsetDateTime,
        readiness: Readiness,
        free: Capacity,
        descriptor_version: u64,
    ) -> Result<Announcement, String> {
        let identity = self.core.identity();
        // Parse the key once per certificate (it changes only on renewal).
        if self.signing_key.as_ref().map(|(serial, _)| serial) != Some(&identity.info.serial) {
            let key = SigningKey::from_private_key(&identity.credentials.key)
                .map_err(|e| e.to_string())?;
            self.signing_key = Some((identity.info.serial.clone(), key));
        }
        let Some((_, key)) = &self.signing_key else {
            return Err("no signing key".into());
        };
        let certificate_der = identity
            .credentials
            .chain
            .first()
            .ok_or("no certificate")?
            .to_vec();
        // Never go backwards, even if the clock does: peers refuse replays.
        self.last_timestamp_ms = self.last_timestamp_ms.max(presence::unix_ms(now));
        self.sequence += 1;
        let endpoint = self.settings.endpoint.clone();
        UnsignedAnnouncement {
            cloud: self.core.config.cloud_id.clone(),
            readiness,
            capacity: free,
            descriptor_version,
            grpc_endpoint: endpoint,
            timestamp_ms: self.last_timestamp_ms,
            sequence: self.sequence,
            certificate_der,
        }
        .sign(key)
        .map_err(|e| e.to_string())
    }

    /// Whether the room refused our join (e.g. someone holds our nick, 409);
    /// if so, picks another nick to try. Who we are is our real JID, not the
    /// nick, so any free nick will do.
    fn join_refused(&mut self, presence: &Presence) -> bool {
        if presence.type_ != PresenceType::Error
            || presence.from.as_ref() != Some(&Jid::from(self.room_occupant()))
        {
            return false;
        }
        let suffix: u16 = rand::random();
        let nick = format!("{}-{suffix:04x}", self.core.config.cloud_id);
        warn!(refused = %self.nick, retry_as = %nick, "the room refused our join; retrying under another nick");
        self.nick = nick;
        self.joined = false;
        true
    }

    fn on_presence(&mut self, presence: Presence) {
        let Some(from) = presence.from.clone().and_then(|j| j.try_into_full().ok()) else {
            return;
        };
        if from.to_bare() != self.settings.room {
            return;
        }
        let mut real_jid = None;
        let mut is_self = false;
        let mut announcement_element = None;
        for payload in &presence.payloads {
            if payload.is("x", MUC_USER_NS) {
                // Read only what is needed (the real JID and status 110),
                // leniently: servers add attributes and children freely.
                is_self = payload
                    .children()
                    .any(|c| c.name() == "status" && c.attr("code") == Some("110"));
                real_jid = payload
                    .children()
                    .find(|c| c.name() == "item")
                    .and_then(|item| item.attr("jid"))
                    .and_then(|jid| FullJid::new(jid).ok());
            } else if payload.is("announcement", presence::announcement::NS) {
                announcement_element = Some(payload.clone());
            }
        }
        if is_self {
            self.joined = presence.type_ != PresenceType::Unavailable;
            return;
        }
        let Some(real_jid) = real_jid else {
            warn!(occupant = %from, "presence without the occupant's real JID (is the room non-anonymous?); dropped");
            return;
        };
        let now = OffsetDateTime::now_utc();
        let domain = real_jid.domain().as_str().to_owned();
        if presence.type_ == PresenceType::Unavailable {
            if let Some(cloud) = self.cloud_of_domain(&domain)
                && self.occupants.get(&cloud) == Some(&real_jid)
            {
                self.occupants.remove(&cloud);
                if let Some(event) = self.table.unavailable(now, &cloud) {
                    self.publish(now, event);
                }
            }
            return;
        }
        let Some(element) = announcement_element else {
            debug!(occupant = %from, "presence without an announcement; ignored");
            return;
        };
        let size = String::from(&element).len();
        let result = presence::check_size(size)
            .map_err(|e| e.to_string())
            .and_then(|()| Announcement::from_element(&element).map_err(|e| e.to_string()))
            .and_then(|a| {
                presence::verify(
                    a,
                    &Sender {
                        real_jid_domain: domain.clone(),
                    },
                    &self.core.anchors(),
                    &self.core.config.federation,
                    now,
                    self.settings.max_skew,
                )
                .map_err(|e| e.to_string())
            });
        let verified = match result {
            Ok(v) => v,
            Err(reason) => {
                warn!(occupant = %from, real_jid = %real_jid, %reason, "announcement dropped");
                return;
            }
        };
        let cloud = verified.cloud().clone();
        match self.table.observe(now, verified) {
            Ok(event) => {
                self.occupants.insert(cloud, real_jid);
                if let Some(event) = event {
                    self.publish(now, event);
                } else {
                    self.refresh_view(now);
                }
            }
            Err(rejection) => warn!(occupant = %from, reason = %rejection, "announcement dropped"),
        }
    }

    fn cloud_of_domain(&self, domain: &str) -> Option<CloudId> {
        let suffix = format!(".{}", self.core.config.federation);
        domain
            .strip_suffix(&suffix)
            .and_then(|c| CloudId::new(c).ok())
    }

    async fn on_iq(&mut self, iq: Iq) {
        match iq {
            Iq::Get {
                from, id, payload, ..
            } if payload.is("query", DISCO_INFO_NS) => {
                let mut info = DiscoInfoResult {
                    node: None,
                    identities: vec![Identity::new("client", "bot", "en", "intercloud-broker")],
                    features: Default::default(),
                    extensions: Vec::new(),
                };
                info.features.insert(DISCO_INFO_NS.to_owned());
                for feature in presence::FEATURES {
                    info.features.insert((*feature).to_owned());
                }
                let reply = Iq::Result {
                    from: None,
                    to: from,
                    id,
                    payload: Some(info.into()),
                };
                self.send(reply.into()).await;
            }
            Iq::Set {
                from, id, payload, ..
            } if payload.is("offer", presence::negotiate::NS) => {
                let reply = self.answer_offer(from.as_ref(), &payload);
                let iq = match reply {
                    Ok(answer) => Iq::Result {
                        from: None,
                        to: from,
                        id,
                        payload: Some(answer.to_element()),
                    },
                    Err(error) => Iq::Error {
                        from: None,
                        to: from,
                        id,
                        error: *error,
                        payload: None,
                    },
                };
                self.send(iq.into()).await;
                self.announce(false).await;
            }
            Iq::Get { from, id, .. } | Iq::Set { from, id, .. } => {
                let error = StanzaError::new(
                    ErrorType::Cancel,
                    DefinedCondition::ServiceUnavailable,
                    "en",
                    "not supported by this broker",
                );
                self.send(
                    Iq::Error {
                        from: None,
                        to: from,
                        id,
                        error,
                        payload: None,
                    }
                    .into(),
                )
                .await;
            }
            Iq::Result {
                from, id, payload, ..
            } => self.answered(from, &id, Ok(payload)),
            Iq::Error {
                from, id, error, ..
            } => self.answered(from, &id, Err(error)),
        }
    }

    /// Hands an IQ answer to whoever asked, if it comes from the addressee.
    fn answered(&mut self, from: Option<Jid>, id: &str, outcome: IqOutcome) {
        match self.pending.remove(id) {
            Some(pending) if from.as_ref() == Some(&pending.to) => {
                let _ = pending.reply.send(outcome);
            }
            Some(pending) => {
                warn!(?from, expected = %pending.to, "IQ answer from the wrong sender; ignored");
                self.pending.insert(id.to_owned(), pending);
            }
            None => debug!(id, "IQ answer nobody waits for"),
        }
    }

    fn answer_offer(
        &mut self,
        from: Option<&Jid>,
        payload: &Element,
    ) -> Result<Answer, Box<StanzaError>> {
        let now = OffsetDateTime::now_utc();
        let refuse = |type_, condition, text: String| {
            Box::new(StanzaError::new(type_, condition, "en", text))
        };
        let Some(from) = from else {
            return Err(refuse(
                ErrorType::Auth,
                DefinedCondition::Forbidden,
                "offer without a sender".into(),
            ));
        };
        let cloud = self.cloud_of_domain(from.domain().as_str());
        let known = cloud
            .as_ref()
            .and_then(|c| self.table.peer(now, c))
            .filter(|p| p.online);
        let Some(peer) = known else {
            warn!(%from, "offer from a sender that is not an online, verified peer; refused");
            return Err(refuse(
                ErrorType::Auth,
                DefinedCondition::Forbidden,
                "offers are accepted only from peers whose signed presence was verified".into(),
            ));
        };
        let offer = match Offer::from_element(payload) {
            Ok(o) => o,
            Err(e) => {
                warn!(%from, error = %e, "malformed offer refused");
                return Err(refuse(
                    ErrorType::Modify,
                    DefinedCondition::BadRequest,
                    e.to_string(),
                ));
            }
        };
        if !self.core.config.capacity.willing {
            return Ok(Answer::Decline {
                reason: "this cloud's operator does not accept work now".into(),
            });
        }
        let answer = self.book.consider(
            now,
            peer.cloud.clone(),
            &offer,
            presence::new_reservation_id(),
        );
        info!(from = %peer.cloud, ?answer, "offer answered");
        Ok(answer)
    }

    async fn negotiate(&mut self, command: NegotiateCommand) {
        let NegotiateCommand { request, reply } = command;
        let fail = |reason: String| pb::NegotiateResponse {
            accepted: false,
            reason,
            ..Default::default()
        };
        let Ok(cloud) = CloudId::new(&request.cloud_id) else {
            let _ = reply.send(fail(format!("{:?} is not a cloud id", request.cloud_id)));
            return;
        };
        let Some(target) = self.occupants.get(&cloud).cloned() else {
            let _ = reply.send(fail(format!("{cloud} is not an online peer")));
            return;
        };
        let want = request.want.unwrap_or_default();
        let offer = Offer {
            resources: Capacity {
                vcpu: want.vcpu,
                memory_mib: want.memory_mib,
                storage_gib: want.storage_gib,
            },
            duration: Duration::from_secs(request.duration_seconds),
        };
        let id = presence::new_reservation_id();
        let to = Jid::from(target);
        let (answer_tx, answer_rx) = oneshot::channel();
        self.pending.insert(
            id.clone(),
            PendingIq {
                to: to.clone(),
                deadline: tokio::time::Instant::now() + OFFER_TIMEOUT,
                reply: answer_tx,
            },
        );
        let iq = Iq::Set {
            from: None,
            to: Some(to),
            id,
            payload: offer.to_element(),
        };
        self.send(iq.into()).await;
        tokio::spawn(async move {
            let outcome = match tokio::time::timeout(OFFER_TIMEOUT, answer_rx).await {
                Err(_) | Ok(Err(_)) => {
                    fail(format!("{cloud} did not answer within {OFFER_TIMEOUT:?}"))
                }
                Ok(Ok(Err(e))) => fail(format!(
                    "{cloud} refused the offer: {}",
                    e.texts
                        .values()
                        .next()
                        .cloned()
                        .unwrap_or_else(|| format!("{:?}", e.defined_condition))
                )),
                Ok(Ok(Ok(None))) => fail(format!("{cloud} answered without an answer")),
                Ok(Ok(Ok(Some(element)))) => match Answer::from_element(&element) {
                    Ok(Answer::Accept {
                        reservation,
                        expires_at,
                    }) => pb::NegotiateResponse {
                        accepted: true,
                        reservation_id: reservation,
                        expires_at: Some(intercloud_daemon::grpc::timestamp(expires_at)),
                        reason: String::new(),
                    },
                    Ok(Answer::Decline { reason }) => fail(reason),
                    Err(e) => fail(format!("{cloud} sent an unreadable answer: {e}")),
                },
            };
            let _ = reply.send(outcome);
        });
    }

    async fn housekeeping(&mut self) {
        let deadline = tokio::time::Instant::now();
        self.pending
            .retain(|_, p| p.deadline > deadline && !p.reply.is_closed());
        let now = OffsetDateTime::now_utc();
        let mut events = self.table.expire(now);
        let anchors = self.core.anchors();
        events.extend(
            self.table
                .forget_revoked(|serial| anchors.lists_serial(serial)),
        );
        for event in events {
            self.publish(now, event);
        }
        let expired = self.book.expire(now);
        if !expired.is_empty() {
            debug!(count = expired.len(), "reservations expired");
        }
        self.announce(false).await;
    }

    fn publish(&mut self, now: OffsetDateTime, event: PeerEvent) {
        let at = Some(intercloud_daemon::grpc::timestamp(now));
        let message = match &event {
            PeerEvent::Joined(peer) => {
                info!(peer = %peer.cloud, "peer joined");
                pb::PeerEvent {
                    kind: pb::peer_event::Kind::Joined as i32,
                    peer: Some(peer_message(peer)),
                    reason: String::new(),
                    at,
                }
            }
            PeerEvent::Updated(peer) => {
                debug!(peer = %peer.cloud, "peer updated");
                pb::PeerEvent {
                    kind: pb::peer_event::Kind::Updated as i32,
                    peer: Some(peer_message(peer)),
                    reason: String::new(),
                    at,
                }
            }
            PeerEvent::Left { cloud, reason } => {
                let reason = match reason {
                    LeaveReason::LeaseExpired => "lease expired",
                    LeaveReason::Unavailable => "went unavailable",
                    LeaveReason::Revoked => "certificate revoked",
                };
                info!(peer = %cloud, reason, "peer left");
                let peer = self
                    .table
                    .peer(now, cloud)
                    .map(|p| peer_message(&p))
                    .or_else(|| {
                        Some(pb::Peer {
                            cloud_id: cloud.to_string(),
                            ..Default::default()
                        })
                    });
                pb::PeerEvent {
                    kind: pb::peer_event::Kind::Left as i32,
                    peer,
                    reason: reason.to_owned(),
                    at,
                }
            }
        };
        self.refresh_view(now);
        self.core.peers.publish(message);
    }

    fn refresh_view(&self, now: OffsetDateTime) {
        self.core
            .peers
            .set_peers(self.table.peers(now).iter().map(peer_message).collect());
    }
}

fn peer_message(peer: &presence::Peer) -> pb::Peer {
    use intercloud_daemon::grpc::timestamp;
    pb::Peer {
        cloud_id: peer.cloud.to_string(),
        online: peer.online,
        readiness: Some(pb::Readiness {
            ready: peer.readiness.ready,
            willing: peer.readiness.willing,
            able: peer.readiness.able,
        }),
        free: Some(pb::Capacity {
            vcpu: peer.capacity.vcpu,
            memory_mib: peer.capacity.memory_mib,
            storage_gib: peer.capacity.storage_gib,
        }),
        descriptor_version: peer.descriptor_version,
        grpc_endpoint: peer.grpc_endpoint.clone(),
        certificate_fingerprint: peer.fingerprint.clone(),
        certificate_serial: peer.certificate_serial.clone(),
        certificate_not_after: Some(timestamp(peer.certificate_not_after)),
        last_seen: Some(timestamp(peer.last_seen)),
        announced_at: OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(peer.timestamp_ms) * 1_000_000,
        )
        .ok()
        .map(timestamp),
    }
}
