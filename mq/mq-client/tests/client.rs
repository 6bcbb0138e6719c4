//! The client against a real name server and broker(s), in-process.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use mq_client::{
    AdminClient, ConsumeStatus, Listener, Message, MessageExt, MessageModel, Producer,
    ProducerConfig, PullConsumer, PullStatus, PushConsumer, SendStatus, SubscriptionGroupConfig,
    TopicSpec,
};
use mq_protocol::message::decode_message_id;

type Seen = Arc<Mutex<Vec<MessageExt>>>;

/// A concurrent listener recording every message it is given.
fn recorder() -> (Seen, Listener) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let listener = Listener::concurrent(move |msgs| {
        let sink = sink.clone();
        async move {
            sink.lock().unwrap().extend(msgs);
            ConsumeStatus::Success
        }
    });
    (seen, listener)
}

fn bodies(seen: &Seen) -> BTreeSet<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

/// Creates `topic` with `queues` queues on each broker and waits until the
/// name server's route shows all of them.
async fn create_topic(admin: &AdminClient, brokers: &[&TestBroker], topic: &str, queues: i32) {
    for broker in brokers {
        admin
            .create_topic(
                &broker.addr,
                &TopicSpec::new(topic).with_queues(queues, queues),
            )
            .await
            .unwrap();
    }
    wait_until("the topic's route", LIMIT, || async {
        admin
            .topic_route(topic)
            .await
            .is_ok_and(|r| r.queue_datas.len() == brokers.len())
    })
    .await;
}

async fn producer(ns: &NameServer, group: &str) -> Producer {
    Producer::start(ProducerConfig::new(group), client_config(&ns.addr))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_send_then_consume() {
    let ns = NameServer::start().await;
    let mut broker = start_broker("broker-a", &ns.addr).await;
    let admin = AdminClient::start(client_config(&ns.addr)).await.unwrap();
    create_topic(&admin, &[&broker], "SyncTopic", 4).await;

    let producer = producer(&ns, "pg-sync").await;
    let mut sent = BTreeMap::new();
    for i in 0..20 {
        let result = producer
            .send(
                Message::new("SyncTopic", format!("m{i}"))
                    .with_tags("T")
                    .with_keys([format!("k{i}")]),
            )
            .await
            .unwrap();
        assert_eq!(result.status, SendStatus::SendOk);
        assert_eq!(result.msg_id.len(), 32);
        assert!(result.msg_id.bytes().all(|b| b.is_ascii_hexdigit()));
        let (host, _) = decode_message_id(&result.offset_msg_id).unwrap();
        assert_eq!(host.to_string(), broker.addr);
        sent.insert(result.msg_id.clone(), format!("m{i}"));
    }
    // A body over 4 KiB travels compressed and comes back whole.
    let big = "x".repeat(10_000);
    producer
        .send(Message::new("SyncTopic", big.clone()))
        .await
        .unwrap();

    let consumer = PushConsumer::new(push_config("cg-sync"), client_config(&ns.addr));
    consumer.subscribe("SyncTopic", "*").unwrap();
    let (seen, listener) = recorder();
    consumer.start(listener).await.unwrap();
    wait_until("all 21 messages consumed", LIMIT, || async {
        bodies(&seen).len() == 21
    })
    .await;
    consumer.shutdown().await;

    let seen = seen.lock().unwrap().clone();
    for msg in &seen {
        assert_eq!(msg.topic, "SyncTopic");
        let body = String::from_utf8_lossy(&msg.body).into_owned();
        if body.len() == big.len() {
            assert_eq!(body, big);
        } else {
            assert_eq!(
                sent.get(&msg.msg_id()),
                Some(&body),
                "msg id travels as UNIQ_KEY"
            );
            assert_eq!(msg.tags(), Some("T"));
        }
    }

    // The group's offsets were committed: the queues are consumed to the end.
    let total: i64 = {
        let mut sum = 0;
        for mq in admin.topic_queues("SyncTopic").await.unwrap() {
            let max = admin.max_offset(&mq).await.unwrap();
            let committed = admin
                .consumer_offset("cg-sync", &mq)
                .await
                .unwrap()
                .unwrap_or(0);
            assert_eq!(committed, max, "offset of {mq:?} committed on shutdown");
            sum += max;
        }
        sum
    };
    assert_eq!(total, 21);

    producer.shutdown().await;
    admin.shutdown().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_brokers_share_the_load_and_a_dead_one_is_skipped() {
    let ns = NameServer::start().await;
    let mut a = start_broker("broker-a", &ns.addr).await;
    let mut b = start_broker("broker-b", &ns.addr).await;
    let admin = AdminClient::start(client_config(&ns.addr)).await.unwrap();
    wait_until("both brokers registered", LIMIT, || async {
        admin
            .cluster_info()
            .await
            .is_ok_and(|c| c.broker_addr_table.len() == 2)
    })
    .await;
    // Through the cluster: every master gets the topic.
    let masters = admin
        .create_topic_in_cluster(
            "DefaultCluster",
            &TopicSpec::new("Spread").with_queues(2, 2),
        )
        .await
        .unwrap();
    assert_eq!(masters.len(), 2);
    create_topic(&admin, &[&a, &b], "Spread", 2).await;

    let producer = producer(&ns, "pg-spread").await;
    let mut per_broker: HashMap<String, usize> = HashMap::new();
    for i in 0..40 {
        let r = producer
            .send(Message::new("Spread", format!("s{i}")))
            .await
            .unwrap();
        *per_broker.entry(r.queue.broker_name).or_default() += 1;
    }
    assert_eq!(per_broker.get("broker-a"), Some(&20), "{per_broker:?}");
    assert_eq!(per_broker.get("broker-b"), Some(&20), "{per_broker:?}");

    let consumer = PushConsumer::new(push_config("cg-spread"), client_config(&ns.addr));
    consumer.subscribe("Spread", "*").unwrap();
    let (seen, listener) = recorder();
    consumer.start(listener).await.unwrap();
    wait_until("40 messages from both brokers", LIMIT, || async {
        bodies(&seen).len() == 40
    })
    .await;
    consumer.shutdown().await;

    // broker-b dies; the producer's cached route still names it, so sends
    // that pick it fail over to broker-a.
    b.stop().await;
    for i in 0..10 {
        let r = producer
            .send(Message::new("Spread", format!("after{i}")))
            .await
            .unwrap();
        assert_eq!(r.queue.broker_name, "broker-a");
    }
    producer.shutdown().await;
    admin.shutdown().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_expression_filters_exactly() {
    let ns = NameServer::start().await;
    let mut broker = start_broker("broker-a", &ns.addr).await;
    let admin = AdminClient::start(client_config(&ns.addr)).await.unwrap();
    create_topic(&admin, &[&broker], "Tagged", 1).await;
    let producer = producer(&ns, "pg-tags").await;
    for i in 0..30 {
        let tag = ["TagA", "TagB", "TagC"][i % 3];
        producer
            .send(Message::new("Tagged", format!("{tag}-{i}")).with_tags(tag))
            .await
            .unwrap();
    }
    producer
        .send(Message::new("Tagged", "untagged"))
        .await
        .unwrap();
    let consumer = PushConsumer::new(push_config("cg-tags"), client_config(&ns.addr));
    consumer.subscribe("Tagged", "TagA || TagC").unwrap();
    let (seen, listener) = recorder();
    consumer.start(listener).await.unwrap();
    wait_until("20 TagA/TagC messages", LIMIT, || async {
        bodies(&seen).len() >= 20
    })
    .await;
    // Everything pulled has been handed over once shutdown returns.
    consumer.shutdown().await;
    let got = bodies(&seen);
    assert_eq!(got.len(), 20, "{got:?}");
    assert!(
        got.iter()
            .all(|b| b.starts_with("TagA-") || b.starts_with("TagC-")),
        "{got:?}"
    );

    // The pull consumer filters the same way.
    let pull = PullConsumer::start("pull-tags", client_config(&ns.addr))
        .await
        .unwrap();
    let mq = pull.fetch_queues("Tagged").await.unwrap().remove(0);
    let result = pull.pull(&mq, "TagB", 0, 64).await.unwrap();
    assert_eq!(result.status, PullStatus::Found);
    assert_eq!(result.messages.len(), 10);
    assert!(result.messages.iter().all(|m| m.tags() == Some("TagB")));
    assert_eq!(result.next_begin_offset, 31);
    pull.shutdown().await;
    admin.shutdown().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_joining_and_leaving_rebalance_without_losing_messages() {
    let ns = NameServer::start().await;
    let mut broker = start_broker("broker-a", &ns.addr).await;
    let admin = AdminClient::start(client_config(&ns.addr)).await.unwrap();
    create_topic(&admin, &[&broker], "Rebalanced", 8).await;
    let producer = producer(&ns, "pg-rebalance").await;
    let send_range = |range: std::ops::Range<usize>| {
        let producer = producer.clone();
        async move {
            for i in range {
                producer
                    .send(Message::new("Rebalanced", format!("r{i}")))
                    .await
                    .unwrap();
            }
        }
    };

    let (seen, listener) = recorder();
    let first = PushConsumer::new(push_config("cg-rebalance"), client_config(&ns.addr));
    first.subscribe("Rebalanced", "*").unwrap();
    first.start(listener.clone()).await.unwrap();
    wait_until("the first member owns all 8 queues", LIMIT, || async {
        first
            .assigned_queues()
            .iter()
            .filter(|q| q.topic == "Rebalanced")
            .count()
            == 8
    })
    .await;
    send_range(0..100).await;

    let second = PushConsumer::new(push_config("cg-rebalance"), client_config(&ns.addr));
    second.subscribe("Rebalanced", "*").unwrap();
    second.start(listener.clone()).await.unwrap();
    let owned = |c: &PushConsumer| {
        c.assigned_queues()
            .into_iter()
            .filter(|q| q.topic == "Rebalanced")
            .collect::<BTreeSet<_>>()
    };
    wait_until("the two members split the queues 4/4", LIMIT, || async {
        let (a, b) = (owned(&first), owned(&second));
        a.len() == 4 && b.len() == 4 && a.is_disjoint(&b)
    })
    .await;
    send_range(100..200).await;

    first.shutdown().await;
    wait_until("the remaining member owns all 8 queues", LIMIT, || async {
        owned(&second).len() == 8
    })
    .await;
    send_range(200..300).await;
    wait_until("all 300 messages consumed at least once", LIMIT, || async {
        bodies(&seen).len() == 300
    })
    .await;
    second.shutdown().await;
    producer.shutdown().await;
    admin.shutdown().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconsume_later_redelivers_through_the_retry_topic() {
    let ns = NameServer::start().await;
    let mut broker = start_broker("broker-a", &ns.addr).await;
    let admin = AdminClient::start(client_config(&ns.addr)).await.unwrap();
    create_topic(&admin, &[&broker], "Retried", 2).await;
    let producer = producer(&ns, "pg-retry").await;

    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let listener = Listener::concurrent(move |msgs: Vec<MessageExt>| {
        let sink = sink.clone();
        async move {
            let first_time = msgs[0].reconsume_times == 0;
            sink.lock().unwrap().extend(msgs);
            if first_time {
                ConsumeStatus::ReconsumeLater
            } else {
                ConsumeStatus::Success
            }
        }
    });
    let consumer = PushConsumer::new(push_config("cg-retry"), client_config(&ns.addr));
    consumer.subscribe("Retried", "*").unwrap();
    consumer.start(listener).await.unwrap();
    let sent = producer
        .send(Message::new("Retried", "again").with_tags("R"))
        .await
        .unwrap();
    wait_until("the message redelivered once", LIMIT, || async {
        seen.lock().unwrap().len() >= 2
    })
    .await;
    consumer.shutdown().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].reconsume_times, 0);
    let again = &seen[1];
    assert_eq!(again.reconsume_times, 1);
    assert_eq!(again.topic, "Retried", "the real topic is restored");
    assert_eq!(again.msg_id(), sent.msg_id, "same UNIQ_KEY");
    assert_eq!(again.body.as_ref(), b"again");
    producer.shutdown().await;
    admin.shutdown().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_listener_sees_each_key_in_send_order() {
    let ns = NameServer::start().await;
    let mut broker = start_broker("broker-a", &ns.addr).await;
    let admin = AdminClient::start(client_config(&ns.addr)).await.unwrap();
    create_topic(&admin, &[&broker], "Ordered", 4).await;
    let producer = producer(&ns, "pg-ordered").await;
    let mut queue_of_key: HashMap<String, BTreeSet<i32>> = HashMap::new();
    for seq in 0..25 {
        for key in ["order-1", "order-2", "order-3", "order-4", "order-5"] {
            let r = producer
                .send_ordered(Message::new("Ordered", format!("{key}:{seq}")), key)
                .await
                .unwrap();
            queue_of_key
                .entry(key.into())
                .or_default()
                .insert(r.queue.queue_id);
        }
    }
    assert!(
        queue_of_key.values().all(|q| q.len() == 1),
        "{queue_of_key:?}"
    );

    let log: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let sink = log.clone();
    let failed_once = Arc::new(Mutex::new(BTreeSet::new()));
    let listener = Listener::ordered(move |msgs: Vec<MessageExt>| {
        let sink = sink.clone();
        let failed_once = failed_once.clone();
        async move {
            let body = String::from_utf8_lossy(&msgs[0].body).into_owned();
            // Every 7th message asks to be retried once: the queue must stall
            // on it rather than move past.
            let (key, seq) = body.split_once(':').unwrap();
            let seq: u32 = seq.parse().unwrap();
            if seq % 7 == 3 && failed_once.lock().unwrap().insert(body.clone()) {
                return ConsumeStatus::ReconsumeLater;
            }
            sink.lock().unwrap().push((key.to_owned(), seq));
            ConsumeStatus::Success
        }
    });
    let consumer = PushConsumer::new(push_config("cg-ordered"), client_config(&ns.addr));
    consumer.subscribe("Ordered", "*").unwrap();
    consumer.start(listener).await.unwrap();
    wait_until("125 ordered messages", LIMIT, || async {
        log.lock().unwrap().len() >= 125
    })
    .await;
    consumer.shutdown().await;
    let log = log.lock().unwrap().clone();
    let mut per_key: HashMap<String, Vec<u32>> = HashMap::new();
    for (key, seq) in log {
        per_key.entry(key).or_default().push(seq);
    }
    for (key, seqs) in per_key {
        assert_eq!(seqs, (0..25).collect::<Vec<_>>(), "order of {key}");
    }
    producer.shutdown().await;
    admin.shutdown().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasting_delivers_to_every_member_with_local_offsets() {
    let ns = NameServer::start().await;
    let mut broker = start_broker("broker-a", &ns.addr).await;
    let admin = AdminClient::start(client_config(&ns.addr)).await.unwrap();
    create_topic(&admin, &[&broker], "Broadcast", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let mut members = Vec::new();
    for i in 0..2 {
        let mut config = push_config("cg-broadcast");
        config.message_model = MessageModel::Broadcasting;
        config.offset_store_path = Some(dir.path().join(format!("member{i}.json")));
        let consumer = PushConsumer::new(config, client_config(&ns.addr));
        consumer.subscribe("Broadcast", "*").unwrap();
        let (seen, listener) = recorder();
        consumer.start(listener).await.unwrap();
        members.push((consumer, seen));
    }
    for (consumer, _) in &members {
        wait_until("a member owning both queues", LIMIT, || async {
            consumer.assigned_queues().len() == 2
        })
        .await;
    }
    let producer = producer(&ns, "pg-broadcast").await;
    for i in 0..10 {
        producer
            .send(Message::new("Broadcast", format!("b{i}")))
            .await
            .unwrap();
    }
    for (consumer, seen) in &members {
        wait_until("every member got all 10", LIMIT, || async {
            bodies(seen).len() == 10
        })
        .await;
        consumer.shutdown().await;
    }
    for i in 0..2 {
        let text = std::fs::read_to_string(dir.path().join(format!("member{i}.json"))).unwrap();
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        let total: i64 = file["offsetTable"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["offset"].as_i64().unwrap())
            .sum();
        assert_eq!(total, 10, "member {i} offsets: {text}");
    }
    producer.shutdown().await;
    admin.shutdown().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_consumer_offsets_and_seek() {
    let ns = NameServer::start().await;
    let mut broker = start_broker("broker-a", &ns.addr).await;
    let admin = AdminClient::start(client_config(&ns.addr)).await.unwrap();
    create_topic(&admin, &[&broker], "Pulled", 1).await;
    let producer = producer(&ns, "pg-pull").await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for i in 0..10 {
        producer
            .send(Message::new("Pulled", format!("p{i}")))
            .await
            .unwrap();
    }
    let pull = PullConsumer::start("cg-pull", client_config(&ns.addr))
        .await
        .unwrap();
    let queues = pull.fetch_queues("Pulled").await.unwrap();
    assert_eq!(queues.len(), 1);
    let mq = &queues[0];
    assert_eq!(pull.min_offset(mq).await.unwrap(), 0);
    assert_eq!(pull.max_offset(mq).await.unwrap(), 10);
    // No offset yet: the broker says so, or (as Java's broker does while
    // the queue's first message is still stored) answers 0.
    assert!(matches!(
        pull.committed_offset(mq).await.unwrap(),
        None | Some(0)
    ));

    let first = pull.pull(mq, "*", 0, 4).await.unwrap();
    assert_eq!(first.status, PullStatus::Found);
    let offsets: Vec<i64> = first.messages.iter().map(|m| m.queue_offset).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3]);
    assert_eq!(first.next_begin_offset, 4);
    pull.commit_offset(mq, 4).await.unwrap();
    assert_eq!(pull.committed_offset(mq).await.unwrap(), Some(4));

    let rest = pull.pull(mq, "*", 4, 32).await.unwrap();
    assert_eq!(rest.messages.len(), 6);
    assert_eq!(rest.messages[5].body.as_ref(), b"p9");
    let none = pull.pull(mq, "*", 10, 32).await.unwrap();
    assert_eq!(none.status, PullStatus::NoNewMsg);
    let moved = pull.pull(mq, "*", 100, 32).await.unwrap();
    assert_eq!(moved.status, PullStatus::OffsetIllegal);

    assert_eq!(pull.search_offset(mq, before).await.unwrap(), 0);

    // A blocking pull returns as soon as a message arrives.
    let waiter = {
        let pull = pull.clone();
        let mq = mq.clone();
        tokio::spawn(async move {
            pull.pull_blocking(&mq, "*", 10, 32, Duration::from_secs(20))
                .await
        })
    };
    producer.send(Message::new("Pulled", "late")).await.unwrap();
    let late = waiter.await.unwrap().unwrap();
    assert_eq!(late.status, PullStatus::Found);
    assert_eq!(late.messages[0].body.as_ref(), b"late");

    pull.shutdown().await;
    producer.shutdown().await;
    admin.shutdown().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_topics_groups_and_message_queries() {
    let ns = NameServer::start().await;
    let mut broker = start_broker("broker-a", &ns.addr).await;
    let admin = AdminClient::start(client_config(&ns.addr)).await.unwrap();
    admin
        .create_topic(
            &broker.addr,
            &TopicSpec::new("AdminTopic").with_queues(3, 5),
        )
        .await
        .unwrap();
    wait_until("the route of AdminTopic", LIMIT, || async {
        admin.topic_route("AdminTopic").await.is_ok()
    })
    .await;
    let route = admin.topic_route("AdminTopic").await.unwrap();
    assert_eq!(route.queue_datas.len(), 1);
    assert_eq!(route.queue_datas[0].read_queue_nums, 3);
    assert_eq!(route.queue_datas[0].write_queue_nums, 5);
    assert_eq!(
        route.broker_datas[0].master_addr(),
        Some(broker.addr.as_str())
    );
    assert!(admin
        .topic_list()
        .await
        .unwrap()
        .topic_list
        .contains("AdminTopic"));
    let cluster = admin.cluster_info().await.unwrap();
    assert!(cluster.cluster_addr_table["DefaultCluster"].contains("broker-a"));

    admin
        .create_subscription_group(&broker.addr, &SubscriptionGroupConfig::new("admin-group"))
        .await
        .unwrap();
    admin
        .delete_subscription_group(&broker.addr, "admin-group")
        .await
        .unwrap();

    let producer = producer(&ns, "pg-admin").await;
    let sent = producer
        .send(Message::new("AdminTopic", "findme").with_keys(["order-42"]))
        .await
        .unwrap();
    producer
        .send(Message::new("AdminTopic", "other").with_keys(["order-43"]))
        .await
        .unwrap();
    let now = i64::MAX / 2;
    wait_until("the key indexed", LIMIT, || async {
        admin
            .query_message_by_key("AdminTopic", "order-42", 32, 0, now)
            .await
            .is_ok_and(|found| !found.is_empty())
    })
    .await;
    let found = admin
        .query_message_by_key("AdminTopic", "order-42", 32, 0, now)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].body.as_ref(), b"findme");
    let viewed = admin.view_message(&sent.offset_msg_id).await.unwrap();
    assert_eq!(viewed.msg_id(), sent.msg_id);
    assert_eq!(viewed.body.as_ref(), b"findme");

    admin
        .delete_topic("AdminTopic", std::slice::from_ref(&broker.addr))
        .await
        .unwrap();
    wait_until("the route gone", LIMIT, || async {
        admin.topic_route("AdminTopic").await.is_err()
    })
    .await;
    producer.shutdown().await;
    admin.shutdown().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oneway_and_auto_created_topics() {
    let ns = NameServer::start().await;
    let mut broker = start_broker("broker-a", &ns.addr).await;
    let admin = AdminClient::start(client_config(&ns.addr)).await.unwrap();
    create_topic(&admin, &[&broker], "Oneway", 1).await;
    let producer = producer(&ns, "pg-oneway").await;
    producer
        .send_oneway(Message::new("Oneway", "oneway"))
        .await
        .unwrap();
    let pull = PullConsumer::start("cg-oneway", client_config(&ns.addr))
        .await
        .unwrap();
    let mq = pull.fetch_queues("Oneway").await.unwrap().remove(0);
    wait_until("the oneway message stored", LIMIT, || async {
        pull.max_offset(&mq).await.is_ok_and(|m| m == 1)
    })
    .await;
    let got = pull.pull(&mq, "*", 0, 32).await.unwrap().messages;
    assert_eq!(got[0].body.as_ref(), b"oneway");
    assert_eq!(got[0].msg_id().len(), 32);

    // A topic nobody created: the first send goes through TBW102's route and
    // the broker creates it; its own route follows.
    let r = producer
        .send(Message::new("AutoCreated", "first"))
        .await
        .unwrap();
    assert_eq!(r.status, SendStatus::SendOk);
    wait_until("the auto-created topic's route", LIMIT, || async {
        admin.topic_route("AutoCreated").await.is_ok()
    })
    .await;
    producer
        .send(Message::new("AutoCreated", "second"))
        .await
        .unwrap();

    pull.shutdown().await;
    producer.shutdown().await;
    admin.shutdown().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_stored_in_order_with_its_ids() {
    let ns = NameServer::start().await;
    let mut broker = start_broker("broker-a", &ns.addr).await;
    let admin = AdminClient::start(client_config(&ns.addr)).await.unwrap();
    create_topic(&admin, &[&broker], "Batched", 1).await;
    let producer = producer(&ns, "pg-batch").await;
    let batch: Vec<Message> = (0..5)
        .map(|i| Message::new("Batched", format!("b{i}")).with_tags("B"))
        .collect();
    let result = producer.send_batch(batch).await.unwrap();
    let ids: Vec<&str> = result.msg_id.split(',').collect();
    assert_eq!(ids.len(), 5);

    let pull = PullConsumer::start("cg-batch", client_config(&ns.addr))
        .await
        .unwrap();
    let mq = pull.fetch_queues("Batched").await.unwrap().remove(0);
    let got = pull.pull(&mq, "*", 0, 32).await.unwrap().messages;
    let got_ids: Vec<String> = got.iter().map(|m| m.msg_id()).collect();
    assert_eq!(got_ids, ids);
    let bodies: Vec<&[u8]> = got.iter().map(|m| m.body.as_ref()).collect();
    assert_eq!(bodies, vec![&b"b0"[..], b"b1", b"b2", b"b3", b"b4"]);

    pull.shutdown().await;
    producer.shutdown().await;
    admin.shutdown().await;
    broker.stop().await;
}
