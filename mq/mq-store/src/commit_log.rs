//! The commit log: fixed-size mapped segments named by their start offset
//! (20 digits), holding every message of every topic in arrival order.
//!
//! A message never straddles two segments: when one does not fit (with 8
//! bytes to spare), the rest of the segment becomes a blank record
//! `[TOTALSIZE = remaining:4][BLANK_MAGIC_CODE:4]` and the message goes to
//! the start of the next segment.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use mq_protocol::message::BLANK_MAGIC_CODE;

use crate::dispatch::{parse_record, Record, BLANK_HEADER};
use crate::error::{IoContext, StoreError};
use crate::mmap::{create_dir_durably, fsync_dir, AppendFile};

/// One segment and the commit log offset it starts at.
pub(crate) struct Segment {
    pub start: u64,
    pub file: AppendFile,
}

impl Segment {
    pub(crate) fn end_written(&self) -> u64 {
        self.start + self.file.wrote() as u64
    }
}

pub(crate) fn segment_name(start: u64) -> String {
    format!("{start:020}")
}

/// Lists `dir`'s files named by 20-digit offsets, sorted; other files are
/// left alone (with a warning).
pub(crate) fn list_offset_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        match name.parse::<u64>() {
            Ok(start) if name.len() == 20 && entry.path().is_file() => {
                out.push((start, entry.path()))
            }
            _ => {
                tracing::warn!(path = %entry.path().display(), "ignoring stray file in store folder")
            }
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) struct CommitLog {
    dir: PathBuf,
    segment_size: u64,
    segments: RwLock<Vec<Arc<Segment>>>,
    /// Everything below this offset is known durable.
    flushed: AtomicU64,
    /// The segment after the last one, created ahead of need by the store's
    /// background thread ([`CommitLog::prepare_spare`]) so that a roll on
    /// the send path only takes it, as RocketMQ's AllocateMappedFileService
    /// does. Held while a roll takes it or pushes a segment, and while the
    /// spare is created, so that the two never create the same file.
    spare: Mutex<Option<Segment>>,
    /// The spare's start offset, [`NO_SPARE`] when there is none: read on
    /// every append without the lock.
    spare_start: AtomicU64,
}

const NO_SPARE: u64 = u64::MAX;

impl CommitLog {
    /// Maps the existing segments (nothing is trusted yet: `recover` next).
    pub(crate) fn load(dir: &Path, segment_size: u64) -> Result<Self, StoreError> {
        create_dir_durably(dir)?;
        let mut segments = Vec::new();
        for (start, path) in list_offset_files(dir)? {
            if start % segment_size != 0 {
                return Err(StoreError::corrupt(
                    &path,
                    start,
                    format!("segment start is not a multiple of {segment_size}"),
                ));
            }
            if let Some(prev) = segments.last().map(|s: &Arc<Segment>| s.start) {
                if prev + segment_size != start {
                    return Err(StoreError::corrupt(
                        &path,
                        start,
                        format!("gap after the segment at {prev}"),
                    ));
                }
            }
            let file = AppendFile::open(&path, segment_size)?;
            segments.push(Arc::new(Segment { start, file }));
        }
        Ok(CommitLog {
            dir: dir.to_owned(),
            segment_size,
            segments: RwLock::new(segments),
            flushed: AtomicU64::new(0),
            spare: Mutex::new(None),
            spare_start: AtomicU64::new(NO_SPARE),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn segment_size(&self) -> u64 {
        self.segment_size
    }

    pub(crate) fn segments(&self) -> Vec<Arc<Segment>> {
        self.segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn last(&self) -> Option<Arc<Segment>> {
        self.segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned()
    }

    /// Offset of the first byte still stored.
    pub(crate) fn min_offset(&self) -> u64 {
        let segs = self.segments.read().unwrap_or_else(|e| e.into_inner());
        segs.first().map_or(0, |s| s.start)
    }

    /// Offset one past the last written byte.
    pub(crate) fn max_offset(&self) -> u64 {
        self.last().map_or(0, |s| s.end_written())
    }

    pub(crate) fn flushed_offset(&self) -> u64 {
        self.flushed.load(Ordering::Acquire)
    }

    fn segment_for(&self, offset: u64) -> Option<Arc<Segment>> {
        let segs = self.segments.read().unwrap_or_else(|e| e.into_inner());
        let first = segs.first()?.start;
        let idx = usize::try_from(offset.checked_sub(first)? / self.segment_size).ok()?;
        segs.get(idx).cloned()
    }

    /// The stored bytes `[offset, offset + len)` if they are written and lie
    /// in one segment.
    pub(crate) fn read(&self, offset: u64, len: usize) -> Option<Bytes> {
        let seg = self.segment_for(offset)?;
        let pos = usize::try_from(offset - seg.start).ok()?;
        seg.file.read(pos, len).map(Bytes::copy_from_slice)
    }

    /// Calls `f` with the stored bytes `[offset, offset + len)` without copying.
    pub(crate) fn with_bytes<T>(
        &self,
        offset: u64,
        len: usize,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Option<T> {
        let seg = self.segment_for(offset)?;
        let pos = usize::try_from(offset - seg.start).ok()?;
        seg.file.read(pos, len).map(f)
    }

    /// Size of the record at `offset` (a message or a blank), from its
    /// TOTALSIZE, if it is fully written.
    pub(crate) fn record_size_at(&self, offset: u64) -> Option<usize> {
        let seg = self.segment_for(offset)?;
        let pos = usize::try_from(offset - seg.start).ok()?;
        let head = seg.file.read(pos, 4)?;
        let size = usize::try_from(i32::from_be_bytes(head.try_into().ok()?)).ok()?;
        let end = pos.checked_add(size)?;
        (size >= BLANK_HEADER && end <= seg.file.wrote()).then_some(size)
    }

    /// The segment to append `len` bytes to, rolling (blank record, new
    /// segment) when they would not leave room for a blank header. Callers
    /// hold the store's put lock.
    pub(crate) fn segment_for_append(&self, len: usize) -> Result<Arc<Segment>, StoreError> {
        let need = len
            .checked_add(BLANK_HEADER)
            .expect("message size is bounded");
        let next_start = match self.last() {
            None => 0,
            Some(seg) if seg.file.remaining() >= need => return Ok(seg),
            Some(seg) => {
                let remaining = seg.file.remaining();
                if remaining > 0 {
                    self.write_blank(&seg)?;
                }
                seg.start + self.segment_size
            }
        };
        self.new_segment(next_start)
    }

    fn write_blank(&self, seg: &Segment) -> Result<(), StoreError> {
        let remaining = seg.file.remaining();
        debug_assert!(
            remaining >= BLANK_HEADER,
            "messages always leave room for a blank header"
        );
        let mut blank = vec![0u8; remaining];
        blank[0..4].copy_from_slice(&(remaining as i32).to_be_bytes());
        blank[4..8].copy_from_slice(&BLANK_MAGIC_CODE.to_be_bytes());
        seg.file.append(&blank).map(|_| ()).ok_or_else(|| {
            StoreError::corrupt(
                seg.file.path(),
                seg.end_written(),
                "blank record does not fit",
            )
        })
    }

    /// The segment starting at `start`, appended to the log: the spare if
    /// it was made for `start`, else created and preallocated now.
    pub(crate) fn new_segment(&self, start: u64) -> Result<Arc<Segment>, StoreError> {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        let seg = match spare.take() {
            Some(seg) if seg.start == start => {
                tracing::debug!(path = %seg.file.path().display(), "took the pre-created commit log segment");
                seg
            }
            other => {
                if let Some(stale) = other {
                    // Made for another start (cannot happen while appends
                    // only move forward): its file must not outlive it, or
                    // the next start would find a gap.
                    let path = stale.file.path().to_owned();
                    drop(stale);
                    std::fs::remove_file(&path).at(&path)?;
                }
                let path = self.dir.join(segment_name(start));
                let file = AppendFile::create(&path, self.segment_size)?;
                tracing::debug!(path = %path.display(), "created commit log segment");
                Segment { start, file }
            }
        };
        self.spare_start.store(NO_SPARE, Ordering::Release);
        let seg = Arc::new(seg);
        self.segments
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(seg.clone());
        Ok(seg)
    }

    /// Whether the segment after `last` should be created ahead: `last` is
    /// at least half written and no spare is made for what follows it.
    pub(crate) fn wants_spare(&self, last: &Segment) -> bool {
        last.file.wrote() as u64 >= self.segment_size / 2
            && self.spare_start.load(Ordering::Acquire) != last.start + self.segment_size
    }

    /// Creates (preallocated, its folder fsynced) the segment after the
    /// last one if it is due ([`CommitLog::wants_spare`]); returns whether
    /// it made one, for the caller to prefault its first pages. Off the send path: the store's
    /// background thread calls it. A crash leaves an empty segment after
    /// the last, which recovery removes.
    pub(crate) fn prepare_spare(&self) -> Result<bool, StoreError> {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        // Under the spare lock no roll runs, so `last` stays the last.
        let Some(last) = self.last() else {
            return Ok(false);
        };
        if !self.wants_spare(&last) {
            return Ok(false);
        }
        let start = last.start + self.segment_size;
        let path = self.dir.join(segment_name(start));
        let file = AppendFile::create(&path, self.segment_size)?;
        tracing::debug!(path = %path.display(), "pre-created the next commit log segment");
        *spare = Some(Segment { start, file });
        self.spare_start.store(start, Ordering::Release);
        Ok(true)
    }

    /// Prefaults the spare's first `ahead` bytes (see [`AppendFile::warm_ahead`]).
    pub(crate) fn warm_spare(&self, ahead: usize) {
        if let Some(seg) = self
            .spare
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            seg.file.warm_ahead(ahead);
        }
    }

    /// Recovery: validates records from `from` (a record boundary known to be
    /// flushed, or the first segment's start), drops everything after the
    /// first invalid record (zeroing it and deleting later segments), and
    /// returns where the scan started and the valid end. Runs before the
    /// store is shared.
    pub(crate) fn recover(
        &mut self,
        from: u64,
        verify_crc: bool,
        delay_levels: &[i64],
    ) -> Result<(u64, u64), StoreError> {
        let size = self.segment_size;
        let segs = self.segments.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some(first) = segs.first() else {
            return Ok((0, 0));
        };
        let first_start = first.start;
        let last_end = segs.last().map_or(0, |s| s.start + size);
        // Scan from the given point if it lies in the files we have, else from the start.
        let mut pos = if (first_start..last_end).contains(&from) {
            from
        } else {
            first_start
        };
        let scanned_from = pos;
        let mut idx = ((pos - first_start) / size) as usize;
        // Segments before the scan start are whole (a later segment exists).
        for seg in segs.iter_mut().take(idx) {
            Arc::get_mut(seg)
                .expect("not shared during recovery")
                .file
                .set_wrote(size as usize);
        }
        let seg_count = segs.len();
        let valid_end = loop {
            let seg = Arc::get_mut(&mut segs[idx]).expect("not shared during recovery");
            let in_seg = (pos - seg.start) as usize;
            let data = seg.file.contents();
            match parse_record(&data[in_seg..], pos, verify_crc, delay_levels) {
                Ok(Record::Message(req)) => pos += u64::from(req.size),
                Ok(Record::Blank) => {
                    seg.file.set_wrote(size as usize);
                    if idx + 1 == seg_count {
                        // The blank was written but the next segment never created.
                        break seg.start + size;
                    }
                    idx += 1;
                    pos = seg.start + size;
                }
                Ok(Record::End) => break pos,
                Err(reason) => {
                    tracing::warn!(path = %seg.file.path().display(), offset = pos, %reason, "dropping commit log tail");
                    break pos;
                }
            }
            if pos - segs[idx].start == size {
                // A message ended exactly at the segment end (cannot happen
                // with our writer, which leaves room for a blank header).
                break pos;
            }
        };
        // Truncate the segment holding the end, delete any after it.
        let keep = idx + 1;
        for mut seg in segs.drain(keep..) {
            let path = seg.file.path().to_owned();
            // A segment nothing was written to (pre-created ahead of need)
            // holds no data to lose.
            let unused = Arc::get_mut(&mut seg)
                .expect("not shared during recovery")
                .file
                .contents()
                .iter()
                .take(BLANK_HEADER)
                .all(|&b| b == 0);
            drop(seg);
            std::fs::remove_file(&path).at(&path)?;
            if unused {
                tracing::info!(path = %path.display(), "removed an unused commit log segment past the end");
            } else {
                tracing::warn!(path = %path.display(), "deleted commit log segment past the valid end");
            }
        }
        if let Some(seg) = segs.last_mut() {
            let seg = Arc::get_mut(seg).expect("not shared during recovery");
            let in_seg = (valid_end - seg.start) as usize;
            seg.file.truncate(in_seg)?;
        }
        fsync_dir(&self.dir)?;
        self.flushed.store(valid_end, Ordering::Release);
        Ok((scanned_from, valid_end))
    }

    /// Flushes everything written so far; returns the new flushed offset.
    pub(crate) fn flush(&self) -> Result<u64, StoreError> {
        let flushed = self.flushed_offset();
        let mut reached = flushed;
        for seg in self.segments() {
            if seg.start + self.segment_size <= flushed {
                continue;
            }
            let end = seg.file.flush()?;
            reached = seg.start + end as u64;
        }
        self.flushed.fetch_max(reached, Ordering::AcqRel);
        Ok(self.flushed_offset())
    }

    /// Raw bytes from `from` for replication: whole records only, never past a
    /// segment's end or the written data. At most `max_bytes`, except that the
    /// first record is returned whole even if larger.
    pub(crate) fn read_records(&self, from: u64, max_bytes: usize) -> Option<Bytes> {
        let seg = self.segment_for(from)?;
        let start = usize::try_from(from - seg.start).ok()?;
        let wrote = seg.file.wrote();
        let mut end = start;
        while end < wrote {
            let head = seg.file.read(end, 4)?;
            let size = usize::try_from(i32::from_be_bytes(head.try_into().ok()?)).ok()?;
            if size < BLANK_HEADER {
                return None;
            }
            let next = end.checked_add(size)?;
            if next > wrote || (end > start && next - start > max_bytes) {
                break;
            }
            end = next;
        }
        (end > start).then(|| {
            Bytes::copy_from_slice(
                seg.file
                    .read(start, end - start)
                    .expect("within written data"),
            )
        })
    }

    /// Whether a record starts at `offset` (or it is the end of the written
    /// data): hops from the start of its segment over each record's
    /// TOTALSIZE. A replication peer's offset is checked with this before
    /// anything is read from there.
    pub(crate) fn is_record_boundary(&self, offset: u64) -> bool {
        if offset == self.max_offset() {
            return true;
        }
        let Some(seg) = self.segment_for(offset) else {
            return false;
        };
        let Ok(target) = usize::try_from(offset - seg.start) else {
            return false;
        };
        let wrote = seg.file.wrote();
        let mut pos = 0usize;
        while pos < target && pos < wrote {
            let Some(size) = seg
                .file
                .read(pos, 4)
                .and_then(|h| <[u8; 4]>::try_from(h).ok())
                .and_then(|h| usize::try_from(i32::from_be_bytes(h)).ok())
                .filter(|&s| s >= BLANK_HEADER)
            else {
                return false;
            };
            match pos.checked_add(size) {
                Some(next) => pos = next,
                None => return false,
            }
        }
        pos == target && target < wrote
    }

    /// Deletes up to `max` of the oldest segments chosen by `pick` (given a
    /// segment, whether to delete it), never the last one; stops at the
    /// first segment `pick` keeps, so the log stays contiguous.
    pub(crate) fn delete_oldest(
        &self,
        max: usize,
        mut pick: impl FnMut(&Segment) -> bool,
    ) -> Result<Vec<PathBuf>, StoreError> {
        let mut removed = Vec::new();
        let mut segs = self.segments.write().unwrap_or_else(|e| e.into_inner());
        while removed.len() < max && segs.len() > 1 && pick(&segs[0]) {
            let seg = segs.remove(0);
            let path = seg.file.path().to_owned();
            // Readers holding the Arc keep the mapping until they finish.
            drop(seg);
            std::fs::remove_file(&path).at(&path)?;
            removed.push(path);
        }
        drop(segs);
        if !removed.is_empty() {
            fsync_dir(&self.dir)?;
        }
        Ok(removed)
    }
}
