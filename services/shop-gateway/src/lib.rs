//! A fake third-party payment gateway for the shop's demo and tests.
//!
//! The pay service's `pay_url` leads a person to [`routes::pay_page`], a page
//! with a "Pay" button; pressing it (or a script calling `POST /api/pay`)
//! "pays": [`gateway::Gateway::pay`] gives the payment a trade number and
//! notifies the pay service's callback with the HMAC-SHA256-signed JSON
//! that `shop_pay::signature` defines, retrying with backoff while the
//! callback fails.
//!
//! Layout: [`gateway`] (paying and notifying), [`routes`] (pages and API),
//! [`config`]. No database: trades live in memory.

pub mod config;
pub mod gateway;
pub mod routes;

use std::future::Future;
use std::net::SocketAddr;

use axum::routing::{get, post};
use axum::Router;
use thiserror::Error;
use tokio::net::TcpListener;

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
    Router::new()
        .route(
            "/pay/{payment_id}",
            get(routes::pay_page).post(routes::pay_form),
        )
        .route("/api/pay", post(routes::api_pay))
        .route("/health", get(routes::health))
        .fallback(shop_common::http::not_found)
        .method_not_allowed_fallback(shop_common::http::method_not_allowed)
        .with_state(state)
}

/// Why the gateway could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The gateway with its listener bound.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Binds the listener; port 0 in `config.http_addr` picks a free port.
    pub async fn build(config: Config) -> Result<Application, StartError> {
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.http_addr,
                source,
            })?;
        Ok(Application {
            listener,
            state: AppState {
                gateway: Gateway::new(config),
            },
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets in-flight requests
    /// (and their notifications) finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
    }
}
