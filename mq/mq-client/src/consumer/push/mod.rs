//! The push consumer (RocketMQ's `DefaultMQPushConsumer`): rebalance, one
//! long-polling pull loop per owned queue, concurrent or ordered
//! consumption, send-back, offset commits.
//!
//! Data flow: the rebalance task decides which queues this member owns and
//! keeps a `ProcessQueue` per queue; each has a pull task
//! that long-polls the broker and records pulled offsets in its
//! [`OffsetTracker`](crate::consumer::OffsetTracker) before handing the
//! messages to consume tasks (concurrent) or to the queue's single consume
//! task (ordered). Finished messages leave the tracker, and the offset
//! store always holds the tracker's committable offset, which the persist
//! task writes to the brokers (or the local file).
//!
//! Parts, each depending only on those listed before it:
//! - `config`: [`PushConsumerConfig`].
//! - `process_queue`: the state of one owned queue.
//! - `started`: the state `start` creates; every task works on it.
//! - `offsets`, `locks`, `concurrent`, `ordered`, `registration`: offset
//!   bookkeeping, queue locks, the two ways of consuming, what the client
//!   instance is told.
//! - `pull_loop`, then `rebalance`: the per-queue pull task, and the task
//!   that starts and stops queues.
//! - this file: [`PushConsumer`], its start and shutdown.

mod concurrent;
mod config;
mod direct;
mod locks;
mod offsets;
mod ordered;
mod process_queue;
mod pull_loop;
mod rebalance;
mod registration;
mod started;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_protocol::body::{MessageModel, MessageQueue, SubscriptionData};
use mq_protocol::topic::retry_topic;
use tracing::{debug, info, warn};

pub use config::PushConsumerConfig;

use self::locks::lock_loop;
use self::offsets::{open_store, persist_loop};
use self::rebalance::rebalance_loop;
use self::started::{Started, Subscriptions};
use crate::config::ClientConfig;
use crate::consumer::listener::Listener;
use crate::consumer::MessageSelector;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;
use crate::sync::lock;
use crate::time::now_millis;

/// How often shutdown looks whether the running listener calls finished.
const SHUTDOWN_POLL: Duration = Duration::from_millis(20);

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
    subscriptions: Subscriptions,
    state: Mutex<State>,
}

/// Where a push consumer is in its life.
enum State {
    /// Never started, or shut down.
    Idle,
    /// `start` is setting up.
    Starting,
    Started(Arc<Started>),
}

impl PushConsumer {
    /// A consumer with `config` on the client instance of `client`; it
    /// does nothing until started.
    pub fn new(config: PushConsumerConfig, client: ClientConfig) -> Self {
        PushConsumer {
            inner: Arc::new(PushInner {
                config,
                client,
                subscriptions: Subscriptions::default(),
                state: Mutex::new(State::Idle),
            }),
        }
    }

    /// The started state, if the consumer runs.
    fn started(&self) -> Option<Arc<Started>> {
        match &*lock(&self.inner.state) {
            State::Started(started) => Some(started.clone()),
            State::Idle | State::Starting => None,
        }
    }

    /// Subscribes to `topic` with a tag expression (`*` or `A || B`, as a
    /// `&str`) or a SQL92 filter ([`MessageSelector::by_sql`]).
    pub fn subscribe(&self, topic: &str, selector: impl Into<MessageSelector>) -> Result<()> {
        mq_protocol::topic::validate_topic(topic).map_err(ClientError::InvalidArgument)?;
        let subscription = selector.into().subscription(topic, now_millis())?;
        lock(&self.inner.subscriptions).insert(topic.to_owned(), subscription);
        if let Some(started) = self.started() {
            started.rebalance_now.notify_one();
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
        let Some(started) = self.started() else {
            return Vec::new();
        };
        let mut queues: Vec<_> = lock(&started.queues).keys().cloned().collect();
        queues.sort();
        queues
    }

    /// Starts consuming with `listener`.
    pub async fn start(&self, listener: Listener) -> Result<()> {
        {
            let mut state = lock(&self.inner.state);
            if !matches!(*state, State::Idle) {
                return Err(ClientError::InvalidArgument(
                    "the consumer is already started".into(),
                ));
            }
            *state = State::Starting;
        }
        let started = match self.set_up(listener).await {
            Ok(started) => started,
            Err(error) => {
                *lock(&self.inner.state) = State::Idle;
                return Err(error);
            }
        };
        *lock(&self.inner.state) = State::Started(started.clone());
        let mut tasks = vec![
            tokio::spawn(rebalance_loop(started.clone())),
            tokio::spawn(persist_loop(started.clone())),
        ];
        if started.needs_locks() {
            tasks.push(tokio::spawn(lock_loop(started.clone())));
        }
        lock(&started.tasks).extend(tasks);
        info!(
            group = started.config.group,
            client_id = started.instance.client_id(),
            "push consumer started"
        );
        Ok(())
    }

    /// Everything `start` does before the tasks run: the instance, the
    /// offset store, the retry subscription, the registration, first
    /// routes and a heartbeat.
    async fn set_up(&self, listener: Listener) -> Result<Arc<Started>> {
        let inner = &self.inner;
        let config = &inner.config;
        mq_protocol::topic::validate_group(&config.group).map_err(ClientError::InvalidArgument)?;
        if lock(&inner.subscriptions).is_empty() {
            return Err(ClientError::InvalidArgument(
                "subscribe to a topic before start".into(),
            ));
        }
        let instance = ClientInstance::acquire(&inner.client)?;
        // Every broker of a filtered topic must serve the filter
        // (RocketMQ's checkClientInBroker).
        let filtered: Vec<SubscriptionData> = lock(&inner.subscriptions)
            .values()
            .filter(|s| !s.is_tag_type())
            .cloned()
            .collect();
        if let Err(error) = instance.check_client_config(&config.group, &filtered).await {
            instance.release();
            return Err(error);
        }
        let offsets = match open_store(config, &instance) {
            Ok(offsets) => offsets,
            Err(error) => {
                instance.release();
                return Err(error);
            }
        };
        if config.message_model == MessageModel::Clustering {
            let retry = retry_topic(&config.group);
            lock(&inner.subscriptions).insert(
                retry.clone(),
                SubscriptionData::parse(&retry, "*", now_millis()),
            );
        }
        let started = Arc::new(Started::new(
            config.clone(),
            inner.client.persist_consumer_offset_interval,
            inner.subscriptions.clone(),
            instance.clone(),
            listener,
            offsets,
        ));
        if let Err(error) = instance.register_consumer(&config.group, started.clone()) {
            instance.release();
            return Err(error);
        }
        for topic in &started.topics() {
            if let Err(error) = instance.update_route(topic).await {
                instance.watch_topic(topic);
                debug!(topic, %error, "no route yet");
            }
        }
        instance.send_heartbeat_to_all().await;
        Ok(started)
    }

    /// Runs one rebalance now and waits for it.
    pub async fn rebalance(&self) {
        if let Some(started) = self.started() {
            started.rebalance().await;
        }
    }

    /// Stops pulling, waits (bounded) for running listener calls, commits
    /// offsets, releases ordered locks, unregisters from the brokers.
    pub async fn shutdown(&self) {
        let started = {
            let mut state = lock(&self.inner.state);
            match std::mem::replace(&mut *state, State::Idle) {
                State::Started(started) => started,
                other => {
                    *state = other;
                    return;
                }
            }
        };
        started.shut_down().await;
    }
}

impl Started {
    /// The second half of [`PushConsumer::shutdown`].
    async fn shut_down(&self) {
        self.stop.send_replace(true);
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        let _guard = self.rebalance_lock.lock().await;
        let queues = self.process_queues();
        for pq in &queues {
            // The first task is the pull loop; ordered consume loops stop
            // between messages once dropped.
            pq.abort_tasks();
        }
        let deadline = tokio::time::Instant::now() + self.config.shutdown_wait;
        while self.active_consumes.load(Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(SHUTDOWN_POLL).await;
        }
        for pq in &queues {
            pq.set_dropped();
            self.offsets.update(&pq.mq, pq.tracker().committable());
        }
        let mqs: Vec<MessageQueue> = queues.iter().map(|pq| pq.mq.clone()).collect();
        if let Err(error) = self.offsets.persist(&mqs).await {
            warn!(%error, "offset commit on shutdown failed");
        }
        if self.needs_locks() {
            self.unlock_all(&mqs).await;
        }
        lock(&self.queues).clear();
        self.instance.unregister_consumer(&self.config.group).await;
        self.instance.release();
        info!(group = self.config.group, "push consumer stopped");
    }
}
