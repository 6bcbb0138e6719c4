//! What the interop tests share beyond `mq-testkit`: the cluster they
//! start, the third-party client's runtime and settings, and our own frames
//! used to observe the broker from the side while the third-party client
//! works.

// The one test binary uses nearly all of it; what it does not is kept for the next test.
#![allow(dead_code)]

use std::sync::{Arc, LazyLock};

use mq_remoting::RemotingClient;
use mq_testkit::frames;
use rocketmq_client_rust::{
    ClientConfig, ClientRuntime, ClientRuntimeConfig, DefaultMQProducer, TelemetryHandle,
};
use rocketmq_model::common::message::message_single::Message;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};

// Not every test binary uses every re-export.
#[allow(unused_imports)]
pub use mq_testkit::{bounded, wait_for, Cluster, WAIT};

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

/// Our name server and a broker with a name no other test in this process
/// uses (the third-party client's runtime is shared by the process), with
/// check-backs of half messages older than 300 ms every 200 ms and 1 s delay
/// levels (a consumer's retry comes back after 1 s).
pub async fn start_cluster() -> Cluster {
    // Logs of both sides (ours and the third-party client's) with RUST_LOG.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Cluster::start_with(|broker, _| {
        broker.broker_name = unique("interop-broker");
        broker.transaction_time_out = 300;
        broker.transaction_check_interval = 200;
    })
    .await
}

/// A message for the third-party producer.
pub fn message(topic: &str, tag: &str, body: &str) -> Message {
    Message::builder()
        .topic(topic)
        .tags(tag)
        .body_slice(body.as_bytes())
        .build_unchecked()
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
                let max = frames::max_offset(raw, broker, topic, queue).await;
                let committed = frames::committed_offset(raw, broker, group, topic, queue).await;
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
    let mut msg = frames::message(topic, 0, tag, "", body.as_bytes());
    msg.0.producer_group = "interop-raw-producer".into();
    frames::send(raw, broker, msg).await;
}

/// A started third-party producer of a fresh group.
pub async fn producer(cluster: &Cluster, scope: &'static str) -> DefaultMQProducer {
    let mut producer = DefaultMQProducer::builder(client_runtime(scope))
        .client_config(client_config(&cluster.namesrv.addr, scope))
        .producer_group(unique("interop-producer"))
        .name_server_addr(cluster.namesrv.addr.clone())
        .send_msg_timeout(10_000)
        .build();
    bounded("third-party producer start", producer.start())
        .await
        .expect("third-party producer starts");
    producer
}

/// A started third-party pull consumer of a fresh group (the client's
/// classic pull consumer, deprecated there, kept for its direct pulls).
#[allow(deprecated)]
pub async fn pull_consumer(
    cluster: &Cluster,
    scope: &'static str,
) -> rocketmq_client_rust::DefaultMQPullConsumer {
    let consumer = rocketmq_client_rust::DefaultMQPullConsumer::builder(client_runtime(scope))
        .consumer_group(unique("interop-pull"))
        .name_server_addr(cluster.namesrv.addr.clone())
        .consumer_pull_timeout(std::time::Duration::from_secs(10))
        .build()
        .or_explain("pull consumer builds");
    bounded("third-party pull consumer start", consumer.start())
        .await
        .or_explain("third-party pull consumer starts");
    consumer
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
