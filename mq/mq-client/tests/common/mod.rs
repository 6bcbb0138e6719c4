//! What mq-client's test binaries share beyond `mq-testkit`: the broker
//! settings these tests were written against, and client settings with
//! short intervals so tests do not wait long.

// Each test binary uses part of this module.
#![allow(dead_code, unused_imports)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::sync::{Arc, Mutex};

use mq_client::{
    ClientConfig, ConsumeStatus, Listener, MessageExt, PushConsumer, PushConsumerConfig,
};

pub use mq_testkit::{wait_until, NameServer, TestBroker};

/// The bound of the client tests' waits.
pub const LIMIT: Duration = Duration::from_secs(30);

/// A master named `name` in a temporary folder, registered with `namesrv`
/// (again every 30 s), with check-backs of half messages older than 300 ms
/// every 200 ms and 1 s delay levels.
pub async fn start_broker(name: &str, namesrv: &str) -> TestBroker {
    TestBroker::start_temp(name, namesrv, |broker, _| {
        broker.register_name_server_period = 30_000;
        broker.transaction_time_out = 300;
        broker.transaction_check_interval = 200;
    })
    .await
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

/// Push consumer settings for `group` from the first offset, with short
/// rebalance, suspend, lock and retry intervals.
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

/// Bodies a [`collecting`] consumer has received, as text.
pub type Seen = Arc<Mutex<Vec<String>>>;

/// A started push consumer of `group` ([`push_config`]) on `topic` with
/// `client`, collecting every body it receives.
pub async fn collecting(client: ClientConfig, group: &str, topic: &str) -> (PushConsumer, Seen) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let consumer = PushConsumer::new(push_config(group), client);
    consumer.subscribe(topic, "*").unwrap();
    consumer
        .start(Listener::concurrent(move |msgs: Vec<MessageExt>| {
            let sink = sink.clone();
            async move {
                for m in msgs {
                    sink.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&m.body).into_owned());
                }
                ConsumeStatus::Success
            }
        }))
        .await
        .unwrap();
    (consumer, seen)
}
