//! The broker's plain ACL (`aclEnable`), driven frame by frame: signatures,
//! accounts, permissions, admin codes, start-up on a malformed file and
//! reloads. Every refusal is NO_PERMISSION with a remark, and the connection
//! serves the next good request.

use std::path::Path;
use std::time::Duration;

use mq_protocol::acl::sign_request;
use mq_protocol::body::{ConsumerData, HeartbeatData, SubscriptionData};
use mq_protocol::header::SendMessageRequestHeaderV2;
use mq_protocol::route::{encode_json, perm};
use mq_protocol::{request_code, RemotingCommand, ResponseCode};
use mq_remoting::RemotingClient;
use mq_testkit::frames::{self, call, code};
use mq_testkit::{broker_configs, wait_until, NameServer, TestBroker, WAIT};

const ACCOUNTS: &str = "\
accounts:
  - accessKey: rocketmq2
    secretKey: admin-secret
    admin: true
  - accessKey: producer1
    secretKey: producer-secret
    defaultTopicPerm: DENY
    topicPerms:
      - Orders=PUB
      - Audit=SUB
  - accessKey: consumer1
    secretKey: consumer-secret
    defaultTopicPerm: SUB
    defaultGroupPerm: SUB
    groupPerms:
      - blocked=DENY
";

const ADMIN: (&str, &str) = ("rocketmq2", "admin-secret");
const PRODUCER: (&str, &str) = ("producer1", "producer-secret");
const CONSUMER: (&str, &str) = ("consumer1", "consumer-secret");

fn signed(mut request: RemotingCommand, (ak, sk): (&str, &str)) -> RemotingCommand {
    sign_request(&mut request, ak, sk, None);
    request
}

fn create_topic_request(topic: &str) -> RemotingCommand {
    RemotingCommand::request(request_code::UPDATE_AND_CREATE_TOPIC)
        .with_field("topic", topic)
        .with_field("defaultTopic", "TBW102")
        .with_field("readQueueNums", 1)
        .with_field("writeQueueNums", 1)
        .with_field("perm", perm::READ | perm::WRITE)
        .with_field("topicFilterType", "SINGLE_TAG")
}

fn send_request(topic: &str) -> RemotingCommand {
    let (header, body) = frames::message(topic, 0, "", "", b"hello");
    RemotingCommand::request(request_code::SEND_MESSAGE_V2)
        .with_header(&SendMessageRequestHeaderV2::from_v1(&header))
        .with_body(body)
}

async fn answer(
    client: &RemotingClient,
    broker: &str,
    request: RemotingCommand,
) -> (Option<ResponseCode>, String) {
    let response = call(client, broker, request).await;
    (code(&response), response.remark.unwrap_or_default())
}

/// Asserts NO_PERMISSION with a remark containing `missing`.
async fn refused(client: &RemotingClient, broker: &str, request: RemotingCommand, missing: &str) {
    let (code, remark) = answer(client, broker, request).await;
    assert_eq!(code, Some(ResponseCode::NO_PERMISSION), "{remark}");
    assert!(
        remark.contains(missing),
        "remark {remark:?} should name {missing:?}"
    );
}

/// Waits until a send to "Orders" signed with `keys` is answered `wanted`
/// (the broker re-reads its accounts file within a second).
async fn newcomer_sends(
    client: &RemotingClient,
    broker: &str,
    keys: (&str, &str),
    wanted: ResponseCode,
    what: &str,
) {
    wait_until(what, WAIT, || async move {
        answer(client, broker, signed(send_request("Orders"), keys))
            .await
            .0
            == Some(wanted)
    })
    .await;
}

async fn ok(client: &RemotingClient, broker: &str, request: RemotingCommand) {
    let (code, remark) = answer(client, broker, request).await;
    assert_eq!(code, Some(ResponseCode::SUCCESS), "{remark}");
}

async fn acl_broker(namesrv: &NameServer, acl_file: &Path) -> TestBroker {
    let path = acl_file.display().to_string();
    TestBroker::start_temp("acl-broker", &namesrv.addr, move |b, _| {
        b.acl_enable = true;
        b.acl_file_path = path;
    })
    .await
}

#[tokio::test]
async fn requests_need_a_signature_an_account_and_the_permission() {
    let namesrv = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain_acl.yml");
    std::fs::write(&file, ACCOUNTS).unwrap();
    let mut broker = acl_broker(&namesrv, &file).await;
    let b = broker.addr.clone();
    let client = frames::client();

    // Unsigned, wrong signature, unknown key: refused, and the same
    // connection serves the good request right after each.
    refused(&client, &b, create_topic_request("Orders"), "not signed").await;
    refused(
        &client,
        &b,
        signed(
            create_topic_request("Orders"),
            ("rocketmq2", "wrong-secret"),
        ),
        "signature",
    )
    .await;
    refused(
        &client,
        &b,
        signed(create_topic_request("Orders"), ("stranger1", "whatever")),
        "stranger1",
    )
    .await;
    refused(
        &client,
        &b,
        signed(create_topic_request("Orders"), PRODUCER),
        "admin",
    )
    .await;
    ok(&client, &b, signed(create_topic_request("Orders"), ADMIN)).await;
    ok(&client, &b, signed(create_topic_request("Audit"), ADMIN)).await;

    // A PUB account sends; it cannot send where it only has SUB or nothing.
    ok(&client, &b, signed(send_request("Orders"), PRODUCER)).await;
    refused(
        &client,
        &b,
        signed(send_request("Audit"), PRODUCER),
        "PUB permission on topic Audit",
    )
    .await;
    refused(
        &client,
        &b,
        signed(send_request("Other"), PRODUCER),
        "topic Other",
    )
    .await;
    // A SUB-only account cannot send.
    refused(
        &client,
        &b,
        signed(send_request("Orders"), CONSUMER),
        "PUB permission on topic Orders",
    )
    .await;
    // A tampered body breaks the signature.
    let mut tampered = signed(send_request("Orders"), PRODUCER);
    tampered.body = bytes::Bytes::from_static(b"changed");
    refused(&client, &b, tampered, "signature").await;
    ok(&client, &b, signed(send_request("Orders"), PRODUCER)).await;

    // A consumer's heartbeat needs SUB on its group and topics; DENY wins.
    let heartbeat = |group: &str| {
        let data = HeartbeatData {
            client_id: "c1".into(),
            producer_data_set: vec![],
            consumer_data_set: vec![ConsumerData {
                group_name: group.into(),
                subscription_data_set: vec![SubscriptionData::parse("Orders", "*", 0)],
                ..ConsumerData::default()
            }],
        };
        RemotingCommand::request(request_code::HEART_BEAT).with_body(encode_json(&data))
    };
    ok(&client, &b, signed(heartbeat("billing"), CONSUMER)).await;
    refused(
        &client,
        &b,
        signed(heartbeat("blocked"), CONSUMER),
        "group blocked",
    )
    .await;

    // The retry topic follows the group: a consumer's send-back to its retry
    // topic needs SUB on the group, not PUB on the topic.
    ok(
        &client,
        &b,
        signed(send_request("%RETRY%billing"), CONSUMER),
    )
    .await;
    refused(
        &client,
        &b,
        signed(send_request("%RETRY%blocked"), CONSUMER),
        "group blocked",
    )
    .await;

    // Admin codes: broker config (it names the store's files) and deletes.
    let get_config = || RemotingCommand::request(request_code::GET_BROKER_CONFIG);
    refused(&client, &b, get_config(), "not signed").await;
    refused(&client, &b, signed(get_config(), CONSUMER), "admin").await;
    ok(&client, &b, signed(get_config(), ADMIN)).await;
    let delete = || {
        RemotingCommand::request(request_code::DELETE_TOPIC_IN_BROKER).with_field("topic", "Audit")
    };
    refused(&client, &b, signed(delete(), PRODUCER), "admin").await;
    ok(&client, &b, signed(delete(), ADMIN)).await;

    // What a slave copies needs a signed request of any account, as
    // RocketMQ's: the delay offsets and the timer checkpoint alike.
    for code in [
        request_code::GET_ALL_DELAY_OFFSET,
        request_code::GET_TIMER_CHECK_POINT,
    ] {
        let request = || RemotingCommand::request(code);
        refused(&client, &b, request(), "not signed").await;
        ok(&client, &b, signed(request(), CONSUMER)).await;
    }

    broker.stop().await;
}

#[tokio::test]
async fn reload_takes_a_good_file_and_keeps_the_last_good_one() {
    let namesrv = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain_acl.yml");
    std::fs::write(&file, ACCOUNTS).unwrap();
    let mut broker = acl_broker(&namesrv, &file).await;
    let b = broker.addr.clone();
    let client = frames::client();
    ok(&client, &b, signed(create_topic_request("Orders"), ADMIN)).await;
    let newcomer = ("newcomer1", "newcomer-secret");
    refused(
        &client,
        &b,
        signed(send_request("Orders"), newcomer),
        "newcomer1",
    )
    .await;

    let good = format!("{ACCOUNTS}  - accessKey: newcomer1\n    secretKey: newcomer-secret\n    defaultTopicPerm: PUB\n");
    std::fs::write(&file, &good).unwrap();
    newcomer_sends(
        &client,
        &b,
        newcomer,
        ResponseCode::SUCCESS,
        "the new account is in force",
    )
    .await;

    // A broken file (which would also drop the newcomer) is not taken: the
    // newcomer keeps sending on every look over several reload periods.
    // Nothing shows that the broker has read a broken file, so this one
    // absence is watched for a while; the good file written after it proves
    // the watcher still runs.
    std::fs::write(
        &file,
        format!("{ACCOUNTS}    defaultGroupPerm: EVERYTHING\n"),
    )
    .unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < until {
        ok(&client, &b, signed(send_request("Orders"), newcomer)).await;
        mq_testkit::wait::watch_for_absence(Duration::from_millis(100)).await;
    }
    std::fs::write(&file, ACCOUNTS).unwrap();
    newcomer_sends(
        &client,
        &b,
        newcomer,
        ResponseCode::NO_PERMISSION,
        "the newcomer's account is gone",
    )
    .await;

    broker.stop().await;
}

#[tokio::test]
async fn a_malformed_accounts_file_stops_start_up_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain_acl.yml");
    std::fs::write(&file, ACCOUNTS.replace("Audit=SUB", "Audit=READ")).unwrap();
    let (mut config, store) = broker_configs("bad-acl", &dir.path().join("store"), "");
    config.acl_enable = true;
    config.acl_file_path = file.display().to_string();
    let err = match mq_broker::BrokerHandle::start(config.clone(), store.clone()).await {
        Ok(_) => panic!("a broker with a malformed ACL file must not start"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("plain_acl.yml:10:"), "{err}");
    assert!(err.contains("Audit=READ"), "{err}");

    // A missing file is as fatal as a malformed one.
    config.acl_file_path = dir.path().join("absent.yml").display().to_string();
    assert!(mq_broker::BrokerHandle::start(config, store).await.is_err());
}

#[tokio::test]
async fn a_broker_signs_its_registration_with_a_protected_name_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain_acl.yml");
    std::fs::write(&file, ACCOUNTS).unwrap();
    let path = file.display().to_string();
    let namesrv = NameServer::start_with(move |n| {
        n.acl_enable = true;
        n.acl_file_path = path;
    })
    .await;
    // Returns only once the name server lists the broker: the signed
    // registration was accepted (and the unsigned cluster read still works).
    let mut broker = TestBroker::start_temp("signed-broker", &namesrv.addr, |b, _| {
        b.access_key = ADMIN.0.into();
        b.secret_key = ADMIN.1.into();
    })
    .await;
    let client = frames::client();
    let info = frames::cluster_info(&client, &namesrv.addr).await.unwrap();
    assert!(info.broker_addr_table.contains_key("signed-broker"));
    // Its own secret is not handed out with its configuration.
    let config = call(
        &client,
        &broker.addr,
        RemotingCommand::request(request_code::GET_BROKER_CONFIG),
    )
    .await;
    let text = String::from_utf8_lossy(&config.body);
    assert!(text.contains("secretKey=******"), "{text}");
    assert!(!text.contains(ADMIN.1), "{text}");
    broker.stop().await;
}
