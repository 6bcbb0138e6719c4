//! Flushing and what a failed flush does. The commit log flusher thread
//! flushes under SYNC_FLUSH as soon as a writer waits, gathering the
//! appends that arrive meanwhile into one fsync (group commit), and under
//! ASYNC_FLUSH every `flushIntervalCommitLog` ms. Consume queues, index and
//! checkpoint are flushed together. A failed flush is never retried: it
//! poisons the store, which then refuses flushes and writes (the write
//! gate, [`Inner::check_writable`], also refuses them while stopping or
//! with the disk full).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::checkpoint::Checkpoint;
use crate::config::FlushDiskType;
use crate::error::StoreError;

use super::state::{lock, Inner, MessageStore};
use super::types::PutStatus;

/// Pause without new appends after which a SYNC_FLUSH group is complete.
const GROUP_COMMIT_QUIET: Duration = Duration::from_micros(50);
/// Longest a SYNC_FLUSH flush waits for its group to fill (RocketMQ's
/// GroupCommitService waits up to 10 ms between rounds).
const GROUP_COMMIT_MAX_WAIT: Duration = Duration::from_millis(1);

impl Inner {
    /// Fails with [`StoreError::Poisoned`] once a flush has failed.
    pub(super) fn check_poison(&self) -> Result<(), StoreError> {
        if self.poisoned.load(Ordering::Acquire) {
            let (path, reason) = lock(&self.poison).clone().unwrap_or_default();
            return Err(StoreError::Poisoned { path, reason });
        }
        Ok(())
    }

    /// Poisons the store after `err` (the first error is the one kept) and
    /// wakes the SYNC_FLUSH writers waiting for a flush.
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

    /// Whether a write may start: not stopping, not poisoned, disk not full.
    pub(super) fn check_writable(&self) -> Result<(), StoreError> {
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

    /// Under SYNC_FLUSH, asks the flusher for `end` and waits until the
    /// commit log is flushed that far, or `syncFlushTimeout` passes.
    pub(super) async fn wait_flush(&self, end: u64) -> Result<PutStatus, StoreError> {
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

    /// Flushes the commit log and tells the waiting writers how far.
    pub(super) fn flush_commit_log(&self) -> Result<u64, StoreError> {
        self.check_poison()?;
        let before = self.commit_log.flushed_offset();
        let started = std::time::Instant::now();
        match self.commit_log.flush() {
            Ok(flushed) => {
                if flushed > before {
                    self.flush_count.fetch_add(1, Ordering::AcqRel);
                    self.flush_latency.record(started.elapsed());
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
    pub(super) fn commit_log_flusher(&self) {
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
    pub(super) fn flush_logics(&self, whole_files: bool) -> Result<(), StoreError> {
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
}

impl MessageStore {
    /// Commit log offset below which everything is flushed to disk.
    pub fn flushed_offset(&self) -> u64 {
        self.inner.commit_log.flushed_offset()
    }

    /// Flushes the commit log now (whatever the flush mode).
    pub fn flush(&self) -> Result<u64, StoreError> {
        self.inner.flush_commit_log()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::config::{FlushDiskType, MessageStoreConfig};
    use crate::error::StoreError;
    use crate::store::state::MessageStore;
    use crate::store::types::PutMessage;

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
