//! Replication, both ends: the master reads whole records from its commit
//! log for a slave; the slave appends them at the same offsets, validating
//! and dispatching each as if it had been put locally.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::dispatch::{is_blank, parse_exact, store_timestamp_of, BLANK_HEADER};
use crate::error::StoreError;

use super::state::{lock, Inner, MessageStore};
use super::types::PutStatus;

impl MessageStore {
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
}

impl Inner {
    /// Appends and dispatches the records in `bytes` at commit log `offset`
    /// under the put lock. Returns the end of what it appended.
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
                let last = self.commit_log.last().expect("created above");
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
                self.warm_if_due(&seg);
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
}
