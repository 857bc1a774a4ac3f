//! A raw XMPP client: plain tokio TCP, our own rustls config, XML as text.
//!
//! Deliberately independent of the broker's XMPP stack (no tokio-xmpp, no
//! xmpp-parsers): it checks the server on its own terms, and it can send what
//! a well-behaved library would refuse to, such as malformed, oversized or
//! forged presence. Stanzas come back as the XML text the server sent; use
//! [`attribute`] and `str::contains` to look inside.
//!
//! ```no_run
//! # async fn demo(prosody: &intercloud_tests::prosody::Prosody) -> anyhow::Result<()> {
//! use intercloud_tests::raw_xmpp::RawXmpp;
//! use std::time::Duration;
//! let (jid, password) = prosody.account("cloud-a");
//! let mut client = RawXmpp::login(prosody.c2s, &jid, &password, "probe", &prosody.ca_bundle()).await?;
//! client.join_room(&format!("{}/intruder", prosody.room)).await?;
//! client.send_raw("<presence><x xmlns='urn:intercloud:presence:1'>garbage</x></presence>").await?;
//! let stanza = client.next_stanza(Duration::from_secs(2)).await?;
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How long the client waits for each step of a handshake.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(5);

const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_MUC: &str = "http://jabber.org/protocol/muc";

/// A rustls client config that trusts the CA certificates in `ca_bundle` (PEM)
/// and verifies server names the usual way (DNS SANs).
pub fn tls_config(ca_bundle: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in intercloud_trust::pem::certificates(ca_bundle)
        .with_context(|| format!("reading {}", ca_bundle.display()))?
    {
        roots.add(cert).context("adding a CA certificate")?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The outcome of a SASL exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sasl {
    /// `<success/>`; the stream has been restarted (see [`RawXmpp::features`]).
    Success,
    /// `<failure>…</failure>` (or a stream error), as the server sent it.
    Failure(String),
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

impl Conn {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf).await,
            Self::Tls(s) => s.read(buf).await,
            Self::Gone => Ok(0),
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Plain(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            Self::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            Self::Gone => Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "connection gone",
            )),
        }
    }
}

/// One client stream to the server.
pub struct RawXmpp {
    conn: Conn,
    parser: StreamParser,
    /// Stanzas read while waiting for something else, oldest first.
    pending: VecDeque<String>,
    domain: String,
    header: String,
    features: String,
    jid: Option<String>,
    closed: bool,
}

impl std::fmt::Debug for RawXmpp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawXmpp")
            .field("domain", &self.domain)
            .field("tls", &self.is_tls())
            .field("jid", &self.jid)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl RawXmpp {
    /// Opens a TCP connection to `server` and a stream to `domain`; reads the
    /// server's stream header and features. Nothing is encrypted yet.
    pub async fn connect(server: SocketAddr, domain: &str) -> Result<Self> {
        let tcp = tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect(server))
            .await
            .map_err(|_| anyhow!("connecting to {server} timed out"))?
            .with_context(|| format!("connecting to {server}"))?;
        tcp.set_nodelay(true)?;
        let mut client = Self {
            conn: Conn::Plain(tcp),
            parser: StreamParser::default(),
            pending: VecDeque::new(),
            domain: domain.to_owned(),
            header: String::new(),
            features: String::new(),
            jid: None,
            closed: false,
        };
        client.open_stream().await?;
        Ok(client)
    }

    /// Connects to `server` as `jid` (bare, `user@domain`): STARTTLS verified
    /// against `ca_bundle` with the domain as server name, SASL PLAIN, and
    /// resource binding. Fails unless every step succeeds.
    pub async fn login(
        server: SocketAddr,
        jid: &str,
        password: &str,
        resource: &str,
        ca_bundle: &Path,
    ) -> Result<Self> {
        let (user, domain) = jid
            .split_once('@')
            .with_context(|| format!("{jid:?} is not a bare JID user@domain"))?;
        let mut client = Self::connect(server, domain).await?;
        client.starttls(ca_bundle).await?;
        match client.auth_plain(user, password).await? {
            Sasl::Success => {}
            Sasl::Failure(reply) => bail!("SASL PLAIN as {jid} failed: {reply}"),
        }
        client.bind(resource).await?;
        Ok(client)
    }

    /// The `<stream:features>` element of the current stream.
    pub fn features(&self) -> &str {
        &self.features
    }

    /// The server's current `<stream:stream …>` opening tag.
    pub fn stream_header(&self) -> &str {
        &self.header
    }

    /// The SASL mechanisms the current features offer (empty when none are).
    pub fn mechanisms(&self) -> Vec<String> {
        let mut found = Vec::new();
        let mut rest = self.features.as_str();
        while let Some(start) = rest.find("<mechanism>") {
            rest = &rest[start + "<mechanism>".len()..];
            let Some(end) = rest.find("</mechanism>") else {
                break;
            };
            found.push(rest[..end].trim().to_owned());
            rest = &rest[end..];
        }
        found
    }

    /// Whether the stream runs over TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.conn, Conn::Tls(_))
    }

    /// The full JID bound by [`Self::bind`].
    pub fn jid(&self) -> Option<&str> {
        self.jid.as_deref()
    }

    /// STARTTLS verifying the server's certificate against `ca_bundle` with
    /// the stream's domain as name, then a new stream over TLS.
    pub async fn starttls(&mut self, ca_bundle: &Path) -> Result<()> {
        let domain = self.domain.clone();
        self.starttls_with(tls_config(ca_bundle)?, &domain).await
    }

    /// STARTTLS with any client config, expecting certificate name
    /// `server_name` (to check that a wrong name is refused, say).
    pub async fn starttls_with(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        server_name: &str,
    ) -> Result<()> {
        if !self.features.contains("<starttls") {
            bail!("the server does not offer STARTTLS: {}", self.features);
        }
        self.send_raw(&format!("<starttls xmlns='{NS_TLS}'/>"))
            .await?;
        let reply = self.next_stanza(STEP_TIMEOUT).await?;
        if !reply.starts_with("<proceed") {
            bail!("STARTTLS refused: {reply}");
        }
        if !self.parser.is_empty() || !self.pending.is_empty() {
            bail!("the server sent more after <proceed/> (a STARTTLS injection?)");
        }
        let Conn::Plain(tcp) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            bail!("the stream is not a plain TCP stream");
        };
        let name = ServerName::try_from(server_name.to_owned())
            .with_context(|| format!("{server_name:?} is not a server name"))?;
        let tls = tokio::time::timeout(STEP_TIMEOUT, TlsConnector::from(config).connect(name, tcp))
            .await
            .map_err(|_| anyhow!("TLS handshake timed out"))?
            .context("TLS handshake")?;
        self.conn = Conn::Tls(Box::new(tls));
        self.open_stream().await
    }

    /// SASL PLAIN as `user` (authzid empty). On success the stream is
    /// restarted, and [`Self::features`] are the new ones (with `<bind/>`).
    pub async fn auth_plain(&mut self, user: &str, password: &str) -> Result<Sasl> {
        let token = BASE64.encode(format!("\0{user}\0{password}"));
        self.send_raw(&format!(
            "<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>"
        ))
        .await?;
        let reply = match self.next_stanza(STEP_TIMEOUT).await {
            Ok(reply) => reply,
            Err(error) if self.closed => return Ok(Sasl::Failure(error.to_string())),
            Err(error) => return Err(error),
        };
        if reply.starts_with("<success") {
            self.open_stream().await?;
            Ok(Sasl::Success)
        } else if reply.starts_with("<failure") || reply.starts_with("<stream:error") {
            Ok(Sasl::Failure(reply))
        } else {
            bail!("unexpected answer to <auth/>: {reply}")
        }
    }

    /// Binds `resource` and returns the full JID the server assigned.
    pub async fn bind(&mut self, resource: &str) -> Result<String> {
        if !self.features.contains("<bind") {
            bail!(
                "no resource binding offered (not authenticated?): {}",
                self.features
            );
        }
        self.send_raw(&format!(
            "<iq type='set' id='bind-1'><bind xmlns='{NS_BIND}'><resource>{}</resource></bind></iq>",
            xml_escape(resource)
        ))
        .await?;
        let reply = self
            .wait_for(STEP_TIMEOUT, |s| {
                s.starts_with("<iq") && attribute(s, "id").as_deref() == Some("bind-1")
            })
            .await?;
        if attribute(&reply, "type").as_deref() != Some("result") {
            bail!("binding {resource:?} failed: {reply}");
        }
        let jid = between(&reply, "<jid>", "</jid>")
            .with_context(|| format!("no <jid/> in the bind result: {reply}"))?;
        self.jid = Some(jid.clone());
        Ok(jid)
    }

    /// Joins a MUC room as `room@service/nick` with a plain MUC presence and
    /// waits for the room's self-presence (status 110), which it returns.
    /// Stanzas that arrive meanwhile (other occupants' presence, history)
    /// stay queued for [`Self::next_stanza`].
    pub async fn join_room(&mut self, room_jid_with_nick: &str) -> Result<String> {
        self.join_room_with(room_jid_with_nick, "").await
    }

    /// [`Self::join_room`] with `payload` (raw XML, not checked) added to the
    /// join presence after the MUC `<x/>`.
    pub async fn join_room_with(
        &mut self,
        room_jid_with_nick: &str,
        payload: &str,
    ) -> Result<String> {
        if !room_jid_with_nick.contains('/') {
            bail!("{room_jid_with_nick:?} has no nick: use room@service/nick");
        }
        self.send_raw(&format!(
            "<presence to='{}'><x xmlns='{NS_MUC}'/>{payload}</presence>",
            xml_escape(room_jid_with_nick)
        ))
        .await?;
        let occupant = room_jid_with_nick.to_owned();
        let reply = self
            .wait_for(STEP_TIMEOUT, |s| {
                s.starts_with("<presence")
                    && attribute(s, "from").as_deref() == Some(occupant.as_str())
                    && (s.contains("code='110'")
                        || s.contains("code=\"110\"")
                        || attribute(s, "type").as_deref() == Some("error"))
            })
            .await?;
        if attribute(&reply, "type").as_deref() == Some("error") {
            bail!("joining {room_jid_with_nick} failed: {reply}");
        }
        Ok(reply)
    }

    /// Sends `xml` as it is (no check, no escaping).
    pub async fn send_raw(&mut self, xml: &str) -> Result<()> {
        self.conn
            .write_all(xml.as_bytes())
            .await
            .with_context(|| format!("sending {} bytes", xml.len()))
    }

    /// Sends an IQ and waits for the `result`/`error` with the same id,
    /// returning it. Other stanzas stay queued.
    pub async fn send_iq(
        &mut self,
        to: &str,
        kind: &str,
        id: &str,
        payload: &str,
        timeout: Duration,
    ) -> Result<String> {
        self.send_raw(&format!(
            "<iq to='{}' type='{}' id='{}'>{payload}</iq>",
            xml_escape(to),
            xml_escape(kind),
            xml_escape(id)
        ))
        .await?;
        self.wait_for(timeout, |s| {
            s.starts_with("<iq")
                && attribute(s, "id").as_deref() == Some(id)
                && matches!(attribute(s, "type").as_deref(), Some("result" | "error"))
        })
        .await
    }

    /// The next top-level element of the stream (a stanza, a SASL/TLS element,
    /// or `<stream:error>`), queued ones first. Fails after `timeout`, or when
    /// the server closes the stream or the connection.
    pub async fn next_stanza(&mut self, timeout: Duration) -> Result<String> {
        if let Some(stanza) = self.pending.pop_front() {
            return Ok(stanza);
        }
        self.read_element(Instant::now() + timeout).await
    }

    /// Reads until a stanza satisfies `matches` and returns it; the others
    /// (queued ones included) stay queued, in order.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Result<String> {
        if let Some(index) = self.pending.iter().position(|s| matches(s)) {
            return Ok(self.pending.remove(index).unwrap_or_default());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let stanza = self.read_element(deadline).await?;
            if matches(&stanza) {
                return Ok(stanza);
            }
            self.pending.push_back(stanza);
        }
    }

    /// Everything already received and queued, without waiting.
    pub fn drain_pending(&mut self) -> Vec<String> {
        self.pending.drain(..).collect()
    }

    /// Whether the server closed the stream or the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Closes the stream politely and drops the connection.
    pub async fn close(mut self) {
        if !self.closed {
            let _ = self.send_raw("</stream:stream>").await;
        }
        match &mut self.conn {
            Conn::Plain(s) => {
                let _ = s.shutdown().await;
            }
            Conn::Tls(s) => {
                let _ = s.shutdown().await;
            }
            Conn::Gone => {}
        }
    }

    /// Sends a stream header to the domain; reads the server's header and features.
    async fn open_stream(&mut self) -> Result<()> {
        self.parser = StreamParser::default();
        self.pending.clear();
        self.send_raw(&format!(
            "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xml:lang='en' \
             xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
            xml_escape(&self.domain)
        ))
        .await?;
        let deadline = Instant::now() + STEP_TIMEOUT;
        match self.read_event(deadline).await? {
            Event::Header(header) => self.header = header,
            Event::Element(element) => bail!("expected a stream header, got {element}"),
            Event::End => bail!("the server closed the stream at once"),
        }
        let features = self.read_element(deadline).await?;
        if !features.starts_with("<stream:features") {
            bail!("expected <stream:features>, got {features}");
        }
        self.features = features;
        Ok(())
    }

    async fn read_element(&mut self, deadline: Instant) -> Result<String> {
        match self.read_event(deadline).await? {
            Event::Element(element) => Ok(element),
            Event::Header(header) => bail!("unexpected second stream header {header}"),
            Event::End => {
                self.closed = true;
                bail!("the server closed the stream (</stream:stream>)")
            }
        }
    }

    async fn read_event(&mut self, deadline: Instant) -> Result<Event> {
        let mut chunk = vec![0_u8; 16 * 1024];
        loop {
            if let Some(event) = self.parser.next_event()? {
                return Ok(event);
            }
            if self.closed {
                bail!("the connection is closed");
            }
            let read = tokio::time::timeout_at(deadline, self.conn.read(&mut chunk))
                .await
                .map_err(|_| anyhow!("nothing from the server in time"))?;
            let n = match read {
                Ok(n) => n,
                Err(error) => {
                    // Reset, or a TLS stream cut without close_notify.
                    self.closed = true;
                    return Err(error).context("reading from the server");
                }
            };
            if n == 0 {
                self.closed = true;
                bail!("the server closed the connection");
            }
            self.parser.push(&chunk[..n]);
        }
    }
}

/// One event of an XMPP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// `<stream:stream …>`.
    Header(String),
    /// A complete top-level child of the stream, as sent.
    Element(String),
    /// `</stream:stream>`.
    End,
}

/// Splits an incoming XMPP stream into [`Event`]s. Not a validating parser:
/// it finds tag boundaries (quote-aware) and counts depth, which is all a
/// test client needs to hand out whole stanzas.
#[derive(Debug, Default)]
struct StreamParser {
    buf: Vec<u8>,
    stream_open: bool,
}

impl StreamParser {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    fn is_empty(&self) -> bool {
        self.buf.iter().all(u8::is_ascii_whitespace)
    }

    fn next_event(&mut self) -> Result<Option<Event>> {
        loop {
            // Whitespace keepalives and stray text between stanzas.
            let Some(lt) = self.buf.iter().position(|&b| b == b'<') else {
                self.buf.clear();
                return Ok(None);
            };
            self.buf.drain(..lt);
            if self.buf.starts_with(b"<?") || self.buf.starts_with(b"<!--") {
                let end_marker: &[u8] = if self.buf.starts_with(b"<?") {
                    b"?>"
                } else {
                    b"-->"
                };
                let Some(end) = find(&self.buf, end_marker, 2) else {
                    return Ok(None);
                };
                self.buf.drain(..end + end_marker.len());
                continue;
            }
            if !self.stream_open {
                let Some(end) = tag_end(&self.buf, 0)? else {
                    return Ok(None);
                };
                let header = self.take(end + 1);
                if !header.starts_with("<stream:stream") {
                    bail!("expected a stream header, got {header}");
                }
                self.stream_open = true;
                return Ok(Some(Event::Header(header)));
            }
            if self.buf.starts_with(b"</") {
                let Some(end) = tag_end(&self.buf, 0)? else {
                    return Ok(None);
                };
                self.buf.drain(..=end);
                self.stream_open = false;
                return Ok(Some(Event::End));
            }
            return match element_end(&self.buf)? {
                Some(end) => Ok(Some(Event::Element(self.take(end)))),
                None => Ok(None),
            };
        }
    }

    fn take(&mut self, n: usize) -> String {
        let bytes: Vec<u8> = self.buf.drain(..n).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The length of the complete element at the start of `buf`, if it is complete.
fn element_end(buf: &[u8]) -> Result<Option<usize>> {
    let mut depth = 0_usize;
    let mut i = 0;
    loop {
        let Some(lt) = buf[i..].iter().position(|&b| b == b'<') else {
            return Ok(None);
        };
        i += lt;
        let rest = &buf[i..];
        let skip: Option<&[u8]> = if rest.starts_with(b"<!--") {
            Some(b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            Some(b"]]>")
        } else if rest.starts_with(b"<?") {
            Some(b"?>")
        } else {
            None
        };
        if let Some(marker) = skip {
            let Some(end) = find(buf, marker, i + 2) else {
                return Ok(None);
            };
            i = end + marker.len();
            continue;
        }
        let Some(end) = tag_end(buf, i)? else {
            return Ok(None);
        };
        if rest.starts_with(b"</") {
            depth = depth
                .checked_sub(1)
                .context("a closing tag without an opening one")?;
        } else if buf[end - 1] != b'/' {
            depth += 1;
        }
        i = end + 1;
        if depth == 0 {
            return Ok(Some(i));
        }
    }
}

/// The index of the `>` ending the tag that starts at `start`, skipping
/// quoted attribute values.
fn tag_end(buf: &[u8], start: usize) -> Result<Option<usize>> {
    let mut quote: Option<u8> = None;
    for (offset, &b) in buf[start + 1..].iter().enumerate() {
        match (quote, b) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(b),
            (None, b'>') => return Ok(Some(start + 1 + offset)),
            (None, b'<') => bail!("'<' inside a tag"),
            (None, _) => {}
        }
    }
    Ok(None)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(xml_unescape(&text[from..to]))
}

/// The value of attribute `name` of the first tag of `xml` (unescaped), if any.
pub fn attribute(xml: &str, name: &str) -> Option<String> {
    let start = xml.find('<')?;
    let end = tag_end(xml.as_bytes(), start).ok()??;
    let tag = &xml[start + 1..end];
    // Skip the element name, then walk `name=quoted` pairs.
    let mut rest = tag.trim_start_matches(|c: char| !c.is_whitespace() && c != '/');
    loop {
        rest = rest.trim_start();
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let quote = after.chars().next()?;
        if quote != '\'' && quote != '"' {
            return None;
        }
        let close = after[1..].find(quote)? + 1;
        if key == name {
            return Some(xml_unescape(&after[1..close]));
        }
        rest = &after[close + 1..];
    }
}

/// Escapes `&`, `<`, `>`, `'` and `"` for text and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes the five predefined entities (enough for what Prosody sends).
pub fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&apos;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&str]) -> Vec<Event> {
        let mut parser = StreamParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk.as_bytes());
            while let Some(event) = parser.next_event().expect("well-formed") {
                out.push(event);
            }
        }
        out
    }

    #[test]
    fn splits_a_stream_fed_byte_by_byte() {
        let stream = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' id='a>b'>\
            <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features> \
            <presence from='r@c/x' a=\"q'>\"><x><![CDATA[<not a tag>]]></x><!-- <c> --></presence>\
            <iq id='1'/></stream:stream>";
        let bytes: Vec<String> = stream.chars().map(String::from).collect();
        let chunks: Vec<&str> = bytes.iter().map(String::as_str).collect();
        let expected = vec![
            Event::Header("<stream:stream xmlns='jabber:client' id='a>b'>".into()),
            Event::Element("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>".into()),
            Event::Element("<presence from='r@c/x' a=\"q'>\"><x><![CDATA[<not a tag>]]></x><!-- <c> --></presence>".into()),
            Event::Element("<iq id='1'/>".into()),
            Event::End,
        ];
        assert_eq!(events(&chunks), expected);
        assert_eq!(events(&[stream]), expected);
    }

    #[test]
    fn reads_attributes() {
        let xml = "<presence from='room@conf/nick' to=\"a@b/c\" type='error'><x a='1'/></presence>";
        assert_eq!(attribute(xml, "from").as_deref(), Some("room@conf/nick"));
        assert_eq!(attribute(xml, "to").as_deref(), Some("a@b/c"));
        assert_eq!(attribute(xml, "type").as_deref(), Some("error"));
        assert_eq!(attribute(xml, "a"), None);
        assert_eq!(
            attribute("<iq id='a&amp;b'/>", "id").as_deref(),
            Some("a&b")
        );
        assert_eq!(xml_escape("<'&\">"), "&lt;&apos;&amp;&quot;&gt;");
    }
}
