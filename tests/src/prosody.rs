//! A real Prosody XMPP server on loopback, for the presence and dialog tests.
//!
//! Layout (a contract with the broker's XMPP driver, and the same one
//! `scripts/lab` writes; keep the two in step):
//!
//! - one virtual host per cloud, `<cloud>.<federation>`, plus `root.<federation>`;
//! - a MUC component `conference.root.<federation>`: rooms are created by their
//!   first occupant and usable at once (`muc_room_locking = false`), and are
//!   non-anonymous (`muc_room_default_public_jids = true`: occupants see each
//!   other's real JIDs); the federation room is `federation@conference.root.<federation>`;
//! - each broker logs in as `broker@<cloud>.<federation>` with a random password
//!   (`internal_hashed` storage), provisioned with `prosodyctl register`;
//! - c2s only, on one loopback port, STARTTLS required
//!   (`c2s_require_encryption = true`), with a certificate per host signed by the
//!   federation dev CA (`certs-dev/pki/ca.crt`), DNS SANs the host and
//!   `localhost`; no s2s, no HTTP, no component port, no in-band registration;
//! - stanzas up to [`STANZA_SIZE_LIMIT`] bytes once authenticated (Prosody's
//!   default, written out so tests can rely on it).
//!
//! Prosody runs as a child process in the foreground (`run_as_root = true`
//! when the tests run as root) with config, certificates, data, pid file and
//! log in the directory given to [`Prosody::start`]; its log goes to
//! `<dir>/prosody-<n>.log` (`n` counts starts, so a restart does not overwrite
//! the log of the run before); `INTERCLOUD_PROSODY_LOG_LEVEL=debug` makes it
//! verbose. Dropping a [`Prosody`] kills it.
//!
//! Starting takes about half a second; `prosodyctl register` about 65 ms per
//! account, so tests may start one per test. For isolation inside one server,
//! use a room per test (any `<name>@conference.root.<federation>`) and
//! [`Prosody::register`] for extra accounts on the existing hosts.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rand::Rng as _;
use rand::distr::Alphanumeric;

use crate::{Daemon, pki};

/// The largest stanza Prosody accepts from an authenticated client
/// (`c2s_stanza_size_limit`); a bigger one ends the sender's stream.
///
/// Prosody itself cannot go below 10000 bytes; the federation's module
/// `scripts/prosody/mod_intercloud_limits.lua` enforces this limit (and 4096
/// bytes per attribute) so that nothing reaches the brokers' XML parser
/// (rxml: 8192 bytes per token) that would break their connections.
/// Announcements are about 1.5 KiB.
pub const STANZA_SIZE_LIMIT: usize = 8 * 1024;

/// The local part of every broker's JID.
pub const BROKER_USER: &str = "broker";

/// The federation room's local part.
pub const ROOM_NAME: &str = "federation";

/// How long [`Prosody::start`] and [`Prosody::restart`] wait for the c2s port.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// What Prosody logs when it cannot bind its port.
const BIND_FAILURE: &str = "Failed to open server port";

/// A running Prosody.
#[derive(Debug)]
pub struct Prosody {
    /// The c2s address (STARTTLS), on 127.0.0.1.
    pub c2s: SocketAddr,
    /// The federation domain, e.g. `intercloud.lab`.
    pub federation: String,
    /// The MUC component, `conference.root.<federation>`.
    pub muc_host: String,
    /// The federation room, `federation@conference.root.<federation>`.
    pub room: String,
    dir: PathBuf,
    config: PathBuf,
    prosodyctl: PathBuf,
    prosody: PathBuf,
    /// Broker password per cloud.
    passwords: BTreeMap<String, String>,
    starts: usize,
    daemon: Daemon,
}

impl Prosody {
    /// Writes config and host certificates into `dir`, registers
    /// `broker@<cloud>.<federation>` for each cloud with a random password,
    /// starts Prosody on a free loopback port and waits until it accepts
    /// connections.
    ///
    /// Panics with the reason (and Prosody's log) when it cannot start; when
    /// Prosody is not installed, the message names the Debian package.
    pub fn start(dir: &Path, federation: &str, clouds: &[&str]) -> Self {
        let prosody = installed("prosody");
        let prosodyctl = installed("prosodyctl");
        assert!(
            is_dns_name(federation),
            "federation {federation:?} is not a DNS name"
        );
        for cloud in clouds {
            assert!(
                is_dns_name(cloud) && !cloud.contains('.') && *cloud != "root",
                "cloud {cloud:?} is not a cloud id (a DNS label other than \"root\")"
            );
        }
        let dir = dir.to_path_buf();
        for sub in ["certs", "data"] {
            std::fs::create_dir_all(dir.join(sub))
                .unwrap_or_else(|e| panic!("create {}: {e}", dir.join(sub).display()));
        }

        let root_host = format!("root.{federation}");
        let muc_host = format!("conference.{root_host}");
        let cloud_hosts: Vec<String> = clouds.iter().map(|c| format!("{c}.{federation}")).collect();
        let mut cert_hosts = cloud_hosts.clone();
        cert_hosts.push(root_host.clone());
        cert_hosts.push(muc_host.clone());
        intercloud_certs_dev::xmpp_hosts::write(
            &pki("ca.crt"),
            &pki("ca.key"),
            &dir.join("certs"),
            &cert_hosts,
        )
        .unwrap_or_else(|e| panic!("issuing the XMPP host certificates: {e:#}"));

        let config = dir.join("prosody.cfg.lua");
        let mut last_log = String::new();
        // A free port can be taken by someone else before Prosody binds it:
        // try a few.
        for _ in 0..5 {
            let port = free_port();
            let layout = Layout {
                dir: &dir,
                port,
                hosts: &cloud_hosts,
                root_host: &root_host,
                muc_host: &muc_host,
                // `info` at least: readiness is read from the log.
                log_level: if std::env::var("INTERCLOUD_PROSODY_LOG_LEVEL").as_deref()
                    == Ok("debug")
                {
                    "debug"
                } else {
                    "info"
                },
            };
            std::fs::write(&config, render_config(&layout))
                .unwrap_or_else(|e| panic!("write {}: {e}", config.display()));
            let mut server = Self {
                c2s: SocketAddr::from(([127, 0, 0, 1], port)),
                federation: federation.to_owned(),
                room: format!("{ROOM_NAME}@{muc_host}"),
                muc_host: muc_host.clone(),
                daemon: spawn(&prosody, &config, &dir, 0),
                starts: 1,
                dir: dir.clone(),
                config: config.clone(),
                prosodyctl: prosodyctl.clone(),
                prosody: prosody.clone(),
                passwords: BTreeMap::new(),
            };
            match server.wait_ready() {
                Ready::Yes => {
                    for cloud in clouds {
                        let password = random_password();
                        server.register(BROKER_USER, &format!("{cloud}.{federation}"), &password);
                        server.passwords.insert((*cloud).to_owned(), password);
                    }
                    return server;
                }
                Ready::PortTaken => {
                    last_log = server.daemon.log_text();
                    server.daemon.kill();
                }
            }
        }
        panic!("Prosody could not bind a free loopback port in 5 attempts; last log:\n{last_log}");
    }

    /// The XMPP domain of `cloud`: `<cloud>.<federation>`.
    pub fn domain(&self, cloud: &str) -> String {
        format!("{cloud}.{}", self.federation)
    }

    /// The root's XMPP host: `root.<federation>`.
    pub fn root_host(&self) -> String {
        format!("root.{}", self.federation)
    }

    /// The bare JID of `cloud`'s broker: `broker@<cloud>.<federation>`.
    pub fn jid(&self, cloud: &str) -> String {
        format!("{BROKER_USER}@{}", self.domain(cloud))
    }

    /// The password of `cloud`'s broker account; panics for a cloud not given to `start`.
    pub fn password(&self, cloud: &str) -> String {
        self.passwords
            .get(cloud)
            .unwrap_or_else(|| panic!("no broker account for {cloud:?} on this Prosody"))
            .clone()
    }

    /// `(bare JID, password)` of `cloud`'s broker.
    pub fn account(&self, cloud: &str) -> (String, String) {
        (self.jid(cloud), self.password(cloud))
    }

    /// The clouds that have a broker account.
    pub fn clouds(&self) -> Vec<String> {
        self.passwords.keys().cloned().collect()
    }

    /// Creates (or re-keys) account `user@host` with `password`, through
    /// `prosodyctl register`; `host` must be one of the server's hosts.
    pub fn register(&self, user: &str, host: &str, password: &str) {
        let out = Command::new(&self.prosodyctl)
            .arg("--config")
            .arg(&self.config)
            .args(["register", user, host, password])
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.prosodyctl.display()));
        assert!(
            out.status.success(),
            "prosodyctl register {user} {host} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The `[xmpp]` section of `cloud`'s broker config (TOML).
    pub fn xmpp_section(&self, cloud: &str) -> String {
        format!(
            "[xmpp]\nserver = \"{}\"\njid = \"{}\"\npassword = \"{}\"\nroom = \"{}\"\nca_bundle = {}\n",
            self.c2s,
            self.jid(cloud),
            self.password(cloud),
            self.room,
            toml_string(&pki("ca.crt")),
        )
    }

    /// The CA bundle that verifies the server's certificates.
    pub fn ca_bundle(&self) -> PathBuf {
        pki("ca.crt")
    }

    /// The directory holding config, certificates, data and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The generated `prosody.cfg.lua`.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The process (for `pause`/`resume`, its log, its pid).
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// The process id (0 once killed).
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// The current run's log.
    pub fn log_text(&self) -> String {
        self.daemon.log_text()
    }

    /// Kills Prosody with SIGKILL (every client loses its stream at once).
    pub fn kill(&mut self) {
        self.daemon.kill();
    }

    /// Kills Prosody if it still runs, then starts it again with the same
    /// config: same port, same accounts and data. Waits until it accepts
    /// connections.
    pub fn restart(&mut self) {
        self.daemon.kill();
        self.daemon = spawn(&self.prosody, &self.config, &self.dir, self.starts);
        self.starts += 1;
        match self.wait_ready() {
            Ready::Yes => {}
            Ready::PortTaken => panic!(
                "restarted Prosody could not bind {} again:\n{}",
                self.c2s,
                self.daemon.log_text()
            ),
        }
    }

    /// Waits until Prosody says it bound the c2s port and the port accepts
    /// a TCP connection. (The log line matters: a connection alone could be
    /// accepted by someone else who took the port first.) Prosody opens its
    /// listeners while starting up but serves them only once every host is
    /// loaded, so a connection made now is answered with the full configuration.
    fn wait_ready(&self) -> Ready {
        let activated = format!("Activated service 'c2s' on [127.0.0.1]:{}", self.c2s.port());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let log = self.daemon.log_text();
            if log.contains(BIND_FAILURE) {
                return Ready::PortTaken;
            }
            if log.contains(&activated)
                && TcpStream::connect_timeout(&self.c2s, Duration::from_millis(200)).is_ok()
            {
                return Ready::Yes;
            }
            assert!(
                process_alive(self.daemon.pid()),
                "Prosody exited during start-up; its log ({}):\n{log}",
                self.daemon.log.display()
            );
            assert!(
                Instant::now() < deadline,
                "Prosody did not accept connections on {} within {READY_TIMEOUT:?}; its log ({}):\n{log}",
                self.c2s,
                self.daemon.log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

enum Ready {
    Yes,
    PortTaken,
}

/// What [`render_config`] needs.
struct Layout<'a> {
    dir: &'a Path,
    port: u16,
    hosts: &'a [String],
    root_host: &'a str,
    muc_host: &'a str,
    log_level: &'a str,
}

/// The Prosody configuration (Lua). `scripts/lab` writes the same one.
fn render_config(layout: &Layout<'_>) -> String {
    let dir = layout.dir;
    let mut text = format!(
        r#"-- Written by the Intercloud test harness (tests/src/prosody.rs).
-- Foreground (no -D), as root if need be; everything under this directory.
run_as_root = true
pidfile = {pidfile}
data_path = {data}
certificates = "certs" -- <host>.crt and <host>.key, beside this file
log = {{ {{ levels = {{ min = {level} }}, to = "console" }} }}

-- c2s on one loopback port; every other listener off.
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_interfaces = {{ "127.0.0.1" }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ }}
component_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}

plugin_paths = {{ {plugins} }}
modules_enabled = {{ "tls", "saslauth", "disco", "ping", "roster", "intercloud_limits" }}
modules_disabled = {{ "s2s", "s2s_auth_certs", "offline" }}

authentication = "internal_hashed"
storage = "internal"
allow_registration = false
c2s_require_encryption = true
s2s_require_encryption = true
-- Small XMPP writes must not wait for delayed ACKs (~40 ms each).
network_settings = {{ nagle = false }}
c2s_stanza_size_limit = 10000 -- Prosody's minimum; mod_intercloud_limits enforces {limit}
intercloud_max_stanza_bytes = {limit}
"#,
        pidfile = lua_string(&dir.join("prosody.pid").display().to_string()),
        plugins = lua_string(
            &crate::repo_root()
                .join("scripts/prosody")
                .display()
                .to_string()
        ),
        data = lua_string(&dir.join("data").display().to_string()),
        level = lua_string(layout.log_level),
        port = layout.port,
        limit = STANZA_SIZE_LIMIT,
    );
    for host in layout
        .hosts
        .iter()
        .map(String::as_str)
        .chain([layout.root_host])
    {
        text.push_str(&format!("\nVirtualHost {}\n", lua_string(host)));
    }
    text.push_str(&format!(
        r#"
Component {} "muc"
    muc_room_locking = false
    muc_room_default_public_jids = true
    muc_room_default_persistent = false
    restrict_room_creation = false
"#,
        lua_string(layout.muc_host)
    ));
    text
}

fn spawn(prosody: &Path, config: &Path, dir: &Path, run: usize) -> Daemon {
    // `Daemon::spawn` runs `<bin dir>/<name> --config <config>`; joining an
    // absolute path onto the bin dir yields the absolute path itself.
    let binary = prosody.to_str().expect("prosody path is UTF-8");
    Daemon::spawn(binary, config, dir.join(format!("prosody-{run}.log")), &[])
}

/// The path of `name` (from the Debian package `prosody`); panics naming the
/// package when it is missing.
fn installed(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found: install the Debian package `prosody` \
                 (scripts/test does; or `apt-get install -y --no-install-recommends prosody` as root)"
            )
        })
}

fn process_alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped) still has a /proc entry: state Z.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
        Err(_) => false,
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for tests).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind an ephemeral loopback port")
}

/// 24 random alphanumerics: safe in TOML, Lua, shell and SASL without quoting.
pub(crate) fn random_password() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn lua_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_string(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_every_host_and_one_port() {
        let hosts = vec![
            "cloud-a.intercloud.lab".to_owned(),
            "cloud-b.intercloud.lab".to_owned(),
        ];
        let text = render_config(&Layout {
            dir: Path::new("/tmp/x \"y\""),
            port: 15222,
            hosts: &hosts,
            root_host: "root.intercloud.lab",
            muc_host: "conference.root.intercloud.lab",
            log_level: "info",
        });
        assert!(text.contains("c2s_ports = { 15222 }"));
        assert!(text.contains("VirtualHost \"cloud-a.intercloud.lab\""));
        assert!(text.contains("VirtualHost \"root.intercloud.lab\""));
        assert!(text.contains("Component \"conference.root.intercloud.lab\" \"muc\""));
        assert!(text.contains("pidfile = \"/tmp/x \\\"y\\\"/prosody.pid\""));
        assert!(text.contains("muc_room_locking = false"));
        assert!(text.contains("muc_room_default_public_jids = true"));
    }

    #[test]
    fn names_and_passwords() {
        assert!(is_dns_name("cloud-a.intercloud.lab"));
        assert!(!is_dns_name("Cloud-A"));
        assert!(!is_dns_name("a..b"));
        let password = random_password();
        assert_eq!(password.len(), 24);
        assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(password, random_password());
    }
}
