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

pub mod config;
pub mod kvconfig;
mod processor;
pub mod routeinfo;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mq_remoting::{serve_with, ServerConfig};
use thiserror::Error;
use tokio::net::TcpListener;
use tracing::info;

pub use config::{ConfigError, NamesrvConfig};
pub use kvconfig::KvConfigManager;
pub use routeinfo::RouteInfoManager;

/// Why the name server could not start.
#[derive(Debug, Error)]
pub enum NamesrvError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot load the KV config from {}: {reason}", path.display())]
    KvConfig { path: PathBuf, reason: String },
}

/// Where the name server reads the time. Tests use a clock they move by
/// hand; everything else uses [`SystemClock`].
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(now_millis: u64) -> Self {
        ManualClock(AtomicU64::new(now_millis))
    }

    pub fn set(&self, now_millis: u64) {
        self.0.store(now_millis, Ordering::SeqCst);
    }

    pub fn advance(&self, millis: u64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The name server's state; cheap to clone (clones share it). It is the
/// request handler for `mq_remoting::serve`.
#[derive(Clone)]
pub struct NameServer {
    inner: Arc<State>,
}

struct State {
    config: RwLock<NamesrvConfig>,
    routes: RwLock<RouteInfoManager>,
    kv: Mutex<KvConfigManager>,
    clock: Arc<dyn Clock>,
}

impl NameServer {
    /// A name server on the system clock; loads the KV config.
    pub fn new(config: NamesrvConfig) -> Result<Self, NamesrvError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    pub fn with_clock(config: NamesrvConfig, clock: Arc<dyn Clock>) -> Result<Self, NamesrvError> {
        let kv = KvConfigManager::load(&config.kv_config_path)?;
        Ok(NameServer {
            inner: Arc::new(State {
                config: RwLock::new(config),
                routes: RwLock::new(RouteInfoManager::new()),
                kv: Mutex::new(kv),
                clock,
            }),
        })
    }

    /// The effective configuration (UPDATE_NAMESRV_CONFIG may change it).
    pub fn config(&self) -> NamesrvConfig {
        self.read_config().clone()
    }

    pub fn now_millis(&self) -> u64 {
        self.inner.clock.now_millis()
    }

    /// The expiry scan, one step: drops brokers silent for longer than
    /// `brokerChannelExpiredTime` at the clock's current time. Returns how
    /// many were dropped.
    pub fn scan_not_active_brokers(&self) -> usize {
        let now = self.now_millis();
        let expire = self.read_config().broker_channel_expired_time_ms;
        self.write_routes()
            .scan_not_active_brokers(now, expire)
            .len()
    }

    /// Serves `listener` until `shutdown` completes, running the expiry scan
    /// every `scanNotActiveBrokerInterval`.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl Future) {
        let scanner = {
            let server = self.clone();
            tokio::spawn(async move {
                loop {
                    let interval = server.read_config().scan_not_active_broker_interval_ms;
                    tokio::time::sleep(Duration::from_millis(interval)).await;
                    let dropped = server.scan_not_active_brokers();
                    if dropped > 0 {
                        info!(dropped, "expired brokers removed");
                    }
                }
            })
        };
        let config = ServerConfig {
            max_frame_len: self.read_config().frame_max_length,
            ..ServerConfig::default()
        };
        serve_with(listener, Arc::new(self.clone()), config, shutdown).await;
        scanner.abort();
    }

    fn read_config(&self) -> std::sync::RwLockReadGuard<'_, NamesrvConfig> {
        self.inner.config.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_config(&self) -> std::sync::RwLockWriteGuard<'_, NamesrvConfig> {
        self.inner.config.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read_routes(&self) -> std::sync::RwLockReadGuard<'_, RouteInfoManager> {
        self.inner.routes.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_routes(&self) -> std::sync::RwLockWriteGuard<'_, RouteInfoManager> {
        self.inner.routes.write().unwrap_or_else(|p| p.into_inner())
    }

    fn kv(&self) -> MutexGuard<'_, KvConfigManager> {
        self.inner.kv.lock().unwrap_or_else(|p| p.into_inner())
    }
}

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
