//! Our name server and broker in-process on port 0, the third-party client's
//! runtime, and a few raw frames of our own (offsets, sends) used to observe
//! the broker from the side while the third-party client works.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use mq_broker::{BrokerConfig, BrokerHandle};
use mq_namesrv::config::NamesrvConfig;
use mq_protocol::header::{SendMessageRequestHeader, SendMessageRequestHeaderV2};
use mq_protocol::message::{properties_to_string, Properties};
use mq_protocol::route::perm;
use mq_protocol::{request_code, RemotingCommand, ResponseCode};
use mq_remoting::{ClientConfig as RawClientConfig, RemotingClient};
use mq_store::MessageStoreConfig;
use rocketmq_client_rust::{
    ClientConfig, ClientRuntime, ClientRuntimeConfig, DefaultMQProducer, TelemetryHandle,
};
use rocketmq_model::common::message::message_single::Message;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Upper bound for anything a test waits on; generous for a loaded 2-core CI box.
pub const WAIT: Duration = Duration::from_secs(60);

/// The third-party client's runtime owner: one per test process, as its own
/// integration tests do (it owns the client's background task scopes).
static CLIENT_RUNTIME_OWNER: LazyLock<RuntimeOwner> = LazyLock::new(|| {
    RuntimeOwner::plan(RuntimeConfig {
        thread_name: "mq-interop-client".to_owned(),
        ..Default::default()
    })
    .expect("client runtime configuration is valid")
    .build()
    .expect("client runtime owner starts")
});

/// A fresh third-party client runtime scope.
pub fn client_runtime(scope: &'static str) -> Arc<ClientRuntime> {
    ClientRuntime::try_new(
        CLIENT_RUNTIME_OWNER.root_context().component(scope),
        ClientRuntimeConfig::default(),
        TelemetryHandle::noop(),
    )
    .expect("client runtime is valid")
}

/// Third-party client settings pointing at our name server; a unique instance
/// name so that several clients in one process get distinct client ids (the
/// broker tells consumers of one group apart by client id), and short offset
/// persistence so the broker sees consumption progress quickly. Route
/// polling and heartbeats keep the client's defaults (it refuses less than
/// 10 s): the tests rely on what the client does at start-up and on our
/// broker's NOTIFY_CONSUMER_IDS_CHANGED.
pub fn client_config(namesrv: &str, instance: &str) -> ClientConfig {
    ClientConfig::builder()
        .namesrv_addr(namesrv.to_owned())
        .client_ip("127.0.0.1")
        .instance_name(format!("{instance}-{}", unique("i")))
        // The client's lower bound (1 s).
        .persist_consumer_offset_interval(1_000)
        .build()
        .expect("client config is valid")
}

/// A name that no other test in this process uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A message for the third-party producer.
pub fn message(topic: &str, tag: &str, body: &str) -> Message {
    Message::builder()
        .topic(topic)
        .tags(tag)
        .body_slice(body.as_bytes())
        .build_unchecked()
}

/// Our name server and one broker registered with it, both on port 0.
pub struct Cluster {
    pub namesrv: String,
    pub broker: String,
    pub broker_name: String,
    handle: Option<BrokerHandle>,
    stop_namesrv: Option<oneshot::Sender<()>>,
    _dir: TempDir,
}

impl Cluster {
    pub async fn start() -> Cluster {
        // Logs of both sides (ours and the third-party client's) with RUST_LOG.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let namesrv = listener.local_addr().expect("local addr").to_string();
        let (stop_namesrv, stopped) = oneshot::channel::<()>();
        let config = NamesrvConfig {
            kv_config_path: dir.path().join("kvConfig.json"),
            ..NamesrvConfig::default()
        };
        tokio::spawn(async move {
            let _ = mq_namesrv::run(listener, config, async move {
                let _ = stopped.await;
            })
            .await;
        });
        let (broker_config, store_config) = configs(&dir.path().join("broker"), &namesrv);
        let broker_name = broker_config.broker_name.clone();
        let handle = BrokerHandle::start(broker_config, store_config)
            .await
            .expect("broker starts");
        let cluster = Cluster {
            namesrv,
            broker: handle.addr().to_string(),
            broker_name,
            handle: Some(handle),
            stop_namesrv: Some(stop_namesrv),
            _dir: dir,
        };
        cluster.wait_registered().await;
        cluster
    }

    /// Waits until the name server serves a route for TBW102, i.e. the
    /// broker's first registration arrived.
    async fn wait_registered(&self) {
        let raw = raw_client();
        wait_for("the broker to register with the name server", || async {
            let response = raw
                .invoke(
                    &self.namesrv,
                    RemotingCommand::request(request_code::GET_ROUTEINFO_BY_TOPIC)
                        .with_field("topic", "TBW102"),
                    Duration::from_secs(5),
                )
                .await
                .ok()?;
            (response.response_code() == Some(ResponseCode::SUCCESS)).then_some(())
        })
        .await;
    }

    /// Creates `topic` with `queues` read and write queues on the broker and
    /// waits until the name server routes it.
    pub async fn create_topic(&self, topic: &str, queues: i32) {
        let raw = raw_client();
        let response = raw
            .invoke(
                &self.broker,
                RemotingCommand::request(request_code::UPDATE_AND_CREATE_TOPIC)
                    .with_field("topic", topic)
                    .with_field("defaultTopic", "TBW102")
                    .with_field("readQueueNums", queues)
                    .with_field("writeQueueNums", queues)
                    .with_field("perm", perm::READ | perm::WRITE)
                    .with_field("topicFilterType", "SINGLE_TAG"),
                Duration::from_secs(10),
            )
            .await
            .expect("UPDATE_AND_CREATE_TOPIC answered");
        assert_eq!(
            response.response_code(),
            Some(ResponseCode::SUCCESS),
            "create topic: {:?}",
            response.remark
        );
        wait_for("the name server to route the new topic", || async {
            let response = raw
                .invoke(
                    &self.namesrv,
                    RemotingCommand::request(request_code::GET_ROUTEINFO_BY_TOPIC)
                        .with_field("topic", topic),
                    Duration::from_secs(5),
                )
                .await
                .ok()?;
            (response.response_code() == Some(ResponseCode::SUCCESS)).then_some(())
        })
        .await;
    }

    pub async fn stop(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
        if let Some(stop) = self.stop_namesrv.take() {
            let _ = stop.send(());
        }
    }
}

/// Broker settings for a test, as in mq-broker's own harness: port 0,
/// loopback, small files, short transaction timings (check-back after 300 ms)
/// and 1 s delay levels (a consumer's retry comes back after 1 s).
fn configs(root: &Path, namesrv: &str) -> (BrokerConfig, MessageStoreConfig) {
    let broker = BrokerConfig {
        broker_name: unique("interop-broker"),
        namesrv_addr: namesrv.to_owned(),
        listen_port: 0,
        bind_address: "127.0.0.1".into(),
        broker_ip1: "127.0.0.1".into(),
        transaction_time_out: 300,
        transaction_check_interval: 200,
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

/// Our own remoting client, for observing the broker frame by frame.
pub fn raw_client() -> RemotingClient {
    RemotingClient::new(RawClientConfig::default())
}

/// Polls `probe` until it yields a value; panics with `what` after [`WAIT`].
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `future` with the [`WAIT`] bound, naming the step on timeout.
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?}: {what}"))
}

async fn offset_query(raw: &RemotingClient, broker: &str, request: RemotingCommand) -> i64 {
    let response = raw
        .invoke(broker, request, Duration::from_secs(10))
        .await
        .expect("offset request answered");
    match response.response_code() {
        Some(ResponseCode::SUCCESS) => response
            .field("offset")
            .and_then(|offset| offset.parse().ok())
            .expect("offset field in the response header"),
        // A group that committed nothing yet.
        Some(ResponseCode::QUERY_NOT_FOUND) => -1,
        other => panic!("offset request failed: {other:?} {:?}", response.remark),
    }
}

/// The broker's max offset of one queue (GET_MAX_OFFSET).
pub async fn max_offset(raw: &RemotingClient, broker: &str, topic: &str, queue: i32) -> i64 {
    offset_query(
        raw,
        broker,
        RemotingCommand::request(request_code::GET_MAX_OFFSET)
            .with_field("topic", topic)
            .with_field("queueId", queue),
    )
    .await
}

/// The consumer offset the broker holds for `group` on one queue
/// (QUERY_CONSUMER_OFFSET), -1 when none was committed.
pub async fn committed_offset(
    raw: &RemotingClient,
    broker: &str,
    group: &str,
    topic: &str,
    queue: i32,
) -> i64 {
    offset_query(
        raw,
        broker,
        RemotingCommand::request(request_code::QUERY_CONSUMER_OFFSET)
            .with_field("consumerGroup", group)
            .with_field("topic", topic)
            .with_field("queueId", queue),
    )
    .await
}

/// Waits until `group` has committed, for every queue of `topic`, the
/// queue's max offset: the third-party consumer has then finished every
/// message in the topic (a concurrent push consumer commits only below its
/// oldest unfinished message), so what it received is final.
pub async fn wait_caught_up(
    raw: &RemotingClient,
    broker: &str,
    group: &str,
    topic: &str,
    queues: i32,
) {
    wait_for(
        &format!("group {group} to commit the max offset of every queue of {topic}"),
        || async {
            for queue in 0..queues {
                let max = max_offset(raw, broker, topic, queue).await;
                let committed = committed_offset(raw, broker, group, topic, queue).await;
                if committed < max {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
}

/// Sends one message with our own SEND_MESSAGE_V2 frame (not the third-party
/// client), so that messages from both clients share the topic.
pub async fn raw_send(raw: &RemotingClient, broker: &str, topic: &str, tag: &str, body: &str) {
    let mut properties = Properties::new();
    properties.insert("TAGS".into(), tag.into());
    properties.insert("UNIQ_KEY".into(), unique("raw").replace('-', ""));
    properties.insert("WAIT".into(), "true".into());
    let header = SendMessageRequestHeader {
        producer_group: "interop-raw-producer".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 0,
        sys_flag: 0,
        born_timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        flag: 0,
        properties: Some(properties_to_string(&properties)),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        batch: Some(false),
        max_reconsume_times: None,
    };
    let response = raw
        .invoke(
            broker,
            RemotingCommand::request(request_code::SEND_MESSAGE_V2)
                .with_header(&SendMessageRequestHeaderV2::from_v1(&header))
                .with_body(body.as_bytes().to_vec()),
            Duration::from_secs(10),
        )
        .await
        .expect("raw send answered");
    assert_eq!(
        response.response_code(),
        Some(ResponseCode::SUCCESS),
        "raw send: {:?}",
        response.remark
    );
}

/// A started third-party producer of a fresh group.
pub async fn producer(cluster: &Cluster, scope: &'static str) -> DefaultMQProducer {
    let mut producer = DefaultMQProducer::builder(client_runtime(scope))
        .client_config(client_config(&cluster.namesrv, scope))
        .producer_group(unique("interop-producer"))
        .name_server_addr(cluster.namesrv.clone())
        .send_msg_timeout(10_000)
        .build();
    bounded("third-party producer start", producer.start())
        .await
        .expect("third-party producer starts");
    producer
}

/// Everything the third-party client's error says: its diagnostic view (the
/// `Debug` form redacts the fields) and the chain of sources. Test failures
/// print this so that an incompatibility names its cause.
pub fn explain(error: &rocketmq_client_rust::ClientError) -> String {
    let mut text = match error.shared_error().diagnostic_view() {
        Ok(view) => format!("{view:?}"),
        Err(_) => format!("{error:?}"),
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    text
}

/// `expect` for the third-party client's results, with [`explain`].
pub trait Expect<T> {
    fn or_explain(self, what: &str) -> T;
}

impl<T> Expect<T> for rocketmq_client_rust::ClientResult<T> {
    fn or_explain(self, what: &str) -> T {
        self.unwrap_or_else(|error| panic!("{what}: {}", explain(&error)))
    }
}
