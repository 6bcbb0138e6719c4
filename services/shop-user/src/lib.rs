//! The user service: users and their balance, and balance reservations
//! for orders.
//!
//! Layout:
//! - [`balance`]: every database statement: users, balance reservations and
//!   the ORDER_CANCEL compensation [`cancel_order`], idempotent per order
//!   through the `money_ledger` table.
//! - [`routes`]: the HTTP API over it (JSON in and out).
//! - [`extract`]: request extractors that answer bad input with the shop's
//!   JSON error instead of axum's plain text.
//! - [`error`]: [`UserError`] and the HTTP answer of each variant.
//! - [`config`]: [`Config`], layered through `shop_common::config`.
//!
//! Data flows from a request through an extractor to a handler, which calls
//! one function of [`balance`]; that function runs one transaction and its
//! error becomes an `ApiError`. The order service reserves balance over
//! HTTP; its ORDER_CANCEL consumer (wired later, with the client crate)
//! calls [`cancel_order`] directly. Points are not here: they belong to the
//! points service.

pub mod balance;
pub mod config;
pub mod error;
pub mod events;
pub use shop_common::extract;
pub mod routes;

use std::future::Future;
use std::net::SocketAddr;

use axum::routing::{get, post};
use axum::Router;
use shop_common::db::DbError;
use shop_common::{Db, Migrations};
use thiserror::Error;
use tokio::net::TcpListener;

pub use balance::{cancel_order, cancel_order_in, CancelOutcome};
pub use config::Config;
pub use error::UserError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite/user");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/postgres/user");

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
/// - `POST /users`, `GET /users/{id}`
/// - `POST /users/{id}/balance/reservations`,
///   `GET /users/{id}/balance/reservations/{order_id}`
/// - `GET /health`
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/users", post(routes::create_user))
        .route("/users/{id}", get(routes::get_user))
        .route("/users/{id}/balance/reservations", post(routes::reserve))
        .route(
            "/users/{id}/balance/reservations/{order_id}",
            get(routes::order_ledger),
        )
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
    #[error("cannot start the ORDER_CANCEL consumer: {0}")]
    Broker(#[from] mq_client::ClientError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The service with its database open and its listener bound.
pub struct Application {
    listener: TcpListener,
    db: Db,
    consumers: Vec<mq_client::PushConsumer>,
}

impl Application {
    /// Opens (and migrates) the database and binds the listener. Port 0 in
    /// `config.http_addr` picks a free port; [`Application::port`] says which.
    pub async fn build(config: Config) -> Result<Application, StartError> {
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
            let client = mq_client::ClientConfig::new(config.namesrv_addr.clone())
                .with_instance_name(shop_common::events::instance_name(events::CANCEL_GROUP));
            consumers.push(
                shop_common::events::subscribe(
                    db.clone(),
                    client,
                    events::CANCEL_GROUP,
                    shop_common::events::ORDER_CANCEL,
                    std::sync::Arc::new(events::OnOrderCancelled),
                )
                .await?,
            );
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

    /// Serves until `shutdown` completes, then lets in-flight requests
    /// finish and closes the database.
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
