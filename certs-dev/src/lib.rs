//! The development federation PKI, as a library.
//!
//! The `intercloud-certs-dev` binary is the usual way in; the test harness
//! links this crate to issue short-lived XMPP host certificates on the fly.
//!
//! - `pki` builds every certificate, key and the CRL in memory.
//! - `readme` renders the table of files written beside them.
//! - `output` swaps the new directory into place in one rename.
//! - [`generate`] ties those together behind validated [`generate::Options`].
//! - [`xmpp_hosts`] issues per-host server certificates for the XMPP server
//!   under an existing CA (the `xmpp-hosts` subcommand).

pub mod generate;
mod output;
mod pki;
mod readme;
pub mod xmpp_hosts;
