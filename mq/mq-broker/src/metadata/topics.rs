//! The broker's topics (`config/topics.json`): system topics, auto-creation
//! on first send, retry and dead-letter topics, and the data version the name
//! server compares.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mq_protocol::route::{perm, DataVersion, TopicConfig, TopicConfigSerializeWrapper};
use mq_protocol::topic;

use super::persist::{read_json, write_json};
use super::MetadataError;
use crate::config::BrokerConfig;

/// Queues of the schedule topic: one per delay level.
pub const SCHEDULE_TOPIC_QUEUES: i32 = 18;

/// The topic table of one broker, persisted on every change.
#[derive(Debug)]
pub struct TopicTable {
    path: PathBuf,
    topics: BTreeMap<String, TopicConfig>,
    data_version: DataVersion,
}

impl TopicTable {
    /// Loads `path` (or its backup) and adds the system topics the broker
    /// config asks for.
    pub fn load(path: &Path, broker: &BrokerConfig, now_ms: i64) -> Result<Self, MetadataError> {
        let stored: Option<TopicConfigSerializeWrapper> = read_json(path)?;
        let (topics, data_version) = match stored {
            Some(w) => (w.topic_config_table, w.data_version),
            None => (BTreeMap::new(), DataVersion::new(now_ms)),
        };
        let mut table = TopicTable {
            path: path.to_owned(),
            topics,
            data_version,
        };
        for config in system_topics(broker) {
            table
                .topics
                .entry(config.topic_name.clone())
                .or_insert(config);
        }
        table.persist()?;
        Ok(table)
    }

    pub fn get(&self, name: &str) -> Option<&TopicConfig> {
        self.topics.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &TopicConfig> {
        self.topics.values()
    }

    pub fn data_version(&self) -> DataVersion {
        self.data_version
    }

    /// The body a broker registers with name servers.
    pub fn wrapper(&self) -> TopicConfigSerializeWrapper {
        TopicConfigSerializeWrapper {
            topic_config_table: self.topics.clone(),
            data_version: self.data_version,
        }
    }

    /// Creates or replaces a topic.
    pub fn upsert(&mut self, config: TopicConfig, now_ms: i64) -> Result<(), MetadataError> {
        self.topics.insert(config.topic_name.clone(), config);
        self.data_version.next(now_ms);
        self.persist()
    }

    /// Removes a topic; returns whether it existed.
    pub fn delete(&mut self, name: &str, now_ms: i64) -> Result<bool, MetadataError> {
        if self.topics.remove(name).is_none() {
            return Ok(false);
        }
        self.data_version.next(now_ms);
        self.persist()?;
        Ok(true)
    }

    /// The topic a producer sends to, auto-created from the template topic
    /// `default_topic` when it is unknown, the broker allows auto-creation and
    /// the template is inheritable. `queue_nums` is what the client asked for,
    /// capped by the template's write queues.
    pub fn create_for_send(
        &mut self,
        name: &str,
        default_topic: &str,
        queue_nums: i32,
        topic_sys_flag: i32,
        broker: &BrokerConfig,
        now_ms: i64,
    ) -> Result<Option<TopicConfig>, MetadataError> {
        if let Some(existing) = self.topics.get(name) {
            return Ok(Some(existing.clone()));
        }
        if !broker.auto_create_topic_enable {
            return Ok(None);
        }
        let Some(template) = self.topics.get(default_topic) else {
            return Ok(None);
        };
        if template.perm & perm::INHERIT == 0 {
            return Ok(None);
        }
        let queues = queue_nums.clamp(1, template.write_queue_nums.max(1));
        let config = TopicConfig {
            topic_name: name.to_owned(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            perm: template.perm & !perm::INHERIT,
            topic_sys_flag,
            ..TopicConfig::default()
        };
        self.upsert(config.clone(), now_ms)?;
        Ok(Some(config))
    }

    /// A broker-internal topic (retry, dead-letter, transaction), created
    /// whatever `autoCreateTopicEnable` says.
    pub fn ensure_internal(
        &mut self,
        name: &str,
        queue_nums: i32,
        perm: i32,
        now_ms: i64,
    ) -> Result<TopicConfig, MetadataError> {
        if let Some(existing) = self.topics.get(name) {
            return Ok(existing.clone());
        }
        let config = TopicConfig {
            topic_name: name.to_owned(),
            read_queue_nums: queue_nums,
            write_queue_nums: queue_nums,
            perm,
            ..TopicConfig::default()
        };
        self.upsert(config.clone(), now_ms)?;
        Ok(config)
    }

    /// Clears (or restores) the write bit of every topic, for
    /// `wipeWritePerm`; returns how many topics changed.
    pub fn set_writable(&mut self, writable: bool, now_ms: i64) -> Result<usize, MetadataError> {
        let mut changed = 0;
        for config in self.topics.values_mut() {
            let new_perm = if writable {
                config.perm | perm::WRITE
            } else {
                config.perm & !perm::WRITE
            };
            if new_perm != config.perm {
                config.perm = new_perm;
                changed += 1;
            }
        }
        if changed > 0 {
            self.data_version.next(now_ms);
            self.persist()?;
        }
        Ok(changed)
    }

    /// Takes the master's table as it is (a slave's periodic copy); writes
    /// it only when the master's data version differs from ours.
    pub fn replace_from_master(
        &mut self,
        wrapper: TopicConfigSerializeWrapper,
    ) -> Result<bool, MetadataError> {
        if wrapper.data_version == self.data_version && wrapper.topic_config_table == self.topics {
            return Ok(false);
        }
        self.topics = wrapper.topic_config_table;
        self.data_version = wrapper.data_version;
        self.persist()?;
        Ok(true)
    }

    fn persist(&self) -> Result<(), MetadataError> {
        write_json(&self.path, &self.wrapper())
    }
}

fn system_topic(name: &str, queues: i32, perm: i32) -> TopicConfig {
    TopicConfig {
        topic_name: name.to_owned(),
        read_queue_nums: queues,
        write_queue_nums: queues,
        perm,
        ..TopicConfig::default()
    }
}

/// The topics RocketMQ's broker creates at start.
fn system_topics(broker: &BrokerConfig) -> Vec<TopicConfig> {
    let rw = perm::READ | perm::WRITE;
    let mut topics = vec![
        system_topic(topic::SELF_TEST_TOPIC, 1, rw),
        system_topic(topic::OFFSET_MOVED_EVENT, 1, rw),
        system_topic(topic::SCHEDULE_TOPIC, SCHEDULE_TOPIC_QUEUES, rw),
        system_topic(topic::TRANS_HALF_TOPIC, 1, rw),
        system_topic(topic::TRANS_OP_HALF_TOPIC, 1, rw),
        system_topic(topic::TIMER_TOPIC, 1, rw),
    ];
    if broker.auto_create_topic_enable {
        topics.push(system_topic(
            topic::AUTO_CREATE_TOPIC_KEY_TOPIC,
            broker.default_topic_queue_nums,
            perm::INHERIT | rw,
        ));
    }
    if broker.cluster_topic_enable {
        topics.push(system_topic(
            &broker.broker_cluster_name,
            16,
            broker.broker_permission | rw,
        ));
    }
    if broker.broker_topic_enable {
        topics.push(system_topic(
            &broker.broker_name,
            1,
            broker.broker_permission | rw,
        ));
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker() -> BrokerConfig {
        BrokerConfig {
            broker_name: "broker-a".into(),
            ..BrokerConfig::default()
        }
    }

    #[test]
    fn system_topics_exist_and_changes_persist_across_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/topics.json");
        let mut table = TopicTable::load(&path, &broker(), 1).unwrap();
        for name in [
            topic::SCHEDULE_TOPIC,
            topic::TIMER_TOPIC,
            topic::AUTO_CREATE_TOPIC_KEY_TOPIC,
            "DefaultCluster",
            "broker-a",
        ] {
            assert!(table.get(name).is_some(), "{name}");
        }
        assert_eq!(
            table.get(topic::SCHEDULE_TOPIC).unwrap().write_queue_nums,
            18
        );
        let before = table.data_version();
        table
            .upsert(
                TopicConfig {
                    write_queue_nums: 3,
                    read_queue_nums: 3,
                    ..TopicConfig::new("Orders")
                },
                2,
            )
            .unwrap();
        assert_eq!(table.data_version().counter, before.counter + 1);
        drop(table);
        let table = TopicTable::load(&path, &broker(), 3).unwrap();
        assert_eq!(table.get("Orders").unwrap().write_queue_nums, 3);
        // The file is RocketMQ's shape.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"topicConfigTable\"") && text.contains("\"dataVersion\""),
            "{text}"
        );
    }

    #[test]
    fn auto_creation_follows_the_template_and_the_switch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topics.json");
        let b = broker();
        let mut table = TopicTable::load(&path, &b, 1).unwrap();
        let created = table
            .create_for_send("NewTopic", topic::AUTO_CREATE_TOPIC_KEY_TOPIC, 4, 0, &b, 2)
            .unwrap()
            .unwrap();
        assert_eq!(created.write_queue_nums, 4);
        assert_eq!(created.perm, perm::READ | perm::WRITE);
        // Asking for more queues than the template has is capped.
        let capped = table
            .create_for_send("Big", topic::AUTO_CREATE_TOPIC_KEY_TOPIC, 1000, 0, &b, 3)
            .unwrap()
            .unwrap();
        assert_eq!(capped.write_queue_nums, b.default_topic_queue_nums);

        let off = BrokerConfig {
            auto_create_topic_enable: false,
            ..broker()
        };
        let dir2 = tempfile::tempdir().unwrap();
        let mut strict = TopicTable::load(&dir2.path().join("t.json"), &off, 1).unwrap();
        assert!(strict.get(topic::AUTO_CREATE_TOPIC_KEY_TOPIC).is_none());
        assert_eq!(
            strict
                .create_for_send(
                    "NewTopic",
                    topic::AUTO_CREATE_TOPIC_KEY_TOPIC,
                    4,
                    0,
                    &off,
                    2
                )
                .unwrap(),
            None
        );
        // Internal topics are created regardless.
        let retry = strict
            .ensure_internal(&topic::retry_topic("g"), 1, perm::READ | perm::WRITE, 3)
            .unwrap();
        assert_eq!(retry.write_queue_nums, 1);
    }

    #[test]
    fn wipe_write_perm_counts_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topics.json");
        let mut table = TopicTable::load(&path, &broker(), 1).unwrap();
        let n = table.set_writable(false, 2).unwrap();
        assert_eq!(n, table.all().count());
        assert!(table.all().all(|t| t.perm & perm::WRITE == 0));
        assert_eq!(table.set_writable(false, 3).unwrap(), 0);
        assert!(table.delete("broker-a", 4).unwrap());
        assert!(!table.delete("broker-a", 5).unwrap());
    }
}
