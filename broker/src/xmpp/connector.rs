//! Connecting to the federation's XMPP server: TCP to a configured address
//! (no DNS SRV lookups), STARTTLS, and a TLS handshake that verifies the
//! server's certificate for the XMPP domain against the federation CA, not
//! against the system's trust store.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::{SinkExt as _, StreamExt as _};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use sasl::common::ChannelBinding;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_xmpp::connect::ServerConnector;
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::xmlstream::{
    PendingFeaturesRecv, ReadError, StreamHeader, Timeouts, XmppStreamElement, initiate_stream,
};

/// STARTTLS to a fixed address, verified with the federation's roots.
#[derive(Clone)]
pub struct FederationStartTls {
    /// The c2s address.
    pub server: SocketAddr,
    /// Roots that must sign the server's certificate.
    pub tls: Arc<ClientConfig>,
}

impl std::fmt::Debug for FederationStartTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederationStartTls")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

fn io_error(kind: std::io::ErrorKind, message: impl Into<String>) -> tokio_xmpp::Error {
    tokio_xmpp::Error::Io(std::io::Error::new(kind, message.into()))
}

impl ServerConnector for FederationStartTls {
    type Stream = BufStream<TlsStream<TcpStream>>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), tokio_xmpp::Error> {
        let domain = jid.domain().as_str().to_owned();
        let tcp = TcpStream::connect(self.server).await?;
        tcp.set_nodelay(true)?;
        let header = || StreamHeader {
            to: Some(Cow::Owned(domain.clone())),
            from: None,
            id: None,
        };
        let pending = initiate_stream(BufStream::new(tcp), ns, header(), timeouts).await?;
        let (features, mut stream) =
            pending
                .recv_features::<XmppStreamElement>()
                .await
                .map_err(|e| {
                    io_error(
                        std::io::ErrorKind::InvalidData,
                        format!("stream features: {e}"),
                    )
                })?;
        if !features.can_starttls() {
            return Err(io_error(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{} does not offer STARTTLS; refusing to log in without TLS",
                    self.server
                ),
            ));
        }
        stream
            .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
                starttls::Request,
            )))
            .await?;
        loop {
            match stream.next().await {
                Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
                Some(Ok(_)) | Some(Err(ReadError::SoftTimeout)) => {}
                Some(Err(ReadError::HardError(e))) => return Err(e.into()),
                Some(Err(ReadError::ParseError(e))) => {
                    return Err(io_error(std::io::ErrorKind::InvalidData, e.to_string()));
                }
                None | Some(Err(ReadError::StreamFooterReceived)) => {
                    return Err(tokio_xmpp::Error::Disconnected);
                }
            }
        }
        let tcp = stream.into_inner().into_inner();
        let name = ServerName::try_from(domain.clone()).map_err(|_| {
            io_error(
                std::io::ErrorKind::InvalidInput,
                format!("{domain} is not a DNS name"),
            )
        })?;
        let tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await?;
        let pending = initiate_stream(BufStream::new(tls), ns, header(), timeouts).await?;
        Ok((pending, ChannelBinding::None))
    }
}
