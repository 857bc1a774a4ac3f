//! This cloud's descriptor in the root's directory: the broker publishes the
//! file named by `[directory] descriptor` when it joins and whenever the file
//! changes, and announces the version in force in its presence.
//!
//! Map:
//! - [`inspect`]: the local checks (parse, SHACL shapes) a file passes before
//!   it is sent.
//! - [`state`]: the publication as pure state — when to publish, what to
//!   report, which version is in force.
//! - [`driver`]: the task that reads the file, calls `Directory.Publish` and
//!   logs.

pub mod driver;
pub mod inspect;
pub mod state;

pub use state::{DescriptorState, DescriptorStatus};
