//! The broker's configuration: `broker.toml`, `INTERCLOUD_BROKER_*`, flags.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use intercloud_daemon::config::{ConfigError, load};
use intercloud_daemon::logging::LogFormat;
use intercloud_ontology::descriptor::DescriptorFormat;
use intercloud_trust::{CloudId, FederationDomain};
use serde::{Deserialize, Serialize};

/// Everything a broker needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// This cloud's id.
    pub cloud_id: CloudId,
    /// The federation's DNS name.
    pub federation: FederationDomain,
    /// Identity, endpoints file and later state live here.
    pub data_dir: PathBuf,
    /// Listening addresses.
    pub listen: Listen,
    /// The root's endpoints.
    pub root: RootEndpoints,
    /// Trust bundle and optional pre-provisioned certificate.
    pub tls: Tls,
    /// How to enrol when there is no certificate yet.
    #[serde(default)]
    pub enrollment: Enrollment,
    /// Timers.
    #[serde(default)]
    pub timers: Timers,
    /// Presence and dialog over XMPP; without it the broker has no peers.
    #[serde(default)]
    pub xmpp: Option<Xmpp>,
    /// What this cloud offers to peers.
    #[serde(default)]
    pub capacity: CapacityConfig,
    /// This cloud's service descriptor, published to the root's directory.
    #[serde(default)]
    pub directory: DirectoryConfig,
    /// The local clock measured against the root's NTP server.
    #[serde(default)]
    pub clock: ClockConfig,
    /// Transfers over AMQP (RabbitMQ); without `url`, none.
    #[serde(default)]
    pub amqp: AmqpConfig,
    /// This cloud's side of cross-cloud VNets; without `vtep`, none.
    #[serde(default)]
    pub network: NetworkConfig,
    /// Log line format.
    #[serde(default)]
    pub log_format: LogFormat,
}

/// Listening addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// The operator API (mutual TLS). Port 0 picks a free port.
    pub api: SocketAddr,
    /// The endpoint registered with the root (default: the bound address).
    #[serde(default)]
    pub advertise: Option<String>,
}

/// Where the root is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootEndpoints {
    /// The root's mutual-TLS API, `host:port`.
    pub api: String,
    /// The root's enrolment port, `host:port`.
    pub enroll: String,
}

/// PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The federation CA certificate(s).
    pub ca_bundle: PathBuf,
    /// A pre-provisioned certificate, used when `<data_dir>/identity/` holds none.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Its key.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// CRLs in force until the root's CRL has been fetched.
    #[serde(default)]
    pub crl_files: Vec<PathBuf>,
}

/// Enrolment with a join token.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    /// The token itself.
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding the token (first line).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// The XMPP account and room used for presence and dialog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Xmpp {
    /// The server's c2s address, `ip:port` (no DNS SRV lookup).
    pub server: SocketAddr,
    /// This broker's account, `broker@<cloud>.<federation>`.
    pub jid: String,
    /// Its password.
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (first line).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The federation room, `federation@conference.root.<federation>`.
    pub room: String,
    /// CA bundle that signs the XMPP server's certificate (default: `tls.ca_bundle`).
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    /// A peer silent for longer than this is offline.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// How often this broker re-announces itself (must be below the lease).
    #[serde(default = "default_announce_seconds")]
    pub announce_seconds: u64,
    /// Largest clock difference accepted in a peer's announcement timestamp.
    #[serde(default = "default_max_skew_seconds")]
    pub max_skew_seconds: u64,
}

fn default_lease_seconds() -> u64 {
    15
}

fn default_announce_seconds() -> u64 {
    5
}

fn default_max_skew_seconds() -> u64 {
    30
}

/// Capacity this cloud offers, and whether its operator accepts work.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapacityConfig {
    /// Virtual CPUs.
    pub vcpu: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Storage in GiB.
    pub storage_gib: u64,
    /// Whether the operator lets peers reserve capacity ("willing").
    pub willing: bool,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        Self {
            vcpu: 64,
            memory_mib: 256 * 1024,
            storage_gib: 10_000,
            willing: true,
        }
    }
}

/// The descriptor this broker publishes to the root's directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    /// The descriptor file (`.ttl`, `.nt` or `.jsonld`); without it nothing
    /// is published. It need not exist yet: until it does, the descriptor is
    /// reported invalid.
    pub descriptor: Option<PathBuf>,
    /// How often the file is re-read to notice changes.
    pub check_seconds: u64,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self {
            descriptor: None,
            check_seconds: 5,
        }
    }
}

impl DirectoryConfig {
    /// The descriptor file and its format (from the extension), if one is
    /// configured.
    pub fn descriptor_file(&self) -> Result<Option<(PathBuf, DescriptorFormat)>, ConfigError> {
        let Some(path) = &self.descriptor else {
            return Ok(None);
        };
        let format = path
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| ["ttl", "nt", "jsonld"].contains(e))
            .and_then(DescriptorFormat::from_extension)
            .ok_or_else(|| {
                ConfigError::bad_value(
                    "directory.descriptor",
                    format!(
                        "{} does not end in .ttl (Turtle), .nt (N-Triples) or .jsonld (JSON-LD)",
                        path.display()
                    ),
                )
            })?;
        Ok(Some((path.clone(), format)))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.descriptor_file()?;
        if self.check_seconds == 0 {
            return Err(ConfigError::bad_value(
                "directory.check_seconds",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Transfers of images and objects over AMQP 0-9-1 (RabbitMQ), with the
/// broker's own certificate (SASL EXTERNAL) over TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpConfig {
    /// `amqps://host:port/vhost` (`%2f` for `/`); without it the broker
    /// neither sends nor receives transfers.
    pub url: Option<String>,
    /// The CA bundle the RabbitMQ server's certificate must chain to
    /// (default: `tls.ca_bundle`).
    pub ca_bundle: Option<PathBuf>,
    /// Chunk size of outgoing transfers, bytes (64 KiB to 8 MiB).
    pub chunk_size: u64,
    /// Chunks published and not yet confirmed, per outgoing transfer.
    pub window: usize,
    /// Deliveries RabbitMQ may hand the receiver before it acks (the
    /// receiver fsyncs and acks them in batches).
    pub prefetch: u16,
    /// An incoming transfer asks again for what is missing after this long
    /// without a chunk.
    pub resend_after_seconds: u64,
    /// An outgoing transfer announces its manifest again after this long
    /// without an answer.
    pub reannounce_after_seconds: u64,
    /// The receiver keeps this many bytes free: a transfer that would eat
    /// into them is refused (`no_space`).
    pub reserve_bytes: u64,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: None,
            ca_bundle: None,
            chunk_size: 1024 * 1024,
            window: 32,
            prefetch: 64,
            resend_after_seconds: 10,
            reannounce_after_seconds: 30,
            reserve_bytes: 0,
        }
    }
}

impl AmqpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.url
            && !url.starts_with("amqps://")
        {
            return Err(ConfigError::bad_value(
                "amqp.url",
                format!("{url} is not an amqps:// URL: transfers go over TLS only"),
            ));
        }
        let (min, max) = (
            intercloud_transfer::MIN_CHUNK_SIZE,
            intercloud_transfer::MAX_CHUNK_SIZE,
        );
        if !(min..=max).contains(&self.chunk_size) {
            return Err(ConfigError::bad_value(
                "amqp.chunk_size",
                format!("{} is outside {min}..={max} bytes", self.chunk_size),
            ));
        }
        if self.window == 0 || self.window > 1024 {
            return Err(ConfigError::bad_value("amqp.window", "must be 1..=1024"));
        }
        if self.prefetch == 0 {
            return Err(ConfigError::bad_value(
                "amqp.prefetch",
                "must be at least 1",
            ));
        }
        if self.resend_after_seconds == 0 || self.reannounce_after_seconds == 0 {
            return Err(ConfigError::bad_value(
                "amqp.resend_after_seconds/reannounce_after_seconds",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// This broker's side of the cross-cloud VNets: the VXLAN devices, bridges
/// and veths it makes on the Linux kernel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// This cloud's underlay IPv4 address, the VTEP its VXLAN devices send
    /// from and receive on; declared to the root. Without it the VNet data
    /// plane is off.
    pub vtep: Option<String>,
    /// The named network namespace (`/run/netns/<name>`) holding this
    /// cloud's underlay: where its VXLAN devices and bridges live. Default:
    /// the broker's own namespace.
    pub namespace: Option<String>,
    /// The underlay's MTU; the overlay's is 50 bytes less (VXLAN headers).
    pub mtu: u16,
    /// Seconds between two reconciliations of the kernel with the plan
    /// (besides the one after every change the root announces).
    pub reconcile_seconds: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            vtep: None,
            namespace: None,
            mtu: 1500,
            reconcile_seconds: 10,
        }
    }
}

/// The smallest underlay MTU: the overlay needs 576 bytes, VXLAN takes 50.
const MIN_UNDERLAY_MTU: u16 = 576 + intercloud_vnet::plan::VXLAN_OVERHEAD;

impl NetworkConfig {
    /// The VTEP address, once validated; `None`: the data plane is off.
    pub fn vtep_address(&self) -> Option<Ipv4Addr> {
        self.vtep.as_deref().and_then(|v| v.parse().ok())
    }

    /// Seconds between two reconciliations.
    pub fn reconcile_every(&self) -> Duration {
        Duration::from_secs(self.reconcile_seconds)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(vtep) = &self.vtep {
            let address: Ipv4Addr = vtep.parse().map_err(|_| {
                ConfigError::bad_value(
                    "network.vtep",
                    format!("{vtep:?} is not an IPv4 address (dotted quad, e.g. 10.231.0.1)"),
                )
            })?;
            // As the root checks it: an address that can be one host's.
            let refused = if address.is_unspecified() {
                Some("the unspecified address")
            } else if address.is_broadcast() {
                Some("the broadcast address")
            } else if address.is_multicast() {
                Some("a multicast address")
            } else if address.octets()[0] >= 240 {
                Some("in the reserved 240.0.0.0/4")
            } else {
                None
            };
            if let Some(what) = refused {
                return Err(ConfigError::bad_value(
                    "network.vtep",
                    format!("{address} is {what}, not a unicast underlay address"),
                ));
            }
        }
        if let Some(namespace) = &self.namespace {
            let reason = if namespace.is_empty() || namespace.len() > 255 {
                Some("must be 1 to 255 bytes long".to_owned())
            } else if namespace == "." || namespace == ".." || namespace.contains(['/', '\0']) {
                Some("must be a file name in /run/netns (no '/', not '.' or '..')".to_owned())
            } else if namespace.parse::<intercloud_vnet::NetnsName>().is_ok() {
                Some(
                    "has the form ic-<cloud>.<instance> of an instance's namespace, which brokers delete when the instance goes"
                        .to_owned(),
                )
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(ConfigError::bad_value(
                    "network.namespace",
                    format!("{namespace:?} {reason}"),
                ));
            }
        }
        if self.mtu < MIN_UNDERLAY_MTU {
            return Err(ConfigError::bad_value(
                "network.mtu",
                format!(
                    "{} is below {MIN_UNDERLAY_MTU}: the overlay needs 576 bytes and VXLAN takes 50",
                    self.mtu
                ),
            ));
        }
        if self.reconcile_seconds == 0 {
            return Err(ConfigError::bad_value(
                "network.reconcile_seconds",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// The local clock's health against the root's NTP server. The broker only
/// measures; it never sets the system clock.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockConfig {
    /// The root's NTP server, `host:port` (its `[ntp] listen`); without it
    /// the clock is not measured.
    pub ntp_server: Option<String>,
    /// Seconds between two requests (a Kiss-o'-Death RATE from the server
    /// doubles it, up to [`crate::clock::state::MAX_BACKOFF_POLL`]).
    pub poll_seconds: u64,
    /// How long one request waits for its reply.
    pub timeout_ms: u64,
    /// Above this |offset| the clock is degraded.
    pub max_offset_ms: u64,
    /// With no valid reply for this long the clock is unsynchronised.
    pub unsynchronised_after_seconds: u64,
}

/// The longest `clock.poll_seconds`: RFC 5905's MAXPOLL, 2^17 s (36.4 h).
const MAX_POLL_SECONDS: u64 = 1 << intercloud_ntp::MAX_POLL;

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            ntp_server: None,
            poll_seconds: 16,
            timeout_ms: 1000,
            max_offset_ms: 100,
            unsynchronised_after_seconds: 60,
        }
    }
}

impl ClockConfig {
    /// Seconds between two requests.
    pub fn poll(&self) -> Duration {
        Duration::from_secs(self.poll_seconds)
    }

    /// How long one request waits for its reply.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Above this |offset| the clock is degraded.
    pub fn max_offset(&self) -> Duration {
        Duration::from_millis(self.max_offset_ms)
    }

    /// With no valid reply for this long the clock is unsynchronised.
    pub fn unsynchronised_after(&self) -> Duration {
        Duration::from_secs(self.unsynchronised_after_seconds)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(server) = &self.ntp_server
            && !is_host_port(server)
        {
            return Err(ConfigError::bad_value(
                "clock.ntp_server",
                format!(
                    "{server:?} is not host:port (the root's [ntp] listen, e.g. 127.0.0.1:7123)"
                ),
            ));
        }
        if !(1..=MAX_POLL_SECONDS).contains(&self.poll_seconds) {
            return Err(ConfigError::bad_value(
                "clock.poll_seconds",
                format!("{} is not within 1..={MAX_POLL_SECONDS}", self.poll_seconds),
            ));
        }
        let poll_ms = self.poll_seconds * 1000;
        if !(1..=poll_ms).contains(&self.timeout_ms) {
            return Err(ConfigError::bad_value(
                "clock.timeout_ms",
                format!(
                    "{} is not within 1..={poll_ms} (a reply is not awaited past the next poll, clock.poll_seconds = {})",
                    self.timeout_ms, self.poll_seconds
                ),
            ));
        }
        if self.max_offset_ms == 0 {
            return Err(ConfigError::bad_value(
                "clock.max_offset_ms",
                "must be at least 1",
            ));
        }
        if self.unsynchronised_after_seconds <= self.poll_seconds {
            return Err(ConfigError::bad_value(
                "clock.unsynchronised_after_seconds",
                format!(
                    "{} must be above clock.poll_seconds ({}), or the clock would count as unsynchronised between two polls",
                    self.unsynchronised_after_seconds, self.poll_seconds
                ),
            ));
        }
        Ok(())
    }
}

/// `host:port` with a non-empty host and a port from 1 to 65535.
fn is_host_port(value: &str) -> bool {
    value
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
}

/// Timers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timers {
    /// Heartbeat interval until the root says otherwise.
    pub heartbeat_seconds: u64,
    /// How often the root's CRL is fetched.
    pub crl_refresh_seconds: u64,
    /// First retry delay after a failed call to the root.
    pub backoff_initial_ms: u64,
    /// Longest retry delay.
    pub backoff_max_ms: u64,
    /// Deadline of one call to the root.
    pub root_call_timeout_ms: u64,
    /// Fraction of a certificate's lifetime after which it is renewed.
    pub renew_at_fraction: f64,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            heartbeat_seconds: 5,
            crl_refresh_seconds: 30,
            backoff_initial_ms: 200,
            backoff_max_ms: 5000,
            root_call_timeout_ms: 3000,
            renew_at_fraction: 0.66,
        }
    }
}

impl Timers {
    /// Deadline of one call to the root.
    pub fn root_call_timeout(&self) -> Duration {
        Duration::from_millis(self.root_call_timeout_ms)
    }
}

/// Flags that override the file.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    /// `data_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `cloud_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_id: Option<String>,
    /// `log_format`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// `listen.api`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<ListenOverride>,
    /// `enrollment.token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrollment: Option<TokenOverride>,
}

/// `listen.api` from a flag.
#[derive(Debug, Serialize)]
pub struct ListenOverride {
    /// `listen.api`.
    pub api: String,
}

/// `enrollment.token` from a flag.
#[derive(Debug, Serialize)]
pub struct TokenOverride {
    /// `enrollment.token`.
    pub token: String,
}

/// Environment variable prefix: `INTERCLOUD_BROKER_ROOT__API`, …
pub const ENV_PREFIX: &str = "INTERCLOUD_BROKER_";

impl BrokerConfig {
    /// Loads and validates the configuration.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let config: Self = load(path, ENV_PREFIX, &["config"], overrides)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("root.api", &self.root.api),
            ("root.enroll", &self.root.enroll),
        ] {
            if !is_host_port(value) {
                return Err(ConfigError::bad_value(
                    key,
                    format!("{value:?} is not host:port"),
                ));
            }
        }
        if !self.tls.ca_bundle.is_file() {
            return Err(ConfigError::bad_value(
                "tls.ca_bundle",
                format!("{} is not a readable file", self.tls.ca_bundle.display()),
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::bad_value(
                "tls.cert",
                "tls.cert and tls.key go together",
            ));
        }
        let t = &self.timers;
        if !(0.1..=0.95).contains(&t.renew_at_fraction) {
            return Err(ConfigError::bad_value(
                "timers.renew_at_fraction",
                format!("{} is not within 0.1..=0.95", t.renew_at_fraction),
            ));
        }
        for (key, value) in [
            ("timers.heartbeat_seconds", t.heartbeat_seconds),
            ("timers.crl_refresh_seconds", t.crl_refresh_seconds),
            ("timers.backoff_initial_ms", t.backoff_initial_ms),
            ("timers.root_call_timeout_ms", t.root_call_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::bad_value(key, "must be at least 1"));
            }
        }
        if let Some(x) = &self.xmpp {
            x.validate(&self.cloud_id, &self.federation)?;
        }
        self.directory.validate()?;
        self.clock.validate()?;
        self.amqp.validate()?;
        self.network.validate()?;
        if t.backoff_max_ms < t.backoff_initial_ms {
            return Err(ConfigError::bad_value(
                "timers.backoff_max_ms",
                "must not be below timers.backoff_initial_ms",
            ));
        }
        Ok(())
    }

    /// The XMPP password, from `xmpp.password` or `xmpp.password_file`.
    pub fn xmpp_password(&self) -> Result<Option<String>, ConfigError> {
        let Some(x) = &self.xmpp else { return Ok(None) };
        if let Some(p) = &x.password {
            return Ok(Some(p.clone()));
        }
        match &x.password_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|s| s.lines().next().map(str::to_owned))
                .map_err(|e| {
                    ConfigError::bad_value("xmpp.password_file", format!("{}: {e}", path.display()))
                }),
            None => Err(ConfigError::bad_value(
                "xmpp.password",
                "set xmpp.password or xmpp.password_file",
            )),
        }
    }

    /// The join token, from `enrollment.token` or `enrollment.token_file`.
    pub fn join_token(&self) -> Result<Option<String>, ConfigError> {
        if let Some(token) = &self.enrollment.token {
            return Ok(Some(token.trim().to_owned()));
        }
        match &self.enrollment.token_file {
            None => Ok(None),
            Some(path) => std::fs::read_to_string(path)
                .map(|s| {
                    s.lines()
                        .next()
                        .map(|l| l.trim().to_owned())
                        .filter(|l| !l.is_empty())
                })
                .map_err(|e| {
                    ConfigError::bad_value(
                        "enrollment.token_file",
                        format!("{}: {e}", path.display()),
                    )
                }),
        }
    }
}

impl Xmpp {
    fn validate(&self, cloud: &CloudId, federation: &FederationDomain) -> Result<(), ConfigError> {
        let expected_domain = format!("{cloud}.{federation}");
        match self.jid.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.contains('/') && domain == expected_domain => {}
            _ => {
                return Err(ConfigError::bad_value(
                    "xmpp.jid",
                    format!(
                        "{:?} must be an account on {expected_domain}, e.g. broker@{expected_domain}",
                        self.jid
                    ),
                ));
            }
        }
        if !self.room.contains('@') || self.room.contains('/') {
            return Err(ConfigError::bad_value(
                "xmpp.room",
                format!("{:?} is not a bare room JID", self.room),
            ));
        }
        if self.password.is_none() && self.password_file.is_none() {
            return Err(ConfigError::bad_value(
                "xmpp.password",
                "set xmpp.password or xmpp.password_file",
            ));
        }
        if self.lease_seconds < 2 {
            return Err(ConfigError::bad_value(
                "xmpp.lease_seconds",
                "must be at least 2",
            ));
        }
        if self.announce_seconds == 0 || self.announce_seconds >= self.lease_seconds {
            return Err(ConfigError::bad_value(
                "xmpp.announce_seconds",
                format!(
                    "must be at least 1 and below xmpp.lease_seconds ({})",
                    self.lease_seconds
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a minimal broker config followed by `extra` and loads it.
    fn load_with(extra: &str) -> Result<BrokerConfig, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, "not read by validation").expect("write ca");
        let text = format!(
            "cloud_id = \"cloud-a\"\n\
             federation = \"intercloud.lab\"\n\
             data_dir = \"{data}\"\n\
             [listen]\napi = \"127.0.0.1:0\"\n\
             [root]\napi = \"127.0.0.1:7443\"\nenroll = \"127.0.0.1:7444\"\n\
             [tls]\nca_bundle = \"{ca}\"\n\
             {extra}\n",
            data = dir.path().display(),
            ca = ca.display(),
        );
        let path = dir.path().join("broker.toml");
        std::fs::write(&path, text).expect("write config");
        BrokerConfig::load(&path, &Overrides::default())
    }

    fn error_line(extra: &str) -> String {
        load_with(extra).expect_err("refused").to_string()
    }

    #[test]
    fn without_a_directory_section_nothing_is_published() {
        let config = load_with("").expect("loads");
        assert_eq!(config.directory.descriptor, None);
        assert_eq!(config.directory.check_seconds, 5);
        assert!(config.directory.descriptor_file().expect("ok").is_none());
        let empty = load_with("[directory]").expect("an empty section loads");
        assert!(empty.directory.descriptor_file().expect("ok").is_none());
    }

    #[test]
    fn the_descriptor_format_comes_from_the_extension() {
        for (file, format) in [
            ("cloud-a.ttl", DescriptorFormat::Turtle),
            ("cloud-a.nt", DescriptorFormat::NTriples),
            ("cloud-a.jsonld", DescriptorFormat::JsonLd),
        ] {
            let config = load_with(&format!(
                "[directory]\ndescriptor = \"/etc/intercloud/{file}\"\ncheck_seconds = 2"
            ))
            .expect("loads");
            let (path, got) = config
                .directory
                .descriptor_file()
                .expect("ok")
                .expect("configured");
            assert_eq!(path, Path::new("/etc/intercloud").join(file));
            assert_eq!(got, format, "{file}");
            assert_eq!(config.directory.check_seconds, 2);
        }
    }

    #[test]
    fn a_missing_descriptor_file_is_not_a_config_error() {
        let config = load_with("[directory]\ndescriptor = \"/nonexistent/cloud-a.ttl\"")
            .expect("the file may appear later");
        assert!(config.directory.descriptor_file().expect("ok").is_some());
    }

    #[test]
    fn bad_directory_values_name_the_key() {
        for (extra, key, words) in [
            (
                "[directory]\ndescriptor = \"/etc/intercloud/cloud-a.rdf\"",
                "`directory.descriptor`",
                "cloud-a.rdf does not end in .ttl",
            ),
            (
                "[directory]\ndescriptor = \"/etc/intercloud/descriptor\"",
                "`directory.descriptor`",
                "descriptor does not end in .ttl",
            ),
            (
                "[directory]\ndescriptor = \"/etc/intercloud/cloud-a.ttl\"\ncheck_seconds = 0",
                "`directory.check_seconds`",
                "must be at least 1",
            ),
        ] {
            let error = error_line(extra);
            assert!(error.contains(key), "{extra}: {error}");
            assert!(error.contains(words), "{extra}: {error}");
        }
        let error = error_line("[directory]\ndescriptr = \"/x.ttl\"");
        assert!(error.contains("descriptr"), "{error}");
        let error = error_line("[directory]\ncheck_seconds = -1");
        assert!(error.contains("check_seconds"), "{error}");
    }

    #[test]
    fn without_a_clock_section_the_clock_is_not_measured() {
        let config = load_with("").expect("loads");
        let clock = &config.clock;
        assert_eq!(clock.ntp_server, None);
        assert_eq!(clock.poll(), Duration::from_secs(16));
        assert_eq!(clock.timeout(), Duration::from_millis(1000));
        assert_eq!(clock.max_offset(), Duration::from_millis(100));
        assert_eq!(clock.unsynchronised_after(), Duration::from_secs(60));
        let empty = load_with("[clock]").expect("an empty section loads");
        assert_eq!(empty.clock.ntp_server, None);
    }

    #[test]
    fn clock_keys_are_read() {
        let config = load_with(
            "[clock]\n\
             ntp_server = \"root.intercloud.lab:7123\"\n\
             poll_seconds = 2\n\
             timeout_ms = 500\n\
             max_offset_ms = 5\n\
             unsynchronised_after_seconds = 10",
        )
        .expect("loads");
        let clock = &config.clock;
        assert_eq!(
            clock.ntp_server.as_deref(),
            Some("root.intercloud.lab:7123")
        );
        assert_eq!(clock.poll(), Duration::from_secs(2));
        assert_eq!(clock.timeout(), Duration::from_millis(500));
        assert_eq!(clock.max_offset(), Duration::from_millis(5));
        assert_eq!(clock.unsynchronised_after(), Duration::from_secs(10));
        // The shortest settings the lab and the tests use.
        let fast = load_with(
            "[clock]\nntp_server = \"127.0.0.1:7123\"\npoll_seconds = 1\nunsynchronised_after_seconds = 3",
        )
        .expect("loads");
        assert_eq!(fast.clock.timeout(), Duration::from_millis(1000));
    }

    #[test]
    fn bad_clock_values_name_the_key() {
        for (extra, key, words) in [
            (
                "[clock]\nntp_server = \"127.0.0.1\"",
                "`clock.ntp_server`",
                "\"127.0.0.1\" is not host:port",
            ),
            (
                "[clock]\nntp_server = \":7123\"",
                "`clock.ntp_server`",
                "is not host:port",
            ),
            (
                "[clock]\nntp_server = \"127.0.0.1:0\"",
                "`clock.ntp_server`",
                "is not host:port",
            ),
            (
                "[clock]\npoll_seconds = 0",
                "`clock.poll_seconds`",
                "0 is not within 1..=131072",
            ),
            (
                "[clock]\npoll_seconds = 200000\nunsynchronised_after_seconds = 400000",
                "`clock.poll_seconds`",
                "200000 is not within 1..=131072",
            ),
            (
                "[clock]\ntimeout_ms = 0",
                "`clock.timeout_ms`",
                "0 is not within 1..=16000",
            ),
            (
                "[clock]\npoll_seconds = 1\ntimeout_ms = 1500\nunsynchronised_after_seconds = 5",
                "`clock.timeout_ms`",
                "1500 is not within 1..=1000",
            ),
            (
                "[clock]\nmax_offset_ms = 0",
                "`clock.max_offset_ms`",
                "must be at least 1",
            ),
            (
                "[clock]\npoll_seconds = 60",
                "`clock.unsynchronised_after_seconds`",
                "60 must be above clock.poll_seconds (60)",
            ),
            (
                "[clock]\nunsynchronised_after_seconds = 0",
                "`clock.unsynchronised_after_seconds`",
                "must be above clock.poll_seconds (16)",
            ),
        ] {
            let error = error_line(extra);
            assert!(error.contains(key), "{extra}: {error}");
            assert!(error.contains(words), "{extra}: {error}");
        }
        let error = error_line("[clock]\nntp_sever = \"127.0.0.1:7123\"");
        assert!(error.contains("ntp_sever"), "{error}");
        let error = error_line("[clock]\npoll_seconds = -1");
        assert!(error.contains("poll_seconds"), "{error}");
        let error = error_line("[clock]\nmax_offset_ms = \"100ms\"");
        assert!(error.contains("max_offset_ms"), "{error}");
    }

    #[test]
    fn without_a_network_section_the_vnet_data_plane_is_off() {
        let config = load_with("").expect("loads");
        assert_eq!(config.network.vtep_address(), None);
        assert_eq!(config.network.namespace, None);
        assert_eq!(config.network.mtu, 1500);
        assert_eq!(config.network.reconcile_every(), Duration::from_secs(10));
        let empty = load_with("[network]").expect("an empty section loads");
        assert_eq!(empty.network.vtep_address(), None);
    }

    #[test]
    fn network_keys_are_read() {
        let config = load_with(
            "[network]\nvtep = \"10.231.0.1\"\nnamespace = \"ic-underlay-a\"\nmtu = 9000\nreconcile_seconds = 3",
        )
        .expect("loads");
        assert_eq!(
            config.network.vtep_address(),
            Some(Ipv4Addr::new(10, 231, 0, 1))
        );
        assert_eq!(config.network.namespace.as_deref(), Some("ic-underlay-a"));
        assert_eq!(config.network.mtu, 9000);
        assert_eq!(config.network.reconcile_every(), Duration::from_secs(3));
    }

    #[test]
    fn bad_network_values_name_the_key() {
        for (extra, key, words) in [
            (
                "[network]\nvtep = \"10.231.0\"",
                "`network.vtep`",
                "\"10.231.0\" is not an IPv4 address",
            ),
            (
                "[network]\nvtep = \"fd00::1\"",
                "`network.vtep`",
                "is not an IPv4 address",
            ),
            (
                "[network]\nvtep = \"0.0.0.0\"",
                "`network.vtep`",
                "0.0.0.0 is the unspecified address",
            ),
            (
                "[network]\nvtep = \"239.1.1.1\"",
                "`network.vtep`",
                "239.1.1.1 is a multicast address",
            ),
            (
                "[network]\nvtep = \"250.0.0.1\"",
                "`network.vtep`",
                "in the reserved 240.0.0.0/4",
            ),
            (
                "[network]\nnamespace = \"\"",
                "`network.namespace`",
                "must be 1 to 255 bytes long",
            ),
            (
                "[network]\nnamespace = \"../etc\"",
                "`network.namespace`",
                "no '/'",
            ),
            (
                "[network]\nnamespace = \"ic-cloud-a.web-1\"",
                "`network.namespace`",
                "an instance's namespace",
            ),
            ("[network]\nmtu = 600", "`network.mtu`", "600 is below 626"),
            (
                "[network]\nreconcile_seconds = 0",
                "`network.reconcile_seconds`",
                "must be at least 1",
            ),
        ] {
            let error = error_line(extra);
            assert!(error.contains(key), "{extra}: {error}");
            assert!(error.contains(words), "{extra}: {error}");
        }
        let error = error_line("[network]\nvtpe = \"10.231.0.1\"");
        assert!(error.contains("vtpe"), "{error}");
        let error = error_line("[network]\nmtu = 70000");
        assert!(error.contains("mtu"), "{error}");
    }
}
