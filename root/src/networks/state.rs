//! The federation's VNets as the root keeps them: the registry and its VNI
//! allocator (from `intercloud-vnet`), each VNet's bindings and creation
//! time, the member clouds' VTEPs, and the security domains' owners with
//! the flow rules between domains (a `PolicySet`).
//!
//! Pure logic: every operation takes `now` and returns its result with the
//! [`Event`]s it made; nothing here touches a disk or a socket.
//! [`super::store`] persists the whole state after each accepted change and
//! only then publishes it and its events.
//!
//! - this file: VNets, bindings, VTEPs, domain ownership, the file's checks;
//! - [`flows`]: proposing, agreeing and withdrawing flow rules;
//! - [`mirrors`]: Mirror VNets and swapping them with their production.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use intercloud_vnet::{
    AttachError, Attachments, Binding, CloudId, Domain, InstanceId, PolicySet, Registry, TenantId,
    VnetName, VnetRecord, VnetSpec, VniAllocator, VniRange, ipam,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::error::NetworkError;

mod flows;
mod mirrors;

pub use flows::{AgreedPolicies, Policy};

/// The version of the file format [`NetworkState`] serializes to. Format 1
/// had no domain owners; [`NetworkState::migrate`] reads it.
pub const FORMAT: u32 = 2;

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
    /// On a production VNet with a mirror: whether the mirror carries the
    /// production traffic (after an odd number of swaps). The pair's one
    /// flag lives here; a mirror's own is always false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub swapped: bool,
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
    /// On a production VNet: its mirror, if it has one.
    pub mirror: Option<VnetName>,
    /// On both VNets of a production/mirror pair: whether the mirror
    /// carries the production traffic.
    pub swapped: bool,
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
    /// A cloud's VTEP was forgotten (the cloud was revoked): nothing is to
    /// be sent there any more.
    VtepForgotten {
        /// The cloud.
        cloud: CloudId,
    },
    /// A production VNet got a mirror or lost it (its `mirror` and
    /// `swapped` changed). Sent as a `KIND_CREATED` that replaces the
    /// watcher's copy: the protocol has no kind of its own for it.
    MirrorChanged,
    /// The VNet and its pair swapped roles.
    Swapped,
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

/// The agreed flow rules after a change that may have changed them, or
/// whom they concern (a rule agreed or withdrawn, a VNet created or
/// deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyChange {
    /// Every agreed rule with the clouds it concerns.
    pub agreed: AgreedPolicies,
    /// The state's revision after the change.
    pub revision: u64,
    /// When.
    pub at: OffsetDateTime,
}

/// What an accepted operation tells watchers.
// Nearly every event is a VNet change, and each is put in an `Arc` for the
// broadcast anyway: boxing it would add an allocation to the common case.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A VNet changed.
    Vnet(Change),
    /// The agreed flow rules, or who they concern, may have changed.
    Policies(PolicyChange),
}

impl Event {
    /// The VNet change, if this is one.
    pub fn vnet_change(&self) -> Option<&Change> {
        match self {
            Self::Vnet(change) => Some(change),
            Self::Policies(_) => None,
        }
    }
}

/// An accepted operation's result and the events it made.
pub type Outcome<T> = (T, Vec<Event>);

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
    /// The security domains' owners (the tenant whose VNet used a domain
    /// first) and the flow rules between domains. Absent from format 1.
    #[serde(default)]
    policies: PolicySet,
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
            policies: PolicySet::new(),
        }
    }

    /// Brings a state read from an older file up to [`FORMAT`]; one of
    /// another format is left for [`Self::check`] to refuse.
    ///
    /// Format 1 had no domain owners: each domain goes to the tenant of its
    /// oldest VNet, as if the VNets had been created in order under format
    /// 2. Two tenants with VNets in one domain cannot both keep it; that
    /// file is refused, naming both, rather than a VNet moved silently.
    pub fn migrate(mut self) -> Result<Self, String> {
        if self.format != 1 {
            return Ok(self);
        }
        let mut by_age: Vec<(OffsetDateTime, &VnetRecord)> = self
            .registry
            .all()
            .map(|r| {
                let created = self
                    .extras(r.spec.tenant(), r.spec.name())
                    .map_or(OffsetDateTime::UNIX_EPOCH, |e| e.created_at);
                (created, r)
            })
            .collect();
        // Stable: VNets created at the same instant stay in tenant order.
        by_age.sort_by_key(|(created, _)| *created);
        let mut first_user: BTreeMap<&Domain, &VnetRecord> = BTreeMap::new();
        let mut policies = PolicySet::new();
        for (_, record) in by_age {
            let (domain, tenant) = (record.spec.domain(), record.spec.tenant());
            if let Err(e) = policies.declare_domain(domain.clone(), tenant.clone()) {
                let first = first_user.get(domain).map_or_else(String::new, |r| {
                    format!(" (first used by vnet {:?})", r.spec.name())
                });
                return Err(format!(
                    "format 1 to {FORMAT}: {e}{first}, yet vnet {:?} of tenant {tenant} is in it; \
                     a domain now belongs to one tenant: move one tenant's VNets to another \
                     domain (or delete them) with the previous root version, then start this one",
                    record.spec.name()
                ));
            }
            first_user.entry(domain).or_insert(record);
        }
        self.policies = policies;
        self.format = FORMAT;
        Ok(self)
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
            let domain = record.spec.domain();
            match self.policies.owner(domain) {
                Some(owner) if owner == tenant => {}
                Some(owner) => {
                    return Err(format!(
                        "vnet {name:?} of tenant {tenant} is in domain {domain}, which tenant {owner} owns"
                    ));
                }
                None => {
                    return Err(format!(
                        "vnet {name:?} of tenant {tenant} is in domain {domain}, which has no owner"
                    ));
                }
            }
            self.check_pair(record, extras)?;
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

    /// A mirror's bindings are its production's, exactly; the pair's
    /// `swapped` flag is on a production that has a mirror.
    fn check_pair(&self, record: &VnetRecord, extras: &VnetExtras) -> Result<(), String> {
        let (tenant, name) = (record.spec.tenant(), record.spec.name());
        match &record.mirror_of {
            Some(of) => {
                if extras.swapped {
                    return Err(format!(
                        "mirror {name:?} of tenant {tenant} is marked swapped; the pair's flag belongs on its production {:?}",
                        of.production
                    ));
                }
                let production = self.extras(tenant, &of.production).ok_or_else(|| {
                    format!(
                        "mirror {name:?} of tenant {tenant}: its production {:?} has no bindings record",
                        of.production
                    )
                })?;
                if !extras
                    .attachments
                    .bindings()
                    .eq(production.attachments.bindings())
                {
                    return Err(format!(
                        "the bindings of mirror {name:?} of tenant {tenant} are not those of its production {:?}",
                        of.production
                    ));
                }
            }
            None => {
                if extras.swapped && self.registry.mirror(tenant, name).is_none() {
                    return Err(format!(
                        "vnet {name:?} of tenant {tenant} is marked swapped but has no mirror"
                    ));
                }
            }
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
    /// caller one of them; its domain must be unowned (the tenant then owns
    /// it) or the tenant's. Nothing changes on refusal.
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
        let domain = spec.domain().clone();
        if let Some(owner) = self.policies.owner(&domain)
            && *owner != tenant
        {
            return Err(NetworkError::DomainOwned {
                domain,
                owner: owner.clone(),
                tenant,
                name,
            });
        }
        let cidr = spec.cidr();
        let record = self.registry.create(spec, &mut self.vnis)?;
        self.policies.declare_domain(domain, tenant.clone())?;
        self.vnets.entry(tenant.clone()).or_default().insert(
            name.clone(),
            VnetExtras {
                created_at: now,
                attachments: Attachments::new(name, cidr),
                swapped: false,
            },
        );
        let view = self.view(&record);
        let mut events = self.vnet_events(now, vec![(ChangeKind::Created, view.clone())]);
        events.push(self.policies_event(now));
        Ok((view, events))
    }

    /// Deletes the tenant's VNet `name` and releases its VNI. A production
    /// VNet is refused while instances are attached (they are named) or a
    /// mirror exists. A mirror goes with its bindings (the clones of its
    /// production's; they are the production's to detach) and takes the
    /// pair's `swapped` flag with it.
    ///
    /// The VNet's domain stays the tenant's even when no VNet is left in
    /// it: its flow rules were agreed with that owner, and another tenant
    /// taking the name over would inherit them.
    pub fn delete(
        &mut self,
        tenant: &TenantId,
        name: &VnetName,
        now: OffsetDateTime,
    ) -> Result<Outcome<VnetView>, NetworkError> {
        let record = self.record(tenant, name)?;
        let production = record.mirror_of.as_ref().map(|of| of.production.clone());
        let view = self.view(record);
        if production.is_none() && !view.bindings.is_empty() {
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
        let mut changes = vec![(ChangeKind::Deleted, view.clone())];
        if let Some(production) = production {
            self.extras_mut(tenant, &production)?.swapped = false;
            let production = self.view(self.record(tenant, &production)?);
            changes.push((ChangeKind::MirrorChanged, production));
        }
        let mut events = self.vnet_events(now, changes);
        events.push(self.policies_event(now));
        Ok((view, events))
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
    /// MAC [`ipam::mac_for`] derives from the VNI and the address. A
    /// production's mirror gets the instance's clone in the same change
    /// (same instance, cloud, address, MAC and index); a mirror itself is
    /// refused.
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
        not_a_mirror(record, "attach to")?;
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
        let mut changes = vec![(
            ChangeKind::BindingAdded(binding.clone()),
            self.view(self.record(tenant, name)?),
        )];
        if let Some(mirror) = self.mirror_name(tenant, name) {
            let clone = self
                .extras_mut(tenant, &mirror)?
                .attachments
                .attach(
                    binding.instance.clone(),
                    binding.cloud.clone(),
                    binding.ip,
                    binding.mac,
                )
                .map_err(|e| out_of_step(tenant, &mirror, &e.to_string()))?
                .clone();
            // Both were the same set of bindings, so the lowest free index
            // is the same too.
            if clone != binding {
                return Err(out_of_step(
                    tenant,
                    &mirror,
                    &format!(
                        "the clone of {} got index {}",
                        binding.instance, clone.index
                    ),
                ));
            }
            let view = self.view(self.record(tenant, &mirror)?);
            changes.push((ChangeKind::BindingAdded(clone), view));
        }
        let events = self.vnet_events(now, changes);
        Ok((binding, events))
    }

    /// Removes `instance`'s attachment to the tenant's VNet `name` (and its
    /// clone's to the VNet's mirror); only the cloud it is bound on
    /// (`caller`) may. A mirror itself is refused.
    pub fn detach(
        &mut self,
        caller: &CloudId,
        tenant: &TenantId,
        name: &VnetName,
        instance: &InstanceId,
        now: OffsetDateTime,
    ) -> Result<Outcome<Binding>, NetworkError> {
        let record = self.record(tenant, name)?;
        not_a_mirror(record, "detach from")?;
        self.bound_by(caller, record, instance)?;
        let removed = self
            .extras_mut(tenant, name)?
            .attachments
            .detach(instance)?;
        let mut changes = vec![(
            ChangeKind::BindingRemoved(removed.clone()),
            self.view(self.record(tenant, name)?),
        )];
        if let Some(mirror) = self.mirror_name(tenant, name) {
            let clone = self
                .extras_mut(tenant, &mirror)?
                .attachments
                .detach(instance)
                .map_err(|e| out_of_step(tenant, &mirror, &e.to_string()))?;
            let view = self.view(self.record(tenant, &mirror)?);
            changes.push((ChangeKind::BindingRemoved(clone), view));
        }
        let events = self.vnet_events(now, changes);
        Ok((removed, events))
    }

    /// Moves `instance`'s binding to the tenant's VNet `name` from `caller`
    /// (the cloud it is bound on) to `to`, a member cloud, keeping its
    /// address and MAC (a migration); its clone in the VNet's mirror moves
    /// with it. A mirror itself is refused.
    pub fn move_binding(
        &mut self,
        caller: &CloudId,
        tenant: &TenantId,
        name: &VnetName,
        instance: &InstanceId,
        to: &CloudId,
        now: OffsetDateTime,
    ) -> Result<Outcome<Binding>, NetworkError> {
        let record = self.record(tenant, name)?;
        not_a_mirror(record, "move a binding of")?;
        self.bound_by(caller, record, instance)?;
        if !record.spec.spans(to) {
            return Err(NetworkError::MoveOutside {
                instance: instance.clone(),
                tenant: tenant.clone(),
                name: name.clone(),
                to: to.clone(),
                members: record
                    .spec
                    .clouds()
                    .iter()
                    .map(CloudId::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut vnets = vec![name.clone()];
        vnets.extend(self.mirror_name(tenant, name));
        // Work on a copy: both VNets move, or neither.
        let mut moved = Vec::new();
        for vnet in &vnets {
            let mut attachments = self.extras_mut(tenant, vnet)?.attachments.clone();
            let old = attachments.detach(instance)?;
            let new = attachments
                .attach(instance.clone(), to.clone(), old.ip, old.mac)?
                .clone();
            moved.push((vnet.clone(), attachments, new));
        }
        let mut changes = Vec::new();
        let mut production = None;
        for (vnet, attachments, new) in moved {
            self.extras_mut(tenant, &vnet)?.attachments = attachments;
            production.get_or_insert_with(|| new.clone());
            changes.push((
                ChangeKind::BindingAdded(new),
                self.view(self.record(tenant, &vnet)?),
            ));
        }
        let moved = production.ok_or_else(|| {
            NetworkError::Inconsistent(format!(
                "moving {instance} in vnet {name:?} of tenant {tenant} moved no binding"
            ))
        })?;
        let events = self.vnet_events(now, changes);
        Ok((moved, events))
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
        let changes = self
            .registry
            .spanning(caller)
            .map(|record| {
                let kind = ChangeKind::VtepChanged {
                    cloud: caller.clone(),
                    address,
                };
                (kind, self.view(record))
            })
            .collect();
        Ok((true, self.vnet_events(now, changes)))
    }

    /// Forgets `cloud`'s VTEP (the cloud was revoked): every VNet spanning it
    /// gets a change whose view no longer lists it, so the other members stop
    /// sending its traffic there. Returns whether there was one.
    pub fn forget_vtep(
        &mut self,
        cloud: &CloudId,
        now: OffsetDateTime,
    ) -> Result<Outcome<bool>, NetworkError> {
        if self.vteps.remove(cloud).is_none() {
            return Ok((false, Vec::new()));
        }
        let changes = self
            .registry
            .spanning(cloud)
            .map(|record| {
                let kind = ChangeKind::VtepForgotten {
                    cloud: cloud.clone(),
                };
                (kind, self.view(record))
            })
            .collect();
        Ok((true, self.vnet_events(now, changes)))
    }

    /// The view of `record`: bindings, the VTEPs of its member clouds, and
    /// its pair.
    fn view(&self, record: &VnetRecord) -> VnetView {
        let (tenant, name) = (record.spec.tenant(), record.spec.name());
        let extras = self.extras(tenant, name);
        let (mirror, swapped) = match &record.mirror_of {
            Some(of) => (
                None,
                self.extras(tenant, &of.production)
                    .is_some_and(|e| e.swapped),
            ),
            None => {
                let mirror = self.mirror_name(tenant, name);
                let swapped = mirror.is_some() && extras.is_some_and(|e| e.swapped);
                (mirror, swapped)
            }
        };
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
            mirror,
            swapped,
        }
    }

    /// Bumps the revision once and describes the changes, all at the new
    /// revision (one operation, one revision).
    fn vnet_events(
        &mut self,
        at: OffsetDateTime,
        changes: Vec<(ChangeKind, VnetView)>,
    ) -> Vec<Event> {
        self.revision += 1;
        changes
            .into_iter()
            .map(|(kind, vnet)| {
                Event::Vnet(Change {
                    kind,
                    vnet,
                    revision: self.revision,
                    at,
                })
            })
            .collect()
    }

    /// The agreed rules as they are now, at the current revision.
    fn policies_event(&self, at: OffsetDateTime) -> Event {
        Event::Policies(PolicyChange {
            agreed: self.agreed_policies(),
            revision: self.revision,
            at,
        })
    }

    /// The name of the mirror of the tenant's VNet `production`, if any.
    fn mirror_name(&self, tenant: &TenantId, production: &VnetName) -> Option<VnetName> {
        self.registry
            .mirror(tenant, production)
            .map(|m| m.spec.name().clone())
    }

    fn record(&self, tenant: &TenantId, name: &VnetName) -> Result<&VnetRecord, NetworkError> {
        self.registry
            .vnet(tenant, name)
            .ok_or_else(|| NetworkError::NotFound {
                tenant: tenant.clone(),
                name: name.clone(),
            })
    }

    /// `instance`'s binding to `record`, which only `caller` (a member,
    /// the cloud it is bound on) may change.
    fn bound_by(
        &self,
        caller: &CloudId,
        record: &VnetRecord,
        instance: &InstanceId,
    ) -> Result<&Binding, NetworkError> {
        self.member(caller, record)?;
        let name = record.spec.name();
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
        Ok(binding)
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

/// Refuses to attach to or detach from a mirror (`action` says which, as
/// the refusal puts it: "attach to"): its bindings follow its production's.
fn not_a_mirror(record: &VnetRecord, action: &'static str) -> Result<(), NetworkError> {
    match &record.mirror_of {
        None => Ok(()),
        Some(of) => Err(NetworkError::MirrorBindings {
            tenant: record.spec.tenant().clone(),
            name: record.spec.name().clone(),
            production: of.production.clone(),
            action,
        }),
    }
}

/// A mirror whose bindings are not its production's any more.
fn out_of_step(tenant: &TenantId, mirror: &VnetName, reason: &str) -> NetworkError {
    NetworkError::Inconsistent(format!(
        "mirror {mirror:?} of tenant {tenant} is out of step with its production: {reason}"
    ))
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
