//! The name server's configuration: RocketMQ's `NamesrvConfig` and
//! `NettyServerConfig` keys, read from a `.properties` file.

use std::fmt;
use std::path::{Path, PathBuf};

use mq_protocol::DEFAULT_MAX_FRAME_LEN;
use thiserror::Error;

/// Keys RocketMQ files carry that tune the Java runtime (Netty threads,
/// buffers, ...). Accepted without a warning and without effect.
const IGNORED_KEYS: &[&str] = &[
    "serverWorkerThreads",
    "serverCallbackExecutorThreads",
    "serverSelectorThreads",
    "serverOnewaySemaphoreValue",
    "serverAsyncSemaphoreValue",
    "serverSocketSndBufSize",
    "serverSocketRcvBufSize",
    "writeBufferHighWaterMark",
    "writeBufferLowWaterMark",
    "serverPooledByteBufAllocatorEnable",
    "useEpollNativeSelector",
    "configBlackList",
    "namesrvAddr",
];

/// Keys UPDATE_NAMESRV_CONFIG may not change (RocketMQ's `configBlackList`).
pub const BLACK_LIST: &[&str] = &[
    "configBlackList",
    "configStorePath",
    "kvConfigPath",
    "rocketmqHome",
    // The ACL is not switched off, or pointed elsewhere, over the network.
    "aclEnable",
    "aclFilePath",
];

/// Why a configuration could not be read.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{source_name} line {line}: {reason}")]
    Syntax {
        source_name: String,
        line: usize,
        reason: String,
    },
    #[error("invalid value {value:?} for {key} in {source_name}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        /// The file (or "request") the value came from.
        source_name: String,
        reason: String,
    },
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamesrvConfig {
    /// `rocketmqHome`: informational; we need no files from it.
    pub rocketmq_home: String,
    /// `kvConfigPath`: where the KV config is persisted.
    pub kv_config_path: PathBuf,
    /// `configStorePath`: the file the configuration came from.
    pub config_store_path: PathBuf,
    /// `productEnvName`.
    pub product_env_name: String,
    /// `clusterTest`: accepted; the cluster-test processor is not provided.
    pub cluster_test: bool,
    /// `orderMessageEnable`: put the ORDER_TOPIC_CONFIG KV entry of a topic in
    /// its route as `orderTopicConf` (off by default, as in RocketMQ).
    pub order_message_enable: bool,
    /// `listenPort`: 9876; 0 picks a free port.
    pub listen_port: u16,
    /// `bindAddress` (alias `listenAddr`): 0.0.0.0 by default.
    pub bind_address: String,
    /// `scanNotActiveBrokerInterval` (ms): how often silent brokers are
    /// looked for.
    pub scan_not_active_broker_interval_ms: u64,
    /// `brokerChannelExpiredTime` (ms): a broker silent this long is dropped.
    pub broker_channel_expired_time_ms: u64,
    /// `frameMaxLength`: frames above it close their connection.
    pub frame_max_length: usize,
    /// `serverChannelMaxIdleTimeSeconds`: a connection that completes no
    /// frame for this long is closed (120 s); 0 never.
    pub server_channel_max_idle_time_seconds: u64,
    /// `serverFrameReadTimeoutMillis`: a frame whose first byte arrived must
    /// be complete within this long (30 s) or its connection is closed; 0 no
    /// bound.
    pub server_frame_read_timeout_millis: u64,
    /// `serverMaxConnections`: connections beyond it are refused at once
    /// (65,536; lowered to fit the open-file limit).
    pub server_max_connections: usize,
    /// `serverSocketBacklog`: connections the kernel queues until they are
    /// accepted (RocketMQ's 1024; the system caps it at
    /// `net.core.somaxconn`).
    pub server_socket_backlog: u32,
    /// `aclEnable`: check registrations and admin requests against the plain
    /// ACL accounts file (beyond RocketMQ 4.x); a malformed file stops start-up.
    pub acl_enable: bool,
    /// `aclFilePath`: the accounts file, absolute or relative to
    /// `rocketmqHome`; empty means `conf/plain_acl.yml` there.
    pub acl_file_path: String,
    /// `rocketmqLogRoot`: folder of `namesrv.log`; empty means
    /// `$HOME/logs/rocketmqlogs`. `ROCKETMQ_LOG_ROOT` overrides it.
    pub rocketmq_log_root: String,
    /// `rocketmqLogMaxFileSize`: a log file rolls over past this many bytes.
    pub rocketmq_log_max_file_size: u64,
    /// `rocketmqLogMaxIndex`: rolled files kept.
    pub rocketmq_log_max_index: usize,
    /// `metricsPromExporterPort`: serve Prometheus metrics on this port of
    /// `metricsPromExporterHost` when `metricsExporterType=PROM`.
    pub metrics_prom: bool,
    /// `metricsPromExporterHost`.
    pub metrics_prom_exporter_host: String,
    /// `metricsPromExporterPort` (5557; 0 picks one).
    pub metrics_prom_exporter_port: u16,
}

impl Default for NamesrvConfig {
    fn default() -> Self {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        NamesrvConfig {
            rocketmq_home: std::env::var("ROCKETMQ_HOME").unwrap_or_default(),
            kv_config_path: home.join("namesrv").join("kvConfig.json"),
            config_store_path: home.join("namesrv").join("namesrv.properties"),
            product_env_name: "center".into(),
            cluster_test: false,
            order_message_enable: false,
            listen_port: 9876,
            bind_address: "0.0.0.0".into(),
            scan_not_active_broker_interval_ms: 10_000,
            broker_channel_expired_time_ms: 120_000,
            frame_max_length: DEFAULT_MAX_FRAME_LEN,
            server_channel_max_idle_time_seconds: mq_remoting::DEFAULT_IDLE_TIMEOUT.as_secs(),
            server_frame_read_timeout_millis: duration_millis(
                mq_remoting::DEFAULT_FRAME_READ_TIMEOUT,
            ),
            server_max_connections: mq_remoting::MAX_CONNECTIONS,
            server_socket_backlog: mq_remoting::DEFAULT_BACKLOG,
            acl_enable: false,
            acl_file_path: String::new(),
            rocketmq_log_root: String::new(),
            rocketmq_log_max_file_size: 128 * 1024 * 1024,
            rocketmq_log_max_index: 10,
            metrics_prom: false,
            metrics_prom_exporter_host: "127.0.0.1".into(),
            metrics_prom_exporter_port: 5557,
        }
    }
}

/// What [`NamesrvConfig::set`] did with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOutcome {
    Applied,
    /// A known RocketMQ key without effect here.
    Ignored,
    Unknown,
}

impl NamesrvConfig {
    /// Defaults, then the keys of the `.properties` file at `path`. Returns
    /// the warnings to log (unknown keys).
    pub fn load(path: &Path) -> Result<(Self, Vec<String>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = NamesrvConfig::default();
        let source_name = path.display().to_string();
        let mut warnings = Vec::new();
        for (key, value) in parse_properties(&text, &source_name)? {
            if config.set(&key, &value, &source_name)? == KeyOutcome::Unknown {
                warnings.push(format!("unknown key {key} in {source_name} ignored"));
            }
        }
        config.config_store_path = path.to_owned();
        Ok((config, warnings))
    }

    /// Sets one key from its text form.
    pub fn set(
        &mut self,
        key: &str,
        value: &str,
        source_name: &str,
    ) -> Result<KeyOutcome, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            source_name: source_name.to_owned(),
            reason,
        };
        let value = value.trim();
        match key {
            "rocketmqHome" => self.rocketmq_home = value.to_owned(),
            "kvConfigPath" => self.kv_config_path = PathBuf::from(value),
            "configStorePath" => self.config_store_path = PathBuf::from(value),
            "productEnvName" => self.product_env_name = value.to_owned(),
            "clusterTest" => self.cluster_test = parse_bool(value).map_err(invalid)?,
            "orderMessageEnable" => {
                self.order_message_enable = parse_bool(value).map_err(invalid)?
            }
            "listenPort" => {
                self.listen_port = value
                    .parse()
                    .map_err(|e| invalid(format!("not a port number (0-65535): {e}")))?;
            }
            "bindAddress" | "listenAddr" => {
                value
                    .parse::<std::net::IpAddr>()
                    .map_err(|e| invalid(format!("not an IP address: {e}")))?;
                value.clone_into(&mut self.bind_address);
            }
            "scanNotActiveBrokerInterval" => {
                self.scan_not_active_broker_interval_ms = parse_positive(value).map_err(invalid)?;
            }
            "brokerChannelExpiredTime" => {
                self.broker_channel_expired_time_ms = parse_positive(value).map_err(invalid)?;
            }
            "frameMaxLength" => {
                let length = parse_positive(value).map_err(invalid)?;
                self.frame_max_length =
                    usize::try_from(length).map_err(|e| invalid(e.to_string()))?;
            }
            "serverChannelMaxIdleTimeSeconds" => {
                self.server_channel_max_idle_time_seconds = parse_count(value).map_err(invalid)?;
            }
            "serverFrameReadTimeoutMillis" => {
                self.server_frame_read_timeout_millis = parse_count(value).map_err(invalid)?;
            }
            "serverMaxConnections" => {
                let max = parse_positive(value).map_err(invalid)?;
                self.server_max_connections =
                    usize::try_from(max).map_err(|e| invalid(e.to_string()))?;
            }
            "serverSocketBacklog" => {
                let backlog = parse_positive(value).map_err(invalid)?;
                self.server_socket_backlog =
                    u32::try_from(backlog).map_err(|e| invalid(e.to_string()))?;
            }
            "aclEnable" => self.acl_enable = parse_bool(value).map_err(invalid)?,
            "aclFilePath" => value.clone_into(&mut self.acl_file_path),
            "rocketmqLogRoot" => value.clone_into(&mut self.rocketmq_log_root),
            "rocketmqLogMaxFileSize" => {
                self.rocketmq_log_max_file_size = parse_positive(value).map_err(invalid)?;
            }
            "rocketmqLogMaxIndex" => {
                let kept = parse_count(value).map_err(invalid)?;
                self.rocketmq_log_max_index =
                    usize::try_from(kept).map_err(|e| invalid(e.to_string()))?;
            }
            "metricsExporterType" => {
                self.metrics_prom = match value {
                    "PROM" => true,
                    "DISABLE" => false,
                    _ => return Err(invalid("expected DISABLE or PROM".into())),
                }
            }
            "metricsPromExporterHost" => {
                value
                    .parse::<std::net::IpAddr>()
                    .map_err(|e| invalid(format!("not an IP address: {e}")))?;
                value.clone_into(&mut self.metrics_prom_exporter_host);
            }
            "metricsPromExporterPort" => {
                self.metrics_prom_exporter_port = value
                    .parse()
                    .map_err(|e| invalid(format!("not a port number (0-65535): {e}")))?;
            }
            _ if IGNORED_KEYS.contains(&key) => return Ok(KeyOutcome::Ignored),
            _ => return Ok(KeyOutcome::Unknown),
        }
        Ok(KeyOutcome::Applied)
    }

    /// Every key with its value, sorted by key.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let mut entries = vec![
            ("rocketmqHome", self.rocketmq_home.clone()),
            ("kvConfigPath", self.kv_config_path.display().to_string()),
            (
                "configStorePath",
                self.config_store_path.display().to_string(),
            ),
            ("productEnvName", self.product_env_name.clone()),
            ("clusterTest", self.cluster_test.to_string()),
            ("orderMessageEnable", self.order_message_enable.to_string()),
            ("listenPort", self.listen_port.to_string()),
            ("bindAddress", self.bind_address.clone()),
            (
                "scanNotActiveBrokerInterval",
                self.scan_not_active_broker_interval_ms.to_string(),
            ),
            (
                "brokerChannelExpiredTime",
                self.broker_channel_expired_time_ms.to_string(),
            ),
            ("frameMaxLength", self.frame_max_length.to_string()),
            (
                "serverChannelMaxIdleTimeSeconds",
                self.server_channel_max_idle_time_seconds.to_string(),
            ),
            (
                "serverFrameReadTimeoutMillis",
                self.server_frame_read_timeout_millis.to_string(),
            ),
            (
                "serverMaxConnections",
                self.server_max_connections.to_string(),
            ),
            (
                "serverSocketBacklog",
                self.server_socket_backlog.to_string(),
            ),
            ("aclEnable", self.acl_enable.to_string()),
            ("aclFilePath", self.acl_file_path.clone()),
            ("rocketmqLogRoot", self.rocketmq_log_root.clone()),
            (
                "rocketmqLogMaxFileSize",
                self.rocketmq_log_max_file_size.to_string(),
            ),
            (
                "rocketmqLogMaxIndex",
                self.rocketmq_log_max_index.to_string(),
            ),
            (
                "metricsExporterType",
                if self.metrics_prom { "PROM" } else { "DISABLE" }.to_owned(),
            ),
            (
                "metricsPromExporterHost",
                self.metrics_prom_exporter_host.clone(),
            ),
            (
                "metricsPromExporterPort",
                self.metrics_prom_exporter_port.to_string(),
            ),
        ];
        entries.sort_by_key(|(key, _)| *key);
        entries
    }
}

impl NamesrvConfig {
    /// Where `mqnamesrv` logs: `namesrv.log` in the log folder.
    pub fn logging(&self) -> telemetry::logging::Logging {
        telemetry::logging::Logging {
            limits: telemetry::RollingLimits {
                max_file_size: self.rocketmq_log_max_file_size,
                max_files: self.rocketmq_log_max_index,
            },
            ..telemetry::logging::Logging::single(
                &telemetry::logging::log_root(&self.rocketmq_log_root),
                "namesrv",
            )
        }
    }

    /// The remoting server's limits from these keys (fixed at start).
    pub fn server_config(&self) -> mq_remoting::ServerConfig {
        mq_remoting::ServerConfig {
            max_frame_len: self.frame_max_length,
            max_connections: self.server_max_connections,
            backlog: self.server_socket_backlog,
            ..mq_remoting::ServerConfig::default()
        }
        .with_timeouts(
            self.server_channel_max_idle_time_seconds,
            self.server_frame_read_timeout_millis,
        )
    }
}

/// `key=value` lines, as `-p` and GET_NAMESRV_CONFIG show them.
impl fmt::Display for NamesrvConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in self.entries() {
            writeln!(f, "{key}={value}")?;
        }
        Ok(())
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// A count where 0 is allowed (it turns the limit off).
fn parse_count(value: &str) -> Result<u64, String> {
    value
        .parse::<u64>()
        .map_err(|e| format!("not a non-negative integer: {e}"))
}

fn duration_millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn parse_positive(value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(0) => Err("must be above 0".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a positive integer: {e}")),
    }
}

/// `key, value` pairs of Java `.properties` text, in file order.
pub fn parse_properties(
    text: &str,
    source_name: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let entries = mq_protocol::properties::parse(text).map_err(|e| ConfigError::Syntax {
        source_name: source_name.to_owned(),
        line: e.line,
        reason: e.reason,
    })?;
    Ok(entries.into_iter().map(|e| (e.key, e.value)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_apply_and_unknown_keys_warn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("namesrv.properties");
        std::fs::write(
            &path,
            "listenPort=0\nbindAddress=127.0.0.1\nserverWorkerThreads=8\nnoSuchKey=1\nbrokerChannelExpiredTime=5000\n",
        )
        .unwrap();
        let (config, warnings) = NamesrvConfig::load(&path).unwrap();
        assert_eq!(config.listen_port, 0);
        assert_eq!(config.bind_address, "127.0.0.1");
        assert_eq!(config.broker_channel_expired_time_ms, 5000);
        assert_eq!(config.config_store_path, path);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("noSuchKey"), "{warnings:?}");
    }

    #[test]
    fn wrong_values_name_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.properties");
        for bad in [
            "listenPort=98765",
            "orderMessageEnable=yes",
            "bindAddress=localhost",
            "scanNotActiveBrokerInterval=0",
            "serverMaxConnections=0",
            "serverChannelMaxIdleTimeSeconds=-1",
            "serverSocketBacklog=0",
            "serverSocketBacklog=4294967296",
        ] {
            std::fs::write(&path, bad).unwrap();
            let error = NamesrvConfig::load(&path).unwrap_err().to_string();
            let key = bad.split('=').next().unwrap();
            assert!(error.contains(key), "{error}");
            assert!(error.contains("bad.properties"), "{error}");
        }
        let missing = NamesrvConfig::load(&dir.path().join("none")).unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }));
    }

    #[test]
    fn server_limits_come_from_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns.properties");
        std::fs::write(
            &path,
            "serverSocketBacklog=4096\nserverMaxConnections=500\nserverChannelMaxIdleTimeSeconds=0\nframeMaxLength=65536\n",
        )
        .unwrap();
        let (config, warnings) = NamesrvConfig::load(&path).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.server_socket_backlog, 4096);
        let server = config.server_config();
        assert_eq!(server.backlog, 4096);
        assert_eq!(server.max_connections, 500);
        assert_eq!(server.max_frame_len, 65536);
        assert_eq!(server.idle_timeout, None);
        assert_eq!(
            server.frame_read_timeout,
            Some(mq_remoting::DEFAULT_FRAME_READ_TIMEOUT)
        );
        let defaults = NamesrvConfig::default().server_config();
        assert_eq!(defaults.backlog, mq_remoting::DEFAULT_BACKLOG);
        assert!(NamesrvConfig::default()
            .to_string()
            .contains("serverSocketBacklog=1024\n"));
    }

    #[test]
    fn display_lists_every_key_once() {
        let text = NamesrvConfig::default().to_string();
        assert!(text.contains("listenPort=9876\n"));
        assert!(text.contains("bindAddress=0.0.0.0\n"));
        assert!(text.contains("orderMessageEnable=false\n"));
        assert!(text.contains("kvConfigPath="));
        let reparsed = parse_properties(&text, "test").unwrap();
        let mut config = NamesrvConfig::default();
        for (key, value) in &reparsed {
            assert_eq!(
                config.set(key, value, "test").unwrap(),
                KeyOutcome::Applied,
                "{key}"
            );
        }
        assert_eq!(config, NamesrvConfig::default());
    }
}
