//! The broker's storage engine, compatible with Apache RocketMQ 4.x's store
//! layout. No network code.
//!
//! Layout on disk (paths are the `MessageStoreConfig` defaults):
//! ```text
//! <root>/lock                                 exclusive lock (flock) while open
//! <root>/abort                                exists while open: a crash leaves it behind
//! <root>/checkpoint                           flushed points (see `checkpoint` module docs)
//! <root>/commitlog/00000000000000000000       commit log segments, named by start offset
//! <root>/consumequeue/<topic>/<queueId>/<20-digit byte position>   20-byte entries
//! <root>/index/<yyyyMMddHHmmssSSS>            hash index files
//! ```
//!
//! Parts and data flow:
//! - `commit_log`: every message, RocketMQ-encoded (`mq_protocol::MessageRecord`),
//!   appended to mapped segments; a blank record fills a segment's end.
//! - `dispatch`: parses a stored record into what consume queues and index
//!   need. [`MessageStore`] runs it right after each append (a message is
//!   readable when `put_message` returns), during recovery, and for a
//!   slave's replicated bytes.
//! - `consume_queue`: per topic/queue entries `[offset:8][size:4][tagsCode:8]`.
//! - `index`: `topic#key` hash chains for KEYS and UNIQ_KEY queries.
//! - `checkpoint`, `lock`, `abort`: recovery bookkeeping. On open the commit
//!   log is validated from the last flushed point (magic, sizes, CRC,
//!   PHYSICALOFFSET), a torn tail is zeroed, consume queue and index entries
//!   past the valid end are dropped, and what they lack is re-dispatched.
//! - `store`: [`MessageStore`], the API the broker calls, a folder with a
//!   module per job: recovery on open, append, replication, flush (group
//!   commit, [`FlushDiskType`], poisoning), retention (the cleaner,
//!   [`MessageStore::clean_step`]) and reads.
//! - `mmap`: the only module with `unsafe` (mappings, fallocate, statvfs,
//!   localtime_r).

mod checkpoint;
mod commit_log;
pub mod config;
mod consume_queue;
mod dispatch;
mod error;
mod index;
mod mmap;
mod store;

pub use config::{ConfigError, FlushDiskType, MessageStoreConfig};
pub use consume_queue::CqEntry;
pub use dispatch::{java_string_hash, tags_code, SCHEDULE_TOPIC};
pub use error::StoreError;
pub use store::{
    CleanOutcome, GetMessageResult, GetMessageStatus, MessageStore, PutMessage, PutResult,
    PutStatus, RecoveryReport, StoreStats, FLUSH_LATENCY_BOUNDS_MS,
};
