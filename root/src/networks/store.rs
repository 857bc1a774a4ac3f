//! Durable VNet registry: `<data_dir>/networks.json`, and the feed of its
//! changes.
//!
//! As with [`crate::store`]: a change is applied to a copy, the copy is
//! written atomically and fsynced, and only then does it replace the state
//! in memory and are its changes broadcast; a refused change or a failed
//! write leaves the file, the memory and the watchers untouched.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use intercloud_vnet::VniRange;
use tokio::sync::{Mutex, broadcast};

use super::error::NetworkError;
use super::state::{Event, NetworkState, Policy, Viewer, VnetView};

/// The file, in the root's data directory.
pub const FILE_NAME: &str = "networks.json";

/// Why a change did not happen, or the state could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkStoreError {
    /// The change itself was refused.
    #[error(transparent)]
    Refused(#[from] NetworkError),
    /// The state could not be written or read.
    #[error("VNet registry {}: {reason}", path.display())]
    Io {
        /// The state file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// What a new watcher starts from: the VNets it may see, the agreed flow
/// rules it is sent, the revision they are at, and the events after it.
#[derive(Debug)]
pub struct Subscription {
    /// The visible VNets.
    pub snapshot: Vec<VnetView>,
    /// The agreed rules touching a domain of a visible VNet.
    pub policies: Vec<Policy>,
    /// The revision of the snapshot.
    pub revision: u64,
    /// Every event after the snapshot (of every VNet: filter by viewer).
    pub changes: broadcast::Receiver<Arc<Event>>,
}

/// The registry and the file that holds it.
#[derive(Debug)]
pub struct NetworkStore {
    path: PathBuf,
    state: Mutex<NetworkState>,
    events: broadcast::Sender<Arc<Event>>,
}

impl NetworkStore {
    /// Opens (or starts) the registry in `data_dir`, allocating VNIs from
    /// `range`; watchers may fall `backlog` changes behind before they are
    /// sent a fresh snapshot.
    pub fn open(
        data_dir: &Path,
        range: VniRange,
        backlog: usize,
    ) -> Result<Self, NetworkStoreError> {
        let path = data_dir.join(FILE_NAME);
        let io = |reason: String| NetworkStoreError::Io {
            path: path.clone(),
            reason,
        };
        let state = match std::fs::read(&path) {
            Ok(bytes) => {
                let state: NetworkState =
                    serde_json::from_slice(&bytes).map_err(|e| io(format!("corrupt: {e}")))?;
                let state = state
                    .migrate()
                    .map_err(|e| io(format!("cannot upgrade: {e}")))?;
                state.check().map_err(|e| io(format!("corrupt: {e}")))?;
                state.with_vni_range(range)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => NetworkState::new(range),
            Err(e) => return Err(io(e.to_string())),
        };
        let (events, _) = broadcast::channel(backlog.max(1));
        Ok(Self {
            path,
            state: Mutex::new(state),
            events,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state under the lock.
    pub async fn read<T>(&self, f: impl FnOnce(&NetworkState) -> T) -> T {
        f(&*self.state.lock().await)
    }

    /// Applies `change` to a copy, persists it, publishes it, then
    /// broadcasts the events it reports.
    pub async fn update<T>(
        &self,
        change: impl FnOnce(&mut NetworkState) -> Result<(T, Vec<Event>), NetworkError>,
    ) -> Result<T, NetworkStoreError> {
        let mut guard = self.state.lock().await;
        let mut next = guard.clone();
        let (out, changes) = change(&mut next)?;
        if next != *guard {
            let io = |reason: String| NetworkStoreError::Io {
                path: self.path.clone(),
                reason,
            };
            let bytes = serde_json::to_vec_pretty(&next).map_err(|e| io(e.to_string()))?;
            let path = self.path.clone();
            tokio::task::spawn_blocking(move || {
                intercloud_trust::files::write_atomically(&path, &bytes, 0o600)
            })
            .await
            .map_err(|e| io(e.to_string()))?
            .map_err(|e| io(e.to_string()))?;
            *guard = next;
            // Sent under the lock, so a subscription taken under it sees
            // every change after its snapshot exactly once. No receiver is
            // not an error.
            for event in changes {
                let _ = self.events.send(Arc::new(event));
            }
        }
        Ok(out)
    }

    /// The VNets and agreed rules `viewer` may see now and every event
    /// after them.
    pub async fn subscribe(&self, viewer: &Viewer) -> Subscription {
        let guard = self.state.lock().await;
        Subscription {
            snapshot: guard.visible(viewer),
            policies: guard.agreed_policies().visible_to(viewer),
            revision: guard.revision(),
            changes: self.events.subscribe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::networks::state::Standing;
    use intercloud_vnet::{CloudId, VnetSpec};
    use time::OffsetDateTime;

    fn range(first: u32, last: u32) -> VniRange {
        VniRange::new(first, last).expect("range")
    }

    fn spec(name: &str, cidr: &str) -> VnetSpec {
        VnetSpec::new(
            name.parse().expect("name"),
            "cloud-a".parse().expect("tenant"),
            cidr.parse().expect("cidr"),
            ["cloud-a".parse().expect("cloud")].into(),
            "prod".parse().expect("domain"),
            None,
        )
        .expect("spec")
    }

    async fn create(
        store: &NetworkStore,
        name: &str,
        cidr: &str,
    ) -> Result<u32, NetworkStoreError> {
        let caller = CloudId::new("cloud-a").expect("cloud");
        store
            .update(|s| {
                s.create(
                    &caller,
                    spec(name, cidr),
                    |_| Standing::Member,
                    OffsetDateTime::now_utc(),
                )
                .map(|(view, changes)| (view.record.vni.value(), changes))
            })
            .await
    }

    #[tokio::test]
    async fn refusals_write_nothing_and_accepted_changes_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = NetworkStore::open(dir.path(), range(10, 11), 8).expect("open");
        assert_eq!(create(&store, "one", "10.1.0.0/24").await.expect("one"), 10);
        let written = std::fs::read(store.path()).expect("written");
        assert_eq!(create(&store, "two", "10.2.0.0/24").await.expect("two"), 11);
        let after_two = std::fs::read(store.path()).expect("written");
        assert_ne!(written, after_two);
        let full = create(&store, "three", "10.3.0.0/24").await;
        assert!(
            matches!(full, Err(NetworkStoreError::Refused(_))),
            "{full:?}"
        );
        assert_eq!(std::fs::read(store.path()).expect("file"), after_two);

        // Delete one, reopen: the allocator goes on from 11, wraps to 10.
        let tenant = "cloud-a".parse().expect("tenant");
        let name = "one".parse().expect("name");
        store
            .update(|s| s.delete(&tenant, &name, OffsetDateTime::now_utc()))
            .await
            .expect("delete");
        drop(store);
        let reopened = NetworkStore::open(dir.path(), range(10, 12), 8).expect("reopen");
        assert_eq!(
            create(&reopened, "four", "10.4.0.0/24")
                .await
                .expect("four"),
            12,
            "continues after the last allocation with the wider range"
        );
        assert_eq!(reopened.read(|s| s.revision()).await, 4);
    }

    #[tokio::test]
    async fn rules_mirrors_and_swaps_survive_reopen_and_a_format_1_file_is_upgraded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = NetworkStore::open(dir.path(), range(10, 20), 8).expect("open");
        create(&store, "one", "10.1.0.0/24").await.expect("one");
        let tenant: intercloud_vnet::TenantId = "cloud-a".parse().expect("tenant");
        let one = "one".parse().expect("name");
        store
            .update(|s| {
                s.create_mirror(
                    &tenant,
                    &one,
                    "one-m".parse().expect("name"),
                    intercloud_vnet::MirrorStrategy::Stats,
                    OffsetDateTime::now_utc(),
                )
            })
            .await
            .expect("mirror");
        store
            .update(|s| s.swap_mirror(&tenant, &one, OffsetDateTime::now_utc()))
            .await
            .expect("swap");
        let before = store.read(Clone::clone).await;
        drop(store);
        let reopened = NetworkStore::open(dir.path(), range(10, 20), 8).expect("reopen");
        assert_eq!(reopened.read(Clone::clone).await, before);
        let text = std::fs::read_to_string(reopened.path()).expect("file");
        assert!(text.contains("\"policies\""), "{text}");
        assert!(text.contains("\"swapped\": true"), "{text}");
        drop(reopened);

        // The file as format 1 wrote it (a single VNet, no policies).
        let dir = tempfile::tempdir().expect("tempdir");
        let store = NetworkStore::open(dir.path(), range(10, 20), 8).expect("open");
        create(&store, "one", "10.1.0.0/24").await.expect("one");
        drop(store);
        let path = dir.path().join(FILE_NAME);
        let mut old: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("file")).expect("json");
        old["format"] = serde_json::json!(1);
        old.as_object_mut().expect("object").remove("policies");
        std::fs::write(&path, serde_json::to_vec(&old).expect("json")).expect("write");
        let upgraded = NetworkStore::open(dir.path(), range(10, 20), 8).expect("upgraded");
        let domain = "prod".parse().expect("domain");
        assert_eq!(
            upgraded
                .read(|s| s.domain_owner(&domain).map(ToString::to_string))
                .await,
            Some("cloud-a".into())
        );
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").expect("write");
        let error = NetworkStore::open(dir.path(), range(1, 2), 8).expect_err("corrupt");
        assert!(error.to_string().contains("corrupt"), "{error}");
    }

    #[tokio::test]
    async fn subscribers_get_every_change_after_their_snapshot_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = NetworkStore::open(dir.path(), range(10, 20), 8).expect("open");
        create(&store, "one", "10.1.0.0/24").await.expect("one");
        let viewer = Viewer::Cloud(CloudId::new("cloud-a").expect("cloud"));
        let mut sub = store.subscribe(&viewer).await;
        assert_eq!(sub.snapshot.len(), 1);
        assert_eq!(sub.revision, 1);
        create(&store, "two", "10.2.0.0/24").await.expect("two");
        let event = sub.changes.recv().await.expect("change");
        let change = event.vnet_change().expect("a vnet change");
        assert_eq!(change.revision, 2);
        assert_eq!(change.vnet.record.spec.name().as_str(), "two");
        let policies = sub.changes.recv().await.expect("policies");
        assert!(matches!(*policies, Event::Policies(ref p) if p.revision == 2));
        assert!(sub.changes.try_recv().is_err(), "nothing else");
    }
}
