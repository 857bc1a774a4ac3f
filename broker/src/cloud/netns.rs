//! The network namespace standing in for an instance's VM network: the
//! default driver has no VM, so an attached instance's `eth0` lives in a
//! namespace of its own, `ic-<cloud>.<instance>` under `/run/netns` (see
//! [`intercloud_vnet::NetnsName`]).
//!
//! A namespace is made when the instance is first attached to a VNet here
//! and removed once it is attached to none (detached, or released). The
//! broker records each namespace it makes as an empty file
//! `<data_dir>/cloud/netns/<name>`, written and synced before the namespace
//! is made, and removes only namespaces so recorded: whatever else is on
//! the host (another cloud's broker, a second broker of the same cloud in a
//! test, an operator's own namespaces) is never touched.

use std::io;
use std::path::{Path, PathBuf};

use intercloud_netplane::{Created, Netplane, Removed, netns_path};
use intercloud_vnet::{CloudId, InstanceId, NetnsName};

/// Why a namespace could not be made, listed or removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// The record of the namespaces this broker made could not be read or
    /// written.
    #[error("{action} {}: {source}", path.display())]
    Record {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// The kernel refused.
    #[error(transparent)]
    Kernel(#[from] intercloud_netplane::Error),
}

/// The instances' namespaces of one cloud, as this broker keeps them.
#[derive(Debug, Clone)]
pub struct InstanceNamespaces {
    cloud: CloudId,
    records: PathBuf,
}

impl InstanceNamespaces {
    /// The namespaces of `cloud`'s instances, recorded under `data_dir`.
    pub fn new(data_dir: &Path, cloud: CloudId) -> Self {
        Self {
            cloud,
            records: data_dir.join("cloud").join("netns"),
        }
    }

    /// The cloud whose instances these are.
    pub fn cloud(&self) -> &CloudId {
        &self.cloud
    }

    /// The namespace of `instance`.
    pub fn name(&self, instance: &InstanceId) -> NetnsName {
        NetnsName::of(&self.cloud, instance)
    }

    /// The namespaces this broker made and has not removed, sorted.
    pub async fn owned(&self) -> Result<Vec<NetnsName>, NetnsError> {
        let mut entries = match tokio::fs::read_dir(&self.records).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(self.record_error("listing", &self.records, source)),
        };
        let mut names = Vec::new();
        loop {
            let entry = entries
                .next_entry()
                .await
                .map_err(|source| self.record_error("listing", &self.records, source))?;
            let Some(entry) = entry else { break };
            if let Some(name) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<NetnsName>().ok())
                .filter(|n| n.cloud() == &self.cloud)
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Makes sure the namespace `name` exists, with `lo` up. A namespace
    /// made here is recorded in `log` (so a failed attachment takes it
    /// away again) and in this broker's records; one that is there already
    /// is adopted as it is.
    pub async fn ensure(&self, log: &mut Created, name: &NetnsName) -> Result<(), NetnsError> {
        self.record(name).await?;
        let text = name.to_string();
        if tokio::fs::try_exists(netns_path(&text))
            .await
            .unwrap_or(false)
        {
            return Ok(());
        }
        log.create_namespace(&text).await?;
        // Loopback up, as a booted VM has it; the handle is dropped before
        // any rollback could need the namespace gone.
        let inside = Netplane::in_namespace(&text).await?;
        inside.set_up("lo").await?;
        tracing::info!(netns = %text, "instance namespace created");
        Ok(())
    }

    /// Removes the namespace `name` (with whatever is inside) and its record.
    pub async fn remove(&self, name: &NetnsName) -> Result<Removed, NetnsError> {
        let removed = Netplane::delete_namespace(&name.to_string()).await?;
        let path = self.records.join(name.to_string());
        match tokio::fs::remove_file(&path).await {
            Ok(()) => self.sync_records().await?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(self.record_error("deleting", &path, source)),
        }
        Ok(removed)
    }

    /// Writes the record of `name` (durably) unless it is there.
    async fn record(&self, name: &NetnsName) -> Result<(), NetnsError> {
        let path = self.records.join(name.to_string());
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(());
        }
        tokio::fs::create_dir_all(&self.records)
            .await
            .map_err(|source| self.record_error("creating", &self.records, source))?;
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|source| self.record_error("creating", &path, source))?;
        file.sync_all()
            .await
            .map_err(|source| self.record_error("syncing", &path, source))?;
        self.sync_records().await
    }

    async fn sync_records(&self) -> Result<(), NetnsError> {
        let dir = tokio::fs::File::open(&self.records)
            .await
            .map_err(|source| self.record_error("opening", &self.records, source))?;
        dir.sync_all()
            .await
            .map_err(|source| self.record_error("syncing", &self.records, source))
    }

    fn record_error(&self, action: &'static str, path: &Path, source: io::Error) -> NetnsError {
        NetnsError::Record {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_recorded_namespaces_of_this_cloud_are_owned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cloud: CloudId = "cloud-a".parse().expect("valid");
        let namespaces = InstanceNamespaces::new(dir.path(), cloud.clone());
        assert!(namespaces.owned().await.expect("no records yet").is_empty());
        let web = namespaces.name(&"web-1".parse().expect("valid"));
        assert_eq!(web.to_string(), "ic-cloud-a.web-1");
        namespaces.record(&web).await.expect("recorded");
        namespaces.record(&web).await.expect("recorded twice");
        let records = dir.path().join("cloud/netns");
        for stray in ["ic-cloud-b.db-1", "notes.txt", "ic-cloud-a"] {
            std::fs::write(records.join(stray), "").expect("stray file");
        }
        assert_eq!(namespaces.owned().await.expect("listed"), vec![web]);
    }
}
