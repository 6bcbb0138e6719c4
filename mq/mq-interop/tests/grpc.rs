//! 4.x and 5.x clients we did not write, on one broker: messages sent by the
//! third-party 4.x `rocketmq-client-rust` crate are received by Apache's 5.x
//! Rust SDK (`rocketmq` 5.0.0) through our gRPC endpoint, and the reverse,
//! with tags, keys and user properties intact.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use rocketmq_client_rust::{PullStatus, SendStatus};
use rocketmq_model::common::message::MessageTrait;

use common::{bounded, unique, wait_for, Cluster, Expect};

/// Our gRPC endpoint in this process in front of `cluster`, on a free port.
struct Proxy {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(cluster: &Cluster) -> Proxy {
        let config = mq_proxy::ProxyConfig {
            grpc_server_port: 0,
            namesrv_addr: cluster.namesrv.addr.clone(),
            ..mq_proxy::ProxyConfig::default()
        };
        let proxy = mq_proxy::Proxy::start(config).await.expect("proxy starts");
        let listener = proxy.bind().await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            proxy
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        Proxy { addr, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn client_option(proxy: &Proxy) -> rocketmq::conf::ClientOption {
    let mut client = rocketmq::conf::ClientOption::default();
    client.set_access_url(proxy.addr.to_string());
    client.set_long_polling_timeout(Duration::from_secs(2));
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_the_third_party_4x_client_reaches_the_5x_sdk() {
    let mut cluster = common::start_cluster().await;
    let topic = unique("Cross4to5");
    cluster.create_topic(&topic, 1).await;
    let proxy = Proxy::start(&cluster).await;

    let mut producer = common::producer(&cluster, "cross-4x-producer").await;
    let message = rocketmq_model::common::message::message_single::Message::builder()
        .topic(topic.as_str())
        .tags("TagX")
        .keys(vec!["order-1".to_owned(), "user-7".to_owned()])
        .body_slice(b"from 4.x")
        .raw_property("color", "green")
        .expect("a user property")
        .build_unchecked();
    let sent = bounded(
        "third-party send",
        producer.send_with_timeout(message, 10_000),
    )
    .await
    .or_explain("the 4.x send")
    .expect("a send result");
    assert_eq!(sent.send_status, SendStatus::SendOk, "{sent:?}");
    let uniq_id = sent.msg_id.clone().expect("a msg id").to_string();

    let mut option = rocketmq::conf::SimpleConsumerOption::default();
    option.set_consumer_group(unique("cg-cross-5x"));
    option.set_topics(vec![topic.as_str()]);
    let mut consumer =
        rocketmq::SimpleConsumer::new(option, client_option(&proxy)).expect("a 5.x consumer");
    consumer.start().await.expect("the 5.x consumer starts");
    let tags = rocketmq::model::common::FilterExpression::new(
        rocketmq::model::common::FilterType::Tag,
        "TagX",
    );
    let got = wait_for("the 4.x message at the 5.x consumer", || async {
        consumer
            .receive_with(topic.as_str(), &tags, 1, Duration::from_secs(30))
            .await
            .expect("receive")
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(got.body(), b"from 4.x");
    assert_eq!(got.tag(), Some("TagX"));
    assert_eq!(got.keys(), ["order-1".to_owned(), "user-7".to_owned()]);
    assert_eq!(
        got.properties().get("color").map(String::as_str),
        Some("green")
    );
    assert_eq!(got.message_id(), uniq_id, "the 4.x client's message id");
    consumer.ack(&got).await.expect("ack");

    consumer.shutdown().await.expect("5.x consumer shutdown");
    producer.shutdown().await;
    proxy.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_the_5x_sdk_reaches_the_third_party_4x_client() {
    let mut cluster = common::start_cluster().await;
    let topic = unique("Cross5to4");
    cluster.create_topic(&topic, 1).await;
    let proxy = Proxy::start(&cluster).await;

    let mut option = rocketmq::conf::ProducerOption::default();
    option.set_topics(vec![topic.as_str()]);
    let mut producer =
        rocketmq::Producer::new(option, client_option(&proxy)).expect("a 5.x producer");
    producer.start().await.expect("the 5.x producer starts");
    let message = rocketmq::model::message::MessageBuilder::builder()
        .set_topic(topic.as_str())
        .set_body(b"from 5.x".to_vec())
        .set_tag("TagY")
        .set_keys(vec!["order-2", "user-8"])
        .set_properties(HashMap::from([("color", "blue")]))
        .build()
        .expect("a 5.x message");
    let receipt = producer.send(message).await.expect("the 5.x send");

    let consumer = common::pull_consumer(&cluster, "cross-4x-pull").await;
    let queues = bounded(
        "fetch_subscribe_message_queues",
        consumer.fetch_subscribe_message_queues(&topic),
    )
    .await
    .or_explain("the topic's queues");
    assert_eq!(queues.len(), 1, "{queues:?}");
    let pulled = bounded("third-party pull", consumer.pull(&queues[0], "TagY", 0, 32))
        .await
        .or_explain("the third-party pull");
    assert_eq!(*pulled.pull_status(), PullStatus::Found);
    let found = pulled.msg_found_list().expect("messages found");
    assert_eq!(found.len(), 1, "{found:?}");
    let msg = &found[0];
    assert_eq!(msg.body().as_deref(), Some(&b"from 5.x"[..]));
    assert_eq!(
        msg.get_tags().map(|t| t.to_string()).as_deref(),
        Some("TagY")
    );
    assert_eq!(
        msg.property(&"KEYS".into())
            .map(|k| k.to_string())
            .as_deref(),
        Some("order-2 user-8")
    );
    assert_eq!(
        msg.property(&"color".into())
            .map(|k| k.to_string())
            .as_deref(),
        Some("blue")
    );
    assert_eq!(
        msg.property(&"UNIQ_KEY".into())
            .map(|k| k.to_string())
            .as_deref(),
        Some(receipt.message_id()),
        "the 5.x message id"
    );

    consumer
        .shutdown()
        .await
        .or_explain("pull consumer shutdown");
    producer.shutdown().await.expect("5.x producer shutdown");
    proxy.stop().await;
    cluster.stop().await;
}
