//! The clock's measurement as pure state: when to send the next NTP
//! request, what a datagram means, the filter of good samples, the health
//! verdict, what is worth a log line and what operators see. No I/O and no
//! clock reads: the driver in [`super::driver`] passes `now` (monotonic),
//! the NTP timestamps it read and the datagrams it received; it sends what
//! [`ClockState::poll_request`] returns and logs what
//! [`ClockState::poll_notice`] gives. The protocol itself (the request, the
//! checks a reply must pass, the on-wire maths, the filter and the verdict)
//! is `intercloud_ntp`'s.
//!
//! Rules:
//! - one request every poll interval, the first at once; its reply is
//!   awaited until the timeout, never past the next poll;
//! - a datagram that is not a reply to the request outstanding (malformed,
//!   not from a server, or an origin timestamp other than our T1: stale,
//!   duplicate or spoofed) is ignored, and the request stays outstanding;
//! - a genuine reply without a usable time (the server unsynchronised, bad
//!   header values, a Kiss-o'-Death) ends the exchange without a sample; its
//!   reason is what the status shows while no sample comes;
//! - Kiss-o'-Death RATE doubles the poll interval, up to a cap, for good;
//!   DENY and RSTR stop polling (RFC 5905 §7.4: the client MUST);
//! - when the clock becomes unsynchronised (no valid sample for
//!   `unsynchronised_after`), the filter is emptied: samples that old say
//!   nothing about the clock now, and the filter would otherwise keep
//!   preferring the lowest-delay one of them to every fresh sample;
//! - each change of the verdict's kind is one notice, so one log line.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use intercloud_ntp::SignedDuration;
use intercloud_ntp::client::{ReplyError, check_reply, request};
use intercloud_ntp::filter::{ClockFilter, FilterSample, Health, HealthPolicy, HealthWatch};
use intercloud_ntp::packet::{HEADER_LEN, KissCode, ReferenceId};
use intercloud_ntp::timestamp::Timestamp;
use time::OffsetDateTime;

use crate::config::ClockConfig;

/// The longest poll interval a Kiss-o'-Death RATE backs off to: 1024 s,
/// chrony's default `maxpoll` (2^10 s), unless `clock.poll_seconds` is
/// longer already.
pub const MAX_BACKOFF_POLL: Duration = Duration::from_secs(1024);

/// `HealthPolicy::assess` counts silence strictly longer than the limit:
/// wake up this much after the limit to see the verdict change.
const SILENCE_MARGIN: Duration = Duration::from_millis(1);

/// What the state machine needs to know, from `[clock]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockSettings {
    /// The root's NTP server, `host:port`, for messages.
    pub server: String,
    /// The configured poll interval.
    pub poll: Duration,
    /// The longest a Kiss-o'-Death RATE backs off to.
    pub max_poll: Duration,
    /// How long a request waits for its reply (at most `poll`).
    pub timeout: Duration,
    /// When the clock is degraded or unsynchronised.
    pub policy: HealthPolicy,
    /// Our clock's precision, log2 seconds: the floor of the delay and the
    /// bits of T1 that the driver randomises.
    pub precision: i8,
}

impl ClockSettings {
    /// The settings, if `[clock] ntp_server` is configured.
    pub fn from_config(config: &ClockConfig) -> Option<Self> {
        let server = config.ntp_server.clone()?;
        let poll = config.poll();
        Some(Self {
            server,
            poll,
            max_poll: MAX_BACKOFF_POLL.max(poll),
            timeout: config.timeout().min(poll),
            policy: HealthPolicy {
                max_offset: config.max_offset(),
                max_silence: config.unsynchronised_after(),
            },
            // Timestamps are read in user space after a trip through the
            // runtime: about a microsecond, as the root's server assumes.
            precision: intercloud_ntp::server::DEFAULT_PRECISION,
        })
    }
}

/// Something worth a log line, given once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The clock became ok (from starting, degraded or unsynchronised).
    Ok {
        /// The estimated offset, root minus local.
        offset: SignedDuration,
        /// Its sample's round-trip delay.
        delay: Duration,
    },
    /// The clock became degraded: the offset is above the threshold.
    Degraded {
        /// The estimated offset, root minus local.
        offset: SignedDuration,
        /// The threshold.
        max_offset: Duration,
    },
    /// The clock became unsynchronised: no valid sample for too long.
    Unsynchronised {
        /// How long since the last valid sample (or since the start).
        silent_for: Duration,
        /// Why the last exchange gave no sample, if we know.
        reason: Option<String>,
    },
    /// A Kiss-o'-Death RATE: the poll interval is now `poll`.
    BackedOff {
        /// The new poll interval.
        poll: Duration,
    },
    /// A Kiss-o'-Death DENY or RSTR: no more requests.
    Silenced {
        /// The kiss code.
        code: KissCode,
    },
    /// A datagram that is not a reply to our request (debug).
    Ignored {
        /// Why.
        reason: String,
    },
    /// An exchange that gave no sample: timeout, I/O failure, a reply
    /// without a usable time (debug).
    NoSample {
        /// Why.
        reason: String,
    },
}

/// The clock's health, in the words of `ClockStatus.health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockHealth {
    /// No `[clock] ntp_server`.
    NotConfigured,
    /// No valid sample yet.
    Starting,
    /// Recent samples, offset within the threshold.
    Ok,
    /// Recent samples, offset above the threshold.
    Degraded,
    /// No valid sample for `unsynchronised_after`.
    Unsynchronised,
}

impl ClockHealth {
    /// Human words for the health.
    pub fn words(self) -> &'static str {
        match self {
            Self::NotConfigured => "not configured",
            Self::Starting => "starting",
            Self::Ok => "ok",
            Self::Degraded => "degraded",
            Self::Unsynchronised => "unsynchronised",
        }
    }
}

/// The filter's estimate, as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockEstimate {
    /// Root minus local (RFC 5905 θ; positive: the local clock is behind).
    pub offset: SignedDuration,
    /// The round-trip delay of the sample in force.
    pub delay: Duration,
    /// The filter's jitter.
    pub jitter: Duration,
    /// Samples in the filter.
    pub samples: u32,
}

/// What the root said about its own clock in its last valid reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootClock {
    /// Its stratum, 1 to 15.
    pub stratum: u8,
    /// Its reference id ("LOCL", or its upstream's).
    pub reference_id: ReferenceId,
}

/// What operators see of the clock (`Broker.Status`'s `clock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockStatus {
    /// The root's NTP server; empty when not configured.
    pub server: String,
    /// The verdict.
    pub health: ClockHealth,
    /// The current estimate; `None` before the first sample and while
    /// unsynchronised.
    pub estimate: Option<ClockEstimate>,
    /// When the sample in force was taken (the last valid one while there
    /// is none in force).
    pub last_sync: Option<OffsetDateTime>,
    /// The root's clock, from its last valid reply.
    pub root: Option<RootClock>,
    /// Why the last exchange gave no sample (cleared by a valid one).
    pub last_failure: Option<String>,
    /// Since when no valid sample came, when unsynchronised.
    pub silent_since: Option<OffsetDateTime>,
    /// The degraded threshold.
    pub max_offset: Duration,
    /// The poll interval when a Kiss-o'-Death RATE raised it.
    pub backed_off_poll: Option<Duration>,
    /// The kiss code that stopped polling (DENY, RSTR).
    pub silenced: Option<KissCode>,
}

impl ClockStatus {
    /// The status of a broker without `[clock] ntp_server`.
    pub fn not_configured() -> Self {
        Self {
            server: String::new(),
            health: ClockHealth::NotConfigured,
            estimate: None,
            last_sync: None,
            root: None,
            last_failure: None,
            silent_since: None,
            max_offset: Duration::ZERO,
            backed_off_poll: None,
            silenced: None,
        }
    }

    /// The status of a configured clock before the driver has run.
    pub fn starting(server: String) -> Self {
        Self {
            server,
            health: ClockHealth::Starting,
            ..Self::not_configured()
        }
    }

    /// One sentence saying why the health is what it is, e.g. `offset
    /// +212.400 ms above the 100 ms threshold` or `no valid reply for 31 s:
    /// timeout`. `now` counts the silence.
    pub fn detail(&self, now: OffsetDateTime) -> String {
        let threshold = self.max_offset.as_millis();
        let offset = self.estimate.map(|e| e.offset).unwrap_or_default();
        let mut detail = match self.health {
            ClockHealth::NotConfigured => {
                return "no [clock] ntp_server in the broker's config".to_owned();
            }
            ClockHealth::Starting => match &self.last_failure {
                None => "waiting for the first reply".to_owned(),
                Some(reason) => format!("no valid reply yet: {reason}"),
            },
            ClockHealth::Ok => {
                format!("offset {} within the {threshold} ms threshold", ms(offset))
            }
            ClockHealth::Degraded => {
                format!("offset {} above the {threshold} ms threshold", ms(offset))
            }
            ClockHealth::Unsynchronised => {
                let seconds = self
                    .silent_since
                    .map_or(0, |since| (now - since).whole_seconds().max(0));
                match &self.last_failure {
                    None => format!("no valid reply for {seconds} s"),
                    Some(reason) => format!("no valid reply for {seconds} s: {reason}"),
                }
            }
        };
        if self.silenced.is_some() {
            detail.push_str("; polling stopped until the broker restarts");
        } else if let Some(poll) = self.backed_off_poll {
            detail.push_str(&format!(
                "; polling every {} s after a kiss-o'-death RATE",
                poll.as_secs()
            ));
        }
        detail
    }
}

/// A signed offset in milliseconds: `+0.042 ms`.
fn ms(offset: SignedDuration) -> String {
    format!("{:+.3} ms", offset.as_nanos() as f64 / 1e6)
}

/// The request awaiting its reply.
#[derive(Debug, Clone, Copy)]
struct Outstanding {
    /// T1, which the reply must echo.
    transmit: Timestamp,
    /// When it was sent.
    sent: Instant,
    /// When we stop waiting.
    deadline: Instant,
}

/// The measurement of the local clock against one NTP server.
#[derive(Debug)]
pub struct ClockState {
    settings: ClockSettings,
    started: Instant,
    /// The poll interval in force (raised by Kiss-o'-Death RATE).
    poll: Duration,
    /// When the next request is due; `None` once silenced.
    next_poll: Option<Instant>,
    outstanding: Option<Outstanding>,
    filter: ClockFilter,
    last_valid: Option<Instant>,
    root: Option<RootClock>,
    last_failure: Option<String>,
    silenced: Option<KissCode>,
    health: Health,
    watch: HealthWatch,
    notices: VecDeque<Notice>,
}

impl ClockState {
    /// A measurement starting at `now`; the first request is due at once.
    pub fn new(settings: ClockSettings, now: Instant) -> Self {
        let mut watch = HealthWatch::new();
        // The first verdict is no news.
        watch.observe(Health::Starting);
        Self {
            poll: settings.poll,
            settings,
            started: now,
            next_poll: Some(now),
            outstanding: None,
            filter: ClockFilter::new(),
            last_valid: None,
            root: None,
            last_failure: None,
            silenced: None,
            health: Health::Starting,
            watch,
            notices: VecDeque::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &ClockSettings {
        &self.settings
    }

    /// The poll interval in force.
    pub fn poll_interval(&self) -> Duration {
        self.poll
    }

    /// Whether a request is due at `now` (the driver then makes sure it has
    /// a socket before asking for the request, so that T1 is read just
    /// before sending).
    pub fn request_due(&self, now: Instant) -> bool {
        self.next_poll.is_some_and(|at| now >= at)
    }

    /// The request to send now, if one is due. `transmit` reads the clock
    /// for T1 (with its low bits randomised); it is called only if a request
    /// is due, as late as possible. A request still outstanding is given up.
    pub fn poll_request(
        &mut self,
        now: Instant,
        transmit: impl FnOnce() -> Timestamp,
    ) -> Option<[u8; HEADER_LEN]> {
        if !self.request_due(now) {
            return None;
        }
        if self.outstanding.take().is_some() {
            self.no_sample("timeout".to_owned());
        }
        let t1 = transmit();
        self.outstanding = Some(Outstanding {
            transmit: t1,
            sent: now,
            deadline: now + self.settings.timeout,
        });
        self.next_poll = Some(now + self.poll);
        Some(request(t1, log2_seconds(self.poll)))
    }

    /// A datagram received at `now`, T4 being `received`.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8], received: Timestamp) {
        let Some(outstanding) = self.outstanding else {
            self.notices.push_back(Notice::Ignored {
                reason: "no request is outstanding: a late or duplicate reply".to_owned(),
            });
            return;
        };
        match check_reply(
            datagram,
            outstanding.transmit,
            received,
            self.settings.precision,
        ) {
            Ok(sample) => {
                self.outstanding = None;
                self.filter.add(FilterSample::from_ntp(&sample, now));
                self.last_valid = Some(now);
                self.root = Some(RootClock {
                    stratum: sample.stratum,
                    reference_id: sample.reference_id,
                });
                self.last_failure = None;
            }
            // Not (provably) a reply to our request: keep waiting for it.
            Err(
                e @ (ReplyError::Malformed(_)
                | ReplyError::NotAServerReply { .. }
                | ReplyError::OriginMismatch { .. }),
            ) => {
                self.notices.push_back(Notice::Ignored {
                    reason: e.to_string(),
                });
                return;
            }
            Err(e @ ReplyError::KissOfDeath(code)) => {
                self.outstanding = None;
                self.last_failure = Some(e.to_string());
                if code == KissCode::Rate {
                    self.back_off(outstanding.sent, e.to_string());
                } else if code.demands_silence() {
                    self.next_poll = None;
                    self.silenced = Some(code);
                    self.notices.push_back(Notice::Silenced { code });
                } else {
                    self.notices.push_back(Notice::NoSample {
                        reason: e.to_string(),
                    });
                }
            }
            Err(e) => {
                self.outstanding = None;
                self.no_sample(e.to_string());
            }
        }
        self.reassess(now);
    }

    /// The exchange due or outstanding failed at `now` for `reason` (no
    /// address, socket errors). The next request is one poll interval away.
    pub fn handle_failure(&mut self, now: Instant, reason: String) {
        self.outstanding = None;
        if self.request_due(now) {
            self.next_poll = Some(now + self.poll);
        }
        self.no_sample(reason);
        self.reassess(now);
    }

    /// Time passed: gives up a request whose reply is overdue and
    /// re-assesses the health. Call it at [`Self::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outstanding.is_some_and(|o| now >= o.deadline) {
            self.outstanding = None;
            self.no_sample("timeout".to_owned());
        }
        self.reassess(now);
    }

    /// When to call [`Self::handle_timeout`] (and look for a request) next:
    /// the next poll, the reply's deadline, or the moment the silence
    /// would make the clock unsynchronised.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let silence = match self.health {
            Health::Unsynchronised { .. } => None,
            _ => Some(
                self.last_valid.unwrap_or(self.started)
                    + self.settings.policy.max_silence
                    + SILENCE_MARGIN,
            ),
        };
        [
            self.next_poll,
            self.outstanding.map(|o| o.deadline),
            silence,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next thing worth logging.
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// What operators see at `now`, whose wall-clock time is `wall_now`.
    pub fn status(&self, now: Instant, wall_now: OffsetDateTime) -> ClockStatus {
        let wall = |at: Instant| {
            let ago = time::Duration::try_from(now.saturating_duration_since(at))
                .unwrap_or(time::Duration::MAX);
            wall_now.checked_sub(ago)
        };
        let estimate = self.filter.estimate(now);
        ClockStatus {
            server: self.settings.server.clone(),
            health: match self.health {
                Health::Starting => ClockHealth::Starting,
                Health::Ok => ClockHealth::Ok,
                Health::Degraded { .. } => ClockHealth::Degraded,
                Health::Unsynchronised { .. } => ClockHealth::Unsynchronised,
            },
            estimate: estimate.map(|e| ClockEstimate {
                offset: e.offset,
                delay: e.delay,
                jitter: e.jitter,
                samples: u32::try_from(e.samples).unwrap_or(u32::MAX),
            }),
            last_sync: estimate.map(|e| e.at).or(self.last_valid).and_then(wall),
            root: self.root,
            last_failure: self.last_failure.clone(),
            silent_since: match self.health {
                Health::Unsynchronised { since } => wall(since),
                _ => None,
            },
            max_offset: self.settings.policy.max_offset,
            backed_off_poll: (self.poll > self.settings.poll).then_some(self.poll),
            silenced: self.silenced,
        }
    }

    fn no_sample(&mut self, reason: String) {
        self.last_failure = Some(reason.clone());
        self.notices.push_back(Notice::NoSample { reason });
    }

    /// Kiss-o'-Death RATE to the request sent at `sent`: double the poll
    /// interval, up to the cap.
    fn back_off(&mut self, sent: Instant, reason: String) {
        let raised = self.poll.saturating_mul(2).min(self.settings.max_poll);
        if raised > self.poll {
            self.poll = raised;
            self.notices.push_back(Notice::BackedOff { poll: raised });
        } else {
            self.notices.push_back(Notice::NoSample {
                reason: format!(
                    "{reason}; already polling every {} s, the longest",
                    self.poll.as_secs()
                ),
            });
        }
        if self.next_poll.is_some() {
            self.next_poll = Some(sent + self.poll);
        }
    }

    fn reassess(&mut self, now: Instant) {
        let quiet_since = self.last_valid.unwrap_or(self.started);
        let health = self.settings.policy.assess(&self.filter, quiet_since, now);
        if let Health::Unsynchronised { .. } = health {
            self.filter.clear();
        }
        self.health = health;
        let Some(change) = self.watch.observe(health) else {
            return;
        };
        let estimate = self.filter.estimate(now);
        let notice = match change.to {
            Health::Starting => return,
            Health::Ok => Notice::Ok {
                offset: estimate.map(|e| e.offset).unwrap_or_default(),
                delay: estimate.map(|e| e.delay).unwrap_or_default(),
            },
            Health::Degraded { offset } => Notice::Degraded {
                offset,
                max_offset: self.settings.policy.max_offset,
            },
            Health::Unsynchronised { since } => Notice::Unsynchronised {
                silent_for: now.saturating_duration_since(since),
                reason: self.last_failure.clone(),
            },
        };
        self.notices.push_back(notice);
    }
}

/// The poll field of a request: ⌊log2 seconds⌋.
fn log2_seconds(poll: Duration) -> i8 {
    let seconds = poll.as_secs().max(1);
    i8::try_from(seconds.ilog2()).unwrap_or(i8::MAX)
}

#[cfg(test)]
mod tests {
    use intercloud_ntp::packet::{self, LeapIndicator, Mode, Packet, Version};
    use intercloud_ntp::ratelimit::Verdict;
    use intercloud_ntp::server::ServerState;
    use intercloud_ntp::timestamp::ShortTime;
    use time::macros::datetime;

    use super::*;

    /// 2025-06-15T12:00:00Z in Unix nanoseconds: the local clock at the start.
    const LOCAL_START: i128 = 1_749_988_800 * 1_000_000_000;

    fn settings() -> ClockSettings {
        ClockSettings {
            server: "127.0.0.1:7123".to_owned(),
            poll: Duration::from_secs(2),
            max_poll: Duration::from_secs(8),
            timeout: Duration::from_secs(1),
            policy: HealthPolicy {
                max_offset: Duration::from_millis(100),
                max_silence: Duration::from_secs(10),
            },
            precision: -20,
        }
    }

    /// Virtual time and an in-memory NTP server (the root's own rules).
    struct Lab {
        start: Instant,
        wall_start: OffsetDateTime,
        server: ServerState,
        /// The server's clock minus ours.
        server_ahead: SignedDuration,
        /// Each leg of the trip.
        one_way: Duration,
    }

    impl Lab {
        fn new() -> Self {
            let mut lab = Self {
                start: Instant::now(),
                wall_start: datetime!(2025-06-15 12:00:00 UTC),
                server: ServerState::unsynchronised(-20),
                server_ahead: SignedDuration::ZERO,
                one_way: Duration::from_millis(5),
            };
            // Set an hour ago, so that a server behind us still replies
            // with a transmit time after its reference time.
            let set = lab
                .local(lab.start)
                .wrapping_add(SignedDuration::from_secs(-3600));
            lab.server = ServerState::local_clock(10, -20, set).expect("valid");
            lab
        }

        fn at(&self, ms: u64) -> Instant {
            self.start + Duration::from_millis(ms)
        }

        /// Our clock at `at`.
        fn local(&self, at: Instant) -> Timestamp {
            let elapsed = i128::try_from((at - self.start).as_nanos()).expect("short test");
            Timestamp::from_unix_nanos(LOCAL_START + elapsed)
        }

        fn wall(&self, at: Instant) -> OffsetDateTime {
            self.wall_start + (at - self.start)
        }

        /// Sends the request due at `sent`; the server answers with
        /// `verdict`; returns the answer and when it arrives.
        fn ask(
            &self,
            state: &mut ClockState,
            sent: Instant,
            verdict: Verdict,
        ) -> ([u8; HEADER_LEN], Instant) {
            let request = state
                .poll_request(sent, || self.local(sent))
                .expect("a request is due");
            let t2 = self
                .local(sent + self.one_way)
                .wrapping_add(self.server_ahead);
            let response = self.server.respond(&request, t2, || verdict, || t2);
            let bytes = *response.bytes().expect("an answer");
            (bytes, sent + 2 * self.one_way)
        }

        /// A whole exchange at `sent`; returns when the reply arrived.
        fn exchange(&self, state: &mut ClockState, sent: Instant) -> Instant {
            let (reply, arrived) = self.ask(state, sent, Verdict::Allow);
            state.handle_datagram(arrived, &reply, self.local(arrived));
            arrived
        }

        /// Runs the state with a server that never answers, until `end`.
        fn silence_until(&self, state: &mut ClockState, end: Instant) {
            while let Some(at) = state.poll_timeout().filter(|&at| at <= end) {
                state.handle_timeout(at);
                let _lost = state.poll_request(at, || self.local(at));
            }
        }
    }

    fn notices(state: &mut ClockState) -> Vec<Notice> {
        std::iter::from_fn(|| state.poll_notice()).collect()
    }

    fn close(a: SignedDuration, b: SignedDuration) -> bool {
        (a - b).abs() < Duration::from_micros(1)
    }

    #[test]
    fn a_reply_makes_the_clock_ok_with_one_notice() {
        let mut lab = Lab::new();
        lab.server_ahead = SignedDuration::from_millis(40);
        let mut state = ClockState::new(settings(), lab.start);
        assert_eq!(
            state.poll_timeout(),
            Some(lab.start),
            "the first request at once"
        );
        let status = state.status(lab.start, lab.wall_start);
        assert_eq!(status.health, ClockHealth::Starting);
        assert_eq!(status.detail(lab.wall_start), "waiting for the first reply");

        let arrived = lab.exchange(&mut state, lab.start);
        let told = notices(&mut state);
        let [Notice::Ok { offset, delay }] = told.as_slice() else {
            panic!("one ok notice: {told:?}");
        };
        assert!(close(*offset, SignedDuration::from_millis(40)), "{offset}");
        assert_eq!(*delay, Duration::from_millis(10));

        let status = state.status(arrived, lab.wall(arrived));
        assert_eq!(status.health, ClockHealth::Ok);
        assert_eq!(status.server, "127.0.0.1:7123");
        let estimate = status.estimate.expect("an estimate");
        assert!(close(estimate.offset, SignedDuration::from_millis(40)));
        assert_eq!(estimate.samples, 1);
        assert_eq!(estimate.jitter, Duration::ZERO);
        assert_eq!(status.last_sync, Some(lab.wall(arrived)));
        assert_eq!(
            status.root,
            Some(RootClock {
                stratum: 10,
                reference_id: ReferenceId::LOCAL_CLOCK
            })
        );
        assert_eq!(status.last_failure, None);
        assert_eq!(
            status.detail(lab.wall(arrived)),
            "offset +40.000 ms within the 100 ms threshold"
        );

        // The next request one poll interval after the first.
        assert_eq!(state.poll_timeout(), Some(lab.at(2000)));
        assert!(
            state
                .poll_request(lab.at(1999), || unreachable!())
                .is_none()
        );
        lab.exchange(&mut state, lab.at(2000));
        assert_eq!(notices(&mut state), [], "still ok: no news");
        assert_eq!(
            state
                .status(lab.at(2010), lab.wall(lab.at(2010)))
                .estimate
                .map(|e| e.samples),
            Some(2)
        );
    }

    #[test]
    fn a_large_offset_is_degraded_until_a_better_sample_says_otherwise() {
        let mut lab = Lab::new();
        lab.server_ahead = SignedDuration::from_millis(-250);
        let mut state = ClockState::new(settings(), lab.start);
        let arrived = lab.exchange(&mut state, lab.start);
        assert_eq!(
            notices(&mut state),
            [Notice::Degraded {
                offset: state
                    .status(arrived, lab.wall_start)
                    .estimate
                    .expect("one")
                    .offset,
                max_offset: Duration::from_millis(100),
            }]
        );
        let status = state.status(arrived, lab.wall(arrived));
        assert_eq!(status.health, ClockHealth::Degraded);
        assert_eq!(
            status.detail(lab.wall(arrived)),
            "offset -250.000 ms above the 100 ms threshold"
        );
        lab.exchange(&mut state, lab.at(2000));
        assert_eq!(notices(&mut state), [], "degraded again is no news");

        // The clock was corrected; the new sample has the lower delay.
        lab.server_ahead = SignedDuration::from_millis(3);
        lab.one_way = Duration::from_millis(2);
        lab.exchange(&mut state, lab.at(4000));
        let told = notices(&mut state);
        let [Notice::Ok { offset, delay }] = told.as_slice() else {
            panic!("one ok notice: {told:?}");
        };
        assert!(close(*offset, SignedDuration::from_millis(3)), "{offset}");
        assert_eq!(*delay, Duration::from_millis(4));
    }

    #[test]
    fn silence_makes_the_clock_unsynchronised_once_and_empties_the_filter() {
        let lab = Lab::new();
        let mut state = ClockState::new(settings(), lab.start);
        let synced = lab.exchange(&mut state, lab.start);
        notices(&mut state);

        // The server goes quiet: each request times out after 1 s.
        lab.silence_until(&mut state, lab.at(3000));
        assert_eq!(
            notices(&mut state),
            [Notice::NoSample {
                reason: "timeout".into()
            }]
        );
        assert_eq!(
            state.status(lab.at(3000), lab.wall_start).health,
            ClockHealth::Ok
        );

        // Unsynchronised 10 s (and a margin) after the last valid sample.
        let deadline = synced + Duration::from_secs(10) + SILENCE_MARGIN;
        lab.silence_until(&mut state, deadline - Duration::from_millis(1));
        assert!(
            !notices(&mut state)
                .iter()
                .any(|n| matches!(n, Notice::Unsynchronised { .. }))
        );
        lab.silence_until(&mut state, deadline);
        let lost: Vec<Notice> = notices(&mut state)
            .into_iter()
            .filter(|n| !matches!(n, Notice::NoSample { .. }))
            .collect();
        assert_eq!(
            lost,
            [Notice::Unsynchronised {
                silent_for: Duration::from_secs(10) + SILENCE_MARGIN,
                reason: Some("timeout".into()),
            }]
        );
        let later = synced + Duration::from_secs(31);
        lab.silence_until(&mut state, later);
        assert!(
            notices(&mut state)
                .iter()
                .all(|n| matches!(n, Notice::NoSample { .. })),
            "unsynchronised is told once"
        );
        let status = state.status(later, lab.wall(later));
        assert_eq!(status.health, ClockHealth::Unsynchronised);
        assert_eq!(status.estimate, None, "the filter was emptied");
        assert_eq!(status.last_sync, Some(lab.wall(synced)));
        assert_eq!(status.silent_since, Some(lab.wall(synced)));
        assert_eq!(
            status.detail(lab.wall(later)),
            "no valid reply for 31 s: timeout"
        );
        assert_eq!(
            status.root.map(|r| r.stratum),
            Some(10),
            "the root's last word stays"
        );

        // It answers again: ok, from the fresh sample alone.
        let next = state.poll_timeout().expect("polling goes on");
        let arrived = lab.exchange(&mut state, next);
        assert!(matches!(
            notices(&mut state).as_slice(),
            [Notice::Ok { .. }]
        ));
        let status = state.status(arrived, lab.wall(arrived));
        assert_eq!(status.estimate.map(|e| e.samples), Some(1));
        assert_eq!(status.silent_since, None);
    }

    #[test]
    fn never_synchronised_counts_from_the_start() {
        let lab = Lab::new();
        let mut state = ClockState::new(settings(), lab.start);
        lab.silence_until(&mut state, lab.at(1500));
        let status = state.status(lab.at(1500), lab.wall_start);
        assert_eq!(status.health, ClockHealth::Starting);
        assert_eq!(status.detail(lab.wall_start), "no valid reply yet: timeout");
        lab.silence_until(&mut state, lab.at(10_001));
        assert!(notices(&mut state).contains(&Notice::Unsynchronised {
            silent_for: Duration::from_millis(10_001),
            reason: Some("timeout".into())
        }));
        let status = state.status(lab.at(10_001), lab.wall(lab.at(10_001)));
        assert_eq!(status.last_sync, None);
        assert_eq!(status.silent_since, Some(lab.wall_start));
    }

    #[test]
    fn datagrams_that_are_not_our_reply_are_ignored_and_the_request_stays() {
        let lab = Lab::new();
        let mut state = ClockState::new(settings(), lab.start);
        let (reply, arrived) = lab.ask(&mut state, lab.start, Verdict::Allow);
        let genuine = packet::parse(&reply).expect("parses");
        let t4 = lab.local(arrived);

        // Spoofed: another origin; a forged DENY is not believed either.
        let spoofed = Packet {
            origin_time: genuine
                .origin_time
                .wrapping_add(SignedDuration::from_nanos(1000)),
            ..genuine
        };
        let forged_kiss = Packet {
            stratum: 0,
            reference_id: ReferenceId::DENY,
            ..spoofed
        };
        let client = Packet {
            mode: Mode::Client,
            ..genuine
        };
        for datagram in [
            packet::serialize(&spoofed).to_vec(),
            packet::serialize(&forged_kiss).to_vec(),
            packet::serialize(&client).to_vec(),
            vec![0x24; 20],
        ] {
            state.handle_datagram(arrived, &datagram, t4);
        }
        let reasons: Vec<String> = notices(&mut state)
            .into_iter()
            .map(|n| match n {
                Notice::Ignored { reason } => reason,
                other => panic!("only ignored datagrams: {other:?}"),
            })
            .collect();
        assert_eq!(reasons.len(), 4);
        assert!(
            reasons[0].contains("does not match our request"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].contains("does not match our request"),
            "{reasons:?}"
        );
        assert!(reasons[2].contains("is not a server reply"), "{reasons:?}");
        assert!(reasons[3].contains("not an NTP time packet"), "{reasons:?}");
        let status = state.status(arrived, lab.wall_start);
        assert_eq!(status.health, ClockHealth::Starting);
        assert_eq!(status.last_failure, None);
        assert_eq!(status.silenced, None);

        // The genuine reply is still welcome, once.
        state.handle_datagram(arrived, &reply, t4);
        assert!(matches!(
            notices(&mut state).as_slice(),
            [Notice::Ok { .. }]
        ));
        state.handle_datagram(arrived, &reply, t4);
        assert_eq!(
            notices(&mut state),
            [Notice::Ignored {
                reason: "no request is outstanding: a late or duplicate reply".into()
            }]
        );
        assert_eq!(
            state
                .status(arrived, lab.wall_start)
                .estimate
                .map(|e| e.samples),
            Some(1)
        );
    }

    #[test]
    fn kiss_of_death_rate_doubles_the_poll_interval_up_to_the_cap() {
        let lab = Lab::new();
        // Long enough not to become unsynchronised while backing off.
        let mut settings = settings();
        settings.policy.max_silence = Duration::from_secs(60);
        let mut state = ClockState::new(settings, lab.start);
        let kiss = |state: &mut ClockState, sent: Instant| {
            let (bytes, arrived) = lab.ask(state, sent, Verdict::KissOfDeath);
            state.handle_datagram(arrived, &bytes, lab.local(arrived));
            arrived
        };
        let arrived = kiss(&mut state, lab.start);
        assert_eq!(
            notices(&mut state),
            [Notice::BackedOff {
                poll: Duration::from_secs(4)
            }]
        );
        assert_eq!(state.poll_interval(), Duration::from_secs(4));
        assert!(!state.request_due(lab.at(3999)));
        assert!(state.request_due(lab.at(4000)));
        let status = state.status(arrived, lab.wall_start);
        assert_eq!(status.backed_off_poll, Some(Duration::from_secs(4)));
        assert_eq!(
            status.detail(lab.wall_start),
            "no valid reply yet: kiss-o'-death from the server: RATE; polling every 4 s after a kiss-o'-death RATE"
        );

        kiss(&mut state, lab.at(4000));
        assert_eq!(
            notices(&mut state),
            [Notice::BackedOff {
                poll: Duration::from_secs(8)
            }]
        );
        // At the cap: no news, and the interval stays.
        kiss(&mut state, lab.at(12_000));
        assert_eq!(
            notices(&mut state),
            [Notice::NoSample {
                reason:
                    "kiss-o'-death from the server: RATE; already polling every 8 s, the longest"
                        .into()
            }]
        );
        assert!(state.request_due(lab.at(20_000)));
        let request = state
            .poll_request(lab.at(20_000), || lab.local(lab.at(20_000)))
            .expect("due");
        assert_eq!(packet::parse(&request).expect("parses").poll, 3, "2^3 s");
        // A good reply does not bring the old rate back.
        let t2 = lab.local(lab.at(20_005));
        let reply = *lab
            .server
            .respond(&request, t2, || Verdict::Allow, || t2)
            .bytes()
            .expect("a reply");
        state.handle_datagram(lab.at(20_010), &reply, lab.local(lab.at(20_010)));
        assert_eq!(state.poll_interval(), Duration::from_secs(8));
        let status = state.status(lab.at(20_010), lab.wall_start);
        assert_eq!(status.health, ClockHealth::Ok);
        assert_eq!(
            status.detail(lab.wall_start),
            "offset +0.000 ms within the 100 ms threshold; polling every 8 s after a kiss-o'-death RATE"
        );
    }

    #[test]
    fn kiss_of_death_deny_stops_polling() {
        let lab = Lab::new();
        let mut state = ClockState::new(settings(), lab.start);
        let request = state
            .poll_request(lab.start, || lab.local(lab.start))
            .expect("due");
        let t1 = packet::parse(&request).expect("parses").transmit_time;
        let deny = Packet {
            leap: LeapIndicator::Unsynchronised,
            version: Version::V4,
            mode: Mode::Server,
            stratum: 0,
            poll: 1,
            precision: -20,
            root_delay: ShortTime::ZERO,
            root_dispersion: ShortTime::ZERO,
            reference_id: ReferenceId::DENY,
            reference_time: Timestamp::ZERO,
            origin_time: t1,
            receive_time: lab.local(lab.at(5)),
            transmit_time: lab.local(lab.at(5)),
        };
        state.handle_datagram(lab.at(10), &packet::serialize(&deny), lab.local(lab.at(10)));
        assert_eq!(
            notices(&mut state),
            [Notice::Silenced {
                code: KissCode::Deny
            }]
        );
        assert!(!state.request_due(lab.at(60_000)));
        assert_eq!(
            state.poll_timeout(),
            Some(lab.at(10_000) + SILENCE_MARGIN),
            "only the silence is left to wait for"
        );
        lab.silence_until(&mut state, lab.at(20_000));
        let status = state.status(lab.at(20_000), lab.wall(lab.at(20_000)));
        assert_eq!(status.health, ClockHealth::Unsynchronised);
        assert_eq!(status.silenced, Some(KissCode::Deny));
        assert_eq!(
            status.detail(lab.wall(lab.at(20_000))),
            "no valid reply for 20 s: kiss-o'-death from the server: DENY; polling stopped until the broker restarts"
        );
        assert_eq!(state.poll_timeout(), None);
    }

    #[test]
    fn an_unsynchronised_server_gives_no_sample() {
        let mut lab = Lab::new();
        lab.server = ServerState::unsynchronised(-20);
        let mut state = ClockState::new(settings(), lab.start);
        let arrived = lab.exchange(&mut state, lab.start);
        assert_eq!(
            notices(&mut state),
            [Notice::NoSample {
                reason: "the server is unsynchronised (leap 3, stratum 16)".into()
            }]
        );
        let status = state.status(arrived, lab.wall_start);
        assert_eq!(status.health, ClockHealth::Starting);
        assert_eq!(status.root, None);
        assert_eq!(
            status.detail(lab.wall_start),
            "no valid reply yet: the server is unsynchronised (leap 3, stratum 16)"
        );
        // The exchange is over: no timeout follows.
        assert_eq!(state.poll_timeout(), Some(lab.at(2000)));
    }

    #[test]
    fn a_failure_before_sending_waits_for_the_next_poll() {
        let lab = Lab::new();
        let mut state = ClockState::new(settings(), lab.start);
        assert!(state.request_due(lab.start));
        state.handle_failure(lab.start, "cannot resolve root.lab: no such host".into());
        assert!(!state.request_due(lab.at(1999)));
        assert!(state.request_due(lab.at(2000)));
        assert_eq!(
            state
                .status(lab.start, lab.wall_start)
                .detail(lab.wall_start),
            "no valid reply yet: cannot resolve root.lab: no such host"
        );
        // After sending, a failure ends the exchange.
        state.poll_request(lab.at(2000), || lab.local(lab.at(2000)));
        state.handle_failure(lab.at(2001), "connection refused".into());
        assert_eq!(state.poll_timeout(), Some(lab.at(4000)));
    }

    #[test]
    fn settings_come_from_the_config() {
        let mut config = ClockConfig::default();
        assert_eq!(ClockSettings::from_config(&config), None);
        config.ntp_server = Some("127.0.0.1:7123".into());
        config.poll_seconds = 1;
        let settings = ClockSettings::from_config(&config).expect("configured");
        assert_eq!(settings.timeout, Duration::from_secs(1));
        assert_eq!(settings.max_poll, MAX_BACKOFF_POLL);
        assert_eq!(settings.policy.max_silence, Duration::from_secs(60));
        config.poll_seconds = 4096;
        let settings = ClockSettings::from_config(&config).expect("configured");
        assert_eq!(settings.max_poll, Duration::from_secs(4096));
    }

    #[test]
    fn health_words_and_the_not_configured_status() {
        let status = ClockStatus::not_configured();
        assert_eq!(status.health.words(), "not configured");
        assert_eq!(
            status.detail(datetime!(2025-06-15 12:00:00 UTC)),
            "no [clock] ntp_server in the broker's config"
        );
        assert_eq!(
            ClockStatus::starting("x:1".into()).health.words(),
            "starting"
        );
        assert_eq!(ClockHealth::Unsynchronised.words(), "unsynchronised");
        assert_eq!(ms(SignedDuration::from_nanos(-42_400)), "-0.042 ms");
    }

    #[test]
    fn the_request_carries_the_poll_exponent() {
        for (seconds, exponent) in [(1, 0), (2, 1), (3, 1), (16, 4), (1024, 10)] {
            assert_eq!(log2_seconds(Duration::from_secs(seconds)), exponent);
        }
    }
}
