//! The frame of every shop service: its configuration (the base keys and
//! its own), start-up (database, listener, what it runs), graceful stop and
//! binary entry point. Each service describes itself once as a
//! [`Service`]; what it adds to the frame (its own keys, consumers,
//! producers, background tasks) is its [`Extension`]. The plain services
//! (goods, coupon, user, log, points) need no more than a router and their
//! subscriptions: [`Plain`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use mq_client::{ClientConfig, PushConsumer, TransactionProducer};
use thiserror::Error;
use tokio::net::TcpListener;

use crate::auth::{Auth, RemoteSessions};
use crate::client::ServiceClient;
use crate::config::{ConfigError, Settings};
use crate::db::DbError;
use crate::events::{instance_name, subscribe, EventHandler};
use crate::{Db, Migrations};

mod keys;
mod limits;
mod observe;
mod serve;

pub use observe::{observed, UNMATCHED};

pub use keys::{OwnKeys, ServiceConfig, Sessions, HTTP_KEYS, KEYS};

/// The names of the shop's services, as they sign their calls and events.
pub const SERVICE_NAMES: &[&str] = &["order", "goods", "coupon", "user", "pay", "log", "points"];
pub use limits::HttpLimits;

/// One of the shop's services.
pub struct Service<X = Plain> {
    /// Short name: `goods`; the binary is `shop-goods`, the default
    /// database `sqlite://data/goods.db`.
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// Prefix of the environment variables that override keys: `GOODS`
    /// reads `GOODS_HTTP_ADDR`, `GOODS_DATABASE_URL`, ...
    pub env_prefix: &'static str,
    /// The port of the default `http_addr` (on 127.0.0.1).
    pub default_port: u16,
    /// Its schema. `None` for a service without a database (the gateway),
    /// which reads `http_addr` alone of the base keys.
    pub migrations: Option<Migrations>,
    /// What it adds to the frame.
    pub extension: X,
}

/// What a service adds to the frame.
pub trait Extension: Send + Sync + 'static {
    /// The values of its own keys.
    type Config: OwnKeys;
    /// What a started service hands to tests and callers
    /// ([`Application::state`]).
    type State: Clone + Send + Sync + 'static;

    /// What `main` warns about once the configuration is read (a
    /// development secret, a missing broker).
    fn warnings(&self, _config: &ServiceConfig<Self::Config>) -> Vec<String> {
        Vec::new()
    }

    /// Starts what the service runs, over its open database: its router,
    /// consumers, producers and background tasks.
    fn start(
        &'static self,
        frame: Frame<'_, Self::Config>,
    ) -> impl Future<Output = Result<Parts<Self::State>, StartError>> + Send;
}

/// What [`Extension::start`] is given.
pub struct Frame<'a, C> {
    /// The whole configuration.
    pub config: &'a ServiceConfig<C>,
    db: Option<Db>,
    auth: Option<Auth>,
    metrics: crate::metrics::Metrics,
    client: &'a (dyn Fn(ClientConfig) -> ClientConfig + Sync),
}

impl<C> Frame<'_, C> {
    /// The open database.
    ///
    /// # Panics
    /// In a service declared without migrations.
    pub fn db(&self) -> &Db {
        self.db
            .as_ref()
            .expect("only a service with migrations has a database")
    }

    /// Its callers' checks and its own signature.
    ///
    /// # Panics
    /// In a service declared without migrations (it has no key).
    pub fn auth(&self) -> &Auth {
        self.auth
            .as_ref()
            .expect("only a service with migrations has a service key")
    }

    /// What the service records its metrics into (its HTTP requests are
    /// recorded by the frame; its consumers' events by [`Frame::subscribe`]).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// The broker client's settings for `instance` (named after it, at the
    /// configured name servers, signing with the configured account,
    /// adjusted by the start-up hook).
    pub fn client(&self, instance: &str) -> ClientConfig {
        (self.client)(
            ClientConfig::new(self.config.namesrv_addr.clone())
                .with_instance_name(instance_name(instance))
                .with_credentials(self.config.mq_credentials.clone()),
        )
    }

    /// Starts a consumer for each of `subscriptions`, each applying its
    /// messages once; on a failure the ones already started are stopped.
    pub async fn subscribe(
        &self,
        subscriptions: Vec<Subscription>,
    ) -> Result<Vec<PushConsumer>, StartError> {
        let mut consumers = Vec::new();
        for subscription in subscriptions {
            let (group, topic) = (subscription.group, subscription.topic);
            let trusted = self.auth().trusted.clone();
            let metrics = self.metrics.clone();
            match subscribe(
                self.db().clone(),
                self.client(group),
                subscription,
                trusted,
                metrics,
            )
            .await
            {
                Ok(consumer) => consumers.push(consumer),
                Err(source) => {
                    for consumer in &consumers {
                        consumer.shutdown().await;
                    }
                    return Err(StartError::Broker {
                        what: format!("{topic} consumer of group {group}"),
                        source,
                    });
                }
            }
        }
        Ok(consumers)
    }
}

/// How long a service waits for the user service to check a token.
const SESSION_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A background task of a service: started when it serves, dropped when it
/// stops.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a started service runs, stopped in this order after serving: its
/// tasks, consumers, producers, then the database.
pub struct Parts<S> {
    pub state: S,
    /// The HTTP API.
    pub router: Router,
    pub consumers: Vec<PushConsumer>,
    pub producers: Vec<TransactionProducer>,
    pub tasks: Vec<Task>,
}

impl<S> Parts<S> {
    /// A service that serves `router` and runs nothing else (yet).
    pub fn new(state: S, router: Router) -> Parts<S> {
        Parts {
            state,
            router,
            consumers: Vec::new(),
            producers: Vec::new(),
            tasks: Vec::new(),
        }
    }
}

/// The extension of a plain service: a router over its database and the
/// topics it consumes, started when a name server is configured.
pub struct Plain {
    /// The HTTP API over an open database, its callers checked by `Auth`.
    pub router: fn(Db, Auth) -> Router,
    /// The topics it consumes.
    pub subscriptions: fn() -> Vec<Subscription>,
}

impl Extension for Plain {
    type Config = ();
    type State = Db;

    async fn start(&'static self, frame: Frame<'_, ()>) -> Result<Parts<Db>, StartError> {
        let db = frame.db().clone();
        let mut parts = Parts::new(db.clone(), (self.router)(db, frame.auth().clone()));
        if !frame.config.namesrv_addr.is_empty() {
            parts.consumers = frame.subscribe((self.subscriptions)()).await?;
        }
        Ok(parts)
    }
}

/// A consumer group of a service, applying each message of `topic` once
/// through [`crate::events::apply_once`], if `publisher` signed it.
pub struct Subscription {
    pub group: &'static str,
    pub topic: &'static str,
    /// The only service whose events of `topic` are applied (their owner).
    pub publisher: &'static str,
    pub handler: Arc<dyn EventHandler>,
}

/// Why a service could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("cannot start the {what}: {source}")]
    Broker {
        /// The producer or consumer that failed.
        what: String,
        source: mq_client::ClientError,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl<X: Extension> Service<X> {
    /// Every key the service reads; others get a warning at start-up.
    pub fn keys(&self) -> Vec<&'static str> {
        let base = if self.migrations.is_some() {
            KEYS
        } else {
            HTTP_KEYS
        };
        let own = X::Config::DEFAULTS.iter().map(|(key, _)| *key);
        base.iter().copied().chain(own).collect()
    }

    /// The layered settings: defaults, `file`, `DATABASE_URL` (a service
    /// with a database), then the service's prefixed variables, each
    /// overriding the one before.
    pub fn settings(&self, file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut settings = self.defaults();
        if let Some(file) = file {
            settings.load_file(file)?;
        }
        if self.migrations.is_some() {
            if let Ok(url) = std::env::var("DATABASE_URL") {
                settings.set("database_url", url);
            }
        }
        settings.apply_env(self.env_prefix);
        Ok(settings)
    }

    /// The defaults alone.
    pub fn defaults(&self) -> Settings {
        let http_addr = format!("127.0.0.1:{}", self.default_port);
        let database_url = format!("sqlite://data/{}.db", self.name);
        let mut defaults = vec![("http_addr", http_addr.as_str()), ("metrics_addr", "")];
        defaults.extend_from_slice(limits::DEFAULTS);
        if self.migrations.is_some() {
            defaults.extend([
                ("database_url", database_url.as_str()),
                ("max_connections", "10"),
                ("namesrv_addr", "127.0.0.1:9876"),
                ("mq_access_key", ""),
                ("mq_secret_key", ""),
                ("service_secret", ""),
                ("trusted_services", ""),
                ("sessions_url", "http://127.0.0.1:8084"),
                ("session_cache_ms", "1000"),
            ]);
        }
        defaults.extend_from_slice(X::Config::DEFAULTS);
        Settings::with_defaults(&defaults)
    }

    /// Reads the base keys and the service's own.
    pub fn config(&self, settings: &Settings) -> Result<ServiceConfig<X::Config>, ConfigError> {
        let http_addr = settings.require("http_addr")?;
        let metrics_addr = keys::metrics_addr(settings)?;
        let http = HttpLimits::from_settings(settings)?;
        let own = X::Config::from_settings(settings)?;
        if self.migrations.is_none() {
            return Ok(ServiceConfig {
                http_addr,
                metrics_addr,
                metrics: None,
                http,
                database_url: String::new(),
                max_connections: 0,
                namesrv_addr: String::new(),
                mq_credentials: None,
                service_key: None,
                trusted: crate::auth::Keyring::default(),
                sessions: Sessions::Remote {
                    url: String::new(),
                    cache_for: std::time::Duration::ZERO,
                },
                own,
            });
        }
        let max_connections: u32 = settings.require("max_connections")?;
        if max_connections == 0 {
            return Err(ConfigError::invalid(
                "max_connections",
                "0",
                "must be at least 1",
            ));
        }
        Ok(ServiceConfig {
            http_addr,
            metrics_addr,
            metrics: None,
            http,
            database_url: settings.require("database_url")?,
            max_connections,
            namesrv_addr: settings
                .get("namesrv_addr")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            mq_credentials: keys::mq_credentials(settings)?,
            service_key: Some(keys::service_key(settings, self.name)?),
            trusted: crate::auth::Keyring::parse(
                settings.get("trusted_services").unwrap_or_default(),
            )?,
            sessions: keys::sessions(settings)?,
            own,
        })
    }

    /// A configuration for tests: port 0 on localhost, `database_url`, no
    /// broker, the service's own defaults.
    pub fn config_for_tests(&self, database_url: &str) -> ServiceConfig<X::Config> {
        let own = X::Config::from_settings(&self.defaults()).expect("the defaults are valid");
        ServiceConfig::for_tests_named(self.name, database_url, own)
    }

    /// Opens (and migrates) the database, binds the listener and starts
    /// what the extension runs. Port 0 in `config.http_addr` picks a free
    /// port; [`Application::port`] says which.
    pub async fn start(
        &'static self,
        config: ServiceConfig<X::Config>,
    ) -> Result<Application<X::State>, StartError> {
        self.start_with(config, |c| c).await
    }

    /// [`Service::start`] with a hook to adjust the broker client's settings
    /// (tests shorten its intervals).
    pub async fn start_with(
        &'static self,
        config: ServiceConfig<X::Config>,
        client: impl Fn(ClientConfig) -> ClientConfig + Sync,
    ) -> Result<Application<X::State>, StartError> {
        let db = match self.migrations {
            Some(migrations) => Some(
                Db::connect_and_migrate(&config.database_url, config.max_connections, migrations)
                    .await?,
            ),
            None => None,
        };
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.http_addr,
                source,
            })?;
        let auth = config.service_key.clone().map(|key| {
            let sessions: Arc<dyn crate::auth::Authenticator> = match &config.sessions {
                Sessions::Remote { url, cache_for } => Arc::new(RemoteSessions::new(
                    ServiceClient::new("user", url, SESSION_CALL_TIMEOUT).signed_by(key.clone()),
                    *cache_for,
                )),
                Sessions::Local(sessions) => sessions.clone(),
            };
            Auth::new(key, config.trusted.clone(), sessions)
        });
        let families = config.metrics.clone().unwrap_or_default();
        let metrics = families.for_service(self.name);
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        let frame = Frame {
            config: &config,
            db: db.clone(),
            auth,
            metrics: metrics.clone(),
            client: &client,
        };
        let mut parts = self.extension.start(frame).await?;
        parts.router = observed(config.http.apply(parts.router), metrics);
        let metrics_addr = metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok());
        if let Some(listener) = metrics_listener {
            let registry = Arc::new(families.registry());
            let name = self.name;
            parts.tasks.push(Box::pin(async move {
                if let Err(error) =
                    telemetry::metrics::serve(listener, registry, std::future::pending()).await
                {
                    tracing::error!(%error, "the {name} service's metrics endpoint failed");
                }
            }));
        }
        Ok(Application {
            listener,
            metrics_addr,
            header_read_timeout: config.http.header_read_timeout,
            db,
            parts,
        })
    }
}

/// A service with its database open, what it runs started and its listener
/// bound.
pub struct Application<S = Db> {
    listener: TcpListener,
    /// Where its own metrics endpoint listens, if it has one.
    metrics_addr: Option<SocketAddr>,
    /// The one limit of [`HttpLimits`] that is the server's, not the
    /// router's (which has the others already).
    header_read_timeout: std::time::Duration,
    db: Option<Db>,
    parts: Parts<S>,
}

impl Application<Db> {
    /// The database of a plain service.
    pub fn db(&self) -> &Db {
        &self.parts.state
    }
}

impl<S> Application<S> {
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// Where the service serves `GET /metrics` (`metrics_addr`), if it
    /// does.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// What the service's handlers share.
    pub fn state(&self) -> &S {
        &self.parts.state
    }

    /// The running consumers (none without a name server).
    pub fn consumers(&self) -> &[PushConsumer] {
        &self.parts.consumers
    }

    /// Serves until `shutdown` completes, running the background tasks
    /// meanwhile; then lets in-flight requests finish, stops the tasks, the
    /// consumers and the producers, and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Parts {
            router,
            consumers,
            producers,
            tasks,
            ..
        } = self.parts;
        let tasks: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
        let served = serve::serve(self.listener, router, self.header_read_timeout, shutdown).await;
        for task in &tasks {
            task.abort();
        }
        for consumer in &consumers {
            consumer.shutdown().await;
        }
        for producer in &producers {
            producer.shutdown().await;
        }
        if let Some(db) = self.db {
            db.close().await;
        }
        served
    }
}

/// The binary `shop-<name>`: reads `-c FILE` and the environment, sets up
/// logging and serves until Ctrl-C or SIGTERM.
pub async fn main<X: Extension>(service: &'static Service<X>) -> anyhow::Result<()> {
    use anyhow::Context;

    // clap keeps names as `&'static str`; this runs once per process.
    let binary: &'static str = Box::leak(format!("shop-{}", service.name).into_boxed_str());
    let keys = service.keys();
    let args = clap::Command::new(binary)
        .version(env!("CARGO_PKG_VERSION"))
        .about(service.about)
        .arg(
            clap::Arg::new("config")
                .short('c')
                .long("config")
                .value_name("FILE")
                .value_parser(clap::value_parser!(std::path::PathBuf))
                .help(format!("A .properties file (keys: {})", keys.join(", "))),
        )
        .get_matches();
    let file = args.get_one::<std::path::PathBuf>("config");

    crate::telemetry::init("info,sqlx=warn");
    let settings = service
        .settings(file.map(|f| f.as_path()))
        .context("reading the configuration")?;
    for (key, source) in settings.unknown_keys(&keys) {
        tracing::warn!(key, %source, "unknown configuration key, ignored");
    }
    let config = service
        .config(&settings)
        .context("reading the configuration")?;
    // Secrets are masked by their own `Debug`.
    if service.migrations.is_some() {
        tracing::info!(
            http_addr = %config.http_addr,
            metrics_addr = ?config.metrics_addr,
            http = ?config.http,
            database_url = %crate::db::redact(&config.database_url),
            max_connections = config.max_connections,
            namesrv_addr = %config.namesrv_addr,
            mq_credentials = ?config.mq_credentials,
            own = ?config.own,
            "effective configuration"
        );
    } else {
        tracing::info!(
            http_addr = %config.http_addr,
            metrics_addr = ?config.metrics_addr,
            http = ?config.http,
            own = ?config.own,
            "effective configuration"
        );
    }
    for warning in service.extension.warnings(&config) {
        tracing::warn!("{warning}");
    }
    let name = service.name;
    let app = service
        .start(config)
        .await
        .with_context(|| format!("starting the {name} service"))?;
    tracing::info!(port = app.port(), "{name} service listening");
    app.run_until_stopped(crate::signal::shutdown())
        .await
        .context("serving HTTP")?;
    tracing::info!("{name} service stopped");
    Ok(())
}

#[cfg(test)]
mod tests;
