//! The producers and consumers connected to this broker, learned from their
//! heartbeats, forgotten when their connection closes, when they unregister,
//! or after `serverChannelMaxIdleTimeSeconds` without a heartbeat.
//!
//! The broker uses this to answer GET_CONSUMER_LIST_BY_GROUP (the input of
//! every client's rebalance), to tell a group when its members change
//! (NOTIFY_CONSUMER_IDS_CHANGED), to find a live producer of a group for a
//! transaction check-back, and to know each consumer's subscription.
//!
//! [`ClientManager`] keeps the registry and the ordered-consumption queue
//! locks ([`QueueLocks`]) behind their locks: RocketMQ's `ConsumerManager`,
//! `ProducerManager` and `RebalanceLockManager` in one place, since a closed
//! connection touches all three.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use mq_protocol::body::MessageQueue;
use mq_protocol::body::{
    ConsumeFromWhere, ConsumeType, ConsumerData, MessageModel, SubscriptionData,
};
use mq_protocol::LanguageCode;
use mq_remoting::Channel;

use super::locks::QueueLocks;
use crate::util::lock;

/// One client connection of a group.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub channel: Channel,
    pub client_id: String,
    pub language: LanguageCode,
    pub version: i32,
    /// When the last heartbeat arrived (ms).
    pub last_update_ms: i64,
}

/// What the broker knows of one consumer group.
#[derive(Debug, Clone)]
pub struct ConsumerGroupInfo {
    pub consume_type: ConsumeType,
    pub message_model: MessageModel,
    pub consume_from_where: ConsumeFromWhere,
    /// By topic. The latest heartbeat of any member wins, as in RocketMQ.
    pub subscriptions: BTreeMap<String, SubscriptionData>,
    /// By client id.
    pub clients: BTreeMap<String, ClientInfo>,
}

/// Producers and consumers by group.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    consumers: HashMap<String, ConsumerGroupInfo>,
    /// group → channel id → client.
    producers: HashMap<String, BTreeMap<u64, ClientInfo>>,
}

impl ClientRegistry {
    /// Records a producer heartbeat.
    pub fn register_producer(&mut self, group: &str, client: ClientInfo) {
        self.producers
            .entry(group.to_owned())
            .or_default()
            .insert(client.channel.id(), client);
    }

    /// Records a consumer heartbeat. Returns true when the group's set of
    /// members changed (a new client joined), so the caller can notify the
    /// group to rebalance.
    pub fn register_consumer(&mut self, data: &ConsumerData, client: ClientInfo) -> bool {
        let info = self
            .consumers
            .entry(data.group_name.clone())
            .or_insert_with(|| ConsumerGroupInfo {
                consume_type: data.consume_type,
                message_model: data.message_model,
                consume_from_where: data.consume_from_where,
                subscriptions: BTreeMap::new(),
                clients: BTreeMap::new(),
            });
        info.consume_type = data.consume_type;
        info.message_model = data.message_model;
        info.consume_from_where = data.consume_from_where;
        for sub in &data.subscription_data_set {
            info.subscriptions.insert(sub.topic.clone(), sub.clone());
        }
        let joined = match info.clients.get(&client.client_id) {
            Some(existing) => existing.channel.id() != client.channel.id(),
            None => true,
        };
        info.clients.insert(client.client_id.clone(), client);
        joined
    }

    /// Removes a client from a producer group.
    pub fn unregister_producer(&mut self, group: &str, channel_id: u64) {
        if let Some(group_clients) = self.producers.get_mut(group) {
            group_clients.remove(&channel_id);
            if group_clients.is_empty() {
                self.producers.remove(group);
            }
        }
    }

    /// Removes a client from a consumer group. Returns true when it was a
    /// member.
    pub fn unregister_consumer(&mut self, group: &str, client_id: &str) -> bool {
        let Some(info) = self.consumers.get_mut(group) else {
            return false;
        };
        let removed = info.clients.remove(client_id).is_some();
        if info.clients.is_empty() {
            self.consumers.remove(group);
        }
        removed
    }

    /// Forgets every registration of a closed connection; returns the
    /// consumer groups that lost a member.
    pub fn channel_closed(&mut self, channel_id: u64) -> Vec<String> {
        self.remove_where(|c| c.channel.id() == channel_id)
    }

    /// Forgets clients silent since before `deadline_ms`; returns the consumer
    /// groups that lost a member.
    pub fn expire(&mut self, deadline_ms: i64) -> Vec<String> {
        self.remove_where(|c| c.last_update_ms < deadline_ms)
    }

    fn remove_where(&mut self, gone: impl Fn(&ClientInfo) -> bool) -> Vec<String> {
        for clients in self.producers.values_mut() {
            clients.retain(|_, c| !gone(c));
        }
        self.producers.retain(|_, clients| !clients.is_empty());
        let mut changed = Vec::new();
        for (group, info) in &mut self.consumers {
            let before = info.clients.len();
            info.clients.retain(|_, c| !gone(c));
            if info.clients.len() != before {
                changed.push(group.clone());
            }
        }
        self.consumers.retain(|_, info| !info.clients.is_empty());
        changed
    }

    pub fn consumer_group(&self, group: &str) -> Option<&ConsumerGroupInfo> {
        self.consumers.get(group)
    }

    /// Client ids of a group, sorted (every member sorts the same way before
    /// allocating queues).
    pub fn consumer_ids(&self, group: &str) -> Vec<String> {
        self.consumers
            .get(group)
            .map(|info| info.clients.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Channels of a consumer group, to notify them.
    pub fn consumer_channels(&self, group: &str) -> Vec<Channel> {
        self.consumers
            .get(group)
            .map(|info| info.clients.values().map(|c| c.channel.clone()).collect())
            .unwrap_or_default()
    }

    /// Groups online with a subscription to `topic`.
    pub fn groups_subscribed_to(&self, topic: &str) -> Vec<String> {
        self.consumers
            .iter()
            .filter(|(_, info)| info.subscriptions.contains_key(topic))
            .map(|(group, _)| group.clone())
            .collect()
    }

    pub fn subscription(&self, group: &str, topic: &str) -> Option<&SubscriptionData> {
        self.consumers.get(group)?.subscriptions.get(topic)
    }

    /// The live connections of a producer group, for check-backs.
    pub fn producer_channels(&self, group: &str) -> Vec<ClientInfo> {
        self.producers
            .get(group)
            .map(|clients| {
                clients
                    .values()
                    .filter(|c| !c.channel.is_closed())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every live client of a producer group.
    pub fn producers_of(&self, group: &str) -> Vec<ClientInfo> {
        self.producers
            .get(group)
            .map(|clients| clients.values().cloned().collect())
            .unwrap_or_default()
    }
}

impl ClientRegistry {
    /// Client ids registered over a connection.
    pub fn client_ids_of_channel(&self, channel_id: u64) -> Vec<String> {
        let mut ids: Vec<String> = self
            .consumers
            .values()
            .flat_map(|info| info.clients.values())
            .chain(self.producers.values().flat_map(|c| c.values()))
            .filter(|c| c.channel.id() == channel_id)
            .map(|c| c.client_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// The connected clients and their queue locks, shared by every request.
#[derive(Debug, Default)]
pub(crate) struct ClientManager {
    registry: Mutex<ClientRegistry>,
    locks: Mutex<QueueLocks>,
}

impl ClientManager {
    /// Records a producer heartbeat.
    pub(crate) fn register_producer(&self, group: &str, client: ClientInfo) {
        lock(&self.registry).register_producer(group, client);
    }

    /// Records a consumer heartbeat; true when a new member joined.
    pub(crate) fn register_consumer(&self, data: &ConsumerData, client: ClientInfo) -> bool {
        lock(&self.registry).register_consumer(data, client)
    }

    pub(crate) fn unregister_producer(&self, group: &str, channel_id: u64) {
        lock(&self.registry).unregister_producer(group, channel_id);
    }

    /// Removes a consumer; true when it was a member.
    pub(crate) fn unregister_consumer(&self, group: &str, client_id: &str) -> bool {
        lock(&self.registry).unregister_consumer(group, client_id)
    }

    /// Forgets everything registered over a closed connection, releases the
    /// queues its clients held, and returns the consumer groups that lost a
    /// member.
    pub(crate) fn channel_closed(&self, channel_id: u64) -> Vec<String> {
        let (changed, client_ids) = {
            let mut registry = lock(&self.registry);
            let ids = registry.client_ids_of_channel(channel_id);
            (registry.channel_closed(channel_id), ids)
        };
        let mut locks = lock(&self.locks);
        for id in &client_ids {
            locks.release_client(id);
        }
        changed
    }

    /// Forgets clients silent since before `deadline_ms`; returns the
    /// consumer groups that lost a member.
    pub(crate) fn expire(&self, deadline_ms: i64) -> Vec<String> {
        lock(&self.registry).expire(deadline_ms)
    }

    /// Runs `f` over what is known of an online consumer group.
    pub(crate) fn with_consumer_group<R>(
        &self,
        group: &str,
        f: impl FnOnce(&ConsumerGroupInfo) -> R,
    ) -> Option<R> {
        lock(&self.registry).consumer_group(group).map(f)
    }

    /// Whether any member of `group` is online.
    pub(crate) fn is_online(&self, group: &str) -> bool {
        lock(&self.registry).consumer_group(group).is_some()
    }

    /// The topics an online group subscribes to; `None` when it is offline.
    pub(crate) fn subscribed_topics(&self, group: &str) -> Option<BTreeSet<String>> {
        self.with_consumer_group(group, |info| info.subscriptions.keys().cloned().collect())
    }

    /// The online members of a consumer group.
    pub(crate) fn members(&self, group: &str) -> Vec<ClientInfo> {
        self.with_consumer_group(group, |info| info.clients.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Client ids of a group, sorted.
    pub(crate) fn consumer_ids(&self, group: &str) -> Vec<String> {
        lock(&self.registry).consumer_ids(group)
    }

    /// Channels of a consumer group, to notify them.
    pub(crate) fn consumer_channels(&self, group: &str) -> Vec<Channel> {
        lock(&self.registry).consumer_channels(group)
    }

    /// Groups online with a subscription to `topic`.
    pub(crate) fn groups_subscribed_to(&self, topic: &str) -> Vec<String> {
        lock(&self.registry).groups_subscribed_to(topic)
    }

    /// The subscription a member of `group` registered for `topic`.
    pub(crate) fn subscription(&self, group: &str, topic: &str) -> Option<SubscriptionData> {
        lock(&self.registry).subscription(group, topic).cloned()
    }

    /// The live connections of a producer group, for check-backs.
    pub(crate) fn producer_channels(&self, group: &str) -> Vec<ClientInfo> {
        lock(&self.registry).producer_channels(group)
    }

    /// Every client of a producer group.
    pub(crate) fn producers_of(&self, group: &str) -> Vec<ClientInfo> {
        lock(&self.registry).producers_of(group)
    }

    /// LOCK_BATCH_MQ: the queues of `queues` the client now holds.
    pub(crate) fn try_lock(
        &self,
        group: &str,
        client_id: &str,
        queues: &BTreeSet<MessageQueue>,
        now_ms: i64,
    ) -> BTreeSet<MessageQueue> {
        lock(&self.locks).try_lock(group, client_id, queues, now_ms)
    }

    /// UNLOCK_BATCH_MQ.
    pub(crate) fn unlock(&self, group: &str, client_id: &str, queues: &BTreeSet<MessageQueue>) {
        lock(&self.locks).unlock(group, client_id, queues);
    }
}
