//! The broker tests start: in this process, on a random loopback port, with
//! small store files, returned only once every name server it was given
//! lists it (so a route or `clusterList` right after start sees it).

use std::path::{Path, PathBuf};

use mq_broker::{BrokerConfig, BrokerHandle};
use mq_store::MessageStoreConfig;
use tempfile::TempDir;

use crate::frames;
use crate::wait::wait_for;

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
    store.message_delay_level = ["1s"; 18].join(" ");
    (broker, store)
}

/// A broker in this process, registered with its name servers.
pub struct TestBroker {
    /// The running broker; `None` once stopped.
    pub handle: Option<BrokerHandle>,
    /// `host:port` clients send to.
    pub addr: String,
    /// The store's root folder (reuse it to restart on the same data).
    pub root: PathBuf,
    /// `brokerName`, after the caller's adjustments.
    pub name: String,
    /// `namesrvAddr`, after the caller's adjustments.
    pub namesrv: String,
    _dir: Option<TempDir>,
}

impl TestBroker {
    /// Starts broker `name` on [`broker_configs`] with its store under `root`.
    pub async fn start(name: &str, root: &Path, namesrv: &str) -> TestBroker {
        Self::start_with(name, root, namesrv, |_, _| {}).await
    }

    /// Starts broker `name` with its store under `root` and settings adjusted
    /// by `tweak`; returns once each of its name servers lists it.
    pub async fn start_with(
        name: &str,
        root: &Path,
        namesrv: &str,
        tweak: impl FnOnce(&mut BrokerConfig, &mut MessageStoreConfig),
    ) -> TestBroker {
        let (mut broker, mut store) = broker_configs(name, root, namesrv);
        tweak(&mut broker, &mut store);
        let handle = BrokerHandle::start(broker.clone(), store)
            .await
            .expect("the broker starts");
        let addr = handle.addr().to_string();
        let registered = format!("{}:{}", broker.broker_ip1, handle.addr().port());
        for namesrv in broker.namesrv_addr.split(';').filter(|a| !a.is_empty()) {
            wait_registered(namesrv, &broker, &registered).await;
        }
        TestBroker {
            addr,
            handle: Some(handle),
            root: root.to_owned(),
            name: broker.broker_name,
            namesrv: broker.namesrv_addr,
            _dir: None,
        }
    }

    /// Like [`TestBroker::start_with`], with its store in a temporary folder
    /// of its own, removed on drop.
    pub async fn start_temp(
        name: &str,
        namesrv: &str,
        tweak: impl FnOnce(&mut BrokerConfig, &mut MessageStoreConfig),
    ) -> TestBroker {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut broker = Self::start_with(name, dir.path(), namesrv, tweak).await;
        broker._dir = Some(dir);
        broker
    }

    /// Stops the broker cleanly (idempotent).
    pub async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
    }
}

/// Waits until `namesrv`'s cluster info lists `broker` at `addr`: its first
/// REGISTER_BROKER was processed, so its topics are routable.
async fn wait_registered(namesrv: &str, broker: &BrokerConfig, addr: &str) {
    let client = frames::client();
    let what = format!(
        "broker {} (id {}, {addr}) to register with the name server at {namesrv}",
        broker.broker_name, broker.broker_id
    );
    wait_for(&what, || async {
        let info = frames::cluster_info(&client, namesrv).await?;
        let group = info.broker_addr_table.get(&broker.broker_name)?;
        (group
            .broker_addrs
            .get(&broker.broker_id)
            .map(String::as_str)
            == Some(addr))
        .then_some(())
    })
    .await;
}
