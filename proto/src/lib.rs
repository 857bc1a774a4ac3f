//! The gRPC contract of the Intercloud federation, package `intercloud.v1`.
//!
//! - `federation.proto`: the root's `Enrollment` (join with a token and a CSR)
//!   and `Federation` (register, renew, members, revocations, CRL, join tokens).
//! - `broker.proto`: a broker's operator API, `Broker`.
//! - `network.proto`: the root's VNet registry, `Networks` (VNIs, bindings,
//!   VTEPs, and the watch member brokers build their data plane from).
//!
//! [`FILE_DESCRIPTOR_SET`] feeds gRPC server reflection.

#![allow(clippy::doc_markdown, clippy::derive_partial_eq_without_eq)]

/// Generated messages, clients and servers of `intercloud.v1`.
pub mod v1 {
    tonic::include_proto!("intercloud.v1");
}

/// Encoded `FileDescriptorSet` of every `.proto` in this crate, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("intercloud_descriptor");

pub use prost_types::Timestamp;
