//! `rmq-proxy.json`: the proxy's settings under RocketMQ 5's key names.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tracing::warn;

/// RocketMQ 5's default gRPC port.
pub const DEFAULT_GRPC_PORT: u16 = 8081;

/// The proxy's settings (RocketMQ's `ProxyConfig`, the keys we use).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProxyConfig {
    /// Port of the gRPC endpoint (8081; 0 picks a free one).
    pub grpc_server_port: u16,
    /// Address the gRPC endpoint binds: loopback unless set (our key).
    pub grpc_server_address: IpAddr,
    /// RocketMQ's port for 4.x remoting clients at the proxy. Ours do not
    /// need one: 4.x clients talk to the brokers themselves, so the key is
    /// accepted and not served.
    pub remoting_listen_port: Option<u16>,
    /// Name servers, `;`-separated (`-n` overrides).
    pub namesrv_addr: String,
    /// The cluster the proxy fronts. Logged only: routes come from the
    /// name servers, which know every cluster's brokers.
    #[serde(rename = "rocketMQClusterName")]
    pub rocketmq_cluster_name: String,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            grpc_server_port: DEFAULT_GRPC_PORT,
            grpc_server_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            remoting_listen_port: None,
            namesrv_addr: String::new(),
            rocketmq_cluster_name: "DefaultCluster".into(),
        }
    }
}

const KNOWN_KEYS: &[&str] = &[
    "grpcServerPort",
    "grpcServerAddress",
    "remotingListenPort",
    "namesrvAddr",
    "rocketMQClusterName",
];

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl ProxyConfig {
    /// Parses the JSON text of `rmq-proxy.json`; keys we do not use are
    /// logged and ignored (RocketMQ's files carry many).
    pub fn parse(text: &str) -> Result<ProxyConfig, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        if let Some(map) = value.as_object() {
            for key in map.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
                warn!(key, "rmq-proxy.json: key not used by this proxy");
            }
        }
        let config: ProxyConfig = serde_json::from_value(value)?;
        if config.remoting_listen_port.is_some() {
            warn!("rmq-proxy.json: remotingListenPort is not served; 4.x clients use the brokers");
        }
        Ok(config)
    }

    /// Reads `path`.
    pub fn load(path: &Path) -> Result<ProxyConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        ProxyConfig::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// The file to read: `-pc FILE`, else `$ROCKETMQ_HOME/conf/rmq-proxy.json`
    /// when it exists, else none (defaults).
    pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
        if let Some(path) = explicit {
            return Some(path.to_owned());
        }
        let home = std::env::var_os("ROCKETMQ_HOME")?;
        let path = Path::new(&home).join("conf").join("rmq-proxy.json");
        path.is_file().then_some(path)
    }

    /// Reads the located file, or the defaults when there is none.
    pub fn resolve(explicit: Option<&Path>) -> Result<ProxyConfig, ConfigError> {
        match ProxyConfig::locate(explicit) {
            Some(path) => ProxyConfig::load(&path),
            None => Ok(ProxyConfig::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_rocketmqs_on_loopback() {
        let config = ProxyConfig::parse("{}").unwrap();
        assert_eq!(config.grpc_server_port, 8081);
        assert_eq!(config.grpc_server_address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.rocketmq_cluster_name, "DefaultCluster");
    }

    #[test]
    fn rocketmq_keys_parse_and_unknown_ones_are_ignored() {
        let config = ProxyConfig::parse(
            r#"{"grpcServerPort": 9081, "remotingListenPort": 9080,
                "namesrvAddr": "127.0.0.1:9876", "rocketMQClusterName": "C1",
                "proxyMode": "cluster"}"#,
        )
        .unwrap();
        assert_eq!(config.grpc_server_port, 9081);
        assert_eq!(config.remoting_listen_port, Some(9080));
        assert_eq!(config.namesrv_addr, "127.0.0.1:9876");
        assert_eq!(config.rocketmq_cluster_name, "C1");
    }

    #[test]
    fn a_bad_value_is_an_error() {
        assert!(ProxyConfig::parse(r#"{"grpcServerPort": "x"}"#).is_err());
        assert!(ProxyConfig::parse(r#"{"grpcServerPort": 70000}"#).is_err());
    }
}
