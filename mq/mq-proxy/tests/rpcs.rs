//! The RPCs the SDK crate cannot call (it has no ChangeInvisibleDuration,
//! no DLQ forward, no offset RPCs, no FIFO consumer), called with the
//! generated gRPC client: QueryAssignment, ChangeInvisibleDuration,
//! ForwardMessageToDeadLetterQueue, the offset RPCs and PullMessage, FIFO
//! delivery order; and bad input (an unknown RPC, a body that is not the
//! request's protobuf, bytes that are not HTTP/2) answered with a status
//! while the connection, or the server, keeps serving.

mod common;

use std::time::Duration;

use common::Env;
use mq_client::{ClientConfig, Message as Message4, Producer as Producer4, ProducerConfig};
use mq_proxy::pb::messaging_service_client::MessagingServiceClient;
use mq_proxy::pb::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::Request;

type Client = MessagingServiceClient<Channel>;

const CLIENT_ID: &str = "rpc-test-client";

async fn connect(env: &Env) -> Client {
    MessagingServiceClient::connect(format!("http://{}", env.proxy_addr))
        .await
        .expect("connect")
}

fn request<T>(body: T) -> Request<T> {
    let mut request = Request::new(body);
    request
        .metadata_mut()
        .insert("x-mq-client-id", CLIENT_ID.parse().unwrap());
    request
}

fn resource(name: &str) -> Option<Resource> {
    Some(Resource {
        resource_namespace: String::new(),
        name: name.to_owned(),
    })
}

fn endpoints(env: &Env) -> Option<Endpoints> {
    Some(Endpoints {
        scheme: AddressScheme::IPv4 as i32,
        addresses: vec![Address {
            host: env.proxy_addr.ip().to_string(),
            port: i32::from(env.proxy_addr.port()),
        }],
    })
}

fn duration(d: Duration) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    })
}

fn code(status: Option<&Status>) -> Code {
    Code::try_from(status.expect("a status").code).expect("a known code")
}

async fn producer_4x(env: &Env) -> Producer4 {
    let client = ClientConfig::new(env.cluster.namesrv.addr.clone())
        .with_instance_name(format!("rpcs-4x-{}", env.proxy_addr.port()));
    Producer4::start(ProducerConfig::new("pg-rpcs"), client)
        .await
        .expect("4.x producer")
}

async fn send_4x(env: &Env, topic: &str, bodies: &[&str]) {
    let producer = producer_4x(env).await;
    for body in bodies {
        producer
            .send(Message4::new(topic, body.to_string()).with_tags("T"))
            .await
            .expect("4.x send");
    }
    producer.shutdown().await;
}

async fn assignments(
    client: &mut Client,
    env: &Env,
    group: &str,
    topic: &str,
) -> Vec<MessageQueue> {
    let answer = client
        .query_assignment(request(QueryAssignmentRequest {
            topic: resource(topic),
            group: resource(group),
            endpoints: endpoints(env),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(answer.status.as_ref()), Code::Ok, "{answer:?}");
    answer
        .assignments
        .into_iter()
        .map(|a| a.message_queue.unwrap())
        .collect()
}

/// One ReceiveMessage: the first status and the messages.
async fn receive(
    client: &mut Client,
    group: &str,
    mq: &MessageQueue,
    invisible: Duration,
    wait: Duration,
) -> (Code, Vec<Message>) {
    use receive_message_response::Content;
    let mut stream = client
        .receive_message(request(ReceiveMessageRequest {
            group: resource(group),
            message_queue: Some(mq.clone()),
            filter_expression: Some(FilterExpression {
                r#type: FilterType::Tag as i32,
                expression: "*".into(),
            }),
            batch_size: 32,
            invisible_duration: duration(invisible),
            auto_renew: false,
            long_polling_timeout: duration(wait),
            attempt_id: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut status = None;
    let mut messages = Vec::new();
    while let Some(item) = stream.next().await {
        match item.unwrap().content {
            Some(Content::Status(s)) if status.is_none() => status = Some(s),
            Some(Content::Message(m)) => messages.push(m),
            _ => {}
        }
    }
    (code(status.as_ref()), messages)
}

/// Receives until a message comes (within a few seconds).
async fn receive_some(
    client: &mut Client,
    group: &str,
    mq: &MessageQueue,
    invisible: Duration,
) -> Vec<Message> {
    for _ in 0..20 {
        let (_, got) = receive(client, group, mq, invisible, Duration::from_millis(500)).await;
        if !got.is_empty() {
            return got;
        }
    }
    panic!("no message for {group}");
}

fn handle(message: &Message) -> String {
    message
        .system_properties
        .as_ref()
        .and_then(|s| s.receipt_handle.clone())
        .expect("a receipt handle")
}

fn attempt(message: &Message) -> i32 {
    message
        .system_properties
        .as_ref()
        .and_then(|s| s.delivery_attempt)
        .expect("a delivery attempt")
}

fn message_id(message: &Message) -> String {
    message
        .system_properties
        .as_ref()
        .unwrap()
        .message_id
        .clone()
}

async fn ack(client: &mut Client, group: &str, topic: &str, handle: &str) -> Code {
    let answer = client
        .ack_message(request(AckMessageRequest {
            group: resource(group),
            topic: resource(topic),
            entries: vec![AckMessageEntry {
                message_id: String::new(),
                receipt_handle: handle.to_owned(),
                lite_topic: None,
            }],
        }))
        .await
        .unwrap()
        .into_inner();
    code(answer.entries[0].status.as_ref())
}

async fn change_invisible(
    client: &mut Client,
    group: &str,
    topic: &str,
    handle: &str,
    invisible: Duration,
) -> (Code, String) {
    let answer = client
        .change_invisible_duration(request(ChangeInvisibleDurationRequest {
            group: resource(group),
            topic: resource(topic),
            receipt_handle: handle.to_owned(),
            invisible_duration: duration(invisible),
            message_id: String::new(),
            lite_topic: None,
            suspend: None,
        }))
        .await
        .unwrap()
        .into_inner();
    (code(answer.status.as_ref()), answer.receipt_handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_assignment_lists_the_readable_queues() {
    let mut env = Env::start().await;
    env.cluster.create_topic("Assign5", 2).await;
    let mut client = connect(&env).await;
    let queues = assignments(&mut client, &env, "cg-assign", "Assign5").await;
    let mut ids: Vec<i32> = queues.iter().map(|q| q.id).collect();
    ids.sort();
    assert_eq!(ids, [0, 1]);
    for q in &queues {
        let broker = q.broker.as_ref().unwrap();
        assert_eq!(broker.name, env.cluster.broker_name);
        assert_eq!(
            broker.endpoints,
            endpoints(&env),
            "reached through the proxy"
        );
        assert_eq!(q.permission(), Permission::ReadWrite);
    }
    let unknown = client
        .query_assignment(request(QueryAssignmentRequest {
            topic: resource("NoSuchTopic5"),
            group: resource("cg-assign"),
            endpoints: endpoints(&env),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(unknown.status.as_ref()), Code::TopicNotFound);
    let no_group = client
        .query_assignment(request(QueryAssignmentRequest {
            topic: resource("Assign5"),
            group: None,
            endpoints: endpoints(&env),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(no_group.status.as_ref()), Code::IllegalConsumerGroup);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_invisible_duration_delays_or_hastens_redelivery_with_a_new_handle() {
    let mut env = Env::start().await;
    env.cluster.create_topic("Invisible5", 1).await;
    send_4x(&env, "Invisible5", &["hide me"]).await;
    let mut client = connect(&env).await;
    let group = "cg-invisible";
    let mq = assignments(&mut client, &env, group, "Invisible5")
        .await
        .remove(0);
    let first = receive_some(&mut client, group, &mq, Duration::from_secs(1)).await;
    assert_eq!(first.len(), 1);
    let h1 = handle(&first[0]);

    // Longer: still invisible after the first invisible time passed.
    let (status, h2) = change_invisible(
        &mut client,
        group,
        "Invisible5",
        &h1,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(status, Code::Ok);
    assert_ne!(h2, h1, "a new handle");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, none) = receive(
        &mut client,
        group,
        &mq,
        Duration::from_secs(30),
        Duration::ZERO,
    )
    .await;
    assert!(none.is_empty(), "not redelivered while invisible");
    assert_eq!(status, Code::MessageNotFound);
    assert_eq!(
        ack(&mut client, group, "Invisible5", &h1).await,
        Code::InvalidReceiptHandle,
        "the old handle is replaced"
    );

    // Zero: visible at once, delivered again as its second attempt.
    let (status, _h3) =
        change_invisible(&mut client, group, "Invisible5", &h2, Duration::ZERO).await;
    assert_eq!(status, Code::Ok);
    let again = receive_some(&mut client, group, &mq, Duration::from_secs(30)).await;
    assert_eq!(message_id(&again[0]), message_id(&first[0]));
    assert_eq!(attempt(&again[0]), 2);
    let h4 = handle(&again[0]);
    assert_eq!(ack(&mut client, group, "Invisible5", &h4).await, Code::Ok);

    // After the ack, and for junk, the handle is refused.
    let (status, _) = change_invisible(
        &mut client,
        group,
        "Invisible5",
        &h4,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status, Code::InvalidReceiptHandle);
    let (status, _) = change_invisible(
        &mut client,
        group,
        "Invisible5",
        "junk",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status, Code::InvalidReceiptHandle);
    let (status, _) = change_invisible(
        &mut client,
        group,
        "Invisible5",
        &h4,
        Duration::from_secs(13 * 3600),
    )
    .await;
    assert_eq!(status, Code::IllegalInvisibleTime);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_message_is_in_the_dlq_and_not_delivered_again() {
    let mut env = Env::start().await;
    env.cluster.create_topic("Forward5", 1).await;
    send_4x(&env, "Forward5", &["give up on me"]).await;
    let mut client = connect(&env).await;
    let group = "cg-forward";
    let mq = assignments(&mut client, &env, group, "Forward5")
        .await
        .remove(0);
    let got = receive_some(&mut client, group, &mq, Duration::from_millis(500)).await;
    let h = handle(&got[0]);
    let forward = |h: String| ForwardMessageToDeadLetterQueueRequest {
        group: resource(group),
        topic: resource("Forward5"),
        receipt_handle: h,
        message_id: String::new(),
        delivery_attempt: 1,
        max_delivery_attempts: 16,
        lite_topic: None,
    };
    let answer = client
        .forward_message_to_dead_letter_queue(request(forward(h.clone())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(answer.status.as_ref()), Code::Ok, "{answer:?}");
    let again = client
        .forward_message_to_dead_letter_queue(request(forward(h)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(again.status.as_ref()), Code::InvalidReceiptHandle);

    let dead = env.pull_4x("check-forward", "%DLQ%cg-forward", 1).await;
    assert_eq!(&dead[0].body[..], b"give up on me");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, none) = receive(
        &mut client,
        group,
        &mq,
        Duration::from_secs(5),
        Duration::ZERO,
    )
    .await;
    assert!(none.is_empty(), "forwarded, so acknowledged");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_queried_committed_and_shared_with_receive() {
    use pull_message_response::Content;
    let mut env = Env::start().await;
    env.cluster.create_topic("Offsets5", 1).await;
    send_4x(&env, "Offsets5", &["m0", "m1", "m2"]).await;
    let mut client = connect(&env).await;
    let group = "cg-offsets";
    let mq = assignments(&mut client, &env, group, "Offsets5")
        .await
        .remove(0);

    let query = |policy: QueryOffsetPolicy| QueryOffsetRequest {
        message_queue: Some(mq.clone()),
        query_offset_policy: policy as i32,
        timestamp: None,
    };
    let begin = client
        .query_offset(request(query(QueryOffsetPolicy::Beginning)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((code(begin.status.as_ref()), begin.offset), (Code::Ok, 0));
    let end = client
        .query_offset(request(query(QueryOffsetPolicy::End)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((code(end.status.as_ref()), end.offset), (Code::Ok, 3));
    let no_time = client
        .query_offset(request(query(QueryOffsetPolicy::Timestamp)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(no_time.status.as_ref()), Code::BadRequest);

    let get = GetOffsetRequest {
        group: resource(group),
        message_queue: Some(mq.clone()),
    };
    // A group that never committed, on a queue that still holds its first
    // message, is at 0 (RocketMQ's QUERY_CONSUMER_OFFSET rule).
    let fresh = client
        .get_offset(request(get.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((code(fresh.status.as_ref()), fresh.offset), (Code::Ok, 0));
    let update = |offset| UpdateOffsetRequest {
        group: resource(group),
        message_queue: Some(mq.clone()),
        offset,
    };
    let negative = client
        .update_offset(request(update(-1)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(negative.status.as_ref()), Code::IllegalOffset);
    let updated = client
        .update_offset(request(update(2)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(updated.status.as_ref()), Code::Ok);
    let two = client.get_offset(request(get)).await.unwrap().into_inner();
    assert_eq!((code(two.status.as_ref()), two.offset), (Code::Ok, 2));

    // PullMessage from offset 1: m1, m2 and the next offset.
    let mut stream = client
        .pull_message(request(PullMessageRequest {
            group: resource(group),
            message_queue: Some(mq.clone()),
            offset: 1,
            batch_size: 32,
            filter_expression: None,
            long_polling_timeout: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut bodies = Vec::new();
    let mut next = None;
    let mut status = None;
    while let Some(item) = stream.next().await {
        match item.unwrap().content.unwrap() {
            Content::Status(s) => status = Some(s),
            Content::Message(m) => bodies.push(String::from_utf8(m.body).unwrap()),
            Content::NextOffset(n) => next = Some(n),
        }
    }
    assert_eq!(code(status.as_ref()), Code::Ok);
    assert_eq!(bodies, ["m1", "m2"]);
    assert_eq!(next, Some(3));

    // A receive of the group starts at its committed offset: m2 only.
    let got = receive_some(&mut client, group, &mq, Duration::from_secs(30)).await;
    let got: Vec<Vec<u8>> = got.into_iter().map(|m| m.body).collect();
    assert_eq!(got, [b"m2".to_vec()]);
    env.stop().await;
}

/// A telemetry stream announcing a FIFO simple consumer of `group` on
/// `topic`; the proxy keeps the settings while the sender lives.
async fn fifo_session(
    client: &mut Client,
    group: &str,
    topic: &str,
) -> tokio::sync::mpsc::Sender<TelemetryCommand> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(TelemetryCommand {
        status: None,
        command: Some(telemetry_command::Command::Settings(Settings {
            client_type: Some(ClientType::SimpleConsumer as i32),
            pub_sub: Some(settings::PubSub::Subscription(Subscription {
                group: resource(group),
                subscriptions: vec![SubscriptionEntry {
                    topic: resource(topic),
                    expression: None,
                }],
                fifo: Some(true),
                ..Default::default()
            })),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut answers = client
        .telemetry(request(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.next().await.unwrap().unwrap();
    assert_eq!(code(answer.status.as_ref()), Code::Ok);
    tokio::spawn(async move { while answers.next().await.is_some() {} });
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_consumer_gets_nothing_past_an_unacknowledged_message() {
    let mut env = Env::start().await;
    env.cluster.create_topic("FifoRecv5", 1).await;
    send_4x(&env, "FifoRecv5", &["f0", "f1", "f2"]).await;
    let mut client = connect(&env).await;
    let group = "cg-fifo-recv";
    let _session = fifo_session(&mut client, group, "FifoRecv5").await;
    let mq = assignments(&mut client, &env, group, "FifoRecv5")
        .await
        .remove(0);
    let bodies = |ms: &[Message]| -> Vec<String> {
        ms.iter()
            .map(|m| String::from_utf8(m.body.clone()).unwrap())
            .collect()
    };

    let first = receive_some(&mut client, group, &mq, Duration::from_secs(2)).await;
    assert_eq!(bodies(&first), ["f0", "f1", "f2"], "in queue order");
    // f1 and f2 acknowledged, f0 not; a new message f3 comes meanwhile.
    for m in &first[1..] {
        assert_eq!(
            ack(&mut client, group, "FifoRecv5", &handle(m)).await,
            Code::Ok
        );
    }
    send_4x(&env, "FifoRecv5", &["f3"]).await;
    let (_, blocked) = receive(
        &mut client,
        group,
        &mq,
        Duration::from_secs(2),
        Duration::ZERO,
    )
    .await;
    assert!(
        blocked.is_empty(),
        "nothing past the unacknowledged f0: {:?}",
        bodies(&blocked)
    );
    // Once f0 is visible again it comes first, alone.
    let again = receive_some(&mut client, group, &mq, Duration::from_secs(30)).await;
    assert_eq!(bodies(&again), ["f0"]);
    assert_eq!(attempt(&again[0]), 2);
    assert_eq!(
        ack(&mut client, group, "FifoRecv5", &handle(&again[0])).await,
        Code::Ok
    );
    let next = receive_some(&mut client, group, &mq, Duration::from_secs(30)).await;
    assert_eq!(bodies(&next), ["f3"]);
    env.stop().await;
}

/// The body of a message that is not a QueryRouteRequest: field 1 (the
/// topic, a message) as a varint.
#[derive(Clone, PartialEq, prost::Message)]
struct NotAQueryRoute {
    #[prost(uint64, tag = "1")]
    topic: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_calls_get_a_status_and_the_connection_keeps_serving() {
    let mut env = Env::start().await;
    env.cluster.create_topic("Bad5", 1).await;
    let channel = Channel::from_shared(format!("http://{}", env.proxy_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    let env_ref = &env;
    let route_ok = |channel: Channel| async move {
        let mut client = MessagingServiceClient::new(channel);
        let answer = client
            .query_route(request(QueryRouteRequest {
                topic: resource("Bad5"),
                endpoints: endpoints(env_ref),
            }))
            .await
            .expect("the connection still serves")
            .into_inner();
        code(answer.status.as_ref()) == Code::Ok
    };

    // An RPC the service does not have.
    grpc.ready().await.unwrap();
    let unknown: Result<tonic::Response<QueryRouteResponse>, tonic::Status> = grpc
        .unary(
            request(QueryRouteRequest::default()),
            "/apache.rocketmq.v2.MessagingService/NoSuchRpc"
                .parse()
                .unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await;
    assert_eq!(unknown.unwrap_err().code(), tonic::Code::Unimplemented);
    assert!(route_ok(channel.clone()).await);

    // A body that does not decode as the request.
    grpc.ready().await.unwrap();
    let garbled: Result<tonic::Response<QueryRouteResponse>, tonic::Status> = grpc
        .unary(
            request(NotAQueryRoute { topic: 7 }),
            "/apache.rocketmq.v2.MessagingService/QueryRoute"
                .parse()
                .unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await;
    let status = garbled.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
    assert!(route_ok(channel.clone()).await);

    // A telemetry stream without the client id header.
    let mut client = MessagingServiceClient::new(channel.clone());
    let refused = client
        .telemetry(Request::new(tokio_stream::empty::<TelemetryCommand>()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("x-mq-client-id"), "{refused:?}");

    // Bytes that are not HTTP/2 at all: that connection is closed, the
    // server serves the next one.
    let mut raw = tokio::net::TcpStream::connect(env.proxy_addr)
        .await
        .unwrap();
    raw.write_all(b"GET / HTTP/1.0\r\n\r\n\x00\x00\x00garbage")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut sink)).await;
    assert!(
        closed.is_ok(),
        "the server closes a connection it cannot read"
    );
    let fresh = Channel::from_shared(format!("http://{}", env.proxy_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert!(route_ok(fresh).await);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_stops_while_a_client_holds_its_telemetry_stream() {
    let mut env = Env::start().await;
    env.cluster.create_topic("Stop5", 1).await;
    let mut client = connect(&env).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(TelemetryCommand {
        status: None,
        command: Some(telemetry_command::Command::Settings(Settings {
            client_type: Some(ClientType::Producer as i32),
            pub_sub: Some(settings::PubSub::Publishing(Publishing {
                topics: vec![resource("Stop5").unwrap()],
                ..Default::default()
            })),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut answers = client
        .telemetry(request(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .await
        .unwrap()
        .into_inner();
    let settings = answers.next().await.unwrap().unwrap();
    assert_eq!(code(settings.status.as_ref()), Code::Ok);
    // The client keeps `tx`, as an SDK keeps its stream for its whole life.
    tokio::time::timeout(Duration::from_secs(10), env.stop())
        .await
        .expect("the proxy stops without waiting for the client to hang up");
    let end = tokio::time::timeout(Duration::from_secs(5), answers.next())
        .await
        .expect("the answer stream ends");
    assert!(
        !matches!(end, Some(Ok(_))),
        "no more commands after the stop: {end:?}"
    );
    drop(tx);
}
