//! The retry policy of a send: which failures another broker may not have,
//! and the loop that tries the next queue on another broker.

use std::future::Future;

use mq_protocol::body::MessageQueue;
use mq_protocol::ResponseCode;
use tracing::debug;

use super::config::SendResult;
use super::queue::TopicPublishInfo;
use crate::error::{is_network_error, ClientError, Result};

/// Runs up to `times` attempts, each on the next queue avoiding the broker
/// that failed last; stops at the first success or at an error that another
/// broker would not fix.
pub(crate) async fn send_with_retry<F, Fut>(
    topic: &str,
    info: &TopicPublishInfo,
    times: u32,
    mut attempt: F,
) -> Result<SendResult>
where
    F: FnMut(MessageQueue) -> Fut,
    Fut: Future<Output = Result<SendResult>>,
{
    let mut last_broker: Option<String> = None;
    let mut last_error = None;
    let mut attempts = 0;
    for _ in 0..times.max(1) {
        let Some(queue) = info.select_queue(last_broker.as_deref()).cloned() else {
            break;
        };
        attempts += 1;
        let broker = queue.broker_name.clone();
        match attempt(queue).await {
            Ok(result) => return Ok(result),
            Err(error) if is_retriable(&error) => {
                debug!(topic, broker, %error, "send failed, trying another broker");
                last_broker = Some(broker);
                last_error = Some(error);
            }
            Err(error) => return Err(error),
        }
    }
    Err(match last_error {
        Some(last) => ClientError::SendFailed {
            topic: topic.to_owned(),
            attempts,
            last: Box::new(last),
        },
        None => ClientError::NoRoute {
            topic: topic.to_owned(),
        },
    })
}

/// Failures another broker may not have (RocketMQ's retry list).
fn is_retriable(error: &ClientError) -> bool {
    if is_network_error(error) || matches!(error, ClientError::BrokerNotFound { .. }) {
        return true;
    }
    error.response_code().is_some_and(|code| {
        [
            ResponseCode::TOPIC_NOT_EXIST,
            ResponseCode::SERVICE_NOT_AVAILABLE,
            ResponseCode::SYSTEM_ERROR,
            ResponseCode::SYSTEM_BUSY,
            ResponseCode::NO_PERMISSION,
            ResponseCode::NO_BUYER_ID,
            ResponseCode::NOT_IN_CURRENT_UNIT,
        ]
        .iter()
        .any(|c| i32::from(*c) == code)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::producer::config::SendStatus;

    /// `count` queues on each broker, in broker name order, as
    /// `TopicPublishInfo::from_route` lays them out.
    fn queues(brokers: &[&str], count: i32) -> TopicPublishInfo {
        TopicPublishInfo::new(
            brokers
                .iter()
                .flat_map(|name| {
                    (0..count).map(|queue_id| MessageQueue {
                        topic: "T".into(),
                        broker_name: (*name).into(),
                        queue_id,
                    })
                })
                .collect(),
        )
    }

    fn result(queue: &MessageQueue) -> SendResult {
        SendResult {
            status: SendStatus::SendOk,
            msg_id: "id".into(),
            offset_msg_id: "off".into(),
            queue: queue.clone(),
            queue_offset: 0,
            transaction_id: None,
            broker_addr: String::new(),
        }
    }

    fn remote(code: ResponseCode, remark: &str) -> ClientError {
        ClientError::Remoting(mq_remoting::RemotingError::Remote {
            code: i32::from(code),
            remark: remark.into(),
        })
    }

    #[tokio::test]
    async fn a_failed_send_is_retried_on_another_broker() {
        let info = queues(&["a", "b"], 4);
        for _ in 0..8 {
            let tried = Mutex::new(Vec::new());
            let outcome = send_with_retry("T", &info, 3, |queue| {
                tried.lock().unwrap().push(queue.broker_name.clone());
                let first = tried.lock().unwrap().len() == 1;
                async move {
                    if first {
                        Err(ClientError::Remoting(
                            mq_remoting::RemotingError::ConnectFailed {
                                addr: queue.broker_name.clone(),
                                reason: "refused".into(),
                            },
                        ))
                    } else {
                        Ok(result(&queue))
                    }
                }
            })
            .await
            .unwrap();
            let tried = tried.into_inner().unwrap();
            assert_eq!(tried.len(), 2);
            assert_ne!(tried[0], tried[1], "the retry went to the same broker");
            assert_eq!(outcome.queue.broker_name, tried[1]);
        }
    }

    #[tokio::test]
    async fn retries_stop_at_the_limit_and_on_final_errors() {
        let info = queues(&["a", "b"], 1);
        let calls = AtomicUsize::new(0);
        let err = send_with_retry("T", &info, 3, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<SendResult, _>(remote(ResponseCode::SYSTEM_ERROR, "disk")) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(
            matches!(err, ClientError::SendFailed { attempts: 3, .. }),
            "{err}"
        );
        assert_eq!(err.response_code(), Some(1));

        let calls = AtomicUsize::new(0);
        let err = send_with_retry("T", &info, 3, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<SendResult, _>(remote(ResponseCode::MESSAGE_ILLEGAL, "too big")) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "MESSAGE_ILLEGAL is final");
        assert_eq!(err.response_code(), Some(13));
    }
}
