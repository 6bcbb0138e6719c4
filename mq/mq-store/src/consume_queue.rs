//! Consume queues: per topic and queue id, a list of 20-byte entries
//! `[commitLogOffset:8][size:4][tagsCode:8]` (big-endian), one per message,
//! in mapped segments named by the byte position of their first entry.
//!
//! Entry `n` (the message's QUEUEOFFSET) lives at byte `n * 20`. Positions
//! that hold no message (before the first message of a queue rebuilt after
//! retention, or a gap) hold a blank entry `[0][i32::MAX][0]`, as RocketMQ's
//! `fillPreBlank` writes, so that a scan for the end never stops at them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use mq_protocol::name::TopicName;

use crate::commit_log::{list_offset_files, segment_name};
use crate::config::CQ_ENTRY_SIZE;
use crate::error::{IoContext, StoreError};
use crate::mmap::{create_dir_durably, fsync_dir, AppendFile};

const ENTRY: usize = CQ_ENTRY_SIZE as usize;
const BLANK_SIZE: i32 = i32::MAX;

/// One consume queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CqEntry {
    pub commit_log_offset: u64,
    pub size: u32,
    pub tags_code: i64,
}

impl CqEntry {
    fn encode(&self) -> [u8; ENTRY] {
        let mut b = [0u8; ENTRY];
        b[0..8].copy_from_slice(&self.commit_log_offset.to_be_bytes());
        b[8..12].copy_from_slice(&self.size.to_be_bytes());
        b[12..20].copy_from_slice(&self.tags_code.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Self {
        CqEntry {
            commit_log_offset: u64::from_be_bytes(b[0..8].try_into().expect("8 bytes")),
            size: u32::from_be_bytes(b[8..12].try_into().expect("4 bytes")),
            tags_code: i64::from_be_bytes(b[12..20].try_into().expect("8 bytes")),
        }
    }

    fn blank() -> Self {
        CqEntry {
            commit_log_offset: 0,
            size: BLANK_SIZE as u32,
            tags_code: 0,
        }
    }

    /// A filler entry that stands for no message.
    pub fn is_blank(&self) -> bool {
        self.size == BLANK_SIZE as u32
    }

    /// Written by us: a blank, or a real entry (size positive, offset sane).
    fn is_valid(&self) -> bool {
        self.is_blank()
            || (self.size > 0
                && i32::try_from(self.size).is_ok()
                && i64::try_from(self.commit_log_offset).is_ok())
    }

    fn end(&self) -> u64 {
        self.commit_log_offset.saturating_add(u64::from(self.size))
    }
}

struct CqSegment {
    /// Byte position of the segment's first entry.
    start: u64,
    file: AppendFile,
}

pub(crate) struct ConsumeQueue {
    topic: String,
    queue_id: i32,
    dir: PathBuf,
    segment_size: u64,
    segments: RwLock<Vec<Arc<CqSegment>>>,
    /// Byte position of the first entry whose message is still stored.
    min_logic: AtomicU64,
    /// Notified (`notify_waiters`) after each entry put: long polls on this
    /// queue wait on it, so an append wakes only the pulls of its queue.
    arrivals: Arc<tokio::sync::Notify>,
}

impl ConsumeQueue {
    /// The queue's folder is `root/<topic>/<queue id>`; only a checked
    /// [`TopicName`] may name it, so no topic can reach outside `root`.
    pub(crate) fn new(root: &Path, topic: &TopicName, queue_id: i32, segment_size: u64) -> Self {
        ConsumeQueue {
            topic: topic.as_str().to_owned(),
            queue_id,
            dir: root.join(topic.as_str()).join(queue_id.to_string()),
            segment_size,
            segments: RwLock::new(Vec::new()),
            min_logic: AtomicU64::new(0),
            arrivals: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// See the `arrivals` field.
    pub(crate) fn arrivals(&self) -> &Arc<tokio::sync::Notify> {
        &self.arrivals
    }

    /// Maps the queue's segments and finds the end of its valid entries
    /// (scanning the last three segments, as RocketMQ does).
    pub(crate) fn load(
        root: &Path,
        topic: &TopicName,
        queue_id: i32,
        segment_size: u64,
    ) -> Result<Self, StoreError> {
        let cq = Self::new(root, topic, queue_id, segment_size);
        let mut segs = Vec::new();
        for (start, path) in list_offset_files(&cq.dir)? {
            if start % segment_size != 0 {
                return Err(StoreError::corrupt(
                    &path,
                    start,
                    "consume queue segment start is not a multiple of its size",
                ));
            }
            if let Some(prev) = segs.last().map(|s: &CqSegment| s.start) {
                if prev + segment_size != start {
                    return Err(StoreError::corrupt(
                        &path,
                        start,
                        format!("gap after the consume queue segment at {prev}"),
                    ));
                }
            }
            segs.push(CqSegment {
                start,
                file: AppendFile::open(&path, segment_size)?,
            });
        }
        let scan_from = segs.len().saturating_sub(3);
        let mut cut: Option<(usize, usize)> = None;
        for (i, seg) in segs.iter_mut().enumerate() {
            if i < scan_from {
                seg.file.set_wrote(segment_size as usize);
                continue;
            }
            let data = seg.file.contents();
            let valid = data
                .chunks_exact(ENTRY)
                .take_while(|e| CqEntry::decode(e).is_valid())
                .count()
                * ENTRY;
            if valid < segment_size as usize {
                cut = Some((i, valid));
                break;
            }
            seg.file.set_wrote(valid);
        }
        if let Some((i, valid)) = cut {
            for seg in segs.drain(i + 1..) {
                let path = seg.file.path().to_owned();
                drop(seg);
                std::fs::remove_file(&path).at(&path)?;
            }
            segs[i].file.truncate(valid)?;
        }
        let min = segs.first().map_or(0, |s| s.start);
        cq.min_logic.store(min, Ordering::Release);
        *cq.segments.write().unwrap_or_else(|e| e.into_inner()) =
            segs.into_iter().map(Arc::new).collect();
        Ok(cq)
    }

    fn segments(&self) -> Vec<Arc<CqSegment>> {
        self.segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One past the last entry's index.
    pub(crate) fn max_offset(&self) -> u64 {
        let segs = self.segments.read().unwrap_or_else(|e| e.into_inner());
        segs.last()
            .map_or(0, |s| (s.start + s.file.wrote() as u64) / CQ_ENTRY_SIZE)
    }

    /// Index of the first entry whose message is still stored.
    pub(crate) fn min_offset(&self) -> u64 {
        (self.min_logic.load(Ordering::Acquire) / CQ_ENTRY_SIZE).min(self.max_offset())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Commit log offset just past the last real entry, if any.
    pub(crate) fn last_entry_end(&self) -> Option<u64> {
        for seg in self.segments().iter().rev() {
            let wrote = seg.file.wrote();
            let mut p = wrote;
            while p >= ENTRY {
                let e = CqEntry::decode(seg.file.read(p - ENTRY, ENTRY)?);
                if !e.is_blank() {
                    return Some(e.end());
                }
                p -= ENTRY;
            }
        }
        None
    }

    /// Recovery: removes the entries that point at or past `phys_end`.
    pub(crate) fn truncate_after(&mut self, phys_end: u64) -> Result<(), StoreError> {
        let segs = self.segments.get_mut().unwrap_or_else(|e| e.into_inner());
        while let Some(last) = segs.last_mut() {
            let seg = Arc::get_mut(last).expect("not shared during recovery");
            let wrote = seg.file.wrote();
            let mut p = wrote;
            {
                let data = seg.file.contents();
                while p >= ENTRY {
                    let e = CqEntry::decode(&data[p - ENTRY..p]);
                    if e.is_blank() || e.end() <= phys_end {
                        break;
                    }
                    p -= ENTRY;
                }
            }
            if p == wrote {
                break;
            }
            seg.file.truncate(p)?;
            if p == 0 && segs.len() > 1 {
                let seg = segs.pop().expect("checked");
                let path = seg.file.path().to_owned();
                drop(seg);
                std::fs::remove_file(&path).at(&path)?;
                continue;
            }
            break;
        }
        Ok(())
    }

    fn append_entry(&self, entry: &CqEntry) -> Result<(), StoreError> {
        let last = self
            .segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned();
        let seg = match last {
            Some(seg) if seg.file.remaining() >= ENTRY => seg,
            Some(seg) => self.new_segment(seg.start + self.segment_size)?,
            None => self.new_segment(0)?,
        };
        seg.file.append(&entry.encode()).map(|_| ()).ok_or_else(|| {
            StoreError::corrupt(
                seg.file.path(),
                seg.start,
                "consume queue entry does not fit",
            )
        })
    }

    fn new_segment(&self, start: u64) -> Result<Arc<CqSegment>, StoreError> {
        create_dir_durably(&self.dir)?;
        let path = self.dir.join(segment_name(start));
        let seg = Arc::new(CqSegment {
            start,
            file: AppendFile::create(&path, self.segment_size)?,
        });
        self.segments
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(seg.clone());
        Ok(seg)
    }

    /// Adds the entry for the message with QUEUEOFFSET `queue_offset`. An
    /// entry the queue already has is skipped (recovery re-dispatches);
    /// missing positions before it are filled with blank entries.
    pub(crate) fn put(&self, entry: CqEntry, queue_offset: u64) -> Result<(), StoreError> {
        if self.is_empty() {
            let pos = queue_offset.checked_mul(CQ_ENTRY_SIZE).ok_or_else(|| {
                StoreError::corrupt(&self.dir, queue_offset, "queue offset overflows")
            })?;
            let start = pos - pos % self.segment_size;
            self.new_segment(start)?;
            self.min_logic.store(pos, Ordering::Release);
        }
        let mut expected = self.max_offset();
        if queue_offset < expected {
            return Ok(());
        }
        if queue_offset > expected
            && expected * CQ_ENTRY_SIZE > self.min_logic.load(Ordering::Acquire)
        {
            tracing::warn!(topic = %self.topic, queue_id = self.queue_id, expected, queue_offset, "gap in consume queue, filling with blanks");
        }
        while expected < queue_offset {
            self.append_entry(&CqEntry::blank())?;
            expected += 1;
        }
        self.append_entry(&entry)
    }

    fn segment_for(&self, pos: u64) -> Option<Arc<CqSegment>> {
        let segs = self.segments.read().unwrap_or_else(|e| e.into_inner());
        let first = segs.first()?.start;
        let idx = usize::try_from(pos.checked_sub(first)? / self.segment_size).ok()?;
        segs.get(idx).cloned()
    }

    /// The entry at `index`, if written.
    pub(crate) fn entry(&self, index: u64) -> Option<CqEntry> {
        let pos = index.checked_mul(CQ_ENTRY_SIZE)?;
        let seg = self.segment_for(pos)?;
        let in_seg = usize::try_from(pos - seg.start).ok()?;
        seg.file.read(in_seg, ENTRY).map(CqEntry::decode)
    }

    /// Up to `max` entries from `index`, within the segment holding it;
    /// `None` when that segment is gone.
    pub(crate) fn entries(&self, index: u64, max: usize) -> Option<Vec<CqEntry>> {
        let pos = index.checked_mul(CQ_ENTRY_SIZE)?;
        let seg = self.segment_for(pos)?;
        let in_seg = usize::try_from(pos - seg.start).ok()?;
        let avail = seg.file.wrote().checked_sub(in_seg)? / ENTRY;
        let n = avail.min(max);
        let bytes = seg.file.read(in_seg, n * ENTRY)?;
        Some(bytes.chunks_exact(ENTRY).map(CqEntry::decode).collect())
    }

    /// First index of the segment after the one holding `index`.
    pub(crate) fn roll_next_file(&self, index: u64) -> u64 {
        let per_file = self.segment_size / CQ_ENTRY_SIZE;
        index + per_file - index % per_file
    }

    /// Moves the minimum to the first entry whose message is at or after
    /// `commit_min` (the commit log's first stored byte).
    pub(crate) fn correct_min_offset(&self, commit_min: u64) {
        let from = self.min_logic.load(Ordering::Acquire) / CQ_ENTRY_SIZE;
        let max = self.max_offset();
        let mut i = from.max(
            self.segments()
                .first()
                .map_or(0, |s| s.start / CQ_ENTRY_SIZE),
        );
        while i < max {
            match self.entry(i) {
                Some(e) if !e.is_blank() && e.commit_log_offset >= commit_min => break,
                Some(_) => i += 1,
                None => break,
            }
        }
        self.min_logic.store(i * CQ_ENTRY_SIZE, Ordering::Release);
    }

    /// Deletes segments (never the last) whose entries all point below
    /// `commit_min`; returns how many.
    pub(crate) fn delete_expired(&self, commit_min: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        {
            let mut segs = self.segments.write().unwrap_or_else(|e| e.into_inner());
            while segs.len() > 1 {
                let seg = &segs[0];
                let wrote = seg.file.wrote();
                let last_end = (0..wrote / ENTRY)
                    .rev()
                    .filter_map(|i| seg.file.read(i * ENTRY, ENTRY).map(CqEntry::decode))
                    .find(|e| !e.is_blank())
                    .map_or(0, |e| e.end());
                if last_end > commit_min {
                    break;
                }
                let seg = segs.remove(0);
                let path = seg.file.path().to_owned();
                drop(seg);
                std::fs::remove_file(&path).at(&path)?;
                removed += 1;
            }
        }
        if removed > 0 {
            fsync_dir(&self.dir)?;
        }
        self.correct_min_offset(commit_min);
        Ok(removed)
    }

    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        for seg in self.segments() {
            if seg.file.flushed() < seg.file.wrote() {
                seg.file.flush()?;
            }
        }
        Ok(())
    }

    /// Flushes whole files (after recovery rewrote them).
    pub(crate) fn flush_all(&self) -> Result<(), StoreError> {
        for seg in self.segments() {
            seg.file.flush_all()?;
        }
        Ok(())
    }

    /// Deletes every file of the queue and its folder.
    pub(crate) fn destroy(&self) -> Result<(), StoreError> {
        let segs = std::mem::take(&mut *self.segments.write().unwrap_or_else(|e| e.into_inner()));
        drop(segs);
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&self.dir, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> TopicName {
        TopicName::parse(name).unwrap()
    }

    fn entry(off: u64) -> CqEntry {
        CqEntry {
            commit_log_offset: off,
            size: 100,
            tags_code: 7,
        }
    }

    #[test]
    fn put_roll_reload_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let cq = ConsumeQueue::new(dir.path(), &topic("T"), 0, 60);
        for i in 0..7u64 {
            cq.put(entry(i * 100), i).unwrap();
        }
        cq.put(entry(0), 0).unwrap(); // duplicate is skipped
        assert_eq!(cq.max_offset(), 7);
        assert_eq!(cq.entry(4), Some(entry(400)));
        assert_eq!(
            cq.entries(3, 10).unwrap(),
            vec![entry(300), entry(400), entry(500)],
            "stops at the segment end"
        );
        assert_eq!(cq.roll_next_file(4), 6);
        drop(cq);
        let mut cq = ConsumeQueue::load(dir.path(), &topic("T"), 0, 60).unwrap();
        assert_eq!(cq.max_offset(), 7);
        assert_eq!(cq.last_entry_end(), Some(700));
        cq.truncate_after(450).unwrap();
        assert_eq!(cq.max_offset(), 4);
        assert_eq!(cq.last_entry_end(), Some(400));
        assert!(!dir.path().join("T/0/00000000000000000120").exists());
    }

    #[test]
    fn queue_starting_late_is_prefilled_with_blanks() {
        let dir = tempfile::tempdir().unwrap();
        let cq = ConsumeQueue::new(dir.path(), &topic("T"), 1, 60);
        cq.put(entry(5000), 4).unwrap();
        assert_eq!(cq.max_offset(), 5);
        assert_eq!(cq.min_offset(), 4);
        assert!(cq.entry(3).unwrap().is_blank());
        assert!(dir.path().join("T/1/00000000000000000060").exists());
        assert!(!dir.path().join("T/1/00000000000000000000").exists());
    }

    #[test]
    fn delete_expired_keeps_the_last_segment() {
        let dir = tempfile::tempdir().unwrap();
        let cq = ConsumeQueue::new(dir.path(), &topic("T"), 0, 60);
        for i in 0..7u64 {
            cq.put(entry(i * 100), i).unwrap();
        }
        assert_eq!(cq.delete_expired(350).unwrap(), 1);
        assert_eq!(cq.min_offset(), 4);
        assert_eq!(cq.delete_expired(10_000).unwrap(), 1);
        assert_eq!(cq.max_offset(), 7, "the last segment stays");
        assert_eq!(cq.min_offset(), 7);
    }
}
