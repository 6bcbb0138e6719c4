//! The broker's configuration, keyed as in RocketMQ's `broker.conf`.
//!
//! [`BrokerConfig`] holds the broker's own keys (RocketMQ's `BrokerConfig`
//! and `NettyServerConfig`, plus the few store keys that only the broker
//! acts on, such as `brokerRole`). The store's keys live in the store's
//! configuration; [`apply_properties`] offers each key of a file to every
//! section in turn, treats RocketMQ's JVM and thread-pool tuning keys as
//! accepted-and-ignored, and warns about keys nobody knows.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// What a broker does in its group (RocketMQ's `BrokerRole`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerRole {
    /// A master that acknowledges a send after its own write.
    AsyncMaster,
    /// A master that acknowledges a send only once a slave has the bytes.
    SyncMaster,
    /// A read-only copy of its group's master.
    Slave,
}

impl FromStr for BrokerRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ASYNC_MASTER" => Ok(BrokerRole::AsyncMaster),
            "SYNC_MASTER" => Ok(BrokerRole::SyncMaster),
            "SLAVE" => Ok(BrokerRole::Slave),
            other => Err(format!(
                "unknown broker role {other:?} (expected ASYNC_MASTER, SYNC_MASTER or SLAVE)"
            )),
        }
    }
}

impl fmt::Display for BrokerRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BrokerRole::AsyncMaster => "ASYNC_MASTER",
            BrokerRole::SyncMaster => "SYNC_MASTER",
            BrokerRole::Slave => "SLAVE",
        })
    }
}

/// Whether the broker exports metrics (RocketMQ 5's `metricsExporterType`;
/// its `OTLP_GRPC` and `LOG` exporters are not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsExporterType {
    /// No metrics endpoint.
    Disable,
    /// Prometheus text on `metricsPromExporterHost:metricsPromExporterPort`.
    Prom,
}

impl FromStr for MetricsExporterType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "DISABLE" => Ok(MetricsExporterType::Disable),
            "PROM" => Ok(MetricsExporterType::Prom),
            other => Err(format!(
                "unsupported metrics exporter {other:?} (expected DISABLE or PROM)"
            )),
        }
    }
}

impl fmt::Display for MetricsExporterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetricsExporterType::Disable => "DISABLE",
            MetricsExporterType::Prom => "PROM",
        })
    }
}

/// What [`BrokerConfig::entries`] shows instead of a configured `secretKey`.
pub const HIDDEN_SECRET: &str = "******";

/// One part of the configuration that can take `key=value` settings.
pub trait ConfigSection {
    /// Applies a key. `Ok(false)` means the key is not this section's;
    /// `Err` carries why the value is wrong.
    fn set(&mut self, key: &str, value: &str) -> Result<bool, String>;
}

macro_rules! broker_config {
    ($($(#[$doc:meta])* $field:ident : $ty:ty = $default:expr, $key:literal;)*) => {
        /// The broker's own settings. Each field's RocketMQ key is in its doc.
        #[derive(Debug, Clone, PartialEq)]
        pub struct BrokerConfig {
            $($(#[$doc])* #[doc = concat!("Key: `", $key, "`.")] pub $field: $ty,)*
        }

        impl Default for BrokerConfig {
            fn default() -> Self {
                BrokerConfig { $($field: $default,)* }
            }
        }

        impl BrokerConfig {
            /// Every key with its current value, in declaration order;
            /// `secretKey` shows as [`HIDDEN_SECRET`] (GET_BROKER_CONFIG and
            /// `-p` print these).
            pub fn entries(&self) -> Vec<(&'static str, String)> {
                let mut entries = vec![$(($key, self.$field.to_string()),)*];
                for (key, value) in &mut entries {
                    if *key == "secretKey" && !value.is_empty() {
                        *value = HIDDEN_SECRET.to_owned();
                    }
                }
                entries
            }

            /// Every key this section knows.
            pub const KEYS: &'static [&'static str] = &[$($key,)*];
        }

        impl ConfigSection for BrokerConfig {
            fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
                match key {
                    $($key => {
                        self.$field = value.trim().parse().map_err(|e| format!("{e}"))?;
                        Ok(true)
                    })*
                    _ => Ok(false),
                }
            }
        }
    };
}

broker_config! {
    /// Home folder of the installation (RocketMQ's `ROCKETMQ_HOME`).
    rocketmq_home: String = std::env::var("ROCKETMQ_HOME").unwrap_or_default(), "rocketmqHome";
    /// Name server addresses, `;`-separated.
    namesrv_addr: String = std::env::var("NAMESRV_ADDR").unwrap_or_default(), "namesrvAddr";
    /// Check every request against the plain ACL accounts file (RocketMQ's
    /// `aclEnable`); a malformed file stops start-up.
    acl_enable: bool = false, "aclEnable";
    /// The accounts file: absolute, or relative to `rocketmqHome`; empty means
    /// `conf/plain_acl.yml` there (RocketMQ's `rocketmq.acl.plain.file`).
    acl_file_path: String = String::new(), "aclFilePath";
    /// Account the broker signs its name server registrations and its
    /// requests to its master with; empty sends them unsigned.
    access_key: String = String::new(), "accessKey";
    /// Secret of `accessKey`.
    secret_key: String = String::new(), "secretKey";
    /// The address clients are told to use. Defaults to loopback; set it to
    /// the host's address on a multi-host cluster.
    broker_ip1: String = "127.0.0.1".to_owned(), "brokerIP1";
    /// The address slaves use for replication; empty means `brokerIP1`.
    broker_ip2: String = String::new(), "brokerIP2";
    broker_name: String = default_broker_name(), "brokerName";
    broker_cluster_name: String = "DefaultCluster".to_owned(), "brokerClusterName";
    /// 0 is the master; anything else is a slave.
    broker_id: i64 = 0, "brokerId";
    /// Read/write permission of the whole broker (6 = RW).
    broker_permission: i32 = 6, "brokerPermission";
    /// Queue count of auto-created topics.
    default_topic_queue_nums: i32 = 8, "defaultTopicQueueNums";
    auto_create_topic_enable: bool = true, "autoCreateTopicEnable";
    cluster_topic_enable: bool = true, "clusterTopicEnable";
    broker_topic_enable: bool = true, "brokerTopicEnable";
    auto_create_subscription_group: bool = true, "autoCreateSubscriptionGroup";
    /// Port of the remoting server.
    listen_port: u16 = 10911, "listenPort";
    /// Address to bind (RocketMQ binds every interface).
    bind_address: String = "0.0.0.0".to_owned(), "bindAddress";
    /// Port of the replication server (masters); 0 means `listenPort + 1`,
    /// or any free port when `listenPort` is 0 too.
    ha_listen_port: u16 = 0, "haListenPort";
    /// A slave's master replication address (`host:port`); when empty the
    /// slave learns it from its name server registration.
    ha_master_address: String = String::new(), "haMasterAddress";
    /// Period (ms) of replication heartbeats in both directions.
    ha_send_heartbeat_interval: u64 = 5_000, "haSendHeartbeatInterval";
    /// A replication peer silent this long (ms) is disconnected.
    ha_housekeeping_interval: u64 = 20_000, "haHousekeepingInterval";
    /// Bytes of commit log per replication transfer (whole records).
    ha_transfer_batch_size: usize = 32 * 1024, "haTransferBatchSize";
    /// A SYNC_MASTER whose best slave is further behind than this (bytes)
    /// answers SLAVE_NOT_AVAILABLE instead of waiting for it.
    ha_slave_fallbehind_max: u64 = 256 * 1024 * 1024, "haSlaveFallbehindMax";
    broker_role: BrokerRole = BrokerRole::AsyncMaster, "brokerRole";
    register_name_server_period: u64 = 30_000, "registerNameServerPeriod";
    register_broker_timeout_mills: u64 = 6_000, "registerBrokerTimeoutMills";
    /// Age (ms) before a half message is checked back.
    transaction_time_out: u64 = 6_000, "transactionTimeOut";
    /// Checks of one half message before it is discarded.
    transaction_check_max: u32 = 15, "transactionCheckMax";
    /// Period (ms) of the transaction check service.
    transaction_check_interval: u64 = 60_000, "transactionCheckInterval";
    reject_transaction_message: bool = false, "rejectTransactionMessage";
    /// Whether timer messages (RocketMQ 5's `TIMER_DELIVER_MS`,
    /// `TIMER_DELAY_SEC`, `TIMER_DELAY_MS`) are accepted; when off a send
    /// that carries one is refused.
    timer_wheel_enable: bool = true, "timerWheelEnable";
    /// Farthest ahead (s) a timer message may be due; a later one is
    /// refused (RocketMQ's default, 3 days).
    timer_max_delay_sec: u64 = 3 * 24 * 3600, "timerMaxDelaySec";
    /// Serve SQL92 subscriptions (RocketMQ's key and default, off): pulls
    /// evaluate them over each stored message's properties. While off, a
    /// SQL92 subscription is refused at CHECK_CLIENT_CONFIG, HEART_BEAT and
    /// PULL_MESSAGE with RocketMQ's SYSTEM_ERROR remark.
    enable_property_filter: bool = false, "enablePropertyFilter";
    long_polling_enable: bool = true, "longPollingEnable";
    short_polling_time_mills: u64 = 1_000, "shortPollingTimeMills";
    /// Whether consumers may be sent to a slave when the master lags.
    slave_read_enable: bool = false, "slaveReadEnable";
    /// Percentage of memory past which a read counts as "far behind".
    access_message_in_memory_max_ratio: u32 = 40, "accessMessageInMemoryMaxRatio";
    notify_consumer_ids_changed_enable: bool = true, "notifyConsumerIdsChangedEnable";
    /// Period (ms) of persisting consumer offsets.
    flush_consumer_offset_interval: u64 = 5_000, "flushConsumerOffsetInterval";
    /// A connection that completes no frame for this long (s) is closed,
    /// and a client without a heartbeat for this long is forgotten; 0
    /// keeps silent connections open.
    server_channel_max_idle_time_seconds: u64 = 120, "serverChannelMaxIdleTimeSeconds";
    /// A frame whose first byte arrived must be complete within this long
    /// (ms) or its connection is closed; 0 no bound.
    server_frame_read_timeout_millis: u64 = 30_000, "serverFrameReadTimeoutMillis";
    /// Connections beyond this many are refused at once (lowered to fit the
    /// open-file limit).
    server_max_connections: usize = mq_remoting::MAX_CONNECTIONS, "serverMaxConnections";
    /// Connections the kernel queues until they are accepted (the system
    /// caps it at `net.core.somaxconn`).
    server_socket_backlog: u32 = mq_remoting::DEFAULT_BACKLOG, "serverSocketBacklog";
    /// The file UPDATE_BROKER_CONFIG writes to (the `-c` file); empty means
    /// `<storePathRootDir>/config/broker.properties`.
    broker_config_path: String = String::new(), "brokerConfigPath";
    /// Largest remoting frame accepted (bytes).
    server_frame_max_length: usize = mq_protocol::DEFAULT_MAX_FRAME_LEN, "serverFrameMaxLength";
    /// Threads of the broker's async runtime, which serves the ports and
    /// runs the request processors; 0 (the default) means one less than
    /// the processors, at least one, so that the store's flush and warm-up
    /// threads keep a core (RocketMQ's key sizes Netty's workers, default
    /// 8). The `TOKIO_WORKER_THREADS` environment variable overrides it.
    server_worker_threads: usize = 0, "serverWorkerThreads";
    /// Folder of `broker.log` and `store.log`; empty means
    /// `$HOME/logs/rocketmqlogs`. The `ROCKETMQ_LOG_ROOT` environment
    /// variable overrides it (RocketMQ's `-Drocketmq.log.root`).
    rocketmq_log_root: String = String::new(), "rocketmqLogRoot";
    /// A log file rolls over into `otherdays/` past this many bytes (and
    /// at midnight UTC).
    rocketmq_log_max_file_size: u64 = 128 * 1024 * 1024, "rocketmqLogMaxFileSize";
    /// Rolled files kept per log file.
    rocketmq_log_max_index: usize = 10, "rocketmqLogMaxIndex";
    /// `PROM` serves Prometheus metrics on `metricsPromExporterHost:Port`;
    /// `DISABLE` (the default) serves none.
    metrics_exporter_type: MetricsExporterType = MetricsExporterType::Disable, "metricsExporterType";
    /// Address the metrics endpoint binds.
    metrics_prom_exporter_host: String = "127.0.0.1".to_owned(), "metricsPromExporterHost";
    /// Port of the metrics endpoint (RocketMQ 5's default); 0 picks one.
    metrics_prom_exporter_port: u16 = 5557, "metricsPromExporterPort";
}

impl BrokerConfig {
    /// The async runtime's worker threads on a machine with `processors`:
    /// `serverWorkerThreads`, or one less than the processors (at least
    /// one). On 2 cores one worker served 7% more sends with 20% less CPU
    /// per message than two (BENCHMARKS.md).
    pub fn runtime_workers(&self, processors: usize) -> usize {
        match self.server_worker_threads {
            0 => processors.saturating_sub(1).max(1),
            n => n,
        }
    }

    /// The remoting server's limits from these keys (fixed at start).
    pub fn server_config(&self) -> mq_remoting::ServerConfig {
        mq_remoting::ServerConfig {
            max_frame_len: self.server_frame_max_length,
            max_connections: self.server_max_connections.max(1),
            backlog: self.server_socket_backlog.max(1),
            ..mq_remoting::ServerConfig::default()
        }
        .with_timeouts(
            self.server_channel_max_idle_time_seconds,
            self.server_frame_read_timeout_millis,
        )
    }

    /// Where `mqbroker` logs: `broker.log` (every line) and `store.log`
    /// (the store's lines) in the log folder, rolled as configured.
    pub fn logging(&self) -> telemetry::logging::Logging {
        telemetry::logging::Logging {
            dir: telemetry::logging::log_root(&self.rocketmq_log_root),
            files: vec![
                telemetry::logging::LogFile::all("broker"),
                telemetry::logging::LogFile::of("store", &["mq_store"]),
            ],
            limits: telemetry::RollingLimits {
                max_file_size: self.rocketmq_log_max_file_size,
                max_files: self.rocketmq_log_max_index,
            },
            default_filter: "info".to_owned(),
            stderr: telemetry::logging::Stderr::WhenTerminal,
        }
    }

    /// `namesrvAddr` split on `;`.
    pub fn namesrv_addrs(&self) -> Vec<String> {
        self.namesrv_addr
            .split(';')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The replication address advertised to slaves: `brokerIP2`, else
    /// `brokerIP1`.
    pub fn effective_broker_ip2(&self) -> &str {
        if self.broker_ip2.trim().is_empty() {
            &self.broker_ip1
        } else {
            self.broker_ip2.trim()
        }
    }

    /// The replication port to bind: `haListenPort`, else `listenPort + 1`,
    /// else 0 (any free port) when `listenPort` is 0.
    pub fn effective_ha_port(&self) -> u16 {
        if self.ha_listen_port != 0 {
            self.ha_listen_port
        } else if self.listen_port == 0 {
            0
        } else {
            self.listen_port.saturating_add(1)
        }
    }

    /// Checks that span several keys, run once the whole file is applied.
    pub fn validate(&self) -> Result<(), String> {
        if self.broker_name.trim().is_empty() {
            return Err("brokerName must not be empty".into());
        }
        if self.broker_id < 0 {
            return Err(format!("brokerId must be >= 0, got {}", self.broker_id));
        }
        match (self.broker_id == 0, self.broker_role) {
            (true, BrokerRole::Slave) => {
                Err("brokerId 0 is the master; a SLAVE needs brokerId > 0".into())
            }
            (false, BrokerRole::AsyncMaster | BrokerRole::SyncMaster) => Err(format!(
                "brokerId {} is a slave id; set brokerRole=SLAVE or brokerId=0",
                self.broker_id
            )),
            _ => Ok(()),
        }?;
        if !(1..=1024).contains(&self.default_topic_queue_nums) {
            return Err(format!(
                "defaultTopicQueueNums must be within 1..=1024, got {}",
                self.default_topic_queue_nums
            ));
        }
        if self.rocketmq_log_max_file_size == 0 {
            return Err("rocketmqLogMaxFileSize must be > 0".into());
        }
        if self.broker_permission & !7 != 0 {
            return Err(format!(
                "brokerPermission must be within 0..=7, got {}",
                self.broker_permission
            ));
        }
        Ok(())
    }
}

fn default_broker_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "DEFAULT_BROKER".to_owned())
}

/// RocketMQ keys that tune the JVM, Netty or thread pools. We accept them so
/// that an operator's existing file loads, and ignore them: tokio sizes its
/// own pools, and memory is the page cache's.
pub const ACCEPTED_AND_IGNORED: &[&str] = &[
    "sendMessageThreadPoolNums",
    "pullMessageThreadPoolNums",
    "processReplyMessageThreadPoolNums",
    "queryMessageThreadPoolNums",
    "adminBrokerThreadPoolNums",
    "clientManageThreadPoolNums",
    "consumerManageThreadPoolNums",
    "heartbeatThreadPoolNums",
    "endTransactionThreadPoolNums",
    "serverCallbackExecutorThreads",
    "serverSelectorThreads",
    "serverOnewaySemaphoreValue",
    "serverAsyncSemaphoreValue",
    "serverSocketSndBufSize",
    "serverSocketRcvBufSize",
    "serverPooledByteBufAllocatorEnable",
    "useEpollNativeSelector",
    "clientWorkerThreads",
    "clientCallbackExecutorThreads",
    "transientStorePoolEnable",
    "transientStorePoolSize",
    "osPageCacheBusyTimeOutMills",
    "warmMapedFileEnable",
    "fetchNamesrvAddrByAddressServer",
    "traceTopicEnable",
    "msgTraceTopicName",
    "filterSupportRetry",
    "useReentrantLockWhenPutMessage",
    "waitTimeMillsInSendQueue",
    "waitTimeMillsInPullQueue",
    "waitTimeMillsInHeartbeatQueue",
    "waitTimeMillsInTransactionQueue",
    "sendThreadPoolQueueCapacity",
    "pullThreadPoolQueueCapacity",
    "enableDLegerCommitLog",
    "storeType",
];

/// A configuration problem.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{origin}: invalid value {value:?} for {key}: {reason}")]
pub struct ConfigError {
    /// The file (and line) or flag that set the key.
    pub origin: String,
    pub key: String,
    pub value: String,
    pub reason: String,
}

/// Applies `.properties` entries to `sections` in order. Returns warnings for
/// unknown keys; a wrong value is an error naming the key and `origin`.
pub fn apply_properties(
    entries: &[mq_protocol::properties::Entry],
    origin: &str,
    sections: &mut [&mut dyn ConfigSection],
) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    'entries: for entry in entries {
        for section in sections.iter_mut() {
            match section.set(&entry.key, &entry.value) {
                Ok(true) => continue 'entries,
                Ok(false) => {}
                Err(reason) => {
                    return Err(ConfigError {
                        origin: format!("{origin}:{}", entry.line),
                        key: entry.key.clone(),
                        value: entry.value.clone(),
                        reason,
                    })
                }
            }
        }
        if !ACCEPTED_AND_IGNORED.contains(&entry.key.as_str()) {
            warnings.push(format!(
                "{origin}:{}: unknown key {} (ignored)",
                entry.line, entry.key
            ));
        }
    }
    Ok(warnings)
}

/// The store's keys and values, for `-p` and GET_BROKER_CONFIG.
pub fn store_entries(store: &mq_store::MessageStoreConfig) -> Vec<(&'static str, String)> {
    let path = |p: &Option<std::path::PathBuf>, default: std::path::PathBuf| {
        p.clone().unwrap_or(default).display().to_string()
    };
    vec![
        (
            "storePathRootDir",
            store.store_path_root_dir.display().to_string(),
        ),
        (
            "storePathCommitLog",
            path(&store.store_path_commit_log, store.commit_log_dir()),
        ),
        (
            "storePathConsumeQueue",
            path(&store.store_path_consume_queue, store.consume_queue_dir()),
        ),
        (
            "storePathIndex",
            path(&store.store_path_index, store.index_dir()),
        ),
        (
            "storeCheckpoint",
            path(&store.store_checkpoint, store.checkpoint_path()),
        ),
        ("abortFile", path(&store.abort_file, store.abort_path())),
        (
            "mapedFileSizeCommitLog",
            store.maped_file_size_commit_log.to_string(),
        ),
        (
            "mapedFileSizeConsumeQueue",
            store.maped_file_size_consume_queue.to_string(),
        ),
        (
            "flushDiskType",
            match store.flush_disk_type {
                mq_store::FlushDiskType::AsyncFlush => "ASYNC_FLUSH".to_owned(),
                mq_store::FlushDiskType::SyncFlush => "SYNC_FLUSH".to_owned(),
            },
        ),
        (
            "flushIntervalCommitLog",
            store.flush_interval_commit_log.to_string(),
        ),
        (
            "flushIntervalConsumeQueue",
            store.flush_interval_consume_queue.to_string(),
        ),
        ("syncFlushTimeout", store.sync_flush_timeout.to_string()),
        ("messageDelayLevel", store.message_delay_level.clone()),
        ("maxMessageSize", store.max_message_size.to_string()),
        ("maxHashSlotNum", store.max_hash_slot_num.to_string()),
        ("maxIndexNum", store.max_index_num.to_string()),
        ("messageIndexEnable", store.message_index_enable.to_string()),
        ("deleteWhen", store.delete_when.clone()),
        ("fileReservedTime", store.file_reserved_time.to_string()),
        (
            "diskMaxUsedSpaceRatio",
            store.disk_max_used_space_ratio.to_string(),
        ),
        (
            "diskSpaceWarningLevelRatio",
            store.disk_space_warning_level_ratio.to_string(),
        ),
        (
            "cleanResourceInterval",
            store.clean_resource_interval.to_string(),
        ),
        (
            "deleteFileBatchMax",
            store.delete_file_batch_max.to_string(),
        ),
        ("checkCRCOnRecover", store.check_crc_on_recover.to_string()),
    ]
}

impl ConfigSection for mq_store::MessageStoreConfig {
    fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
        mq_store::MessageStoreConfig::set(self, key, value).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_protocol::properties::parse;

    #[test]
    fn a_rocketmq_broker_file_applies() {
        let text = "brokerClusterName=DefaultCluster\nbrokerName=broker-a\nbrokerId=0\ndeleteWhen=04\nbrokerRole=SYNC_MASTER\nnamesrvAddr=10.0.0.1:9876;10.0.0.2:9876\nsendMessageThreadPoolNums=16\nlistenPort=10921\nautoCreateTopicEnable=false\nsomeTypo=1\n";
        let mut config = BrokerConfig::default();
        let warnings = apply_properties(
            &parse(text).unwrap(),
            "broker-a.properties",
            &mut [&mut config],
        )
        .unwrap();
        assert_eq!(config.broker_name, "broker-a");
        assert_eq!(config.broker_role, BrokerRole::SyncMaster);
        assert_eq!(config.listen_port, 10921);
        assert_eq!(config.effective_ha_port(), 10922);
        assert!(!config.auto_create_topic_enable);
        assert_eq!(
            config.namesrv_addrs(),
            vec!["10.0.0.1:9876", "10.0.0.2:9876"]
        );
        // deleteWhen belongs to the store section (not given here), someTypo to nobody.
        assert_eq!(
            warnings,
            vec![
                "broker-a.properties:4: unknown key deleteWhen (ignored)".to_string(),
                "broker-a.properties:10: unknown key someTypo (ignored)".to_string(),
            ]
        );
        config.validate().unwrap();
    }

    #[test]
    fn a_wrong_value_names_the_key_and_file() {
        let mut config = BrokerConfig::default();
        let err = apply_properties(
            &parse("a=1\nbrokerId=one\n").unwrap(),
            "b.properties",
            &mut [&mut config],
        )
        .unwrap_err();
        assert_eq!(err.key, "brokerId");
        assert_eq!(err.origin, "b.properties:2");
        assert!(err.to_string().contains("brokerId"));
        let err = apply_properties(
            &parse("brokerRole=LEADER").unwrap(),
            "b.properties",
            &mut [&mut config],
        )
        .unwrap_err();
        assert!(err.reason.contains("unknown broker role"), "{}", err.reason);
    }

    #[test]
    fn server_limits_come_from_their_keys() {
        let mut config = BrokerConfig::default();
        let warnings = apply_properties(
            &parse("serverSocketBacklog=4096\nserverMaxConnections=300\nserverFrameReadTimeoutMillis=0\n")
                .unwrap(),
            "b.properties",
            &mut [&mut config],
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.server_socket_backlog, 4096);
        let server = config.server_config();
        assert_eq!(server.backlog, 4096);
        assert_eq!(server.max_connections, 300);
        assert_eq!(server.frame_read_timeout, None);
        assert_eq!(
            server.idle_timeout,
            Some(std::time::Duration::from_secs(120))
        );
        let defaults = BrokerConfig::default().server_config();
        assert_eq!(defaults.backlog, mq_remoting::DEFAULT_BACKLOG);
        for bad in ["serverSocketBacklog=-1", "serverSocketBacklog=lots"] {
            let err = apply_properties(&parse(bad).unwrap(), "b.properties", &mut [&mut config])
                .unwrap_err();
            assert_eq!(err.key, "serverSocketBacklog");
        }
    }

    #[test]
    fn worker_threads_leave_a_core_unless_set() {
        let mut config = BrokerConfig::default();
        assert_eq!(config.server_worker_threads, 0);
        assert_eq!(config.runtime_workers(1), 1);
        assert_eq!(config.runtime_workers(2), 1);
        assert_eq!(config.runtime_workers(8), 7);
        apply_properties(
            &parse("serverWorkerThreads=3").unwrap(),
            "b.properties",
            &mut [&mut config],
        )
        .unwrap();
        assert_eq!(config.runtime_workers(2), 3);
    }

    #[test]
    fn timer_keys_apply_with_rocketmq_defaults() {
        let defaults = BrokerConfig::default();
        assert!(defaults.timer_wheel_enable);
        assert_eq!(defaults.timer_max_delay_sec, 259_200, "3 days");
        let mut config = BrokerConfig::default();
        let text = "timerMaxDelaySec=93600\ntimerWheelEnable=false\n";
        let warnings =
            apply_properties(&parse(text).unwrap(), "b.properties", &mut [&mut config]).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.timer_max_delay_sec, 93_600);
        assert!(!config.timer_wheel_enable);
        for bad in [
            "timerMaxDelaySec=-1",
            "timerMaxDelaySec=3d",
            "timerWheelEnable=yes",
        ] {
            let err = apply_properties(&parse(bad).unwrap(), "b.properties", &mut [&mut config])
                .unwrap_err();
            assert!(err.key.starts_with("timer"), "{err}");
        }
    }

    #[test]
    fn role_and_id_must_agree() {
        let mut config = BrokerConfig {
            broker_name: "b".into(),
            ..BrokerConfig::default()
        };
        config.broker_role = BrokerRole::Slave;
        assert!(config.validate().is_err());
        config.broker_id = 1;
        assert!(config.validate().is_ok());
        config.broker_role = BrokerRole::AsyncMaster;
        assert!(config.validate().is_err());
    }

    #[test]
    fn entries_list_every_key_once() {
        let config = BrokerConfig::default();
        let entries = config.entries();
        assert_eq!(entries.len(), BrokerConfig::KEYS.len());
        assert!(entries
            .iter()
            .any(|(k, v)| *k == "brokerRole" && v == "ASYNC_MASTER"));
    }
}
