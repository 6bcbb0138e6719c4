//! A service's configuration: the base keys every service reads, and the
//! trait through which a service names and reads its own.

use std::fmt;
use std::net::SocketAddr;

use std::sync::Arc;
use std::time::Duration;

use mq_client::Credentials;

use super::limits::HttpLimits;
use crate::auth::{Authenticator, Keyring, ServiceKey};
use crate::config::{ConfigError, Settings};

/// A service's own keys: their defaults and how they are read.
pub trait OwnKeys: fmt::Debug + Clone + Send + Sync + Sized + 'static {
    /// The keys with their defaults.
    const DEFAULTS: &'static [(&'static str, &'static str)];

    /// Reads the keys.
    fn from_settings(settings: &Settings) -> Result<Self, ConfigError>;
}

/// A service with no keys of its own.
impl OwnKeys for () {
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[];

    fn from_settings(_settings: &Settings) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// The base keys of a service with a database; one without reads only the
/// first ones, [`HTTP_KEYS`]: the addresses and the [`HttpLimits`].
pub const KEYS: &[&str] = &[
    "http_addr",
    "metrics_addr",
    "http_header_read_timeout_ms",
    "http_request_timeout_ms",
    "http_max_body_bytes",
    "http_max_in_flight",
    "database_url",
    "max_connections",
    "namesrv_addr",
    "mq_access_key",
    "mq_secret_key",
    "service_secret",
    "trusted_services",
    "sessions_url",
    "session_cache_ms",
];

/// The base keys of every service, with a database or without.
pub const HTTP_KEYS: &[&str] = KEYS.split_at(6).0;

/// A service's configuration: the base keys, and its own in `own`.
#[derive(Debug, Clone)]
pub struct ServiceConfig<C = ()> {
    /// Where the HTTP API listens; port 0 picks a free port (tests).
    pub http_addr: SocketAddr,
    /// Where it serves its Prometheus metrics (`metrics_addr`, `GET
    /// /metrics`); empty (the default) serves none.
    pub metrics_addr: Option<SocketAddr>,
    /// The families its metrics go into: `None` gives it its own; the
    /// all-in-one run gives every service the same ones.
    pub metrics: Option<crate::metrics::ShopMetrics>,
    /// The limits its HTTP server and router apply (the other `http_*`
    /// keys).
    pub http: HttpLimits,
    /// `sqlite://...` or `postgres://...` (empty without a database).
    pub database_url: String,
    /// Size of the database connection pool.
    pub max_connections: u32,
    /// Name servers of the broker cluster (`;`-separated). Empty runs
    /// without a broker: the API alone (tests of the API only).
    pub namesrv_addr: String,
    /// The broker account its producers and consumers sign every request
    /// with (`mq_access_key`, `mq_secret_key`), for brokers with ACL on;
    /// none when both keys are empty. Its `Debug` hides the secret.
    pub mq_credentials: Option<Credentials>,
    /// Its own credential (`service_secret`, no default: a service without
    /// it refuses to start), which signs its calls and events.
    /// `None` only for a service without a database (the gateway).
    pub service_key: Option<ServiceKey>,
    /// The services whose calls and events it accepts (`trusted_services`).
    pub trusted: Keyring,
    /// Who checks bearer tokens.
    pub sessions: Sessions,
    /// The service's own keys.
    pub own: C,
}

/// Who checks a service's bearer tokens.
#[derive(Clone)]
pub enum Sessions {
    /// The user service at `url` (`sessions_url`), each answer remembered
    /// for `cache_for` (`session_cache_ms`).
    Remote { url: String, cache_for: Duration },
    /// An authenticator in the same process: the user service's own, or a
    /// test's.
    Local(Arc<dyn Authenticator>),
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sessions::Remote { url, cache_for } => f
                .debug_struct("Remote")
                .field("url", url)
                .field("cache_for", cache_for)
                .finish(),
            Sessions::Local(_) => f.write_str("Local"),
        }
    }
}

/// The sessions of `sessions_url` and `session_cache_ms`.
pub(super) fn sessions(settings: &Settings) -> Result<Sessions, ConfigError> {
    let url: String = settings.require("sessions_url")?;
    let url = url.trim().trim_end_matches('/').to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError::invalid(
            "sessions_url",
            &url,
            "must be the user service's http:// or https:// URL",
        ));
    }
    Ok(Sessions::Remote {
        url,
        cache_for: settings.millis("session_cache_ms")?,
    })
}

/// `name`'s key from `service_secret`, which must be set.
pub(super) fn service_key(settings: &Settings, name: &str) -> Result<ServiceKey, ConfigError> {
    let secret = settings.required_secret(
        "service_secret",
        "the service signs its calls and events with it; give the same value to the \
         services that trust this one, in their trusted_services",
    )?;
    ServiceKey::new(name, &secret)
}

impl ServiceConfig {
    /// A configuration for tests: port 0 on localhost, `database_url`, no
    /// broker.
    pub fn for_tests(database_url: &str) -> ServiceConfig {
        ServiceConfig::for_tests_with(database_url, ())
    }
}

impl<C> ServiceConfig<C> {
    /// [`ServiceConfig::for_tests`] with the service's own values: the
    /// test keys ([`ServiceKey::for_tests`] of a service named `test`,
    /// [`Keyring::for_tests`]) and sessions at the default user service
    /// (tests of one service set [`ServiceConfig::sessions`] to their own).
    pub fn for_tests_with(database_url: &str, own: C) -> ServiceConfig<C> {
        ServiceConfig::for_tests_named("test", database_url, own)
    }

    /// [`ServiceConfig::for_tests_with`] for the service `name`.
    pub fn for_tests_named(name: &str, database_url: &str, own: C) -> ServiceConfig<C> {
        ServiceConfig {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: None,
            metrics: None,
            http: HttpLimits::default(),
            database_url: database_url.to_owned(),
            max_connections: 10,
            namesrv_addr: String::new(),
            mq_credentials: None,
            service_key: Some(ServiceKey::for_tests(name)),
            trusted: Keyring::for_tests(),
            sessions: Sessions::Remote {
                url: "http://127.0.0.1:8084".to_owned(),
                cache_for: Duration::from_secs(1),
            },
            own,
        }
    }
}

/// The broker account of `mq_access_key` and `mq_secret_key`: none when
/// both are empty, an error when only one is set (the error does not
/// repeat the secret).
pub(super) fn mq_credentials(settings: &Settings) -> Result<Option<Credentials>, ConfigError> {
    let value = |key| settings.get(key).unwrap_or_default().trim().to_owned();
    match (value("mq_access_key"), value("mq_secret_key")) {
        (access, secret) if access.is_empty() && secret.is_empty() => Ok(None),
        (access, _) if access.is_empty() => Err(ConfigError::invalid(
            "mq_access_key",
            "",
            "must be set when mq_secret_key is",
        )),
        (_, secret) if secret.is_empty() => Err(ConfigError::invalid(
            "mq_secret_key",
            "",
            "must be set when mq_access_key is",
        )),
        (access, secret) => Ok(Some(Credentials::new(access, secret))),
    }
}

/// `metrics_addr`: empty for none, else an address to listen on.
pub(super) fn metrics_addr(settings: &Settings) -> Result<Option<SocketAddr>, ConfigError> {
    let value = settings.get("metrics_addr").unwrap_or_default().trim();
    if value.is_empty() {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| {
        ConfigError::invalid(
            "metrics_addr",
            value,
            "must be empty (no metrics) or an address such as 127.0.0.1:5557",
        )
    })
}
