//! SQL92 filters with a client we did not write: the third-party
//! `rocketmq-client-rust` push consumer subscribes with
//! `MessageSelector::by_sql` (it asks CHECK_CLIENT_CONFIG at start and
//! registers the SQL92 subscription in its heartbeats, as RocketMQ's Java
//! client does) against a broker with `enablePropertyFilter` on, and one
//! with it off.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rocketmq_client_rust::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, DefaultMQPushConsumer, MQPushConsumer,
    MessageSelector,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;

use common::{bounded, unique, wait_caught_up, wait_for, Cluster, Expect};
use mq_testkit::frames;

const SQL: &str = "a > 5 AND region IN ('eu','us')";

async fn cluster(property_filter: bool) -> Cluster {
    Cluster::start_with(|broker, _| {
        broker.broker_name = unique("interop-broker");
        broker.enable_property_filter = property_filter;
    })
    .await
}

/// A third-party push consumer of `group` on `topic` with the SQL92
/// filter `sql`, not started; its listener's bodies go to the inbox.
async fn sql_consumer(
    cluster: &Cluster,
    group: &str,
    topic: &str,
    sql: &str,
    instance: &'static str,
) -> (DefaultMQPushConsumer, Arc<Mutex<Vec<String>>>) {
    let inbox: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut consumer = DefaultMQPushConsumer::builder(common::client_runtime(instance))
        .client_config(common::client_config(&cluster.namesrv.addr, instance))
        .name_server_addr(cluster.namesrv.addr.clone())
        .consumer_group(group.to_owned())
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .build();
    consumer
        .subscribe_with_selector(topic, Some(MessageSelector::by_sql(sql.to_owned())))
        .await
        .or_explain("subscribe");
    let sink = Arc::clone(&inbox);
    consumer.register_message_listener_concurrently(
        move |msgs: &[&MessageExt], _context: &ConsumeConcurrentlyContext| {
            let mut sink = sink.lock().unwrap();
            for msg in msgs {
                sink.push(
                    String::from_utf8_lossy(msg.body().as_deref().unwrap_or_default()).into_owned(),
                );
            }
            Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
        },
    );
    (consumer, inbox)
}

/// Sends m0..m11 with our own frames (`a` = i, `region` eu/us/asia in
/// turn, queue i % 2) and m12 without `a`; returns what [`SQL`] matches:
/// m6 m7 m9 m10.
async fn send_messages(cluster: &Cluster, topic: &str) -> BTreeSet<String> {
    let raw = frames::client();
    for i in 0..13 {
        let mut msg = frames::message(topic, i % 2, "", "", format!("m{i}").as_bytes());
        if i < 12 {
            msg = frames::with_property(msg, "a", &i.to_string());
        }
        msg = frames::with_property(msg, "region", ["eu", "us", "asia"][i as usize % 3]);
        frames::send(&raw, &cluster.broker_addr, msg).await;
    }
    ["m6", "m7", "m9", "m10"]
        .into_iter()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_sql92_push_consumer_gets_exactly_the_matching_messages() {
    let mut cluster = cluster(true).await;
    let topic = unique("InteropSql");
    cluster.create_topic(&topic, 2).await;
    let group = unique("interop-sql");
    let expected = send_messages(&cluster, &topic).await;
    let (mut consumer, inbox) = sql_consumer(&cluster, &group, &topic, SQL, "sql-consumer").await;
    bounded("third-party push consumer start", consumer.start())
        .await
        .or_explain("third-party push consumer starts");

    wait_for(
        "the push consumer to receive every matching message",
        || {
            let got: BTreeSet<String> = inbox.lock().unwrap().iter().cloned().collect();
            let done = expected.is_subset(&got);
            async move { done.then_some(()) }
        },
    )
    .await;
    // Every queue's committed offset at its max: every message was looked
    // at, and nothing is still in flight.
    let raw = frames::client();
    wait_caught_up(&raw, &cluster.broker_addr, &group, &topic, 2).await;
    let got = inbox.lock().unwrap().clone();
    assert_eq!(got.len(), expected.len(), "{got:?}");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected);

    consumer.shutdown().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_property_filter_the_third_party_sql92_consumer_does_not_start() {
    let mut cluster = cluster(false).await;
    let topic = unique("InteropSqlOff");
    cluster.create_topic(&topic, 1).await;
    let group = unique("interop-sql-off");
    let (mut consumer, _inbox) =
        sql_consumer(&cluster, &group, &topic, SQL, "sql-off-consumer").await;
    let started = bounded("third-party push consumer start", consumer.start()).await;
    let error = started.expect_err("the broker refuses SQL92 at CHECK_CLIENT_CONFIG");
    let explained = common::explain(&error);
    assert!(
        explained.contains("does not support consumer to filter message by SQL92"),
        "{explained}"
    );
    consumer.shutdown().await;
    cluster.stop().await;
}
