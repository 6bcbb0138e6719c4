//! The broker.
//!
//! Layout:
//! - [`config`]: `broker.conf` keys, roles, loading a properties file over
//!   every configuration section.
//! - [`metadata`]: topics, subscription groups, consumer and delay offsets,
//!   persisted as RocketMQ's JSON files under the store's `config/` folder.

pub mod config;
pub mod metadata;
