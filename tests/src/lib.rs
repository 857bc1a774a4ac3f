//! Test harness: starts the real daemons (debug binaries) on loopback with
//! configuration and data in a temporary directory, and builds mutual-TLS
//! gRPC clients from the development PKI.
//!
//! Binaries are found in `INTERCLOUD_BIN_DIR`, else next to the test
//! executable (`target/<profile>/`). `scripts/test` builds them first.

#![forbid(unsafe_code)]

pub mod descriptors;
pub mod prosody;
pub mod rabbitmq;
pub mod raw_xmpp;
pub mod underlay;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use intercloud_trust::SpiffeId;
use intercloud_trust::tls::{Credentials, TrustAnchors, client_config};
use tonic::transport::Channel;

/// The federation of the development PKI.
pub const FEDERATION: &str = "intercloud.lab";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A file of the committed development PKI, e.g. `pki("bad/expired.crt")`.
pub fn pki(name: &str) -> PathBuf {
    repo_root().join("certs-dev/pki").join(name)
}

/// A daemon binary built by `cargo build --workspace --bins`.
pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("INTERCLOUD_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap_or_default();
            // target/<profile>/deps/<test> or target/<profile>/<bin> → target/<profile>
            let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
            if dir.ends_with("deps") {
                dir.parent().map(Path::to_path_buf).unwrap_or_default()
            } else {
                dir
            }
        });
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does), or set INTERCLOUD_BIN_DIR",
        path.display()
    );
    path
}

/// A daemon child process whose stderr goes to a log file; killed on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    /// Its log.
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `binary --config <config>` with extra environment.
    pub fn spawn(binary: &str, config: &Path, log: PathBuf, env: &[(&str, &str)]) -> Self {
        let log_file = std::fs::File::create(&log).expect("create log file");
        let mut command = Command::new(bin(binary));
        command
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log"))
            .stderr(log_file);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("spawn daemon");
        Self {
            child: Some(child),
            log,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; panics with the log after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "no {needle:?} in {} within {timeout:?}:\n{}",
            self.log.display(),
            self.log_text()
        );
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to exit by itself; kills it after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Freezes the process (SIGSTOP): the kernel still accepts connections
    /// on its ports, but nothing answers. See [`Self::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .arg(signal)
                .arg(child.id().to_string())
                .status()
                .expect("run kill");
            assert!(status.success(), "kill {signal} {} failed", child.id());
        }
    }

    /// Stops the process with SIGTERM and waits for its exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits for a JSON file written by a daemon after binding.
pub fn wait_for_json(path: &Path, daemon: &Daemon, timeout: Duration) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(value) = serde_json::from_str(&text)
        {
            return value;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{} not written within {timeout:?}; log:\n{}",
        path.display(),
        daemon.log_text()
    );
}

fn quoted(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// Options of a test root.
#[derive(Debug, Clone)]
pub struct RootOptions {
    /// `enrollment.cert_ttl_seconds`.
    pub cert_ttl_seconds: u64,
    /// Fixed listening addresses (for restarts); port 0 otherwise.
    pub api: String,
    /// See `api`.
    pub enroll: String,
    /// See `api`: the SPARQL endpoint.
    pub sparql: String,
    /// `directory.query_timeout_ms`.
    pub query_timeout_ms: u64,
    /// UDP address of the NTP server (`listen.ntp`).
    pub ntp: String,
    /// Extra TOML appended to the configuration (whole sections).
    pub extra: String,
}

impl Default for RootOptions {
    fn default() -> Self {
        Self {
            cert_ttl_seconds: 3600,
            api: "127.0.0.1:0".into(),
            enroll: "127.0.0.1:0".into(),
            sparql: "127.0.0.1:0".into(),
            query_timeout_ms: 10_000,
            ntp: "127.0.0.1:0".into(),
            extra: String::new(),
        }
    }
}

/// A running root.
#[derive(Debug)]
pub struct TestRoot {
    /// The process.
    pub daemon: Daemon,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its config file.
    pub config: PathBuf,
    /// mTLS API address.
    pub api: String,
    /// Enrolment address.
    pub enroll: String,
    /// SPARQL endpoint address.
    pub sparql: String,
    /// NTP (UDP) address.
    pub ntp: String,
}

impl TestRoot {
    /// Starts a root in `dir` (config, data and log go there).
    pub fn start(dir: &Path, options: &RootOptions) -> Self {
        let data_dir = dir.join("root");
        let config = dir.join("root.toml");
        let text = format!(
            "federation = \"{FEDERATION}\"\ndata_dir = {}\n[listen]\napi = \"{}\"\nenroll = \"{}\"\nsparql = \"{}\"\nntp = \"{}\"\n[tls]\nca_cert = {}\nca_key = {}\ncert = {}\nkey = {}\nimport_crls = [{}]\n[enrollment]\ncert_ttl_seconds = {}\n[registration]\nheartbeat_interval_seconds = 1\n[directory]\nquery_timeout_ms = {}\n{}",
            quoted(&data_dir),
            options.api,
            options.enroll,
            options.sparql,
            options.ntp,
            quoted(&pki("ca.crt")),
            quoted(&pki("ca.key")),
            quoted(&pki("root.crt")),
            quoted(&pki("root.key")),
            quoted(&pki("crl.pem")),
            options.cert_ttl_seconds,
            options.query_timeout_ms,
            options.extra,
        );
        std::fs::write(&config, text).expect("write root config");
        Self::spawn(dir, config, data_dir)
    }

    fn spawn(dir: &Path, config: PathBuf, data_dir: PathBuf) -> Self {
        let endpoints = data_dir.join("endpoints.json");
        let _ = std::fs::remove_file(&endpoints);
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let daemon = Daemon::spawn(
            "intercloud-root",
            &config,
            dir.join(format!("root-{n}.log")),
            &[],
        );
        let json = wait_for_json(&endpoints, &daemon, Duration::from_secs(20));
        let field = |k: &str| json[k].as_str().unwrap_or_default().to_owned();
        Self {
            api: field("api"),
            enroll: field("enroll"),
            sparql: field("sparql"),
            ntp: field("ntp"),
            daemon,
            data_dir,
            config,
        }
    }

    /// Kills the root (SIGKILL) and starts it again on the same ports with the same data.
    pub fn restart_after_kill(&mut self, dir: &Path) {
        self.daemon.kill();
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let text = text
            .lines()
            .map(|l| {
                if l.starts_with("api = ") {
                    format!("api = \"{}\"", self.api)
                } else if l.starts_with("enroll = ") {
                    format!("enroll = \"{}\"", self.enroll)
                } else if l.starts_with("sparql = ") {
                    format!("sparql = \"{}\"", self.sparql)
                } else if l.starts_with("ntp = ") {
                    format!("ntp = \"{}\"", self.ntp)
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&self.config, text).expect("write config");
        *self = Self::spawn(dir, self.config.clone(), self.data_dir.clone());
    }

    /// The persisted federation state, raw.
    pub fn state_bytes(&self) -> Vec<u8> {
        std::fs::read(self.data_dir.join("federation.json")).unwrap_or_default()
    }
}

/// How a test broker gets its identity.
#[derive(Debug, Clone)]
pub enum BrokerIdentity {
    /// The committed dev certificate `<cloud>.crt`.
    DevCert,
    /// Enrol with this join token.
    Token(String),
    /// Neither: the identity is already in `<data_dir>/identity/` (written
    /// by `intercloudctl enroll`, say), which the broker loads first.
    OnDisk,
}

/// A running broker.
#[derive(Debug)]
pub struct TestBroker {
    /// The process.
    pub daemon: Daemon,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Operator API address.
    pub api: String,
}

impl TestBroker {
    /// Writes broker `cloud`'s config in `dir` (pointed at `root`) and
    /// starts the process; returns it with the broker's data directory.
    fn spawn(
        dir: &Path,
        cloud: &str,
        root: &TestRoot,
        identity: &BrokerIdentity,
        extra: &str,
    ) -> (Daemon, PathBuf) {
        let data_dir = dir.join(cloud);
        let config = dir.join(format!("{cloud}.toml"));
        let (tls_extra, enrollment) = match identity {
            BrokerIdentity::DevCert => (
                format!(
                    "cert = {}\nkey = {}\n",
                    quoted(&pki(&format!("{cloud}.crt"))),
                    quoted(&pki(&format!("{cloud}.key")))
                ),
                String::new(),
            ),
            BrokerIdentity::Token(t) => (String::new(), format!("[enrollment]\ntoken = \"{t}\"\n")),
            BrokerIdentity::OnDisk => (String::new(), String::new()),
        };
        let text = format!(
            "cloud_id = \"{cloud}\"\nfederation = \"{FEDERATION}\"\ndata_dir = {}\n[listen]\napi = \"127.0.0.1:0\"\n[root]\napi = \"{}\"\nenroll = \"{}\"\n[tls]\nca_bundle = {}\ncrl_files = [{}]\n{tls_extra}{enrollment}[timers]\nheartbeat_seconds = 1\ncrl_refresh_seconds = 1\nbackoff_initial_ms = 100\nbackoff_max_ms = 500\nroot_call_timeout_ms = 2000\n{extra}",
            quoted(&data_dir),
            root.api,
            root.enroll,
            quoted(&pki("ca.crt")),
            quoted(&pki("crl.pem")),
        );
        std::fs::write(&config, text).expect("write broker config");
        // A restarted broker must not be mistaken for its predecessor.
        let _ = std::fs::remove_file(data_dir.join("endpoints.json"));
        let daemon = Daemon::spawn(
            "intercloud-broker",
            &config,
            dir.join(format!("{cloud}.log")),
            &[],
        );
        (daemon, data_dir)
    }

    /// Starts broker `cloud` in `dir`, pointed at `root`, and waits until it listens.
    pub fn start(
        dir: &Path,
        cloud: &str,
        root: &TestRoot,
        identity: &BrokerIdentity,
        extra: &str,
    ) -> Self {
        let (daemon, data_dir) = Self::spawn(dir, cloud, root, identity, extra);
        let json = wait_for_json(
            &data_dir.join("endpoints.json"),
            &daemon,
            Duration::from_secs(20),
        );
        Self {
            api: json["api"].as_str().unwrap_or_default().to_owned(),
            daemon,
            data_dir,
        }
    }

    /// Starts a broker that is expected to give up (e.g. a refused token);
    /// returns its process without waiting for it to listen.
    pub fn start_expecting_exit(dir: &Path, cloud: &str, root: &TestRoot, token: &str) -> Daemon {
        Self::spawn(
            dir,
            cloud,
            root,
            &BrokerIdentity::Token(token.to_owned()),
            "",
        )
        .0
    }
}

/// Client TLS configuration presenting `cert`/`key` (None: no client
/// certificate), expecting the server to be `server`.
pub fn client_tls(server: &str, cert_key: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let anchors = TrustAnchors::load(&pki("ca.crt")).expect("anchors");
    let credentials =
        cert_key.map(|(c, k)| Credentials::load(&pki(c), &pki(k)).expect("credentials"));
    client_config(
        &anchors,
        SpiffeId::parse(server).expect("spiffe id"),
        credentials.as_ref(),
    )
    .expect("client config")
}

/// A connected channel, or the connection error as text.
pub async fn connect(address: &str, tls: Arc<rustls::ClientConfig>) -> Result<Channel, String> {
    intercloud_trust::connect::channel(address, tls)
        .await
        .map_err(|e| e.to_string())
}

/// `spiffe://intercloud.lab/root`.
pub fn root_id() -> String {
    format!("spiffe://{FEDERATION}/root")
}

/// `spiffe://intercloud.lab/cloud/<cloud>`.
pub fn cloud_id(cloud: &str) -> String {
    format!("spiffe://{FEDERATION}/cloud/{cloud}")
}

/// Polls `check` every 100 ms until it returns `Some`, or panics with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `intercloudctl` with a contexts file and returns (exit code, stdout, stderr).
pub fn intercloudctl(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("intercloudctl"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("INTERCLOUDCTL_CONFIG")
        .output()
        .expect("run intercloudctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A broker context of a contexts file written by [`write_cli_contexts`].
#[derive(Debug, Clone)]
pub struct CliContext {
    /// The context's name.
    pub name: String,
    /// The broker's address.
    pub endpoint: String,
    /// The cloud whose broker identity the server must prove.
    pub server_cloud: String,
    /// The cloud whose operator certificate (`operator-<cloud>.crt`) the context presents.
    pub operator_cloud: String,
    /// Whether the context names the root's API as `root_endpoint`.
    pub root_endpoint: bool,
}

impl CliContext {
    /// Context `cloud` for `broker`, as `cloud`'s operator, with a `root_endpoint`.
    pub fn broker(cloud: &str, broker: &TestBroker) -> Self {
        Self {
            name: cloud.to_owned(),
            endpoint: broker.api.clone(),
            server_cloud: cloud.to_owned(),
            operator_cloud: cloud.to_owned(),
            root_endpoint: true,
        }
    }
}

/// Writes `<dir>/intercloudctl.toml` with the context `root` (the current
/// one, with the root's enrolment endpoint) and `brokers`.
pub fn write_cli_contexts(dir: &Path, root: &TestRoot, brokers: &[CliContext]) -> PathBuf {
    let mut text = format!(
        "current_context = \"root\"\n[contexts.root]\nendpoint = \"{}\"\nserver = \"{}\"\nenroll_endpoint = \"{}\"\nca = {}\ncert = {}\nkey = {}\n",
        root.api,
        root_id(),
        root.enroll,
        quoted(&pki("ca.crt")),
        quoted(&pki("operator-root.crt")),
        quoted(&pki("operator-root.key")),
    );
    for context in brokers {
        let root_endpoint = if context.root_endpoint {
            format!("root_endpoint = \"{}\"\n", root.api)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "[contexts.{}]\nendpoint = \"{}\"\nserver = \"{}\"\n{root_endpoint}ca = {}\ncert = {}\nkey = {}\n",
            context.name,
            context.endpoint,
            cloud_id(&context.server_cloud),
            quoted(&pki("ca.crt")),
            quoted(&pki(&format!("operator-{}.crt", context.operator_cloud))),
            quoted(&pki(&format!("operator-{}.key", context.operator_cloud))),
        ));
    }
    let path = dir.join("intercloudctl.toml");
    std::fs::write(&path, text).expect("write cli config");
    path
}

/// Writes a contexts file for the CLI with contexts `root` and one per
/// broker; a cloud without an operator certificate in the dev PKI (only
/// cloud-a, cloud-b and cloud-c have one) gets cloud-a's.
pub fn write_cli_config(dir: &Path, root: &TestRoot, brokers: &[(&str, &TestBroker)]) -> PathBuf {
    let contexts: Vec<CliContext> = brokers
        .iter()
        .map(|(cloud, broker)| {
            let mut context = CliContext::broker(cloud, broker);
            if !["cloud-a", "cloud-b", "cloud-c"].contains(cloud) {
                context.operator_cloud = "cloud-a".to_owned();
            }
            context
        })
        .collect();
    write_cli_contexts(dir, root, &contexts)
}

/// What a PEM certificate file holds (its first certificate).
pub fn cert_info(path: &Path) -> intercloud_trust::cert::CertInfo {
    let pem = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let der = intercloud_trust::pem::certificates_from_pem(&pem)
        .and_then(|certs| certs.into_iter().next())
        .unwrap_or_else(|| panic!("no certificate in {}", path.display()));
    intercloud_trust::cert::CertInfo::from_der(&der)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
