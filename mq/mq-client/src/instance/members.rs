//! The producer and consumer groups registered with a client instance: what
//! its heartbeats announce and what broker callbacks are answered from.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use std::future::Future;
use std::pin::Pin;

use mq_protocol::admin_body::{running_info, ConsumeMessageDirectlyResult, ConsumerRunningInfo};
use mq_protocol::body::{ConsumerData, HeartbeatData, MessageQueue, ProducerData};
use mq_protocol::MessageExt;

use crate::end_transaction::TransactionChecker;
use crate::error::{ClientError, Result};
use crate::sync::lock;

/// What the instance needs from a consumer registered with it.
pub(crate) trait ConsumerRegistration: Send + Sync {
    /// The consumer's part of the heartbeat.
    fn consumer_data(&self) -> ConsumerData;
    /// Asks for a rebalance soon (the group's members changed).
    fn trigger_rebalance(&self);
    /// What GET_CONSUMER_RUNNING_INFO reports (see `callback`).
    fn running_info(&self) -> ConsumerRunningInfo {
        basic_running_info(&self.consumer_data())
    }
    /// The consumer's offsets of `topic` (GET_CONSUMER_STATUS_FROM_CLIENT).
    fn topic_offsets(&self, _topic: &str) -> BTreeMap<MessageQueue, i64> {
        BTreeMap::new()
    }
    /// The broker moved the group's offsets of `topic`
    /// (RESET_CONSUMER_CLIENT_OFFSET): read on from `offsets`.
    fn reset_offsets(&self, _topic: &str, _offsets: &BTreeMap<MessageQueue, i64>) {}
    /// CONSUME_MESSAGE_DIRECTLY: the listener's run on `msg`; none for a
    /// consumer without a listener.
    fn consume_directly(&self, _msg: MessageExt) -> Option<DirectConsume> {
        None
    }
}

/// A listener's run on one message handed to it directly.
pub(crate) type DirectConsume = Pin<Box<dyn Future<Output = ConsumeMessageDirectlyResult> + Send>>;

/// Running info every consumer can give: its subscriptions and kind.
pub(crate) fn basic_running_info(data: &ConsumerData) -> ConsumerRunningInfo {
    let mut info = ConsumerRunningInfo {
        subscription_set: data.subscription_data_set.clone(),
        ..ConsumerRunningInfo::default()
    };
    let consume_type = serde_json::to_value(data.consume_type)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    info.properties
        .insert(running_info::PROP_CONSUME_TYPE.to_owned(), consume_type);
    for (key, value) in [
        ("messageModel", serde_json::to_value(data.message_model)),
        (
            "consumeFromWhere",
            serde_json::to_value(data.consume_from_where),
        ),
    ] {
        if let Some(v) = value.ok().and_then(|v| v.as_str().map(str::to_owned)) {
            info.properties.insert(key.to_owned(), v);
        }
    }
    info.properties
        .insert("consumerGroup".to_owned(), data.group_name.clone());
    info
}

/// The groups of one client id: at most one producer and one consumer of
/// each group (RocketMQ refuses a second one on the same instance).
pub(crate) struct Members {
    client_id: String,
    /// Producer groups, with the checker of transactional ones.
    producers: Mutex<HashMap<String, Option<Arc<dyn TransactionChecker>>>>,
    consumers: Mutex<HashMap<String, Arc<dyn ConsumerRegistration>>>,
}

/// Adds `member` as `table`'s entry for `group` unless it has one.
fn register<T>(
    table: &Mutex<HashMap<String, T>>,
    kind: &str,
    group: &str,
    client_id: &str,
    member: T,
) -> Result<()> {
    let mut table = lock(table);
    if table.contains_key(group) {
        return Err(ClientError::InvalidArgument(format!(
            "{kind} group {group} already registered on client {client_id}; use another instance name"
        )));
    }
    table.insert(group.to_owned(), member);
    Ok(())
}

impl Members {
    pub(super) fn new(client_id: String) -> Self {
        Members {
            client_id,
            producers: Mutex::default(),
            consumers: Mutex::default(),
        }
    }

    pub(super) fn register_producer(
        &self,
        group: &str,
        checker: Option<Arc<dyn TransactionChecker>>,
    ) -> Result<()> {
        register(&self.producers, "producer", group, &self.client_id, checker)
    }

    pub(super) fn register_consumer(
        &self,
        group: &str,
        consumer: Arc<dyn ConsumerRegistration>,
    ) -> Result<()> {
        register(
            &self.consumers,
            "consumer",
            group,
            &self.client_id,
            consumer,
        )
    }

    pub(super) fn remove_producer(&self, group: &str) {
        lock(&self.producers).remove(group);
    }

    pub(super) fn remove_consumer(&self, group: &str) {
        lock(&self.consumers).remove(group);
    }

    /// The consumer of `group` registered here, for broker callbacks.
    pub(crate) fn consumer(&self, group: &str) -> Option<Arc<dyn ConsumerRegistration>> {
        lock(&self.consumers).get(group).cloned()
    }

    /// The checker of the transactional producer of `group`, if one is here.
    pub(crate) fn checker(&self, group: &str) -> Option<Arc<dyn TransactionChecker>> {
        lock(&self.producers).get(group).cloned().flatten()
    }

    pub(super) fn is_empty(&self) -> bool {
        lock(&self.producers).is_empty() && lock(&self.consumers).is_empty()
    }

    /// Every group, as a heartbeat announces them.
    pub(super) fn heartbeat_data(&self) -> HeartbeatData {
        HeartbeatData {
            client_id: self.client_id.clone(),
            producer_data_set: lock(&self.producers)
                .keys()
                .map(|group| ProducerData {
                    group_name: group.clone(),
                })
                .collect(),
            consumer_data_set: lock(&self.consumers)
                .values()
                .map(|c| c.consumer_data())
                .collect(),
        }
    }
}
