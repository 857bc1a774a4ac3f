//! `status`: a broker's federation status, or the root's summary.

use intercloud_proto::v1::broker_client::BrokerClient;
use intercloud_proto::v1::{ListMembersRequest, ListRevocationsRequest, StatusRequest};

use super::{Globals, RootSession};
use crate::client::{Remote, operator_tls};
use crate::config::ContextKind;
use crate::output::{BrokerStatus, RootStatus};

/// `Broker.Status` for a broker context; `ListMembers` and
/// `ListRevocations`, summarized, for a root context.
pub async fn run(globals: &Globals) -> anyhow::Result<String> {
    let file = globals.contexts()?;
    let context = file.select(globals.context.as_deref())?;
    match context.kind {
        ContextKind::Broker(_) => {
            let remote = Remote::broker(context, globals.timeout)?;
            let (anchors, credentials) = operator_tls(context)?;
            let mut client = BrokerClient::new(remote.connect(&anchors, Some(&credentials)).await?);
            let status = remote
                .call("Status", client.status(StatusRequest {}))
                .await?;
            globals.render(&BrokerStatus::from(&status))
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
