//! The Apache Rust 5.x SDK (`rocketmq` 5.0.0) sends through the proxy; our
//! 4.x client reads what the broker stored.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{Env, Mode};
use mq_protocol::message::property;
use mq_testkit::Cluster;
use rocketmq::conf::{ClientOption, ProducerOption, SimpleConsumerOption};
use rocketmq::model::common::{FilterExpression, FilterType};
use rocketmq::model::message::MessageBuilder;
use rocketmq::model::transaction::{Transaction, TransactionResolution};
use rocketmq::{Producer, SimpleConsumer};

fn options(env: &Env, topic: &str) -> (ProducerOption, ClientOption) {
    let mut producer = ProducerOption::default();
    producer.set_topics(vec![topic]);
    let mut client = ClientOption::default();
    client.set_access_url(env.access_url());
    (producer, client)
}

async fn producer(env: &Env, topic: &str) -> Producer {
    let (p, c) = options(env, topic);
    let mut producer = Producer::new(p, c).expect("producer");
    producer.start().await.expect("producer starts");
    producer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_messages_arrive_with_tags_keys_and_properties() {
    let mut env = Env::start().await;
    env.cluster.create_topic("Normal5", 4).await;
    let producer = producer(&env, "Normal5").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let message = MessageBuilder::builder()
            .set_topic("Normal5")
            .set_body(format!("body-{i}").into_bytes())
            .set_tag("TagA")
            .set_keys(vec![format!("key-{i}"), "shared".to_owned()])
            .set_properties(HashMap::from([("color", "red")]))
            .build()
            .unwrap();
        let receipt = producer.send(message).await.expect("send");
        assert!(!receipt.message_id().is_empty());
        ids.push(receipt.message_id().to_owned());
    }
    let got = env.pull_4x("check-normal", "Normal5", 3).await;
    assert_eq!(got.len(), 3);
    for msg in &got {
        let body = String::from_utf8(msg.body.to_vec()).unwrap();
        let i: usize = body.strip_prefix("body-").unwrap().parse().unwrap();
        assert_eq!(msg.property(property::TAGS), Some("TagA"));
        assert_eq!(
            msg.property(property::KEYS),
            Some(format!("key-{i} shared").as_str())
        );
        assert_eq!(msg.property("color"), Some("red"));
        assert_eq!(
            msg.msg_id(),
            ids[i],
            "the 5.x message id is the 4.x UNIQ_KEY"
        );
    }
    producer.shutdown().await.unwrap();
    env.stop().await;
}

/// In the broker's process the proxy hands its sends to the broker
/// directly: the stored message was born at the broker's own address. On
/// its own, the proxy's sends come over a connection from another port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_proxy_sends_without_a_connection_and_a_cluster_proxy_over_one() {
    for mode in [Mode::Local, Mode::Cluster] {
        let mut env = Env::start_on(Cluster::start().await, mode, |_| {}).await;
        env.cluster.create_topic("Born5", 2).await;
        let producer = producer(&env, "Born5").await;
        let message = MessageBuilder::builder()
            .set_topic("Born5")
            .set_body(b"where from".to_vec())
            .build()
            .unwrap();
        producer.send(message).await.expect("send");
        let got = env.pull_4x("check-born", "Born5", 1).await;
        let broker: std::net::SocketAddr = env.cluster.broker_addr.parse().unwrap();
        assert_eq!(
            got[0].born_host == broker,
            mode == Mode::Local,
            "{mode:?}: born at {}, broker at {broker}",
            got[0].born_host
        );
        producer.shutdown().await.unwrap();
        env.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_messages_of_a_group_share_a_queue_in_order() {
    let mut env = Env::start().await;
    env.cluster.create_topic("Fifo5", 4).await;
    let producer = producer(&env, "Fifo5").await;
    for group in ["g-a", "g-b"] {
        for i in 0..5 {
            let message = MessageBuilder::fifo_message_builder(
                "Fifo5",
                format!("{group}:{i}").into_bytes(),
                group,
            )
            .build()
            .unwrap();
            producer.send(message).await.expect("send");
        }
    }
    let got = env.pull_4x("check-fifo", "Fifo5", 10).await;
    for group in ["g-a", "g-b"] {
        let of_group: Vec<_> = got
            .iter()
            .filter(|m| m.property(property::SHARDING_KEY) == Some(group))
            .collect();
        assert_eq!(of_group.len(), 5, "{group}");
        let queue = of_group[0].queue_id;
        assert!(
            of_group.iter().all(|m| m.queue_id == queue),
            "{group} in one queue"
        );
        let mut sorted = of_group.clone();
        sorted.sort_by_key(|m| m.queue_offset);
        let bodies: Vec<String> = sorted
            .iter()
            .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
            .collect();
        let want: Vec<String> = (0..5).map(|i| format!("{group}:{i}")).collect();
        assert_eq!(bodies, want, "{group} in send order");
    }
    producer.shutdown().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_message_is_held_by_the_broker_timer_until_its_time() {
    let mut env = Env::start().await;
    env.cluster.create_topic("Delay5", 2).await;
    let producer = producer(&env, "Delay5").await;
    // The SDK sends whole seconds: 3 to 4 s from now, which is no 4.x
    // delay level (1 s, 5 s, ...).
    let at = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 4) as i64;
    let message = MessageBuilder::delay_message_builder("Delay5", b"later".to_vec(), at)
        .set_tag("Late")
        .build()
        .unwrap();
    let receipt = producer.send(message).await.expect("send");
    let got = env.pull_4x("check-delay", "Delay5", 1).await;
    assert_eq!(&got[0].body[..], b"later");
    assert_eq!(got[0].property(property::TAGS), Some("Late"));
    assert!(
        got[0].store_timestamp >= at * 1000,
        "stored at {} ms, before the requested {} ms",
        got[0].store_timestamp,
        at * 1000
    );
    // Held by the broker's timer (not a delay level): kept in
    // rmq_sys_wheel_timer, then written to the real topic.
    assert_eq!(got[0].property(property::DELAY_TIME_LEVEL), None);
    assert_eq!(got[0].property(property::REAL_TOPIC), Some("Delay5"));
    assert_eq!(
        got[0].property(mq_proxy::convert::TIMER_DELIVER_MS),
        Some((at * 1000).to_string().as_str())
    );
    assert_eq!(got[0].msg_id(), receipt.message_id());

    // A 5.x consumer sees the delivery time it was sent with.
    let mut option = SimpleConsumerOption::default();
    option.set_consumer_group("cg-delay");
    option.set_topics(vec!["Delay5"]);
    let mut client = ClientOption::default();
    client.set_access_url(env.access_url());
    client.set_long_polling_timeout(std::time::Duration::from_secs(2));
    let mut consumer = SimpleConsumer::new(option, client).expect("consumer");
    consumer.start().await.expect("consumer starts");
    let all = FilterExpression::new(FilterType::Tag, "*");
    let view = mq_testkit::wait_for("the delay message through ReceiveMessage", || async {
        consumer
            .receive_with("Delay5", &all, 1, std::time::Duration::from_secs(30))
            .await
            .expect("receive")
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(view.body(), b"later");
    assert_eq!(view.delivery_timestamp(), Some(at));
    assert!(view
        .properties()
        .keys()
        .all(|k| !k.starts_with("TIMER_") && k != "REAL_TOPIC"));
    consumer.shutdown().await.unwrap();
    producer.shutdown().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_of_days_is_accepted_up_to_the_broker_limit() {
    let mut env = Env::start().await;
    env.cluster.create_topic("Days5", 1).await;
    let producer = producer(&env, "Days5").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // 26 h: past the longest 4.x delay level (2 h), within 3 days.
    let tomorrow = MessageBuilder::delay_message_builder("Days5", b"26h".to_vec(), now + 26 * 3600)
        .build()
        .unwrap();
    producer
        .send(tomorrow)
        .await
        .expect("26 h ahead is accepted");
    // 4 days: beyond the broker's timerMaxDelaySec (3 days).
    let too_late = MessageBuilder::delay_message_builder("Days5", b"4d".to_vec(), now + 4 * 86_400)
        .build()
        .unwrap();
    let refused = producer
        .send(too_late)
        .await
        .expect_err("4 days is refused");
    let context = |key: &str| {
        refused
            .context()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(context("code"), "ILLEGAL_DELIVERY_TIME", "{refused}");
    assert!(context("message").contains("timerMaxDelaySec"), "{refused}");
    producer.shutdown().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_roll_back_and_answer_check_backs() {
    let mut env = Env::start().await;
    env.cluster.create_topic("Tx5", 2).await;
    let checks = Arc::new(AtomicUsize::new(0));
    let (p, c) = options(&env, "Tx5");
    let seen = checks.clone();
    let mut producer = Producer::new_transaction_producer(
        p,
        c,
        Box::new(move |_id, message| {
            seen.fetch_add(1, Ordering::SeqCst);
            if message.body() == b"checked-commit" {
                TransactionResolution::COMMIT
            } else {
                TransactionResolution::ROLLBACK
            }
        }),
    )
    .unwrap();
    producer.start().await.unwrap();
    let send = |body: &'static str| {
        let message = MessageBuilder::transaction_message_builder("Tx5", body.as_bytes().to_vec())
            .set_tag("TxTag")
            .set_keys(vec![body])
            .build()
            .unwrap();
        producer.send_transaction_message(message)
    };
    let committed = send("committed").await.expect("half");
    assert!(!committed.transaction_id().is_empty());
    committed.commit().await.expect("commit");
    send("rolled-back")
        .await
        .expect("half")
        .rollback()
        .await
        .expect("rollback");
    // Left open: the broker's check-back reaches the SDK's checker through
    // the telemetry stream, and its EndTransaction commits it.
    let _open = send("checked-commit").await.expect("half");
    let got = env.pull_4x("check-tx", "Tx5", 2).await;
    let mut bodies: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["checked-commit", "committed"]);
    assert!(checks.load(Ordering::SeqCst) >= 1);
    for msg in &got {
        assert_eq!(msg.property(property::TAGS), Some("TxTag"));
    }
    producer.shutdown().await.unwrap();
    env.stop().await;
}
