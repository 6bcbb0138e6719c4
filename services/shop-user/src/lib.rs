//! The user service: customers and operators, their sessions, balances and
//! balance reservations for orders.
//!
//! Layout:
//! - [`password`]: logins and passwords, argon2id hashing on a bounded
//!   number of blocking threads.
//! - [`operators`]: the operator accounts of `operators_file`, configured
//!   at start and never created over the API.
//! - [`sessions`]: the tokens of `POST /auth/login` (stored as their
//!   SHA-256), [`sessions::DbSessions`] which checks them, and the limiter
//!   of failed log-ins.
//! - [`repo`]: users, top-ups, balance reservations and the ORDER_CANCEL
//!   compensation [`cancel_order`], idempotent per order through the
//!   `money_ledger` table (top-ups per reference through
//!   `balance_top_ups`).
//! - [`routes`]: the HTTP API over it (JSON in and out).
//! - [`config`]: the service's own keys ([`UserConfig`]).
//! - [`error`]: [`UserError`] and the HTTP answer of each variant.
//! - [`SERVICE`]: its name, port, schema, API and consumers, from which
//!   `shop_common::service` configures, starts and stops it.
//!
//! Who may do what: anyone signs up (balance 0.00) and logs in; a customer
//! reads their own account; an operator reads every account and tops up
//! balances (the only way money enters). The user service checks its own
//! tokens against its `sessions` table ([`Users`] gives its router a
//! [`sessions::DbSessions`]); every other service asks it through `POST
//! /internal/sessions/verify`. Only the order service (a signed call)
//! reads a user for an order and reserves balance, under `/internal/`.
//! ORDER_CANCEL is applied only as the order service signed it.

pub mod config;
pub mod error;
pub mod events;
pub mod operators;
pub mod password;
pub mod repo;
pub use shop_common::extract;
pub mod openapi;
pub mod routes;
pub mod sessions;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use shop_common::auth::Auth;
use shop_common::events::ORDER_CANCEL;
use shop_common::service::{
    Extension, Frame, Parts, Service, ServiceConfig, StartError, Subscription,
};
use shop_common::{Db, Migrations};

pub use config::UserConfig;
pub use error::UserError;
pub use operators::Operators;
pub use repo::{cancel_order, cancel_order_in, CancelOutcome, Refund};

/// This service's schema, for SQLite and PostgreSQL.
pub const MIGRATIONS: Migrations = shop_common::migrations!(
    "../../migrations/sqlite/user",
    "../../migrations/postgres/user"
);

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub operators: Operators,
    /// How long a session lives.
    pub session_ttl: Duration,
    pub limiter: Arc<sessions::LoginLimiter>,
    pub hasher: password::Hasher,
}

impl AppState {
    pub fn new(db: Db, config: &UserConfig) -> AppState {
        AppState {
            db,
            operators: config.operators.clone(),
            session_ttl: config.session_ttl,
            limiter: Arc::new(sessions::LoginLimiter::new(
                config.login_max_failures,
                config.login_lockout,
            )),
            hasher: password::Hasher::default(),
        }
    }

    /// The authenticator of this service's own tokens.
    pub fn sessions(&self) -> sessions::DbSessions {
        sessions::DbSessions {
            db: self.db.clone(),
            operators: self.operators.clone(),
        }
    }

    /// `frame`'s key and trusted services, with tokens checked against this
    /// service's sessions instead of over the network.
    pub fn local_auth(&self, frame: &Auth) -> Auth {
        Auth::new(
            frame.key.clone(),
            (*frame.trusted).clone(),
            Arc::new(self.sessions()),
        )
    }
}

/// The HTTP API:
///
/// - `POST /auth/signup`, `POST /auth/login` (no token), `POST /auth/logout`
/// - `GET /users/me`, `GET /users/{id}` (themself, or an operator)
/// - `POST /users/{id}/balance/top-ups` (operators),
///   `GET /users/{id}/balance/top-ups` (themself, or an operator)
/// - `GET /operator/money-ledger?order_id=&after=&limit=` (operators)
/// - `POST /internal/sessions/verify` (any trusted service)
/// - `GET /internal/users/{id}`, `POST /internal/users/{id}/balance/reservations`,
///   `GET /internal/users/{id}/balance/reservations/{order_id}` (the order
///   service)
/// - `GET /health`
///
/// `auth` checks the bearer tokens: give it [`AppState::local_auth`].
pub fn router(state: AppState, auth: Auth) -> Router {
    let public = Router::new()
        .merge(shop_common::openapi::route(openapi::document()))
        .route("/auth/signup", post(routes::signup))
        .route("/auth/login", post(routes::login))
        .route("/auth/logout", post(routes::logout))
        .route("/users/me", get(routes::me))
        .route("/users/{id}", get(routes::get_user))
        .route(
            "/users/{id}/balance/top-ups",
            post(routes::top_up).get(routes::list_top_ups),
        )
        .route("/operator/money-ledger", get(routes::operator_ledger))
        .route("/health", get(routes::health));
    let internal = Router::new()
        .route(shop_common::auth::VERIFY_PATH, post(routes::verify))
        .route("/internal/users/{id}", get(routes::internal_user))
        .route(
            "/internal/users/{id}/balance/reservations",
            post(routes::reserve),
        )
        .route(
            "/internal/users/{id}/balance/reservations/{order_id}",
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

/// What the user service adds to the frame: its keys ([`UserConfig`]), a
/// router whose tokens are checked against its own sessions table (not
/// over the network, whatever `sessions_url` says), a task that deletes
/// long-expired sessions, and its ORDER_CANCEL consumer (with a name
/// server).
pub struct Users;

impl Extension for Users {
    type Config = UserConfig;
    type State = Db;

    fn warnings(&self, config: &ServiceConfig<UserConfig>) -> Vec<String> {
        if config.own.operators.is_empty() {
            vec![
                "no operators configured (operators_file): nobody can top up balances, \
                  create goods or issue coupons"
                    .to_owned(),
            ]
        } else {
            Vec::new()
        }
    }

    async fn start(&'static self, frame: Frame<'_, UserConfig>) -> Result<Parts<Db>, StartError> {
        let db = frame.db().clone();
        let state = AppState::new(db.clone(), &frame.config.own);
        // The hash unknown logins are checked against, made now rather than
        // during the first log-in.
        state.hasher.run(password::dummy_hash).await;
        let auth = state.local_auth(frame.auth());
        let mut parts = Parts::new(db.clone(), router(state, auth));
        parts.tasks.push(Box::pin(purge_sessions(db)));
        if !frame.config.namesrv_addr.is_empty() {
            parts.consumers = frame.subscribe(subscriptions()).await?;
        }
        Ok(parts)
    }
}

/// Deletes sessions expired for more than [`sessions::KEEP_EXPIRED`],
/// every [`sessions::PURGE_EVERY`].
async fn purge_sessions(db: Db) {
    let keep = i64::try_from(sessions::KEEP_EXPIRED.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::time::sleep(sessions::PURGE_EVERY).await;
        match sessions::purge_expired(&db, shop_common::now_ms() - keep).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired sessions deleted"),
            Err(error) => tracing::warn!(%error, "deleting expired sessions failed"),
        }
    }
}

/// The user service, as `shop_common::service` configures, starts and
/// stops it.
pub static SERVICE: Service<Users> = Service {
    name: "user",
    about: "The shop's user, session and balance service",
    env_prefix: "USER",
    default_port: 8084,
    migrations: Some(MIGRATIONS),
    extension: Users,
};
