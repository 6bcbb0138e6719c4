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
//! it is delivered again: at least once).
//!
//! A message whose invisible time passed is *revived*: the proxy writes a
//! copy of it to the group's retry queue on the same broker (queue 0 of
//! `%RETRY%<group>`, the 4.x retry topic) with its attempts so far as the
//! copy's reconsume times, and lets the original's offset be committed.
//! The copy is delivered from there, by any receive of the group on that
//! broker, as attempt reconsume times + 1. So the count of attempts lives
//! in the store, not in this process: a broker or proxy restart repeats at
//! most the attempt that was in flight, instead of starting the count
//! again (RocketMQ 5's proxy revives into a retry topic too). After the
//! group's max attempts (`retryMaxTimes` + 1) a message goes to
//! `%DLQ%<group>` through CONSUMER_SEND_MSG_BACK with delay level -1.
//!
//! FIFO receives (the client asked, or the group is
//! `consumeMessageOrderly`) deliver a queue in order, so an expired message
//! comes again in place, before anything after it; its attempts are
//! counted in this process only, and start again after a restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mq_client::{
    AdminClient, ClientConfig, MessageExt, MessageQueue, MessageSelector, PullConsumer, PullStatus,
};
use mq_protocol::header::{ConsumerSendMsgBackRequestHeader, SendMessageRequestHeader};
use mq_protocol::message::{properties_to_string, property, sys_flag};
use mq_protocol::{request_code, topic, RemotingCommand, ResponseCode};
use tracing::{debug, warn};

use crate::pb::Code;
use crate::status::ProxyError;

/// The longest a receive is held waiting for a message.
pub(crate) const MAX_LONG_POLL: Duration = Duration::from_secs(20);

/// How many expired deliveries one receive revives per queue at most, so
/// that a receive after a long pause still answers soon.
const MAX_REVIVE_PER_RECEIVE: usize = 32;

/// The producer group the revived copies are sent under.
const REVIVE_PRODUCER_GROUP: &str = "PROXY_REVIVE_GROUP";

/// One delivery's receipt handle: `<broker>/<queue>/<offset>/<delivery>`,
/// the queue as `r<id>` when the delivery came from the group's retry
/// queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Receipt {
    pub broker: String,
    pub queue_id: i32,
    pub offset: i64,
    pub delivery: u64,
    /// From the group's retry queue, not from the topic's.
    pub retry: bool,
}

impl Receipt {
    pub fn encode(&self) -> String {
        let r = if self.retry { "r" } else { "" };
        format!(
            "{}/{r}{}/{}/{}",
            self.broker, self.queue_id, self.offset, self.delivery
        )
    }

    /// The 4.x queue the delivery came from: `topic`'s, or `group`'s retry
    /// queue.
    pub fn queue(&self, group: &str, topic: &str) -> MessageQueue {
        MessageQueue {
            topic: if self.retry {
                topic::retry_topic(group)
            } else {
                topic.to_owned()
            },
            broker_name: self.broker.clone(),
            queue_id: self.queue_id,
        }
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
        let queue = parts.next().ok_or_else(invalid)?;
        let (retry, queue) = match queue.strip_prefix('r') {
            Some(rest) => (true, rest),
            None => (false, queue),
        };
        let queue_id = queue.parse().map_err(|_| invalid())?;
        let broker = parts.next().filter(|b| !b.is_empty()).ok_or_else(invalid)?;
        Ok(Receipt {
            broker: broker.to_owned(),
            queue_id,
            offset,
            delivery,
            retry,
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
    /// The offset last committed to the broker from this state.
    committed: Option<i64>,
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

    /// Records a delivery of `offset` invisible until `visible_at`, a
    /// message delivered `earlier` times before it came to this queue (a
    /// revived copy's reconsume times); returns its delivery number and
    /// attempt count.
    pub fn deliver(&mut self, offset: i64, visible_at: Instant, earlier: i32) -> (u64, i32) {
        self.next_delivery += 1;
        let delivery = self.next_delivery;
        let entry = self.pending.entry(offset).or_insert(Pending {
            visible_at,
            delivery,
            attempts: earlier.max(0),
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

    /// The committable offset if it differs from the one last committed.
    pub fn commit_due(&self) -> Option<i64> {
        let offset = self.committable();
        (self.committed != Some(offset)).then_some(offset)
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
    /// (group, broker) whose retry topic was missing, and since when.
    missing_retry: Mutex<HashMap<(String, String), Instant>>,
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
    /// The topic it was sent to (a revived copy's `RETRY_TOPIC`).
    pub topic: String,
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
            missing_retry: Default::default(),
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

    /// The slot a receipt names (see [`Receipt::queue`]), if the proxy
    /// knows it.
    pub fn known_slot(
        &self,
        group: &str,
        topic: &str,
        receipt: &Receipt,
    ) -> Option<Arc<QueueSlot>> {
        let mq = receipt.queue(group, topic);
        self.lock_queues()
            .get(&(group.to_owned(), mq.topic, mq.broker_name, mq.queue_id))
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

    /// Commits `offset` of `mq` for `group`.
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

    /// Commits `slot`'s committable offset of `mq` for `group` and records
    /// it; with `only_if_moved`, only when it differs from the one last
    /// committed from this slot.
    pub async fn commit_slot(
        &self,
        group: &str,
        mq: &MessageQueue,
        slot: &QueueSlot,
        only_if_moved: bool,
    ) -> Result<(), ProxyError> {
        let offset = {
            let state = lock(&slot.state);
            match (only_if_moved, state.commit_due()) {
                (true, None) => return Ok(()),
                _ => state.committable(),
            }
        };
        self.commit(group, mq, offset).await?;
        lock(&slot.state).committed = Some(offset);
        Ok(())
    }

    /// Receives up to `batch` messages of `mq`, waiting up to `wait` for
    /// one. FIFO: the queue's first unacknowledged message again once its
    /// invisible time passed (to the DLQ past `max_attempts`), else new
    /// ones. Otherwise: expired deliveries of this queue and of the group's
    /// retry queue are revived (or go to the DLQ), then the retry queue's
    /// messages are delivered, then new ones of `mq`.
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
        let back = SendBack {
            admin,
            broker_addr,
            group,
            max_attempts,
        };
        let mut out = Vec::new();
        let mut blocked = false;
        if fifo || policy.fifo {
            // Nothing after a message that is not acknowledged yet; the
            // first one comes again once its invisible time passed.
            let head = lock(&slot.state)
                .pending
                .iter()
                .next()
                .map(|(o, p)| (*o, p.attempts, p.visible_at));
            if let Some((offset, attempts, visible_at)) = head {
                blocked = true;
                let until = visible_at.min(Instant::now() + wait);
                tokio::time::sleep_until(until.into()).await;
                if visible_at > Instant::now() {
                    return Ok(vec![]);
                }
                let found = consumer.pull(mq, expression, offset, 1).await?;
                match found
                    .messages
                    .into_iter()
                    .find(|m| m.queue_offset == offset)
                {
                    // Gone from the store, or no longer matching: nothing to redeliver.
                    None => {
                        lock(&slot.state).pending.remove(&offset);
                    }
                    Some(message) if attempts >= max_attempts => {
                        back.to_dlq(&message).await?;
                        lock(&slot.state).pending.remove(&offset);
                        debug!(group, offset, attempts, "to the DLQ after its last attempt");
                    }
                    Some(message) => out.push(deliver(&slot, mq, message, invisible, false)),
                }
            }
        } else {
            self.revive_expired(&consumer, &slot, mq, expression, &back)
                .await?;
            let retry_mq = retry_queue(group, &mq.broker_name);
            if let Some(retry) = self.retry_slot(group, &retry_mq).await? {
                let _pulling_retry = retry.pulling.lock().await;
                let all = MessageSelector::all();
                self.revive_expired(&consumer, &retry, &retry_mq, &all, &back)
                    .await?;
                let from = lock(&retry.state).next_pull;
                match consumer.pull(&retry_mq, &all, from, batch).await {
                    Ok(result) => {
                        if !matches!(result.status, PullStatus::NoNewMsg) {
                            lock(&retry.state).pulled_to(result.next_begin_offset);
                        }
                        for message in result.messages {
                            out.push(deliver(&retry, &retry_mq, message, invisible, true));
                        }
                    }
                    Err(e) if topic_missing(&e) => {
                        self.retry_missing(group, &retry_mq.broker_name);
                    }
                    Err(e) => return Err(e.into()),
                }
                self.commit_slot(group, &retry_mq, &retry, true).await?;
            }
        }
        if !blocked && out.len() < batch as usize {
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
                out.push(deliver(&slot, mq, message, invisible, false));
            }
        }
        self.commit_slot(group, mq, &slot, false).await?;
        Ok(out)
    }

    /// Revives the deliveries of `mq` whose invisible time passed: each is
    /// pulled again at its offset and written to the group's retry queue
    /// with its attempts so far, or to the DLQ once it had the group's max
    /// attempts; then it is no longer pending here (so the offset may be
    /// committed past it). A crash between the copy and the commit delivers
    /// it twice, never not at all.
    async fn revive_expired(
        &self,
        consumer: &PullConsumer,
        slot: &QueueSlot,
        mq: &MessageQueue,
        expression: &MessageSelector,
        back: &SendBack<'_>,
    ) -> Result<(), ProxyError> {
        let expired = lock(&slot.state).expired(Instant::now(), MAX_REVIVE_PER_RECEIVE);
        for (offset, attempts) in expired {
            let found = match consumer.pull(mq, expression, offset, 1).await {
                Ok(found) => found
                    .messages
                    .into_iter()
                    .find(|m| m.queue_offset == offset),
                Err(e) if topic_missing(&e) => None,
                Err(e) => return Err(e.into()),
            };
            match found {
                // Gone from the store, or no longer matching: nothing to redeliver.
                None => {}
                Some(message) if attempts >= back.max_attempts => {
                    back.to_dlq(&message).await?;
                    debug!(
                        group = back.group,
                        offset, attempts, "to the DLQ after its last attempt"
                    );
                }
                Some(message) => {
                    back.revive(&message, attempts).await?;
                    self.missing_retry
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&(back.group.to_owned(), mq.broker_name.clone()));
                    debug!(
                        group = back.group,
                        offset, attempts, "revived to the retry queue"
                    );
                }
            }
            lock(&slot.state).pending.remove(&offset);
        }
        Ok(())
    }

    /// The state of the group's retry queue on a broker, `None` while a
    /// pull found no retry topic for the group there (asked again after
    /// [`POLICY_TTL`], or at once after a revive created it).
    async fn retry_slot(
        &self,
        group: &str,
        retry_mq: &MessageQueue,
    ) -> Result<Option<Arc<QueueSlot>>, ProxyError> {
        let key = (group.to_owned(), retry_mq.broker_name.clone());
        if let Some(since) = self
            .missing_retry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            if since.elapsed() < POLICY_TTL {
                return Ok(None);
            }
        }
        self.slot(group, retry_mq).await.map(Some)
    }

    fn retry_missing(&self, group: &str, broker: &str) {
        self.missing_retry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((group.to_owned(), broker.to_owned()), Instant::now());
    }
}

/// Whether the broker answered that the topic does not exist.
fn topic_missing(error: &mq_client::ClientError) -> bool {
    error.response_code() == Some(i32::from(ResponseCode::TOPIC_NOT_EXIST))
}

/// Queue 0 of `group`'s retry topic on `broker`: where this proxy revives
/// the group's expired deliveries.
pub(crate) fn retry_queue(group: &str, broker: &str) -> MessageQueue {
    MessageQueue {
        topic: topic::retry_topic(group),
        broker_name: broker.to_owned(),
        queue_id: 0,
    }
}

/// Records a delivery of `message` from `slot` (the queue `mq`).
fn deliver(
    slot: &QueueSlot,
    mq: &MessageQueue,
    message: MessageExt,
    invisible: Duration,
    retry: bool,
) -> Delivered {
    let earlier = if retry { message.reconsume_times } else { 0 };
    let (delivery, attempts) =
        lock(&slot.state).deliver(message.queue_offset, Instant::now() + invisible, earlier);
    let topic = if retry {
        message
            .property(property::RETRY_TOPIC)
            .unwrap_or(mq.topic.as_str())
            .to_owned()
    } else {
        mq.topic.clone()
    };
    Delivered {
        receipt: Receipt {
            broker: mq.broker_name.clone(),
            queue_id: mq.queue_id,
            offset: message.queue_offset,
            delivery,
            retry,
        },
        topic,
        message,
        attempts,
    }
}

/// Where and for whom messages go back: the group's broker and its max
/// attempts.
pub(crate) struct SendBack<'a> {
    pub admin: &'a AdminClient,
    pub broker_addr: &'a str,
    pub group: &'a str,
    pub max_attempts: i32,
}

impl SendBack<'_> {
    /// Writes a copy of `message`, delivered `attempts` times, to queue 0
    /// of the group's retry topic, visible at once (its invisible time was
    /// the wait): same body, flag, tags, keys, properties and message id,
    /// `RETRY_TOPIC` naming its topic, `attempts` as its reconsume times.
    /// Delay and transaction markers are dropped, so that the broker
    /// neither delays it again nor holds it as a half message.
    pub async fn revive(&self, message: &MessageExt, attempts: i32) -> Result<(), ProxyError> {
        let mut properties = message.properties.clone();
        properties
            .entry(property::RETRY_TOPIC.into())
            .or_insert_with(|| message.topic.clone());
        properties
            .entry(property::ORIGIN_MESSAGE_ID.into())
            .or_insert_with(|| message.msg_id());
        properties.remove(property::DELAY_TIME_LEVEL);
        properties.remove(property::TRANSACTION_PREPARED);
        if !properties.contains_key(property::TIMER_OUT_MS) {
            // A timer message the broker delivered carries TIMER_OUT_MS and
            // is not delayed again; without it these would delay the copy.
            for name in [
                property::TIMER_DELIVER_MS,
                property::TIMER_DELAY_SEC,
                property::TIMER_DELAY_MS,
            ] {
                properties.remove(name);
            }
        }
        let header = SendMessageRequestHeader {
            producer_group: REVIVE_PRODUCER_GROUP.to_owned(),
            topic: topic::retry_topic(self.group),
            default_topic: topic::AUTO_CREATE_TOPIC_KEY_TOPIC.to_owned(),
            default_topic_queue_nums: 1,
            queue_id: 0,
            sys_flag: sys_flag::with_transaction_type(
                message.sys_flag & !sys_flag::COMPRESSED,
                sys_flag::TRANSACTION_NOT_TYPE,
            ),
            born_timestamp: message.born_timestamp,
            flag: message.flag,
            properties: Some(properties_to_string(&properties)),
            reconsume_times: Some(attempts),
            unit_mode: None,
            batch: None,
            // The broker sends a retry-topic message whose reconsume times
            // reach this bound to the DLQ; the proxy decides that itself
            // (after `max_attempts` deliveries) and revives only below it.
            max_reconsume_times: Some(self.max_attempts),
        };
        let request = RemotingCommand::request(request_code::SEND_MESSAGE)
            .with_header(&header)
            .with_body(message.body.clone());
        self.admin.call_broker(self.broker_addr, request).await?;
        Ok(())
    }

    /// CONSUMER_SEND_MSG_BACK with delay level -1: straight to the DLQ.
    pub async fn to_dlq(&self, message: &MessageExt) -> Result<(), ProxyError> {
        let header = ConsumerSendMsgBackRequestHeader {
            offset: message.commit_log_offset,
            group: self.group.to_owned(),
            delay_level: -1,
            origin_msg_id: Some(message.msg_id()),
            origin_topic: Some(message.topic.clone()),
            unit_mode: Some(false),
            max_reconsume_times: Some(self.max_attempts - 1),
        };
        let request =
            RemotingCommand::request(request_code::CONSUMER_SEND_MSG_BACK).with_header(&header);
        self.admin.call_broker(self.broker_addr, request).await?;
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
            retry: false,
        };
        assert_eq!(receipt.encode(), "broker-a/3/42/7");
        assert_eq!(Receipt::decode(&receipt.encode()).unwrap(), receipt);
        assert_eq!(receipt.queue("g", "T").topic, "T");
        let revived = Receipt {
            retry: true,
            ..receipt
        };
        assert_eq!(revived.encode(), "broker-a/r3/42/7");
        assert_eq!(Receipt::decode(&revived.encode()).unwrap(), revived);
        let queue = revived.queue("g", "T");
        assert_eq!(
            (
                queue.topic.as_str(),
                queue.broker_name.as_str(),
                queue.queue_id
            ),
            ("%RETRY%g", "broker-a", 3)
        );
        for junk in [
            "", "a/b/c/d", "/1/2/3", "b/1/2", "b/1/2/x", "b/r/2/3", "b/x1/2/3",
        ] {
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
        let (d10, _) = state.deliver(10, later, 0);
        let (d11, _) = state.deliver(11, later, 0);
        state.pulled_to(12);
        assert_eq!(state.committable(), 10);
        let r = |offset, delivery| Receipt {
            broker: "b".into(),
            queue_id: 0,
            offset,
            delivery,
            retry: false,
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
        let (first, attempts) = state.deliver(0, now, 0);
        assert_eq!(attempts, 1);
        state.pulled_to(1);
        assert_eq!(state.expired(now, 10), vec![(0, 1)]);
        let (second, attempts) = state.deliver(0, now + Duration::from_secs(60), 0);
        assert_eq!(attempts, 2);
        assert!(state.expired(now, 10).is_empty());
        let stale = Receipt {
            broker: "b".into(),
            queue_id: 0,
            offset: 0,
            delivery: first,
            retry: false,
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

    #[test]
    fn a_revived_copy_counts_its_earlier_attempts() {
        let now = Instant::now();
        let mut state = QueueState::starting_at(0);
        let (_, attempts) = state.deliver(0, now, 3);
        assert_eq!(attempts, 4, "a copy revived after three deliveries");
        let (_, attempts) = state.deliver(0, now, 3);
        assert_eq!(attempts, 5, "its redelivery in place (FIFO) counts on");
    }

    #[test]
    fn a_commit_is_due_only_when_the_committable_offset_moved() {
        let mut state = QueueState::starting_at(5);
        assert_eq!(state.commit_due(), Some(5), "never committed");
        state.committed = Some(5);
        assert_eq!(state.commit_due(), None);
        let (delivery, _) = state.deliver(5, Instant::now(), 0);
        state.pulled_to(6);
        assert_eq!(state.commit_due(), None, "5 is still pending");
        state
            .ack(&Receipt {
                broker: "b".into(),
                queue_id: 0,
                offset: 5,
                delivery,
                retry: true,
            })
            .unwrap();
        assert_eq!(state.commit_due(), Some(6));
    }
}
