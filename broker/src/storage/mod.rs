//! Storage federation: objects put on n clouds, read back from any live
//! replica, re-replicated when a holder is gone.
//!
//! Map:
//! - [`record`]: pure — object names, the owner's record of replicas,
//!   placement.
//! - [`service`]: [`Storage`] — put, get, list, fetch requests between
//!   owner and holders, the repair loop.

pub mod record;
pub mod service;

pub use service::Storage;
