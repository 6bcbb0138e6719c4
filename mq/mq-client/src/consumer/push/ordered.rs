//! Ordered consumption (RocketMQ's `ConsumeMessageOrderlyService`): one
//! task per queue consumes its buffered messages one at a time in offset
//! order, only while the queue's lock is held (clustering); a message to
//! consume later is retried in place after `suspend_current_queue_time`,
//! and goes to the DLQ once out of retries.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use super::process_queue::ProcessQueue;
use super::started::{pause, stopped, Started};
use crate::consumer::listener::ConsumeStatus;
use crate::sync::lock;

/// How often a queue waiting for its lock or for messages looks again: the
/// lock state can change without a wake-up.
const IDLE_RECHECK: Duration = Duration::from_millis(500);

/// Consumes `pq`'s buffer until the queue is released or the consumer stops.
pub(super) async fn ordered_loop(started: Arc<Started>, pq: Arc<ProcessQueue>) {
    let stop = started.stop.subscribe();
    let needs_lock = started.needs_locks();
    loop {
        if pq.is_dropped() || *stop.borrow() {
            return;
        }
        let wake = pq.wake.notified();
        let ready = (!needs_lock || pq.is_locked())
            .then(|| lock(&pq.buffer).front().cloned())
            .flatten();
        let Some(msg) = ready else {
            tokio::select! {
                () = stopped(stop.clone()) => return,
                () = wake => {}
                () = tokio::time::sleep(IDLE_RECHECK) => {}
            }
            continue;
        };
        started.active_consumes.fetch_add(1, Ordering::SeqCst);
        let status = started.listener.consume_guarded(vec![msg.clone()]).await;
        let done = match status {
            ConsumeStatus::Success => true,
            ConsumeStatus::ReconsumeLater
                if msg.reconsume_times >= started.config.max_reconsume_times =>
            {
                // Out of retries: straight to the DLQ (delay level -1).
                match started
                    .instance
                    .send_back(
                        &pq.mq,
                        &msg,
                        &started.config.group,
                        -1,
                        started.config.max_reconsume_times,
                    )
                    .await
                {
                    Ok(()) => true,
                    Err(error) => {
                        warn!(msg_id = msg.msg_id(), %error, "send to DLQ failed");
                        false
                    }
                }
            }
            ConsumeStatus::ReconsumeLater => false,
        };
        started.active_consumes.fetch_sub(1, Ordering::SeqCst);
        if done {
            lock(&pq.buffer).pop_front();
            pq.tracker().done(msg.queue_offset);
            started.refresh_offset(&pq);
        } else {
            if let Some(front) = lock(&pq.buffer).front_mut() {
                front.reconsume_times += 1;
            }
            if pause(&stop, started.config.suspend_current_queue_time).await {
                return;
            }
        }
    }
}
