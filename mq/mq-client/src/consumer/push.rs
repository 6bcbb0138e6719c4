//! The push consumer: rebalance, one long-polling pull loop per owned
//! queue, concurrent or ordered consumption, send-back, offset commits.
//!
//! Data flow: the rebalance task decides which queues this member owns and
//! keeps a [`ProcessQueue`] per queue; each has a pull task that long-polls
//! the broker and records pulled offsets in its [`OffsetTracker`] before
//! handing the messages to consume tasks (concurrent) or to the queue's
//! single consume task (ordered). Finished messages leave the tracker, and
//! the offset store always holds the tracker's committable offset, which
//! the persist task writes to the brokers (or the local file).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use mq_protocol::body::{
    ConsumeFromWhere, ConsumeType, ConsumerData, MessageModel, MessageQueue, SubscriptionData,
};
use mq_protocol::header::{pull_sys_flag, PullMessageRequestHeader};
use mq_protocol::message::property;
use mq_protocol::route::{perm, TopicRouteData};
use mq_protocol::topic::{retry_topic, RETRY_GROUP_TOPIC_PREFIX};
use mq_protocol::MessageExt;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::allocate::allocate_averagely;
use super::api::PullStatus;
use super::listener::{ConsumeStatus, Listener};
use super::offset_store::OffsetStore;
use super::tracker::OffsetTracker;
use crate::config::ClientConfig;
use crate::id::now_millis;
use crate::instance::{ClientInstance, ConsumerRegistration};
use crate::{ClientError, Result};

/// Settings of a push consumer (RocketMQ's `DefaultMQPushConsumer` fields).
#[derive(Debug, Clone)]
pub struct PushConsumerConfig {
    pub group: String,
    pub message_model: MessageModel,
    /// Where a queue with no committed offset starts.
    pub consume_from_where: ConsumeFromWhere,
    /// For `ConsumeFromTimestamp`: Unix ms (default half an hour ago).
    pub consume_timestamp: i64,
    /// Messages per listener call (1).
    pub consume_batch_max_size: usize,
    /// Messages per pull (32).
    pub pull_batch_size: i32,
    /// Listener calls running at once (20).
    pub consume_concurrency: usize,
    /// Deliveries before a message goes to the DLQ (16).
    pub max_reconsume_times: i32,
    /// A queue stops pulling while this many of its messages are in flight (1000).
    pub pull_threshold_for_queue: usize,
    /// How often the group is rebalanced besides on membership changes (20 s).
    pub rebalance_interval: Duration,
    /// How long the broker holds a pull with nothing to return (15 s).
    pub broker_suspend_max: Duration,
    /// How often ordered consumers renew their queue locks (20 s).
    pub lock_renew_interval: Duration,
    /// The pause before an ordered queue retries a message (1 s).
    pub suspend_current_queue_time: Duration,
    /// The pause before a failed pull is tried again (1 s).
    pub pull_retry_delay: Duration,
    /// The pause before messages whose send-back failed are consumed
    /// again locally (5 s).
    pub local_retry_delay: Duration,
    /// The longest `shutdown` waits for running listener calls (10 s).
    pub shutdown_wait: Duration,
    /// Broadcasting offsets file; default
    /// `~/.rocketmq_offsets/<client id>/<group>/offsets.json`.
    pub offset_store_path: Option<PathBuf>,
}

impl PushConsumerConfig {
    pub fn new(group: impl Into<String>) -> Self {
        PushConsumerConfig {
            group: group.into(),
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::ConsumeFromLastOffset,
            consume_timestamp: now_millis() - 30 * 60 * 1000,
            consume_batch_max_size: 1,
            pull_batch_size: 32,
            consume_concurrency: 20,
            max_reconsume_times: 16,
            pull_threshold_for_queue: 1000,
            rebalance_interval: Duration::from_secs(20),
            broker_suspend_max: Duration::from_secs(15),
            lock_renew_interval: Duration::from_secs(20),
            suspend_current_queue_time: Duration::from_secs(1),
            pull_retry_delay: Duration::from_secs(1),
            local_retry_delay: Duration::from_secs(5),
            shutdown_wait: Duration::from_secs(10),
            offset_store_path: None,
        }
    }
}

/// A consumer the broker pushes to (by long polling): RocketMQ's
/// `DefaultMQPushConsumer`. Subscribe, then [`PushConsumer::start`] with a
/// listener.
#[derive(Clone)]
pub struct PushConsumer {
    inner: Arc<PushInner>,
}

struct PushInner {
    config: PushConsumerConfig,
    client: ClientConfig,
    subscriptions: Mutex<BTreeMap<String, SubscriptionData>>,
    instance: OnceLock<Arc<ClientInstance>>,
    listener: OnceLock<Listener>,
    offsets: OnceLock<OffsetStore>,
    queues: Mutex<HashMap<MessageQueue, Arc<ProcessQueue>>>,
    rebalance_now: Notify,
    rebalance_lock: tokio::sync::Mutex<()>,
    permits: Arc<Semaphore>,
    active_consumes: AtomicUsize,
    running: AtomicBool,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The state of one owned queue.
struct ProcessQueue {
    mq: MessageQueue,
    tracker: Mutex<OffsetTracker>,
    dropped: AtomicBool,
    /// Held through LOCK_BATCH_MQ (ordered clustering only).
    locked: AtomicBool,
    /// Ordered consumption: pulled messages waiting, in offset order.
    buffer: Mutex<VecDeque<MessageExt>>,
    wake: Notify,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl ProcessQueue {
    fn tracker(&self) -> MutexGuard<'_, OffsetTracker> {
        lock(&self.tracker)
    }

    fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::SeqCst)
    }
}

impl PushConsumer {
    pub fn new(config: PushConsumerConfig, client: ClientConfig) -> Self {
        let (stop, _) = watch::channel(false);
        PushConsumer {
            inner: Arc::new(PushInner {
                permits: Arc::new(Semaphore::new(config.consume_concurrency.max(1))),
                config,
                client,
                subscriptions: Mutex::default(),
                instance: OnceLock::new(),
                listener: OnceLock::new(),
                offsets: OnceLock::new(),
                queues: Mutex::default(),
                rebalance_now: Notify::new(),
                rebalance_lock: tokio::sync::Mutex::new(()),
                active_consumes: AtomicUsize::new(0),
                running: AtomicBool::new(false),
                stop,
                tasks: Mutex::default(),
            }),
        }
    }

    /// Subscribes to `topic` with a tag expression (`*` or `A || B`).
    pub fn subscribe(&self, topic: &str, expression: &str) -> Result<()> {
        mq_protocol::topic::validate_topic(topic).map_err(ClientError::InvalidArgument)?;
        lock(&self.inner.subscriptions).insert(
            topic.to_owned(),
            SubscriptionData::parse(topic, expression, now_millis()),
        );
        if self.inner.running.load(Ordering::SeqCst) {
            self.inner.rebalance_now.notify_one();
        }
        Ok(())
    }

    pub fn group(&self) -> &str {
        &self.inner.config.group
    }

    /// This member's client id (one per instance name).
    pub fn client_id(&self) -> String {
        self.inner.client.client_id()
    }

    /// The queues this member owns now.
    pub fn assigned_queues(&self) -> Vec<MessageQueue> {
        let mut queues: Vec<_> = lock(&self.inner.queues).keys().cloned().collect();
        queues.sort();
        queues
    }

    /// Starts consuming with `listener`.
    pub async fn start(&self, listener: Listener) -> Result<()> {
        let inner = &self.inner;
        if inner.running.swap(true, Ordering::SeqCst) {
            return Err(ClientError::InvalidArgument(
                "the consumer is already started".into(),
            ));
        }
        let config = &inner.config;
        mq_protocol::topic::validate_group(&config.group).map_err(ClientError::InvalidArgument)?;
        if lock(&inner.subscriptions).is_empty() {
            inner.running.store(false, Ordering::SeqCst);
            return Err(ClientError::InvalidArgument(
                "subscribe to a topic before start".into(),
            ));
        }
        let instance = ClientInstance::acquire(&inner.client)?;
        let offsets = match config.message_model {
            MessageModel::Clustering => OffsetStore::remote(instance.clone(), &config.group),
            MessageModel::Broadcasting => {
                let path = config.offset_store_path.clone().unwrap_or_else(|| {
                    let home =
                        std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
                    home.join(".rocketmq_offsets")
                        .join(instance.client_id())
                        .join(&config.group)
                        .join("offsets.json")
                });
                match OffsetStore::local(path) {
                    Ok(store) => store,
                    Err(error) => {
                        instance.release();
                        inner.running.store(false, Ordering::SeqCst);
                        return Err(error);
                    }
                }
            }
        };
        if config.message_model == MessageModel::Clustering {
            let retry = retry_topic(&config.group);
            lock(&inner.subscriptions).insert(
                retry.clone(),
                SubscriptionData::parse(&retry, "*", now_millis()),
            );
        }
        if let Err(error) = instance.register_consumer(&config.group, inner.clone()) {
            instance.release();
            inner.running.store(false, Ordering::SeqCst);
            return Err(error);
        }
        let _ = inner.instance.set(instance.clone());
        let _ = inner.listener.set(listener);
        let _ = inner.offsets.set(offsets);
        let topics: Vec<String> = lock(&inner.subscriptions).keys().cloned().collect();
        for topic in &topics {
            if let Err(error) = instance.update_route(topic).await {
                instance.watch_topic(topic);
                debug!(topic, %error, "no route yet");
            }
        }
        instance.send_heartbeat_to_all().await;
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(rebalance_loop(inner.clone())));
        tasks.push(tokio::spawn(persist_loop(inner.clone())));
        if inner.needs_locks() {
            tasks.push(tokio::spawn(lock_loop(inner.clone())));
        }
        lock(&inner.tasks).extend(tasks);
        info!(
            group = config.group,
            client_id = instance.client_id(),
            "push consumer started"
        );
        Ok(())
    }

    /// Runs one rebalance now and waits for it.
    pub async fn rebalance(&self) {
        self.inner.rebalance().await;
    }

    /// Stops pulling, waits (bounded) for running listener calls, commits
    /// offsets, releases ordered locks, unregisters from the brokers.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        if !inner.running.swap(false, Ordering::SeqCst) {
            return;
        }
        inner.stop.send_replace(true);
        for task in lock(&inner.tasks).drain(..) {
            task.abort();
        }
        let _guard = inner.rebalance_lock.lock().await;
        let queues: Vec<Arc<ProcessQueue>> = lock(&inner.queues).values().cloned().collect();
        for pq in &queues {
            let tasks: Vec<_> = lock(&pq.tasks).drain(..).collect();
            // The first task is the pull loop; ordered consume loops stop
            // between messages once dropped.
            for task in &tasks {
                task.abort();
            }
        }
        let deadline = tokio::time::Instant::now() + inner.config.shutdown_wait;
        while inner.active_consumes.load(Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for pq in &queues {
            pq.dropped.store(true, Ordering::SeqCst);
            inner.offsets().update(&pq.mq, pq.tracker().committable());
        }
        let mqs: Vec<MessageQueue> = queues.iter().map(|pq| pq.mq.clone()).collect();
        if let Err(error) = inner.offsets().persist(&mqs).await {
            warn!(%error, "offset commit on shutdown failed");
        }
        if inner.needs_locks() {
            inner.unlock_all(&mqs).await;
        }
        lock(&inner.queues).clear();
        let instance = inner.instance();
        instance.unregister_consumer(&inner.config.group).await;
        instance.release();
        info!(group = inner.config.group, "push consumer stopped");
    }
}

impl ConsumerRegistration for PushInner {
    fn consumer_data(&self) -> ConsumerData {
        ConsumerData {
            group_name: self.config.group.clone(),
            consume_type: ConsumeType::ConsumePassively,
            message_model: self.config.message_model,
            consume_from_where: self.config.consume_from_where,
            subscription_data_set: lock(&self.subscriptions).values().cloned().collect(),
            unit_mode: false,
        }
    }

    fn trigger_rebalance(&self) {
        self.rebalance_now.notify_one();
    }

    fn running_info(&self) -> mq_protocol::admin_body::ConsumerRunningInfo {
        use mq_protocol::admin_body::{running_info, ProcessQueueInfo};
        let mut info = crate::callback::basic_running_info(&self.consumer_data());
        let ordered = self.listener.get().is_some_and(Listener::is_ordered);
        for (key, value) in [
            (running_info::PROP_CONSUME_ORDERLY, ordered.to_string()),
            (
                running_info::PROP_THREADPOOL_CORE_SIZE,
                self.config.consume_concurrency.to_string(),
            ),
        ] {
            info.properties.insert(key.to_owned(), value);
        }
        for (mq, pq) in lock(&self.queues).iter() {
            let tracker = pq.tracker();
            info.mq_table.insert(
                mq.clone(),
                ProcessQueueInfo {
                    commit_offset: self.offsets.get().and_then(|o| o.get(mq)).unwrap_or(-1),
                    cached_msg_min_offset: tracker.committable(),
                    cached_msg_max_offset: tracker.next() - 1,
                    cached_msg_count: tracker.in_flight() as i32,
                    locked: pq.locked.load(Ordering::SeqCst),
                    droped: pq.is_dropped(),
                    ..ProcessQueueInfo::default()
                },
            );
        }
        // No RT/TPS figures: this consumer does not measure them, and
        // zeros would read as "idle".
        info
    }

    fn topic_offsets(&self, topic: &str) -> BTreeMap<MessageQueue, i64> {
        let Some(offsets) = self.offsets.get() else {
            return BTreeMap::new();
        };
        lock(&self.queues)
            .keys()
            .filter(|mq| mq.topic == topic)
            .filter_map(|mq| offsets.get(mq).map(|o| (mq.clone(), o)))
            .collect()
    }

    /// Drops the reset queues this member holds (their in-flight messages
    /// no longer commit), records the new offsets, and rebalances: the
    /// queues come back starting from the stored, reset offsets.
    fn reset_offsets(&self, topic: &str, offsets: &BTreeMap<MessageQueue, i64>) {
        let dropped: Vec<Arc<ProcessQueue>> = {
            let mut queues = lock(&self.queues);
            offsets.keys().filter_map(|mq| queues.remove(mq)).collect()
        };
        for pq in &dropped {
            pq.dropped.store(true, Ordering::SeqCst);
            pq.wake.notify_waiters();
            for task in lock(&pq.tasks).drain(..) {
                task.abort();
            }
        }
        if let Some(store) = self.offsets.get() {
            for (mq, offset) in offsets {
                store.set(mq, *offset);
            }
        }
        info!(
            group = self.config.group,
            topic,
            dropped = dropped.len(),
            "offsets reset; rebalancing"
        );
        self.rebalance_now.notify_one();
    }
}

/// The readable queues of a topic, sorted.
pub(crate) fn readable_queues(topic: &str, route: &TopicRouteData) -> Vec<MessageQueue> {
    let mut queues: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .filter(|q| perm::is_readable(q.perm))
        .flat_map(|q| {
            (0..q.read_queue_nums.max(0)).map(|queue_id| MessageQueue {
                topic: topic.to_owned(),
                broker_name: q.broker_name.clone(),
                queue_id,
            })
        })
        .collect();
    queues.sort();
    queues
}

/// Gives retried messages their real topic back (RocketMQ's
/// `resetRetryAndNamespace`).
pub(crate) fn restore_retry_topic(group: &str, msg: &mut MessageExt) {
    if msg.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) && msg.topic == retry_topic(group) {
        if let Some(real) = msg.property(property::RETRY_TOPIC) {
            msg.topic = real.to_owned();
        }
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// How soon a rebalance that found a subscribed topic without a route (not
/// created yet) tries again, instead of waiting a whole rebalance interval:
/// the first message of a new topic then reaches its consumers in about a
/// second.
const MISSING_ROUTE_RETRY: Duration = Duration::from_secs(1);

async fn rebalance_loop(inner: Arc<PushInner>) {
    let stop = inner.stop.subscribe();
    loop {
        let complete = inner.rebalance().await;
        let wait = if complete {
            inner.config.rebalance_interval
        } else {
            inner.config.rebalance_interval.min(MISSING_ROUTE_RETRY)
        };
        tokio::select! {
            () = stopped(stop.clone()) => break,
            () = inner.rebalance_now.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn persist_loop(inner: Arc<PushInner>) {
    let stop = inner.stop.subscribe();
    loop {
        tokio::select! {
            () = stopped(stop.clone()) => break,
            () = tokio::time::sleep(inner.client.persist_consumer_offset_interval) => {}
        }
        let mqs: Vec<MessageQueue> = lock(&inner.queues).keys().cloned().collect();
        if let Err(error) = inner.offsets().persist(&mqs).await {
            debug!(%error, "offset persist failed");
        }
    }
}

async fn lock_loop(inner: Arc<PushInner>) {
    let stop = inner.stop.subscribe();
    loop {
        tokio::select! {
            () = stopped(stop.clone()) => break,
            () = tokio::time::sleep(inner.config.lock_renew_interval) => {}
        }
        inner.renew_locks().await;
    }
}

impl PushInner {
    fn instance(&self) -> &Arc<ClientInstance> {
        self.instance.get().expect("set by start")
    }

    fn offsets(&self) -> &OffsetStore {
        self.offsets.get().expect("set by start")
    }

    fn listener(&self) -> &Listener {
        self.listener.get().expect("set by start")
    }

    fn clustering(&self) -> bool {
        self.config.message_model == MessageModel::Clustering
    }

    fn needs_locks(&self) -> bool {
        self.clustering() && self.listener.get().is_some_and(Listener::is_ordered)
    }

    fn subscription(&self, topic: &str) -> Option<SubscriptionData> {
        lock(&self.subscriptions).get(topic).cloned()
    }

    /// Reassigns queues; false when some subscribed topic could not be
    /// balanced yet (no route or no member list).
    async fn rebalance(self: &Arc<Self>) -> bool {
        if !self.running.load(Ordering::SeqCst) {
            return true;
        }
        let mut complete = true;
        let _guard = self.rebalance_lock.lock().await;
        let topics: Vec<String> = lock(&self.subscriptions).keys().cloned().collect();
        let instance = self.instance().clone();
        for topic in topics {
            let route = match instance.route(&topic).await {
                Ok(route) => route,
                Err(error) => {
                    instance.watch_topic(&topic);
                    debug!(topic, %error, "rebalance: no route");
                    complete = false;
                    continue;
                }
            };
            let all = readable_queues(&topic, &route);
            let mine: BTreeSet<MessageQueue> = if self.clustering() {
                let mut ids = match instance.consumer_ids(&topic, &self.config.group).await {
                    Ok(ids) if !ids.is_empty() => ids,
                    Ok(_) => {
                        complete = false;
                        continue;
                    }
                    Err(error) => {
                        debug!(topic, %error, "rebalance: no consumer list");
                        complete = false;
                        continue;
                    }
                };
                ids.sort();
                allocate_averagely(instance.client_id(), &all, &ids)
                    .into_iter()
                    .collect()
            } else {
                all.into_iter().collect()
            };
            self.update_queues(&topic, mine).await;
        }
        complete
    }

    async fn update_queues(self: &Arc<Self>, topic: &str, mine: BTreeSet<MessageQueue>) {
        let removed: Vec<Arc<ProcessQueue>> = {
            let mut queues = lock(&self.queues);
            let gone: Vec<MessageQueue> = queues
                .keys()
                .filter(|mq| mq.topic == topic && !mine.contains(*mq))
                .cloned()
                .collect();
            gone.iter().filter_map(|mq| queues.remove(mq)).collect()
        };
        for pq in removed {
            self.drop_queue(&pq).await;
        }
        let added: Vec<MessageQueue> = {
            let queues = lock(&self.queues);
            mine.into_iter()
                .filter(|mq| !queues.contains_key(mq))
                .collect()
        };
        for mq in added {
            if let Err(error) = self.add_queue(mq.clone()).await {
                warn!(?mq, %error, "cannot start consuming queue");
            }
        }
    }

    /// Stops a queue this member no longer owns and commits its offset.
    async fn drop_queue(&self, pq: &Arc<ProcessQueue>) {
        pq.dropped.store(true, Ordering::SeqCst);
        pq.wake.notify_waiters();
        let tasks: Vec<_> = lock(&pq.tasks).drain(..).collect();
        for task in tasks {
            task.abort();
        }
        let offset = pq.tracker().committable();
        let offsets = self.offsets();
        offsets.update(&pq.mq, offset);
        if let Err(error) = offsets.persist(std::slice::from_ref(&pq.mq)).await {
            warn!(mq = ?pq.mq, %error, "offset commit of a released queue failed");
        }
        offsets.remove(&pq.mq);
        if self.needs_locks() {
            self.unlock_all(std::slice::from_ref(&pq.mq)).await;
        }
        info!(mq = ?pq.mq, offset, "queue released");
    }

    async fn add_queue(self: &Arc<Self>, mq: MessageQueue) -> Result<()> {
        let instance = self.instance().clone();
        let locked = if self.needs_locks() {
            let held = instance
                .lock_batch(
                    &mq.broker_name,
                    &mq.topic,
                    &self.config.group,
                    [mq.clone()].into(),
                )
                .await?;
            if !held.contains(&mq) {
                debug!(?mq, "queue locked by another member");
                return Ok(());
            }
            true
        } else {
            false
        };
        let offset = self.initial_offset(&mq).await?;
        self.offsets().set(&mq, offset);
        let pq = Arc::new(ProcessQueue {
            mq: mq.clone(),
            tracker: Mutex::new(OffsetTracker::new(offset)),
            dropped: AtomicBool::new(false),
            locked: AtomicBool::new(locked),
            buffer: Mutex::default(),
            wake: Notify::new(),
            tasks: Mutex::default(),
        });
        let mut tasks = vec![tokio::spawn(pull_loop(self.clone(), pq.clone()))];
        if self.listener().is_ordered() {
            tasks.push(tokio::spawn(ordered_loop(self.clone(), pq.clone())));
        }
        lock(&pq.tasks).extend(tasks);
        lock(&self.queues).insert(mq.clone(), pq);
        info!(?mq, offset, "queue assigned");
        Ok(())
    }

    /// Where a newly owned queue starts (RocketMQ's `computePullFromWhere`).
    async fn initial_offset(&self, mq: &MessageQueue) -> Result<i64> {
        if let Some(offset) = self.offsets().read_stored(mq).await? {
            return Ok(offset);
        }
        let instance = self.instance();
        let retry = mq.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX);
        match self.config.consume_from_where {
            ConsumeFromWhere::ConsumeFromFirstOffset => Ok(0),
            ConsumeFromWhere::ConsumeFromTimestamp if !retry => {
                instance
                    .search_offset(mq, self.config.consume_timestamp)
                    .await
            }
            _ if retry => Ok(0),
            _ => instance.max_offset(mq).await,
        }
    }

    async fn renew_locks(&self) {
        let mut by_broker: BTreeMap<(String, String), BTreeSet<MessageQueue>> = BTreeMap::new();
        let queues: Vec<Arc<ProcessQueue>> = lock(&self.queues).values().cloned().collect();
        for pq in &queues {
            by_broker
                .entry((pq.mq.broker_name.clone(), pq.mq.topic.clone()))
                .or_default()
                .insert(pq.mq.clone());
        }
        let instance = self.instance();
        for ((broker, topic), mqs) in by_broker {
            match instance
                .lock_batch(&broker, &topic, &self.config.group, mqs.clone())
                .await
            {
                Ok(held) => {
                    for pq in &queues {
                        if mqs.contains(&pq.mq) {
                            let now = held.contains(&pq.mq);
                            if !now {
                                warn!(mq = ?pq.mq, "queue lock lost");
                            }
                            pq.locked.store(now, Ordering::SeqCst);
                            pq.wake.notify_waiters();
                        }
                    }
                }
                Err(error) => warn!(broker, %error, "lock renewal failed"),
            }
        }
    }

    async fn unlock_all(&self, mqs: &[MessageQueue]) {
        let mut by_broker: BTreeMap<(String, String), BTreeSet<MessageQueue>> = BTreeMap::new();
        for mq in mqs {
            by_broker
                .entry((mq.broker_name.clone(), mq.topic.clone()))
                .or_default()
                .insert(mq.clone());
        }
        for ((broker, topic), set) in by_broker {
            if let Err(error) = self
                .instance()
                .unlock_batch(&broker, &topic, &self.config.group, set)
                .await
            {
                warn!(broker, %error, "unlock failed");
            }
        }
    }

    /// Records the queue's committable offset unless it was released.
    fn refresh_offset(&self, pq: &ProcessQueue) {
        if !pq.is_dropped() {
            self.offsets().update(&pq.mq, pq.tracker().committable());
        }
    }

    fn pull_header(&self, pq: &ProcessQueue, sub: &SubscriptionData) -> PullMessageRequestHeader {
        let commit_offset = if self.clustering() {
            self.offsets().get(&pq.mq).unwrap_or(0)
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
            expression_type: Some("TAG".into()),
            max_msg_bytes: None,
        }
    }

    /// Hands pulled messages to the listener.
    fn dispatch(self: &Arc<Self>, pq: &Arc<ProcessQueue>, msgs: Vec<MessageExt>) {
        if self.listener().is_ordered() {
            lock(&pq.buffer).extend(msgs);
            pq.wake.notify_waiters();
            return;
        }
        let size = self.config.consume_batch_max_size.max(1);
        let mut msgs = msgs.into_iter().peekable();
        while msgs.peek().is_some() {
            let batch: Vec<MessageExt> = msgs.by_ref().take(size).collect();
            self.active_consumes.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(consume_concurrently(self.clone(), pq.clone(), batch));
        }
    }
}

async fn pull_loop(inner: Arc<PushInner>, pq: Arc<ProcessQueue>) {
    let stop = inner.stop.subscribe();
    let instance = inner.instance().clone();
    let needs_lock = inner.needs_locks();
    let pause = |d: Duration| {
        let stop = stop.clone();
        async move {
            tokio::select! {
                () = stopped(stop) => true,
                () = tokio::time::sleep(d) => false,
            }
        }
    };
    loop {
        if pq.is_dropped() || *stop.borrow() {
            break;
        }
        if pq.tracker().in_flight() >= inner.config.pull_threshold_for_queue {
            if pause(Duration::from_millis(50)).await {
                break;
            }
            continue;
        }
        if needs_lock && !pq.locked.load(Ordering::SeqCst) {
            if pause(Duration::from_millis(200)).await {
                break;
            }
            continue;
        }
        let Some(sub) = inner.subscription(&pq.mq.topic) else {
            break;
        };
        let header = inner.pull_header(&pq, &sub);
        let timeout = inner.config.broker_suspend_max + Duration::from_secs(15);
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
                        restore_retry_topic(&inner.config.group, msg);
                    }
                    pq.tracker().pulled(
                        msgs.iter().map(|m| m.queue_offset),
                        result.next_begin_offset,
                    );
                    inner.refresh_offset(&pq);
                    if !msgs.is_empty() {
                        inner.dispatch(&pq, msgs);
                    }
                }
                PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                    pq.tracker().skip_to(result.next_begin_offset);
                    inner.refresh_offset(&pq);
                }
                PullStatus::OffsetIllegal => {
                    warn!(mq = ?pq.mq, next = result.next_begin_offset, "pull offset moved");
                    pq.tracker().skip_to(result.next_begin_offset);
                    if !pq.is_dropped() {
                        inner.offsets().set(&pq.mq, pq.tracker().committable());
                        let _ = inner.offsets().persist(std::slice::from_ref(&pq.mq)).await;
                    }
                }
            },
            Err(error) => {
                debug!(mq = ?pq.mq, %error, "pull failed");
                if pause(inner.config.pull_retry_delay).await {
                    break;
                }
            }
        }
    }
}

/// Calls the listener in a task of its own so that a panic counts as
/// ReconsumeLater instead of losing the messages.
async fn call_listener(listener: Listener, msgs: Vec<MessageExt>) -> ConsumeStatus {
    tokio::spawn(async move { listener.consume(&msgs).await })
        .await
        .unwrap_or_else(|error| {
            warn!(%error, "listener panicked");
            ConsumeStatus::ReconsumeLater
        })
}

async fn consume_concurrently(inner: Arc<PushInner>, pq: Arc<ProcessQueue>, msgs: Vec<MessageExt>) {
    struct Active<'a>(&'a AtomicUsize);
    impl Drop for Active<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _active = Active(&inner.active_consumes);
    let mut msgs = msgs;
    loop {
        let Ok(permit) = inner.permits.clone().acquire_owned().await else {
            return;
        };
        if pq.is_dropped() {
            return;
        }
        let status = call_listener(inner.listener().clone(), msgs.clone()).await;
        drop(permit);
        let failed = match status {
            ConsumeStatus::Success => Vec::new(),
            ConsumeStatus::ReconsumeLater if !inner.clustering() => {
                warn!(
                    count = msgs.len(),
                    "broadcast messages not consumed are dropped"
                );
                Vec::new()
            }
            ConsumeStatus::ReconsumeLater => {
                let mut failed = Vec::new();
                for msg in &msgs {
                    if let Err(error) = inner
                        .instance()
                        .send_back(
                            &pq.mq,
                            msg,
                            &inner.config.group,
                            0,
                            inner.config.max_reconsume_times,
                        )
                        .await
                    {
                        warn!(msg_id = msg.msg_id(), %error, "send back failed, retrying locally");
                        failed.push(msg.clone());
                    }
                }
                failed
            }
        };
        {
            let mut tracker = pq.tracker();
            for msg in &msgs {
                if !failed.iter().any(|f| f.queue_offset == msg.queue_offset) {
                    tracker.done(msg.queue_offset);
                }
            }
        }
        inner.refresh_offset(&pq);
        if failed.is_empty() {
            return;
        }
        msgs = failed;
        for msg in &mut msgs {
            msg.reconsume_times += 1;
        }
        let stop = inner.stop.subscribe();
        tokio::select! {
            () = stopped(stop) => return,
            () = tokio::time::sleep(inner.config.local_retry_delay) => {}
        }
    }
}

async fn ordered_loop(inner: Arc<PushInner>, pq: Arc<ProcessQueue>) {
    let stop = inner.stop.subscribe();
    let needs_lock = inner.needs_locks();
    loop {
        if pq.is_dropped() || *stop.borrow() {
            return;
        }
        let wake = pq.wake.notified();
        let ready = (!needs_lock || pq.locked.load(Ordering::SeqCst))
            .then(|| lock(&pq.buffer).front().cloned())
            .flatten();
        let Some(msg) = ready else {
            tokio::select! {
                () = stopped(stop.clone()) => return,
                () = wake => {}
                // Lock state can change without a wake-up; look again.
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        };
        inner.active_consumes.fetch_add(1, Ordering::SeqCst);
        let status = call_listener(inner.listener().clone(), vec![msg.clone()]).await;
        let done = match status {
            ConsumeStatus::Success => true,
            ConsumeStatus::ReconsumeLater
                if msg.reconsume_times >= inner.config.max_reconsume_times =>
            {
                // Out of retries: straight to the DLQ (delay level -1).
                match inner
                    .instance()
                    .send_back(
                        &pq.mq,
                        &msg,
                        &inner.config.group,
                        -1,
                        inner.config.max_reconsume_times,
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
        inner.active_consumes.fetch_sub(1, Ordering::SeqCst);
        if done {
            lock(&pq.buffer).pop_front();
            pq.tracker().done(msg.queue_offset);
            inner.refresh_offset(&pq);
        } else {
            if let Some(front) = lock(&pq.buffer).front_mut() {
                front.reconsume_times += 1;
            }
            tokio::select! {
                () = stopped(stop.clone()) => return,
                () = tokio::time::sleep(inner.config.suspend_current_queue_time) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_protocol::route::QueueData;

    #[test]
    fn readable_queues_sorted_and_filtered() {
        let route = TopicRouteData {
            queue_datas: vec![
                QueueData {
                    broker_name: "b".into(),
                    read_queue_nums: 2,
                    write_queue_nums: 2,
                    perm: 6,
                    topic_sys_flag: 0,
                },
                QueueData {
                    broker_name: "a".into(),
                    read_queue_nums: 1,
                    write_queue_nums: 1,
                    perm: 6,
                    topic_sys_flag: 0,
                },
                QueueData {
                    broker_name: "w".into(),
                    read_queue_nums: 3,
                    write_queue_nums: 3,
                    perm: 2,
                    topic_sys_flag: 0,
                },
            ],
            ..TopicRouteData::default()
        };
        let queues: Vec<(String, i32)> = readable_queues("T", &route)
            .into_iter()
            .map(|q| (q.broker_name, q.queue_id))
            .collect();
        assert_eq!(
            queues,
            vec![("a".into(), 0), ("b".into(), 0), ("b".into(), 1)]
        );
    }
}
