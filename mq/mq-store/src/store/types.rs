//! The values the store's API takes and returns: a message to put, what a
//! put wrote, what a pull found, what a cleaner step did, and counters.

use std::net::SocketAddr;

use bytes::Bytes;
use mq_protocol::MessageRecord;

/// A message to store, as the broker has it from a SEND_MESSAGE request.
#[derive(Debug, Clone)]
pub struct PutMessage {
    pub topic: String,
    pub queue_id: i32,
    pub flag: i32,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: Bytes,
    /// Properties already encoded as `name\u0001value\u0002...`.
    pub properties: String,
}

impl PutMessage {
    /// The record as stored at `commit_log_offset` with these offsets and
    /// store time (zeros give its size before it has a place).
    pub(super) fn record(
        &self,
        queue_offset: u64,
        commit_log_offset: u64,
        store_timestamp: i64,
    ) -> MessageRecord<'_> {
        MessageRecord {
            topic: &self.topic,
            queue_id: self.queue_id,
            flag: self.flag,
            queue_offset: queue_offset as i64,
            commit_log_offset: commit_log_offset as i64,
            sys_flag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            born_host: self.born_host,
            store_timestamp,
            store_host: self.store_host,
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: self.prepared_transaction_offset,
            body: &self.body,
            properties: &self.properties,
        }
    }
}

/// Outcome of a put that wrote the message (RocketMQ's PutMessageStatus
/// values that keep the data; refusals are [`StoreError`](crate::StoreError)s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutStatus {
    /// PUT_OK: written, and durable if SYNC_FLUSH.
    PutOk,
    /// FLUSH_DISK_TIMEOUT: written (and readable) but the SYNC_FLUSH flush did
    /// not finish within `syncFlushTimeout`; it stays queued.
    FlushDiskTimeout,
    /// FLUSH_SLAVE_TIMEOUT: written on a SYNC_MASTER, but no slave confirmed
    /// the bytes within `syncFlushTimeout` (the broker sets this, not the
    /// store).
    FlushSlaveTimeout,
    /// SLAVE_NOT_AVAILABLE: written on a SYNC_MASTER that has no slave
    /// connected, or one too far behind to wait for (set by the broker).
    SlaveNotAvailable,
}

/// What a put wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    pub status: PutStatus,
    /// The offset message id (store host + commit log offset, hex).
    pub msg_id: String,
    pub wrote_offset: u64,
    pub wrote_bytes: usize,
    pub queue_offset: u64,
    pub store_timestamp: i64,
}

/// RocketMQ's GetMessageStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetMessageStatus {
    Found,
    NoMatchedMessage,
    MessageWasRemoving,
    OffsetFoundNull,
    OffsetOverflowBadly,
    OffsetOverflowOne,
    OffsetTooSmall,
    NoMatchedLogicQueue,
    NoMessageInQueue,
}

/// Messages pulled from one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMessageResult {
    pub status: GetMessageStatus,
    /// Each message's stored bytes, as PULL_MESSAGE sends them.
    pub messages: Vec<Bytes>,
    /// Queue offset the consumer should ask for next.
    pub next_begin_offset: u64,
    pub min_offset: u64,
    pub max_offset: u64,
    /// Commit log offset of the last entry looked at (for slave-read advice).
    pub max_phy_offset_pulling: u64,
}

/// Result of one cleaner step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanOutcome {
    /// Deleted this many files (commit log, consume queue and index).
    Worked {
        deleted_files: usize,
    },
    Idle,
}

/// Upper bounds (ms) of the commit log flush latency buckets; a last,
/// unbounded bucket follows.
pub const FLUSH_LATENCY_BOUNDS_MS: [f64; 10] =
    [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0];

/// Counters for monitoring and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Commit log flushes that wrote something (one per group commit).
    pub commit_log_flushes: u64,
    /// Messages appended (put or replicated).
    pub messages_put: u64,
    /// Those flushes by duration: `flush_latency[i]` counts the ones within
    /// `FLUSH_LATENCY_BOUNDS_MS[i]` and above the bound before it; the last
    /// entry counts the longer ones.
    pub flush_latency: [u64; FLUSH_LATENCY_BOUNDS_MS.len() + 1],
    /// Total time (µs) of those flushes.
    pub flush_micros_total: u64,
}

/// What the flusher records per flush: lock-free counters.
#[derive(Debug, Default)]
pub(crate) struct FlushLatency {
    buckets: [std::sync::atomic::AtomicU64; FLUSH_LATENCY_BOUNDS_MS.len() + 1],
    micros_total: std::sync::atomic::AtomicU64,
}

impl FlushLatency {
    pub(crate) fn record(&self, took: std::time::Duration) {
        use std::sync::atomic::Ordering;
        let ms = took.as_secs_f64() * 1000.0;
        let bucket = FLUSH_LATENCY_BOUNDS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(FLUSH_LATENCY_BOUNDS_MS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.micros_total
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ([u64; FLUSH_LATENCY_BOUNDS_MS.len() + 1], u64) {
        use std::sync::atomic::Ordering;
        (
            std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            self.micros_total.load(Ordering::Relaxed),
        )
    }
}

/// What opening the store found and did, for the log and for tests: how
/// far back recovery had to look is what its time grows with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The `abort` file was there: the last stop was not clean.
    pub crashed: bool,
    /// Commit log offset the validation scan started at (the checkpoint's
    /// flushed point when it lies in the stored files).
    pub scanned_from: u64,
    /// End of the valid commit log data.
    pub commit_log_end: u64,
    /// Commit log offset the consume queue / index re-dispatch started at.
    pub redispatched_from: u64,
    /// Messages re-dispatched.
    pub redispatched: u64,
}

#[cfg(test)]
mod flush_latency_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_flush_lands_in_the_first_bucket_that_holds_it() {
        let latency = FlushLatency::default();
        latency.record(Duration::from_micros(50)); // <= 0.1 ms
        latency.record(Duration::from_micros(100)); // exactly 0.1 ms
        latency.record(Duration::from_micros(700)); // <= 1 ms
        latency.record(Duration::from_secs(3)); // beyond every bound
        let (buckets, micros) = latency.snapshot();
        assert_eq!(buckets[0], 2);
        assert_eq!(buckets[2], 1);
        assert_eq!(buckets[FLUSH_LATENCY_BOUNDS_MS.len()], 1);
        assert_eq!(buckets.iter().sum::<u64>(), 4);
        assert_eq!(micros, 50 + 100 + 700 + 3_000_000);
    }
}
