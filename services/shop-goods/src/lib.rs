//! The goods service: the catalogue, the stock, and stock reservations for
//! orders.
//!
//! Layout:
//! - [`repo`]: every database statement: goods, reservations and the
//!   ORDER_CANCEL compensation [`cancel_order`], idempotent per order through
//!   the `stock_ledger` table.
//! - [`routes`]: the HTTP API over it (JSON in and out).
//! - [`extract`]: request extractors that answer bad input with the shop's
//!   JSON error instead of axum's plain text.
//! - [`error`]: [`GoodsError`] and the HTTP answer of each variant.
//! - [`SERVICE`]: its name, port, schema, API and consumers, from which
//!   `shop_common::service` configures, starts and stops it.
//!
//! Data flows from a request through an extractor to a handler, which calls
//! one function of [`repo`]; that function runs one transaction and its
//! error becomes an `ApiError`. The order service reserves stock over the
//! internal API; the ORDER_CANCEL consumer ([`events`]) calls
//! [`cancel_order_in`] for events the order service signed.
//!
//! Who may do what: anyone reads the catalogue; only an operator creates
//! or changes goods; only the order service (a signed call) reserves stock
//! or reads a reservation, under `/internal/`.

pub mod error;
pub mod events;
pub use shop_common::extract;
pub mod openapi;
pub mod repo;
pub mod routes;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use shop_common::auth::Auth;
use shop_common::events::ORDER_CANCEL;
use shop_common::service::{Plain, Service, Subscription};
use shop_common::{Db, Migrations};

pub use error::GoodsError;
pub use repo::{cancel_order, cancel_order_in, CancelOutcome, Restock};

/// This service's schema, for SQLite and PostgreSQL.
pub const MIGRATIONS: Migrations = shop_common::migrations!(
    "../../migrations/sqlite/goods",
    "../../migrations/postgres/goods"
);

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
}

/// The HTTP API:
///
/// - `GET /goods`, `GET /goods/{id}` (anyone); `POST /goods`,
///   `PATCH /goods/{id}` (operators)
/// - `GET /operator/stock-ledger?order_id=&after=&limit=` (operators)
/// - `POST /internal/goods/{id}/reservations`,
///   `GET /internal/goods/{id}/reservations/{order_id}` (the order service)
/// - `GET /health`
pub fn router(state: AppState, auth: Auth) -> Router {
    let public = Router::new()
        .merge(shop_common::openapi::route(openapi::document()))
        .route("/goods", post(routes::create_goods).get(routes::list_goods))
        .route(
            "/goods/{id}",
            get(routes::get_goods).patch(routes::change_goods),
        )
        .route("/operator/stock-ledger", get(routes::operator_ledger))
        .route("/health", get(routes::health));
    let internal = Router::new()
        .route("/internal/goods/{id}/reservations", post(routes::reserve))
        .route(
            "/internal/goods/{id}/reservations/{order_id}",
            get(routes::order_ledger),
        );
    shop_common::http::service_router(auth.protect(public, internal), state)
}

/// The topics this service consumes: ORDER_CANCEL, as the order service
/// signed it.
pub fn subscriptions() -> Vec<Subscription> {
    vec![Subscription {
        group: events::CANCEL_GROUP,
        topic: ORDER_CANCEL,
        publisher: "order",
        handler: Arc::new(events::OnOrderCancelled),
    }]
}

/// The goods service, as `shop_common::service` configures, starts and
/// stops it.
pub static SERVICE: Service = Service {
    name: "goods",
    about: "The shop's goods and stock service",
    env_prefix: "GOODS",
    default_port: 8082,
    migrations: Some(MIGRATIONS),
    extension: Plain {
        router: |db, auth| router(AppState { db }, auth),
        subscriptions,
    },
};
