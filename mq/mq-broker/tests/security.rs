//! Issue 14's findings against the broker, as an outside client would send
//! them (hand-written frames): group and topic names that climb out of the
//! store, the multi-line config update that rewrote the `-c` file, keys
//! fixed at start, out-of-range values. Each refusal changes nothing on
//! disk, and the broker keeps serving.

mod common;

use std::path::Path;

use common::*;
use mq_protocol::body::{ConsumerData, HeartbeatData, ProducerData};
use mq_protocol::header::{
    ConsumerSendMsgBackRequestHeader, SendMessageRequestHeader, SendMessageRequestHeaderV2,
};
use mq_protocol::message::decode_message_id;
use mq_protocol::route::encode_json;
use mq_protocol::{request_code, RemotingCommand, ResponseCode};
use mq_remoting::RemotingClient;

/// The group of the finding: from `<root>/store/consumequeue/%DLQ%sec` it
/// climbs to `<root>/outside/trav_created`.
const TRAVERSAL_GROUP: &str = "sec/../../../outside/trav_created";

fn heartbeat(group: &str) -> RemotingCommand {
    let data = HeartbeatData {
        client_id: "127.0.0.1@sec".into(),
        producer_data_set: vec![],
        consumer_data_set: vec![ConsumerData {
            group_name: group.into(),
            ..ConsumerData::default()
        }],
    };
    RemotingCommand::request(request_code::HEART_BEAT).with_body(encode_json(&data))
}

/// A producer's heartbeat: the group it sends for, no consumers.
fn producer_heartbeat(group: &str) -> RemotingCommand {
    let data = HeartbeatData {
        client_id: "127.0.0.1@sec-producer".into(),
        producer_data_set: vec![ProducerData {
            group_name: group.into(),
        }],
        consumer_data_set: vec![],
    };
    RemotingCommand::request(request_code::HEART_BEAT).with_body(encode_json(&data))
}

fn send_back(group: &str, offset: i64, delay_level: i32) -> RemotingCommand {
    RemotingCommand::request(request_code::CONSUMER_SEND_MSG_BACK).with_header(
        &ConsumerSendMsgBackRequestHeader {
            offset,
            group: group.into(),
            delay_level,
            origin_msg_id: None,
            origin_topic: Some("Sec".into()),
            unit_mode: Some(false),
            max_reconsume_times: None,
        },
    )
}

fn delete_topic(topic: &str) -> RemotingCommand {
    RemotingCommand::request(request_code::DELETE_TOPIC_IN_BROKER).with_field("topic", topic)
}

fn update_config(body: &str) -> RemotingCommand {
    RemotingCommand::request(request_code::UPDATE_BROKER_CONFIG).with_body(body.as_bytes().to_vec())
}

/// Calls `request` and insists on a refusal whose remark contains `why`.
async fn refused(client: &RemotingClient, addr: &str, request: RemotingCommand, why: &str) {
    let what = request.code;
    let answer = call(client, addr, request).await;
    assert_ne!(
        code(&answer),
        Some(ResponseCode::SUCCESS),
        "request {what} must be refused"
    );
    let remark = answer.remark.unwrap_or_default();
    assert!(
        remark.contains(why),
        "request {what}: {remark:?} should say {why:?}"
    );
}

async fn succeeds(client: &RemotingClient, addr: &str, request: RemotingCommand) {
    let what = request.code;
    let answer = call(client, addr, request).await;
    assert_eq!(
        code(&answer),
        Some(ResponseCode::SUCCESS),
        "request {what}: {:?}",
        answer.remark
    );
}

/// Every path under `dir`, sorted, to compare before and after.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn names_that_climb_out_of_the_store_are_refused_and_nothing_outside_changes() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep.txt"), b"still here").unwrap();
    let store = dir.path().join("store");
    let broker = start_broker("broker-sec", &store, &ns.addr).await;
    let c = client();
    let addr = broker.addr.as_str();
    create_topic(&c, addr, "Sec", 1).await;
    let sent = send(&c, addr, message("Sec", 0, "", "", b"retry me")).await;
    let (_, offset) = decode_message_id(&sent.msg_id).unwrap();

    refused(&c, addr, heartbeat(TRAVERSAL_GROUP), "group name").await;
    refused(
        &c,
        addr,
        send_back(TRAVERSAL_GROUP, offset, -1),
        "group name",
    )
    .await;
    refused(&c, addr, send_back("sec/..", offset, 0), "group name").await;
    refused(&c, addr, delete_topic("../../../etc"), "topic name").await;
    refused(&c, addr, delete_topic("%DLQ%sec/../.."), "topic name").await;
    refused(
        &c,
        addr,
        delete_topic(&format!("%DLQ%{TRAVERSAL_GROUP}")),
        "topic name",
    )
    .await;
    let group_body =
        br#"{"groupName":"a/../../b","consumeEnable":true,"retryQueueNums":1,"retryMaxTimes":16}"#;
    refused(
        &c,
        addr,
        RemotingCommand::request(request_code::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
            .with_body(&group_body[..]),
        "group name",
    )
    .await;
    refused(
        &c,
        addr,
        RemotingCommand::request(request_code::DELETE_SUBSCRIPTIONGROUP)
            .with_field("groupName", "../x"),
        "group name",
    )
    .await;
    refused(
        &c,
        addr,
        RemotingCommand::request(request_code::UPDATE_CONSUMER_OFFSET)
            .with_field("consumerGroup", "../g")
            .with_field("topic", "Sec")
            .with_field("queueId", 0)
            .with_field("commitOffset", 1),
        "group name",
    )
    .await;
    refused(
        &c,
        addr,
        send_raw_request(message("a/../b", 0, "", "", b"x")),
        "topic name",
    )
    .await;

    assert_eq!(
        tree(&outside),
        ["keep.txt"],
        "nothing created or removed outside"
    );
    assert!(!dir.path().join("trav_created").exists());
    assert!(
        !tree(&store)
            .iter()
            .any(|p| p.contains("sec") || p.contains("trav")),
        "no folder from a refused name: {:?}",
        tree(&store)
    );

    // The broker keeps serving: the same requests with names succeed.
    succeeds(&c, addr, heartbeat("sec_group")).await;
    succeeds(&c, addr, send_back("sec_group", offset, -1)).await;
    assert!(store.join("consumequeue/%DLQ%sec_group/0").is_dir());
    succeeds(&c, addr, delete_topic("%DLQ%sec_group")).await;
    assert!(!store.join("consumequeue/%DLQ%sec_group").exists());
    assert_eq!(tree(&outside), ["keep.txt"]);
}

/// A heartbeat's producer groups are names too, checked like its consumer
/// groups before anything of it is registered; the remark says which entry
/// is wrong.
#[tokio::test]
async fn heartbeat_producer_groups_are_name_checked() {
    let ns = NameServer::start().await;
    let broker = TestBroker::start_temp("broker-hb", &ns.addr, |_, _| {}).await;
    let c = client();
    let addr = broker.addr.as_str();
    for bad in [TRAVERSAL_GROUP, "", "a b", &"g".repeat(256)] {
        refused(
            &c,
            addr,
            producer_heartbeat(bad),
            "HEART_BEAT producer group",
        )
        .await;
    }
    refused(
        &c,
        addr,
        heartbeat("../consumer"),
        "HEART_BEAT consumer group",
    )
    .await;
    // A heartbeat with a good consumer and a bad producer registers neither.
    let mut mixed = heartbeat("hb_consumer");
    let mut data: HeartbeatData = mq_protocol::route::decode_json(&mixed.body).unwrap();
    data.producer_data_set.push(ProducerData {
        group_name: "bad/producer".into(),
    });
    mixed.body = encode_json(&data).into();
    refused(&c, addr, mixed, "HEART_BEAT producer group").await;
    let list = RemotingCommand::request(request_code::GET_CONSUMER_LIST_BY_GROUP)
        .with_field("consumerGroup", "hb_consumer");
    refused(&c, addr, list.clone(), "no consumer").await;

    succeeds(&c, addr, producer_heartbeat("hb_producer")).await;
    succeeds(&c, addr, heartbeat("hb_consumer")).await;
    succeeds(&c, addr, list).await;
}

/// A send-back's numbers are checked: delay level -1 (straight to the DLQ)
/// up to the highest level, no negative reconsume limit.
#[tokio::test]
async fn send_back_and_send_numbers_are_range_checked() {
    let ns = NameServer::start().await;
    let broker = TestBroker::start_temp("broker-num", &ns.addr, |_, _| {}).await;
    let c = client();
    let addr = broker.addr.as_str();
    create_topic(&c, addr, "Num", 1).await;
    let sent = send(&c, addr, message("Num", 0, "", "", b"n")).await;
    let (_, offset) = decode_message_id(&sent.msg_id).unwrap();
    succeeds(&c, addr, heartbeat("num_group")).await;
    refused(&c, addr, send_back("num_group", offset, -2), "delayLevel").await;
    refused(&c, addr, send_back("num_group", offset, 19), "delayLevel").await;
    let mut negative = send_back("num_group", offset, 0);
    negative.ext_fields.insert("maxReconsumeTimes", "-1");
    refused(&c, addr, negative, "maxReconsumeTimes").await;
    let mut msg = message("Num", 0, "", "", b"n");
    msg.0.reconsume_times = Some(-1);
    refused(&c, addr, send_raw_request(msg), "reconsumeTimes").await;
    let mut msg = message("Num", 0, "", "", b"n");
    msg.0.queue_id = 1;
    refused(&c, addr, send_raw_request(msg), "queueId").await;
    succeeds(&c, addr, send_back("num_group", offset, 18)).await;
    send(&c, addr, message("Num", 0, "", "", b"still serving")).await;
}

/// SEND_MESSAGE_V2 of `msg`, as [`send_raw`] sends it.
fn send_raw_request(msg: (SendMessageRequestHeader, Vec<u8>)) -> RemotingCommand {
    RemotingCommand::request(request_code::SEND_MESSAGE_V2)
        .with_header(&SendMessageRequestHeaderV2::from_v1(&msg.0))
        .with_body(msg.1)
}

/// The finding's body: the `\n` is escaped in the properties text, so the
/// parser makes it a newline inside `haMasterAddress`'s value.
const MULTI_LINE: &str = "haMasterAddress=127.0.0.1:1\\nstorePathRootDir=X\\nbrokerConfigPath=Y";

#[tokio::test]
async fn config_updates_are_an_allow_list_of_one_line_values() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broker-a.properties");
    let original = "# operator's file\nbrokerName=broker-cfg\n";
    std::fs::write(&file, original).unwrap();
    let path = file.display().to_string();
    let broker = TestBroker::start_temp("broker-cfg", &ns.addr, move |broker, _| {
        broker.broker_config_path = path;
    })
    .await;
    let c = client();
    let addr = broker.addr.as_str();

    refused(&c, addr, update_config(MULTI_LINE), "control character").await;
    refused(
        &c,
        addr,
        update_config("slaveReadEnable=true\\nbrokerConfigPath=/tmp/y"),
        "control character",
    )
    .await;
    for fixed in [
        "brokerConfigPath=/tmp/y",
        "rocketmqHome=/tmp",
        "storePathRootDir=/tmp/x",
        "storePathCommitLog=/tmp/x",
        "listenPort=1",
        "haMasterAddress=127.0.0.1:1",
        "namesrvAddr=127.0.0.1:1",
    ] {
        let key = fixed.split('=').next().unwrap();
        refused(&c, addr, update_config(fixed), key).await;
    }
    refused(
        &c,
        addr,
        update_config("serverFrameMaxLength=2147483647"),
        "serverFrameMaxLength",
    )
    .await;
    refused(
        &c,
        addr,
        update_config("brokerPermission=0"),
        "brokerPermission",
    )
    .await;
    refused(
        &c,
        addr,
        update_config("brokerPermission=7"),
        "brokerPermission",
    )
    .await;
    // One bad key refuses the whole body: the good key before it is not kept.
    refused(
        &c,
        addr,
        update_config("slaveReadEnable=true\nbrokerConfigPath=/tmp/y"),
        "brokerConfigPath",
    )
    .await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original);
    assert!(!dir.path().join("Y").exists() && !Path::new("X").exists());

    succeeds(&c, addr, update_config("slaveReadEnable=true")).await;
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{original}slaveReadEnable=true\n")
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["broker-a.properties"], "no temporary file left");
}

/// The real binary: the finding's body leaves the `-c` file byte for byte,
/// and after a restart the store is where it was.
#[tokio::test]
async fn the_multi_line_update_leaves_the_c_file_and_the_store_after_a_restart() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &ns.addr, "");
    let before = std::fs::read(&config).unwrap();
    let c = client();

    let broker = BrokerProcess::spawn(&config);
    create_topic(&c, &broker.addr, "Kept", 1).await;
    send(&c, &broker.addr, message("Kept", 0, "", "", b"kept")).await;
    let elsewhere = dir.path().join("X");
    let body = format!(
        "haMasterAddress=127.0.0.1:1\\nstorePathRootDir={}\\nbrokerConfigPath={}",
        elsewhere.display(),
        dir.path().join("Y").display()
    );
    refused(&c, &broker.addr, update_config(&body), "control character").await;
    refused(
        &c,
        &broker.addr,
        update_config("serverFrameMaxLength=2147483647"),
        "serverFrameMaxLength",
    )
    .await;
    assert_eq!(
        std::fs::read(&config).unwrap(),
        before,
        "the -c file is untouched"
    );
    broker.stop();

    let broker = BrokerProcess::spawn(&config);
    assert_eq!(
        max_offset(&c, &broker.addr, "Kept", 0).await,
        1,
        "same store"
    );
    assert!(!elsewhere.exists());
    assert!(!dir.path().join("Y").exists());
    broker.stop();
}
