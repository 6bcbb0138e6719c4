//! The name server: brokers register here, clients ask here where topics
//! live. Compatible with RocketMQ 4.x name servers on the wire.
//!
//! Layout:
//! - [`config`]: [`NamesrvConfig`], RocketMQ's keys from a `.properties`
//!   file.
//! - [`routeinfo`]: [`RouteInfoManager`], the broker registry and the topic
//!   routes; pure state with an explicit `now`.
//! - [`kvconfig`]: [`KvConfigManager`], namespaced key/values persisted to
//!   `kvConfigPath`.
//! - `server`: [`NameServer`], the shared state and its serve loop;
//!   `clock`: where it reads the time; `metrics`: its Prometheus metrics
//!   ([`NameServer::register_metrics`]).
//! - `processor`: one `match` from request code to a function per request
//!   family (broker, route, kv, config); the handler [`NameServer`] gives to
//!   `mq_remoting::serve`.
//!
//! A request flows: `mq_remoting` connection → [`NameServer`]'s
//! `RequestHandler::handle` → processor → route table / KV → response.
//! Independently, [`NameServer::scan_not_active_brokers`] runs every
//! `scanNotActiveBrokerInterval` and drops brokers silent for
//! `brokerChannelExpiredTime`; a broker's connection closing drops it at
//! once.

mod clock;
pub mod config;
mod error;
pub mod kvconfig;
mod metrics;
mod processor;
pub mod routeinfo;
mod server;

use std::future::Future;

use tokio::net::TcpListener;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, NamesrvConfig};
pub use error::NamesrvError;
pub use kvconfig::KvConfigManager;
pub use routeinfo::RouteInfoManager;
pub use server::NameServer;

/// Runs a name server with `config` on an already-bound `listener` until
/// `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    config: NamesrvConfig,
    shutdown: impl Future,
) -> Result<(), NamesrvError> {
    let server = NameServer::new(config)?;
    server.serve(listener, shutdown).await;
    Ok(())
}
