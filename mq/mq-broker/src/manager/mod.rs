//! The broker's shared state, one owner per kind of state. Each manager
//! keeps its lock (or locks) private and offers methods, so that no caller
//! holds two of them by accident and each critical section is in one place:
//! - `topics`, RocketMQ's `TopicConfigManager`;
//! - `groups`, `SubscriptionGroupManager`;
//! - `offsets`, `ConsumerOffsetManager` and the delay offsets of the
//!   schedule service;
//! - `clients`, connected producers and consumers and their queue locks
//!   (`locks`);
//! - `transactions`, outcomes and check counts of half messages;
//! - `stats`, put and get counters (`BrokerStatsManager`).
//!
//! Managers know the metadata files and the store, never the request
//! processors or the background tasks.

pub(crate) mod clients;
pub(crate) mod groups;
pub(crate) mod locks;
pub(crate) mod offsets;
pub(crate) mod stats;
pub(crate) mod topics;
pub(crate) mod transactions;
