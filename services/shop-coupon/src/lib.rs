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
//! error becomes an `ApiError`. The order service reads and uses coupons
//! over the internal API; the ORDER_CANCEL consumer ([`events`]) calls
//! [`cancel_order_in`] for events the order service signed.
//!
//! Who may do what: an operator issues coupons (at most
//! `max_coupon_amount`, [`Coupons`]) and reads everyone's; a customer reads
//! their own (someone else's answers 404, as if absent); only the order
//! service (a signed call) reads a coupon for an order or uses it, under
//! `/internal/`. Using another user's coupon answers 403 `coupon_not_owned`
//! (the order is not allowed to use it; it is not a state conflict of the
//! coupon).

pub mod error;
pub mod events;
pub mod repo;
pub use shop_common::extract;
pub mod openapi;
pub mod routes;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use rust_decimal::Decimal;
use shop_common::auth::Auth;
use shop_common::config::{ConfigError, Settings};
use shop_common::events::ORDER_CANCEL;
use shop_common::money::{from_cents, to_cents};
use shop_common::service::{Extension, Frame, OwnKeys, Parts, Service, StartError, Subscription};
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
    /// The largest coupon an operator may issue, in cents.
    pub max_amount_cents: i64,
}

impl AppState {
    pub fn new(db: Db, config: &CouponConfig) -> AppState {
        AppState {
            db,
            max_amount_cents: config.max_amount_cents,
        }
    }
}

/// The coupon service's own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CouponConfig {
    /// `max_coupon_amount` (default 100.00, at most 10,000.00): the largest
    /// coupon `POST /coupons` issues. A coupon worth more than an order
    /// made it CONFIRMED with 0.00 to pay.
    pub max_amount_cents: i64,
}

impl Default for CouponConfig {
    fn default() -> Self {
        CouponConfig {
            max_amount_cents: repo::DEFAULT_MAX_AMOUNT_CENTS,
        }
    }
}

impl OwnKeys for CouponConfig {
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[("max_coupon_amount", "100.00")];

    fn from_settings(settings: &Settings) -> Result<CouponConfig, ConfigError> {
        let value = settings.get("max_coupon_amount").unwrap_or_default().trim();
        let bound = from_cents(repo::MAX_AMOUNT_CENTS);
        let reason = format!("must be an amount from 0.01 to {bound}, in whole cents");
        let cents = value
            .parse::<Decimal>()
            .ok()
            .and_then(|amount| to_cents(amount).ok())
            .filter(|cents| (1..=repo::MAX_AMOUNT_CENTS).contains(cents))
            .ok_or_else(|| ConfigError::invalid("max_coupon_amount", value, &reason))?;
        Ok(CouponConfig {
            max_amount_cents: cents,
        })
    }
}

/// The HTTP API:
///
/// - `POST /coupons` (operators), `GET /coupons?user_id=N`,
///   `GET /coupons/{id}` (own, or an operator)
/// - `GET /operator/coupon-ledger?order_id=&after=&limit=` (operators)
/// - `GET /internal/coupons/{id}`, `POST /internal/coupons/{id}/use` (the
///   order service)
/// - `GET /health`
pub fn router(state: AppState, auth: Auth) -> Router {
    let public = Router::new()
        .merge(shop_common::openapi::route(openapi::document()))
        .route(
            "/coupons",
            post(routes::create_coupon).get(routes::list_coupons),
        )
        .route("/coupons/{id}", get(routes::get_coupon))
        .route("/operator/coupon-ledger", get(routes::operator_ledger))
        .route("/health", get(routes::health));
    let internal = Router::new()
        .route("/internal/coupons/{id}", get(routes::internal_coupon))
        .route("/internal/coupons/{id}/use", post(routes::use_coupon));
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

/// What the coupon service adds to the frame: its key `max_coupon_amount`,
/// its router and its ORDER_CANCEL consumer (with a name server).
pub struct Coupons;

impl Extension for Coupons {
    type Config = CouponConfig;
    type State = Db;

    async fn start(&'static self, frame: Frame<'_, CouponConfig>) -> Result<Parts<Db>, StartError> {
        let db = frame.db().clone();
        let state = AppState::new(db.clone(), &frame.config.own);
        let mut parts = Parts::new(db, router(state, frame.auth().clone()));
        if !frame.config.namesrv_addr.is_empty() {
            parts.consumers = frame.subscribe(subscriptions()).await?;
        }
        Ok(parts)
    }
}

/// The coupon service, as `shop_common::service` configures, starts and
/// stops it.
pub static SERVICE: Service<Coupons> = Service {
    name: "coupon",
    about: "The shop's coupon service",
    env_prefix: "COUPON",
    default_port: 8083,
    migrations: Some(MIGRATIONS),
    extension: Coupons,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_coupon_amount_defaults_to_100_and_is_bounded() {
        let settings = SERVICE.defaults();
        assert_eq!(
            CouponConfig::from_settings(&settings).unwrap(),
            CouponConfig::default()
        );
        assert_eq!(CouponConfig::default().max_amount_cents, 10_000);
        let mut settings = SERVICE.defaults();
        settings.set("max_coupon_amount", "25.50");
        assert_eq!(
            CouponConfig::from_settings(&settings)
                .unwrap()
                .max_amount_cents,
            2550
        );
        for bad in ["0", "-1", "10000.01", "1.001", "lots", ""] {
            settings.set("max_coupon_amount", bad);
            let err = CouponConfig::from_settings(&settings)
                .unwrap_err()
                .to_string();
            assert!(err.contains("max_coupon_amount"), "{bad}: {err}");
        }
    }
}
