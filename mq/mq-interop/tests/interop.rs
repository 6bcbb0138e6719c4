//! Compatibility with a RocketMQ client we did not write: the third-party
//! `rocketmq-client-rust` crate (crates.io) against our name server and broker,
//! both in-process on port 0. Every step goes through the third-party client's
//! own route lookup, heartbeats, rebalance, pull and offset commits; our raw
//! frames are used only to observe the broker (offsets) and to mix in messages
//! from our own producer.

mod common;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocketmq_client_rust::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeOrderlyContext,
    ConsumeOrderlyStatus, DefaultMQPushConsumer, LocalTransactionState, MQPushConsumer, PullStatus,
    SendStatus, TransactionListener, TransactionMQProducer,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_client_id_setter::MessageClientIDSetter;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::MessageTrait;
use rocketmq_model::message::MessageQueue;

use common::{bounded, message, unique, wait_caught_up, wait_for, Cluster, Expect};
use mq_testkit::frames;

/// One message as the third-party push consumer's listener saw it.
#[derive(Clone, Debug)]
struct Received {
    topic: String,
    body: String,
    tags: String,
    msg_id: String,
    queue_id: i32,
    queue_offset: i64,
    reconsume_times: i32,
}

impl Received {
    fn of(msg: &MessageExt) -> Received {
        Received {
            topic: msg.topic().to_string(),
            body: String::from_utf8_lossy(msg.body().as_deref().unwrap_or_default()).into_owned(),
            tags: msg.get_tags().map(|t| t.to_string()).unwrap_or_default(),
            msg_id: MessageClientIDSetter::get_uniq_id(msg)
                .map(|id| id.to_string())
                .unwrap_or_default(),
            queue_id: msg.queue_id(),
            queue_offset: msg.queue_offset(),
            reconsume_times: msg.reconsume_times(),
        }
    }
}

type Inbox = Arc<Mutex<Vec<Received>>>;

fn bodies(inbox: &Inbox) -> Vec<String> {
    inbox
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.body.clone())
        .collect()
}

/// How a test's push consumer answers.
enum Listener {
    /// Concurrent, always CONSUME_SUCCESS.
    Concurrent,
    /// Concurrent, RECONSUME_LATER on a message's first delivery.
    ConcurrentRetryOnce,
    /// Orderly (the client locks its queues with LOCK_BATCH_MQ), always SUCCESS.
    Orderly,
}

/// Starts a third-party clustering push consumer of `group` on `topic` with
/// the tag expression `expr`; everything its listener sees goes to the inbox.
async fn push_consumer(
    cluster: &Cluster,
    group: &str,
    topic: &str,
    expr: &str,
    instance: &'static str,
) -> (DefaultMQPushConsumer, Inbox) {
    push_consumer_with(cluster, group, topic, expr, instance, Listener::Concurrent).await
}

async fn push_consumer_with(
    cluster: &Cluster,
    group: &str,
    topic: &str,
    expr: &str,
    instance: &'static str,
    listener: Listener,
) -> (DefaultMQPushConsumer, Inbox) {
    let inbox: Inbox = Arc::default();
    let mut consumer = DefaultMQPushConsumer::builder(common::client_runtime(instance))
        .client_config(common::client_config(&cluster.namesrv.addr, instance))
        .name_server_addr(cluster.namesrv.addr.clone())
        .consumer_group(group.to_owned())
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .consume_message_batch_max_size(1)
        .build();
    consumer
        .subscribe(topic.to_owned(), expr.to_owned())
        .await
        .or_explain("subscribe");
    let sink = Arc::clone(&inbox);
    match listener {
        Listener::Concurrent | Listener::ConcurrentRetryOnce => {
            let retry_once = matches!(listener, Listener::ConcurrentRetryOnce);
            consumer.register_message_listener_concurrently(
                move |msgs: &[&MessageExt], _context: &ConsumeConcurrentlyContext| {
                    let mut sink = sink.lock().unwrap();
                    let mut status = ConsumeConcurrentlyStatus::ConsumeSuccess;
                    for msg in msgs {
                        if retry_once && msg.reconsume_times() == 0 {
                            status = ConsumeConcurrentlyStatus::ReconsumeLater;
                        }
                        sink.push(Received::of(msg));
                    }
                    Ok(status)
                },
            );
        }
        Listener::Orderly => {
            consumer.register_message_listener_orderly(
                move |msgs: &[&MessageExt], _context: &mut ConsumeOrderlyContext| {
                    let mut sink = sink.lock().unwrap();
                    sink.extend(msgs.iter().map(|msg| Received::of(msg)));
                    Ok(ConsumeOrderlyStatus::Success)
                },
            );
        }
    }
    bounded("third-party push consumer start", consumer.start())
        .await
        .or_explain("third-party push consumer starts");
    (consumer, inbox)
}

/// Test 1: a synchronous send through the third-party producer (route lookup
/// through our name server, the topic auto-created on the broker from TBW102)
/// gets SEND_OK and a message id; the third-party pull consumer then finds the
/// message at the returned queue and offset, with the same id, tag and body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_send_auto_creates_the_topic_and_the_message_is_pulled() {
    let mut cluster = common::start_cluster().await;
    let topic = unique("InteropSync");
    let mut producer = common::producer(&cluster, "sync-producer").await;

    let result = bounded(
        "third-party sync send",
        producer.send_with_timeout(message(&topic, "TagSync", "hello from a stranger"), 10_000),
    )
    .await
    .or_explain("the third-party producer's sync send succeeds")
    .expect("a sync send returns a SendResult");
    assert_eq!(result.send_status, SendStatus::SendOk, "{result:?}");
    let msg_id = result.msg_id.clone().expect("a msg id").to_string();
    assert!(!msg_id.is_empty(), "{result:?}");
    let queue = result.message_queue.clone().expect("the queue it went to");
    assert_eq!(queue.topic().as_str(), topic);

    let consumer = common::pull_consumer(&cluster, "sync-pull").await;

    let queues = bounded(
        "fetch_subscribe_message_queues",
        consumer.fetch_subscribe_message_queues(&topic),
    )
    .await
    .or_explain("the pull consumer gets the topic's queues from our name server");
    assert!(queues.contains(&queue), "{queue:?} not in {queues:?}");
    // Auto-created with the producer's defaultTopicQueueNums (4).
    assert_eq!(queues.len(), 4, "{queues:?}");

    let offset = i64::try_from(result.queue_offset).expect("offset fits i64");
    let pulled = bounded(
        "third-party pull",
        consumer.pull(&queue, "TagSync", offset, 32),
    )
    .await
    .or_explain("the third-party pull succeeds");
    assert_eq!(*pulled.pull_status(), PullStatus::Found);
    let found = pulled.msg_found_list().expect("messages found");
    assert_eq!(found.len(), 1, "{found:?}");
    let msg = &found[0];
    assert_eq!(msg.body().as_deref(), Some(&b"hello from a stranger"[..]));
    assert_eq!(
        msg.get_tags().map(|t| t.to_string()).as_deref(),
        Some("TagSync")
    );
    // The client-side id the send returned is the message's UNIQ_KEY; the
    // pulled message's own id is the broker's offset id (store host and
    // commit log offset), which the send result also carried.
    assert_eq!(
        MessageClientIDSetter::get_uniq_id(msg).map(|id| id.to_string()),
        Some(msg_id),
        "UNIQ_KEY of the pulled message"
    );
    assert_eq!(
        Some(msg.msg_id().to_string()),
        result.offset_msg_id.clone(),
        "offset msg id of the pulled message"
    );
    assert_eq!(pulled.next_begin_offset(), result.queue_offset + 1);

    // (This client's classic pull consumer keeps offsets in memory only, it
    // never sends them to a broker; the push consumer tests below check
    // offset commits.)
    consumer
        .shutdown()
        .await
        .or_explain("pull consumer shutdown");
    producer.shutdown().await;
    cluster.stop().await;
}

/// Test 2: a clustering push consumer with `TagA || TagC` receives exactly the
/// matching messages, sent both by the third-party producer and by our own
/// SEND_MESSAGE_V2 frames, and none of the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_consumer_with_a_tag_filter_gets_exactly_the_matching_messages() {
    let mut cluster = common::start_cluster().await;
    let topic = unique("InteropTags");
    cluster.create_topic(&topic, 4).await;
    let group = unique("interop-tags");
    let (mut consumer, inbox) =
        push_consumer(&cluster, &group, &topic, "TagA || TagC", "tags-consumer").await;
    let mut producer = common::producer(&cluster, "tags-producer").await;
    let raw = frames::client();

    let mut expected = BTreeSet::new();
    for i in 0..12 {
        let tag = ["TagA", "TagB", "TagC"][i % 3];
        let body = format!("third-party-{tag}-{i}");
        let result = bounded(
            "third-party send",
            producer.send_with_timeout(message(&topic, tag, &body), 10_000),
        )
        .await
        .or_explain("send")
        .expect("send result");
        assert_eq!(result.send_status, SendStatus::SendOk);
        if tag != "TagB" {
            expected.insert(body);
        }
    }
    for (i, tag) in ["TagA", "TagB", "TagC", "TagD"].iter().enumerate() {
        let body = format!("raw-{tag}-{i}");
        common::raw_send(&raw, &cluster.broker_addr, &topic, tag, &body).await;
        if *tag == "TagA" || *tag == "TagC" {
            expected.insert(body);
        }
    }

    wait_for(
        "the push consumer to receive every matching message",
        || {
            let got: BTreeSet<String> = bodies(&inbox).into_iter().collect();
            let done = expected.is_subset(&got);
            async move { done.then_some(()) }
        },
    )
    .await;
    // Every queue's committed offset at its max: nothing is still in flight.
    wait_caught_up(&raw, &cluster.broker_addr, &group, &topic, 4).await;

    let received = inbox.lock().unwrap().clone();
    let got: BTreeSet<String> = received.iter().map(|r| r.body.clone()).collect();
    assert_eq!(got, expected, "exactly the TagA/TagC messages");
    for r in &received {
        assert!(r.tags == "TagA" || r.tags == "TagC", "{r:?}");
        assert!(!r.msg_id.is_empty(), "{r:?}");
    }

    consumer.shutdown().await;
    producer.shutdown().await;
    cluster.stop().await;
}

/// Test 3: two third-party consumers of one clustering group share the
/// topic's queues (each gets some of the messages once the broker told them
/// about each other) and together consume every message at least once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_of_one_group_share_the_queues() {
    let mut cluster = common::start_cluster().await;
    let topic = unique("InteropCluster");
    cluster.create_topic(&topic, 4).await;
    let group = unique("interop-cluster");
    let (mut first, first_inbox) =
        push_consumer(&cluster, &group, &topic, "*", "cluster-consumer-1").await;
    let (mut second, second_inbox) =
        push_consumer(&cluster, &group, &topic, "*", "cluster-consumer-2").await;
    let mut producer = common::producer(&cluster, "cluster-producer").await;
    let raw = frames::client();

    // Send in rounds (the producer spreads them over the four queues) until
    // both consumers have received something: the rebalance after the second
    // one joined has then given each its share. Bounded by WAIT.
    let mut sent = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        for _ in 0..8 {
            let body = format!("cluster-{}", sent.len());
            let result = bounded(
                "third-party send",
                producer.send_with_timeout(message(&topic, "TagX", &body), 10_000),
            )
            .await
            .or_explain("send")
            .expect("send result");
            assert_eq!(result.send_status, SendStatus::SendOk);
            sent.insert(body);
        }
        let (a, b) = (bodies(&first_inbox), bodies(&second_inbox));
        if !a.is_empty() && !b.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after {} messages one consumer still got nothing ({} vs {}): \
             the queues were not shared",
            sent.len(),
            a.len(),
            b.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    wait_for("every message to be consumed by one of the two", || {
        let mut got: BTreeSet<String> = bodies(&first_inbox).into_iter().collect();
        got.extend(bodies(&second_inbox));
        let done = sent.is_subset(&got);
        async move { done.then_some(()) }
    })
    .await;
    wait_caught_up(&raw, &cluster.broker_addr, &group, &topic, 4).await;

    let (a, b) = (bodies(&first_inbox), bodies(&second_inbox));
    assert!(!a.is_empty() && !b.is_empty(), "both consumed: {a:?} {b:?}");
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for body in a.iter().chain(b.iter()) {
        *counts.entry(body.clone()).or_default() += 1;
    }
    let got: BTreeSet<String> = counts.keys().cloned().collect();
    assert_eq!(got, sent, "every message at least once, nothing else");

    first.shutdown().await;
    second.shutdown().await;
    producer.shutdown().await;
    cluster.stop().await;
}

/// The local transaction outcome and check-back answer are named by the tag:
/// `commit`, `rollback`, `unknown-then-commit`, `unknown-then-rollback`.
#[derive(Default)]
struct TagDecides {
    checks: Mutex<HashMap<String, usize>>,
}

impl TransactionListener for TagDecides {
    fn execute_local_transaction(
        &self,
        msg: &dyn MessageTrait,
        _arg: Option<&(dyn Any + Send + Sync)>,
    ) -> LocalTransactionState {
        match msg.tags().as_deref() {
            Some("commit") => LocalTransactionState::CommitMessage,
            Some("rollback") => LocalTransactionState::RollbackMessage,
            _ => LocalTransactionState::Unknown,
        }
    }

    fn check_local_transaction(&self, msg: &MessageExt) -> LocalTransactionState {
        let tag = msg.get_tags().map(|t| t.to_string()).unwrap_or_default();
        *self.checks.lock().unwrap().entry(tag.clone()).or_default() += 1;
        match tag.as_str() {
            "commit" | "unknown-then-commit" => LocalTransactionState::CommitMessage,
            "rollback" | "unknown-then-rollback" => LocalTransactionState::RollbackMessage,
            _ => LocalTransactionState::Unknown,
        }
    }
}

/// Test 4: the third-party transactional producer commits (the consumer sees
/// the message once) and rolls back (never seen); an UNKNOWN local outcome is
/// resolved by our broker's CHECK_TRANSACTION_STATE call-back to the
/// producer's listener, both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_producer_commit_rollback_and_check_back() {
    let mut cluster = common::start_cluster().await;
    let topic = unique("InteropTx");
    cluster.create_topic(&topic, 4).await;
    let group = unique("interop-tx-consumer");
    let (mut consumer, inbox) = push_consumer(&cluster, &group, &topic, "*", "tx-consumer").await;

    let listener = Arc::new(TagDecides::default());
    let mut producer = TransactionMQProducer::builder(common::client_runtime("tx-producer"))
        .client_config(common::client_config(&cluster.namesrv.addr, "tx-producer"))
        .producer_group(unique("interop-tx-producer"))
        .name_server_addr(cluster.namesrv.addr.clone())
        .send_msg_timeout(10_000)
        .transaction_listener(SharedListener(Arc::clone(&listener)))
        .build();
    bounded("third-party transactional producer start", producer.start())
        .await
        .or_explain("third-party transactional producer starts");

    let cases = [
        ("commit", LocalTransactionState::CommitMessage),
        ("rollback", LocalTransactionState::RollbackMessage),
        ("unknown-then-commit", LocalTransactionState::Unknown),
        ("unknown-then-rollback", LocalTransactionState::Unknown),
    ];
    for (tag, outcome) in cases {
        let result = bounded(
            "send_message_in_transaction",
            producer.send_message_in_transaction::<(), _>(message(&topic, tag, tag), None),
        )
        .await
        .or_explain("the half message is stored");
        assert_eq!(result.local_transaction_state, Some(outcome), "{tag}");
        let send = result.send_result.expect("a send result");
        assert_eq!(send.send_status, SendStatus::SendOk, "{tag}");
        assert!(send.msg_id.is_some_and(|id| !id.is_empty()), "{tag}");
    }

    // The committed one at once, the unknown-then-commit one after our broker
    // asked the producer (transactionTimeOut 300 ms, check every 200 ms).
    wait_for(
        "the committed and the check-back committed messages",
        || {
            let got = bodies(&inbox);
            let done =
                got.iter().any(|b| b == "commit") && got.iter().any(|b| b == "unknown-then-commit");
            async move { done.then_some(()) }
        },
    )
    .await;
    // The check-back rollback must also have been asked and answered.
    wait_for(
        "our broker to check the unknown-then-rollback message",
        || {
            let asked = listener
                .checks
                .lock()
                .unwrap()
                .get("unknown-then-rollback")
                .copied()
                .unwrap_or(0);
            async move { (asked > 0).then_some(()) }
        },
    )
    .await;
    let raw = frames::client();
    wait_caught_up(&raw, &cluster.broker_addr, &group, &topic, 4).await;

    let mut got = bodies(&inbox);
    got.sort();
    assert_eq!(
        got,
        vec!["commit".to_owned(), "unknown-then-commit".to_owned()],
        "committed ones once each, rolled back ones never"
    );
    // Exactly two messages reached the real topic: the rollbacks wrote nothing.
    let mut total = 0;
    for queue in 0..4 {
        total += frames::max_offset(&raw, &cluster.broker_addr, &topic, queue).await;
    }
    assert_eq!(total, 2, "messages in the real topic");
    assert!(
        listener
            .checks
            .lock()
            .unwrap()
            .get("unknown-then-commit")
            .is_some_and(|n| *n > 0),
        "the commit after UNKNOWN came from a check-back"
    );

    producer.shutdown().await;
    consumer.shutdown().await;
    cluster.stop().await;
}

/// The builder takes the listener by value; the test keeps a handle to read
/// the check counts.
struct SharedListener(Arc<TagDecides>);

impl TransactionListener for SharedListener {
    fn execute_local_transaction(
        &self,
        msg: &dyn MessageTrait,
        arg: Option<&(dyn Any + Send + Sync)>,
    ) -> LocalTransactionState {
        self.0.execute_local_transaction(msg, arg)
    }

    fn check_local_transaction(&self, msg: &MessageExt) -> LocalTransactionState {
        self.0.check_local_transaction(msg)
    }
}

/// Batch (SEND_BATCH_MESSAGE) and oneway sends of the third-party producer
/// are stored as separate messages that its push consumer receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_and_oneway_sends_are_consumed() {
    let mut cluster = common::start_cluster().await;
    let topic = unique("InteropBatch");
    cluster.create_topic(&topic, 4).await;
    let group = unique("interop-batch");
    let (mut consumer, inbox) =
        push_consumer(&cluster, &group, &topic, "*", "batch-consumer").await;
    let mut producer = common::producer(&cluster, "batch-producer").await;

    let batch: Vec<_> = (0..3)
        .map(|i| message(&topic, "TagBatch", &format!("batch-{i}")))
        .collect();
    let result = bounded("third-party batch send", producer.send_batch(batch))
        .await
        .or_explain("the batch is stored");
    assert_eq!(result.send_status, SendStatus::SendOk, "{result:?}");
    let ids = result.msg_id.clone().expect("batch msg ids").to_string();
    assert_eq!(ids.split(',').count(), 3, "one id per message: {ids}");
    bounded(
        "third-party oneway send",
        producer.send_oneway(message(&topic, "TagOneway", "oneway")),
    )
    .await
    .or_explain("oneway send");

    let expected: BTreeSet<String> = ["batch-0", "batch-1", "batch-2", "oneway"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    wait_for("the batch and the oneway message", || {
        let got: BTreeSet<String> = bodies(&inbox).into_iter().collect();
        let done = expected.is_subset(&got);
        async move { done.then_some(()) }
    })
    .await;
    let raw = frames::client();
    wait_caught_up(&raw, &cluster.broker_addr, &group, &topic, 4).await;
    let received = inbox.lock().unwrap().clone();
    assert_eq!(received.len(), 4, "{received:?}");
    let batch_ids: BTreeSet<&str> = ids.split(',').collect();
    for r in received.iter().filter(|r| r.tags == "TagBatch") {
        assert!(batch_ids.contains(r.msg_id.as_str()), "{r:?} not in {ids}");
    }

    consumer.shutdown().await;
    producer.shutdown().await;
    cluster.stop().await;
}

/// RECONSUME_LATER from the third-party consumer sends the message back
/// (CONSUMER_SEND_MSG_BACK); our broker redelivers it through
/// `%RETRY%<group>` after the delay level, with the original topic restored
/// and reconsumeTimes 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconsume_later_redelivers_through_the_retry_topic() {
    let mut cluster = common::start_cluster().await;
    let topic = unique("InteropRetry");
    cluster.create_topic(&topic, 4).await;
    let group = unique("interop-retry");
    let (mut consumer, inbox) = push_consumer_with(
        &cluster,
        &group,
        &topic,
        "*",
        "retry-consumer",
        Listener::ConcurrentRetryOnce,
    )
    .await;
    let mut producer = common::producer(&cluster, "retry-producer").await;
    for i in 0..2 {
        let result = bounded(
            "third-party send",
            producer.send_with_timeout(message(&topic, "TagRetry", &format!("retry-{i}")), 10_000),
        )
        .await
        .or_explain("send")
        .expect("send result");
        assert_eq!(result.send_status, SendStatus::SendOk);
    }

    wait_for("each message a second time with reconsumeTimes 1", || {
        let got = inbox.lock().unwrap().clone();
        let done = ["retry-0", "retry-1"].iter().all(|body| {
            got.iter()
                .any(|r| r.body == *body && r.reconsume_times == 1)
        });
        async move { done.then_some(()) }
    })
    .await;
    let got = inbox.lock().unwrap().clone();
    for body in ["retry-0", "retry-1"] {
        let deliveries: Vec<_> = got.iter().filter(|r| r.body == body).collect();
        assert_eq!(deliveries[0].reconsume_times, 0, "{deliveries:?}");
        let retried = deliveries
            .iter()
            .find(|r| r.reconsume_times == 1)
            .expect("the retry");
        assert_eq!(retried.topic, topic, "original topic restored: {retried:?}");
        assert_eq!(retried.tags, "TagRetry", "{retried:?}");
        assert_eq!(retried.msg_id, deliveries[0].msg_id, "same UNIQ_KEY");
    }

    consumer.shutdown().await;
    producer.shutdown().await;
    cluster.stop().await;
}

/// The orderly push consumer (which must first lock its queues with
/// LOCK_BATCH_MQ) receives the messages of one queue in send order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orderly_consumer_gets_one_queue_in_order() {
    let mut cluster = common::start_cluster().await;
    let topic = unique("InteropOrder");
    cluster.create_topic(&topic, 4).await;
    let group = unique("interop-order");
    let (mut consumer, inbox) = push_consumer_with(
        &cluster,
        &group,
        &topic,
        "*",
        "order-consumer",
        Listener::Orderly,
    )
    .await;
    let mut producer = common::producer(&cluster, "order-producer").await;
    let queue = MessageQueue::from_parts(topic.clone(), cluster.broker_name.clone(), 2);
    let sent: Vec<String> = (0..10).map(|i| format!("order-{i}")).collect();
    for body in &sent {
        let result = bounded(
            "third-party send to one queue",
            producer.send_to_queue(message(&topic, "TagOrder", body), queue.clone()),
        )
        .await
        .or_explain("send to queue")
        .expect("send result");
        assert_eq!(result.send_status, SendStatus::SendOk);
        assert_eq!(result.message_queue.as_ref(), Some(&queue));
    }

    wait_for("all ten messages of the queue", || {
        let done = inbox.lock().unwrap().len() >= sent.len();
        async move { done.then_some(()) }
    })
    .await;
    let got = inbox.lock().unwrap().clone();
    assert_eq!(
        got.iter().map(|r| r.body.clone()).collect::<Vec<_>>(),
        sent,
        "in send order, once each"
    );
    assert!(got.iter().all(|r| r.queue_id == 2), "{got:?}");
    assert!(
        got.windows(2)
            .all(|w| w[1].queue_offset == w[0].queue_offset + 1),
        "{got:?}"
    );

    consumer.shutdown().await;
    producer.shutdown().await;
    cluster.stop().await;
}
