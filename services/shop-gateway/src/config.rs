//! The gateway's own keys, read through the service frame
//! (`shop_common::service`): `http_addr` of the base keys (no database, no
//! broker), then these, from the defaults, a `.properties` file and
//! `GATEWAY_*` variables (`GATEWAY_HTTP_ADDR`, `GATEWAY_GATEWAY_SECRET`, ...),
//! each overriding the one before.

use std::time::Duration;

use shop_common::api::pay::DEV_GATEWAY_SECRET;
use shop_common::config::{ConfigError, Secret, Settings};
use shop_common::service::OwnKeys;

/// The gateway's own keys and their defaults.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("gateway_secret", DEV_GATEWAY_SECRET),
    ("callback_attempts", "5"),
    ("callback_backoff_ms", "200"),
    ("call_timeout_ms", "3000"),
];

/// The values of the gateway's own keys.
#[derive(Debug, Clone)]
pub struct Config {
    /// The HMAC-SHA256 key shared with the pay service.
    pub gateway_secret: Secret,
    /// How many times a notification is sent before the gateway gives up
    /// (a refusal, 4xx, is final at once).
    pub callback_attempts: u32,
    /// The pause before the second attempt; it doubles for each next one.
    pub callback_backoff: Duration,
    /// Timeout of each notification.
    pub call_timeout: Duration,
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
        let call_timeout = settings.millis("call_timeout_ms")?;
        Ok(Config {
            gateway_secret: settings.secret("gateway_secret")?,
            callback_attempts,
            callback_backoff: Duration::from_millis(settings.require("callback_backoff_ms")?),
            call_timeout,
        })
    }
}

impl Config {
    /// The values for tests: the development secret, 3 attempts 20 ms
    /// apart (doubling).
    pub fn for_tests() -> Config {
        Config {
            gateway_secret: Secret::new(DEV_GATEWAY_SECRET),
            callback_attempts: 3,
            callback_backoff: Duration::from_millis(20),
            call_timeout: Duration::from_secs(3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let frame = crate::SERVICE.config(&crate::SERVICE.defaults()).unwrap();
        assert_eq!(frame.http_addr.port(), 8088);
        let defaults = frame.own;
        assert_eq!(
            defaults.gateway_secret.expose(),
            DEV_GATEWAY_SECRET.as_bytes()
        );
        assert_eq!(defaults.callback_attempts, 5);
        assert_eq!(defaults.callback_backoff, Duration::from_millis(200));

        for (key, value) in [
            ("callback_attempts", "0"),
            ("callback_attempts", "many"),
            ("callback_backoff_ms", "-1"),
            ("call_timeout_ms", "0"),
            ("gateway_secret", ""),
            ("http_addr", "nowhere"),
        ] {
            let mut settings = crate::SERVICE.defaults();
            settings.set(key, value);
            let err = crate::SERVICE.config(&settings).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn the_secret_never_shows() {
        let mut settings = Settings::with_defaults(DEFAULTS);
        settings.set("gateway_secret", "hunter2");
        let config = Config::from_settings(&settings).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!settings.render().contains("hunter2"));
    }
}
