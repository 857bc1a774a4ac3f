//! Shutdown on SIGINT or SIGTERM.

use tokio::signal::unix::{SignalKind, signal};

/// Completes when the process receives SIGINT or SIGTERM.
pub async fn shutdown() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the daemon can only be killed; wait forever.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// One stop signal fanned out to a daemon's tasks: each task awaits its own
/// [`Stop::stopped`] future; [`Stop::run_until`] fires them all.
#[derive(Debug)]
pub struct Stop {
    tx: tokio::sync::watch::Sender<bool>,
}

impl Default for Stop {
    fn default() -> Self {
        Self {
            tx: tokio::sync::watch::channel(false).0,
        }
    }
}

impl Stop {
    /// A signal not yet given.
    pub fn new() -> Self {
        Self::default()
    }

    /// Completes once the stop is given.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }

    /// Runs `work` until it ends by itself or `shutdown` completes; in the
    /// latter case gives the stop and lets `work` drain.
    pub async fn run_until<T>(
        &self,
        work: impl std::future::Future<Output = T>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> T {
        tokio::pin!(work);
        tokio::select! {
            result = &mut work => return result,
            () = shutdown => tracing::info!("shutting down"),
        }
        let _ = self.tx.send(true);
        work.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_stops_every_waiter_and_lets_work_drain() {
        let stop = Stop::new();
        let (a, b) = (stop.stopped(), stop.stopped());
        let work = async move {
            tokio::join!(a, b);
            "drained"
        };
        assert_eq!(stop.run_until(work, async {}).await, "drained");
    }
}
