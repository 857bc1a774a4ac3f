//! [`Created`]: the log of what a multi-step operation made, so that it can
//! all be undone when a later step fails — nothing is left half-created.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::types::MacDisplay;
use crate::{Error, Mac, Netplane, VxlanSpec};

/// One thing an operation made, and where it now is (`namespace`: the named
/// namespace, `None` for the one [`Netplane::connect`] binds to).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Made {
    /// A named network namespace.
    Namespace {
        /// Its name.
        name: String,
    },
    /// A link (for a veth pair, one record per end).
    Link {
        /// Its current name.
        name: String,
        /// The namespace it is now in.
        namespace: Option<String>,
    },
    /// An address added to a link.
    Address {
        /// The link.
        link: String,
        /// The address.
        address: Ipv4Net,
        /// The namespace of the link.
        namespace: Option<String>,
    },
    /// One destination added to a VXLAN device's FDB.
    Fdb {
        /// The VXLAN device.
        vxlan: String,
        /// The MAC.
        mac: Mac,
        /// The remote VTEP.
        dst: Ipv4Addr,
        /// The namespace of the device.
        namespace: Option<String>,
    },
}

impl std::fmt::Display for Made {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = |n: &Option<String>| match n {
            Some(n) => format!(" in netns {n}"),
            None => String::new(),
        };
        match self {
            Made::Namespace { name } => write!(f, "netns {name}"),
            Made::Link { name, namespace } => write!(f, "link {name}{}", ns(namespace)),
            Made::Address {
                link,
                address,
                namespace,
            } => write!(f, "address {address} on {link}{}", ns(namespace)),
            Made::Fdb {
                vxlan,
                mac,
                dst,
                namespace,
            } => write!(
                f,
                "fdb {} dst {dst} on {vxlan}{}",
                MacDisplay(*mac),
                ns(namespace)
            ),
        }
    }
}

/// The log of what a multi-step operation created, in order.
///
/// Create through the log (its methods call the [`Netplane`] and record
/// what succeeded); when a step fails, [`Created::rollback`] undoes
/// everything recorded, newest first; when all went well,
/// [`Created::commit`] forgets it. Only what the log itself made is undone:
/// a thing that was there before (an existing FDB destination, say) is left
/// alone. Changes to links the log did not make (moves, renames) are not
/// undone.
///
/// ```no_run
/// # use intercloud_netplane::{Created, Netplane, VxlanSpec, Error};
/// # async fn f(np: &Netplane) -> Result<(), Error> {
/// let mut log = Created::new();
/// let done: Result<(), Error> = async {
///     log.create_bridge(np, "icb0000a1").await?;
///     log.create_vxlan(np, &VxlanSpec::new("icx0000a1", 161, [10, 99, 0, 1].into())).await?;
///     np.set_master("icx0000a1", "icb0000a1").await?;
///     Ok(())
/// }
/// .await;
/// match done {
///     Ok(()) => drop(log.commit()),
///     Err(e) => {
///         log.rollback().await?;
///         return Err(e);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct Created {
    items: Vec<Made>,
}

impl Drop for Created {
    fn drop(&mut self) {
        if !self.items.is_empty() {
            tracing::warn!(
                items = self.items.len(),
                "a Created log was dropped without commit or rollback: {}",
                self.items
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}

impl Created {
    /// An empty log.
    pub fn new() -> Created {
        Created::default()
    }

    /// What has been recorded, oldest first.
    pub fn items(&self) -> &[Made] {
        &self.items
    }

    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Records something made some other way, to be undone on rollback.
    pub fn record(&mut self, item: Made) {
        self.items.push(item);
    }

    /// Keeps everything: returns the records and empties the log.
    pub fn commit(mut self) -> Vec<Made> {
        std::mem::take(&mut self.items)
    }

    /// [`Netplane::create_namespace`], recorded.
    pub async fn create_namespace(&mut self, name: &str) -> Result<(), Error> {
        Netplane::create_namespace(name).await?;
        self.record(Made::Namespace {
            name: name.to_owned(),
        });
        Ok(())
    }

    /// [`Netplane::create_bridge`], recorded.
    pub async fn create_bridge(&mut self, np: &Netplane, name: &str) -> Result<(), Error> {
        np.create_bridge(name).await?;
        self.record_link(np, name);
        Ok(())
    }

    /// [`Netplane::create_vxlan`], recorded.
    pub async fn create_vxlan(&mut self, np: &Netplane, spec: &VxlanSpec) -> Result<(), Error> {
        np.create_vxlan(spec).await?;
        self.record_link(np, &spec.name);
        Ok(())
    }

    /// [`Netplane::create_veth`], recorded (both ends).
    pub async fn create_veth(
        &mut self,
        np: &Netplane,
        host: &str,
        peer: &str,
    ) -> Result<(), Error> {
        np.create_veth(host, peer).await?;
        self.record_link(np, host);
        self.record_link(np, peer);
        Ok(())
    }

    /// [`Netplane::move_to_namespace`]; a link the log made is then looked
    /// for in its new namespace (its addresses, lost in the move, are
    /// forgotten).
    pub async fn move_to_namespace(
        &mut self,
        np: &Netplane,
        link: &str,
        ns: &str,
    ) -> Result<(), Error> {
        np.move_to_namespace(link, ns).await?;
        let from = np.namespace.clone();
        let to = Some(ns.to_owned());
        self.items.retain(|i| {
            !matches!(i, Made::Address { link: l, namespace, .. } if l == link && *namespace == from)
        });
        for item in &mut self.items {
            match item {
                Made::Link { name, namespace } if name == link && *namespace == from => {
                    namespace.clone_from(&to);
                }
                Made::Fdb {
                    vxlan, namespace, ..
                } if vxlan == link && *namespace == from => namespace.clone_from(&to),
                _ => {}
            }
        }
        Ok(())
    }

    /// [`Netplane::rename`]; records about the link follow the new name.
    pub async fn rename(&mut self, np: &Netplane, link: &str, new: &str) -> Result<(), Error> {
        np.rename(link, new).await?;
        let here = np.namespace.clone();
        for item in &mut self.items {
            match item {
                Made::Link {
                    name: l, namespace, ..
                }
                | Made::Address {
                    link: l, namespace, ..
                }
                | Made::Fdb {
                    vxlan: l,
                    namespace,
                    ..
                } if l == link && *namespace == here => new.clone_into(l),
                _ => {}
            }
        }
        Ok(())
    }

    /// [`Netplane::add_address`], recorded.
    pub async fn add_address(
        &mut self,
        np: &Netplane,
        link: &str,
        address: Ipv4Net,
    ) -> Result<(), Error> {
        np.add_address(link, address).await?;
        self.record(Made::Address {
            link: link.to_owned(),
            address,
            namespace: np.namespace.clone(),
        });
        Ok(())
    }

    /// [`Netplane::fdb_append`], recorded unless that destination was
    /// there already.
    pub async fn fdb_append(
        &mut self,
        np: &Netplane,
        vxlan: &str,
        mac: Mac,
        dst: Ipv4Addr,
    ) -> Result<(), Error> {
        let existed = np
            .fdb_list(vxlan)
            .await?
            .iter()
            .any(|e| e.mac == mac && e.dst == Some(dst));
        np.fdb_append(vxlan, mac, dst).await?;
        if !existed {
            self.record(Made::Fdb {
                vxlan: vxlan.to_owned(),
                mac,
                dst,
                namespace: np.namespace.clone(),
            });
        }
        Ok(())
    }

    fn record_link(&mut self, np: &Netplane, name: &str) {
        self.record(Made::Link {
            name: name.to_owned(),
            namespace: np.namespace.clone(),
        });
    }

    /// Undoes everything recorded, newest first. Something already gone
    /// (a veth end deleted with its peer, a link in a namespace deleted
    /// meanwhile) counts as undone. Every step is tried; the ones that
    /// failed are returned together in [`Error::Rollback`].
    ///
    /// A namespace the log made is unmounted, but the kernel frees it (and
    /// its links) only when nothing holds it: drop your own [`Netplane`]
    /// handles inside it first.
    pub async fn rollback(mut self) -> Result<(), Error> {
        let items = std::mem::take(&mut self.items);
        let mut handles: HashMap<Option<String>, Netplane> = HashMap::new();
        let mut failures = Vec::new();
        for item in items.iter().rev() {
            tracing::debug!("rolling back {item}");
            if let Err(e) = undo(item, &mut handles).await {
                tracing::warn!("rolling back {item}: {e}");
                failures.push(e);
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::Rollback { failures })
        }
    }
}

async fn undo(item: &Made, handles: &mut HashMap<Option<String>, Netplane>) -> Result<(), Error> {
    let namespace = match item {
        Made::Namespace { name } => {
            // A handle of ours inside would keep the namespace alive.
            handles.remove(&Some(name.clone()));
            Netplane::delete_namespace(name).await?;
            return Ok(());
        }
        Made::Link { namespace, .. }
        | Made::Address { namespace, .. }
        | Made::Fdb { namespace, .. } => namespace,
    };
    let np = match handles.get(namespace) {
        Some(np) => np,
        None => {
            let opened = match namespace {
                None => Netplane::connect().await,
                Some(ns) => Netplane::in_namespace(ns).await,
            };
            match opened {
                Ok(np) => handles.entry(namespace.clone()).or_insert(np),
                // The namespace is gone, and what was in it with it.
                Err(e @ Error::Namespace { .. }) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    };
    match item {
        Made::Link { name, .. } => np.delete_link(name).await.map(drop),
        Made::Address { link, address, .. } => np.delete_address(link, *address).await.map(drop),
        Made::Fdb {
            vxlan, mac, dst, ..
        } => np.fdb_delete(vxlan, *mac, *dst).await.map(drop),
        Made::Namespace { .. } => Ok(()),
    }
}
