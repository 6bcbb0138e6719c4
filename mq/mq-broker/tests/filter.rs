//! SQL92 property filters against raw frames: what a consumer gets with
//! `enablePropertyFilter` on (pulls that carry the expression and pulls by
//! the heartbeat's subscription), offsets moving past what does not match,
//! and the refusals: a bad expression, and any SQL92 while the switch is
//! off, at HEART_BEAT, CHECK_CLIENT_CONFIG and PULL_MESSAGE.

mod common;

use common::*;
use mq_protocol::body::{CheckClientRequestBody, ConsumerData, HeartbeatData, SubscriptionData};
use mq_protocol::header::{pull_sys_flag, PullMessageRequestHeader, PullMessageResponseHeader};
use mq_protocol::route::encode_json;
use mq_protocol::{request_code, MessageExt, RemotingCommand, ResponseCode};
use mq_remoting::RemotingClient;

const TOPIC: &str = "Filtered";
const WANT: &str = "a > 5 AND region IN ('eu','us')";

/// What one pull answered.
struct Answer {
    code: Option<ResponseCode>,
    remark: String,
    header: Option<PullMessageResponseHeader>,
    bodies: Vec<String>,
}

fn bodies(messages: &[MessageExt]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

/// PULL_MESSAGE of queue 0 from `offset`, carrying `expression` of `kind`
/// (`None`: by the subscription the group's heartbeat registered).
async fn pull(
    c: &RemotingClient,
    broker: &str,
    group: &str,
    offset: i64,
    carried: Option<(&str, &str)>,
) -> Answer {
    let header = PullMessageRequestHeader {
        consumer_group: group.into(),
        topic: TOPIC.into(),
        queue_id: 0,
        queue_offset: offset,
        max_msg_nums: 32,
        sys_flag: if carried.is_some() {
            pull_sys_flag::SUBSCRIPTION
        } else {
            0
        },
        commit_offset: 0,
        suspend_timeout_millis: 0,
        subscription: carried.map(|(expression, _)| expression.to_owned()),
        sub_version: now_ms(),
        expression_type: carried.map(|(_, kind)| kind.to_owned()),
        max_msg_bytes: None,
    };
    let response = call(
        c,
        broker,
        RemotingCommand::request(request_code::PULL_MESSAGE).with_header(&header),
    )
    .await;
    Answer {
        code: code(&response),
        remark: response.remark.clone().unwrap_or_default(),
        header: response.header().ok(),
        bodies: bodies(&MessageExt::decode_all(&response.body).unwrap()),
    }
}

fn sql(expression: &str) -> SubscriptionData {
    SubscriptionData::build(TOPIC, expression, Some("SQL92"), now_ms()).unwrap()
}

async fn heartbeat(
    c: &RemotingClient,
    broker: &str,
    group: &str,
    sub: SubscriptionData,
) -> RemotingCommand {
    let data = HeartbeatData {
        client_id: format!("{group}-client"),
        producer_data_set: vec![],
        consumer_data_set: vec![ConsumerData {
            group_name: group.into(),
            subscription_data_set: vec![sub],
            ..ConsumerData::default()
        }],
    };
    call(
        c,
        broker,
        RemotingCommand::request(request_code::HEART_BEAT).with_body(encode_json(&data)),
    )
    .await
}

async fn check_client(c: &RemotingClient, broker: &str, sub: SubscriptionData) -> RemotingCommand {
    let body = CheckClientRequestBody {
        client_id: "checker".into(),
        group: "g-check".into(),
        subscription_data: Some(sub),
        namespace: None,
    };
    call(
        c,
        broker,
        RemotingCommand::request(request_code::CHECK_CLIENT_CONFIG).with_body(encode_json(&body)),
    )
    .await
}

/// Sends m0..m11 to queue 0: `a` = i, `region` eu/us/asia in turn, TagA
/// on even i; m12 has no `a`. The matches of [`WANT`] are m6 m7 m9 m10.
async fn send_messages(c: &RemotingClient, broker: &str) {
    for i in 0..13 {
        let tags = if i % 2 == 0 { "TagA" } else { "TagB" };
        let mut msg = message(TOPIC, 0, tags, "", format!("m{i}").as_bytes());
        if i < 12 {
            msg = with_property(msg, "a", &i.to_string());
        }
        msg = with_property(msg, "region", ["eu", "us", "asia"][i % 3]);
        send(c, broker, msg).await;
    }
}

#[tokio::test]
async fn a_sql92_consumer_gets_exactly_the_matching_messages() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker_with("broker-a", dir.path(), &ns.addr, |b, _| {
        b.enable_property_filter = true;
    })
    .await;
    let c = client();
    create_topic(&c, &broker.addr, TOPIC, 1).await;
    send_messages(&c, &broker.addr).await;
    let matching = ["m6", "m7", "m9", "m10"];

    // A pull that carries the expression (a pull consumer's).
    let got = pull(&c, &broker.addr, "g-pull", 0, Some((WANT, "SQL92"))).await;
    assert_eq!(got.code, Some(ResponseCode::SUCCESS), "{}", got.remark);
    assert_eq!(got.bodies, matching);
    // The next offset is past the last message looked at, matching or not.
    assert_eq!(got.header.unwrap().next_begin_offset, 13);

    // From an offset in the middle, only what follows.
    let got = pull(&c, &broker.addr, "g-pull", 8, Some((WANT, "SQL92"))).await;
    assert_eq!(got.bodies, ["m9", "m10"]);

    // Nothing matches: the pull says so and still moves the offset on.
    let none = pull(&c, &broker.addr, "g-pull", 0, Some(("a > 100", "SQL92"))).await;
    assert_eq!(none.code, Some(ResponseCode::PULL_RETRY_IMMEDIATELY));
    assert!(none.bodies.is_empty());
    assert_eq!(none.header.unwrap().next_begin_offset, 13);

    // System properties are properties: TAGS among them.
    let tagged = pull(
        &c,
        &broker.addr,
        "g-pull",
        0,
        Some(("TAGS = 'TagA' AND a >= 8 OR a IS NULL", "SQL92")),
    )
    .await;
    assert_eq!(tagged.bodies, ["m8", "m10", "m12"]);

    // A tag pull on the same broker is as before.
    let tags = pull(&c, &broker.addr, "g-pull", 0, Some(("TagB", "TAG"))).await;
    assert_eq!(tags.bodies, ["m1", "m3", "m5", "m7", "m9", "m11"]);

    // A push consumer's pulls: by the subscription its heartbeat registered.
    let hb = heartbeat(&c, &broker.addr, "g-push", sql(WANT)).await;
    assert_eq!(code(&hb), Some(ResponseCode::SUCCESS), "{:?}", hb.remark);
    let got = pull(&c, &broker.addr, "g-push", 0, None).await;
    assert_eq!(got.code, Some(ResponseCode::SUCCESS), "{}", got.remark);
    assert_eq!(got.bodies, matching);
    assert_eq!(got.header.unwrap().next_begin_offset, 13);

    // CHECK_CLIENT_CONFIG says yes to what the broker serves.
    assert_eq!(
        code(&check_client(&c, &broker.addr, sql(WANT)).await),
        Some(ResponseCode::SUCCESS)
    );
    assert_eq!(
        code(&check_client(&c, &broker.addr, SubscriptionData::parse(TOPIC, "*", 1)).await),
        Some(ResponseCode::SUCCESS)
    );
}

#[tokio::test]
async fn a_bad_expression_is_refused_when_subscribed_and_when_pulled() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker_with("broker-a", dir.path(), &ns.addr, |b, _| {
        b.enable_property_filter = true;
    })
    .await;
    let c = client();
    create_topic(&c, &broker.addr, TOPIC, 1).await;
    send_messages(&c, &broker.addr).await;
    let bad = "a > 5 AND region IN 'eu'";

    let hb = heartbeat(&c, &broker.addr, "g-bad", sql(bad)).await;
    assert_eq!(code(&hb), Some(ResponseCode::SUBSCRIPTION_PARSE_FAILED));
    let remark = hb.remark.unwrap_or_default();
    assert!(
        remark.contains("invalid SQL92 filter at character 21") && remark.contains("g-bad"),
        "{remark}"
    );
    // Nothing of that heartbeat was registered.
    let got = pull(&c, &broker.addr, "g-bad", 0, None).await;
    assert_eq!(got.code, Some(ResponseCode::SUBSCRIPTION_NOT_EXIST));

    let checked = check_client(&c, &broker.addr, sql(bad)).await;
    assert_eq!(
        code(&checked),
        Some(ResponseCode::SUBSCRIPTION_PARSE_FAILED)
    );
    assert!(checked.remark.unwrap_or_default().contains("expected '('"));

    let got = pull(&c, &broker.addr, "g-bad", 0, Some((bad, "SQL92"))).await;
    assert_eq!(got.code, Some(ResponseCode::SUBSCRIPTION_PARSE_FAILED));
    assert!(
        got.remark
            .starts_with("parse the consumer's subscription failed: invalid SQL92 filter"),
        "{}",
        got.remark
    );
    let got = pull(&c, &broker.addr, "g-bad", 0, Some(("a > 1", "GROOVY"))).await;
    assert_eq!(got.code, Some(ResponseCode::SUBSCRIPTION_PARSE_FAILED));
    // The connection keeps serving.
    let fine = pull(&c, &broker.addr, "g-bad", 0, Some((WANT, "SQL92"))).await;
    assert_eq!(fine.code, Some(ResponseCode::SUCCESS));
}

#[tokio::test]
async fn with_the_property_filter_off_sql92_is_refused_as_rocketmq_refuses_it() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    // RocketMQ's default: enablePropertyFilter=false.
    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    create_topic(&c, &broker.addr, TOPIC, 1).await;
    send_messages(&c, &broker.addr).await;
    let refusal = "The broker does not support consumer to filter message by SQL92";

    let hb = heartbeat(&c, &broker.addr, "g-off", sql(WANT)).await;
    assert_eq!(code(&hb), Some(ResponseCode::SYSTEM_ERROR));
    assert!(hb.remark.unwrap_or_default().starts_with(refusal));

    let checked = check_client(&c, &broker.addr, sql(WANT)).await;
    assert_eq!(code(&checked), Some(ResponseCode::SYSTEM_ERROR));
    assert_eq!(checked.remark.as_deref(), Some(refusal));

    let got = pull(&c, &broker.addr, "g-off", 0, Some((WANT, "SQL92"))).await;
    assert_eq!(got.code, Some(ResponseCode::SYSTEM_ERROR));
    assert_eq!(got.remark, refusal);
    assert!(got.bodies.is_empty());

    // Tags are served as ever.
    let tags = pull(&c, &broker.addr, "g-off", 0, Some(("TagA", "TAG"))).await;
    assert_eq!(tags.bodies.len(), 7);
    assert_eq!(
        code(&check_client(&c, &broker.addr, SubscriptionData::parse(TOPIC, "TagA", 1)).await),
        Some(ResponseCode::SUCCESS)
    );

    // The switch can be turned on at run time.
    let update = call(
        &c,
        &broker.addr,
        RemotingCommand::request(request_code::UPDATE_BROKER_CONFIG)
            .with_body(b"enablePropertyFilter=true\n".to_vec()),
    )
    .await;
    assert_eq!(
        code(&update),
        Some(ResponseCode::SUCCESS),
        "{:?}",
        update.remark
    );
    let got = pull(&c, &broker.addr, "g-off", 0, Some((WANT, "SQL92"))).await;
    assert_eq!(got.bodies, ["m6", "m7", "m9", "m10"]);
}
