//! The store's one error type. Every variant that comes from a file names the
//! file, and every variant about bytes on disk names the offset.

use std::io;
use std::path::PathBuf;

use mq_protocol::ProtocolError;

use crate::config::ConfigError;

/// Everything the store can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (or another `MessageStore` in this one) holds the store.
    #[error("store is locked by another opener: {path}")]
    Locked { path: PathBuf },

    /// An operating system call on a store file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A store file holds bytes that recovery cannot make sense of (outside the
    /// torn tail that recovery drops on its own).
    #[error("corrupt store file {path} at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// The encoded message is larger than `maxMessageSize`; nothing was written.
    #[error("message of {size} bytes exceeds maxMessageSize {max}")]
    MessageTooLarge { size: usize, max: usize },

    /// The message cannot be encoded in RocketMQ's format (topic or
    /// properties too long); nothing was written.
    #[error("message cannot be stored: {0}")]
    InvalidMessage(#[from] ProtocolError),

    /// The message breaks a rule of the store (a NUL byte in its topic or
    /// properties, which recovery relies on to spot torn records); nothing
    /// was written.
    #[error("message refused: {reason}")]
    IllegalMessage { reason: String },

    /// Disk usage is above `diskMaxUsedSpaceRatio` or
    /// `diskSpaceWarningLevelRatio`; writes are refused until the cleaner
    /// frees space.
    #[error("disk usage {used_ratio:.3} of {path} is above the limit {limit:.3}; writes refused")]
    DiskFull {
        path: PathBuf,
        used_ratio: f64,
        limit: f64,
    },

    /// A flush failed earlier. The page cache may have dropped the dirty
    /// pages, so the store refuses to pretend anything is durable.
    #[error("store poisoned: flushing {path} failed: {reason}")]
    Poisoned { path: PathBuf, reason: String },

    /// `shutdown` was called.
    #[error("store is shut down")]
    ShutDown,

    /// `append_raw` was given an offset other than the commit log's end.
    #[error("replicated bytes start at {offset} but the commit log ends at {expected}")]
    OffsetMismatch { offset: u64, expected: u64 },

    /// `append_raw` was given bytes that are not whole valid records.
    #[error("replicated bytes at commit log offset {offset} are invalid: {reason}")]
    InvalidReplica { offset: u64, reason: String },

    /// The configuration cannot work (for example a segment smaller than a message).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        StoreError::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}

/// Adds a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::io(path, e))
    }
}
