//! The pay service's configuration, read through
//! [`shop_common::config::Settings`]: defaults, then a `.properties` file,
//! then `DATABASE_URL`, then `PAY_*` variables (`PAY_HTTP_ADDR`,
//! `PAY_GATEWAY_SECRET`, ...), each overriding the one before.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use shop_common::config::{ConfigError, Settings, Source};

/// Prefix of the environment variables that override keys.
pub const ENV_PREFIX: &str = "PAY";
/// Every key this service reads; others get a warning at start-up.
pub const KEYS: &[&str] = &[
    "http_addr",
    "database_url",
    "max_connections",
    "namesrv_addr",
    "order_url",
    "gateway_url",
    "public_url",
    "gateway_secret",
    "call_timeout_ms",
];
/// The HMAC key of a development setup. Anyone can read it here: a real
/// deployment sets its own (`PAY_GATEWAY_SECRET`), and the service warns
/// when it runs with this one.
pub const DEV_GATEWAY_SECRET: &str = "dev-gateway-secret-change-me";
const DEFAULTS: &[(&str, &str)] = &[
    ("http_addr", "127.0.0.1:8085"),
    ("database_url", "sqlite://data/pay.db"),
    ("max_connections", "10"),
    ("namesrv_addr", "127.0.0.1:9876"),
    ("order_url", "http://127.0.0.1:8081"),
    ("gateway_url", "http://127.0.0.1:8088"),
    ("public_url", "http://127.0.0.1:8085"),
    ("gateway_secret", DEV_GATEWAY_SECRET),
    ("call_timeout_ms", "3000"),
];

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it (the HMAC key).
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(******)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP API listens; port 0 picks a free port (tests).
    pub http_addr: SocketAddr,
    /// `sqlite://...` or `postgres://...`.
    pub database_url: String,
    /// Size of the database connection pool.
    pub max_connections: u32,
    /// Name servers of the broker cluster (`;`-separated) for the
    /// PAY_SUCCESS producer. Empty runs without a broker: a callback then
    /// marks the payment PAID and publishes nothing (tests of the API only).
    pub namesrv_addr: String,
    /// The order service, asked for the order a payment is for.
    pub order_url: String,
    /// The payment gateway the `pay_url` of a payment points at.
    pub gateway_url: String,
    /// This service's own URL as the gateway reaches it; the gateway
    /// posts its notification to `{public_url}/payments/callback`.
    pub public_url: String,
    /// The HMAC-SHA256 key shared with the gateway.
    pub gateway_secret: Secret,
    /// Timeout of each call to the order service.
    pub call_timeout: Duration,
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        origin: Source::Default,
        reason: reason.to_owned(),
    }
}

fn url(settings: &Settings, key: &str) -> Result<String, ConfigError> {
    let value: String = settings.require(key)?;
    let value = value.trim().trim_end_matches('/').to_owned();
    let parsed = reqwest::Url::parse(&value).map_err(|e| invalid(key, &value, &e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(invalid(key, &value, "must be an http:// or https:// URL"));
    }
    Ok(value)
}

impl Config {
    /// The layered settings: defaults, `file`, `DATABASE_URL`, `PAY_*`.
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
            return Err(invalid("max_connections", "0", "must be at least 1"));
        }
        let call_timeout_ms: u64 = settings.require("call_timeout_ms")?;
        if call_timeout_ms == 0 {
            return Err(invalid("call_timeout_ms", "0", "must be at least 1 ms"));
        }
        let secret = settings.get("gateway_secret").unwrap_or_default();
        if secret.is_empty() {
            // The value itself is not repeated: it is a secret.
            return Err(invalid("gateway_secret", "", "must not be empty"));
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
            order_url: url(settings, "order_url")?,
            gateway_url: url(settings, "gateway_url")?,
            public_url: url(settings, "public_url")?,
            gateway_secret: Secret::new(secret),
            call_timeout: Duration::from_millis(call_timeout_ms),
        })
    }

    /// A configuration for tests: port 0 on localhost, `database_url`, no
    /// broker, the development secret.
    pub fn for_tests(database_url: &str, order_url: &str) -> Config {
        Config {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.to_owned(),
            max_connections: 10,
            namesrv_addr: String::new(),
            order_url: order_url.trim_end_matches('/').to_owned(),
            gateway_url: "http://127.0.0.1:8088".to_owned(),
            public_url: "http://127.0.0.1:8085".to_owned(),
            gateway_secret: Secret::new(DEV_GATEWAY_SECRET),
            call_timeout: Duration::from_secs(3),
        }
    }

    /// Where the gateway posts its notifications.
    pub fn callback_url(&self) -> String {
        format!("{}/payments/callback", self.public_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_file() {
        let defaults = Config::from_settings(&Settings::with_defaults(DEFAULTS)).unwrap();
        assert_eq!(defaults.http_addr.port(), 8085);
        assert_eq!(defaults.database_url, "sqlite://data/pay.db");
        assert_eq!(defaults.order_url, "http://127.0.0.1:8081");
        assert_eq!(
            defaults.callback_url(),
            "http://127.0.0.1:8085/payments/callback"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pay.properties");
        std::fs::write(
            &path,
            "gateway_url=http://gw.local:9000/\ngateway_secret=s3cr3t\ncall_timeout_ms=50\n",
        )
        .unwrap();
        let mut settings = Settings::with_defaults(DEFAULTS);
        settings.load_file(&path).unwrap();
        let config = Config::from_settings(&settings).unwrap();
        assert_eq!(config.gateway_url, "http://gw.local:9000");
        assert_eq!(config.gateway_secret.expose(), b"s3cr3t");
        assert_eq!(config.call_timeout, Duration::from_millis(50));
    }

    #[test]
    fn the_secret_never_shows() {
        let mut settings = Settings::with_defaults(DEFAULTS);
        settings.set("gateway_secret", "hunter2");
        let config = Config::from_settings(&settings).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!settings.render().contains("hunter2"));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value) in [
            ("http_addr", "localhost"),
            ("max_connections", "0"),
            ("order_url", "127.0.0.1:8081"),
            ("call_timeout_ms", "0"),
            ("gateway_secret", ""),
        ] {
            let mut settings = Settings::with_defaults(DEFAULTS);
            settings.set(key, value);
            let err = Config::from_settings(&settings).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
