//! `token create`: one-time join tokens for new clouds.

use intercloud_proto::v1::CreateJoinTokenRequest;

use super::{Globals, RootSession, cloud_id};
use crate::output::JoinToken;

/// `Federation.CreateJoinToken`; `ttl` `None` leaves the lifetime to the root.
pub async fn create(globals: &Globals, cloud: &str, ttl: Option<u32>) -> anyhow::Result<String> {
    let cloud = cloud_id(cloud)?;
    let RootSession { mut client, remote } = RootSession::connect(globals).await?;
    let request = CreateJoinTokenRequest {
        cloud_id: cloud.to_string(),
        ttl_seconds: ttl.unwrap_or(0),
    };
    let token = remote
        .call("CreateJoinToken", client.create_join_token(request))
        .await?;
    globals.render(&JoinToken::from(&token))
}
