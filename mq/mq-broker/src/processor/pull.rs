//! PULL_MESSAGE with long polling.
//!
//! A pull that finds nothing new and carries the suspend flag is held until a
//! message is dispatched or its suspend timeout passes (RocketMQ's
//! PullRequestHoldService), then answered. The consumer's commit offset rides
//! on the pull and is recorded on the master.
//!
//! The subscription (carried by the pull, or the one the group's heartbeat
//! registered) filters by tag code in the consume queue and, for SQL92, by
//! the stored message's properties ([`filter`]); either way the next offset
//! moves past what did not match.

use std::time::Duration;

use bytes::BytesMut;
use mq_protocol::body::SubscriptionData;
use mq_protocol::header::{pull_sys_flag, PullMessageRequestHeader, PullMessageResponseHeader};
use mq_protocol::name::{GroupName, TopicName};
use mq_protocol::route::{perm, TopicConfig, MASTER_ID};
use mq_protocol::{RemotingCommand, ResponseCode};
use mq_store::{GetMessageResult, GetMessageStatus};

use super::error::{ProcessError, Processed};
use super::filter;
use crate::broker::Broker;
use crate::util::{now_ms, stopped};

/// The longest a pull is held, whatever the client asks for.
const MAX_SUSPEND: Duration = Duration::from_secs(60);
/// Bytes of messages one pull returns at most (RocketMQ's
/// maxTransferBytesOnMessageInMemory).
const MAX_TRANSFER_BYTES: usize = 256 * 1024;
/// Messages one pull returns at most (RocketMQ's maxTransferCountOnMessageInMemory).
const MAX_TRANSFER_COUNT: i32 = 32;

/// PULL_MESSAGE.
pub(crate) async fn pull_message(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: PullMessageRequestHeader = request.header()?;
    // A pull may auto-create its group: the names are checked first.
    GroupName::check(&header.consumer_group).map_err(ProcessError::system)?;
    TopicName::check_internal(&header.topic).map_err(ProcessError::system)?;
    if header.max_msg_nums <= 0 {
        return Err(ProcessError::system(format!(
            "maxMsgNums {} must be above 0",
            header.max_msg_nums
        )));
    }
    let config = broker.config();
    if !perm::is_readable(config.broker_permission) {
        return Err(ProcessError::new(
            ResponseCode::NO_PERMISSION,
            format!(
                "the broker[{}] pulling message is forbidden",
                broker.broker_addr()
            ),
        ));
    }
    let group = broker.groups.find_or_create(
        &header.consumer_group,
        config.auto_create_subscription_group,
        now_ms(),
    )?;
    let Some(group) = group else {
        return Err(ProcessError::new(
            ResponseCode::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!(
                "subscription group [{}] does not exist",
                header.consumer_group
            ),
        ));
    };
    if !group.consume_enable {
        return Err(ProcessError::new(
            ResponseCode::NO_PERMISSION,
            format!(
                "subscription group no permission, {}",
                header.consumer_group
            ),
        ));
    }
    let topic_config = broker
        .topics
        .get(&header.topic)
        .or_else(|| replicated_topic(broker, &header.topic));
    let Some(topic_config) = topic_config else {
        return Err(ProcessError::new(
            ResponseCode::TOPIC_NOT_EXIST,
            format!("topic[{}] not exist, apply first please!", header.topic),
        ));
    };
    if !perm::is_readable(topic_config.perm) {
        return Err(ProcessError::new(
            ResponseCode::NO_PERMISSION,
            format!("the topic[{}] pulling message is forbidden", header.topic),
        ));
    }
    if header.queue_id < 0 || header.queue_id >= topic_config.read_queue_nums {
        return Err(ProcessError::system(format!(
            "queueId[{}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}]",
            header.queue_id, header.topic, topic_config.read_queue_nums
        )));
    }
    let carried = header.sys_flag & pull_sys_flag::SUBSCRIPTION != 0;
    let subscription = if carried {
        SubscriptionData::build(
            &header.topic,
            header.subscription.as_deref().unwrap_or("*"),
            header.expression_type.as_deref(),
            header.sub_version,
        )
        .map_err(|e| {
            ProcessError::new(
                ResponseCode::SUBSCRIPTION_PARSE_FAILED,
                format!("parse the consumer's subscription failed: {e}"),
            )
        })?
    } else {
        broker
            .clients
            .subscription(&header.consumer_group, &header.topic)
            .ok_or_else(|| {
                ProcessError::new(
                    ResponseCode::SUBSCRIPTION_NOT_EXIST,
                    format!(
                        "the consumer's subscription not exist, group: {} topic: {}",
                        header.consumer_group, header.topic
                    ),
                )
            })?
    };
    let selector = filter::pull_selector(config.enable_property_filter, &subscription, !carried)?;

    let has_commit = header.sys_flag & pull_sys_flag::COMMIT_OFFSET != 0;
    if has_commit && !broker.is_slave() && header.commit_offset >= 0 {
        broker.offsets.commit(
            &header.consumer_group,
            &header.topic,
            header.queue_id,
            header.commit_offset,
        );
    }

    let suspend = header.sys_flag & pull_sys_flag::SUSPEND != 0;
    let hold = if !suspend {
        Duration::ZERO
    } else if config.long_polling_enable {
        Duration::from_millis(header.suspend_timeout_millis.max(0) as u64).min(MAX_SUSPEND)
    } else {
        Duration::from_millis(config.short_polling_time_mills)
    };
    let deadline = tokio::time::Instant::now() + hold;
    let offset = header.queue_offset.max(0) as u64;
    let max_count = header.max_msg_nums.clamp(1, MAX_TRANSFER_COUNT) as usize;
    let max_bytes = header
        .max_msg_bytes
        .filter(|b| *b > 0)
        .map_or(MAX_TRANSFER_BYTES, |b| (b as usize).min(MAX_TRANSFER_BYTES));
    let codes = subscription.code_set.clone();
    let all = subscription.is_all();
    let filter = move |tags_code: i64| all || codes.contains(&(tags_code as i32));
    let by_properties = selector
        .as_deref()
        .map(|s| move |record: &[u8]| filter::matches_record(s, record));
    let mut shutdown = broker.shutdown.clone();
    loop {
        // The queue's own notification once it exists: appends to other
        // queues do not wake this pull.
        let notify = broker
            .store
            .queue_notify(&header.topic, header.queue_id)
            .unwrap_or_else(|| broker.store.new_message_notify());
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let result = broker.store.get_message_filtered(
            &header.topic,
            header.queue_id,
            offset,
            max_count,
            max_bytes,
            &filter,
            by_properties.as_ref().map(|f| f as &dyn Fn(&[u8]) -> bool),
        );
        // Exactly the cases answered PULL_NOT_FOUND are worth waiting on.
        let waitable = match result.status {
            GetMessageStatus::OffsetOverflowOne | GetMessageStatus::OffsetFoundNull => true,
            GetMessageStatus::NoMessageInQueue | GetMessageStatus::NoMatchedLogicQueue => {
                header.queue_offset == 0
            }
            _ => false,
        };
        if !waitable || tokio::time::Instant::now() >= deadline || broker.is_shutting_down() {
            return Ok(response(broker, request, &header, result));
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stopped(&mut shutdown) => {}
        }
    }
}

fn response(
    broker: &Broker,
    request: &RemotingCommand,
    header: &PullMessageRequestHeader,
    result: GetMessageResult,
) -> RemotingCommand {
    let code = match result.status {
        GetMessageStatus::Found => ResponseCode::SUCCESS,
        GetMessageStatus::MessageWasRemoving | GetMessageStatus::NoMatchedMessage => {
            ResponseCode::PULL_RETRY_IMMEDIATELY
        }
        GetMessageStatus::NoMatchedLogicQueue | GetMessageStatus::NoMessageInQueue => {
            if header.queue_offset != 0 {
                ResponseCode::PULL_OFFSET_MOVED
            } else {
                ResponseCode::PULL_NOT_FOUND
            }
        }
        GetMessageStatus::OffsetFoundNull | GetMessageStatus::OffsetOverflowOne => {
            ResponseCode::PULL_NOT_FOUND
        }
        GetMessageStatus::OffsetOverflowBadly | GetMessageStatus::OffsetTooSmall => {
            ResponseCode::PULL_OFFSET_MOVED
        }
    };
    let suggest = suggest_which_broker_id(broker, &header.consumer_group, &result);
    let response_header = PullMessageResponseHeader {
        suggest_which_broker_id: suggest,
        next_begin_offset: result.next_begin_offset as i64,
        min_offset: result.min_offset as i64,
        max_offset: result.max_offset as i64,
    };
    let mut response = RemotingCommand::response_to(request, code).with_header(&response_header);
    if code == ResponseCode::SUCCESS {
        let total: usize = result.messages.iter().map(|m| m.len()).sum();
        broker.stats.record_get(
            &header.consumer_group,
            &header.topic,
            result.messages.len(),
            total,
        );
        let mut body = BytesMut::with_capacity(total);
        for m in &result.messages {
            body.extend_from_slice(m);
        }
        response.body = body.freeze();
    } else if code != ResponseCode::PULL_NOT_FOUND {
        response.remark = Some(format!("{:?}", result.status));
    }
    response
}

/// Which broker of the group the consumer should pull from next, as
/// RocketMQ's PullMessageProcessor answers: with `slaveReadEnable`, a
/// consumer reading further behind the commit log end than
/// `accessMessageInMemoryMaxRatio`% of memory (no longer in the page cache)
/// goes to the group's `whichBrokerWhenConsumeSlowly` (a slave), and one
/// that keeps up to the group's `brokerId`; without it, to the master.
/// A slave serves every pull it gets either way (the client comes to it
/// when the master is gone).
fn suggest_which_broker_id(broker: &Broker, group: &str, result: &GetMessageResult) -> i64 {
    let config = broker.config();
    if !config.slave_read_enable {
        return MASTER_ID;
    }
    let behind = broker
        .store
        .commit_log_max_offset()
        .saturating_sub(result.max_phy_offset_pulling);
    let memory_limit =
        total_memory_bytes() * u64::from(config.access_message_in_memory_max_ratio) / 100;
    let group = broker.groups.get(group).unwrap_or_default();
    // Only a read that looked at entries says how far behind it is.
    let looked = matches!(
        result.status,
        GetMessageStatus::Found
            | GetMessageStatus::NoMatchedMessage
            | GetMessageStatus::MessageWasRemoving
    );
    if looked && behind > memory_limit {
        group.which_broker_when_consume_slowly
    } else {
        group.broker_id
    }
}

/// On a slave, a topic its metadata copy does not have yet but whose
/// messages it already replicated: readable, with the queues the store has.
fn replicated_topic(broker: &Broker, topic: &str) -> Option<TopicConfig> {
    if !broker.is_slave() {
        return None;
    }
    let queues = broker.store.topics_and_queues().remove(topic)?;
    let count = queues.iter().max().map_or(0, |q| q + 1);
    Some(TopicConfig {
        topic_name: topic.to_owned(),
        read_queue_nums: count,
        write_queue_nums: count,
        perm: perm::READ | perm::WRITE,
        ..TopicConfig::default()
    })
}

/// Physical memory, for the "far behind" rule; 8 GiB if unknown.
fn total_memory_bytes() -> u64 {
    static TOTAL: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TOTAL.get_or_init(read_total_memory)
}

fn read_total_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(8 << 30, |kb| kb * 1024)
}
