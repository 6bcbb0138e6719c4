//! The one test harness of the message queue's crates and of the shop's
//! tests: a name server and brokers running in this process, on port 0,
//! with small store files under a temporary folder.
//!
//! Layout:
//! - [`NameServer`] and [`TestBroker`] start the servers; a broker start
//!   returns only once its name servers list it, so nothing after it races
//!   the first registration. [`broker_configs`] are the settings, which each
//!   caller adjusts with a closure.
//! - [`Cluster`] is a name server plus one broker.
//! - [`frames`] speaks to them request by request with our own remoting
//!   client (sends, pulls, heartbeats, offsets, routes).
//! - [`wait`] waits for conditions, not for time.

mod broker;
mod cluster;
pub mod frames;
mod namesrv;
pub mod wait;

pub use broker::{broker_configs, TestBroker};
pub use cluster::Cluster;
pub use namesrv::NameServer;
pub use wait::{bounded, wait_explained, wait_for, wait_for_within, wait_until, WAIT};
