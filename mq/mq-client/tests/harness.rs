//! A name server and brokers in-process on port 0 with temporary stores,
//! and client settings with short intervals so tests do not wait long.

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mq_broker::{BrokerConfig, BrokerHandle};
use mq_client::{ClientConfig, PushConsumerConfig};
use mq_namesrv::config::NamesrvConfig;
use mq_store::MessageStoreConfig;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub struct NameServer {
    pub addr: String,
    stop: Option<oneshot::Sender<()>>,
    _dir: TempDir,
}

impl NameServer {
    pub async fn start() -> NameServer {
        let dir = tempfile::tempdir().unwrap();
        let config = NamesrvConfig {
            kv_config_path: dir.path().join("kvConfig.json"),
            ..NamesrvConfig::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
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

pub struct TestBroker {
    pub handle: Option<BrokerHandle>,
    pub addr: String,
    pub name: String,
    _dir: TempDir,
}

impl TestBroker {
    /// A master named `name` registering with `namesrv` every 300 ms, with
    /// 1-2 s delay levels.
    pub async fn start(name: &str, namesrv: &str) -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        let broker = BrokerConfig {
            broker_name: name.to_owned(),
            namesrv_addr: namesrv.to_owned(),
            listen_port: 0,
            bind_address: "127.0.0.1".into(),
            broker_ip1: "127.0.0.1".into(),
            register_name_server_period: 30_000,
            transaction_time_out: 300,
            transaction_check_interval: 200,
            ..BrokerConfig::default()
        };
        let mut store = MessageStoreConfig::with_root(dir.path());
        store.maped_file_size_commit_log = 8 * 1024 * 1024;
        store.maped_file_size_consume_queue = 20 * 1000;
        store.max_hash_slot_num = 1000;
        store.max_index_num = 4000;
        store.message_delay_level = "1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s".into();
        let handle = BrokerHandle::start(broker, store)
            .await
            .expect("broker starts");
        TestBroker {
            addr: handle.addr().to_string(),
            handle: Some(handle),
            name: name.to_owned(),
            _dir: dir,
        }
    }

    pub async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
    }
}

/// Client settings with a fresh instance name (tests share one process).
pub fn client_config(namesrv: &str) -> ClientConfig {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut config = ClientConfig::new(namesrv)
        .with_instance_name(format!("test-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    config.client_ip = "127.0.0.1".into();
    config.poll_name_server_interval = Duration::from_millis(300);
    config.heartbeat_broker_interval = Duration::from_secs(1);
    config.persist_consumer_offset_interval = Duration::from_millis(200);
    config
}

pub fn push_config(group: &str) -> PushConsumerConfig {
    let mut config = PushConsumerConfig::new(group);
    config.consume_from_where = mq_client::ConsumeFromWhere::ConsumeFromFirstOffset;
    config.rebalance_interval = Duration::from_millis(300);
    config.broker_suspend_max = Duration::from_secs(2);
    config.lock_renew_interval = Duration::from_millis(500);
    config.suspend_current_queue_time = Duration::from_millis(100);
    config.pull_retry_delay = Duration::from_millis(100);
    config.local_retry_delay = Duration::from_millis(200);
    config
}

/// Polls `check` every 50 ms until it holds; fails naming `what` after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub const LIMIT: Duration = Duration::from_secs(30);
