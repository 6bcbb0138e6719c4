//! The 5.x consumption model (receive, invisible time, ack by receipt
//! handle, DLQ after max attempts) on 4.x pulls and offsets.
//!
//! Per (group, topic, broker, queue) the proxy keeps a [`QueueState`]:
//! everything below `next_pull` was delivered or skipped by the filter;
//! `pending` holds the delivered, unacknowledged offsets with the time
//! they become visible again. The group's committed offset on the broker
//! is the smallest pending offset (or `next_pull`), so an acknowledged
//! message never comes back after a broker restart, and an unacknowledged
//! one is still above the committed offset when the proxy restarts (then
//! it is delivered again: at least once). A message whose invisible time
//! passed is pulled again at its offset; after the group's max attempts
//! (`retryMaxTimes` + 1) it goes to `%DLQ%<group>` through
//! CONSUMER_SEND_MSG_BACK with delay level -1.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mq_client::{
    AdminClient, ClientConfig, MessageExt, MessageQueue, MessageSelector, PullConsumer, PullStatus,
};
use mq_protocol::header::ConsumerSendMsgBackRequestHeader;
use mq_protocol::{request_code, RemotingCommand};
use tracing::{debug, warn};

use crate::pb::Code;
use crate::status::ProxyError;

/// The longest a receive is held waiting for a message.
pub(crate) const MAX_LONG_POLL: Duration = Duration::from_secs(20);

/// One delivery's receipt handle: `<broker>/<queue>/<offset>/<delivery>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Receipt {
    pub broker: String,
    pub queue_id: i32,
    pub offset: i64,
    pub delivery: u64,
}

impl Receipt {
    pub fn encode(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.broker, self.queue_id, self.offset, self.delivery
        )
    }

    pub fn decode(handle: &str) -> Result<Receipt, ProxyError> {
        let invalid = || {
            ProxyError::new(
                Code::InvalidReceiptHandle,
                format!("{handle:?} is not a receipt handle of this proxy"),
            )
        };
        let mut parts = handle.rsplitn(4, '/');
        let delivery = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(invalid)?;
        let offset = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(invalid)?;
        let queue_id = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(invalid)?;
        let broker = parts.next().filter(|b| !b.is_empty()).ok_or_else(invalid)?;
        Ok(Receipt {
            broker: broker.to_owned(),
            queue_id,
            offset,
            delivery,
        })
    }
}

#[derive(Debug, Clone)]
struct Pending {
    visible_at: Instant,
    delivery: u64,
    attempts: i32,
}

/// What the proxy knows of one queue for one group.
#[derive(Debug, Default)]
pub(crate) struct QueueState {
    next_pull: i64,
    pending: BTreeMap<i64, Pending>,
    next_delivery: u64,
}

impl QueueState {
    pub fn starting_at(offset: i64) -> Self {
        QueueState {
            next_pull: offset,
            ..QueueState::default()
        }
    }

    /// The offset to commit: below it everything is acknowledged.
    pub fn committable(&self) -> i64 {
        self.pending
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_pull)
    }

    /// Pending offsets visible again at `now`, oldest first.
    pub fn expired(&self, now: Instant, max: usize) -> Vec<(i64, i32)> {
        self.pending
            .iter()
            .filter(|(_, p)| p.visible_at <= now)
            .take(max)
            .map(|(o, p)| (*o, p.attempts))
            .collect()
    }

    /// Records a delivery of `offset` invisible until `visible_at`; returns
    /// its delivery number and attempt count.
    pub fn deliver(&mut self, offset: i64, visible_at: Instant) -> (u64, i32) {
        self.next_delivery += 1;
        let delivery = self.next_delivery;
        let entry = self.pending.entry(offset).or_insert(Pending {
            visible_at,
            delivery,
            attempts: 0,
        });
        entry.visible_at = visible_at;
        entry.delivery = delivery;
        entry.attempts += 1;
        (delivery, entry.attempts)
    }

    /// Moves the pull position past a pull's range.
    pub fn pulled_to(&mut self, next: i64) {
        self.next_pull = self.next_pull.max(next);
    }

    fn check(&self, receipt: &Receipt) -> Result<(), ProxyError> {
        match self.pending.get(&receipt.offset) {
            Some(p) if p.delivery == receipt.delivery => Ok(()),
            _ => Err(ProxyError::new(
                Code::InvalidReceiptHandle,
                "the receipt handle expired: the message was acknowledged or delivered again",
            )),
        }
    }

    /// Acknowledges the delivery `receipt` names.
    pub fn ack(&mut self, receipt: &Receipt) -> Result<(), ProxyError> {
        self.check(receipt)?;
        self.pending.remove(&receipt.offset);
        Ok(())
    }

    /// Gives the delivery `receipt` names another invisible time; returns
    /// its new delivery number.
    pub fn change_invisible(
        &mut self,
        receipt: &Receipt,
        visible_at: Instant,
    ) -> Result<u64, ProxyError> {
        self.check(receipt)?;
        self.next_delivery += 1;
        let delivery = self.next_delivery;
        let pending = self
            .pending
            .get_mut(&receipt.offset)
            .expect("checked above");
        pending.visible_at = visible_at;
        pending.delivery = delivery;
        Ok(delivery)
    }
}

type QueueKey = (String, String, String, i32);

/// One queue's state with the lock that lets one receive pull it at a time.
pub(crate) struct QueueSlot {
    pub state: Mutex<QueueState>,
    pub pulling: tokio::sync::Mutex<()>,
}

/// The consumer side: a 4.x pull consumer per group and the queues' states.
pub(crate) struct Consumers {
    client: ClientConfig,
    consumers: tokio::sync::Mutex<HashMap<String, PullConsumer>>,
    queues: Mutex<HashMap<QueueKey, Arc<QueueSlot>>>,
    policies: Mutex<HashMap<String, (Instant, GroupPolicy)>>,
}

/// What a consumer group's subscription group config on the broker decides
/// for 5.x consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupPolicy {
    /// Deliveries before the DLQ: `retryMaxTimes` + 1.
    pub max_attempts: i32,
    /// `consumeMessageOrderly`: FIFO whatever the client says.
    pub fifo: bool,
}

impl Default for GroupPolicy {
    fn default() -> Self {
        GroupPolicy {
            max_attempts: crate::service::DEFAULT_MAX_ATTEMPTS,
            fifo: false,
        }
    }
}

/// How long a group's policy is used before it is read again (an
/// `updateSubGroup` takes effect within this time).
const POLICY_TTL: Duration = Duration::from_secs(10);

/// A message a receive delivers.
pub(crate) struct Delivered {
    pub message: MessageExt,
    pub receipt: Receipt,
    pub attempts: i32,
}

impl Consumers {
    pub fn new(client: ClientConfig) -> Self {
        Consumers {
            client,
            consumers: Default::default(),
            queues: Default::default(),
            policies: Default::default(),
        }
    }

    pub async fn consumer(&self, group: &str) -> Result<PullConsumer, ProxyError> {
        let mut consumers = self.consumers.lock().await;
        if let Some(c) = consumers.get(group) {
            return Ok(c.clone());
        }
        let consumer = PullConsumer::start(group, self.client.clone()).await?;
        consumers.insert(group.to_owned(), consumer.clone());
        Ok(consumer)
    }

    pub async fn shutdown(&self) {
        for consumer in self.consumers.lock().await.values() {
            consumer.shutdown().await;
        }
    }

    fn lock_queues(&self) -> std::sync::MutexGuard<'_, HashMap<QueueKey, Arc<QueueSlot>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of `mq` for `group`, starting at the committed offset (or
    /// the queue's first) the first time.
    pub async fn slot(&self, group: &str, mq: &MessageQueue) -> Result<Arc<QueueSlot>, ProxyError> {
        let key = (
            group.to_owned(),
            mq.topic.clone(),
            mq.broker_name.clone(),
            mq.queue_id,
        );
        if let Some(slot) = self.lock_queues().get(&key) {
            return Ok(slot.clone());
        }
        let consumer = self.consumer(group).await?;
        let start = match consumer.committed_offset(mq).await? {
            Some(offset) if offset >= 0 => offset,
            _ => consumer.min_offset(mq).await?,
        };
        let slot = Arc::new(QueueSlot {
            state: Mutex::new(QueueState::starting_at(start)),
            pulling: tokio::sync::Mutex::new(()),
        });
        Ok(self.lock_queues().entry(key).or_insert(slot).clone())
    }

    /// The slot a receipt names, if the proxy knows it.
    pub fn known_slot(
        &self,
        group: &str,
        topic: &str,
        receipt: &Receipt,
    ) -> Option<Arc<QueueSlot>> {
        self.lock_queues()
            .get(&(
                group.to_owned(),
                topic.to_owned(),
                receipt.broker.clone(),
                receipt.queue_id,
            ))
            .cloned()
    }

    /// The group's policy from its subscription group on `broker_addr`
    /// (RocketMQ's defaults for a group the broker does not know), read at
    /// most every [`POLICY_TTL`].
    pub async fn policy(&self, admin: &AdminClient, group: &str, broker_addr: &str) -> GroupPolicy {
        if let Some((read_at, policy)) = self
            .policies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(group)
        {
            if read_at.elapsed() < POLICY_TTL {
                return *policy;
            }
        }
        let policy = match admin.subscription_groups(broker_addr).await {
            Ok(groups) => groups
                .get(group)
                .map_or_else(GroupPolicy::default, |g| GroupPolicy {
                    max_attempts: g.retry_max_times + 1,
                    fifo: g.consume_message_orderly,
                }),
            Err(error) => {
                warn!(group, %error, "cannot read the subscription group");
                return GroupPolicy::default();
            }
        };
        self.policies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group.to_owned(), (Instant::now(), policy));
        policy
    }

    /// The group's policy if it was read lately (no request to a broker).
    pub fn cached_policy(&self, group: &str) -> Option<GroupPolicy> {
        self.policies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(group)
            .filter(|(read_at, _)| read_at.elapsed() < POLICY_TTL)
            .map(|(_, policy)| *policy)
    }

    /// Commits `state`'s committable offset of `mq` for `group`.
    pub async fn commit(
        &self,
        group: &str,
        mq: &MessageQueue,
        offset: i64,
    ) -> Result<(), ProxyError> {
        self.consumer(group)
            .await?
            .commit_offset(mq, offset)
            .await?;
        Ok(())
    }

    /// Receives up to `batch` messages of `mq`: first those whose invisible
    /// time passed (to the DLQ past `max_attempts`), then new ones, waiting
    /// up to `wait` for one.
    #[allow(clippy::too_many_arguments)]
    pub async fn receive(
        &self,
        admin: &AdminClient,
        broker_addr: &str,
        group: &str,
        mq: &MessageQueue,
        expression: &MessageSelector,
        batch: i32,
        invisible: Duration,
        wait: Duration,
        fifo: bool,
    ) -> Result<Vec<Delivered>, ProxyError> {
        let consumer = self.consumer(group).await?;
        let slot = self.slot(group, mq).await?;
        let _pulling = slot.pulling.lock().await;
        let policy = self.policy(admin, group, broker_addr).await;
        let max_attempts = policy.max_attempts;
        let mut out = Vec::new();
        // FIFO (the client asked, or the group is `consumeMessageOrderly`):
        // nothing after a message that is not acknowledged yet; the first
        // one comes again once its invisible time passed.
        let head = (fifo || policy.fifo)
            .then(|| {
                lock(&slot.state)
                    .pending
                    .iter()
                    .next()
                    .map(|(o, p)| (*o, p.attempts, p.visible_at))
            })
            .flatten();
        let expired = match head {
            Some((offset, attempts, visible_at)) => {
                let until = visible_at.min(Instant::now() + wait);
                tokio::time::sleep_until(until.into()).await;
                if visible_at > Instant::now() {
                    return Ok(vec![]);
                }
                vec![(offset, attempts)]
            }
            None => lock(&slot.state).expired(Instant::now(), batch as usize),
        };
        for (offset, attempts) in expired {
            let result = consumer.pull(mq, expression, offset, 1).await?;
            let Some(message) = result
                .messages
                .into_iter()
                .find(|m| m.queue_offset == offset)
            else {
                // Gone from the store, or no longer matching: nothing to redeliver.
                lock(&slot.state).pending.remove(&offset);
                continue;
            };
            if attempts >= max_attempts {
                self.to_dlq(admin, broker_addr, group, &message, max_attempts)
                    .await?;
                lock(&slot.state).pending.remove(&offset);
                debug!(group, offset, attempts, "to the DLQ after its last attempt");
                continue;
            }
            out.push(self.deliver(&slot, mq, message, invisible));
        }
        if head.is_none() && out.len() < batch as usize {
            let from = lock(&slot.state).next_pull;
            let want = batch - out.len() as i32;
            let result = if out.is_empty() && !wait.is_zero() {
                consumer
                    .pull_blocking(mq, expression, from, want, wait)
                    .await?
            } else {
                consumer.pull(mq, expression, from, want).await?
            };
            match result.status {
                PullStatus::Found | PullStatus::NoMatchedMsg | PullStatus::OffsetIllegal => {
                    lock(&slot.state).pulled_to(result.next_begin_offset);
                }
                PullStatus::NoNewMsg => {}
            }
            for message in result.messages {
                out.push(self.deliver(&slot, mq, message, invisible));
            }
        }
        let committable = lock(&slot.state).committable();
        self.commit(group, mq, committable).await?;
        Ok(out)
    }

    fn deliver(
        &self,
        slot: &QueueSlot,
        mq: &MessageQueue,
        message: MessageExt,
        invisible: Duration,
    ) -> Delivered {
        let (delivery, attempts) =
            lock(&slot.state).deliver(message.queue_offset, Instant::now() + invisible);
        Delivered {
            receipt: Receipt {
                broker: mq.broker_name.clone(),
                queue_id: mq.queue_id,
                offset: message.queue_offset,
                delivery,
            },
            message,
            attempts,
        }
    }

    /// CONSUMER_SEND_MSG_BACK with delay level -1: straight to the DLQ.
    pub async fn to_dlq(
        &self,
        admin: &AdminClient,
        broker_addr: &str,
        group: &str,
        message: &MessageExt,
        max_attempts: i32,
    ) -> Result<(), ProxyError> {
        let header = ConsumerSendMsgBackRequestHeader {
            offset: message.commit_log_offset,
            group: group.to_owned(),
            delay_level: -1,
            origin_msg_id: Some(message.msg_id()),
            origin_topic: Some(message.topic.clone()),
            unit_mode: Some(false),
            max_reconsume_times: Some(max_attempts - 1),
        };
        let request =
            RemotingCommand::request(request_code::CONSUMER_SEND_MSG_BACK).with_header(&header);
        admin.call_broker(broker_addr, request).await?;
        Ok(())
    }
}

pub(crate) fn lock(state: &Mutex<QueueState>) -> std::sync::MutexGuard<'_, QueueState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_round_trip_and_junk_is_refused() {
        let receipt = Receipt {
            broker: "broker-a".into(),
            queue_id: 3,
            offset: 42,
            delivery: 7,
        };
        assert_eq!(receipt.encode(), "broker-a/3/42/7");
        assert_eq!(Receipt::decode(&receipt.encode()).unwrap(), receipt);
        for junk in ["", "a/b/c/d", "/1/2/3", "b/1/2", "b/1/2/x"] {
            assert_eq!(
                Receipt::decode(junk).unwrap_err().code,
                Code::InvalidReceiptHandle,
                "{junk:?}"
            );
        }
    }

    #[test]
    fn the_committed_offset_stays_below_every_unacknowledged_message() {
        let now = Instant::now();
        let later = now + Duration::from_secs(30);
        let mut state = QueueState::starting_at(10);
        assert_eq!(state.committable(), 10);
        let (d10, _) = state.deliver(10, later);
        let (d11, _) = state.deliver(11, later);
        state.pulled_to(12);
        assert_eq!(state.committable(), 10);
        let r = |offset, delivery| Receipt {
            broker: "b".into(),
            queue_id: 0,
            offset,
            delivery,
        };
        state.ack(&r(11, d11)).unwrap();
        assert_eq!(state.committable(), 10, "10 is still unacknowledged");
        state.ack(&r(10, d10)).unwrap();
        assert_eq!(state.committable(), 12);
        assert_eq!(
            state.ack(&r(10, d10)).unwrap_err().code,
            Code::InvalidReceiptHandle,
            "a second ack of the same delivery"
        );
    }

    #[test]
    fn an_expired_message_is_delivered_again_with_a_new_handle() {
        let now = Instant::now();
        let mut state = QueueState::starting_at(0);
        let (first, attempts) = state.deliver(0, now);
        assert_eq!(attempts, 1);
        state.pulled_to(1);
        assert_eq!(state.expired(now, 10), vec![(0, 1)]);
        let (second, attempts) = state.deliver(0, now + Duration::from_secs(60));
        assert_eq!(attempts, 2);
        assert!(state.expired(now, 10).is_empty());
        let stale = Receipt {
            broker: "b".into(),
            queue_id: 0,
            offset: 0,
            delivery: first,
        };
        assert_eq!(
            state.ack(&stale).unwrap_err().code,
            Code::InvalidReceiptHandle
        );
        let current = Receipt {
            delivery: second,
            ..stale.clone()
        };
        let third = state.change_invisible(&current, now).unwrap();
        assert_eq!(state.expired(now, 10), vec![(0, 2)]);
        assert!(state.ack(&current).is_err(), "the old handle is replaced");
        state
            .ack(&Receipt {
                delivery: third,
                ..current
            })
            .unwrap();
        assert_eq!(state.committable(), 1);
    }
}
