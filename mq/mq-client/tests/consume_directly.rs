//! CONSUME_MESSAGE_DIRECTLY end to end: the admin asks the broker that
//! stored a message, the broker hands it to one live member of the group,
//! the member's listener consumes it and its verdict comes back.

mod common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use mq_client::{
    AdminClient, ConsumeStatus, Listener, Message, MessageExt, Producer, ProducerConfig,
    PushConsumer, TopicSpec,
};
use mq_protocol::admin_body::CMResult;

/// What the listener answers: 0 success, 1 later, 2 panic.
const SUCCEED: u8 = 0;
const LATER: u8 = 1;
const PANIC: u8 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_consumes_a_stored_message_again_and_says_how() {
    let ns = NameServer::start().await;
    let mut broker = start_broker("broker-a", &ns.addr).await;
    let admin = AdminClient::start(client_config(&ns.addr)).await.unwrap();
    admin
        .create_topic(&broker.addr, &TopicSpec::new("Direct").with_queues(2, 2))
        .await
        .unwrap();
    wait_until("the topic's route", LIMIT, || async {
        admin.topic_route("Direct").await.is_ok()
    })
    .await;
    let producer = Producer::start(ProducerConfig::new("pg-direct"), client_config(&ns.addr))
        .await
        .unwrap();

    let seen: Arc<Mutex<Vec<MessageExt>>> = Arc::default();
    let mode = Arc::new(AtomicU8::new(SUCCEED));
    let (sink, verdict) = (seen.clone(), mode.clone());
    let consumer = PushConsumer::new(push_config("cg-direct"), client_config(&ns.addr));
    consumer.subscribe("Direct", "*").unwrap();
    consumer
        .start(Listener::concurrent(move |msgs: Vec<MessageExt>| {
            let (sink, verdict) = (sink.clone(), verdict.clone());
            async move {
                sink.lock().unwrap().extend(msgs);
                match verdict.load(Ordering::SeqCst) {
                    SUCCEED => ConsumeStatus::Success,
                    LATER => ConsumeStatus::ReconsumeLater,
                    _ => panic!("the stock service is down"),
                }
            }
        }))
        .await
        .unwrap();
    let sent = producer
        .send(Message::new("Direct", "resend me").with_keys(["order-7"]))
        .await
        .unwrap();
    wait_until("the message delivered once", LIMIT, || async {
        seen.lock().unwrap().len() == 1
    })
    .await;

    // Any live member (no client id): the listener runs once more.
    let result = admin
        .consume_message_directly(
            &broker.addr,
            "cg-direct",
            None,
            "Direct",
            &sent.offset_msg_id,
        )
        .await
        .unwrap();
    assert_eq!(result.consume_result, Some(CMResult::CR_SUCCESS));
    assert!(!result.order && result.auto_commit);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "the listener ran on it again");
        assert_eq!(seen[1].body.as_ref(), b"resend me");
        assert_eq!(seen[1].msg_id(), sent.msg_id);
        assert_eq!(seen[1].topic, "Direct");
    }

    // The member by its client id, with the listener's other verdicts.
    let connections = admin
        .consumer_connection(&broker.addr, "cg-direct")
        .await
        .unwrap();
    let client_id = connections.connection_set[0].client_id.clone();
    mode.store(LATER, Ordering::SeqCst);
    let result = admin
        .consume_message_directly(
            &broker.addr,
            "cg-direct",
            Some(&client_id),
            "Direct",
            &sent.offset_msg_id,
        )
        .await
        .unwrap();
    assert_eq!(result.consume_result, Some(CMResult::CR_LATER));
    mode.store(PANIC, Ordering::SeqCst);
    let result = admin
        .consume_message_directly(
            &broker.addr,
            "cg-direct",
            Some(&client_id),
            "Direct",
            &sent.offset_msg_id,
        )
        .await
        .unwrap();
    assert_eq!(result.consume_result, Some(CMResult::CR_THROW_EXCEPTION));
    assert!(result
        .remark
        .as_deref()
        .is_some_and(|r| r.contains("the stock service is down")));
    assert_eq!(seen.lock().unwrap().len(), 4);

    // No such member, no live member, no such message: clear errors.
    let error = admin
        .consume_message_directly(
            &broker.addr,
            "cg-direct",
            Some("10.9.9.9@nobody"),
            "Direct",
            &sent.offset_msg_id,
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("not online"), "{error}");
    let error = admin
        .consume_message_directly(
            &broker.addr,
            "cg-nobody",
            None,
            "Direct",
            &sent.offset_msg_id,
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("not online"), "{error}");
    let beyond = format!("{}{:016X}", &sent.offset_msg_id[..16], 1u64 << 40);
    let error = admin
        .consume_message_directly(&broker.addr, "cg-direct", None, "Direct", &beyond)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no message"), "{error}");

    consumer.shutdown().await;
    producer.shutdown().await;
    admin.shutdown().await;
    broker.stop().await;
}
