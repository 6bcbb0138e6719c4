//! SQL92 subscriptions (`MessageSelector::by_sql`) of the push and pull
//! consumers against a broker with `enablePropertyFilter` on, and the
//! clear refusals of a broker with it off and of a bad expression.

mod common;

use std::collections::BTreeSet;

use common::*;
use mq_client::{
    AdminClient, ClientError, Message, MessageSelector, Producer, ProducerConfig, PullConsumer,
    PullStatus, PushConsumer, TopicSpec,
};
use mq_protocol::ResponseCode;

const WANT: &str = "a > 5 AND region IN ('eu','us')";

async fn broker(ns: &NameServer, property_filter: bool) -> TestBroker {
    TestBroker::start_temp("broker-a", &ns.addr, |broker, _| {
        broker.enable_property_filter = property_filter;
    })
    .await
}

async fn create_topic(ns: &NameServer, broker: &TestBroker, topic: &str, queues: i32) {
    let admin = AdminClient::start(client_config(&ns.addr)).await.unwrap();
    admin
        .create_topic(
            &broker.addr,
            &TopicSpec::new(topic).with_queues(queues, queues),
        )
        .await
        .unwrap();
    wait_until("the topic's route", LIMIT, || async {
        admin.topic_route(topic).await.is_ok()
    })
    .await;
    admin.shutdown().await;
}

/// Sends m0..m11 (`a` = i, `region` eu/us/asia in turn), m12 without `a`,
/// then `last`, which matches [`WANT`]. The matches: m6 m7 m9 m10 last.
async fn send_messages(ns: &NameServer, topic: &str) -> BTreeSet<String> {
    let producer = Producer::start(ProducerConfig::new("pg-sql"), client_config(&ns.addr))
        .await
        .unwrap();
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
    ["m6", "m7", "m9", "m10", "last"]
        .into_iter()
        .map(str::to_owned)
        .collect()
}

fn remote_code(error: &ClientError) -> Option<ResponseCode> {
    error.response_code().and_then(ResponseCode::from_i32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_pull_consumers_get_exactly_the_matching_messages() {
    let ns = NameServer::start().await;
    let mut broker = broker(&ns, true).await;
    create_topic(&ns, &broker, "SqlTopic", 2).await;
    let want = send_messages(&ns, "SqlTopic").await;

    let seen: Seen = Default::default();
    let sink = seen.clone();
    let consumer = PushConsumer::new(push_config("cg-sql"), client_config(&ns.addr));
    consumer
        .subscribe("SqlTopic", MessageSelector::by_sql(WANT))
        .unwrap();
    consumer
        .start(mq_client::Listener::concurrent(
            move |msgs: Vec<mq_client::MessageExt>| {
                let sink = sink.clone();
                async move {
                    for m in msgs {
                        sink.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&m.body).into_owned());
                    }
                    mq_client::ConsumeStatus::Success
                }
            },
        ))
        .await
        .unwrap();
    // Each queue is read in order and `last` came after everything else
    // on its queue; once all five are in, both queues were read through.
    wait_until("the five matching messages", LIMIT, || async {
        seen.lock().unwrap().len() >= want.len()
    })
    .await;
    consumer.shutdown().await;
    let got: Vec<String> = seen.lock().unwrap().clone();
    assert_eq!(got.len(), want.len(), "{got:?}");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);

    // The pull consumer, queue by queue.
    let pull = PullConsumer::start("pull-sql", client_config(&ns.addr))
        .await
        .unwrap();
    let mut got = BTreeSet::new();
    let mut looked = 0;
    for mq in pull.fetch_queues("SqlTopic").await.unwrap() {
        let max = pull.max_offset(&mq).await.unwrap();
        let result = pull
            .pull(&mq, MessageSelector::by_sql(WANT), 0, 32)
            .await
            .unwrap();
        assert!(
            matches!(result.status, PullStatus::Found | PullStatus::NoMatchedMsg),
            "{:?}",
            result.status
        );
        // Past every message of the queue, matching or not.
        assert_eq!(result.next_begin_offset, max);
        looked += max;
        got.extend(
            result
                .messages
                .iter()
                .map(|m| String::from_utf8_lossy(&m.body).into_owned()),
        );
    }
    assert_eq!(looked, 14);
    assert_eq!(got, want);
    // A tag expression still reads as one.
    let mq = pull.fetch_queues("SqlTopic").await.unwrap().remove(0);
    let all = pull.pull(&mq, "*", 0, 32).await.unwrap();
    assert_eq!(all.messages.len() as i64, all.next_begin_offset);
    pull.shutdown().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_without_the_property_filter_refuses_sql92_clearly() {
    let ns = NameServer::start().await;
    let mut broker = broker(&ns, false).await;
    create_topic(&ns, &broker, "SqlOff", 1).await;
    send_messages(&ns, "SqlOff").await;

    // The push consumer does not start: the broker said no at
    // CHECK_CLIENT_CONFIG.
    let consumer = PushConsumer::new(push_config("cg-off"), client_config(&ns.addr));
    consumer
        .subscribe("SqlOff", MessageSelector::by_sql(WANT))
        .unwrap();
    let error = consumer
        .start(mq_client::Listener::concurrent(|_| async {
            mq_client::ConsumeStatus::Success
        }))
        .await
        .unwrap_err();
    assert_eq!(remote_code(&error), Some(ResponseCode::SYSTEM_ERROR));
    assert!(
        error
            .to_string()
            .contains("The broker does not support consumer to filter message by SQL92"),
        "{error}"
    );
    assert!(consumer.assigned_queues().is_empty());

    // A pull says the same.
    let pull = PullConsumer::start("pull-off", client_config(&ns.addr))
        .await
        .unwrap();
    let mq = pull.fetch_queues("SqlOff").await.unwrap().remove(0);
    let error = pull
        .pull(&mq, MessageSelector::by_sql(WANT), 0, 32)
        .await
        .unwrap_err();
    assert_eq!(remote_code(&error), Some(ResponseCode::SYSTEM_ERROR));
    // Tags are served.
    let all = pull.pull(&mq, "*", 0, 32).await.unwrap();
    assert_eq!(all.messages.len(), 14);
    pull.shutdown().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_expression_stops_the_start_with_the_reason() {
    let ns = NameServer::start().await;
    let mut broker = broker(&ns, true).await;
    create_topic(&ns, &broker, "SqlBad", 1).await;

    let consumer = PushConsumer::new(push_config("cg-bad"), client_config(&ns.addr));
    consumer
        .subscribe("SqlBad", MessageSelector::by_sql("a >> 5"))
        .unwrap();
    let error = consumer
        .start(mq_client::Listener::concurrent(|_| async {
            mq_client::ConsumeStatus::Success
        }))
        .await
        .unwrap_err();
    assert_eq!(
        remote_code(&error),
        Some(ResponseCode::SUBSCRIPTION_PARSE_FAILED)
    );
    assert!(
        error
            .to_string()
            .contains("invalid SQL92 filter at character 4"),
        "{error}"
    );
    // An empty SQL92 expression never leaves the client.
    assert!(matches!(
        consumer.subscribe("SqlBad", MessageSelector::by_sql(" ")),
        Err(ClientError::InvalidArgument(_))
    ));

    let pull = PullConsumer::start("pull-bad", client_config(&ns.addr))
        .await
        .unwrap();
    let mq = pull.fetch_queues("SqlBad").await.unwrap().remove(0);
    let error = pull
        .pull(&mq, MessageSelector::by_sql("a >> 5"), 0, 32)
        .await
        .unwrap_err();
    assert_eq!(
        remote_code(&error),
        Some(ResponseCode::SUBSCRIPTION_PARSE_FAILED)
    );
    pull.shutdown().await;
    broker.stop().await;
}
