//! `peers` and `peers --watch`: the peers a broker sees through presence.

use intercloud_proto::v1::{ListPeersRequest, WatchPeersRequest};
use time::OffsetDateTime;

use super::watching::{emit, interrupted};
use super::{BrokerSession, Globals, Outcome};
use crate::args::PeersArgs;
use crate::config::{Context, ContextKind};
use crate::output::{PeerChange, PeerList};
use crate::report::hinted;

/// `Broker.ListPeers`, or `Broker.WatchPeers` with `--watch`.
pub async fn run(globals: &Globals, args: PeersArgs) -> anyhow::Result<Outcome> {
    let file = globals.contexts()?;
    let context = file.select(globals.context.as_deref())?;
    if context.kind == ContextKind::Root {
        return Err(hinted(
            format!(
                "peers are a broker's view, and context {:?} is the root",
                context.name
            ),
            "pass --context with a cloud's context (see `intercloudctl contexts`)",
        ));
    }
    if args.watch {
        tokio::select! {
            outcome = watch(globals, context, !args.no_current, args.count) => outcome,
            () = interrupted() => Ok(Outcome::success(String::new())),
        }
    } else {
        list(globals, context).await.map(Outcome::success)
    }
}

async fn list(globals: &Globals, context: &Context) -> anyhow::Result<String> {
    let BrokerSession { mut client, remote } = BrokerSession::connect(context, globals).await?;
    let peers = remote
        .call("ListPeers", client.list_peers(ListPeersRequest {}))
        .await?;
    globals.render(&PeerList::from(&peers))
}

/// Prints each event as one line as soon as it arrives. `--timeout` covers
/// connecting and opening the stream, not the wait for events.
async fn watch(
    globals: &Globals,
    context: &Context,
    include_current: bool,
    count: Option<u64>,
) -> anyhow::Result<Outcome> {
    let BrokerSession { mut client, remote } = BrokerSession::connect(context, globals).await?;
    let mut stream = remote
        .call(
            "WatchPeers",
            client.watch_peers(WatchPeersRequest { include_current }),
        )
        .await?;
    let mut printed = 0;
    while count.is_none_or(|n| printed < n) {
        let event = match stream.message().await {
            Ok(Some(event)) => event,
            Ok(None) => return Err(remote.stream_ended("WatchPeers")),
            Err(status) => return Err(remote.stream_error("WatchPeers", &status)),
        };
        let line = PeerChange::new(&event, OffsetDateTime::now_utc()).line(globals.format)?;
        if !emit(&line)? {
            break;
        }
        printed += 1;
    }
    Ok(Outcome::success(String::new()))
}
