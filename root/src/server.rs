//! Starting the root: load the CA and state, then serve both ports until the
//! shutdown future completes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use intercloud_ontology::descriptor::MAX_DESCRIPTOR_BYTES;
use intercloud_proto::v1::directory_server::DirectoryServer;
use intercloud_proto::v1::enrollment_server::EnrollmentServer;
use intercloud_proto::v1::federation_server::FederationServer;
use intercloud_proto::v1::networks_server::NetworksServer;
use intercloud_trust::ca::CertificateAuthority;
use intercloud_trust::tls::{ClientAuth, Credentials, TrustAnchors, server_config};
use tokio::net::TcpListener;
use tonic::transport::Server;
use tracing::warn;

use crate::clock::{ClockSource, measure_precision};
use crate::config::RootConfig;
use crate::core::{RootCore, now};
use crate::crl::{CrlPublisher, RootPki};
use crate::directory::{Directory, QueryLimits};
use crate::directory_api::DirectoryApi;
use crate::enrollment::EnrollmentApi;
use crate::federation::FederationApi;
use crate::networks::{NetworkStore, NetworksApi};
use crate::ntp_server::NtpServer;
use crate::store::StateStore;
use crate::time_api::TimeApi;
use intercloud_ntp::ratelimit::RateLimiter;
use intercloud_proto::v1::time_server::TimeServer;

/// Why the root could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The CA, the root's certificate or an imported CRL is unusable.
    #[error("{0}")]
    Pki(String),
    /// The data directory or the state file is unusable.
    #[error("{0}")]
    State(String),
    /// A gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(String),
}

/// The bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// Mutual-TLS API.
    pub api: TcpListener,
    /// Enrolment (server-authenticated TLS).
    pub enroll: TcpListener,
    /// The SPARQL endpoint (mutual TLS, HTTP), when configured.
    pub sparql: Option<TcpListener>,
    /// The NTP server's UDP sockets (none when not configured).
    pub ntp: Vec<std::net::UdpSocket>,
}

impl Listeners {
    /// Binds both addresses of the configuration.
    pub async fn bind(config: &RootConfig) -> std::io::Result<Self> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
        };
        Ok(Self {
            api: bind(config.listen.api).await?,
            enroll: bind(config.listen.enroll).await?,
            sparql: match config.listen.sparql {
                Some(addr) => Some(bind(addr).await?),
                None => None,
            },
            ntp: config
                .listen
                .ntp
                .addresses()
                .into_iter()
                .map(|addr| {
                    std::net::UdpSocket::bind(addr).map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("cannot listen on udp {addr} (NTP): {e}"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        })
    }

    /// The bound addresses, as `{"api": "...", "enroll": "..."}`.
    pub fn endpoints_json(&self) -> serde_json::Value {
        let addr = |l: &TcpListener| l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let mut endpoints =
            serde_json::json!({ "api": addr(&self.api), "enroll": addr(&self.enroll) });
        if let Some(sparql) = &self.sparql {
            endpoints["sparql"] = serde_json::Value::String(addr(sparql));
        }
        let ntp: Vec<String> = self
            .ntp
            .iter()
            .map(|s| s.local_addr().map(|a| a.to_string()).unwrap_or_default())
            .collect();
        if let Some(first) = ntp.first() {
            endpoints["ntp"] = serde_json::Value::String(first.clone());
            endpoints["ntp_all"] = serde_json::json!(ntp);
        }
        endpoints
    }
}

/// A root ready to serve.
#[derive(Debug)]
pub struct Root {
    core: Arc<RootCore>,
    networks: Arc<NetworkStore>,
    enroll_config: Arc<ArcSwap<rustls::ServerConfig>>,
    clock: ClockSource,
    rate_limit: intercloud_ntp::ratelimit::RateLimitConfig,
}

impl Root {
    /// Loads the CA, the root's credentials, the imported CRLs and the state.
    pub async fn start(config: &RootConfig) -> Result<Self, StartError> {
        let pki = |e: &dyn std::fmt::Display| StartError::Pki(e.to_string());
        let tls = &config.tls;
        let ca = CertificateAuthority::load(&tls.ca_cert, &tls.ca_key).map_err(|e| pki(&e))?;
        let anchors = TrustAnchors::load(&tls.ca_cert).map_err(|e| pki(&e))?;
        let credentials = Credentials::load(&tls.cert, &tls.key).map_err(|e| pki(&e))?;
        let mut imported = Vec::new();
        for path in &tls.import_crls {
            let pem = std::fs::read(path).map_err(|e| {
                StartError::Pki(format!("tls.import_crls: {}: {e}", path.display()))
            })?;
            imported.extend(
                ca.read_crl(&pem, &path.display().to_string())
                    .map_err(|e| pki(&format!("tls.import_crls: {e}")))?,
            );
        }
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            StartError::State(format!("data_dir {}: {e}", config.data_dir.display()))
        })?;
        let store =
            StateStore::open(&config.data_dir).map_err(|e| StartError::State(e.to_string()))?;
        let state = store.snapshot().await;
        let vni_range = config
            .networks
            .vni_range()
            .map_err(|e| StartError::State(e.to_string()))?;
        let networks =
            NetworkStore::open(&config.data_dir, vni_range, config.networks.watch_backlog)
                .map_err(|e| StartError::State(e.to_string()))?;
        let limits = &config.directory;
        let directory = Directory::open(
            &config.data_dir.join("directory"),
            QueryLimits {
                timeout: Duration::from_millis(limits.query_timeout_ms),
                max_results: limits.max_results,
                max_bytes: limits.max_result_bytes,
                max_concurrent: usize::try_from(limits.max_concurrent_queries)
                    .unwrap_or(usize::MAX),
            },
        )
        .map_err(|e| {
            StartError::State(format!(
                "directory store {}: {e}",
                config.data_dir.join("directory").display()
            ))
        })?;
        let enroll_config =
            server_config(&anchors, &credentials, ClientAuth::None).map_err(|e| pki(&e))?;
        let publisher = CrlPublisher::new(
            RootPki {
                ca,
                anchors,
                credentials,
                federation: config.federation.clone(),
                imported,
            },
            Duration::from_secs(config.crl.validity_seconds),
            &state,
            now(),
        )
        .map_err(|e| pki(&e))?;
        let core = RootCore {
            federation: config.federation.clone(),
            store,
            publisher,
            cert_ttl: config.cert_ttl(),
            token_ttl: (
                Duration::from_secs(config.enrollment.token_ttl_seconds),
                Duration::from_secs(config.enrollment.max_token_ttl_seconds),
            ),
            heartbeat_interval: Duration::from_secs(u64::from(
                config.registration.heartbeat_interval_seconds,
            )),
            directory: Arc::new(directory),
        };
        let reference = config
            .ntp
            .reference()
            .map_err(|e| StartError::Pki(e.to_string()))?;
        let clock = ClockSource::new(reference, measure_precision(std::time::SystemTime::now))
            .map_err(|e| StartError::Pki(format!("ntp: {e}")))?;
        Ok(Self {
            core: Arc::new(core),
            networks: Arc::new(networks),
            enroll_config: Arc::new(ArcSwap::new(enroll_config)),
            clock,
            rate_limit: config.ntp.rate_limit(),
        })
    }

    /// Serves both ports until `shutdown` completes, then drains.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), StartError> {
        let stop = intercloud_daemon::signals::Stop::new();
        let (health, health_service) = intercloud_daemon::grpc::health();
        health
            .set_serving::<FederationServer<FederationApi>>()
            .await;
        health
            .set_serving::<EnrollmentServer<EnrollmentApi>>()
            .await;
        health.set_serving::<DirectoryServer<DirectoryApi>>().await;
        health.set_serving::<NetworksServer<NetworksApi>>().await;
        let reflection = |service: &str| {
            intercloud_daemon::grpc::reflection(&[service])
                .map_err(|e| StartError::Serve(e.to_string()))
        };
        let (api_reflection, api_reflection_alpha) = intercloud_daemon::grpc::reflection(&[
            "intercloud.v1.Federation",
            "intercloud.v1.Directory",
            "intercloud.v1.Networks",
        ])
        .map_err(|e| StartError::Serve(e.to_string()))?;
        let (enroll_reflection, enroll_reflection_alpha) = reflection("intercloud.v1.Enrollment")?;

        let api = Server::builder()
            .add_service(health_service.clone())
            .add_service(api_reflection)
            .add_service(api_reflection_alpha)
            .add_service(FederationServer::new(FederationApi::new(
                self.core.clone(),
                self.networks.clone(),
            )))
            .add_service(
                // A descriptor is at most MAX_DESCRIPTOR_BYTES: a larger
                // message is refused from its length prefix, unread.
                DirectoryServer::new(DirectoryApi::new(self.core.clone()))
                    .max_decoding_message_size(MAX_DESCRIPTOR_BYTES + 64 * 1024),
            )
            .add_service(TimeServer::new(TimeApi::new(self.clock)))
            .add_service(NetworksServer::new(NetworksApi::new(
                self.core.clone(),
                self.networks.clone(),
            )))
            .serve_with_incoming_shutdown(
                intercloud_trust::serve::incoming(
                    listeners.api,
                    self.core.publisher.api_config(),
                    "api",
                ),
                stop.stopped(),
            );
        let enroll = Server::builder()
            .add_service(health_service)
            .add_service(enroll_reflection)
            .add_service(enroll_reflection_alpha)
            .add_service(EnrollmentServer::new(EnrollmentApi::new(self.core.clone())))
            .serve_with_incoming_shutdown(
                intercloud_trust::serve::incoming(
                    listeners.enroll,
                    self.enroll_config.clone(),
                    "enroll",
                ),
                stop.stopped(),
            );
        let refresher = refresh_crl(self.core.clone(), stop.stopped());
        let sparql = async {
            if let Some(listener) = listeners.sparql {
                crate::sparql_http::serve(
                    self.core.clone(),
                    listener,
                    self.core.publisher.http_config(),
                    &stop,
                )
                .await;
            }
        };
        let mut ntp = Vec::new();
        for socket in listeners.ntp {
            let limiter = RateLimiter::new(self.rate_limit)
                .map_err(|e| StartError::Serve(format!("ntp rate limit: {e}")))?;
            ntp.push(
                NtpServer::start(socket, self.clock, limiter)
                    .map_err(|e| StartError::Serve(format!("ntp: {e}")))?,
            );
        }
        let servers = async {
            let (a, b, (), ()) = tokio::join!(api, enroll, refresher, sparql);
            let _ = tokio::task::spawn_blocking(move || ntp.into_iter().for_each(NtpServer::stop))
                .await;
            a.and(b).map_err(|e| StartError::Serve(e.to_string()))
        };
        stop.run_until(servers, shutdown).await
    }
}

/// Re-signs the CRL at half its validity, so it never lapses.
async fn refresh_crl(core: Arc<RootCore>, stopped: impl Future<Output = ()>) {
    let period = core.publisher.validity() / 2;
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = &mut stopped => return,
        }
        let state = core.store.snapshot().await;
        if let Err(e) = core.publisher.publish(&state, now()) {
            warn!(error = %e, "cannot re-sign the CRL; the previous one stays in force");
        }
    }
}
