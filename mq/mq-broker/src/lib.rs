//! The broker: RocketMQ 4.x's request processing over our store.
//!
//! Layout, from the bottom up (a module imports only from those above it
//! in this list):
//! - `util`, [`config`], [`metadata`]: the clock and lock helpers,
//!   `broker.conf` keys and roles, and the JSON files under the store's
//!   `config/`.
//! - `manager`: one owner per kind of shared state (topics, subscription
//!   groups, consumer and delay offsets, clients and queue locks,
//!   transaction state, statistics), each keeping its locks inside.
//! - `ha`: master/slave replication (the master's replication server, the
//!   slave's client, SYNC_MASTER waits).
//! - `broker`: the shared state (managers, store, configuration) and the
//!   put path (delay rewrites before the store, the SYNC_MASTER wait).
//! - [`transaction`], `registration`: writing transaction outcomes, and
//!   registering with the name servers.
//! - `tasks`: background step functions (client expiry, offset
//!   persistence, delay delivery, timer messages, transaction check-backs,
//!   the slave's metadata copy).
//! - `processor`: one `match` from request code to a function; one file per
//!   family (send, pull, consumer, query, admin, ...).
//! - `metrics`: the Prometheus metrics, read from the managers at scrape
//!   time (plus request latency histograms).
//! - `startup`: [`BrokerHandle::start`] and shutdown.
//!
//! Data flow of a send: remoting connection → `processor::send` (checks,
//! topic auto-creation, the timer check of `tasks::timer`) → `Broker::put`
//! (rewrites) → `mq_store` (commit log, dispatch to consume queue and index)
//! → the new-message notification wakes held pulls in `processor::pull`.

mod broker;
pub mod config;
mod ha;
mod manager;
pub mod metadata;
mod metrics;
mod processor;
mod registration;
mod startup;
mod tasks;
pub mod transaction;
mod util;

pub use config::{BrokerConfig, BrokerRole};
pub use startup::{BrokerError, BrokerHandle};
