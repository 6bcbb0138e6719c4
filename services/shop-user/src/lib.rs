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
//! - [`SERVICE`]: its name, port, schema, API and consumers, from which
//!   `shop_common::service` configures, starts and stops it.
//!
//! Data flows from a request through an extractor to a handler, which calls
//! one function of [`balance`]; that function runs one transaction and its
//! error becomes an `ApiError`. The order service reserves balance over
//! HTTP; its ORDER_CANCEL consumer (wired later, with the client crate)
//! calls [`cancel_order`] directly. Points are not here: they belong to the
//! points service.

pub mod balance;
pub mod error;
pub mod events;
pub use shop_common::extract;
pub mod routes;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use shop_common::events::ORDER_CANCEL;
use shop_common::service::{Service, Subscription};
use shop_common::{Db, Migrations};

pub use balance::{cancel_order, cancel_order_in, CancelOutcome};
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
        .fallback(shop_common::http::not_found)
        .method_not_allowed_fallback(shop_common::http::method_not_allowed)
        .with_state(state)
}

/// The user service, as `shop_common::service` configures, starts and
/// stops it.
pub static SERVICE: Service = Service {
    name: "user",
    about: "The shop's user and balance service",
    env_prefix: "USER",
    default_port: 8084,
    migrations: MIGRATIONS,
    router: |db| router(AppState { db }),
    subscriptions: || {
        vec![Subscription {
            group: events::CANCEL_GROUP,
            topic: ORDER_CANCEL,
            handler: Arc::new(events::OnOrderCancelled),
        }]
    },
};
