//! The root as the federation's time source: real NTP clients (ntpdate,
//! sntp, chronyd -Q) accept it; bad datagrams get no answer and leave it
//! serving; a flooding client gets a kiss-o'-death and then silence while
//! others are still served; `Time.Now` over gRPC.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, SystemTime};

use intercloud_ntp::Timestamp;
use intercloud_ntp::client;
use intercloud_ntp::packet::{self, LeapIndicator, Mode, ReferenceId, Version};
use intercloud_proto::v1::NowRequest;
use intercloud_proto::v1::time_client::TimeClient;
use intercloud_tests::{RootOptions, TestRoot, client_tls, connect, root_id};

/// A loopback address of its own for this test (port 123, which ntpdate and
/// sntp cannot change): 127.<pid>.<n>.1, so parallel tests and runs do not
/// meet. Binding port 123 needs root (or
/// net.ipv4.ip_unprivileged_port_start ≤ 123), as scripts/test runs.
fn port_123(n: u8) -> String {
    let pid = std::process::id();
    format!(
        "127.{}.{}.{n}:123",
        1 + (pid % 250),
        1 + ((pid / 250) % 250)
    )
}

fn root_serving_ntp_on(dir: &std::path::Path, ntp: &str, extra: &str) -> TestRoot {
    TestRoot::start(
        dir,
        &RootOptions {
            ntp: ntp.into(),
            extra: extra.into(),
            ..RootOptions::default()
        },
    )
}

fn run(program: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (scripts/test installs it): {e}"));
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The offset (seconds) in an ntpdig line such as
/// `2026-11-22 05:08:57.948228 (+0000) +0.000028 +/- 0.000094 127.77.0.1 s10 no-leap`.
fn ntpdig_offset(output: &str, server: &str) -> f64 {
    let line = output
        .lines()
        .find(|l| l.contains(server))
        .unwrap_or_else(|| panic!("no line for {server}: {output}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(fields.contains(&"s10"), "stratum 10 expected: {line}");
    assert!(fields.contains(&"no-leap"), "{line}");
    fields[3]
        .parse()
        .unwrap_or_else(|e| panic!("offset in {line}: {e}"))
}

#[test]
fn ntpdate_sntp_and_chronyd_accept_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let address = port_123(1);
    let root = root_serving_ntp_on(dir.path(), &address, "");
    assert_eq!(root.ntp, address);
    let host = address.trim_end_matches(":123");

    let (code, out) = run("ntpdate", &["-q", host]);
    assert_eq!(code, 0, "{out}");
    assert!(ntpdig_offset(&out, host).abs() < 0.05, "{out}");
    let (code, out) = run("sntp", &[host]);
    assert_eq!(code, 0, "{out}");
    assert!(ntpdig_offset(&out, host).abs() < 0.05, "{out}");

    // chronyd measures without touching the system clock (-Q), with its own
    // pid file and no command port.
    let pidfile = format!("pidfile {}", dir.path().join("chronyd.pid").display());
    let (code, out) = run(
        "chronyd",
        &[
            "-Q",
            "-u",
            "root",
            "-t",
            "20",
            &format!("server {host} iburst maxsamples 4"),
            &pidfile,
            "cmdport 0",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("System clock wrong by"))
        .unwrap_or_else(|| panic!("chronyd did not accept the root: {out}"));
    let seconds: f64 = line
        .split("wrong by ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {line}"));
    assert!(seconds.abs() < 0.05, "{line}");
    assert!(root.daemon.log_text().contains("NTP server listening"));
}

/// Sends `datagram` from a socket bound to `from` and returns the answer, if
/// any arrives within `wait`.
fn exchange(from: &str, to: &str, datagram: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind(from).expect("bind client");
    socket.set_read_timeout(Some(wait)).expect("timeout");
    socket.send_to(datagram, to).expect("send");
    let mut buffer = [0u8; 512];
    match socket.recv_from(&mut buffer) {
        Ok((len, _)) => Some(buffer[..len].to_vec()),
        Err(_) => None,
    }
}

fn valid_request(version: Version) -> ([u8; 48], Timestamp) {
    let t1 = Timestamp::from(SystemTime::now());
    let mut request = client::request(t1, 6);
    let mut header = packet::parse(&request).expect("parse");
    header.version = version;
    request = packet::serialize(&header);
    (request, t1)
}

#[test]
fn bad_datagrams_get_no_answer_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_serving_ntp_on(dir.path(), "127.0.0.1:0", "");
    let server = root.ntp.clone();
    let quiet = Duration::from_millis(300);

    let (valid, _) = valid_request(Version::V4);
    let with = |f: &dyn Fn(&mut packet::Packet)| {
        let mut p = packet::parse(&valid).expect("parse");
        f(&mut p);
        packet::serialize(&p).to_vec()
    };
    let mut version_0 = valid.to_vec();
    version_0[0] &= 0b1100_0111; // version bits 0
    let mut version_5 = valid.to_vec();
    version_5[0] = (version_5[0] & 0b1100_0111) | (5 << 3);
    let mut control = valid.to_vec();
    control[0] = (control[0] & 0b1111_1000) | 6;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated to 12 bytes", valid[..12].to_vec()),
        ("truncated to 47 bytes", valid[..47].to_vec()),
        ("all zero", vec![0; 48]),
        ("all ones", vec![0xff; 48]),
        ("version 0", version_0),
        ("version 5", version_5),
        ("mode 6 (control)", control),
        ("mode 4 (a server reply)", with(&|p| p.mode = Mode::Server)),
        ("mode 5 (broadcast)", with(&|p| p.mode = Mode::Broadcast)),
        (
            "mode 1 (symmetric active)",
            with(&|p| p.mode = Mode::SymmetricActive),
        ),
        (
            "zero transmit timestamp",
            with(&|p| p.transmit_time = Timestamp::ZERO),
        ),
    ];
    for (name, datagram) in &cases {
        assert_eq!(
            exchange("127.0.0.1:0", &server, datagram, quiet),
            None,
            "{name} must get no answer"
        );
    }

    // Still serving, and the reply is what RFC 5905 says it should be.
    for version in [Version::V3, Version::V4] {
        let (request, t1) = valid_request(version);
        let reply = exchange("127.0.0.1:0", &server, &request, Duration::from_secs(2))
            .expect("a valid request is answered");
        let t4 = Timestamp::from(SystemTime::now());
        let p = packet::parse(&reply).expect("reply parses");
        assert_eq!(p.version, version, "the version is echoed");
        assert_eq!(p.mode, Mode::Server);
        assert_eq!(p.leap, LeapIndicator::NoWarning);
        assert_eq!(p.stratum, 10);
        assert_eq!(p.reference_id, ReferenceId::LOCAL_CLOCK);
        assert_eq!(p.origin_time, t1, "origin = our transmit time");
        assert_eq!(p.poll, 6, "the poll is echoed");
        assert!(p.precision < 0, "{}", p.precision);
        assert!(p.receive_time.duration_since(t1).as_secs_f64() > -0.01);
        assert!(p.transmit_time.duration_since(p.receive_time).as_secs_f64() >= 0.0);
        let sample = client::check_reply(&reply, t1, t4, -20).expect("a good reply");
        assert!(sample.offset.as_secs_f64().abs() < 0.05, "{sample:?}");
    }
    let log = root.daemon.log_text();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_flooding_client_is_kissed_then_ignored_while_others_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_serving_ntp_on(
        dir.path(),
        "127.0.0.1:0",
        "[ntp]\nrate_interval_ms = 1000\nrate_burst = 8\n",
    );
    let server: SocketAddr = root.ntp.parse().expect("address");

    // 200 requests as fast as possible from 127.0.0.2.
    let flood = UdpSocket::bind("127.0.0.2:0").expect("bind flooder");
    flood
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    for _ in 0..200 {
        let (request, _) = valid_request(Version::V4);
        flood.send_to(&request, server).expect("send");
    }
    let (mut replies, mut kisses) = (0, 0);
    let mut buffer = [0u8; 512];
    while let Ok((len, _)) = flood.recv_from(&mut buffer) {
        let p = packet::parse(&buffer[..len]).expect("answers parse");
        if p.stratum == 0 {
            assert_eq!(
                p.reference_id,
                ReferenceId::RATE,
                "a kiss-o'-death says RATE"
            );
            assert_eq!(p.leap, LeapIndicator::Unsynchronised);
            kisses += 1;
        } else {
            replies += 1;
        }
    }
    assert!(
        (8..=10).contains(&replies),
        "the burst is answered: {replies}"
    );
    assert_eq!(kisses, 1, "one kiss-o'-death, then silence");

    // Others are served meanwhile, and so is the flooder once it slows down.
    for from in ["127.0.0.3:0", "127.0.0.4:0"] {
        let (request, t1) = valid_request(Version::V4);
        let reply = exchange(from, &root.ntp, &request, Duration::from_secs(2)).expect("served");
        let t4 = Timestamp::from(SystemTime::now());
        client::check_reply(&reply, t1, t4, -20).expect("a real reply");
    }
    std::thread::sleep(Duration::from_millis(2100));
    let (request, _) = valid_request(Version::V4);
    let reply = exchange("127.0.0.2:0", &root.ntp, &request, Duration::from_secs(2))
        .expect("served again after slowing down");
    assert_ne!(packet::parse(&reply).expect("parse").stratum, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn time_now_over_grpc_gives_the_roots_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_serving_ntp_on(
        dir.path(),
        "127.0.0.1:0",
        "[ntp]\nupstream_stratum = 2\nupstream_refid = \"192.0.2.1\"\n",
    );
    let tls = client_tls(
        &root_id(),
        Some(("operator-cloud-a.crt", "operator-cloud-a.key")),
    );
    let mut time = TimeClient::new(connect(&root.api, tls).await.expect("connect"));
    let t0 = SystemTime::now();
    let now = time.now(NowRequest {}).await.expect("Now").into_inner();
    let t1 = SystemTime::now();
    let at = now.time.expect("time");
    let server = SystemTime::UNIX_EPOCH
        + Duration::new(
            u64::try_from(at.seconds).expect("after 1970"),
            u32::try_from(at.nanos).expect("nanos"),
        );
    let sample = client::cristian(t0, server, t1).expect("cristian");
    assert!(sample.offset.as_secs_f64().abs() < 0.05, "{sample:?}");
    assert_eq!((now.stratum, now.reference_id.as_str()), (3, "192.0.2.1"));
    assert!(now.synchronised);
    assert!(now.precision_seconds > 0.0 && now.precision_seconds < 0.01);
}

async fn clock_of(
    broker: &intercloud_tests::TestBroker,
    cloud: &str,
) -> Option<intercloud_proto::v1::ClockStatus> {
    crate::presence::operator(broker, cloud)
        .await
        .status(intercloud_proto::v1::StatusRequest {})
        .await
        .ok()?
        .into_inner()
        .clock
}

/// Every broker reports its clock's health; when the root stops answering
/// NTP the broker says `unsynchronised` (and warns once), and `ok` again
/// when the root is back. The CLI shows both, and `intercloudctl time`
/// measures the offset over gRPC.
#[tokio::test(flavor = "multi_thread")]
async fn brokers_report_clock_health_and_notice_the_root_going_away() {
    use intercloud_tests::{
        BrokerIdentity, TestBroker, eventually, intercloudctl, write_cli_config,
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let mut root = root_serving_ntp_on(dir.path(), "127.0.0.1:0", "");
    let clock = format!(
        "[clock]\nntp_server = \"{}\"\npoll_seconds = 1\ntimeout_ms = 300\nunsynchronised_after_seconds = 3\n",
        root.ntp
    );
    let broker = TestBroker::start(
        dir.path(),
        "cloud-a",
        &root,
        &BrokerIdentity::DevCert,
        &clock,
    );
    let ok = eventually("clock ok", Duration::from_secs(20), || async {
        clock_of(&broker, "cloud-a")
            .await
            .filter(|c| c.health == "ok")
    })
    .await;
    assert!(ok.offset_ms.abs() < 50.0, "{ok:?}");
    assert!(ok.delay_ms >= 0.0 && ok.delay_ms < 50.0, "{ok:?}");
    assert!(ok.samples >= 1 && ok.last_sync.is_some(), "{ok:?}");
    assert_eq!(
        (ok.stratum, ok.reference_id.as_str(), ok.server.as_str()),
        (10, "LOCL", root.ntp.as_str())
    );

    let cli = write_cli_config(dir.path(), &root, &[("cloud-a", &broker)]);
    let (code, out, err) = intercloudctl(&cli, &["--context", "cloud-a", "status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("Clock:") && l.contains("ok, offset")),
        "{out}"
    );
    let (code, out, err) = intercloudctl(
        &cli,
        &[
            "--context",
            "cloud-a",
            "-o",
            "json",
            "time",
            "--samples",
            "3",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(
        json["offset_ms"].as_f64().is_some_and(|o| o.abs() < 50.0),
        "{json}"
    );
    assert_eq!(json["stratum"], 10);
    assert_eq!(json["samples"], 3);

    // The root goes away: unsynchronised after the configured silence.
    root.daemon.kill();
    let lost = eventually("clock unsynchronised", Duration::from_secs(20), || async {
        clock_of(&broker, "cloud-a")
            .await
            .filter(|c| c.health == "unsynchronised")
    })
    .await;
    assert!(lost.detail.contains("no valid reply"), "{lost:?}");
    broker
        .daemon
        .wait_for_log("clock unsynchronised", Duration::from_secs(5));
    let (_, out, _) = intercloudctl(&cli, &["--context", "cloud-a", "status"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("Clock:") && l.contains("unsynchronised")),
        "{out}"
    );

    // And back.
    root.restart_after_kill(dir.path());
    eventually("clock ok again", Duration::from_secs(30), || async {
        clock_of(&broker, "cloud-a")
            .await
            .filter(|c| c.health == "ok")
    })
    .await;
    broker
        .daemon
        .wait_for_log("clock ok", Duration::from_secs(5));
    let log = broker.daemon.log_text();
    assert_eq!(
        log.matches("clock unsynchronised").count(),
        1,
        "one warning per change:\n{log}"
    );
}
