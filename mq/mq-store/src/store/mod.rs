//! [`MessageStore`]: the public face of the store. It owns the commit log,
//! the consume queues and the index, serialises writers, dispatches each
//! message right after appending it, waits for flushes under SYNC_FLUSH, and
//! runs two background threads (commit log flusher; consume queue / index /
//! checkpoint flusher plus cleaner).
//!
//! This module opens the store (lock, recovery, background threads) and
//! shuts it down; the rest of the API is split by job, each part adding its
//! methods to [`MessageStore`]:
//! - `state`: the handle and the state it shares with its threads, the
//!   consume queue table and the dispatch of one message;
//! - `types`: the values the API takes and returns;
//! - `recovery`: rebuilding that state from the files on open;
//! - `append`: putting messages, one or a batch;
//! - `replica`: reading records for a slave, and a slave's append;
//! - `flush`: group commit, the consume queue / index / checkpoint flush
//!   and poisoning after a failed flush;
//! - `retention`: the cleaner step and deleting a topic;
//! - `read`: pulls, offsets and lookups by offset, time and key.

mod append;
mod flush;
mod read;
mod recovery;
mod replica;
mod retention;
mod state;
mod types;

pub use state::MessageStore;
pub use types::{
    CleanOutcome, GetMessageResult, GetMessageStatus, PutMessage, PutResult, PutStatus,
    RecoveryReport, StoreStats, FLUSH_LATENCY_BOUNDS_MS,
};

use std::fs::{File, OpenOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::MessageStoreConfig;
use crate::error::{IoContext, StoreError};
use crate::index::now_ms;
use crate::mmap::{disk_usage_ratio, fsync_dir};

use recovery::Recovered;
use state::{lock, Inner};

impl MessageStore {
    /// Opens (creating) the store at `config`'s paths, recovering after a
    /// crash, and starts the background flusher and cleaner threads.
    pub fn open(config: MessageStoreConfig) -> Result<MessageStore, StoreError> {
        config.validate()?;
        let delay_levels = config.delay_levels()?;
        let delete_hours = config.delete_hours()?;
        let root = config.store_path_root_dir.clone();
        crate::mmap::create_dir_durably(&root)?;

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
        // 1-4. Recover the commit log, consume queues and index.
        let (inner, recovered) = recovery::recover(config, delay_levels, delete_hours)?;
        let Recovered {
            commit_min,
            scanned_from,
            end,
            redispatched_from: from,
            redispatched,
        } = recovered;
        let inner = Arc::new(inner);

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
            scanned_from,
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
            recovery: RecoveryReport {
                crashed,
                scanned_from,
                commit_log_end: end,
                redispatched_from: from,
                redispatched,
            },
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
        let c = self.inner.clone();
        let warm = spawn("mq-store-warm", Box::new(move || c.warmer()))?;
        lock(&self.threads).push(warm);
        Ok(())
    }

    /// What recovery found and did when this store was opened.
    pub fn recovery(&self) -> RecoveryReport {
        self.recovery
    }

    /// Flush and message counters.
    pub fn stats(&self) -> StoreStats {
        let (flush_latency, flush_micros_total) = self.inner.flush_latency.snapshot();
        StoreStats {
            commit_log_flushes: self.inner.flush_count.load(Ordering::Acquire),
            messages_put: self.inner.messages_put.load(Ordering::Acquire),
            flush_latency,
            flush_micros_total,
        }
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
        {
            let _g = lock(&inner.warm_wake.0);
            inner.warm_wake.1.notify_all();
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

/// Bytes past the commit log's end that the warm-up thread keeps
/// prefaulted: a few hundred milliseconds of appends at full speed, small
/// enough that the zero pages it dirties ahead cost the disk little.
pub(crate) const WARM_AHEAD: usize = 32 << 20;

impl Inner {
    /// Asks the warm-up thread for work when the last segment's
    /// prefaulted pages are about to run out or the next segment should be
    /// created ahead. Cheap when not.
    pub(super) fn warm_if_due(&self, seg: &crate::commit_log::Segment) {
        let warm = self.config.warm_maped_file_enable && seg.file.wants_warm(WARM_AHEAD);
        if warm || self.commit_log.wants_spare(seg) {
            let mut asked = lock(&self.warm_wake.0);
            if !*asked {
                *asked = true;
                self.warm_wake.1.notify_one();
            }
        }
    }

    /// The warm-up thread, on request: creates the segment after the last
    /// one once that is half written ([`CommitLog::prepare_spare`]), so
    /// that a roll does not create and preallocate a file while holding
    /// the put lock; with `warmMapedFileEnable`, prefaults the pages just
    /// past the end of the last segment ([`WARM_AHEAD`]) and the spare's
    /// first ones.
    ///
    /// [`CommitLog::prepare_spare`]: crate::commit_log::CommitLog::prepare_spare
    fn warmer(&self) {
        let warm = self.config.warm_maped_file_enable;
        loop {
            {
                let (m, cv) = &self.warm_wake;
                let mut asked = lock(m);
                loop {
                    if self.stopping.load(Ordering::Acquire) {
                        return;
                    }
                    if *asked {
                        *asked = false;
                        break;
                    }
                    asked = cv.wait(asked).unwrap_or_else(|e| e.into_inner());
                }
            }
            if let Some(seg) = self.commit_log.last().filter(|_| warm) {
                seg.file.warm_ahead(WARM_AHEAD);
            }
            match self.commit_log.prepare_spare() {
                Ok(true) if warm => self.commit_log.warm_spare(WARM_AHEAD),
                Ok(_) => {}
                // The roll will create the segment itself (and fail the put
                // if it cannot, as before).
                Err(e) => {
                    tracing::warn!(error = %e, "pre-creating the next commit log segment failed");
                    // Not again at every append's request (a full disk).
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
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
}
