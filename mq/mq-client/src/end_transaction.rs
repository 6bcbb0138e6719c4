//! END_TRANSACTION and what it carries: the local transaction's state, the
//! checker that reports it on a check-back, the [`TransactionHandle`] that
//! names a half message, and the request built from them. Both the
//! transactional producer and the instance's check-back handler end
//! transactions, so this sits below both.

use mq_protocol::header::EndTransactionRequestHeader;
use mq_protocol::message::sys_flag;
use mq_protocol::{request_code, MessageExt, RemotingCommand};
use serde::{Deserialize, Serialize};

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

/// END_TRANSACTION of the half message behind `handle`; `from_check` when
/// it answers a check-back.
pub(crate) fn end_transaction_request(
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
