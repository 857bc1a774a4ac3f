//! IPv4 neighbor (ARP) entries of a link (`ip neigh ... nud permanent`):
//! the gateway's MAC written in, so that nothing has to be resolved.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};

use crate::types::MacDisplay;
use crate::{Error, Mac, Netplane, Removed};

const ENOENT: i32 = nix::errno::Errno::ENOENT as i32;

impl Netplane {
    /// `ip neigh replace IP lladdr MAC dev LINK nud permanent`: creates the
    /// entry or overwrites whatever entry `ip` had on `link`.
    pub async fn neigh_replace(&self, link: &str, ip: Ipv4Addr, mac: Mac) -> Result<(), Error> {
        let action = format!("setting neighbor {ip} to {} on {link}", MacDisplay(mac));
        let index = self.index_of(&action, link).await?;
        tracing::debug!(netns = ?self.namespace, "{action}");
        // rtnetlink's request is NUD_PERMANENT, and NLM_F_CREATE |
        // NLM_F_REPLACE once `replace` is asked for.
        self.handle
            .neighbours()
            .add(index, IpAddr::V4(ip))
            .link_layer_address(&mac)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(|e| self.err(action, e))
    }

    /// `ip neigh del IP dev LINK`, whatever the entry's state. An absent
    /// entry (or link) is [`Removed::WasAbsent`].
    pub async fn neigh_delete(&self, link: &str, ip: Ipv4Addr) -> Result<Removed, Error> {
        let action = format!("deleting neighbor {ip} from {link}");
        let index = match self.index_of(&action, link).await {
            Ok(i) => i,
            Err(Error::NoSuchLink { .. }) => return Ok(Removed::WasAbsent),
            Err(e) => return Err(e),
        };
        tracing::debug!(netns = ?self.namespace, "{action}");
        match self
            .handle
            .neighbours()
            .del(neighbor_key(index, ip))
            .execute()
            .await
        {
            Ok(()) => Ok(Removed::Deleted),
            Err(e) => match self.err(action, e) {
                Error::Kernel { errno, .. } if errno == ENOENT => Ok(Removed::WasAbsent),
                other => Err(other),
            },
        }
    }

    /// The permanent IPv4 neighbor entries of `link` (`ip -4 neigh show dev
    /// LINK nud permanent`), sorted by address. Learned entries are left
    /// out: they come and go with traffic.
    pub async fn neighbors(&self, link: &str) -> Result<Vec<(Ipv4Addr, Mac)>, Error> {
        let action = format!("listing the neighbors of {link}");
        let index = self.index_of(&action, link).await?;
        let messages: Vec<NeighbourMessage> = self
            .handle
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Inet)
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.err(action.clone(), e))?;
        let mut entries: Vec<(Ipv4Addr, Mac)> = messages
            .iter()
            .filter(|m| m.header.ifindex == index)
            .filter_map(permanent_entry)
            .collect();
        entries.sort();
        Ok(entries)
    }
}

/// What identifies an entry to RTM_DELNEIGH: family, link, address.
fn neighbor_key(ifindex: u32, ip: Ipv4Addr) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.header.ifindex = ifindex;
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
    msg
}

/// (IP, MAC) of a dumped entry, when it is a permanent IPv4 one with an
/// Ethernet address.
fn permanent_entry(m: &NeighbourMessage) -> Option<(Ipv4Addr, Mac)> {
    if m.header.family != AddressFamily::Inet || m.header.state != NeighbourState::Permanent {
        return None;
    }
    let mut ip = None;
    let mut mac = None;
    for attr in &m.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(*a),
            NeighbourAttribute::LinkLayerAddress(a) => mac = Mac::try_from(a.as_slice()).ok(),
            _ => {}
        }
    }
    Some((ip?, mac?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dumped(state: NeighbourState) -> NeighbourMessage {
        let mut m = neighbor_key(3, Ipv4Addr::new(10, 20, 0, 1));
        m.header.state = state;
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 1]));
        m
    }

    #[test]
    fn only_permanent_ipv4_entries_are_listed() {
        assert_eq!(
            permanent_entry(&dumped(NeighbourState::Permanent)),
            Some((Ipv4Addr::new(10, 20, 0, 1), [2, 0, 0, 0, 0, 1]))
        );
        assert_eq!(permanent_entry(&dumped(NeighbourState::Reachable)), None);
        assert_eq!(permanent_entry(&dumped(NeighbourState::Stale)), None);
        let mut no_mac = dumped(NeighbourState::Permanent);
        no_mac
            .attributes
            .retain(|a| !matches!(a, NeighbourAttribute::LinkLayerAddress(_)));
        assert_eq!(permanent_entry(&no_mac), None);
    }
}
