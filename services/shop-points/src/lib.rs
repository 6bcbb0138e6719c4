//! The points service: every payment (PAY_SUCCESS) credits its user one
//! point per whole unit paid, once.
//!
//! Layout:
//! - [`events`]: the PAY_SUCCESS consumer, applying a message once through
//!   `shop_common::events` (the credit and the consumed-message row commit
//!   together).
//! - [`points`]: the arithmetic, the `points_ledger` (one credit per
//!   payment and per order) and the `user_points` balances.
//! - [`routes`]: `GET /points/{user_id}`, `GET /points/{user_id}/credits`,
//!   `GET /health`.
//! - [`SERVICE`]: its name, port, schema, API and consumers, from which
//!   `shop_common::service` configures, starts and stops it.

pub mod events;
pub use shop_common::extract;
pub mod points;
pub mod routes;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use shop_common::events::PAY_SUCCESS;
use shop_common::service::{Service, Subscription};
use shop_common::{Db, Migrations};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/sqlite/points");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/postgres/points");

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
/// - `GET /points/{user_id}` → `{user_id, points}`
/// - `GET /points/{user_id}/credits?limit=`
/// - `GET /health`
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/points/{user_id}", get(routes::get_points))
        .route("/points/{user_id}/credits", get(routes::list_credits))
        .route("/health", get(routes::health))
        .fallback(shop_common::http::not_found)
        .method_not_allowed_fallback(shop_common::http::method_not_allowed)
        .with_state(state)
}

/// The points service, as `shop_common::service` configures, starts and
/// stops it.
pub static SERVICE: Service = Service {
    name: "points",
    about: "The shop's points service",
    env_prefix: "POINTS",
    default_port: 8087,
    migrations: MIGRATIONS,
    router: |db| router(AppState { db }),
    subscriptions: || {
        vec![Subscription {
            group: events::PAY_GROUP,
            topic: PAY_SUCCESS,
            handler: Arc::new(events::OnPaymentSucceeded),
        }]
    },
};
