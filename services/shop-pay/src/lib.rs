//! The pay service: payments for confirmed orders and the gateway's
//! callback, which publishes PAY_SUCCESS as a transactional message.
//!
//! Layout:
//! - [`payment`]: creating a payment and handling the gateway's
//!   notification (checks, then the half message whose local transaction
//!   marks the payment PAID).
//! - [`checker`]: the broker's check-back for those half messages.
//! - [`signature`]: the notification's canonical string and HMAC-SHA256
//!   signature, shared with the gateway (`shop-gateway`).
//! - [`remote`]: the order service over HTTP.
//! - [`repo`]: the `payments` table.
//! - [`routes`], [`error`], [`config`].
//!
//! A request goes through an extractor (bad input answers in the shop's
//! error shape) to a handler, which calls [`payment`]; its [`PayError`]
//! becomes an `ApiError`. PAY_SUCCESS fans out to the order, log and points
//! services, each applying it once keyed by the payment id.

pub mod checker;
pub mod config;
pub mod error;
pub use shop_common::extract;
pub mod payment;
pub mod remote;
pub mod repo;
pub mod routes;
pub mod signature;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use mq_client::{ClientConfig, ProducerConfig, TransactionProducer};
use shop_common::db::DbError;
use shop_common::{Db, Migrations};
use thiserror::Error;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::PayError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite/pay");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/postgres/pay");

/// This service's schema, for SQLite and PostgreSQL.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE_MIGRATIONS,
    postgres: &POSTGRES_MIGRATIONS,
};

/// Producer group of the PAY_SUCCESS transactional messages; the broker
/// checks back with any live member.
pub const PRODUCER_GROUP: &str = "pay-service-pay-success";

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub orders: remote::OrderClient,
    /// `None` when no name server is configured: callbacks then mark
    /// payments PAID without publishing (tests of the API only).
    pub producer: Option<TransactionProducer>,
}

impl AppState {
    /// State without a broker, over an open database.
    pub fn without_broker(db: Db, config: Config) -> AppState {
        AppState {
            db,
            orders: remote::OrderClient::new(&config.order_url, config.call_timeout),
            config: Arc::new(config),
            producer: None,
        }
    }
}

/// The HTTP API:
///
/// - `POST /payments`, `GET /payments/{id}`
/// - `POST /payments/callback` (the gateway's notification)
/// - `GET /health`
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/payments", post(routes::create_payment))
        .route("/payments/callback", post(routes::callback))
        .route("/payments/{id}", get(routes::get_payment))
        .route("/health", get(routes::health))
        .fallback(shop_common::http::not_found)
        .method_not_allowed_fallback(shop_common::http::method_not_allowed)
        .with_state(state)
}

/// Why the service could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("cannot start the PAY_SUCCESS producer: {0}")]
    Broker(#[from] mq_client::ClientError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The service with its database open, its producer started and its
/// listener bound.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Opens (and migrates) the database, binds the listener and, when a
    /// name server is configured, starts the transactional producer whose
    /// check-backs [`checker::PayChecker`] answers. Port 0 in
    /// `config.http_addr` picks a free port; [`Application::port`] says which.
    pub async fn build(config: Config) -> Result<Application, StartError> {
        Self::build_with(config, |c| c).await
    }

    /// [`Application::build`] with a hook to adjust the broker client's
    /// settings (tests shorten its intervals).
    pub async fn build_with(
        config: Config,
        client: impl FnOnce(ClientConfig) -> ClientConfig,
    ) -> Result<Application, StartError> {
        let db = Db::connect_and_migrate(&config.database_url, config.max_connections, MIGRATIONS)
            .await?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.http_addr,
                source,
            })?;
        let producer = if config.namesrv_addr.is_empty() {
            None
        } else {
            let client = client(
                ClientConfig::new(config.namesrv_addr.clone())
                    .with_instance_name(shop_common::events::instance_name(PRODUCER_GROUP)),
            );
            Some(
                TransactionProducer::start(
                    ProducerConfig::new(PRODUCER_GROUP),
                    client,
                    Arc::new(checker::PayChecker { db: db.clone() }),
                )
                .await?,
            )
        };
        let mut state = AppState::without_broker(db, config);
        state.producer = producer;
        Ok(Application { listener, state })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets in-flight requests
    /// finish, stops the producer and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let served = axum::serve(self.listener, router(self.state.clone()))
            .with_graceful_shutdown(shutdown)
            .await;
        if let Some(producer) = &self.state.producer {
            producer.shutdown().await;
        }
        self.state.db.close().await;
        served
    }
}
