//! The pay service's own keys, read through the service frame
//! (`shop_common::service`): the base keys, then these, from the defaults,
//! a `.properties` file, `DATABASE_URL` and `PAY_*` variables
//! (`PAY_HTTP_ADDR`, `PAY_GATEWAY_SECRET`, ...), each overriding the one
//! before. Neither gateway secret has a default: a pay service without
//! them refuses to start.

use std::time::Duration;

use shop_common::api::pay::CALLBACK_PATH;
use shop_common::auth::ServiceKey;
pub use shop_common::config::Secret;
use shop_common::config::{ConfigError, Settings};
use shop_common::service::OwnKeys;

/// The pay service's own keys and their defaults.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("order_url", "http://127.0.0.1:8081"),
    ("gateway_url", "http://127.0.0.1:8088"),
    ("public_url", "http://127.0.0.1:8085"),
    ("gateway_secret", ""),
    ("merchant_id", "shop"),
    ("merchant_key", ""),
    ("call_timeout_ms", "3000"),
];

/// The gateway secret and merchant key of tests; `shop_gateway::Config`'s
/// tests use the same.
pub const TEST_GATEWAY_SECRET: &str = "test-gateway-secret-of-the-shop";
/// See [`TEST_GATEWAY_SECRET`].
pub const TEST_MERCHANT_KEY: &str = "test-merchant-key-of-the-shop";

/// The values of the pay service's own keys. Without a name server (the
/// base key `namesrv_addr` empty) a callback settles the payment without
/// publishing (tests of the API only).
#[derive(Debug, Clone)]
pub struct Config {
    /// The order service, asked for the order a payment is for and told
    /// of a payment (internal endpoints, signed).
    pub order_url: String,
    /// The payment gateway: payments are registered there and the
    /// `pay_url` of a payment points at it.
    pub gateway_url: String,
    /// This service's own URL as the gateway reaches it; the gateway must
    /// be configured to notify `{public_url}/payments/callback`.
    pub public_url: String,
    /// The HMAC-SHA256 key the gateway signs its notifications with
    /// (`gateway_secret`, no default).
    pub gateway_secret: Secret,
    /// This shop as the gateway's merchant: `merchant_id` and the key its
    /// requests to the gateway are signed with (`merchant_key`, no
    /// default).
    pub merchant: ServiceKey,
    /// Timeout of each call to the order service and the gateway.
    pub call_timeout: Duration,
}

fn url(settings: &Settings, key: &str) -> Result<String, ConfigError> {
    let value: String = settings.require(key)?;
    let value = value.trim().trim_end_matches('/').to_owned();
    let parsed = reqwest::Url::parse(&value)
        .map_err(|e| ConfigError::invalid(key, &value, &e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(ConfigError::invalid(
            key,
            &value,
            "must be an http:// or https:// URL",
        ));
    }
    Ok(value)
}

impl OwnKeys for Config {
    const DEFAULTS: &'static [(&'static str, &'static str)] = DEFAULTS;

    fn from_settings(settings: &Settings) -> Result<Config, ConfigError> {
        let call_timeout = settings.millis("call_timeout_ms")?;
        // The secrets' values are never repeated in an error.
        let gateway_secret = settings.required_secret(
            "gateway_secret",
            "the gateway's notifications are checked with it",
        )?;
        let merchant_key = settings.required_secret(
            "merchant_key",
            "payments are registered at the gateway with requests signed with it",
        )?;
        let merchant_id: String = settings.require("merchant_id")?;
        let merchant = ServiceKey::new(merchant_id.trim(), &merchant_key).map_err(|_| {
            ConfigError::invalid(
                "merchant_id",
                &merchant_id,
                "must be lower-case letters, digits and '-'",
            )
        })?;
        Ok(Config {
            order_url: url(settings, "order_url")?,
            gateway_url: url(settings, "gateway_url")?,
            public_url: url(settings, "public_url")?,
            gateway_secret: Secret::new(gateway_secret),
            merchant,
            call_timeout,
        })
    }
}

impl Config {
    /// The values for tests: the order service at `order_url`, the test
    /// secrets.
    pub fn for_tests(order_url: &str) -> Config {
        Config {
            order_url: order_url.trim_end_matches('/').to_owned(),
            gateway_url: "http://127.0.0.1:8088".to_owned(),
            public_url: "http://127.0.0.1:8085".to_owned(),
            gateway_secret: Secret::new(TEST_GATEWAY_SECRET),
            merchant: ServiceKey::new("shop", TEST_MERCHANT_KEY).expect("a valid test key"),
            call_timeout: Duration::from_secs(3),
        }
    }

    /// Where the gateway posts its notifications.
    pub fn callback_url(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.public_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults with every key that has none.
    fn settings() -> Settings {
        let mut settings = crate::SERVICE.defaults();
        settings.set("service_secret", "0123456789abcdef-ss");
        settings.set("gateway_secret", "0123456789abcdef-gw");
        settings.set("merchant_key", "0123456789abcdef-mk");
        settings
    }

    #[test]
    fn a_pay_service_without_its_secrets_does_not_start() {
        // The finding: the callback secret had a public default, and a
        // callback signed with it paid an order with no gateway involved.
        for key in ["gateway_secret", "merchant_key", "service_secret"] {
            let mut settings = settings();
            settings.set(key, "");
            let err = crate::SERVICE.config(&settings).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains("must be set"),
                "{key}: {err}"
            );
        }
        for key in ["gateway_secret", "merchant_key"] {
            let mut settings = settings();
            settings.set(key, "hunter2");
            let err = crate::SERVICE.config(&settings).unwrap_err().to_string();
            assert!(
                err.contains(key) && !err.contains("hunter2"),
                "{key}: {err}"
            );
        }
        assert_eq!(crate::SERVICE.defaults().get("gateway_secret"), Some(""));
        assert_eq!(crate::SERVICE.defaults().get("merchant_key"), Some(""));
    }

    #[test]
    fn defaults_then_file() {
        let frame = crate::SERVICE.config(&settings()).unwrap();
        assert_eq!(frame.http_addr.port(), 8085);
        assert_eq!(frame.database_url, "sqlite://data/pay.db");
        let defaults = frame.own;
        assert_eq!(defaults.order_url, "http://127.0.0.1:8081");
        assert_eq!(defaults.merchant.name(), "shop");
        assert_eq!(
            defaults.callback_url(),
            "http://127.0.0.1:8085/payments/callback"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pay.properties");
        std::fs::write(
            &path,
            "gateway_url=http://gw.local:9000/\ngateway_secret=s3cr3t-s3cr3t-s3cr3t\n\
             merchant_key=k3y-k3y-k3y-k3y-k3y\nservice_secret=0123456789abcdef0123\n\
             call_timeout_ms=50\n",
        )
        .unwrap();
        let settings = crate::SERVICE.settings(Some(&path)).unwrap();
        let config = crate::SERVICE.config(&settings).unwrap().own;
        assert_eq!(config.gateway_url, "http://gw.local:9000");
        assert_eq!(config.gateway_secret.expose(), b"s3cr3t-s3cr3t-s3cr3t");
        assert_eq!(config.call_timeout, Duration::from_millis(50));
    }

    #[test]
    fn the_secrets_never_show() {
        let config = crate::SERVICE.config(&settings()).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value) in [
            ("http_addr", "localhost"),
            ("max_connections", "0"),
            ("order_url", "127.0.0.1:8081"),
            ("call_timeout_ms", "0"),
            ("merchant_id", "Shop!"),
        ] {
            let mut settings = settings();
            settings.set(key, value);
            let err = crate::SERVICE.config(&settings).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
