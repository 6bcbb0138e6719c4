//! The SDK's simple consumer through the proxy: receive, acknowledge,
//! invisible time and redelivery, change of invisible time, the DLQ after
//! the group's max attempts, SQL92 filter expressions; messages sent with
//! our 4.x client.

mod common;

use std::time::Duration;

use common::{code_of, dead_letters_without_redelivery, Env, Mode};
use mq_client::SubscriptionGroupConfig;
use mq_client::{AdminClient, ClientConfig, Message, MessageQueue, Producer, ProducerConfig};
use mq_testkit::{bounded, wait_for, Cluster};
use rocketmq::conf::{ClientOption, SimpleConsumerOption};
use rocketmq::model::common::{FilterExpression, FilterType};
use rocketmq::model::message::MessageView;
use rocketmq::SimpleConsumer;

async fn consumer(env: &Env, group: &str, topic: &str) -> SimpleConsumer {
    let mut option = SimpleConsumerOption::default();
    option.set_consumer_group(group);
    option.set_topics(vec![topic]);
    let mut client = ClientOption::default();
    client.set_access_url(env.access_url());
    client.set_long_polling_timeout(Duration::from_secs(2));
    let mut consumer = SimpleConsumer::new(option, client).expect("consumer");
    consumer.start().await.expect("consumer starts");
    consumer
}

async fn producer_4x(env: &Env) -> Producer {
    let client = ClientConfig::new(env.cluster.namesrv.addr.clone())
        .with_instance_name(format!("send-4x-{}", env.proxy_addr.port()));
    Producer::start(ProducerConfig::new("pg-4x"), client)
        .await
        .expect("4.x producer")
}

/// Receives until a message comes (each receive waits up to the long
/// polling time), with `invisible` as its invisible time.
async fn receive_one(consumer: &SimpleConsumer, topic: &str, invisible: Duration) -> MessageView {
    let all = FilterExpression::new(FilterType::Tag, "*");
    wait_for(&format!("a message of {topic}"), || async {
        consumer
            .receive_with(topic, &all, 1, invisible)
            .await
            .expect("receive")
            .into_iter()
            .next()
    })
    .await
}

async fn committed(env: &Env, group: &str, topic: &str) -> i64 {
    let admin = AdminClient::start(
        ClientConfig::new(env.cluster.namesrv.addr.clone())
            .with_instance_name(format!("offsets-{}", env.proxy_addr.port())),
    )
    .await
    .unwrap();
    let mut sum = 0;
    for q in 0..1 {
        let mq = MessageQueue {
            topic: topic.into(),
            broker_name: env.cluster.broker_name.clone(),
            queue_id: q,
        };
        sum += admin
            .consumer_offset(group, &mq)
            .await
            .unwrap()
            .unwrap_or(0);
    }
    admin.shutdown().await;
    sum
}

/// Creates (or updates) the subscription group `group` on the broker.
async fn create_group(env: &Env, group: SubscriptionGroupConfig) {
    let admin = AdminClient::start(
        ClientConfig::new(env.cluster.namesrv.addr.clone()).with_instance_name(format!(
            "admin-{}-{}",
            group.group_name,
            env.proxy_addr.port()
        )),
    )
    .await
    .unwrap();
    admin
        .create_subscription_group(&env.cluster.broker_addr, &group)
        .await
        .unwrap();
    admin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4x_message_is_received_redelivered_and_acknowledged() {
    let mut env = Env::start().await;
    env.cluster.create_topic("Recv5", 1).await;
    let producer = producer_4x(&env).await;
    let sent = producer
        .send(
            Message::new("Recv5", "from-4x")
                .with_tags("TagA")
                .with_keys(["k1", "k2"])
                .with_property("color", "blue"),
        )
        .await
        .unwrap();
    let consumer = consumer(&env, "cg-recv", "Recv5").await;

    let first = receive_one(&consumer, "Recv5", Duration::from_secs(1)).await;
    assert_eq!(first.body(), b"from-4x");
    assert_eq!(first.tag(), Some("TagA"));
    assert_eq!(first.keys(), ["k1".to_owned(), "k2".to_owned()]);
    assert_eq!(
        first.properties().get("color").map(String::as_str),
        Some("blue")
    );
    assert_eq!(first.message_id(), sent.msg_id);
    assert_eq!(first.delivery_attempt(), 1);

    // Not acknowledged: it comes back once its invisible time passed.
    let again = receive_one(&consumer, "Recv5", Duration::from_secs(30)).await;
    assert_eq!(again.message_id(), sent.msg_id);
    assert_eq!(again.delivery_attempt(), 2);
    // The first delivery's handle is stale now.
    assert!(consumer.ack(&first).await.is_err());
    consumer.ack(&again).await.expect("ack");
    assert_eq!(committed(&env, "cg-recv", "Recv5").await, 1);

    producer.shutdown().await;
    consumer.shutdown().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_groups_max_attempts_a_message_goes_to_the_dlq() {
    let mut env = Env::start().await;
    env.cluster.create_topic("Dlq5", 1).await;
    create_group(
        &env,
        SubscriptionGroupConfig {
            group_name: "cg-dlq".into(),
            retry_max_times: 1,
            ..SubscriptionGroupConfig::default()
        },
    )
    .await;
    let producer = producer_4x(&env).await;
    producer
        .send(Message::new("Dlq5", "poison").with_tags("Bad"))
        .await
        .unwrap();
    let consumer = consumer(&env, "cg-dlq", "Dlq5").await;
    let first = receive_one(&consumer, "Dlq5", Duration::from_millis(500)).await;
    assert_eq!(first.delivery_attempt(), 1);
    let second = receive_one(&consumer, "Dlq5", Duration::from_millis(500)).await;
    assert_eq!(second.delivery_attempt(), 2);
    // Two attempts (retryMaxTimes 1 + 1) spent: a receive after the
    // invisible time moves it to %DLQ%cg-dlq instead of delivering it.
    let dead = dead_letters_without_redelivery(
        &consumer,
        "Dlq5",
        Duration::from_millis(500),
        &env.cluster.broker_addr,
        "cg-dlq",
    )
    .await;
    assert_eq!(dead.len(), 1, "in the DLQ");
    assert_eq!(&dead[0].body[..], b"poison");
    assert_eq!(dead[0].property("TAGS"), Some("Bad"));
    producer.shutdown().await;
    consumer.shutdown().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_consumes_orderly_is_fifo_for_a_client_that_did_not_ask() {
    let mut env = Env::start().await;
    env.cluster.create_topic("Fifo5", 1).await;
    create_group(
        &env,
        SubscriptionGroupConfig {
            group_name: "cg-fifo".into(),
            consume_message_orderly: true,
            ..SubscriptionGroupConfig::default()
        },
    )
    .await;
    let producer = producer_4x(&env).await;
    for i in 0..2 {
        producer
            .send(Message::new("Fifo5", format!("m{i}")))
            .await
            .unwrap();
    }
    // The SDK's simple consumer says fifo: false; the group decides.
    let consumer = consumer(&env, "cg-fifo", "Fifo5").await;
    let first = receive_one(&consumer, "Fifo5", Duration::from_secs(1)).await;
    assert_eq!(first.body(), b"m0");
    // Not acknowledged: the next receive waits for it to come back rather
    // than handing out m1 behind it.
    let again = receive_one(&consumer, "Fifo5", Duration::from_secs(30)).await;
    assert_eq!(again.body(), b"m0", "m1 overtook an unacknowledged m0");
    assert_eq!(again.delivery_attempt(), 2);
    consumer.ack(&again).await.expect("ack");
    let next = receive_one(&consumer, "Fifo5", Duration::from_secs(30)).await;
    assert_eq!(next.body(), b"m1");
    consumer.ack(&next).await.expect("ack");
    producer.shutdown().await;
    consumer.shutdown().await.unwrap();
    env.stop().await;
}

const SQL: &str = "a > 5 AND region IN ('eu','us')";

/// Sends m0..m11 (`a` = i, `region` eu/us/asia in turn), m12 without `a`,
/// then `last`, which matches [`SQL`]: the matches are m6 m7 m9 m10 last.
async fn send_filtered(env: &Env, topic: &str) {
    let producer = producer_4x(env).await;
    for i in 0..13 {
        let mut msg = Message::new(topic, format!("m{i}"))
            .with_property("region", ["eu", "us", "asia"][i % 3]);
        if i < 12 {
            msg = msg.with_property("a", i.to_string());
        }
        producer.send(msg).await.unwrap();
    }
    producer
        .send(
            Message::new(topic, "last")
                .with_property("a", "99")
                .with_property("region", "us"),
        )
        .await
        .unwrap();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_filter_expression_receives_only_the_matching_messages() {
    let cluster = Cluster::start_with(|broker, _| broker.enable_property_filter = true).await;
    let mut env = Env::start_on(cluster, Mode::Local, |_| {}).await;
    env.cluster.create_topic("Sql5", 1).await;
    send_filtered(&env, "Sql5").await;
    let consumer = consumer(&env, "cg-sql", "Sql5").await;
    let filter = FilterExpression::new(FilterType::Sql, SQL);
    let mut got = Vec::new();
    // The queue is read in order: once `last` is in, everything was read.
    bounded("the last matching message", async {
        while !got.iter().any(|b| b == "last") {
            for m in consumer
                .receive_with("Sql5", &filter, 32, Duration::from_secs(30))
                .await
                .expect("receive")
            {
                consumer.ack(&m).await.expect("ack");
                got.push(String::from_utf8_lossy(m.body()).into_owned());
            }
        }
    })
    .await;
    assert_eq!(got, ["m6", "m7", "m9", "m10", "last"]);

    // An expression that does not parse: ILLEGAL_FILTER_EXPRESSION.
    let bad = FilterExpression::new(FilterType::Sql, "a >> 5");
    let error = consumer
        .receive_with("Sql5", &bad, 32, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(code_of(&error), "ILLEGAL_FILTER_EXPRESSION", "{error}");
    assert!(
        error.to_string().contains("invalid SQL92 filter"),
        "{error}"
    );
    consumer.shutdown().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_filter_on_a_broker_without_the_property_filter_is_unsupported() {
    // RocketMQ's default: enablePropertyFilter=false.
    let mut env = Env::start_on(Cluster::start().await, Mode::Cluster, |_| {}).await;
    env.cluster.create_topic("SqlOff5", 1).await;
    send_filtered(&env, "SqlOff5").await;
    let consumer = consumer(&env, "cg-sql-off", "SqlOff5").await;
    let filter = FilterExpression::new(FilterType::Sql, SQL);
    let error = consumer
        .receive_with("SqlOff5", &filter, 32, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(code_of(&error), "UNSUPPORTED", "{error}");
    assert!(
        error.to_string().contains("enablePropertyFilter"),
        "{error}"
    );
    // Tags still are served.
    let all = receive_one(&consumer, "SqlOff5", Duration::from_secs(30)).await;
    assert_eq!(all.body(), b"m0");
    consumer.shutdown().await.unwrap();
    env.stop().await;
}
