//! gRPC channels over the federation's own TLS client configuration.
//!
//! tonic's built-in TLS cannot verify SPIFFE ids or use CRLs, so the channel
//! gets a connector that dials TCP and runs the rustls handshake itself; the
//! URI scheme is `http` because TLS is already done underneath.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

/// A channel that could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The address is not `host:port`.
    #[error("bad endpoint {0:?}: expected host:port")]
    BadEndpoint(String),
    /// Dialing or the handshake failed.
    #[error("cannot reach {endpoint}: {reason}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The transport's reason, with its causes.
        reason: String,
    },
}

/// Default time allowed to dial and complete TLS.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn endpoint(address: &str) -> Result<Endpoint, ConnectError> {
    let bad = || ConnectError::BadEndpoint(address.to_owned());
    if address.contains("://") || !address.contains(':') {
        return Err(bad());
    }
    Endpoint::from_shared(format!("http://{address}"))
        .map_err(|_| bad())
        .map(|e| e.connect_timeout(CONNECT_TIMEOUT).tcp_nodelay(true))
}

async fn dial(
    uri: Uri,
    config: Arc<ClientConfig>,
) -> std::io::Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
    let host = uri.host().ok_or_else(|| invalid("no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().ok_or_else(|| invalid("no port"))?;
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(host).map_err(|_| invalid("bad host name"))?;
    let tls = TlsConnector::from(config).connect(name, tcp).await?;
    Ok(TokioIo::new(tls))
}

/// A channel that dials on first use and redials after failures, reading the
/// client configuration anew for each connection (so renewed credentials and
/// fresh CRLs apply).
pub fn lazy_channel(
    address: &str,
    config: Arc<ArcSwap<ClientConfig>>,
) -> Result<Channel, ConnectError> {
    let connector = tower::service_fn(move |uri: Uri| dial(uri, config.load_full()));
    Ok(endpoint(address)?.connect_with_connector_lazy(connector))
}

/// A channel that is connected before it is returned, so an unreachable
/// server or a refused handshake is reported at once.
pub async fn channel(address: &str, config: Arc<ClientConfig>) -> Result<Channel, ConnectError> {
    let connector = tower::service_fn(move |uri: Uri| dial(uri, config.clone()));
    endpoint(address)?
        .connect_with_connector(connector)
        .await
        .map_err(|e| ConnectError::Unreachable {
            endpoint: address.to_owned(),
            reason: error_chain(&e),
        })
}

/// An error and its causes on one line, each cause once.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}
