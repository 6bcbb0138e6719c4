//! The pay service's own keys, read through the service frame
//! (`shop_common::service`): the base keys, then these, from the defaults,
//! a `.properties` file, `DATABASE_URL` and `PAY_*` variables
//! (`PAY_HTTP_ADDR`, `PAY_GATEWAY_SECRET`, ...), each overriding the one
//! before.

use std::time::Duration;

use shop_common::api::pay::CALLBACK_PATH;
pub use shop_common::api::pay::DEV_GATEWAY_SECRET;
pub use shop_common::config::Secret;
use shop_common::config::{ConfigError, Settings};
use shop_common::service::OwnKeys;

/// The pay service's own keys and their defaults.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("order_url", "http://127.0.0.1:8081"),
    ("gateway_url", "http://127.0.0.1:8088"),
    ("public_url", "http://127.0.0.1:8085"),
    ("gateway_secret", DEV_GATEWAY_SECRET),
    ("call_timeout_ms", "3000"),
];

/// The values of the pay service's own keys. Without a name server (the
/// base key `namesrv_addr` empty) a callback marks the payment PAID and
/// publishes nothing (tests of the API only).
#[derive(Debug, Clone)]
pub struct Config {
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
        // The secret's value is never repeated in an error.
        let gateway_secret = settings.secret("gateway_secret")?;
        Ok(Config {
            order_url: url(settings, "order_url")?,
            gateway_url: url(settings, "gateway_url")?,
            public_url: url(settings, "public_url")?,
            gateway_secret,
            call_timeout,
        })
    }
}

impl Config {
    /// The values for tests: the order service at `order_url`, the
    /// development secret.
    pub fn for_tests(order_url: &str) -> Config {
        Config {
            order_url: order_url.trim_end_matches('/').to_owned(),
            gateway_url: "http://127.0.0.1:8088".to_owned(),
            public_url: "http://127.0.0.1:8085".to_owned(),
            gateway_secret: Secret::new(DEV_GATEWAY_SECRET),
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

    #[test]
    fn defaults_then_file() {
        let frame = crate::SERVICE.config(&crate::SERVICE.defaults()).unwrap();
        assert_eq!(frame.http_addr.port(), 8085);
        assert_eq!(frame.database_url, "sqlite://data/pay.db");
        let defaults = frame.own;
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
        let settings = crate::SERVICE.settings(Some(&path)).unwrap();
        let config = crate::SERVICE.config(&settings).unwrap().own;
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
            let mut settings = crate::SERVICE.defaults();
            settings.set(key, value);
            let err = crate::SERVICE.config(&settings).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
