//! Client management and consumer bookkeeping: HEART_BEAT,
//! UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP, QUERY/UPDATE_CONSUMER_OFFSET,
//! LOCK/UNLOCK_BATCH_MQ, and the NOTIFY_CONSUMER_IDS_CHANGED call-back.

use std::sync::Arc;

use mq_protocol::body::{
    java_string_hash, ConsumerData, ConsumerListBody, HeartbeatData, LockBatchRequestBody,
    LockBatchResponseBody,
};
use mq_protocol::header::{
    ConsumerGroupHeader, OffsetResponseHeader, QueryConsumerOffsetRequestHeader,
    UnregisterClientRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use mq_protocol::route::{decode_json, encode_json, perm};
use mq_protocol::{request_code, topic, RemotingCommand, ResponseCode};
use mq_remoting::Channel;
use tracing::{debug, info, warn};

use super::{header_or_reply, reply, success};
use crate::broker::{lock, now_ms, Broker};
use crate::clients::ClientInfo;

pub(crate) fn heartbeat(
    broker: &Arc<Broker>,
    channel: &Channel,
    request: &RemotingCommand,
) -> RemotingCommand {
    let data: HeartbeatData = match decode_json(&request.body) {
        Ok(d) => d,
        Err(e) => {
            return reply(
                request,
                ResponseCode::SYSTEM_ERROR,
                format!("bad heartbeat body: {e}"),
            )
        }
    };
    let now = now_ms();
    let client = ClientInfo {
        channel: channel.clone(),
        client_id: data.client_id.clone(),
        language: request.language,
        version: request.version,
        last_update_ms: now,
    };
    let auto_create = broker.config().auto_create_subscription_group;
    for consumer in &data.consumer_data_set {
        let group = lock(&broker.groups).find_or_create(&consumer.group_name, auto_create, now);
        match group {
            Ok(Some(config)) => {
                if config.retry_queue_nums > 0 {
                    let retry = topic::retry_topic(&consumer.group_name);
                    if let Err(e) = lock(&broker.topics).ensure_internal(
                        &retry,
                        config.retry_queue_nums,
                        perm::READ | perm::WRITE,
                        now,
                    ) {
                        warn!(error = %e, "creating a retry topic failed");
                    }
                }
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "creating a subscription group failed"),
        }
        let consumer = with_tag_codes_from_tags(consumer);
        let joined = lock(&broker.clients).register_consumer(&consumer, client.clone());
        if joined {
            info!(group = %consumer.group_name, client = %data.client_id, "consumer joined");
            notify_ids_changed(broker, &consumer.group_name);
        }
    }
    for producer in &data.producer_data_set {
        lock(&broker.clients).register_producer(&producer.group_name, client.clone());
    }
    success(request)
}

/// The consumer's subscriptions with each TAG subscription's code set
/// recomputed from its tag set, as Java's `FilterAPI` builds it (the hash of
/// each trimmed tag). Pulls filter on these codes, so a client that hashes
/// differently would silently get nothing: the third-party
/// `rocketmq-client-rust` 1.0 hashes the *untrimmed* pieces of `TagA || TagC`
/// (`"TagA "`, `" TagC"`) while its tag set holds the trimmed tags; a Java
/// broker then filters out every message. The tag set is what the client
/// matches on afterwards, so it is the one to trust.
fn with_tag_codes_from_tags(consumer: &ConsumerData) -> ConsumerData {
    let mut consumer = consumer.clone();
    for sub in &mut consumer.subscription_data_set {
        let is_tag = sub.expression_type.is_empty() || sub.expression_type == "TAG";
        if is_tag && !sub.class_filter_mode && !sub.tags_set.is_empty() {
            sub.code_set = sub.tags_set.iter().map(|t| java_string_hash(t)).collect();
        }
    }
    consumer
}

pub(crate) fn unregister_client(
    broker: &Arc<Broker>,
    channel: &Channel,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header = header_or_reply!(request, UnregisterClientRequestHeader);
    if let Some(group) = header.producer_group.as_deref() {
        lock(&broker.clients).unregister_producer(group, channel.id());
    }
    if let Some(group) = header.consumer_group.as_deref() {
        let removed = lock(&broker.clients).unregister_consumer(group, &header.client_id);
        if removed {
            info!(%group, client = %header.client_id, "consumer left");
            notify_ids_changed(broker, group);
        }
    }
    success(request)
}

/// Tells every member of `group` that the membership changed, so each
/// rebalances at once instead of at its next periodic rebalance.
pub(crate) fn notify_ids_changed(broker: &Arc<Broker>, group: &str) {
    let enabled = broker.config().notify_consumer_ids_changed_enable
        && lock(&broker.groups)
            .get(group)
            .is_none_or(|g| g.notify_consumer_ids_changed_enable);
    if !enabled {
        return;
    }
    let channels = lock(&broker.clients).consumer_channels(group);
    for channel in channels {
        let request = RemotingCommand::request(request_code::NOTIFY_CONSUMER_IDS_CHANGED)
            .with_header(&ConsumerGroupHeader {
                consumer_group: group.to_owned(),
            })
            .oneway();
        tokio::spawn(async move {
            if let Err(e) = channel.oneway(request).await {
                debug!(error = %e, "notifying a consumer failed");
            }
        });
    }
}

pub(crate) fn consumer_list(broker: &Broker, request: &RemotingCommand) -> RemotingCommand {
    let header = header_or_reply!(request, ConsumerGroupHeader);
    let ids = lock(&broker.clients).consumer_ids(&header.consumer_group);
    if ids.is_empty() {
        return reply(
            request,
            ResponseCode::SYSTEM_ERROR,
            format!("no consumer for this group, {}", header.consumer_group),
        );
    }
    success(request).with_body(encode_json(&ConsumerListBody {
        consumer_id_list: ids,
    }))
}

pub(crate) fn query_offset(broker: &Broker, request: &RemotingCommand) -> RemotingCommand {
    let header = header_or_reply!(request, QueryConsumerOffsetRequestHeader);
    let committed =
        lock(&broker.offsets).query(&header.consumer_group, &header.topic, header.queue_id);
    let offset = match committed {
        Some(offset) => offset,
        // A new group on a queue that still holds its first message starts
        // at 0, as RocketMQ does for a queue whose head is in memory.
        None if broker
            .store
            .min_offset_in_queue(&header.topic, header.queue_id)
            == 0
            || header.set_zero_if_not_found == Some(true) =>
        {
            0
        }
        None => {
            return reply(
                request,
                ResponseCode::QUERY_NOT_FOUND,
                "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first",
            )
        }
    };
    success(request).with_header(&OffsetResponseHeader { offset })
}

pub(crate) fn update_offset(broker: &Broker, request: &RemotingCommand) -> RemotingCommand {
    let header = header_or_reply!(request, UpdateConsumerOffsetRequestHeader);
    if header.commit_offset < 0 {
        return reply(
            request,
            ResponseCode::SYSTEM_ERROR,
            "commitOffset must not be negative",
        );
    }
    lock(&broker.offsets).commit(
        &header.consumer_group,
        &header.topic,
        header.queue_id,
        header.commit_offset,
    );
    success(request)
}

pub(crate) fn lock_batch(broker: &Broker, request: &RemotingCommand) -> RemotingCommand {
    let body: LockBatchRequestBody = match decode_json(&request.body) {
        Ok(b) => b,
        Err(e) => {
            return reply(
                request,
                ResponseCode::SYSTEM_ERROR,
                format!("bad lock body: {e}"),
            )
        }
    };
    let held = lock(&broker.locks).try_lock(
        &body.consumer_group,
        &body.client_id,
        &body.mq_set,
        now_ms(),
    );
    success(request).with_body(encode_json(&LockBatchResponseBody {
        lock_ok_mq_set: held,
    }))
}

pub(crate) fn unlock_batch(broker: &Broker, request: &RemotingCommand) -> RemotingCommand {
    let body: LockBatchRequestBody = match decode_json(&request.body) {
        Ok(b) => b,
        Err(e) => {
            return reply(
                request,
                ResponseCode::SYSTEM_ERROR,
                format!("bad unlock body: {e}"),
            )
        }
    };
    lock(&broker.locks).unlock(&body.consumer_group, &body.client_id, &body.mq_set);
    success(request)
}

/// One client connection, as RocketMQ's `Connection`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionBody {
    client_id: String,
    client_addr: String,
    language: String,
    version: i32,
}

fn connection(client: &ClientInfo) -> ConnectionBody {
    ConnectionBody {
        client_id: client.client_id.clone(),
        client_addr: client.channel.peer_addr().to_string(),
        language: client.language.name().to_owned(),
        version: client.version,
    }
}

/// RocketMQ's `ConsumerConnection`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ConsumerConnectionBody<'a> {
    connection_set: Vec<ConnectionBody>,
    subscription_table: &'a std::collections::BTreeMap<String, mq_protocol::body::SubscriptionData>,
    consume_type: mq_protocol::body::ConsumeType,
    message_model: mq_protocol::body::MessageModel,
    consume_from_where: mq_protocol::body::ConsumeFromWhere,
}

/// GET_CONSUMER_CONNECTION_LIST.
pub(crate) fn consumer_connections(broker: &Broker, request: &RemotingCommand) -> RemotingCommand {
    let header = header_or_reply!(request, ConsumerGroupHeader);
    let clients = lock(&broker.clients);
    let Some(info) = clients.consumer_group(&header.consumer_group) else {
        return reply(
            request,
            ResponseCode::CONSUMER_NOT_ONLINE,
            format!("the consumer group[{}] not online", header.consumer_group),
        );
    };
    let body = ConsumerConnectionBody {
        connection_set: info.clients.values().map(connection).collect(),
        subscription_table: &info.subscriptions,
        consume_type: info.consume_type,
        message_model: info.message_model,
        consume_from_where: info.consume_from_where,
    };
    success(request).with_body(encode_json(&body))
}

/// GET_PRODUCER_CONNECTION_LIST.
pub(crate) fn producer_connections(broker: &Broker, request: &RemotingCommand) -> RemotingCommand {
    let Some(group) = request.field("producerGroup") else {
        return reply(
            request,
            ResponseCode::SYSTEM_ERROR,
            "missing header field producerGroup",
        );
    };
    let producers = lock(&broker.clients).producers_of(group);
    if producers.is_empty() {
        return reply(
            request,
            ResponseCode::SYSTEM_ERROR,
            format!("the producer group[{group}] not exist"),
        );
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ProducerConnectionBody {
        connection_set: Vec<ConnectionBody>,
    }
    success(request).with_body(encode_json(&ProducerConnectionBody {
        connection_set: producers.iter().map(connection).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use mq_protocol::body::{java_string_hash, ConsumerData, SubscriptionData};

    use super::with_tag_codes_from_tags;

    #[test]
    fn tag_codes_come_from_the_trimmed_tags() {
        // What rocketmq-client-rust 1.0 sends for `TagA || TagC`.
        let mut sub = SubscriptionData::parse("T", "TagA || TagC", 1);
        sub.code_set = ["TagA ", " TagC"]
            .iter()
            .map(|t| java_string_hash(t))
            .collect();
        let star = SubscriptionData::parse("U", "*", 1);
        let mut sql = SubscriptionData::parse("V", "a > 1", 1);
        sql.expression_type = "SQL92".into();
        let sql_codes = sql.code_set.clone();
        let data = ConsumerData {
            group_name: "g".into(),
            subscription_data_set: vec![sub, star.clone(), sql],
            ..ConsumerData::default()
        };

        let fixed = with_tag_codes_from_tags(&data);

        let subs = &fixed.subscription_data_set;
        assert_eq!(
            subs[0].code_set,
            [java_string_hash("TagA"), java_string_hash("TagC")].into()
        );
        assert_eq!(subs[1], star, "`*` has no codes to fix");
        assert_eq!(subs[2].code_set, sql_codes, "only TAG subscriptions");
    }
}
