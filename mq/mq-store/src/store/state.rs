//! The state the store's parts share: [`MessageStore`], the handle the
//! broker holds, and [`Inner`], what that handle shares with the two
//! background threads. Also the consume queue table, and
//! [`Inner::dispatch`], which files one stored message into its consume
//! queue and the index (after an append, a replicated append, or during
//! recovery).

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;

use bytes::BytesMut;
use mq_protocol::name::TopicName;
use tokio::sync::{watch, Notify};

use crate::checkpoint::CheckpointFile;
use crate::commit_log::CommitLog;
use crate::config::MessageStoreConfig;
use crate::consume_queue::{ConsumeQueue, CqEntry};
use crate::dispatch::DispatchRequest;
use crate::error::StoreError;
use crate::index::IndexService;

/// How far the commit log flusher got, for SYNC_FLUSH writers to wait on.
#[derive(Debug, Clone, Copy)]
pub(super) struct FlushProgress {
    pub(super) flushed: u64,
    pub(super) failed: bool,
}

/// The writers' state behind [`Inner::put`]: the encode buffer and the
/// next queue offsets.
pub(super) struct PutState {
    pub(super) buf: BytesMut,
    /// Next queue offset per topic and queue.
    pub(super) offsets: HashMap<String, HashMap<i32, u64>>,
}

impl PutState {
    pub(super) fn next_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.offsets
            .get(topic)
            .and_then(|q| q.get(&queue_id))
            .copied()
            .unwrap_or(0)
    }

    pub(super) fn set_next(&mut self, topic: &str, queue_id: i32, next: u64) {
        match self.offsets.get_mut(topic) {
            Some(q) => {
                let slot = q.entry(queue_id).or_insert(0);
                *slot = (*slot).max(next);
            }
            None => {
                self.offsets
                    .insert(topic.to_owned(), HashMap::from([(queue_id, next)]));
            }
        }
    }
}

pub(super) type Queues = HashMap<String, HashMap<i32, Arc<ConsumeQueue>>>;

/// Everything the [`MessageStore`] handle shares with its background threads.
pub(super) struct Inner {
    pub(super) config: MessageStoreConfig,
    pub(super) delay_levels: Vec<i64>,
    pub(super) delete_hours: Vec<u32>,
    pub(super) commit_log: CommitLog,
    pub(super) queues: RwLock<Queues>,
    pub(super) index: Option<IndexService>,
    pub(super) put: Mutex<PutState>,
    /// Commit log offset up to which messages are dispatched.
    pub(super) dispatched: AtomicU64,
    pub(super) last_store_ts: AtomicI64,
    pub(super) checkpoint: Mutex<CheckpointFile>,
    /// Highest commit log offset a SYNC_FLUSH writer waits for.
    pub(super) flush_requested: Mutex<u64>,
    pub(super) flush_wake: Condvar,
    pub(super) flush_progress: watch::Sender<FlushProgress>,
    pub(super) flush_count: AtomicU64,
    pub(super) flush_latency: super::types::FlushLatency,
    pub(super) messages_put: AtomicU64,
    pub(super) poison: Mutex<Option<(PathBuf, String)>>,
    pub(super) poisoned: AtomicBool,
    pub(super) disk_full: Mutex<Option<(f64, f64)>>,
    pub(super) stopping: AtomicBool,
    pub(super) maintenance_wake: (Mutex<()>, Condvar),
    /// Wakes the warm-up thread (`true`: work asked for).
    pub(super) warm_wake: (Mutex<bool>, Condvar),
    pub(super) notify: Arc<Notify>,
}

/// The broker's message store. See the crate docs for the layout on disk.
///
/// Not `Clone`: share it behind an `Arc`. Dropping it shuts it down cleanly
/// (best effort); call [`shutdown`](Self::shutdown) to see errors.
pub struct MessageStore {
    pub(super) inner: Arc<Inner>,
    pub(super) threads: Mutex<Vec<JoinHandle<()>>>,
    pub(super) lock_file: Mutex<Option<File>>,
    pub(super) shut_down: AtomicBool,
    pub(super) recovery: super::types::RecoveryReport,
}

/// Locks `m`; a panic in another holder does not stop the store (mutex
/// poisoning is ignored).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    pub(super) fn queue(&self, topic: &str, queue_id: i32) -> Option<Arc<ConsumeQueue>> {
        let queues = self.queues.read().unwrap_or_else(|e| e.into_inner());
        queues.get(topic).and_then(|q| q.get(&queue_id)).cloned()
    }

    pub(super) fn queue_or_create(&self, topic: &TopicName, queue_id: i32) -> Arc<ConsumeQueue> {
        if let Some(q) = self.queue(topic.as_str(), queue_id) {
            return q;
        }
        let mut queues = self.queues.write().unwrap_or_else(|e| e.into_inner());
        queues
            .entry(topic.as_str().to_owned())
            .or_default()
            .entry(queue_id)
            .or_insert_with(|| {
                Arc::new(ConsumeQueue::new(
                    &self.config.consume_queue_dir(),
                    topic,
                    queue_id,
                    self.config.consume_queue_segment_bytes(),
                ))
            })
            .clone()
    }

    pub(super) fn all_queues(&self) -> Vec<Arc<ConsumeQueue>> {
        let queues = self.queues.read().unwrap_or_else(|e| e.into_inner());
        queues.values().flat_map(|q| q.values().cloned()).collect()
    }

    /// Builds the consume queue and index entries of one message.
    pub(super) fn dispatch(
        &self,
        req: &DispatchRequest<'_>,
        to_cq: bool,
        to_index: bool,
    ) -> Result<(), StoreError> {
        if to_cq && req.goes_to_consume_queue() {
            let queue_offset = u64::try_from(req.queue_offset).map_err(|_| {
                StoreError::corrupt(
                    self.commit_log.dir(),
                    req.commit_log_offset,
                    "negative QUEUEOFFSET",
                )
            })?;
            // Puts refuse such topics; a record from an older store or a
            // master that did not keeps its commit log entry but gets no
            // consume queue folder.
            // A queue that exists was created from a checked name; only a
            // new one needs the check (and the owned name).
            let queue = match self.queue(req.topic, req.queue_id) {
                Some(queue) => queue,
                None => match TopicName::parse_internal(req.topic) {
                    Ok(topic) => self.queue_or_create(&topic, req.queue_id),
                    Err(error) => {
                        tracing::warn!(offset = req.commit_log_offset, %error, "no consume queue for a message with a bad topic name");
                        return Ok(());
                    }
                },
            };
            queue.put(
                CqEntry {
                    commit_log_offset: req.commit_log_offset,
                    size: req.size,
                    tags_code: req.tags_code,
                },
                queue_offset,
            )?;
            queue.arrivals().notify_waiters();
        }
        if to_index {
            if let Some(ix) = &self.index {
                ix.build(req)?;
            }
        }
        Ok(())
    }
}
