//! `status`: a broker's federation status, or the root's summary.

use intercloud_proto::v1::{
    ListMembersRequest, ListPeersRequest, ListRevocationsRequest, StatusRequest,
};
use tonic::Code;

use super::{BrokerSession, Globals, RootSession};
use crate::config::ContextKind;
use crate::output::{BrokerStatus, Presence, RootStatus};

/// `Broker.Status` for a broker context; `ListMembers` and
/// `ListRevocations`, summarized, for a root context.
pub async fn run(globals: &Globals) -> anyhow::Result<String> {
    let file = globals.contexts()?;
    let context = file.select(globals.context.as_deref())?;
    match context.kind {
        ContextKind::Broker(_) => {
            let BrokerSession { mut client, remote } =
                BrokerSession::connect(context, globals).await?;
            let status = remote
                .call("Status", client.status(StatusRequest {}))
                .await?;
            let mut view = BrokerStatus::from(&status);
            if !status.presence_connected {
                // `presence_connected` is false whether presence is down or
                // not configured; ListPeers tells which, and failing to ask
                // must not fail the status.
                let probe =
                    tokio::time::timeout(globals.timeout, client.list_peers(ListPeersRequest {}))
                        .await;
                view.presence = match probe {
                    Ok(Ok(_)) => Presence::Disconnected,
                    Ok(Err(status)) if status.code() == Code::FailedPrecondition => {
                        Presence::NotConfigured
                    }
                    _ => Presence::NotConnected,
                };
            }
            globals.render(&view)
        }
        ContextKind::Root => {
            let RootSession { mut client, remote } = RootSession::connect(globals).await?;
            let members = remote
                .call("ListMembers", client.list_members(ListMembersRequest {}))
                .await?;
            let revocations = remote
                .call(
                    "ListRevocations",
                    client.list_revocations(ListRevocationsRequest {}),
                )
                .await?;
            let federation = context.federation().to_string();
            globals.render(&RootStatus::new(
                &federation,
                &remote.endpoint,
                &members,
                &revocations,
            ))
        }
    }
}
