//! Why the name server could not start.

use std::path::PathBuf;

use thiserror::Error;

use crate::config::ConfigError;

/// Why the name server could not start.
#[derive(Debug, Error)]
pub enum NamesrvError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot load the KV config from {}: {reason}", path.display())]
    KvConfig { path: PathBuf, reason: String },
}
