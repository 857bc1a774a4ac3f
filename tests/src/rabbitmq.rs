//! A real RabbitMQ on loopback, for the transfer tests (and the layout
//! `scripts/lab` uses; keep the two in step):
//!
//! - the node runs as a child process (`/usr/lib/rabbitmq/bin/rabbitmq-server`,
//!   not the Debian wrapper that switches user) with its node name, Erlang
//!   distribution and epmd ports, data (mnesia), logs, config, enabled
//!   plugins and Erlang cookie (`HOME`) all in the directory given to
//!   [`RabbitMq::start`];
//! - AMQP over TLS only (`listeners.tcp = none`), on one loopback port, with a
//!   server certificate for `amqp.<federation>` (SANs that name and
//!   `localhost`) signed by the federation dev CA; clients must present a
//!   certificate signed by that CA (`verify_peer`, `fail_if_no_peer_cert`)
//!   and not listed in the federation CRL (`crl_check = peer`, the CRL in an
//!   `openssl rehash`ed directory; TLS settings live in `advanced.config`);
//! - authentication is SASL EXTERNAL (plugin `rabbitmq_auth_mechanism_ssl`):
//!   the user name is the client certificate's first URI SAN, i.e. its SPIFFE
//!   id (`spiffe://<federation>/cloud/<id>`); no passwords, no `guest`;
//! - one user per cloud, whose permissions (vhost `/`) reach only its own
//!   resources: configure and read `^<cloud>\.`, write `^<cloud>\.` and
//!   `amq.default` (so a cloud can send to another's inbox through the
//!   default exchange, but never read, bind, declare or purge another's
//!   queues).
//!
//! Starting takes a few seconds (the Erlang VM). Dropping a [`RabbitMq`]
//! kills the node and its epmd.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::pki;
use crate::prosody::{free_port, random_password};

/// The server binary (not the Debian wrapper in /usr/sbin, which switches to
/// the `rabbitmq` user).
pub const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/// Its control tool.
pub const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running RabbitMQ node.
#[derive(Debug)]
pub struct RabbitMq {
    child: Option<Child>,
    dir: PathBuf,
    /// The AMQPS listener.
    pub amqps: SocketAddr,
    /// The host name its certificate is for.
    pub host: String,
    dist_port: u16,
    epmd_port: u16,
    starts: u32,
}

/// The permissions of `cloud` (configure, write, read regular expressions).
pub fn permissions(cloud: &str) -> [String; 3] {
    let own = format!("^{}\\.", cloud.replace('.', "\\."));
    [own.clone(), format!("{own}|^amq\\.default$"), own]
}

/// The AMQP user name of `cloud`: its broker's SPIFFE id.
pub fn user_of(federation: &str, cloud: &str) -> String {
    format!("spiffe://{federation}/cloud/{cloud}")
}

impl RabbitMq {
    /// Starts a node in `dir` for `federation`, with a user per cloud, and
    /// waits until it accepts TLS connections.
    pub fn start(dir: &Path, federation: &str, clouds: &[&str]) -> Self {
        for sub in ["mnesia", "log", "home", "certs"] {
            std::fs::create_dir_all(dir.join(sub)).expect("rabbitmq dirs");
        }
        let host = format!("amqp.{federation}");
        intercloud_certs_dev::xmpp_hosts::write(
            &pki("ca.crt"),
            &pki("ca.key"),
            &dir.join("certs"),
            std::slice::from_ref(&host),
        )
        .expect("issue the AMQP server certificate");
        let amqps = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = format!(
            "listeners.tcp = none\n\
             listeners.ssl.default = {amqps}\n\
             auth_mechanisms.1 = EXTERNAL\n\
             ssl_cert_login_from = subject_alternative_name\n\
             ssl_cert_login_san_type = uri\n\
             ssl_cert_login_san_index = 0\n\
             loopback_users = none\n\
             log.file.level = info\n\
             log.console = false\n"
        );
        std::fs::write(dir.join("rabbitmq.conf"), config).expect("write rabbitmq.conf");
        // TLS in advanced.config: the CRL cache has no rabbitmq.conf key, and
        // advanced.config replaces the whole ssl_options list.
        let crls = dir.join("crls");
        std::fs::create_dir_all(&crls).expect("crl dir");
        std::fs::copy(pki("crl.pem"), crls.join("federation.crl.pem")).expect("copy the CRL");
        let rehash = Command::new("openssl")
            .arg("rehash")
            .arg(&crls)
            .status()
            .expect("openssl rehash (openssl is installed by scripts/test)");
        assert!(rehash.success(), "openssl rehash {} failed", crls.display());
        let advanced = format!(
            "[{{rabbit, [{{ssl_options, [\n\
             {{cacertfile, {ca:?}}},\n\
             {{certfile, {cert:?}}},\n\
             {{keyfile, {key:?}}},\n\
             {{verify, verify_peer}},\n\
             {{fail_if_no_peer_cert, true}},\n\
             {{versions, ['tlsv1.3', 'tlsv1.2']}},\n\
             {{crl_check, peer}},\n\
             {{crl_cache, {{ssl_crl_hash_dir, {{internal, [{{dir, {crls:?}}}]}}}}}}\n\
             ]}}]}}].\n",
            ca = pki("ca.crt").display().to_string(),
            cert = dir
                .join("certs")
                .join(format!("{host}.crt"))
                .display()
                .to_string(),
            key = dir
                .join("certs")
                .join(format!("{host}.key"))
                .display()
                .to_string(),
            crls = crls.display().to_string(),
        );
        std::fs::write(dir.join("advanced.config"), advanced).expect("write advanced.config");
        std::fs::write(
            dir.join("enabled_plugins"),
            "[rabbitmq_auth_mechanism_ssl].\n",
        )
        .expect("write enabled_plugins");
        let mut node = Self {
            child: None,
            dir: dir.to_owned(),
            amqps,
            host,
            dist_port: free_port(),
            epmd_port: free_port(),
            starts: 0,
        };
        node.spawn();
        // No default account: only certificate holders get in.
        node.ctl(&["delete_user", "guest"]);
        for cloud in clouds {
            node.add_cloud(federation, cloud);
        }
        node
    }

    /// The `[amqp]` section of a broker using this node, with the test
    /// timers (quick resends and re-announcements) and `extra` lines.
    pub fn broker_section(&self, extra: &str) -> String {
        format!(
            "[amqp]\nurl = \"amqps://localhost:{}/%2f\"\nresend_after_seconds = 2\nreannounce_after_seconds = 3\n{extra}",
            self.amqps.port()
        )
    }

    /// Adds `cloud`'s user (no password: EXTERNAL only) and its permissions.
    pub fn add_cloud(&self, federation: &str, cloud: &str) {
        self.add_user(&user_of(federation, cloud), cloud);
    }

    /// Adds the user `user` (a SPIFFE id) with `cloud`'s permissions.
    pub fn add_user(&self, user: &str, cloud: &str) {
        let user = user.to_owned();
        // A password is required by add_user; clear it at once.
        self.ctl(&["add_user", &user, &random_password()]);
        self.ctl(&["clear_password", &user]);
        let [configure, write, read] = permissions(cloud);
        self.ctl(&[
            "set_permissions",
            "-p",
            "/",
            &user,
            &configure,
            &write,
            &read,
        ]);
    }

    fn env(&self, command: &mut Command) {
        command
            .env("RABBITMQ_NODENAME", "rabbit@localhost")
            .env("RABBITMQ_USE_LONGNAME", "false")
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ADVANCED_CONFIG_FILE",
                self.dir.join("advanced.config"),
            )
            .env("RABBITMQ_CONF_ENV_FILE", self.dir.join("rabbitmq-env.conf"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env("RABBITMQ_PID_FILE", self.dir.join("rabbit.pid"))
            .env("HOME", self.dir.join("home"));
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.join(format!("rabbitmq-{}.out", self.starts)))
            .expect("log");
        let mut command = Command::new(SERVER);
        self.env(&mut command);
        command
            // A node killed mid-write leaves MnesiaCore dumps in its
            // working directory: keep them in the node's own.
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone"))
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        self.child = Some(command.spawn().unwrap_or_else(|e| {
            panic!("{SERVER} must be installed (scripts/test installs rabbitmq-server): {e}")
        }));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&self.amqps, Duration::from_millis(200)).is_ok()
                && self.try_ctl(&["await_startup"]).is_ok()
            {
                // The port answers and this node is up: make sure the
                // listener on it is this node's, not another node's that
                // happened to get the same free port.
                let listeners = self
                    .try_ctl(&["eval", "rabbit_networking:active_listeners()."])
                    .unwrap_or_else(|e| e);
                let port = self.amqps.port().to_string();
                assert!(
                    listeners
                        .split(|c: char| !c.is_ascii_digit())
                        .any(|number| number == port),
                    "RabbitMQ in {} is up but does not listen on {}; its listeners: {listeners}\n{}",
                    self.dir.display(),
                    self.amqps,
                    self.log_text()
                );
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "rabbitmq-server exited ({status}) during start-up:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "RabbitMQ did not accept connections on {} within {READY_TIMEOUT:?}:\n{}",
                self.amqps,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Runs `rabbitmqctl` against this node; panics with its output on failure.
    pub fn ctl(&self, args: &[&str]) -> String {
        self.try_ctl(args)
            .unwrap_or_else(|e| panic!("rabbitmqctl {args:?} failed: {e}"))
    }

    /// Runs `rabbitmqctl` against this node.
    pub fn try_ctl(&self, args: &[&str]) -> Result<String, String> {
        let mut command = Command::new(CTL);
        self.env(&mut command);
        let out = command
            .args(["-n", "rabbit@localhost", "-q"])
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {CTL}: {e}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }

    /// Kills the node (SIGKILL to its process group) and starts it again on
    /// the same ports with the same data.
    pub fn restart_after_kill(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGKILL to the Erlang VM (its pid is in the node's pid file; the
    /// start script's child is not its parent once it runs) and the script.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = std::fs::read_to_string(self.dir.join("rabbit.pid")) {
                let _ = Command::new("kill").args(["-9", pid.trim()]).status();
            }
            // And the whole process group (the script was started as its
            // leader): a node still booting has no pid file yet, and a VM
            // that outlived its test would keep listening on a port the
            // kernel may hand out again — with its CRL directory deleted,
            // refusing every client certificate.
            let _ = Command::new("kill")
                .args(["-9", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(self.dir.join("rabbit.pid"));
        }
    }

    /// What the node logged so far.
    pub fn log_text(&self) -> String {
        let mut text = String::new();
        for n in 1..=self.starts {
            text.push_str(
                &std::fs::read_to_string(self.dir.join(format!("rabbitmq-{n}.out")))
                    .unwrap_or_default(),
            );
        }
        if let Ok(entries) = std::fs::read_dir(self.dir.join("log")) {
            for entry in entries.flatten() {
                text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        text
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.kill();
        // epmd refuses `-kill` while it still lists the node, which it
        // does until it notices the killed VM's connection is gone: try a
        // few times, until `-names` finds no daemon.
        let epmd = |arg: &str| {
            Command::new("epmd")
                .args(["-port", &self.epmd_port.to_string(), arg])
                .env("ERL_EPMD_PORT", self.epmd_port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        for _ in 0..20 {
            epmd("-kill");
            if !epmd("-names") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
