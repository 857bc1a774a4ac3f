//! First start: trade the join token and a fresh CSR for a certificate.

use std::time::Duration;

use intercloud_proto::v1::JoinRequest;
use intercloud_proto::v1::enrollment_client::EnrollmentClient;
use intercloud_trust::SpiffeId;
use intercloud_trust::ca::generate_key_and_csr;
use intercloud_trust::tls::{TrustAnchors, client_config};
use tonic::Code;
use tracing::{info, warn};

use crate::config::BrokerConfig;
use crate::identity::{Identity, IdentityStore};
use crate::link_state::Backoff;

/// Why enrolment failed for good.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrolError {
    /// The root refused the request; retrying with the same token is pointless.
    #[error("the root refused enrolment ({code}): {message}")]
    Refused {
        /// gRPC code in words.
        code: String,
        /// The root's reason.
        message: String,
    },
    /// The answer was not a usable certificate for this cloud.
    #[error("the root's answer is unusable: {0}")]
    BadAnswer(String),
    /// Local trouble (keys, files, TLS configuration).
    #[error("{0}")]
    Local(String),
}

/// Enrols with `token`, retrying while the root is unreachable, and saves the
/// identity. Returns when enrolled or refused.
pub async fn enrol(
    config: &BrokerConfig,
    anchors: &TrustAnchors,
    token: &str,
    store: &IdentityStore,
) -> Result<Identity, EnrolError> {
    let me = SpiffeId::cloud(&config.federation, &config.cloud_id);
    let tls = client_config(anchors, SpiffeId::root(&config.federation), None)
        .map_err(|e| EnrolError::Local(e.to_string()))?;
    let mut backoff = Backoff::new(
        Duration::from_millis(config.timers.backoff_initial_ms),
        Duration::from_millis(config.timers.backoff_max_ms),
    );
    let (key_pem, csr_pem) =
        generate_key_and_csr(&me).map_err(|e| EnrolError::Local(e.to_string()))?;
    loop {
        let attempt = async {
            let channel = intercloud_trust::connect::channel(&config.root.enroll, tls.clone())
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let mut client = EnrollmentClient::new(channel);
            let request = JoinRequest {
                cloud_id: config.cloud_id.to_string(),
                token: token.to_owned(),
                csr_pem: csr_pem.clone(),
            };
            tokio::time::timeout(config.timers.root_call_timeout(), client.join(request))
                .await
                .map_err(|_| tonic::Status::deadline_exceeded("the root did not answer in time"))?
        };
        match attempt.await {
            Ok(response) => {
                let certificate = response
                    .into_inner()
                    .certificate
                    .ok_or_else(|| EnrolError::BadAnswer("no certificate".into()))?;
                let identity = Identity::from_pem(
                    &certificate.certificate_pem,
                    &key_pem,
                    &certificate.trust_bundle_pem,
                    store.dir(),
                )
                .map_err(|e| EnrolError::BadAnswer(e.to_string()))?;
                if identity.info.spiffe_id != me {
                    return Err(EnrolError::BadAnswer(format!(
                        "certificate is for {}, not {me}",
                        identity.info.spiffe_id
                    )));
                }
                store
                    .save(
                        &certificate.certificate_pem,
                        &key_pem,
                        &certificate.trust_bundle_pem,
                    )
                    .map_err(|e| EnrolError::Local(e.to_string()))?;
                info!(spiffe_id = %me, serial = %identity.info.serial, "enrolled");
                return Ok(identity);
            }
            Err(status)
                if matches!(
                    status.code(),
                    Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Internal
                ) =>
            {
                let delay = backoff.next_delay();
                warn!(root = %config.root.enroll, error = status.message(), retry_in = ?delay, "root unreachable for enrolment");
                tokio::time::sleep(delay).await;
            }
            Err(status) => {
                return Err(EnrolError::Refused {
                    code: format!("{:?}", status.code()),
                    message: status.message().to_owned(),
                });
            }
        }
    }
}
