//! Start-up and shutdown: validate the configuration, open the store, load
//! the metadata, bind the remoting and replication ports, build the
//! [`Broker`], start serving and the background tasks, and stop them all
//! cleanly.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use mq_acl::{Rules, Validator};
use mq_store::{MessageStore, MessageStoreConfig, StoreError};
use prometheus_client::registry::Registry;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::config::{BrokerConfig, BrokerRole};
use crate::metadata::MetadataError;
use crate::metrics::RpcMetrics;
use crate::util::stopped;

/// Why a broker could not start.
#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("invalid broker configuration: {0}")]
    Config(String),
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot load broker metadata: {0}")]
    Metadata(#[from] MetadataError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// The ACL accounts when `aclEnable` is on; a missing or malformed file is
/// a start-up error naming the file and line.
fn load_acl(config: &BrokerConfig) -> Result<Option<Arc<Validator>>, BrokerError> {
    if !config.acl_enable {
        return Ok(None);
    }
    let path = mq_acl::resolve_path(&config.rocketmq_home, &config.acl_file_path);
    let validator = Validator::load(Rules::Broker, &path).map_err(|e| {
        BrokerError::Config(format!("aclEnable=true but the ACL file is unusable: {e}"))
    })?;
    info!(path = %path.display(), "plain ACL enabled");
    Ok(Some(Arc::new(validator)))
}

/// Re-reads the ACL file when it changes, until the broker stops.
async fn watch_acl(validator: Arc<Validator>, mut stop: watch::Receiver<bool>) {
    let watcher = validator.watch(ACL_RELOAD_PERIOD);
    stopped(&mut stop).await;
    watcher.abort();
}

/// How often the ACL file's modification time is looked at.
const ACL_RELOAD_PERIOD: std::time::Duration = std::time::Duration::from_millis(500);

/// A running broker.
pub struct BrokerHandle {
    broker: Arc<Broker>,
    handler: Arc<crate::processor::BrokerHandler>,
    rpc: RpcMetrics,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl BrokerHandle {
    /// Opens the store, loads the metadata, binds `bindAddress:listenPort`
    /// (port 0 picks one) and starts serving and registering.
    pub async fn start(
        config: BrokerConfig,
        store_config: MessageStoreConfig,
    ) -> Result<BrokerHandle, BrokerError> {
        config.validate().map_err(BrokerError::Config)?;
        store_config
            .validate()
            .map_err(|e| BrokerError::Config(e.to_string()))?;
        let delay_levels = store_config
            .delay_levels()
            .map_err(|e| BrokerError::Config(e.to_string()))?;
        let acl = load_acl(&config)?;
        let ip: IpAddr = config.broker_ip1.parse().map_err(|_| {
            BrokerError::Config(format!(
                "brokerIP1 {:?} is not an IP address",
                config.broker_ip1
            ))
        })?;
        let bind = format!("{}:{}", config.bind_address, config.listen_port);
        let listener = TcpListener::bind(&bind)
            .await
            .map_err(|source| BrokerError::Bind {
                addr: bind.clone(),
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| BrokerError::Bind { addr: bind, source })?
            .port();

        // Masters serve replication; a slave only connects out.
        let ha_listener = if config.broker_role == BrokerRole::Slave {
            None
        } else {
            let ha_bind = format!("{}:{}", config.bind_address, config.effective_ha_port());
            Some(
                TcpListener::bind(&ha_bind)
                    .await
                    .map_err(|source| BrokerError::Bind {
                        addr: ha_bind.clone(),
                        source,
                    })?,
            )
        };
        let ha_port = match &ha_listener {
            Some(l) => l
                .local_addr()
                .map_err(|source| BrokerError::Bind {
                    addr: config.bind_address.clone(),
                    source,
                })?
                .port(),
            None => config.effective_ha_port(),
        };
        let ha_ip: IpAddr = config.effective_broker_ip2().parse().map_err(|_| {
            BrokerError::Config(format!(
                "brokerIP2 {:?} is not an IP address",
                config.effective_broker_ip2()
            ))
        })?;

        let opened = store_config.clone();
        let store = tokio::task::spawn_blocking(move || MessageStore::open(opened))
            .await
            .map_err(|e| BrokerError::Config(format!("store open task failed: {e}")))??;
        let (stop, shutdown) = watch::channel(false);
        let store = Arc::new(store);
        let broker = Arc::new(Broker::open(
            config.clone(),
            store_config,
            store,
            (SocketAddr::new(ip, port), SocketAddr::new(ha_ip, ha_port)),
            delay_levels,
            shutdown,
        )?);
        let addr = broker.store_host;
        info!(
            broker = %config.broker_name,
            id = config.broker_id,
            role = %config.broker_role,
            %addr,
            "broker serving"
        );

        let mut tasks = JoinSet::new();
        if let Some(validator) = &acl {
            tasks.spawn(watch_acl(validator.clone(), stop.subscribe()));
        }
        let rpc = RpcMetrics::new();
        let handler = Arc::new(crate::processor::BrokerHandler::new(
            broker.clone(),
            acl,
            rpc.clone(),
        ));
        let server_config = config.server_config();
        let mut stop_rx = stop.subscribe();
        let served = handler.clone();
        tasks.spawn(async move {
            mq_remoting::serve_with(listener, served, server_config, async move {
                stopped(&mut stop_rx).await;
            })
            .await;
        });
        if let Some(listener) = ha_listener {
            info!(ha_addr = %broker.ha_addr, "replication server listening");
            tasks.spawn(crate::ha::master::serve(
                listener,
                broker.ha.clone(),
                stop.subscribe(),
            ));
        } else {
            tasks.spawn(crate::ha::slave::run(broker.ha.clone(), stop.subscribe()));
        }
        crate::tasks::spawn_all(&broker, &stop, &mut tasks);
        Ok(BrokerHandle {
            broker,
            handler,
            rpc,
            addr,
            stop,
            tasks,
        })
    }

    /// Adds the broker's metrics to `registry` (see the `metrics` module for
    /// the names); they are read on each scrape.
    pub fn register_metrics(&self, registry: &mut Registry) {
        crate::metrics::register(registry, self.broker.clone(), &self.rpc);
    }

    /// The address clients use (brokerIP1 and the bound port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// This broker as its in-process 5.x endpoint reaches it: sends and
    /// transaction ends to [`BrokerHandle::addr`] skip the connection.
    pub fn in_process(&self) -> mq_client::InProcess {
        mq_client::InProcess::new(self.addr.to_string(), self.handler.clone())
    }

    /// The replication address (brokerIP2 and the bound HA port; for a
    /// slave, the port it would use as a master).
    pub fn ha_addr(&self) -> SocketAddr {
        self.broker.ha_addr
    }

    /// Stops serving, unregisters from the name servers, persists offsets
    /// and closes the store cleanly (no `abort` file is left).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        crate::registration::unregister(&self.broker).await;
        while self.tasks.join_next().await.is_some() {}
        self.broker.persist_offsets();
        let store = self.broker.store.clone();
        match tokio::task::spawn_blocking(move || store.shutdown()).await {
            Ok(Ok(())) => info!("broker stopped cleanly"),
            Ok(Err(e)) => warn!(error = %e, "store shutdown failed"),
            Err(e) => warn!(error = %e, "store shutdown task failed"),
        }
    }
}
