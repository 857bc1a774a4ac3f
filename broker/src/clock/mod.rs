//! This broker's clock, measured against the root's NTP server (`[clock]
//! ntp_server`): the offset, delay and jitter operators see in
//! `Broker.Status`, and one log line per change of health. The broker only
//! measures; it never sets the system clock.
//!
//! Map:
//! - [`state`]: the measurement as pure state — when to poll, what a
//!   datagram means, Kiss-o'-Death back-off, the health verdict, the status.
//! - [`driver`]: the task that owns the UDP socket, reads the clocks, sends
//!   and receives, and logs.

pub mod driver;
pub mod state;

pub use state::{ClockHealth, ClockStatus};
