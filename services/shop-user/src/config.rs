//! The user service's own keys.

use std::path::Path;
use std::time::Duration;

use shop_common::config::{ConfigError, Settings};
use shop_common::service::OwnKeys;

use crate::operators::Operators;

/// The keys with their defaults.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("session_ttl_ms", "28800000"),
    ("operators_file", ""),
    ("login_max_failures", "5"),
    ("login_lockout_ms", "60000"),
];

/// The user service's configuration beyond the frame's.
#[derive(Debug, Clone)]
pub struct UserConfig {
    /// `session_ttl_ms` (8 h): how long a token from `POST /auth/login`
    /// lives.
    pub session_ttl: Duration,
    /// The accounts of `operators_file` (none when the key is empty).
    pub operators: Operators,
    /// `login_max_failures` (5) failed log-ins in a row for one login lock
    /// it for `login_lockout_ms` (60 s): log-ins for it then answer 429.
    pub login_max_failures: u32,
    pub login_lockout: Duration,
}

impl Default for UserConfig {
    fn default() -> Self {
        UserConfig::from_settings(&Settings::with_defaults(DEFAULTS))
            .expect("the defaults are valid")
    }
}

impl OwnKeys for UserConfig {
    const DEFAULTS: &'static [(&'static str, &'static str)] = DEFAULTS;

    fn from_settings(settings: &Settings) -> Result<UserConfig, ConfigError> {
        let session_ttl = settings.millis("session_ttl_ms")?;
        if session_ttl < Duration::from_secs(60) || session_ttl > Duration::from_secs(30 * 86_400) {
            return Err(ConfigError::invalid(
                "session_ttl_ms",
                &session_ttl.as_millis().to_string(),
                "must be from 60000 (a minute) to 2592000000 (30 days)",
            ));
        }
        let file = settings.get("operators_file").unwrap_or_default().trim();
        let operators = if file.is_empty() {
            Operators::default()
        } else {
            Operators::load(Path::new(file))?
        };
        let login_max_failures: u32 = settings.require("login_max_failures")?;
        if login_max_failures == 0 {
            return Err(ConfigError::invalid(
                "login_max_failures",
                "0",
                "must be at least 1",
            ));
        }
        Ok(UserConfig {
            session_ttl,
            operators,
            login_max_failures,
            login_lockout: settings.millis("login_lockout_ms")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_give_eight_hour_sessions_and_no_operators() {
        let config = UserConfig::default();
        assert_eq!(config.session_ttl, Duration::from_secs(8 * 3600));
        assert!(config.operators.is_empty());
        assert_eq!(
            (config.login_max_failures, config.login_lockout),
            (5, Duration::from_secs(60))
        );
    }

    #[test]
    fn a_bad_operators_file_stops_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operators");
        std::fs::write(&path, "ops=secret\n").unwrap();
        let mut settings = Settings::with_defaults(DEFAULTS);
        settings.set("operators_file", path.display().to_string());
        let err = UserConfig::from_settings(&settings)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("{}:1", path.display())), "{err}");
        settings.set("operators_file", "");
        settings.set("session_ttl_ms", "10");
        let err = UserConfig::from_settings(&settings)
            .unwrap_err()
            .to_string();
        assert!(err.contains("session_ttl_ms"), "{err}");
    }
}
