//! The pull loop of one owned queue (RocketMQ's `PullMessageService` for a
//! queue): long-poll the broker, record pulled offsets in the queue's
//! tracker, hand messages to the concurrent or ordered consumers; back off
//! while the queue is full, unlocked or failing.

use std::sync::Arc;
use std::time::Duration;

use mq_protocol::body::SubscriptionData;
use mq_protocol::header::{pull_sys_flag, PullMessageRequestHeader};
use mq_protocol::message::property;
use mq_protocol::topic::{retry_topic, RETRY_GROUP_TOPIC_PREFIX};
use mq_protocol::MessageExt;
use tracing::{debug, warn};

use super::concurrent::consume_concurrently;
use super::process_queue::ProcessQueue;
use super::started::{pause, stopped, Started};
use crate::consumer::api::PullStatus;
use crate::sync::lock;

/// The pause while a queue holds `pull_threshold_for_queue` messages.
const FULL_QUEUE_PAUSE: Duration = Duration::from_millis(50);
/// The pause while an ordered queue waits for its lock.
const UNLOCKED_PAUSE: Duration = Duration::from_millis(200);
/// How much longer than the broker's suspend time a pull may take.
const PULL_TIMEOUT_MARGIN: Duration = Duration::from_secs(15);

/// Pulls `pq` until it is released or the consumer stops.
pub(super) async fn pull_loop(started: Arc<Started>, pq: Arc<ProcessQueue>) {
    let stop = started.stop.subscribe();
    let instance = started.instance.clone();
    let needs_lock = started.needs_locks();
    loop {
        if pq.is_dropped() || *stop.borrow() {
            break;
        }
        if pq.tracker().in_flight() >= started.config.pull_threshold_for_queue {
            if pause(&stop, FULL_QUEUE_PAUSE).await {
                break;
            }
            continue;
        }
        if needs_lock && !pq.is_locked() {
            if pause(&stop, UNLOCKED_PAUSE).await {
                break;
            }
            continue;
        }
        let Some(sub) = started.subscription(&pq.mq.topic) else {
            break;
        };
        let header = started.pull_header(&pq, &sub);
        let timeout = started.config.broker_suspend_max + PULL_TIMEOUT_MARGIN;
        let result = tokio::select! {
            () = stopped(stop.clone()) => break,
            result = instance.pull(&pq.mq, header, timeout) => result,
        };
        match result {
            Ok(result) => match result.status {
                PullStatus::Found => {
                    let mut msgs: Vec<MessageExt> = result
                        .messages
                        .into_iter()
                        .filter(|m| sub.matches_tag(m.tags()))
                        .collect();
                    for msg in &mut msgs {
                        restore_retry_topic(&started.config.group, msg);
                    }
                    pq.tracker().pulled(
                        msgs.iter().map(|m| m.queue_offset),
                        result.next_begin_offset,
                    );
                    started.refresh_offset(&pq);
                    if !msgs.is_empty() {
                        started.dispatch(&pq, msgs);
                    }
                }
                PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                    pq.tracker().skip_to(result.next_begin_offset);
                    started.refresh_offset(&pq);
                }
                PullStatus::OffsetIllegal => {
                    warn!(mq = ?pq.mq, next = result.next_begin_offset, "pull offset moved");
                    pq.tracker().skip_to(result.next_begin_offset);
                    if !pq.is_dropped() {
                        started.offsets.set(&pq.mq, pq.tracker().committable());
                        let _ = started.offsets.persist(std::slice::from_ref(&pq.mq)).await;
                    }
                }
            },
            Err(error) => {
                debug!(mq = ?pq.mq, %error, "pull failed");
                if pause(&stop, started.config.pull_retry_delay).await {
                    break;
                }
            }
        }
    }
}

impl Started {
    /// PULL_MESSAGE from the queue's next offset, committing the stored
    /// offset on the way (clustering).
    fn pull_header(&self, pq: &ProcessQueue, sub: &SubscriptionData) -> PullMessageRequestHeader {
        let commit_offset = if self.clustering() {
            self.offsets.get(&pq.mq).unwrap_or(0)
        } else {
            0
        };
        let mut sys_flag = pull_sys_flag::SUSPEND | pull_sys_flag::SUBSCRIPTION;
        if commit_offset > 0 {
            sys_flag |= pull_sys_flag::COMMIT_OFFSET;
        }
        PullMessageRequestHeader {
            consumer_group: self.config.group.clone(),
            topic: pq.mq.topic.clone(),
            queue_id: pq.mq.queue_id,
            queue_offset: pq.tracker().next(),
            max_msg_nums: self.config.pull_batch_size,
            sys_flag,
            commit_offset,
            suspend_timeout_millis: self.config.broker_suspend_max.as_millis() as i64,
            subscription: Some(sub.sub_string.clone()),
            sub_version: sub.sub_version,
            expression_type: Some(sub.expression_type.clone()),
            max_msg_bytes: None,
        }
    }

    /// Hands pulled messages to the listener: into the queue's buffer when
    /// ordered, else in batches of `consume_batch_max_size`, a task each.
    fn dispatch(self: &Arc<Self>, pq: &Arc<ProcessQueue>, msgs: Vec<MessageExt>) {
        if self.listener.is_ordered() {
            lock(&pq.buffer).extend(msgs);
            pq.wake.notify_waiters();
            return;
        }
        let size = self.config.consume_batch_max_size.max(1);
        let mut msgs = msgs.into_iter().peekable();
        while msgs.peek().is_some() {
            let batch: Vec<MessageExt> = msgs.by_ref().take(size).collect();
            self.active_consumes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(consume_concurrently(self.clone(), pq.clone(), batch));
        }
    }
}

/// Gives retried messages their real topic back (RocketMQ's
/// `resetRetryAndNamespace`).
pub(super) fn restore_retry_topic(group: &str, msg: &mut MessageExt) {
    if msg.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) && msg.topic == retry_topic(group) {
        if let Some(real) = msg.property(property::RETRY_TOPIC) {
            msg.topic = real.to_owned();
        }
    }
}
