//! Per-client rate limiting for the server, and when to send a
//! Kiss-o'-Death "RATE" (RFC 5905 §7.4), without clocks of its own: `now`
//! is an argument.
//!
//! Each client has a token bucket of `burst` requests refilled at one per
//! `interval`, kept as a single "theoretical arrival time" (the generic cell
//! rate algorithm): a request conforms if the schedule is no more than
//! `(burst − 1) × interval` ahead of now, and each conforming request
//! pushes the schedule one interval further. Integer arithmetic on
//! `Instant`s, no floats, no timers.
//!
//! A client over its limit gets one Kiss-o'-Death per `interval`, then
//! silence. A KoD is no bigger than the request, and sending at most one
//! per interval per client means a flood with a spoofed source cannot turn
//! the server into a reflector aimed at that source.
//!
//! The table is bounded by `max_clients`: a new client beyond it evicts the
//! one seen least recently, so a flood from spoofed sources costs a bounded
//! amount of memory (and what it evicts are clients idle the longest, whose
//! buckets are most likely full anyway). Both lookups are O(log n) or
//! better, so the flood cannot make eviction slow either.
//!
//! Clients are keyed by IPv4 address, and by /64 prefix for IPv6 (one host
//! or LAN normally has a whole /64, and could otherwise rotate through it to
//! escape the limit); IPv4-mapped IPv6 addresses count as their IPv4
//! address.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// The limits. The defaults are chrony's `ratelimit` defaults: one request
/// per 8 s on average (interval 3, in log2 seconds), bursts of 8 (enough for
/// a client's `iburst` start-up volley).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// The average interval a client must keep between requests; also the
    /// minimum interval between two Kiss-o'-Death packets to one client.
    pub interval: Duration,
    /// How many requests a client that has been quiet may send at once.
    pub burst: u32,
    /// How many clients are remembered.
    pub max_clients: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(8),
            burst: 8,
            max_clients: 4096,
        }
    }
}

/// A rate-limit configuration that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// The interval is zero: nothing would ever be limited.
    #[error("rate-limit interval is zero; it must be positive (e.g. 8 s)")]
    ZeroInterval,
    /// The burst is zero: every request would be refused.
    #[error("rate-limit burst is 0; it must be at least 1 (e.g. 8)")]
    ZeroBurst,
    /// The table would hold no client.
    #[error("rate-limit table size is 0; it must hold at least 1 client (e.g. 4096)")]
    ZeroClients,
}

/// What to do with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Within the limit: answer.
    Allow,
    /// Over the limit, first time this interval: send a Kiss-o'-Death "RATE".
    KissOfDeath,
    /// Over the limit and already kissed: send nothing.
    Drop,
}

/// One client's bucket.
#[derive(Clone, Copy, Debug)]
struct Client {
    /// When the bucket would be full again if no more requests came
    /// (plus one interval): the GCRA theoretical arrival time.
    schedule: Instant,
    /// When this client was last sent a Kiss-o'-Death.
    last_kiss: Option<Instant>,
    /// Its key in the recency index.
    seen: (Instant, u64),
}

/// The per-client table.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    clients: HashMap<IpAddr, Client>,
    /// (last seen, tie-breaker) → client, oldest first.
    by_recency: BTreeMap<(Instant, u64), IpAddr>,
    next_tie_breaker: u64,
}

impl RateLimiter {
    /// An empty table with these limits.
    pub fn new(config: RateLimitConfig) -> Result<Self, RateLimitError> {
        if config.interval.is_zero() {
            return Err(RateLimitError::ZeroInterval);
        }
        if config.burst == 0 {
            return Err(RateLimitError::ZeroBurst);
        }
        if config.max_clients == 0 {
            return Err(RateLimitError::ZeroClients);
        }
        Ok(Self {
            config,
            clients: HashMap::new(),
            by_recency: BTreeMap::new(),
            next_tie_breaker: 0,
        })
    }

    /// The limits in force.
    pub fn config(&self) -> RateLimitConfig {
        self.config
    }

    /// Records a request from `source` at `now` and says what to do with it.
    /// `now` should not go backwards; if it does, nothing panics and the
    /// client is simply judged against its schedule.
    pub fn check(&mut self, source: IpAddr, now: Instant) -> Verdict {
        let key = client_key(source);
        let seen = (now, self.next_tie_breaker);
        self.next_tie_breaker = self.next_tie_breaker.wrapping_add(1);
        let client = match self.clients.get_mut(&key) {
            Some(client) => {
                self.by_recency.remove(&client.seen);
                client
            }
            None => {
                if self.clients.len() >= self.config.max_clients {
                    self.evict_least_recent();
                }
                self.clients.entry(key).or_insert(Client {
                    schedule: now,
                    last_kiss: None,
                    seen,
                })
            }
        };
        client.seen = seen;
        self.by_recency.insert(seen, key);
        judge(client, &self.config, now)
    }

    /// Forgets clients not seen since `now − idle`; their buckets are full
    /// by then if `idle ≥ burst × interval`, so forgetting changes nothing
    /// but memory. Returns how many were forgotten.
    pub fn forget_idle(&mut self, now: Instant, idle: Duration) -> usize {
        let Some(cutoff) = now.checked_sub(idle) else {
            return 0;
        };
        let mut forgotten = 0;
        while let Some(entry) = self.by_recency.first_entry() {
            if entry.key().0 >= cutoff {
                break;
            }
            let key = entry.remove();
            self.clients.remove(&key);
            forgotten += 1;
        }
        forgotten
    }

    /// How many clients are remembered.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    fn evict_least_recent(&mut self) {
        if let Some((_, key)) = self.by_recency.pop_first() {
            self.clients.remove(&key);
        }
    }
}

fn judge(client: &mut Client, config: &RateLimitConfig, now: Instant) -> Verdict {
    let tolerance = config.interval.saturating_mul(config.burst - 1);
    let ahead = client.schedule.saturating_duration_since(now);
    if ahead <= tolerance {
        let from = client.schedule.max(now);
        // An Instant too far in the future to add to cannot happen in
        // practice; keeping the schedule is the non-panicking fallback.
        client.schedule = from.checked_add(config.interval).unwrap_or(from);
        return Verdict::Allow;
    }
    let may_kiss = client
        .last_kiss
        .is_none_or(|kissed| now.saturating_duration_since(kissed) >= config.interval);
    if may_kiss {
        client.last_kiss = Some(now);
        Verdict::KissOfDeath
    } else {
        Verdict::Drop
    }
}

/// The identity a request is counted against: the IPv4 address, or the /64
/// of an IPv6 address.
pub fn client_key(source: IpAddr) -> IpAddr {
    match source {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    fn limiter(interval_secs: u64, burst: u32, max_clients: usize) -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            interval: Duration::from_secs(interval_secs),
            burst,
            max_clients,
        })
        .expect("a valid configuration")
    }

    #[test]
    fn a_burst_passes_then_one_kiss_then_silence() {
        let mut limiter = limiter(8, 4, 16);
        let t0 = Instant::now();
        for i in 0..4 {
            assert_eq!(
                limiter.check(A, t0),
                Verdict::Allow,
                "request {i} of the burst"
            );
        }
        assert_eq!(limiter.check(A, t0), Verdict::KissOfDeath);
        for _ in 0..100 {
            assert_eq!(limiter.check(A, t0 + Duration::from_secs(1)), Verdict::Drop);
        }
        // Another client is unaffected.
        assert_eq!(limiter.check(B, t0), Verdict::Allow);
    }

    #[test]
    fn the_bucket_refills_one_request_per_interval() {
        let mut limiter = limiter(8, 2, 16);
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        assert_eq!(limiter.check(A, at(0)), Verdict::Allow);
        assert_eq!(limiter.check(A, at(0)), Verdict::Allow);
        assert_eq!(limiter.check(A, at(0)), Verdict::KissOfDeath);
        assert_eq!(limiter.check(A, at(7)), Verdict::Drop, "not refilled yet");
        assert_eq!(limiter.check(A, at(8)), Verdict::Allow, "one token back");
        assert_eq!(
            limiter.check(A, at(8)),
            Verdict::KissOfDeath,
            "8 s since the last kiss"
        );
        assert_eq!(limiter.check(A, at(9)), Verdict::Drop);
        // A client keeping exactly to the interval is never limited.
        for n in 3..50 {
            assert_eq!(limiter.check(A, at(8 * n)), Verdict::Allow, "poll {n}");
        }
        // After a long silence the whole burst is available again, no more.
        let later = at(10_000);
        assert_eq!(limiter.check(A, later), Verdict::Allow);
        assert_eq!(limiter.check(A, later), Verdict::Allow);
        assert_eq!(limiter.check(A, later), Verdict::KissOfDeath);
    }

    #[test]
    fn at_most_one_kiss_per_interval_under_a_flood() {
        let mut limiter = limiter(8, 1, 16);
        let t0 = Instant::now();
        let mut kisses = 0;
        // 100 requests a second for 80 s.
        for ms in (0..80_000).step_by(10) {
            if limiter.check(A, t0 + Duration::from_millis(ms)) == Verdict::KissOfDeath {
                kisses += 1;
            }
        }
        assert!(kisses <= 10, "{kisses} kisses in 80 s at an 8 s interval");
        assert!(kisses >= 9, "{kisses}: the flooder is still told");
    }

    #[test]
    fn the_table_is_bounded_and_evicts_the_least_recently_seen() {
        let mut limiter = limiter(8, 1, 3);
        let t0 = Instant::now();
        let client = |n: u8| IpAddr::V4(Ipv4Addr::new(198, 51, 100, n));
        for n in 1..=3 {
            assert_eq!(limiter.check(client(n), t0), Verdict::Allow);
        }
        // Client 1 is seen again (limited), so client 2 is now the oldest.
        assert_eq!(
            limiter.check(client(1), t0 + Duration::from_secs(1)),
            Verdict::KissOfDeath
        );
        assert_eq!(
            limiter.check(client(4), t0 + Duration::from_secs(2)),
            Verdict::Allow
        );
        assert_eq!(limiter.len(), 3);
        // Client 1 was kept: still limited. Client 2 was forgotten: fresh.
        assert_eq!(
            limiter.check(client(1), t0 + Duration::from_secs(3)),
            Verdict::Drop
        );
        assert_eq!(
            limiter.check(client(2), t0 + Duration::from_secs(3)),
            Verdict::Allow
        );
        assert_eq!(limiter.len(), 3);
        // A spoofed flood of new sources never grows the table.
        for n in 0..=255 {
            limiter.check(
                IpAddr::V4(Ipv4Addr::new(203, 0, 113, n)),
                t0 + Duration::from_secs(4),
            );
        }
        assert_eq!(limiter.len(), 3);
        assert_eq!(limiter.by_recency.len(), 3);
    }

    #[test]
    fn forgets_idle_clients() {
        let mut limiter = limiter(8, 1, 16);
        let t0 = Instant::now();
        limiter.check(A, t0);
        limiter.check(B, t0 + Duration::from_secs(100));
        assert_eq!(
            limiter.forget_idle(t0 + Duration::from_secs(120), Duration::from_secs(60)),
            1
        );
        assert_eq!(limiter.len(), 1);
        assert_eq!(limiter.forget_idle(t0, Duration::from_secs(u64::MAX)), 0);
        assert!(!limiter.is_empty());
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("an address");
        let other: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("an address");
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().expect("an address");
        assert_eq!(client_key(one), client_key(other));
        assert_ne!(client_key(one), client_key(elsewhere));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("an address");
        assert_eq!(client_key(mapped), A);

        let mut limiter = limiter(8, 1, 16);
        let t0 = Instant::now();
        assert_eq!(limiter.check(one, t0), Verdict::Allow);
        assert_eq!(limiter.check(other, t0), Verdict::KissOfDeath, "same /64");
        assert_eq!(limiter.check(elsewhere, t0), Verdict::Allow);
    }

    #[test]
    fn time_going_backwards_does_not_panic() {
        let mut limiter = limiter(8, 2, 16);
        let t0 = Instant::now() + Duration::from_secs(3600);
        assert_eq!(limiter.check(A, t0), Verdict::Allow);
        assert_eq!(
            limiter.check(A, t0 - Duration::from_secs(1000)),
            Verdict::KissOfDeath
        );
        assert_eq!(
            limiter.check(A, t0 - Duration::from_secs(2000)),
            Verdict::Drop
        );
    }

    #[test]
    fn refuses_unworkable_configurations() {
        let base = RateLimitConfig::default();
        assert_eq!(base.interval, Duration::from_secs(8));
        assert_eq!(
            RateLimiter::new(RateLimitConfig {
                interval: Duration::ZERO,
                ..base
            })
            .err(),
            Some(RateLimitError::ZeroInterval)
        );
        assert_eq!(
            RateLimiter::new(RateLimitConfig { burst: 0, ..base }).err(),
            Some(RateLimitError::ZeroBurst)
        );
        assert_eq!(
            RateLimiter::new(RateLimitConfig {
                max_clients: 0,
                ..base
            })
            .err(),
            Some(RateLimitError::ZeroClients)
        );
        let huge = RateLimitConfig {
            interval: Duration::MAX,
            burst: u32::MAX,
            max_clients: 1,
        };
        let mut limiter = RateLimiter::new(huge).expect("valid, if odd");
        let t0 = Instant::now();
        assert_eq!(limiter.check(A, t0), Verdict::Allow);
        assert_eq!(
            limiter.check(A, t0),
            Verdict::Allow,
            "saturating, not panicking"
        );
    }
}
