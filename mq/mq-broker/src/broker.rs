//! The broker's shared state and the put path.
//!
//! [`Broker`] is what the request processors and the background tasks
//! share: the configuration, the store, one manager per kind of state
//! ([`crate::manager`]) and replication. Its `put` applies the rewrites
//! RocketMQ's commit log does (delayed messages to `SCHEDULE_TOPIC_XXXX`)
//! and, on a SYNC_MASTER, waits for a slave.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use mq_protocol::header::ConsumerGroupHeader;
use mq_protocol::message::{properties_to_string, property, sys_flag, Properties};
use mq_protocol::{request_code, topic, RemotingCommand};
use mq_remoting::{ClientConfig, RemotingClient};
use mq_store::{MessageStore, MessageStoreConfig, PutMessage, PutResult, PutStatus, StoreError};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::config::{BrokerConfig, BrokerRole};
use crate::ha::{HaService, HaSettings};
use crate::manager::clients::ClientManager;
use crate::manager::groups::SubscriptionGroupManager;
use crate::manager::offsets::{ConsumerOffsetManager, DelayOffsetManager};
use crate::manager::stats::BrokerStats;
use crate::manager::topics::TopicConfigManager;
use crate::manager::transactions::TransactionManager;
use crate::metadata::groups::GroupTable;
use crate::metadata::offsets::{ConsumerOffsets, DelayOffsets};
use crate::metadata::topics::TopicTable;
use crate::metadata::MetadataError;
use crate::util::now_ms;

/// Everything the request processors and background tasks share.
pub(crate) struct Broker {
    pub(crate) config: SharedConfig,
    pub(crate) store_config: MessageStoreConfig,
    pub(crate) store: Arc<MessageStore>,
    /// The address stored in every message and advertised to name servers.
    pub(crate) store_host: SocketAddr,
    /// The replication address advertised to name servers.
    pub(crate) ha_addr: SocketAddr,
    pub(crate) topics: TopicConfigManager,
    pub(crate) groups: SubscriptionGroupManager,
    pub(crate) offsets: ConsumerOffsetManager,
    pub(crate) delay_offsets: DelayOffsetManager,
    pub(crate) clients: ClientManager,
    pub(crate) transactions: TransactionManager,
    /// Put/get counters for operators (`mqadmin statsAll`).
    pub(crate) stats: BrokerStats,
    /// Replication (both roles).
    pub(crate) ha: Arc<HaService>,
    /// Delay of each level, in ms (level 1 is index 0).
    pub(crate) delay_levels: Vec<i64>,
    /// Talks to name servers (and, on a slave, to its master).
    pub(crate) namesrv_client: RemotingClient,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) started_ms: i64,
}

impl Broker {
    /// The broker over an opened store: loads the metadata files under the
    /// store's `config/` folder (topics, subscription groups, consumer and
    /// delay offsets, transaction state). `addrs` are the client-facing
    /// (store host) and replication addresses.
    pub(crate) fn open(
        config: BrokerConfig,
        store_config: MessageStoreConfig,
        store: Arc<MessageStore>,
        addrs: (SocketAddr, SocketAddr),
        delay_levels: Vec<i64>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Broker, MetadataError> {
        let dir = store_config.store_path_root_dir.join("config");
        let now = now_ms();
        let topics = TopicTable::load(&dir.join("topics.json"), &config, now)?;
        let groups = GroupTable::load(&dir.join("subscriptionGroup.json"), now)?;
        let offsets = ConsumerOffsets::load(&dir.join("consumerOffset.json"))?;
        let delay_offsets = DelayOffsets::load(&dir.join("delayOffset.json"))?;
        let transactions = TransactionManager::load(&dir.join("transactionCheck.json"), &store)?;
        let ha = Arc::new(HaService::new(
            HaSettings::new(&config, &store_config),
            store.clone(),
        ));
        Ok(Broker {
            store_host: addrs.0,
            ha_addr: addrs.1,
            stats: BrokerStats::new(&config.broker_cluster_name),
            config: SharedConfig::new(config),
            store_config,
            store,
            topics: TopicConfigManager::new(topics),
            groups: SubscriptionGroupManager::new(groups),
            offsets: ConsumerOffsetManager::new(offsets),
            delay_offsets: DelayOffsetManager::new(delay_offsets),
            clients: ClientManager::default(),
            transactions,
            ha,
            delay_levels,
            namesrv_client: RemotingClient::new(ClientConfig::default()),
            shutdown,
            started_ms: now,
        })
    }
}

/// The configuration, swapped whole on a change (UPDATE_BROKER_CONFIG);
/// a reader keeps the `Arc` it got for one request.
pub(crate) struct SharedConfig(RwLock<Arc<BrokerConfig>>);

impl SharedConfig {
    pub(crate) fn new(config: BrokerConfig) -> Self {
        SharedConfig(RwLock::new(Arc::new(config)))
    }

    pub(crate) fn get(&self) -> Arc<BrokerConfig> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set(&self, config: BrokerConfig) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }
}

/// A message the broker is about to store, before the delay and transaction
/// rewrites.
#[derive(Debug, Clone)]
pub(crate) struct InboundMessage {
    pub topic: String,
    pub queue_id: i32,
    pub flag: i32,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: bytes::Bytes,
    pub properties: Properties,
}

impl Broker {
    /// The configuration now; one request keeps using the `Arc` it got.
    pub(crate) fn config(&self) -> Arc<BrokerConfig> {
        self.config.get()
    }

    pub(crate) fn broker_addr(&self) -> String {
        self.store_host.to_string()
    }

    pub(crate) fn is_slave(&self) -> bool {
        self.config().broker_role == BrokerRole::Slave
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The delay of `level` in ms, with the level clamped to the configured
    /// range as RocketMQ does.
    pub(crate) fn clamp_delay_level(&self, level: i32) -> i32 {
        level.clamp(1, self.delay_levels.len() as i32)
    }

    /// Applies the store-side rewrites RocketMQ's commit log does and stores
    /// the message: a delayed message goes to `SCHEDULE_TOPIC_XXXX` (queue =
    /// level - 1) with its real topic and queue kept as properties.
    ///
    /// On a SYNC_MASTER it then waits for a slave to have the message; the
    /// result's status says when none did (the message stays stored).
    pub(crate) async fn put(&self, msg: InboundMessage) -> Result<PutResult, StoreError> {
        let put = self.prepare(msg);
        let mut result = self.store.put_message(put).await?;
        let end = result.wrote_offset + result.wrote_bytes as u64;
        result.status = replicated(result.status, self.ha.wait_replicated(end).await);
        Ok(result)
    }

    /// Stores several messages under one put lock, in order (those of one
    /// queue at consecutive offsets), then waits once for their flush and
    /// replication.
    pub(crate) async fn put_batch(
        &self,
        msgs: Vec<InboundMessage>,
    ) -> Result<Vec<PutResult>, StoreError> {
        let puts: Vec<PutMessage> = msgs.into_iter().map(|m| self.prepare(m)).collect();
        let mut results = self.store.put_messages(&puts).await?;
        if let Some(end) = results
            .iter()
            .map(|r| r.wrote_offset + r.wrote_bytes as u64)
            .max()
        {
            let ha = self.ha.wait_replicated(end).await;
            for r in &mut results {
                r.status = replicated(r.status, ha);
            }
        }
        Ok(results)
    }

    fn prepare(&self, mut msg: InboundMessage) -> PutMessage {
        let tran_type = sys_flag::transaction_type(msg.sys_flag);
        let delay = msg
            .properties
            .get(property::DELAY_TIME_LEVEL)
            .and_then(|v| v.trim().parse::<i32>().ok())
            .unwrap_or(0);
        if delay > 0
            && (tran_type == sys_flag::TRANSACTION_NOT_TYPE
                || tran_type == sys_flag::TRANSACTION_COMMIT_TYPE)
        {
            let level = self.clamp_delay_level(delay);
            msg.properties
                .insert(property::DELAY_TIME_LEVEL.into(), level.to_string());
            msg.properties
                .insert(property::REAL_TOPIC.into(), msg.topic.clone());
            msg.properties
                .insert(property::REAL_QUEUE_ID.into(), msg.queue_id.to_string());
            msg.topic = topic::SCHEDULE_TOPIC.to_owned();
            msg.queue_id = level - 1;
        }
        PutMessage {
            topic: msg.topic,
            queue_id: msg.queue_id,
            flag: msg.flag,
            sys_flag: msg.sys_flag,
            born_timestamp: msg.born_timestamp,
            born_host: msg.born_host,
            store_host: self.store_host,
            reconsume_times: msg.reconsume_times,
            prepared_transaction_offset: msg.prepared_transaction_offset,
            body: msg.body,
            properties: properties_to_string(&msg.properties),
        }
    }

    /// Persists consumer and delay offsets (periodically and at shutdown).
    pub(crate) fn persist_offsets(&self) {
        // An offset may count on a copy this broker just wrote (a 4.x
        // consumer's send-back, a 5.x delivery revived into the retry
        // topic): flushed between the snapshot and the write.
        let flush_first = || crate::metadata::persist::flush_commit_log_first(&self.store);
        if let Err(e) = self.offsets.persist(flush_first) {
            warn!(error = %e, "persisting consumer offsets failed");
        }
        if let Err(e) = self.delay_offsets.persist() {
            warn!(error = %e, "persisting delay offsets failed");
        }
    }

    /// Tells every member of `group` that the membership changed, so each
    /// rebalances at once instead of at its next periodic rebalance.
    pub(crate) fn notify_consumer_ids_changed(&self, group: &str) {
        let enabled = self.config().notify_consumer_ids_changed_enable
            && self.groups.notifies_ids_changed(group);
        if !enabled {
            return;
        }
        for channel in self.clients.consumer_channels(group) {
            let request = RemotingCommand::request(request_code::NOTIFY_CONSUMER_IDS_CHANGED)
                .with_header(&ConsumerGroupHeader {
                    consumer_group: group.to_owned(),
                })
                .oneway();
            tokio::spawn(async move {
                if let Err(e) = channel.oneway(request).await {
                    debug!(error = %e, "notifying a consumer failed");
                }
            });
        }
    }
}

/// The status of a put after the flush (`flushed`) and the replication wait
/// (`ha`): a replication failure is what the sender hears, as RocketMQ's
/// broker answers FLUSH_SLAVE_TIMEOUT over FLUSH_DISK_TIMEOUT.
fn replicated(flushed: PutStatus, ha: PutStatus) -> PutStatus {
    if ha == PutStatus::PutOk {
        flushed
    } else {
        ha
    }
}

/// A broker over a fresh store in a folder, without sockets, for unit tests
/// of the managers' users (background task steps, the put path).
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    /// A master with `config` over a store in `dir`.
    pub(crate) fn broker(dir: &Path, config: BrokerConfig) -> Arc<Broker> {
        broker_with_store(dir, config, |_| {})
    }

    /// A commit log flusher that never runs on its own within a test
    /// (ASYNC_FLUSH every hour): what is flushed, a test's code flushed.
    pub(crate) fn no_timed_flush(store: &mut MessageStoreConfig) {
        store.flush_interval_commit_log = 3_600_000;
    }

    /// [`broker`], with `tweak` applied to the store's settings.
    pub(crate) fn broker_with_store(
        dir: &Path,
        config: BrokerConfig,
        tweak: impl FnOnce(&mut MessageStoreConfig),
    ) -> Arc<Broker> {
        let mut store_config = MessageStoreConfig::with_root(dir);
        store_config.maped_file_size_commit_log = 1 << 20;
        store_config.max_message_size = 64 * 1024;
        tweak(&mut store_config);
        let store = Arc::new(MessageStore::open(store_config.clone()).unwrap());
        let delay_levels = store_config.delay_levels().unwrap();
        let (_stop, shutdown) = watch::channel(false);
        let addr: SocketAddr = "127.0.0.1:10911".parse().unwrap();
        let broker = Broker::open(
            config,
            store_config,
            store,
            (addr, addr),
            delay_levels,
            shutdown,
        );
        Arc::new(broker.unwrap())
    }

    /// A plain message to `topic` queue 0 with `properties`.
    pub(crate) fn message(topic: &str, properties: &[(&str, &str)]) -> InboundMessage {
        InboundMessage {
            topic: topic.to_owned(),
            queue_id: 0,
            flag: 0,
            sys_flag: 0,
            born_timestamp: crate::util::now_ms(),
            born_host: "127.0.0.1:1".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: bytes::Bytes::from_static(b"body"),
            properties: properties
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// Waits until the store dispatched `count` messages to a queue.
    pub(crate) async fn dispatched(broker: &Broker, topic: &str, queue_id: i32, count: u64) {
        for _ in 0..500 {
            if broker.store.max_offset_in_queue(topic, queue_id) >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{topic}/{queue_id} never got {count} message(s)");
    }
}
