//! The broker's link to the root: register and heartbeat, refresh the CRL,
//! renew the certificate before it expires; on failure, report
//! `root unreachable` and retry with backoff. A thin driver over
//! [`crate::link_state`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use intercloud_proto::v1::federation_client::FederationClient;
use intercloud_proto::v1::{GetCrlRequest, ListMembersRequest, RegisterRequest, RenewRequest};
use intercloud_trust::ca::generate_key_and_csr;
use intercloud_trust::tls::TrustAnchors;
use time::OffsetDateTime;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tracing::{error, info, warn};

use crate::core::BrokerCore;
use crate::identity::{Identity, IdentityStore};
use crate::link_state::{Backoff, Phase, Transition, renewal_time};

/// Runs the link until `stopped` completes.
pub async fn run(
    core: Arc<BrokerCore>,
    store: IdentityStore,
    advertise: String,
    stopped: impl Future<Output = ()>,
) {
    let channel = match intercloud_trust::connect::lazy_channel(
        &core.config.root.api,
        core.client_config(),
    ) {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "cannot set up the channel to the root");
            return;
        }
    };
    let mut link = Link {
        core,
        store,
        advertise,
        client: FederationClient::new(channel),
        crl_due: OffsetDateTime::UNIX_EPOCH,
    };
    let timers = link.core.config.timers.clone();
    let mut backoff = Backoff::new(
        Duration::from_millis(timers.backoff_initial_ms),
        Duration::from_millis(timers.backoff_max_ms),
    );
    let mut heartbeat = Duration::from_secs(timers.heartbeat_seconds);
    if link.core.own_certificate_revoked() {
        let serial = link.core.identity().info.serial.clone();
        link.core.link(|l| {
            l.on_revoked(format!(
                "certificate {serial} is listed in the federation CRL"
            ))
        });
        error!(%serial, "this broker's certificate is revoked; the root will refuse it");
    }
    tokio::pin!(stopped);
    loop {
        let delay = match link.round().await {
            Ok(asked) => {
                backoff.reset();
                if let Some(asked) = asked {
                    heartbeat = asked.min(Duration::from_secs(timers.heartbeat_seconds));
                }
                heartbeat
            }
            Err(status) => {
                if link.failed(&status) == Phase::Revoked {
                    // Learn the CRL that says so, so that a restart knows too.
                    let mut client = link.client.clone();
                    let _ = link.refresh_crl(&mut client).await;
                }
                backoff.next_delay()
            }
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = &mut stopped => return,
        }
    }
}

struct Link {
    core: Arc<BrokerCore>,
    store: IdentityStore,
    advertise: String,
    client: FederationClient<Channel>,
    crl_due: OffsetDateTime,
}

impl Link {
    async fn call<T>(
        &self,
        future: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Status> {
        tokio::time::timeout(self.core.config.timers.root_call_timeout(), future)
            .await
            .map_err(|_| Status::deadline_exceeded("the root did not answer in time"))?
            .map(tonic::Response::into_inner)
    }

    /// One heartbeat: register, then the CRL and renewal when due. Returns
    /// the heartbeat interval the root asked for.
    async fn round(&mut self) -> Result<Option<Duration>, Status> {
        let mut client = self.client.clone();
        let request = RegisterRequest {
            grpc_endpoint: self.advertise.clone(),
            broker_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let registered = self.call(client.register(request)).await?;
        let members = self
            .call(client.list_members(ListMembersRequest {}))
            .await?
            .members
            .len();
        let now = OffsetDateTime::now_utc();
        let transition = self.core.link(|l| {
            l.members = u32::try_from(members).unwrap_or(u32::MAX);
            l.on_registered(now)
        });
        if let Transition::From(before) = transition {
            let since_start = (now - self.core.started_at).as_seconds_f64();
            info!(cloud = %self.core.config.cloud_id, was = before.words(), members, since_start_s = since_start, "federated");
        }
        if now >= self.crl_due {
            self.refresh_crl(&mut client).await?;
            self.crl_due = now + Duration::from_secs(self.core.config.timers.crl_refresh_seconds);
        }
        let identity = self.core.identity();
        if now
            >= renewal_time(
                identity.info.not_before,
                identity.info.not_after,
                self.core.config.timers.renew_at_fraction,
            )
        {
            self.renew(&mut client, &identity).await?;
        }
        Ok(Some(Duration::from_secs(u64::from(
            registered.heartbeat_interval_seconds.max(1),
        ))))
    }

    async fn refresh_crl(&self, client: &mut FederationClient<Channel>) -> Result<(), Status> {
        let crl = self.call(client.get_crl(GetCrlRequest {})).await?;
        let Some(crls) = intercloud_trust::pem::crls_from_pem(crl.crl_pem.as_bytes()) else {
            warn!("the root sent a CRL that does not parse; keeping the previous one");
            return Ok(());
        };
        let anchors = TrustAnchors::from_pem(self.core.identity().bundle_pem.as_bytes())
            .or_else(|_| TrustAnchors::load(&self.core.config.tls.ca_bundle));
        match anchors
            .and_then(|a| a.with_crls(crls))
            .and_then(|a| self.core.replace_anchors(a))
        {
            Ok(()) => {
                tracing::debug!(crl_number = crl.crl_number, "CRL refreshed");
                let cache = crate::server::crl_cache(&self.core.config);
                if std::fs::read_to_string(&cache).ok().as_deref() != Some(crl.crl_pem.as_str())
                    && let Err(e) = intercloud_trust::files::write_atomically(
                        &cache,
                        crl.crl_pem.as_bytes(),
                        0o644,
                    )
                {
                    warn!(error = %e, path = %cache.display(), "cannot cache the CRL");
                }
            }
            Err(e) => warn!(error = %e, "cannot apply the root's CRL; keeping the previous one"),
        }
        Ok(())
    }

    async fn renew(
        &self,
        client: &mut FederationClient<Channel>,
        current: &Identity,
    ) -> Result<(), Status> {
        let (key_pem, csr_pem) = generate_key_and_csr(&self.core.spiffe_id)
            .map_err(|e| Status::internal(e.to_string()))?;
        let answer = self.call(client.renew(RenewRequest { csr_pem })).await?;
        let Some(cert) = answer.certificate else {
            warn!("the root answered a renewal without a certificate");
            return Ok(());
        };
        let identity = match Identity::from_pem(
            &cert.certificate_pem,
            &key_pem,
            &cert.trust_bundle_pem,
            self.store.dir(),
        ) {
            Ok(i) if i.info.spiffe_id == self.core.spiffe_id => i,
            Ok(i) => {
                warn!(got = %i.info.spiffe_id, "the root renewed a certificate for someone else; ignoring it");
                return Ok(());
            }
            Err(e) => {
                warn!(error = %e, "the renewed certificate is unusable; keeping the current one");
                return Ok(());
            }
        };
        if let Err(e) = self
            .store
            .save(&cert.certificate_pem, &key_pem, &cert.trust_bundle_pem)
        {
            error!(error = %e, "cannot save the renewed certificate; keeping the current one");
            return Ok(());
        }
        let (serial, not_after) = (identity.info.serial.clone(), identity.info.not_after);
        match self.core.replace_identity(identity) {
            Ok(()) => {
                info!(previous = %current.info.serial, %serial, %not_after, "certificate renewed")
            }
            Err(e) => error!(error = %e, "renewed certificate saved but not usable for TLS"),
        }
        Ok(())
    }

    /// Records a failed round; returns the phase it leads to.
    fn failed(&self, status: &Status) -> Phase {
        let chain = intercloud_trust::connect::error_chain(status);
        // The root says so per request (PERMISSION_DENIED "… is revoked"), or,
        // on a new connection, its TLS layer answers with a
        // certificate_revoked alert.
        let revoked = (status.code() == Code::PermissionDenied
            && status.message().contains("revoked"))
            || chain.contains("CertificateRevoked")
            || self.core.own_certificate_revoked();
        let message = if chain.is_empty() {
            format!("{:?}", status.code())
        } else {
            chain
        };
        let transition = self.core.link(|l| {
            if revoked {
                l.on_revoked(message.clone())
            } else {
                l.on_root_unreachable(message.clone())
            }
        });
        let phase = self.core.link(|l| l.phase);
        if let Transition::From(before) = transition {
            match phase {
                Phase::Revoked => error!(error = %message, "the root says this cloud is revoked"),
                _ => {
                    warn!(root = %self.core.config.root.api, was = before.words(), error = %message, "root unreachable; retrying with backoff")
                }
            }
        }
        phase
    }
}
