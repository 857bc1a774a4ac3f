//! The root's registry of cross-cloud virtual networks (VNets), served as
//! `intercloud.v1.Networks` on the mutual-TLS API port.
//!
//! The rules themselves (VNI allocation, overlap within a tenant, IPAM,
//! bindings, security domains and flow rules, Mirror VNets) are
//! `intercloud-vnet`'s; this module adds who may do what, the VTEPs,
//! persistence and the watch brokers build their data plane from.
//!
//! - [`args`]: request fields parsed into checked types.
//! - [`error`]: [`NetworkError`], why a request was refused.
//! - [`state`]: the registry, allocator, bindings, VTEPs, domain owners and
//!   flow rules, mirrors and their swap; pure logic with `now` passed in,
//!   every change reported as a [`state::Event`].
//! - [`store`]: `<data_dir>/networks.json`, written atomically before a
//!   change is visible, and the broadcast of changes.
//! - [`convert`]: views as `intercloud.v1` messages.
//! - [`watch`]: `WatchVnets`, snapshot (VNets, then the agreed rules) then
//!   changes, resnapshot on lag.
//! - [`api`]: the gRPC service and the mapping of refusals to codes.

pub mod api;
pub mod args;
pub mod convert;
pub mod error;
pub mod state;
pub mod store;
pub mod watch;

pub use api::NetworksApi;
pub use error::NetworkError;
pub use store::NetworkStore;
