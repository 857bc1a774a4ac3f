//! Links: create, change, delete, list.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    InfoData, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage,
};
use rtnetlink::{
    AddressMessageBuilder, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, LinkVxlan,
};

use crate::netns;
use crate::types::{MacDisplay, check_ifname, check_vni};
use crate::{Error, LinkInfo, Mac, Netplane, Removed, VxlanInfo, VxlanSpec};

const ENODEV: i32 = nix::errno::Errno::ENODEV as i32;
const EADDRNOTAVAIL: i32 = nix::errno::Errno::EADDRNOTAVAIL as i32;

impl Netplane {
    /// The index of the link `name`; [`Error::NoSuchLink`] if there is none.
    pub(crate) async fn index_of(&self, action: &str, name: &str) -> Result<u32, Error> {
        check_ifname(name)?;
        match self.get_by_name(action, name).await? {
            Some(msg) => Ok(msg.header.index),
            None => Err(Error::NoSuchLink {
                action: action.to_owned(),
                link: name.to_owned(),
                namespace: self.namespace.clone(),
            }),
        }
    }

    async fn get_by_name(&self, action: &str, name: &str) -> Result<Option<LinkMessage>, Error> {
        let mut answers = self.handle.link().get().match_name(name).execute();
        match answers.try_next().await {
            Ok(found) => Ok(found),
            Err(e) => match self.err(action.to_owned(), e) {
                Error::Kernel { errno, .. } if errno == ENODEV => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn dump_links(&self) -> Result<Vec<LinkMessage>, Error> {
        let action = "listing links";
        self.handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.err(action.to_owned(), e))
    }

    /// Sends an RTM_NEWLINK that creates (NLM_F_CREATE | NLM_F_EXCL).
    async fn add_link(&self, action: String, msg: LinkMessage) -> Result<(), Error> {
        tracing::debug!(netns = ?self.namespace, "{action}");
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| self.err(action, e))
    }

    /// Sends an RTM_NEWLINK that changes an existing link (`ip link set`).
    async fn change_link(&self, action: String, msg: LinkMessage) -> Result<(), Error> {
        tracing::debug!(netns = ?self.namespace, "{action}");
        self.handle
            .link()
            .change(msg)
            .execute()
            .await
            .map_err(|e| self.err(action, e))
    }

    /// `ip link add NAME type bridge` (created down).
    pub async fn create_bridge(&self, name: &str) -> Result<(), Error> {
        check_ifname(name)?;
        let msg = LinkMessageBuilder::<LinkBridge>::new(name).build();
        self.add_link(format!("creating bridge {name}"), msg).await
    }

    /// `ip link add NAME type vxlan id VNI local LOCAL dstport PORT
    /// [no]learning [dev UNDERLAY]` (created down). No remote or group: the
    /// destinations are programmed in the FDB.
    pub async fn create_vxlan(&self, spec: &VxlanSpec) -> Result<(), Error> {
        check_ifname(&spec.name)?;
        check_vni(spec.vni)?;
        let action = format!(
            "creating vxlan {} (vni {}) on {}",
            spec.name, spec.vni, spec.local
        );
        let mut builder = LinkVxlan::new(&spec.name, spec.vni)
            .local(spec.local)
            .port(spec.port)
            .learning(spec.learning);
        if let Some(dev) = &spec.underlay_dev {
            builder = builder.dev(self.index_of(&action, dev).await?);
        }
        self.add_link(action, builder.build()).await
    }

    /// `ip link add HOST type veth peer name PEER` (both ends down, both in
    /// this namespace; move the peer with [`Netplane::move_to_namespace`]).
    pub async fn create_veth(&self, host: &str, peer: &str) -> Result<(), Error> {
        check_ifname(host)?;
        check_ifname(peer)?;
        let msg = LinkVeth::new(host, peer).build();
        self.add_link(format!("creating veth {host} (peer {peer})"), msg)
            .await
    }

    /// `ip link set LINK netns NS`: moves the link into the named namespace
    /// (it is taken down; its addresses are lost).
    pub async fn move_to_namespace(&self, link: &str, ns: &str) -> Result<(), Error> {
        let action = format!("moving {link} to netns {ns}");
        let target = netns::open_netns(&action, ns)?;
        self.move_to_file(action, link, &target).await
    }

    /// Moves a link into the namespace of an open nsfs file.
    pub(crate) async fn move_to_file(
        &self,
        action: String,
        link: &str,
        target: &std::fs::File,
    ) -> Result<(), Error> {
        let index = self.index_of(&action, link).await?;
        // The descriptor is only read by the kernel during the request;
        // `target` outlives it.
        let msg = LinkUnspec::new_with_index(index)
            .setns_by_fd(target.as_raw_fd())
            .build();
        self.change_link(action, msg).await
    }

    /// `ip link set LINK master BRIDGE`.
    pub async fn set_master(&self, link: &str, bridge: &str) -> Result<(), Error> {
        let action = format!("enslaving {link} to {bridge}");
        let index = self.index_of(&action, link).await?;
        let master = self.index_of(&action, bridge).await?;
        let msg = LinkUnspec::new_with_index(index).controller(master).build();
        self.change_link(action, msg).await
    }

    /// `ip link set LINK nomaster`.
    pub async fn set_nomaster(&self, link: &str) -> Result<(), Error> {
        let action = format!("releasing {link} from its master");
        let index = self.index_of(&action, link).await?;
        let msg = LinkUnspec::new_with_index(index).nocontroller().build();
        self.change_link(action, msg).await
    }

    /// `ip link set LINK up`.
    pub async fn set_up(&self, link: &str) -> Result<(), Error> {
        let action = format!("setting {link} up");
        let index = self.index_of(&action, link).await?;
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.change_link(action, msg).await
    }

    /// `ip link set LINK down`.
    pub async fn set_down(&self, link: &str) -> Result<(), Error> {
        let action = format!("setting {link} down");
        let index = self.index_of(&action, link).await?;
        let msg = LinkUnspec::new_with_index(index).down().build();
        self.change_link(action, msg).await
    }

    /// `ip link set LINK address MAC`.
    pub async fn set_mac(&self, link: &str, mac: Mac) -> Result<(), Error> {
        let action = format!("setting the mac of {link} to {}", MacDisplay(mac));
        let index = self.index_of(&action, link).await?;
        let msg = LinkUnspec::new_with_index(index)
            .address(mac.to_vec())
            .build();
        self.change_link(action, msg).await
    }

    /// `ip link set LINK mtu MTU`.
    pub async fn set_mtu(&self, link: &str, mtu: u32) -> Result<(), Error> {
        let action = format!("setting the mtu of {link} to {mtu}");
        let index = self.index_of(&action, link).await?;
        let msg = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.change_link(action, msg).await
    }

    /// `ip link set LINK name NEW`. The kernel refuses (EBUSY) while the
    /// link is up.
    pub async fn rename(&self, link: &str, new: &str) -> Result<(), Error> {
        check_ifname(new)?;
        let action = format!("renaming {link} to {new}");
        let index = self.index_of(&action, link).await?;
        let msg = LinkUnspec::new_with_index(index).name(new).build();
        self.change_link(action, msg).await
    }

    /// `ip address add ADDR/LEN dev LINK`. An address already there is an
    /// error (EEXIST).
    pub async fn add_address(&self, link: &str, address: Ipv4Net) -> Result<(), Error> {
        let action = format!("adding address {address} to {link}");
        let index = self.index_of(&action, link).await?;
        tracing::debug!(netns = ?self.namespace, "{action}");
        self.handle
            .address()
            .add(index, IpAddr::V4(address.addr()), address.prefix_len())
            .execute()
            .await
            .map_err(|e| self.err(action, e))
    }

    /// `ip address del ADDR/LEN dev LINK`; an absent address (or link) is
    /// [`Removed::WasAbsent`].
    pub async fn delete_address(&self, link: &str, address: Ipv4Net) -> Result<Removed, Error> {
        let action = format!("deleting address {address} from {link}");
        let index = match self.index_of(&action, link).await {
            Ok(i) => i,
            Err(Error::NoSuchLink { .. }) => return Ok(Removed::WasAbsent),
            Err(e) => return Err(e),
        };
        let msg = AddressMessageBuilder::<std::net::Ipv4Addr>::new()
            .index(index)
            .address(address.addr(), address.prefix_len())
            .build();
        tracing::debug!(netns = ?self.namespace, "{action}");
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(Removed::Deleted),
            Err(e) => match self.err(action, e) {
                Error::Kernel { errno, .. } if errno == EADDRNOTAVAIL || errno == ENODEV => {
                    Ok(Removed::WasAbsent)
                }
                other => Err(other),
            },
        }
    }

    /// The IPv4 addresses of `link` with their prefix lengths (`ip -4
    /// address show dev LINK`), sorted.
    pub async fn addresses(&self, link: &str) -> Result<Vec<Ipv4Net>, Error> {
        let action = format!("listing the addresses of {link}");
        let index = self.index_of(&action, link).await?;
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.err(action.clone(), e))?;
        let mut addresses: Vec<Ipv4Net> = messages
            .iter()
            // The filter is applied by the library, but only to what the
            // kernel sent: check the index again.
            .filter(|m| m.header.index == index)
            .filter_map(|m| {
                // IFA_LOCAL is the interface's own address; IFA_ADDRESS
                // alone is sent for some kinds of link.
                let local = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(IpAddr::V4(v4)) => Some(*v4),
                    _ => None,
                });
                let address = local.or_else(|| {
                    m.attributes.iter().find_map(|a| match a {
                        AddressAttribute::Address(IpAddr::V4(v4)) => Some(*v4),
                        _ => None,
                    })
                })?;
                Ipv4Net::new(address, m.header.prefix_len).ok()
            })
            .collect();
        addresses.sort();
        Ok(addresses)
    }

    /// `ip link del NAME`; an absent link is [`Removed::WasAbsent`], not an
    /// error. Deleting one end of a veth pair deletes both.
    pub async fn delete_link(&self, name: &str) -> Result<Removed, Error> {
        check_ifname(name)?;
        let action = format!("deleting link {name}");
        tracing::debug!(netns = ?self.namespace, "{action}");
        // By name, in one request: no window between a lookup and the delete.
        let msg = LinkUnspec::new_with_name(name).build();
        match self.handle.link().del_with_message(msg).execute().await {
            Ok(()) => Ok(Removed::Deleted),
            Err(e) => match self.err(action, e) {
                Error::Kernel { errno, .. } if errno == ENODEV => Ok(Removed::WasAbsent),
                other => Err(other),
            },
        }
    }

    /// The link `name`, or `None`.
    pub async fn link(&self, name: &str) -> Result<Option<LinkInfo>, Error> {
        check_ifname(name)?;
        let action = format!("looking up link {name}");
        let Some(msg) = self.get_by_name(&action, name).await? else {
            return Ok(None);
        };
        let mut info = to_link_info(&msg, &HashMap::new());
        if let Some(master) = controller_of(&msg) {
            let mut answers = self.handle.link().get().match_index(master).execute();
            let found = answers
                .try_next()
                .await
                .map_err(|e| self.err(action.clone(), e))?;
            info.master = found.as_ref().and_then(name_of);
        }
        Ok(Some(info))
    }

    /// Every link in this handle's namespace.
    pub async fn links(&self) -> Result<Vec<LinkInfo>, Error> {
        let all = self.dump_links().await?;
        let names: HashMap<u32, String> = all
            .iter()
            .filter_map(|m| Some((m.header.index, name_of(m)?)))
            .collect();
        Ok(all.iter().map(|m| to_link_info(m, &names)).collect())
    }

    /// The links whose names start with one of `prefixes` (e.g. `["icx",
    /// "icb", "icv"]`): what a reconciler compares with what should exist.
    pub async fn links_with_prefixes(&self, prefixes: &[&str]) -> Result<Vec<LinkInfo>, Error> {
        let mut links = self.links().await?;
        links.retain(|l| prefixes.iter().any(|p| l.name.starts_with(p)));
        Ok(links)
    }
}

fn name_of(msg: &LinkMessage) -> Option<String> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

fn controller_of(msg: &LinkMessage) -> Option<u32> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(i) if *i != 0 => Some(*i),
        _ => None,
    })
}

fn to_link_info(msg: &LinkMessage, names: &HashMap<u32, String>) -> LinkInfo {
    let mut info = LinkInfo {
        name: name_of(msg).unwrap_or_default(),
        index: msg.header.index,
        kind: None,
        master: controller_of(msg).and_then(|i| names.get(&i).cloned()),
        up: msg.header.flags.contains(LinkFlags::Up),
        vni: None,
        vxlan: None,
        mac: None,
        mtu: None,
        peer_index: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::Address(a) => info.mac = <Mac>::try_from(a.as_slice()).ok(),
            LinkAttribute::Mtu(m) => info.mtu = Some(*m),
            LinkAttribute::Link(i) if *i != 0 => info.peer_index = Some(*i),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        NlLinkInfo::Kind(k) => info.kind = Some(k.to_string()),
                        NlLinkInfo::Data(InfoData::Vxlan(v)) => {
                            info.vni = v.iter().find_map(|x| match x {
                                InfoVxlan::Id(id) => Some(*id),
                                _ => None,
                            });
                            info.vxlan = Some(vxlan_info(v));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    info
}

fn vxlan_info(attributes: &[InfoVxlan]) -> VxlanInfo {
    let mut info = VxlanInfo::default();
    for attribute in attributes {
        match attribute {
            InfoVxlan::Local(a) => info.local = Some(*a),
            InfoVxlan::Port(p) => info.port = Some(*p),
            InfoVxlan::Learning(l) => info.learning = Some(*l),
            InfoVxlan::Proxy(p) => info.proxy = Some(*p),
            _ => {}
        }
    }
    info
}
