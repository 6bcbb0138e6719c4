//! RocketMQ's `TopicConfigManager`: the topic table behind its lock, and
//! what was last registered with the name servers.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use mq_protocol::route::{DataVersion, TopicConfig, TopicConfigSerializeWrapper};

use crate::config::BrokerConfig;
use crate::metadata::topics::TopicTable;
use crate::metadata::MetadataError;
use crate::util::lock;

/// The broker's topics, shared by every request.
#[derive(Debug)]
pub(crate) struct TopicConfigManager {
    table: Mutex<TopicTable>,
    /// The table version last sent to the name servers (-1: none yet).
    registered_version: AtomicI64,
}

impl TopicConfigManager {
    pub(crate) fn new(table: TopicTable) -> Self {
        TopicConfigManager {
            table: Mutex::new(table),
            registered_version: AtomicI64::new(-1),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<TopicConfig> {
        lock(&self.table).get(name).cloned()
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        lock(&self.table).get(name).is_some()
    }

    /// Whether `name` is an ordered topic.
    pub(crate) fn is_order(&self, name: &str) -> bool {
        lock(&self.table).get(name).is_some_and(|c| c.order)
    }

    pub(crate) fn data_version(&self) -> DataVersion {
        lock(&self.table).data_version()
    }

    /// Every topic with the table's version (GET_ALL_TOPIC_CONFIG).
    pub(crate) fn wrapper(&self) -> TopicConfigSerializeWrapper {
        lock(&self.table).wrapper()
    }

    pub(crate) fn upsert(&self, config: TopicConfig, now_ms: i64) -> Result<(), MetadataError> {
        lock(&self.table).upsert(config, now_ms)
    }

    pub(crate) fn delete(&self, name: &str, now_ms: i64) -> Result<bool, MetadataError> {
        lock(&self.table).delete(name, now_ms)
    }

    /// A broker-internal topic (retry, dead-letter, transaction), created
    /// whatever `autoCreateTopicEnable` says.
    pub(crate) fn ensure_internal(
        &self,
        name: &str,
        queue_nums: i32,
        perm: i32,
        now_ms: i64,
    ) -> Result<TopicConfig, MetadataError> {
        lock(&self.table).ensure_internal(name, queue_nums, perm, now_ms)
    }

    /// The topic a producer sends to, auto-created from its template topic
    /// as [`TopicTable::create_for_send`] says. A `%RETRY%` topic that does
    /// not exist is created with `retry_queues(name)` queues, under the same
    /// lock so that concurrent sends agree on it.
    pub(crate) fn find_for_send(
        &self,
        name: &str,
        default_topic: &str,
        queue_nums: i32,
        broker: &BrokerConfig,
        now_ms: i64,
        retry_queues: impl FnOnce() -> Option<i32>,
    ) -> Result<Option<TopicConfig>, MetadataError> {
        let mut table = lock(&self.table);
        match table.create_for_send(name, default_topic, queue_nums, 0, broker, now_ms)? {
            Some(config) => Ok(Some(config)),
            None => Ok(retry_queues().and_then(|queues| {
                table
                    .ensure_internal(
                        name,
                        queues,
                        mq_protocol::route::perm::READ | mq_protocol::route::perm::WRITE,
                        now_ms,
                    )
                    .ok()
            })),
        }
    }

    /// The topics of `names` this table does not know.
    pub(crate) fn unknown<T>(
        &self,
        names: impl IntoIterator<Item = (String, T)>,
    ) -> Vec<(String, T)> {
        let table = lock(&self.table);
        names
            .into_iter()
            .filter(|(name, _)| table.get(name).is_none())
            .collect()
    }

    /// Takes the master's table (a slave's periodic copy).
    pub(crate) fn replace_from_master(
        &self,
        wrapper: TopicConfigSerializeWrapper,
    ) -> Result<bool, MetadataError> {
        lock(&self.table).replace_from_master(wrapper)
    }

    /// The table to register with the name servers, remembered as
    /// registered.
    pub(crate) fn wrapper_to_register(&self) -> TopicConfigSerializeWrapper {
        let wrapper = lock(&self.table).wrapper();
        self.registered_version
            .store(wrapper.data_version.counter, Ordering::Release);
        wrapper
    }

    /// True exactly once per change of the table since the last
    /// registration: the caller that gets true registers.
    pub(crate) fn claim_unregistered_change(&self) -> bool {
        let version = lock(&self.table).data_version().counter;
        let registered = self.registered_version.load(Ordering::Acquire);
        version != registered
            && self
                .registered_version
                .compare_exchange(registered, version, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_claimed_for_registration_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig::default();
        let table = TopicTable::load(&dir.path().join("topics.json"), &config, 1).unwrap();
        let topics = TopicConfigManager::new(table);
        assert!(topics.claim_unregistered_change(), "never registered yet");
        assert!(!topics.claim_unregistered_change());
        topics
            .ensure_internal("%RETRY%g", 1, mq_protocol::route::perm::READ, 2)
            .unwrap();
        assert!(topics.claim_unregistered_change());
        let wrapper = topics.wrapper_to_register();
        assert!(wrapper.topic_config_table.contains_key("%RETRY%g"));
        assert!(!topics.claim_unregistered_change());
    }

    #[test]
    fn a_missing_retry_topic_is_created_for_a_send_with_the_groups_queues() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            auto_create_topic_enable: false,
            ..BrokerConfig::default()
        };
        let table = TopicTable::load(&dir.path().join("topics.json"), &config, 1).unwrap();
        let topics = TopicConfigManager::new(table);
        let none = topics.find_for_send("T", "TBW102", 4, &config, 2, || None);
        assert_eq!(none.unwrap(), None);
        let retry = topics
            .find_for_send("%RETRY%g", "TBW102", 4, &config, 2, || Some(3))
            .unwrap()
            .unwrap();
        assert_eq!((retry.read_queue_nums, retry.write_queue_nums), (3, 3));
        assert!(topics.contains("%RETRY%g"));
    }
}
