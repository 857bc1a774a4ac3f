//! `transfers` and `transfers --watch`: the broker's transfers over AMQP.

use intercloud_proto::v1::{ListTransfersRequest, WatchTransfersRequest};

use super::progress::Progress;
use super::watching::interrupted;
use super::{BrokerSession, Globals, Outcome};
use crate::args::TransfersArgs;
use crate::config::Context;
use crate::output::TransferList;

const WATCH: &str = "WatchTransfers";

/// `Broker.ListTransfers`, or `Broker.WatchTransfers` with `--watch`.
pub async fn run(globals: &Globals, args: &TransfersArgs) -> anyhow::Result<Outcome> {
    let file = globals.contexts()?;
    let context = file.select(globals.context.as_deref())?;
    if !args.watch {
        return list(globals, context, args.all).await.map(Outcome::success);
    }
    let mut progress = Progress::new(globals.format);
    let outcome = tokio::select! {
        outcome = watch(globals, context, args, &mut progress) => outcome,
        () = interrupted() => Ok(Outcome::success(String::new())),
    };
    progress.clear();
    outcome
}

async fn list(globals: &Globals, context: &Context, all: bool) -> anyhow::Result<String> {
    let BrokerSession { mut client, remote } = BrokerSession::connect(context, globals).await?;
    let response = remote
        .call(
            "ListTransfers",
            client.list_transfers(ListTransfersRequest {
                include_finished: all,
            }),
        )
        .await?;
    globals.render(&TransferList::new(&response, all))
}

/// Shows every update as it arrives. With `--until-idle`, the watch opens
/// first and the list of active transfers is asked for second, so that
/// none of those can end unseen in between; the watch ends once all the
/// transfers known are over. `--timeout` covers connecting and opening the
/// stream, not the wait for updates.
async fn watch(
    globals: &Globals,
    context: &Context,
    args: &TransfersArgs,
    progress: &mut Progress,
) -> anyhow::Result<Outcome> {
    let BrokerSession { mut client, remote } = BrokerSession::connect(context, globals).await?;
    let mut stream = remote
        .call(
            WATCH,
            client.watch_transfers(WatchTransfersRequest {
                include_finished: args.all,
            }),
        )
        .await?;
    if args.until_idle {
        let active = remote
            .call(
                "ListTransfers",
                client.list_transfers(ListTransfersRequest {
                    include_finished: false,
                }),
            )
            .await?;
        for transfer in active.transfers.iter().filter(|t| !t.finished) {
            progress.expect(&transfer.transfer_id);
        }
        if progress.active() == 0 {
            return Ok(Outcome::success(String::new()));
        }
    }
    loop {
        let transfer = match stream.message().await {
            Ok(Some(transfer)) => transfer,
            Ok(None) => return Err(remote.stream_ended(WATCH)),
            Err(status) => return Err(remote.stream_error(WATCH, &status)),
        };
        progress.update(None, &transfer)?;
        if !progress.open() || (args.until_idle && progress.active() == 0) {
            return Ok(Outcome::success(String::new()));
        }
    }
}
