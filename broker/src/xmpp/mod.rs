//! The broker's XMPP side: a thin driver over [`crate::presence`].
//!
//! - [`connector`]: STARTTLS to the federation's XMPP server, verified with the federation CA.
//! - [`driver`]: the task that owns the client: room, announcements, peers, dialog.

pub mod connector;
pub mod driver;
