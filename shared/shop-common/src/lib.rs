//! What the shop's services share.
//!
//! - [`service`]: the frame of every service: configuration, start-up,
//!   graceful stop, binary entry point; a service extends it with its own
//!   keys, consumers, producers and tasks.
//! - [`auth`]: who may call a service and as whom: customers' and
//!   operators' bearer tokens, signed calls between services, signed events.
//! - [`api`]: the requests and answers between services, with their
//!   statuses and the payment callback's signature, one definition for both
//!   ends; [`client`]: the one HTTP client (and error) of those calls.
//! - [`config`]: layered settings (defaults, a `.properties` file, environment).
//! - [`db`]: one pool over SQLite or PostgreSQL chosen by URL, and migrations.
//! - [`ledger`]: the per-order ledger that makes a reservation and its
//!   compensation each happen once.
//! - [`money`]: `Decimal` amounts to and from integer cents.
//! - [`idempotency`]: record a consumed message in the effect's transaction.
//! - [`events`]: the shop's topics, their bodies, and consumers that apply
//!   each message exactly once.
//! - [`http`]: the JSON error every service answers with; [`openapi`]:
//!   the `/openapi.json` every service serves, with its security schemes.
//! - [`extract`]: axum extractors that answer bad input in that shape, and
//!   amounts read from JSON strings or numbers.
//! - [`telemetry`]: tracing to stderr; [`trace`]: the W3C trace context a
//!   saga's requests, calls and events carry; [`metrics`]: the services'
//!   Prometheus families; [`signal`]: Ctrl-C and SIGTERM.
//! - `testing` (feature `testing`, for dev-dependencies): fresh test
//!   databases and the `db_test!` macro that runs a test on both databases.

pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod db;
pub mod events;
pub mod extract;
pub mod http;
pub mod idempotency;
pub mod ledger;
pub mod metrics;
pub mod money;
pub mod openapi;
pub mod service;
pub mod signal;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trace;

pub use db::{Db, DbKind, Migrations};
pub use http::ApiError;

/// Milliseconds since the Unix epoch: how the services store time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
