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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use mq_protocol::header::{CheckTransactionStateRequestHeader, EndTransactionRequestHeader};
use mq_protocol::message::{property, sys_flag};
use mq_protocol::{request_code, topic, MessageExt, RemotingCommand, ResponseCode};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::broker::{lock, now_ms, Broker, InboundMessage};
use crate::metadata::persist::{read_json, write_json};
use crate::metadata::MetadataError;
use crate::processor::{header_or_reply, reply, success};
use crate::services::Step;

/// Tag of an op message (RocketMQ's REMOVETAG).
const OP_TAG: &str = "d";
/// Half messages looked at per check step at most.
const CHECK_BATCH: usize = 256;

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

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Stored {
    /// Every half queue offset below this has an outcome.
    frontier: u64,
    /// Check-backs sent so far, by half queue offset.
    check_times: BTreeMap<u64, u32>,
}

/// Which half messages have an outcome, and how often the others were checked.
#[derive(Debug)]
pub struct TransactionState {
    path: PathBuf,
    stored: Stored,
    /// Half queue offsets at or past the frontier that have an outcome.
    ended: BTreeSet<u64>,
}

impl TransactionState {
    /// Loads the state and rebuilds the outcomes from the op topic.
    pub(crate) fn load(path: &Path, store: &mq_store::MessageStore) -> Result<Self, MetadataError> {
        let stored: Stored = read_json(path)?.unwrap_or_default();
        let mut state = TransactionState {
            path: path.to_owned(),
            stored,
            ended: BTreeSet::new(),
        };
        let mut offset = store.min_offset_in_queue(topic::TRANS_OP_HALF_TOPIC, 0);
        loop {
            let result = store.get_message(
                topic::TRANS_OP_HALF_TOPIC,
                0,
                offset,
                256,
                usize::MAX,
                &|_| true,
            );
            if result.messages.is_empty() {
                break;
            }
            for bytes in &result.messages {
                if let Ok((op, _)) = MessageExt::decode(bytes, false) {
                    if let Some(half) = std::str::from_utf8(&op.body)
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                    {
                        if half >= state.stored.frontier {
                            state.ended.insert(half);
                        }
                    }
                }
            }
            if result.next_begin_offset <= offset {
                break;
            }
            offset = result.next_begin_offset;
        }
        Ok(state)
    }

    fn is_ended(&self, half_offset: u64) -> bool {
        half_offset < self.stored.frontier || self.ended.contains(&half_offset)
    }

    fn mark_ended(&mut self, half_offset: u64) {
        if half_offset >= self.stored.frontier {
            self.ended.insert(half_offset);
        }
        self.stored.check_times.remove(&half_offset);
    }

    /// Moves the frontier past every half with an outcome.
    fn advance(&mut self) {
        while self.ended.remove(&self.stored.frontier) {
            self.stored.frontier += 1;
        }
    }

    fn persist(&self) -> Result<(), MetadataError> {
        write_json(&self.path, &self.stored)
    }
}

/// Records an outcome for a half message in the op topic.
async fn write_op(broker: &Broker, half: &MessageExt) -> Result<(), mq_store::StoreError> {
    let mut properties = mq_protocol::Properties::new();
    properties.insert(property::TAGS.into(), OP_TAG.into());
    broker
        .put(InboundMessage {
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
        })
        .await
        .map(|_| ())
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

/// END_TRANSACTION: commit, roll back, or (unknown) leave for the check-back.
pub(crate) async fn end_transaction(
    broker: &Arc<Broker>,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header = header_or_reply!(request, EndTransactionRequestHeader);
    if broker.is_slave() {
        return reply(
            request,
            ResponseCode::SLAVE_NOT_AVAILABLE,
            "a slave does not end transactions",
        );
    }
    let outcome = sys_flag::transaction_type(header.commit_or_rollback);
    if outcome != sys_flag::TRANSACTION_COMMIT_TYPE
        && outcome != sys_flag::TRANSACTION_ROLLBACK_TYPE
    {
        debug!(msg_id = %header.msg_id, "producer does not know the outcome yet; the check-back will ask");
        return success(request);
    }
    let half = u64::try_from(header.commit_log_offset)
        .ok()
        .and_then(|offset| broker.store.look_message_by_offset(offset))
        .filter(|m| m.topic == topic::TRANS_HALF_TOPIC);
    let Some(half) = half else {
        return reply(
            request,
            ResponseCode::SYSTEM_ERROR,
            format!(
                "no half message at commit log offset {}",
                header.commit_log_offset
            ),
        );
    };
    if half
        .property(property::PRODUCER_GROUP)
        .is_some_and(|g| g != header.producer_group)
    {
        return reply(
            request,
            ResponseCode::SYSTEM_ERROR,
            "the producer group does not match the half message",
        );
    }
    // One outcome per half message, decided under the state lock's order.
    let _guard = broker.transaction_lock.lock().await;
    if lock(&broker.transactions).is_ended(half.queue_offset as u64) {
        return success(request);
    }
    if outcome == sys_flag::TRANSACTION_COMMIT_TYPE {
        if let Err(e) = broker.put(committed(&half)).await {
            return crate::processor::send::store_refusal(request, &e);
        }
    }
    if let Err(e) = write_op(broker, &half).await {
        return crate::processor::send::store_refusal(request, &e);
    }
    let mut state = lock(&broker.transactions);
    state.mark_ended(half.queue_offset as u64);
    state.advance();
    info!(
        msg_id = %header.msg_id,
        outcome = if outcome == sys_flag::TRANSACTION_COMMIT_TYPE { "commit" } else { "rollback" },
        from_check = header.from_transaction_check.unwrap_or(false),
        "transaction ended"
    );
    success(request)
}

/// One pending half message, for operators.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingHalf {
    pub queue_offset: u64,
    pub commit_log_offset: i64,
    pub topic: String,
    pub producer_group: String,
    pub msg_id: String,
    pub age_ms: i64,
    pub check_times: u32,
}

/// The body of [`request_code::GET_TRANSACTION_HALF_STATUS`]-style answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HalfStatus {
    pub frontier: u64,
    pub pending: Vec<PendingHalf>,
}

/// The half messages still waiting for an outcome.
pub(crate) fn pending_halves(broker: &Broker, now: i64, max: usize) -> HalfStatus {
    let (frontier, checks) = {
        let state = lock(&broker.transactions);
        (state.stored.frontier, state.stored.check_times.clone())
    };
    let mut pending = Vec::new();
    let mut offset = frontier;
    while pending.len() < max {
        let result =
            broker
                .store
                .get_message(topic::TRANS_HALF_TOPIC, 0, offset, 64, usize::MAX, &|_| {
                    true
                });
        if result.messages.is_empty() {
            break;
        }
        for bytes in &result.messages {
            let Ok((half, _)) = MessageExt::decode(bytes, false) else {
                continue;
            };
            let q = half.queue_offset as u64;
            if lock(&broker.transactions).is_ended(q) {
                continue;
            }
            pending.push(PendingHalf {
                queue_offset: q,
                commit_log_offset: half.commit_log_offset,
                topic: half
                    .property(property::REAL_TOPIC)
                    .unwrap_or_default()
                    .to_owned(),
                producer_group: half
                    .property(property::PRODUCER_GROUP)
                    .unwrap_or_default()
                    .to_owned(),
                msg_id: half.msg_id(),
                age_ms: now - half.store_timestamp,
                check_times: checks.get(&q).copied().unwrap_or(0),
            });
        }
        if result.next_begin_offset <= offset {
            break;
        }
        offset = result.next_begin_offset;
    }
    pending.truncate(max);
    HalfStatus { frontier, pending }
}

/// One round of the check service at time `now`: discard halves checked too
/// often, ask a producer about the others that are old enough, and move the
/// frontier past everything resolved.
pub(crate) async fn check_step(broker: &Arc<Broker>, now: i64) -> Step {
    let config = broker.config();
    let timeout = config.transaction_time_out as i64;
    let max_checks = config.transaction_check_max;
    let mut worked = Step::Idle;
    let frontier = lock(&broker.transactions).stored.frontier;
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
        let (ended, checks) = {
            let state = lock(&broker.transactions);
            (
                state.is_ended(q),
                state.stored.check_times.get(&q).copied().unwrap_or(0),
            )
        };
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
            discard(broker, &half).await;
            continue;
        }
        let group = half
            .property(property::PRODUCER_GROUP)
            .unwrap_or_default()
            .to_owned();
        let producers = lock(&broker.clients).producer_channels(&group);
        {
            let mut state = lock(&broker.transactions);
            state.stored.check_times.insert(q, checks + 1);
        }
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
    let mut state = lock(&broker.transactions);
    state.advance();
    if let Err(e) = state.persist() {
        warn!(error = %e, "persisting transaction check state failed");
    }
    worked
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

/// Gives up on a half message: keeps it in TRANS_CHECK_MAX_TIME_TOPIC and
/// records an outcome so it is never delivered.
async fn discard(broker: &Arc<Broker>, half: &MessageExt) {
    let _guard = broker.transaction_lock.lock().await;
    if lock(&broker.transactions).is_ended(half.queue_offset as u64) {
        return;
    }
    let mut kept = committed(half);
    kept.properties
        .insert(property::REAL_TOPIC.into(), kept.topic.clone());
    kept.topic = topic::TRANS_CHECK_MAX_TIME_TOPIC.to_owned();
    kept.queue_id = 0;
    kept.sys_flag = sys_flag::with_transaction_type(kept.sys_flag, sys_flag::TRANSACTION_NOT_TYPE);
    let now = now_ms();
    if let Err(e) = lock(&broker.topics).ensure_internal(
        topic::TRANS_CHECK_MAX_TIME_TOPIC,
        1,
        mq_protocol::route::perm::READ | mq_protocol::route::perm::WRITE,
        now,
    ) {
        warn!(error = %e, "creating the discarded-transactions topic failed");
    }
    if let Err(e) = broker.put(kept).await {
        warn!(error = %e, "keeping a discarded half message failed; will retry");
        return;
    }
    if let Err(e) = write_op(broker, half).await {
        warn!(error = %e, "recording a discarded half message failed; will retry");
        return;
    }
    lock(&broker.transactions).mark_ended(half.queue_offset as u64);
    warn!(
        msg_id = %half.msg_id(),
        group = half.property(property::PRODUCER_GROUP).unwrap_or_default(),
        "half message discarded after too many checks; kept in {}",
        topic::TRANS_CHECK_MAX_TIME_TOPIC
    );
}

/// Answers our admin request for pending half messages.
pub(crate) fn half_status(broker: &Broker, request: &RemotingCommand) -> RemotingCommand {
    let max = request
        .field("max")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000usize)
        .min(10_000);
    let status = pending_halves(broker, now_ms(), max);
    success(request).with_body(serde_json::to_vec(&status).expect("status serializes"))
}
