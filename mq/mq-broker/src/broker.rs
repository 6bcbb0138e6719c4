//! The broker's shared state and its life cycle: open the store, load the
//! metadata, bind the remoting port, start the background services
//! (name server registration, delay delivery, client expiry, offset
//! persistence), and stop them all cleanly.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mq_protocol::message::{properties_to_string, property, sys_flag, Properties};
use mq_protocol::topic;
use mq_remoting::{ClientConfig, RemotingClient, ServerConfig};
use mq_store::{MessageStore, MessageStoreConfig, PutMessage, PutResult, PutStatus, StoreError};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::clients::ClientRegistry;
use crate::config::{BrokerConfig, BrokerRole};
use crate::ha::{HaService, HaSettings};
use crate::locks::QueueLocks;
use crate::metadata::groups::GroupTable;
use crate::metadata::offsets::{ConsumerOffsets, DelayOffsets};
use crate::metadata::topics::TopicTable;
use crate::metadata::MetadataError;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// How often silent clients are looked for.
pub(crate) const CLIENT_SCAN_INTERVAL: Duration = Duration::from_secs(10);

/// Why a broker could not start.
#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("invalid broker configuration: {0}")]
    Config(String),
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot load broker metadata: {0}")]
    Metadata(#[from] MetadataError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// Everything the request processors share.
pub struct Broker {
    /// Swapped whole on a change; readers hold an `Arc` for one request.
    pub(crate) config: RwLock<Arc<BrokerConfig>>,
    pub(crate) store_config: MessageStoreConfig,
    pub(crate) store: Arc<MessageStore>,
    /// The address stored in every message and advertised to name servers.
    pub(crate) store_host: SocketAddr,
    pub(crate) topics: Mutex<TopicTable>,
    pub(crate) groups: Mutex<GroupTable>,
    pub(crate) offsets: Mutex<ConsumerOffsets>,
    pub(crate) delay_offsets: Mutex<DelayOffsets>,
    pub(crate) clients: Mutex<ClientRegistry>,
    pub(crate) locks: Mutex<QueueLocks>,
    pub(crate) transactions: Mutex<crate::transaction::TransactionState>,
    /// Serialises the decision of a transaction's outcome (commit, rollback,
    /// discard), which spans store writes.
    pub(crate) transaction_lock: tokio::sync::Mutex<()>,
    /// Delay of each level, in ms (level 1 is index 0).
    pub(crate) delay_levels: Vec<i64>,
    /// Talks to name servers.
    pub(crate) namesrv_client: RemotingClient,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) started_ms: i64,
    /// The topic table version last sent to the name servers.
    pub(crate) registered_version: std::sync::atomic::AtomicI64,
    /// Put/get counters for operators (`mqadmin statsAll`).
    pub(crate) stats: crate::stats::BrokerStats,
    /// Replication (both roles).
    pub(crate) ha: Arc<HaService>,
    /// The replication address advertised to name servers.
    pub(crate) ha_addr: SocketAddr,
}

/// Completes once the stop flag is set (or its sender is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Locks a mutex, taking over a poisoned one: every critical section here
/// leaves its data consistent before anything that can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
    pub(crate) fn config(&self) -> Arc<BrokerConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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

    /// Stores several messages of one queue with consecutive offsets.
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

    /// Registers with the name servers at once when topics changed since the
    /// last registration (a topic auto-created by a send, a retry topic
    /// created by a heartbeat), so its route exists without waiting for the
    /// periodic registration, as RocketMQ's broker does.
    pub(crate) fn register_if_topics_changed(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        let version = lock(&self.topics).data_version().counter;
        let registered = self.registered_version.load(Ordering::Acquire);
        if version != registered
            && self
                .registered_version
                .compare_exchange(registered, version, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            let broker = self.clone();
            tokio::spawn(async move { crate::services::register_all(&broker).await });
        }
    }

    /// Persists consumer and delay offsets (periodically and at shutdown).
    pub(crate) fn persist_offsets(&self) {
        if let Err(e) = lock(&self.offsets).persist() {
            warn!(error = %e, "persisting consumer offsets failed");
        }
        if let Err(e) = lock(&self.delay_offsets).persist() {
            warn!(error = %e, "persisting delay offsets failed");
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

/// A running broker.
pub struct BrokerHandle {
    broker: Arc<Broker>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl BrokerHandle {
    /// Opens the store, loads the metadata, binds `bindAddress:listenPort`
    /// (port 0 picks one) and starts serving and registering.
    pub async fn start(
        config: BrokerConfig,
        store_config: MessageStoreConfig,
    ) -> Result<BrokerHandle, BrokerError> {
        config.validate().map_err(BrokerError::Config)?;
        store_config
            .validate()
            .map_err(|e| BrokerError::Config(e.to_string()))?;
        let delay_levels = store_config
            .delay_levels()
            .map_err(|e| BrokerError::Config(e.to_string()))?;
        let ip: IpAddr = config.broker_ip1.parse().map_err(|_| {
            BrokerError::Config(format!(
                "brokerIP1 {:?} is not an IP address",
                config.broker_ip1
            ))
        })?;
        let bind = format!("{}:{}", config.bind_address, config.listen_port);
        let listener = TcpListener::bind(&bind)
            .await
            .map_err(|source| BrokerError::Bind {
                addr: bind.clone(),
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| BrokerError::Bind { addr: bind, source })?
            .port();

        // Masters serve replication; a slave only connects out.
        let ha_listener = if config.broker_role == BrokerRole::Slave {
            None
        } else {
            let ha_bind = format!("{}:{}", config.bind_address, config.effective_ha_port());
            Some(
                TcpListener::bind(&ha_bind)
                    .await
                    .map_err(|source| BrokerError::Bind {
                        addr: ha_bind.clone(),
                        source,
                    })?,
            )
        };
        let ha_port = match &ha_listener {
            Some(l) => l
                .local_addr()
                .map_err(|source| BrokerError::Bind {
                    addr: config.bind_address.clone(),
                    source,
                })?
                .port(),
            None => config.effective_ha_port(),
        };
        let ha_ip: IpAddr = config.effective_broker_ip2().parse().map_err(|_| {
            BrokerError::Config(format!(
                "brokerIP2 {:?} is not an IP address",
                config.effective_broker_ip2()
            ))
        })?;

        let opened = store_config.clone();
        let store = tokio::task::spawn_blocking(move || MessageStore::open(opened))
            .await
            .map_err(|e| BrokerError::Config(format!("store open task failed: {e}")))??;
        let config_dir = store_config.store_path_root_dir.join("config");
        let now = now_ms();
        let topics = TopicTable::load(&config_dir.join("topics.json"), &config, now)?;
        let groups = GroupTable::load(&config_dir.join("subscriptionGroup.json"), now)?;
        let offsets = ConsumerOffsets::load(&config_dir.join("consumerOffset.json"))?;
        let delay_offsets = DelayOffsets::load(&config_dir.join("delayOffset.json"))?;
        let transactions = crate::transaction::TransactionState::load(
            &config_dir.join("transactionCheck.json"),
            &store,
        )?;

        let (stop, shutdown) = watch::channel(false);
        let store = Arc::new(store);
        let ha = Arc::new(HaService::new(
            HaSettings::new(&config, &store_config),
            store.clone(),
        ));
        let broker = Arc::new(Broker {
            store_host: SocketAddr::new(ip, port),
            config: RwLock::new(Arc::new(config.clone())),
            store_config,
            store,
            topics: Mutex::new(topics),
            groups: Mutex::new(groups),
            offsets: Mutex::new(offsets),
            delay_offsets: Mutex::new(delay_offsets),
            clients: Mutex::new(ClientRegistry::default()),
            locks: Mutex::new(QueueLocks::default()),
            transactions: Mutex::new(transactions),
            transaction_lock: tokio::sync::Mutex::new(()),
            delay_levels,
            namesrv_client: RemotingClient::new(ClientConfig::default()),
            shutdown,
            started_ms: now,
            registered_version: std::sync::atomic::AtomicI64::new(-1),
            stats: crate::stats::BrokerStats::new(&config.broker_cluster_name),
            ha,
            ha_addr: SocketAddr::new(ha_ip, ha_port),
        });
        let addr = broker.store_host;
        info!(
            broker = %config.broker_name,
            id = config.broker_id,
            role = %config.broker_role,
            %addr,
            "broker serving"
        );

        let mut tasks = JoinSet::new();
        let handler = Arc::new(crate::processor::BrokerHandler::new(broker.clone()));
        let server_config = ServerConfig {
            max_frame_len: config.server_frame_max_length,
            ..ServerConfig::default()
        };
        let mut stop_rx = stop.subscribe();
        tasks.spawn(async move {
            mq_remoting::serve_with(listener, handler, server_config, async move {
                crate::broker::stopped(&mut stop_rx).await;
            })
            .await;
        });
        if let Some(listener) = ha_listener {
            info!(ha_addr = %broker.ha_addr, "replication server listening");
            tasks.spawn(crate::ha::master::serve(
                listener,
                broker.ha.clone(),
                stop.subscribe(),
            ));
        } else {
            tasks.spawn(crate::ha::slave::run(broker.ha.clone(), stop.subscribe()));
        }
        crate::services::spawn_all(&broker, &stop, &mut tasks);
        Ok(BrokerHandle {
            broker,
            addr,
            stop,
            tasks,
        })
    }

    /// The address clients use (brokerIP1 and the bound port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The replication address (brokerIP2 and the bound HA port; for a
    /// slave, the port it would use as a master).
    pub fn ha_addr(&self) -> SocketAddr {
        self.broker.ha_addr
    }

    /// Stops serving, unregisters from the name servers, persists offsets
    /// and closes the store cleanly (no `abort` file is left).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        crate::services::unregister(&self.broker).await;
        while self.tasks.join_next().await.is_some() {}
        self.broker.persist_offsets();
        let store = self.broker.store.clone();
        match tokio::task::spawn_blocking(move || store.shutdown()).await {
            Ok(Ok(())) => info!("broker stopped cleanly"),
            Ok(Err(e)) => warn!(error = %e, "store shutdown failed"),
            Err(e) => warn!(error = %e, "store shutdown task failed"),
        }
    }
}
