//! What removes stored data: the cleaner's step (commit log files past
//! `fileReservedTime` at a `deleteWhen` hour, or sooner when the disk passes
//! `diskMaxUsedSpaceRatio`, then the consume queue and index files left
//! without messages; it also raises and clears the disk-full refusal of
//! writes) and deleting a topic's consume queues.

use std::path::Path;

use mq_protocol::name::TopicName;

use crate::error::StoreError;
use crate::mmap::{fsync_dir, local_hour};

use super::state::{lock, Inner, MessageStore};
use super::types::CleanOutcome;

impl MessageStore {
    /// Deletes a topic's consume queues (its messages stay in the commit log
    /// until retention removes them). Returns whether the topic had any.
    /// Takes a checked name: the folder it removes is built from it.
    pub fn delete_topic(&self, topic: &TopicName) -> Result<bool, StoreError> {
        let topic = topic.as_str();
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
}

impl Inner {
    /// [`MessageStore::clean_step`]; the maintenance thread runs it.
    pub(super) fn clean_step(&self, now: i64, disk_ratio: f64) -> Result<CleanOutcome, StoreError> {
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
}
