//! The broker against raw remoting frames: send, pull (with long polling),
//! tags, offsets, routes, queries, retry and DLQ, delay levels, locks,
//! restart durability and bad input.

mod common;

use std::time::Duration;

use common::*;
use mq_protocol::body::{LockBatchRequestBody, LockBatchResponseBody, MessageQueue};
use mq_protocol::header::{
    ConsumerSendMsgBackRequestHeader, OffsetResponseHeader, QueryConsumerOffsetRequestHeader,
    QueryMessageRequestHeader, QueueRequestHeader, UpdateConsumerOffsetRequestHeader,
    ViewMessageRequestHeader,
};
use mq_protocol::route::{decode_json, encode_json};
use mq_protocol::{request_code, MessageExt, RemotingCommand, ResponseCode};

#[tokio::test]
async fn send_then_pull_with_tag_filter_and_route_registration() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    create_topic(&c, &broker.addr, "Orders", 2).await;

    for i in 0..10 {
        let tag = if i % 2 == 0 { "TagA" } else { "TagB" };
        let sent = send(
            &c,
            &broker.addr,
            message(
                "Orders",
                i % 2,
                tag,
                &format!("k{i}"),
                format!("body-{i}").as_bytes(),
            ),
        )
        .await;
        assert_eq!(sent.queue_id, i % 2);
        assert_eq!(sent.msg_id.len(), 32);
    }
    // A TagA subscription sees exactly the TagA messages.
    heartbeat_consumer(&c, &broker.addr, "c1", "g-tags", &[("Orders", "TagA")]).await;
    let got = pull_all(
        &c,
        &broker.addr,
        "g-tags",
        "Orders",
        2,
        5,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|m| m.tags() == Some("TagA")));
    // "*" sees all ten, with the right bodies, queues and offsets.
    heartbeat_consumer(&c, &broker.addr, "c2", "g-all", &[("Orders", "*")]).await;
    let mut all = pull_all(
        &c,
        &broker.addr,
        "g-all",
        "Orders",
        2,
        10,
        Duration::from_secs(5),
    )
    .await;
    all.sort_by_key(|m| m.born_timestamp);
    assert_eq!(all.len(), 10);
    for m in &all {
        let i: i32 = std::str::from_utf8(&m.body).unwrap()["body-".len()..]
            .parse()
            .unwrap();
        assert_eq!(m.queue_id, i % 2);
        assert_eq!(m.queue_offset, i64::from(i / 2));
        assert_eq!(m.property("CLUSTER"), Some("DefaultCluster"));
    }

    // The name server knows the topic's route.
    let route = wait_for("the name server to route Orders", || {
        mq_testkit::frames::route(&c, &ns.addr, "Orders")
    })
    .await;
    assert_eq!(route.queue_datas[0].write_queue_nums, 2);
    assert_eq!(
        route.broker_datas[0].master_addr(),
        Some(broker.addr.as_str())
    );
}

/// A topic's route is at the name server when the request that made the
/// topic is answered: a send that auto-created it, an admin's create. A
/// client that asks the name server right after (a consumer fetching the
/// topic's queues) finds it, without waiting or retrying.
#[tokio::test]
async fn a_topic_is_routed_when_the_request_that_made_it_is_answered() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    // The first registration (at start) is in, so what follows is a change.
    wait_for("the broker to register", || async {
        mq_testkit::frames::route(&c, &ns.addr, "TBW102").await
    })
    .await;
    for round in 0..10 {
        let auto = format!("AutoCreated{round}");
        send(&c, &broker.addr, message(&auto, 0, "T", "", b"first")).await;
        let route = mq_testkit::frames::route(&c, &ns.addr, &auto)
            .await
            .unwrap_or_else(|| panic!("{auto} is routed when its first send is answered"));
        assert_eq!(
            route.broker_datas[0].master_addr(),
            Some(broker.addr.as_str())
        );

        let created = format!("Created{round}");
        create_topic(&c, &broker.addr, &created, 3).await;
        let route = mq_testkit::frames::route(&c, &ns.addr, &created)
            .await
            .unwrap_or_else(|| panic!("{created} is routed when its creation is answered"));
        assert_eq!(route.queue_datas[0].write_queue_nums, 3);
    }
}

#[tokio::test]
async fn a_held_pull_returns_as_soon_as_a_message_arrives() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    create_topic(&c, &broker.addr, "Held", 1).await;
    heartbeat_consumer(&c, &broker.addr, "c1", "g", &[("Held", "*")]).await;

    let (c2, addr) = (c.clone(), broker.addr.clone());
    let held = tokio::spawn(async move { pull(&c2, &addr, "g", "Held", 0, 0, 30_000).await });
    // A held pull shows nowhere until it is answered, so only watching it
    // not return can tell that the broker holds it.
    watch_for_absence(Duration::from_millis(200)).await;
    assert!(!held.is_finished(), "an empty queue holds the pull");
    send(&c, &broker.addr, message("Held", 0, "", "", b"wake up")).await;
    // Well before the 30 s suspend timeout.
    let pulled = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("woken")
        .unwrap();
    assert_eq!(pulled.code, Some(ResponseCode::SUCCESS));
    assert_eq!(&pulled.messages[0].body[..], b"wake up");

    // A pull past the end with no suspend answers PULL_NOT_FOUND at once.
    let empty = pull(&c, &broker.addr, "g", "Held", 0, 1, 0).await;
    assert_eq!(empty.code, Some(ResponseCode::PULL_NOT_FOUND));
    assert_eq!(empty.header.unwrap().next_begin_offset, 1);
}

#[tokio::test]
async fn offsets_and_topics_survive_a_restart_and_queries_find_messages() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    create_topic(&c, &broker.addr, "Kept", 1).await;
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(
            send(
                &c,
                &broker.addr,
                message("Kept", 0, "T", &format!("order-{i}"), b"x"),
            )
            .await,
        );
    }
    let update = RemotingCommand::request(request_code::UPDATE_CONSUMER_OFFSET).with_header(
        &UpdateConsumerOffsetRequestHeader {
            consumer_group: "g".into(),
            topic: "Kept".into(),
            queue_id: 0,
            commit_offset: 2,
        },
    );
    assert_eq!(
        code(&call(&c, &broker.addr, update).await),
        Some(ResponseCode::SUCCESS)
    );
    broker.stop().await;
    assert!(
        !dir.path().join("abort").exists(),
        "a clean stop leaves no abort file"
    );

    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    let query = RemotingCommand::request(request_code::QUERY_CONSUMER_OFFSET).with_header(
        &QueryConsumerOffsetRequestHeader {
            consumer_group: "g".into(),
            topic: "Kept".into(),
            queue_id: 0,
            set_zero_if_not_found: None,
        },
    );
    let response = call(&c, &broker.addr, query).await;
    assert_eq!(response.header::<OffsetResponseHeader>().unwrap().offset, 2);
    let max = call(
        &c,
        &broker.addr,
        RemotingCommand::request(request_code::GET_MAX_OFFSET).with_header(&QueueRequestHeader {
            topic: "Kept".into(),
            queue_id: 0,
        }),
    )
    .await;
    assert_eq!(max.header::<OffsetResponseHeader>().unwrap().offset, 3);

    // By key, through the index.
    let by_key = call(
        &c,
        &broker.addr,
        RemotingCommand::request(request_code::QUERY_MESSAGE).with_header(
            &QueryMessageRequestHeader {
                topic: "Kept".into(),
                key: "order-1".into(),
                max_num: 32,
                begin_timestamp: 0,
                end_timestamp: i64::MAX,
            },
        ),
    )
    .await;
    assert_eq!(code(&by_key), Some(ResponseCode::SUCCESS));
    let found = MessageExt::decode_all(&by_key.body).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].keys(), vec!["order-1"]);
    // By offset message id.
    let (_, offset) = mq_protocol::message::decode_message_id(&sent[2].msg_id).unwrap();
    let viewed = call(
        &c,
        &broker.addr,
        RemotingCommand::request(request_code::VIEW_MESSAGE_BY_ID).with_header(
            &ViewMessageRequestHeader {
                topic: None,
                offset,
            },
        ),
    )
    .await;
    let (msg, _) = MessageExt::decode(&viewed.body, true).unwrap();
    assert_eq!(msg.keys(), vec!["order-2"]);
    let missing = call(
        &c,
        &broker.addr,
        RemotingCommand::request(request_code::VIEW_MESSAGE_BY_ID).with_header(
            &ViewMessageRequestHeader {
                topic: None,
                offset: 1 << 40,
            },
        ),
    )
    .await;
    assert_eq!(code(&missing), Some(ResponseCode::SYSTEM_ERROR));
}

#[tokio::test]
async fn delayed_messages_wait_for_their_level() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    create_topic(&c, &broker.addr, "Later", 1).await;
    heartbeat_consumer(&c, &broker.addr, "c1", "g", &[("Later", "*")]).await;
    let started = now_ms();
    // Level 4 is 2 s in the test configuration.
    send(
        &c,
        &broker.addr,
        with_property(message("Later", 0, "", "", b"delayed"), "DELAY", "4"),
    )
    .await;
    let early = pull(&c, &broker.addr, "g", "Later", 0, 0, 0).await;
    assert!(early.messages.is_empty(), "not visible before its delay");
    let got = pull_all(
        &c,
        &broker.addr,
        "g",
        "Later",
        1,
        1,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(got.len(), 1);
    assert!(now_ms() - started >= 2000, "delivered after the delay");
    assert_eq!(&got[0].body[..], b"delayed");
    assert_eq!(got[0].property("DELAY"), None);
}

#[tokio::test]
async fn send_back_retries_then_dead_letters() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    create_topic(&c, &broker.addr, "Work", 1).await;
    // A group that retries once before giving up.
    let group =
        serde_json::json!({"groupName": "g-retry", "retryMaxTimes": 1, "retryQueueNums": 1});
    let created = call(
        &c,
        &broker.addr,
        RemotingCommand::request(request_code::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
            .with_body(serde_json::to_vec(&group).unwrap()),
    )
    .await;
    assert_eq!(code(&created), Some(ResponseCode::SUCCESS));
    heartbeat_consumer(
        &c,
        &broker.addr,
        "c1",
        "g-retry",
        &[
            ("Work", "*"),
            ("%RETRY%g-retry", "*"),
            ("%DLQ%g-retry", "*"),
        ],
    )
    .await;
    send(&c, &broker.addr, message("Work", 0, "T", "job-1", b"fails")).await;
    let first = pull_all(
        &c,
        &broker.addr,
        "g-retry",
        "Work",
        1,
        1,
        Duration::from_secs(5),
    )
    .await;

    let back = |m: &MessageExt| {
        RemotingCommand::request(request_code::CONSUMER_SEND_MSG_BACK).with_header(
            &ConsumerSendMsgBackRequestHeader {
                offset: m.commit_log_offset,
                group: "g-retry".into(),
                delay_level: 1,
                origin_msg_id: Some(m.msg_id()),
                origin_topic: Some(m.topic.clone()),
                unit_mode: None,
                max_reconsume_times: None,
            },
        )
    };
    assert_eq!(
        code(&call(&c, &broker.addr, back(&first[0])).await),
        Some(ResponseCode::SUCCESS)
    );
    // Redelivered through the retry topic after its delay, counted once.
    let retried = pull_all(
        &c,
        &broker.addr,
        "g-retry",
        "%RETRY%g-retry",
        1,
        1,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].reconsume_times, 1);
    assert_eq!(retried[0].property("RETRY_TOPIC"), Some("Work"));
    assert_eq!(&retried[0].body[..], b"fails");
    // Failing again past retryMaxTimes goes to the dead-letter topic at once.
    assert_eq!(
        code(&call(&c, &broker.addr, back(&retried[0])).await),
        Some(ResponseCode::SUCCESS)
    );
    let dead = pull_all(
        &c,
        &broker.addr,
        "g-retry",
        "%DLQ%g-retry",
        1,
        1,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].keys(), vec!["job-1"]);
    assert_eq!(dead[0].reconsume_times, 2);
}

#[tokio::test]
async fn queue_locks_give_each_queue_one_owner() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    let mq = |q| MessageQueue {
        topic: "T".into(),
        broker_name: "broker-a".into(),
        queue_id: q,
    };
    let lock = |client_id: &str, queues: Vec<MessageQueue>| {
        RemotingCommand::request(request_code::LOCK_BATCH_MQ).with_body(encode_json(
            &LockBatchRequestBody {
                consumer_group: "g".into(),
                client_id: client_id.into(),
                only_this_broker: true,
                mq_set: queues.into_iter().collect(),
            },
        ))
    };
    let a: LockBatchResponseBody = decode_json(
        &call(&c, &broker.addr, lock("a", vec![mq(0), mq(1)]))
            .await
            .body,
    )
    .unwrap();
    assert_eq!(a.lock_ok_mq_set.len(), 2);
    let b: LockBatchResponseBody = decode_json(
        &call(&c, &broker.addr, lock("b", vec![mq(1), mq(2)]))
            .await
            .body,
    )
    .unwrap();
    assert_eq!(b.lock_ok_mq_set, [mq(2)].into());
}

#[tokio::test]
async fn bad_requests_get_clear_answers_and_the_connection_keeps_serving() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    let unknown = call(&c, &broker.addr, RemotingCommand::request(9999)).await;
    assert_eq!(
        code(&unknown),
        Some(ResponseCode::REQUEST_CODE_NOT_SUPPORTED)
    );
    // A send without a topic field.
    let missing = call(
        &c,
        &broker.addr,
        RemotingCommand::request(request_code::SEND_MESSAGE).with_field("producerGroup", "p"),
    )
    .await;
    assert_eq!(code(&missing), Some(ResponseCode::SYSTEM_ERROR));
    assert!(missing.remark.unwrap().contains("topic"));
    // A topic name with bad characters, and a system topic.
    let bad = send_raw(&c, &broker.addr, message("bad topic!", 0, "", "", b"x")).await;
    assert_eq!(code(&bad), Some(ResponseCode::SYSTEM_ERROR));
    let system = send_raw(
        &c,
        &broker.addr,
        message("SCHEDULE_TOPIC_XXXX", 0, "", "", b"x"),
    )
    .await;
    assert_eq!(code(&system), Some(ResponseCode::NO_PERMISSION));
    // A queue id past the topic's queues.
    create_topic(&c, &broker.addr, "Small", 1).await;
    let past = send_raw(&c, &broker.addr, message("Small", 5, "", "", b"x")).await;
    assert_eq!(code(&past), Some(ResponseCode::SYSTEM_ERROR));
    // A message over maxMessageSize.
    let big = send_raw(
        &c,
        &broker.addr,
        message("Small", 0, "", "", &vec![7u8; 4 * 1024 * 1024 + 1]),
    )
    .await;
    assert_eq!(code(&big), Some(ResponseCode::MESSAGE_ILLEGAL));
    // A garbage heartbeat body.
    let hb = call(
        &c,
        &broker.addr,
        RemotingCommand::request(request_code::HEART_BEAT).with_body(&b"{nope"[..]),
    )
    .await;
    assert_eq!(code(&hb), Some(ResponseCode::SYSTEM_ERROR));
    // Still serving, and nothing of the above was stored.
    let ok = send(&c, &broker.addr, message("Small", 0, "", "", b"fine")).await;
    assert_eq!(ok.queue_offset, 0);
}

#[tokio::test]
async fn auto_creation_follows_the_broker_switch() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let open = start_broker("broker-a", dir.path(), &ns.addr).await;
    let sent = send(&c, &open.addr, message("Fresh", -1, "", "", b"x")).await;
    assert!(sent.queue_id >= 0 && sent.queue_id < 4);

    let dir2 = tempfile::tempdir().unwrap();
    let strict = start_broker_with("broker-b", dir2.path(), &ns.addr, |b, _| {
        b.auto_create_topic_enable = false
    })
    .await;
    let refused = send_raw(&c, &strict.addr, message("Fresh", -1, "", "", b"x")).await;
    assert_eq!(code(&refused), Some(ResponseCode::TOPIC_NOT_EXIST));
}

#[tokio::test]
async fn a_slave_refuses_sends() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let slave = start_broker_with("broker-a", dir.path(), &ns.addr, |b, _| {
        b.broker_id = 1;
        b.broker_role = mq_broker::BrokerRole::Slave;
    })
    .await;
    let refused = send_raw(&c, &slave.addr, message("Any", 0, "", "", b"x")).await;
    assert_eq!(code(&refused), Some(ResponseCode::SERVICE_NOT_AVAILABLE));
}
