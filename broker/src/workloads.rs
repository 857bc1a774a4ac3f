//! What the broker does around transfers: it routes the transfer
//! machinery's hooks to storage federation and workload migration.
//!
//! The transfer machinery starts before the services that use it (they
//! need its outbox), so the services are set here once they exist; a hook
//! that fires before then (a transfer resumed at start) finds them set,
//! because the server sets them before it runs the consumers.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use intercloud_transfer::{CloudId, Manifest, ObjectKind, Receipt, RefusalReason};

use crate::cloud::LocalCloud;
use crate::storage::Storage;
use crate::transfer::inbound::Hooks;
use crate::transfer::outbound::{OutboundHooks, OutgoingRecord, Purpose};

/// The hooks of a running broker.
#[derive(Debug, Default)]
pub struct Workloads {
    /// Storage federation.
    pub storage: OnceLock<Arc<Storage>>,
    /// The local cloud, for migration.
    pub cloud: OnceLock<Arc<LocalCloud>>,
}

impl Hooks for Workloads {
    fn before_commit(
        &self,
        manifest: &Manifest,
        staging: &Path,
    ) -> Result<(), (RefusalReason, String)> {
        match (manifest.kind(), self.cloud.get()) {
            (ObjectKind::Object, _) => Ok(()),
            (ObjectKind::Image, Some(cloud)) => crate::mobility::inspect(cloud, manifest, staging),
            (ObjectKind::Image, None) => Err((
                RefusalReason::InvalidContent,
                "this cloud does not import images".to_owned(),
            )),
        }
    }

    fn after_commit(&self, manifest: &Manifest, _receipt: &Receipt, path: &Path) {
        match manifest.kind() {
            ObjectKind::Object => {
                if let Some(storage) = self.storage.get() {
                    storage.committed(manifest.object_id().as_str(), path);
                }
            }
            ObjectKind::Image => {
                if let Some(cloud) = self.cloud.get() {
                    crate::mobility::import(cloud, manifest, path);
                }
            }
        }
    }

    fn other(&self, kind: &str, from: &CloudId, body: &[u8]) {
        match (kind, self.storage.get()) {
            (crate::storage::service::FETCH, Some(storage)) => storage.on_fetch(from, body),
            _ => {
                tracing::warn!(%from, kind, "a message of an unknown type on the data queue; dropped")
            }
        }
    }
}

impl OutboundHooks for Workloads {
    fn finished(&self, record: &OutgoingRecord) {
        match &record.purpose {
            Purpose::Replica { .. } => {
                if let Some(storage) = self.storage.get() {
                    storage.replica_finished(record);
                }
            }
            Purpose::Migration { .. } => {
                if let Some(cloud) = self.cloud.get() {
                    crate::mobility::finished(cloud, record);
                }
            }
            Purpose::Return { .. } => {}
        }
    }
}
