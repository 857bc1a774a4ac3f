//! The NTP server: one thread with a blocking UDP socket, so the receive
//! timestamp is read the moment `recv_from` returns, with no task
//! scheduling in between. Every decision (what to answer, the rate limit)
//! is made by `intercloud_ntp`; this reads the clock, the socket and the
//! stop flag, and counts what it did.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use intercloud_ntp::Timestamp;
use intercloud_ntp::ratelimit::RateLimiter;
use intercloud_ntp::server::Response;
use tracing::{debug, info, warn};

use crate::clock::ClockSource;

/// How often the thread looks at the stop flag when no datagram comes.
const STOP_CHECK: Duration = Duration::from_millis(200);

/// Rate-limit entries idle this long are forgotten.
const IDLE_CLIENT: Duration = Duration::from_secs(600);

/// What the server did, for logs and tests.
#[derive(Debug, Default)]
pub struct NtpCounters {
    /// Replies sent.
    pub replies: AtomicU64,
    /// Kiss-o'-Death RATE sent.
    pub kisses: AtomicU64,
    /// Datagrams dropped without an answer.
    pub dropped: AtomicU64,
}

/// A running server; dropping it does not stop it, [`NtpServer::stop`] does.
#[derive(Debug)]
pub struct NtpServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// What it did so far.
    pub counters: Arc<NtpCounters>,
}

impl NtpServer {
    /// Serves `socket` on a new thread.
    pub fn start(
        socket: UdpSocket,
        clock: ClockSource,
        limiter: RateLimiter,
    ) -> std::io::Result<Self> {
        socket.set_read_timeout(Some(STOP_CHECK))?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(NtpCounters::default());
        let thread = {
            let (stop, counters) = (stop.clone(), counters.clone());
            std::thread::Builder::new()
                .name("ntp-server".into())
                .spawn(move || serve(&socket, clock, limiter, &stop, &counters))?
        };
        Ok(Self {
            stop,
            thread: Some(thread),
            counters,
        })
    }

    /// Stops the thread and waits for it (at most one `STOP_CHECK`).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            warn!("the NTP server thread panicked");
        }
    }
}

fn serve(
    socket: &UdpSocket,
    clock: ClockSource,
    mut limiter: RateLimiter,
    stop: &AtomicBool,
    counters: &NtpCounters,
) {
    if let Ok(addr) = socket.local_addr() {
        let state = clock.state(SystemTime::now());
        info!(%addr, stratum = state.stratum, reference_id = ?state.reference_id, precision = state.precision, "NTP server listening");
    }
    let mut buffer = [0u8; 1024];
    let mut last_sweep = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let (len, peer) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => {
                // ICMP errors from earlier sends surface here; keep serving.
                debug!(error = %e, "NTP receive failed");
                continue;
            }
        };
        let receive = Timestamp::from(SystemTime::now());
        let now = Instant::now();
        let state = clock.state(SystemTime::now());
        let response = state.respond(
            &buffer[..len],
            receive,
            || limiter.check(peer.ip(), now),
            || Timestamp::from(SystemTime::now()),
        );
        match &response {
            Response::Reply(bytes) | Response::KissOfDeath(bytes) => {
                if let Err(e) = socket.send_to(bytes, peer) {
                    debug!(%peer, error = %e, "NTP reply not sent");
                }
                if matches!(response, Response::Reply(_)) {
                    counters.replies.fetch_add(1, Ordering::Relaxed);
                } else {
                    counters.kisses.fetch_add(1, Ordering::Relaxed);
                    debug!(%peer, "NTP client over the rate limit: kiss-o'-death RATE");
                }
            }
            Response::Drop(reason) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                debug!(%peer, len, %reason, "NTP datagram dropped");
            }
        }
        if now.duration_since(last_sweep) > IDLE_CLIENT {
            limiter.forget_idle(now, IDLE_CLIENT);
            last_sweep = now;
        }
    }
    info!(
        replies = counters.replies.load(Ordering::Relaxed),
        kisses = counters.kisses.load(Ordering::Relaxed),
        dropped = counters.dropped.load(Ordering::Relaxed),
        "NTP server stopped"
    );
}
