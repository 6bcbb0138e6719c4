//! The points service's configuration, read through
//! [`shop_common::config::Settings`]: defaults, then a `.properties` file,
//! then `DATABASE_URL`, then `POINTS_*` variables (`POINTS_HTTP_ADDR`,
//! `POINTS_DATABASE_URL`, `POINTS_MAX_CONNECTIONS`, `POINTS_NAMESRV_ADDR`), each
//! overriding the one before.

use std::net::SocketAddr;
use std::path::Path;

use shop_common::config::{ConfigError, Settings, Source};

/// Prefix of the environment variables that override keys.
pub const ENV_PREFIX: &str = "POINTS";
/// Every key this service reads; others get a warning at start-up.
pub const KEYS: &[&str] = &[
    "http_addr",
    "database_url",
    "max_connections",
    "namesrv_addr",
];
const DEFAULTS: &[(&str, &str)] = &[
    ("http_addr", "127.0.0.1:8087"),
    ("database_url", "sqlite://data/points.db"),
    ("max_connections", "10"),
    ("namesrv_addr", "127.0.0.1:9876"),
];

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP API listens; port 0 picks a free port (tests).
    pub http_addr: SocketAddr,
    /// `sqlite://...` or `postgres://...`.
    pub database_url: String,
    /// Size of the database connection pool.
    pub max_connections: u32,
    /// Name servers of the broker cluster (`;`-separated) for the
    /// PAY_SUCCESS consumer. Empty runs the HTTP API
    /// alone (tests of the API only).
    pub namesrv_addr: String,
}

impl Config {
    /// The layered settings: defaults, `file`, `DATABASE_URL`, `POINTS_*`.
    pub fn settings(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut settings = Settings::with_defaults(DEFAULTS);
        if let Some(file) = file {
            settings.load_file(file)?;
        }
        if let Ok(url) = std::env::var("DATABASE_URL") {
            settings.set("database_url", url);
        }
        settings.apply_env(ENV_PREFIX);
        Ok(settings)
    }

    pub fn from_settings(settings: &Settings) -> Result<Config, ConfigError> {
        let max_connections: u32 = settings.require("max_connections")?;
        if max_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "max_connections".to_owned(),
                value: "0".to_owned(),
                origin: Source::Default,
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(Config {
            http_addr: settings.require("http_addr")?,
            database_url: settings.require("database_url")?,
            max_connections,
            namesrv_addr: settings
                .get("namesrv_addr")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        })
    }

    /// A configuration for tests: port 0 on localhost, `database_url`, no
    /// broker.
    pub fn for_tests(database_url: &str) -> Config {
        Config {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.to_owned(),
            max_connections: 10,
            namesrv_addr: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_file() {
        let defaults = Config::from_settings(&Settings::with_defaults(DEFAULTS)).unwrap();
        assert_eq!(defaults.http_addr.port(), 8087);
        assert_eq!(defaults.database_url, "sqlite://data/points.db");
        assert_eq!(defaults.namesrv_addr, "127.0.0.1:9876");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.properties");
        std::fs::write(&path, "namesrv_addr=\nmax_connections=2\n").unwrap();
        let mut settings = Settings::with_defaults(DEFAULTS);
        settings.load_file(&path).unwrap();
        let config = Config::from_settings(&settings).unwrap();
        assert_eq!(config.namesrv_addr, "");
        assert_eq!(config.max_connections, 2);
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut settings = Settings::with_defaults(DEFAULTS);
        settings.set("max_connections", "0");
        let err = Config::from_settings(&settings).unwrap_err().to_string();
        assert!(err.contains("max_connections"), "{err}");
    }
}
