//! Transactional messages (RocketMQ's `TransactionMQProducer`): a half
//! message, the local transaction, then END_TRANSACTION with its outcome,
//! now or later through a kept [`TransactionHandle`]; check-backs from the
//! broker are answered by a [`TransactionChecker`] (through the client
//! instance's callback handler).

use std::future::Future;
use std::sync::Arc;

use mq_protocol::message::{decode_message_id, property};
use tracing::warn;

pub use crate::end_transaction::{LocalTransactionState, TransactionChecker, TransactionHandle};

use crate::config::ClientConfig;
use crate::end_transaction::end_transaction_request;
use crate::error::Result;
use crate::message::Message;
use crate::producer::{Producer, ProducerConfig, SendResult, SendStatus};

/// The outcome of [`TransactionProducer::send_in_transaction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionSendResult {
    pub send: SendResult,
    pub state: LocalTransactionState,
    pub handle: TransactionHandle,
}

/// A producer of transactional messages (RocketMQ's
/// `TransactionMQProducer`). Cheap to clone.
#[derive(Clone)]
pub struct TransactionProducer {
    producer: Producer,
}

impl TransactionProducer {
    /// Starts a producer of `config.group` whose check-backs go to `checker`.
    pub async fn start(
        config: ProducerConfig,
        client: ClientConfig,
        checker: Arc<dyn TransactionChecker>,
    ) -> Result<TransactionProducer> {
        let producer = Producer::start_with_checker(config, client, Some(checker)).await?;
        Ok(TransactionProducer { producer })
    }

    /// The underlying producer, for ordinary sends of the same group.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Stores `msg` as a half message, invisible to consumers until
    /// [`TransactionProducer::end_transaction`] commits it.
    pub async fn send_half(&self, msg: Message) -> Result<(SendResult, TransactionHandle)> {
        let inner = &self.producer.inner;
        let group = inner.config.group.clone();
        let msg = Message {
            properties: {
                let mut properties = msg.properties;
                properties.remove(property::DELAY_TIME_LEVEL);
                properties.insert(property::TRANSACTION_PREPARED.into(), "true".into());
                properties.insert(property::PRODUCER_GROUP.into(), group.clone());
                properties
            },
            ..msg
        };
        let prepared = inner.prepare(msg)?;
        let send = inner.send_prepared(&prepared).await?;
        let (_, commit_log_offset) = decode_message_id(&send.offset_msg_id)?;
        let handle = TransactionHandle {
            broker_addr: send.broker_addr.clone(),
            topic: send.queue.topic.clone(),
            producer_group: group,
            commit_log_offset,
            queue_offset: send.queue_offset,
            msg_id: send.msg_id.clone(),
            transaction_id: Some(
                send.transaction_id
                    .clone()
                    .unwrap_or_else(|| send.msg_id.clone()),
            ),
        };
        Ok((send, handle))
    }

    /// Sends `msg` as a half message, runs `local_tx` once it is stored and
    /// ends the transaction with its outcome. A half message the broker did
    /// not store cleanly is rolled back without running `local_tx`.
    pub async fn send_in_transaction<F, Fut>(
        &self,
        msg: Message,
        local_tx: F,
    ) -> Result<TransactionSendResult>
    where
        F: FnOnce(SendResult) -> Fut,
        Fut: Future<Output = LocalTransactionState>,
    {
        let (send, handle) = self.send_half(msg).await?;
        let state = if send.status == SendStatus::SendOk {
            local_tx(send.clone()).await
        } else {
            LocalTransactionState::Rollback
        };
        if let Err(error) = self.end_transaction(&handle, state).await {
            // The broker will ask the checker instead.
            warn!(msg_id = handle.msg_id, %error, "END_TRANSACTION failed");
        }
        Ok(TransactionSendResult {
            send,
            state,
            handle,
        })
    }

    /// Tells the broker the outcome of the half message behind `handle`
    /// (oneway, as RocketMQ does). Ending with `Unknown` leaves it to
    /// check-backs.
    pub async fn end_transaction(
        &self,
        handle: &TransactionHandle,
        outcome: LocalTransactionState,
    ) -> Result<()> {
        let inner = &self.producer.inner;
        let request = end_transaction_request(handle, outcome, false);
        inner
            .instance
            .invoke_oneway(&handle.broker_addr, request)
            .await
    }

    pub async fn shutdown(&self) {
        self.producer.shutdown().await;
    }
}
