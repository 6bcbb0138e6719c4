//! Transaction check-backs (RocketMQ's `TransactionalMessageCheckService`):
//! a half message left without an outcome longer than `transactionTimeOut`
//! is asked about (CHECK_TRANSACTION_STATE to a live producer of its
//! group), at most `transactionCheckMax` times, then discarded.

use std::sync::Arc;

use bytes::BytesMut;
use mq_protocol::header::CheckTransactionStateRequestHeader;
use mq_protocol::message::property;
use mq_protocol::{request_code, topic, MessageExt, RemotingCommand};
use tracing::{debug, warn};

use super::Step;
use crate::broker::Broker;

/// Half messages looked at per check step at most.
const CHECK_BATCH: usize = 256;

/// Checks pending half messages, one [`TransactionCheckService::step`] at a
/// time.
pub(crate) struct TransactionCheckService {
    broker: Arc<Broker>,
}

impl TransactionCheckService {
    pub(crate) fn new(broker: Arc<Broker>) -> Self {
        TransactionCheckService { broker }
    }

    /// One round of the check service at time `now`: discard halves checked too
    /// often, ask a producer about the others that are old enough, and move the
    /// frontier past everything resolved.
    pub(crate) async fn step(&self, now: i64) -> Step {
        let broker = &*self.broker;
        let config = broker.config();
        let timeout = config.transaction_time_out as i64;
        let max_checks = config.transaction_check_max;
        let mut worked = Step::Idle;
        let frontier = broker.transactions.frontier();
        let result = broker.store.get_message(
            topic::TRANS_HALF_TOPIC,
            0,
            frontier,
            CHECK_BATCH,
            usize::MAX,
            &|_| true,
        );
        for bytes in &result.messages {
            let Ok((half, _)) = MessageExt::decode(bytes, false) else {
                continue;
            };
            let q = half.queue_offset as u64;
            let (ended, checks) = broker.transactions.check_state(q);
            if ended {
                continue;
            }
            let age = now - half.store_timestamp;
            if age < timeout {
                // Later halves are younger still.
                break;
            }
            let immunity = half
                .property(property::CHECK_IMMUNITY_TIME_IN_SECONDS)
                .and_then(|s| s.parse::<i64>().ok())
                .map(|s| s * 1000);
            if immunity.is_some_and(|ms| age < ms) {
                continue;
            }
            worked = Step::Worked;
            if checks >= max_checks {
                crate::transaction::discard(broker, &half).await;
                continue;
            }
            let group = half
                .property(property::PRODUCER_GROUP)
                .unwrap_or_default()
                .to_owned();
            let producers = broker.clients.producer_channels(&group);
            broker.transactions.set_check_times(q, checks + 1);
            let Some(producer) = producers.get((checks as usize) % producers.len().max(1)) else {
                warn!(%group, msg_id = %half.msg_id(), "no live producer to check a transaction with");
                continue;
            };
            let request = check_request(&half);
            let channel = producer.channel.clone();
            tokio::spawn(async move {
                if let Err(e) = channel.oneway(request).await {
                    debug!(error = %e, "sending a transaction check failed");
                }
            });
        }
        let owner = self.broker.clone();
        super::off_worker("persisting transaction check state", move || {
            owner.transactions.advance_and_persist(&owner.store)
        })
        .await;
        worked
    }
}

/// CHECK_TRANSACTION_STATE for a half message: the message as the producer
/// sent it (real topic and queue), and the offsets to answer with.
fn check_request(half: &MessageExt) -> RemotingCommand {
    let mut msg = half.clone();
    if let Some(real) = msg.properties.get(property::REAL_TOPIC).cloned() {
        msg.topic = real;
    }
    if let Some(q) = msg
        .properties
        .get(property::REAL_QUEUE_ID)
        .and_then(|q| q.parse().ok())
    {
        msg.queue_id = q;
    }
    let mut body = BytesMut::new();
    let encoded = msg.encode(&mut body).is_ok();
    let header = CheckTransactionStateRequestHeader {
        topic: Some(msg.topic.clone()),
        tran_state_table_offset: half.queue_offset,
        commit_log_offset: half.commit_log_offset,
        msg_id: Some(half.msg_id()),
        transaction_id: half
            .property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
            .map(str::to_owned),
        offset_msg_id: Some(half.offset_msg_id()),
    };
    let request = RemotingCommand::request(request_code::CHECK_TRANSACTION_STATE)
        .with_header(&header)
        .oneway();
    if encoded {
        request.with_body(body.freeze())
    } else {
        request
    }
}

#[cfg(test)]
mod tests {
    use mq_protocol::message::property;
    use mq_protocol::topic;

    use super::*;
    use crate::broker::testing::{broker, broker_with_store, dispatched, message, no_timed_flush};
    use crate::config::BrokerConfig;

    #[tokio::test]
    async fn an_old_half_is_checked_up_to_the_limit_then_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            transaction_check_max: 2,
            ..BrokerConfig::default()
        };
        let timeout = config.transaction_time_out as i64;
        let broker = broker(dir.path(), config);
        let half = crate::transaction::half_message(message(
            "T",
            &[
                (property::PRODUCER_GROUP, "pg"),
                (property::TRANSACTION_PREPARED, "true"),
            ],
        ));
        broker.put(half).await.unwrap();
        dispatched(&broker, topic::TRANS_HALF_TOPIC, 0, 1).await;
        let service = TransactionCheckService::new(broker.clone());
        let now = crate::util::now_ms();

        // Younger than transactionTimeOut: left alone.
        assert_eq!(service.step(now).await, Step::Idle);
        assert_eq!(broker.transactions.check_state(0), (false, 0));

        // Old enough: counted as checked even with no producer online.
        let later = now + timeout + 1000;
        assert_eq!(service.step(later).await, Step::Worked);
        assert_eq!(service.step(later).await, Step::Worked);
        assert_eq!(broker.transactions.check_state(0), (false, 2));

        // Checked transactionCheckMax times: discarded and kept aside.
        assert_eq!(service.step(later).await, Step::Worked);
        assert!(broker.transactions.is_ended(0));
        dispatched(&broker, topic::TRANS_CHECK_MAX_TIME_TOPIC, 0, 1).await;
        assert_eq!(broker.transactions.frontier(), 1);
        assert_eq!(service.step(later).await, Step::Idle);
        assert_eq!(
            broker.store.max_offset_in_queue("T", 0),
            0,
            "never delivered"
        );
    }

    /// Under ASYNC_FLUSH a committed message and its op record are flushed
    /// before the frontier that counts its half as ended is written.
    #[tokio::test]
    async fn the_frontier_is_written_after_the_outcomes_behind_it_are_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker_with_store(dir.path(), BrokerConfig::default(), no_timed_flush);
        let half = crate::transaction::half_message(message(
            "T",
            &[
                (property::PRODUCER_GROUP, "pg"),
                (property::TRANSACTION_PREPARED, "true"),
            ],
        ));
        let stored = broker.put(half).await.unwrap();
        dispatched(&broker, topic::TRANS_HALF_TOPIC, 0, 1).await;
        let half = broker
            .store
            .look_message_by_offset(stored.wrote_offset)
            .unwrap();
        assert!(crate::transaction::end(&broker, &half, true).await.unwrap());
        dispatched(&broker, "T", 0, 1).await;
        assert!(broker.store.flushed_offset() < broker.store.commit_log_max_offset());

        let service = TransactionCheckService::new(broker.clone());
        service.step(crate::util::now_ms()).await;
        assert_eq!(broker.transactions.frontier(), 1);
        assert_eq!(
            broker.store.flushed_offset(),
            broker.store.commit_log_max_offset(),
            "the commit and its op record are on disk before the frontier"
        );
    }
}
