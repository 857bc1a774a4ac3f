//! Benchmark cross-cloud VNets (issue 7), on the real kernel, with a root
//! and three brokers (cloud-a, cloud-b, cloud-c), each with its underlay
//! namespace on a test "WAN" bridge ([`Underlay`], as the e2e tests make it).
//!
//! 1. Time to a working VNet: from cloud-a's `CreateVnet` (over the three
//!    clouds), through `AttachVnet` of an instance in cloud-a (at cloud-a's
//!    broker) and of one in cloud-c (at cloud-c's broker), until
//!    `ping -c 1 -W 1 <c's address>` from a's instance namespace first
//!    succeeds (tried every 50 ms, for at most 30 s). Every round uses a new
//!    VNet and starts clean: the previous one's instances were detached, it
//!    was deleted, and no broker has an interface of it left.
//! 2. TCP throughput from a's instance to c's with iperf3 (server `-s -1` in
//!    c's namespace, client `-c -J` in a's; `end.sum_received`), through our
//!    VNet and, as the baseline in the same run, through a VXLAN link built
//!    by hand with `ip` and `bridge` in the same underlay namespaces: the
//!    topology the brokers build (a bridge, a VXLAN device on port 4789
//!    without learning and with the underlay's MTU less 50, a veth into a
//!    namespace of its own, an all-zeros FDB entry per other VTEP and one for
//!    the remote instance's MAC) with another VNI and names the brokers do
//!    not own. The runs alternate, ours first; the figures are medians.
//!
//! `cargo run --release -p intercloud-tests --bin bench-vnet [-- [--rounds N]
//! [--iperf-seconds S] [--iperf-runs R]]` (defaults 10, 10 and 3). Daemons
//! next to this binary (`cargo build --release --bins` first), or
//! `INTERCLOUD_BIN_DIR`. Runs as root, needs
//! `iperf3`. Everything it makes (namespaces, the processes in them) goes
//! when it ends, failed, panicked or interrupted (Ctrl-C, SIGTERM).

use std::collections::BTreeMap;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use intercloud_proto::v1::broker_client::BrokerClient;
use intercloud_proto::v1::{
    AttachRequest, Binding, CreateInstanceRequest, CreateVnetRequest, DeleteVnetRequest,
    DetachRequest, FederationState, StatusRequest, Vnet,
};
use intercloud_tests::underlay::{self, Underlay, ip, ping};
use intercloud_tests::{
    BrokerIdentity, RootOptions, TestBroker, TestRoot, client_tls, cloud_id, connect,
};
use tonic::transport::Channel;

const CLOUDS: [&str; 3] = ["cloud-a", "cloud-b", "cloud-c"];
/// The brokers' own default (`network.reconcile_seconds`): the figures are
/// those of a broker as shipped; a VNet must not wait for a period.
const RECONCILE_SECONDS: u64 = 10;
/// The underlay's MTU (the veths `Underlay` makes, the brokers' default
/// `network.mtu`) and VXLAN's overhead over IPv4.
const UNDERLAY_MTU: u16 = 1500;
const VXLAN_OVERHEAD: u16 = 50;
const VXLAN_PORT: u16 = 4789;
/// Outside the root's range (below): the hand-built link never meets a VNet.
const HAND_VNI: u32 = 9999;
const VNI_RANGE: &str = "4096-4200";
/// The networks: every round's VNet (one at a time), and the hand-built link.
const VNET_CIDR: &str = "10.70.0.0/24";
const HAND_PREFIX: &str = "10.71.0";
/// How long a setup or cleanup step may take.
const WAIT: Duration = Duration::from_secs(30);
/// How long the first ping may take, and how often it is tried.
const FIRST_PING_BOUND: Duration = Duration::from_secs(30);
const PING_EVERY: Duration = Duration::from_millis(50);
const IPERF_PORT: u16 = 5201;

/// What to run.
#[derive(Debug)]
struct Options {
    rounds: usize,
    iperf_seconds: u32,
    iperf_runs: usize,
}

impl Options {
    fn parse() -> Result<Self> {
        let mut options = Self {
            rounds: 10,
            iperf_seconds: 10,
            iperf_runs: 3,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            let number = |what: &str| -> Result<usize> {
                match value.parse::<usize>() {
                    Ok(n) if n >= 1 => Ok(n),
                    _ => bail!("{flag} {value:?}: {what} must be a whole number, at least 1"),
                }
            };
            match flag.as_str() {
                "--rounds" => options.rounds = number("the rounds")?,
                "--iperf-seconds" => {
                    options.iperf_seconds = u32::try_from(number("the seconds")?)
                        .with_context(|| format!("--iperf-seconds {value}: too many"))?;
                }
                "--iperf-runs" => options.iperf_runs = number("the runs")?,
                _ => bail!(
                    "unknown argument {flag:?}; usage: bench-vnet [--rounds N] [--iperf-seconds S] [--iperf-runs R]"
                ),
            }
        }
        Ok(options)
    }
}

/// Fails, saying what is missing, unless this runs as root with every tool
/// at hand.
fn preflight() -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?");
    ensure!(
        euid == "0",
        "needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to make network namespaces, veths, bridges \
         and VXLAN devices; it runs as uid {euid}: run it with sudo"
    );
    for (tool, arg, package) in [
        ("iperf3", "--version", "iperf3"),
        ("ip", "-V", "iproute2"),
        ("bridge", "-V", "iproute2"),
        ("ss", "-V", "iproute2"),
        ("ping", "-V", "iputils-ping"),
        ("timeout", "--version", "coreutils"),
    ] {
        let found = std::process::Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        ensure!(
            found,
            "needs `{tool}`: apt-get install -y {package} (scripts/lib/packages.sh lists it)"
        );
    }
    Ok(())
}

/// A root and a broker per cloud, each with its underlay namespace.
struct Clouds {
    root: TestRoot,
    brokers: BTreeMap<&'static str, TestBroker>,
    // After the daemons: the brokers are killed before their namespaces go.
    underlay: Underlay,
    // Last, held for its drop: the daemons' logs stay until they are gone.
    _dir: tempfile::TempDir,
}

impl Clouds {
    async fn start() -> Result<Self> {
        let underlay = Underlay::new("v", 70, &CLOUDS);
        let dir = tempfile::tempdir().context("tempdir")?;
        let root = TestRoot::start(
            dir.path(),
            &RootOptions {
                extra: format!("[networks]\nvni_range = \"{VNI_RANGE}\"\n"),
                ..RootOptions::default()
            },
        );
        let mut brokers = BTreeMap::new();
        for cloud in CLOUDS {
            let broker = TestBroker::start(
                dir.path(),
                cloud,
                &root,
                &BrokerIdentity::DevCert,
                &format!(
                    "{}mtu = {UNDERLAY_MTU}\n",
                    underlay.network_section(cloud, RECONCILE_SECONDS)
                ),
            );
            brokers.insert(cloud, broker);
        }
        let clouds = Self {
            root,
            brokers,
            underlay,
            _dir: dir,
        };
        // Federated, and its VTEP known to the root: the first round must
        // not pay for a broker's start.
        for cloud in CLOUDS {
            let client = clouds.client(cloud).await?;
            poll(&format!("{cloud} federated"), WAIT, || {
                let mut client = client.clone();
                async move {
                    let status = client.status(StatusRequest {}).await.ok()?.into_inner();
                    (status.state == FederationState::Federated as i32).then_some(())
                }
            })
            .await?;
            poll(&format!("{cloud} declared its VTEP"), WAIT, || async {
                clouds.brokers[cloud]
                    .daemon
                    .log_text()
                    .contains("VTEP declared to the root")
                    .then_some(())
            })
            .await?;
        }
        Ok(clouds)
    }

    async fn client(&self, cloud: &str) -> Result<BrokerClient<Channel>> {
        let tls = client_tls(
            &cloud_id(cloud),
            Some((
                &format!("operator-{cloud}.crt"),
                &format!("operator-{cloud}.key"),
            )),
        );
        let channel = connect(&self.brokers[cloud].api, tls)
            .await
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("connecting to {cloud}'s broker"))?;
        Ok(BrokerClient::new(channel))
    }

    /// Whether any broker still has an interface of `vni` in its underlay.
    fn has_links_of(&self, vni: u32) -> bool {
        CLOUDS.iter().any(|cloud| {
            self.underlay
                .links(cloud)
                .iter()
                .any(|(name, _)| of_vni(name, vni))
        })
    }

    /// The end of the daemons' logs, for a failure's message.
    fn logs_tail(&self) -> String {
        let daemons = std::iter::once(("root", &self.root.daemon))
            .chain(self.brokers.iter().map(|(cloud, b)| (*cloud, &b.daemon)));
        let mut text = String::new();
        for (name, daemon) in daemons {
            let log = daemon.log_text();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            text.push_str(&format!("--- {name} (last lines)\n{tail}\n"));
        }
        text
    }
}

/// Polls `check` every 50 ms until it gives `Some`, for at most `bound`.
async fn poll<T, F, Fut>(what: &str, bound: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + bound;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {bound:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether `name` is one of the brokers' interfaces (`icx`, `icb`, `icv`)
/// of `vni`.
fn of_vni(name: &str, vni: u32) -> bool {
    ["icx", "icb", "icv"].iter().any(|prefix| {
        name.strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with(&format!("{vni:06x}")))
    })
}

/// The namespace of `instance` of `cloud`, as the brokers name it.
fn instance_ns(cloud: &str, instance: &str) -> String {
    format!("ic-{cloud}.{instance}")
}

async fn create_vnet(client: &mut BrokerClient<Channel>, name: &str) -> Result<Vnet> {
    Ok(client
        .create_vnet(CreateVnetRequest {
            name: name.into(),
            cidr: VNET_CIDR.into(),
            clouds: CLOUDS.iter().map(|c| (*c).to_owned()).collect(),
            domain: "prod".into(),
            bandwidth: String::new(),
        })
        .await
        .with_context(|| format!("CreateVnet {name}"))?
        .into_inner())
}

async fn attach(
    client: &mut BrokerClient<Channel>,
    tenant: &str,
    vnet: &str,
    instance: &str,
) -> Result<Binding> {
    Ok(client
        .attach_vnet(AttachRequest {
            tenant: tenant.into(),
            vnet: vnet.into(),
            instance: instance.into(),
            ip: String::new(),
        })
        .await
        .with_context(|| format!("AttachVnet {instance} to {vnet}"))?
        .into_inner())
}

async fn detach(
    client: &mut BrokerClient<Channel>,
    tenant: &str,
    vnet: &str,
    instance: &str,
) -> Result<()> {
    client
        .detach_vnet(DetachRequest {
            tenant: tenant.into(),
            vnet: vnet.into(),
            instance: instance.into(),
        })
        .await
        .with_context(|| format!("DetachVnet {instance} from {vnet}"))?;
    Ok(())
}

/// Pings `dst` once (`-c 1 -W 1`) from `ns` every [`PING_EVERY`] until it
/// answers; returns how many tries it took.
async fn first_ping(ns: &str, dst: &str) -> Result<u32> {
    let deadline = Instant::now() + FIRST_PING_BOUND;
    let mut tries = 0;
    loop {
        tries += 1;
        let run = ping(ns, dst, 1, 1).await;
        if run.ok {
            return Ok(tries);
        }
        if Instant::now() >= deadline {
            bail!(
                "{dst} did not answer a ping from {ns} within {FIRST_PING_BOUND:?} ({tries} tries); last:\n{}",
                run.output
            );
        }
        tokio::time::sleep(PING_EVERY).await;
    }
}

/// The instances the rounds attach: one in cloud-a, one in cloud-c.
struct Pair {
    a: BrokerClient<Channel>,
    c: BrokerClient<Channel>,
    web: String,
    db: String,
}

/// One round's figures.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// From `CreateVnet` to the first answered ping.
    first_ping: Duration,
    /// Of which the three calls (`CreateVnet`, two `AttachVnet`).
    calls: Duration,
    /// Pings tried.
    tries: u32,
}

/// Creates the VNet `name`, attaches the pair, and pings until it answers.
async fn round(pair: &mut Pair, name: &str) -> Result<(Round, Vnet, Binding)> {
    let started = Instant::now();
    let vnet = create_vnet(&mut pair.a, name).await?;
    attach(&mut pair.a, "", name, &pair.web).await?;
    let db = attach(&mut pair.c, "cloud-a", name, &pair.db).await?;
    let calls = started.elapsed();
    let tries = first_ping(&instance_ns("cloud-a", &pair.web), &db.ip).await?;
    let round = Round {
        first_ping: started.elapsed(),
        calls,
        tries,
    };
    Ok((round, vnet, db))
}

/// Detaches the pair, deletes the VNet, and waits until no broker has an
/// interface of it and the instances' namespaces are gone.
async fn tear_down(clouds: &Clouds, pair: &mut Pair, vnet: &Vnet) -> Result<()> {
    detach(&mut pair.c, "cloud-a", &vnet.name, &pair.db).await?;
    detach(&mut pair.a, "", &vnet.name, &pair.web).await?;
    pair.a
        .delete_vnet(DeleteVnetRequest {
            name: vnet.name.clone(),
        })
        .await
        .with_context(|| format!("DeleteVnet {}", vnet.name))?;
    let namespaces = [
        instance_ns("cloud-a", &pair.web),
        instance_ns("cloud-c", &pair.db),
    ];
    poll(
        &format!("the brokers removing VNI {}", vnet.vni),
        WAIT,
        || async {
            let present = underlay::namespaces();
            (!clouds.has_links_of(vnet.vni) && !namespaces.iter().any(|ns| present.contains(ns)))
                .then_some(())
        },
    )
    .await
}

/// A VXLAN link between cloud-a and cloud-c made with `ip` and `bridge` in
/// their underlay namespaces, the brokers' topology with names they do not
/// own (`h…`, never `ic[xbv]…`) so that they leave it alone. Its instance
/// namespaces are named `ic-hand.<…-tag>`, so that the [`Underlay`] removes
/// them on drop; its links go with the underlay namespaces.
struct HandBuilt {
    /// cloud-a's side: its namespace and address.
    a_ns: String,
    /// cloud-c's side.
    c_ns: String,
    c_ip: String,
    /// The VXLAN device, the same name on both sides.
    vxlan: String,
}

impl HandBuilt {
    fn build(underlay: &Underlay) -> Self {
        let hex = format!("{HAND_VNI:06x}");
        let (bridge, vxlan, veth) = (format!("hb{hex}"), format!("hx{hex}"), format!("hv{hex}"));
        let mtu = (UNDERLAY_MTU - VXLAN_OVERHEAD).to_string();
        let side = |cloud: &str, n: u8| {
            (
                format!(
                    "ic-hand.{}",
                    underlay.instance(&cloud.replace("cloud-", ""))
                ),
                format!("{HAND_PREFIX}.{n}"),
                format!("02:00:00:71:00:{n:02x}"),
            )
        };
        let (a_ns, a_ip, a_mac) = side("cloud-a", 2);
        let (c_ns, c_ip, c_mac) = side("cloud-c", 3);
        let ends = [
            ("cloud-a", &a_ns, &a_ip, &a_mac, ("cloud-c", &c_mac)),
            ("cloud-c", &c_ns, &c_ip, &c_mac, ("cloud-a", &a_mac)),
        ];
        for (cloud, ns, address, mac, (remote, remote_mac)) in ends {
            let ul = underlay.namespace(cloud);
            let vtep = underlay.vtep(cloud).to_string();
            ip(&["-n", ul, "link", "add", &bridge, "type", "bridge"]);
            ip(&["-n", ul, "link", "set", &bridge, "up"]);
            ip(&[
                "-n",
                ul,
                "link",
                "add",
                &vxlan,
                "type",
                "vxlan",
                "id",
                &HAND_VNI.to_string(),
                "local",
                &vtep,
                "dstport",
                &VXLAN_PORT.to_string(),
                "nolearning",
            ]);
            ip(&["-n", ul, "link", "set", &vxlan, "mtu", &mtu]);
            ip(&["-n", ul, "link", "set", &vxlan, "master", &bridge, "up"]);
            ip(&["netns", "add", ns]);
            ip(&[
                "-n", ul, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ]);
            ip(&["-n", ns, "link", "set", "eth0", "address", mac, "mtu", &mtu]);
            ip(&[
                "-n",
                ns,
                "address",
                "add",
                &format!("{address}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", ns, "link", "set", "eth0", "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ul, "link", "set", &veth, "mtu", &mtu]);
            ip(&["-n", ul, "link", "set", &veth, "master", &bridge, "up"]);
            // Head-end replication to every other VTEP of the VNet, and the
            // remote instance's MAC at its VTEP: the brokers' FDB.
            for other in CLOUDS.iter().filter(|c| **c != cloud) {
                let dst = underlay.vtep(other).to_string();
                bridge_fdb_append(ul, "00:00:00:00:00:00", &vxlan, &dst);
            }
            let dst = underlay.vtep(remote).to_string();
            bridge_fdb_append(ul, remote_mac, &vxlan, &dst);
        }
        Self {
            a_ns,
            c_ns,
            c_ip,
            vxlan,
        }
    }
}

/// `bridge -n NS fdb append MAC dev DEV dst DST`.
fn bridge_fdb_append(ns: &str, mac: &str, dev: &str, dst: &str) {
    let args = [
        "-n",
        ns,
        "fdb",
        "append",
        mac,
        "dev",
        dev,
        "dst",
        dst,
        "self",
        "permanent",
    ];
    let out = std::process::Command::new("bridge")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("bridge {}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "bridge {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The settings of VXLAN device `dev` in `ns` as `ip -d` shows them, less
/// what must differ (its VNI): what the two links are compared on.
fn vxlan_settings(ns: &str, dev: &str) -> String {
    let line = ip(&["-n", ns, "-d", "-o", "link", "show", "dev", dev]);
    let mtu = line
        .split_whitespace()
        .skip_while(|w| *w != "mtu")
        .nth(1)
        .unwrap_or("?")
        .to_owned();
    let mut words = line
        .split_whitespace()
        .skip_while(|w| *w != "vxlan")
        .skip(1)
        .take_while(|w| *w != "bridge_slave")
        // `-o` shows the line breaks of `ip -d` as backslashes.
        .filter(|w| *w != "\\");
    let mut settings = vec![format!("mtu {mtu}")];
    while let Some(word) = words.next() {
        if word == "id" {
            words.next();
            continue;
        }
        settings.push(word.to_owned());
    }
    settings.join(" ")
}

/// `ip netns exec NS ARGS…` (which becomes the program: killing the child
/// kills it), killed if still running after `bound` or when dropped.
async fn in_namespace(ns: &str, bound: Duration, args: &[&str]) -> Result<std::process::Output> {
    let child = tokio::process::Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(bound, child)
        .await
        .with_context(|| format!("{args:?} in {ns} still running after {bound:?}: killed"))?
        .with_context(|| format!("running {args:?} in {ns}"))
}

/// Bits per second from `client_ns` to an iperf3 server in `server_ns` at
/// `server_ip`, for `seconds`, as the receiver counted them. Should either
/// end fail, the other is killed.
async fn iperf(server_ns: &str, client_ns: &str, server_ip: &str, seconds: u32) -> Result<f64> {
    let bound = Duration::from_secs(u64::from(seconds) + 30);
    let port = IPERF_PORT.to_string();
    let server_args = ["iperf3", "-s", "-1", "-p", &port];
    let server = in_namespace(server_ns, bound, &server_args);
    let client = async {
        let filter = format!("sport = :{port}");
        poll(
            &format!("iperf3 listening in {server_ns}"),
            WAIT,
            || async {
                let listening = in_namespace(
                    server_ns,
                    Duration::from_secs(5),
                    &["ss", "-H", "-l", "-t", "-n", &filter],
                )
                .await
                .ok()?;
                (!listening.stdout.is_empty()).then_some(())
            },
        )
        .await?;
        let client = in_namespace(
            client_ns,
            bound,
            &[
                "iperf3",
                "-c",
                server_ip,
                "-p",
                &port,
                "-t",
                &seconds.to_string(),
                "-J",
            ],
        )
        .await?;
        ensure!(
            client.status.success(),
            "the iperf3 client in {client_ns} failed:\n{}{}",
            String::from_utf8_lossy(&client.stdout),
            String::from_utf8_lossy(&client.stderr)
        );
        Ok(client)
    };
    let (served, client) = tokio::try_join!(server, client)?;
    ensure!(
        served.status.success(),
        "the iperf3 server in {server_ns} failed:\n{}{}",
        String::from_utf8_lossy(&served.stdout),
        String::from_utf8_lossy(&served.stderr)
    );
    let text = String::from_utf8_lossy(&client.stdout);
    let report: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("iperf3's JSON: {text}"))?;
    report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .with_context(|| format!("no end.sum_received.bits_per_second in {text}"))
}

/// The median, the middle one (the upper of the two middle ones).
fn median<T: Copy + PartialOrd>(values: &[T]) -> Option<T> {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    sorted.get(sorted.len() / 2).copied()
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn gbits(bps: f64) -> String {
    format!("{:.2} Gbit/s", bps / 1e9)
}

async fn run(options: &Options) -> Result<()> {
    eprintln!("starting a root and three brokers on an underlay of namespaces…");
    let clouds = Clouds::start().await?;
    let u = &clouds.underlay;
    let mut pair = Pair {
        a: clouds.client("cloud-a").await?,
        c: clouds.client("cloud-c").await?,
        web: u.instance("web"),
        db: u.instance("db"),
    };
    for (client, name) in [(&mut pair.a, &pair.web), (&mut pair.c, &pair.db)] {
        client
            .create_instance(CreateInstanceRequest {
                name: name.clone(),
                vcpu: 1,
                memory_mib: 64,
                disk_bytes: 1024 * 1024,
            })
            .await
            .with_context(|| format!("CreateInstance {name}"))?;
    }
    println!(
        "bench-vnet: root + 3 brokers ({}), underlay MTU {UNDERLAY_MTU} (overlay {}), VXLAN port {VXLAN_PORT}, reconcile every {RECONCILE_SECONDS} s",
        intercloud_tests::bin("intercloud-broker").display(),
        UNDERLAY_MTU - VXLAN_OVERHEAD
    );

    // 1. Create, attach, first ping; clean up; again.
    let mut rounds = Vec::with_capacity(options.rounds);
    for n in 1..=options.rounds {
        let name = format!("bench{n}");
        let (figures, vnet, _) = round(&mut pair, &name)
            .await
            .with_context(|| format!("round {n}\n{}", clouds.logs_tail()))?;
        println!(
            "  round {n:>2}: first ping {} after CreateVnet (the three calls {}; {} ping{}) VNI {}",
            secs(figures.first_ping),
            secs(figures.calls),
            figures.tries,
            if figures.tries == 1 { "" } else { "s" },
            vnet.vni
        );
        rounds.push(figures);
        tear_down(&clouds, &mut pair, &vnet)
            .await
            .with_context(|| format!("cleaning up after round {n}\n{}", clouds.logs_tail()))?;
    }

    // 2. Throughput: our VNet, then the hand-built link, in turn.
    let (_, vnet, db) = round(&mut pair, "throughput")
        .await
        .with_context(|| format!("the throughput VNet\n{}", clouds.logs_tail()))?;
    let (web_ns, db_ns) = (
        instance_ns("cloud-a", &pair.web),
        instance_ns("cloud-c", &pair.db),
    );
    let hand = HandBuilt::build(u);
    first_ping(&hand.a_ns, &hand.c_ip)
        .await
        .context("the hand-built link")?;
    let ours_settings = vxlan_settings(u.namespace("cloud-a"), &format!("icx{:06x}", vnet.vni));
    let hand_settings = vxlan_settings(u.namespace("cloud-a"), &hand.vxlan);
    let (mut ours, mut baseline) = (Vec::new(), Vec::new());
    for n in 1..=options.iperf_runs {
        let bps = iperf(&db_ns, &web_ns, &db.ip, options.iperf_seconds)
            .await
            .context("iperf3 through our VNet")?;
        println!("  iperf3 run {n}: our VNet     {}", gbits(bps));
        ours.push(bps);
        let bps = iperf(&hand.c_ns, &hand.a_ns, &hand.c_ip, options.iperf_seconds)
            .await
            .context("iperf3 through the hand-built VXLAN")?;
        println!("  iperf3 run {n}: hand-built   {}", gbits(bps));
        baseline.push(bps);
    }

    let times: Vec<Duration> = rounds.iter().map(|r| r.first_ping).collect();
    let calls: Vec<Duration> = rounds.iter().map(|r| r.calls).collect();
    let each = |values: &[Duration]| {
        values
            .iter()
            .map(|d| format!("{:.3}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let zero = Duration::ZERO;
    println!();
    println!(
        "3-cloud VNet, CreateVnet + AttachVnet (cloud-a) + AttachVnet (cloud-c) → first ping a → c ({} rounds, ping -c 1 -W 1 every {} ms):",
        rounds.len(),
        PING_EVERY.as_millis()
    );
    println!(
        "  median {}   min {}   max {}   (each: {} s)",
        secs(median(&times).unwrap_or(zero)),
        secs(times.iter().copied().min().unwrap_or(zero)),
        secs(times.iter().copied().max().unwrap_or(zero)),
        each(&times)
    );
    println!(
        "  of which the three calls: median {}   (each: {} s)",
        secs(median(&calls).unwrap_or(zero)),
        each(&calls)
    );
    let (ours_median, hand_median) = (
        median(&ours).unwrap_or(f64::NAN),
        median(&baseline).unwrap_or(f64::NAN),
    );
    let list = |values: &[f64]| {
        values
            .iter()
            .map(|v| format!("{:.2}", v / 1e9))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "TCP a → c, iperf3 -t {} ({} runs each, alternating, medians of end.sum_received):",
        options.iperf_seconds, options.iperf_runs
    );
    println!(
        "  our VNet (VNI {}):          {}   (each: {} Gbit/s)",
        vnet.vni,
        gbits(ours_median),
        list(&ours)
    );
    println!(
        "  hand-built VXLAN (VNI {HAND_VNI}): {}   (each: {} Gbit/s)",
        gbits(hand_median),
        list(&baseline)
    );
    println!(
        "  ratio ours / hand-built: {:.3} (target ≥ 0.95)",
        ours_median / hand_median
    );
    if ours_settings == hand_settings {
        println!("  both VXLAN devices: {ours_settings}");
    } else {
        println!(
            "  the VXLAN devices differ:\n    ours: {ours_settings}\n    hand: {hand_settings}"
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("bench-vnet: {e:#}");
            return ExitCode::from(64);
        }
    };
    if let Err(e) = preflight() {
        eprintln!("bench-vnet: {e:#}");
        return ExitCode::FAILURE;
    }
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(e) => {
                eprintln!("bench-vnet: cannot listen for SIGTERM: {e}");
                return ExitCode::FAILURE;
            }
        };
    // Returning drops `run`'s future, and with it the daemons and the
    // underlay: whatever ends the run, its namespaces go.
    tokio::select! {
        outcome = run(&options) => match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench-vnet failed: {e:#}");
                ExitCode::FAILURE
            }
        },
        _ = tokio::signal::ctrl_c() => {
            eprintln!("bench-vnet: interrupted; cleaning up");
            ExitCode::from(130)
        }
        _ = terminate.recv() => {
            eprintln!("bench-vnet: terminated; cleaning up");
            ExitCode::from(143)
        }
    }
}
