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
    /// Check every 5.x request's signature and permissions against the
    /// accounts file (RocketMQ 5.1's `enableACL`; `aclEnable`, the
    /// broker's key, is accepted too).
    #[serde(rename = "enableACL", alias = "aclEnable")]
    pub enable_acl: bool,
    /// The accounts file (`plain_acl.yml`): absolute, or relative to
    /// `$ROCKETMQ_HOME`; empty means `conf/plain_acl.yml` there, where the
    /// broker looks (the broker's key).
    pub acl_file_path: String,
    /// The account the proxy signs its 4.x requests to the brokers with,
    /// for brokers with `aclEnable=true`; none sends them unsigned. It
    /// acts for every 5.x client, so it needs their permissions (an admin
    /// account, typically).
    pub access_key: Option<String>,
    /// Secret of `accessKey` (no default; never logged).
    pub secret_key: Option<Secret>,
}

/// A secret from the configuration: its `Debug` form hides it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            grpc_server_port: DEFAULT_GRPC_PORT,
            grpc_server_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            remoting_listen_port: None,
            namesrv_addr: String::new(),
            rocketmq_cluster_name: "DefaultCluster".into(),
            enable_acl: false,
            acl_file_path: String::new(),
            access_key: None,
            secret_key: None,
        }
    }
}

const KNOWN_KEYS: &[&str] = &[
    "grpcServerPort",
    "grpcServerAddress",
    "remotingListenPort",
    "namesrvAddr",
    "rocketMQClusterName",
    "enableACL",
    "aclEnable",
    "aclFilePath",
    "accessKey",
    "secretKey",
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
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
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
        let mut config: ProxyConfig = serde_json::from_value(value)?;
        // An empty key is no key (RocketMQ's files carry `"accessKey": ""`).
        config.access_key = config.access_key.filter(|k| !k.is_empty());
        config.secret_key = config.secret_key.filter(|k| !k.0.is_empty());
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
        let config = ProxyConfig::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        config.validate().map_err(|reason| ConfigError::Invalid {
            path: path.to_owned(),
            reason,
        })?;
        Ok(config)
    }

    /// Cross-field checks: the proxy's account needs both keys.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.access_key, &self.secret_key) {
            (Some(_), None) => Err("accessKey is set without a secretKey".into()),
            (None, Some(_)) => Err("secretKey is set without an accessKey".into()),
            _ => Ok(()),
        }
    }

    /// The accounts file the 5.x side checks against: `aclFilePath`
    /// resolved against `$ROCKETMQ_HOME` as the broker resolves its own.
    pub fn acl_path(&self) -> PathBuf {
        let home = std::env::var("ROCKETMQ_HOME").unwrap_or_default();
        mq_acl::resolve_path(&home, &self.acl_file_path)
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
    fn acl_keys_parse_and_the_secret_stays_out_of_debug() {
        let config = ProxyConfig::parse(
            r#"{"enableACL": true, "aclFilePath": "/etc/rmq/plain_acl.yml",
                "accessKey": "proxy-admin", "secretKey": "s3cret-value"}"#,
        )
        .unwrap();
        assert!(config.enable_acl);
        assert_eq!(config.acl_path(), PathBuf::from("/etc/rmq/plain_acl.yml"));
        assert_eq!(config.access_key.as_deref(), Some("proxy-admin"));
        assert_eq!(config.secret_key, Some(Secret("s3cret-value".into())));
        assert!(config.validate().is_ok());
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret-value"), "{debug}");
        assert!(
            ProxyConfig::parse(r#"{"aclEnable": true}"#)
                .unwrap()
                .enable_acl
        );
        assert!(!ProxyConfig::parse("{}").unwrap().enable_acl);
        let half = ProxyConfig::parse(r#"{"accessKey": "proxy-admin", "secretKey": ""}"#).unwrap();
        assert!(half.validate().unwrap_err().contains("secretKey"));
        let none = ProxyConfig::parse(r#"{"accessKey": "", "secretKey": ""}"#).unwrap();
        assert_eq!((none.access_key, none.secret_key), (None, None));
    }

    #[test]
    fn a_bad_value_is_an_error() {
        assert!(ProxyConfig::parse(r#"{"grpcServerPort": "x"}"#).is_err());
        assert!(ProxyConfig::parse(r#"{"grpcServerPort": 70000}"#).is_err());
    }
}
