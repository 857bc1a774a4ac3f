//! What the broker's tasks share: configuration, identity, TLS
//! configurations kept in step with renewals and CRLs, the link state, and
//! the statuses of the descriptor's publication and of the clock.

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use intercloud_trust::identity::Principal;
use intercloud_trust::tls::{
    ClientAuth, ClientPolicy, TlsError, TrustAnchors, client_config, server_config,
};
use intercloud_trust::{CloudId, OperatorScope, SpiffeId};
use rustls::{ClientConfig, ServerConfig};
use time::OffsetDateTime;
use tonic::transport::Channel;

use crate::clock::ClockStatus;
use crate::config::BrokerConfig;
use crate::directory::DescriptorStatus;
use crate::identity::Identity;
use crate::link_state::LinkState;
use crate::peers::PeerView;

/// Shared broker state.
#[derive(Debug)]
pub struct BrokerCore {
    /// Configuration.
    pub config: BrokerConfig,
    /// `spiffe://<federation>/cloud/<id>`.
    pub spiffe_id: SpiffeId,
    /// When the process started.
    pub started_at: OffsetDateTime,
    identity: ArcSwap<Identity>,
    anchors: ArcSwap<TrustAnchors>,
    server: Arc<ArcSwap<ServerConfig>>,
    client: Arc<ArcSwap<ClientConfig>>,
    link: Mutex<LinkState>,
    /// Presence as the operator API shows it.
    pub peers: PeerView,
    /// This cloud's descriptor in the root's directory.
    descriptor: Mutex<DescriptorStatus>,
    /// The local clock against the root's NTP server.
    clock: Mutex<ClockStatus>,
    /// Transfers over AMQP, once started (`[amqp] url`).
    pub transfers: std::sync::OnceLock<Arc<crate::transfer::Transfers>>,
    /// Storage federation, once transfers run.
    pub storage: std::sync::OnceLock<Arc<crate::storage::Storage>>,
    /// The local cloud's instances, once opened.
    pub cloud: std::sync::OnceLock<Arc<crate::cloud::LocalCloud>>,
    /// The VNet data plane, when `network.vtep` is set.
    pub vnets: std::sync::OnceLock<Arc<crate::vnets::Vnets>>,
    /// The channel to the root's API, made on first use and shared.
    root_channel: std::sync::OnceLock<Channel>,
}

/// Who may use a broker's operator API: operators of its own cloud.
pub fn operator_policy(cloud: CloudId) -> ClientPolicy {
    Arc::new(move |id: &SpiffeId| match &id.principal {
        Principal::Operator {
            scope: OperatorScope::Cloud(c),
            ..
        } if *c == cloud => Ok(()),
        Principal::Operator { scope, .. } => {
            Err(format!("{id} is an operator of {scope}, not of {cloud}"))
        }
        Principal::Cloud(_) => Err(format!(
            "{id} is a broker identity, not an operator of {cloud}"
        )),
        Principal::Root => Err(format!("{id} is the root, not an operator of {cloud}")),
    })
}

fn configs(
    config: &BrokerConfig,
    anchors: &TrustAnchors,
    identity: &Identity,
) -> Result<(Arc<ServerConfig>, Arc<ClientConfig>), TlsError> {
    let server = server_config(
        anchors,
        &identity.credentials,
        ClientAuth::Required {
            federation: config.federation.clone(),
            policy: operator_policy(config.cloud_id.clone()),
        },
    )?;
    let client = client_config(
        anchors,
        SpiffeId::root(&config.federation),
        Some(&identity.credentials),
    )?;
    Ok((server, client))
}

impl BrokerCore {
    /// Builds the shared state around a loaded identity.
    pub fn new(
        config: BrokerConfig,
        identity: Identity,
        anchors: TrustAnchors,
    ) -> Result<Self, TlsError> {
        let (server, client) = configs(&config, &anchors, &identity)?;
        let lease = config.xmpp.as_ref().map_or(0, |x| x.lease_seconds);
        let peers = PeerView::new(config.xmpp.is_some(), std::time::Duration::from_secs(lease));
        let descriptor = match &config.directory.descriptor {
            Some(path) => DescriptorStatus::configured(path.display().to_string()),
            None => DescriptorStatus::not_configured(),
        };
        let clock = match &config.clock.ntp_server {
            Some(server) => ClockStatus::starting(server.clone()),
            None => ClockStatus::not_configured(),
        };
        Ok(Self {
            spiffe_id: SpiffeId::cloud(&config.federation, &config.cloud_id),
            started_at: OffsetDateTime::now_utc(),
            config,
            identity: ArcSwap::from_pointee(identity),
            anchors: ArcSwap::from_pointee(anchors),
            server: Arc::new(ArcSwap::new(server)),
            client: Arc::new(ArcSwap::new(client)),
            link: Mutex::new(LinkState::default()),
            peers,
            descriptor: Mutex::new(descriptor),
            clock: Mutex::new(clock),
            transfers: std::sync::OnceLock::new(),
            storage: std::sync::OnceLock::new(),
            cloud: std::sync::OnceLock::new(),
            vnets: std::sync::OnceLock::new(),
            root_channel: std::sync::OnceLock::new(),
        })
    }

    /// The identity in use.
    pub fn identity(&self) -> Arc<Identity> {
        self.identity.load_full()
    }

    /// The operator API's TLS configuration.
    pub fn server_config(&self) -> Arc<ArcSwap<ServerConfig>> {
        self.server.clone()
    }

    /// The TLS configuration for calls to the root.
    pub fn client_config(&self) -> Arc<ArcSwap<ClientConfig>> {
        self.client.clone()
    }

    /// A channel to the root's API (mutual TLS with this broker's identity,
    /// as the link uses): dialled on first use, redialled after failures,
    /// with the TLS configuration in force at each connection. Needs a tokio
    /// runtime.
    pub fn root_channel(&self) -> Result<Channel, String> {
        if let Some(channel) = self.root_channel.get() {
            return Ok(channel.clone());
        }
        let channel =
            intercloud_trust::connect::lazy_channel(&self.config.root.api, self.client_config())
                .map_err(|e| format!("the root at {}: {e}", self.config.root.api))?;
        Ok(self.root_channel.get_or_init(|| channel).clone())
    }

    /// Puts a renewed identity in force for new connections.
    pub fn replace_identity(&self, identity: Identity) -> Result<(), TlsError> {
        let (server, client) = configs(&self.config, &self.anchors.load(), &identity)?;
        self.identity.store(Arc::new(identity));
        self.server.store(server);
        self.client.store(client);
        Ok(())
    }

    /// Puts fresh trust anchors (a new CRL) in force for new connections.
    pub fn replace_anchors(&self, anchors: TrustAnchors) -> Result<(), TlsError> {
        let (server, client) = configs(&self.config, &anchors, &self.identity.load())?;
        self.anchors.store(Arc::new(anchors));
        self.server.store(server);
        self.client.store(client);
        Ok(())
    }

    /// The trust anchors (CA and CRL) in force.
    pub fn anchors(&self) -> Arc<TrustAnchors> {
        self.anchors.load_full()
    }

    /// Whether the CRL in force lists this broker's own certificate.
    pub fn own_certificate_revoked(&self) -> bool {
        self.anchors
            .load()
            .lists_serial(&self.identity.load().info.serial)
    }

    /// Where this cloud's descriptor stands in the root's directory.
    pub fn descriptor(&self) -> DescriptorStatus {
        self.descriptor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The descriptor version in force at the root, announced in presence.
    pub fn descriptor_version(&self) -> u64 {
        self.descriptor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .published_version
    }

    /// Records the descriptor's status (the publication driver calls this).
    pub fn set_descriptor(&self, status: DescriptorStatus) {
        *self
            .descriptor
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = status;
    }

    /// The local clock against the root's NTP server.
    pub fn clock(&self) -> ClockStatus {
        self.clock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the clock's status (the clock driver calls this).
    pub fn set_clock(&self, status: ClockStatus) {
        *self.clock.lock().unwrap_or_else(PoisonError::into_inner) = status;
    }

    /// Reads or changes the link state.
    pub fn link<T>(&self, f: impl FnOnce(&mut LinkState) -> T) -> T {
        f(&mut self.link.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
