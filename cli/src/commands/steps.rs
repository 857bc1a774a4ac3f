//! Following a stream of steps to its end, for `migrate` and `object put`:
//! each step printed as it arrives (`[target] cloud-b (…)`), a step's
//! transfer shown as a bar or as lines, and the verdict that sets the exit
//! status.

use std::collections::HashSet;

use intercloud_proto::v1 as pb;
use time::OffsetDateTime;
use tonic::codec::Streaming;

use super::EXIT_UNFINISHED;
use super::progress::Progress;
use crate::client::Remote;
use crate::output::{Format, MigrationStep, Object, ObjectStep, Render, step_line};
use crate::report::hinted;

/// How a stream of steps ended.
#[derive(Debug)]
pub enum Verdict {
    /// The last step was `done`.
    Done,
    /// The last step was `failed`, with its detail.
    Failed(String),
    /// The stream ended, or broke, before `done` or `failed`: the outcome
    /// is unknown.
    Unfinished(anyhow::Error),
}

impl Verdict {
    /// The verdict a step gives, if it is the last one (`done` or `failed`).
    pub fn of_step(step: &str, detail: &str) -> Option<Self> {
        match step {
            "done" => Some(Self::Done),
            "failed" => Some(Self::Failed(detail.to_owned())),
            _ => None,
        }
    }

    /// 0 when done, 1 when failed, [`EXIT_UNFINISHED`] when unknown.
    pub fn exit(&self) -> u8 {
        match self {
            Self::Done => 0,
            Self::Failed(_) => 1,
            Self::Unfinished(_) => EXIT_UNFINISHED,
        }
    }
}

/// A step message of a stream: `MigrationStep` or `ObjectStep`.
pub trait StepMessage {
    fn step(&self) -> &str;
    fn detail(&self) -> &str;
    fn transfer(&self) -> Option<&pb::Transfer>;
    /// The step as one compact JSON object (JSON Lines).
    fn json_line(&self) -> anyhow::Result<String>;
    /// What follows the step's line in a table (the object of `done`).
    fn epilogue(&self, now: OffsetDateTime) -> Option<String>;
}

impl StepMessage for pb::MigrationStep {
    fn step(&self) -> &str {
        &self.step
    }
    fn detail(&self) -> &str {
        &self.detail
    }
    fn transfer(&self) -> Option<&pb::Transfer> {
        self.transfer.as_ref()
    }
    fn json_line(&self) -> anyhow::Result<String> {
        MigrationStep::from(self).json_line()
    }
    fn epilogue(&self, _now: OffsetDateTime) -> Option<String> {
        None
    }
}

impl StepMessage for pb::ObjectStep {
    fn step(&self) -> &str {
        &self.step
    }
    fn detail(&self) -> &str {
        &self.detail
    }
    fn transfer(&self) -> Option<&pb::Transfer> {
        self.transfer.as_ref()
    }
    fn json_line(&self) -> anyhow::Result<String> {
        ObjectStep::from(self).json_line()
    }
    fn epilogue(&self, now: OffsetDateTime) -> Option<String> {
        (self.step == "done")
            .then_some(self.object.as_ref())
            .flatten()
            .map(|object| Object::from(object).table(now))
    }
}

/// Which `[step] detail` lines to print. A step that carries a transfer
/// comes again with every progress update: its line is printed once (and
/// not at all without a detail, the bar or the update lines say it all).
#[derive(Debug, Default)]
pub struct StepLog {
    printed: HashSet<(String, String)>,
}

impl StepLog {
    /// The line to print for a step, if any.
    pub fn line(&mut self, step: &str, detail: &str, with_transfer: bool) -> Option<String> {
        if with_transfer
            && (detail.trim().is_empty()
                || !self.printed.insert((step.to_owned(), detail.to_owned())))
        {
            return None;
        }
        Some(step_line(step, detail))
    }
}

/// Prints each step as it arrives until `done` or `failed`, or the end of
/// the stream. No timeout: a transfer takes as long as it takes.
pub async fn follow<S: StepMessage>(
    stream: &mut Streaming<S>,
    remote: &Remote,
    method: &str,
    format: Format,
    progress: &mut Progress,
) -> anyhow::Result<Verdict> {
    let mut log = StepLog::default();
    loop {
        let step = match stream.message().await {
            Ok(Some(step)) => step,
            Ok(None) => {
                progress.clear();
                return Ok(Verdict::Unfinished(remote.stream_ended(method)));
            }
            Err(status) => {
                progress.clear();
                return Ok(Verdict::Unfinished(remote.stream_error(method, &status)));
            }
        };
        show(&step, &mut log, format, progress)?;
        if let Some(verdict) = Verdict::of_step(step.step(), step.detail()) {
            progress.clear();
            if format == Format::Table
                && let Some(text) = step.epilogue(OffsetDateTime::now_utc())
            {
                progress.print(&text)?;
            }
            return Ok(verdict);
        }
    }
}

fn show<S: StepMessage>(
    step: &S,
    log: &mut StepLog,
    format: Format,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    if format == Format::Json {
        return progress.print(&step.json_line()?);
    }
    let transfer = step.transfer();
    if let Some(line) = log.line(step.step(), step.detail(), transfer.is_some()) {
        progress.print(&line)?;
    }
    if let Some(transfer) = transfer {
        progress.update(Some(step.step()), transfer)?;
    }
    Ok(())
}

/// The error line for a stream that ended before its verdict: what is
/// unknown, why, and where to look.
pub fn unfinished(cause: anyhow::Error, what: &str, hint: &str) -> anyhow::Error {
    let cause = crate::report::line(&cause);
    let cause = cause.strip_prefix("error: ").unwrap_or(&cause);
    // The cause's own hint ("watch again") does not fit: replace it.
    let cause = cause.split(" — ").next().unwrap_or(cause);
    hinted(format!("{what} is unknown: {cause}"), hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_done_and_failed_end_a_stream() {
        assert!(matches!(Verdict::of_step("done", ""), Some(Verdict::Done)));
        assert!(matches!(
            Verdict::of_step("failed", "no space"),
            Some(Verdict::Failed(detail)) if detail == "no space"
        ));
        for step in [
            "target",
            "offer",
            "transfer",
            "verify",
            "import",
            "release",
            "upload",
            "placement",
            "stored",
            "Done",
            "",
        ] {
            assert!(Verdict::of_step(step, "").is_none(), "{step}");
        }
    }

    #[test]
    fn exit_status_is_0_done_1_failed_3_unknown() {
        assert_eq!(Verdict::Done.exit(), 0);
        assert_eq!(Verdict::Failed(String::new()).exit(), 1);
        assert_eq!(
            Verdict::Unfinished(anyhow::anyhow!("stream closed")).exit(),
            3
        );
    }

    #[test]
    fn a_steps_line_is_printed_once_when_its_transfer_repeats_it() {
        let mut log = StepLog::default();
        assert_eq!(
            log.line("target", "cloud-b", false).as_deref(),
            Some("[target] cloud-b\n")
        );
        // Without a transfer, every step prints, even a repeat.
        assert_eq!(
            log.line("target", "cloud-b", false).as_deref(),
            Some("[target] cloud-b\n")
        );
        assert_eq!(
            log.line("transfer", "64 MiB to cloud-b", true).as_deref(),
            Some("[transfer] 64 MiB to cloud-b\n")
        );
        assert_eq!(log.line("transfer", "64 MiB to cloud-b", true), None);
        assert_eq!(
            log.line("transfer", "64 MiB to cloud-c", true).as_deref(),
            Some("[transfer] 64 MiB to cloud-c\n")
        );
        assert_eq!(log.line("transfer", "64 MiB to cloud-b", true), None);
        assert_eq!(log.line("transfer", "", true), None);
        assert_eq!(log.line("done", "", false).as_deref(), Some("[done]\n"));
    }

    #[test]
    fn an_unknown_outcome_keeps_the_cause_and_gives_its_own_next_step() {
        let cause = hinted(
            "the broker at 127.0.0.1:7501 closed the Migrate stream",
            "watch again",
        );
        let error = unfinished(
            cause,
            "the outcome of migrating web-1",
            "see `intercloudctl instance ls`",
        );
        assert_eq!(
            crate::report::line(&error),
            "error: the outcome of migrating web-1 is unknown: the broker at 127.0.0.1:7501 closed the Migrate stream — see `intercloudctl instance ls`"
        );
    }

    #[test]
    fn the_object_of_done_follows_its_line() {
        let done = pb::ObjectStep {
            step: "done".into(),
            object: Some(pb::ObjectInfo {
                name: "x".into(),
                replicas_wanted: 1,
                ..pb::ObjectInfo::default()
            }),
            ..pb::ObjectStep::default()
        };
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            done.epilogue(now).as_deref(),
            Some("object x: 0 B, sha256 -, 0/1 replicas stored\nno replicas\n")
        );
        let stored = pb::ObjectStep {
            step: "stored".into(),
            ..done.clone()
        };
        assert_eq!(stored.epilogue(now), None);
        assert_eq!(pb::MigrationStep::default().epilogue(now), None);
    }
}
