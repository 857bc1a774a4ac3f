//! Benchmark `presence convergence`: N broker processes (N = 3, 10, 30) on
//! loopback with one root and one Prosody, measuring
//!
//! - convergence: from the last broker's process start until every broker
//!   has every other one online (and, split, until that broker's XMPP
//!   session is bound, and from there);
//! - failure detection: from `kill -9` of one broker until every other
//!   broker has marked it offline (Prosody sees the TCP connection close and
//!   sends an unavailable presence), and from SIGSTOP of another until all
//!   have (its connection stays open: only the lease, [`LEASE_SECONDS`], can
//!   tell);
//! - the CPU Prosody and the brokers use once converged;
//!
//! against the baseline of N plain XMPP clients ([`RawXmpp`], not our code)
//! joining the same room on the same Prosody, in the same run: from the last
//! client's join request until every client has seen the N-1 others, and
//! from one client's connection dropping until every other client has seen
//! it leave.
//!
//! Brokers other than cloud-a..c have no operator certificate in the
//! development PKI, so they are observed through their logs: the XMPP driver
//! logs `peer joined peer=<cloud>` and `peer left peer=<cloud> reason=…` (INFO)
//! at the moment its peer table changes, and the log lines' own timestamps
//! are the measurement (the polling interval does not add to it). cloud-a's
//! `Broker.ListPeers` cross-checks the count once converged.
//!
//! Every run starts afresh: its own directory, root, Prosody (one broker
//! account per cloud) and brokers enrolled with new join tokens.
//!
//! `cargo run --release -p intercloud-tests --bin bench-presence [--prosody-no-nagle] [N…]`
//! (default: 3 10 30; uses the daemons next to this binary, or
//! `INTERCLOUD_BIN_DIR`; needs `prosody` installed). `--prosody-no-nagle`
//! starts Prosody with `network_settings = { nagle = false }`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result, bail};
use intercloud_proto::v1::broker_client::BrokerClient;
use intercloud_proto::v1::federation_client::FederationClient;
use intercloud_proto::v1::{CreateJoinTokenRequest, ListPeersRequest};
use intercloud_tests::prosody::Prosody;
use intercloud_tests::raw_xmpp::{RawXmpp, attribute};
use intercloud_tests::{
    BrokerIdentity, FEDERATION, RootOptions, TestBroker, TestRoot, client_tls, cloud_id, connect,
    root_id,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The brokers' lease (`xmpp.lease_seconds`), as in the e2e presence tests.
const LEASE_SECONDS: u64 = 4;
/// How often the brokers re-announce (`xmpp.announce_seconds`).
const ANNOUNCE_SECONDS: u64 = 1;
/// Broker counts and runs of each, by default.
const PLAN: [(usize, usize); 3] = [(3, 5), (10, 5), (30, 3)];
/// Longest wait for brokers to converge before the run is reported as failed.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the others to notice a killed broker (well past the lease).
const DETECT_TIMEOUT: Duration = Duration::from_secs(4 * LEASE_SECONDS);
/// Longest wait for plain clients to see each other.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Quiet time before a connection is dropped: longer than a delayed ACK
/// (40 ms), so that what is measured is the steady state and not the tail of
/// the join burst (Prosody leaves Nagle's algorithm on by default: a small
/// write waits for the ACK of the previous one).
const RAW_SETTLE: Duration = Duration::from_millis(250);
/// Brokers re-announce every second, so they are never quiet: after
/// converging they run this long before the kill, and the CPU they and
/// Prosody use is measured over [`CPU_WINDOW`] of it.
const BROKER_SETTLE: Duration = Duration::from_millis(500);
/// See [`BROKER_SETTLE`].
const CPU_WINDOW: Duration = Duration::from_secs(2);
/// How often the brokers' logs are read while waiting.
const POLL: Duration = Duration::from_millis(50);
/// Resource and nick prefix of the baseline clients (the brokers' resource is
/// `broker`, their nick the cloud id).
const RAW: &str = "raw";

/// Cloud ids: cloud-a..c (which have operator certificates), then bench-3….
fn clouds(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i {
            0..3 => format!("cloud-{}", char::from(b'a' + i as u8)),
            _ => format!("bench-{i}"),
        })
        .collect()
}

/// What one run measured.
#[derive(Debug, Default)]
struct Run {
    /// Plain clients: last join request → all have seen N-1 others.
    raw_join: Duration,
    /// Plain clients: last login started → all have seen N-1 others.
    raw_login_join: Duration,
    /// Plain clients: one connection dropped → all others have seen it leave.
    raw_drop: Duration,
    /// Brokers: last process start → all have N-1 online (None: no convergence).
    converge: Option<Duration>,
    /// Brokers: last process start → its XMPP session is bound (enrolment,
    /// process start-up, XMPP login).
    last_bound: Option<Duration>,
    /// Brokers: kill -9 → all others logged it leaving (None: not all did).
    detect: Option<Duration>,
    /// The `reason=` of those leave lines, counted.
    reasons: BTreeMap<String, usize>,
    /// Brokers: SIGSTOP → all others logged it leaving (None: not all did,
    /// or N < 3).
    lease_detect: Option<Duration>,
    /// The `reason=` of those leave lines, counted.
    lease_reasons: BTreeMap<String, usize>,
    /// CPU used once converged, in cores: Prosody, and all brokers together.
    cpu: Option<(f64, f64)>,
}

/// Command line: `[--prosody-no-nagle] [N…]`.
#[derive(Debug)]
struct Options {
    plan: Vec<(usize, usize)>,
    /// Start Prosody with `network_settings = { nagle = false }`.
    no_nagle: bool,
}

impl Options {
    fn parse() -> Result<Self> {
        let mut sizes = Vec::new();
        let mut no_nagle = false;
        for arg in std::env::args().skip(1) {
            if arg == "--prosody-no-nagle" {
                no_nagle = true;
                continue;
            }
            let n: usize = arg.parse().with_context(|| {
                format!("{arg:?} is neither a broker count nor --prosody-no-nagle")
            })?;
            if n < 2 {
                bail!("N = {n}: presence needs at least 2 brokers");
            }
            sizes.push(n);
        }
        let plan = if sizes.is_empty() {
            PLAN.to_vec()
        } else {
            sizes
                .iter()
                .map(|&n| (n, PLAN.iter().find(|p| p.0 == n).map_or(3, |p| p.1)))
                .collect()
        };
        Ok(Self { plan, no_nagle })
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let options = Options::parse()?;
    let mut results: Vec<(usize, Vec<Run>)> = Vec::new();
    for &(n, runs) in &options.plan {
        let mut done = Vec::with_capacity(runs);
        for run in 1..=runs {
            eprintln!("N = {n}, run {run}/{runs}");
            done.push(one_run(n, options.no_nagle).await?);
        }
        results.push((n, done));
    }

    println!(
        "presence convergence on loopback, broker processes ({} binaries), lease {LEASE_SECONDS} s, announce every {ANNOUNCE_SECONDS} s, Prosody with Nagle {}",
        intercloud_tests::bin("intercloud-broker").display(),
        if options.no_nagle {
            "off"
        } else {
            "on (its default)"
        }
    );
    println!(
        "{:>3}  {:<60} {:>4} {:>10} {:>10} {:>12}",
        "N", "measurement", "runs", "median ms", "max ms", "vs baseline"
    );
    for (n, runs) in &results {
        let take = |f: &dyn Fn(&Run) -> Option<Duration>| -> Vec<Duration> {
            runs.iter().filter_map(f).collect()
        };
        let join = row(
            *n,
            "raw XMPP: last join -> all see N-1 (baseline)",
            take(&|r| Some(r.raw_join)),
            runs.len(),
            Against::Itself,
        );
        row(
            *n,
            "raw XMPP: last login + join -> all see N-1",
            take(&|r| Some(r.raw_login_join)),
            runs.len(),
            Against::Baseline(join),
        );
        row(
            *n,
            "brokers: last start -> all list N-1 online",
            take(&|r| r.converge),
            runs.len(),
            Against::Baseline(join),
        );
        row(
            *n,
            "  of which last start -> its XMPP session bound",
            take(&|r| r.last_bound),
            runs.len(),
            Against::Nothing,
        );
        row(
            *n,
            "  of which last bound -> all list N-1 online",
            take(&|r| r.converge?.checked_sub(r.last_bound?)),
            runs.len(),
            Against::Baseline(join),
        );
        let drop = row(
            *n,
            "raw XMPP: connection dropped -> all see it leave (baseline)",
            take(&|r| Some(r.raw_drop)),
            runs.len(),
            Against::Itself,
        );
        row(
            *n,
            "brokers: kill -9 -> all mark it offline",
            take(&|r| r.detect),
            runs.len(),
            Against::Baseline(drop),
        );
        row(
            *n,
            &format!("brokers: SIGSTOP -> all mark it offline (lease {LEASE_SECONDS} s)"),
            take(&|r| r.lease_detect),
            runs.len(),
            Against::Nothing,
        );
        let count = |of: &dyn Fn(&Run) -> &BTreeMap<String, usize>| {
            let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
            for (reason, count) in runs.iter().flat_map(of) {
                *reasons.entry(reason).or_default() += count;
            }
            reasons
        };
        println!(
            "     reasons logged: after kill -9 {:?}, after SIGSTOP {:?}",
            count(&|r| &r.reasons),
            count(&|r| &r.lease_reasons)
        );
        let mut prosody_cpu: Vec<f64> = runs.iter().filter_map(|r| Some(r.cpu?.0)).collect();
        let mut brokers_cpu: Vec<f64> = runs.iter().filter_map(|r| Some(r.cpu?.1)).collect();
        if !prosody_cpu.is_empty() {
            prosody_cpu.sort_by(f64::total_cmp);
            brokers_cpu.sort_by(f64::total_cmp);
            println!(
                "     CPU once converged (cores, median of runs): Prosody {:.2}, all brokers {:.2}",
                prosody_cpu[(prosody_cpu.len() - 1) / 2],
                brokers_cpu[(brokers_cpu.len() - 1) / 2]
            );
        }
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What a row is compared with.
enum Against {
    /// The row is a baseline.
    Itself,
    /// The median of this baseline (None: it had no samples).
    Baseline(Option<Duration>),
    /// Nothing: a part of the row above, or nothing comparable was measured.
    Nothing,
}

/// Prints one table row; returns its median (None when no run produced one).
fn row(
    n: usize,
    name: &str,
    mut samples: Vec<Duration>,
    runs: usize,
    against: Against,
) -> Option<Duration> {
    let runs = if samples.len() == runs {
        format!("{runs}")
    } else {
        format!("{}/{runs}", samples.len())
    };
    if samples.is_empty() {
        println!("{n:>3}  {name:<60} {runs:>4} {:>10} {:>10}", "-", "-");
        return None;
    }
    samples.sort();
    let median = percentile(&samples, 50.0);
    let ratio = match against {
        Against::Itself => "baseline".to_owned(),
        Against::Baseline(Some(b)) => {
            format!("{:.1}x", median.as_secs_f64() / b.as_secs_f64())
        }
        Against::Baseline(None) => "-".to_owned(),
        Against::Nothing => String::new(),
    };
    println!(
        "{n:>3}  {name:<60} {runs:>4} {:>10.1} {:>10.1} {ratio:>12}",
        median.as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    Some(median)
}

/// One run at size `n`: fresh root and Prosody, the baseline clients, then
/// the brokers.
async fn one_run(n: usize, no_nagle: bool) -> Result<Run> {
    let dir = tempfile::tempdir()?;
    let clouds = clouds(n);
    let names: Vec<&str> = clouds.iter().map(String::as_str).collect();
    let mut prosody = Prosody::start(&dir.path().join("xmpp"), FEDERATION, &names);
    if no_nagle {
        disable_nagle(&mut prosody)?;
    }
    let root = TestRoot::start(dir.path(), &RootOptions::default());

    // The baseline first, while the room is empty; its clients are gone
    // before the first broker starts.
    let (raw_join, raw_login_join, raw_drop) = raw_clients(&prosody, &clouds).await?;
    let mut run = Run {
        raw_join,
        raw_login_join,
        raw_drop,
        ..Run::default()
    };

    let operator_tls = client_tls(&root_id(), Some(("operator-root.crt", "operator-root.key")));
    let mut federation = FederationClient::new(
        connect(&root.api, operator_tls)
            .await
            .map_err(anyhow::Error::msg)?,
    );
    let mut tokens = Vec::with_capacity(n);
    for cloud in &clouds {
        tokens.push(
            federation
                .create_join_token(CreateJoinTokenRequest {
                    cloud_id: cloud.clone(),
                    ttl_seconds: 0,
                })
                .await?
                .into_inner()
                .token,
        );
    }

    let mut brokers = Vec::with_capacity(n);
    let mut last_start = SystemTime::now();
    for (i, (cloud, token)) in clouds.iter().zip(tokens).enumerate() {
        let extra = format!(
            "[capacity]\nvcpu = 8\nmemory_mib = 16384\nstorage_gib = 500\n{}lease_seconds = {LEASE_SECONDS}\nannounce_seconds = {ANNOUNCE_SECONDS}\n",
            prosody.xmpp_section(cloud)
        );
        if i == n - 1 {
            last_start = SystemTime::now();
        }
        brokers.push(TestBroker::start(
            dir.path(),
            cloud,
            &root,
            &BrokerIdentity::Token(token),
            &extra,
        ));
    }

    // (a) Convergence.
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let converged = loop {
        let logs = read_logs(&brokers);
        if let Some(at) = converged_at(&logs, &clouds) {
            break Some(at);
        }
        if Instant::now() > deadline {
            report_no_convergence(&brokers, &clouds, &logs);
            break None;
        }
        tokio::time::sleep(POLL).await;
    };
    let Some(converged) = converged else {
        return Ok(run);
    };
    run.converge = Some(converged.duration_since(last_start).unwrap_or_default());
    run.last_bound = first_bound(&brokers[n - 1].daemon.log_text())
        .map(|at| at.duration_since(last_start).unwrap_or_default());
    let online = peers_online(&brokers[0], &clouds[0]).await?;
    if online != n - 1 {
        eprintln!(
            "  cross-check: {}'s ListPeers lists {online} of {} online after the logs said all",
            clouds[0],
            n - 1
        );
    }

    // (b) Failure detection: kill -9 the second broker.
    tokio::time::sleep(BROKER_SETTLE).await;
    let mut pids = vec![prosody.pid()];
    pids.extend(brokers.iter().map(|b| b.daemon.pid()));
    let before = cpu_ticks(&pids);
    tokio::time::sleep(CPU_WINDOW).await;
    let after = cpu_ticks(&pids);
    if let (Some(before), Some(after)) = (before, after) {
        let per_second = clock_ticks() * CPU_WINDOW.as_secs_f64();
        let cores = |from: u64, to: u64| to.saturating_sub(from) as f64 / per_second;
        run.cpu = Some((
            cores(before[0], after[0]),
            cores(before[1..].iter().sum(), after[1..].iter().sum()),
        ));
    }
    let killed = 1;
    let killed_at = SystemTime::now();
    brokers[killed].daemon.kill();
    if let Some((at, reasons)) = wait_for_leave(&brokers, &clouds, killed, &[], killed_at).await {
        run.detect = Some(at.duration_since(killed_at).unwrap_or_default());
        run.reasons = reasons;
    }
    let mut gone = vec![(clouds[killed].clone(), killed_at)];

    // (b') The lease: a frozen broker keeps its TCP connection, so Prosody
    // sends no unavailable presence for it.
    if n >= 3 {
        let frozen = 2;
        let frozen_at = SystemTime::now();
        brokers[frozen].daemon.pause();
        if let Some((at, reasons)) =
            wait_for_leave(&brokers, &clouds, frozen, &[killed], frozen_at).await
        {
            run.lease_detect = Some(at.duration_since(frozen_at).unwrap_or_default());
            run.lease_reasons = reasons;
        }
        gone.push((clouds[frozen].clone(), frozen_at));
        // Killed on drop; a stopped process dies of SIGKILL as well.
    }

    let spurious = spurious_leaves(&read_logs(&brokers), &gone);
    eprintln!(
        "  raw join {:.1} ms, raw drop {:.1} ms, brokers converge {:.1} ms (bound after {:.1} ms), detect {} ({:?}), frozen {} ({:?}){}{}",
        run.raw_join.as_secs_f64() * 1e3,
        run.raw_drop.as_secs_f64() * 1e3,
        run.converge.unwrap_or_default().as_secs_f64() * 1e3,
        run.last_bound.unwrap_or_default().as_secs_f64() * 1e3,
        run.detect.map_or("-".to_owned(), |d| format!(
            "{:.1} ms",
            d.as_secs_f64() * 1e3
        )),
        run.reasons,
        run.lease_detect.map_or("-".to_owned(), |d| format!(
            "{:.1} ms",
            d.as_secs_f64() * 1e3
        )),
        run.lease_reasons,
        run.cpu.map_or(String::new(), |(prosody, brokers)| format!(
            "; CPU Prosody {prosody:.2}, brokers {brokers:.2} cores"
        )),
        if spurious.is_empty() {
            String::new()
        } else {
            format!("; leaves other than the kill's: {spurious:?}")
        }
    );
    Ok(run)
}

/// Rewrites Prosody's config with `network_settings = { nagle = false }`
/// (TCP_NODELAY on its sockets) and restarts it: same port, same accounts.
fn disable_nagle(prosody: &mut Prosody) -> Result<()> {
    const ANCHOR: &str = "\nc2s_require_encryption = true\n";
    let path = prosody.config_path().to_path_buf();
    let config = std::fs::read_to_string(&path)?;
    // Global settings must come before the first VirtualHost.
    let Some(at) = config.find(ANCHOR) else {
        bail!(
            "no {ANCHOR:?} in {} to put network_settings after",
            path.display()
        );
    };
    let at = at + ANCHOR.len();
    let config = format!(
        "{}network_settings = {{ nagle = false }}\n{}",
        &config[..at],
        &config[at..]
    );
    std::fs::write(&path, config)?;
    prosody.restart();
    Ok(())
}

/// User + system CPU time of each process so far, in clock ticks (None when
/// one of them is gone).
fn cpu_ticks(pids: &[u32]) -> Option<Vec<u64>> {
    pids.iter()
        .map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the command (which may hold spaces): state is the
            // 3rd field, utime the 14th and stime the 15th.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .collect()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// N plain clients with the brokers' accounts (resource `raw`, nick
/// `raw-<cloud>`) join the federation room one by one. Returns the time from
/// the last one's join request, and from the start of its login, until every
/// client has seen the N-1 others; then the time from dropping one client's
/// connection (as a killed process would) until every other has seen it leave.
async fn raw_clients(
    prosody: &Prosody,
    clouds: &[String],
) -> Result<(Duration, Duration, Duration)> {
    let n = clouds.len();
    let ca = prosody.ca_bundle();
    let nick = |cloud: &str| format!("{RAW}-{cloud}");
    let room_prefix = format!("{}/", prosody.room);

    let mut tasks = Vec::with_capacity(n);
    for cloud in &clouds[..n - 1] {
        let (jid, password) = prosody.account(cloud);
        let mut client = RawXmpp::login(prosody.c2s, &jid, &password, RAW, &ca).await?;
        let own = nick(cloud);
        client
            .join_room(&format!("{room_prefix}{own}"))
            .await
            .with_context(|| format!("{own} joins"))?;
        let prefix = room_prefix.clone();
        tasks.push(tokio::spawn(async move {
            let seen = until_seen(&mut client, &prefix, &own, n - 1).await;
            (client, seen)
        }));
    }
    let last = &clouds[n - 1];
    let (jid, password) = prosody.account(last);
    let own = nick(last);
    let room = prosody.room.clone();
    let prefix = room_prefix.clone();
    let c2s = prosody.c2s;
    let last_task = tokio::spawn(async move {
        let login_at = Instant::now();
        let mut client = RawXmpp::login(c2s, &jid, &password, RAW, &ca).await?;
        let join_at = Instant::now();
        client.join_room(&format!("{room}/{own}")).await?;
        let seen = until_seen(&mut client, &prefix, &own, n - 1).await;
        anyhow::Ok((client, seen, login_at, join_at))
    });
    let (last_client, last_seen, login_at, join_at) = last_task.await??;
    let mut clients = Vec::with_capacity(n);
    let mut all_seen = last_seen.context("the last client")?;
    for (task, cloud) in tasks.into_iter().zip(clouds) {
        let (client, seen) = task.await?;
        all_seen = all_seen.max(seen.with_context(|| nick(cloud))?);
        clients.push(client);
    }
    clients.push(last_client);

    // Drop the second client's connection without closing its stream.
    tokio::time::sleep(RAW_SETTLE).await;
    let victim = nick(&clouds[1]);
    let dropped = clients.remove(1);
    let dropped_at = Instant::now();
    drop(dropped);
    let mut tasks = Vec::with_capacity(n - 1);
    for mut client in clients {
        let from = format!("{room_prefix}{victim}");
        tasks.push(tokio::spawn(async move {
            let left = client
                .wait_for(CLIENT_TIMEOUT, |s| {
                    s.starts_with("<presence")
                        && attribute(s, "from").as_deref() == Some(from.as_str())
                        && attribute(s, "type").as_deref() == Some("unavailable")
                })
                .await
                .map(|_| Instant::now());
            (client, left)
        }));
    }
    let mut all_left = dropped_at;
    for task in tasks {
        let (client, left) = task.await?;
        all_left = all_left.max(left.context("waiting for the dropped client to leave")?);
        client.close().await;
    }
    Ok((
        all_seen - join_at,
        all_seen - login_at,
        all_left - dropped_at,
    ))
}

/// Reads presence from the room until `expected` other occupants are
/// present; returns when.
async fn until_seen(
    client: &mut RawXmpp,
    room_prefix: &str,
    own: &str,
    expected: usize,
) -> Result<Instant> {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut present = BTreeSet::new();
    while present.len() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        let stanza = client
            .next_stanza(left)
            .await
            .with_context(|| format!("{own} saw {present:?}"))?;
        if !stanza.starts_with("<presence") {
            continue;
        }
        let Some(nick) = attribute(&stanza, "from")
            .and_then(|from| from.strip_prefix(room_prefix).map(str::to_owned))
        else {
            continue;
        };
        if nick == own {
            continue;
        }
        match attribute(&stanza, "type").as_deref() {
            None => {
                present.insert(nick);
            }
            Some("unavailable") => {
                present.remove(&nick);
            }
            Some(_) => {}
        }
    }
    Ok(Instant::now())
}

/// A change of a broker's peer table, from its log.
#[derive(Debug, Clone)]
struct LogEvent {
    at: SystemTime,
    peer: String,
    /// None: joined; Some(reason): left.
    reason: Option<String>,
}

/// Each broker's peer events, in the order the brokers were started.
fn read_logs(brokers: &[TestBroker]) -> Vec<Vec<LogEvent>> {
    brokers
        .iter()
        .map(|broker| peer_events(&broker.daemon.log_text()))
        .collect()
}

/// Parses `<RFC 3339 time>  INFO …: peer joined peer=<cloud>` and
/// `… peer left peer=<cloud> reason="…"` lines.
fn peer_events(log: &str) -> Vec<LogEvent> {
    log.lines()
        .filter_map(|line| {
            let (rest, joined) = if let Some(i) = line.find("peer joined ") {
                (&line[i + "peer joined ".len()..], true)
            } else if let Some(i) = line.find("peer left ") {
                (&line[i + "peer left ".len()..], false)
            } else {
                return None;
            };
            let at = OffsetDateTime::parse(line.split_whitespace().next()?, &Rfc3339).ok()?;
            let peer = field(rest, "peer")?;
            let reason = if joined {
                None
            } else {
                Some(field(rest, "reason").unwrap_or_default())
            };
            Some(LogEvent {
                at: at.into(),
                peer,
                reason,
            })
        })
        .collect()
}

/// When the broker first logged its XMPP session bound (`XMPP online`).
fn first_bound(log: &str) -> Option<SystemTime> {
    let line = log.lines().find(|l| l.contains(" XMPP online"))?;
    let at = OffsetDateTime::parse(line.split_whitespace().next()?, &Rfc3339).ok()?;
    Some(at.into())
}

/// The value of `key=value` or `key="value with spaces"` in `fields`.
fn field(fields: &str, key: &str) -> Option<String> {
    let start = fields
        .split_whitespace()
        .next()
        .filter(|f| f.starts_with(&format!("{key}=")))
        .map(|_| 0)
        .or_else(|| fields.find(&format!(" {key}=")).map(|i| i + 1))?;
    let value = &fields[start + key.len() + 1..];
    match value.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().map(str::to_owned),
        None => value.split_whitespace().next().map(str::to_owned),
    }
}

/// The first moment at which every broker had all the others online,
/// replaying the brokers' logs in time order.
fn converged_at(logs: &[Vec<LogEvent>], clouds: &[String]) -> Option<SystemTime> {
    let mut events: Vec<(usize, &LogEvent)> = logs
        .iter()
        .enumerate()
        .flat_map(|(i, events)| events.iter().map(move |e| (i, e)))
        .collect();
    events.sort_by_key(|(_, e)| e.at);
    let mut online: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); logs.len()];
    let others = clouds.len() - 1;
    for (i, event) in events {
        if event.peer == clouds[i] || !clouds.contains(&event.peer) {
            continue;
        }
        match event.reason {
            None => online[i].insert(&event.peer),
            Some(_) => online[i].remove(event.peer.as_str()),
        };
        if online.iter().all(|set| set.len() == others) {
            return Some(event.at);
        }
    }
    None
}

/// Leave lines other than those of the brokers `gone` (each since when),
/// counted by reason: flapping.
fn spurious_leaves(
    logs: &[Vec<LogEvent>],
    gone: &[(String, SystemTime)],
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for event in logs.iter().flatten() {
        let Some(reason) = &event.reason else {
            continue;
        };
        if !gone
            .iter()
            .any(|(cloud, since)| event.peer == *cloud && event.at >= *since)
        {
            *counts.entry(reason.clone()).or_default() += 1;
        }
    }
    counts
}

/// Waits until every broker but `victim` and `ignore` has logged `victim`
/// leaving since `since`; returns when the last one did and the reasons
/// given, counted (None after [`DETECT_TIMEOUT`], saying how many did).
async fn wait_for_leave(
    brokers: &[TestBroker],
    clouds: &[String],
    victim: usize,
    ignore: &[usize],
    since: SystemTime,
) -> Option<(SystemTime, BTreeMap<String, usize>)> {
    let deadline = Instant::now() + DETECT_TIMEOUT;
    loop {
        let logs = read_logs(brokers);
        let noticed: Vec<Option<&LogEvent>> = logs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != victim && !ignore.contains(i))
            .map(|(_, events)| {
                events
                    .iter()
                    .find(|e| e.at >= since && e.peer == clouds[victim] && e.reason.is_some())
            })
            .collect();
        if noticed.iter().all(Option::is_some) {
            let mut last = since;
            let mut reasons = BTreeMap::new();
            for event in noticed.into_iter().flatten() {
                last = last.max(event.at);
                let reason = event.reason.clone().unwrap_or_default();
                *reasons.entry(reason).or_default() += 1;
            }
            return Some((last, reasons));
        }
        if Instant::now() > deadline {
            eprintln!(
                "  {} of {} brokers logged {} leaving within {DETECT_TIMEOUT:?}",
                noticed.iter().filter(|e| e.is_some()).count(),
                noticed.len(),
                clouds[victim]
            );
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Says which brokers did not see whom, with their warnings.
fn report_no_convergence(brokers: &[TestBroker], clouds: &[String], logs: &[Vec<LogEvent>]) {
    eprintln!("  no convergence within {CONVERGE_TIMEOUT:?}:");
    for ((broker, cloud), events) in brokers.iter().zip(clouds).zip(logs) {
        let mut online = BTreeSet::new();
        for event in events {
            match event.reason {
                None => online.insert(event.peer.as_str()),
                Some(_) => online.remove(event.peer.as_str()),
            };
        }
        if online.len() + 1 == clouds.len() {
            continue;
        }
        let missing: Vec<&str> = clouds
            .iter()
            .map(String::as_str)
            .filter(|c| c != cloud && !online.contains(c))
            .collect();
        eprintln!("  {cloud} misses {missing:?}; its warnings:");
        let text = broker.daemon.log_text();
        let warnings: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .collect();
        for line in warnings.iter().rev().take(5).rev() {
            eprintln!("    {line}");
        }
    }
}

/// How many peers `cloud`'s broker lists online, asked as its operator.
async fn peers_online(broker: &TestBroker, cloud: &str) -> Result<usize> {
    let tls = client_tls(
        &cloud_id(cloud),
        Some((
            &format!("operator-{cloud}.crt"),
            &format!("operator-{cloud}.key"),
        )),
    );
    let channel = connect(&broker.api, tls)
        .await
        .map_err(anyhow::Error::msg)?;
    let list = BrokerClient::new(channel)
        .list_peers(ListPeersRequest {})
        .await?
        .into_inner();
    Ok(list.peers.iter().filter(|p| p.online).count())
}
