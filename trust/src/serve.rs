//! Accepting TLS connections for a tonic server.
//!
//! [`incoming`] owns the listener: it accepts, runs each handshake in its own
//! task with a deadline (a slow client cannot stall the others), logs every
//! refusal with the peer address and the reason, and yields [`PeerStream`]s.
//! Each stream carries a [`PeerInfo`] that tonic puts into every request's
//! extensions, so handlers read the caller's verified identity from there.
//!
//! The server configuration is read from an [`ArcSwap`] for each new
//! connection: a renewed certificate or a fresh CRL takes effect without a
//! restart.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tracing::{debug, warn};

use crate::cert::CertInfo;

/// How long a client may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The client's address.
    pub remote: SocketAddr,
    /// The verified client certificate, when client auth was required.
    pub certificate: Option<Arc<CertInfo>>,
}

/// A server-side TLS connection with its peer's identity.
#[derive(Debug)]
pub struct PeerStream {
    inner: TlsStream<TcpStream>,
    peer: PeerInfo,
}

impl Connected for PeerStream {
    type ConnectInfo = PeerInfo;
    fn connect_info(&self) -> PeerInfo {
        self.peer.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Accepts TLS connections on `listener` with the current `config`, for
/// `serve_with_incoming_shutdown`. `port` names the listener in logs.
/// The accept loop ends when the returned stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ArcSwap<ServerConfig>>,
    port: &'static str,
) -> ReceiverStream<Result<PeerStream, io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let (tcp, remote) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    warn!(port, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // gRPC sends small frames; Nagle's algorithm would hold them
            // back behind delayed ACKs (~40 ms a round trip).
            if let Err(e) = tcp.set_nodelay(true) {
                debug!(port, %remote, error = %e, "cannot set TCP_NODELAY");
            }
            let acceptor = TlsAcceptor::from(config.load_full());
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let certificate = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|certs| certs.first())
                            .and_then(|der| CertInfo::from_der(der).ok())
                            .map(Arc::new);
                        debug!(port, %remote, peer = ?certificate.as_ref().map(|c| c.spiffe_id.to_string()), "TLS connection accepted");
                        let _ = tx
                            .send(Ok(PeerStream {
                                inner: stream,
                                peer: PeerInfo {
                                    remote,
                                    certificate,
                                },
                            }))
                            .await;
                    }
                    Ok(Err(e)) => {
                        warn!(port, %remote, reason = %describe(&e), "TLS handshake refused")
                    }
                    Err(_) => {
                        warn!(port, %remote, "TLS handshake refused: no handshake within {HANDSHAKE_TIMEOUT:?}")
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// A handshake error in words; our own policy refusals without rustls's
/// debug wrapping.
fn describe(error: &io::Error) -> String {
    use rustls::{CertificateError, Error};
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
    {
        Some(Error::InvalidCertificate(CertificateError::Other(other))) => {
            format!("invalid peer certificate: {}", other.0)
        }
        _ => error.to_string(),
    }
}
