//! Workload migration (Blueprint §10, Figure 5): choose a target, offer it
//! the work over XMPP, send the VM package over AMQP, let the target verify
//! and import it, and release the instance here only once the target's
//! receipt says it runs there.
//!
//! The package is the instance's qcow2 disk as one transfer of kind
//! `image`, with its OVF descriptor in the manifest's metadata (base64, in
//! pieces of [`OVF_PIECE`] characters: metadata values are single lines of
//! at most 1 KiB). The target checks the package before its commit (the
//! OVF parses and names a free instance name, `qemu-img check` finds no
//! error, the sizes agree; the digest was checked by the protocol): a bad
//! package is refused and nothing is imported. It imports after the commit
//! and only then publishes the receipt, so for an image a receipt means
//! "verified, imported and running here".

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use intercloud_proto::v1::directory_client::DirectoryClient;
use intercloud_proto::v1::{
    Capacity, MatchRequest, MigrateRequest, MigrationStep, MoveBindingRequest, NegotiateRequest,
    migrate_request,
};
use intercloud_transfer::{CloudId, Manifest, ObjectId, ObjectKind, RefusalReason};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::cloud::LocalCloud;
use crate::cloud::instance::InstanceState;
use crate::core::BrokerCore;
use crate::transfer::outbound::{OutgoingRecord, Purpose, SendRequest};
use crate::vnets::VnetBinding;

/// Characters of base64 per metadata entry.
pub const OVF_PIECE: usize = 1000;

/// Metadata keys of a VM package.
const OVF_KEY: &str = "ovf.";
const INSTANCE_KEY: &str = "instance";
const RESERVATION_KEY: &str = "reservation";

/// How long the target holds the reservation while the package travels.
const RESERVATION_SECONDS: u64 = 900;

/// The OVF descriptor as metadata entries `ovf.0`, `ovf.1`, … (base64).
pub fn ovf_to_metadata(ovf: &str) -> BTreeMap<String, String> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(ovf);
    encoded
        .as_bytes()
        .chunks(OVF_PIECE)
        .enumerate()
        .map(|(i, piece)| {
            (
                format!("{OVF_KEY}{i}"),
                String::from_utf8_lossy(piece).into_owned(),
            )
        })
        .collect()
}

/// The OVF descriptor back from the metadata.
pub fn ovf_from_metadata(metadata: &BTreeMap<String, String>) -> Result<String, String> {
    let mut encoded = String::new();
    for i in 0.. {
        match metadata.get(&format!("{OVF_KEY}{i}")) {
            Some(piece) => encoded.push_str(piece),
            None if i == 0 => return Err("the manifest carries no OVF descriptor".into()),
            None => break,
        }
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("the OVF descriptor is not valid base64: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "the OVF descriptor is not UTF-8".to_owned())
}

fn step(name: &str, detail: impl Into<String>) -> MigrationStep {
    MigrationStep {
        step: name.to_owned(),
        detail: detail.into(),
        transfer: None,
        at: Some(intercloud_daemon::grpc::timestamp(OffsetDateTime::now_utc())),
    }
}

/// The target's side, before the commit: may this package be imported?
pub fn inspect(
    cloud: &LocalCloud,
    manifest: &Manifest,
    staging: &Path,
) -> Result<(), (RefusalReason, String)> {
    // The sender is told what is wrong, not where this cloud keeps files.
    let staging_path = staging.display().to_string();
    let invalid = |detail: String| {
        (
            RefusalReason::InvalidContent,
            detail.replace(&staging_path, "the image"),
        )
    };
    let ovf = ovf_from_metadata(manifest.metadata()).map_err(invalid)?;
    let plan = cloud
        .verify_package(staging, &ovf)
        .map_err(|e| invalid(e.to_string()))?;
    match cloud.get(&plan.spec.name) {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(invalid(format!(
            "an instance named {} already exists in this cloud",
            plan.spec.name
        ))),
        Err(e) => Err((RefusalReason::StorageFailure, e.to_string())),
    }
}

/// The target's side, after the commit: import and start the instance.
pub fn import(cloud: &LocalCloud, manifest: &Manifest, path: &Path) {
    let result = ovf_from_metadata(manifest.metadata())
        .and_then(|ovf| cloud.verify_package(path, &ovf).map_err(|e| e.to_string()))
        .and_then(|plan| {
            cloud
                .import(&plan, path, manifest.sender().as_str())
                .map_err(|e| e.to_string())
        });
    match result {
        Ok(instance) => tracing::info!(
            instance = instance.name(),
            from = %manifest.sender(),
            reservation = manifest.metadata().get(RESERVATION_KEY).map_or("", String::as_str),
            "instance imported and running"
        ),
        // Checked before the commit, so only a local failure gets here.
        Err(e) => {
            tracing::error!(from = %manifest.sender(), error = %e, "importing a migrated instance failed after its commit")
        }
    }
}

/// The source's side, when the package's transfer is over: release the
/// instance if the target runs it, else put it back to running.
pub fn finished(cloud: &LocalCloud, record: &OutgoingRecord) {
    let (Purpose::Migration { instance, .. }, Some(finished)) = (&record.purpose, &record.finished)
    else {
        return;
    };
    if finished.delivered {
        match cloud.release(instance) {
            Ok(()) => tracing::info!(%instance, "instance released: it runs in the target cloud"),
            Err(e) => tracing::error!(%instance, error = %e, "cannot release a migrated instance"),
        }
    } else {
        match cloud.set_state(instance, InstanceState::Running) {
            Ok(_) => {
                tracing::warn!(%instance, detail = %finished.detail, "migration failed; the instance keeps running here")
            }
            Err(e) => {
                tracing::error!(%instance, error = %e, "cannot put the instance back to running")
            }
        }
    }
}

/// Runs a migration, reporting each step on `steps`; the last step is
/// `done` or `failed`.
pub async fn migrate(
    core: Arc<BrokerCore>,
    request: MigrateRequest,
    steps: mpsc::Sender<MigrationStep>,
) {
    let last = match run(&core, request, &steps).await {
        Ok(detail) => step("done", detail),
        Err(detail) => step("failed", detail),
    };
    let _ = steps.send(last).await;
}

async fn run(
    core: &Arc<BrokerCore>,
    request: MigrateRequest,
    steps: &mpsc::Sender<MigrationStep>,
) -> Result<String, String> {
    let cloud = core
        .cloud
        .get()
        .ok_or("the local cloud driver is not running")?
        .clone();
    let transfers = core
        .transfers
        .get()
        .ok_or("transfers are not configured on this broker: set [amqp] url")?
        .clone();
    let name = request.instance.clone();
    let instance = {
        let cloud = cloud.clone();
        let lookup = name.clone();
        tokio::task::spawn_blocking(move || cloud.get(&lookup))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no instance {name:?} in this cloud"))?
    };
    if instance.state != InstanceState::Running {
        return Err(format!("{name} is {}, not running", instance.state));
    }
    let local = core.config.cloud_id.to_string();

    // 1. The target.
    let target = match request.target {
        Some(migrate_request::Target::ToCloud(to)) => {
            CloudId::new(&to).map_err(|e| format!("to_cloud: {e}"))?;
            if to == local {
                return Err(format!("{name} already runs in {to}"));
            }
            let _ = steps.send(step("target", format!("{to} (as asked)"))).await;
            to
        }
        Some(migrate_request::Target::Match(mut constraints)) => {
            constraints.kind = "compute".into();
            constraints.min_vcpu = Some(constraints.min_vcpu.unwrap_or(0).max(instance.spec.vcpu));
            constraints.min_memory_mib = Some(
                constraints
                    .min_memory_mib
                    .unwrap_or(0)
                    .max(instance.spec.memory_mib),
            );
            let (to, why) = choose(core, constraints, &local).await?;
            let _ = steps.send(step("target", format!("{to} ({why})"))).await;
            to
        }
        None => return Err("say where to: to_cloud or match".into()),
    };

    // The instance's VNets must reach the target, or it would lose its
    // network there.
    let vnet_bindings = core
        .vnets
        .get()
        .map(|vnets| vnets.bindings_of(&name))
        .unwrap_or_default();
    if let Some(outside) = vnet_bindings.iter().find(|b| !b.clouds.contains(&target)) {
        return Err(format!(
            "{name} has {} on vnet {}/{}, which spans only {}: it would lose its network in {target}; migrate it to one of those clouds, or detach it first; {name} keeps running here",
            outside.ip,
            outside.tenant,
            outside.vnet,
            outside.clouds.join(", ")
        ));
    }

    // 2. The offer, over XMPP.
    let negotiator = core
        .peers
        .negotiator()
        .ok_or("presence (XMPP) is not running: no offer can be made")?;
    let want = Capacity {
        vcpu: instance.spec.vcpu,
        memory_mib: instance.spec.memory_mib,
        storage_gib: instance.spec.disk_bytes.div_ceil(1 << 30).max(1),
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    negotiator
        .send(crate::peers::NegotiateCommand {
            request: NegotiateRequest {
                cloud_id: target.clone(),
                want: Some(want),
                duration_seconds: RESERVATION_SECONDS,
            },
            reply,
        })
        .await
        .map_err(|_| "the XMPP driver stopped")?;
    let answer = answer
        .await
        .map_err(|_| "the XMPP driver dropped the offer")?;
    if !answer.accepted {
        return Err(format!(
            "{target} declined the offer: {}; {name} keeps running here",
            answer.reason
        ));
    }
    let _ = steps
        .send(step(
            "offer",
            format!(
                "{target} accepted: reservation {} for {} vCPU, {} MiB, {} GiB",
                answer.reservation_id, want.vcpu, want.memory_mib, want.storage_gib
            ),
        ))
        .await;

    // 3. The package.
    let package = {
        let cloud = cloud.clone();
        let name = name.clone();
        tokio::task::spawn_blocking(move || {
            let package = cloud.export(&name)?;
            cloud.set_state(&name, InstanceState::Migrating)?;
            Ok::<_, crate::cloud::error::CloudError>(package)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
    };
    let mut metadata = ovf_to_metadata(&package.ovf);
    metadata.insert(INSTANCE_KEY.into(), name.clone());
    metadata.insert(RESERVATION_KEY.into(), answer.reservation_id.clone());
    let sent = transfers
        .outbox
        .send(SendRequest {
            source: package.disk_path.clone(),
            object_id: ObjectId::new(&format!("{local}.{name}.qcow2"))
                .map_err(|e| e.to_string())?,
            kind: ObjectKind::Image,
            metadata,
            to: CloudId::new(&target).map_err(|e| e.to_string())?,
            purpose: Purpose::Migration {
                instance: name.clone(),
                reservation: answer.reservation_id.clone(),
            },
            digest: None,
        })
        .await;
    let id = match sent {
        Ok(id) => id,
        Err(e) => {
            let _ = cloud.set_state(&name, InstanceState::Running);
            return Err(format!(
                "the package cannot be sent: {e}; {name} keeps running here"
            ));
        }
    };
    let _ = steps
        .send(step(
            "transfer",
            format!(
                "{} bytes of qcow2 and its OVF to {target} (transfer {id})",
                package.disk_size
            ),
        ))
        .await;
    let mut outcome = transfers.outbox.watch(&id).ok_or("the transfer vanished")?;
    let mut changes = transfers.view.subscribe();
    let finished = loop {
        if let Some(f) = outcome.borrow_and_update().clone() {
            break f;
        }
        tokio::select! {
            change = changes.recv() => {
                if let Ok(t) = change
                    && t.direction == intercloud_proto::v1::TransferDirection::Outgoing as i32
                    && t.transfer_id == id.as_str()
                {
                    // The transfer carries the state; the CLI shows it.
                    let mut s = step("transfer", "");
                    s.transfer = Some(t);
                    let _ = steps.send(s).await;
                }
            }
            changed = outcome.changed() => {
                if changed.is_err() {
                    return Err("the transfer's task stopped".into());
                }
            }
        }
    };
    if !finished.delivered {
        return Err(format!(
            "{target}: {}; {name} keeps running here (the reservation lapses in {} s at most)",
            finished.detail, RESERVATION_SECONDS
        ));
    }
    let receipt = finished.receipt();
    let _ = steps
        .send(step(
            "verify",
            format!(
                "{target} checked the package: sha256 {}, qemu-img check clean, OVF parsed",
                receipt
                    .as_ref()
                    .map_or_else(String::new, |r| r.sha256.to_string())
            ),
        ))
        .await;
    let _ = steps
        .send(step(
            "import",
            format!("{target} imported {name} and started it"),
        ))
        .await;
    // The hook released it when the receipt was recorded; say so once it
    // is gone.
    for _ in 0..50 {
        let gone = {
            let cloud = cloud.clone();
            let name = name.clone();
            tokio::task::spawn_blocking(move || cloud.get(&name))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?
                .is_none()
        };
        if gone {
            let _ = steps
                .send(step("release", format!("{name} released in {local}")))
                .await;
            move_bindings(core, &name, &target, &vnet_bindings, steps).await;
            return Ok(format!("{name} runs in {target}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "{name} runs in {target} but could not be released here: see the broker's log"
    ))
}

/// Moves the migrated instance's VNet bindings to `target` at the root: the
/// same address and MAC there. A refusal is reported as a step (the
/// instance runs in the target either way; it is then off the VNet).
async fn move_bindings(
    core: &BrokerCore,
    name: &str,
    target: &str,
    bindings: &[VnetBinding],
    steps: &mpsc::Sender<MigrationStep>,
) {
    for VnetBinding {
        tenant, vnet, ip, ..
    } in bindings
    {
        let request = MoveBindingRequest {
            tenant: tenant.clone(),
            vnet: vnet.clone(),
            instance: name.to_owned(),
            to_cloud: target.to_owned(),
        };
        let moved = match crate::api_vnets::networks(core) {
            Ok(mut client) => crate::api_vnets::call(core, client.move_binding(request)).await,
            Err(e) => Err(e),
        };
        let detail = match moved {
            Ok(binding) => format!(
                "{name} keeps {} ({}) on vnet {tenant}/{vnet}, now bound in {target}",
                binding.ip, binding.mac
            ),
            Err(e) => {
                tracing::warn!(instance = name, %tenant, %vnet, error = %e.message(), "the VNet binding did not move with the instance");
                format!(
                    "{name} could not keep {ip} on vnet {tenant}/{vnet}: {}; attach it again in {target}",
                    e.message()
                )
            }
        };
        let _ = steps.send(step("network", detail)).await;
    }
    if let Some(vnets) = core.vnets.get() {
        vnets.wake();
    }
}

/// A compute target by matching: the best online candidate that is not
/// this cloud.
async fn choose(
    core: &BrokerCore,
    constraints: MatchRequest,
    local: &str,
) -> Result<(String, String), String> {
    let channel = core.root_channel()?;
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        DirectoryClient::new(channel).r#match(constraints),
    )
    .await
    .map_err(|_| "the directory did not answer within 30 s".to_owned())?
    .map_err(|s| format!("the directory refused the match: {}", s.message()))?
    .into_inner();
    answer
        .candidates
        .into_iter()
        .find(|c| c.online && c.cloud_id != local)
        .map(|c| {
            let why = c
                .explanation
                .first()
                .cloned()
                .unwrap_or_else(|| format!("score {:.2}", c.score));
            (c.cloud_id, format!("matched: {why}"))
        })
        .ok_or_else(|| "no other online cloud matches the constraints".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ovf_travels_in_metadata_pieces() {
        let ovf = "<Envelope>\n".repeat(500);
        let metadata = ovf_to_metadata(&ovf);
        assert!(metadata.len() > 1);
        assert!(metadata.values().all(|v| v.len() <= OVF_PIECE));
        assert_eq!(ovf_from_metadata(&metadata).expect("accepted"), ovf);
    }

    #[test]
    fn a_manifest_without_ovf_is_refused() {
        let err = ovf_from_metadata(&BTreeMap::new()).expect_err("refused");
        assert!(err.contains("no OVF"), "{err}");
        let bad = BTreeMap::from([("ovf.0".to_owned(), "***".to_owned())]);
        assert!(
            ovf_from_metadata(&bad)
                .expect_err("refused")
                .contains("base64")
        );
    }
}
