//! The operator API's transfers, objects, instances and migration: the
//! handlers behind `Broker`'s methods of those names.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use intercloud_proto::v1::{
    CreateInstanceRequest, GetObjectResponse, Instance, ListInstancesResponse, ListObjectsResponse,
    ListTransfersResponse, MigrateRequest, MigrationStep, ObjectStep, PutObjectRequest, Transfer,
    get_object_response, put_object_request,
};
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{BroadcastStream, ReceiverStream};
use tonic::{Status, Streaming};

use crate::core::BrokerCore;
use crate::storage::Storage;
use crate::transfer::Transfers;

/// A server stream.
pub type Streamed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Bytes per `data` message of `GetObject`.
const GET_PART: usize = 1 << 20;

fn transfers(core: &BrokerCore) -> Result<&Arc<Transfers>, Status> {
    core.transfers.get().ok_or_else(|| {
        Status::failed_precondition(
            "transfers are not configured on this broker: set [amqp] url in broker.toml",
        )
    })
}

fn storage(core: &BrokerCore) -> Result<&Arc<Storage>, Status> {
    core.storage.get().ok_or_else(|| {
        Status::failed_precondition(
            "storage federation needs transfers: set [amqp] url in broker.toml",
        )
    })
}

/// `ListTransfers`.
pub fn list_transfers(
    core: &BrokerCore,
    include_finished: bool,
) -> Result<ListTransfersResponse, Status> {
    Ok(ListTransfersResponse {
        transfers: transfers(core)?.view.list(include_finished),
    })
}

/// `WatchTransfers`: the current ones, then changes.
pub fn watch_transfers(
    core: &BrokerCore,
    include_finished: bool,
) -> Result<Streamed<Transfer>, Status> {
    let view = &transfers(core)?.view;
    let changes = BroadcastStream::new(view.subscribe()).filter_map(|item| async move {
        match item {
            Ok(t) => Some(Ok(t)),
            // A slow watcher skips progress it missed; the next change
            // carries the whole state again.
            Err(_) => None,
        }
    });
    let current = view.list(include_finished).into_iter().map(Ok);
    Ok(Box::pin(tokio_stream::iter(current).chain(changes)))
}

/// `ListObjects`.
pub fn list_objects(core: &BrokerCore) -> Result<ListObjectsResponse, Status> {
    let records = storage(core)?.list().map_err(Status::internal)?;
    Ok(ListObjectsResponse {
        objects: records.iter().map(crate::storage::service::info).collect(),
    })
}

/// `PutObject`: the header, then the bytes into the storage service while
/// its steps stream back.
pub async fn put_object(
    core: &BrokerCore,
    mut request: Streaming<PutObjectRequest>,
) -> Result<Streamed<ObjectStep>, Status> {
    let storage = storage(core)?.clone();
    let header = match request.message().await? {
        Some(PutObjectRequest {
            part: Some(put_object_request::Part::Header(h)),
        }) => h,
        _ => {
            return Err(Status::invalid_argument(
                "the first message of PutObject must be the header",
            ));
        }
    };
    crate::storage::record::validate_name(&header.name).map_err(Status::invalid_argument)?;
    let (data_tx, data_rx) = mpsc::channel(8);
    let (steps_tx, steps_rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let part = match request.message().await {
                Ok(Some(PutObjectRequest {
                    part: Some(put_object_request::Part::Data(bytes)),
                })) => Ok(bytes),
                Ok(Some(_)) => Err("a second header in PutObject".to_owned()),
                Ok(None) => break,
                Err(status) => Err(format!("the upload broke off: {}", status.message())),
            };
            let failed = part.is_err();
            if data_tx.send(part).await.is_err() || failed {
                break;
            }
        }
    });
    tokio::spawn(storage.put(header, data_rx, steps_tx));
    Ok(Box::pin(ReceiverStream::new(steps_rx).map(Ok)))
}

/// `GetObject`: info first, then the verified bytes.
pub async fn get_object(
    core: &BrokerCore,
    name: &str,
) -> Result<Streamed<GetObjectResponse>, Status> {
    let storage = storage(core)?.clone();
    crate::storage::record::validate_name(name).map_err(Status::invalid_argument)?;
    if storage.load(name).map_err(Status::internal)?.is_none() {
        return Err(Status::not_found(format!(
            "no object {name:?} owned by this cloud (object ls lists them)"
        )));
    }
    let (record, path, from, temporary) = storage.get(name).await.map_err(Status::unavailable)?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let first = GetObjectResponse {
            part: Some(get_object_response::Part::Info(
                crate::storage::service::info(&record),
            )),
            from_cloud: from.clone(),
        };
        if tx.send(Ok(first)).await.is_err() {
            return;
        }
        let result = async {
            let mut file = tokio::fs::File::open(&path).await?;
            let mut buffer = vec![0u8; GET_PART];
            loop {
                let n = file.read(&mut buffer).await?;
                if n == 0 {
                    return Ok::<(), std::io::Error>(());
                }
                let part = GetObjectResponse {
                    part: Some(get_object_response::Part::Data(
                        buffer.get(..n).unwrap_or_default().to_vec(),
                    )),
                    from_cloud: String::new(),
                };
                if tx.send(Ok(part)).await.is_err() {
                    return Ok(());
                }
            }
        }
        .await;
        if let Err(e) = result {
            let _ = tx
                .send(Err(Status::internal(format!("{}: {e}", path.display()))))
                .await;
        }
        if temporary {
            let _ = tokio::fs::remove_file(&path).await;
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

fn cloud(core: &BrokerCore) -> Result<Arc<crate::cloud::LocalCloud>, Status> {
    core.cloud
        .get()
        .cloned()
        .ok_or_else(|| Status::unavailable("the local cloud driver is not running"))
}

fn instance_message(i: &crate::cloud::instance::Instance) -> Instance {
    Instance {
        name: i.spec.name.clone(),
        state: i.state.to_string(),
        vcpu: i.spec.vcpu,
        memory_mib: i.spec.memory_mib,
        disk_bytes: i.spec.disk_bytes,
        origin: i.origin.clone().unwrap_or_default(),
        created_at: Some(intercloud_daemon::grpc::timestamp(i.created_at)),
    }
}

/// `CreateInstance`: a qcow2 disk made with qemu-img and a record.
pub async fn create_instance(
    core: &BrokerCore,
    request: CreateInstanceRequest,
) -> Result<Instance, Status> {
    let cloud = cloud(core)?;
    let spec = crate::cloud::instance::InstanceSpec {
        name: request.name,
        vcpu: request.vcpu,
        memory_mib: request.memory_mib,
        disk_bytes: request.disk_bytes,
    };
    spec.validate()
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let created = tokio::task::spawn_blocking(move || cloud.create_instance(spec))
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
    match created {
        Ok(i) => Ok(instance_message(&i)),
        Err(e @ crate::cloud::error::CloudError::Exists { .. }) => {
            Err(Status::already_exists(e.to_string()))
        }
        Err(e) => Err(Status::internal(e.to_string())),
    }
}

/// `ListInstances`.
pub async fn list_instances(core: &BrokerCore) -> Result<ListInstancesResponse, Status> {
    let cloud = cloud(core)?;
    let list = tokio::task::spawn_blocking(move || cloud.list())
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(ListInstancesResponse {
        instances: list.iter().map(instance_message).collect(),
    })
}

/// `Migrate`: the steps as they happen.
pub async fn migrate(
    core: &Arc<BrokerCore>,
    request: MigrateRequest,
) -> Result<Streamed<MigrationStep>, Status> {
    crate::cloud::instance::validate_name(&request.instance)
        .map_err(|e| Status::invalid_argument(format!("instance: {e}")))?;
    transfers(core)?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(crate::mobility::migrate(core.clone(), request, tx));
    Ok(Box::pin(ReceiverStream::new(rx).map(Ok)))
}
