//! The publication driver: reads the descriptor file every
//! `directory.check_seconds`, watches the link's phase, calls
//! `Directory.Publish` when [`Publication::poll_publish`] says so, logs each
//! notice once, and puts the status where the operator API and presence read
//! it. Every decision is made in [`super::state`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use intercloud_daemon::config::ConfigError;
use intercloud_ontology::descriptor::{DescriptorFormat, MAX_DESCRIPTOR_BYTES};
use intercloud_proto::v1::PublishRequest;
use intercloud_proto::v1::directory_client::DirectoryClient;
use time::OffsetDateTime;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tracing::{error, info, warn};

use super::inspect::inspect;
use super::state::{
    CheckedDescriptor, ContentDigest, FileRead, Notice, Publication, PublishOrder, PublishOutcome,
};
use crate::config::BrokerConfig;
use crate::core::BrokerCore;
use crate::link_state::{Backoff, Phase};

/// How often the link's phase and the retry timer are looked at (the file
/// is read only every `check`).
const TICK: Duration = Duration::from_millis(250);

/// A publication carries up to 1 MiB that the root parses and validates:
/// allow it more than an ordinary call.
const MIN_PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// What the driver needs besides the shared core.
#[derive(Debug, Clone)]
pub struct PublisherSettings {
    /// The descriptor file.
    pub path: PathBuf,
    /// Its format, from its extension.
    pub format: DescriptorFormat,
    /// How often it is read.
    pub check: Duration,
}

impl PublisherSettings {
    /// The settings, if `[directory] descriptor` is configured.
    pub fn from_config(config: &BrokerConfig) -> Result<Option<Self>, ConfigError> {
        Ok(config
            .directory
            .descriptor_file()?
            .map(|(path, format)| Self {
                path,
                format,
                check: Duration::from_secs(config.directory.check_seconds),
            }))
    }
}

/// Runs the driver until `stopped` completes.
pub async fn run(
    core: Arc<BrokerCore>,
    settings: PublisherSettings,
    stopped: impl Future<Output = ()>,
) {
    let channel = match intercloud_trust::connect::lazy_channel(
        &core.config.root.api,
        // Read anew for each connection: a renewed certificate applies.
        core.client_config(),
    ) {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "cannot set up the channel to the root; the descriptor will not be published");
            return;
        }
    };
    let timers = &core.config.timers;
    let publication = Publication::new(
        core.config.cloud_id.clone(),
        settings.path.display().to_string(),
        Backoff::new(
            Duration::from_millis(timers.backoff_initial_ms),
            Duration::from_millis(timers.backoff_max_ms),
        ),
    );
    let mut publisher = Publisher {
        timeout: timers.root_call_timeout().max(MIN_PUBLISH_TIMEOUT),
        client: DirectoryClient::new(channel),
        core,
        settings,
        publication,
        last_read: None,
        content: None,
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_check = Instant::now();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stopped => return,
        }
        let now = Instant::now();
        let federated = publisher.core.link(|l| l.phase) == Phase::Federated;
        publisher
            .publication
            .handle_federation(now.into_std(), federated);
        if now >= next_check {
            next_check = now + publisher.settings.check;
            publisher.read_file().await;
        }
        if let Some(order) = publisher.publication.poll_publish(now.into_std()) {
            let outcome = tokio::select! {
                outcome = publisher.publish(order) => outcome,
                () = &mut stopped => return,
            };
            publisher
                .publication
                .handle_publish_outcome(Instant::now().into_std(), order, outcome);
        }
        publisher.report();
    }
}

/// The file's content as last read, when it passed the local checks.
struct Content {
    digest: ContentDigest,
    bytes: Vec<u8>,
    checked: CheckedDescriptor,
}

struct Publisher {
    core: Arc<BrokerCore>,
    settings: PublisherSettings,
    client: DirectoryClient<Channel>,
    timeout: Duration,
    publication: Publication,
    /// What the last read found: the content's digest, or why it could not
    /// be read. The state machine hears only of changes.
    last_read: Option<Result<ContentDigest, String>>,
    content: Option<Content>,
}

/// One read of the file.
enum Read {
    Unreadable(String),
    /// Same bytes as last time.
    Same,
    New {
        digest: ContentDigest,
        bytes: Vec<u8>,
        checked: Result<CheckedDescriptor, String>,
    },
}

/// Reads the file and, if it changed since `last`, checks it.
fn read(path: &std::path::Path, format: DescriptorFormat, last: Option<ContentDigest>) -> Read {
    let size = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) => return Read::Unreadable(format!("cannot read the file: {e}")),
    };
    if size > MAX_DESCRIPTOR_BYTES as u64 {
        return Read::Unreadable(format!(
            "the file is {size} bytes, over the limit of {MAX_DESCRIPTOR_BYTES} bytes"
        ));
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return Read::Unreadable(format!("cannot read the file: {e}")),
    };
    let digest = ContentDigest::of(&bytes);
    if last == Some(digest) {
        return Read::Same;
    }
    let checked = inspect(&bytes, format);
    Read::New {
        digest,
        bytes,
        checked,
    }
}

impl Publisher {
    async fn read_file(&mut self) {
        let (path, format) = (self.settings.path.clone(), self.settings.format);
        let last = self.last_read.clone().and_then(Result::ok);
        let read = tokio::task::spawn_blocking(move || read(&path, format, last))
            .await
            .unwrap_or_else(|e| Read::Unreadable(format!("reading the file failed: {e}")));
        match read {
            Read::Same => {}
            Read::Unreadable(reason) => {
                if self.last_read.as_ref() != Some(&Err(reason.clone())) {
                    self.last_read = Some(Err(reason.clone()));
                    self.content = None;
                    self.publication
                        .handle_file_read(FileRead::Unreadable(reason));
                }
            }
            Read::New {
                digest,
                bytes,
                checked,
            } => {
                self.last_read = Some(Ok(digest));
                self.content = checked.clone().ok().map(|checked| Content {
                    digest,
                    bytes,
                    checked,
                });
                self.publication
                    .handle_file_read(FileRead::Read { digest, checked });
            }
        }
    }

    async fn publish(&mut self, order: PublishOrder) -> PublishOutcome {
        let Some(content) = self.content.as_ref().filter(|c| c.digest == order.digest) else {
            // Cannot happen: the state machine orders only the content read last.
            return PublishOutcome::Unreachable("the file changed while publishing".into());
        };
        let request = PublishRequest {
            descriptor: content.bytes.clone(),
            media_type: self.settings.format.media_type().to_owned(),
        };
        let local = content.checked.clone();
        let answer = tokio::time::timeout(self.timeout, self.client.publish(request)).await;
        match answer {
            Err(_) => PublishOutcome::Unreachable(format!(
                "the root did not answer within {} s",
                self.timeout.as_secs()
            )),
            Ok(Ok(response)) => {
                let response = response.into_inner();
                let info = response.descriptor;
                PublishOutcome::Published {
                    version: info.as_ref().map_or(local.version, |i| i.version),
                    triples: info.as_ref().map_or(local.triples, |i| i.triples),
                    at: info
                        .and_then(|i| i.published_at)
                        .and_then(datetime)
                        .unwrap_or_else(OffsetDateTime::now_utc),
                    unchanged: response.unchanged,
                }
            }
            Ok(Err(status)) => outcome_of(&status),
        }
    }

    /// Logs what changed and shares the status.
    fn report(&mut self) {
        let cloud = &self.core.config.cloud_id;
        let path = self.settings.path.display();
        while let Some(notice) = self.publication.poll_notice() {
            match notice {
                Notice::Published {
                    version,
                    triples,
                    unchanged,
                } => {
                    info!(%cloud, version, triples, unchanged, %path, "descriptor published");
                }
                Notice::Invalid(reason) => warn!(
                    %cloud,
                    in_force = self.publication.published_version(),
                    %reason,
                    "descriptor invalid; not published"
                ),
                Notice::Refused(reason) => warn!(
                    %cloud,
                    in_force = self.publication.published_version(),
                    %path,
                    %reason,
                    "descriptor refused by the root; not retried until the file changes"
                ),
                Notice::RootUnreachable(reason) => warn!(
                    %cloud,
                    root = %self.core.config.root.api,
                    %reason,
                    "root unreachable; descriptor publication retried with backoff"
                ),
            }
        }
        self.core.set_descriptor(self.publication.status());
    }
}

/// What a failed call means: the root's refusal of this content, or a
/// failure to reach it (retried).
fn outcome_of(status: &Status) -> PublishOutcome {
    let mut reason = format!("{}: {}", code_name(status.code()), status.message());
    if let Some(source) = std::error::Error::source(status) {
        let chain = intercloud_trust::connect::error_chain(source);
        if !reason.contains(&chain) {
            reason = format!("{reason}: {chain}");
        }
    }
    match status.code() {
        Code::FailedPrecondition
        | Code::PermissionDenied
        | Code::InvalidArgument
        | Code::ResourceExhausted => PublishOutcome::Refused(reason),
        _ => PublishOutcome::Unreachable(reason),
    }
}

/// `FailedPrecondition` → `FAILED_PRECONDITION`, as gRPC documents codes.
fn code_name(code: Code) -> String {
    let mut name = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

fn datetime(t: prost_types::Timestamp) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos),
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_failures_are_told_apart() {
        for code in [
            Code::FailedPrecondition,
            Code::PermissionDenied,
            Code::InvalidArgument,
            Code::ResourceExhausted,
        ] {
            assert!(
                matches!(
                    outcome_of(&Status::new(code, "no")),
                    PublishOutcome::Refused(_)
                ),
                "{code:?}"
            );
        }
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Unknown,
            Code::Internal,
            Code::Unimplemented,
        ] {
            assert!(
                matches!(
                    outcome_of(&Status::new(code, "no")),
                    PublishOutcome::Unreachable(_)
                ),
                "{code:?}"
            );
        }
        assert_eq!(
            outcome_of(&Status::failed_precondition(
                "version 1 is already published with other triples"
            )),
            PublishOutcome::Refused(
                "FAILED_PRECONDITION: version 1 is already published with other triples".into()
            )
        );
    }

    #[test]
    fn reading_reports_missing_and_unchanged_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cloud-a.ttl");
        match read(&path, DescriptorFormat::Turtle, None) {
            Read::Unreadable(reason) => assert!(reason.contains("cannot read"), "{reason}"),
            _ => panic!("a missing file is unreadable"),
        }
        std::fs::write(
            &path,
            include_str!("../../../ontology/examples/cloud-a.ttl"),
        )
        .expect("write");
        let digest = match read(&path, DescriptorFormat::Turtle, None) {
            Read::New {
                digest,
                checked: Ok(checked),
                ..
            } => {
                assert_eq!(checked.cloud_id, "cloud-a");
                digest
            }
            _ => panic!("cloud-a is valid"),
        };
        assert!(matches!(
            read(&path, DescriptorFormat::Turtle, Some(digest)),
            Read::Same
        ));
        std::fs::write(&path, vec![b' '; MAX_DESCRIPTOR_BYTES + 1]).expect("write");
        match read(&path, DescriptorFormat::Turtle, Some(digest)) {
            Read::Unreadable(reason) => assert!(reason.contains("over the limit"), "{reason}"),
            _ => panic!("an oversized file is not read"),
        }
    }

    #[test]
    fn timestamps_convert() {
        let t = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        };
        assert_eq!(
            datetime(t).map(OffsetDateTime::unix_timestamp_nanos),
            Some(1_700_000_000_000_000_005)
        );
    }
}
