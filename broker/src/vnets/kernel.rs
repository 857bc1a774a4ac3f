//! The kernel side of this broker's VNets, through netlink
//! (`intercloud-netplane`): reads what the host has — the links with our
//! prefixes in the underlay namespace, the FDB and rate cap (TBF root
//! qdisc) of our VXLAN devices, the instances' `eth0` — into an
//! [`ActualState`], and carries out the plan's [`Action`]s.
//!
//! Namespaces are never switched on a runtime thread: the underlay handle is
//! a netlink socket opened inside the underlay namespace (on a short-lived
//! thread of its own, by [`Netplane::in_namespace`]), and so is each handle
//! into an instance's namespace.
//!
//! Every change to one VNet within a round goes into one [`Created`] log:
//! when a step fails, what the round had made for that VNet is removed
//! again (nothing is left half-created), the VNet's remaining actions are
//! skipped and the VNet is reported failed; the other VNets go on.

use std::collections::{BTreeMap, HashMap};

use intercloud_netplane::{Created, LinkInfo, MacDisplay, Netplane, VxlanSpec, netns_path};
use intercloud_vnet::plan::names::{BRIDGE_PREFIX, VETH_PREFIX, VXLAN_PREFIX};
use intercloud_vnet::{
    Action, ActualLink, ActualState, Bandwidth, BandwidthUnit, DataPlane, FdbEntry, IfName, Link,
    MacAddr, NetnsName, Vni,
};
use tracing::{info, warn};

use super::status::Lines;
use crate::cloud::netns::{InstanceNamespaces, NetnsError};

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The kernel refused.
    #[error(transparent)]
    Kernel(#[from] intercloud_netplane::Error),
    /// An instance's namespace could not be made.
    #[error(transparent)]
    Namespace(#[from] NetnsError),
    /// This broker does not carry out such an action (yet).
    #[error("{0} is not supported by this broker")]
    Unsupported(&'static str),
}

/// What the host has, and the same as lines for `ShowVnet`.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// For the reconciliation.
    pub actual: ActualState,
    /// By VNI.
    pub lines: BTreeMap<u32, Lines>,
}

/// What a round of actions did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Whether anything was changed.
    pub changed: bool,
    /// VNets whose changes failed (and were rolled back), with the reason.
    pub failed: BTreeMap<u32, String>,
    /// Failures that belong to no VNet (a malformed stale interface).
    pub other: Vec<String>,
}

/// The kernel as this broker sees it.
#[derive(Debug)]
pub struct Kernel {
    /// The underlay namespace; `None`: the broker's own.
    namespace: Option<String>,
    namespaces: InstanceNamespaces,
    underlay: Option<Netplane>,
}

/// Opens the underlay handle if there is none.
async fn underlay<'a>(
    handle: &'a mut Option<Netplane>,
    namespace: Option<&str>,
) -> Result<&'a Netplane, intercloud_netplane::Error> {
    let np = match handle.take() {
        Some(np) => np,
        None => match namespace {
            Some(ns) => Netplane::in_namespace(ns).await?,
            None => Netplane::connect().await?,
        },
    };
    Ok(handle.insert(np))
}

impl Kernel {
    /// The kernel with this cloud's underlay in `namespace` (`None`: the
    /// broker's own) and its instances' namespaces.
    pub fn new(namespace: Option<String>, namespaces: InstanceNamespaces) -> Self {
        Self {
            namespace,
            namespaces,
            underlay: None,
        }
    }

    /// The instances' namespaces.
    pub fn namespaces(&self) -> &InstanceNamespaces {
        &self.namespaces
    }

    /// The underlay namespace; `None`: the broker's own.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The handle in the underlay namespace (opened if there is none).
    pub async fn underlay(&mut self) -> Result<&Netplane, intercloud_netplane::Error> {
        underlay(&mut self.underlay, self.namespace.as_deref()).await
    }

    /// Forgets the underlay handle: the next call opens a fresh one, so an
    /// underlay namespace made anew is seen.
    pub fn reset(&mut self) {
        self.underlay = None;
    }

    /// Reads what the host has. A veth is compared with its instance side
    /// inside the namespace `desired` puts it in.
    pub async fn observe(
        &mut self,
        desired: &DataPlane,
    ) -> Result<Observed, intercloud_netplane::Error> {
        let np = underlay(&mut self.underlay, self.namespace.as_deref()).await?;
        let links = np
            .links_with_prefixes(&[VXLAN_PREFIX, BRIDGE_PREFIX, VETH_PREFIX])
            .await?;
        let mut observed = Observed::default();
        let mut inside: HashMap<NetnsName, Option<Netplane>> = HashMap::new();
        for info in &links {
            let Ok(name) = IfName::new(&info.name) else {
                continue;
            };
            let (link, line) = match info.kind.as_deref() {
                Some("bridge") => (read_bridge(info, &name), bridge_line(info)),
                Some("vxlan") => (read_vxlan(info, &name), vxlan_line(info)),
                Some("veth") => {
                    let side = match desired.links.get(&name) {
                        Some(Link::Veth { netns, peer, .. }) => {
                            instance_side(&mut inside, netns, peer).await?
                        }
                        _ => None,
                    };
                    (
                        read_veth(info, &name, side.as_ref()),
                        veth_line(info, side.as_ref()),
                    )
                }
                other => (None, format!("{} {}", info.name, other.unwrap_or("link"))),
            };
            observed.actual.links.push(match link {
                Some(link) => ActualLink::Known(link),
                None => ActualLink::Unknown { name: name.clone() },
            });
            if let Some(vni) = name.vni() {
                observed
                    .lines
                    .entry(vni.value())
                    .or_default()
                    .interfaces
                    .push(line);
            }
        }
        for info in links.iter().filter(|l| l.kind.as_deref() == Some("vxlan")) {
            let Ok(device) = IfName::new(&info.name) else {
                continue;
            };
            if let Some(rate) = np.rate(&info.name).await?.and_then(bandwidth_of) {
                if let Some(vni) = device.vni() {
                    observed
                        .lines
                        .entry(vni.value())
                        .or_default()
                        .interfaces
                        .push(format!("{} qdisc tbf rate {rate}", info.name));
                }
                observed.actual.rates.insert(device.clone(), rate);
            }
            for entry in np.fdb_list(&info.name).await? {
                let Some(dst) = entry.dst else { continue };
                if let Some(vni) = device.vni() {
                    observed
                        .lines
                        .entry(vni.value())
                        .or_default()
                        .fdb
                        .push(format!(
                            "{} dst {dst}{}",
                            MacDisplay(entry.mac),
                            if entry.permanent { "" } else { " (learned)" }
                        ));
                }
                observed.actual.fdb.insert(FdbEntry {
                    device: device.clone(),
                    mac: MacAddr::new(entry.mac),
                    dst,
                });
            }
        }
        Ok(observed)
    }

    /// Carries out `actions` in order; see the module's documentation for
    /// what happens on a failure.
    pub async fn apply(&mut self, actions: &[Action]) -> Outcome {
        let mut outcome = Outcome::default();
        if actions.is_empty() {
            return outcome;
        }
        let np = match underlay(&mut self.underlay, self.namespace.as_deref()).await {
            Ok(np) => np,
            Err(e) => {
                warn!(error = %e, "vnet data plane: cannot reach the underlay");
                for action in actions {
                    match action_vni(action) {
                        Some(vni) => {
                            outcome.failed.insert(vni.value(), e.to_string());
                        }
                        None => outcome.other.push(e.to_string()),
                    }
                }
                self.underlay = None;
                return outcome;
            }
        };
        let mut logs: BTreeMap<Option<Vni>, Created> = BTreeMap::new();
        for action in actions {
            let vni = action_vni(action);
            if vni.is_some_and(|v| outcome.failed.contains_key(&v.value())) {
                continue;
            }
            let log = logs.entry(vni).or_default();
            let vni_value = vni.map(Vni::value);
            match perform(np, &self.namespaces, log, action).await {
                Ok(()) => {
                    outcome.changed = true;
                    info!(
                        vni = vni_value,
                        underlay = self.namespace.as_deref().unwrap_or("(own)"),
                        "vnet data plane: {}",
                        describe(action)
                    );
                }
                Err(e) => {
                    let log = logs.remove(&vni).unwrap_or_default();
                    let undone = !log.is_empty();
                    let reason = match log.rollback().await {
                        Ok(()) if undone => {
                            format!("{e} (what this broker had just made for it was removed again)")
                        }
                        Ok(()) => e.to_string(),
                        Err(rollback) => format!("{e}; {rollback}"),
                    };
                    warn!(vni = vni_value, action = %describe(action), error = %reason, "vnet data plane: an action failed");
                    match vni {
                        Some(vni) => {
                            outcome.failed.insert(vni.value(), reason);
                        }
                        None => outcome.other.push(reason),
                    }
                }
            }
        }
        for log in logs.into_values() {
            drop(log.commit());
        }
        outcome
    }

    /// Removes the instances' namespaces that are no longer wanted; returns
    /// the failures.
    pub async fn remove_namespaces(&self, stale: &[NetnsName]) -> Vec<String> {
        let mut failures = Vec::new();
        for name in stale {
            match self.namespaces.remove(name).await {
                Ok(_) => info!(netns = %name, "vnet data plane: instance namespace removed"),
                Err(e) => {
                    warn!(netns = %name, error = %e, "vnet data plane: cannot remove an instance namespace");
                    failures.push(e.to_string());
                }
            }
        }
        failures
    }
}

/// The handle inside `netns` and what its `peer` is there, if both exist.
async fn instance_side(
    handles: &mut HashMap<NetnsName, Option<Netplane>>,
    netns: &NetnsName,
    peer: &IfName,
) -> Result<Option<InstanceSide>, intercloud_netplane::Error> {
    if !handles.contains_key(netns) {
        let text = netns.to_string();
        let handle = if tokio::fs::try_exists(netns_path(&text))
            .await
            .unwrap_or(false)
        {
            match Netplane::in_namespace(&text).await {
                Ok(h) => Some(h),
                // Removed in between: as if it were not there.
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        handles.insert(netns.clone(), handle);
    }
    let Some(Some(handle)) = handles.get(netns) else {
        return Ok(None);
    };
    let Some(link) = handle.link(peer.as_str()).await? else {
        return Ok(None);
    };
    let addresses = handle.addresses(peer.as_str()).await?;
    Ok(Some(InstanceSide {
        netns: netns.clone(),
        link,
        addresses,
    }))
}

/// A veth's instance side as found.
#[derive(Debug, Clone)]
struct InstanceSide {
    netns: NetnsName,
    link: LinkInfo,
    addresses: Vec<intercloud_netplane::Ipv4Net>,
}

/// A rate read back from the kernel (bits per second) as a cap, in the
/// largest unit that holds it whole (caps compare by rate, whatever the
/// unit).
fn bandwidth_of(bits_per_second: u64) -> Option<Bandwidth> {
    let (amount, unit) = if bits_per_second.is_multiple_of(1_000_000_000) {
        (bits_per_second / 1_000_000_000, BandwidthUnit::Gbit)
    } else if bits_per_second.is_multiple_of(1_000_000) {
        (bits_per_second / 1_000_000, BandwidthUnit::Mbit)
    } else {
        (bits_per_second.div_ceil(1000), BandwidthUnit::Kbit)
    };
    Bandwidth::new(amount.max(1), unit).ok()
}

fn read_bridge(info: &LinkInfo, name: &IfName) -> Option<Link> {
    info.up.then(|| Link::Bridge { name: name.clone() })
}

fn read_vxlan(info: &LinkInfo, name: &IfName) -> Option<Link> {
    let settings = info.vxlan?;
    if !info.up {
        return None;
    }
    Some(Link::Vxlan {
        name: name.clone(),
        vni: Vni::new(info.vni?).ok()?,
        local: settings.local?,
        port: settings.port?,
        learning: settings.learning?,
        arp_proxy: settings.proxy?,
        mtu: u16::try_from(info.mtu?).ok()?,
        bridge: IfName::new(info.master.as_deref()?).ok()?,
    })
}

/// A veth whose two ends are what a creation would have made: the host side
/// up on its bridge, the instance side up, paired with it (each names the
/// other's index), with one address, a MAC and the same MTU.
fn read_veth(info: &LinkInfo, name: &IfName, side: Option<&InstanceSide>) -> Option<Link> {
    let side = side?;
    let peer = &side.link;
    let paired = peer.peer_index == Some(info.index) && info.peer_index == Some(peer.index);
    let mtu = info.mtu?;
    if !(info.up
        && peer.up
        && paired
        && peer.kind.as_deref() == Some("veth")
        && peer.mtu == Some(mtu))
    {
        return None;
    }
    let [address] = side.addresses.as_slice() else {
        return None;
    };
    Some(Link::Veth {
        name: name.clone(),
        bridge: IfName::new(info.master.as_deref()?).ok()?,
        netns: side.netns.clone(),
        peer: IfName::new(&peer.name).ok()?,
        address: *address,
        mac: MacAddr::new(peer.mac?),
        mtu: u16::try_from(mtu).ok()?,
    })
}

fn state(info: &LinkInfo) -> &'static str {
    if info.up { "up" } else { "down" }
}

fn mtu(info: &LinkInfo) -> String {
    info.mtu.map(|m| format!(" mtu {m}")).unwrap_or_default()
}

fn master(info: &LinkInfo) -> String {
    info.master
        .as_ref()
        .map(|m| format!(" master {m}"))
        .unwrap_or_default()
}

/// `icb001000 bridge mtu 1450 up`.
fn bridge_line(info: &LinkInfo) -> String {
    format!("{} bridge{} {}", info.name, mtu(info), state(info))
}

/// `icx001000 vxlan vni 4096 local 10.231.0.1 dstport 4789 nolearning mtu
/// 1450 master icb001000 up`.
fn vxlan_line(info: &LinkInfo) -> String {
    let settings = info.vxlan.unwrap_or_default();
    let mut line = format!("{} vxlan", info.name);
    if let Some(vni) = info.vni {
        line.push_str(&format!(" vni {vni}"));
    }
    if let Some(local) = settings.local {
        line.push_str(&format!(" local {local}"));
    }
    if let Some(port) = settings.port {
        line.push_str(&format!(" dstport {port}"));
    }
    match settings.learning {
        Some(true) => line.push_str(" learning"),
        Some(false) => line.push_str(" nolearning"),
        None => {}
    }
    if settings.proxy == Some(true) {
        line.push_str(" proxy");
    }
    format!("{line}{}{} {}", mtu(info), master(info), state(info))
}

/// `icv0010000000 veth mtu 1450 master icb001000 up, peer eth0 in
/// ic-cloud-a.web-1 02:10:00:0a:14:02 10.20.0.2/24 up`.
fn veth_line(info: &LinkInfo, side: Option<&InstanceSide>) -> String {
    let host = format!(
        "{} veth{}{} {}",
        info.name,
        mtu(info),
        master(info),
        state(info)
    );
    match side {
        Some(side) => {
            let addresses: Vec<String> = side.addresses.iter().map(ToString::to_string).collect();
            format!(
                "{host}, peer {} in {} {} {} {}",
                side.link.name,
                side.netns,
                side.link
                    .mac
                    .map(|m| MacDisplay(m).to_string())
                    .unwrap_or_else(|| "(no mac)".into()),
                if addresses.is_empty() {
                    "(no address)".to_owned()
                } else {
                    addresses.join(" ")
                },
                state(&side.link)
            )
        }
        None => format!("{host}, peer not found in its instance's namespace"),
    }
}

/// The VNet an action concerns, from its interface's name.
fn action_vni(action: &Action) -> Option<Vni> {
    match action {
        Action::DeleteNeighbor(e) | Action::AddNeighbor(e) => e.device.vni(),
        Action::DeleteFdb(e) | Action::AddFdb(e) => e.device.vni(),
        Action::ClearRate { device } | Action::SetRate { device, .. } => device.vni(),
        Action::DeleteLink { name } => name.vni(),
        Action::CreateLink(link) => link.name().vni(),
    }
}

/// An action in words, for the log.
fn describe(action: &Action) -> String {
    match action {
        Action::DeleteNeighbor(e) => format!("delete neighbor {} {} on {}", e.ip, e.mac, e.device),
        Action::AddNeighbor(e) => format!("add neighbor {} {} on {}", e.ip, e.mac, e.device),
        Action::DeleteFdb(e) => format!("delete fdb {} dst {} on {}", e.mac, e.dst, e.device),
        Action::AddFdb(e) => format!("add fdb {} dst {} on {}", e.mac, e.dst, e.device),
        Action::ClearRate { device } => format!("clear the rate cap of {device}"),
        Action::SetRate { device, rate } => format!("cap {device} at {rate}"),
        Action::DeleteLink { name } => format!("delete link {name}"),
        Action::CreateLink(Link::Bridge { name }) => format!("create bridge {name}"),
        Action::CreateLink(Link::Vxlan {
            name,
            vni,
            local,
            port,
            mtu,
            bridge,
            ..
        }) => format!(
            "create vxlan {name} vni {vni} local {local} dstport {port} mtu {mtu} on {bridge}"
        ),
        Action::CreateLink(Link::Veth {
            name,
            bridge,
            netns,
            peer,
            address,
            mac,
            mtu,
        }) => format!(
            "create veth {name} on {bridge} with {peer} {address} {mac} mtu {mtu} in {netns}"
        ),
    }
}

/// Carries out one action, recording what it makes in `log`.
async fn perform(
    np: &Netplane,
    namespaces: &InstanceNamespaces,
    log: &mut Created,
    action: &Action,
) -> Result<(), ApplyError> {
    match action {
        Action::DeleteLink { name } => {
            np.delete_link(name.as_str()).await?;
        }
        Action::CreateLink(Link::Bridge { name }) => {
            log.create_bridge(np, name.as_str()).await?;
            np.set_up(name.as_str()).await?;
        }
        Action::CreateLink(Link::Vxlan {
            name,
            vni,
            local,
            port,
            learning,
            arp_proxy,
            mtu,
            bridge,
        }) => {
            if *arp_proxy {
                return Err(ApplyError::Unsupported("a VXLAN device with ARP proxy"));
            }
            let spec = VxlanSpec {
                name: name.to_string(),
                vni: vni.value(),
                local: *local,
                port: *port,
                learning: *learning,
                underlay_dev: None,
            };
            log.create_vxlan(np, &spec).await?;
            np.set_mtu(name.as_str(), u32::from(*mtu)).await?;
            np.set_master(name.as_str(), bridge.as_str()).await?;
            np.set_up(name.as_str()).await?;
        }
        Action::CreateLink(Link::Veth {
            name,
            bridge,
            netns,
            peer,
            address,
            mac,
            mtu,
        }) => {
            create_veth(
                np, namespaces, log, name, bridge, netns, peer, *address, *mac, *mtu,
            )
            .await?;
        }
        Action::AddFdb(entry) => {
            log.fdb_append(np, entry.device.as_str(), entry.mac.octets(), entry.dst)
                .await?;
        }
        Action::DeleteFdb(entry) => {
            np.fdb_delete(entry.device.as_str(), entry.mac.octets(), entry.dst)
                .await?;
        }
        Action::AddNeighbor(_) | Action::DeleteNeighbor(_) => {
            return Err(ApplyError::Unsupported("an ARP proxy neighbor entry"));
        }
        Action::SetRate { device, rate } => {
            np.set_rate(device.as_str(), rate.bits_per_second()).await?;
        }
        Action::ClearRate { device } => {
            np.clear_rate(device.as_str()).await?;
        }
    }
    Ok(())
}

/// A veth from the VNet's bridge into the instance's namespace: made in the
/// underlay with its instance side under a staging name, which is moved
/// into the namespace (made if missing) and renamed `eth0` there, given the
/// instance's MAC, MTU and address, and brought up with `lo`.
#[allow(clippy::too_many_arguments)]
async fn create_veth(
    np: &Netplane,
    namespaces: &InstanceNamespaces,
    log: &mut Created,
    name: &IfName,
    bridge: &IfName,
    netns: &NetnsName,
    peer: &IfName,
    address: intercloud_netplane::Ipv4Net,
    mac: MacAddr,
    mtu: u16,
) -> Result<(), ApplyError> {
    let staging = IfName::staging_peer(name)
        .ok_or(ApplyError::Unsupported("a veth without the icv prefix"))?;
    namespaces.ensure(log, netns).await?;
    // Only a crash between a pair's creation and its move leaves one, and
    // then its host side is gone with it; but never trip over it.
    np.delete_link(staging.as_str()).await?;
    log.create_veth(np, name.as_str(), staging.as_str()).await?;
    let ns = netns.to_string();
    log.move_to_namespace(np, staging.as_str(), &ns).await?;
    let inside = Netplane::in_namespace(&ns).await?;
    let configured: Result<(), intercloud_netplane::Error> = async {
        log.rename(&inside, staging.as_str(), peer.as_str()).await?;
        inside.set_mac(peer.as_str(), mac.octets()).await?;
        inside.set_mtu(peer.as_str(), u32::from(mtu)).await?;
        log.add_address(&inside, peer.as_str(), address).await?;
        inside.set_up(peer.as_str()).await?;
        inside.set_up("lo").await
    }
    .await;
    // A handle inside would keep a namespace that a rollback deletes alive.
    drop(inside);
    configured?;
    np.set_mtu(name.as_str(), u32::from(mtu)).await?;
    np.set_master(name.as_str(), bridge.as_str()).await?;
    np.set_up(name.as_str()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use intercloud_netplane::VxlanInfo;

    use super::*;

    fn info(name: &str, kind: &str) -> LinkInfo {
        LinkInfo {
            name: name.into(),
            index: 7,
            kind: Some(kind.into()),
            master: None,
            up: true,
            vni: None,
            vxlan: None,
            mac: None,
            mtu: Some(1450),
            peer_index: None,
        }
    }

    fn name(s: &str) -> IfName {
        IfName::new(s).expect("valid")
    }

    fn vxlan() -> LinkInfo {
        LinkInfo {
            vni: Some(4096),
            vxlan: Some(VxlanInfo {
                local: Some(Ipv4Addr::new(10, 231, 0, 1)),
                port: Some(4789),
                learning: Some(false),
                proxy: Some(false),
            }),
            master: Some("icb001000".into()),
            ..info("icx001000", "vxlan")
        }
    }

    fn side() -> InstanceSide {
        InstanceSide {
            netns: "ic-cloud-a.web-1".parse().expect("valid"),
            link: LinkInfo {
                index: 2,
                peer_index: Some(7),
                mac: Some([2, 0x10, 0, 0x0a, 0x14, 2]),
                ..info("eth0", "veth")
            },
            addresses: vec!["10.20.0.2/24".parse().expect("valid")],
        }
    }

    fn host_veth() -> LinkInfo {
        LinkInfo {
            peer_index: Some(2),
            master: Some("icb001000".into()),
            ..info("icv0010000000", "veth")
        }
    }

    #[test]
    fn a_vxlan_device_is_read_back_into_the_link_the_plan_describes() {
        let read = read_vxlan(&vxlan(), &name("icx001000")).expect("complete");
        assert_eq!(
            read,
            Link::Vxlan {
                name: name("icx001000"),
                vni: Vni::new(4096).expect("valid"),
                local: Ipv4Addr::new(10, 231, 0, 1),
                port: 4789,
                learning: false,
                arp_proxy: false,
                mtu: 1450,
                bridge: name("icb001000"),
            }
        );
        assert_eq!(
            vxlan_line(&vxlan()),
            "icx001000 vxlan vni 4096 local 10.231.0.1 dstport 4789 nolearning mtu 1450 master icb001000 up"
        );
        // Down, or without its bridge, it is not what a creation makes.
        assert_eq!(
            read_vxlan(
                &LinkInfo {
                    up: false,
                    ..vxlan()
                },
                &name("icx001000")
            ),
            None
        );
        assert_eq!(
            read_vxlan(
                &LinkInfo {
                    master: None,
                    ..vxlan()
                },
                &name("icx001000")
            ),
            None
        );
    }

    #[test]
    fn a_veth_is_known_only_with_its_instance_side_paired_and_configured() {
        let read =
            read_veth(&host_veth(), &name("icv0010000000"), Some(&side())).expect("complete");
        assert_eq!(
            read,
            Link::Veth {
                name: name("icv0010000000"),
                bridge: name("icb001000"),
                netns: "ic-cloud-a.web-1".parse().expect("valid"),
                peer: name("eth0"),
                address: "10.20.0.2/24".parse().expect("valid"),
                mac: MacAddr::new([2, 0x10, 0, 0x0a, 0x14, 2]),
                mtu: 1450,
            }
        );
        assert_eq!(
            veth_line(&host_veth(), Some(&side())),
            "icv0010000000 veth mtu 1450 master icb001000 up, peer eth0 in ic-cloud-a.web-1 02:10:00:0a:14:02 10.20.0.2/24 up"
        );
        assert_eq!(read_veth(&host_veth(), &name("icv0010000000"), None), None);
        let mut unpaired = side();
        unpaired.link.peer_index = Some(99);
        assert_eq!(
            read_veth(&host_veth(), &name("icv0010000000"), Some(&unpaired)),
            None
        );
        let mut two_addresses = side();
        two_addresses
            .addresses
            .push("10.20.0.9/24".parse().expect("valid"));
        assert_eq!(
            read_veth(&host_veth(), &name("icv0010000000"), Some(&two_addresses)),
            None
        );
        let mut other_mtu = side();
        other_mtu.link.mtu = Some(1500);
        assert_eq!(
            read_veth(&host_veth(), &name("icv0010000000"), Some(&other_mtu)),
            None
        );
        assert_eq!(
            veth_line(&host_veth(), None),
            "icv0010000000 veth mtu 1450 master icb001000 up, peer not found in its instance's namespace"
        );
    }

    #[test]
    fn a_rate_read_back_equals_the_cap_the_plan_asked_for() {
        let cap: Bandwidth = "20mbit".parse().expect("valid");
        assert_eq!(bandwidth_of(20_000_000), Some(cap));
        let fast: Bandwidth = "40gbit".parse().expect("valid");
        assert_eq!(bandwidth_of(40_000_000_000), Some(fast));
        assert_eq!(
            bandwidth_of(20_000_000).map(|b| b.to_string()).as_deref(),
            Some("20mbit")
        );
        assert_eq!(
            bandwidth_of(40_000_000_000)
                .map(|b| b.to_string())
                .as_deref(),
            Some("40gbit")
        );
        assert_eq!(
            bandwidth_of(1_500_000).map(|b| b.to_string()).as_deref(),
            Some("1500kbit")
        );
        assert_eq!(bandwidth_of(8).map(|b| b.bits_per_second()), Some(1_000));
        let set = Action::SetRate {
            device: name("icx001000"),
            rate: cap,
        };
        assert_eq!(describe(&set), "cap icx001000 at 20mbit");
        assert_eq!(action_vni(&set).map(Vni::value), Some(4096));
    }

    #[test]
    fn bridges_and_actions_read_in_words() {
        assert_eq!(
            bridge_line(&info("icb001000", "bridge")),
            "icb001000 bridge mtu 1450 up"
        );
        assert_eq!(
            read_bridge(&info("icb001000", "bridge"), &name("icb001000")),
            Some(Link::Bridge {
                name: name("icb001000")
            })
        );
        let add = Action::AddFdb(FdbEntry {
            device: name("icx001000"),
            mac: MacAddr::ZERO,
            dst: Ipv4Addr::new(10, 231, 0, 2),
        });
        assert_eq!(
            describe(&add),
            "add fdb 00:00:00:00:00:00 dst 10.231.0.2 on icx001000"
        );
        assert_eq!(action_vni(&add).map(Vni::value), Some(4096));
        let stray = Action::DeleteLink {
            name: name("icxzzzzzz"),
        };
        assert_eq!(action_vni(&stray), None);
    }
}
