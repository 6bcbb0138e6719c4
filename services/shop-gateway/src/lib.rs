//! A fake third-party payment gateway for the shop's demo and tests.
//!
//! The pay service's `pay_url` leads a person to [`routes::pay_page`], a page
//! with a "Pay" button; pressing it (or a script calling `POST /api/pay`)
//! "pays": [`gateway::Gateway::pay`] gives the payment a trade number and
//! notifies the pay service's callback with the HMAC-SHA256-signed JSON
//! that `shop_common::api::pay` defines, retrying with backoff while the
//! callback fails.
//!
//! Layout: [`gateway`] (paying and notifying), [`routes`] (pages and API),
//! [`config`] (its own keys), [`SERVICE`] (the frame of
//! `shop_common::service` with the [`GatewayExtension`]). No database:
//! trades live in memory.

pub mod config;
pub mod gateway;
pub mod routes;

use axum::routing::{get, post};
use axum::Router;
use shop_common::api::pay::DEV_GATEWAY_SECRET;
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
/// - `GET /pay/{payment_id}?order_id=&amount=&notify_url=` (the pay page)
/// - `POST /pay/{payment_id}` (its form: pays, answers an HTML outcome)
/// - `POST /api/pay` (JSON, for scripts and tests)
/// - `GET /health`
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route(
            "/pay/{payment_id}",
            get(routes::pay_page).post(routes::pay_form),
        )
        .route("/api/pay", post(routes::api_pay))
        .route("/health", get(routes::health));
    shop_common::http::service_router(api, state)
}

/// What the gateway adds to the frame: its keys ([`config`]) and the
/// [`Gateway`] its handlers share.
pub struct GatewayExtension;

impl Extension for GatewayExtension {
    type Config = Config;
    type State = AppState;

    fn warnings(&self, config: &ServiceConfig<Config>) -> Vec<String> {
        if config.own.gateway_secret.expose() == DEV_GATEWAY_SECRET.as_bytes() {
            vec!["gateway_secret is the development default; set GATEWAY_GATEWAY_SECRET".to_owned()]
        } else {
            Vec::new()
        }
    }

    async fn start(&'static self, frame: Frame<'_, Config>) -> Result<Parts<AppState>, StartError> {
        let state = AppState {
            gateway: Gateway::new(frame.config.own.clone()),
        };
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
/// [`Config::for_tests`].
pub fn config_for_tests() -> ServiceConfig<Config> {
    ServiceConfig::for_tests_with("", Config::for_tests())
}
