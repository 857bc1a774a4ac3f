//! The broker's view of its federation link, as pure state: what phase it
//! is in, when the root last answered, how long to wait before retrying,
//! and when to renew the certificate. The driver in [`crate::link`] feeds
//! it events with the current time.

use std::time::Duration;

use time::OffsetDateTime;

/// Where the broker stands with the federation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a certificate.
    Enrolling,
    /// Certificate loaded, registration not yet confirmed.
    Connecting,
    /// Registered and heard from the root.
    Federated,
    /// The last call to the root failed; retrying.
    RootUnreachable,
    /// The root refused this cloud as revoked.
    Revoked,
}

impl Phase {
    /// Human words for the phase.
    pub fn words(self) -> &'static str {
        match self {
            Self::Enrolling => "enrolling",
            Self::Connecting => "connecting",
            Self::Federated => "federated",
            Self::RootUnreachable => "root unreachable",
            Self::Revoked => "revoked",
        }
    }
}

/// The link's state.
#[derive(Debug, Clone)]
pub struct LinkState {
    /// Phase.
    pub phase: Phase,
    /// Last successful call to the root.
    pub last_contact: Option<OffsetDateTime>,
    /// Last failure, for operators.
    pub last_error: Option<String>,
    /// Members the root listed at the last contact.
    pub members: u32,
}

impl Default for LinkState {
    fn default() -> Self {
        Self {
            phase: Phase::Connecting,
            last_contact: None,
            last_error: None,
            members: 0,
        }
    }
}

/// What a transition means for the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing worth saying.
    Same,
    /// The phase changed from this one.
    From(Phase),
}

impl LinkState {
    /// The root answered a registration.
    pub fn on_registered(&mut self, now: OffsetDateTime) -> Transition {
        self.last_contact = Some(now);
        self.last_error = None;
        self.enter(Phase::Federated)
    }

    /// The root could not be reached or failed.
    pub fn on_root_unreachable(&mut self, error: String) -> Transition {
        self.last_error = Some(error);
        self.enter(Phase::RootUnreachable)
    }

    /// The root refused this cloud as revoked.
    pub fn on_revoked(&mut self, error: String) -> Transition {
        self.last_error = Some(error);
        self.enter(Phase::Revoked)
    }

    fn enter(&mut self, phase: Phase) -> Transition {
        let before = self.phase;
        self.phase = phase;
        if before == phase {
            Transition::Same
        } else {
            Transition::From(before)
        }
    }
}

/// Exponential backoff between retries, doubling up to a cap.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `initial`, never exceeds `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next retry; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Back to the initial delay after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// When a certificate valid from `not_before` to `not_after` should be
/// renewed: after `fraction` of its lifetime.
pub fn renewal_time(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    fraction: f64,
) -> OffsetDateTime {
    let lifetime = (not_after - not_before).as_seconds_f64().max(0.0);
    not_before + time::Duration::seconds_f64(lifetime * fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_events() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut s = LinkState::default();
        assert_eq!(s.on_registered(now), Transition::From(Phase::Connecting));
        assert_eq!(s.on_registered(now), Transition::Same);
        assert_eq!(
            s.on_root_unreachable("down".into()),
            Transition::From(Phase::Federated)
        );
        assert_eq!(s.last_error.as_deref(), Some("down"));
        assert_eq!(
            s.on_registered(now),
            Transition::From(Phase::RootUnreachable)
        );
        assert_eq!(s.last_error, None);
        assert_eq!(
            s.on_revoked("revoked".into()),
            Transition::From(Phase::Federated)
        );
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_millis(1000));
        let delays: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(200));
    }

    #[test]
    fn renewal_falls_at_the_fraction_of_the_lifetime() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let end = start + time::Duration::seconds(300);
        assert_eq!(
            renewal_time(start, end, 0.5),
            start + time::Duration::seconds(150)
        );
        assert_eq!(
            renewal_time(end, start, 0.5),
            end,
            "an inverted validity renews at once"
        );
    }
}
