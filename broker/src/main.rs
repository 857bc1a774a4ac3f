//! `intercloud-broker`: parse the configuration (exit 64 when it is bad),
//! resolve the identity, serve until SIGINT/SIGTERM, drain.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use intercloud_broker::config::{BrokerConfig, ListenOverride, Overrides, TokenOverride};
use intercloud_broker::core::BrokerCore;
use intercloud_broker::server;
use intercloud_daemon::logging::LogFormat;
use tracing::info;

/// A cloud broker of the Intercloud federation.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML).
    #[arg(
        long,
        env = "INTERCLOUD_BROKER_CONFIG",
        default_value = "/etc/intercloud/broker.toml"
    )]
    config: PathBuf,
    /// Overrides `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Overrides `cloud_id`.
    #[arg(long)]
    cloud_id: Option<String>,
    /// Overrides `listen.api`.
    #[arg(long)]
    listen_api: Option<String>,
    /// Overrides `enrollment.token`.
    #[arg(long)]
    join_token: Option<String>,
    /// Overrides `log_format` (text or json).
    #[arg(long)]
    log_format: Option<LogFormat>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let overrides = Overrides {
        data_dir: args.data_dir,
        cloud_id: args.cloud_id,
        log_format: args.log_format,
        listen: args.listen_api.map(|api| ListenOverride { api }),
        enrollment: args.join_token.map(|token| TokenOverride { token }),
    };
    intercloud_daemon::run_daemon(
        "intercloud-broker",
        BrokerConfig::load(&args.config, &overrides),
        |c| c.log_format,
        run,
    )
}

async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| anyhow::anyhow!("data_dir {}: {e}", config.data_dir.display()))?;
    let anchors = server::trust_anchors(&config)?;
    let identity = tokio::select! {
        identity = server::resolve_identity(&config, &anchors) => identity?,
        () = intercloud_daemon::signals::shutdown() => return Ok(()),
    };
    server::check_identity(&config, &identity)?;
    let listener = tokio::net::TcpListener::bind(config.listen.api)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen.api))?;
    let bound = listener.local_addr()?.to_string();
    let advertise = config
        .listen
        .advertise
        .clone()
        .unwrap_or_else(|| bound.clone());
    intercloud_trust::files::write_atomically(
        &config.data_dir.join("endpoints.json"),
        serde_json::json!({ "api": bound }).to_string().as_bytes(),
        0o644,
    )?;
    info!(cloud = %config.cloud_id, api = %bound, root = %config.root.api, "intercloud-broker listening");
    let core = Arc::new(BrokerCore::new(config, identity, anchors)?);
    server::serve(
        core,
        listener,
        advertise,
        intercloud_daemon::signals::shutdown(),
    )
    .await?;
    info!("stopped");
    Ok(())
}
