//! Concurrent consumption (RocketMQ's `ConsumeMessageConcurrentlyService`):
//! batches of a queue run in tasks of their own, at most
//! `consume_concurrency` listener calls at once; a batch to consume later
//! goes back to the broker (send-back), and messages whose send-back failed
//! are consumed again here after `local_retry_delay`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mq_protocol::MessageExt;
use tracing::warn;

use super::process_queue::ProcessQueue;
use super::started::{pause, Started};
use crate::consumer::listener::ConsumeStatus;

/// Counts a running listener call until dropped.
struct Active<'a>(&'a AtomicUsize);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Consumes one batch of `pq` (counted in `active_consumes` by the caller)
/// until every message is done or sent back.
pub(super) async fn consume_concurrently(
    started: Arc<Started>,
    pq: Arc<ProcessQueue>,
    msgs: Vec<MessageExt>,
) {
    let _active = Active(&started.active_consumes);
    let mut msgs = msgs;
    loop {
        let Ok(permit) = started.permits.clone().acquire_owned().await else {
            return;
        };
        if pq.is_dropped() {
            return;
        }
        let status = started.listener.consume_guarded(msgs.clone()).await;
        drop(permit);
        let failed = match status {
            ConsumeStatus::Success => Vec::new(),
            ConsumeStatus::ReconsumeLater if !started.clustering() => {
                warn!(
                    count = msgs.len(),
                    "broadcast messages not consumed are dropped"
                );
                Vec::new()
            }
            ConsumeStatus::ReconsumeLater => started.send_back_all(&pq, &msgs).await,
        };
        {
            let mut tracker = pq.tracker();
            for msg in &msgs {
                if !failed.iter().any(|f| f.queue_offset == msg.queue_offset) {
                    tracker.done(msg.queue_offset);
                }
            }
        }
        started.refresh_offset(&pq);
        if failed.is_empty() {
            return;
        }
        msgs = failed;
        for msg in &mut msgs {
            msg.reconsume_times += 1;
        }
        if pause(&started.stop.subscribe(), started.config.local_retry_delay).await {
            return;
        }
    }
}

impl Started {
    /// Sends `msgs` back to the broker for a later delivery; returns those
    /// whose send-back failed.
    async fn send_back_all(&self, pq: &ProcessQueue, msgs: &[MessageExt]) -> Vec<MessageExt> {
        let mut failed = Vec::new();
        for msg in msgs {
            if let Err(error) = self
                .instance
                .send_back(
                    &pq.mq,
                    msg,
                    &self.config.group,
                    0,
                    self.config.max_reconsume_times,
                )
                .await
            {
                warn!(msg_id = msg.msg_id(), %error, "send back failed, retrying locally");
                failed.push(msg.clone());
            }
        }
        failed
    }
}
