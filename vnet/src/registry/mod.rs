//! Every VNet of the federation, as the root persists them.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::mirror::{self, MirrorError, MirrorStrategy};
use crate::name::{CloudId, TenantId, VnetName};
use crate::spec::VnetSpec;
use crate::vni::{Vni, VniAllocator, VniError};

/// Why a VNet could not be created, deleted or restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The tenant already has a VNet of this name.
    #[error("vnet {name:?} already exists for tenant {tenant}")]
    Duplicate {
        /// The tenant.
        tenant: TenantId,
        /// The name asked for.
        name: VnetName,
    },
    /// The network overlaps another VNet of the same tenant.
    #[error("{cidr} overlaps vnet {other:?} ({other_cidr}) of tenant {tenant}")]
    Overlap {
        /// The refused network.
        cidr: Ipv4Net,
        /// The VNet it overlaps.
        other: VnetName,
        /// That VNet's network.
        other_cidr: Ipv4Net,
        /// The tenant of both.
        tenant: TenantId,
    },
    /// No such VNet.
    #[error("tenant {tenant} has no vnet {name:?}")]
    NotFound {
        /// The tenant.
        tenant: TenantId,
        /// The name looked for.
        name: VnetName,
    },
    /// Deleting a VNet whose mirror still exists would orphan the mirror.
    #[error(
        "vnet {name:?} of tenant {tenant} still has mirror {mirror:?}; delete the mirror first"
    )]
    HasMirror {
        /// The tenant.
        tenant: TenantId,
        /// The VNet asked to be deleted.
        name: VnetName,
        /// Its mirror.
        mirror: VnetName,
    },
    /// A VNet has at most one mirror (a swap is between two VNIs).
    #[error("vnet {name:?} of tenant {tenant} already has mirror {mirror:?}")]
    AlreadyMirrored {
        /// The tenant.
        tenant: TenantId,
        /// The production VNet.
        name: VnetName,
        /// Its existing mirror.
        mirror: VnetName,
    },
    /// Two restored VNets with one VNI.
    #[error("VNI {vni} is used by both vnet {first:?} and vnet {second:?}")]
    DuplicateVni {
        /// The shared VNI.
        vni: Vni,
        /// The VNet restored first.
        first: VnetName,
        /// The VNet restored second.
        second: VnetName,
    },
    /// A restored mirror whose production is missing.
    #[error("vnet {name:?} of tenant {tenant} is a mirror of {production:?}, which does not exist")]
    OrphanMirror {
        /// The tenant.
        tenant: TenantId,
        /// The mirror.
        name: VnetName,
        /// The missing production VNet.
        production: VnetName,
    },
    /// The mirror could not be made.
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    /// No VNI could be allocated.
    #[error(transparent)]
    Vni(#[from] VniError),
}

/// A VNet as recorded: its specification, its VNI and, for a Mirror VNet,
/// what it mirrors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VnetRecord {
    /// What the tenant asked for.
    pub spec: VnetSpec,
    /// The VNI the overlay uses on every cloud.
    pub vni: Vni,
    /// Set on a Mirror VNet only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_of: Option<MirrorOf>,
}

/// What a Mirror VNet mirrors, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorOf {
    /// The production VNet (same tenant).
    pub production: VnetName,
    /// What the mirror receives of the production's input.
    pub strategy: MirrorStrategy,
}

impl VnetRecord {
    /// Whether this is a Mirror VNet.
    pub fn is_mirror(&self) -> bool {
        self.mirror_of.is_some()
    }
}

/// The VNets of all tenants, keyed by tenant and name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRegistry", into = "RawRegistry")]
pub struct Registry {
    vnets: BTreeMap<(TenantId, VnetName), VnetRecord>,
}

/// The serialized form: a list of records, every rule checked on the way in.
#[derive(Serialize, Deserialize)]
struct RawRegistry {
    vnets: Vec<VnetRecord>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a new production VNet and gives it a VNI from `vnis`.
    ///
    /// Refuses a name the tenant already uses and a network overlapping
    /// another VNet of the same tenant (other tenants may reuse it: their
    /// overlays are separate). The VNI is taken only once every check has
    /// passed, so a refusal leaves both the registry and `vnis` untouched.
    pub fn create(
        &mut self,
        spec: VnetSpec,
        vnis: &mut VniAllocator,
    ) -> Result<VnetRecord, RegistryError> {
        self.check_fits(spec.tenant(), spec.name(), spec.cidr(), None)?;
        let vni = self.allocate(vnis)?;
        let record = VnetRecord {
            spec,
            vni,
            mirror_of: None,
        };
        Ok(self.insert(record))
    }

    /// Records `name` as a Mirror VNet of the tenant's VNet `production`: a
    /// clone of it (same network, clouds, domain and cap) with a VNI of its
    /// own. The mirror's network overlaps its production's on purpose and is
    /// exempt from that one overlap check.
    pub fn create_mirror(
        &mut self,
        tenant: &TenantId,
        production: &VnetName,
        name: VnetName,
        strategy: MirrorStrategy,
        vnis: &mut VniAllocator,
    ) -> Result<VnetRecord, RegistryError> {
        let original = self
            .vnet(tenant, production)
            .ok_or_else(|| RegistryError::NotFound {
                tenant: tenant.clone(),
                name: production.clone(),
            })?;
        if let Some(of) = &original.mirror_of {
            return Err(MirrorError::MirrorOfMirror {
                vnet: production.clone(),
                production: of.production.clone(),
            }
            .into());
        }
        if name == *production {
            return Err(MirrorError::SameName { vnet: name }.into());
        }
        if let Some(existing) = self.mirror(tenant, production) {
            return Err(RegistryError::AlreadyMirrored {
                tenant: tenant.clone(),
                name: production.clone(),
                mirror: existing.spec.name().clone(),
            });
        }
        self.check_fits(tenant, &name, original.spec.cidr(), Some(production))?;
        let original = original.clone();
        let vni = self.allocate(vnis)?;
        let record = mirror::mirror_record(&original, name, strategy, vni)?;
        Ok(self.insert(record))
    }

    /// Removes a VNet and gives its VNI back to `vnis`. A production VNet
    /// whose mirror still exists is refused, naming the mirror.
    pub fn delete(
        &mut self,
        tenant: &TenantId,
        name: &VnetName,
        vnis: &mut VniAllocator,
    ) -> Result<VnetRecord, RegistryError> {
        if self.vnet(tenant, name).is_none() {
            return Err(RegistryError::NotFound {
                tenant: tenant.clone(),
                name: name.clone(),
            });
        }
        if let Some(mirror) = self.mirror(tenant, name) {
            return Err(RegistryError::HasMirror {
                tenant: tenant.clone(),
                name: name.clone(),
                mirror: mirror.spec.name().clone(),
            });
        }
        let key = (tenant.clone(), name.clone());
        let record = self
            .vnets
            .remove(&key)
            .ok_or_else(|| RegistryError::NotFound {
                tenant: tenant.clone(),
                name: name.clone(),
            })?;
        // An allocator that did not count the VNI as in use (its state and
        // the registry's disagreed) is left with the VNI free all the same,
        // which is the state wanted.
        vnis.release(record.vni).ok();
        Ok(record)
    }

    /// The tenant's VNet `name`.
    pub fn vnet(&self, tenant: &TenantId, name: &VnetName) -> Option<&VnetRecord> {
        self.vnets.get(&(tenant.clone(), name.clone()))
    }

    /// The VNet using `vni`.
    pub fn by_vni(&self, vni: Vni) -> Option<&VnetRecord> {
        self.vnets.values().find(|r| r.vni == vni)
    }

    /// The mirror of the tenant's VNet `production`, if it has one.
    pub fn mirror(&self, tenant: &TenantId, production: &VnetName) -> Option<&VnetRecord> {
        self.list(tenant).find(|r| {
            r.mirror_of
                .as_ref()
                .is_some_and(|of| of.production == *production)
        })
    }

    /// The tenant's VNets, in name order.
    pub fn list<'a>(&'a self, tenant: &TenantId) -> impl Iterator<Item = &'a VnetRecord> + use<'a> {
        let tenant = tenant.clone();
        self.vnets
            .values()
            .filter(move |r| *r.spec.tenant() == tenant)
    }

    /// Every VNet, in tenant and name order.
    pub fn all(&self) -> impl Iterator<Item = &VnetRecord> {
        self.vnets.values()
    }

    /// The VNets stretched over `cloud`: those its broker is a member of.
    pub fn spanning<'a>(
        &'a self,
        cloud: &CloudId,
    ) -> impl Iterator<Item = &'a VnetRecord> + use<'a> {
        let cloud = cloud.clone();
        self.vnets.values().filter(move |r| r.spec.spans(&cloud))
    }

    /// The VNIs in use, to build a [`VniAllocator`] that agrees with the
    /// registry.
    pub fn vnis(&self) -> BTreeSet<Vni> {
        self.vnets.values().map(|r| r.vni).collect()
    }

    /// Refuses a duplicate name and an overlap with another VNet of the
    /// tenant, except with `exempt` (a mirror's production).
    fn check_fits(
        &self,
        tenant: &TenantId,
        name: &VnetName,
        cidr: Ipv4Net,
        exempt: Option<&VnetName>,
    ) -> Result<(), RegistryError> {
        if self.vnet(tenant, name).is_some() {
            return Err(RegistryError::Duplicate {
                tenant: tenant.clone(),
                name: name.clone(),
            });
        }
        let clash = self.list(tenant).find(|other| {
            let other_cidr = other.spec.cidr();
            Some(other.spec.name()) != exempt
                && (other_cidr.contains(&cidr.network()) || cidr.contains(&other_cidr.network()))
        });
        match clash {
            Some(other) => Err(RegistryError::Overlap {
                cidr,
                other: other.spec.name().clone(),
                other_cidr: other.spec.cidr(),
                tenant: tenant.clone(),
            }),
            None => Ok(()),
        }
    }

    /// A VNI no record uses. An allocator out of step with the registry may
    /// offer one a record holds; that one stays marked in use (it is) and the
    /// next is tried.
    fn allocate(&self, vnis: &mut VniAllocator) -> Result<Vni, RegistryError> {
        loop {
            let vni = vnis.allocate()?;
            if self.by_vni(vni).is_none() {
                return Ok(vni);
            }
        }
    }

    fn insert(&mut self, record: VnetRecord) -> VnetRecord {
        let key = (record.spec.tenant().clone(), record.spec.name().clone());
        self.vnets.insert(key, record.clone());
        record
    }

    /// Adds a restored record after the checks `create` and
    /// `create_mirror` make, and a VNI no other record uses.
    fn restore(&mut self, record: VnetRecord) -> Result<(), RegistryError> {
        let tenant = record.spec.tenant();
        if let Some(other) = self.by_vni(record.vni) {
            return Err(RegistryError::DuplicateVni {
                vni: record.vni,
                first: other.spec.name().clone(),
                second: record.spec.name().clone(),
            });
        }
        let exempt = match &record.mirror_of {
            None => None,
            Some(of) => {
                let production = self.vnet(tenant, &of.production).ok_or_else(|| {
                    RegistryError::OrphanMirror {
                        tenant: tenant.clone(),
                        name: record.spec.name().clone(),
                        production: of.production.clone(),
                    }
                })?;
                if let Some(grand) = &production.mirror_of {
                    return Err(MirrorError::MirrorOfMirror {
                        vnet: of.production.clone(),
                        production: grand.production.clone(),
                    }
                    .into());
                }
                if let Some(existing) = self.mirror(tenant, &of.production) {
                    return Err(RegistryError::AlreadyMirrored {
                        tenant: tenant.clone(),
                        name: of.production.clone(),
                        mirror: existing.spec.name().clone(),
                    });
                }
                Some(&of.production)
            }
        };
        self.check_fits(tenant, record.spec.name(), record.spec.cidr(), exempt)?;
        self.insert(record);
        Ok(())
    }
}

impl TryFrom<RawRegistry> for Registry {
    type Error = RegistryError;
    fn try_from(raw: RawRegistry) -> Result<Self, Self::Error> {
        let mut registry = Registry::new();
        // Productions first, so every mirror finds its production.
        let (mirrors, productions): (Vec<_>, Vec<_>) =
            raw.vnets.into_iter().partition(VnetRecord::is_mirror);
        for record in productions.into_iter().chain(mirrors) {
            registry.restore(record)?;
        }
        Ok(registry)
    }
}

impl From<Registry> for RawRegistry {
    fn from(registry: Registry) -> Self {
        Self {
            vnets: registry.vnets.into_values().collect(),
        }
    }
}

#[cfg(test)]
mod tests;
