//! Shared by the kernel tests: the root check, the cleanup guard, ping.
//!
//! Every test sends traffic only between namespaces it made itself, and
//! every namespace name carries the test's tag and the process id, so that
//! tests (and two runs) can go on in parallel.

#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::Duration;

/// Fails the test (never skips it) when it cannot do what it is for.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to make network \
         namespaces, veth pairs, bridges and VXLAN devices: run it as root"
    );
    for tool in ["ip", "ping"] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            found,
            "this test needs `{tool}` (apt-get install -y iproute2 iputils-ping)"
        );
    }
}

/// A unique namespace name: `ictest-<role>-<pid>`.
pub fn ns_name(role: &str) -> String {
    format!("ictest-{role}-{}", std::process::id())
}

/// Deletes the namespaces it was given when dropped, test passed or not;
/// the links inside go with them (nothing is made in the host namespace).
#[derive(Default)]
pub struct Cleanup {
    namespaces: Vec<String>,
}

impl Cleanup {
    /// Registers `name` (before it is made, so that a half-made one goes too).
    pub fn namespace(&mut self, name: &str) -> String {
        self.namespaces.push(name.to_owned());
        name.to_owned()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            // Already deleted by the test itself is fine: the error is ignored.
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The outcome of one bounded ping.
pub struct Ping {
    pub ok: bool,
    pub output: String,
}

/// `ip netns exec NS ping -c COUNT -W WAIT -w DEADLINE DST`: bounded by
/// ping's own deadline, and by a timeout on top of that.
pub async fn ping(ns: &str, dst: &str, count: u32, wait_s: u32) -> Ping {
    let deadline = count * wait_s + 1;
    let child = tokio::process::Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-n", "-c"])
        .arg(count.to_string())
        .arg("-W")
        .arg(wait_s.to_string())
        .arg("-w")
        .arg(deadline.to_string())
        .arg(dst)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(u64::from(deadline) + 5), child)
        .await
        .expect("ping ran past its deadline")
        .expect("run ip netns exec ping");
    Ping {
        ok: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The network namespace of the calling thread, as the kernel names it.
pub fn thread_netns() -> String {
    std::fs::read_link("/proc/thread-self/ns/net")
        .expect("read /proc/thread-self/ns/net")
        .to_string_lossy()
        .into_owned()
}

/// The network namespace of the process's main thread.
pub fn process_netns() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .expect("read /proc/self/ns/net")
        .to_string_lossy()
        .into_owned()
}

/// Runs `f` on a thread of its own that has entered the named namespace
/// (sockets made there stay in it), and waits for it.
pub fn in_netns<T, F>(ns: &str, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("open the namespace");
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("the namespace thread")
}

/// `ip netns exec NS ping -c COUNT -i INTERVAL DST`: many echo requests in
/// a short time (an interval below 0.2 s needs root).
pub async fn ping_burst(ns: &str, dst: &str, count: u32, interval_s: f64) -> Ping {
    let deadline = (f64::from(count) * interval_s).ceil() as u64 + 5;
    let child = tokio::process::Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-n", "-q", "-c"])
        .arg(count.to_string())
        .arg("-i")
        .arg(interval_s.to_string())
        .arg("-W")
        .arg("1")
        .arg("-w")
        .arg(deadline.to_string())
        .arg(dst)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(deadline + 5), child)
        .await
        .expect("ping ran past its deadline")
        .expect("run ip netns exec ping");
    Ping {
        ok: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// `ip netns exec NS ARGS...`, which must succeed; its stdout.
pub fn run_in(ns: &str, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ip netns exec");
    if let (Some(mut pipe), Some(text)) = (child.stdin.take(), stdin) {
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for ip netns exec");
    assert!(
        out.status.success(),
        "ip netns exec {ns} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
