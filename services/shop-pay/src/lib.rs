//! The pay service: payments for confirmed orders and the gateway's
//! callback, which publishes PAY_SUCCESS as a transactional message.
//!
//! Layout:
//! - [`payment`]: creating a payment and handling the gateway's
//!   notification (checks, then the half message whose local transaction
//!   marks the payment PAID).
//! - [`checker`]: the broker's check-back for those half messages.
//! - [`signature`]: the notification's canonical string and HMAC-SHA256
//!   signature, defined with the notification in `shop_common::api::pay`,
//!   which the gateway (`shop-gateway`) uses too.
//! - [`remote`]: the order service (internal endpoints, signed with this
//!   service's key) and the gateway (its merchant API, signed with the
//!   merchant key).
//! - [`events`]: PAY_REFUND, the event of a refunded payment.
//! - [`repo`]: the `payments` table.
//! - [`routes`], [`error`], [`config`] (its own keys).
//! - [`SERVICE`]: the frame of `shop_common::service` with the
//!   [`PayExtension`]: the PAY_SUCCESS producer.
//!
//! A request goes through an extractor (bad input answers in the shop's
//! error shape) to a handler, which calls [`payment`]; its [`PayError`]
//! becomes an `ApiError`. PAY_SUCCESS fans out to the order, log and points
//! services, each applying it once keyed by the payment id.

pub mod checker;
pub mod config;
pub mod error;
pub mod events;
pub use shop_common::extract;
pub mod openapi;
pub mod payment;
pub mod remote;
pub mod repo;
pub mod routes;
pub use shop_common::api::pay::signature;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use mq_client::{ProducerConfig, TransactionProducer};
use shop_common::api::pay::CALLBACK_PATH;
use shop_common::auth::Auth;
use shop_common::service::{Extension, Frame, Parts, Service, ServiceConfig, StartError};
use shop_common::{Db, Migrations};

pub use config::Config;
pub use error::PayError;

/// This service's schema, for SQLite and PostgreSQL.
pub const MIGRATIONS: Migrations = shop_common::migrations!(
    "../../migrations/sqlite/pay",
    "../../migrations/postgres/pay"
);

/// Producer group of the PAY_SUCCESS transactional messages; the broker
/// checks back with any live member.
pub const PRODUCER_GROUP: &str = "pay-service-pay-success";

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub orders: remote::OrderClient,
    pub gateway: remote::GatewayClient,
    /// `None` when no name server is configured: callbacks then settle
    /// payments without publishing (tests of the API only).
    pub producer: Option<TransactionProducer>,
    /// Checks callers; its key signs calls to the order service and the
    /// events.
    pub auth: Auth,
}

impl AppState {
    /// State without a broker, over an open database.
    pub fn without_broker(db: Db, config: Config, auth: Auth) -> AppState {
        AppState {
            db,
            orders: remote::OrderClient::new(&config.order_url, config.call_timeout, &auth.key),
            gateway: remote::GatewayClient::new(
                &config.gateway_url,
                config.call_timeout,
                &config.merchant,
            ),
            config: Arc::new(config),
            producer: None,
            auth,
        }
    }
}

/// The HTTP API:
///
/// - `POST /payments`, `GET /payments/{id}` (a bearer token)
/// - `GET /operator/payments?order_id=&after=&limit=` (operators)
/// - `POST /payments/callback` (the gateway's notification, signed by it)
/// - `GET /health`
pub fn router(state: AppState) -> Router {
    let public = Router::new()
        .merge(shop_common::openapi::route(openapi::document()))
        .route("/payments", post(routes::create_payment))
        .route(CALLBACK_PATH, post(routes::callback))
        .route("/payments/{id}", get(routes::get_payment))
        .route("/operator/payments", get(routes::operator_payments))
        .route("/health", get(routes::health));
    let routes = state.auth.protect(public, Router::new());
    shop_common::http::service_router(routes, state)
}

/// What the pay service adds to the frame: its keys ([`config`]) and, when
/// a name server is configured, the transactional PAY_SUCCESS producer whose
/// check-backs [`checker::PayChecker`] answers.
pub struct PayExtension;

impl Extension for PayExtension {
    type Config = Config;
    type State = AppState;

    fn warnings(&self, config: &ServiceConfig<Config>) -> Vec<String> {
        let mut warnings = Vec::new();
        if config.namesrv_addr.is_empty() {
            warnings.push(
                "namesrv_addr is empty: paid callbacks will not publish PAY_SUCCESS".to_owned(),
            );
        }
        warnings
    }

    async fn start(&'static self, frame: Frame<'_, Config>) -> Result<Parts<AppState>, StartError> {
        let db = frame.db().clone();
        let mut state =
            AppState::without_broker(db.clone(), frame.config.own.clone(), frame.auth().clone());
        if !frame.config.namesrv_addr.is_empty() {
            let producer = TransactionProducer::start(
                ProducerConfig::new(PRODUCER_GROUP),
                frame.client(PRODUCER_GROUP),
                Arc::new(checker::PayChecker { db }),
            )
            .await
            .map_err(|source| StartError::Broker {
                what: "PAY_SUCCESS/PAY_REFUND producer".to_owned(),
                source,
            })?;
            state.producer = Some(producer);
        }
        let mut parts = Parts::new(state.clone(), router(state.clone()));
        parts.producers.extend(state.producer);
        Ok(parts)
    }
}

/// The pay service, as `shop_common::service` configures, starts and
/// stops it.
pub static SERVICE: Service<PayExtension> = Service {
    name: "pay",
    about: "The shop's payment service (payments, the gateway's callback, PAY_SUCCESS)",
    env_prefix: "PAY",
    default_port: 8085,
    migrations: Some(MIGRATIONS),
    extension: PayExtension,
};

/// The pay service started by [`SERVICE`].
pub type Application = shop_common::service::Application<AppState>;

/// The pay service's configuration for tests: port 0 on localhost, the
/// database at `database_url`, no broker, its test key (as `pay`, so the
/// order service takes its calls) and [`Config::for_tests`] with the order
/// service at `order_url`. (`SERVICE.config_for_tests` cannot be used: the
/// gateway secrets have no defaults.)
pub fn config_for_tests(database_url: &str, order_url: &str) -> ServiceConfig<Config> {
    ServiceConfig::for_tests_named("pay", database_url, Config::for_tests(order_url))
}
