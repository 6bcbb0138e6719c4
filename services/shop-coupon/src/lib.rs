//! The coupon service: coupons per user, and using a coupon for an order.
//!
//! Layout:
//! - [`repo`]: every database statement: coupons, their use by an order
//!   and the ORDER_CANCEL compensation [`cancel_order`], idempotent per order
//!   through the `coupon_ledger` table.
//! - [`routes`]: the HTTP API over it (JSON in and out).
//! - [`extract`]: request extractors that answer bad input with the shop's
//!   JSON error instead of axum's plain text.
//! - [`error`]: [`CouponError`] and the HTTP answer of each variant.
//! - [`SERVICE`]: its name, port, schema, API and consumers, from which
//!   `shop_common::service` configures, starts and stops it.
//!
//! Data flows from a request through an extractor to a handler, which calls
//! one function of [`repo`]; that function runs one transaction and its
//! error becomes an `ApiError`. The order service uses coupons over HTTP;
//! its ORDER_CANCEL consumer (wired later, with the client crate) calls
//! [`cancel_order`] directly.
//!
//! A coupon of another user answers 403 `coupon_not_owned` (the caller is
//! not allowed to use it; it is not a state conflict of the coupon).

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

pub use error::CouponError;
pub use repo::{cancel_order, cancel_order_in, CancelOutcome};

/// This service's schema, for SQLite and PostgreSQL.
pub const MIGRATIONS: Migrations = shop_common::migrations!(
    "../../migrations/sqlite/coupon",
    "../../migrations/postgres/coupon"
);

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
}

/// The HTTP API:
///
/// - `POST /coupons`, `GET /coupons?user_id=N`, `GET /coupons/{id}`
/// - `POST /coupons/{id}/use`
/// - `GET /health`
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route(
            "/coupons",
            post(routes::create_coupon).get(routes::list_coupons),
        )
        .route("/coupons/{id}", get(routes::get_coupon))
        .route("/coupons/{id}/use", post(routes::use_coupon))
        .route("/health", get(routes::health));
    shop_common::http::service_router(api, state)
}

/// The coupon service, as `shop_common::service` configures, starts and
/// stops it.
pub static SERVICE: Service = Service {
    name: "coupon",
    about: "The shop's coupon service",
    env_prefix: "COUPON",
    default_port: 8083,
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
