//! `WatchVnets`: a snapshot of the VNets a caller may see and of the agreed
//! flow rules touching their domains, then their changes; a fresh snapshot
//! whenever the watcher falls behind the broadcast, so it never silently
//! misses a change.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use intercloud_proto::v1::VnetEvent;
use intercloud_trust::cert::CertInfo;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::{Instrument as _, debug, info, info_span};

use super::convert::{change_event, policies_event, snapshot_end, snapshot_event};
use super::state::{Event, Viewer};
use super::store::{NetworkStore, Subscription};
use crate::core::{RootCore, now};

/// Events queued for one watcher before its task waits for the client.
const QUEUE: usize = 64;

/// Whether the watcher may still watch: the error ends its stream.
pub type Admission =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), Status>> + Send>> + Send + Sync>;

/// Starts a watcher's task and returns its stream. The task ends when the
/// client goes away, or with PERMISSION_DENIED when the caller is revoked
/// (checked on every event and every heartbeat interval).
pub fn watch(
    core: Arc<RootCore>,
    networks: Arc<NetworkStore>,
    caller: CertInfo,
    viewer: Viewer,
) -> ReceiverStream<Result<VnetEvent, Status>> {
    let span = info_span!("watch_vnets", caller = %caller.spiffe_id);
    let recheck = core.heartbeat_interval;
    let admitted: Admission = Arc::new(move || {
        let (core, caller) = (core.clone(), caller.clone());
        Box::pin(async move { core.not_revoked(&caller).await })
    });
    spawn(networks, viewer, admitted, recheck, QUEUE, span)
}

/// Starts the task of a watcher seeing what `viewer` may see, re-checking
/// `admitted` every `recheck` and before every event, with `queue` events
/// buffered towards the client.
pub fn spawn(
    networks: Arc<NetworkStore>,
    viewer: Viewer,
    admitted: Admission,
    recheck: Duration,
    queue: usize,
    span: tracing::Span,
) -> ReceiverStream<Result<VnetEvent, Status>> {
    let (tx, rx) = mpsc::channel(queue.max(1));
    tokio::spawn(run(networks, viewer, admitted, recheck, tx).instrument(span));
    ReceiverStream::new(rx)
}

type Sender = mpsc::Sender<Result<VnetEvent, Status>>;

async fn run(
    networks: Arc<NetworkStore>,
    viewer: Viewer,
    admitted: Admission,
    recheck: Duration,
    tx: Sender,
) {
    let mut recheck = tokio::time::interval(recheck);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let Subscription {
            snapshot,
            policies,
            revision,
            mut changes,
        } = networks.subscribe(&viewer).await;
        let at = now();
        debug!(
            vnets = snapshot.len(),
            policies = policies.len(),
            revision,
            "sending snapshot"
        );
        for view in &snapshot {
            if tx
                .send(Ok(snapshot_event(view, revision, at)))
                .await
                .is_err()
            {
                return;
            }
        }
        if tx
            .send(Ok(policies_event(&policies, revision, at)))
            .await
            .is_err()
        {
            return;
        }
        if tx.send(Ok(snapshot_end(revision, at))).await.is_err() {
            return;
        }
        // The rules last sent: a policy event that leaves the watcher's
        // share unchanged (a rule or VNet it does not see) is not sent.
        let mut sent = policies;
        loop {
            tokio::select! {
                () = tx.closed() => return,
                _ = recheck.tick() => {
                    if !still_admitted(&admitted, &tx).await {
                        return;
                    }
                }
                received = changes.recv() => match received {
                    Ok(event) => {
                        let message = match &*event {
                            Event::Vnet(change) => {
                                if !viewer.sees(&change.vnet.record) {
                                    continue;
                                }
                                change_event(change)
                            }
                            Event::Policies(change) => {
                                let policies = change.agreed.visible_to(&viewer);
                                if policies == sent {
                                    continue;
                                }
                                let message = policies_event(&policies, change.revision, change.at);
                                sent = policies;
                                message
                            }
                        };
                        if !still_admitted(&admitted, &tx).await {
                            return;
                        }
                        if tx.send(Ok(message)).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        info!(missed, "watcher fell behind; sending a fresh snapshot");
                        break;
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }
}

/// Whether the caller is still in good standing; if not, tells it why.
async fn still_admitted(admitted: &Admission, tx: &Sender) -> bool {
    match admitted().await {
        Ok(()) => true,
        Err(status) => {
            info!(reason = %status.message(), "watcher revoked; ending its stream");
            let _ = tx.send(Err(status)).await;
            false
        }
    }
}

#[cfg(test)]
mod tests;
