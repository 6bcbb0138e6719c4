//! Index files: hash indexes from `topic#key` to commit log offsets, for
//! QUERY_MESSAGE by key and by unique key.
//!
//! Layout (RocketMQ's, big-endian):
//! ```text
//! header  [beginTimestamp:8][endTimestamp:8][beginPhyOffset:8][endPhyOffset:8]
//!         [hashSlotCount:4][indexCount:4]                              40 bytes
//! slots   maxHashSlotNum x [index of the newest entry for the slot:4]
//! entries maxIndexNum x [keyHash:4][phyOffset:8][timeDiffSeconds:4][prevIndex:4]
//! ```
//! Entry numbers start at 1 (0 means "none"), so `indexCount` starts at 1 and
//! a file is full at `maxIndexNum` - 1 entries. A slot is `|hashCode| %
//! maxHashSlotNum`; the entries of one slot form a chain through `prevIndex`.
//! Files are named by creation time `yyyyMMddHHmmssSSS` (UTC here; RocketMQ
//! uses local time, which only changes names, not contents).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::dispatch::{java_string_hash, DispatchRequest};
use crate::error::{IoContext, StoreError};
use crate::mmap::{create_dir_durably, fsync_dir, MapFile, MapFlusher};

const HEADER: usize = 40;
const SLOT: usize = 4;
const ENTRY: usize = 20;

#[derive(Debug, Clone, Copy, Default)]
struct Header {
    begin_ts: i64,
    end_ts: i64,
    begin_phy: i64,
    end_phy: i64,
    slot_count: i32,
    index_count: i32,
}

fn get_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn get_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Header {
    fn read(b: &[u8]) -> Self {
        Header {
            begin_ts: get_i64(b, 0),
            end_ts: get_i64(b, 8),
            begin_phy: get_i64(b, 16),
            end_phy: get_i64(b, 24),
            slot_count: get_i32(b, 32),
            index_count: get_i32(b, 36).max(1),
        }
    }

    fn write(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(&self.begin_ts.to_be_bytes());
        b[8..16].copy_from_slice(&self.end_ts.to_be_bytes());
        b[16..24].copy_from_slice(&self.begin_phy.to_be_bytes());
        b[24..32].copy_from_slice(&self.end_phy.to_be_bytes());
        b[32..36].copy_from_slice(&self.slot_count.to_be_bytes());
        b[36..40].copy_from_slice(&self.index_count.to_be_bytes());
    }

    fn is_empty(&self) -> bool {
        self.index_count <= 1
    }
}

/// RocketMQ's key hash: `Math.abs(key.hashCode())`, with `MIN_VALUE` as 0.
fn key_hash(key: &str) -> i32 {
    java_string_hash(key).checked_abs().unwrap_or(0)
}

struct IndexFile {
    map: MapFile,
    header: Header,
    slot_num: u32,
    index_num: u32,
    /// Written since the last flush began (shared with a running flush,
    /// which sets it again when it fails).
    dirty: Arc<AtomicBool>,
}

impl IndexFile {
    fn file_len(slot_num: u32, index_num: u32) -> u64 {
        HEADER as u64 + u64::from(slot_num) * SLOT as u64 + u64::from(index_num) * ENTRY as u64
    }

    fn is_full(&self) -> bool {
        self.header.index_count as u32 >= self.index_num
    }

    fn slot_pos(&self, hash: i32) -> usize {
        HEADER + (hash as u32 % self.slot_num) as usize * SLOT
    }

    fn entry_pos(&self, index: i32) -> usize {
        HEADER + self.slot_num as usize * SLOT + index as usize * ENTRY
    }

    fn put_key(&mut self, key: &str, phy: u64, store_ts: i64) {
        debug_assert!(!self.is_full());
        let hash = key_hash(key);
        let slot_pos = self.slot_pos(hash);
        let count = self.header.index_count;
        let mut slot_value = get_i32(self.map.bytes(), slot_pos);
        if slot_value <= 0 || slot_value > count {
            slot_value = 0;
        }
        let time_diff = if self.header.begin_ts <= 0 {
            0
        } else {
            ((store_ts - self.header.begin_ts) / 1000).clamp(0, i64::from(i32::MAX)) as i32
        };
        let at = self.entry_pos(count);
        let b = self.map.bytes_mut();
        b[at..at + 4].copy_from_slice(&hash.to_be_bytes());
        b[at + 4..at + 12].copy_from_slice(&(phy as i64).to_be_bytes());
        b[at + 12..at + 16].copy_from_slice(&time_diff.to_be_bytes());
        b[at + 16..at + 20].copy_from_slice(&slot_value.to_be_bytes());
        b[slot_pos..slot_pos + 4].copy_from_slice(&count.to_be_bytes());
        if count <= 1 {
            self.header.begin_phy = phy as i64;
            self.header.begin_ts = store_ts;
        }
        if slot_value == 0 {
            self.header.slot_count += 1;
        }
        self.header.index_count += 1;
        self.header.end_phy = phy as i64;
        self.header.end_ts = store_ts;
        let header = self.header;
        header.write(&mut self.map.bytes_mut()[..HEADER]);
        self.dirty.store(true, Ordering::Release);
    }

    fn entry(&self, index: i32) -> (i32, i64, i32, i32) {
        let at = self.entry_pos(index);
        let b = self.map.bytes();
        (
            get_i32(b, at),
            get_i64(b, at + 4),
            get_i32(b, at + 12),
            get_i32(b, at + 16),
        )
    }

    fn set_slot(&mut self, hash: i32, value: i32) {
        let pos = self.slot_pos(hash);
        self.map.bytes_mut()[pos..pos + 4].copy_from_slice(&value.to_be_bytes());
    }

    /// Recovery: drops the entries for commit log offsets at or past
    /// `keep_below` in place (they are the newest, since entries are added
    /// in commit log order) and points each slot they were in back at its
    /// newest kept entry. Work grows with the entries dropped, not with the
    /// file. Returns the number of entries kept (with entry 0, which means
    /// none, so 1 is an empty file), or `None` when the file cannot be cut:
    /// its newest kept entry is missing (a power cut kept the header's page
    /// and not the entry's), so the slot chains are not to be trusted and
    /// the file is rebuilt instead.
    fn truncate_from(&mut self, keep_below: u64) -> Option<i32> {
        let count = self.header.index_count.min(self.index_num as i32);
        let mut keep = count;
        while keep > 1 && self.entry(keep - 1).1 as u64 >= keep_below {
            keep -= 1;
        }
        if keep > 1 {
            let (hash, phy, _, _) = self.entry(keep - 1);
            if (hash == 0 && phy == 0 && keep > 2) || phy < self.header.begin_phy {
                return None;
            }
        }
        // A crash inside `put_key` can leave the entry at `count` written
        // (and its slot pointing at it) before the header counted it.
        let mut dropped_end = count;
        if count < self.index_num as i32 {
            let (hash, phy, _, _) = self.entry(count);
            if hash != 0 || phy != 0 {
                dropped_end = count + 1;
            }
        }
        for i in keep..dropped_end {
            let hash = self.entry(i).0;
            let old = get_i32(self.map.bytes(), self.slot_pos(hash));
            let mut v = old;
            // Back along the chain past every dropped entry.
            while v >= keep {
                let prev = if v < dropped_end { self.entry(v).3 } else { 0 };
                v = if prev > 0 && prev < v { prev } else { 0 };
            }
            if v != old {
                if v == 0 {
                    self.header.slot_count = (self.header.slot_count - 1).max(0);
                }
                self.set_slot(hash, v);
            }
        }
        self.header.index_count = keep;
        if keep > 1 {
            let (_, phy, diff, _) = self.entry(keep - 1);
            self.header.end_phy = phy;
            // Seconds in the entry: the end time is an upper bound.
            self.header.end_ts = self
                .header
                .end_ts
                .min(self.header.begin_ts + i64::from(diff.max(0)) * 1000 + 999)
                .max(self.header.begin_ts);
        }
        let header = self.header;
        header.write(&mut self.map.bytes_mut()[..HEADER]);
        self.dirty.store(true, Ordering::Release);
        Some(keep)
    }

    fn time_matches(&self, begin: i64, end: i64) -> bool {
        let h = &self.header;
        (begin < h.begin_ts && end > h.end_ts)
            || (begin >= h.begin_ts && begin <= h.end_ts)
            || (end >= h.begin_ts && end <= h.end_ts)
    }

    fn select(&self, key: &str, max: usize, begin: i64, end: i64, out: &mut Vec<u64>) {
        let hash = key_hash(key);
        let b = self.map.bytes();
        let count = self.header.index_count;
        let mut next = get_i32(b, self.slot_pos(hash));
        if next <= 0 || next > count || count <= 1 {
            return;
        }
        // The chain is finite: each step goes to a strictly smaller index.
        while out.len() < max {
            let at = self.entry_pos(next);
            let hash_read = get_i32(b, at);
            let phy = get_i64(b, at + 4);
            let diff = get_i32(b, at + 12);
            let prev = get_i32(b, at + 16);
            if diff < 0 {
                break;
            }
            let time = self.header.begin_ts + i64::from(diff) * 1000;
            if hash_read == hash && time >= begin && time <= end && phy >= 0 {
                out.push(phy as u64);
            }
            if prev <= 0 || prev >= next || time < begin {
                break;
            }
            next = prev;
        }
    }
}

/// `yyyyMMddHHmmssSSS` of a UTC epoch-millisecond time.
pub(crate) fn format_timestamp(epoch_ms: i64) -> String {
    let ms = epoch_ms.rem_euclid(1000);
    let secs = epoch_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}{ms:03}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

pub(crate) struct IndexService {
    dir: PathBuf,
    slot_num: u32,
    index_num: u32,
    files: RwLock<Vec<IndexFile>>,
}

impl IndexService {
    pub(crate) fn load(dir: &Path, slot_num: u32, index_num: u32) -> Result<Self, StoreError> {
        create_dir_durably(dir)?;
        let len = IndexFile::file_len(slot_num, index_num);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).at(dir)? {
            let entry = entry.at(dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() == 17
                && name.bytes().all(|c| c.is_ascii_digit())
                && entry.path().is_file()
            {
                names.push(name);
            } else {
                tracing::warn!(path = %entry.path().display(), "ignoring stray file in index folder");
            }
        }
        names.sort();
        let mut files = Vec::new();
        for name in names {
            let path = dir.join(&name);
            let map = MapFile::open(&path, len)?;
            let header = Header::read(map.bytes());
            if header.index_count as u32 > index_num || header.index_count < 1 {
                return Err(StoreError::corrupt(
                    &path,
                    36,
                    format!("indexCount {} out of range", header.index_count),
                ));
            }
            files.push(IndexFile {
                map,
                header,
                slot_num,
                index_num,
                dirty: Arc::new(AtomicBool::new(false)),
            });
        }
        Ok(IndexService {
            dir: dir.to_owned(),
            slot_num,
            index_num,
            files: RwLock::new(files),
        })
    }

    #[cfg(test)]
    pub(crate) fn file_count(&self) -> usize {
        self.files.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// How many files are written since their last flush began.
    #[cfg(test)]
    fn dirty_count(&self) -> usize {
        self.files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|f| f.dirty.load(Ordering::Acquire))
            .count()
    }

    /// Recovery: drops the index entries at or past `keep_below` (the last
    /// flushed or valid point): files that begin there are deleted, the
    /// file it falls in is cut in place ([`IndexFile::truncate_from`]).
    /// Returns the commit log offset from which index entries must be
    /// rebuilt (`keep_below`: what is kept is whole up to there).
    pub(crate) fn truncate_for_recovery(&mut self, keep_below: u64) -> Result<u64, StoreError> {
        let files = self.files.get_mut().unwrap_or_else(|e| e.into_inner());
        while let Some(last) = files.last_mut() {
            if !last.header.is_empty() && (last.header.end_phy as u64) < keep_below {
                break;
            }
            if !last.header.is_empty()
                && (last.header.begin_phy as u64) < keep_below
                && last.truncate_from(keep_below).is_some_and(|kept| kept > 1)
            {
                tracing::info!(path = %last.map.path().display(), keep_below, "cut index file at the flushed point");
                break;
            }
            let file = files.pop().expect("checked");
            let path = file.map.path().to_owned();
            drop(file);
            std::fs::remove_file(&path).at(&path)?;
            tracing::info!(path = %path.display(), "dropped index file for rebuild");
        }
        fsync_dir(&self.dir)?;
        Ok(keep_below)
    }

    fn new_file(&self, files: &mut Vec<IndexFile>, now_ms: i64) -> Result<(), StoreError> {
        let mut ts = now_ms;
        let path = loop {
            let p = self.dir.join(format_timestamp(ts));
            // Names must sort after the existing files and be unique.
            let after_last = files
                .last()
                .is_none_or(|f| f.map.path().file_name() < p.file_name());
            if !p.exists() && after_last {
                break p;
            }
            ts += 1;
        };
        let map = MapFile::create(&path, IndexFile::file_len(self.slot_num, self.index_num))?;
        let mut file = IndexFile {
            map,
            header: Header {
                index_count: 1,
                ..Header::default()
            },
            slot_num: self.slot_num,
            index_num: self.index_num,
            dirty: Arc::new(AtomicBool::new(true)),
        };
        let header = file.header;
        header.write(&mut file.map.bytes_mut()[..HEADER]);
        files.push(file);
        Ok(())
    }

    /// Indexes `topic#key` for each KEYS entry and for UNIQ_KEY. Messages
    /// at or before the last indexed offset are skipped (re-dispatch).
    pub(crate) fn build(&self, req: &DispatchRequest<'_>) -> Result<(), StoreError> {
        if !req.goes_to_index() {
            return Ok(());
        }
        let keys = req
            .keys
            .into_iter()
            .flat_map(|k| k.split(' '))
            .chain(req.uniq_key);
        let mut keys = keys.filter(|k| !k.is_empty()).peekable();
        if keys.peek().is_none() {
            return Ok(());
        }
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = files.last() {
            if !last.header.is_empty() && req.commit_log_offset as i64 <= last.header.end_phy {
                return Ok(());
            }
        }
        let mut full_key = String::with_capacity(req.topic.len() + 64);
        for key in keys {
            if files.last().is_none_or(IndexFile::is_full) {
                self.new_file(&mut files, now_ms())?;
            }
            full_key.clear();
            full_key.push_str(req.topic);
            full_key.push('#');
            full_key.push_str(key);
            files.last_mut().expect("created above").put_key(
                &full_key,
                req.commit_log_offset,
                req.store_timestamp,
            );
        }
        Ok(())
    }

    /// Commit log offsets of messages indexed under `topic#key` stored
    /// between `begin` and `end` (ms, inclusive), newest first, at most `max`.
    pub(crate) fn query(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin: i64,
        end: i64,
    ) -> Vec<u64> {
        let full_key = format!("{topic}#{key}");
        let mut out = Vec::new();
        let files = self.files.read().unwrap_or_else(|e| e.into_inner());
        for f in files.iter().rev() {
            if out.len() >= max {
                break;
            }
            if f.time_matches(begin, end) {
                f.select(&full_key, max, begin, end, &mut out);
            }
            if f.header.begin_ts < begin {
                break;
            }
        }
        out
    }

    /// Deletes index files (never the last) whose entries all point below
    /// `commit_min`.
    pub(crate) fn delete_expired(&self, commit_min: u64) -> Result<usize, StoreError> {
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        let mut removed = 0;
        while files.len() > 1 && (files[0].header.end_phy as u64) < commit_min {
            let f = files.remove(0);
            let path = f.map.path().to_owned();
            drop(f);
            std::fs::remove_file(&path).at(&path)?;
            removed += 1;
        }
        drop(files);
        if removed > 0 {
            fsync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// Flushes the index files written since their last flush. The files
    /// lock is held only to pick them: every put that carries a key takes
    /// it for writing, and an index file's `msync` can take milliseconds,
    /// which would hold the send path that long.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        let dirty: Vec<(MapFlusher, Arc<AtomicBool>)> = self
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|f| f.dirty.swap(false, Ordering::AcqRel))
            .map(|f| (f.map.flusher(), Arc::clone(&f.dirty)))
            .collect();
        for (i, (flusher, _)) in dirty.iter().enumerate() {
            if let Err(e) = flusher.flush() {
                // This one and those not reached yet are still unflushed.
                for (_, flag) in &dirty[i..] {
                    flag.store(true, Ordering::Release);
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(
        phy: u64,
        ts: i64,
        keys: Option<&'a str>,
        uniq: Option<&'a str>,
    ) -> DispatchRequest<'a> {
        DispatchRequest {
            topic: "T",
            queue_id: 0,
            commit_log_offset: phy,
            size: 100,
            queue_offset: 0,
            sys_flag: 0,
            store_timestamp: ts,
            tags_code: 0,
            keys,
            uniq_key: uniq,
        }
    }

    #[test]
    fn puts_go_on_while_flushes_run_and_each_write_is_in_a_later_flush() {
        let dir = tempfile::tempdir().unwrap();
        // 50 entries per file: the puts roll files while flushes run.
        let idx = IndexService::load(dir.path(), 16, 50).unwrap();
        let base = 1_700_000_000_000;
        let stop = std::sync::atomic::AtomicBool::new(false);
        let keys: Vec<String> = (0..400).map(|i| format!("k{i}")).collect();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !stop.load(Ordering::Acquire) {
                    idx.flush().unwrap();
                }
            });
            for (i, key) in keys.iter().enumerate() {
                idx.build(&req(i as u64 * 100, base + i as i64, Some(key), None))
                    .unwrap();
            }
            stop.store(true, Ordering::Release);
        });
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(
                idx.query("T", key, 10, 0, i64::MAX),
                vec![i as u64 * 100],
                "{key}"
            );
        }
        // A write after a flush picked its file marks it for the next one.
        idx.flush().unwrap();
        assert_eq!(idx.dirty_count(), 0);
        idx.build(&req(400 * 100, base + 400, Some("late"), None))
            .unwrap();
        assert_eq!(idx.dirty_count(), 1);
        idx.flush().unwrap();
        assert_eq!(idx.dirty_count(), 0);
        drop(idx);
        let idx = IndexService::load(dir.path(), 16, 50).unwrap();
        assert_eq!(idx.query("T", "late", 10, 0, i64::MAX), vec![40_000]);
        assert_eq!(idx.query("T", "k7", 10, 0, i64::MAX), vec![700]);
    }

    #[test]
    fn timestamp_names_are_rocketmq_shaped() {
        assert_eq!(format_timestamp(0), "19700101000000000");
        assert_eq!(format_timestamp(1_700_000_000_123), "20231114221320123");
        assert_eq!(format_timestamp(951_782_400_000), "20000229000000000");
    }

    #[test]
    fn chains_rolls_and_time_ranges() {
        let dir = tempfile::tempdir().unwrap();
        // 3 slots force collisions; 5 entries per file (4 usable) force rolls.
        let idx = IndexService::load(dir.path(), 3, 5).unwrap();
        let base = 1_700_000_000_000;
        for i in 0..10u64 {
            let k = if i % 2 == 0 { "even" } else { "odd" };
            idx.build(&req(i * 100, base + i as i64 * 1000, Some(k), None))
                .unwrap();
        }
        idx.build(&req(1000, base + 20_000, Some("a b"), Some("U")))
            .unwrap();
        // Re-dispatch of an indexed message adds nothing.
        idx.build(&req(1000, base + 20_000, Some("a b"), Some("U")))
            .unwrap();
        assert!(idx.file_count() >= 3);
        let mut even = idx.query("T", "even", 100, 0, i64::MAX);
        even.sort();
        assert_eq!(even, vec![0, 200, 400, 600, 800]);
        assert_eq!(idx.query("T", "U", 100, 0, i64::MAX), vec![1000]);
        assert_eq!(idx.query("T", "b", 100, 0, i64::MAX), vec![1000]);
        assert_eq!(idx.query("Other", "b", 100, 0, i64::MAX), Vec::<u64>::new());
        let mut some = idx.query("T", "odd", 100, base + 3000, base + 7000);
        some.sort();
        assert_eq!(some, vec![300, 500, 700]);
        assert_eq!(idx.query("T", "odd", 2, 0, i64::MAX).len(), 2);
        drop(idx);
        let mut idx = IndexService::load(dir.path(), 3, 5).unwrap();
        assert_eq!(idx.query("T", "U", 100, 0, i64::MAX), vec![1000]);
        let from = idx.truncate_for_recovery(650).unwrap();
        assert!(from <= 650);
        assert!(idx.query("T", "U", 100, 0, i64::MAX).is_empty());
        let kept = idx.query("T", "even", 100, 0, i64::MAX);
        assert!(kept.iter().all(|&p| p < from), "{kept:?} {from}");
    }

    /// Cutting the last file in place keeps exactly the entries below the
    /// cut, whatever the slot collisions, survives a reopen, and new
    /// entries chain onto what was kept.
    #[test]
    fn recovery_cuts_the_last_file_in_place() {
        let keys = ["a", "b", "c", "d", "e"];
        for cut in [1u64, 250, 500, 1_000, 1_900, 2_000] {
            let dir = tempfile::tempdir().unwrap();
            let base = 1_700_000_000_000;
            {
                // 2 slots: every chain mixes keys.
                let idx = IndexService::load(dir.path(), 2, 1_000).unwrap();
                for i in 0..20u64 {
                    let k = keys[(i * 7 % 5) as usize];
                    idx.build(&req(i * 100, base + i as i64 * 1000, Some(k), None))
                        .unwrap();
                }
                idx.flush().unwrap();
            }
            let mut idx = IndexService::load(dir.path(), 2, 1_000).unwrap();
            assert_eq!(idx.truncate_for_recovery(cut).unwrap(), cut);
            assert_eq!(idx.file_count(), usize::from(cut > 0));
            let expect = |k: &str, below: u64, extra: &[u64]| {
                let mut v: Vec<u64> = (0..20u64)
                    .filter(|i| keys[(i * 7 % 5) as usize] == k && i * 100 < below)
                    .map(|i| i * 100)
                    .chain(extra.iter().copied())
                    .collect();
                v.sort();
                v
            };
            for k in keys {
                let mut got = idx.query("T", k, 100, 0, i64::MAX);
                got.sort();
                assert_eq!(got, expect(k, cut, &[]), "key {k} cut {cut}");
            }
            idx.flush().unwrap();
            drop(idx);
            let idx = IndexService::load(dir.path(), 2, 1_000).unwrap();
            // Re-dispatch from the cut puts the dropped messages back.
            let from = cut.div_ceil(100) * 100;
            for phy in (from..2_000).step_by(100) {
                let i = phy / 100;
                let k = keys[(i * 7 % 5) as usize];
                idx.build(&req(phy, base + i as i64 * 1000, Some(k), None))
                    .unwrap();
            }
            idx.build(&req(5_000, base + 50_000, Some("a"), None))
                .unwrap();
            for k in keys {
                let mut got = idx.query("T", k, 100, 0, i64::MAX);
                got.sort();
                let extra: &[u64] = if k == "a" { &[5_000] } else { &[] };
                assert_eq!(got, expect(k, 2_000, extra), "key {k} cut {cut} rebuilt");
            }
        }
    }
}
