//! The order service's own keys, read through the service frame
//! (`shop_common::service`): the base keys, then these, from the defaults,
//! a `.properties` file, `DATABASE_URL` and `ORDER_*` variables
//! (`ORDER_HTTP_ADDR`, `ORDER_GOODS_URL`, ...), each overriding the one
//! before.

use std::time::Duration;

use rust_decimal::Decimal;
use shop_common::config::{ConfigError, Settings};
use shop_common::service::OwnKeys;

use crate::model::{Cents, Shipping};

/// The order service's own keys and their defaults.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("goods_url", "http://127.0.0.1:8082"),
    ("coupon_url", "http://127.0.0.1:8083"),
    ("user_url", "http://127.0.0.1:8084"),
    ("saga_timeout_ms", "30000"),
    ("call_timeout_ms", "3000"),
    ("sweep_interval_ms", "10000"),
    ("shipping_fee", "10.00"),
    ("free_shipping_threshold", "100.00"),
];

/// The values of the order service's own keys.
#[derive(Debug, Clone)]
pub struct Config {
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
    /// `shipping_fee`, and `free_shipping_threshold`: orders whose goods
    /// amount reaches it ship free.
    pub shipping: Shipping,
}

fn cents(settings: &Settings, key: &str) -> Result<Cents, ConfigError> {
    let amount: Decimal = settings.require(key)?;
    Cents::from_decimal(amount).ok_or_else(|| {
        ConfigError::invalid(
            key,
            &amount.to_string(),
            "must be a non-negative amount in whole cents",
        )
    })
}

impl OwnKeys for Config {
    const DEFAULTS: &'static [(&'static str, &'static str)] = DEFAULTS;

    fn from_settings(settings: &Settings) -> Result<Config, ConfigError> {
        Ok(Config {
            goods_url: settings.require("goods_url")?,
            coupon_url: settings.require("coupon_url")?,
            user_url: settings.require("user_url")?,
            saga_timeout: settings.millis("saga_timeout_ms")?,
            call_timeout: settings.millis("call_timeout_ms")?,
            sweep_interval: settings.millis("sweep_interval_ms")?,
            shipping: Shipping {
                fee: cents(settings, "shipping_fee")?,
                free_from: cents(settings, "free_shipping_threshold")?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let config = Config::from_settings(&Settings::with_defaults(DEFAULTS)).unwrap();
        assert_eq!(config.shipping.fee, Cents(1000));
        assert_eq!(config.shipping.free_from, Cents(10_000));
        assert_eq!(config.saga_timeout, Duration::from_secs(30));
    }

    #[test]
    fn the_service_does_not_start_without_its_secret() {
        let err = crate::SERVICE
            .config(&crate::SERVICE.defaults())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("service_secret") && err.contains("must be set"),
            "{err}"
        );
        let mut settings = crate::SERVICE.defaults();
        settings.set("service_secret", "0123456789abcdef0123");
        let config = crate::SERVICE.config(&settings).unwrap();
        assert_eq!(config.service_key.unwrap().name(), "order");
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
