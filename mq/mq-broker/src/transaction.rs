//! Transactional messages.
//!
//! A producer first sends a *half* message (property `TRAN_MSG=true`): it is
//! stored in `RMQ_SYS_TRANS_HALF_TOPIC` queue 0 with its real topic and queue
//! kept as properties, where no consumer sees it. END_TRANSACTION then
//! either commits it (the message is written again to its real topic, where
//! consumers see it once) or rolls it back; both outcomes are recorded as an
//! *op* message in `RMQ_SYS_TRANS_OP_HALF_TOPIC` whose body is the half
//! message's queue offset, as RocketMQ does. A half message left without an
//! outcome longer than `transactionTimeOut` is checked back: the broker asks
//! a live producer of the message's group (CHECK_TRANSACTION_STATE), every
//! `transactionCheckInterval`, at most `transactionCheckMax` times; then the
//! message is discarded (kept in `TRANS_CHECK_MAX_TIME_TOPIC` for operators).
//!
//! Durable state: the half and op topics (in the commit log) and
//! `config/transactionCheck.json` (the first unresolved half offset and the
//! check counts of pending halves). After a restart the outcomes are rebuilt
//! from the op topic. An END_TRANSACTION for a half that already has an
//! outcome changes nothing. The real message is written before its op record,
//! so a crash between the two can only lead to a second check-back, whose
//! commit writes the message again (at-least-once), never to a lost commit.

//!
//! This module writes the outcomes; [`crate::manager::transactions`] keeps
//! the state, `processor::transaction` serves END_TRANSACTION and
//! `tasks::check_back` runs the check-backs.

use mq_protocol::message::{property, sys_flag};
use mq_protocol::{topic, MessageExt};
use mq_store::StoreError;
use tracing::warn;

use crate::broker::{Broker, InboundMessage};
pub use crate::manager::transactions::{HalfStatus, PendingHalf};
use crate::util::now_ms;

/// Tag of an op message (RocketMQ's REMOVETAG).
const OP_TAG: &str = "d";

/// The half message a producer's prepared message becomes.
pub(crate) fn half_message(mut msg: InboundMessage) -> InboundMessage {
    msg.properties
        .insert(property::REAL_TOPIC.into(), msg.topic.clone());
    msg.properties
        .insert(property::REAL_QUEUE_ID.into(), msg.queue_id.to_string());
    msg.topic = topic::TRANS_HALF_TOPIC.to_owned();
    msg.queue_id = 0;
    msg.sys_flag = sys_flag::with_transaction_type(msg.sys_flag, sys_flag::TRANSACTION_NOT_TYPE);
    msg
}

/// The op record of an outcome for a half message.
fn op_message(broker: &Broker, half: &MessageExt) -> InboundMessage {
    let mut properties = mq_protocol::Properties::new();
    properties.insert(property::TAGS.into(), OP_TAG.into());
    InboundMessage {
        topic: topic::TRANS_OP_HALF_TOPIC.to_owned(),
        queue_id: 0,
        flag: 0,
        sys_flag: 0,
        born_timestamp: now_ms(),
        born_host: broker.store_host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: half.queue_offset.to_string().into_bytes().into(),
        properties,
    }
}

/// Writes `first` (the committed or kept message), then the op record, in
/// one put: appended in that order under one lock, so a crash keeps the
/// message whenever it keeps the op, and one flush (SYNC_FLUSH) and one
/// replication wait (SYNC_MASTER) cover both.
async fn write_with_op(
    broker: &Broker,
    first: Option<InboundMessage>,
    half: &MessageExt,
) -> Result<(), StoreError> {
    let mut msgs = Vec::with_capacity(2);
    msgs.extend(first);
    msgs.push(op_message(broker, half));
    broker.put_batch(msgs).await.map(|_| ())
}

/// The message a committed half becomes, on its real topic.
fn committed(half: &MessageExt) -> InboundMessage {
    let mut properties = half.properties.clone();
    let topic = properties
        .remove(property::REAL_TOPIC)
        .unwrap_or_else(|| half.topic.clone());
    let queue_id = properties
        .remove(property::REAL_QUEUE_ID)
        .and_then(|q| q.parse().ok())
        .unwrap_or(0);
    properties.remove(property::TRANSACTION_PREPARED);
    InboundMessage {
        topic,
        queue_id,
        flag: half.flag,
        sys_flag: sys_flag::with_transaction_type(half.sys_flag, sys_flag::TRANSACTION_COMMIT_TYPE),
        born_timestamp: half.born_timestamp,
        born_host: half.born_host,
        reconsume_times: half.reconsume_times,
        prepared_transaction_offset: half.commit_log_offset,
        body: half.body.clone(),
        properties,
    }
}

/// Commits (`commit`) or rolls back a half message, once: returns false
/// when it already had an outcome or another caller is writing one. The
/// real message is written before the op record (see the module docs).
pub(crate) async fn end(
    broker: &Broker,
    half: &MessageExt,
    commit: bool,
) -> Result<bool, StoreError> {
    let Some(claim) = broker.transactions.claim(half.queue_offset as u64) else {
        return Ok(false);
    };
    write_with_op(broker, commit.then(|| committed(half)), half).await?;
    claim.ended();
    Ok(true)
}

/// Gives up on a half message: keeps it in TRANS_CHECK_MAX_TIME_TOPIC and
/// records an outcome so it is never delivered.
pub(crate) async fn discard(broker: &Broker, half: &MessageExt) {
    let Some(claim) = broker.transactions.claim(half.queue_offset as u64) else {
        return;
    };
    let mut kept = committed(half);
    kept.properties
        .insert(property::REAL_TOPIC.into(), kept.topic.clone());
    kept.topic = topic::TRANS_CHECK_MAX_TIME_TOPIC.to_owned();
    kept.queue_id = 0;
    kept.sys_flag = sys_flag::with_transaction_type(kept.sys_flag, sys_flag::TRANSACTION_NOT_TYPE);
    let now = now_ms();
    if let Err(e) = broker.topics.ensure_internal(
        topic::TRANS_CHECK_MAX_TIME_TOPIC,
        1,
        mq_protocol::route::perm::READ | mq_protocol::route::perm::WRITE,
        now,
    ) {
        warn!(error = %e, "creating the discarded-transactions topic failed");
    }
    if let Err(e) = write_with_op(broker, Some(kept), half).await {
        warn!(error = %e, "keeping a discarded half message failed; will retry");
        return;
    }
    claim.ended();
    warn!(
        msg_id = %half.msg_id(),
        group = half.property(property::PRODUCER_GROUP).unwrap_or_default(),
        "half message discarded after too many checks; kept in {}",
        topic::TRANS_CHECK_MAX_TIME_TOPIC
    );
}
