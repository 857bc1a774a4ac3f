//! The network plane driver: realizes one broker's side of a cross-cloud VNet
//! on the Linux kernel, through netlink (the `rtnetlink` crate), never by
//! running `ip` or `bridge`; only nftables rulesets go through `nft`, as
//! JSON.
//!
//! Decisions (which VNI, which names, which remote VTEPs) are made elsewhere;
//! this crate executes actions and reports the kernel's actual state:
//!
//! - [`Netplane`]: a netlink handle bound to one network namespace —
//!   [`Netplane::connect`] (the current one) or [`Netplane::in_namespace`]
//!   (a named one, `/run/netns/<name>`).
//! - Namespaces: [`Netplane::create_namespace`], [`Netplane::delete_namespace`],
//!   [`Netplane::list_namespaces`].
//! - Links: bridges, VXLAN devices ([`VxlanSpec`]), veth pairs; moving,
//!   enslaving, up, MAC, MTU, addresses, renaming, deleting; listing what
//!   looks like ours ([`Netplane::links_with_prefixes`]), with a VXLAN
//!   device's settings ([`VxlanInfo`]) and a veth's peer index, and a link's
//!   IPv4 addresses ([`Netplane::addresses`]).
//! - The VXLAN FDB: [`Netplane::fdb_append`] (including [`ZERO_MAC`] for
//!   head-end replication), [`Netplane::fdb_delete`], [`Netplane::fdb_list`].
//! - Rate caps: a TBF root qdisc ([`Netplane::set_rate`],
//!   [`Netplane::clear_rate`], [`Netplane::rate`]).
//! - Routing between VNets: permanent IPv4 neighbor entries
//!   ([`Netplane::neigh_replace`], [`Netplane::neigh_delete`],
//!   [`Netplane::neighbors`]); routes of a table, by device or via a
//!   gateway ([`Netplane::route_replace`], [`Netplane::route_replace_via`],
//!   [`Netplane::route_delete`], [`Netplane::routes`], [`RouteInfo`]);
//!   policy rules on the input interface ([`RuleSpec`],
//!   [`Netplane::rule_add`], [`Netplane::rule_delete`], [`Netplane::rules`]);
//!   per-link IPv4 forwarding ([`Netplane::set_forwarding`],
//!   [`Netplane::forwarding`]), a sysctl written from a thread inside the
//!   handle's namespace.
//! - nftables, through `nft` (its JSON schema, never its text): the VNet
//!   firewall ([`Firewall`], `table inet intercloud`) and traffic taps
//!   ([`Taps`], `table netdev intercloud_taps`), each replaced whole in one
//!   transaction by [`Nft`], with the rules' counters read back
//!   ([`Nft::counters`]).
//! - [`Created`]: the log of what a multi-step operation made, to undo it
//!   all when a later step fails.
//!
//! Every call needs root (CAP_NET_ADMIN, and CAP_SYS_ADMIN for namespaces)
//! and a tokio runtime with I/O enabled; [`Nft`] also needs `nft` (and `ip`
//! for a named namespace) in PATH.

#![forbid(unsafe_code)]

mod created;
mod error;
mod fdb;
mod link;
mod neigh;
mod netns;
mod nft;
mod rate;
mod route;
mod rule;
mod sysctl;
mod types;

use std::fs::File;
use std::sync::Arc;

use rtnetlink::Handle;
use tokio::task::JoinHandle;

pub use created::{Created, Made};
pub use error::Error;
pub use ipnet::Ipv4Net;
pub use netns::{NETNS_DIR, netns_path};
pub use nft::{
    FIREWALL_TABLE, Firewall, ForwardAllow, L4Match, Nft, RuleCounter, TAPS_TABLE, Tap, Taps,
};
pub use types::{
    FdbEntry, LinkInfo, MAIN_TABLE, MAX_IFNAME, MAX_VNI, Mac, MacDisplay, Removed, RouteInfo,
    RuleAction, RuleSpec, VXLAN_PORT, VxlanInfo, VxlanSpec, ZERO_MAC,
};

/// A netlink (rtnetlink) handle bound to one network namespace.
///
/// The socket stays in the namespace it was made in, whatever thread later
/// uses it. Dropping the handle closes the socket. A handle inside a named
/// namespace keeps that namespace alive (with its links) until dropped,
/// even after [`Netplane::delete_namespace`].
pub struct Netplane {
    handle: Handle,
    namespace: Option<String>,
    /// The nsfs file of the named namespace the socket was made in: what a
    /// thread enters to act on the namespace through `/proc` (sysctls).
    netns_file: Option<Arc<File>>,
    connection: JoinHandle<()>,
}

impl std::fmt::Debug for Netplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netplane")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Drop for Netplane {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Netplane {
    /// A handle in the network namespace of the calling thread (the host's,
    /// or the broker's own).
    pub async fn connect() -> Result<Netplane, Error> {
        let action = "opening a netlink socket";
        let runtime = runtime(action, None)?;
        let (connection, handle, _) = rtnetlink::new_connection().map_err(|e| Error::Socket {
            action: action.to_owned(),
            namespace: None,
            detail: e.to_string(),
        })?;
        Ok(Netplane {
            handle,
            namespace: None,
            netns_file: None,
            connection: runtime.spawn(connection),
        })
    }

    /// A handle whose socket lives in the named namespace `/run/netns/<name>`.
    ///
    /// The socket is made on a thread of its own that enters the namespace
    /// and ends right after: the calling (tokio worker) thread never changes
    /// namespace.
    pub async fn in_namespace(name: &str) -> Result<Netplane, Error> {
        let action = format!("opening a netlink socket in netns {name}");
        let file = Arc::new(netns::open_netns(&action, name)?);
        let runtime = runtime(&action, Some(name))?;
        let ns = name.to_owned();
        let what = action.clone();
        let in_thread = runtime.clone();
        let kept = file.clone();
        let (connection, handle) = netns::on_fresh_thread(&action, move || {
            netns::enter(&what, &ns, &file)?;
            // The socket is registered with the caller's runtime, from here.
            let _entered = in_thread.enter();
            let (connection, handle, _) =
                rtnetlink::new_connection().map_err(|e| Error::Socket {
                    action: what.clone(),
                    namespace: Some(ns.clone()),
                    detail: e.to_string(),
                })?;
            Ok((connection, handle))
        })
        .await?;
        tracing::debug!(netns = %name, "netlink handle opened");
        Ok(Netplane {
            handle,
            namespace: Some(name.to_owned()),
            netns_file: Some(kept),
            connection: runtime.spawn(connection),
        })
    }

    /// The named namespace this handle lives in (`None`: the one it was
    /// connected in).
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// `ip netns add NAME`: creates a network namespace and binds it on
    /// `/run/netns/NAME`. An existing name is an error (EEXIST). The work
    /// runs on a thread of its own (which alone enters the new namespace),
    /// and finishes even if the returned future is dropped.
    pub async fn create_namespace(name: &str) -> Result<(), Error> {
        netns::create(name).await
    }

    /// `ip netns del NAME`. A missing namespace is reported as
    /// [`Removed::WasAbsent`].
    pub async fn delete_namespace(name: &str) -> Result<Removed, Error> {
        netns::delete(name).await
    }

    /// The named network namespaces (under `/run/netns`), sorted.
    pub async fn list_namespaces() -> Result<Vec<String>, Error> {
        netns::list().await
    }

    fn err(&self, action: String, e: rtnetlink::Error) -> Error {
        Error::from_netlink(action, self.namespace.clone(), e)
    }
}

/// The tokio runtime the netlink connection is driven by.
fn runtime(action: &str, namespace: Option<&str>) -> Result<tokio::runtime::Handle, Error> {
    tokio::runtime::Handle::try_current().map_err(|e| Error::Socket {
        action: action.to_owned(),
        namespace: namespace.map(str::to_owned),
        detail: format!("no tokio runtime: {e}"),
    })
}
