//! The user service: users and their balance, and balance reservations
//! for orders.
//!
//! Layout:
//! - [`repo`]: every database statement: users, balance reservations and
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
//! one function of [`repo`]; that function runs one transaction and its
//! error becomes an `ApiError`. The order service reserves balance over
//! HTTP; its ORDER_CANCEL consumer (wired later, with the client crate)
//! calls [`cancel_order`] directly. Points are not here: they belong to the
//! points service.

pub mod error;
pub mod events;
pub mod repo;
pub use shop_common::extract;
pub mod routes;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use shop_common::events::ORDER_CANCEL;
use shop_common::service::{Plain, Service, Subscription};
use shop_common::{Db, Migrations};

pub use error::UserError;
pub use repo::{cancel_order, cancel_order_in, CancelOutcome};

/// This service's schema, for SQLite and PostgreSQL.
pub const MIGRATIONS: Migrations = shop_common::migrations!(
    "../../migrations/sqlite/user",
    "../../migrations/postgres/user"
);

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
    let api = Router::new()
        .route("/users", post(routes::create_user))
        .route("/users/{id}", get(routes::get_user))
        .route("/users/{id}/balance/reservations", post(routes::reserve))
        .route(
            "/users/{id}/balance/reservations/{order_id}",
            get(routes::order_ledger),
        )
        .route("/health", get(routes::health));
    shop_common::http::service_router(api, state)
}

/// The user service, as `shop_common::service` configures, starts and
/// stops it.
pub static SERVICE: Service = Service {
    name: "user",
    about: "The shop's user and balance service",
    env_prefix: "USER",
    default_port: 8084,
    migrations: Some(MIGRATIONS),
    extension: Plain {
        router: |db| router(AppState { db }),
        subscriptions: || {
            vec![Subscription {
                group: events::CANCEL_GROUP,
                topic: ORDER_CANCEL,
                handler: Arc::new(events::OnOrderCancelled),
            }]
        },
    },
};
