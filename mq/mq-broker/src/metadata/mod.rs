//! What the broker remembers besides messages: topics, subscription groups,
//! consumer offsets and delay offsets, each a JSON file under the store's
//! `config/` folder in RocketMQ's format (`topics.json`,
//! `subscriptionGroup.json`, `consumerOffset.json`, `delayOffset.json`), and
//! the timer service's `timerCheckpoint.json`. A slave keeps copies of its
//! master's (`tasks::slave_sync`).

use std::path::PathBuf;

use thiserror::Error;

pub mod groups;
pub mod offsets;
pub mod persist;
pub mod timer;
pub mod topics;

#[derive(Debug, Error)]
pub enum MetadataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}
