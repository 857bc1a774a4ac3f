//! Mirror VNets: a clone of a tenant's production VNet (its record from
//! `intercloud-vnet`'s registry, a VNI of its own, a clone of every
//! binding), and the swap of the pair's roles.

use intercloud_vnet::mirror::mirror_attachments;
use intercloud_vnet::{MirrorStrategy, TenantId, VnetName};
use time::OffsetDateTime;

use super::{ChangeKind, NetworkState, Outcome, VnetExtras, VnetView};
use crate::networks::error::NetworkError;

impl NetworkState {
    /// Creates `name`, the mirror of the tenant's production VNet
    /// `production`, receiving its input per `strategy`: same network,
    /// clouds and domain, a new VNI, and the production's bindings (same
    /// instances, clouds, addresses, MACs and indexes). Refused for a
    /// mirror, a production that has one, a name in use, and when no VNI
    /// is left. Returns the mirror; the production is re-sent with its new
    /// `mirror`.
    pub fn create_mirror(
        &mut self,
        tenant: &TenantId,
        production: &VnetName,
        name: VnetName,
        strategy: MirrorStrategy,
        now: OffsetDateTime,
    ) -> Result<Outcome<VnetView>, NetworkError> {
        let original = self.record(tenant, production)?;
        let attachments = mirror_attachments(&self.extras_of(original)?.attachments, name.clone())?;
        let record = self.registry.create_mirror(
            tenant,
            production,
            name.clone(),
            strategy,
            &mut self.vnis,
        )?;
        self.vnets.entry(tenant.clone()).or_default().insert(
            name,
            VnetExtras {
                created_at: now,
                attachments,
                swapped: false,
            },
        );
        let mirror = self.view(&record);
        let production = self.view(self.record(tenant, production)?);
        let events = self.vnet_events(
            now,
            vec![
                (ChangeKind::Created, mirror.clone()),
                (ChangeKind::MirrorChanged, production),
            ],
        );
        Ok((mirror, events))
    }

    /// Flips which VNet of the tenant's production `production` and its
    /// mirror carries the production traffic; called again, flips back.
    /// Returns the production as it is after.
    pub fn swap_mirror(
        &mut self,
        tenant: &TenantId,
        production: &VnetName,
        now: OffsetDateTime,
    ) -> Result<Outcome<VnetView>, NetworkError> {
        let record = self.record(tenant, production)?;
        if let Some(of) = &record.mirror_of {
            return Err(NetworkError::SwapOfMirror {
                tenant: tenant.clone(),
                name: production.clone(),
                production: of.production.clone(),
            });
        }
        let mirror =
            self.mirror_name(tenant, production)
                .ok_or_else(|| NetworkError::NoMirror {
                    tenant: tenant.clone(),
                    name: production.clone(),
                })?;
        let extras = self.extras_mut(tenant, production)?;
        extras.swapped = !extras.swapped;
        let after = self.view(self.record(tenant, production)?);
        let mirror = self.view(self.record(tenant, &mirror)?);
        let events = self.vnet_events(
            now,
            vec![
                (ChangeKind::Swapped, after.clone()),
                (ChangeKind::Swapped, mirror),
            ],
        );
        Ok((after, events))
    }
}
