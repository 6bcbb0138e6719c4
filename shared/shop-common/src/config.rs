//! Layered service configuration: defaults, then a `.properties` file, then
//! environment variables. Every value remembers where it came from so that an
//! error names the key and the file (or variable) that set it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File { path: PathBuf, line: usize },
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "the defaults"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Syntax {
        path: PathBuf,
        source: props::PropertiesError,
    },
    #[error("missing config key {key}")]
    Missing { key: String },
    #[error("invalid value {value:?} for {key} (from {origin}): {reason}")]
    Invalid {
        key: String,
        value: String,
        origin: Source,
        reason: String,
    },
}

impl ConfigError {
    /// `value` of `key` refused for `reason` (a range or form that parsing
    /// alone does not check).
    pub fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_owned(),
            value: value.to_owned(),
            origin: Source::Default,
            reason: reason.to_owned(),
        }
    }
}

/// A secret value: never shown by `Debug` (so not in logs).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it (an HMAC key).
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(******)")
    }
}

/// Configuration values by key.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    values: BTreeMap<String, (String, Source)>,
}

impl Settings {
    /// Settings holding `defaults`.
    pub fn with_defaults(defaults: &[(&str, &str)]) -> Self {
        let values = defaults
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ((*v).to_owned(), Source::Default)))
            .collect();
        Settings { values }
    }

    /// Layers a `.properties` file over what is set.
    pub fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let entries = props::parse(&text).map_err(|source| ConfigError::Syntax {
            path: path.to_owned(),
            source,
        })?;
        for entry in entries {
            let source = Source::File {
                path: path.to_owned(),
                line: entry.line,
            };
            self.values.insert(entry.key, (entry.value, source));
        }
        Ok(())
    }

    /// Layers environment variables: key `http_addr` is overridden by
    /// `<PREFIX>_HTTP_ADDR`.
    pub fn apply_env(&mut self, prefix: &str) {
        self.apply_vars(prefix, std::env::vars());
    }

    fn apply_vars(&mut self, prefix: &str, vars: impl Iterator<Item = (String, String)>) {
        let wanted = format!("{}_", prefix.to_ascii_uppercase());
        for (var, value) in vars {
            if let Some(rest) = var.strip_prefix(&wanted) {
                let key = rest.to_ascii_lowercase();
                self.values.insert(key, (value, Source::Env(var)));
            }
        }
    }

    /// Sets a value (from code, e.g. a command-line flag).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values
            .insert(key.to_owned(), (value.into(), Source::Default));
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    /// A required value parsed as `T`.
    pub fn require<T: FromStr>(&self, key: &str) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        let (value, source) = self.values.get(key).ok_or_else(|| ConfigError::Missing {
            key: key.to_owned(),
        })?;
        value
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                key: key.to_owned(),
                value: value.clone(),
                origin: source.clone(),
                reason: e.to_string(),
            })
    }

    /// A required duration in milliseconds, at least 1.
    pub fn millis(&self, key: &str) -> Result<Duration, ConfigError> {
        let ms: u64 = self.require(key)?;
        if ms == 0 {
            return Err(ConfigError::invalid(key, "0", "must be at least 1 ms"));
        }
        Ok(Duration::from_millis(ms))
    }

    /// A required, non-empty secret (an error does not repeat its value).
    pub fn secret(&self, key: &str) -> Result<Secret, ConfigError> {
        match self.get(key) {
            Some(value) if !value.is_empty() => Ok(Secret::new(value)),
            _ => Err(ConfigError::invalid(key, "", "must not be empty")),
        }
    }

    /// A secret that has no default: set, at least 16 characters, without
    /// ',', ':' or spaces (so it fits a `name:secret,...` list). `what` says
    /// what it is for; an error names the key, never the value.
    pub fn required_secret(&self, key: &str, what: &str) -> Result<String, ConfigError> {
        let value = self.get(key).unwrap_or_default().trim();
        if value.is_empty() {
            return Err(ConfigError::invalid(
                key,
                "",
                &format!("must be set: {what} (generate one, e.g. `openssl rand -hex 32`)"),
            ));
        }
        if value.len() < crate::auth::service::MIN_SECRET_LEN || value.contains([',', ':', ' ']) {
            return Err(ConfigError::invalid(
                key,
                "",
                "must be at least 16 characters without ',', ':' or spaces",
            ));
        }
        Ok(value.to_owned())
    }

    /// Keys that are set but not in `known`, with where they came from, so a
    /// service can warn about typos.
    pub fn unknown_keys<'a>(&'a self, known: &[&str]) -> Vec<(&'a str, &'a Source)> {
        self.values
            .iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, (_, source))| (k.as_str(), source))
            .collect()
    }

    /// Every value as `key=value` lines, for logging the effective
    /// configuration. Keys that look secret are masked.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (key, (value, _)) in &self.values {
            let shown = if key.contains("secret") || key.contains("password") {
                "******"
            } else {
                value
            };
            out.push_str(&format!("{key}={shown}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("order.properties");
        std::fs::write(&path, "http_addr=127.0.0.1:8081\nsaga_timeout_ms=oops\n").unwrap();
        let mut s = Settings::with_defaults(&[
            ("http_addr", "0.0.0.0:8080"),
            ("database_url", "sqlite://x.db"),
        ]);
        s.load_file(&path).unwrap();
        s.apply_vars(
            "order",
            [
                (
                    "ORDER_DATABASE_URL".to_string(),
                    "postgres://h/db".to_string(),
                ),
                ("OTHER_X".to_string(), "1".to_string()),
            ]
            .into_iter(),
        );
        assert_eq!(s.get("http_addr"), Some("127.0.0.1:8081"));
        assert_eq!(s.get("database_url"), Some("postgres://h/db"));
        assert_eq!(s.get("x"), None);
        let err = s.require::<u64>("saga_timeout_ms").unwrap_err().to_string();
        assert!(
            err.contains("saga_timeout_ms") && err.contains("order.properties:2"),
            "{err}"
        );
        assert!(matches!(
            s.require::<u64>("nope"),
            Err(ConfigError::Missing { .. })
        ));
        assert_eq!(s.unknown_keys(&["http_addr", "database_url"]).len(), 1);
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = Settings::default()
            .load_file(Path::new("/no/such/file.properties"))
            .unwrap_err();
        assert!(err.to_string().contains("/no/such/file.properties"));
    }

    #[test]
    fn render_masks_secrets() {
        let s = Settings::with_defaults(&[("gateway_secret", "hunter2"), ("a", "1")]);
        assert_eq!(s.render(), "a=1\ngateway_secret=******\n");
    }
}
