//! A fake third-party payment gateway for the shop's demo and tests, which
//! behaves as a real one does towards its merchant (the shop's pay
//! service):
//!
//! - the merchant registers each payment with a request signed with its
//!   key ([`merchant`]); only registered payments can be paid, so the
//!   gateway signs notifications only for payments the pay service
//!   created through it;
//! - the pay service's `pay_url` leads a person to [`routes::pay_page`], a
//!   page with a "Pay" button; pressing it (or a script calling
//!   `POST /api/pay`) "pays": [`gateway::Gateway::pay`] gives the payment a
//!   trade number once, kept on disk ([`store`]) across restarts, and
//!   notifies the merchant with the HMAC-SHA256-signed JSON that
//!   `shop_common::api::pay` defines, retrying with backoff while the
//!   callback fails;
//! - notifications go only to the notify URL configured for the merchant,
//!   and the merchant's answer is never shown to the payer.
//!
//! Layout: [`gateway`] (registering, paying, notifying), [`store`] (the
//! trades file), [`merchant`] (the merchant's signatures), [`routes`]
//! (pages and API), [`config`] (its own keys), [`SERVICE`] (the frame of
//! `shop_common::service` with the [`GatewayExtension`]).

pub mod config;
pub mod gateway;
pub mod merchant;
pub mod openapi;
pub mod routes;
pub mod store;

use axum::routing::{get, post};
use axum::Router;
use shop_common::db::DbError;
use shop_common::service::{Extension, Frame, Parts, Service, ServiceConfig, StartError};

pub use config::Config;
pub use gateway::{Gateway, PayOutcome};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub gateway: Gateway,
}

/// The HTTP API:
///
/// - `POST /api/payments` (the merchant registers a payment; signed)
/// - `GET /pay/{payment_id}` (the pay page)
/// - `POST /pay/{payment_id}` (its button: pays, answers an HTML outcome)
/// - `POST /api/pay` (JSON, for scripts and tests)
/// - `GET /health`, `GET /openapi.json`
pub fn router(state: AppState) -> Router {
    let verifier = merchant::verifier(state.gateway.config());
    let merchant = Router::new()
        .route("/api/payments", post(routes::register))
        .layer(axum::middleware::from_fn_with_state(
            verifier,
            merchant::merchant_only,
        ));
    let api = Router::new()
        .route(
            "/pay/{payment_id}",
            get(routes::pay_page).post(routes::pay_form),
        )
        .route("/api/pay", post(routes::api_pay))
        .route("/health", get(routes::health))
        .merge(shop_common::openapi::route(openapi::document()))
        .merge(merchant);
    shop_common::http::service_router(api, state)
}

/// What the gateway adds to the frame: its keys ([`config`]) and the
/// [`Gateway`] its handlers share, over the trades in `data_dir`.
pub struct GatewayExtension;

impl Extension for GatewayExtension {
    type Config = Config;
    type State = AppState;

    async fn start(&'static self, frame: Frame<'_, Config>) -> Result<Parts<AppState>, StartError> {
        let config = frame.config.own.clone();
        let data_dir = config.data_dir.display().to_string();
        let gateway = Gateway::open(config).map_err(|error| {
            // The frame has no error of its own for a data folder but the
            // database's.
            StartError::Database(DbError::DataDir {
                path: data_dir,
                source: std::io::Error::other(error.to_string()),
            })
        })?;
        let state = AppState { gateway };
        Ok(Parts::new(state.clone(), router(state)))
    }
}

/// The gateway, as `shop_common::service` configures, starts and stops it.
pub static SERVICE: Service<GatewayExtension> = Service {
    name: "gateway",
    about: "A fake third-party payment gateway for the shop's demo and tests",
    env_prefix: "GATEWAY",
    default_port: 8088,
    migrations: None,
    extension: GatewayExtension,
};

/// The gateway started by [`SERVICE`].
pub type Application = shop_common::service::Application<AppState>;

/// The gateway's configuration for tests: port 0 on localhost and
/// [`Config::for_tests`] (notifications to `notify_url`, trades in
/// `data_dir`).
pub fn config_for_tests(notify_url: &str, data_dir: &std::path::Path) -> ServiceConfig<Config> {
    ServiceConfig::for_tests_with("", Config::for_tests(notify_url, data_dir))
}
