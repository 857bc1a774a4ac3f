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
