//! A push consumer once started: what `start` set up (the client instance,
//! the listener, the offset store) and what the running consumer keeps (its
//! queues, the rebalance trigger, the consume permits, the stop signal).
//! Nothing here is optional: a consumer that was never started has none of
//! it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_protocol::body::{MessageModel, MessageQueue, SubscriptionData};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinHandle;

use super::config::PushConsumerConfig;
use super::process_queue::ProcessQueue;
use crate::consumer::listener::Listener;
use crate::consumer::offset_store::OffsetStore;
use crate::instance::ClientInstance;
use crate::sync::lock;

/// The subscriptions by topic, shared by the consumer and its started state
/// (a subscription added after start is balanced at the next rebalance).
pub(super) type Subscriptions = Arc<Mutex<BTreeMap<String, SubscriptionData>>>;

/// The running push consumer.
pub(super) struct Started {
    pub config: PushConsumerConfig,
    /// How often offsets are written out.
    pub persist_interval: Duration,
    pub subscriptions: Subscriptions,
    pub instance: Arc<ClientInstance>,
    pub listener: Listener,
    pub offsets: OffsetStore,
    /// The queues this member owns.
    pub queues: Mutex<HashMap<MessageQueue, Arc<ProcessQueue>>>,
    /// Wakes the rebalance task early (membership change, new subscription).
    pub rebalance_now: Notify,
    /// One rebalance (or shutdown) at a time.
    pub rebalance_lock: tokio::sync::Mutex<()>,
    /// Listener calls allowed at once (`consume_concurrency`).
    pub permits: Arc<Semaphore>,
    /// Listener calls running now; shutdown waits for them.
    pub active_consumes: AtomicUsize,
    pub stop: watch::Sender<bool>,
    /// The rebalance, persist and lock renewal tasks.
    pub tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Started {
    /// The state of a consumer with `config` that start just set up.
    pub(super) fn new(
        config: PushConsumerConfig,
        persist_interval: Duration,
        subscriptions: Subscriptions,
        instance: Arc<ClientInstance>,
        listener: Listener,
        offsets: OffsetStore,
    ) -> Self {
        let (stop, _) = watch::channel(false);
        Started {
            permits: Arc::new(Semaphore::new(config.consume_concurrency.max(1))),
            config,
            persist_interval,
            subscriptions,
            instance,
            listener,
            offsets,
            queues: Mutex::default(),
            rebalance_now: Notify::new(),
            rebalance_lock: tokio::sync::Mutex::new(()),
            active_consumes: AtomicUsize::new(0),
            stop,
            tasks: Mutex::default(),
        }
    }

    pub(super) fn clustering(&self) -> bool {
        self.config.message_model == MessageModel::Clustering
    }

    /// Ordered clustering consumers hold a broker lock per queue.
    pub(super) fn needs_locks(&self) -> bool {
        self.clustering() && self.listener.is_ordered()
    }

    /// True once shutdown began.
    pub(super) fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    pub(super) fn subscription(&self, topic: &str) -> Option<SubscriptionData> {
        lock(&self.subscriptions).get(topic).cloned()
    }

    /// Every subscribed topic (the retry topic included).
    pub(super) fn topics(&self) -> Vec<String> {
        lock(&self.subscriptions).keys().cloned().collect()
    }

    /// The owned queues' states.
    pub(super) fn process_queues(&self) -> Vec<Arc<ProcessQueue>> {
        lock(&self.queues).values().cloned().collect()
    }
}

/// Resolves once `stop` says stop.
pub(super) async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Sleeps `duration` unless `stop` comes first; true if it did.
pub(super) async fn pause(stop: &watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        () = stopped(stop.clone()) => true,
        () = tokio::time::sleep(duration) => false,
    }
}
