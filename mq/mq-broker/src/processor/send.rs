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

use std::net::SocketAddr;

use mq_protocol::header::{
    ConsumerSendMsgBackRequestHeader, SendMessageRequestHeader, SendMessageRequestHeaderV2,
    SendMessageResponseHeader,
};
use mq_protocol::message::{property, string_to_properties, sys_flag, BatchEntry};
use mq_protocol::name::{GroupName, TopicName};
use mq_protocol::request_code as code;
use mq_protocol::route::{perm, TopicConfig};
use mq_protocol::{topic, RemotingCommand, ResponseCode};
use mq_store::PutStatus;

use super::error::{ProcessError, Processed};
use super::success;
use crate::broker::{Broker, InboundMessage};
use crate::metadata::groups::SubscriptionGroupConfig;
use crate::util::now_ms;

/// How many queues a group's dead-letter topic has.
const DLQ_NUMS_PER_GROUP: i32 = 1;

/// SEND_MESSAGE, SEND_MESSAGE_V2, SEND_BATCH_MESSAGE from `born_host`.
pub(crate) async fn send_message(
    broker: &Broker,
    born_host: SocketAddr,
    request: &RemotingCommand,
) -> Processed {
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
    let header = header?;
    if header.reconsume_times.is_some_and(|times| times < 0) {
        return Err(ProcessError::system("reconsumeTimes must not be negative"));
    }
    check_writable(broker)?;
    let topic_config = topic_for_send(broker, &header)?;
    let queue_nums = topic_config
        .write_queue_nums
        .max(topic_config.read_queue_nums);
    if header.queue_id >= queue_nums {
        return Err(ProcessError::system(format!(
            "request queueId[{}] is illegal, {} topic has {} queues",
            header.queue_id, header.topic, queue_nums
        )));
    }
    let queue_id = if header.queue_id < 0 {
        random_queue(topic_config.write_queue_nums)
    } else {
        header.queue_id
    };
    let cluster = broker.config().broker_cluster_name.clone();

    if request.code == code::SEND_BATCH_MESSAGE || header.batch == Some(true) {
        let entries = BatchEntry::decode_all(&request.body).map_err(|e| {
            ProcessError::new(
                ResponseCode::MESSAGE_ILLEGAL,
                format!("bad batch body: {e}"),
            )
        })?;
        if entries.is_empty() {
            return Err(ProcessError::new(
                ResponseCode::MESSAGE_ILLEGAL,
                "the batch is empty",
            ));
        }
        let mut msgs = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut properties = entry.properties;
            if properties
                .get(property::DELAY_TIME_LEVEL)
                .is_some_and(|d| d != "0")
            {
                return Err(ProcessError::new(
                    ResponseCode::MESSAGE_ILLEGAL,
                    "a batch message cannot be delayed",
                ));
            }
            if properties
                .get(property::TRANSACTION_PREPARED)
                .is_some_and(|t| t == "true")
            {
                return Err(ProcessError::new(
                    ResponseCode::MESSAGE_ILLEGAL,
                    "a batch message cannot be transactional",
                ));
            }
            crate::tasks::timer::refuse_in_batch(&properties)?;
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
        let results = broker.put_batch(msgs).await?;
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
        return Ok(put_response(request, worst, response_header));
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
        retry_to_dlq(broker, &header, &mut msg)?;
    }
    crate::tasks::timer::accept(broker, &mut msg)?;
    let transactional = msg
        .properties
        .get(property::TRANSACTION_PREPARED)
        .is_some_and(|t| t == "true");
    if transactional {
        if broker.config().reject_transaction_message {
            return Err(ProcessError::new(
                ResponseCode::NO_PERMISSION,
                format!(
                    "the broker[{}] sending transaction message is forbidden",
                    broker.broker_addr()
                ),
            ));
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
    let result = broker.put(msg).await?;
    broker
        .stats
        .record_put(&header.topic, 1, request.body.len());
    let response_header = SendMessageResponseHeader {
        msg_id: result.msg_id,
        queue_id,
        queue_offset: result.queue_offset as i64,
        transaction_id,
    };
    Ok(put_response(request, result.status, response_header))
}

/// A send to a `%RETRY%` topic that has been retried too often goes to the
/// group's dead-letter topic instead (RocketMQ's `handleRetryAndDLQ`).
fn retry_to_dlq(
    broker: &Broker,
    header: &SendMessageRequestHeader,
    msg: &mut InboundMessage,
) -> Result<(), ProcessError> {
    let group = GroupName::parse(&msg.topic[topic::RETRY_GROUP_TOPIC_PREFIX.len()..])
        .map_err(ProcessError::system)?;
    let group_config = group_config(broker, &group)?;
    let max = header
        .max_reconsume_times
        .unwrap_or(group_config.retry_max_times);
    if msg.reconsume_times >= max {
        msg.topic = ensure_dlq(broker, &group, now_ms())?.into_string();
        msg.queue_id = 0;
    }
    Ok(())
}

/// The subscription group a send-back or retry belongs to.
fn group_config(
    broker: &Broker,
    group: &GroupName,
) -> Result<SubscriptionGroupConfig, ProcessError> {
    broker.groups.get(group.as_str()).ok_or_else(|| {
        ProcessError::new(
            ResponseCode::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("subscription group not exist, {group}"),
        )
    })
}

/// The group's dead-letter topic, created if needed.
fn ensure_dlq(broker: &Broker, group: &GroupName, now: i64) -> Result<TopicName, ProcessError> {
    let dlq = TopicName::dlq(group);
    broker.topics.ensure_internal(
        dlq.as_str(),
        DLQ_NUMS_PER_GROUP,
        perm::READ | perm::WRITE,
        now,
    )?;
    Ok(dlq)
}

fn check_writable(broker: &Broker) -> Result<(), ProcessError> {
    let config = broker.config();
    if broker.is_slave() {
        return Err(ProcessError::new(
            ResponseCode::SERVICE_NOT_AVAILABLE,
            format!(
                "the broker[{}] is a slave and does not accept sends",
                broker.broker_addr()
            ),
        ));
    }
    if !perm::is_writeable(config.broker_permission) {
        return Err(ProcessError::new(
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
    header: &SendMessageRequestHeader,
) -> Result<TopicConfig, ProcessError> {
    TopicName::check(&header.topic).map_err(ProcessError::system)?;
    if topic::is_system_topic(&header.topic) {
        return Err(ProcessError::new(
            ResponseCode::NO_PERMISSION,
            format!("sending message to topic[{}] is forbidden", header.topic),
        ));
    }
    let config = broker.config();
    let retry_group = header.topic.strip_prefix(topic::RETRY_GROUP_TOPIC_PREFIX);
    let found = broker.topics.find_for_send(
        &header.topic,
        &header.default_topic,
        header.default_topic_queue_nums,
        &config,
        now_ms(),
        || retry_group.map(|group| broker.groups.retry_queue_nums(group)),
    )?;
    let Some(topic_config) = found else {
        return Err(ProcessError::new(
            ResponseCode::TOPIC_NOT_EXIST,
            format!("topic[{}] not exist, apply first please!", header.topic),
        ));
    };
    if !perm::is_writeable(topic_config.perm) {
        return Err(ProcessError::new(
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
    response.ext_fields.insert("MSG_REGION", "DefaultRegion");
    response.ext_fields.insert("TRACE_ON", "true");
    response
}

/// CONSUMER_SEND_MSG_BACK: a consumer could not process a message.
pub(crate) async fn consumer_send_msg_back(
    broker: &Broker,
    request: &RemotingCommand,
) -> Processed {
    let header: ConsumerSendMsgBackRequestHeader = request.header()?;
    // Parsed before anything else: the group names the retry and DLQ
    // topics, and so their consume queue folders.
    let group = GroupName::parse(&header.group).map_err(ProcessError::system)?;
    let max_level = broker
        .store_config
        .delay_levels()
        .map_or(18, |levels| levels.len() as i32);
    if !(-1..=max_level).contains(&header.delay_level) {
        return Err(ProcessError::system(format!(
            "delayLevel {} is out of range -1..={max_level}",
            header.delay_level
        )));
    }
    if header.max_reconsume_times.is_some_and(|times| times < 0) {
        return Err(ProcessError::system(
            "maxReconsumeTimes must not be negative",
        ));
    }
    check_writable(broker)?;
    let group_config = group_config(broker, &group)?;
    if group_config.retry_queue_nums <= 0 {
        return Ok(success(request));
    }
    let original = u64::try_from(header.offset)
        .ok()
        .and_then(|offset| broker.store.look_message_by_offset(offset))
        .ok_or_else(|| {
            ProcessError::system(format!("look message by offset failed, {}", header.offset))
        })?;
    let now = now_ms();
    let retry_topic = TopicName::retry(&group);
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
            (ensure_dlq(broker, &group, now)?, 0)
        } else {
            let queues = group_config.retry_queue_nums;
            broker.topics.ensure_internal(
                retry_topic.as_str(),
                queues,
                perm::READ | perm::WRITE,
                now,
            )?;
            let level = if header.delay_level == 0 {
                3 + original.reconsume_times
            } else {
                header.delay_level
            };
            properties.insert(property::DELAY_TIME_LEVEL.into(), level.to_string());
            (retry_topic, random_queue(queues))
        };
    let msg = InboundMessage {
        topic: target_topic.into_string(),
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
    broker.put(msg).await?;
    Ok(success(request))
}
