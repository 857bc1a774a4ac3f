//! The `Directory` gRPC service: authorisation and message conversion
//! around [`crate::directory`]. Every store call runs on the blocking pool.

use std::pin::Pin;
use std::sync::Arc;

use intercloud_daemon::grpc::timestamp;
use intercloud_ontology::descriptor::DescriptorFormat;
use intercloud_ontology::matching::{MatchRequest as Constraints, ServiceKind};
use intercloud_proto::v1::directory_event::Kind as EventKind;
use intercloud_proto::v1::directory_server::Directory as DirectoryService;
use intercloud_proto::v1::{
    DescriptorInfo as InfoMsg, DirectoryEvent, GetDescriptorRequest, GetDescriptorResponse,
    LeftOutCloud, MatchCandidate, MatchRequest, MatchResponse, PublishRequest, PublishResponse,
    QueryRequest, QueryResponse, WatchDirectoryRequest, WithdrawRequest, WithdrawResponse,
};
use intercloud_trust::{CloudId, OperatorScope};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::authz;
use crate::core::{RootCore, now};
use crate::directory::{
    self, Change, ChangeKind, DescriptorInfo, Directory, DirectoryError, Publisher, QueryError,
    cloud_graph, formats,
};
use crate::state::Liveness;

/// Heartbeat intervals of silence after which a cloud counts as offline.
pub const LEASE_HEARTBEATS: u32 = 3;

/// The service.
#[derive(Debug, Clone)]
pub struct DirectoryApi {
    core: Arc<RootCore>,
}

impl DirectoryApi {
    /// A service over the root's core.
    pub fn new(core: Arc<RootCore>) -> Self {
        Self { core }
    }

    fn directory(&self) -> Arc<Directory> {
        self.core.directory.clone()
    }
}

/// The gRPC status of a directory error.
pub fn status_of(error: DirectoryError) -> Status {
    let message = error.to_string();
    match error {
        DirectoryError::Descriptor(
            intercloud_ontology::descriptor::DescriptorError::TooLarge { .. },
        ) => Status::resource_exhausted(message),
        DirectoryError::Descriptor(_) | DirectoryError::Invalid { .. } => {
            Status::invalid_argument(message)
        }
        DirectoryError::NotYours { .. } => Status::permission_denied(message),
        DirectoryError::Refused(_) => Status::failed_precondition(message),
        DirectoryError::NotPublished(_) => Status::not_found(message),
        DirectoryError::Query(QueryError::Syntax(_) | QueryError::Format(_)) => {
            Status::invalid_argument(message)
        }
        DirectoryError::Query(QueryError::Update) => Status::permission_denied(message),
        DirectoryError::Query(QueryError::Timeout(_)) => Status::deadline_exceeded(message),
        DirectoryError::Query(QueryError::TooManyResults(_) | QueryError::TooLarge(_)) => {
            Status::resource_exhausted(message)
        }
        DirectoryError::Match(intercloud_ontology::matching::MatchError::Request(_)) => {
            Status::invalid_argument(message)
        }
        _ => {
            warn!(error = %message, "directory failure");
            Status::internal(message)
        }
    }
}

/// Runs a blocking directory call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DirectoryError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("directory task failed: {e}")))?
        .map_err(status_of)
}

/// The message form of a record.
pub fn info_message(info: &DescriptorInfo) -> InfoMsg {
    InfoMsg {
        cloud_id: info.cloud_id.clone(),
        version: info.version,
        triples: info.triples,
        digest: info.digest.clone(),
        published_at: Some(timestamp(info.published_at)),
        published_by: info.published_by.clone(),
        graph: cloud_graph(&info.cloud_id).into_string(),
    }
}

fn event_message(change: &Change) -> DirectoryEvent {
    DirectoryEvent {
        kind: match change.kind {
            ChangeKind::Published => EventKind::Published,
            ChangeKind::Withdrawn => EventKind::Withdrawn,
        } as i32,
        descriptor: Some(info_message(&change.info)),
        at: Some(timestamp(change.at)),
        reason: change.reason.clone(),
    }
}

fn descriptor_format(media_type: &str) -> Result<DescriptorFormat, Status> {
    if media_type.trim().is_empty() {
        return Ok(DescriptorFormat::Turtle);
    }
    DescriptorFormat::from_media_type(media_type).ok_or_else(|| {
        Status::invalid_argument(format!(
            "media_type {media_type:?} is not a descriptor format; use text/turtle, application/n-triples or application/ld+json"
        ))
    })
}

/// The typed constraints of a match request; the error names the field.
pub fn constraints(request: &MatchRequest) -> Result<Constraints, Status> {
    let invalid = |e: &dyn std::fmt::Display| Status::invalid_argument(format!("{e}"));
    let kind: ServiceKind = request
        .kind
        .parse()
        .map_err(|e: intercloud_ontology::matching::RequestError| invalid(&e))?;
    let mut c = Constraints::new(kind);
    let mut set = |key: &str, value: String| -> Result<(), Status> {
        c.set(key, &value).map(|_| ()).map_err(|e| invalid(&e))
    };
    if let Some(v) = request.min_replication {
        set("min_replication", v.to_string())?;
    }
    if let Some(v) = request.min_durability_nines {
        set("min_durability_nines", v.to_string())?;
    }
    if !request.consistency.is_empty() {
        set("consistency", request.consistency.clone())?;
    }
    if !request.region.is_empty() {
        set("region", request.region.clone())?;
    }
    if let Some(price) = &request.max_price {
        set("max_price", format!("{} {}", price.amount, price.currency))?;
    }
    if let Some(v) = request.min_availability {
        set("min_availability", v.to_string())?;
    }
    if let Some(v) = request.min_vcpu {
        set("min_vcpu", v.to_string())?;
    }
    if let Some(v) = request.min_memory_mib {
        set("min_memory_mib", v.to_string())?;
    }
    if !request.encapsulation.is_empty() {
        set("encapsulation", request.encapsulation.clone())?;
    }
    c.validate().map_err(|e| invalid(&e))?;
    Ok(c)
}

type EventStream = Pin<Box<dyn Stream<Item = Result<DirectoryEvent, Status>> + Send>>;

#[tonic::async_trait]
impl DirectoryService for DirectoryApi {
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let caller = self.core.admitted(&request).await?;
        let cloud = authz::cloud_of(&caller.spiffe_id)
            .ok_or_else(|| {
                Status::permission_denied(format!(
                    "Publish is for a cloud's broker or operators; {} speaks for no cloud",
                    caller.spiffe_id
                ))
            })?
            .to_string();
        let spiffe = caller.spiffe_id.to_string();
        let body = request.into_inner();
        let format = descriptor_format(&body.media_type)?;
        let directory = self.directory();
        let (cloud2, spiffe2) = (cloud.clone(), spiffe.clone());
        let published = blocking(move || {
            directory.publish(
                Publisher {
                    cloud_id: &cloud2,
                    spiffe_id: &spiffe2,
                },
                &body.descriptor,
                format,
                now(),
            )
        })
        .await
        .inspect_err(|status| {
            info!(%cloud, publisher = %spiffe, reason = %status.message(), "descriptor refused");
        })?;
        if !published.unchanged {
            info!(
                %cloud,
                publisher = %spiffe,
                version = published.info.version,
                triples = published.info.triples,
                "descriptor published"
            );
        }
        Ok(Response::new(PublishResponse {
            descriptor: Some(info_message(&published.info)),
            unchanged: published.unchanged,
        }))
    }

    async fn withdraw(
        &self,
        request: Request<WithdrawRequest>,
    ) -> Result<Response<WithdrawResponse>, Status> {
        let caller = self.core.admitted(&request).await?;
        let own = authz::cloud_of(&caller.spiffe_id).map(ToString::to_string);
        let asked = request.get_ref().cloud_id.trim().to_owned();
        let target = if asked.is_empty() {
            own.clone().ok_or_else(|| {
                Status::invalid_argument(format!(
                    "cloud_id is required: {} speaks for no cloud",
                    caller.spiffe_id
                ))
            })?
        } else {
            CloudId::new(&asked)
                .map_err(|e| Status::invalid_argument(format!("cloud_id: {e}")))?
                .to_string()
        };
        let root_operator = caller.spiffe_id.is_operator_of(&OperatorScope::Root);
        if own.as_deref() != Some(target.as_str()) && !root_operator {
            return Err(Status::permission_denied(format!(
                "{} may withdraw only its own cloud's descriptor, not {target}'s (a root operator may withdraw any)",
                caller.spiffe_id
            )));
        }
        let reason = format!("withdrawn by {}", caller.spiffe_id);
        let directory = self.directory();
        let target2 = target.clone();
        let reason2 = reason.clone();
        let withdrawn = blocking(move || directory.withdraw(&target2, &reason2, now())).await?;
        info!(cloud = %target, %reason, "descriptor withdrawn");
        Ok(Response::new(WithdrawResponse {
            withdrawn: Some(info_message(&withdrawn)),
        }))
    }

    async fn get(
        &self,
        request: Request<GetDescriptorRequest>,
    ) -> Result<Response<GetDescriptorResponse>, Status> {
        self.core.admitted(&request).await?;
        let cloud = CloudId::new(request.get_ref().cloud_id.trim())
            .map_err(|e| Status::invalid_argument(format!("cloud_id: {e}")))?
            .to_string();
        let directory = self.directory();
        let (info, turtle) = blocking(move || directory.get(&cloud)).await?;
        Ok(Response::new(GetDescriptorResponse {
            descriptor: Some(info_message(&info)),
            turtle,
        }))
    }

    async fn query(
        &self,
        request: Request<QueryRequest>,
    ) -> Result<Response<QueryResponse>, Status> {
        self.core.admitted(&request).await?;
        let body = request.into_inner();
        let directory = self.directory();
        let parsed = directory.parse_query(&body.query).map_err(status_of)?;
        let format = formats::by_name(parsed.form, &body.format)
            .map_err(|e| status_of(DirectoryError::Query(e.into())))?;
        let answer = directory::query_with_deadline(directory, parsed, format)
            .await
            .map_err(status_of)?;
        Ok(Response::new(QueryResponse {
            form: answer.form.name().to_owned(),
            media_type: answer.media_type.to_owned(),
            body: answer.body,
            results: answer.results,
        }))
    }

    async fn r#match(
        &self,
        request: Request<MatchRequest>,
    ) -> Result<Response<MatchResponse>, Status> {
        self.core.admitted(&request).await?;
        let include_offline = request.get_ref().include_offline;
        let constraints = constraints(request.get_ref())?;
        let state = self.core.store.snapshot().await;
        let lease = self.core.heartbeat_interval * LEASE_HEARTBEATS;
        let at = now();
        let liveness = move |cloud: &str| state.liveness(cloud, at, lease);
        let directory = self.directory();
        let query = constraints.to_sparql();
        let (ranking, liveness) = blocking(move || {
            let online = |c: &str| include_offline || matches!(liveness(c), Liveness::Online);
            let ranking = directory.matching(&constraints, &online)?;
            Ok((ranking, liveness))
        })
        .await?;
        let directory = self.directory();
        let version_of = |c: &str| directory.record(c).map_or(0, |r| r.version);
        Ok(Response::new(MatchResponse {
            candidates: ranking
                .candidates
                .iter()
                .map(|c| MatchCandidate {
                    cloud_id: c.cloud_id.clone(),
                    service: c.service.clone(),
                    offer: c.offer.clone().unwrap_or_default(),
                    score: c.score,
                    explanation: c.explanation.clone(),
                    online: liveness(&c.cloud_id) == Liveness::Online,
                    descriptor_version: version_of(&c.cloud_id),
                })
                .collect(),
            left_out: ranking
                .left_out
                .iter()
                .map(|l| LeftOutCloud {
                    cloud_id: l.cloud_id.clone(),
                    reason: match liveness(&l.cloud_id) {
                        Liveness::Offline(why) if l.reason == "offline" => why,
                        _ => l.reason.clone(),
                    },
                })
                .collect(),
            query,
            clouds_considered: u32::try_from(directory.published()).unwrap_or(u32::MAX),
        }))
    }

    type WatchStream = EventStream;

    async fn watch(
        &self,
        request: Request<WatchDirectoryRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.core.admitted(&request).await?;
        let include_current = request.get_ref().include_current;
        let directory = self.directory();
        // Subscribe before reading the current records, so nothing published
        // in between is missed (it may appear twice: CURRENT then PUBLISHED).
        let changes = BroadcastStream::new(directory.subscribe()).map(|item| match item {
            Ok(change) => Ok(event_message(&change)),
            Err(BroadcastStreamRecvError::Lagged(n)) => Err(Status::data_loss(format!(
                "this watcher fell {n} changes behind; watch again with include_current"
            ))),
        });
        let current = if include_current {
            directory.records()
        } else {
            Default::default()
        };
        let at = Some(timestamp(now()));
        let current: Vec<Result<DirectoryEvent, Status>> = current
            .values()
            .map(|info| {
                Ok(DirectoryEvent {
                    kind: EventKind::Current as i32,
                    descriptor: Some(info_message(info)),
                    at,
                    reason: String::new(),
                })
            })
            .collect();
        let stream = tokio_stream::iter(current).chain(changes);
        Ok(Response::new(Box::pin(stream)))
    }
}
