//! The order service's configuration, read through
//! [`shop_common::config::Settings`]: defaults, then a `.properties` file,
//! then `DATABASE_URL`, then `ORDER_*` variables (`ORDER_HTTP_ADDR`,
//! `ORDER_GOODS_URL`, ...), each overriding the one before.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use rust_decimal::Decimal;
use shop_common::config::{ConfigError, Settings, Source};
use shop_common::money::to_cents;

/// Prefix of the environment variables that override keys.
pub const ENV_PREFIX: &str = "ORDER";
/// Every key this service reads; others get a warning at start-up.
pub const KEYS: &[&str] = &[
    "http_addr",
    "database_url",
    "max_connections",
    "namesrv_addr",
    "goods_url",
    "coupon_url",
    "user_url",
    "saga_timeout_ms",
    "call_timeout_ms",
    "sweep_interval_ms",
    "shipping_fee",
    "free_shipping_threshold",
];
const DEFAULTS: &[(&str, &str)] = &[
    ("http_addr", "127.0.0.1:8081"),
    ("database_url", "sqlite://data/order.db"),
    ("max_connections", "10"),
    ("namesrv_addr", "127.0.0.1:9876"),
    ("goods_url", "http://127.0.0.1:8082"),
    ("coupon_url", "http://127.0.0.1:8083"),
    ("user_url", "http://127.0.0.1:8084"),
    ("saga_timeout_ms", "30000"),
    ("call_timeout_ms", "3000"),
    ("sweep_interval_ms", "10000"),
    ("shipping_fee", "10.00"),
    ("free_shipping_threshold", "100.00"),
];

#[derive(Debug, Clone)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub database_url: String,
    pub max_connections: u32,
    /// Name servers of the broker cluster, `;`-separated.
    pub namesrv_addr: String,
    pub goods_url: String,
    pub coupon_url: String,
    pub user_url: String,
    /// A PENDING order older than this is abandoned: the check-back or the
    /// sweeper cancels it.
    pub saga_timeout: Duration,
    /// Timeout of each call to another service; a reservation that takes
    /// longer fails the order.
    pub call_timeout: Duration,
    /// How often abandoned PENDING orders are looked for.
    pub sweep_interval: Duration,
    pub shipping_fee_cents: i64,
    /// Orders whose goods amount reaches this ship free.
    pub free_shipping_threshold_cents: i64,
}

fn millis(settings: &Settings, key: &str) -> Result<Duration, ConfigError> {
    let ms: u64 = settings.require(key)?;
    if ms == 0 {
        return Err(ConfigError::Invalid {
            key: key.to_owned(),
            value: "0".to_owned(),
            origin: Source::Default,
            reason: "must be at least 1 ms".to_owned(),
        });
    }
    Ok(Duration::from_millis(ms))
}

fn cents(settings: &Settings, key: &str) -> Result<i64, ConfigError> {
    let amount: Decimal = settings.require(key)?;
    to_cents(amount)
        .ok()
        .filter(|c| *c >= 0)
        .ok_or_else(|| ConfigError::Invalid {
            key: key.to_owned(),
            value: amount.to_string(),
            origin: Source::Default,
            reason: "must be a non-negative amount in whole cents".to_owned(),
        })
}

impl Config {
    /// The layered settings: defaults, `file`, `DATABASE_URL`, `ORDER_*`.
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
        Ok(Config {
            http_addr: settings.require("http_addr")?,
            database_url: settings.require("database_url")?,
            max_connections: settings.require::<u32>("max_connections")?.max(1),
            namesrv_addr: settings.require("namesrv_addr")?,
            goods_url: settings.require("goods_url")?,
            coupon_url: settings.require("coupon_url")?,
            user_url: settings.require("user_url")?,
            saga_timeout: millis(settings, "saga_timeout_ms")?,
            call_timeout: millis(settings, "call_timeout_ms")?,
            sweep_interval: millis(settings, "sweep_interval_ms")?,
            shipping_fee_cents: cents(settings, "shipping_fee")?,
            free_shipping_threshold_cents: cents(settings, "free_shipping_threshold")?,
        })
    }

    /// The defaults with the given database, for tests and the all-in-one runner.
    pub fn with_database(database_url: &str) -> Config {
        let mut settings = Settings::with_defaults(DEFAULTS);
        settings.set("database_url", database_url);
        Config::from_settings(&settings).expect("the defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let config = Config::with_database("sqlite://x.db");
        assert_eq!(config.shipping_fee_cents, 1000);
        assert_eq!(config.free_shipping_threshold_cents, 10_000);
        assert_eq!(config.saga_timeout, Duration::from_secs(30));
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut settings = Settings::with_defaults(DEFAULTS);
        settings.set("shipping_fee", "1.001");
        let err = Config::from_settings(&settings).unwrap_err().to_string();
        assert!(err.contains("shipping_fee"), "{err}");
        let mut settings = Settings::with_defaults(DEFAULTS);
        settings.set("saga_timeout_ms", "0");
        assert!(Config::from_settings(&settings)
            .unwrap_err()
            .to_string()
            .contains("saga_timeout_ms"));
    }
}
