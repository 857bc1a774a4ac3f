//! An underlay for VNet tests, made with `ip` (iproute2), not with the
//! code under test: a "WAN" namespace `ict<pid>-<tag>-wan` holding a bridge,
//! and one namespace per cloud, `ict<pid>-<tag>-<cloud>`, joined to it by a
//! veth whose inner end `ul0` has `10.231.<subnet>.<n>/24` (a private test
//! range that exists only inside these namespaces). Each cloud's broker is
//! given its namespace as `[network] namespace` and its address as `vtep`.
//!
//! Everything is removed on drop, test passed or not: the namespaces made
//! here, and every instance namespace (`ic-<cloud>.<instance>`) whose
//! instance name carries [`Underlay::tag`], which the brokers made.
//!
//! Needs root: [`require_root`] fails the test (never skips it) without.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Fails the test, saying why, unless it runs as root with `ip`, `ping`,
/// `timeout` and `python3` at hand.
pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        euid, "0",
        "this VNet test needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to make network namespaces, \
         veth pairs, bridges and VXLAN devices; it runs as uid {euid}: run it as root (CI does)"
    );
    for (tool, arg, package) in [
        ("ip", "-V", "iproute2"),
        ("ping", "-V", "iputils-ping"),
        ("timeout", "--version", "coreutils"),
        ("python3", "--version", "python3"),
    ] {
        let found = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            found,
            "this VNet test needs `{tool}` (apt-get install -y {package})"
        );
    }
}

/// Runs `ip ARGS`; panics with its output if it fails.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip {}: {e}", args.join(" ")));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "ip {} failed:\n{text}",
        args.join(" ")
    );
    text
}

/// Runs `ip ARGS`, ignoring failure (cleanup).
fn ip_quietly(args: &[&str]) {
    let _ = Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The named namespaces of the host.
pub fn namespaces() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The outcome of a bounded command run inside a namespace.
#[derive(Debug)]
pub struct Run {
    /// Whether it exited with status 0.
    pub ok: bool,
    /// Its stdout and stderr.
    pub output: String,
}

/// `timeout SECONDS ip netns exec NS ARGS…`: bounded by `timeout`, and by a
/// deadline on top of that.
pub async fn netns_exec(ns: &str, seconds: u32, args: &[&str]) -> Run {
    let child = tokio::process::Command::new("timeout")
        .arg("-s")
        .arg("KILL")
        .arg(seconds.to_string())
        .args(["ip", "netns", "exec", ns])
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(u64::from(seconds) + 5), child)
        .await
        .unwrap_or_else(|_| panic!("{args:?} in {ns} ran past its deadline"))
        .unwrap_or_else(|e| panic!("run {args:?} in {ns}: {e}"));
    Run {
        ok: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// `ping -c COUNT -W WAIT DST` inside `ns`, bounded.
pub async fn ping(ns: &str, dst: &str, count: u32, wait_s: u32) -> Run {
    let deadline = count * wait_s + 1;
    netns_exec(
        ns,
        deadline + 2,
        &[
            "ping",
            "-n",
            "-c",
            &count.to_string(),
            "-W",
            &wait_s.to_string(),
            "-w",
            &deadline.to_string(),
            dst,
        ],
    )
    .await
}

/// The underlay of one test.
#[derive(Debug)]
pub struct Underlay {
    tag: String,
    wan: String,
    subnet: u8,
    hosts: Vec<(String, String)>,
}

impl Underlay {
    /// A WAN bridge and one underlay namespace per cloud of `clouds`, with
    /// `10.231.<subnet>.<1, 2, …>/24` in their order. `tag` (a few lowercase
    /// letters) tells this test's namespaces from another's in the same
    /// process.
    pub fn new(tag: &str, subnet: u8, clouds: &[&str]) -> Self {
        require_root();
        let prefix = format!("ict{}-{tag}", std::process::id());
        let mut underlay = Self {
            tag: prefix.clone(),
            wan: format!("{prefix}-wan"),
            subnet,
            hosts: Vec::new(),
        };
        let wan = underlay.wan.clone();
        ip(&["netns", "add", &wan]);
        ip(&["-n", &wan, "link", "set", "lo", "up"]);
        ip(&["-n", &wan, "link", "add", "wan0", "type", "bridge"]);
        ip(&["-n", &wan, "link", "set", "wan0", "up"]);
        for (n, cloud) in clouds.iter().enumerate() {
            let host = format!("{prefix}-{cloud}");
            // Registered first, so that a half-made one is removed too.
            underlay.hosts.push(((*cloud).to_owned(), host.clone()));
            let port = format!("p{n}");
            ip(&["netns", "add", &host]);
            ip(&["-n", &host, "link", "set", "lo", "up"]);
            ip(&[
                "-n", &wan, "link", "add", &port, "type", "veth", "peer", "name", "ul0", "netns",
                &host,
            ]);
            ip(&["-n", &wan, "link", "set", &port, "master", "wan0", "up"]);
            let address = format!("{}/24", underlay.vtep(cloud));
            ip(&["-n", &host, "address", "add", &address, "dev", "ul0"]);
            ip(&["-n", &host, "link", "set", "ul0", "up"]);
        }
        underlay
    }

    /// What this test's names carry (`ict<pid>-<tag>`).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// An instance name unique to this test: `<role>-<pid>-<tag>`.
    pub fn instance(&self, role: &str) -> String {
        format!("{role}-{}", self.tag.trim_start_matches("ict"))
    }

    /// The underlay namespace of `cloud`.
    pub fn namespace(&self, cloud: &str) -> &str {
        self.hosts
            .iter()
            .find(|(c, _)| c == cloud)
            .map(|(_, ns)| ns.as_str())
            .unwrap_or_else(|| panic!("{cloud} has no underlay host"))
    }

    /// The underlay (VTEP) address of `cloud`.
    pub fn vtep(&self, cloud: &str) -> Ipv4Addr {
        let n = self
            .hosts
            .iter()
            .position(|(c, _)| c == cloud)
            .unwrap_or_else(|| panic!("{cloud} has no underlay host"));
        Ipv4Addr::new(10, 231, self.subnet, u8::try_from(n + 1).unwrap_or(u8::MAX))
    }

    /// The `[network]` section of `cloud`'s broker.
    pub fn network_section(&self, cloud: &str, reconcile_seconds: u64) -> String {
        format!(
            "[network]\nvtep = \"{}\"\nnamespace = \"{}\"\nreconcile_seconds = {reconcile_seconds}\n",
            self.vtep(cloud),
            self.namespace(cloud)
        )
    }

    /// The interfaces of `cloud`'s underlay namespace: (name, index).
    pub fn links(&self, cloud: &str) -> Vec<(String, u32)> {
        ip(&["-n", self.namespace(cloud), "-o", "link", "show"])
            .lines()
            .filter_map(|line| {
                let (index, rest) = line.split_once(": ")?;
                let name = rest.split([':', '@']).next()?;
                Some((name.to_owned(), index.trim().parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Underlay {
    fn drop(&mut self) {
        let instance_tag = self.tag.trim_start_matches("ict").to_owned();
        for ns in namespaces() {
            // Instances' namespaces, and their Mirror VNet clones'.
            let instance = ns.strip_suffix(".mirror").unwrap_or(&ns);
            if ns.starts_with("ic-") && instance.ends_with(&instance_tag) {
                ip_quietly(&["netns", "del", &ns]);
            }
        }
        for (_, host) in self.hosts.iter().rev() {
            ip_quietly(&["netns", "del", host]);
        }
        ip_quietly(&["netns", "del", &self.wan]);
    }
}
