//! Memory-mapped files and the few raw OS calls the store needs. This is the
//! crate's only module with `unsafe` code.
//!
//! Two kinds of mapping:
//! - [`AppendFile`]: append-only (commit log and consume queue segments). One
//!   writer at a time appends through `&self` while any number of readers
//!   read the published prefix `[0, wrote)`. The writer only ever touches
//!   bytes at or after `wrote` and publishes them with a release store, so a
//!   reader's slice never overlaps bytes being written. Rewriting published
//!   bytes (recovery) needs `&mut self`.
//! - [`MapFile`]: a plain read/write mapping (index files) behind the
//!   caller's own lock; writes need `&mut self`.
//!
//! Both map files this process created or recovered and holds the store
//! `lock` on; nobody else may truncate them while mapped (that would turn a
//! read into SIGBUS; the lock file is what keeps other brokers out).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use memmap2::{Advice, MmapOptions, MmapRaw};

use crate::error::{IoContext, StoreError};

/// Reserves the file's blocks so that later writes through the mapping cannot
/// fail with ENOSPC (which would be a SIGBUS). Falls back to a sparse
/// `set_len` where the file system has no `fallocate`.
fn preallocate(file: &File, len: u64) -> io::Result<()> {
    file.set_len(len)?;
    let len_off = libc::off_t::try_from(len).map_err(|_| io::Error::other("file too large"))?;
    // SAFETY: fallocate only reads its integer arguments; the descriptor is
    // owned by `file`, which outlives the call.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len_off) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EOPNOTSUPP) {
            return Err(err);
        }
    }
    Ok(())
}

/// The size of a memory page (the unit of `madvise` and of zeroing a range).
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf only reads its integer argument.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// Makes `[offset, offset + len)` of `file` read as zeroes, keeping its
/// blocks reserved, without writing the range: `FALLOC_FL_ZERO_RANGE`
/// (ext4, xfs), else a hole punched and reserved again (tmpfs, btrfs).
/// Returns `false` when the file system offers neither (the caller writes
/// the zeroes itself). The kernel drops the range's cached pages, and with
/// them what any mapping of the file shows there; callers hold exclusive
/// access to such mappings.
fn zero_range(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    let off = libc::off_t::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
    let n = libc::off_t::try_from(len).map_err(|_| io::Error::other("length too large"))?;
    let fd = file.as_raw_fd();
    let unsupported = |e: &io::Error| {
        matches!(
            e.raw_os_error(),
            Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) | Some(libc::ENOSYS)
        )
    };
    // SAFETY: fallocate only reads its integer arguments; `fd` is owned by
    // `file`, which outlives the call.
    let rc = unsafe {
        libc::fallocate(
            fd,
            libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE,
            off,
            n,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if !unsupported(&err) {
        return Err(err);
    }
    // SAFETY: as above.
    let rc = unsafe {
        libc::fallocate(
            fd,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            off,
            n,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return if unsupported(&err) {
            Ok(false)
        } else {
            Err(err)
        };
    }
    // Reserve the punched blocks again, so later writes through the mapping
    // cannot hit ENOSPC.
    // SAFETY: as above.
    let rc = unsafe { libc::fallocate(fd, 0, off, n) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if !unsupported(&err) {
            return Err(err);
        }
    }
    Ok(true)
}

/// Makes a file creation, deletion or rename in `dir` durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// `create_dir_all`, durably: the folders it creates are fsynced into
/// their parents, so that after a power failure a new topic's consume
/// queue folder (and the files in it the checkpoint counts as flushed) is
/// still there. Costs nothing when `dir` exists.
pub(crate) fn create_dir_durably(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.exists() {
        missing.push(at.to_owned());
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    std::fs::create_dir_all(dir).at(dir)?;
    for created in &missing {
        if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsync_dir(parent)?;
        }
    }
    Ok(())
}

/// Fraction (0.0 - 1.0) of the file system holding `path` that is in use:
/// `(total - free) / total`, as RocketMQ's `getDiskPartitionSpaceUsedPercent`.
pub(crate) fn disk_usage_ratio(path: &Path) -> Result<f64, StoreError> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| StoreError::io(path, io::Error::other("path contains NUL")))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `st` points to
    // writable memory of the right type; statvfs fills it on success.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(StoreError::io(path, io::Error::last_os_error()));
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    let total = st.f_blocks as f64;
    if total <= 0.0 {
        return Ok(0.0);
    }
    // Free blocks including the root reserve, as Java's File.getFreeSpace()
    // that RocketMQ's ratio uses.
    let free = st.f_bfree as f64;
    Ok(((total - free) / total).clamp(0.0, 1.0))
}

/// Hour of the day (0-23) of `epoch_ms` in the local time zone, as
/// RocketMQ's `deleteWhen` is read.
pub(crate) fn local_hour(epoch_ms: i64) -> u32 {
    let secs: libc::time_t = (epoch_ms.div_euclid(1000)) as libc::time_t;
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: both pointers are valid for the call; localtime_r is the
    // re-entrant variant and writes only into `tm`.
    let res = unsafe { libc::localtime_r(&secs, tm.as_mut_ptr()) };
    if res.is_null() {
        // Fall back to UTC, which cannot fail.
        return (secs.rem_euclid(86_400) / 3600) as u32;
    }
    // SAFETY: localtime_r succeeded, so `tm` is initialised (it was zeroed anyway).
    let tm = unsafe { tm.assume_init() };
    tm.tm_hour as u32
}

/// Opens (creating if asked) a file of exactly `len` bytes for mapping, and
/// returns it with `len` as a mapping length.
fn open_sized(path: &Path, len: u64, create: bool) -> Result<(File, usize), StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(create)
        .open(path)
        .at(path)?;
    let actual = file.metadata().at(path)?.len();
    if create || actual < len {
        // A new file, or one whose creation was cut short by a crash.
        preallocate(&file, len).at(path)?;
        if create {
            if let Some(dir) = path.parent() {
                fsync_dir(dir)?;
            }
        }
    } else if actual > len {
        return Err(StoreError::corrupt(
            path,
            actual,
            format!("file is {actual} bytes, larger than the configured {len}"),
        ));
    }
    let map_len = usize::try_from(len)
        .map_err(|_| StoreError::corrupt(path, len, "file too large to map"))?;
    Ok((file, map_len))
}

/// Bytes one `madvise` of [`AppendFile::warm_ahead`] prefaults.
const WARM_STEP: usize = 1 << 20;

/// An append-only mapped file. See the module docs for the sharing rules.
pub(crate) struct AppendFile {
    path: PathBuf,
    _file: File,
    map: MmapRaw,
    len: usize,
    /// End of the published bytes; readers may read `[0, wrote)`.
    wrote: AtomicUsize,
    /// End of the bytes known flushed.
    flushed: AtomicUsize,
    /// End of the pages prefaulted by [`warm_ahead`](Self::warm_ahead).
    warmed: AtomicUsize,
    /// Serialises appenders; the store holds its own lock around appends, so
    /// this is never contended, but it keeps `append(&self)` sound on its own.
    append_lock: Mutex<()>,
}

impl AppendFile {
    /// Creates a new, preallocated file of `len` bytes and fsyncs its directory.
    pub(crate) fn create(path: &Path, len: u64) -> Result<Self, StoreError> {
        Self::map(path, len, true)
    }

    /// Maps an existing file; `wrote` starts at 0 until recovery sets it.
    pub(crate) fn open(path: &Path, len: u64) -> Result<Self, StoreError> {
        Self::map(path, len, false)
    }

    fn map(path: &Path, len: u64, create: bool) -> Result<Self, StoreError> {
        let (file, len_usize) = open_sized(path, len, create)?;
        let map = MmapOptions::new().len(len_usize).map_raw(&file).at(path)?;
        Ok(AppendFile {
            path: path.to_owned(),
            _file: file,
            map,
            len: len_usize,
            wrote: AtomicUsize::new(0),
            flushed: AtomicUsize::new(0),
            warmed: AtomicUsize::new(0),
            append_lock: Mutex::new(()),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn wrote(&self) -> usize {
        self.wrote.load(Ordering::Acquire)
    }

    pub(crate) fn flushed(&self) -> usize {
        self.flushed.load(Ordering::Acquire)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.len - self.wrote()
    }

    /// Whether the prefaulted pages end less than `ahead / 2` bytes past the
    /// published end (and the file has more).
    pub(crate) fn wants_warm(&self, ahead: usize) -> bool {
        let warmed = self.warmed.load(Ordering::Acquire);
        warmed < self.len && self.wrote().saturating_add(ahead / 2) >= warmed
    }

    /// Prefaults the pages from the published end to `ahead` bytes past it,
    /// writable (`MADV_POPULATE_WRITE`), so that the appends there take no
    /// page fault: the kernel's page allocation and zeroing happen on this
    /// (background) thread instead of in the writer, which holds the put
    /// lock. Touches no byte, so it may run while a writer appends. Falls
    /// back to `MADV_WILLNEED` (read the pages into the cache) on kernels
    /// without it. Returns the bytes it advised.
    pub(crate) fn warm_ahead(&self, ahead: usize) -> usize {
        let page = page_size();
        let from = self
            .warmed
            .load(Ordering::Acquire)
            .max(self.wrote() / page * page);
        let to = self
            .wrote()
            .saturating_add(ahead)
            .div_ceil(page)
            .saturating_mul(page)
            .min(self.len);
        if to <= from {
            return 0;
        }
        // In steps: the kernel holds the process's mmap lock (read) for the
        // whole of one call, and a thread that maps or unmaps memory (the
        // allocator growing or trimming an arena) waits for it, and every
        // page fault behind that one. A step's pages take a few ms to fault
        // on this VM; the whole `ahead` would take tens.
        let mut at = from;
        while at < to {
            let end = (at + WARM_STEP).min(to);
            if self
                .map
                .advise_range(Advice::PopulateWrite, at, end - at)
                .is_err()
            {
                let _ = self.map.advise_range(Advice::WillNeed, at, end - at);
            }
            self.warmed.fetch_max(end, Ordering::AcqRel);
            at = end;
        }
        to - from
    }

    /// Appends `data` at the end of the published bytes and publishes it.
    /// Returns the position it was written at, or `None` if it does not fit.
    pub(crate) fn append(&self, data: &[u8]) -> Option<usize> {
        let _guard = self.append_lock.lock().unwrap_or_else(|e| e.into_inner());
        let pos = self.wrote.load(Ordering::Acquire);
        let end = pos.checked_add(data.len())?;
        if end > self.len {
            return None;
        }
        // SAFETY: `pos..end` lies inside the mapping (checked above). Readers
        // only form slices over `[0, wrote)` and `wrote == pos` until the
        // release store below, and appenders are serialised by
        // `append_lock`, so nothing else accesses these bytes during the copy.
        // `data` is a separate allocation (it cannot point into `[pos, end)`,
        // which no safe reference covers).
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.map.as_mut_ptr().add(pos),
                data.len(),
            );
        }
        self.wrote.store(end, Ordering::Release);
        Some(pos)
    }

    /// The published bytes `[pos, pos + len)`, or `None` past the end.
    pub(crate) fn read(&self, pos: usize, len: usize) -> Option<&[u8]> {
        let end = pos.checked_add(len)?;
        if end > self.wrote() {
            return None;
        }
        // SAFETY: `[pos, end)` is inside the published prefix, which no one
        // writes through `&self` (see `append`), and the mapping lives as
        // long as `self`.
        Some(unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(pos), len) })
    }

    /// The whole file, for recovery (exclusive access).
    pub(crate) fn contents(&mut self) -> &[u8] {
        // SAFETY: `&mut self` excludes every other access to the mapping,
        // which is `len` bytes long and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.len) }
    }

    /// The whole file, writable, for recovery (exclusive access).
    pub(crate) fn contents_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `contents`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr(), self.len) }
    }

    /// Sets the published end after recovery; everything before it counts as
    /// flushed (recovery flushes before the store accepts writes).
    pub(crate) fn set_wrote(&mut self, pos: usize) {
        let pos = pos.min(self.len);
        self.wrote.store(pos, Ordering::Release);
        self.flushed.store(pos, Ordering::Release);
    }

    /// Zeroes `[pos, len)` (a torn or dropped tail) and makes `pos` the end,
    /// durably (the zeroes are on disk when this returns).
    ///
    /// The cost grows with the bytes before the next page boundary, not
    /// with the tail: the rest is handed to the file system with
    /// [`zero_range`], which drops its blocks' contents (and their cached
    /// pages) instead of reading a 1 GiB tail to see whether it is zero.
    /// Where the file system cannot do that, the tail is scanned and
    /// written as before.
    pub(crate) fn truncate(&mut self, pos: usize) -> Result<(), StoreError> {
        let pos = pos.min(self.len);
        let page = page_size();
        let aligned = pos.div_ceil(page).saturating_mul(page).min(self.len);
        let len = self.len;
        let path = self.path.clone();
        {
            let head = &mut self.contents_mut()[pos..aligned];
            if head.iter().any(|&b| b != 0) {
                head.fill(0);
            }
        }
        // `&mut self`: no reference into the mapping lives while the kernel
        // drops the range's pages.
        let zeroed = if aligned < len {
            zero_range(&self._file, aligned as u64, (len - aligned) as u64).at(&path)?
        } else {
            true
        };
        if zeroed {
            if aligned > pos {
                self.map.flush_range(pos, aligned - pos).at(&path)?;
            }
            // The range's new (unwritten) extents are metadata: make them durable.
            self._file.sync_data().at(&path)?;
        } else {
            let tail = &mut self.contents_mut()[aligned..];
            if tail.iter().any(|&b| b != 0) {
                tail.fill(0);
            }
            self.map.flush_range(pos, len - pos).at(&path)?;
        }
        self.set_wrote(pos);
        Ok(())
    }

    /// Flushes `[flushed, wrote)` with `msync(MS_SYNC)` (on Linux an
    /// `fdatasync` of the range). Returns the new flushed position.
    pub(crate) fn flush(&self) -> Result<usize, StoreError> {
        let target = self.wrote();
        let from = self.flushed();
        if target > from {
            self.map.flush_range(from, target - from).at(&self.path)?;
            self.flushed.fetch_max(target, Ordering::AcqRel);
        }
        Ok(target)
    }

    /// Flushes the whole file, whatever `wrote` says (after recovery rewrote it).
    pub(crate) fn flush_all(&self) -> Result<(), StoreError> {
        self.map.flush().at(&self.path)
    }
}

/// A read/write mapping of a whole file, for index files.
pub(crate) struct MapFile {
    path: PathBuf,
    _file: File,
    map: Arc<MmapRaw>,
    len: usize,
}

impl MapFile {
    /// Creates a new, preallocated index file of `len` bytes and fsyncs its
    /// directory.
    pub(crate) fn create(path: &Path, len: u64) -> Result<Self, StoreError> {
        Self::map(path, len, true)
    }

    /// Maps an existing index file of `len` bytes.
    pub(crate) fn open(path: &Path, len: u64) -> Result<Self, StoreError> {
        Self::map(path, len, false)
    }

    fn map(path: &Path, len: u64, create: bool) -> Result<Self, StoreError> {
        let (file, len_usize) = open_sized(path, len, create)?;
        let map = MmapOptions::new().len(len_usize).map_raw(&file).at(path)?;
        Ok(MapFile {
            path: path.to_owned(),
            _file: file,
            map: Arc::new(map),
            len: len_usize,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` bytes and lives as long as `self`
        // (and any `MapFlusher`). The file is a store file of exactly `len`
        // bytes (made so by `open_sized`); the store's lock file keeps other
        // store instances from truncating or rewriting it, and within this
        // process its bytes are only read through `bytes` (`&self`) and
        // written through `bytes_mut` (`&mut self`), so no write overlaps
        // this borrow. A `MapFlusher` only asks the kernel to write the
        // pages back; it neither reads nor writes them.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.len) }
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr(), self.len) }
    }

    /// A handle that flushes this mapping without borrowing the file, so
    /// that a flush (an `msync` of the whole file, milliseconds with many
    /// dirty pages) can run while the caller's lock is released and
    /// writers go on.
    pub(crate) fn flusher(&self) -> MapFlusher {
        MapFlusher {
            path: self.path.clone(),
            map: Arc::clone(&self.map),
        }
    }
}

/// Flushes a [`MapFile`]'s mapping (see [`MapFile::flusher`]). Pages
/// written while it runs are either in this flush or dirty again for the
/// next one: the kernel write-protects a page before writing it back.
pub(crate) struct MapFlusher {
    path: PathBuf,
    map: Arc<MmapRaw>,
}

impl MapFlusher {
    /// `msync(MS_SYNC)` of the whole mapping.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.map.flush().at(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::create_dir_durably;

    #[test]
    fn durable_folders_are_created_nested_and_again_without_error() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("consumequeue").join("T").join("0");
        create_dir_durably(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_durably(&deep).unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(
            create_dir_durably(&file.join("sub")).is_err(),
            "a file in the way is an error"
        );
    }

    use super::*;

    #[test]
    fn append_publishes_and_refuses_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = AppendFile::create(&path, 16).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
        assert_eq!(f.append(b"hello"), Some(0));
        assert_eq!(f.append(b"world"), Some(5));
        assert_eq!(f.read(0, 10), Some(&b"helloworld"[..]));
        assert_eq!(f.read(5, 6), None, "past the published end");
        assert_eq!(f.append(b"0123456789"), None);
        assert_eq!(f.remaining(), 6);
        assert_eq!(f.flush().unwrap(), 10);
        drop(f);
        let mut g = AppendFile::open(&path, 16).unwrap();
        assert_eq!(&g.contents()[..10], b"helloworld");
        g.truncate(5).unwrap();
        assert_eq!(&g.contents()[..10], b"hello\0\0\0\0\0");
        assert_eq!(g.wrote(), 5);
    }

    /// A dirty tail over several pages (a torn record, stale bytes further
    /// on, the last byte of the file) is zeroed from the cut on, in the
    /// mapping and on disk, the bytes before the cut are kept, and the
    /// file keeps its reserved blocks.
    #[test]
    fn truncate_zeroes_a_dirty_tail_of_many_pages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let page = page_size();
        let len = 8 * page;
        let pattern = |i: usize| (i % 251) as u8 | 1;
        let f = AppendFile::create(&path, len as u64).unwrap();
        let data: Vec<u8> = (0..len).map(pattern).collect();
        f.append(&data).unwrap();
        f.flush().unwrap();
        drop(f);
        for cut in [0, 1, page - 1, page, page + 7, 5 * page, len - 1, len] {
            std::fs::write(&path, &data).unwrap();
            let mut g = AppendFile::open(&path, len as u64).unwrap();
            g.truncate(cut).unwrap();
            assert_eq!(g.wrote(), cut);
            let c = g.contents();
            assert!(
                c[..cut].iter().enumerate().all(|(i, &b)| b == pattern(i)),
                "cut {cut}"
            );
            assert!(c[cut..].iter().all(|&b| b == 0), "cut {cut}: mapping");
            drop(g);
            let on_disk = std::fs::read(&path).unwrap();
            assert_eq!(on_disk.len(), len);
            assert_eq!(&on_disk[..cut], &data[..cut], "cut {cut}");
            assert!(on_disk[cut..].iter().all(|&b| b == 0), "cut {cut}: disk");
            use std::os::unix::fs::MetadataExt;
            let blocks = std::fs::metadata(&path).unwrap().blocks();
            assert!(
                blocks * 512 >= len as u64,
                "cut {cut}: {blocks} blocks reserved"
            );
        }
    }

    /// Prefaulting ahead changes no byte, published or not, even while a
    /// writer appends; `wants_warm` asks again once the end comes within
    /// half the distance of the prefaulted pages' end.
    #[test]
    fn warm_ahead_changes_nothing_while_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let page = page_size();
        let len = 64 * page;
        let f = std::sync::Arc::new(AppendFile::create(&dir.path().join("f"), len as u64).unwrap());
        assert!(f.wants_warm(8 * page));
        assert_eq!(f.warm_ahead(8 * page), 8 * page);
        assert!(!f.wants_warm(8 * page));
        let chunk: Vec<u8> = (0..1000).map(|i| (i % 200) as u8 + 1).collect();
        let writer = {
            let f = f.clone();
            let chunk = chunk.clone();
            std::thread::spawn(move || while f.append(&chunk).is_some() {})
        };
        while !writer.is_finished() {
            f.warm_ahead(8 * page);
        }
        writer.join().unwrap();
        let wrote = f.wrote();
        assert_eq!(wrote, len / 1000 * 1000);
        let data = f.read(0, wrote).unwrap();
        assert!(data.chunks(1000).all(|c| c == &chunk[..]));
        // The end is within reach: one more call covers the file.
        f.warm_ahead(8 * page);
        assert_eq!(f.warm_ahead(8 * page), 0, "nothing left past the end");
        assert!(!f.wants_warm(8 * page));
        assert_eq!(f.read(0, wrote).unwrap(), data);
    }

    #[test]
    fn open_refuses_a_file_larger_than_configured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [1u8; 32]).unwrap();
        assert!(matches!(
            AppendFile::open(&path, 16),
            Err(StoreError::Corrupt { .. })
        ));
        // A short file (creation cut by a crash) is extended.
        std::fs::write(&path, [1u8; 8]).unwrap();
        let mut f = AppendFile::open(&path, 16).unwrap();
        assert_eq!(f.contents().len(), 16);
    }

    #[test]
    fn disk_usage_is_a_ratio() {
        let r = disk_usage_ratio(Path::new("/")).unwrap();
        assert!((0.0..=1.0).contains(&r));
        assert!(local_hour(0) < 24);
    }
}
