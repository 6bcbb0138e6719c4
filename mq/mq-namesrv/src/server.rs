//! [`NameServer`]: the route table, the KV config and the configuration
//! behind locks, the expiry scan, and serving a bound listener. The request
//! handler that `mq_remoting` calls is in `processor`.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use mq_acl::{Rules, Validator};
use mq_remoting::serve_with;
use tokio::net::TcpListener;
use tracing::info;

use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, NamesrvConfig};
use crate::error::NamesrvError;
use crate::kvconfig::KvConfigManager;
use crate::routeinfo::RouteInfoManager;

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
    /// The plain ACL check (`aclEnable`), fixed at start.
    acl: Option<Arc<Validator>>,
}

/// How often the ACL file's modification time is looked at.
const ACL_RELOAD_PERIOD: Duration = Duration::from_millis(500);

/// The ACL accounts when `aclEnable` is on; a missing or malformed file is a
/// start-up error naming the file and line.
fn load_acl(config: &NamesrvConfig) -> Result<Option<Arc<Validator>>, ConfigError> {
    if !config.acl_enable {
        return Ok(None);
    }
    let path = mq_acl::resolve_path(&config.rocketmq_home, &config.acl_file_path);
    let validator =
        Validator::load(Rules::NameServer, &path).map_err(|e| ConfigError::InvalidValue {
            key: "aclFilePath".into(),
            value: path.display().to_string(),
            source_name: "aclEnable=true".into(),
            reason: e.to_string(),
        })?;
    info!(path = %path.display(), "plain ACL enabled");
    Ok(Some(Arc::new(validator)))
}

impl NameServer {
    /// A name server on the system clock; loads the KV config.
    pub fn new(config: NamesrvConfig) -> Result<Self, NamesrvError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    pub fn with_clock(config: NamesrvConfig, clock: Arc<dyn Clock>) -> Result<Self, NamesrvError> {
        let kv = KvConfigManager::load(&config.kv_config_path)?;
        let acl = load_acl(&config)?;
        Ok(NameServer {
            inner: Arc::new(State {
                config: RwLock::new(config),
                routes: RwLock::new(RouteInfoManager::new()),
                kv: Mutex::new(kv),
                clock,
                acl,
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
        let config = self.read_config().server_config();
        let acl_watcher = self.inner.acl.as_ref().map(|v| v.watch(ACL_RELOAD_PERIOD));
        serve_with(listener, Arc::new(self.clone()), config, shutdown).await;
        scanner.abort();
        if let Some(watcher) = acl_watcher {
            watcher.abort();
        }
    }

    pub(crate) fn read_config(&self) -> std::sync::RwLockReadGuard<'_, NamesrvConfig> {
        self.inner.config.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write_config(&self) -> std::sync::RwLockWriteGuard<'_, NamesrvConfig> {
        self.inner.config.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn read_routes(&self) -> std::sync::RwLockReadGuard<'_, RouteInfoManager> {
        self.inner.routes.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write_routes(&self) -> std::sync::RwLockWriteGuard<'_, RouteInfoManager> {
        self.inner.routes.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The ACL check, when `aclEnable` is on.
    pub(crate) fn acl(&self) -> Option<&Validator> {
        self.inner.acl.as_deref()
    }

    pub(crate) fn kv(&self) -> MutexGuard<'_, KvConfigManager> {
        self.inner.kv.lock().unwrap_or_else(|p| p.into_inner())
    }
}
