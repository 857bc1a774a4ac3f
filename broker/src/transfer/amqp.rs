//! The AMQP side of transfers: the connection to RabbitMQ (TLS with the
//! broker's certificate, SASL EXTERNAL), the queue names, and publishing
//! with the properties every transfer message carries.
//!
//! Each cloud has two durable queues, which only it may read (RabbitMQ
//! permissions, see `tests/src/rabbitmq.rs`):
//!
//! - `<cloud>.transfers.data`: manifests and chunks addressed to it (it
//!   receives);
//! - `<cloud>.transfers.control`: resends, receipts and refusals
//!   addressed to it (it sends).
//!
//! Everyone publishes through the default exchange, with `mandatory` set
//! (a message for a cloud whose queue does not exist comes back instead
//! of vanishing) and `user_id` set to its own RabbitMQ user, its SPIFFE id:
//! RabbitMQ refuses a `user_id` that is not the publisher's, so a receiver
//! knows who sent each message.
//!
//! [`run_link`] keeps one connection up, reconnecting with backoff, and
//! shares it through a [`watch`] channel; senders and the receiver open
//! their own channels on it and wait for the next one when it breaks.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use intercloud_transfer::CloudId;
use intercloud_trust::SpiffeId;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use lapin::{Confirmation, PublisherConfirm};
use tokio::sync::watch;

use crate::core::BrokerCore;

/// The queue a cloud receives manifests and chunks on.
pub fn data_queue(cloud: &CloudId) -> String {
    format!("{cloud}.transfers.data")
}

/// The queue a cloud receives resends, receipts and refusals on.
pub fn control_queue(cloud: &CloudId) -> String {
    format!("{cloud}.transfers.control")
}

/// One connection to RabbitMQ, while it lasts.
#[derive(Clone)]
pub struct Link {
    /// Counts connections since start: a sender that saw generation `n`
    /// fail waits for `n + 1`.
    pub generation: u64,
    /// The connection, for opening channels.
    pub connection: Arc<Connection>,
    /// A channel in confirm mode shared by every publisher.
    pub publish: Channel,
    /// This broker's RabbitMQ user (its SPIFFE id), the `user_id` of every
    /// message it publishes.
    pub user_id: String,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Whether the connection and the publishing channel are still up.
    pub fn is_up(&self) -> bool {
        self.connection.status().connected() && self.publish.status().connected()
    }

    /// Publishes `body` to `queue` as a persistent message of type `kind`.
    /// The returned future resolves when RabbitMQ confirms (see
    /// [`confirmed`]).
    pub async fn publish(
        &self,
        queue: &str,
        kind: &str,
        body: &[u8],
    ) -> Result<PublisherConfirm, PublishError> {
        let content_type = if kind == "chunk" {
            "application/octet-stream"
        } else {
            "application/json"
        };
        let publish = self.publish.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            body,
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_user_id(self.user_id.as_str().into())
                .with_type(kind.into())
                .with_content_type(content_type.into()),
        );
        // A connection that died under a publication may leave its
        // future pending: a publication that takes this long means the
        // link is gone.
        match tokio::time::timeout(PUBLISH_TIMEOUT, publish).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(PublishError::TimedOut),
        }
    }

    /// Publishes and waits for the confirm.
    pub async fn publish_confirmed(
        &self,
        queue: &str,
        kind: &str,
        body: &[u8],
    ) -> Result<(), PublishError> {
        let confirm = self.publish(queue, kind, body).await?;
        confirm_within(confirm).await
    }
}

/// Why a publication did not make it into a queue.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The connection or channel failed.
    #[error("AMQP: {0}")]
    Amqp(#[from] lapin::Error),
    /// RabbitMQ refused to take it (nack).
    #[error("RabbitMQ did not accept the message (nack)")]
    Nacked,
    /// Nobody's queue has that name: the receiving cloud's broker has not
    /// connected to RabbitMQ yet, or the cloud does not exist.
    #[error("no queue takes the message: has the receiving broker ever connected to RabbitMQ?")]
    Unroutable,
    /// No answer from RabbitMQ in time: the link is taken for gone.
    #[error("RabbitMQ did not answer within {} s", PUBLISH_TIMEOUT.as_secs())]
    TimedOut,
}

impl PublishError {
    /// Whether the link is to be taken for gone (reconnect, publish again).
    pub fn link_lost(&self) -> bool {
        matches!(self, Self::Amqp(_) | Self::TimedOut)
    }
}

/// How long a publication or its confirm may take before the link is taken
/// for gone.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(20);

/// Waits for a confirm, at most [`PUBLISH_TIMEOUT`].
pub async fn confirm_within(confirm: PublisherConfirm) -> Result<(), PublishError> {
    match tokio::time::timeout(PUBLISH_TIMEOUT, confirm).await {
        Ok(result) => confirmed(result),
        Err(_) => Err(PublishError::TimedOut),
    }
}

/// What a confirm means for the message.
pub fn confirmed(confirm: Result<Confirmation, lapin::Error>) -> Result<(), PublishError> {
    match confirm? {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(_)) => Err(PublishError::Unroutable),
        Confirmation::Nack(_) => Err(PublishError::Nacked),
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub struct LinkSettings {
    /// `amqps://…` with `auth_mechanism=external` added.
    pub url: String,
    /// The CA bundle (PEM) the server must chain to.
    pub ca_pem: String,
    /// This cloud, as the transfer protocol names it.
    pub cloud: CloudId,
}

impl LinkSettings {
    /// From `[amqp]`; `None` when transfers are not configured.
    pub fn from_config(core: &BrokerCore) -> Result<Option<Self>, String> {
        let config = &core.config.amqp;
        let Some(url) = &config.url else {
            return Ok(None);
        };
        let ca = config
            .ca_bundle
            .as_ref()
            .unwrap_or(&core.config.tls.ca_bundle);
        let ca_pem = std::fs::read_to_string(ca)
            .map_err(|e| format!("amqp.ca_bundle {}: {e}", ca.display()))?;
        let separator = if url.contains('?') { '&' } else { '?' };
        let cloud =
            CloudId::new(core.config.cloud_id.as_str()).map_err(|e| format!("cloud_id: {e}"))?;
        Ok(Some(Self {
            url: format!("{url}{separator}auth_mechanism=external&heartbeat=10"),
            ca_pem,
            cloud,
        }))
    }
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Opens a connection with the broker's current identity, declares its
/// two queues and puts a channel in confirm mode.
pub async fn connect(
    core: &BrokerCore,
    settings: &LinkSettings,
    generation: u64,
) -> Result<Link, lapin::Error> {
    let identity = core.identity();
    let chain: String = identity
        .credentials
        .chain
        .iter()
        .map(|c| pem_block("CERTIFICATE", c.as_ref()))
        .collect();
    let key = pem_block("PRIVATE KEY", identity.credentials.key.secret_der());
    let tls = OwnedTLSConfig {
        identity: Some(OwnedIdentity::PKCS8 {
            pem: chain.into_bytes(),
            key: key.into_bytes(),
        }),
        cert_chain: Some(settings.ca_pem.clone()),
    };
    let connection = Connection::connect_with_config(
        &settings.url,
        ConnectionProperties::default(),
        tls,
        lapin::runtime::default_runtime()?,
    )
    .await?;
    let publish = connection.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let cloud = &settings.cloud;
    for queue in [data_queue(cloud), control_queue(cloud)] {
        publish
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
    }
    Ok(Link {
        generation,
        connection: Arc::new(connection),
        publish,
        user_id: SpiffeId::cloud(&core.config.federation, &core.config.cloud_id).to_string(),
    })
}

/// Keeps a connection up until `stopped`, publishing each new one (and
/// `None` while there is none) on `links`.
pub async fn run_link(
    core: Arc<BrokerCore>,
    settings: LinkSettings,
    links: watch::Sender<Option<Link>>,
    stopped: impl std::future::Future<Output = ()>,
) {
    let mut generation = 0;
    let mut backoff = Duration::from_millis(200);
    let supervise = async {
        loop {
            generation += 1;
            match connect(&core, &settings, generation).await {
                Ok(link) => {
                    tracing::info!(generation, "connected to RabbitMQ");
                    backoff = Duration::from_millis(200);
                    let watched = link.clone();
                    links.send_replace(Some(link));
                    while watched.is_up() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    tracing::warn!(
                        generation,
                        "the connection to RabbitMQ is gone; reconnecting"
                    );
                    links.send_replace(None);
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot connect to RabbitMQ");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    };
    tokio::select! {
        () = supervise => {}
        () = stopped => {}
    }
    if let Some(link) = links.send_replace(None) {
        let _ = link.connection.close(200, "broker stopping".into()).await;
    }
}

/// Waits for a link newer than `after` (0: any).
pub async fn next_link(links: &mut watch::Receiver<Option<Link>>, after: u64) -> Option<Link> {
    loop {
        if let Some(link) = links.borrow_and_update().as_ref()
            && link.generation > after
            && link.is_up()
        {
            return Some(link.clone());
        }
        links.changed().await.ok()?;
    }
}

/// The cloud a message came from: its `user_id` is a SPIFFE id that
/// RabbitMQ checked against the publisher's login.
pub fn sender_cloud(
    properties: &BasicProperties,
    federation: &intercloud_trust::FederationDomain,
) -> Result<CloudId, String> {
    let user = properties
        .user_id()
        .as_ref()
        .ok_or("the message has no user_id: the sender cannot be told")?;
    let spiffe: SpiffeId = user
        .as_str()
        .parse()
        .map_err(|e| format!("user_id {:?} is not a SPIFFE id: {e}", user.as_str()))?;
    if spiffe.federation != *federation {
        return Err(format!("user_id {spiffe} is of another federation"));
    }
    match spiffe.principal {
        intercloud_trust::identity::Principal::Cloud(cloud) => {
            CloudId::new(cloud.as_str()).map_err(|e| e.to_string())
        }
        _ => Err(format!("user_id {spiffe} is not a cloud's broker")),
    }
}
