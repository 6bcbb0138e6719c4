//! Recovery on open: finds the commit log's valid end from the last flushed
//! point (magic, sizes, CRC, PHYSICALOFFSET; a torn tail is zeroed), drops
//! consume queue and index entries past it, then re-dispatches what they
//! lack and restores each queue's next offset. Whether the last stop was
//! clean (the `abort` file) only shows in the log: the same checks run
//! either way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use bytes::BytesMut;
use mq_protocol::name::TopicName;
use tokio::sync::{watch, Notify};

use crate::checkpoint::CheckpointFile;
use crate::commit_log::CommitLog;
use crate::config::MessageStoreConfig;
use crate::consume_queue::ConsumeQueue;
use crate::dispatch::{is_blank, parse_exact};
use crate::error::{IoContext, StoreError};
use crate::index::IndexService;
use crate::mmap::create_dir_durably;

use super::state::{lock, FlushProgress, Inner, PutState, Queues};

/// What recovery found, for the log line of a store's opening.
pub(super) struct Recovered {
    /// First commit log byte still stored.
    pub(super) commit_min: u64,
    /// Where the commit log validation started.
    pub(super) scanned_from: u64,
    /// End of the valid commit log data.
    pub(super) end: u64,
    /// Commit log offset the re-dispatch started at.
    pub(super) redispatched_from: u64,
    /// Messages re-dispatched.
    pub(super) redispatched: u64,
}

/// Rebuilds the state of the store at `config`'s paths from its files
/// (steps 1-4 of opening; the caller makes the result durable before it
/// accepts writes).
pub(super) fn recover(
    config: MessageStoreConfig,
    delay_levels: Vec<i64>,
    delete_hours: Vec<u32>,
) -> Result<(Inner, Recovered), StoreError> {
    let (cp_file, cp) = CheckpointFile::open(&config.checkpoint_path())?;

    // 1. Commit log: find the valid end.
    let mut commit_log =
        CommitLog::load(&config.commit_log_dir(), config.maped_file_size_commit_log)?;
    let scan_from = cp.map_or(0, |c| c.commit_log_flushed);
    let (scanned_from, end) =
        commit_log.recover(scan_from, config.check_crc_on_recover, &delay_levels)?;
    let commit_min = commit_log.min_offset();

    // 2. Consume queues: drop entries past the end.
    let (queues, cq_end) = load_consume_queues(&config, end, commit_min)?;
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
    let inner = Inner {
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
        flush_latency: Default::default(),
        messages_put: AtomicU64::new(0),
        poison: Mutex::new(None),
        poisoned: AtomicBool::new(false),
        disk_full: Mutex::new(None),
        stopping: AtomicBool::new(false),
        maintenance_wake: (Mutex::new(()), Condvar::new()),
        warm_wake: (Mutex::new(true), Condvar::new()),
        notify: Arc::new(Notify::new()),
        config,
    };

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
    Ok((
        inner,
        Recovered {
            commit_min,
            scanned_from,
            end,
            redispatched_from: from,
            redispatched,
        },
    ))
}

/// Maps every consume queue under `config`'s consume queue folder, drops
/// its entries past commit log offset `end` and starts it at its first
/// message at or after `commit_min`. Returns the queues and the highest
/// commit log end their entries reach (`None` when there is no entry).
fn load_consume_queues(
    config: &MessageStoreConfig,
    end: u64,
    commit_min: u64,
) -> Result<(Queues, Option<u64>), StoreError> {
    let cq_root = config.consume_queue_dir();
    create_dir_durably(&cq_root)?;
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
        // Only a folder named like a topic is a topic's: anything else was
        // not made by the store and is left alone.
        let Some(topic) = topic_entry
            .file_name()
            .to_str()
            .and_then(|name| TopicName::parse_internal(name).ok())
        else {
            tracing::warn!(path = %topic_path.display(), "ignoring a folder that is not a topic name in the consume queue folder");
            continue;
        };
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
                .entry(topic.as_str().to_owned())
                .or_default()
                .insert(queue_id, Arc::new(cq));
        }
    }
    Ok((queues, cq_end))
}

impl Inner {
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
}
