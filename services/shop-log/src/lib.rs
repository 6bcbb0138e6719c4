//! The log service: a record of every payment (PAY_SUCCESS) and every
//! cancelled order (ORDER_CANCEL), each written once.
//!
//! Layout:
//! - [`events`]: the two consumers, each in its own group, applying a
//!   message once through `shop_common::events` (the effect and the
//!   consumed-message row commit together).
//! - [`store`]: the `payment_log` and `order_log` tables.
//! - [`routes`]: `GET /logs/payments`, `GET /logs/orders`, `GET /health`.
//! - [`config`]: [`Config`], layered through `shop_common::config`.

pub mod config;
pub mod events;
pub use shop_common::extract;
pub mod routes;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use mq_client::{ClientConfig, PushConsumer};
use shop_common::db::DbError;
use shop_common::events::{subscribe, ORDER_CANCEL, PAY_SUCCESS};
use shop_common::{Db, Migrations};
use thiserror::Error;
use tokio::net::TcpListener;

pub use config::Config;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite/log");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/postgres/log");

/// This service's schema, for SQLite and PostgreSQL.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE_MIGRATIONS,
    postgres: &POSTGRES_MIGRATIONS,
};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
}

/// The HTTP API:
///
/// - `GET /logs/payments?order_id=&user_id=&after_id=&limit=`
/// - `GET /logs/orders?order_id=&user_id=&after_id=&limit=`
/// - `GET /health`
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/logs/payments", get(routes::list_payments))
        .route("/logs/orders", get(routes::list_orders))
        .route("/health", get(routes::health))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
}

/// Why the service could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("cannot start the consumers: {0}")]
    Broker(#[from] mq_client::ClientError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The service with its database open, its consumers started and its
/// listener bound.
pub struct Application {
    listener: TcpListener,
    db: Db,
    consumers: Vec<PushConsumer>,
}

impl Application {
    /// Opens (and migrates) the database, binds the listener and, when a
    /// name server is configured, starts the PAY_SUCCESS and ORDER_CANCEL
    /// consumers. Port 0 in `config.http_addr` picks a free port.
    pub async fn build(config: Config) -> Result<Application, StartError> {
        Self::build_with(config, |c| c).await
    }

    /// [`Application::build`] with a hook to adjust the broker client's
    /// settings (tests shorten its intervals).
    pub async fn build_with(
        config: Config,
        client: impl Fn(ClientConfig) -> ClientConfig,
    ) -> Result<Application, StartError> {
        let db = Db::connect_and_migrate(&config.database_url, config.max_connections, MIGRATIONS)
            .await?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.http_addr,
                source,
            })?;
        let mut consumers = Vec::new();
        if !config.namesrv_addr.is_empty() {
            let subscriptions: [(&str, &str, Arc<dyn shop_common::events::EventHandler>); 2] = [
                (
                    events::PAY_GROUP,
                    PAY_SUCCESS,
                    Arc::new(events::OnPaymentSucceeded),
                ),
                (
                    events::CANCEL_GROUP,
                    ORDER_CANCEL,
                    Arc::new(events::OnOrderCancelled),
                ),
            ];
            for (group, topic, handler) in subscriptions {
                let settings = client(
                    ClientConfig::new(config.namesrv_addr.clone())
                        .with_instance_name(shop_common::events::instance_name(group)),
                );
                let started = subscribe(db.clone(), settings, group, topic, handler).await;
                match started {
                    Ok(consumer) => consumers.push(consumer),
                    Err(error) => {
                        for consumer in &consumers {
                            consumer.shutdown().await;
                        }
                        return Err(error.into());
                    }
                }
            }
        }
        Ok(Application {
            listener,
            db,
            consumers,
        })
    }

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
        let app = router(AppState {
            db: self.db.clone(),
        });
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
