//! `directory get|withdraw|watch`: the clouds' descriptors in the root's
//! directory.

use intercloud_proto::v1::{GetDescriptorRequest, WatchDirectoryRequest, WithdrawRequest};
use time::OffsetDateTime;

use super::watching::{emit, interrupted};
use super::{DirectorySession, Globals, Outcome, cloud_id};
use crate::args::DirectoryWatchArgs;
use crate::output::{DescriptorDocument, DirectoryChange, Withdrawn};

/// `Directory.Get`: the Turtle, or with `--output json` the descriptor's
/// record and the Turtle.
pub async fn get(globals: &Globals, cloud: &str) -> anyhow::Result<String> {
    let cloud = cloud_id(cloud)?;
    let DirectorySession { mut client, remote } = DirectorySession::connect(globals).await?;
    let request = GetDescriptorRequest {
        cloud_id: cloud.to_string(),
    };
    let response = remote.call("Directory.Get", client.get(request)).await?;
    globals.render(&DescriptorDocument::from(&response))
}

/// `Directory.Withdraw`: `cloud`'s descriptor, or the caller's own cloud's
/// when `None` (the root decides which that is, from the certificate).
pub async fn withdraw(globals: &Globals, cloud: Option<&str>) -> anyhow::Result<String> {
    let cloud = cloud.map(cloud_id).transpose()?;
    let DirectorySession { mut client, remote } = DirectorySession::connect(globals).await?;
    let request = WithdrawRequest {
        cloud_id: cloud.map(|c| c.to_string()).unwrap_or_default(),
    };
    let response = remote
        .call("Directory.Withdraw", client.withdraw(request))
        .await?;
    globals.render(&Withdrawn::from(&response))
}

/// `Directory.Watch`: one line per event as it arrives, until interrupted,
/// `--count` events, or the root ends the stream.
pub async fn watch(globals: &Globals, args: &DirectoryWatchArgs) -> anyhow::Result<Outcome> {
    tokio::select! {
        outcome = stream(globals, !args.no_current, args.count) => outcome,
        () = interrupted() => Ok(Outcome::success(String::new())),
    }
}

/// `--timeout` covers connecting and opening the stream, not the wait for
/// events.
async fn stream(
    globals: &Globals,
    include_current: bool,
    count: Option<u64>,
) -> anyhow::Result<Outcome> {
    const METHOD: &str = "Directory.Watch";
    let DirectorySession { mut client, remote } = DirectorySession::connect(globals).await?;
    let mut stream = remote
        .call(
            METHOD,
            client.watch(WatchDirectoryRequest { include_current }),
        )
        .await?;
    let mut printed = 0;
    while count.is_none_or(|n| printed < n) {
        let event = match stream.message().await {
            Ok(Some(event)) => event,
            Ok(None) => return Err(remote.stream_ended(METHOD)),
            Err(status) => return Err(remote.stream_error(METHOD, &status)),
        };
        let line = DirectoryChange::new(&event, OffsetDateTime::now_utc()).line(globals.format)?;
        if !emit(&line)? {
            break;
        }
        printed += 1;
    }
    Ok(Outcome::success(String::new()))
}
