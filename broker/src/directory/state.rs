//! Publication of this cloud's descriptor as pure state: what the file last
//! read holds, whether the broker is federated, what the root answered; from
//! these, whether to publish now, the status operators see and the version
//! peers see in presence. No I/O and no clock: the driver in
//! [`super::driver`] feeds events with `now` and does what
//! [`Publication::poll_publish`] asks.
//!
//! Rules:
//! - publish when federated and the file validates locally (parses, conforms
//!   to the shapes, names this cloud) and its digest differs from the last
//!   one published;
//! - an invalid file is never sent; the version published before stays in
//!   force;
//! - a refusal is not retried until the file changes;
//! - an unreachable root is retried with backoff, and at once when the link
//!   to the root comes back.

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use intercloud_trust::CloudId;
use time::OffsetDateTime;

use crate::link_state::Backoff;

/// SHA-256 of the descriptor file's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentDigest([u8; 32]);

impl ContentDigest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(sha2::Sha256::digest(bytes).into())
    }
}

impl fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentDigest({self})")
    }
}

/// What a descriptor that passed the local checks says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedDescriptor {
    /// Its `ic:cloudId`.
    pub cloud_id: String,
    /// Its `ic:descriptorVersion`.
    pub version: u64,
    /// Its number of triples.
    pub triples: u64,
}

/// What reading the descriptor file gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRead {
    /// The file could not be read (missing, unreadable, too large); why.
    Unreadable(String),
    /// The file's content: its digest and, if it parses and conforms to the
    /// shapes, what it says; otherwise why not (a syntax error with its line
    /// and column, or the first violations).
    Read {
        /// SHA-256 of the bytes.
        digest: ContentDigest,
        /// The outcome of parsing and validating them.
        checked: Result<CheckedDescriptor, String>,
    },
}

/// How the root answered a `Directory.Publish`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Published (or already published, `unchanged`).
    Published {
        /// `ic:descriptorVersion` now in force at the root.
        version: u64,
        /// Triples in the cloud's graph at the root.
        triples: u64,
        /// When the root published it.
        at: OffsetDateTime,
        /// The root already had exactly this.
        unchanged: bool,
    },
    /// The root refused this content (FAILED_PRECONDITION, PERMISSION_DENIED,
    /// INVALID_ARGUMENT, RESOURCE_EXHAUSTED); its words.
    Refused(String),
    /// The root could not be reached, or failed; why.
    Unreachable(String),
}

/// Where the descriptor stands, in the words of `DescriptorStatus.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescriptorState {
    /// No `[directory] descriptor`: nothing is published.
    NotConfigured,
    /// Valid (or not yet read), waiting to be published: not federated yet,
    /// or the call is under way.
    Pending,
    /// The file's content is the one in force at the root.
    Published,
    /// The file cannot be read or fails the local checks.
    Invalid,
    /// The root refused the file's content.
    Refused,
    /// The last call to publish did not reach the root; retrying.
    RootUnreachable,
}

impl DescriptorState {
    /// Human words for the state.
    pub fn words(self) -> &'static str {
        match self {
            Self::NotConfigured => "not configured",
            Self::Pending => "pending",
            Self::Published => "published",
            Self::Invalid => "invalid",
            Self::Refused => "refused",
            Self::RootUnreachable => "root unreachable",
        }
    }
}

/// What operators see of the publication (`Broker.Status`'s `descriptor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorStatus {
    /// The descriptor file; empty when none is configured.
    pub path: String,
    /// Version in force at the root (0 before the first publication).
    pub published_version: u64,
    /// Where things stand.
    pub state: DescriptorState,
    /// Why the last attempt failed (invalid, refused, root unreachable).
    pub last_error: Option<String>,
    /// When the version in force was published.
    pub published_at: Option<OffsetDateTime>,
    /// Triples in the graph in force.
    pub triples: u64,
}

impl DescriptorStatus {
    /// The status of a broker without `[directory] descriptor`.
    pub fn not_configured() -> Self {
        Self {
            path: String::new(),
            published_version: 0,
            state: DescriptorState::NotConfigured,
            last_error: None,
            published_at: None,
            triples: 0,
        }
    }

    /// The status of a configured descriptor before the file is read.
    pub fn configured(path: String) -> Self {
        Self {
            path,
            state: DescriptorState::Pending,
            ..Self::not_configured()
        }
    }
}

/// Something worth one log line, given once per change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The root published the descriptor (or already had it).
    Published {
        /// Version in force.
        version: u64,
        /// Triples in force.
        triples: u64,
        /// The root already had exactly this.
        unchanged: bool,
    },
    /// The file cannot be published; why. The version in force stays.
    Invalid(String),
    /// The root refused the file's content; its words.
    Refused(String),
    /// Publishing failed to reach the root; retried with backoff.
    RootUnreachable(String),
}

/// Asks the driver to publish the file content with this digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOrder {
    /// The content to send: the last one read.
    pub digest: ContentDigest,
}

/// The file as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileView {
    NotRead,
    Invalid(String),
    Valid(ContentDigest),
}

/// The descriptor in force at the root, as this broker published it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InForce {
    digest: ContentDigest,
    version: u64,
    triples: u64,
    at: OffsetDateTime,
}

/// A run of failed calls that did not reach the root.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unreachable {
    reason: String,
    retry_at: Instant,
}

/// The publication state machine.
#[derive(Debug, Clone)]
pub struct Publication {
    cloud: CloudId,
    path: String,
    federated: bool,
    file: FileView,
    in_force: Option<InForce>,
    /// The call under way.
    in_flight: Option<ContentDigest>,
    /// The last content the root refused, and its words.
    refused: Option<(ContentDigest, String)>,
    /// Since the last answer from the root, calls have failed to reach it.
    unreachable: Option<Unreachable>,
    backoff: Backoff,
    notices: VecDeque<Notice>,
}

impl Publication {
    /// Publication of the file at `path` (for the status and messages) for
    /// `cloud`, retrying an unreachable root after delays from `backoff`.
    pub fn new(cloud: CloudId, path: String, backoff: Backoff) -> Self {
        Self {
            cloud,
            path,
            federated: false,
            file: FileView::NotRead,
            in_force: None,
            in_flight: None,
            refused: None,
            unreachable: None,
            backoff,
            notices: VecDeque::new(),
        }
    }

    /// The link to the root is (or is no longer) federated.
    pub fn handle_federation(&mut self, now: Instant, federated: bool) {
        if federated
            && !self.federated
            && let Some(unreachable) = &mut self.unreachable
        {
            // The root answers the link again: no reason to wait.
            unreachable.retry_at = now;
            self.backoff.reset();
        }
        self.federated = federated;
    }

    /// The file was read (the driver calls this when what it read changed).
    pub fn handle_file_read(&mut self, read: FileRead) {
        let file = match read {
            FileRead::Unreadable(reason)
            | FileRead::Read {
                checked: Err(reason),
                ..
            } => FileView::Invalid(reason),
            FileRead::Read {
                checked: Ok(checked),
                ..
            } if checked.cloud_id != self.cloud.as_str() => FileView::Invalid(format!(
                "the descriptor is for cloud {:?} (its ic:cloudId), but this broker is {}; a broker publishes only its own cloud's descriptor",
                checked.cloud_id, self.cloud
            )),
            FileRead::Read {
                digest,
                checked: Ok(_),
            } => FileView::Valid(digest),
        };
        if self.file == file {
            return;
        }
        if let FileView::Invalid(reason) = &file {
            self.notices
                .push_back(Notice::Invalid(format!("{}: {reason}", self.path)));
        }
        // A refusal holds until the file changes.
        if !matches!((&file, &self.refused), (FileView::Valid(d), Some((r, _))) if d == r) {
            self.refused = None;
        }
        self.file = file;
    }

    /// The root answered the publication of `order` (or could not be reached).
    pub fn handle_publish_outcome(
        &mut self,
        now: Instant,
        order: PublishOrder,
        outcome: PublishOutcome,
    ) {
        self.in_flight = None;
        let digest = order.digest;
        match outcome {
            PublishOutcome::Published {
                version,
                triples,
                at,
                unchanged,
            } => {
                self.backoff.reset();
                self.unreachable = None;
                self.in_force = Some(InForce {
                    digest,
                    version,
                    triples,
                    at,
                });
                self.notices.push_back(Notice::Published {
                    version,
                    triples,
                    unchanged,
                });
            }
            PublishOutcome::Refused(reason) => {
                self.backoff.reset();
                self.unreachable = None;
                self.notices.push_back(Notice::Refused(reason.clone()));
                self.refused = Some((digest, reason));
            }
            PublishOutcome::Unreachable(reason) => {
                if self.unreachable.is_none() {
                    self.notices
                        .push_back(Notice::RootUnreachable(reason.clone()));
                }
                self.unreachable = Some(Unreachable {
                    reason,
                    retry_at: now + self.backoff.next_delay(),
                });
            }
        }
    }

    /// The content to publish now, if any. The driver sends it and answers
    /// with [`Publication::handle_publish_outcome`]; until then nothing more
    /// is asked.
    pub fn poll_publish(&mut self, now: Instant) -> Option<PublishOrder> {
        let FileView::Valid(digest) = &self.file else {
            return None;
        };
        let digest = *digest;
        let waiting = self.in_flight.is_some()
            || !self.federated
            || self.in_force.as_ref().is_some_and(|p| p.digest == digest)
            || self.refused.as_ref().is_some_and(|(d, _)| *d == digest)
            || self.unreachable.as_ref().is_some_and(|u| u.retry_at > now);
        if waiting {
            return None;
        }
        self.in_flight = Some(digest);
        Some(PublishOrder { digest })
    }

    /// The next thing worth a log line.
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// The version in force at the root (0 before the first publication):
    /// what presence announces.
    pub fn published_version(&self) -> u64 {
        self.in_force.as_ref().map_or(0, |p| p.version)
    }

    /// What operators see.
    pub fn status(&self) -> DescriptorStatus {
        let (state, last_error) = match &self.file {
            FileView::NotRead => (DescriptorState::Pending, None),
            FileView::Invalid(reason) => (
                DescriptorState::Invalid,
                Some(format!("{}: {reason}", self.path)),
            ),
            FileView::Valid(digest) => {
                if self.in_force.as_ref().is_some_and(|p| p.digest == *digest) {
                    (DescriptorState::Published, None)
                } else if let Some((_, reason)) = self.refused.as_ref().filter(|(d, _)| d == digest)
                {
                    (DescriptorState::Refused, Some(reason.clone()))
                } else if let Some(unreachable) = &self.unreachable {
                    (
                        DescriptorState::RootUnreachable,
                        Some(unreachable.reason.clone()),
                    )
                } else {
                    (DescriptorState::Pending, None)
                }
            }
        };
        DescriptorStatus {
            path: self.path.clone(),
            published_version: self.published_version(),
            state,
            last_error,
            published_at: self.in_force.as_ref().map(|p| p.at),
            triples: self.in_force.as_ref().map_or(0, |p| p.triples),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const PATH: &str = "/etc/intercloud/cloud-a.ttl";

    fn machine() -> Publication {
        Publication::new(
            CloudId::new("cloud-a").expect("cloud id"),
            PATH.to_owned(),
            Backoff::new(Duration::from_millis(200), Duration::from_millis(800)),
        )
    }

    fn valid(content: &str, version: u64) -> (ContentDigest, FileRead) {
        let digest = ContentDigest::of(content.as_bytes());
        let read = FileRead::Read {
            digest,
            checked: Ok(CheckedDescriptor {
                cloud_id: "cloud-a".into(),
                version,
                triples: 60,
            }),
        };
        (digest, read)
    }

    fn published(version: u64, at: OffsetDateTime) -> PublishOutcome {
        PublishOutcome::Published {
            version,
            triples: 60,
            at,
            unchanged: false,
        }
    }

    fn notices(p: &mut Publication) -> Vec<Notice> {
        std::iter::from_fn(|| p.poll_notice()).collect()
    }

    /// A federated machine that has published `content` as `version`.
    fn published_machine(now: Instant, content: &str, version: u64) -> Publication {
        let mut p = machine();
        p.handle_federation(now, true);
        p.handle_file_read(valid(content, version).1);
        let order = p.poll_publish(now).expect("publishes");
        p.handle_publish_outcome(now, order, published(version, OffsetDateTime::UNIX_EPOCH));
        notices(&mut p);
        p
    }

    #[test]
    fn without_a_file_nothing_is_published() {
        let status = DescriptorStatus::not_configured();
        assert_eq!(status.state.words(), "not configured");
        assert_eq!((status.path.as_str(), status.published_version), ("", 0));
        let configured = DescriptorStatus::configured(PATH.into());
        assert_eq!(configured.state, DescriptorState::Pending);
        assert_eq!(machine().status(), configured);
    }

    #[test]
    fn a_valid_file_waits_for_the_federation_then_is_published_once() {
        let now = Instant::now();
        let mut p = machine();
        let (digest, read) = valid("v1", 1);
        p.handle_file_read(read);
        assert_eq!(p.poll_publish(now), None, "not federated yet");
        assert_eq!(p.status().state, DescriptorState::Pending);

        p.handle_federation(now, true);
        let order = p.poll_publish(now).expect("publishes at join");
        assert_eq!(order.digest, digest);
        assert_eq!(p.poll_publish(now), None, "one call at a time");
        assert_eq!(p.status().state, DescriptorState::Pending);

        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        p.handle_publish_outcome(now, order, published(1, at));
        assert_eq!(
            notices(&mut p),
            [Notice::Published {
                version: 1,
                triples: 60,
                unchanged: false
            }]
        );
        let status = p.status();
        assert_eq!(status.state, DescriptorState::Published);
        assert_eq!(status.published_version, 1);
        assert_eq!(status.triples, 60);
        assert_eq!(status.published_at, Some(at));
        assert_eq!(status.last_error, None);
        assert_eq!(p.published_version(), 1);

        // Nothing changed: nothing to do, even much later or after the
        // link dropped and came back.
        p.handle_file_read(valid("v1", 1).1);
        p.handle_federation(now, false);
        p.handle_federation(now, true);
        assert_eq!(p.poll_publish(now + Duration::from_secs(3600)), None);
        assert!(notices(&mut p).is_empty());
    }

    #[test]
    fn a_changed_file_is_published_and_its_version_replaces_the_old_one() {
        let now = Instant::now();
        let mut p = published_machine(now, "v1", 1);
        let (digest, read) = valid("v2", 2);
        p.handle_file_read(read);
        let status = p.status();
        assert_eq!(status.state, DescriptorState::Pending);
        assert_eq!(status.published_version, 1, "v1 is in force until v2 is");
        let order = p.poll_publish(now).expect("publishes the change");
        assert_eq!(order.digest, digest);
        p.handle_publish_outcome(now, order, published(2, OffsetDateTime::UNIX_EPOCH));
        assert_eq!(p.published_version(), 2);
        assert_eq!(p.status().state, DescriptorState::Published);
    }

    #[test]
    fn an_invalid_file_is_not_sent_and_the_published_version_stays() {
        let now = Instant::now();
        let mut p = published_machine(now, "v1", 1);
        let reason = "Turtle syntax error at line 3, column 7: expected '.'";
        p.handle_file_read(FileRead::Read {
            digest: ContentDigest::of(b"broken"),
            checked: Err(reason.into()),
        });
        assert_eq!(p.poll_publish(now), None);
        let status = p.status();
        assert_eq!(status.state, DescriptorState::Invalid);
        assert_eq!(status.published_version, 1);
        let error = status.last_error.expect("says why");
        assert_eq!(error, format!("{PATH}: {reason}"));
        assert_eq!(notices(&mut p), [Notice::Invalid(error)]);

        // The same fault again is not news.
        p.handle_file_read(FileRead::Read {
            digest: ContentDigest::of(b"broken"),
            checked: Err(reason.into()),
        });
        assert!(notices(&mut p).is_empty());

        // Back to the published content: published again, without a call.
        p.handle_file_read(valid("v1", 1).1);
        assert_eq!(p.poll_publish(now), None);
        assert_eq!(p.status().state, DescriptorState::Published);
    }

    #[test]
    fn a_missing_file_is_invalid_and_names_the_path() {
        let now = Instant::now();
        let mut p = machine();
        p.handle_federation(now, true);
        p.handle_file_read(FileRead::Unreadable(
            "cannot read the file: No such file or directory (os error 2)".into(),
        ));
        assert_eq!(p.poll_publish(now), None);
        let status = p.status();
        assert_eq!(status.state.words(), "invalid");
        assert_eq!(status.published_version, 0);
        assert!(
            status
                .last_error
                .is_some_and(|e| e.starts_with(PATH) && e.contains("No such file")),
        );
        assert_eq!(notices(&mut p).len(), 1);

        // The file appears: published.
        p.handle_file_read(valid("v1", 1).1);
        assert!(p.poll_publish(now).is_some());
    }

    #[test]
    fn another_clouds_descriptor_is_invalid_locally() {
        let now = Instant::now();
        let mut p = machine();
        p.handle_federation(now, true);
        p.handle_file_read(FileRead::Read {
            digest: ContentDigest::of(b"cloud-b"),
            checked: Ok(CheckedDescriptor {
                cloud_id: "cloud-b".into(),
                version: 1,
                triples: 40,
            }),
        });
        assert_eq!(p.poll_publish(now), None, "the root is not asked");
        let status = p.status();
        assert_eq!(status.state, DescriptorState::Invalid);
        let error = status.last_error.expect("says why");
        assert!(
            error.contains("\"cloud-b\"") && error.contains("this broker is cloud-a"),
            "{error}"
        );
    }

    #[test]
    fn a_refusal_is_not_retried_until_the_file_changes() {
        let now = Instant::now();
        let mut p = published_machine(now, "v1", 1);
        let (refused_digest, read) = valid("v1 edited", 1);
        p.handle_file_read(read);
        let order = p.poll_publish(now).expect("publishes");
        let words = "FAILED_PRECONDITION: version 1 is already published with other triples";
        p.handle_publish_outcome(now, order, PublishOutcome::Refused(words.into()));
        assert_eq!(notices(&mut p), [Notice::Refused(words.into())]);
        let status = p.status();
        assert_eq!(status.state, DescriptorState::Refused);
        assert_eq!(status.last_error.as_deref(), Some(words));
        assert_eq!(status.published_version, 1);

        let later = now + Duration::from_secs(3600);
        p.handle_federation(later, false);
        p.handle_federation(later, true);
        p.handle_file_read(valid("v1 edited", 1).1);
        assert_eq!(p.poll_publish(later), None, "same content, same answer");

        // The operator fixes it.
        p.handle_file_read(valid("v2", 2).1);
        assert_eq!(p.status().state, DescriptorState::Pending);
        let order = p.poll_publish(later).expect("the change is published");
        assert_ne!(order.digest, refused_digest);
        p.handle_publish_outcome(later, order, published(2, OffsetDateTime::UNIX_EPOCH));
        assert_eq!(p.status().state, DescriptorState::Published);

        // Going back to the refused content is a change too: asked again.
        p.handle_file_read(valid("v1 edited", 1).1);
        assert_eq!(
            p.poll_publish(later).map(|o| o.digest),
            Some(refused_digest)
        );
    }

    #[test]
    fn an_unreachable_root_is_retried_with_backoff_and_reported_once() {
        let now = Instant::now();
        let mut p = machine();
        p.handle_federation(now, true);
        p.handle_file_read(valid("v1", 1).1);
        let down = || PublishOutcome::Unreachable("UNAVAILABLE: connection refused".into());

        let order = p.poll_publish(now).expect("publishes");
        p.handle_publish_outcome(now, order, down());
        assert_eq!(
            notices(&mut p),
            [Notice::RootUnreachable(
                "UNAVAILABLE: connection refused".into()
            )]
        );
        let status = p.status();
        assert_eq!(status.state.words(), "root unreachable");
        assert_eq!(
            status.last_error.as_deref(),
            Some("UNAVAILABLE: connection refused")
        );
        assert_eq!(p.poll_publish(now + Duration::from_millis(199)), None);
        let t1 = now + Duration::from_millis(200);
        let order = p.poll_publish(t1).expect("retried after 200 ms");
        assert_eq!(
            p.status().state,
            DescriptorState::RootUnreachable,
            "until the root answers"
        );
        p.handle_publish_outcome(t1, order, down());
        assert!(notices(&mut p).is_empty(), "once per outage");
        assert_eq!(p.poll_publish(t1 + Duration::from_millis(399)), None);
        let t2 = t1 + Duration::from_millis(400);
        let order = p.poll_publish(t2).expect("retried after 400 ms");
        p.handle_publish_outcome(t2, order, published(1, OffsetDateTime::UNIX_EPOCH));
        assert_eq!(p.status().state, DescriptorState::Published);
        assert_eq!(p.status().last_error, None);

        // The backoff starts over after a success.
        p.handle_file_read(valid("v2", 2).1);
        let order = p.poll_publish(t2).expect("publishes v2");
        p.handle_publish_outcome(t2, order, down());
        assert_eq!(notices(&mut p).len(), 2, "published, then a new outage");
        assert!(p.poll_publish(t2 + Duration::from_millis(200)).is_some());
    }

    #[test]
    fn a_rejoin_retries_at_once() {
        let now = Instant::now();
        let mut p = machine();
        p.handle_federation(now, true);
        p.handle_file_read(valid("v1", 1).1);
        for _ in 0..5 {
            let order = p
                .poll_publish(now + Duration::from_secs(60))
                .expect("retry");
            p.handle_publish_outcome(now, order, PublishOutcome::Unreachable("down".into()));
        }
        p.handle_federation(now, false);
        assert_eq!(p.poll_publish(now), None, "not federated");
        p.handle_federation(now, true);
        assert!(p.poll_publish(now).is_some(), "the link is back: no wait");
    }

    #[test]
    fn an_invalid_edit_after_a_refusal_clears_it() {
        let now = Instant::now();
        let mut p = machine();
        p.handle_federation(now, true);
        let (digest, read) = valid("v1", 1);
        p.handle_file_read(read);
        let order = p.poll_publish(now).expect("publishes");
        p.handle_publish_outcome(now, order, PublishOutcome::Refused("no".into()));
        p.handle_file_read(FileRead::Unreadable("cannot read the file".into()));
        p.handle_file_read(valid("v1", 1).1);
        assert_eq!(p.poll_publish(now).map(|o| o.digest), Some(digest));
    }

    #[test]
    fn digests_print_as_hex() {
        assert_eq!(
            ContentDigest::of(b"").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
