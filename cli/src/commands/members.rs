//! `members` and `member <cloud-id>`: the root's membership list.

use intercloud_proto::v1::{GetMemberRequest, ListMembersRequest};

use super::{Globals, RootSession, cloud_id};
use crate::output::{Member, MemberList};

/// `Federation.ListMembers`.
pub async fn list(globals: &Globals) -> anyhow::Result<String> {
    let RootSession { mut client, remote } = RootSession::connect(globals).await?;
    let members = remote
        .call("ListMembers", client.list_members(ListMembersRequest {}))
        .await?;
    globals.render(&MemberList::from(&members))
}

/// `Federation.GetMember`.
pub async fn show(globals: &Globals, cloud: &str) -> anyhow::Result<String> {
    let cloud = cloud_id(cloud)?;
    let RootSession { mut client, remote } = RootSession::connect(globals).await?;
    let request = GetMemberRequest {
        cloud_id: cloud.to_string(),
    };
    let member = remote.call("GetMember", client.get_member(request)).await?;
    globals.render(&Member::from(&member))
}
