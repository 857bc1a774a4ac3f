//! This broker's side of the cross-cloud VNets.
//!
//! The root keeps the registry (VNIs, networks, attachments with their
//! addresses and MACs, each cloud's VTEP); this broker declares its VTEP
//! (`[network] vtep`), watches the VNets that span its cloud, and makes the
//! kernel match the plan of `intercloud_vnet::plan`: per VNet a VXLAN device
//! and a bridge in the underlay namespace (`[network] namespace`), a veth
//! per local attachment into the instance's namespace, and FDB entries
//! towards the other clouds' VTEPs.
//!
//! Map:
//! - [`view`]: the VNets as the root's watch tells them, and their
//!   translation into the plan's input (pure).
//! - [`status`]: what `ShowVnet` reports of the local side (pure).
//! - [`kernel`]: reading the host and carrying out actions through netlink,
//!   with rollback.
//! - [`driver`]: the task: `SetVtep`, `WatchVnets` with reconnection, and a
//!   reconciliation after every change and every `reconcile_seconds`.
//!
//! Invariants:
//! - Nothing is reconciled before the root's first complete snapshot: an
//!   empty view would mean "delete every VNet". A restarted broker thus
//!   finds its interfaces, compares them and leaves the correct ones alone.
//! - Only interfaces named `icx…`, `icb…`, `icv…` in the underlay namespace
//!   and instance namespaces this broker recorded making are ever removed.
//! - A VNet the broker cannot plan (an unreadable record, an instance
//!   attached to two VNets here) is left as it is, not torn down.

pub mod driver;
pub mod kernel;
pub mod routed;
pub mod status;
pub mod view;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};

use intercloud_proto::v1::{LocalDataplane, Vnet};
use intercloud_vnet::CloudId;
use tokio::sync::Notify;

use crate::config::BrokerConfig;
use status::Status;
use view::View;

/// Where a reason that concerns every VNet comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trouble {
    /// The root refused this cloud's VTEP.
    Vtep,
    /// The kernel could not be read or the plan not made.
    Round,
    /// The routed side (filter, taps, routing rules) could not be completed.
    Routed,
}

/// An instance's place on a production VNet, as [`Vnets::bindings_of`]
/// gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnetBinding {
    /// The VNet's tenant.
    pub tenant: String,
    /// The VNet.
    pub vnet: String,
    /// The VNet's member clouds.
    pub clouds: Vec<String>,
    /// The instance's address on it.
    pub ip: String,
}

/// What the driver and the operator API share.
#[derive(Debug)]
pub struct Vnets {
    cloud: CloudId,
    vtep: Ipv4Addr,
    view: Mutex<View>,
    status: Mutex<Status>,
    troubles: Mutex<BTreeMap<Trouble, String>>,
    wake: Notify,
}

impl Vnets {
    /// The VNet side of the broker configured by `config`; `None` when
    /// `network.vtep` is not set (the data plane is off).
    pub fn from_config(config: &BrokerConfig) -> Option<Arc<Self>> {
        let vtep = config.network.vtep_address()?;
        let cloud = CloudId::new(config.cloud_id.as_str()).ok()?;
        Some(Arc::new(Self {
            cloud,
            vtep,
            view: Mutex::new(View::new()),
            status: Mutex::new(Status::new()),
            troubles: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
        }))
    }

    /// This cloud.
    pub fn cloud(&self) -> &CloudId {
        &self.cloud
    }

    /// This cloud's VTEP.
    pub fn vtep(&self) -> Ipv4Addr {
        self.vtep
    }

    /// The local side of `vnet`, the root's record of it as of now.
    pub fn local(&self, vnet: &Vnet) -> LocalDataplane {
        self.with_status(|s| s.local(vnet.vni, Some(vnet)))
    }

    /// The VNet (`tenant/name`) `instance` of this cloud is attached to, as
    /// far as this broker knows.
    pub fn attached_vnet(&self, instance: &str) -> Option<String> {
        self.with_view(|v| {
            v.attached_vnet(self.cloud.as_str(), instance)
                .map(|vnet| format!("{}/{}", vnet.tenant, vnet.name))
        })
    }

    /// The production VNets `instance` of this cloud is attached to, as far
    /// as this broker knows.
    pub fn bindings_of(&self, instance: &str) -> Vec<VnetBinding> {
        self.with_view(|v| {
            v.attachments_of(self.cloud.as_str(), instance)
                .map(|(vnet, binding)| VnetBinding {
                    tenant: vnet.tenant.clone(),
                    vnet: vnet.name.clone(),
                    clouds: vnet.clouds.clone(),
                    ip: binding.ip.clone(),
                })
                .collect()
        })
    }

    /// Asks for a reconciliation now (after an attachment, say).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    pub(crate) fn with_view<T>(&self, f: impl FnOnce(&mut View) -> T) -> T {
        f(&mut self.view.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn with_status<T>(&self, f: impl FnOnce(&mut Status) -> T) -> T {
        f(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Sets or clears one source of trouble; every VNet shows them all.
    pub(crate) fn set_trouble(&self, source: Trouble, reason: Option<String>) {
        let joined = {
            let mut troubles = self.troubles.lock().unwrap_or_else(PoisonError::into_inner);
            match reason {
                Some(reason) => troubles.insert(source, reason),
                None => troubles.remove(&source),
            };
            (!troubles.is_empty())
                .then(|| troubles.values().cloned().collect::<Vec<_>>().join("; "))
        };
        self.with_status(|s| s.set_trouble(joined));
    }
}
