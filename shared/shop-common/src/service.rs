//! The frame of the shop's plain services (goods, coupon, user, log, points):
//! their configuration, start-up (database, listener, event consumers),
//! graceful stop and binary entry point. Each of those crates describes
//! itself once as a [`Service`]; everything here is shared.
//!
//! The order, payment and gateway services have more to configure and run,
//! so they keep frames of their own.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use mq_client::{ClientConfig, PushConsumer};
use thiserror::Error;
use tokio::net::TcpListener;

use crate::config::{ConfigError, Settings, Source};
use crate::db::DbError;
use crate::events::{instance_name, subscribe, EventHandler};
use crate::{Db, Migrations};

/// One of the shop's plain services.
pub struct Service {
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
    pub migrations: Migrations,
    /// The HTTP API over an open database.
    pub router: fn(Db) -> Router,
    /// The topics it consumes, started when a name server is configured.
    pub subscriptions: fn() -> Vec<Subscription>,
}

/// A consumer group of a service, applying each message of `topic` once
/// through [`crate::events::apply_once`].
pub struct Subscription {
    pub group: &'static str,
    pub topic: &'static str,
    pub handler: Arc<dyn EventHandler>,
}

/// Every key a plain service reads; others get a warning at start-up.
pub const KEYS: &[&str] = &[
    "http_addr",
    "database_url",
    "max_connections",
    "namesrv_addr",
];

/// A plain service's configuration.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Where the HTTP API listens; port 0 picks a free port (tests).
    pub http_addr: SocketAddr,
    /// `sqlite://...` or `postgres://...`.
    pub database_url: String,
    /// Size of the database connection pool.
    pub max_connections: u32,
    /// Name servers of the broker cluster (`;`-separated) for the event
    /// consumers. Empty runs the HTTP API alone (tests of the API only).
    pub namesrv_addr: String,
}

impl ServiceConfig {
    /// The layered settings: defaults, `file`, `DATABASE_URL`, then the
    /// service's prefixed variables, each overriding the one before.
    pub fn settings(service: &Service, file: Option<&Path>) -> Result<Settings, ConfigError> {
        let http_addr = format!("127.0.0.1:{}", service.default_port);
        let database_url = format!("sqlite://data/{}.db", service.name);
        let mut settings = Settings::with_defaults(&[
            ("http_addr", &http_addr),
            ("database_url", &database_url),
            ("max_connections", "10"),
            ("namesrv_addr", "127.0.0.1:9876"),
        ]);
        if let Some(file) = file {
            settings.load_file(file)?;
        }
        if let Ok(url) = std::env::var("DATABASE_URL") {
            settings.set("database_url", url);
        }
        settings.apply_env(service.env_prefix);
        Ok(settings)
    }

    pub fn from_settings(settings: &Settings) -> Result<ServiceConfig, ConfigError> {
        let max_connections: u32 = settings.require("max_connections")?;
        if max_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "max_connections".to_owned(),
                value: "0".to_owned(),
                origin: Source::Default,
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(ServiceConfig {
            http_addr: settings.require("http_addr")?,
            database_url: settings.require("database_url")?,
            max_connections,
            namesrv_addr: settings
                .get("namesrv_addr")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        })
    }

    /// A configuration for tests: port 0 on localhost, `database_url`, no
    /// broker.
    pub fn for_tests(database_url: &str) -> ServiceConfig {
        ServiceConfig {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.to_owned(),
            max_connections: 10,
            namesrv_addr: String::new(),
        }
    }
}

/// Why a service could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("cannot start the {topic} consumer of group {group}: {source}")]
    Broker {
        group: &'static str,
        topic: &'static str,
        source: mq_client::ClientError,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl Service {
    /// Opens (and migrates) the database, binds the listener and, when a
    /// name server is configured, starts the consumers. Port 0 in
    /// `config.http_addr` picks a free port; [`Application::port`] says which.
    pub async fn start(&'static self, config: ServiceConfig) -> Result<Application, StartError> {
        self.start_with(config, |c| c).await
    }

    /// [`Service::start`] with a hook to adjust the broker client's settings
    /// (tests shorten its intervals).
    pub async fn start_with(
        &'static self,
        config: ServiceConfig,
        client: impl Fn(ClientConfig) -> ClientConfig,
    ) -> Result<Application, StartError> {
        let db = Db::connect_and_migrate(
            &config.database_url,
            config.max_connections,
            self.migrations,
        )
        .await?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.http_addr,
                source,
            })?;
        let mut consumers = Vec::new();
        if !config.namesrv_addr.is_empty() {
            for Subscription {
                group,
                topic,
                handler,
            } in (self.subscriptions)()
            {
                let settings = client(
                    ClientConfig::new(config.namesrv_addr.clone())
                        .with_instance_name(instance_name(group)),
                );
                match subscribe(db.clone(), settings, group, topic, handler).await {
                    Ok(consumer) => consumers.push(consumer),
                    Err(source) => {
                        for consumer in &consumers {
                            consumer.shutdown().await;
                        }
                        return Err(StartError::Broker {
                            group,
                            topic,
                            source,
                        });
                    }
                }
            }
        }
        Ok(Application {
            service: self,
            listener,
            db,
            consumers,
        })
    }
}

/// A service with its database open, its consumers started and its
/// listener bound.
pub struct Application {
    service: &'static Service,
    listener: TcpListener,
    db: Db,
    consumers: Vec<PushConsumer>,
}

impl Application {
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The running consumers (none without a name server).
    pub fn consumers(&self) -> &[PushConsumer] {
        &self.consumers
    }

    /// Serves until `shutdown` completes, then lets in-flight requests
    /// finish, stops the consumers and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = (self.service.router)(self.db.clone());
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        for consumer in &self.consumers {
            consumer.shutdown().await;
        }
        self.db.close().await;
        served
    }
}

/// The binary `shop-<name>`: reads `-c FILE` and the environment, sets up
/// logging and serves until Ctrl-C or SIGTERM.
pub async fn main(service: &'static Service) -> anyhow::Result<()> {
    use anyhow::Context;

    // clap keeps names as `&'static str`; this runs once per process.
    let binary: &'static str = Box::leak(format!("shop-{}", service.name).into_boxed_str());
    let args = clap::Command::new(binary)
        .version(env!("CARGO_PKG_VERSION"))
        .about(service.about)
        .arg(
            clap::Arg::new("config")
                .short('c')
                .long("config")
                .value_name("FILE")
                .value_parser(clap::value_parser!(std::path::PathBuf))
                .help(format!("A .properties file (keys: {})", KEYS.join(", "))),
        )
        .get_matches();
    let file = args.get_one::<std::path::PathBuf>("config");

    crate::telemetry::init("info,sqlx=warn");
    let settings = ServiceConfig::settings(service, file.map(|f| f.as_path()))
        .context("reading the configuration")?;
    for (key, source) in settings.unknown_keys(KEYS) {
        tracing::warn!(key, %source, "unknown configuration key, ignored");
    }
    let config = ServiceConfig::from_settings(&settings).context("reading the configuration")?;
    tracing::info!(
        http_addr = %config.http_addr,
        database_url = %crate::db::redact(&config.database_url),
        max_connections = config.max_connections,
        namesrv_addr = %config.namesrv_addr,
        "effective configuration"
    );
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
mod tests {
    use super::*;

    fn service() -> &'static Service {
        // Any real schema will do: these tests never open a database.
        static SCHEMA: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite/log");
        static SERVICE: Service = Service {
            name: "things",
            about: "A test service",
            env_prefix: "THINGS_SERVICE_TEST",
            default_port: 8099,
            migrations: Migrations {
                sqlite: &SCHEMA,
                postgres: &SCHEMA,
            },
            router: |_| Router::new(),
            subscriptions: Vec::new,
        };
        &SERVICE
    }

    #[test]
    fn defaults_follow_the_service_then_the_file_overrides() {
        let defaults =
            ServiceConfig::from_settings(&ServiceConfig::settings(service(), None).unwrap())
                .unwrap();
        assert_eq!(defaults.http_addr, "127.0.0.1:8099".parse().unwrap());
        assert_eq!(defaults.database_url, "sqlite://data/things.db");
        assert_eq!(defaults.namesrv_addr, "127.0.0.1:9876");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("things.properties");
        std::fs::write(
            &path,
            "http_addr=0.0.0.0:9000\nmax_connections=3\nnamesrv_addr=\n",
        )
        .unwrap();
        let config =
            ServiceConfig::from_settings(&ServiceConfig::settings(service(), Some(&path)).unwrap())
                .unwrap();
        assert_eq!(config.http_addr, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(config.max_connections, 3);
        assert_eq!(config.namesrv_addr, "");
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut settings = ServiceConfig::settings(service(), None).unwrap();
        settings.set("http_addr", "localhost");
        let err = ServiceConfig::from_settings(&settings)
            .unwrap_err()
            .to_string();
        assert!(err.contains("http_addr"), "{err}");
        settings.set("http_addr", "127.0.0.1:1");
        settings.set("max_connections", "0");
        let err = ServiceConfig::from_settings(&settings)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_connections"), "{err}");
    }
}
