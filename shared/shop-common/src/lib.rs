//! What the shop's services share.
//!
//! - [`config`]: layered settings (defaults, a `.properties` file, environment).
//! - [`db`]: one pool over SQLite or PostgreSQL chosen by URL, and migrations.
//! - [`money`]: `Decimal` amounts to and from integer cents.
//! - [`idempotency`]: record a consumed message in the effect's transaction.
//! - [`http`]: the JSON error every service answers with.
//! - [`telemetry`]: tracing to stderr.
//! - [`testing`]: fresh test databases and the [`db_test!`] macro that runs a
//!   test on both databases.

pub mod config;
pub mod db;
pub mod http;
pub mod idempotency;
pub mod money;
pub mod telemetry;
pub mod testing;

pub use db::{Db, DbKind, Migrations};
pub use http::ApiError;
