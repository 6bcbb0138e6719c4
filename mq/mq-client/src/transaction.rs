//! Transactional messages: a half message, the local transaction, then
//! END_TRANSACTION with its outcome; check-backs from the broker answered by
//! a [`TransactionChecker`].

use std::future::Future;
use std::sync::Arc;

use mq_protocol::header::{CheckTransactionStateRequestHeader, EndTransactionRequestHeader};
use mq_protocol::message::{decode_message_id, property, sys_flag};
use mq_protocol::{request_code, MessageExt, RemotingCommand};
use mq_remoting::{Channel, HandlerError};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::config::ClientConfig;
use crate::instance::ClientInstance;
use crate::message::Message;
use crate::producer::{Producer, ProducerConfig, SendResult, SendStatus};
use crate::{ClientError, Result};

/// The outcome of a local transaction (RocketMQ's `LocalTransactionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocalTransactionState {
    /// Deliver the message.
    Commit,
    /// Drop the message.
    Rollback,
    /// Not decided yet: the broker will ask a [`TransactionChecker`] later.
    Unknown,
}

impl LocalTransactionState {
    /// The sys flag transaction type END_TRANSACTION carries.
    pub fn sys_flag(self) -> i32 {
        match self {
            LocalTransactionState::Commit => sys_flag::TRANSACTION_COMMIT_TYPE,
            LocalTransactionState::Rollback => sys_flag::TRANSACTION_ROLLBACK_TYPE,
            LocalTransactionState::Unknown => sys_flag::TRANSACTION_NOT_TYPE,
        }
    }
}

/// Answers the broker's CHECK_TRANSACTION_STATE for half messages whose
/// outcome it has not heard (RocketMQ's `checkLocalTransaction`).
#[mq_remoting::async_trait]
pub trait TransactionChecker: Send + Sync + 'static {
    /// The state of the local transaction behind `msg` (a half message as
    /// stored; its `UNIQ_KEY` and keys identify it).
    async fn check(&self, msg: &MessageExt) -> LocalTransactionState;
}

/// Everything END_TRANSACTION needs about a half message: keep it (it is
/// serializable, e.g. into the order's row) to end the transaction later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionHandle {
    pub broker_addr: String,
    pub topic: String,
    pub producer_group: String,
    /// Commit log offset of the half message.
    pub commit_log_offset: i64,
    /// Queue offset of the half message (`tranStateTableOffset`).
    pub queue_offset: i64,
    /// The client-side unique id of the message.
    pub msg_id: String,
    pub transaction_id: Option<String>,
}

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

fn end_transaction_request(
    handle: &TransactionHandle,
    outcome: LocalTransactionState,
    from_check: bool,
) -> RemotingCommand {
    let header = EndTransactionRequestHeader {
        topic: Some(handle.topic.clone()),
        producer_group: handle.producer_group.clone(),
        tran_state_table_offset: handle.queue_offset,
        commit_log_offset: handle.commit_log_offset,
        commit_or_rollback: outcome.sys_flag(),
        from_transaction_check: Some(from_check),
        msg_id: handle.msg_id.clone(),
        transaction_id: handle.transaction_id.clone(),
    };
    RemotingCommand::request(request_code::END_TRANSACTION)
        .with_header(&header)
        .with_remark(format!("{outcome:?}"))
}

/// Handles CHECK_TRANSACTION_STATE: asks the group's checker and answers
/// with END_TRANSACTION (oneway, `fromTransactionCheck=true`) on the same
/// connection.
pub(crate) async fn answer_check(
    instance: &Arc<ClientInstance>,
    channel: &Channel,
    request: &RemotingCommand,
) -> std::result::Result<(), HandlerError> {
    let header: CheckTransactionStateRequestHeader = request.header()?;
    let (msg, _) = MessageExt::decode(&request.body, false)?;
    let Some(group) = msg.property(property::PRODUCER_GROUP).map(str::to_owned) else {
        warn!(broker = %channel.peer_addr(), "check-back for a message without a producer group");
        return Ok(());
    };
    let Some(checker) = instance.checker(&group) else {
        warn!(group, broker = %channel.peer_addr(), "check-back for a group with no checker here");
        return Ok(());
    };
    let state = checker.check(&msg).await;
    let handle = TransactionHandle {
        broker_addr: channel.peer_addr().to_string(),
        topic: msg.topic.clone(),
        producer_group: group,
        commit_log_offset: msg.commit_log_offset,
        queue_offset: msg.queue_offset,
        msg_id: msg.msg_id(),
        transaction_id: header.transaction_id.clone().or_else(|| {
            msg.property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
                .map(str::to_owned)
        }),
    };
    debug!(
        msg_id = handle.msg_id,
        ?state,
        "answering transaction check"
    );
    channel
        .oneway(end_transaction_request(&handle, state, true))
        .await
        .map_err(|e| Box::new(ClientError::from(e)) as HandlerError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_sys_flag_types() {
        assert_eq!(LocalTransactionState::Commit.sys_flag(), 8);
        assert_eq!(LocalTransactionState::Rollback.sys_flag(), 12);
        assert_eq!(LocalTransactionState::Unknown.sys_flag(), 0);
    }

    #[test]
    fn end_transaction_header() {
        let handle = TransactionHandle {
            broker_addr: "127.0.0.1:10911".into(),
            topic: "T".into(),
            producer_group: "pg".into(),
            commit_log_offset: 1234,
            queue_offset: 7,
            msg_id: "ID".into(),
            transaction_id: Some("ID".into()),
        };
        let request = end_transaction_request(&handle, LocalTransactionState::Commit, true);
        assert_eq!(request.code, request_code::END_TRANSACTION);
        let header: EndTransactionRequestHeader = request.header().unwrap();
        assert_eq!(header.commit_log_offset, 1234);
        assert_eq!(header.tran_state_table_offset, 7);
        assert_eq!(header.commit_or_rollback, sys_flag::TRANSACTION_COMMIT_TYPE);
        assert_eq!(header.from_transaction_check, Some(true));
        assert_eq!(header.producer_group, "pg");
        let json = serde_json::to_string(&handle).unwrap();
        assert_eq!(
            serde_json::from_str::<TransactionHandle>(&json).unwrap(),
            handle
        );
    }
}
