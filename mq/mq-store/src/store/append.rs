//! Putting messages: one or a batch, encoded under the put lock at the end
//! of the commit log, given their queue offsets, dispatched at once (a
//! message is readable when the put returns), then waited for under
//! SYNC_FLUSH.

use std::sync::atomic::Ordering;

use mq_protocol::message::{encode_message_id, sys_flag};
use mq_protocol::name::TopicName;

use crate::dispatch::parse_exact;
use crate::error::StoreError;
use crate::index::now_ms;

use super::state::{lock, Inner, MessageStore, PutState};
use super::types::{PutMessage, PutResult, PutStatus};

impl MessageStore {
    /// Appends one message; under SYNC_FLUSH returns once it is durable (or
    /// after `syncFlushTimeout` with [`PutStatus::FlushDiskTimeout`]).
    pub async fn put_message(&self, msg: PutMessage) -> Result<PutResult, StoreError> {
        let (mut results, end) = self.inner.append(std::slice::from_ref(&msg))?;
        let status = self.inner.wait_flush(end).await?;
        let mut r = results.pop().expect("one message, one result");
        r.status = status;
        Ok(r)
    }

    /// Appends a batch under one lock (consecutive queue offsets for messages
    /// of one queue) and waits for one flush. Every message's size is checked
    /// before anything is written.
    pub async fn put_messages(&self, msgs: &[PutMessage]) -> Result<Vec<PutResult>, StoreError> {
        let (mut results, end) = self.inner.append(msgs)?;
        let status = self.inner.wait_flush(end).await?;
        for r in &mut results {
            r.status = status;
        }
        Ok(results)
    }
}

impl Inner {
    /// Checks every message, then appends and dispatches them under the put
    /// lock. Returns what each wrote and the commit log end to flush up to.
    fn append(&self, msgs: &[PutMessage]) -> Result<(Vec<PutResult>, u64), StoreError> {
        self.check_writable()?;
        for m in msgs {
            let record = m.record(0, 0, 0);
            record.validate()?;
            if let Err(error) = TopicName::check_internal(&m.topic) {
                return Err(StoreError::IllegalMessage {
                    reason: error.into(),
                });
            }
            if m.topic.contains('\0') || m.properties.contains('\0') {
                return Err(StoreError::IllegalMessage {
                    reason: "NUL byte in topic or properties".into(),
                });
            }
            let size = record.encoded_len();
            if size > self.config.max_message_size {
                return Err(StoreError::MessageTooLarge {
                    size,
                    max: self.config.max_message_size,
                });
            }
        }
        let mut results = Vec::with_capacity(msgs.len());
        let mut st = lock(&self.put);
        // Re-check under the lock: shutdown takes it before its final flush.
        self.check_writable()?;
        let store_timestamp = now_ms();
        let mut end = self.commit_log.max_offset();
        for m in msgs {
            let counted = matches!(
                sys_flag::transaction_type(m.sys_flag),
                sys_flag::TRANSACTION_NOT_TYPE | sys_flag::TRANSACTION_COMMIT_TYPE
            );
            let queue_offset = if counted {
                st.next_offset(&m.topic, m.queue_id)
            } else {
                0
            };
            let size = m.record(0, 0, 0).encoded_len();
            let seg = self.commit_log.segment_for_append(size)?;
            let phys = seg.end_written();
            let record = m.record(queue_offset, phys, store_timestamp);
            let PutState { buf, .. } = &mut *st;
            buf.clear();
            record.encode(buf)?;
            seg.file.append(buf).ok_or_else(|| {
                StoreError::corrupt(seg.file.path(), phys, "message does not fit in its segment")
            })?;
            end = phys + size as u64;
            self.warm_if_due(&seg);
            if counted {
                st.set_next(&m.topic, m.queue_id, queue_offset + 1);
            }
            let req = parse_exact(&st.buf, phys, false, &self.delay_levels)
                .map_err(|reason| StoreError::corrupt(seg.file.path(), phys, reason))?;
            self.dispatch(&req, true, true)?;
            self.dispatched.store(end, Ordering::Release);
            results.push(PutResult {
                status: PutStatus::PutOk,
                msg_id: encode_message_id(m.store_host, phys as i64),
                wrote_offset: phys,
                wrote_bytes: size,
                queue_offset,
                store_timestamp,
            });
        }
        self.last_store_ts.store(store_timestamp, Ordering::Release);
        self.messages_put
            .fetch_add(msgs.len() as u64, Ordering::AcqRel);
        drop(st);
        self.notify.notify_waiters();
        Ok((results, end))
    }
}
