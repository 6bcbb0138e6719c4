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
//! - [`routes`], [`error`], [`config`] (its own keys).
//! - [`SERVICE`]: the frame of `shop_common::service` with the
//!   [`OrderExtension`]: producer, consumers and sweeper.
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
pub mod openapi;
pub mod remote;
pub mod repo;
pub mod routes;
pub mod saga;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use mq_client::{ProducerConfig, TransactionProducer};
use shop_common::auth::Auth;
use shop_common::service::{Extension, Frame, Parts, Service, StartError};
use shop_common::{Db, Migrations};

pub use config::Config;
pub use error::OrderError;

/// This service's schema, for SQLite and PostgreSQL.
pub const MIGRATIONS: Migrations = shop_common::migrations!(
    "../../migrations/sqlite/order",
    "../../migrations/postgres/order"
);

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
    /// Checks callers; its key signs calls and ORDER_CANCEL.
    pub auth: Auth,
    /// Where the sagas' outcomes are counted.
    pub metrics: shop_common::metrics::Metrics,
}

/// The HTTP API. Customers' routes (bearer token): `POST /orders`,
/// `GET /orders/{id}`, `GET /orders?user_id=`; operators' (bearer):
/// `GET /operator/orders?status=&user_id=&from=&to=&before=&limit=`,
/// `GET /operator/orders/{id}`; the pay service's (signed):
/// `GET /internal/orders/{id}`, `POST /internal/orders/{id}/payments`;
/// `GET /health` (no token).
pub fn router(state: AppState) -> Router {
    let public = Router::new()
        .merge(shop_common::openapi::route(openapi::document()))
        .route(
            "/orders",
            post(routes::place_order).get(routes::list_orders),
        )
        .route("/orders/{id}", get(routes::get_order))
        .route("/operator/orders", get(routes::operator_orders))
        .route("/operator/orders/{id}", get(routes::operator_order))
        .route("/health", get(routes::health));
    let internal = Router::new()
        .route("/internal/orders/{id}", get(routes::internal_order))
        .route(
            "/internal/orders/{id}/payments",
            post(routes::settle_payment),
        );
    let routes = state.auth.protect(public, internal);
    shop_common::http::service_router(routes, state)
}

/// What the order service adds to the frame: its keys ([`config`]), the
/// saga's transactional producer (whose check-backs [`checker::OrderChecker`]
/// answers), the ORDER_CANCEL and PAY_SUCCESS consumers and the sweeper of
/// abandoned orders. It always needs the broker.
pub struct OrderExtension;

impl Extension for OrderExtension {
    type Config = Config;
    type State = AppState;

    async fn start(&'static self, frame: Frame<'_, Config>) -> Result<Parts<AppState>, StartError> {
        let own = &frame.config.own;
        let checker = Arc::new(checker::OrderChecker {
            state: std::sync::OnceLock::new(),
        });
        let producer = TransactionProducer::start(
            ProducerConfig::new(PRODUCER_GROUP),
            frame.client("order-service"),
            checker.clone(),
        )
        .await
        .map_err(|source| StartError::Broker {
            what: format!("saga producer of group {PRODUCER_GROUP}"),
            source,
        })?;
        let auth = frame.auth().clone();
        let state = AppState {
            db: frame.db().clone(),
            config: Arc::new(own.clone()),
            remote: remote::Remote::new(
                &own.goods_url,
                &own.coupon_url,
                &own.user_url,
                own.call_timeout,
                &auth.key,
            ),
            producer: producer.clone(),
            auth,
            metrics: frame.metrics().clone(),
        };
        let _ = checker.state.set(state.clone());
        let consumers = match frame.subscribe(events::subscriptions()).await {
            Ok(consumers) => consumers,
            Err(error) => {
                producer.shutdown().await;
                return Err(error);
            }
        };
        let mut parts = Parts::new(state.clone(), router(state.clone()));
        parts.consumers = consumers;
        parts.producers.push(producer);
        parts.tasks.push(Box::pin(sweeper(state)));
        Ok(parts)
    }
}

/// Sweeps abandoned orders every `sweep_interval`, for as long as the
/// service serves.
async fn sweeper(state: AppState) {
    let mut ticker = tokio::time::interval(state.config.sweep_interval);
    loop {
        ticker.tick().await;
        if let Err(error) = saga::sweep(&state, shop_common::now_ms()).await {
            tracing::warn!(%error, "sweeping abandoned orders failed");
        }
    }
}

/// The order service, as `shop_common::service` configures, starts and
/// stops it.
pub static SERVICE: Service<OrderExtension> = Service {
    name: "order",
    about: "The shop's order service",
    env_prefix: "ORDER",
    default_port: 8081,
    migrations: Some(MIGRATIONS),
    extension: OrderExtension,
};

/// The order service started by [`SERVICE`].
pub type Application = shop_common::service::Application<AppState>;
