//! Durable federation state: `<data_dir>/federation.json`.
//!
//! A change is applied to a copy, the copy is written atomically and
//! fsynced, and only then does it replace the state in memory; a refused
//! change or a failed write leaves both the file and the memory untouched.

use std::path::{Path, PathBuf};

use tokio::sync::Mutex;

use crate::state::{FederationError, FederationState};

/// Why a change did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The change itself was refused.
    #[error(transparent)]
    Refused(#[from] FederationError),
    /// The state could not be written or read.
    #[error("federation state {}: {reason}", path.display())]
    Io {
        /// The state file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The state and the file that holds it.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    state: Mutex<FederationState>,
}

impl StateStore {
    /// Opens (or starts) the state in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join("federation.json");
        let io = |reason: String| StoreError::Io {
            path: path.clone(),
            reason,
        };
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| io(format!("corrupt: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FederationState::default(),
            Err(e) => return Err(io(e.to_string())),
        };
        Ok(Self {
            path,
            state: Mutex::new(state),
        })
    }

    /// A copy of the current state.
    pub async fn snapshot(&self) -> FederationState {
        self.state.lock().await.clone()
    }

    /// Reads the state under the lock.
    pub async fn read<T>(&self, f: impl FnOnce(&FederationState) -> T) -> T {
        f(&*self.state.lock().await)
    }

    /// Applies `change` to a copy, persists it and publishes it. `change`
    /// returns whether anything needs writing along with its result.
    pub async fn update<T>(
        &self,
        change: impl FnOnce(&mut FederationState) -> Result<T, FederationError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.state.lock().await;
        let mut next = guard.clone();
        let out = change(&mut next)?;
        if next != *guard {
            let bytes = serde_json::to_vec_pretty(&next).map_err(|e| StoreError::Io {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
            let path = self.path.clone();
            tokio::task::spawn_blocking(move || {
                intercloud_trust::files::write_atomically(&path, &bytes, 0o600)
            })
            .await
            .map_err(|e| StoreError::Io {
                path: self.path.clone(),
                reason: e.to_string(),
            })?
            .map_err(|e| StoreError::Io {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
            *guard = next;
        }
        Ok(out)
    }

    /// Applies a change that only touches volatile fields (heartbeat times)
    /// in memory; it reaches the disk with the next durable change.
    pub async fn touch(&self, change: impl FnOnce(&mut FederationState)) {
        change(&mut *self.state.lock().await);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use intercloud_trust::CloudId;
    use std::time::Duration;
    use time::OffsetDateTime;

    #[tokio::test]
    async fn refused_changes_persist_nothing_and_accepted_ones_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::open(dir.path()).expect("open");
        let cloud = CloudId::new("cloud-d").expect("id");
        let now = OffsetDateTime::now_utc();
        let refused = store.update(|s| s.check_token("nope", &cloud, now)).await;
        assert!(matches!(
            refused,
            Err(StoreError::Refused(FederationError::UnknownToken))
        ));
        assert!(
            !dir.path().join("federation.json").exists(),
            "a refused change writes nothing"
        );
        store
            .update(|s| s.create_token(&cloud, "tok", Duration::from_secs(60), now))
            .await
            .expect("create");
        let reopened = StateStore::open(dir.path()).expect("reopen");
        assert_eq!(reopened.snapshot().await.tokens.len(), 1);
    }

    #[test]
    fn corrupt_state_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("federation.json"), b"{not json").expect("write");
        assert!(matches!(
            StateStore::open(dir.path()),
            Err(StoreError::Io { .. })
        ));
    }
}
