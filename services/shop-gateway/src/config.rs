//! The gateway's own keys, read through the service frame
//! (`shop_common::service`): the HTTP keys of the base keys (no database,
//! no broker), then these, from the defaults, a `.properties` file and
//! `GATEWAY_*` variables (`GATEWAY_HTTP_ADDR`, `GATEWAY_MERCHANT_KEY`, ...),
//! each overriding the one before.
//!
//! Like a real gateway it knows one merchant (the shop's pay service): its
//! id, the key its requests are signed with, and the one URL its
//! notifications go to. Neither secret has a default: a gateway without
//! them refuses to start.

use std::path::PathBuf;
use std::time::Duration;

use shop_common::auth::ServiceKey;
use shop_common::config::{ConfigError, Secret, Settings};
use shop_common::service::OwnKeys;

/// The gateway's own keys and their defaults.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("gateway_secret", ""),
    ("merchant_id", "shop"),
    ("merchant_key", ""),
    (
        "merchant_notify_url",
        "http://127.0.0.1:8085/payments/callback",
    ),
    ("data_dir", "data/gateway"),
    ("callback_attempts", "5"),
    ("callback_backoff_ms", "200"),
    ("call_timeout_ms", "3000"),
];

/// The values of the gateway's own keys.
#[derive(Debug, Clone)]
pub struct Config {
    /// The HMAC-SHA256 key that signs notifications, shared with the pay
    /// service (`gateway_secret`, no default).
    pub gateway_secret: Secret,
    /// The merchant: its id and the key its requests to the gateway are
    /// signed with (`merchant_id`, `merchant_key`, no default).
    pub merchant: ServiceKey,
    /// The one URL notifications go to (`merchant_notify_url`); a request
    /// naming another is refused.
    pub merchant_notify_url: reqwest::Url,
    /// Where the trades are kept (`data_dir`), so that a payment keeps its
    /// trade number across restarts.
    pub data_dir: PathBuf,
    /// How many times a notification is sent before the gateway gives up
    /// (a refusal, 4xx, is final at once).
    pub callback_attempts: u32,
    /// The pause before the second attempt; it doubles for each next one.
    pub callback_backoff: Duration,
    /// Timeout of each notification.
    pub call_timeout: Duration,
}

/// The gateway secret and merchant key of tests; `shop_pay::Config::for_tests`
/// has the same.
pub const TEST_GATEWAY_SECRET: &str = "test-gateway-secret-of-the-shop";
/// See [`TEST_GATEWAY_SECRET`].
pub const TEST_MERCHANT_KEY: &str = "test-merchant-key-of-the-shop";

fn notify_url(settings: &Settings) -> Result<reqwest::Url, ConfigError> {
    let value: String = settings.require("merchant_notify_url")?;
    reqwest::Url::parse(value.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            ConfigError::invalid(
                "merchant_notify_url",
                &value,
                "must be the pay service's http:// or https:// callback URL",
            )
        })
}

impl OwnKeys for Config {
    const DEFAULTS: &'static [(&'static str, &'static str)] = DEFAULTS;

    fn from_settings(settings: &Settings) -> Result<Config, ConfigError> {
        let callback_attempts: u32 = settings.require("callback_attempts")?;
        if !(1..=20).contains(&callback_attempts) {
            return Err(ConfigError::invalid(
                "callback_attempts",
                &callback_attempts.to_string(),
                "must be between 1 and 20",
            ));
        }
        let gateway_secret = settings.required_secret(
            "gateway_secret",
            "the gateway signs its notifications with it",
        )?;
        let merchant_id: String = settings.require("merchant_id")?;
        let merchant_key = settings.required_secret(
            "merchant_key",
            "the merchant's requests to the gateway are signed with it",
        )?;
        let merchant = ServiceKey::new(merchant_id.trim(), &merchant_key).map_err(|_| {
            ConfigError::invalid(
                "merchant_id",
                &merchant_id,
                "must be lower-case letters, digits and '-'",
            )
        })?;
        let data_dir: String = settings.require("data_dir")?;
        if data_dir.trim().is_empty() {
            return Err(ConfigError::invalid("data_dir", "", "must be a folder"));
        }
        Ok(Config {
            gateway_secret: Secret::new(gateway_secret),
            merchant,
            merchant_notify_url: notify_url(settings)?,
            data_dir: PathBuf::from(data_dir.trim()),
            callback_attempts,
            callback_backoff: Duration::from_millis(settings.require("callback_backoff_ms")?),
            call_timeout: settings.millis("call_timeout_ms")?,
        })
    }
}

impl Config {
    /// The values for tests: the test secrets, notifications to
    /// `notify_url`, trades kept in `data_dir`, 3 attempts 20 ms apart
    /// (doubling).
    pub fn for_tests(notify_url: &str, data_dir: &std::path::Path) -> Config {
        Config {
            gateway_secret: Secret::new(TEST_GATEWAY_SECRET),
            merchant: ServiceKey::new("shop", TEST_MERCHANT_KEY).expect("a valid test key"),
            merchant_notify_url: reqwest::Url::parse(notify_url).expect("a valid notify URL"),
            data_dir: data_dir.to_owned(),
            callback_attempts: 3,
            callback_backoff: Duration::from_millis(20),
            call_timeout: Duration::from_secs(3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults with the two secrets set.
    fn settings() -> Settings {
        let mut settings = crate::SERVICE.defaults();
        settings.set("gateway_secret", "0123456789abcdef-gw");
        settings.set("merchant_key", "0123456789abcdef-mk");
        settings
    }

    #[test]
    fn a_gateway_without_its_secrets_does_not_start() {
        for key in ["gateway_secret", "merchant_key"] {
            let mut settings = settings();
            settings.set(key, "");
            let err = crate::SERVICE.config(&settings).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("must be set"), "{err}");
            settings.set(key, "short");
            let err = crate::SERVICE.config(&settings).unwrap_err().to_string();
            assert!(err.contains(key) && !err.contains("short"), "{err}");
        }
        let err = crate::SERVICE
            .config(&crate::SERVICE.defaults())
            .unwrap_err()
            .to_string();
        assert!(err.contains("gateway_secret"), "{err}");
    }

    #[test]
    fn defaults_and_checks() {
        let frame = crate::SERVICE.config(&settings()).unwrap();
        assert_eq!(frame.http_addr.port(), 8088);
        let defaults = frame.own;
        assert_eq!(defaults.merchant.name(), "shop");
        assert_eq!(
            defaults.merchant_notify_url.as_str(),
            "http://127.0.0.1:8085/payments/callback"
        );
        assert_eq!(defaults.data_dir, PathBuf::from("data/gateway"));
        assert_eq!(defaults.callback_attempts, 5);
        assert_eq!(defaults.callback_backoff, Duration::from_millis(200));

        for (key, value) in [
            ("callback_attempts", "0"),
            ("callback_attempts", "many"),
            ("callback_backoff_ms", "-1"),
            ("call_timeout_ms", "0"),
            ("merchant_id", "Shop!"),
            ("merchant_notify_url", "ftp://x/cb"),
            ("data_dir", " "),
            ("http_addr", "nowhere"),
        ] {
            let mut settings = settings();
            settings.set(key, value);
            let err = crate::SERVICE.config(&settings).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn the_secrets_never_show() {
        let config = crate::SERVICE.config(&settings()).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }
}
