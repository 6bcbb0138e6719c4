//! The order service: places orders through a saga and follows them to
//! payment.
//!
//! Layout:
//! - [`saga`]: `POST /orders` step by step, and the sweeper of abandoned
//!   orders.
//! - [`checker`]: the broker's check-back for the saga's half messages.
//! - [`events`]: ORDER_CANCEL and PAY_SUCCESS consumers.
//! - [`remote`]: the goods, coupon and user services over HTTP.
//! - [`repo`]: the `orders` table; [`model`]: orders and their amounts.
//! - [`routes`], [`error`], [`config`].
//!
//! The saga's compensation is an ORDER_CANCEL half message armed before any
//! reservation and resolved by commit (compensate) or rollback (nothing to
//! do), so that a crash at any point is settled by the broker's check-back
//! reading the order's status.

pub mod checker;
pub mod config;
pub mod error;
pub mod events;
pub mod model;
pub mod remote;
pub mod repo;
pub mod routes;
pub mod saga;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use mq_client::{ClientConfig, ProducerConfig, PushConsumer, TransactionProducer};
use shop_common::db::DbError;
use shop_common::events::{subscribe, ORDER_CANCEL, PAY_SUCCESS};
use shop_common::{Db, Migrations};
use thiserror::Error;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::OrderError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite/order");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/postgres/order");

/// This service's schema, for SQLite and PostgreSQL.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE_MIGRATIONS,
    postgres: &POSTGRES_MIGRATIONS,
};

/// Producer group of the saga's transactional messages; the broker checks
/// back with any live member.
pub const PRODUCER_GROUP: &str = "order-service-saga";

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub remote: remote::Remote,
    pub producer: TransactionProducer,
}

/// The HTTP API: `POST /orders`, `GET /orders/{id}`, `GET /orders?user_id=`,
/// `GET /health`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/orders",
            post(routes::place_order).get(routes::list_orders),
        )
        .route("/orders/{id}", get(routes::get_order))
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
    #[error("cannot reach the message broker: {0}")]
    Broker(#[from] mq_client::ClientError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The service with its database open, its producer and consumers started
/// and its listener bound.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    consumers: Vec<PushConsumer>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Application, StartError> {
        let db = Db::connect_and_migrate(&config.database_url, config.max_connections, MIGRATIONS)
            .await?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.http_addr,
                source,
            })?;
        let client = ClientConfig::new(config.namesrv_addr.clone())
            .with_instance_name(shop_common::events::instance_name("order-service"));
        let checker = Arc::new(checker::OrderChecker {
            state: std::sync::OnceLock::new(),
        });
        let producer = TransactionProducer::start(
            ProducerConfig::new(PRODUCER_GROUP),
            client.clone(),
            checker.clone(),
        )
        .await?;
        let remote = remote::Remote::new(
            &config.goods_url,
            &config.coupon_url,
            &config.user_url,
            config.call_timeout,
        );
        let state = AppState {
            db: db.clone(),
            config: Arc::new(config),
            remote,
            producer,
        };
        let _ = checker.state.set(state.clone());
        let consumers = vec![
            subscribe(
                db.clone(),
                client.clone(),
                events::CANCEL_GROUP,
                ORDER_CANCEL,
                Arc::new(events::OnOrderCancelled),
            )
            .await?,
            subscribe(
                db,
                client,
                events::PAY_GROUP,
                PAY_SUCCESS,
                Arc::new(events::OnPaymentSucceeded),
            )
            .await?,
        ];
        Ok(Application {
            listener,
            state,
            consumers,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes (sweeping abandoned orders
    /// meanwhile), then stops the consumers and the producer and closes the
    /// database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let sweeper = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(state.config.sweep_interval);
            loop {
                ticker.tick().await;
                if let Err(error) = saga::sweep(&state, shop_common::now_ms()).await {
                    tracing::warn!(%error, "sweeping abandoned orders failed");
                }
            }
        });
        let served = axum::serve(self.listener, router(self.state.clone()))
            .with_graceful_shutdown(shutdown)
            .await;
        sweeper.abort();
        for consumer in &self.consumers {
            consumer.shutdown().await;
        }
        self.state.producer.shutdown().await;
        self.state.db.close().await;
        served
    }
}
