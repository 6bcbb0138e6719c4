//! A name server and brokers running in this process, on port 0, with
//! small store files under a temporary folder: what the client's, the
//! services' and the end-to-end tests start before they talk to a broker.

use std::path::Path;

use mq_broker::{BrokerConfig, BrokerHandle};
use mq_namesrv::NamesrvConfig;
use mq_store::MessageStoreConfig;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A name server on a random loopback port, stopped on drop.
pub struct NameServer {
    pub addr: String,
    stop: Option<oneshot::Sender<()>>,
    _dir: TempDir,
}

impl NameServer {
    pub async fn start() -> NameServer {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let config = NamesrvConfig {
            kv_config_path: dir.path().join("kvConfig.json"),
            ..NamesrvConfig::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address").to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = mq_namesrv::run(listener, config, async move {
                let _ = stopped.await;
            })
            .await;
        });
        NameServer {
            addr,
            stop: Some(stop),
            _dir: dir,
        }
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Broker and store settings for tests: port 0 on loopback, 8 MiB commit
/// log segments, small index files, one-second delay levels and
/// transaction check-backs after half a second.
pub fn broker_configs(
    name: &str,
    root: &Path,
    namesrv: &str,
) -> (BrokerConfig, MessageStoreConfig) {
    let broker = BrokerConfig {
        broker_name: name.to_owned(),
        namesrv_addr: namesrv.to_owned(),
        listen_port: 0,
        bind_address: "127.0.0.1".into(),
        broker_ip1: "127.0.0.1".into(),
        transaction_time_out: 500,
        transaction_check_interval: 300,
        ..BrokerConfig::default()
    };
    let mut store = MessageStoreConfig::with_root(root);
    store.maped_file_size_commit_log = 8 * 1024 * 1024;
    store.maped_file_size_consume_queue = 20 * 1000;
    store.max_hash_slot_num = 1000;
    store.max_index_num = 4000;
    store.message_delay_level = "1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s".into();
    (broker, store)
}

/// A name server and one broker.
pub struct Cluster {
    pub namesrv: NameServer,
    broker: Option<BrokerHandle>,
    pub broker_addr: String,
    _dir: TempDir,
}

impl Cluster {
    pub async fn start() -> Cluster {
        Self::start_with(|_, _| {}).await
    }

    /// Starts with settings adjusted by `tweak`.
    pub async fn start_with(
        tweak: impl FnOnce(&mut BrokerConfig, &mut MessageStoreConfig),
    ) -> Cluster {
        let namesrv = NameServer::start().await;
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (mut broker, mut store) = broker_configs("broker-a", dir.path(), &namesrv.addr);
        tweak(&mut broker, &mut store);
        let handle = BrokerHandle::start(broker, store)
            .await
            .expect("the broker starts");
        Cluster {
            broker_addr: handle.addr().to_string(),
            namesrv,
            broker: Some(handle),
            _dir: dir,
        }
    }

    /// Stops the broker cleanly.
    pub async fn stop(&mut self) {
        if let Some(handle) = self.broker.take() {
            handle.shutdown().await;
        }
    }
}
