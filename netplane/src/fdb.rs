//! The forwarding database of a VXLAN device (`bridge fdb ... dev VXLAN self`).
//!
//! rtnetlink's `NeighbourAddRequest` always sends NLM_F_EXCL or
//! NLM_F_REPLACE, so `bridge fdb append` (NLM_F_APPEND, which adds one more
//! destination to the all-zeros entry) is sent here as a raw RTM_NEWNEIGH.

use std::net::Ipv4Addr;

use futures::StreamExt;
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST,
    NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::RouteType;
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::types::MacDisplay;
use crate::{Error, FdbEntry, Mac, Netplane, Removed};

const ENOENT: i32 = nix::errno::Errno::ENOENT as i32;

/// A permanent NTF_SELF entry of device `ifindex`: MAC → remote VTEP.
fn fdb_message(ifindex: u32, mac: Mac, dst: Ipv4Addr) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    msg.header.ifindex = ifindex;
    msg.header.state = NeighbourState::Permanent;
    msg.header.flags = NeighbourFlags::Own;
    msg.header.kind = RouteType::Unspec;
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)));
    msg
}

impl Netplane {
    /// Sends one request and waits for the kernel's acknowledgement.
    pub(crate) async fn acked(
        &self,
        action: &str,
        body: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(), Error> {
        let mut req = NetlinkMessage::from(body);
        req.header.flags = flags;
        let mut handle = self.handle.clone();
        let mut answers = handle
            .request(req)
            .map_err(|e| self.err(action.to_owned(), e))?;
        while let Some(answer) = answers.next().await {
            if let NetlinkPayload::Error(e) = answer.payload {
                return Err(self.err(action.to_owned(), rtnetlink::Error::NetlinkError(e)));
            }
        }
        Ok(())
    }

    /// `bridge fdb append MAC dev VXLAN dst DST self permanent`.
    ///
    /// With [`crate::ZERO_MAC`] (or a multicast MAC) each call adds one more
    /// destination: broadcast and unknown unicast go to every remote VTEP
    /// (head-end replication). Appending a destination that is already
    /// there changes nothing. For a unicast MAC that already has a
    /// destination the kernel keeps the one it has: use
    /// [`Netplane::fdb_replace`] to move it.
    pub async fn fdb_append(&self, vxlan: &str, mac: Mac, dst: Ipv4Addr) -> Result<(), Error> {
        let action = format!("appending fdb {} dst {dst} to {vxlan}", MacDisplay(mac));
        let index = self.index_of(&action, vxlan).await?;
        tracing::debug!(netns = ?self.namespace, "{action}");
        self.acked(
            &action,
            RouteNetlinkMessage::NewNeighbour(fdb_message(index, mac, dst)),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND,
        )
        .await
    }

    /// `bridge fdb replace MAC dev VXLAN dst DST self permanent`: the single
    /// destination of a unicast MAC (the kernel refuses this for the
    /// all-zeros and multicast MACs).
    pub async fn fdb_replace(&self, vxlan: &str, mac: Mac, dst: Ipv4Addr) -> Result<(), Error> {
        let action = format!("replacing fdb {} dst {dst} on {vxlan}", MacDisplay(mac));
        let index = self.index_of(&action, vxlan).await?;
        tracing::debug!(netns = ?self.namespace, "{action}");
        self.acked(
            &action,
            RouteNetlinkMessage::NewNeighbour(fdb_message(index, mac, dst)),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )
        .await
    }

    /// `bridge fdb del MAC dev VXLAN dst DST self`: removes that one
    /// destination. An absent entry (or device) is [`Removed::WasAbsent`].
    pub async fn fdb_delete(&self, vxlan: &str, mac: Mac, dst: Ipv4Addr) -> Result<Removed, Error> {
        let action = format!("deleting fdb {} dst {dst} from {vxlan}", MacDisplay(mac));
        let index = match self.index_of(&action, vxlan).await {
            Ok(i) => i,
            Err(Error::NoSuchLink { .. }) => return Ok(Removed::WasAbsent),
            Err(e) => return Err(e),
        };
        // The kernel answers 0, not ENOENT, for a destination that is not
        // there when the MAC has others: look first.
        let present = self
            .fdb_of(&action, index)
            .await?
            .iter()
            .any(|e| e.mac == mac && e.dst == Some(dst));
        if !present {
            return Ok(Removed::WasAbsent);
        }
        tracing::debug!(netns = ?self.namespace, "{action}");
        match self
            .acked(
                &action,
                RouteNetlinkMessage::DelNeighbour(fdb_message(index, mac, dst)),
                NLM_F_REQUEST | NLM_F_ACK,
            )
            .await
        {
            Ok(()) => Ok(Removed::Deleted),
            Err(Error::Kernel { errno, .. }) if errno == ENOENT => Ok(Removed::WasAbsent),
            Err(e) => Err(e),
        }
    }

    /// The VXLAN device's own FDB (`bridge fdb show dev VXLAN self`): one
    /// entry per (MAC, destination). Entries of a bridge the device is a
    /// port of are not included.
    pub async fn fdb_list(&self, vxlan: &str) -> Result<Vec<FdbEntry>, Error> {
        let action = format!("listing the fdb of {vxlan}");
        let index = self.index_of(&action, vxlan).await?;
        self.fdb_of(&action, index).await
    }

    async fn fdb_of(&self, action: &str, index: u32) -> Result<Vec<FdbEntry>, Error> {
        let mut req = NeighbourMessage::default();
        req.header.family = AddressFamily::Bridge;
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetNeighbour(req));
        req.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut handle = self.handle.clone();
        let mut answers = handle
            .request(req)
            .map_err(|e| self.err(action.to_owned(), e))?;
        let mut entries = Vec::new();
        while let Some(answer) = answers.next().await {
            match answer.payload {
                // The device's own entries (NTF_SELF), not its bridge's.
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(m))
                    if m.header.ifindex == index
                        && m.header.flags.contains(NeighbourFlags::Own) =>
                {
                    entries.extend(to_entry(&m));
                }
                NetlinkPayload::Error(e) => {
                    return Err(self.err(action.to_owned(), rtnetlink::Error::NetlinkError(e)));
                }
                _ => {}
            }
        }
        Ok(entries)
    }
}

fn to_entry(m: &NeighbourMessage) -> Option<FdbEntry> {
    let mut mac = None;
    let mut dst = None;
    for attr in &m.attributes {
        match attr {
            NeighbourAttribute::LinkLayerAddress(a) => mac = Mac::try_from(a.as_slice()).ok(),
            // In an AF_BRIDGE message the kernel's NDA_DST is not parsed as an
            // IP address: it comes as raw bytes (4 for IPv4).
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => dst = Some(*a),
            NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
                dst = <[u8; 4]>::try_from(b.as_slice()).ok().map(Ipv4Addr::from);
            }
            _ => {}
        }
    }
    Some(FdbEntry {
        mac: mac?,
        dst,
        permanent: m.header.state == NeighbourState::Permanent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_message_is_a_permanent_self_entry_with_a_destination() {
        let m = fdb_message(7, [0; 6], Ipv4Addr::new(10, 231, 0, 2));
        assert_eq!(m.header.family, AddressFamily::Bridge);
        assert_eq!(m.header.ifindex, 7);
        assert_eq!(m.header.state, NeighbourState::Permanent);
        assert_eq!(m.header.flags, NeighbourFlags::Own);
        assert!(
            m.attributes
                .contains(&NeighbourAttribute::LinkLayerAddress(vec![0; 6]))
        );
        assert!(
            m.attributes
                .contains(&NeighbourAttribute::Destination(NeighbourAddress::Inet(
                    Ipv4Addr::new(10, 231, 0, 2)
                )))
        );
    }

    #[test]
    fn dumped_entries_read_raw_destinations() {
        let mut m = NeighbourMessage::default();
        m.header.state = NeighbourState::Permanent;
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 1]));
        m.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Other(
                vec![10, 231, 0, 1],
            )));
        assert_eq!(
            to_entry(&m),
            Some(FdbEntry {
                mac: [2, 0, 0, 0, 0, 1],
                dst: Some(Ipv4Addr::new(10, 231, 0, 1)),
                permanent: true,
            })
        );
    }
}
