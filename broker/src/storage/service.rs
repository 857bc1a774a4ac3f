//! Storage federation (Blueprint §2.2, Figure 6) as the owner runs it:
//! put an object on n clouds chosen by matching, return only when n have
//! receipted a persisted copy, get it back from any live replica (checked
//! against its digest), and place a new replica when a holder is gone.
//!
//! Records live in `<data_dir>/objects/<name>.json`; uploads in
//! `<data_dir>/objects/uploads/` until every replica transfer is over.
//! Holders keep their copy as the object `<owner>.<name>` of their
//! transfer store. A copy comes back through a `fetch` request on the
//! holder's data queue, which only the owner may make (the object id
//! starts with the requester's cloud id, which RabbitMQ vouched for).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use intercloud_proto::v1::directory_client::DirectoryClient;
use intercloud_proto::v1::{
    MatchRequest, ObjectInfo, ObjectStep, PutObjectHeader, Replica as ReplicaMessage, Transfer,
};
use intercloud_transfer::{CloudId, ObjectId, ObjectKind, Sha256Digest};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::record::{self, ObjectRecord, Replica, ReplicaState, holder_object_id, validate_name};
use crate::core::BrokerCore;
use crate::transfer::Transfers;
use crate::transfer::outbound::{OutgoingRecord, Purpose, SendRequest, file_digest};

/// The AMQP message type of a fetch request.
pub const FETCH: &str = "fetch";

/// A request to send a stored copy back to its owner.
#[derive(Debug, Serialize, Deserialize)]
pub struct FetchRequest {
    /// The object at the holder: `<owner>.<name>`.
    pub object_id: String,
    /// The object id the copy travels as (`<owner>.<name>.<nonce>`).
    pub reply_as: String,
}

/// How long `get` waits for a holder's copy to arrive.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// The owner's side of storage federation.
pub struct Storage {
    dir: PathBuf,
    core: Arc<BrokerCore>,
    transfers: Arc<Transfers>,
    /// Serialises record updates (puts, outcomes, re-replication).
    records: Mutex<()>,
    fetches: Mutex<HashMap<String, oneshot::Sender<PathBuf>>>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn now_step(step: &str, detail: impl Into<String>) -> ObjectStep {
    ObjectStep {
        step: step.to_owned(),
        detail: detail.into(),
        transfer: None,
        object: None,
        at: Some(intercloud_daemon::grpc::timestamp(OffsetDateTime::now_utc())),
    }
}

/// The API's view of a record.
pub fn info(record: &ObjectRecord) -> ObjectInfo {
    ObjectInfo {
        name: record.name.clone(),
        size: record.size,
        sha256: record.sha256.clone(),
        replicas_wanted: record.replicas_wanted,
        replicas: record
            .replicas
            .iter()
            .map(|r| ReplicaMessage {
                cloud_id: r.cloud.clone(),
                state: r.state.words().to_owned(),
                transfer_id: r.transfer_id.clone(),
                receipted_at: r.receipted_at.map(intercloud_daemon::grpc::timestamp),
                detail: r.detail.clone(),
            })
            .collect(),
        region: record.region.clone(),
        created_at: Some(intercloud_daemon::grpc::timestamp(record.created_at)),
    }
}

impl Storage {
    /// Opens `<data_dir>/objects`.
    pub fn open(core: Arc<BrokerCore>, transfers: Arc<Transfers>) -> std::io::Result<Self> {
        let dir = core.config.data_dir.join("objects");
        std::fs::create_dir_all(dir.join("uploads"))?;
        Ok(Self {
            dir,
            core,
            transfers,
            records: Mutex::new(()),
            fetches: Mutex::new(HashMap::new()),
        })
    }

    fn local(&self) -> String {
        self.core.config.cloud_id.to_string()
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// The record of `name`, if this cloud owns such an object.
    pub fn load(&self, name: &str) -> Result<Option<ObjectRecord>, String> {
        validate_name(name)?;
        match std::fs::read(self.record_path(name)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{}: {e}", self.record_path(name).display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", self.record_path(name).display())),
        }
    }

    fn save(&self, record: &ObjectRecord) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(record).map_err(|e| e.to_string())?;
        intercloud_trust::files::write_atomically(&self.record_path(&record.name), &json, 0o600)
            .map_err(|e| format!("{}: {e}", self.record_path(&record.name).display()))
    }

    fn update(&self, name: &str, change: impl FnOnce(&mut ObjectRecord) -> bool) {
        let _guard = self.records.lock().unwrap_or_else(|e| e.into_inner());
        match self.load(name) {
            Ok(Some(mut record)) => {
                if change(&mut record)
                    && let Err(e) = self.save(&record)
                {
                    tracing::error!(object = name, error = %e, "cannot save the object record");
                }
            }
            Ok(None) => tracing::warn!(object = name, "no record for an object transfer's outcome"),
            Err(e) => tracing::error!(object = name, error = %e, "unreadable object record"),
        }
    }

    /// Every object this cloud owns, by name.
    pub fn list(&self) -> Result<Vec<ObjectRecord>, String> {
        let mut records = Vec::new();
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            records.push(
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?,
            );
        }
        records.sort_by(|a: &ObjectRecord, b| a.name.cmp(&b.name));
        Ok(records)
    }

    /// An outgoing transfer of a replica ended: settle it in the record.
    pub fn replica_finished(&self, record: &OutgoingRecord) {
        let (Purpose::Replica { name }, Some(finished)) = (&record.purpose, &record.finished)
        else {
            return;
        };
        let Ok(manifest) = record.manifest() else {
            return;
        };
        let id = manifest.transfer_id().to_string();
        let (state, at, detail) = if finished.delivered {
            let at = finished
                .receipt()
                .map(|r| OffsetDateTime::from(r.committed_at));
            (ReplicaState::Stored, at, String::new())
        } else {
            (ReplicaState::Lost, None, finished.detail.clone())
        };
        self.update(name, |r| r.settle(&id, state, at, &detail));
        self.remove_unused_upload(&record.source);
    }

    /// Deletes an upload once no unfinished transfer reads it.
    fn remove_unused_upload(&self, source: &Path) {
        if !source.starts_with(self.dir.join("uploads")) {
            return;
        }
        let in_use = self
            .transfers
            .outbox
            .records()
            .iter()
            .any(|r| r.source == source && r.finished.is_none());
        if !in_use {
            let _ = std::fs::remove_file(source);
        }
    }

    async fn candidates(&self, region: &str) -> Result<Vec<String>, String> {
        let channel = self.core.root_channel()?;
        let mut client = DirectoryClient::new(channel);
        let answer = tokio::time::timeout(
            Duration::from_secs(30),
            client.r#match(MatchRequest {
                kind: "storage".into(),
                region: region.to_owned(),
                ..MatchRequest::default()
            }),
        )
        .await
        .map_err(|_| "the directory did not answer the match within 30 s".to_owned())?
        .map_err(|s| format!("the directory refused the match: {}", s.message()))?
        .into_inner();
        Ok(answer
            .candidates
            .into_iter()
            .filter(|c| c.online)
            .map(|c| c.cloud_id)
            .collect())
    }

    /// Puts an object: `data` carries its bytes. Reports each step on
    /// `steps`; the last is `done` or `failed`.
    pub async fn put(
        self: Arc<Self>,
        header: PutObjectHeader,
        mut data: mpsc::Receiver<Result<Vec<u8>, String>>,
        steps: mpsc::Sender<ObjectStep>,
    ) {
        let result = self.clone().put_steps(header, &mut data, &steps).await;
        let last = match result {
            Ok(record) => {
                let mut step = now_step(
                    "done",
                    format!(
                        "{} stored on {} cloud(s): {}",
                        record.name,
                        record.stored().count(),
                        record
                            .stored()
                            .map(|r| r.cloud.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                step.object = Some(info(&record));
                step
            }
            Err(e) => now_step("failed", e),
        };
        let _ = steps.send(last).await;
    }

    async fn put_steps(
        self: Arc<Self>,
        header: PutObjectHeader,
        data: &mut mpsc::Receiver<Result<Vec<u8>, String>>,
        steps: &mpsc::Sender<ObjectStep>,
    ) -> Result<ObjectRecord, String> {
        validate_name(&header.name)?;
        if !(1..=record::MAX_REPLICAS).contains(&header.replicas) {
            return Err(format!(
                "replicas: {} is outside 1..={}",
                header.replicas,
                record::MAX_REPLICAS
            ));
        }
        if !header.clouds.is_empty() && header.clouds.len() != header.replicas as usize {
            return Err(format!(
                "clouds: {} named for {} replica(s)",
                header.clouds.len(),
                header.replicas
            ));
        }
        for cloud in &header.clouds {
            CloudId::new(cloud).map_err(|e| format!("clouds: {e}"))?;
        }
        let upload = self.dir.join("uploads").join(format!(
            "{}.{}.part",
            header.name,
            hex::encode(rand::random::<[u8; 6]>())
        ));
        let (sha256, size) = receive_upload(&upload, header.size, data)
            .await
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&upload);
            })?;
        let _ = steps
            .send(now_step(
                "upload",
                format!("{size} bytes received, sha256 {sha256}"),
            ))
            .await;
        let result = self
            .place_and_send(&header, &upload, sha256, size, steps)
            .await;
        self.remove_unused_upload(&upload);
        result
    }

    async fn place_and_send(
        &self,
        header: &PutObjectHeader,
        upload: &Path,
        sha256: Sha256Digest,
        size: u64,
        steps: &mpsc::Sender<ObjectStep>,
    ) -> Result<ObjectRecord, String> {
        let n = header.replicas as usize;
        let (clouds, how) = if header.clouds.is_empty() {
            let candidates = self.candidates(&header.region).await?;
            let region = if header.region.is_empty() {
                String::new()
            } else {
                format!(" in {}", header.region)
            };
            (
                record::place(&candidates, &[], n)?,
                format!("matched storage{region}"),
            )
        } else {
            (
                record::place(&header.clouds, &[], n)?,
                "as asked".to_owned(),
            )
        };
        let _ = steps
            .send(now_step(
                "placement",
                format!("{} ({how})", clouds.join(", ")),
            ))
            .await;
        let mut record = ObjectRecord {
            name: header.name.clone(),
            size,
            sha256: sha256.to_string(),
            replicas_wanted: header.replicas,
            region: header.region.clone(),
            created_at: OffsetDateTime::now_utc(),
            replicas: Vec::new(),
        };
        let mut ids = Vec::new();
        for cloud in &clouds {
            let id = self
                .send_replica(&header.name, upload, (sha256, size), cloud)
                .await?;
            record.replicas.push(Replica {
                cloud: cloud.clone(),
                state: ReplicaState::Pending,
                transfer_id: id.to_string(),
                receipted_at: None,
                detail: String::new(),
            });
            ids.push(id);
        }
        {
            let _guard = self.records.lock().unwrap_or_else(|e| e.into_inner());
            // An outcome that came before the record found nothing to
            // settle; apply what the outbox knows.
            for r in &mut record.replicas {
                settle_from_outbox(&self.transfers, r);
            }
            self.save(&record)?;
        }
        self.follow(&ids, steps).await;
        let record = self
            .load(&header.name)?
            .ok_or("the object's record disappeared")?;
        for r in &record.replicas {
            let step = match r.state {
                ReplicaState::Stored => {
                    now_step("stored", format!("{}: persisted and receipted", r.cloud))
                }
                _ => now_step("transfer", format!("{}: {}", r.cloud, r.detail)),
            };
            let _ = steps.send(step).await;
        }
        if record.stored().count() < n {
            return Err(format!(
                "only {} of {n} replicas stored: {}",
                record.stored().count(),
                record
                    .replicas
                    .iter()
                    .filter(|r| r.state != ReplicaState::Stored)
                    .map(|r| format!("{}: {}", r.cloud, r.detail))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        Ok(record)
    }

    async fn send_replica(
        &self,
        name: &str,
        source: &Path,
        digest: (Sha256Digest, u64),
        cloud: &str,
    ) -> Result<intercloud_transfer::TransferId, String> {
        let object_id =
            ObjectId::new(&holder_object_id(&self.local(), name)).map_err(|e| e.to_string())?;
        let to = CloudId::new(cloud).map_err(|e| e.to_string())?;
        self.transfers
            .outbox
            .send(SendRequest {
                source: source.to_owned(),
                object_id,
                kind: ObjectKind::Object,
                metadata: BTreeMap::from([
                    ("name".to_owned(), name.to_owned()),
                    ("owner".to_owned(), self.local()),
                ]),
                to,
                purpose: Purpose::Replica {
                    name: name.to_owned(),
                },
                digest: Some(digest),
            })
            .await
    }

    /// Forwards the progress of `ids` as `transfer` steps until all are
    /// over.
    async fn follow(
        &self,
        ids: &[intercloud_transfer::TransferId],
        steps: &mpsc::Sender<ObjectStep>,
    ) {
        let mut changes = self.transfers.view.subscribe();
        let mut outcomes: Vec<_> = ids
            .iter()
            .filter_map(|id| self.transfers.outbox.watch(id))
            .collect();
        let all_over = |outcomes: &mut Vec<
            tokio::sync::watch::Receiver<Option<crate::transfer::outbound::Finished>>,
        >| { outcomes.iter_mut().all(|o| o.borrow_and_update().is_some()) };
        let wanted: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let mut ticker = tokio::time::interval(Duration::from_millis(500));
        while !all_over(&mut outcomes) {
            tokio::select! {
                change = changes.recv() => {
                    if let Ok(t) = change
                        && t.direction == intercloud_proto::v1::TransferDirection::Outgoing as i32
                        && wanted.contains(&t.transfer_id)
                    {
                        // The transfer carries the state; the CLI shows it.
                        let mut step = now_step("transfer", "");
                        step.transfer = Some(t);
                        let _ = steps.send(step).await;
                    }
                }
                _ = ticker.tick() => {}
            }
        }
    }

    /// The bytes of `name` from a live replica: its path (a local file the
    /// caller streams), which cloud served it, and whether the caller must
    /// delete the file afterwards.
    pub async fn get(&self, name: &str) -> Result<(ObjectRecord, PathBuf, String, bool), String> {
        let record = self
            .load(name)?
            .ok_or_else(|| format!("no object {name:?} owned by this cloud"))?;
        let expected = Sha256Digest::from_hex(&record.sha256).map_err(|e| e.to_string())?;
        let local = self.local();
        let online: Vec<String> = self
            .core
            .peers
            .peers()
            .into_iter()
            .filter(|p| p.online)
            .map(|p| p.cloud_id)
            .collect();
        let mut holders: Vec<&Replica> = record.stored().collect();
        // This cloud first, then online holders, then the rest.
        holders.sort_by_key(|r| (r.cloud != local, !online.contains(&r.cloud)));
        let mut failures = Vec::new();
        for replica in holders {
            let attempt = if replica.cloud == local {
                let id =
                    ObjectId::new(&holder_object_id(&local, name)).map_err(|e| e.to_string())?;
                Ok((self.transfers.store.object_path(&id), false))
            } else {
                self.fetch(&replica.cloud, name, record.size)
                    .await
                    .map(|p| (p, true))
            };
            match attempt {
                Ok((path, temporary)) => {
                    let check = path.clone();
                    let digest = tokio::task::spawn_blocking(move || file_digest(&check))
                        .await
                        .map_err(|e| e.to_string())?;
                    match digest {
                        Ok((actual, len)) if actual == expected && len == record.size => {
                            return Ok((record.clone(), path, replica.cloud.clone(), temporary));
                        }
                        Ok((actual, len)) => {
                            failures.push(format!(
                                "{}: its copy is {len} bytes with sha256 {actual}, not {} bytes with {expected}",
                                replica.cloud, record.size
                            ));
                            if temporary {
                                let _ = std::fs::remove_file(&path);
                            }
                        }
                        Err(e) => failures.push(format!("{}: {e}", replica.cloud)),
                    }
                }
                Err(e) => failures.push(format!("{}: {e}", replica.cloud)),
            }
        }
        Err(format!(
            "no live replica of {name:?} could be read: {}",
            if failures.is_empty() {
                "none is stored".to_owned()
            } else {
                failures.join("; ")
            }
        ))
    }

    /// Asks `holder` to send its copy of `name` back; waits for it.
    async fn fetch(&self, holder: &str, name: &str, size: u64) -> Result<PathBuf, String> {
        let local = self.local();
        let reply_as = format!(
            "{}.{}",
            holder_object_id(&local, name),
            hex::encode(rand::random::<[u8; 6]>())
        );
        let request = FetchRequest {
            object_id: holder_object_id(&local, name),
            reply_as: reply_as.clone(),
        };
        let (tx, rx) = oneshot::channel();
        self.fetches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(reply_as.clone(), tx);
        let body = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
        let holder_id = CloudId::new(holder).map_err(|e| e.to_string())?;
        let sent = self
            .transfers
            .publish(&crate::transfer::amqp::data_queue(&holder_id), FETCH, &body)
            .await;
        let result = match sent {
            Ok(()) => {
                // A minute plus a second per 10 MB.
                let wait = FETCH_TIMEOUT + Duration::from_secs(size / 10_000_000);
                match tokio::time::timeout(wait, rx).await {
                    Ok(Ok(path)) => Ok(path),
                    Ok(Err(_)) => Err("the fetch was dropped".to_owned()),
                    Err(_) => Err(format!("no copy arrived within {} s", wait.as_secs())),
                }
            }
            Err(e) => Err(e),
        };
        self.fetches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&reply_as);
        result
    }

    /// An incoming object was committed: a fetched copy someone waits for?
    pub fn committed(&self, object_id: &str, path: &Path) -> bool {
        let waiter = self
            .fetches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(object_id);
        match waiter {
            Some(tx) => {
                let _ = tx.send(path.to_owned());
                true
            }
            None => false,
        }
    }

    /// A holder's side of a fetch: send the owner its copy back.
    pub fn on_fetch(self: &Arc<Self>, from: &CloudId, body: &[u8]) {
        let request: FetchRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%from, error = %e, "malformed fetch request; dropped");
                return;
            }
        };
        let prefix = format!("{from}.");
        if !request.object_id.starts_with(&prefix) || !request.reply_as.starts_with(&prefix) {
            tracing::warn!(%from, object = %request.object_id, "a fetch for another cloud's object; refused");
            return;
        }
        let (Ok(object_id), Ok(reply_as)) = (
            ObjectId::new(&request.object_id),
            ObjectId::new(&request.reply_as),
        ) else {
            tracing::warn!(%from, "a fetch with an invalid object id; dropped");
            return;
        };
        let path = self.transfers.store.object_path(&object_id);
        if !path.is_file() {
            tracing::warn!(%from, object = %object_id, "a fetch for an object this cloud does not hold");
            return;
        }
        let name = request
            .object_id
            .strip_prefix(&prefix)
            .unwrap_or_default()
            .to_owned();
        let this = self.clone();
        let to = from.clone();
        tokio::runtime::Handle::current().spawn(async move {
            let sent = this
                .transfers
                .outbox
                .send(SendRequest {
                    source: path,
                    object_id: reply_as,
                    kind: ObjectKind::Object,
                    metadata: BTreeMap::from([("returned".to_owned(), name.clone())]),
                    to: to.clone(),
                    purpose: Purpose::Return { name },
                    digest: None,
                })
                .await;
            if let Err(e) = sent {
                tracing::warn!(%to, error = %e, "cannot send a copy back");
            }
        });
    }

    /// Places new replicas for objects whose holders are gone. A holder is
    /// gone when it is revoked or has been out of presence past the lease
    /// (presence must have been up for a lease first, so a broker that
    /// just started does not declare everyone gone).
    pub async fn run_repair(self: Arc<Self>, stopped: impl std::future::Future<Output = ()>) {
        let lease = Duration::from_secs(
            self.core
                .config
                .xmpp
                .as_ref()
                .map_or(0, |x| x.lease_seconds),
        );
        if lease.is_zero() {
            return;
        }
        let repair = async {
            let mut connected_since: Option<tokio::time::Instant> = None;
            let mut ticker = tokio::time::interval(Duration::from_secs(2));
            loop {
                ticker.tick().await;
                if !self.core.peers.connected() {
                    connected_since = None;
                    continue;
                }
                let since = *connected_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() < lease * 2 {
                    continue;
                }
                if let Err(e) = self.repair_once().await {
                    tracing::warn!(error = %e, "re-replication pass failed");
                }
            }
        };
        tokio::select! {
            () = repair => {}
            () = stopped => {}
        }
    }

    async fn repair_once(&self) -> Result<(), String> {
        let local = self.local();
        // Present: online, or offline for less than the lease. A revoked
        // cloud is dropped from the peer table, so it is not present.
        let lease = self.core.peers.lease();
        let now = OffsetDateTime::now_utc();
        let present: Vec<String> = self
            .core
            .peers
            .peers()
            .into_iter()
            .filter(|p| {
                p.online
                    || p.last_seen.is_some_and(|seen| {
                        let seen = OffsetDateTime::from_unix_timestamp(seen.seconds)
                            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                        now - seen < lease
                    })
            })
            .map(|p| p.cloud_id)
            .collect();
        for record in self.list()? {
            let gone: Vec<String> = record
                .replicas
                .iter()
                .filter(|r| r.state == ReplicaState::Stored)
                .filter(|r| r.cloud != local && !present.contains(&r.cloud))
                .map(|r| r.cloud.clone())
                .collect();
            for cloud in &gone {
                tracing::warn!(object = %record.name, %cloud, "replica holder gone past the lease; placing a new replica");
                self.update(&record.name, |r| {
                    r.lose(cloud, "the holder has been out of presence past the lease")
                });
            }
            let Some(current) = self.load(&record.name)? else {
                continue;
            };
            if current.missing() == 0 || current.stored().count() == 0 {
                continue;
            }
            let holders: Vec<&str> = current
                .replicas
                .iter()
                .filter(|r| r.state != ReplicaState::Lost)
                .map(|r| r.cloud.as_str())
                .collect();
            let lost: Vec<&str> = current
                .replicas
                .iter()
                .filter(|r| r.state == ReplicaState::Lost)
                .map(|r| r.cloud.as_str())
                .collect();
            let exclude: Vec<&str> = holders.iter().chain(lost.iter()).copied().collect();
            let candidates = self.candidates(&current.region).await?;
            let targets = match record::place(&candidates, &exclude, current.missing()) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(object = %current.name, error = %e, "cannot restore the replica count yet");
                    continue;
                }
            };
            let (_, source, from, temporary) = self.get(&current.name).await?;
            let digest = (
                Sha256Digest::from_hex(&current.sha256).map_err(|e| e.to_string())?,
                current.size,
            );
            // A fetched copy becomes an upload the new transfers read.
            let source = if temporary {
                let upload = self.dir.join("uploads").join(format!(
                    "{}.{}.part",
                    current.name,
                    hex::encode(rand::random::<[u8; 6]>())
                ));
                std::fs::rename(&source, &upload).map_err(|e| e.to_string())?;
                upload
            } else {
                source
            };
            for target in targets {
                let id = self
                    .send_replica(&current.name, &source, digest, &target)
                    .await?;
                tracing::info!(object = %current.name, %target, source = %from, transfer_id = %id, "re-replicating");
                let mut replica = Replica {
                    cloud: target.clone(),
                    state: ReplicaState::Pending,
                    transfer_id: id.to_string(),
                    receipted_at: None,
                    detail: "re-replication".into(),
                };
                settle_from_outbox(&self.transfers, &mut replica);
                self.update(&current.name, |r| {
                    r.replicas.push(replica);
                    true
                });
            }
        }
        Ok(())
    }
}

/// If the outbox already knows how the replica's transfer ended, apply it.
fn settle_from_outbox(transfers: &Transfers, replica: &mut Replica) {
    let Ok(id) = intercloud_transfer::TransferId::new(&replica.transfer_id) else {
        return;
    };
    let Some(watch) = transfers.outbox.watch(&id) else {
        return;
    };
    let finished = watch.borrow().clone();
    if let Some(f) = finished {
        if f.delivered {
            replica.state = ReplicaState::Stored;
            replica.receipted_at = f.receipt().map(|r| OffsetDateTime::from(r.committed_at));
        } else {
            replica.state = ReplicaState::Lost;
            replica.detail = f.detail;
        }
    }
}

/// Writes the uploaded bytes to `path`, hashing them; the count must be
/// `expected`. Fsyncs before returning.
async fn receive_upload(
    path: &Path,
    expected: u64,
    data: &mut mpsc::Receiver<Result<Vec<u8>, String>>,
) -> Result<(Sha256Digest, u64), String> {
    use sha2::Digest as _;
    use tokio::io::AsyncWriteExt as _;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut received = 0u64;
    while let Some(part) = data.recv().await {
        let part = part?;
        received += part.len() as u64;
        if received > expected {
            return Err(format!(
                "more bytes than the header's size of {expected}: the upload is refused"
            ));
        }
        hasher.update(&part);
        file.write_all(&part)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if received != expected {
        return Err(format!(
            "the header says {expected} bytes but {received} arrived: the upload is refused"
        ));
    }
    file.sync_all()
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((Sha256Digest::from_bytes(hasher.finalize().into()), received))
}

/// Keeps a transfer's latest view for the steps (used by the API).
pub fn transfer_step(step: &str, detail: String, transfer: Option<Transfer>) -> ObjectStep {
    let mut s = now_step(step, detail);
    s.transfer = transfer;
    s
}
