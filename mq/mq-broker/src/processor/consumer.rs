//! Client management and consumer bookkeeping: HEART_BEAT,
//! UNREGISTER_CLIENT, CHECK_CLIENT_CONFIG, GET_CONSUMER_LIST_BY_GROUP,
//! QUERY/UPDATE_CONSUMER_OFFSET, LOCK/UNLOCK_BATCH_MQ, and the
//! NOTIFY_CONSUMER_IDS_CHANGED call-back.

use mq_protocol::body::{
    java_string_hash, CheckClientRequestBody, ConsumerData, ConsumerListBody, HeartbeatData,
    LockBatchRequestBody, LockBatchResponseBody,
};
use mq_protocol::header::{
    ConsumerGroupHeader, OffsetResponseHeader, QueryConsumerOffsetRequestHeader,
    UnregisterClientRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use mq_protocol::name::{GroupName, NameError, TopicName};
use mq_protocol::route::{decode_json, encode_json, perm};
use mq_protocol::{topic, RemotingCommand, ResponseCode};
use mq_remoting::Channel;
use tracing::{info, warn};

use super::error::{ProcessError, Processed};
use super::{filter, success};
use crate::broker::Broker;
use crate::manager::clients::ClientInfo;
use crate::util::now_ms;

/// HEART_BEAT.
pub(crate) fn heartbeat(
    broker: &Broker,
    channel: &Channel,
    request: &RemotingCommand,
) -> Processed {
    let data: HeartbeatData = decode_json(&request.body)
        .map_err(|e| ProcessError::system(format!("bad heartbeat body: {e}")))?;
    check_heartbeat_names(&data)?;
    check_heartbeat_filters(&data, broker.config().enable_property_filter)?;
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
        let group = broker
            .groups
            .find_or_create(&consumer.group_name, auto_create, now);
        match group {
            Ok(Some(config)) => {
                if config.retry_queue_nums > 0 {
                    let retry = topic::retry_topic(&consumer.group_name);
                    if let Err(e) = broker.topics.ensure_internal(
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
        let joined = broker.clients.register_consumer(&consumer, client.clone());
        if joined {
            info!(group = %consumer.group_name, client = %data.client_id, "consumer joined");
            broker.notify_consumer_ids_changed(&consumer.group_name);
        }
    }
    for producer in &data.producer_data_set {
        broker
            .clients
            .register_producer(&producer.group_name, client.clone());
    }
    Ok(success(request))
}

/// Every group and subscribed topic of a heartbeat must be a name before
/// any of it is registered: a consumer group becomes a subscription group
/// and names the retry and DLQ topics (and so their folders in the store); a
/// producer group is what a transaction check-back looks its producers up
/// by. The remark says which entry is wrong.
fn check_heartbeat_names(data: &HeartbeatData) -> Result<(), ProcessError> {
    let refuse = |what: &str, e: NameError| ProcessError::system(format!("HEART_BEAT {what}: {e}"));
    for consumer in &data.consumer_data_set {
        GroupName::check(&consumer.group_name).map_err(|e| refuse("consumer group", e))?;
        for sub in &consumer.subscription_data_set {
            TopicName::check_internal(&sub.topic).map_err(|e| refuse("subscribed topic", e))?;
        }
    }
    for producer in &data.producer_data_set {
        GroupName::check(&producer.group_name).map_err(|e| refuse("producer group", e))?;
    }
    Ok(())
}

/// Every SQL92 subscription of a heartbeat must be one the broker serves
/// (see [`check_client_config`]) before any of it is registered: RocketMQ
/// registers it anyway and fails the group's pulls later with
/// FILTER_DATA_NOT_EXIST, a consumer that says nothing at start-up. The
/// remark names the group and topic.
fn check_heartbeat_filters(data: &HeartbeatData, enabled: bool) -> Result<(), ProcessError> {
    for consumer in &data.consumer_data_set {
        for sub in &consumer.subscription_data_set {
            filter::check_subscription(enabled, sub).map_err(|e| {
                ProcessError::new(
                    e.code,
                    format!(
                        "{} (HEART_BEAT consumer group {}, topic {})",
                        e.remark, consumer.group_name, sub.topic
                    ),
                )
            })?;
        }
    }
    Ok(())
}

/// CHECK_CLIENT_CONFIG: whether this broker serves a consumer's
/// subscription, asked before the consumer starts (RocketMQ's
/// `ClientManageProcessor.checkClientConfig`). TAG subscriptions always;
/// SQL92 ones only with `enablePropertyFilter`, and only if they compile.
pub(crate) fn check_client_config(broker: &Broker, request: &RemotingCommand) -> Processed {
    if request.body.is_empty() {
        return Ok(success(request));
    }
    let body: CheckClientRequestBody = decode_json(&request.body)
        .map_err(|e| ProcessError::system(format!("bad CHECK_CLIENT_CONFIG body: {e}")))?;
    if let Some(sub) = &body.subscription_data {
        filter::check_subscription(broker.config().enable_property_filter, sub)?;
    }
    Ok(success(request))
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

/// UNREGISTER_CLIENT.
pub(crate) fn unregister_client(
    broker: &Broker,
    channel: &Channel,
    request: &RemotingCommand,
) -> Processed {
    let header: UnregisterClientRequestHeader = request.header()?;
    if let Some(group) = header.producer_group.as_deref() {
        broker.clients.unregister_producer(group, channel.id());
    }
    if let Some(group) = header.consumer_group.as_deref() {
        let removed = broker.clients.unregister_consumer(group, &header.client_id);
        if removed {
            info!(%group, client = %header.client_id, "consumer left");
            broker.notify_consumer_ids_changed(group);
        }
    }
    Ok(success(request))
}

/// GET_CONSUMER_LIST_BY_GROUP.
pub(crate) fn consumer_list(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: ConsumerGroupHeader = request.header()?;
    let ids = broker.clients.consumer_ids(&header.consumer_group);
    if ids.is_empty() {
        return Err(ProcessError::system(format!(
            "no consumer for this group, {}",
            header.consumer_group
        )));
    }
    Ok(success(request).with_body(encode_json(&ConsumerListBody {
        consumer_id_list: ids,
    })))
}

/// QUERY_CONSUMER_OFFSET.
pub(crate) fn query_offset(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: QueryConsumerOffsetRequestHeader = request.header()?;
    check_offset_names(&header.consumer_group, &header.topic, header.queue_id)?;
    let committed = broker
        .offsets
        .query(&header.consumer_group, &header.topic, header.queue_id);
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
            return Err(ProcessError::new(
                ResponseCode::QUERY_NOT_FOUND,
                "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first",
            ))
        }
    };
    Ok(success(request).with_header(&OffsetResponseHeader { offset }))
}

/// An offset belongs to a real group, topic and queue: offsets are written
/// to consumerOffset.json under `topic@group` keys.
fn check_offset_names(group: &str, topic: &str, queue_id: i32) -> Result<(), ProcessError> {
    GroupName::parse(group).map_err(ProcessError::system)?;
    TopicName::parse_internal(topic).map_err(ProcessError::system)?;
    if queue_id < 0 {
        return Err(ProcessError::system(format!(
            "queueId {queue_id} must not be negative"
        )));
    }
    Ok(())
}

/// UPDATE_CONSUMER_OFFSET.
pub(crate) fn update_offset(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: UpdateConsumerOffsetRequestHeader = request.header()?;
    check_offset_names(&header.consumer_group, &header.topic, header.queue_id)?;
    if header.commit_offset < 0 {
        return Err(ProcessError::system("commitOffset must not be negative"));
    }
    broker.offsets.commit(
        &header.consumer_group,
        &header.topic,
        header.queue_id,
        header.commit_offset,
    );
    Ok(success(request))
}

/// The body of LOCK_BATCH_MQ and UNLOCK_BATCH_MQ.
fn lock_body(request: &RemotingCommand, what: &str) -> Result<LockBatchRequestBody, ProcessError> {
    let body: LockBatchRequestBody = decode_json(&request.body)
        .map_err(|e| ProcessError::system(format!("bad {what} body: {e}")))?;
    GroupName::parse(&body.consumer_group).map_err(ProcessError::system)?;
    Ok(body)
}

/// LOCK_BATCH_MQ.
pub(crate) fn lock_batch(broker: &Broker, request: &RemotingCommand) -> Processed {
    let body = lock_body(request, "lock")?;
    let held = broker.clients.try_lock(
        &body.consumer_group,
        &body.client_id,
        &body.mq_set,
        now_ms(),
    );
    Ok(
        success(request).with_body(encode_json(&LockBatchResponseBody {
            lock_ok_mq_set: held,
        })),
    )
}

/// UNLOCK_BATCH_MQ.
pub(crate) fn unlock_batch(broker: &Broker, request: &RemotingCommand) -> Processed {
    let body = lock_body(request, "unlock")?;
    broker
        .clients
        .unlock(&body.consumer_group, &body.client_id, &body.mq_set);
    Ok(success(request))
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
pub(crate) fn consumer_connections(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: ConsumerGroupHeader = request.header()?;
    let body = broker
        .clients
        .with_consumer_group(&header.consumer_group, |info| {
            encode_json(&ConsumerConnectionBody {
                connection_set: info.clients.values().map(connection).collect(),
                subscription_table: &info.subscriptions,
                consume_type: info.consume_type,
                message_model: info.message_model,
                consume_from_where: info.consume_from_where,
            })
        })
        .ok_or_else(|| {
            ProcessError::new(
                ResponseCode::CONSUMER_NOT_ONLINE,
                format!("the consumer group[{}] not online", header.consumer_group),
            )
        })?;
    Ok(success(request).with_body(body))
}

/// GET_PRODUCER_CONNECTION_LIST.
pub(crate) fn producer_connections(broker: &Broker, request: &RemotingCommand) -> Processed {
    let group = request
        .field("producerGroup")
        .ok_or_else(|| ProcessError::system("missing header field producerGroup"))?;
    let producers = broker.clients.producers_of(group);
    if producers.is_empty() {
        return Err(ProcessError::system(format!(
            "the producer group[{group}] not exist"
        )));
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ProducerConnectionBody {
        connection_set: Vec<ConnectionBody>,
    }
    Ok(
        success(request).with_body(encode_json(&ProducerConnectionBody {
            connection_set: producers.iter().map(connection).collect(),
        })),
    )
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
