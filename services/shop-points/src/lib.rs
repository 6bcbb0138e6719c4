//! The points service: every payment (PAY_SUCCESS) credits its user one
//! point per whole unit paid, once.
//!
//! Layout:
//! - [`events`]: the PAY_SUCCESS consumer, applying a message once through
//!   `shop_common::events` (the credit and the consumed-message row commit
//!   together).
//! - [`repo`]: the arithmetic, the `points_ledger` (one credit per
//!   payment and per order) and the `user_points` balances.
//! - [`routes`]: `GET /points/{user_id}`, `GET /points/{user_id}/credits`,
//!   `GET /health`.
//! - [`SERVICE`]: its name, port, schema, API and consumers, from which
//!   `shop_common::service` configures, starts and stops it.
//!
//! Who may do what: a customer reads their own points, an operator
//! everyone's; a payment credits points only as the pay service signed its
//! PAY_SUCCESS.

pub mod events;
pub use shop_common::extract;
pub mod openapi;
pub mod repo;
pub mod routes;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use shop_common::auth::Auth;
use shop_common::events::PAY_SUCCESS;
use shop_common::service::{Plain, Service, Subscription};
use shop_common::{Db, Migrations};

/// This service's schema, for SQLite and PostgreSQL.
pub const MIGRATIONS: Migrations = shop_common::migrations!(
    "../../migrations/sqlite/points",
    "../../migrations/postgres/points"
);

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
}

/// The HTTP API (a bearer token needed, but for `/health`):
///
/// - `GET /points/{user_id}` → `{user_id, points}`
/// - `GET /points/{user_id}/credits?limit=`
/// - `GET /operator/credits?order_id=&after=&limit=` (operators)
/// - `GET /health`
pub fn router(state: AppState, auth: Auth) -> Router {
    let public = Router::new()
        .merge(shop_common::openapi::route(openapi::document()))
        .route("/points/{user_id}", get(routes::get_points))
        .route("/points/{user_id}/credits", get(routes::list_credits))
        .route("/operator/credits", get(routes::operator_credits))
        .route("/health", get(routes::health));
    shop_common::http::service_router(auth.protect(public, Router::new()), state)
}

/// The topics this service consumes: PAY_SUCCESS, as the pay service
/// signed it.
pub fn subscriptions() -> Vec<Subscription> {
    vec![Subscription {
        group: events::PAY_GROUP,
        topic: PAY_SUCCESS,
        publisher: "pay",
        handler: Arc::new(events::OnPaymentSucceeded),
    }]
}

/// The points service, as `shop_common::service` configures, starts and
/// stops it.
pub static SERVICE: Service = Service {
    name: "points",
    about: "The shop's points service",
    env_prefix: "POINTS",
    default_port: 8087,
    migrations: Some(MIGRATIONS),
    extension: Plain {
        router: |db, auth| router(AppState { db }, auth),
        subscriptions,
    },
};
