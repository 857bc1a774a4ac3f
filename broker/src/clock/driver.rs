//! The clock driver: owns the UDP socket to the root's NTP server and reads
//! the clocks; everything else is [`ClockState`]'s. It sends the requests
//! the state asks for (T1 read just before sending, its low bits random),
//! hands over each datagram with T4 read as soon as it is received, logs
//! each notice once and puts the status where the operator API reads it.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::SystemTime;

use intercloud_ntp::Timestamp;
use time::OffsetDateTime;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::state::{ClockSettings, ClockState, ClockStatus, Notice};

/// Larger than any NTP packet we could use (a header is 48 bytes); a
/// longer datagram is cut and then refused as malformed.
const RECEIVE_BUFFER: usize = 1024;

/// Runs the driver until `stopped` completes, handing each new status to
/// `share` (the broker puts it in its core, where `Broker.Status` reads it).
pub async fn run(
    settings: ClockSettings,
    mut share: impl FnMut(ClockStatus),
    stopped: impl Future<Output = ()>,
) {
    info!(
        server = %settings.server,
        poll_seconds = settings.poll.as_secs(),
        "measuring the clock against the root's NTP server"
    );
    let mut state = ClockState::new(settings, Instant::now().into_std());
    let mut socket: Option<UdpSocket> = None;
    let mut buffer = [0u8; RECEIVE_BUFFER];
    tokio::pin!(stopped);
    loop {
        report(&mut state, &mut share);
        let wake = state.poll_timeout().map(Instant::from_std);
        let event = tokio::select! {
            () = &mut stopped => return,
            () = sleep_until(wake) => Wake::Timer,
            received = receive(socket.as_ref(), &mut buffer) => Wake::Datagram(received),
        };
        match event {
            Wake::Timer => {
                let now = Instant::now().into_std();
                state.handle_timeout(now);
                if state.request_due(now) {
                    send_request(&mut state, &mut socket).await;
                }
            }
            Wake::Datagram(Ok(received)) => {
                state.handle_datagram(received.at, &buffer[..received.len], received.t4);
            }
            Wake::Datagram(Err(e)) => {
                // The socket is recreated (and the name resolved again) at the next poll.
                socket = None;
                state.handle_failure(Instant::now().into_std(), io_reason(&e));
            }
        }
    }
}

/// Why the driver woke up.
enum Wake {
    /// [`ClockState::poll_timeout`] came.
    Timer,
    /// The socket gave a datagram, or an error.
    Datagram(io::Result<Received>),
}

/// A datagram in the buffer.
struct Received {
    len: usize,
    /// When it was received (monotonic).
    at: std::time::Instant,
    /// T4.
    t4: Timestamp,
}

async fn receive(socket: Option<&UdpSocket>, buffer: &mut [u8]) -> io::Result<Received> {
    let Some(socket) = socket else {
        return std::future::pending().await;
    };
    let len = socket.recv(buffer).await?;
    let t4 = Timestamp::from(SystemTime::now());
    Ok(Received {
        len,
        at: std::time::Instant::now(),
        t4,
    })
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Sends the request that is due, connecting the socket first if needed.
async fn send_request(state: &mut ClockState, socket: &mut Option<UdpSocket>) {
    if socket.is_none() {
        let settings = state.settings();
        let connected = tokio::time::timeout(settings.timeout, connect(&settings.server)).await;
        match connected {
            Ok(Ok(connected)) => *socket = Some(connected),
            Ok(Err(reason)) => {
                state.handle_failure(Instant::now().into_std(), reason);
                return;
            }
            Err(_) => {
                let reason = format!(
                    "cannot resolve {} within {} ms",
                    settings.server,
                    settings.timeout.as_millis()
                );
                state.handle_failure(Instant::now().into_std(), reason);
                return;
            }
        }
    }
    let Some(udp) = socket.as_ref() else {
        return;
    };
    let precision = state.settings().precision;
    let request = state.poll_request(Instant::now().into_std(), || {
        Timestamp::from(SystemTime::now()).with_random_low_bits(precision, rand::random())
    });
    if let Some(request) = request
        && let Err(e) = udp.send(&request).await
    {
        *socket = None;
        state.handle_failure(Instant::now().into_std(), io_reason(&e));
    }
}

/// A UDP socket connected to `server` (`host:port`), so that only its
/// datagrams reach us and an ICMP refusal comes back as an error.
async fn connect(server: &str) -> Result<UdpSocket, String> {
    let addresses = tokio::net::lookup_host(server)
        .await
        .map_err(|e| format!("cannot resolve {server}: {e}"))?;
    let mut failure = format!("{server} resolves to no address");
    for address in addresses {
        let local: SocketAddr = match address {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = match UdpSocket::bind(local).await {
            Ok(socket) => socket,
            Err(e) => {
                failure = format!("cannot open a UDP socket: {e}");
                continue;
            }
        };
        match socket.connect(address).await {
            Ok(()) => return Ok(socket),
            Err(e) => failure = format!("cannot reach {address}: {e}"),
        }
    }
    Err(failure)
}

fn io_reason(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        _ => error.to_string(),
    }
}

/// Logs the notices and shares the status.
fn report(state: &mut ClockState, share: &mut impl FnMut(ClockStatus)) {
    let server = state.settings().server.clone();
    while let Some(notice) = state.poll_notice() {
        log(&server, notice);
    }
    share(state.status(Instant::now().into_std(), OffsetDateTime::now_utc()));
}

fn log(server: &str, notice: Notice) {
    match notice {
        Notice::Ok { offset, delay } => info!(
            %server,
            offset_ms = millis(offset.as_nanos()),
            delay_ms = millis(i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX)),
            "clock ok: offset to the root within the threshold"
        ),
        Notice::Degraded { offset, max_offset } => warn!(
            %server,
            offset_ms = millis(offset.as_nanos()),
            max_offset_ms = u64::try_from(max_offset.as_millis()).unwrap_or(u64::MAX),
            "clock degraded: offset to the root above the threshold"
        ),
        Notice::Unsynchronised { silent_for, reason } => warn!(
            %server,
            silent_seconds = silent_for.as_secs(),
            reason = reason.as_deref().unwrap_or("no reply"),
            "clock unsynchronised: no valid reply from the root's NTP server"
        ),
        Notice::BackedOff { poll } => warn!(
            %server,
            poll_seconds = poll.as_secs(),
            "kiss-o'-death RATE from the root's NTP server: polling less often"
        ),
        Notice::Silenced { code } => warn!(
            %server,
            %code,
            "kiss-o'-death from the root's NTP server: polling stopped until the broker restarts"
        ),
        Notice::Ignored { reason } => debug!(%server, %reason, "NTP datagram ignored"),
        Notice::NoSample { reason } => debug!(%server, %reason, "NTP exchange gave no sample"),
    }
}

/// Nanoseconds as milliseconds, to the microsecond.
fn millis(nanos: i64) -> f64 {
    (nanos as f64 / 1e3).round() / 1e3
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use intercloud_ntp::SignedDuration;
    use intercloud_ntp::filter::HealthPolicy;
    use intercloud_ntp::packet::ReferenceId;
    use intercloud_ntp::ratelimit::Verdict;
    use intercloud_ntp::server::ServerState;
    use tokio::sync::{oneshot, watch};

    use super::*;
    use crate::clock::ClockHealth;

    /// An NTP server on loopback that answers by the root's rules, its
    /// clock `ahead` of ours.
    async fn answering_server(ahead: SignedDuration) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let address = socket.local_addr().expect("address");
        let clock = move || Timestamp::from(SystemTime::now()).wrapping_add(ahead);
        let state = ServerState::local_clock(
            10,
            -20,
            clock().wrapping_add(SignedDuration::from_secs(-60)),
        )
        .expect("valid");
        tokio::spawn(async move {
            let mut buffer = [0u8; 1024];
            while let Ok((len, peer)) = socket.recv_from(&mut buffer).await {
                let response = state.respond(&buffer[..len], clock(), || Verdict::Allow, clock);
                if let Some(bytes) = response.bytes() {
                    let _ = socket.send_to(bytes, peer).await;
                }
            }
        });
        address
    }

    fn settings(server: SocketAddr) -> ClockSettings {
        ClockSettings {
            server: server.to_string(),
            poll: Duration::from_millis(200),
            max_poll: Duration::from_secs(1),
            timeout: Duration::from_millis(100),
            policy: HealthPolicy {
                max_offset: Duration::from_millis(100),
                max_silence: Duration::from_millis(700),
            },
            precision: -20,
        }
    }

    /// Runs the driver until `until` holds for the status it shares, then
    /// stops it and checks that it stops.
    async fn run_until(
        settings: ClockSettings,
        until: impl FnMut(&ClockStatus) -> bool,
    ) -> ClockStatus {
        let (sender, mut statuses) = watch::channel(ClockStatus::not_configured());
        let (stop, stopped) = oneshot::channel::<()>();
        let driver = tokio::spawn(run(
            settings,
            move |status| {
                sender.send_replace(status);
            },
            async {
                let _ = stopped.await;
            },
        ));
        let status = tokio::time::timeout(Duration::from_secs(10), statuses.wait_for(until))
            .await
            .expect("in time")
            .expect("the driver runs")
            .clone();
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(2), driver)
            .await
            .expect("the driver stops")
            .expect("without panicking");
        status
    }

    #[tokio::test]
    async fn measures_the_offset_to_a_server_over_udp() {
        let server = answering_server(SignedDuration::from_millis(250)).await;
        let status = run_until(settings(server), |s| {
            s.estimate.is_some_and(|e| e.samples >= 3)
        })
        .await;
        assert_eq!(status.health, ClockHealth::Degraded);
        let estimate = status.estimate.expect("an estimate");
        let error = (estimate.offset - SignedDuration::from_millis(250)).abs();
        assert!(error < Duration::from_millis(20), "{}", estimate.offset);
        assert!(
            estimate.delay < Duration::from_millis(50),
            "{:?}",
            estimate.delay
        );
        let root = status.root.expect("the root's clock");
        assert_eq!(
            (root.stratum, root.reference_id),
            (10, ReferenceId::LOCAL_CLOCK)
        );
        assert!(status.last_sync.is_some());
        assert_eq!(status.server, server.to_string());
    }

    #[tokio::test]
    async fn a_server_in_step_is_ok() {
        let server = answering_server(SignedDuration::ZERO).await;
        let status = run_until(settings(server), |s| s.health == ClockHealth::Ok).await;
        assert!(status.estimate.expect("an estimate").offset.abs() < Duration::from_millis(20));
    }

    #[tokio::test]
    async fn a_silent_server_makes_the_clock_unsynchronised() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let server = silent.local_addr().expect("address");
        let status = run_until(settings(server), |s| {
            s.health == ClockHealth::Unsynchronised
        })
        .await;
        assert_eq!(status.last_failure.as_deref(), Some("timeout"));
        assert_eq!(status.estimate, None);
        drop(silent);
    }

    #[tokio::test]
    async fn an_unresolvable_name_is_a_failure_not_a_crash() {
        let mut settings = settings("127.0.0.1:9".parse().expect("address"));
        settings.server = "no-such-host.invalid:7123".to_owned();
        let status = run_until(settings, |s| s.last_failure.is_some()).await;
        assert_eq!(status.health, ClockHealth::Starting);
        let failure = status.last_failure.expect("a failure");
        assert!(failure.contains("no-such-host.invalid:7123"), "{failure}");
    }
}
