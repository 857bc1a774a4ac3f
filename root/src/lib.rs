//! The Intercloud Root: the federation's trust anchor.
//!
//! Map:
//! - [`config`]: `root.toml` + `INTERCLOUD_ROOT_*` + flags.
//! - [`state`]: members, join tokens, revocations — pure logic with `now` passed in.
//! - [`store`]: persists the state atomically after each accepted change.
//! - [`crl`]: signs the CRL and keeps the API port's TLS verifier in step.
//! - [`authz`]: per-method rules on top of the TLS layer's identity check.
//! - [`directory`]: the service directory (oxigraph on RocksDB), its queries and matching.
//! - [`enrollment`], [`federation`]: the gRPC services.
//! - [`networks`]: the VNet registry (`Networks`): VNIs, address overlap,
//!   bindings and VTEPs in `<data_dir>/networks.json`, and the watch member
//!   brokers build their side of each VNet from.
//! - [`clock`], [`ntp_server`], [`time_api`]: the federation's time source:
//!   what the root says of its clock, the NTP server thread (UDP, `listen.ntp`),
//!   and `Time.Now` for clients that cannot use UDP.
//! - [`server`]: loads everything and serves the two ports:
//!   `listen.api` (mutual TLS) and `listen.enroll` (server-authenticated TLS,
//!   where a join token stands in for the missing client certificate).

#![forbid(unsafe_code)]

pub mod authz;
pub mod clock;
pub mod config;
pub mod core;
pub mod crl;
pub mod directory;
pub mod directory_api;
pub mod enrollment;
pub mod federation;
pub mod networks;
pub mod ntp_server;
pub mod server;
pub mod sparql_http;
pub mod state;
pub mod store;
pub mod time_api;
