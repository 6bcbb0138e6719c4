//! END_TRANSACTION (commit, roll back, or leave a half message to the
//! check-back) and our admin request for the pending half messages.

use mq_protocol::header::EndTransactionRequestHeader;
use mq_protocol::message::{property, sys_flag};
use mq_protocol::name::GroupName;
use mq_protocol::{topic, RemotingCommand, ResponseCode};
use tracing::{debug, info};

use super::error::{ProcessError, Processed};
use super::success;
use crate::broker::Broker;
use crate::util::now_ms;

/// END_TRANSACTION: commit, roll back, or (unknown) leave for the check-back.
pub(crate) async fn end_transaction(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: EndTransactionRequestHeader = request.header()?;
    GroupName::parse(&header.producer_group).map_err(ProcessError::system)?;
    if broker.is_slave() {
        return Err(ProcessError::new(
            ResponseCode::SLAVE_NOT_AVAILABLE,
            "a slave does not end transactions",
        ));
    }
    let outcome = sys_flag::transaction_type(header.commit_or_rollback);
    if outcome != sys_flag::TRANSACTION_COMMIT_TYPE
        && outcome != sys_flag::TRANSACTION_ROLLBACK_TYPE
    {
        debug!(msg_id = %header.msg_id, "producer does not know the outcome yet; the check-back will ask");
        return Ok(success(request));
    }
    let half = u64::try_from(header.commit_log_offset)
        .ok()
        .and_then(|offset| broker.store.look_message_by_offset(offset))
        .filter(|m| m.topic == topic::TRANS_HALF_TOPIC)
        .ok_or_else(|| {
            ProcessError::system(format!(
                "no half message at commit log offset {}",
                header.commit_log_offset
            ))
        })?;
    if half
        .property(property::PRODUCER_GROUP)
        .is_some_and(|g| g != header.producer_group)
    {
        return Err(ProcessError::system(
            "the producer group does not match the half message",
        ));
    }
    let commit = outcome == sys_flag::TRANSACTION_COMMIT_TYPE;
    if crate::transaction::end(broker, &half, commit).await? {
        let from_check = header.from_transaction_check.unwrap_or(false);
        // A producer's own commit is the normal case, one per transactional
        // send: a line each would be a write per message (7% of the
        // broker's time in a transactional benchmark). Roll-backs and
        // outcomes learned by the check-back are worth an operator's eye,
        // as RocketMQ logs them.
        if commit && !from_check {
            debug!(msg_id = %header.msg_id, "transaction committed");
        } else {
            info!(
                msg_id = %header.msg_id,
                outcome = if commit { "commit" } else { "rollback" },
                from_check,
                "transaction ended"
            );
        }
    }
    Ok(success(request))
}

/// Answers our admin request for pending half messages.
pub(crate) fn half_status(broker: &Broker, request: &RemotingCommand) -> Processed {
    let max = request
        .field("max")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000usize)
        .min(10_000);
    let status = broker.transactions.pending(&broker.store, now_ms(), max);
    Ok(success(request).with_body(serde_json::to_vec(&status).expect("status serializes")))
}
