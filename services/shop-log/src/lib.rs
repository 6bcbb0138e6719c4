//! The log service: a record of every payment (PAY_SUCCESS), every refund
//! (PAY_REFUND) and every cancelled order (ORDER_CANCEL), each written
//! once.
//!
//! Layout:
//! - [`events`]: the three consumers, each in its own group, applying a
//!   message once through `shop_common::events` (the effect and the
//!   consumed-message row commit together).
//! - [`repo`]: the `payment_log` and `order_log` tables.
//! - [`routes`]: `GET /logs/payments`, `GET /logs/orders`, `GET /health`.
//! - [`SERVICE`]: its name, port, schema, API and consumers, from which
//!   `shop_common::service` configures, starts and stops it.
//!
//! Who may do what: a customer reads their own logs, an operator
//! everyone's; PAY_SUCCESS and PAY_REFUND are logged only as the pay
//! service signed them, ORDER_CANCEL only as the order service did.

pub mod events;
pub use shop_common::extract;
pub mod openapi;
pub mod repo;
pub mod routes;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use shop_common::auth::Auth;
use shop_common::events::{ORDER_CANCEL, PAY_SUCCESS};
use shop_common::service::{Plain, Service, Subscription};
use shop_common::{Db, Migrations};

/// This service's schema, for SQLite and PostgreSQL.
pub const MIGRATIONS: Migrations = shop_common::migrations!(
    "../../migrations/sqlite/log",
    "../../migrations/postgres/log"
);

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
}

/// The HTTP API (a bearer token needed, but for `/health`):
///
/// - `GET /logs/payments?order_id=&user_id=&after_id=&limit=`
/// - `GET /logs/orders?order_id=&user_id=&after_id=&limit=`
/// - `GET /health`
pub fn router(state: AppState, auth: Auth) -> Router {
    let public = Router::new()
        .merge(shop_common::openapi::route(openapi::document()))
        .route("/logs/payments", get(routes::list_payments))
        .route("/logs/orders", get(routes::list_orders))
        .route("/health", get(routes::health));
    shop_common::http::service_router(auth.protect(public, Router::new()), state)
}

/// The topics this service consumes, each from its owner: PAY_SUCCESS and
/// PAY_REFUND as the pay service signed them, ORDER_CANCEL as the order
/// service did.
pub fn subscriptions() -> Vec<Subscription> {
    vec![
        Subscription {
            group: events::PAY_GROUP,
            topic: PAY_SUCCESS,
            publisher: "pay",
            handler: Arc::new(events::OnPaymentSucceeded),
        },
        Subscription {
            group: events::REFUND_GROUP,
            topic: events::PAY_REFUND,
            publisher: "pay",
            handler: Arc::new(events::OnPaymentRefunded),
        },
        Subscription {
            group: events::CANCEL_GROUP,
            topic: ORDER_CANCEL,
            publisher: "order",
            handler: Arc::new(events::OnOrderCancelled),
        },
    ]
}

/// The log service, as `shop_common::service` configures, starts and
/// stops it.
pub static SERVICE: Service = Service {
    name: "log",
    about: "The shop's log of payments and cancelled orders",
    env_prefix: "LOG",
    default_port: 8086,
    migrations: Some(MIGRATIONS),
    extension: Plain {
        router: |db, auth| router(AppState { db }, auth),
        subscriptions,
    },
};
