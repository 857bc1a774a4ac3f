//! `intercloudctl`, the operator CLI of the Intercloud federation.
//!
//! Map of the crate:
//! - [`args`]: the command line (clap).
//! - [`config`]: the contexts file: named servers and the TLS material to reach them.
//! - [`client`]: channels built from a context, calls with a timeout, and
//!   gRPC failures turned into operator-facing errors.
//! - [`commands`]: one module per command group, each returning the text to print
//!   and the exit status (`peers --watch` and `directory watch` print events as
//!   they arrive, as do `transfers --watch`, `migrate` and `object put`). A
//!   broker's API: `status`, `peers`, `negotiate`, `transfers`, `instance`,
//!   `migrate`, `object`, `vnet`, `policy`; the root's
//!   `Federation`: `members`, `member`, `token`, `revoke`, `revocations`; the
//!   root's `Directory`: `publish`, `query`, `match`, `directory`; the root's
//!   `Time`: `time`; the root's enrolment port: `enroll`; local only:
//!   `describe`, `contexts`.
//! - [`output`]: views of the responses, rendered as tables or JSON (pure).
//! - [`report`]: the single `error: …` line and its hint.
//! - [`size`]: sizes typed with K/M/G/T suffixes.
//!
//! Exit status: 0 on success, 1 on any failure (2 for command-line misuse,
//! from clap), 3 when a peer declined a `negotiate`, a `match` found no
//! candidate, or the steps of a `migrate` or `object put` ended before
//! `done` or `failed`, 4 when `describe` or `publish` finds that the
//! descriptor violates the shapes.

#![forbid(unsafe_code)]

mod args;
mod client;
mod commands;
mod config;
mod output;
mod report;
mod size;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(commands::run(cli)));
    match result {
        Ok(outcome) => {
            // A closed pipe (`| head`) is not worth an error message.
            let mut stdout = std::io::stdout().lock();
            let _ = stdout
                .write_all(outcome.text.as_bytes())
                .and_then(|()| stdout.flush());
            ExitCode::from(outcome.exit)
        }
        Err(error) => {
            eprintln!("{}", report::line(&error));
            ExitCode::FAILURE
        }
    }
}
