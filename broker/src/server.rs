//! Starting a broker: resolve its identity (saved, pre-provisioned, or by
//! enrolling), then serve the operator API and run the link to the root,
//! presence, the descriptor's publication, the clock's measurement and the
//! VNet data plane until the shutdown future completes.

use std::future::Future;
use std::sync::Arc;

use intercloud_proto::v1::broker_server::BrokerServer;
use intercloud_trust::tls::TrustAnchors;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tracing::info;

use crate::api::BrokerApi;
use crate::config::BrokerConfig;
use crate::core::BrokerCore;
use crate::enrol::enrol;
use crate::identity::{Identity, IdentityStore};

/// Why a broker could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// No certificate anywhere and no join token.
    #[error(
        "no certificate in {0} and no join token: set enrollment.token or enrollment.token_file (a token comes from `intercloudctl --context root token create <cloud>`), or enrol by hand with `intercloudctl enroll --out {0}`"
    )]
    NotEnrolled(String),
    /// Anything else that prevents starting.
    #[error("{0}")]
    Other(String),
}

/// Where the broker keeps the root's CRL as last fetched.
pub fn crl_cache(config: &BrokerConfig) -> std::path::PathBuf {
    config.data_dir.join("crl.pem")
}

/// Loads the trust anchors: the CA bundle and the cached root CRL, or else
/// the configured CRLs.
pub fn trust_anchors(config: &BrokerConfig) -> Result<TrustAnchors, StartError> {
    let anchors = TrustAnchors::load(&config.tls.ca_bundle)
        .map_err(|e| StartError::Other(format!("tls.ca_bundle: {e}")))?;
    // The root's CRL as last fetched is the most complete; until there is
    // one, the configured CRLs apply.
    let cached = crl_cache(config);
    if cached.is_file()
        && let Ok(crls) = intercloud_trust::pem::crls(&cached)
    {
        return anchors
            .with_crls(crls)
            .map_err(|e| StartError::Other(format!("{}: {e}", cached.display())));
    }
    let mut crls = Vec::new();
    for path in &config.tls.crl_files {
        crls.extend(
            intercloud_trust::pem::crls(path)
                .map_err(|e| StartError::Other(format!("tls.crl_files: {e}")))?,
        );
    }
    anchors
        .with_crls(crls)
        .map_err(|e| StartError::Other(format!("tls.crl_files: {e}")))
}

/// The broker's identity: saved in the data directory, else the configured
/// certificate, else obtained by enrolling with the join token.
pub async fn resolve_identity(
    config: &BrokerConfig,
    anchors: &TrustAnchors,
) -> Result<Identity, StartError> {
    let store = IdentityStore::new(&config.data_dir);
    if let Some(identity) = store.load().map_err(|e| StartError::Other(e.to_string()))? {
        info!(serial = %identity.info.serial, dir = %store.dir().display(), "identity loaded");
        return Ok(identity);
    }
    if let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) {
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p)
                .map_err(|e| StartError::Other(format!("{}: {e}", p.display())))
        };
        let bundle = read(&config.tls.ca_bundle)?;
        let identity = Identity::from_pem(&read(cert)?, &read(key)?, &bundle, cert)
            .map_err(|e| StartError::Other(e.to_string()))?;
        info!(serial = %identity.info.serial, cert = %cert.display(), "identity loaded from tls.cert");
        return Ok(identity);
    }
    let token = config
        .join_token()
        .map_err(|e| StartError::Other(e.to_string()))?;
    let Some(token) = token else {
        return Err(StartError::NotEnrolled(store.dir().display().to_string()));
    };
    info!(root = %config.root.enroll, "enrolling with the join token");
    enrol(config, anchors, &token, &store)
        .await
        .map_err(|e| StartError::Other(e.to_string()))
}

/// Checks that the identity is this broker's.
pub fn check_identity(config: &BrokerConfig, identity: &Identity) -> Result<(), StartError> {
    let expected = intercloud_trust::SpiffeId::cloud(&config.federation, &config.cloud_id);
    if identity.info.spiffe_id != expected {
        return Err(StartError::Other(format!(
            "the certificate is for {}, but this broker is {expected} (cloud_id/federation in the config)",
            identity.info.spiffe_id
        )));
    }
    Ok(())
}

/// Serves the operator API on `listener` and runs the link until `shutdown`.
pub async fn serve(
    core: Arc<BrokerCore>,
    listener: TcpListener,
    advertise: String,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let stop = intercloud_daemon::signals::Stop::new();
    let (health, health_service) = intercloud_daemon::grpc::health();
    health.set_serving::<BrokerServer<BrokerApi>>().await;
    let (reflection, reflection_alpha) =
        intercloud_daemon::grpc::reflection(&["intercloud.v1.Broker"])
            .map_err(|e| StartError::Other(e.to_string()))?;
    let api = Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(BrokerServer::new(BrokerApi::new(core.clone())))
        .serve_with_incoming_shutdown(
            intercloud_trust::serve::incoming(listener, core.server_config(), "operator-api"),
            stop.stopped(),
        );
    let presence = match &core.config.xmpp {
        Some(xmpp) => {
            let password = core
                .config
                .xmpp_password()
                .map_err(|e| StartError::Other(e.to_string()))?
                .unwrap_or_default();
            let ca_bundle = xmpp
                .ca_bundle
                .as_ref()
                .unwrap_or(&core.config.tls.ca_bundle);
            Some(
                crate::xmpp::driver::XmppSettings::from_config(
                    xmpp,
                    password,
                    ca_bundle,
                    advertise.clone(),
                )
                .map_err(StartError::Other)?,
            )
        }
        None => None,
    };
    let xmpp = {
        let core = core.clone();
        let stopped = stop.stopped();
        async move {
            if let Some(settings) = presence {
                crate::xmpp::driver::run(core, settings, stopped).await;
            }
        }
    };
    let publisher = crate::directory::driver::PublisherSettings::from_config(&core.config)
        .map_err(|e| StartError::Other(e.to_string()))?;
    let directory = {
        let core = core.clone();
        let stopped = stop.stopped();
        async move {
            if let Some(settings) = publisher {
                crate::directory::driver::run(core, settings, stopped).await;
            }
        }
    };
    let clock = {
        let settings = crate::clock::state::ClockSettings::from_config(&core.config.clock);
        let core = core.clone();
        let stopped = stop.stopped();
        async move {
            if let Some(settings) = settings {
                let share = |status| core.set_clock(status);
                crate::clock::driver::run(settings, share, stopped).await;
            }
        }
    };
    let cloud = crate::cloud::LocalCloud::open(&core.config.data_dir)
        .map_err(|e| StartError::Other(format!("the local cloud: {e}")))?;
    let _ = core.cloud.set(Arc::new(cloud));
    let transfers = start_transfers(&core, &stop)?;
    let vnets = {
        let core = core.clone();
        let stopped = stop.stopped();
        let data_plane = crate::vnets::Vnets::from_config(&core.config);
        if let Some(vnets) = &data_plane {
            let _ = core.vnets.set(vnets.clone());
        }
        async move {
            if let Some(vnets) = data_plane {
                crate::vnets::driver::run(core, vnets, stopped).await;
            }
        }
    };
    let store = IdentityStore::new(&core.config.data_dir);
    let link = crate::link::run(core.clone(), store, advertise, stop.stopped());
    let both = async {
        let (served, (), (), (), (), (), ()) =
            tokio::join!(api, link, xmpp, directory, clock, transfers, vnets);
        served.map_err(|e| StartError::Other(format!("gRPC server: {e}")))
    };
    stop.run_until(both, shutdown).await
}

/// Starts transfers, storage federation and migration when `[amqp] url`
/// is set; the future runs them until the broker stops.
fn start_transfers<'a>(
    core: &Arc<BrokerCore>,
    stop: &'a intercloud_daemon::signals::Stop,
) -> Result<std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>>, StartError> {
    let settings =
        crate::transfer::amqp::LinkSettings::from_config(core).map_err(StartError::Other)?;
    let Some(settings) = settings else {
        return Ok(Box::pin(async {}));
    };
    let hooks = Arc::new(crate::workloads::Workloads::default());
    if let Some(cloud) = core.cloud.get() {
        let _ = hooks.cloud.set(cloud.clone());
    }
    let (transfers, run) = crate::transfer::Transfers::start(
        core.clone(),
        settings,
        hooks.clone(),
        hooks.clone(),
        stop,
    )
    .map_err(|e| StartError::Other(format!("transfers: {e}")))?;
    let storage = Arc::new(
        crate::storage::Storage::open(core.clone(), transfers.clone())
            .map_err(|e| StartError::Other(format!("objects: {e}")))?,
    );
    let _ = hooks.storage.set(storage.clone());
    let _ = core.storage.set(storage.clone());
    let _ = core.transfers.set(transfers);
    let repair = storage.run_repair(stop.stopped());
    Ok(Box::pin(async move {
        tokio::join!(run, repair);
    }))
}
