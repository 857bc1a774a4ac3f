//! What `intercloud-root` and `intercloud-broker` share as daemons:
//! - [`config`]: a typed configuration from a TOML file, environment
//!   overrides and command-line flags, in that order of precedence (last wins);
//!   errors name the key and the bad value, and mean exit status 64.
//! - [`logging`]: the tracing subscriber (text or JSON lines on stderr).
//! - [`signals`]: a future that completes on SIGINT or SIGTERM.
//! - [`grpc`]: the services every server carries (health, reflection) and
//!   timestamp conversion.

#![forbid(unsafe_code)]

pub mod config;
pub mod logging;
pub mod signals;

/// Exit status for a configuration error (`EX_USAGE` of sysexits.h).
pub const EXIT_CONFIG: i32 = 64;
pub mod grpc;

/// The body of a daemon's `main`: a configuration that failed to load means
/// one line on stderr and exit status 64; otherwise install logging in the
/// configured format, run `serve` on a multi-threaded runtime, and map its
/// result to the exit status (an error is logged with its causes).
pub fn run_daemon<C, E, Fut>(
    name: &str,
    config: Result<C, config::ConfigError>,
    log_format: impl FnOnce(&C) -> logging::LogFormat,
    serve: impl FnOnce(C) -> Fut,
) -> std::process::ExitCode
where
    E: std::fmt::Display,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    use std::process::ExitCode;
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    logging::init(log_format(&config));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
