//! Benchmark the root's NTP server (issue 5): capacity in replies per second
//! on loopback, and accuracy as chrony measures it; baseline: chronyd
//! serving NTP on another loopback port, measured the same way in the same
//! run.
//!
//! Load generator: this program's own, closed-loop and bounded — T threads,
//! each with one UDP socket and W requests in flight, sending a new request
//! for each answer (and re-sending the window after 20 ms of silence), for a
//! fixed time. Only well-formed server replies (mode 4, stratum 10) count.
//! The root runs with its rate limit opened up (a 1 ms interval, a burst of
//! 4 billion), chronyd without `ratelimit` (its default): capacity, not the
//! limiter, is measured.
//!
//! Accuracy: `chronyd -Q` (4 samples, iburst) against each server, 5 times;
//! the offset it reports ("System clock wrong by …"), median and max of |x|.
//!
//! `cargo run --release -p intercloud-tests --bin bench-ntp [-- SECONDS]`
//! (needs chrony; daemons next to this binary, or `INTERCLOUD_BIN_DIR`).

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use intercloud_ntp::Timestamp;
use intercloud_ntp::client;
use intercloud_ntp::packet::{self, Mode};
use intercloud_tests::{RootOptions, TestRoot};

const THREADS: usize = 4;
const WINDOW: usize = 32;
const RUNS: usize = 3;
const ACCURACY_RUNS: usize = 5;

/// Replies per second from `server` over `seconds`.
fn capacity(server: &str, seconds: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (stop, answered, server) = (stop.clone(), answered.clone(), server.to_owned());
            std::thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
                socket.connect(&server).expect("connect");
                socket
                    .set_read_timeout(Some(Duration::from_millis(20)))
                    .expect("timeout");
                let send = || {
                    let request = client::request(Timestamp::from(SystemTime::now()), 6);
                    let _ = socket.send(&request);
                };
                for _ in 0..WINDOW {
                    send();
                }
                let mut buffer = [0u8; 128];
                while !stop.load(Ordering::Relaxed) {
                    match socket.recv(&mut buffer) {
                        Ok(len) => {
                            if let Ok(p) = packet::parse(&buffer[..len])
                                && p.mode == Mode::Server
                                && p.stratum == 10
                            {
                                answered.fetch_add(1, Ordering::Relaxed);
                            }
                            send();
                        }
                        Err(_) => {
                            for _ in 0..WINDOW {
                                send();
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let counted = answered.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    counted as f64 / elapsed
}

/// The offset chronyd -Q reports against `host:port`, in seconds.
fn chrony_offset(host: &str, port: u16, dir: &std::path::Path) -> anyhow::Result<f64> {
    let out = Command::new("chronyd")
        .args(["-Q", "-u", "root", "-t", "20"])
        .arg(format!("server {host} port {port} iburst maxsamples 4"))
        .arg(format!("pidfile {}", dir.join("chronyd-q.pid").display()))
        .arg("cmdport 0")
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.split("wrong by ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("chronyd -Q gave no offset: {text}"))
}

/// chronyd serving NTP (local clock, stratum 10) on 127.0.0.1:`port`,
/// never touching the system clock (-x).
fn start_chronyd(dir: &std::path::Path, port: u16) -> anyhow::Result<Child> {
    let conf = dir.join("chrony.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbindaddress 127.0.0.1\nlocal stratum 10\nallow 127.0.0.1\ncmdport 0\npidfile {}\n",
            dir.join("chronyd.pid").display()
        ),
    )?;
    let child = Command::new("chronyd")
        .args(["-d", "-x", "-u", "root", "-f"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("chronyd.log"))?)
        .spawn()?;
    // Wait until it answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    while Instant::now() < deadline {
        socket.send_to(
            &client::request(Timestamp::from(SystemTime::now()), 6),
            ("127.0.0.1", port),
        )?;
        let mut buffer = [0u8; 128];
        if socket.recv(&mut buffer).is_ok() {
            return Ok(child);
        }
    }
    anyhow::bail!("chronyd did not answer on port {port}")
}

fn free_udp_port() -> anyhow::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

fn main() -> anyhow::Result<()> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5.0);
    let dir = tempfile::tempdir()?;
    let root = TestRoot::start(
        dir.path(),
        &RootOptions {
            extra: "[ntp]\nrate_interval_ms = 1\nrate_burst = 4000000000\n".into(),
            ..RootOptions::default()
        },
    );
    let chrony_port = free_udp_port()?;
    let mut chronyd = start_chronyd(dir.path(), chrony_port)?;
    let chrony_addr = format!("127.0.0.1:{chrony_port}");
    let root_port: u16 = root.ntp.rsplit(':').next().unwrap_or_default().parse()?;

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for run in 0..RUNS {
        ours.push(capacity(&root.ntp, seconds));
        theirs.push(capacity(&chrony_addr, seconds));
        eprintln!(
            "run {run}: root {:.0}/s, chronyd {:.0}/s",
            ours[run], theirs[run]
        );
    }
    let mut our_offsets = Vec::new();
    let mut their_offsets = Vec::new();
    for _ in 0..ACCURACY_RUNS {
        our_offsets.push(chrony_offset("127.0.0.1", root_port, dir.path())?.abs() * 1e6);
        their_offsets.push(chrony_offset("127.0.0.1", chrony_port, dir.path())?.abs() * 1e6);
    }
    let _ = chronyd.kill();
    let _ = chronyd.wait();

    let (ours_median, ours_max) = stats(ours);
    let (theirs_median, theirs_max) = stats(theirs);
    let (oo_median, oo_max) = stats(our_offsets);
    let (to_median, to_max) = stats(their_offsets);
    println!(
        "ntp benchmark: {THREADS} threads x {WINDOW} in flight, {seconds} s per run, {RUNS} runs; accuracy: chronyd -Q x {ACCURACY_RUNS}"
    );
    println!("{:<44} {:>12} {:>12} {:>10}", "", "median", "max", "ratio");
    println!(
        "{:<44} {:>12.0} {:>12.0} {:>9.2}x",
        "replies/s: intercloud-root",
        ours_median,
        ours_max,
        ours_median / theirs_median
    );
    println!(
        "{:<44} {:>12.0} {:>12.0} {:>10}",
        "replies/s: chronyd (baseline)", theirs_median, theirs_max, "1x"
    );
    println!(
        "{:<44} {:>12.1} {:>12.1}",
        "|offset| chrony measures, root (µs)", oo_median, oo_max
    );
    println!(
        "{:<44} {:>12.1} {:>12.1}",
        "|offset| chrony measures, chronyd (µs)", to_median, to_max
    );
    Ok(())
}
