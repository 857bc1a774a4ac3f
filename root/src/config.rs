//! The root's configuration: `root.toml`, `INTERCLOUD_ROOT_*` variables, flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use intercloud_daemon::config::{ConfigError, load};
use intercloud_daemon::logging::LogFormat;
use intercloud_trust::FederationDomain;
use serde::{Deserialize, Serialize};

/// Everything the root needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootConfig {
    /// The federation's DNS name, the SPIFFE trust domain.
    pub federation: FederationDomain,
    /// Where membership, tokens and revocations are kept.
    pub data_dir: PathBuf,
    /// Listening addresses.
    pub listen: Listen,
    /// The CA and the root's own certificate.
    pub tls: Tls,
    /// Join tokens and issued certificates.
    #[serde(default)]
    pub enrollment: Enrollment,
    /// The CRL the root publishes.
    #[serde(default)]
    pub crl: Crl,
    /// What the root asks of registered brokers.
    #[serde(default)]
    pub registration: Registration,
    /// The service directory's query limits.
    #[serde(default)]
    pub directory: DirectoryLimits,
    /// The NTP server (served on `listen.ntp`) and `Time.Now`.
    #[serde(default)]
    pub ntp: NtpSettings,
    /// The VNet registry (`Networks`).
    #[serde(default)]
    pub networks: NetworkSettings,
    /// Log line format.
    #[serde(default)]
    pub log_format: LogFormat,
}

/// Listening addresses (port 0 picks a free port; the bound addresses are
/// written to `<data_dir>/endpoints.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Mutual TLS: `Federation`, health, reflection.
    pub api: SocketAddr,
    /// Server-authenticated TLS only: `Enrollment`, health, reflection.
    pub enroll: SocketAddr,
    /// Mutual TLS: the SPARQL 1.1 Protocol over HTTP (`/sparql`), read-only.
    /// Not served when absent.
    #[serde(default)]
    pub sparql: Option<SocketAddr>,
    /// UDP: NTP version 4, server mode, on one address or several (e.g. a
    /// high port, plus port 123 for clients such as ntpdate and sntp that
    /// cannot use another). Not served when absent.
    #[serde(default)]
    pub ntp: OneOrMany,
}

/// One address or a list of them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// None configured.
    #[default]
    None,
    /// `ntp = "127.0.0.1:7123"`.
    One(SocketAddr),
    /// `ntp = ["127.0.0.1:7123", "127.0.0.123:123"]`.
    Many(Vec<SocketAddr>),
}

impl OneOrMany {
    /// The addresses, in order.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        match self {
            Self::None => Vec::new(),
            Self::One(a) => vec![*a],
            Self::Many(list) => list.clone(),
        }
    }
}

/// Certificates and keys, PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The federation CA certificate (the trust bundle handed to members).
    pub ca_cert: PathBuf,
    /// The federation CA key, PKCS#8.
    pub ca_key: PathBuf,
    /// The root's server certificate (`spiffe://<federation>/root`).
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// CRLs signed by the same CA whose entries the root's CRL carries on.
    #[serde(default)]
    pub import_crls: Vec<PathBuf>,
}

/// Enrolment settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Enrollment {
    /// Default lifetime of a join token.
    pub token_ttl_seconds: u64,
    /// Longest lifetime an operator may ask for.
    pub max_token_ttl_seconds: u64,
    /// Lifetime of an issued broker certificate.
    pub cert_ttl_seconds: u64,
}

impl Default for Enrollment {
    fn default() -> Self {
        Self {
            token_ttl_seconds: 3600,
            max_token_ttl_seconds: 7 * 24 * 3600,
            cert_ttl_seconds: 24 * 3600,
        }
    }
}

/// CRL settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Crl {
    /// How long a published CRL is valid (its nextUpdate); it is re-signed
    /// at half that interval and on every revocation.
    pub validity_seconds: u64,
}

impl Default for Crl {
    fn default() -> Self {
        Self {
            validity_seconds: 3600,
        }
    }
}

/// Registration settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Registration {
    /// Interval between a broker's heartbeats.
    pub heartbeat_interval_seconds: u32,
}

impl Default for Registration {
    fn default() -> Self {
        Self {
            heartbeat_interval_seconds: 5,
        }
    }
}

/// Limits on directory queries (gRPC `Directory.Query` and the SPARQL
/// endpoint alike).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryLimits {
    /// A query still running after this long is cancelled.
    pub query_timeout_ms: u64,
    /// Most rows (SELECT) or triples (CONSTRUCT, DESCRIBE) one answer may have.
    pub max_results: u64,
    /// Most bytes one serialised answer may have.
    pub max_result_bytes: u64,
    /// Most queries evaluated at once (a cancelled query holds its slot
    /// until its evaluation has really stopped); more wait, within their
    /// timeout.
    pub max_concurrent_queries: u64,
}

impl Default for DirectoryLimits {
    fn default() -> Self {
        Self {
            // Under intercloudctl's default --timeout (10 s), so operators
            // see the root's explanation rather than the CLI giving up.
            query_timeout_ms: 5_000,
            max_results: 10_000,
            max_result_bytes: 16 << 20,
            max_concurrent_queries: 4,
        }
    }
}

/// How the root serves time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NtpSettings {
    /// Stratum of the local clock (1..=15), served with reference id "LOCL"
    /// unless `upstream_stratum` is set.
    pub stratum: u8,
    /// The host's clock follows an upstream of this stratum (through
    /// chrony, say): the root serves at this + 1.
    pub upstream_stratum: Option<u8>,
    /// The upstream's reference id: its IPv4 address or a code such as
    /// "GPS". Required with `upstream_stratum`.
    pub upstream_refid: Option<String>,
    /// Average interval a client must keep between requests (ms); faster
    /// clients get a kiss-o'-death RATE, then silence.
    pub rate_interval_ms: u64,
    /// Requests a quiet client may send at once.
    pub rate_burst: u32,
    /// Clients the rate limiter remembers (the oldest is forgotten).
    pub rate_max_clients: usize,
}

impl Default for NtpSettings {
    fn default() -> Self {
        Self {
            stratum: intercloud_ntp::server::DEFAULT_LOCAL_STRATUM,
            upstream_stratum: None,
            upstream_refid: None,
            rate_interval_ms: 250,
            rate_burst: 16,
            rate_max_clients: 4096,
        }
    }
}

impl NtpSettings {
    /// The configured reference, or the key that is wrong and why.
    pub fn reference(&self) -> Result<crate::clock::Reference, ConfigError> {
        use crate::clock::{Reference, parse_reference_id};
        match (self.upstream_stratum, &self.upstream_refid) {
            (None, None) => {
                if !(1..=15).contains(&self.stratum) {
                    return Err(ConfigError::bad_value(
                        "ntp.stratum",
                        "must be between 1 (a primary reference) and 15",
                    ));
                }
                Ok(Reference::Local {
                    stratum: self.stratum,
                })
            }
            (Some(stratum), Some(refid)) => {
                if !(1..=14).contains(&stratum) {
                    return Err(ConfigError::bad_value(
                        "ntp.upstream_stratum",
                        "must be between 1 and 14 (the root serves at one more)",
                    ));
                }
                let id = parse_reference_id(refid).ok_or_else(|| {
                    ConfigError::bad_value(
                        "ntp.upstream_refid",
                        format!("{refid:?} is neither an IPv4 address nor 1 to 4 printable ASCII characters"),
                    )
                })?;
                Ok(Reference::Upstream { stratum, id })
            }
            (Some(_), None) => Err(ConfigError::bad_value(
                "ntp.upstream_refid",
                "is required with ntp.upstream_stratum (the upstream's IPv4 address, or e.g. \"GPS\")",
            )),
            (None, Some(_)) => Err(ConfigError::bad_value(
                "ntp.upstream_stratum",
                "is required with ntp.upstream_refid",
            )),
        }
    }

    /// The rate limiter's settings.
    pub fn rate_limit(&self) -> intercloud_ntp::ratelimit::RateLimitConfig {
        intercloud_ntp::ratelimit::RateLimitConfig {
            interval: Duration::from_millis(self.rate_interval_ms),
            burst: self.rate_burst,
            max_clients: self.rate_max_clients,
        }
    }
}

/// The VNet registry's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSettings {
    /// The VNIs this root hands out, `"<first>-<last>"`, within 1-16777214
    /// (0 and 0xFFFFFF are reserved). Several roots would each take a
    /// disjoint part. Narrowing it later keeps the VNIs already in use.
    pub vni_range: String,
    /// Changes a `WatchVnets` watcher may fall behind before it is sent a
    /// fresh snapshot instead.
    pub watch_backlog: usize,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            vni_range: intercloud_vnet::VniRange::FULL.to_string(),
            watch_backlog: 1024,
        }
    }
}

impl NetworkSettings {
    /// The configured VNI range, or the key that is wrong and why.
    pub fn vni_range(&self) -> Result<intercloud_vnet::VniRange, ConfigError> {
        self.vni_range.trim().parse().map_err(|e| {
            ConfigError::bad_value(
                "networks.vni_range",
                format!(
                    "{:?}: {e} (write it as \"<first>-<last>\", e.g. \"4096-8191\")",
                    self.vni_range
                ),
            )
        })
    }
}

/// Flags that override the file.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    /// `data_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `federation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federation: Option<String>,
    /// `log_format`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// `listen.*`.
    #[serde(skip_serializing_if = "ListenOverrides::is_empty")]
    pub listen: ListenOverrides,
}

/// Flags for `listen.*`.
#[derive(Debug, Default, Serialize)]
pub struct ListenOverrides {
    /// `listen.api`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// `listen.enroll`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enroll: Option<String>,
}

impl ListenOverrides {
    fn is_empty(&self) -> bool {
        self.api.is_none() && self.enroll.is_none()
    }
}

/// Environment variable prefix: `INTERCLOUD_ROOT_DATA_DIR`, `INTERCLOUD_ROOT_LISTEN__API`.
pub const ENV_PREFIX: &str = "INTERCLOUD_ROOT_";

impl RootConfig {
    /// Loads and validates the configuration.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let config: Self = load(path, ENV_PREFIX, &["config"], overrides)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let e = &self.enrollment;
        if e.cert_ttl_seconds < 10 {
            return Err(ConfigError::bad_value(
                "enrollment.cert_ttl_seconds",
                "must be at least 10",
            ));
        }
        if e.token_ttl_seconds == 0 || e.token_ttl_seconds > e.max_token_ttl_seconds {
            return Err(ConfigError::bad_value(
                "enrollment.token_ttl_seconds",
                format!(
                    "must be between 1 and enrollment.max_token_ttl_seconds ({})",
                    e.max_token_ttl_seconds
                ),
            ));
        }
        if self.crl.validity_seconds < 10 {
            return Err(ConfigError::bad_value(
                "crl.validity_seconds",
                "must be at least 10",
            ));
        }
        if self.registration.heartbeat_interval_seconds == 0 {
            return Err(ConfigError::bad_value(
                "registration.heartbeat_interval_seconds",
                "must be at least 1",
            ));
        }
        self.ntp.reference()?;
        self.networks.vni_range()?;
        if self.networks.watch_backlog == 0 {
            return Err(ConfigError::bad_value(
                "networks.watch_backlog",
                "must be at least 1",
            ));
        }
        for (key, ok) in [
            ("ntp.rate_interval_ms", self.ntp.rate_interval_ms >= 1),
            ("ntp.rate_burst", self.ntp.rate_burst >= 1),
            ("ntp.rate_max_clients", self.ntp.rate_max_clients >= 1),
        ] {
            if !ok {
                return Err(ConfigError::bad_value(key, "must be at least 1"));
            }
        }
        let d = &self.directory;
        for (key, value, min) in [
            ("directory.query_timeout_ms", d.query_timeout_ms, 10),
            ("directory.max_results", d.max_results, 1),
            ("directory.max_result_bytes", d.max_result_bytes, 1024),
            (
                "directory.max_concurrent_queries",
                d.max_concurrent_queries,
                1,
            ),
        ] {
            if value < min {
                return Err(ConfigError::bad_value(
                    key,
                    format!("must be at least {min}"),
                ));
            }
        }
        for (key, path) in [
            ("tls.ca_cert", &self.tls.ca_cert),
            ("tls.ca_key", &self.tls.ca_key),
            ("tls.cert", &self.tls.cert),
            ("tls.key", &self.tls.key),
        ] {
            if !path.is_file() {
                return Err(ConfigError::bad_value(
                    key,
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        Ok(())
    }

    /// Lifetime of issued certificates.
    pub fn cert_ttl(&self) -> Duration {
        Duration::from_secs(self.enrollment.cert_ttl_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<RootConfig, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = |f: &str| {
            format!(
                "{:?}",
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../certs-dev/pki")
                    .join(f)
                    .display()
                    .to_string()
            )
        };
        let path = dir.path().join("root.toml");
        std::fs::write(
            &path,
            format!(
                "federation = \"intercloud.lab\"\ndata_dir = \"/tmp/x\"\n[listen]\napi = \"127.0.0.1:0\"\nenroll = \"127.0.0.1:0\"\n{text}\n[tls]\nca_cert = {}\nca_key = {}\ncert = {}\nkey = {}\n",
                pki("ca.crt"),
                pki("ca.key"),
                pki("root.crt"),
                pki("root.key")
            ),
        )
        .expect("write");
        RootConfig::load(&path, &Overrides::default())
    }

    #[test]
    fn the_vni_range_defaults_to_every_vni_and_is_checked() {
        let default = load_text("").expect("default");
        assert_eq!(
            default.networks.vni_range().expect("range"),
            intercloud_vnet::VniRange::FULL
        );
        assert_eq!(default.networks.vni_range, "1-16777214");
        let small = load_text("[networks]\nvni_range = \"4096-4097\"").expect("small");
        assert_eq!(small.networks.vni_range().expect("range").len(), 2);
        for bad in ["0-10", "10-5", "4096", "1-16777215", "a-b"] {
            let error =
                load_text(&format!("[networks]\nvni_range = \"{bad}\"")).expect_err("bad range");
            let text = error.to_string();
            assert!(text.contains("networks.vni_range"), "{bad}: {text}");
            assert!(text.contains(bad), "{bad}: {text}");
        }
    }

    #[test]
    fn ntp_listens_on_one_address_a_list_or_none() {
        let none = load_text("").expect("no ntp");
        assert!(none.listen.ntp.addresses().is_empty());
        let one = load_text("ntp = \"127.0.0.1:7123\"").expect("one");
        assert_eq!(one.listen.ntp.addresses().len(), 1);
        let two = load_text("ntp = [\"127.0.0.1:7123\", \"127.0.0.123:123\"]").expect("two");
        assert_eq!(
            two.listen.ntp.addresses()[1],
            "127.0.0.123:123".parse::<SocketAddr>().expect("addr")
        );
        let bad = load_text("ntp = \"port 123\"").expect_err("bad");
        assert!(bad.to_string().contains("listen.ntp"), "{bad}");
    }

    #[test]
    fn ntp_reference_settings_are_checked() {
        let upstream =
            load_text("[ntp]\nupstream_stratum = 2\nupstream_refid = \"GPS\"").expect("upstream");
        assert!(matches!(
            upstream.ntp.reference(),
            Ok(crate::clock::Reference::Upstream { stratum: 2, .. })
        ));
        for (text, key) in [
            ("[ntp]\nstratum = 0", "ntp.stratum"),
            ("[ntp]\nstratum = 16", "ntp.stratum"),
            ("[ntp]\nupstream_stratum = 2", "ntp.upstream_refid"),
            ("[ntp]\nupstream_refid = \"GPS\"", "ntp.upstream_stratum"),
            (
                "[ntp]\nupstream_stratum = 15\nupstream_refid = \"GPS\"",
                "ntp.upstream_stratum",
            ),
            (
                "[ntp]\nupstream_stratum = 2\nupstream_refid = \"not a refid\"",
                "ntp.upstream_refid",
            ),
            ("[ntp]\nrate_burst = 0", "ntp.rate_burst"),
        ] {
            let error = load_text(text).expect_err(text);
            assert!(error.to_string().contains(key), "{text}: {error}");
        }
    }
}
