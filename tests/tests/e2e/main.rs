//! End-to-end tests against real `intercloud-root`, `intercloud-broker` and
//! `intercloudctl` processes on loopback. One test binary, one module per
//! concern.

mod amqp;
mod cli;
mod config;
mod directory;
mod enrolment;
mod lifecycle;
mod migration;
mod presence;
mod presence_attacks;
mod probes;
mod prosody;
mod time;
mod tls;
mod transfer_faults;
mod transfers;
mod vnet_flows;
mod vnets;
mod vnets_root;
