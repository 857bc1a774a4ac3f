//! A cloud broker: the cloud's identity in the federation and its operator API.
//!
//! Map:
//! - [`config`]: `broker.toml` + `INTERCLOUD_BROKER_*` + flags.
//! - [`identity`]: the certificate, key and bundle under `<data_dir>/identity/`.
//! - [`enrol`]: first start — join token + CSR → certificate.
//! - [`link_state`]: the federation link as pure state (phase, backoff, renewal time).
//! - [`link`]: the driver: register/heartbeat, CRL refresh, renewal.
//! - [`presence`]: presence and negotiation as pure logic — signed
//!   announcements, their verification, the peer table, offers and reservations.
//! - [`directory`]: this cloud's descriptor, published to the root's directory
//!   at join and whenever the file changes (pure state + driver).
//! - [`clock`]: the local clock measured against the root's NTP server
//!   (pure state + driver); never set.
//! - [`core`]: shared state; TLS configurations swapped on renewal and CRL refresh.
//! - [`transfer`]: transfers over AMQP — the link to RabbitMQ, the
//!   receiving engine (staging files, bitmaps, receipts, commit, restart
//!   recovery), the outbox, progress.
//! - [`storage`]: storage federation — put on n clouds, get from a live
//!   replica, re-replication.
//! - [`cloud`]: the local cloud driver — instances, qcow2 disks (qemu-img),
//!   OVF descriptors.
//! - [`mobility`]: workload migration — target, offer, package transfer,
//!   verification and import at the target, release here.
//! - [`workloads`]: the transfer hooks, routed to storage and migration.
//! - [`vnets`]: this cloud's side of the cross-cloud VNets — the root's
//!   watch, the plan, the kernel through netlink.
//! - [`api`]: the `Broker` gRPC service (operators of this cloud only).
//! - [`api_vnets`]: its VNet calls, forwarded to the root's `Networks`
//!   service, and the local side of a VNet.
//! - [`server`]: start-up and serving.

#![forbid(unsafe_code)]

pub mod api;
pub mod api_vnets;
pub mod api_workloads;
pub mod clock;
pub mod cloud;
pub mod config;
pub mod core;
pub mod directory;
pub mod enrol;
pub mod identity;
pub mod link;
pub mod link_state;
pub mod mobility;
pub mod peers;
pub mod presence;
pub mod server;
pub mod storage;
pub mod transfer;
pub mod vnets;
pub mod workloads;
pub mod xmpp;
