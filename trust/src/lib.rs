//! Federation identity and the mutual-TLS plumbing that root, broker and CLI share.
//!
//! Map of the crate:
//! - [`identity`]: cloud ids, the federation domain and SPIFFE-style identities
//!   (`spiffe://<federation>/cloud/<id>`, `…/root`, `…/operator/<cloud>/<name>`).
//! - [`cert`]: reading certificates (serial, validity, fingerprint, the SPIFFE
//!   URI SAN) with x509-parser. Authorization reads the URI SAN, never the CN.
//! - [`ca`]: the federation CA's operations: issue a certificate from a CSR,
//!   sign a CRL; and the requester's side: key + CSR generation.
//! - [`pem`]: loading PEM files.
//! - [`tls`]: rustls configurations whose verifiers check the chain, the CRL
//!   and a SPIFFE policy (who may connect, whom we expect to reach).
//! - [`serve`]: an accept loop that performs TLS handshakes and hands tonic
//!   streams carrying the peer's verified identity; it logs every refusal.
//! - [`connect`]: a tonic `Channel` over our own TLS client configuration.
//! - [`files`]: atomic, durable file replacement.

#![forbid(unsafe_code)]

pub mod ca;
pub mod cert;
pub mod connect;
pub mod files;
pub mod identity;
pub mod pem;
pub mod serve;
pub mod tls;

pub use identity::{CloudId, FederationDomain, OperatorScope, SpiffeId};
