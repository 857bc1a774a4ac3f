//! The federation's VNets as the root keeps them: the registry and its VNI
//! allocator (from `intercloud-vnet`), each VNet's bindings and creation
//! time, and the member clouds' VTEPs.
//!
//! Pure logic: every operation takes `now` and returns its result with the
//! [`Change`]s it made; nothing here touches a disk or a socket.
//! [`super::store`] persists the whole state after each accepted change and
//! only then publishes it and its changes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use intercloud_vnet::{
    AttachError, Attachments, Binding, CloudId, InstanceId, Registry, TenantId, VnetName,
    VnetRecord, VnetSpec, VniAllocator, VniRange, ipam,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::error::NetworkError;

/// The version of the file format [`NetworkState`] serializes to.
pub const FORMAT: u32 = 1;

/// How many instances a refusal to delete names before "and N more".
const NAMED_INSTANCES: usize = 10;

/// What the federation says of a cloud named as a VNet member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Enrolled or registered, not revoked.
    Member,
    /// Revoked.
    Revoked,
    /// Not a member.
    Unknown,
}

/// Who is looking: which VNets they may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// A cloud (its broker or operators): the VNets it is a member of.
    Cloud(CloudId),
    /// A root operator: every VNet.
    Everything,
}

impl Viewer {
    /// Whether the viewer may see `record`.
    pub fn sees(&self, record: &VnetRecord) -> bool {
        match self {
            Self::Cloud(cloud) => record.spec.spans(cloud),
            Self::Everything => true,
        }
    }
}

/// What the root keeps of a VNet besides its registry record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VnetExtras {
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The attached instances.
    pub attachments: Attachments,
}

/// A VNet as a watcher or a caller sees it: its record, bindings and the
/// VTEPs of its member clouds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnetView {
    /// The registry's record (spec and VNI).
    pub record: VnetRecord,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// Its bindings, in instance order.
    pub bindings: Vec<Binding>,
    /// The VTEPs its member clouds declared.
    pub vteps: BTreeMap<CloudId, Ipv4Addr>,
}

/// What happened to a VNet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// It was created.
    Created,
    /// It was deleted.
    Deleted,
    /// An instance was attached.
    BindingAdded(Binding),
    /// An instance was detached.
    BindingRemoved(Binding),
    /// A member cloud declared a new VTEP address.
    VtepChanged {
        /// The cloud.
        cloud: CloudId,
        /// Its new address.
        address: Ipv4Addr,
    },
}

/// One change of one VNet, with the VNet as it is after it (as it was, for
/// a deletion), so a watcher can replace its copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The VNet after the change (before it, for a deletion).
    pub vnet: VnetView,
    /// The state's revision after the change.
    pub revision: u64,
    /// When.
    pub at: OffsetDateTime,
}

/// An accepted operation's result and the changes it made.
pub type Outcome<T> = (T, Vec<Change>);

/// Every VNet of the federation with its bindings, and the VTEPs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkState {
    /// The file format, [`FORMAT`].
    format: u32,
    /// Grows with every accepted change; survives restarts.
    revision: u64,
    /// The VNets with their VNIs.
    registry: Registry,
    /// VNIs in use and where the next search starts.
    vnis: VniAllocator,
    /// Bindings and creation times, by tenant then name.
    vnets: BTreeMap<TenantId, BTreeMap<VnetName, VnetExtras>>,
    /// Each cloud's declared VTEP.
    vteps: BTreeMap<CloudId, Ipv4Addr>,
}

impl NetworkState {
    /// No VNets yet; VNIs come from `range`.
    pub fn new(range: VniRange) -> Self {
        Self {
            format: FORMAT,
            revision: 0,
            registry: Registry::new(),
            vnis: VniAllocator::new(range, []),
            vnets: BTreeMap::new(),
            vteps: BTreeMap::new(),
        }
    }

    /// The same state handing out VNIs from `range` (the configured range
    /// may differ from the one persisted): VNIs in use stay in use, and the
    /// search goes on after the last allocation.
    pub fn with_vni_range(mut self, range: VniRange) -> Self {
        self.vnis = self.vnis.with_range(range);
        self
    }

    /// Checks what serde cannot: the format, and that the registry, the
    /// allocator and the bindings agree. A disagreement means the file was
    /// edited or damaged; the root then refuses to start rather than hand
    /// out a VNI or an address twice.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "format {} is not the one this root reads ({FORMAT})",
                self.format
            ));
        }
        for record in self.registry.all() {
            let (tenant, name) = (record.spec.tenant(), record.spec.name());
            if !self.vnis.is_in_use(record.vni) {
                return Err(format!(
                    "VNI {} of vnet {name:?} of tenant {tenant} is not marked in use",
                    record.vni
                ));
            }
            let extras = self.extras(tenant, name).ok_or_else(|| {
                format!("vnet {name:?} of tenant {tenant} has no bindings record")
            })?;
            let attachments = &extras.attachments;
            if attachments.vnet() != name || attachments.cidr() != record.spec.cidr() {
                return Err(format!(
                    "the bindings of vnet {name:?} of tenant {tenant} are for vnet {:?} ({})",
                    attachments.vnet(),
                    attachments.cidr()
                ));
            }
            if let Some(stray) = attachments
                .bindings()
                .find(|b| !record.spec.spans(&b.cloud))
            {
                return Err(format!(
                    "instance {} of vnet {name:?} of tenant {tenant} is bound on {}, which is not a member",
                    stray.instance, stray.cloud
                ));
            }
        }
        for (tenant, vnets) in &self.vnets {
            if let Some(name) = vnets
                .keys()
                .find(|name| self.registry.vnet(tenant, name).is_none())
            {
                return Err(format!(
                    "bindings recorded for vnet {name:?} of tenant {tenant}, which is not in the registry"
                ));
            }
        }
        if let Some(vni) = self
            .vnis
            .in_use()
            .iter()
            .find(|vni| self.registry.by_vni(**vni).is_none())
        {
            return Err(format!("VNI {vni} is marked in use but no vnet has it"));
        }
        Ok(())
    }

    /// The revision: grows with every accepted change.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The range VNIs are allocated from.
    pub fn vni_range(&self) -> VniRange {
        self.vnis.range()
    }

    /// Each cloud's declared VTEP.
    pub fn vteps(&self) -> &BTreeMap<CloudId, Ipv4Addr> {
        &self.vteps
    }

    /// Creates the VNet `spec` for its tenant, `caller`. Every cloud must be
    /// a member of the federation in good standing (`standing` says), and the
    /// caller one of them. Nothing changes on refusal.
    pub fn create(
        &mut self,
        caller: &CloudId,
        spec: VnetSpec,
        standing: impl Fn(&CloudId) -> Standing,
        now: OffsetDateTime,
    ) -> Result<Outcome<VnetView>, NetworkError> {
        if !spec.spans(caller) {
            return Err(NetworkError::CreatorNotMember {
                caller: caller.clone(),
            });
        }
        for cloud in spec.clouds() {
            match standing(cloud) {
                Standing::Member => {}
                Standing::Revoked => return Err(NetworkError::RevokedCloud(cloud.clone())),
                Standing::Unknown => return Err(NetworkError::UnknownCloud(cloud.clone())),
            }
        }
        let (tenant, name) = (spec.tenant().clone(), spec.name().clone());
        let cidr = spec.cidr();
        let record = self.registry.create(spec, &mut self.vnis)?;
        self.vnets.entry(tenant.clone()).or_default().insert(
            name.clone(),
            VnetExtras {
                created_at: now,
                attachments: Attachments::new(name, cidr),
            },
        );
        let view = self.view(&record);
        let change = self.change(ChangeKind::Created, view.clone(), now);
        Ok((view, vec![change]))
    }

    /// Deletes the tenant's VNet `name` and releases its VNI. Refused while
    /// instances are attached (they are named) or a mirror exists.
    pub fn delete(
        &mut self,
        tenant: &TenantId,
        name: &VnetName,
        now: OffsetDateTime,
    ) -> Result<Outcome<VnetView>, NetworkError> {
        let record = self.record(tenant, name)?;
        let view = self.view(record);
        if !view.bindings.is_empty() {
            let mut instances: Vec<String> = view
                .bindings
                .iter()
                .take(NAMED_INSTANCES)
                .map(|b| format!("{} (on {}, {})", b.instance, b.cloud, b.ip))
                .collect();
            if view.bindings.len() > NAMED_INSTANCES {
                instances.push(format!(
                    "and {} more",
                    view.bindings.len() - NAMED_INSTANCES
                ));
            }
            return Err(NetworkError::HasBindings {
                tenant: tenant.clone(),
                name: name.clone(),
                count: view.bindings.len(),
                instances: instances.join(", "),
            });
        }
        self.registry.delete(tenant, name, &mut self.vnis)?;
        if let Some(vnets) = self.vnets.get_mut(tenant) {
            vnets.remove(name);
            if vnets.is_empty() {
                self.vnets.remove(tenant);
            }
        }
        let change = self.change(ChangeKind::Deleted, view.clone(), now);
        Ok((view, vec![change]))
    }

    /// The tenant's VNet `name`, if `viewer` may see it.
    pub fn get(
        &self,
        viewer: &Viewer,
        tenant: &TenantId,
        name: &VnetName,
    ) -> Result<VnetView, NetworkError> {
        let record = self.record(tenant, name)?;
        if let Viewer::Cloud(cloud) = viewer {
            self.member(cloud, record)?;
        }
        Ok(self.view(record))
    }

    /// Every VNet `viewer` may see, in tenant and name order.
    pub fn visible(&self, viewer: &Viewer) -> Vec<VnetView> {
        self.registry
            .all()
            .filter(|r| viewer.sees(r))
            .map(|r| self.view(r))
            .collect()
    }

    /// Attaches `instance`, running in `caller`, to the tenant's VNet
    /// `name`, with `wanted` as its address or the lowest free one, and the
    /// MAC [`ipam::mac_for`] derives from the VNI and the address.
    pub fn attach(
        &mut self,
        caller: &CloudId,
        tenant: &TenantId,
        name: &VnetName,
        instance: InstanceId,
        wanted: Option<Ipv4Addr>,
        now: OffsetDateTime,
    ) -> Result<Outcome<Binding>, NetworkError> {
        let record = self.record(tenant, name)?;
        self.member(caller, record)?;
        let (vni, cidr) = (record.vni, record.spec.cidr());
        let attachments = &self.extras_of(record)?.attachments;
        if let Some(existing) = attachments.binding(&instance) {
            return Err(AttachError::AlreadyAttached {
                instance,
                vnet: name.clone(),
                ip: existing.ip,
            }
            .into());
        }
        let ip =
            ipam::allocate(&cidr, &attachments.used_ips(), wanted).map_err(|source| {
                match (
                    &source,
                    attachments.bindings().find(|b| Some(b.ip) == wanted),
                ) {
                    (ipam::IpamError::Taken { ip, .. }, Some(holder)) => AttachError::IpTaken {
                        ip: *ip,
                        vnet: name.clone(),
                        holder: holder.instance.clone(),
                    },
                    _ => AttachError::Address {
                        vnet: name.clone(),
                        source,
                    },
                }
            })?;
        let extras = self.extras_mut(tenant, name)?;
        let binding = extras
            .attachments
            .attach(instance, caller.clone(), ip, ipam::mac_for(vni, ip))?
            .clone();
        let view = self.view(self.record(tenant, name)?);
        let change = self.change(ChangeKind::BindingAdded(binding.clone()), view, now);
        Ok((binding, vec![change]))
    }

    /// Removes `instance`'s attachment to the tenant's VNet `name`; only the
    /// cloud it is bound on (`caller`) may.
    pub fn detach(
        &mut self,
        caller: &CloudId,
        tenant: &TenantId,
        name: &VnetName,
        instance: &InstanceId,
        now: OffsetDateTime,
    ) -> Result<Outcome<Binding>, NetworkError> {
        let record = self.record(tenant, name)?;
        self.member(caller, record)?;
        let binding = self
            .extras_of(record)?
            .attachments
            .binding(instance)
            .ok_or_else(|| AttachError::NotAttached {
                instance: instance.clone(),
                vnet: name.clone(),
            })?;
        if binding.cloud != *caller {
            return Err(NetworkError::NotYourBinding {
                instance: instance.clone(),
                name: name.clone(),
                owner: binding.cloud.clone(),
                caller: caller.clone(),
            });
        }
        let removed = self
            .extras_mut(tenant, name)?
            .attachments
            .detach(instance)?;
        let view = self.view(self.record(tenant, name)?);
        let change = self.change(ChangeKind::BindingRemoved(removed.clone()), view, now);
        Ok((removed, vec![change]))
    }

    /// Records `address` as `caller`'s VTEP. Returns whether it changed;
    /// each VNet spanning the caller gets a change.
    pub fn set_vtep(
        &mut self,
        caller: &CloudId,
        address: Ipv4Addr,
        now: OffsetDateTime,
    ) -> Result<Outcome<bool>, NetworkError> {
        check_vtep(address)?;
        if let Some((cloud, _)) = self
            .vteps
            .iter()
            .find(|(cloud, a)| **a == address && *cloud != caller)
        {
            return Err(NetworkError::VtepTaken {
                address,
                cloud: cloud.clone(),
            });
        }
        if self.vteps.get(caller) == Some(&address) {
            return Ok((false, Vec::new()));
        }
        self.vteps.insert(caller.clone(), address);
        self.revision += 1;
        let changes = self
            .registry
            .spanning(caller)
            .map(|record| Change {
                kind: ChangeKind::VtepChanged {
                    cloud: caller.clone(),
                    address,
                },
                vnet: self.view(record),
                revision: self.revision,
                at: now,
            })
            .collect();
        Ok((true, changes))
    }

    /// The view of `record`: bindings and the VTEPs of its member clouds.
    fn view(&self, record: &VnetRecord) -> VnetView {
        let extras = self.extras(record.spec.tenant(), record.spec.name());
        VnetView {
            record: record.clone(),
            created_at: extras.map_or(OffsetDateTime::UNIX_EPOCH, |e| e.created_at),
            bindings: extras
                .map(|e| e.attachments.bindings().cloned().collect())
                .unwrap_or_default(),
            vteps: record
                .spec
                .clouds()
                .iter()
                .filter_map(|c| self.vteps.get(c).map(|a| (c.clone(), *a)))
                .collect(),
        }
    }

    /// Bumps the revision and describes the change.
    fn change(&mut self, kind: ChangeKind, vnet: VnetView, at: OffsetDateTime) -> Change {
        self.revision += 1;
        Change {
            kind,
            vnet,
            revision: self.revision,
            at,
        }
    }

    fn record(&self, tenant: &TenantId, name: &VnetName) -> Result<&VnetRecord, NetworkError> {
        self.registry
            .vnet(tenant, name)
            .ok_or_else(|| NetworkError::NotFound {
                tenant: tenant.clone(),
                name: name.clone(),
            })
    }

    fn member(&self, cloud: &CloudId, record: &VnetRecord) -> Result<(), NetworkError> {
        if record.spec.spans(cloud) {
            return Ok(());
        }
        Err(NetworkError::NotMember {
            cloud: cloud.clone(),
            tenant: record.spec.tenant().clone(),
            name: record.spec.name().clone(),
            members: record
                .spec
                .clouds()
                .iter()
                .map(CloudId::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    fn extras(&self, tenant: &TenantId, name: &VnetName) -> Option<&VnetExtras> {
        self.vnets.get(tenant).and_then(|v| v.get(name))
    }

    fn extras_of(&self, record: &VnetRecord) -> Result<&VnetExtras, NetworkError> {
        self.extras(record.spec.tenant(), record.spec.name())
            .ok_or_else(|| NetworkError::NotFound {
                tenant: record.spec.tenant().clone(),
                name: record.spec.name().clone(),
            })
    }

    fn extras_mut(
        &mut self,
        tenant: &TenantId,
        name: &VnetName,
    ) -> Result<&mut VnetExtras, NetworkError> {
        self.vnets
            .get_mut(tenant)
            .and_then(|v| v.get_mut(name))
            .ok_or_else(|| NetworkError::NotFound {
                tenant: tenant.clone(),
                name: name.clone(),
            })
    }
}

/// Refuses addresses that cannot be a unicast underlay address.
fn check_vtep(address: Ipv4Addr) -> Result<(), NetworkError> {
    let reason = if address.is_unspecified() {
        Some("it is the unspecified address")
    } else if address.is_broadcast() {
        Some("it is the broadcast address")
    } else if address.is_multicast() {
        Some("it is a multicast address")
    } else if address.octets()[0] >= 240 {
        Some("it is in the reserved range 240.0.0.0/4")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NetworkError::BadVtep { address, reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
