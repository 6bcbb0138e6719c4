//! RocketMQ's `SubscriptionGroupManager`: the subscription groups behind
//! their lock.

use std::sync::Mutex;

use mq_protocol::route::DataVersion;

use crate::metadata::groups::{GroupTable, SubscriptionGroupConfig};
use crate::metadata::MetadataError;
use crate::util::lock;

/// The broker's subscription groups, shared by every request.
#[derive(Debug)]
pub(crate) struct SubscriptionGroupManager {
    table: Mutex<GroupTable>,
}

impl SubscriptionGroupManager {
    pub(crate) fn new(table: GroupTable) -> Self {
        SubscriptionGroupManager {
            table: Mutex::new(table),
        }
    }

    pub(crate) fn get(&self, group: &str) -> Option<SubscriptionGroupConfig> {
        lock(&self.table).get(group).cloned()
    }

    /// The retry queues of `group` (1 when it is unknown or has none).
    pub(crate) fn retry_queue_nums(&self, group: &str) -> i32 {
        lock(&self.table)
            .get(group)
            .map_or(1, |g| g.retry_queue_nums.max(1))
    }

    /// Whether members of `group` are told when its membership changes
    /// (an unknown group is).
    pub(crate) fn notifies_ids_changed(&self, group: &str) -> bool {
        lock(&self.table)
            .get(group)
            .is_none_or(|g| g.notify_consumer_ids_changed_enable)
    }

    /// The group's config, created with defaults when `auto_create` allows.
    pub(crate) fn find_or_create(
        &self,
        group: &str,
        auto_create: bool,
        now_ms: i64,
    ) -> Result<Option<SubscriptionGroupConfig>, MetadataError> {
        lock(&self.table).find_or_create(group, auto_create, now_ms)
    }

    pub(crate) fn upsert(
        &self,
        config: SubscriptionGroupConfig,
        now_ms: i64,
    ) -> Result<(), MetadataError> {
        lock(&self.table).upsert(config, now_ms)
    }

    pub(crate) fn delete(&self, group: &str, now_ms: i64) -> Result<bool, MetadataError> {
        lock(&self.table).delete(group, now_ms)
    }

    /// Every group and the table's version, for GET_ALL_SUBSCRIPTIONGROUP_CONFIG.
    pub(crate) fn all(&self) -> (Vec<SubscriptionGroupConfig>, DataVersion) {
        let table = lock(&self.table);
        (table.all().cloned().collect(), table.data_version())
    }

    /// Takes the master's table (a slave's periodic copy).
    pub(crate) fn replace_from_master(&self, json: &[u8]) -> Result<bool, MetadataError> {
        lock(&self.table).replace_from_master(json)
    }
}
