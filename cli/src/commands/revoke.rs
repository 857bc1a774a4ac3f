//! `revoke <cloud-id>` and `revocations`.

use intercloud_proto::v1::{ListRevocationsRequest, RevokeRequest};

use super::{Globals, RootSession, cloud_id};
use crate::output::{Revocations, Revoked};

/// `Federation.Revoke`.
pub async fn revoke(
    globals: &Globals,
    cloud: &str,
    reason: Option<String>,
) -> anyhow::Result<String> {
    let cloud = cloud_id(cloud)?;
    let RootSession { mut client, remote } = RootSession::connect(globals).await?;
    let request = RevokeRequest {
        cloud_id: cloud.to_string(),
        reason: reason.unwrap_or_default(),
    };
    let response = remote.call("Revoke", client.revoke(request)).await?;
    globals.render(&Revoked::new(cloud.as_str(), &response))
}

/// `Federation.ListRevocations`.
pub async fn list(globals: &Globals) -> anyhow::Result<String> {
    let RootSession { mut client, remote } = RootSession::connect(globals).await?;
    let response = remote
        .call(
            "ListRevocations",
            client.list_revocations(ListRevocationsRequest {}),
        )
        .await?;
    globals.render(&Revocations::from(&response))
}
