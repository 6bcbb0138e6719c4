//! CONSUME_MESSAGE_DIRECTLY on the consumer side: an operator asked (through
//! a broker) that this member's listener consume one stored message again,
//! outside the queues it owns. The listener runs on that message alone and
//! the answer says what it decided and how long it took; no offset moves
//! and nothing is sent back on failure (RocketMQ's `consumeMessageDirectly`
//! of its concurrent and orderly services).

use std::time::Instant;

use mq_protocol::admin_body::{CMResult, ConsumeMessageDirectlyResult};
use mq_protocol::MessageExt;
use tracing::{info, warn};

use crate::consumer::listener::{ConsumeStatus, Listener};

/// Runs `listener` on `msg` for `group` and reports the outcome. A
/// listener that panics is CR_THROW_EXCEPTION with the panic's message.
pub(super) async fn consume_directly(
    listener: Listener,
    group: String,
    mut msg: MessageExt,
) -> ConsumeMessageDirectlyResult {
    super::pull_loop::restore_retry_topic(&group, &mut msg);
    let order = listener.is_ordered();
    let msg_id = msg.msg_id();
    let started = Instant::now();
    let run = tokio::spawn(async move { listener.consume(&[msg]).await }).await;
    let spent_time_mills = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (consume_result, remark) = match run {
        Ok(ConsumeStatus::Success) => (CMResult::CR_SUCCESS, None),
        Ok(ConsumeStatus::ReconsumeLater) => (CMResult::CR_LATER, None),
        Err(error) => {
            let remark = panic_text(error);
            warn!(
                group,
                msg_id, remark, "listener failed on a directly consumed message"
            );
            (CMResult::CR_THROW_EXCEPTION, Some(remark))
        }
    };
    info!(
        group,
        msg_id,
        ?consume_result,
        spent_time_mills,
        "message consumed directly"
    );
    ConsumeMessageDirectlyResult {
        order,
        auto_commit: true,
        consume_result: Some(consume_result),
        remark,
        spent_time_mills,
    }
}

/// What a failed listener task says about itself.
fn panic_text(error: tokio::task::JoinError) -> String {
    if !error.is_panic() {
        return "the listener was cancelled".to_owned();
    }
    let panic = error.into_panic();
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    format!("the listener panicked: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mq_protocol::message::property;

    fn message(topic: &str) -> MessageExt {
        let host = "127.0.0.1:10911".parse().unwrap();
        MessageExt {
            topic: topic.to_owned(),
            queue_id: 0,
            flag: 0,
            queue_offset: 3,
            commit_log_offset: 0,
            sys_flag: 0,
            born_timestamp: 0,
            born_host: host,
            store_timestamp: 0,
            store_host: host,
            reconsume_times: 1,
            prepared_transaction_offset: 0,
            body_crc: 0,
            body: Bytes::from_static(b"hi"),
            properties: [(property::RETRY_TOPIC.to_owned(), "Orders".to_owned())].into(),
            store_size: 0,
        }
    }

    #[tokio::test]
    async fn each_verdict_is_reported() {
        let ok = Listener::concurrent(|msgs: Vec<MessageExt>| async move {
            assert_eq!(msgs[0].topic, "Orders", "the retry topic is undone");
            ConsumeStatus::Success
        });
        let r = consume_directly(ok, "g".into(), message("%RETRY%g")).await;
        assert_eq!(r.consume_result, Some(CMResult::CR_SUCCESS));
        assert!(!r.order && r.auto_commit && r.remark.is_none());

        let later = Listener::ordered(|_| async { ConsumeStatus::ReconsumeLater });
        let r = consume_directly(later, "g".into(), message("Orders")).await;
        assert_eq!(r.consume_result, Some(CMResult::CR_LATER));
        assert!(r.order);

        let bad = Listener::concurrent(|_| async { panic!("no stock row") });
        let r = consume_directly(bad, "g".into(), message("Orders")).await;
        assert_eq!(r.consume_result, Some(CMResult::CR_THROW_EXCEPTION));
        assert!(r.remark.unwrap().contains("no stock row"));
    }
}
