//! What the broker knows about its queues and consumers, for operators:
//! GET_TOPIC_STATS_INFO, GET_CONSUME_STATS, GET_BROKER_CONSUME_STATS,
//! VIEW_BROKER_STATS_DATA and QUERY_TOPIC_CONSUME_BY_WHO.

use std::collections::{BTreeMap, BTreeSet};

use mq_protocol::admin_body::{
    ConsumeStats, ConsumeStatsList, GroupList, OffsetWrapper, TopicOffset, TopicStatsTable,
};
use mq_protocol::body::MessageQueue;
use mq_protocol::header::{
    GetConsumeStatsInBrokerHeader, GetConsumeStatsRequestHeader, TopicHeader,
    ViewBrokerStatsDataRequestHeader,
};
use mq_protocol::name::{GroupName, TopicName};
use mq_protocol::route::{encode_json, TopicConfig};
use mq_protocol::{topic, MessageExt, RemotingCommand, ResponseCode};

use super::error::{ProcessError, Processed};
use super::success;
use crate::broker::Broker;

/// The configuration of a topic an operator asked about, or TOPIC_NOT_EXIST.
pub(crate) fn existing_topic(broker: &Broker, name: &str) -> Result<TopicConfig, ProcessError> {
    broker.topics.get(name).ok_or_else(|| {
        ProcessError::new(
            ResponseCode::TOPIC_NOT_EXIST,
            format!("topic[{name}] not exist"),
        )
    })
}

/// Store time of the message at `offset` of a queue, 0 if there is none.
fn store_time_at(broker: &Broker, topic: &str, queue_id: i32, offset: i64) -> i64 {
    if offset < 0 {
        return 0;
    }
    let result = broker
        .store
        .get_message(topic, queue_id, offset as u64, 1, usize::MAX, &|_| true);
    result
        .messages
        .first()
        .and_then(|bytes| MessageExt::decode(bytes, false).ok())
        .map_or(0, |(m, _)| m.store_timestamp)
}

/// GET_TOPIC_STATS_INFO.
pub(crate) fn topic_stats(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: TopicHeader = request.header()?;
    let config = existing_topic(broker, &header.topic)?;
    let broker_name = broker.config().broker_name.clone();
    let mut table = TopicStatsTable::default();
    for queue_id in 0..config.write_queue_nums {
        let max = broker.store.max_offset_in_queue(&header.topic, queue_id) as i64;
        let offsets = TopicOffset {
            min_offset: broker.store.min_offset_in_queue(&header.topic, queue_id) as i64,
            max_offset: max,
            last_update_timestamp: if max > 0 {
                store_time_at(broker, &header.topic, queue_id, max - 1)
            } else {
                0
            },
        };
        table.offset_table.insert(
            MessageQueue {
                topic: header.topic.clone(),
                broker_name: broker_name.clone(),
                queue_id,
            },
            offsets,
        );
    }
    Ok(success(request).with_body(table.encode()))
}

/// The topics `group` consumes here: those it has offsets for, and those
/// its online members subscribe to.
fn topics_of_group(broker: &Broker, group: &str) -> BTreeSet<String> {
    let mut topics: BTreeSet<String> = broker.offsets.topics_of_group(group).into_iter().collect();
    topics.extend(broker.clients.subscribed_topics(group).unwrap_or_default());
    topics
}

/// The group's position in every queue of `topic` on this broker; `None`
/// when the topic does not exist here.
fn consume_stats_of(broker: &Broker, group: &str, topic_name: &str) -> Option<ConsumeStats> {
    let config = broker.topics.get(topic_name)?;
    let broker_name = broker.config().broker_name.clone();
    let committed = broker.offsets.queues(group, topic_name);
    let mut stats = ConsumeStats {
        consume_tps: broker.stats.consume_tps(group, topic_name),
        ..ConsumeStats::default()
    };
    for queue_id in 0..config.read_queue_nums {
        let broker_offset = broker.store.max_offset_in_queue(topic_name, queue_id) as i64;
        let consumer_offset = committed.get(&queue_id).copied().unwrap_or(0).max(0);
        let last_timestamp = if consumer_offset > 0 {
            store_time_at(broker, topic_name, queue_id, consumer_offset - 1)
        } else {
            0
        };
        stats.offset_table.insert(
            MessageQueue {
                topic: topic_name.to_owned(),
                broker_name: broker_name.clone(),
                queue_id,
            },
            OffsetWrapper {
                broker_offset,
                consumer_offset,
                last_timestamp,
            },
        );
    }
    Some(stats)
}

/// GET_CONSUME_STATS.
pub(crate) fn consume_stats(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: GetConsumeStatsRequestHeader = request.header()?;
    GroupName::parse(&header.consumer_group).map_err(ProcessError::system)?;
    let topics: Vec<String> = match header.topic.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => vec![t.to_owned()],
        None => topics_of_group(broker, &header.consumer_group)
            .into_iter()
            .collect(),
    };
    let mut all = ConsumeStats::default();
    for topic_name in &topics {
        let Some(stats) = consume_stats_of(broker, &header.consumer_group, topic_name) else {
            if header.topic.is_some() {
                return Err(ProcessError::new(
                    ResponseCode::TOPIC_NOT_EXIST,
                    format!("topic[{topic_name}] not exist"),
                ));
            }
            continue;
        };
        all.consume_tps += stats.consume_tps;
        all.offset_table.extend(stats.offset_table);
    }
    Ok(success(request).with_body(all.encode()))
}

/// GET_BROKER_CONSUME_STATS: every group's stats on every topic it consumes
/// here; `isOrder` keeps ordered topics only.
pub(crate) fn broker_consume_stats(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: GetConsumeStatsInBrokerHeader = request.header()?;
    let pairs = broker.offsets.pairs();
    let mut by_group: BTreeMap<String, Vec<ConsumeStats>> = BTreeMap::new();
    let mut total_diff = 0;
    for (topic_name, group) in pairs {
        if topic_name.starts_with(topic::RETRY_GROUP_TOPIC_PREFIX) {
            continue;
        }
        let order = broker.topics.is_order(&topic_name);
        if header.is_order && !order {
            continue;
        }
        if let Some(stats) = consume_stats_of(broker, &group, &topic_name) {
            total_diff += stats.total_diff();
            by_group.entry(group).or_default().push(stats);
        }
    }
    let list = ConsumeStatsList {
        consume_stats_list: by_group.into_iter().map(|g| [g].into()).collect(),
        broker_addr: broker.broker_addr(),
        total_diff,
    };
    Ok(success(request).with_body(list.encode()))
}

/// VIEW_BROKER_STATS_DATA.
pub(crate) fn view_stats(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: ViewBrokerStatsDataRequestHeader = request.header()?;
    let data = broker
        .stats
        .view(&header.stats_name, &header.stats_key)
        .ok_or_else(|| {
            ProcessError::system(format!(
                "the stats <{}> <{}> not exist",
                header.stats_name, header.stats_key
            ))
        })?;
    Ok(success(request).with_body(encode_json(&data)))
}

/// QUERY_TOPIC_CONSUME_BY_WHO: groups online with a subscription to the
/// topic, and groups with offsets on it.
pub(crate) fn consumed_by(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: TopicHeader = request.header()?;
    TopicName::parse_internal(&header.topic).map_err(ProcessError::system)?;
    let mut groups: BTreeSet<String> = broker
        .offsets
        .groups_of_topic(&header.topic)
        .into_iter()
        .collect();
    groups.extend(broker.clients.groups_subscribed_to(&header.topic));
    Ok(success(request).with_body(encode_json(&GroupList { group_list: groups })))
}
