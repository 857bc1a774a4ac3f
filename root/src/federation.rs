//! `Federation`: registration, renewal, membership, revocation, the CRL and
//! join tokens, over mutual TLS.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use intercloud_daemon::grpc::{timestamp, timestamp_opt};
use intercloud_proto::v1::federation_server::Federation;
use intercloud_proto::v1::{
    CreateJoinTokenRequest, CreateJoinTokenResponse, GetCrlRequest, GetCrlResponse,
    GetMemberRequest, ListMembersRequest, ListMembersResponse, ListRevocationsRequest,
    ListRevocationsResponse, Member as MemberMsg, MemberState as MemberStateMsg, RegisterRequest,
    RegisterResponse, RenewRequest, RenewResponse, Revocation as RevocationMsg, RevokeRequest,
    RevokeResponse,
};
use intercloud_trust::ca::SigningRequest;
use intercloud_trust::{CloudId, SpiffeId};
use tonic::{Request, Response, Status};
use tracing::{error, info, warn};

use crate::authz;
use crate::core::{RootCore, now, refusal, status_of};
use crate::enrollment::issued_message;
use crate::networks::NetworkStore;
use crate::state::{FederationError, KnownCert, Member, MemberState, Revocation};

/// The federation service.
#[derive(Debug, Clone)]
pub struct FederationApi {
    core: Arc<RootCore>,
    networks: Arc<NetworkStore>,
}

impl FederationApi {
    /// Serves the federation from `core`; a revocation also takes the
    /// cloud's VTEP out of `networks`.
    pub fn new(core: Arc<RootCore>, networks: Arc<NetworkStore>) -> Self {
        Self { core, networks }
    }
}

/// Heartbeat intervals of silence after which an active member is reported inactive.
const SILENT_HEARTBEATS: u32 = 3;

fn member_message(core: &RootCore, m: &Member) -> MemberMsg {
    let current = m.current_certificate();
    MemberMsg {
        cloud_id: m.cloud.to_string(),
        spiffe_id: SpiffeId::cloud(&core.federation, &m.cloud).to_string(),
        state: match m.state {
            MemberState::Enrolled => MemberStateMsg::Enrolled,
            MemberState::Active
                if m.is_silent(now(), core.heartbeat_interval * SILENT_HEARTBEATS) =>
            {
                MemberStateMsg::Inactive
            }
            MemberState::Active => MemberStateMsg::Active,
            MemberState::Revoked => MemberStateMsg::Revoked,
        } as i32,
        grpc_endpoint: m.endpoint.clone(),
        joined_at: Some(timestamp(m.joined_at)),
        last_seen: timestamp_opt(m.last_seen),
        certificate_serial: current.map(|c| c.serial.clone()).unwrap_or_default(),
        certificate_not_after: current.map(|c| timestamp(c.not_after)),
        broker_version: m.broker_version.clone(),
    }
}

fn revocation_message(r: &Revocation) -> RevocationMsg {
    RevocationMsg {
        serial: r.serial.clone(),
        cloud_id: r
            .cloud
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        reason: r.reason.clone(),
        revoked_at: Some(timestamp(r.revoked_at)),
    }
}

fn cloud_arg(field: &str, value: &str) -> Result<CloudId, Status> {
    CloudId::new(value).map_err(|e| Status::invalid_argument(format!("{field}: {e}")))
}

#[tonic::async_trait]
impl Federation for FederationApi {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let caller = self.core.admitted(&request).await?;
        let cloud = authz::broker(caller, "Register")?.clone();
        let presented = KnownCert {
            serial: caller.serial.clone(),
            not_after: caller.not_after,
        };
        let body = request.get_ref();
        if body.grpc_endpoint.len() > 255 || body.broker_version.len() > 64 {
            return Err(Status::invalid_argument(
                "grpc_endpoint (max 255) or broker_version (max 64) too long",
            ));
        }
        let now = now();
        let store = &self.core.store;
        let changes = store
            .read(|s| {
                s.registration_changes(
                    &cloud,
                    &presented.serial,
                    &body.grpc_endpoint,
                    &body.broker_version,
                )
            })
            .await;
        let member = if changes {
            let member = store
                .update(|s| {
                    s.register(
                        &cloud,
                        presented,
                        &body.grpc_endpoint,
                        &body.broker_version,
                        now,
                    )
                    .cloned()
                })
                .await
                .map_err(status_of)?;
            info!(%cloud, endpoint = %body.grpc_endpoint, serial = %caller.serial, "registered");
            member
        } else {
            let mut member = None;
            store
                .touch(|s| {
                    if let Some(m) = s.members.get_mut(&cloud) {
                        m.last_seen = Some(now);
                        member = Some(m.clone());
                    }
                })
                .await;
            member.ok_or_else(|| refusal(FederationError::UnknownMember(cloud.clone())))?
        };
        Ok(Response::new(RegisterResponse {
            member: Some(member_message(&self.core, &member)),
            heartbeat_interval_seconds: u32::try_from(self.core.heartbeat_interval.as_secs())
                .unwrap_or(u32::MAX),
        }))
    }

    async fn renew(
        &self,
        request: Request<RenewRequest>,
    ) -> Result<Response<RenewResponse>, Status> {
        let caller = self.core.admitted(&request).await?;
        let cloud = authz::broker(caller, "Renew")?.clone();
        let csr = SigningRequest::parse(&request.get_ref().csr_pem)
            .map_err(|e| Status::invalid_argument(format!("csr_pem: {e}")))?;
        if csr.requested != caller.spiffe_id {
            return Err(Status::permission_denied(format!(
                "the CSR asks for {} but the caller is {}",
                csr.requested, caller.spiffe_id
            )));
        }
        let now = now();
        let issued = self
            .core
            .publisher
            .ca()
            .issue(&csr, &caller.spiffe_id, now, self.core.cert_ttl)
            .map_err(|e| Status::internal(e.to_string()))?;
        let known = KnownCert {
            serial: issued.info.serial.clone(),
            not_after: issued.info.not_after,
        };
        self.core
            .store
            .update(|s| s.record_renewal(&cloud, known))
            .await
            .map_err(status_of)?;
        info!(%cloud, serial = %issued.info.serial, previous = %caller.serial, "renewed");
        Ok(Response::new(RenewResponse {
            certificate: Some(issued_message(&self.core, &issued)),
        }))
    }

    async fn list_members(
        &self,
        request: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        self.core.admitted(&request).await?;
        let members = self
            .core
            .store
            .read(|s| {
                s.members
                    .values()
                    .map(|m| member_message(&self.core, m))
                    .collect()
            })
            .await;
        Ok(Response::new(ListMembersResponse { members }))
    }

    async fn get_member(
        &self,
        request: Request<GetMemberRequest>,
    ) -> Result<Response<MemberMsg>, Status> {
        self.core.admitted(&request).await?;
        let cloud = cloud_arg("cloud_id", &request.get_ref().cloud_id)?;
        self.core
            .store
            .read(|s| s.members.get(&cloud).map(|m| member_message(&self.core, m)))
            .await
            .map(Response::new)
            .ok_or_else(|| refusal(FederationError::UnknownMember(cloud)))
    }

    async fn list_revocations(
        &self,
        request: Request<ListRevocationsRequest>,
    ) -> Result<Response<ListRevocationsResponse>, Status> {
        self.core.admitted(&request).await?;
        let imported = self
            .core
            .publisher
            .imported()
            .iter()
            .map(|r| RevocationMsg {
                serial: r.serial.clone(),
                cloud_id: String::new(),
                reason: "imported CRL (tls.import_crls)".to_owned(),
                revoked_at: Some(timestamp(r.revoked_at)),
            });
        let mut revocations: Vec<RevocationMsg> = imported.collect();
        self.core
            .store
            .read(|s| revocations.extend(s.revocations.iter().map(revocation_message)))
            .await;
        Ok(Response::new(ListRevocationsResponse {
            revocations,
            crl_number: self.core.publisher.current().number,
        }))
    }

    async fn get_crl(
        &self,
        request: Request<GetCrlRequest>,
    ) -> Result<Response<GetCrlResponse>, Status> {
        // The CRL is public: a revoked caller may learn that it is revoked.
        authz::caller(&request)?;
        let crl = self.core.publisher.current();
        Ok(Response::new(GetCrlResponse {
            crl_pem: crl.pem.clone(),
            crl_number: crl.number,
            next_update: Some(timestamp(crl.next_update)),
        }))
    }

    async fn create_join_token(
        &self,
        request: Request<CreateJoinTokenRequest>,
    ) -> Result<Response<CreateJoinTokenResponse>, Status> {
        let caller = self.core.admitted(&request).await?;
        authz::root_operator(caller, "CreateJoinToken")?;
        let operator = caller.spiffe_id.to_string();
        let body = request.get_ref();
        let cloud = cloud_arg("cloud_id", &body.cloud_id)?;
        let (default_ttl, max_ttl) = self.core.token_ttl;
        let ttl = match body.ttl_seconds {
            0 => default_ttl,
            s if u64::from(s) > max_ttl.as_secs() => {
                return Err(refusal(FederationError::BadTokenTtl {
                    asked: u64::from(s),
                    max: max_ttl.as_secs(),
                }));
            }
            s => Duration::from_secs(u64::from(s)),
        };
        let secret: [u8; 32] = rand::random();
        let token = format!(
            "ict1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        let record = self
            .core
            .store
            .update(|s| s.create_token(&cloud, &token, ttl, now()))
            .await
            .map_err(status_of)?;
        info!(%cloud, %operator, expires_at = %record.expires_at, "join token created");
        Ok(Response::new(CreateJoinTokenResponse {
            token,
            cloud_id: cloud.to_string(),
            expires_at: Some(timestamp(record.expires_at)),
            ca_fingerprint: self.core.publisher.ca().fingerprint(),
        }))
    }

    async fn revoke(
        &self,
        request: Request<RevokeRequest>,
    ) -> Result<Response<RevokeResponse>, Status> {
        let caller = self.core.admitted(&request).await?;
        authz::root_operator(caller, "Revoke")?;
        let operator = caller.spiffe_id.to_string();
        let body = request.get_ref();
        let cloud = cloud_arg("cloud_id", &body.cloud_id)?;
        let reason = if body.reason.is_empty() {
            format!("revoked by {operator}")
        } else {
            body.reason.clone()
        };
        let now = now();
        let revoked = self
            .core
            .store
            .update(|s| s.revoke(&cloud, &reason, now))
            .await
            .map_err(status_of)?;
        let snapshot = self.core.store.snapshot().await;
        let crl = self.core.publisher.publish(&snapshot, now).map_err(|e| {
            error!(%cloud, error = %e, "revocation persisted but the CRL could not be re-signed");
            Status::internal(format!(
                "revocation recorded, but the CRL could not be re-signed: {e}"
            ))
        })?;
        warn!(%cloud, %operator, %reason, serials = revoked.len(), crl_number = crl.number, "cloud revoked");
        // Nothing more is sent to its VTEP: the other members' brokers drop
        // it from their VNets' flooding and forwarding entries.
        match intercloud_vnet::CloudId::new(cloud.as_str()) {
            Ok(id) => match self.networks.update(|s| s.forget_vtep(&id, now)).await {
                Ok(true) => info!(%cloud, "VTEP forgotten: cloud revoked"),
                Ok(false) => {}
                Err(e) => error!(%cloud, error = %e, "revoked cloud's VTEP could not be forgotten"),
            },
            Err(e) => error!(%cloud, error = %e, "revoked cloud's VTEP could not be forgotten"),
        }
        let directory = self.core.directory.clone();
        let (id, why) = (cloud.to_string(), format!("revoked: {reason}"));
        match tokio::task::spawn_blocking(move || directory.withdraw(&id, &why, now)).await {
            Ok(Ok(_)) => info!(%cloud, "descriptor withdrawn from the directory: cloud revoked"),
            Ok(Err(crate::directory::DirectoryError::NotPublished(_))) => {}
            Ok(Err(e)) => {
                error!(%cloud, error = %e, "revoked cloud's descriptor could not be withdrawn")
            }
            Err(e) => {
                error!(%cloud, error = %e, "revoked cloud's descriptor could not be withdrawn")
            }
        }
        Ok(Response::new(RevokeResponse {
            revoked: revoked.iter().map(revocation_message).collect(),
            crl_number: crl.number,
        }))
    }
}
