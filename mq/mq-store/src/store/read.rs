//! Reading: pulls from a consume queue (RocketMQ's `getMessage`), queue
//! offsets and the search by store time, messages by commit log offset and
//! by key (through the index), and what topics and queues exist.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use mq_protocol::MessageExt;
use tokio::sync::Notify;

use crate::consume_queue::CqEntry;
use crate::dispatch::{is_blank, store_timestamp_of};

use super::state::MessageStore;
use super::types::{GetMessageResult, GetMessageStatus};

impl MessageStore {
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
        self.get_message_filtered(topic, queue_id, offset, max_count, max_bytes, filter, None)
    }

    /// [`get_message`](Self::get_message) that also asks `stored_filter`
    /// about each message whose tagsCode passed, over its stored bytes,
    /// before copying them (RocketMQ's `isMatchedByCommitLog`: a property
    /// filter reads the properties there). A message it refuses is
    /// skipped as a tag mismatch is: the next offset moves past it.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    pub fn get_message_filtered(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_count: usize,
        max_bytes: usize,
        filter: &dyn Fn(i64) -> bool,
        stored_filter: Option<&dyn Fn(&[u8]) -> bool>,
    ) -> GetMessageResult {
        let mut r = GetMessageResult {
            status: GetMessageStatus::NoMessageInQueue,
            messages: Vec::new(),
            next_begin_offset: offset,
            min_offset: 0,
            max_offset: 0,
            max_phy_offset_pulling: 0,
        };
        let Some(cq) = self.inner.queue(topic, queue_id) else {
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
                let (phys, size) = (e.commit_log_offset, e.size as usize);
                let read = match stored_filter {
                    None => self.inner.commit_log.read(phys, size).map(Some),
                    Some(matches) => self.inner.commit_log.with_bytes(phys, size, |b| {
                        matches(b).then(|| Bytes::copy_from_slice(b))
                    }),
                };
                match read {
                    Some(Some(bytes)) => {
                        total_bytes += bytes.len();
                        r.messages.push(bytes);
                        r.status = GetMessageStatus::Found;
                        next_file_start = None;
                    }
                    Some(None) => next_file_start = None,
                    None => {
                        if r.messages.is_empty() {
                            r.status = GetMessageStatus::MessageWasRemoving;
                        }
                        let seg = self.inner.commit_log.segment_size();
                        next_file_start =
                            Some(e.commit_log_offset + seg - e.commit_log_offset % seg);
                    }
                }
            }
            r.next_begin_offset = offset + looked;
        }
        r
    }

    /// Up to `max_count` consume queue entries of a queue from queue offset
    /// `offset`, without reading the messages (filler entries included, see
    /// [`CqEntry::is_blank`]). Fewer at the end of the queue or of a
    /// consume queue file (ask again from the next offset); none below the
    /// queue's minimum or past its end.
    pub fn queue_entries(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_count: usize,
    ) -> Vec<CqEntry> {
        let Some(cq) = self.inner.queue(topic, queue_id) else {
            return Vec::new();
        };
        if offset < cq.min_offset() || offset >= cq.max_offset() {
            return Vec::new();
        }
        cq.entries(offset, max_count).unwrap_or_default()
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
        let Some(cq) = self.inner.queue(topic, queue_id) else {
            return 0;
        };
        let (mut lo, mut hi) = (cq.min_offset(), cq.max_offset());
        // First index whose store time is >= timestamp; unreadable entries
        // (blank or removed) count as older.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let ts = cq.entry(mid).filter(|e| !e.is_blank()).and_then(|e| {
                self.inner
                    .commit_log
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

    /// One past the last commit log byte whose message is in its consume
    /// queue and the index (at most [`commit_log_max_offset`](Self::commit_log_max_offset),
    /// which may count a record being dispatched): a queue read after this
    /// shows every message below it.
    pub fn dispatched_offset(&self) -> u64 {
        self.inner
            .dispatched
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Share (0.0-1.0) of the commit log's file system in use, as the
    /// cleaner sees it; `None` when the file system cannot be asked.
    pub fn disk_ratio(&self) -> Option<f64> {
        crate::mmap::disk_usage_ratio(self.inner.commit_log.dir()).ok()
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

    /// Notified (`notify_waiters`) whenever messages are dispatched. For
    /// long polling: create the `notified()` future, then re-check the queue,
    /// then await it.
    pub fn new_message_notify(&self) -> Arc<Notify> {
        self.inner.notify.clone()
    }

    /// Notified (`notify_waiters`) whenever a message is dispatched to this
    /// one queue, for long polls on it; `None` while the queue does not
    /// exist (wait on [`new_message_notify`](Self::new_message_notify)
    /// then). Used the same way.
    pub fn queue_notify(&self, topic: &str, queue_id: i32) -> Option<Arc<Notify>> {
        self.inner
            .queue(topic, queue_id)
            .map(|q| q.arrivals().clone())
    }
}
