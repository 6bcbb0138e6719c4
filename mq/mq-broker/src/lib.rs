//! The broker: RocketMQ 4.x's request processing over our store.
//!
//! Layout:
//! - [`config`]: `broker.conf` keys, roles, loading a properties file over
//!   every configuration section.
//! - [`broker`]: the shared state, [`BrokerHandle::start`] and shutdown, and
//!   the put path (delay and transaction rewrites before the store).
//! - `processor`: one `match` from request code to a function; one file per
//!   family (send, pull, consumer, query, admin).
//! - `transaction`: half messages, END_TRANSACTION and the check service.
//! - `services`: background step functions (registration, client expiry,
//!   offset persistence, delay delivery, transaction checks).
//! - `ha`: master/slave replication (the master's replication server, the
//!   slave's client, SYNC_MASTER waits, the slave's metadata copy).
//! - `clients`, `locks`, [`metadata`]: who is connected, ordered-consumption
//!   queue locks, and the JSON files under the store's `config/`.
//!
//! Data flow of a send: remoting connection → `processor::send` (checks,
//! topic auto-creation) → `Broker::put` (rewrites) → `mq_store` (commit log,
//! dispatch to consume queue and index) → the new-message notification wakes
//! held pulls in `processor::pull`.

pub mod broker;
mod clients;
pub mod config;
mod ha;
mod locks;
pub mod metadata;
mod processor;
mod services;
mod stats;
pub mod transaction;

pub use broker::{BrokerError, BrokerHandle};
pub use config::{BrokerConfig, BrokerRole};
