//! Durability for a 5.x consumer: across a broker restart (same store,
//! same port) an unacknowledged message comes back and an acknowledged one
//! does not; across a restart of the broker and the proxy (which forgets
//! its deliveries) the unacknowledged one is still delivered, and once
//! everything is acknowledged nothing is; a message's count of delivery
//! attempts, and so the group's max attempts before the DLQ, outlives a
//! restart of both.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{dead_letters_without_redelivery, ProxyHandle};
use mq_client::{
    AdminClient, ClientConfig, Message, Producer, ProducerConfig, SubscriptionGroupConfig,
};
use mq_testkit::{frames, wait_for, NameServer, TestBroker};
use rocketmq::conf::{ClientOption, SimpleConsumerOption};
use rocketmq::model::common::{FilterExpression, FilterType};
use rocketmq::model::message::MessageView;
use rocketmq::SimpleConsumer;

const TOPIC: &str = "Restart5";
const GROUP: &str = "cg-restart";

/// The broker's remoting and replication ports, the same for every start.
/// Both are fixed (a restart on `listenPort` alone would bind
/// `listenPort + 1` for replication, which may be anyone's) and below the
/// kernel's ephemeral range (32768 and up here), so that no test's
/// outgoing connection can take one while the broker is down. Each call
/// starts its search elsewhere, so that tests running at once do not pick
/// the same pair before either binds it.
fn fixed_ports() -> (u16, u16) {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = u64::from(std::process::id()) * 7919 + call * 1000;
    (0..4000u64)
        .map(|i| 20_000 + ((seed + i * 2) % 12_000) as u16)
        .find(|&p| {
            std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok()
        })
        .map(|p| (p, p + 1))
        .expect("two free ports below 32000")
}

async fn broker(ns: &str, root: &Path, (port, ha_port): (u16, u16)) -> TestBroker {
    TestBroker::start_with("broker-a", root, ns, move |broker, _| {
        broker.listen_port = port;
        broker.ha_listen_port = ha_port;
    })
    .await
}

async fn consumer(proxy: &ProxyHandle) -> SimpleConsumer {
    consumer_of(proxy, GROUP, TOPIC).await
}

async fn consumer_of(proxy: &ProxyHandle, group: &str, topic: &str) -> SimpleConsumer {
    let mut option = SimpleConsumerOption::default();
    option.set_consumer_group(group);
    option.set_topics(vec![topic]);
    let mut client = ClientOption::default();
    client.set_access_url(proxy.addr.to_string());
    client.set_long_polling_timeout(Duration::from_secs(1));
    let mut consumer = SimpleConsumer::new(option, client).expect("consumer");
    consumer.start().await.expect("consumer starts");
    consumer
}

/// Receives until `want` messages came (within 30 s); each receive waits
/// up to the long polling time; a call the restarting broker failed is
/// tried again.
async fn receive(consumer: &SimpleConsumer, want: usize, invisible: Duration) -> Vec<MessageView> {
    receive_of(consumer, TOPIC, want, invisible).await
}

async fn receive_of(
    consumer: &SimpleConsumer,
    topic: &str,
    want: usize,
    invisible: Duration,
) -> Vec<MessageView> {
    let all = FilterExpression::new(FilterType::Tag, "*");
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while got.len() < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{want} messages of {topic} within 30 s, got {}",
            got.len()
        );
        match consumer.receive_with(topic, &all, 8, invisible).await {
            Ok(batch) => got.extend(batch),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    got
}

/// A name server, and a broker on [`fixed_ports`] whose store folder
/// outlives its restarts, with `topic` (one queue) in the route.
async fn started(topic: &str) -> (NameServer, tempfile::TempDir, (u16, u16), TestBroker) {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ports = fixed_ports();
    let broker_a = broker(&ns.addr, dir.path(), ports).await;
    let client = frames::client();
    frames::create_topic(&client, &broker_a.addr, topic, 1).await;
    wait_for("the route", || frames::route(&client, &ns.addr, topic)).await;
    (ns, dir, ports, broker_a)
}

fn body(message: &MessageView) -> String {
    String::from_utf8(message.body().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_messages_survive_restarts_and_acknowledged_ones_stay_acknowledged() {
    let (ns, dir, ports, mut broker_a) = started(TOPIC).await;
    let producer = Producer::start(
        ProducerConfig::new("pg-restart"),
        ClientConfig::new(ns.addr.clone()).with_instance_name("restart-4x"),
    )
    .await
    .unwrap();
    for b in ["m0", "m1"] {
        producer
            .send(Message::new(TOPIC, b).with_tags("T"))
            .await
            .unwrap();
    }
    producer.shutdown().await;

    let mut proxy = ProxyHandle::start(&ns.addr, |_| {}).await;
    let sdk = consumer(&proxy).await;
    let first = receive(&sdk, 2, Duration::from_secs(3)).await;
    let mut bodies: Vec<String> = first.iter().map(body).collect();
    bodies.sort();
    assert_eq!(bodies, ["m0", "m1"]);
    let m1 = first.iter().find(|m| body(m) == "m1").unwrap();
    sdk.ack(m1).await.expect("ack m1");

    // The broker restarts; the proxy keeps its deliveries.
    broker_a.stop().await;
    let mut broker_a = broker(&ns.addr, dir.path(), ports).await;
    let again = receive(&sdk, 1, Duration::from_secs(30)).await;
    assert_eq!(
        again.iter().map(body).collect::<Vec<_>>(),
        ["m0"],
        "m1 was acknowledged"
    );
    assert_eq!(again[0].delivery_attempt(), 2);
    sdk.shutdown().await.unwrap();

    // Both restart, m0 still unacknowledged: the new proxy starts at the
    // committed offset, below m0, and delivers it (m1 too: at least once).
    proxy.stop().await;
    broker_a.stop().await;
    let mut broker_a = broker(&ns.addr, dir.path(), ports).await;
    let mut proxy = ProxyHandle::start(&ns.addr, |_| {}).await;
    let sdk = consumer(&proxy).await;
    let after = receive(&sdk, 1, Duration::from_secs(30)).await;
    assert!(
        after.iter().any(|m| body(m) == "m0"),
        "m0 after the restart"
    );
    for m in &after {
        sdk.ack(m).await.expect("ack");
    }
    // Whatever else is redelivered, acknowledged too.
    let all = FilterExpression::new(FilterType::Tag, "*");
    for _ in 0..2 {
        for m in sdk
            .receive_with(TOPIC, &all, 8, Duration::from_secs(30))
            .await
            .unwrap_or_default()
        {
            sdk.ack(&m).await.expect("ack");
        }
    }
    sdk.shutdown().await.unwrap();

    // Everything acknowledged: after another restart of both, nothing comes.
    proxy.stop().await;
    broker_a.stop().await;
    let mut broker_a = broker(&ns.addr, dir.path(), ports).await;
    let mut proxy = ProxyHandle::start(&ns.addr, |_| {}).await;
    let sdk = consumer(&proxy).await;
    for _ in 0..3 {
        let got = sdk
            .receive_with(TOPIC, &all, 8, Duration::from_secs(30))
            .await
            .unwrap_or_default();
        assert!(
            got.is_empty(),
            "redelivered after every ack: {:?}",
            got.iter().map(body).collect::<Vec<_>>()
        );
    }
    sdk.shutdown().await.unwrap();
    proxy.stop().await;
    broker_a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_count_of_attempts_outlives_a_restart_and_the_dlq_still_comes_after_the_max() {
    const TOPIC: &str = "Attempts5";
    const GROUP: &str = "cg-attempts";
    let (ns, dir, ports, mut broker_a) = started(TOPIC).await;
    let config = ClientConfig::new(ns.addr.clone()).with_instance_name("attempts-4x");
    let admin = AdminClient::start(config.clone()).await.unwrap();
    // Three attempts in all (retryMaxTimes 2 + 1).
    admin
        .create_subscription_group(
            &broker_a.addr,
            &SubscriptionGroupConfig {
                group_name: GROUP.into(),
                retry_max_times: 2,
                ..SubscriptionGroupConfig::default()
            },
        )
        .await
        .unwrap();
    admin.shutdown().await;
    let producer = Producer::start(ProducerConfig::new("pg-attempts"), config)
        .await
        .unwrap();
    let sent = producer
        .send(
            Message::new(TOPIC, "poison")
                .with_tags("Bad")
                .with_keys(["k"]),
        )
        .await
        .unwrap();
    producer.shutdown().await;

    let short = Duration::from_millis(500);
    let mut proxy = ProxyHandle::start(&ns.addr, |_| {}).await;
    let sdk = consumer_of(&proxy, GROUP, TOPIC).await;
    let first = receive_of(&sdk, TOPIC, 1, short).await;
    assert_eq!(first[0].delivery_attempt(), 1);
    let second = receive_of(&sdk, TOPIC, 1, Duration::from_secs(60)).await;
    assert_eq!(second[0].delivery_attempt(), 2);
    // The second delivery comes from the group's retry queue, as the
    // message it was: same id, topic, tag and keys.
    assert_eq!(second[0].message_id(), sent.msg_id);
    assert_eq!(second[0].topic(), TOPIC);
    assert_eq!(second[0].tag(), Some("Bad"));
    assert_eq!(second[0].keys(), ["k".to_owned()]);
    assert_eq!(String::from_utf8_lossy(second[0].body()), "poison");
    sdk.shutdown().await.unwrap();

    // Both restart with the second attempt in flight: it may be repeated,
    // but the count goes on from there instead of starting at 1 again.
    proxy.stop().await;
    broker_a.stop().await;
    let mut broker_a = broker(&ns.addr, dir.path(), ports).await;
    let mut proxy = ProxyHandle::start(&ns.addr, |_| {}).await;
    let sdk = consumer_of(&proxy, GROUP, TOPIC).await;
    let after = receive_of(&sdk, TOPIC, 1, short).await;
    assert_eq!(
        after[0].delivery_attempt(),
        2,
        "the attempt in flight at the restart, counted as before it"
    );
    let last = receive_of(&sdk, TOPIC, 1, short).await;
    assert_eq!(last[0].delivery_attempt(), 3);

    // Three attempts spent: the next receive after the invisible time
    // moves it to %DLQ%cg-attempts, and nothing is delivered any more.
    let dead = dead_letters_without_redelivery(&sdk, TOPIC, short, &broker_a.addr, GROUP).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(&dead[0].body[..], b"poison");
    assert_eq!(dead[0].property("TAGS"), Some("Bad"));
    sdk.shutdown().await.unwrap();
    proxy.stop().await;
    broker_a.stop().await;
}
