//! [`MessageStore`]: the public face of the store. It owns the commit log,
//! the consume queues and the index, serialises writers, dispatches each
//! message right after appending it, waits for flushes under SYNC_FLUSH, and
//! runs two background threads (commit log flusher; consume queue / index /
//! checkpoint flusher plus cleaner).

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mq_protocol::message::{encode_message_id, sys_flag};
use mq_protocol::{MessageExt, MessageRecord};
use tokio::sync::{watch, Notify};

use crate::checkpoint::{Checkpoint, CheckpointFile};
use crate::commit_log::CommitLog;
use crate::config::{FlushDiskType, MessageStoreConfig};
use crate::consume_queue::{ConsumeQueue, CqEntry};
use crate::dispatch::{is_blank, parse_exact, store_timestamp_of, DispatchRequest, BLANK_HEADER};
use crate::error::{IoContext, StoreError};
use crate::index::{now_ms, IndexService};
use crate::mmap::{disk_usage_ratio, fsync_dir, local_hour};

/// A message to store, as the broker has it from a SEND_MESSAGE request.
#[derive(Debug, Clone)]
pub struct PutMessage {
    pub topic: String,
    pub queue_id: i32,
    pub flag: i32,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: Bytes,
    /// Properties already encoded as `name\u0001value\u0002...`.
    pub properties: String,
}

impl PutMessage {
    fn record(
        &self,
        queue_offset: u64,
        commit_log_offset: u64,
        store_timestamp: i64,
    ) -> MessageRecord<'_> {
        MessageRecord {
            topic: &self.topic,
            queue_id: self.queue_id,
            flag: self.flag,
            queue_offset: queue_offset as i64,
            commit_log_offset: commit_log_offset as i64,
            sys_flag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            born_host: self.born_host,
            store_timestamp,
            store_host: self.store_host,
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: self.prepared_transaction_offset,
            body: &self.body,
            properties: &self.properties,
        }
    }
}

/// Outcome of a put that wrote the message (RocketMQ's PutMessageStatus
/// values that keep the data; refusals are [`StoreError`]s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutStatus {
    /// PUT_OK: written, and durable if SYNC_FLUSH.
    PutOk,
    /// FLUSH_DISK_TIMEOUT: written (and readable) but the SYNC_FLUSH flush did
    /// not finish within `syncFlushTimeout`; it stays queued.
    FlushDiskTimeout,
    /// FLUSH_SLAVE_TIMEOUT: written on a SYNC_MASTER, but no slave confirmed
    /// the bytes within `syncFlushTimeout` (the broker sets this, not the
    /// store).
    FlushSlaveTimeout,
    /// SLAVE_NOT_AVAILABLE: written on a SYNC_MASTER that has no slave
    /// connected, or one too far behind to wait for (set by the broker).
    SlaveNotAvailable,
}

/// What a put wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    pub status: PutStatus,
    /// The offset message id (store host + commit log offset, hex).
    pub msg_id: String,
    pub wrote_offset: u64,
    pub wrote_bytes: usize,
    pub queue_offset: u64,
    pub store_timestamp: i64,
}

/// RocketMQ's GetMessageStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetMessageStatus {
    Found,
    NoMatchedMessage,
    MessageWasRemoving,
    OffsetFoundNull,
    OffsetOverflowBadly,
    OffsetOverflowOne,
    OffsetTooSmall,
    NoMatchedLogicQueue,
    NoMessageInQueue,
}

/// Messages pulled from one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMessageResult {
    pub status: GetMessageStatus,
    /// Each message's stored bytes, as PULL_MESSAGE sends them.
    pub messages: Vec<Bytes>,
    /// Queue offset the consumer should ask for next.
    pub next_begin_offset: u64,
    pub min_offset: u64,
    pub max_offset: u64,
    /// Commit log offset of the last entry looked at (for slave-read advice).
    pub max_phy_offset_pulling: u64,
}

/// Result of one cleaner step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanOutcome {
    /// Deleted this many files (commit log, consume queue and index).
    Worked {
        deleted_files: usize,
    },
    Idle,
}

/// Counters for monitoring and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Commit log flushes that wrote something (one per group commit).
    pub commit_log_flushes: u64,
    /// Messages appended (put or replicated).
    pub messages_put: u64,
}

#[derive(Debug, Clone, Copy)]
struct FlushProgress {
    flushed: u64,
    failed: bool,
}

struct PutState {
    buf: BytesMut,
    /// Next queue offset per topic and queue.
    offsets: HashMap<String, HashMap<i32, u64>>,
}

impl PutState {
    fn next_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.offsets
            .get(topic)
            .and_then(|q| q.get(&queue_id))
            .copied()
            .unwrap_or(0)
    }

    fn set_next(&mut self, topic: &str, queue_id: i32, next: u64) {
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

/// Pause without new appends after which a SYNC_FLUSH group is complete.
const GROUP_COMMIT_QUIET: Duration = Duration::from_micros(50);
/// Longest a SYNC_FLUSH flush waits for its group to fill (RocketMQ's
/// GroupCommitService waits up to 10 ms between rounds).
const GROUP_COMMIT_MAX_WAIT: Duration = Duration::from_millis(1);

type Queues = HashMap<String, HashMap<i32, Arc<ConsumeQueue>>>;

struct Inner {
    config: MessageStoreConfig,
    delay_levels: Vec<i64>,
    delete_hours: Vec<u32>,
    commit_log: CommitLog,
    queues: RwLock<Queues>,
    index: Option<IndexService>,
    put: Mutex<PutState>,
    /// Commit log offset up to which messages are dispatched.
    dispatched: AtomicU64,
    last_store_ts: AtomicI64,
    checkpoint: Mutex<CheckpointFile>,
    /// Highest commit log offset a SYNC_FLUSH writer waits for.
    flush_requested: Mutex<u64>,
    flush_wake: Condvar,
    flush_progress: watch::Sender<FlushProgress>,
    flush_count: AtomicU64,
    messages_put: AtomicU64,
    poison: Mutex<Option<(PathBuf, String)>>,
    poisoned: AtomicBool,
    disk_full: Mutex<Option<(f64, f64)>>,
    stopping: AtomicBool,
    maintenance_wake: (Mutex<()>, Condvar),
    notify: Arc<Notify>,
}

/// The broker's message store. See the crate docs for the layout on disk.
///
/// Not `Clone`: share it behind an `Arc`. Dropping it shuts it down cleanly
/// (best effort); call [`shutdown`](Self::shutdown) to see errors.
pub struct MessageStore {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    lock_file: Mutex<Option<File>>,
    shut_down: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MessageStore {
    /// Opens (creating) the store at `config`'s paths, recovering after a
    /// crash, and starts the background flusher and cleaner threads.
    pub fn open(config: MessageStoreConfig) -> Result<MessageStore, StoreError> {
        config.validate()?;
        let delay_levels = config.delay_levels()?;
        let delete_hours = config.delete_hours()?;
        let root = config.store_path_root_dir.clone();
        std::fs::create_dir_all(&root).at(&root)?;

        let lock_path = config.lock_path();
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .at(&lock_path)?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked { path: lock_path })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::io(&lock_path, e)),
        }

        let abort_path = config.abort_path();
        let crashed = abort_path.exists();
        let started = Instant::now();
        let (cp_file, cp) = CheckpointFile::open(&config.checkpoint_path())?;

        // 1. Commit log: find the valid end.
        let mut commit_log =
            CommitLog::load(&config.commit_log_dir(), config.maped_file_size_commit_log)?;
        let scan_from = cp.map_or(0, |c| c.commit_log_flushed);
        let end = commit_log.recover(scan_from, config.check_crc_on_recover, &delay_levels)?;
        let commit_min = commit_log.min_offset();

        // 2. Consume queues: drop entries past the end.
        let cq_root = config.consume_queue_dir();
        std::fs::create_dir_all(&cq_root).at(&cq_root)?;
        let seg_bytes = config.consume_queue_segment_bytes();
        let mut queues: Queues = HashMap::new();
        let mut cq_end: Option<u64> = None;
        for topic_entry in std::fs::read_dir(&cq_root).at(&cq_root)? {
            let topic_entry = topic_entry.at(&cq_root)?;
            let topic_path = topic_entry.path();
            if !topic_path.is_dir() {
                tracing::warn!(path = %topic_path.display(), "ignoring stray file in consume queue folder");
                continue;
            }
            let topic = topic_entry.file_name().to_string_lossy().into_owned();
            for q_entry in std::fs::read_dir(&topic_path).at(&topic_path)? {
                let q_entry = q_entry.at(&topic_path)?;
                let Some(queue_id) = q_entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<i32>().ok())
                else {
                    tracing::warn!(path = %q_entry.path().display(), "ignoring stray entry in consume queue folder");
                    continue;
                };
                let mut cq = ConsumeQueue::load(&cq_root, &topic, queue_id, seg_bytes)?;
                cq.truncate_after(end)?;
                if let Some(e) = cq.last_entry_end() {
                    cq_end = Some(cq_end.map_or(e, |m| m.max(e)));
                }
                cq.correct_min_offset(commit_min);
                queues
                    .entry(topic.clone())
                    .or_default()
                    .insert(queue_id, Arc::new(cq));
            }
        }
        let cq_start = match cq_end {
            // No consume queue at all (deleted, or never written): rebuild everything.
            None => commit_min,
            Some(e) => e
                .min(cp.map_or(commit_min, |c| c.logics_flushed))
                .min(end)
                .max(commit_min),
        };

        // 3. Index: drop files that may hold entries past the flushed point.
        let mut index = if config.message_index_enable {
            Some(IndexService::load(
                &config.index_dir(),
                config.max_hash_slot_num,
                config.max_index_num,
            )?)
        } else {
            None
        };
        let idx_start = match &mut index {
            Some(ix) => ix
                .truncate_for_recovery(cp.map_or(0, |c| c.index_flushed).min(end))?
                .max(commit_min),
            None => end,
        };

        let (flush_progress, _) = watch::channel(FlushProgress {
            flushed: end,
            failed: false,
        });
        let inner = Arc::new(Inner {
            delay_levels,
            delete_hours,
            commit_log,
            queues: RwLock::new(queues),
            index,
            put: Mutex::new(PutState {
                buf: BytesMut::with_capacity(64 * 1024),
                offsets: HashMap::new(),
            }),
            dispatched: AtomicU64::new(end),
            last_store_ts: AtomicI64::new(cp.map_or(0, |c| c.physic_msg_timestamp)),
            checkpoint: Mutex::new(cp_file),
            flush_requested: Mutex::new(end),
            flush_wake: Condvar::new(),
            flush_progress,
            flush_count: AtomicU64::new(0),
            messages_put: AtomicU64::new(0),
            poison: Mutex::new(None),
            poisoned: AtomicBool::new(false),
            disk_full: Mutex::new(None),
            stopping: AtomicBool::new(false),
            maintenance_wake: (Mutex::new(()), Condvar::new()),
            notify: Arc::new(Notify::new()),
            config,
        });

        // 4. Re-dispatch what the consume queues and index lack.
        let from = cq_start.min(idx_start);
        let redispatched = inner.redispatch(from, end, cq_start, idx_start)?;
        {
            let mut st = lock(&inner.put);
            for (topic, qs) in inner
                .queues
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
            {
                for (qid, cq) in qs {
                    st.set_next(topic, *qid, cq.max_offset());
                }
            }
        }

        // 5. Make the recovered state durable, then mark the store open.
        inner.flush_logics(true)?;
        File::create(&abort_path)
            .and_then(|f| f.sync_all())
            .at(&abort_path)?;
        if let Some(dir) = abort_path.parent() {
            fsync_dir(dir)?;
        }
        tracing::info!(
            root = %root.display(),
            crashed,
            commit_log_min = commit_min,
            commit_log_end = end,
            redispatched_from = from,
            redispatched,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "message store opened"
        );

        let store = MessageStore {
            threads: Mutex::new(Vec::new()),
            lock_file: Mutex::new(Some(lock_file)),
            shut_down: AtomicBool::new(false),
            inner,
        };
        store.start_threads()?;
        Ok(store)
    }

    fn start_threads(&self) -> Result<(), StoreError> {
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(f)
                .map_err(|e| StoreError::io(&self.inner.config.store_path_root_dir, e))
        };
        let a = self.inner.clone();
        let flusher = spawn("mq-store-flush", Box::new(move || a.commit_log_flusher()))?;
        let b = self.inner.clone();
        let maintenance = spawn("mq-store-maint", Box::new(move || b.maintenance()))?;
        lock(&self.threads).extend([flusher, maintenance]);
        Ok(())
    }

    /// Appends one message; under SYNC_FLUSH returns once it is durable (or
    /// after `syncFlushTimeout` with [`PutStatus::FlushDiskTimeout`]).
    pub async fn put_message(&self, msg: PutMessage) -> Result<PutResult, StoreError> {
        let (mut results, end) = self.inner.append(std::slice::from_ref(&msg))?;
        let status = self.inner.wait_flush(end).await?;
        let mut r = results.pop().expect("one message, one result");
        r.status = status;
        Ok(r)
    }

    /// Appends a batch under one lock (consecutive queue offsets for messages
    /// of one queue) and waits for one flush. Every message's size is checked
    /// before anything is written.
    pub async fn put_messages(&self, msgs: &[PutMessage]) -> Result<Vec<PutResult>, StoreError> {
        let (mut results, end) = self.inner.append(msgs)?;
        let status = self.inner.wait_flush(end).await?;
        for r in &mut results {
            r.status = status;
        }
        Ok(results)
    }

    /// Pulls up to `max_count` messages (and about `max_bytes`) from a queue,
    /// starting at queue offset `offset`, keeping those whose tagsCode
    /// passes `filter`. Statuses and next offsets follow RocketMQ's
    /// `DefaultMessageStore.getMessage`.
    pub fn get_message(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_count: usize,
        max_bytes: usize,
        filter: &dyn Fn(i64) -> bool,
    ) -> GetMessageResult {
        self.inner
            .get_message(topic, queue_id, offset, max_count, max_bytes, filter)
    }

    /// One past the last queue offset of a queue (0 if it does not exist).
    pub fn max_offset_in_queue(&self, topic: &str, queue_id: i32) -> u64 {
        self.inner
            .queue(topic, queue_id)
            .map_or(0, |q| q.max_offset())
    }

    /// First queue offset whose message is still stored (0 if none).
    pub fn min_offset_in_queue(&self, topic: &str, queue_id: i32) -> u64 {
        self.inner
            .queue(topic, queue_id)
            .map_or(0, |q| q.min_offset())
    }

    /// First queue offset whose message was stored at or after `timestamp`
    /// (ms); the max offset if every message is older, 0 for no queue.
    pub fn offset_by_timestamp(&self, topic: &str, queue_id: i32, timestamp: i64) -> u64 {
        self.inner.offset_by_timestamp(topic, queue_id, timestamp)
    }

    /// The message stored at commit log offset `phys`, if any.
    pub fn look_message_by_offset(&self, phys: u64) -> Option<MessageExt> {
        let size = self.inner.commit_log.record_size_at(phys)?;
        let bytes = self.inner.commit_log.read(phys, size)?;
        if is_blank(&bytes) {
            return None;
        }
        MessageExt::decode(&bytes, false).ok().map(|(m, _)| m)
    }

    /// The raw stored bytes of the message at `phys` with TOTALSIZE `size`.
    pub fn get_message_bytes(&self, phys: u64, size: usize) -> Option<Bytes> {
        self.inner.commit_log.read(phys, size)
    }

    /// Commit log offsets indexed under `topic#key` (a KEYS entry or the
    /// UNIQ_KEY) stored between `begin` and `end` ms, newest first. Index
    /// entries are hashes: an offset may belong to another key with the same
    /// hash; [`query_message`](Self::query_message) checks.
    pub fn query_message_offsets(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin: i64,
        end: i64,
    ) -> Vec<u64> {
        match &self.inner.index {
            Some(ix) => ix.query(topic, key, max, begin, end),
            None => Vec::new(),
        }
    }

    /// The messages of `topic` whose KEYS or UNIQ_KEY is `key`, stored
    /// between `begin` and `end` ms, newest first, at most `max`.
    pub fn query_message(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin: i64,
        end: i64,
    ) -> Vec<MessageExt> {
        self.query_message_offsets(topic, key, max, begin, end)
            .into_iter()
            .filter_map(|phys| self.look_message_by_offset(phys))
            .filter(|m| {
                m.topic == topic && (m.keys().contains(&key) || m.property("UNIQ_KEY") == Some(key))
            })
            .collect()
    }

    /// First commit log byte still stored.
    pub fn commit_log_min_offset(&self) -> u64 {
        self.inner.commit_log.min_offset()
    }

    /// One past the last commit log byte written.
    pub fn commit_log_max_offset(&self) -> u64 {
        self.inner.commit_log.max_offset()
    }

    /// Commit log offset below which everything is flushed to disk.
    pub fn flushed_offset(&self) -> u64 {
        self.inner.commit_log.flushed_offset()
    }

    /// Every topic with consume queues, and its queue ids (sorted).
    pub fn topics_and_queues(&self) -> BTreeMap<String, Vec<i32>> {
        let queues = self.inner.queues.read().unwrap_or_else(|e| e.into_inner());
        queues
            .iter()
            .map(|(t, qs)| {
                let mut ids: Vec<i32> = qs.keys().copied().collect();
                ids.sort_unstable();
                (t.clone(), ids)
            })
            .collect()
    }

    /// Deletes a topic's consume queues (its messages stay in the commit log
    /// until retention removes them). Returns whether the topic had any.
    pub fn delete_topic(&self, topic: &str) -> Result<bool, StoreError> {
        let mut st = lock(&self.inner.put);
        st.offsets.remove(topic);
        let removed = self
            .inner
            .queues
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(topic);
        let Some(qs) = removed else {
            return Ok(false);
        };
        for cq in qs.values() {
            cq.destroy()?;
        }
        let dir = self.inner.config.consume_queue_dir().join(topic);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&dir, e)),
        }
        fsync_dir(&self.inner.config.consume_queue_dir())?;
        Ok(true)
    }

    /// Raw commit log bytes from `from_offset` for a slave: whole records
    /// only, never past the end of a segment or of the written data, at most
    /// `max_bytes` (the first record whole even if larger). `None` when
    /// there is nothing at `from_offset`.
    pub fn read_commit_log(&self, from_offset: u64, max_bytes: usize) -> Option<Bytes> {
        self.inner.commit_log.read_records(from_offset, max_bytes)
    }

    /// Whether a record starts at commit log offset `offset`, or it is the
    /// end of the written data (the master checks a slave's offset with this
    /// before sending from there).
    pub fn is_record_boundary(&self, offset: u64) -> bool {
        self.inner.commit_log.is_record_boundary(offset)
    }

    /// A slave appends bytes read from its master's
    /// [`read_commit_log`](Self::read_commit_log). `offset` must equal
    /// [`commit_log_max_offset`](Self::commit_log_max_offset) (on an empty
    /// store: a segment boundary). Each record is validated (magic, sizes,
    /// CRC, PHYSICALOFFSET) and dispatched; on an invalid record, the records
    /// before it stay appended and the error says where it stopped. Waits
    /// for the flush under SYNC_FLUSH.
    pub async fn append_raw(&self, offset: u64, bytes: &[u8]) -> Result<PutStatus, StoreError> {
        let end = self.inner.append_raw(offset, bytes)?;
        self.inner.wait_flush(end).await
    }

    /// Notified (`notify_waiters`) whenever messages are dispatched. For
    /// long polling: create the `notified()` future, then re-check the queue,
    /// then await it.
    pub fn new_message_notify(&self) -> Arc<Notify> {
        self.inner.notify.clone()
    }

    /// One step of the cleaner at wall time `now_ms` with the commit log's
    /// disk at `disk_ratio` (0.0-1.0) used. Deletes commit log files older
    /// than `fileReservedTime` at a `deleteWhen` hour, or at any hour when
    /// the disk is above `diskMaxUsedSpaceRatio` (then the oldest file even
    /// if not expired); never the segment being written. Then removes
    /// consume queue and index files whose messages are all gone, and sets or
    /// clears the disk-full refusal of writes.
    pub fn clean_step(&self, now_ms: i64, disk_ratio: f64) -> Result<CleanOutcome, StoreError> {
        self.inner.clean_step(now_ms, disk_ratio)
    }

    /// Flush and message counters.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            commit_log_flushes: self.inner.flush_count.load(Ordering::Acquire),
            messages_put: self.inner.messages_put.load(Ordering::Acquire),
        }
    }

    /// Flushes the commit log now (whatever the flush mode).
    pub fn flush(&self) -> Result<u64, StoreError> {
        self.inner.flush_commit_log()
    }

    /// Clean shutdown: stops the background threads, flushes everything,
    /// writes the checkpoint, removes the `abort` file and releases the lock.
    /// Later calls on the store fail with [`StoreError::ShutDown`].
    pub fn shutdown(&self) -> Result<(), StoreError> {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let inner = &self.inner;
        inner.stopping.store(true, Ordering::Release);
        {
            let _g = lock(&inner.flush_requested);
            inner.flush_wake.notify_all();
        }
        {
            let _g = lock(&inner.maintenance_wake.0);
            inner.maintenance_wake.1.notify_all();
        }
        for t in lock(&self.threads).drain(..) {
            let _ = t.join();
        }
        // Wait for in-flight puts.
        let _st = lock(&inner.put);
        let result = inner
            .flush_commit_log()
            .and_then(|_| inner.flush_logics(false));
        let result = result.and_then(|()| inner.check_poison());
        if result.is_ok() {
            let abort = inner.config.abort_path();
            match std::fs::remove_file(&abort) {
                Ok(()) => {
                    if let Some(dir) = abort.parent() {
                        fsync_dir(dir)?;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&abort, e)),
            }
        }
        // Dropping the file releases the lock.
        lock(&self.lock_file).take();
        result
    }
}

impl Drop for MessageStore {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "message store shutdown on drop failed");
        }
    }
}

impl Inner {
    fn check_poison(&self) -> Result<(), StoreError> {
        if self.poisoned.load(Ordering::Acquire) {
            let (path, reason) = lock(&self.poison).clone().unwrap_or_default();
            return Err(StoreError::Poisoned { path, reason });
        }
        Ok(())
    }

    fn set_poison(&self, err: &StoreError) {
        let path = match err {
            StoreError::Io { path, .. } | StoreError::Corrupt { path, .. } => path.clone(),
            _ => self.config.store_path_root_dir.clone(),
        };
        tracing::error!(error = %err, "flush failed; store poisoned");
        lock(&self.poison).get_or_insert((path, err.to_string()));
        self.poisoned.store(true, Ordering::Release);
        self.flush_progress.send_modify(|p| p.failed = true);
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(StoreError::ShutDown);
        }
        self.check_poison()?;
        if let Some((used_ratio, limit)) = *lock(&self.disk_full) {
            return Err(StoreError::DiskFull {
                path: self.commit_log.dir().to_owned(),
                used_ratio,
                limit,
            });
        }
        Ok(())
    }

    fn queue(&self, topic: &str, queue_id: i32) -> Option<Arc<ConsumeQueue>> {
        let queues = self.queues.read().unwrap_or_else(|e| e.into_inner());
        queues.get(topic).and_then(|q| q.get(&queue_id)).cloned()
    }

    fn queue_or_create(&self, topic: &str, queue_id: i32) -> Arc<ConsumeQueue> {
        if let Some(q) = self.queue(topic, queue_id) {
            return q;
        }
        let mut queues = self.queues.write().unwrap_or_else(|e| e.into_inner());
        queues
            .entry(topic.to_owned())
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

    fn all_queues(&self) -> Vec<Arc<ConsumeQueue>> {
        let queues = self.queues.read().unwrap_or_else(|e| e.into_inner());
        queues.values().flat_map(|q| q.values().cloned()).collect()
    }

    /// Builds the consume queue and index entries of one message.
    fn dispatch(
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
            self.queue_or_create(req.topic, req.queue_id).put(
                CqEntry {
                    commit_log_offset: req.commit_log_offset,
                    size: req.size,
                    tags_code: req.tags_code,
                },
                queue_offset,
            )?;
        }
        if to_index {
            if let Some(ix) = &self.index {
                ix.build(req)?;
            }
        }
        Ok(())
    }

    /// Recovery: dispatches the records in `[from, end)`; consume queue
    /// entries from `cq_start`, index entries from `idx_start`.
    fn redispatch(
        &self,
        from: u64,
        end: u64,
        cq_start: u64,
        idx_start: u64,
    ) -> Result<u64, StoreError> {
        let mut pos = from;
        let mut count = 0u64;
        while pos < end {
            let size = self.commit_log.record_size_at(pos).ok_or_else(|| {
                StoreError::corrupt(self.commit_log.dir(), pos, "no whole record to re-dispatch")
            })?;
            let dispatched = self.commit_log.with_bytes(pos, size, |rec| {
                if is_blank(rec) {
                    return Ok(());
                }
                let req = parse_exact(rec, pos, false, &self.delay_levels)
                    .map_err(|reason| StoreError::corrupt(self.commit_log.dir(), pos, reason))?;
                count += 1;
                self.dispatch(&req, pos >= cq_start, pos >= idx_start)
            });
            dispatched.ok_or_else(|| {
                StoreError::corrupt(self.commit_log.dir(), pos, "record vanished")
            })??;
            pos += size as u64;
        }
        Ok(count)
    }

    fn append(&self, msgs: &[PutMessage]) -> Result<(Vec<PutResult>, u64), StoreError> {
        self.check_writable()?;
        for m in msgs {
            let record = m.record(0, 0, 0);
            record.validate()?;
            if m.topic.contains('\0') || m.properties.contains('\0') {
                return Err(StoreError::IllegalMessage {
                    reason: "NUL byte in topic or properties".into(),
                });
            }
            let size = record.encoded_len();
            if size > self.config.max_message_size {
                return Err(StoreError::MessageTooLarge {
                    size,
                    max: self.config.max_message_size,
                });
            }
        }
        let mut results = Vec::with_capacity(msgs.len());
        let mut st = lock(&self.put);
        // Re-check under the lock: shutdown takes it before its final flush.
        self.check_writable()?;
        let store_timestamp = now_ms();
        let mut end = self.commit_log.max_offset();
        for m in msgs {
            let counted = matches!(
                sys_flag::transaction_type(m.sys_flag),
                sys_flag::TRANSACTION_NOT_TYPE | sys_flag::TRANSACTION_COMMIT_TYPE
            );
            let queue_offset = if counted {
                st.next_offset(&m.topic, m.queue_id)
            } else {
                0
            };
            let size = m.record(0, 0, 0).encoded_len();
            let seg = self.commit_log.segment_for_append(size)?;
            let phys = seg.end_written();
            let record = m.record(queue_offset, phys, store_timestamp);
            let PutState { buf, .. } = &mut *st;
            buf.clear();
            record.encode(buf)?;
            seg.file.append(buf).ok_or_else(|| {
                StoreError::corrupt(seg.file.path(), phys, "message does not fit in its segment")
            })?;
            end = phys + size as u64;
            if counted {
                st.set_next(&m.topic, m.queue_id, queue_offset + 1);
            }
            let req = parse_exact(&st.buf, phys, false, &self.delay_levels)
                .map_err(|reason| StoreError::corrupt(seg.file.path(), phys, reason))?;
            self.dispatch(&req, true, true)?;
            self.dispatched.store(end, Ordering::Release);
            results.push(PutResult {
                status: PutStatus::PutOk,
                msg_id: encode_message_id(m.store_host, phys as i64),
                wrote_offset: phys,
                wrote_bytes: size,
                queue_offset,
                store_timestamp,
            });
        }
        self.last_store_ts.store(store_timestamp, Ordering::Release);
        self.messages_put
            .fetch_add(msgs.len() as u64, Ordering::AcqRel);
        drop(st);
        self.notify.notify_waiters();
        Ok((results, end))
    }

    fn append_raw(&self, offset: u64, bytes: &[u8]) -> Result<u64, StoreError> {
        self.check_writable()?;
        let mut st = lock(&self.put);
        self.check_writable()?;
        let seg_size = self.commit_log.segment_size();
        if self.commit_log.segments().is_empty() {
            if !offset.is_multiple_of(seg_size) {
                return Err(StoreError::OffsetMismatch {
                    offset,
                    expected: offset - offset % seg_size,
                });
            }
            self.commit_log.new_segment(offset)?;
        }
        let expected = self.commit_log.max_offset();
        if offset != expected {
            return Err(StoreError::OffsetMismatch { offset, expected });
        }
        let invalid = |at: u64, reason: String| StoreError::InvalidReplica { offset: at, reason };
        let mut pos = 0usize;
        let mut appended = 0u64;
        let result = (|| {
            while pos < bytes.len() {
                let phys = offset + pos as u64;
                let rest = &bytes[pos..];
                let total = rest
                    .get(0..4)
                    .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
                    .ok_or_else(|| invalid(phys, "fewer than 4 bytes left".into()))?;
                let total = usize::try_from(total)
                    .ok()
                    .filter(|&t| t >= BLANK_HEADER && t <= rest.len())
                    .ok_or_else(|| invalid(phys, format!("TOTALSIZE {total} out of range")))?;
                let rec = &rest[..total];
                let last = self.commit_log.segments().pop().expect("created above");
                let seg = if last.file.remaining() == 0 {
                    self.commit_log.new_segment(last.start + seg_size)?
                } else {
                    last
                };
                if is_blank(rec) {
                    if total != seg.file.remaining() {
                        return Err(invalid(
                            phys,
                            "blank record does not fill the segment".into(),
                        ));
                    }
                    seg.file
                        .append(rec)
                        .expect("fits: checked against remaining");
                } else {
                    if total + BLANK_HEADER > seg.file.remaining() {
                        return Err(invalid(phys, "message runs past the segment".into()));
                    }
                    let req = parse_exact(rec, phys, true, &self.delay_levels)
                        .map_err(|r| invalid(phys, r))?;
                    seg.file
                        .append(rec)
                        .expect("fits: checked against remaining");
                    if req.goes_to_consume_queue() {
                        st.set_next(req.topic, req.queue_id, req.queue_offset.max(0) as u64 + 1);
                    }
                    self.dispatch(&req, true, true)?;
                    if let Some(ts) = store_timestamp_of(rec) {
                        self.last_store_ts.store(ts, Ordering::Release);
                    }
                    appended += 1;
                }
                pos += total;
                self.dispatched
                    .store(offset + pos as u64, Ordering::Release);
            }
            Ok(())
        })();
        self.messages_put.fetch_add(appended, Ordering::AcqRel);
        drop(st);
        if appended > 0 {
            self.notify.notify_waiters();
        }
        result.map(|()| offset + pos as u64)
    }

    async fn wait_flush(&self, end: u64) -> Result<PutStatus, StoreError> {
        if self.config.flush_disk_type != FlushDiskType::SyncFlush {
            return Ok(PutStatus::PutOk);
        }
        {
            let mut req = lock(&self.flush_requested);
            if *req < end {
                *req = end;
            }
            self.flush_wake.notify_one();
        }
        let mut rx = self.flush_progress.subscribe();
        let waited = tokio::time::timeout(
            Duration::from_millis(self.config.sync_flush_timeout),
            rx.wait_for(|p| p.flushed >= end || p.failed),
        )
        .await
        .map(|r| r.map(|p| p.failed));
        match waited {
            Ok(Ok(failed)) => {
                if failed {
                    self.check_poison()?;
                }
                Ok(PutStatus::PutOk)
            }
            Ok(Err(_)) => Err(StoreError::ShutDown),
            Err(_) => Ok(PutStatus::FlushDiskTimeout),
        }
    }

    fn flush_commit_log(&self) -> Result<u64, StoreError> {
        self.check_poison()?;
        let before = self.commit_log.flushed_offset();
        match self.commit_log.flush() {
            Ok(flushed) => {
                if flushed > before {
                    self.flush_count.fetch_add(1, Ordering::AcqRel);
                }
                self.flush_progress.send_if_modified(|p| {
                    let changed = p.flushed < flushed;
                    p.flushed = p.flushed.max(flushed);
                    changed
                });
                Ok(flushed)
            }
            Err(e) => {
                self.set_poison(&e);
                Err(e)
            }
        }
    }

    /// The commit log flusher thread: under SYNC_FLUSH it flushes as soon as
    /// a writer asks, taking in everything written meanwhile (group commit);
    /// under ASYNC_FLUSH every `flushIntervalCommitLog` ms.
    fn commit_log_flusher(&self) {
        let interval = Duration::from_millis(self.config.flush_interval_commit_log.max(1));
        let sync = self.config.flush_disk_type == FlushDiskType::SyncFlush;
        loop {
            {
                let mut req = lock(&self.flush_requested);
                loop {
                    if self.stopping.load(Ordering::Acquire) {
                        return;
                    }
                    if sync && *req > self.commit_log.flushed_offset() {
                        break;
                    }
                    let (g, timeout) = self
                        .flush_wake
                        .wait_timeout(req, interval)
                        .unwrap_or_else(|e| e.into_inner());
                    req = g;
                    if !sync && timeout.timed_out() {
                        break;
                    }
                }
            }
            if self.poisoned.load(Ordering::Acquire) {
                return;
            }
            if sync {
                self.gather_group();
            }
            let _ = self.flush_commit_log();
        }
    }

    /// Group commit window: before a SYNC_FLUSH flush, waits while appends
    /// keep arriving (each pause [`GROUP_COMMIT_QUIET`], at most
    /// [`GROUP_COMMIT_MAX_WAIT`] in all), so that writers woken by the
    /// previous flush join this one instead of forming a half-size batch of
    /// their own. A lone writer pays one quiet period.
    fn gather_group(&self) {
        let started = Instant::now();
        let mut seen = self.dispatched.load(Ordering::Acquire);
        while started.elapsed() < GROUP_COMMIT_MAX_WAIT {
            std::thread::sleep(GROUP_COMMIT_QUIET);
            let now = self.dispatched.load(Ordering::Acquire);
            if now == seen {
                return;
            }
            seen = now;
        }
    }

    /// Flushes consume queues and index, then writes the checkpoint. With
    /// `whole_files`, flushes entire consume queue files (after recovery).
    fn flush_logics(&self, whole_files: bool) -> Result<(), StoreError> {
        self.check_poison()?;
        let result = (|| {
            let dispatched = self.dispatched.load(Ordering::Acquire);
            let ts = self.last_store_ts.load(Ordering::Acquire);
            for cq in self.all_queues() {
                if whole_files {
                    cq.flush_all()?;
                } else {
                    cq.flush()?;
                }
            }
            if let Some(ix) = &self.index {
                ix.flush()?;
            }
            let commit_flushed = self.commit_log.flushed_offset();
            let cp = Checkpoint {
                physic_msg_timestamp: ts,
                logics_msg_timestamp: ts,
                index_msg_timestamp: ts,
                commit_log_flushed: commit_flushed,
                logics_flushed: dispatched,
                index_flushed: dispatched,
            };
            lock(&self.checkpoint).store(&cp)
        })();
        if let Err(e) = &result {
            self.set_poison(e);
        }
        result
    }

    /// The maintenance thread: consume queue / index / checkpoint flushes and
    /// cleaner steps.
    fn maintenance(&self) {
        let flush_every = Duration::from_millis(self.config.flush_interval_consume_queue.max(1));
        let clean_every = Duration::from_millis(self.config.clean_resource_interval.max(1));
        let mut next_flush = Instant::now() + flush_every;
        let mut next_clean = Instant::now() + clean_every;
        loop {
            {
                let (m, cv) = &self.maintenance_wake;
                let g = lock(m);
                // Checked under the lock `shutdown` notifies under: no lost wakeup.
                if self.stopping.load(Ordering::Acquire) {
                    return;
                }
                let wait = next_flush
                    .min(next_clean)
                    .saturating_duration_since(Instant::now());
                let _ = cv.wait_timeout(g, wait).unwrap_or_else(|e| e.into_inner());
            }
            if self.stopping.load(Ordering::Acquire) || self.poisoned.load(Ordering::Acquire) {
                return;
            }
            let now = Instant::now();
            if now >= next_flush {
                next_flush = now + flush_every;
                let _ = self.flush_logics(false);
            }
            if now >= next_clean {
                next_clean = now + clean_every;
                let ratio = disk_usage_ratio(self.commit_log.dir());
                match ratio.and_then(|r| self.clean_step(now_ms(), r)) {
                    Ok(CleanOutcome::Worked { deleted_files }) => {
                        tracing::info!(deleted_files, "cleaner deleted files")
                    }
                    Ok(CleanOutcome::Idle) => {}
                    Err(e) => tracing::warn!(error = %e, "cleaner step failed"),
                }
            }
        }
    }

    fn clean_step(&self, now: i64, disk_ratio: f64) -> Result<CleanOutcome, StoreError> {
        let max_ratio = f64::from(self.config.disk_max_used_space_ratio) / 100.0;
        let limit = max_ratio.min(self.config.disk_space_warning_level_ratio);
        {
            let mut full = lock(&self.disk_full);
            let was_full = full.is_some();
            *full = (disk_ratio > limit).then_some((disk_ratio, limit));
            if full.is_some() && !was_full {
                tracing::error!(disk_ratio, limit, "disk full: refusing writes");
            } else if was_full && full.is_none() {
                tracing::info!(
                    disk_ratio,
                    "disk usage back under the limit: accepting writes"
                );
            }
        }
        let over = disk_ratio > max_ratio;
        let delete_time = self.delete_hours.contains(&local_hour(now));
        let reserved_ms = i64::try_from(self.config.file_reserved_time)
            .unwrap_or(i64::MAX / 3_600_000)
            .saturating_mul(3_600_000);
        let expired = |path: &Path| {
            let modified = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            modified.saturating_add(reserved_ms) <= now
        };
        let batch = self.config.delete_file_batch_max.max(1);
        let mut removed = Vec::new();
        if delete_time || over {
            removed = self
                .commit_log
                .delete_oldest(batch, |seg| expired(seg.file.path()))?;
        }
        if removed.is_empty() && over {
            // Still above the ratio with nothing expired: the oldest goes.
            removed = self.commit_log.delete_oldest(1, |_| true)?;
        }
        let mut deleted = removed.len();
        for path in &removed {
            tracing::info!(path = %path.display(), "deleted commit log file");
        }
        let commit_min = self.commit_log.min_offset();
        for cq in self.all_queues() {
            deleted += cq.delete_expired(commit_min)?;
        }
        if let Some(ix) = &self.index {
            deleted += ix.delete_expired(commit_min)?;
        }
        Ok(if deleted > 0 {
            CleanOutcome::Worked {
                deleted_files: deleted,
            }
        } else {
            CleanOutcome::Idle
        })
    }

    fn get_message(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_count: usize,
        max_bytes: usize,
        filter: &dyn Fn(i64) -> bool,
    ) -> GetMessageResult {
        let mut r = GetMessageResult {
            status: GetMessageStatus::NoMessageInQueue,
            messages: Vec::new(),
            next_begin_offset: offset,
            min_offset: 0,
            max_offset: 0,
            max_phy_offset_pulling: 0,
        };
        let Some(cq) = self.queue(topic, queue_id) else {
            r.status = GetMessageStatus::NoMatchedLogicQueue;
            r.next_begin_offset = 0;
            return r;
        };
        let (min, max) = (cq.min_offset(), cq.max_offset());
        r.min_offset = min;
        r.max_offset = max;
        if max == 0 {
            r.status = GetMessageStatus::NoMessageInQueue;
            r.next_begin_offset = 0;
        } else if offset < min {
            r.status = GetMessageStatus::OffsetTooSmall;
            r.next_begin_offset = min;
        } else if offset == max {
            r.status = GetMessageStatus::OffsetOverflowOne;
        } else if offset > max {
            r.status = GetMessageStatus::OffsetOverflowBadly;
            r.next_begin_offset = if min == 0 { min } else { max };
        } else {
            // RocketMQ looks at up to max(16000 bytes of entries, maxMsgNums) entries.
            let scan = (16_000 / 20).max(max_count);
            let Some(entries) = cq.entries(offset, scan) else {
                r.status = GetMessageStatus::OffsetFoundNull;
                r.next_begin_offset = cq.roll_next_file(offset);
                return r;
            };
            r.status = GetMessageStatus::NoMatchedMessage;
            let mut total_bytes = 0usize;
            let mut next_file_start: Option<u64> = None;
            let mut looked = 0u64;
            for e in &entries {
                if !r.messages.is_empty()
                    && (r.messages.len() >= max_count
                        || total_bytes.saturating_add(e.size as usize) > max_bytes)
                {
                    break;
                }
                looked += 1;
                if e.is_blank() {
                    continue;
                }
                r.max_phy_offset_pulling = e.commit_log_offset;
                if next_file_start.is_some_and(|s| e.commit_log_offset < s) {
                    continue;
                }
                if !filter(e.tags_code) {
                    continue;
                }
                match self.commit_log.read(e.commit_log_offset, e.size as usize) {
                    Some(bytes) => {
                        total_bytes += bytes.len();
                        r.messages.push(bytes);
                        r.status = GetMessageStatus::Found;
                        next_file_start = None;
                    }
                    None => {
                        if r.messages.is_empty() {
                            r.status = GetMessageStatus::MessageWasRemoving;
                        }
                        let seg = self.commit_log.segment_size();
                        next_file_start =
                            Some(e.commit_log_offset + seg - e.commit_log_offset % seg);
                    }
                }
            }
            r.next_begin_offset = offset + looked;
        }
        r
    }

    fn offset_by_timestamp(&self, topic: &str, queue_id: i32, timestamp: i64) -> u64 {
        let Some(cq) = self.queue(topic, queue_id) else {
            return 0;
        };
        let (mut lo, mut hi) = (cq.min_offset(), cq.max_offset());
        // First index whose store time is >= timestamp; unreadable entries
        // (blank or removed) count as older.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let ts = cq.entry(mid).filter(|e| !e.is_blank()).and_then(|e| {
                self.commit_log
                    .with_bytes(e.commit_log_offset, e.size as usize, store_timestamp_of)
                    .flatten()
            });
            match ts {
                Some(ts) if ts >= timestamp => hi = mid,
                _ => lo = mid + 1,
            }
        }
        lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(n: usize) -> PutMessage {
        PutMessage {
            topic: "P".into(),
            queue_id: 0,
            flag: 0,
            sys_flag: 0,
            born_timestamp: 0,
            born_host: "127.0.0.1:1".parse().unwrap(),
            store_host: "127.0.0.1:2".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: Bytes::from(vec![n as u8 | 1; 100]),
            properties: String::new(),
        }
    }

    /// A failed flush is not retried: the store refuses further writes and
    /// flushes, and does not claim a clean stop.
    #[tokio::test]
    async fn failed_flush_poisons_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = MessageStoreConfig::with_root(dir.path());
        config.maped_file_size_commit_log = 64 * 1024;
        config.max_message_size = 8 * 1024;
        config.flush_disk_type = FlushDiskType::SyncFlush;
        let store = MessageStore::open(config).unwrap();
        store.put_message(message(0)).await.unwrap();
        let failed_file = dir.path().join("commitlog").join("00000000000000000000");
        store
            .inner
            .set_poison(&StoreError::io(&failed_file, std::io::Error::other("EIO")));
        match store.put_message(message(1)).await {
            Err(StoreError::Poisoned { path, reason }) => {
                assert_eq!(path, failed_file);
                assert!(reason.contains("EIO"), "{reason}");
            }
            other => panic!("expected Poisoned, got {other:?}"),
        }
        assert!(matches!(store.flush(), Err(StoreError::Poisoned { .. })));
        assert!(store.shutdown().is_err());
        assert!(
            dir.path().join("abort").exists(),
            "a poisoned store leaves abort behind"
        );
    }
}
