//! The log service: a record of every payment (PAY_SUCCESS) and every
//! cancelled order (ORDER_CANCEL), each written once.
//!
//! Layout:
//! - [`events`]: the two consumers, each in its own group, applying a
//!   message once through `shop_common::events` (the effect and the
//!   consumed-message row commit together).
//! - [`store`]: the `payment_log` and `order_log` tables.
//! - [`routes`]: `GET /logs/payments`, `GET /logs/orders`, `GET /health`.
//! - [`SERVICE`]: its name, port, schema, API and consumers, from which
//!   `shop_common::service` configures, starts and stops it.

pub mod events;
pub use shop_common::extract;
pub mod routes;
pub mod store;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use shop_common::events::{ORDER_CANCEL, PAY_SUCCESS};
use shop_common::service::{Service, Subscription};
use shop_common::{Db, Migrations};

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
        .fallback(shop_common::http::not_found)
        .method_not_allowed_fallback(shop_common::http::method_not_allowed)
        .with_state(state)
}

/// The log service, as `shop_common::service` configures, starts and
/// stops it.
pub static SERVICE: Service = Service {
    name: "log",
    about: "The shop's log of payments and cancelled orders",
    env_prefix: "LOG",
    default_port: 8086,
    migrations: MIGRATIONS,
    router: |db| router(AppState { db }),
    subscriptions: || {
        vec![
            Subscription {
                group: events::PAY_GROUP,
                topic: PAY_SUCCESS,
                handler: Arc::new(events::OnPaymentSucceeded),
            },
            Subscription {
                group: events::CANCEL_GROUP,
                topic: ORDER_CANCEL,
                handler: Arc::new(events::OnOrderCancelled),
            },
        ]
    },
};
