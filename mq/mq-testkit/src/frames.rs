//! Requests to a broker or name server frame by frame, with our own remoting
//! client: how the broker's and name server's tests drive them without the
//! client crate, and how other tests observe what a broker stored.

use std::sync::Arc;
use std::time::Duration;

use mq_protocol::body::{ConsumerData, HeartbeatData, ProducerData, SubscriptionData};
use mq_protocol::header::{
    pull_sys_flag, PullMessageRequestHeader, PullMessageResponseHeader, SendMessageRequestHeader,
    SendMessageRequestHeaderV2, SendMessageResponseHeader,
};
use mq_protocol::message::{properties_to_string, Properties};
use mq_protocol::route::{decode_json, encode_json, perm, ClusterInfo, TopicRouteData};
use mq_protocol::{request_code, MessageExt, RemotingCommand, ResponseCode};
use mq_remoting::{ClientConfig, RemotingClient, RequestHandler};

/// How long one request may take to be answered.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A remoting client with default settings.
pub fn client() -> RemotingClient {
    RemotingClient::new(ClientConfig::default())
}

/// A remoting client that answers the server's requests (check-backs, say)
/// with `handler`.
pub fn client_with(handler: Arc<dyn RequestHandler>) -> RemotingClient {
    RemotingClient::with_handler(ClientConfig::default(), handler)
}

/// Sends `request` to `addr` and returns the answer; panics if there is none
/// within [`TIMEOUT`].
pub async fn call(
    client: &RemotingClient,
    addr: &str,
    request: RemotingCommand,
) -> RemotingCommand {
    client
        .invoke(addr, request, TIMEOUT)
        .await
        .expect("the call is answered")
}

/// The response code of `response`.
pub fn code(response: &RemotingCommand) -> Option<ResponseCode> {
    response.response_code()
}

/// Creates `topic` with `queues` read and write queues on `broker`
/// (UPDATE_AND_CREATE_TOPIC) and insists that it succeeds.
pub async fn create_topic(client: &RemotingClient, broker: &str, topic: &str, queues: i32) {
    let response = call(
        client,
        broker,
        RemotingCommand::request(request_code::UPDATE_AND_CREATE_TOPIC)
            .with_field("topic", topic)
            .with_field("defaultTopic", "TBW102")
            .with_field("readQueueNums", queues)
            .with_field("writeQueueNums", queues)
            .with_field("perm", perm::READ | perm::WRITE)
            .with_field("topicFilterType", "SINGLE_TAG"),
    )
    .await;
    assert_eq!(
        code(&response),
        Some(ResponseCode::SUCCESS),
        "{:?}",
        response.remark
    );
}

/// A message to send.
pub fn message(
    topic: &str,
    queue_id: i32,
    tags: &str,
    keys: &str,
    body: &[u8],
) -> (SendMessageRequestHeader, Vec<u8>) {
    let mut properties = Properties::new();
    if !tags.is_empty() {
        properties.insert("TAGS".into(), tags.into());
    }
    if !keys.is_empty() {
        properties.insert("KEYS".into(), keys.into());
    }
    properties.insert("UNIQ_KEY".into(), format!("{:032X}", rand_u128()));
    properties.insert("WAIT".into(), "true".into());
    (
        SendMessageRequestHeader {
            producer_group: "test-producer".into(),
            topic: topic.into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id,
            sys_flag: 0,
            born_timestamp: now_ms(),
            flag: 0,
            properties: Some(properties_to_string(&properties)),
            reconsume_times: Some(0),
            unit_mode: Some(false),
            batch: Some(false),
            max_reconsume_times: None,
        },
        body.to_vec(),
    )
}

/// `msg` with one more property.
pub fn with_property(
    mut msg: (SendMessageRequestHeader, Vec<u8>),
    key: &str,
    value: &str,
) -> (SendMessageRequestHeader, Vec<u8>) {
    let mut properties =
        mq_protocol::message::string_to_properties(msg.0.properties.as_deref().unwrap_or(""));
    properties.insert(key.into(), value.into());
    msg.0.properties = Some(properties_to_string(&properties));
    msg
}

/// A number no other call in this process returns (for unique keys).
pub fn rand_u128() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    (u128::from(std::process::id()) << 96)
        | (u128::from(now_ms() as u64) << 32)
        | u128::from(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Sends with SEND_MESSAGE_V2 and returns the response.
pub async fn send_raw(
    client: &RemotingClient,
    broker: &str,
    msg: (SendMessageRequestHeader, Vec<u8>),
) -> RemotingCommand {
    let request = RemotingCommand::request(request_code::SEND_MESSAGE_V2)
        .with_header(&SendMessageRequestHeaderV2::from_v1(&msg.0))
        .with_body(msg.1);
    call(client, broker, request).await
}

/// Sends and expects SEND_OK.
pub async fn send(
    client: &RemotingClient,
    broker: &str,
    msg: (SendMessageRequestHeader, Vec<u8>),
) -> SendMessageResponseHeader {
    let response = send_raw(client, broker, msg).await;
    assert_eq!(
        code(&response),
        Some(ResponseCode::SUCCESS),
        "send failed: {:?}",
        response.remark
    );
    response.header().unwrap()
}

/// HEART_BEAT for consumer `client_id` of `group` subscribed to `subs`
/// (topic, tag expression).
pub async fn heartbeat_consumer(
    client: &RemotingClient,
    broker: &str,
    client_id: &str,
    group: &str,
    subs: &[(&str, &str)],
) {
    let data = HeartbeatData {
        client_id: client_id.into(),
        producer_data_set: vec![],
        consumer_data_set: vec![ConsumerData {
            group_name: group.into(),
            subscription_data_set: subs
                .iter()
                .map(|(topic, expr)| SubscriptionData::parse(topic, expr, now_ms()))
                .collect(),
            ..ConsumerData::default()
        }],
    };
    let response = call(
        client,
        broker,
        RemotingCommand::request(request_code::HEART_BEAT).with_body(encode_json(&data)),
    )
    .await;
    assert_eq!(code(&response), Some(ResponseCode::SUCCESS));
}

/// HEART_BEAT for producer `client_id` of `group`.
pub async fn heartbeat_producer(
    client: &RemotingClient,
    broker: &str,
    client_id: &str,
    group: &str,
) {
    let data = HeartbeatData {
        client_id: client_id.into(),
        producer_data_set: vec![ProducerData {
            group_name: group.into(),
        }],
        consumer_data_set: vec![],
    };
    let response = call(
        client,
        broker,
        RemotingCommand::request(request_code::HEART_BEAT).with_body(encode_json(&data)),
    )
    .await;
    assert_eq!(code(&response), Some(ResponseCode::SUCCESS));
}

/// What one PULL_MESSAGE answered.
pub struct Pulled {
    pub code: Option<ResponseCode>,
    pub header: Option<PullMessageResponseHeader>,
    pub messages: Vec<MessageExt>,
}

/// PULL_MESSAGE of up to 32 messages from one queue; `suspend_ms > 0` asks
/// the broker to hold the pull that long while the queue is empty.
pub async fn pull(
    client: &RemotingClient,
    broker: &str,
    group: &str,
    topic: &str,
    queue_id: i32,
    offset: i64,
    suspend_ms: i64,
) -> Pulled {
    let mut sys_flag = 0;
    if suspend_ms > 0 {
        sys_flag |= pull_sys_flag::SUSPEND;
    }
    let header = PullMessageRequestHeader {
        consumer_group: group.into(),
        topic: topic.into(),
        queue_id,
        queue_offset: offset,
        max_msg_nums: 32,
        sys_flag,
        commit_offset: 0,
        suspend_timeout_millis: suspend_ms,
        subscription: None,
        sub_version: 0,
        expression_type: None,
        max_msg_bytes: None,
    };
    let response = client
        .invoke(
            broker,
            RemotingCommand::request(request_code::PULL_MESSAGE).with_header(&header),
            TIMEOUT + Duration::from_millis(suspend_ms as u64),
        )
        .await
        .expect("pull answered");
    Pulled {
        code: code(&response),
        header: response.header().ok(),
        messages: MessageExt::decode_all(&response.body).expect("pull body decodes"),
    }
}

/// Pulls every queue of `topic` from offset 0 until `want` messages arrived
/// or the deadline passed.
pub async fn pull_all(
    client: &RemotingClient,
    broker: &str,
    group: &str,
    topic: &str,
    queues: i32,
    want: usize,
    within: Duration,
) -> Vec<MessageExt> {
    let deadline = tokio::time::Instant::now() + within;
    let mut offsets = vec![0i64; queues as usize];
    let mut out = Vec::new();
    while out.len() < want && tokio::time::Instant::now() < deadline {
        for q in 0..queues {
            let pulled = pull(client, broker, group, topic, q, offsets[q as usize], 0).await;
            if let Some(h) = &pulled.header {
                if pulled.code == Some(ResponseCode::SUCCESS)
                    || pulled.code == Some(ResponseCode::PULL_RETRY_IMMEDIATELY)
                {
                    offsets[q as usize] = h.next_begin_offset;
                }
            }
            out.extend(pulled.messages);
        }
        if out.len() < want {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    out
}

/// The broker groups and clusters a name server knows
/// (GET_BROKER_CLUSTER_INFO); `None` while it does not answer.
pub async fn cluster_info(client: &RemotingClient, namesrv: &str) -> Option<ClusterInfo> {
    let response = client
        .invoke(
            namesrv,
            RemotingCommand::request(request_code::GET_BROKER_CLUSTER_INFO),
            TIMEOUT,
        )
        .await
        .ok()?;
    if response.response_code() != Some(ResponseCode::SUCCESS) {
        return None;
    }
    decode_json(&response.body).ok()
}

/// The route a name server serves for `topic` (GET_ROUTEINFO_BY_TOPIC);
/// `None` while it has none.
pub async fn route(client: &RemotingClient, namesrv: &str, topic: &str) -> Option<TopicRouteData> {
    let response = client
        .invoke(
            namesrv,
            RemotingCommand::request(request_code::GET_ROUTEINFO_BY_TOPIC)
                .with_field("topic", topic),
            TIMEOUT,
        )
        .await
        .ok()?;
    if response.response_code() != Some(ResponseCode::SUCCESS) {
        return None;
    }
    decode_json(&response.body).ok()
}

/// Asks for an offset; -1 when the broker has none (QUERY_NOT_FOUND: a
/// group that committed nothing yet).
async fn offset_query(client: &RemotingClient, broker: &str, request: RemotingCommand) -> i64 {
    let response = call(client, broker, request).await;
    match code(&response) {
        Some(ResponseCode::SUCCESS) => response
            .field("offset")
            .and_then(|offset| offset.parse().ok())
            .expect("offset field in the response header"),
        Some(ResponseCode::QUERY_NOT_FOUND) => -1,
        other => panic!("offset request failed: {other:?} {:?}", response.remark),
    }
}

/// The max offset of one queue (GET_MAX_OFFSET): how many messages it holds.
pub async fn max_offset(client: &RemotingClient, broker: &str, topic: &str, queue: i32) -> i64 {
    offset_query(
        client,
        broker,
        RemotingCommand::request(request_code::GET_MAX_OFFSET)
            .with_field("topic", topic)
            .with_field("queueId", queue),
    )
    .await
}

/// The consumer offset the broker holds for `group` on one queue
/// (QUERY_CONSUMER_OFFSET), -1 when none was committed.
pub async fn committed_offset(
    client: &RemotingClient,
    broker: &str,
    group: &str,
    topic: &str,
    queue: i32,
) -> i64 {
    offset_query(
        client,
        broker,
        RemotingCommand::request(request_code::QUERY_CONSUMER_OFFSET)
            .with_field("consumerGroup", group)
            .with_field("topic", topic)
            .with_field("queueId", queue),
    )
    .await
}

/// Everything one queue holds now, pulled by `group` from offset 0 up to
/// the queue's max offset (the group must have sent a heartbeat). A broker
/// dispatches a message to its queue before it acknowledges the write, so
/// after an acknowledged send or END_TRANSACTION nothing is missing: a test
/// can assert that something is absent without waiting to see it not come.
pub async fn pull_to_end(
    client: &RemotingClient,
    broker: &str,
    group: &str,
    topic: &str,
    queue_id: i32,
) -> Vec<MessageExt> {
    let end = max_offset(client, broker, topic, queue_id).await;
    let mut offset = 0;
    let mut out = Vec::new();
    while offset < end {
        let pulled = pull(client, broker, group, topic, queue_id, offset, 0).await;
        match &pulled.header {
            Some(header) if header.next_begin_offset > offset => offset = header.next_begin_offset,
            _ => panic!(
                "pulling {topic}:{queue_id} at {offset} (of {end}) did not advance: {:?}",
                pulled.code
            ),
        }
        out.extend(pulled.messages);
    }
    out
}
