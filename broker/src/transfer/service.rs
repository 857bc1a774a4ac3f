//! [`Transfers`]: the broker's transfer machinery as one handle — the AMQP
//! link, the receiving engine, the outbox and the view — started with the
//! broker when `[amqp] url` is set.

use std::sync::Arc;
use std::time::Duration;

use intercloud_transfer::{ReceiverConfig, SenderConfig};
use tokio::sync::watch;

use super::amqp::{self, LinkSettings};
use super::inbound::{self, Engine, Hooks};
use super::outbound::{OutboundHooks, Outbox};
use super::store::TransferStore;
use super::view::TransferView;
use crate::core::BrokerCore;

/// The transfer machinery of a running broker.
#[derive(Debug)]
pub struct Transfers {
    /// Progress for the operator API.
    pub view: Arc<TransferView>,
    /// Outgoing transfers.
    pub outbox: Arc<Outbox>,
    /// Incoming transfers' files (committed objects live in it).
    pub store: TransferStore,
    links: watch::Receiver<Option<amqp::Link>>,
}

/// Where transfers keep their files under the data directory.
pub fn transfers_dir(core: &BrokerCore) -> std::path::PathBuf {
    core.config.data_dir.join("transfers")
}

impl Transfers {
    /// Opens the store (resuming incoming transfers), resumes outgoing
    /// ones, and returns the handle and the future that runs the link and
    /// the consumers until `stopped`.
    pub fn start(
        core: Arc<BrokerCore>,
        settings: LinkSettings,
        hooks: Arc<dyn Hooks>,
        outbound_hooks: Arc<dyn OutboundHooks>,
        stop: &intercloud_daemon::signals::Stop,
    ) -> Result<(Arc<Self>, impl std::future::Future<Output = ()> + Send), String> {
        let config = &core.config.amqp;
        let dir = transfers_dir(&core);
        let store = TransferStore::open(&dir).map_err(|e| e.to_string())?;
        let view = Arc::new(TransferView::default());
        let receiver = ReceiverConfig {
            resend_after: Duration::from_secs(config.resend_after_seconds),
            ..ReceiverConfig::default()
        };
        let engine = Engine::start(
            store.clone(),
            settings.cloud.clone(),
            receiver,
            config.reserve_bytes,
            hooks,
            view.clone(),
        )
        .map_err(|e| format!("resuming incoming transfers: {e}"))?;
        let (links_tx, links) = watch::channel(None);
        let outbox = Arc::new(
            Outbox::new(
                dir.join("outgoing"),
                settings.cloud.clone(),
                links.clone(),
                view.clone(),
                SenderConfig {
                    window: config.window,
                    reannounce_after: Duration::from_secs(config.reannounce_after_seconds),
                    ..SenderConfig::default()
                },
                config.chunk_size,
                outbound_hooks,
            )
            .map_err(|e| format!("{}: {e}", dir.join("outgoing").display()))?,
        );
        let resumed = outbox
            .resume()
            .map_err(|e| format!("outgoing records: {e}"))?;
        if resumed > 0 {
            tracing::info!(resumed, "outgoing transfers resumed");
        }
        let federation = core.config.federation.clone();
        let data_queue = amqp::data_queue(&settings.cloud);
        let control_queue = amqp::control_queue(&settings.cloud);
        let prefetch = config.prefetch;
        let link = amqp::run_link(core, settings, links_tx, stop.stopped());
        let receive = inbound::run(
            engine,
            links.clone(),
            data_queue,
            prefetch,
            federation.clone(),
            stop.stopped(),
        );
        let control = outbox
            .clone()
            .run_control(control_queue, federation, stop.stopped());
        let run = async move {
            tokio::join!(link, receive, control);
        };
        Ok((
            Arc::new(Self {
                view,
                outbox,
                store,
                links,
            }),
            run,
        ))
    }
}

impl Transfers {
    /// Publishes one message (confirmed), waiting up to 10 s for a
    /// connection.
    pub async fn publish(&self, queue: &str, kind: &str, body: &[u8]) -> Result<(), String> {
        let mut links = self.links.clone();
        let link = tokio::time::timeout(Duration::from_secs(10), amqp::next_link(&mut links, 0))
            .await
            .map_err(|_| "no connection to RabbitMQ within 10 s".to_owned())?
            .ok_or("the broker is stopping")?;
        link.publish_confirmed(queue, kind, body)
            .await
            .map_err(|e| e.to_string())
    }

    /// Whether the broker is connected to RabbitMQ now.
    pub fn connected(&self) -> bool {
        self.links.borrow().as_ref().is_some_and(amqp::Link::is_up)
    }
}
