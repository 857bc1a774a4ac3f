//! IPv4 unicast routes of a routing table (`ip route ... table T`).
//!
//! Tables above 255 do not fit the header's one byte: they travel in
//! RTA_TABLE, the header saying RT_TABLE_UNSPEC (as `ip` sends them) or, in
//! a dump, RT_TABLE_COMPAT.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};

use crate::types::check_table;
use crate::{Error, Netplane, Removed, RouteInfo};

const ESRCH: i32 = nix::errno::Errno::ESRCH as i32;

impl Netplane {
    /// `ip route replace DST dev LINK scope link table TABLE`: a device
    /// route (the destination is on the link, no gateway).
    pub async fn route_replace(&self, table: u32, dst: Ipv4Net, link: &str) -> Result<(), Error> {
        let action = format!("routing {dst} to {link} in table {table}");
        check_route(table, dst)?;
        let index = self.index_of(&action, link).await?;
        let mut msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dst.addr(), dst.prefix_len())
            .output_interface(index)
            .scope(RouteScope::Link)
            .protocol(RouteProtocol::Static)
            .build();
        set_table(&mut msg, table);
        self.replace_route(action, msg).await
    }

    /// `ip route replace DST via GATEWAY dev LINK table TABLE`; with
    /// [`crate::MAIN_TABLE`] and `0.0.0.0/0`, an instance's default route.
    /// The gateway must be reachable on `link` (an address of the link's
    /// subnet).
    pub async fn route_replace_via(
        &self,
        table: u32,
        dst: Ipv4Net,
        gateway: Ipv4Addr,
        link: &str,
    ) -> Result<(), Error> {
        let action = format!("routing {dst} via {gateway} on {link} in table {table}");
        check_route(table, dst)?;
        let index = self.index_of(&action, link).await?;
        let mut msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dst.addr(), dst.prefix_len())
            .gateway(gateway)
            .output_interface(index)
            .scope(RouteScope::Universe)
            .protocol(RouteProtocol::Static)
            .build();
        set_table(&mut msg, table);
        self.replace_route(action, msg).await
    }

    /// `ip route del DST table TABLE type unicast`, whatever its device or
    /// gateway. An absent route is [`Removed::WasAbsent`].
    pub async fn route_delete(&self, table: u32, dst: Ipv4Net) -> Result<Removed, Error> {
        let action = format!("deleting the route to {dst} from table {table}");
        check_route(table, dst)?;
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.destination_prefix_length = dst.prefix_len();
        // As `ip route del` sends it: any scope, any protocol.
        msg.header.scope = RouteScope::NoWhere;
        msg.header.protocol = RouteProtocol::Unspec;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(dst.addr())));
        set_table(&mut msg, table);
        tracing::debug!(netns = ?self.namespace, "{action}");
        match self.handle.route().del(msg).execute().await {
            Ok(()) => Ok(Removed::Deleted),
            Err(e) => match self.err(action, e) {
                Error::Kernel { errno, .. } if errno == ESRCH => Ok(Removed::WasAbsent),
                other => Err(other),
            },
        }
    }

    /// The IPv4 unicast routes of `table` (`ip -4 route show table TABLE
    /// type unicast`), the kernel's own (connected subnets) included,
    /// sorted by destination.
    pub async fn routes(&self, table: u32) -> Result<Vec<RouteInfo>, Error> {
        let action = format!("listing the routes of table {table}");
        check_table(table)?;
        let mut request = RouteMessage::default();
        request.header.address_family = AddressFamily::Inet;
        let messages: Vec<RouteMessage> = self
            .handle
            .route()
            .get(request)
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.err(action.clone(), e))?;
        let names: HashMap<u32, String> = self
            .links()
            .await?
            .into_iter()
            .map(|l| (l.index, l.name))
            .collect();
        let mut routes: Vec<RouteInfo> = messages
            .iter()
            .filter(|m| {
                m.header.address_family == AddressFamily::Inet
                    && m.header.kind == RouteType::Unicast
                    && table_of(m) == table
            })
            .filter_map(|m| to_route_info(m, &names))
            .collect();
        routes.sort_by_key(|r| (r.dst, r.gateway, r.link.clone()));
        Ok(routes)
    }

    async fn replace_route(&self, action: String, msg: RouteMessage) -> Result<(), Error> {
        tracing::debug!(netns = ?self.namespace, "{action}");
        self.handle
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(|e| self.err(action, e))
    }
}

fn check_route(table: u32, dst: Ipv4Net) -> Result<(), Error> {
    check_table(table)?;
    if dst != dst.trunc() {
        return Err(Error::InvalidArgument {
            what: "route destination",
            value: dst.to_string(),
            reason: "has host bits set",
        });
    }
    Ok(())
}

/// Puts `table` in the header when it fits a byte, else in RTA_TABLE.
fn set_table(msg: &mut RouteMessage, table: u32) {
    msg.attributes
        .retain(|a| !matches!(a, RouteAttribute::Table(_)));
    match u8::try_from(table) {
        Ok(small) => msg.header.table = small,
        Err(_) => {
            msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
            msg.attributes.push(RouteAttribute::Table(table));
        }
    }
}

/// RTA_TABLE when present (it holds the whole id), else the header's byte.
fn table_of(msg: &RouteMessage) -> u32 {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(msg.header.table))
}

fn to_route_info(msg: &RouteMessage, names: &HashMap<u32, String>) -> Option<RouteInfo> {
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let mut link = None;
    let mut gateway = None;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = *a,
            RouteAttribute::Oif(i) => link = names.get(i).cloned(),
            RouteAttribute::Gateway(RouteAddress::Inet(a)) => gateway = Some(*a),
            _ => {}
        }
    }
    Some(RouteInfo {
        dst: Ipv4Net::new(dst, msg.header.destination_prefix_length).ok()?,
        link,
        gateway,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tables_go_in_the_header_big_ones_in_rta_table() {
        let mut m = RouteMessage::default();
        set_table(&mut m, 254);
        assert_eq!(m.header.table, 254);
        assert_eq!(table_of(&m), 254);
        assert!(m.attributes.is_empty());
        set_table(&mut m, 1000);
        assert_eq!(m.header.table, RouteHeader::RT_TABLE_UNSPEC);
        assert_eq!(m.attributes, vec![RouteAttribute::Table(1000)]);
        assert_eq!(table_of(&m), 1000);
        set_table(&mut m, 100);
        assert_eq!(m.header.table, 100);
        assert!(m.attributes.is_empty());
    }

    #[test]
    fn a_default_route_has_no_destination_attribute() {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.attributes.push(RouteAttribute::Oif(2));
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(
                10, 20, 0, 1,
            ))));
        let names = HashMap::from([(2, "eth0".to_owned())]);
        assert_eq!(
            to_route_info(&m, &names),
            Some(RouteInfo {
                dst: "0.0.0.0/0".parse().expect("a prefix"),
                link: Some("eth0".to_owned()),
                gateway: Some(Ipv4Addr::new(10, 20, 0, 1)),
            })
        );
    }

    #[test]
    fn table_zero_and_host_bits_are_refused() {
        let net: Ipv4Net = "10.20.0.0/24".parse().expect("a prefix");
        assert!(check_route(0, net).is_err());
        assert!(check_route(1000, net).is_ok());
        let host_bits: Ipv4Net = "10.20.0.5/24".parse().expect("a prefix");
        let e = check_route(254, host_bits).expect_err("host bits");
        assert!(e.to_string().contains("10.20.0.5/24"), "{e}");
    }
}
