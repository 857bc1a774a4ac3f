//! `Enrollment`: a new cloud trades a join token and a CSR for its certificate.

use std::sync::Arc;

use intercloud_daemon::grpc::timestamp;
use intercloud_proto::v1::enrollment_server::Enrollment;
use intercloud_proto::v1::{IssuedCertificate, JoinRequest, JoinResponse};
use intercloud_trust::ca::{IssuedCert, SigningRequest};
use intercloud_trust::serve::PeerInfo;
use intercloud_trust::{CloudId, SpiffeId};
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::core::{RootCore, now, status_of};
use crate::state::KnownCert;

/// The enrolment service.
#[derive(Debug, Clone)]
pub struct EnrollmentApi {
    core: Arc<RootCore>,
}

impl EnrollmentApi {
    /// Serves enrolment from `core`.
    pub fn new(core: Arc<RootCore>) -> Self {
        Self { core }
    }

    async fn join(&self, request: JoinRequest) -> Result<(CloudId, IssuedCert), Status> {
        let cloud = CloudId::new(&request.cloud_id)
            .map_err(|e| Status::invalid_argument(format!("cloud_id: {e}")))?;
        let csr = SigningRequest::parse(&request.csr_pem)
            .map_err(|e| Status::invalid_argument(format!("csr_pem: {e}")))?;
        let now = now();
        let core = &self.core;
        core.store
            .read(|s| s.check_token(&request.token, &cloud, now))
            .await
            .map_err(crate::core::refusal)?;
        let expected = SpiffeId::cloud(&core.federation, &cloud);
        if csr.requested != expected {
            return Err(Status::permission_denied(format!(
                "the CSR asks for {} but the token admits {expected}",
                csr.requested
            )));
        }
        let issued = core
            .publisher
            .ca()
            .issue(&csr, &expected, now, core.cert_ttl)
            .map_err(|e| Status::internal(e.to_string()))?;
        let known = KnownCert {
            serial: issued.info.serial.clone(),
            not_after: issued.info.not_after,
        };
        core.store
            .update(|s| {
                s.redeem_token(&request.token, &cloud, known, now)
                    .map(|_| ())
            })
            .await
            .map_err(status_of)?;
        Ok((cloud, issued))
    }
}

/// The certificate message for an issued certificate.
pub fn issued_message(core: &RootCore, issued: &IssuedCert) -> IssuedCertificate {
    IssuedCertificate {
        certificate_pem: issued.cert_pem.clone(),
        trust_bundle_pem: core.publisher.ca().bundle_pem().to_owned(),
        spiffe_id: issued.info.spiffe_id.to_string(),
        serial: issued.info.serial.clone(),
        not_after: Some(timestamp(issued.info.not_after)),
    }
}

#[tonic::async_trait]
impl Enrollment for EnrollmentApi {
    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        let remote = request.extensions().get::<PeerInfo>().map(|p| p.remote);
        let body = request.into_inner();
        let cloud_id = body.cloud_id.clone();
        match self.join(body).await {
            Ok((cloud, issued)) => {
                info!(%cloud, serial = %issued.info.serial, ?remote, "enrolled");
                Ok(Response::new(JoinResponse {
                    certificate: Some(issued_message(&self.core, &issued)),
                    federation: self.core.federation.to_string(),
                }))
            }
            Err(status) => {
                warn!(cloud = %cloud_id, ?remote, code = ?status.code(), reason = status.message(), "enrolment refused");
                Err(status)
            }
        }
    }
}
