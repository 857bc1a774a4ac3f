//! `intercloud-root`: parse the configuration (exit 64 when it is bad),
//! bind, serve until SIGINT/SIGTERM, drain.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use intercloud_daemon::logging::LogFormat;
use intercloud_root::config::{ListenOverrides, Overrides, RootConfig};
use intercloud_root::server::{Listeners, Root};
use tracing::info;

/// The Intercloud Root: federation CA, enrolment, membership and revocation.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML).
    #[arg(
        long,
        env = "INTERCLOUD_ROOT_CONFIG",
        default_value = "/etc/intercloud/root.toml"
    )]
    config: PathBuf,
    /// Overrides `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Overrides `federation`.
    #[arg(long)]
    federation: Option<String>,
    /// Overrides `listen.api`.
    #[arg(long)]
    listen_api: Option<String>,
    /// Overrides `listen.enroll`.
    #[arg(long)]
    listen_enroll: Option<String>,
    /// Overrides `log_format` (text or json).
    #[arg(long)]
    log_format: Option<LogFormat>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let overrides = Overrides {
        data_dir: args.data_dir,
        federation: args.federation,
        log_format: args.log_format,
        listen: ListenOverrides {
            api: args.listen_api,
            enroll: args.listen_enroll,
        },
    };
    intercloud_daemon::run_daemon(
        "intercloud-root",
        RootConfig::load(&args.config, &overrides),
        |c| c.log_format,
        run,
    )
}

async fn run(config: RootConfig) -> anyhow::Result<()> {
    let root = Root::start(&config).await?;
    let listeners = Listeners::bind(&config).await?;
    let endpoints = listeners.endpoints_json();
    intercloud_trust::files::write_atomically(
        &config.data_dir.join("endpoints.json"),
        endpoints.to_string().as_bytes(),
        0o644,
    )?;
    info!(federation = %config.federation, api = %endpoints["api"], enroll = %endpoints["enroll"], "intercloud-root listening");
    root.serve(listeners, intercloud_daemon::signals::shutdown())
        .await?;
    info!("stopped");
    Ok(())
}
