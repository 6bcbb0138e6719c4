//! SEND_MESSAGE, SEND_MESSAGE_V2, SEND_BATCH_MESSAGE and
//! CONSUMER_SEND_MSG_BACK.
//!
//! A send is checked the way RocketMQ's broker checks it (broker role and
//! permission, topic name, topic existence or auto-creation, queue id), then
//! rewritten as the commit log would (transaction half messages to
//! `RMQ_SYS_TRANS_HALF_TOPIC`, delayed ones to `SCHEDULE_TOPIC_XXXX`) and
//! stored. A send-back moves a message a consumer failed to its group's retry
//! topic with the next delay level, or to the dead-letter topic once it has
//! been retried `maxReconsumeTimes` times.

use mq_protocol::header::{
    ConsumerSendMsgBackRequestHeader, SendMessageRequestHeader, SendMessageRequestHeaderV2,
    SendMessageResponseHeader,
};
use mq_protocol::message::{property, string_to_properties, sys_flag, BatchEntry};
use mq_protocol::request_code as code;
use mq_protocol::route::{perm, TopicConfig};
use mq_protocol::{topic, RemotingCommand, ResponseCode};
use mq_remoting::Channel;
use mq_store::{PutResult, PutStatus, StoreError};

use super::{bad_header, header_or_reply, reply, success};
use crate::broker::{lock, now_ms, Broker, InboundMessage};

/// How many queues a group's dead-letter topic has.
const DLQ_NUMS_PER_GROUP: i32 = 1;

pub(crate) async fn send_message(
    broker: &Broker,
    channel: &Channel,
    request: &RemotingCommand,
) -> RemotingCommand {
    // RocketMQ clients send SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE with the
    // short V2 field names; some send a batch with the long names. Accept both.
    let header = match request.code {
        code::SEND_MESSAGE_V2 => request
            .header::<SendMessageRequestHeaderV2>()
            .map(SendMessageRequestHeaderV2::into_v1),
        code::SEND_BATCH_MESSAGE if request.ext_fields.contains_key("b") => request
            .header::<SendMessageRequestHeaderV2>()
            .map(SendMessageRequestHeaderV2::into_v1),
        _ => request.header::<SendMessageRequestHeader>(),
    };
    let header = match header {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    if let Err(refusal) = check_writable(broker, request) {
        return refusal;
    }
    let topic_config = match topic_for_send(broker, request, &header) {
        Ok(config) => config,
        Err(refusal) => return refusal,
    };
    let queue_nums = topic_config
        .write_queue_nums
        .max(topic_config.read_queue_nums);
    if header.queue_id >= queue_nums {
        return reply(
            request,
            ResponseCode::SYSTEM_ERROR,
            format!(
                "request queueId[{}] is illegal, {} topic has {} queues",
                header.queue_id, header.topic, queue_nums
            ),
        );
    }
    let queue_id = if header.queue_id < 0 {
        random_queue(topic_config.write_queue_nums)
    } else {
        header.queue_id
    };
    let born_host = channel.peer_addr();
    let cluster = broker.config().broker_cluster_name.clone();

    if request.code == code::SEND_BATCH_MESSAGE || header.batch == Some(true) {
        let entries = match BatchEntry::decode_all(&request.body) {
            Ok(entries) if !entries.is_empty() => entries,
            Ok(_) => return reply(request, ResponseCode::MESSAGE_ILLEGAL, "the batch is empty"),
            Err(e) => {
                return reply(
                    request,
                    ResponseCode::MESSAGE_ILLEGAL,
                    format!("bad batch body: {e}"),
                )
            }
        };
        let mut msgs = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut properties = entry.properties;
            if properties
                .get(property::DELAY_TIME_LEVEL)
                .is_some_and(|d| d != "0")
            {
                return reply(
                    request,
                    ResponseCode::MESSAGE_ILLEGAL,
                    "a batch message cannot be delayed",
                );
            }
            if properties
                .get(property::TRANSACTION_PREPARED)
                .is_some_and(|t| t == "true")
            {
                return reply(
                    request,
                    ResponseCode::MESSAGE_ILLEGAL,
                    "a batch message cannot be transactional",
                );
            }
            properties.insert(property::CLUSTER.into(), cluster.clone());
            msgs.push(InboundMessage {
                topic: header.topic.clone(),
                queue_id,
                flag: entry.flag,
                sys_flag: header.sys_flag,
                born_timestamp: header.born_timestamp,
                born_host,
                reconsume_times: header.reconsume_times.unwrap_or(0),
                prepared_transaction_offset: 0,
                body: entry.body,
                properties,
            });
        }
        return match broker.put_batch(msgs).await {
            Ok(results) => {
                broker
                    .stats
                    .record_put(&header.topic, results.len(), request.body.len());
                let ids: Vec<&str> = results.iter().map(|r| r.msg_id.as_str()).collect();
                let first = &results[0];
                let response_header = SendMessageResponseHeader {
                    msg_id: ids.join(","),
                    queue_id,
                    queue_offset: first.queue_offset as i64,
                    transaction_id: None,
                };
                let worst = results
                    .iter()
                    .map(|r| r.status)
                    .find(|s| *s != PutStatus::PutOk)
                    .unwrap_or(PutStatus::PutOk);
                put_response(request, worst, response_header)
            }
            Err(e) => store_refusal(request, &e),
        };
    }

    let mut properties = string_to_properties(header.properties.as_deref().unwrap_or(""));
    properties.insert(property::CLUSTER.into(), cluster);
    let mut msg = InboundMessage {
        topic: header.topic.clone(),
        queue_id,
        flag: header.flag,
        sys_flag: header.sys_flag,
        born_timestamp: header.born_timestamp,
        born_host,
        reconsume_times: header.reconsume_times.unwrap_or(0),
        prepared_transaction_offset: 0,
        body: request.body.clone(),
        properties,
    };
    if msg.topic.starts_with(topic::RETRY_GROUP_TOPIC_PREFIX) {
        if let Some(refusal) = retry_to_dlq(broker, request, &header, &mut msg) {
            return refusal;
        }
    }
    let transactional = msg
        .properties
        .get(property::TRANSACTION_PREPARED)
        .is_some_and(|t| t == "true");
    if transactional {
        if broker.config().reject_transaction_message {
            return reply(
                request,
                ResponseCode::NO_PERMISSION,
                format!(
                    "the broker[{}] sending transaction message is forbidden",
                    broker.broker_addr()
                ),
            );
        }
        msg = crate::transaction::half_message(msg);
    }
    let transaction_id = if transactional {
        msg.properties
            .get(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
            .cloned()
    } else {
        None
    };
    match broker.put(msg).await {
        Ok(result) => {
            broker
                .stats
                .record_put(&header.topic, 1, request.body.len());
            let response_header = SendMessageResponseHeader {
                msg_id: result.msg_id.clone(),
                queue_id,
                queue_offset: result.queue_offset as i64,
                transaction_id,
            };
            put_response(request, result.status, response_header)
        }
        Err(e) => store_refusal(request, &e),
    }
}

/// A send to a `%RETRY%` topic that has been retried too often goes to the
/// group's dead-letter topic instead (RocketMQ's `handleRetryAndDLQ`).
fn retry_to_dlq(
    broker: &Broker,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    msg: &mut InboundMessage,
) -> Option<RemotingCommand> {
    let group = &msg.topic[topic::RETRY_GROUP_TOPIC_PREFIX.len()..];
    let group_config = lock(&broker.groups).get(group).cloned();
    let Some(group_config) = group_config else {
        return Some(reply(
            request,
            ResponseCode::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("subscription group not exist, {group}"),
        ));
    };
    let max = header
        .max_reconsume_times
        .unwrap_or(group_config.retry_max_times);
    if msg.reconsume_times >= max {
        let dlq = topic::dlq_topic(group);
        if let Err(e) = lock(&broker.topics).ensure_internal(
            &dlq,
            DLQ_NUMS_PER_GROUP,
            perm::READ | perm::WRITE,
            now_ms(),
        ) {
            return Some(reply(request, ResponseCode::SYSTEM_ERROR, e.to_string()));
        }
        msg.topic = dlq;
        msg.queue_id = 0;
    }
    None
}

fn check_writable(broker: &Broker, request: &RemotingCommand) -> Result<(), RemotingCommand> {
    let config = broker.config();
    if broker.is_slave() {
        return Err(reply(
            request,
            ResponseCode::SERVICE_NOT_AVAILABLE,
            format!(
                "the broker[{}] is a slave and does not accept sends",
                broker.broker_addr()
            ),
        ));
    }
    if !perm::is_writeable(config.broker_permission) {
        return Err(reply(
            request,
            ResponseCode::NO_PERMISSION,
            format!(
                "the broker[{}] sending message is forbidden",
                broker.broker_addr()
            ),
        ));
    }
    Ok(())
}

/// The topic a send goes to: validated, existing or auto-created, writable.
fn topic_for_send(
    broker: &Broker,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
) -> Result<TopicConfig, RemotingCommand> {
    if let Err(why) = topic::validate_topic(&header.topic) {
        return Err(reply(request, ResponseCode::SYSTEM_ERROR, why));
    }
    if topic::is_system_topic(&header.topic) {
        return Err(reply(
            request,
            ResponseCode::NO_PERMISSION,
            format!("sending message to topic[{}] is forbidden", header.topic),
        ));
    }
    let config = broker.config();
    let now = now_ms();
    let found = {
        let mut topics = lock(&broker.topics);
        let created = topics.create_for_send(
            &header.topic,
            &header.default_topic,
            header.default_topic_queue_nums,
            0,
            &config,
            now,
        );
        match created {
            Ok(Some(c)) => Some(c),
            Ok(None) if header.topic.starts_with(topic::RETRY_GROUP_TOPIC_PREFIX) => {
                let group = &header.topic[topic::RETRY_GROUP_TOPIC_PREFIX.len()..];
                let queues = lock(&broker.groups)
                    .get(group)
                    .map_or(1, |g| g.retry_queue_nums.max(1));
                topics
                    .ensure_internal(&header.topic, queues, perm::READ | perm::WRITE, now)
                    .ok()
            }
            Ok(None) => None,
            Err(e) => return Err(reply(request, ResponseCode::SYSTEM_ERROR, e.to_string())),
        }
    };
    let Some(topic_config) = found else {
        return Err(reply(
            request,
            ResponseCode::TOPIC_NOT_EXIST,
            format!("topic[{}] not exist, apply first please!", header.topic),
        ));
    };
    if !perm::is_writeable(topic_config.perm) {
        return Err(reply(
            request,
            ResponseCode::NO_PERMISSION,
            format!("the topic[{}] sending message is forbidden", header.topic),
        ));
    }
    Ok(topic_config)
}

fn random_queue(queue_nums: i32) -> i32 {
    let n = queue_nums.max(1) as u32;
    (fastrand_u32() % n) as i32
}

/// A cheap per-thread xorshift; queue choice needs spread, not secrecy.
fn fastrand_u32() -> u32 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u32> = Cell::new(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.subsec_nanos()) | 1
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        s.set(x);
        x
    })
}

fn put_response(
    request: &RemotingCommand,
    status: PutStatus,
    header: SendMessageResponseHeader,
) -> RemotingCommand {
    let code = match status {
        PutStatus::PutOk => ResponseCode::SUCCESS,
        PutStatus::FlushDiskTimeout => ResponseCode::FLUSH_DISK_TIMEOUT,
        PutStatus::FlushSlaveTimeout => ResponseCode::FLUSH_SLAVE_TIMEOUT,
        PutStatus::SlaveNotAvailable => ResponseCode::SLAVE_NOT_AVAILABLE,
    };
    let mut response = RemotingCommand::response_to(request, code).with_header(&header);
    // RocketMQ's broker adds these; Java clients read them for tracing.
    response
        .ext_fields
        .insert("MSG_REGION".into(), "DefaultRegion".into());
    response.ext_fields.insert("TRACE_ON".into(), "true".into());
    response
}

/// The response for a put the store refused.
pub(crate) fn store_refusal(request: &RemotingCommand, error: &StoreError) -> RemotingCommand {
    let code = match error {
        StoreError::MessageTooLarge { .. }
        | StoreError::IllegalMessage { .. }
        | StoreError::InvalidMessage(_) => ResponseCode::MESSAGE_ILLEGAL,
        StoreError::DiskFull { .. } | StoreError::ShutDown => ResponseCode::SERVICE_NOT_AVAILABLE,
        _ => ResponseCode::SYSTEM_ERROR,
    };
    reply(request, code, error.to_string())
}

/// CONSUMER_SEND_MSG_BACK: a consumer could not process a message.
pub(crate) async fn consumer_send_msg_back(
    broker: &Broker,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header = header_or_reply!(request, ConsumerSendMsgBackRequestHeader);
    if let Err(refusal) = check_writable(broker, request) {
        return refusal;
    }
    let group_config = lock(&broker.groups).get(&header.group).cloned();
    let Some(group_config) = group_config else {
        return reply(
            request,
            ResponseCode::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("subscription group not exist, {}", header.group),
        );
    };
    if group_config.retry_queue_nums <= 0 {
        return success(request);
    }
    let Ok(offset) = u64::try_from(header.offset) else {
        return reply(
            request,
            ResponseCode::SYSTEM_ERROR,
            format!("look message by offset failed, {}", header.offset),
        );
    };
    let Some(original) = broker.store.look_message_by_offset(offset) else {
        return reply(
            request,
            ResponseCode::SYSTEM_ERROR,
            format!("look message by offset failed, {}", header.offset),
        );
    };
    let now = now_ms();
    let retry_topic = topic::retry_topic(&header.group);
    let mut properties = original.properties.clone();
    properties
        .entry(property::RETRY_TOPIC.into())
        .or_insert_with(|| original.topic.clone());
    properties.insert(
        property::ORIGIN_MESSAGE_ID.into(),
        header
            .origin_msg_id
            .clone()
            .unwrap_or_else(|| original.msg_id()),
    );
    properties.remove(property::DELAY_TIME_LEVEL);
    let max_reconsume = header
        .max_reconsume_times
        .unwrap_or(group_config.retry_max_times);
    let (target_topic, queue_id) =
        if original.reconsume_times >= max_reconsume || header.delay_level < 0 {
            let dlq = topic::dlq_topic(&header.group);
            if let Err(e) = lock(&broker.topics).ensure_internal(
                &dlq,
                DLQ_NUMS_PER_GROUP,
                perm::READ | perm::WRITE,
                now,
            ) {
                return reply(request, ResponseCode::SYSTEM_ERROR, e.to_string());
            }
            (dlq, 0)
        } else {
            let queues = group_config.retry_queue_nums;
            if let Err(e) = lock(&broker.topics).ensure_internal(
                &retry_topic,
                queues,
                perm::READ | perm::WRITE,
                now,
            ) {
                return reply(request, ResponseCode::SYSTEM_ERROR, e.to_string());
            }
            let level = if header.delay_level == 0 {
                3 + original.reconsume_times
            } else {
                header.delay_level
            };
            properties.insert(property::DELAY_TIME_LEVEL.into(), level.to_string());
            (retry_topic, random_queue(queues))
        };
    let msg = InboundMessage {
        topic: target_topic,
        queue_id,
        flag: original.flag,
        sys_flag: sys_flag::with_transaction_type(
            original.sys_flag,
            sys_flag::TRANSACTION_NOT_TYPE,
        ),
        born_timestamp: original.born_timestamp,
        born_host: original.born_host,
        reconsume_times: original.reconsume_times + 1,
        prepared_transaction_offset: 0,
        body: original.body.clone(),
        properties,
    };
    match broker.put(msg).await {
        Ok(PutResult { .. }) => success(request),
        Err(e) => store_refusal(request, &e),
    }
}
