//! Subscription groups (`config/subscriptionGroup.json`): per consumer group,
//! whether it may consume, how many retry queues it has and how often a
//! message is retried before it goes to the group's dead-letter topic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mq_protocol::route::DataVersion;
use serde::{Deserialize, Serialize};

use super::persist::{decode, read_json, write_json};
use super::MetadataError;

/// RocketMQ's `SubscriptionGroupConfig`, the same type clients send.
pub use mq_protocol::client_body::SubscriptionGroupConfig;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Stored {
    subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
    data_version: DataVersion,
}

/// The subscription groups of one broker, persisted on every change.
#[derive(Debug)]
pub struct GroupTable {
    path: PathBuf,
    stored: Stored,
}

impl GroupTable {
    pub fn load(path: &Path, now_ms: i64) -> Result<Self, MetadataError> {
        let stored = read_json(path)?.unwrap_or_else(|| Stored {
            data_version: DataVersion::new(now_ms),
            ..Stored::default()
        });
        Ok(GroupTable {
            path: path.to_owned(),
            stored,
        })
    }

    pub fn get(&self, group: &str) -> Option<&SubscriptionGroupConfig> {
        self.stored.subscription_group_table.get(group)
    }

    pub fn all(&self) -> impl Iterator<Item = &SubscriptionGroupConfig> {
        self.stored.subscription_group_table.values()
    }

    pub fn data_version(&self) -> DataVersion {
        self.stored.data_version
    }

    /// The group's config, created with defaults when `auto_create` allows.
    pub fn find_or_create(
        &mut self,
        group: &str,
        auto_create: bool,
        now_ms: i64,
    ) -> Result<Option<SubscriptionGroupConfig>, MetadataError> {
        if let Some(config) = self.get(group) {
            return Ok(Some(config.clone()));
        }
        if !auto_create {
            return Ok(None);
        }
        let config = SubscriptionGroupConfig::new(group);
        self.upsert(config.clone(), now_ms)?;
        Ok(Some(config))
    }

    pub fn upsert(
        &mut self,
        config: SubscriptionGroupConfig,
        now_ms: i64,
    ) -> Result<(), MetadataError> {
        self.stored
            .subscription_group_table
            .insert(config.group_name.clone(), config);
        self.stored.data_version.next(now_ms);
        write_json(&self.path, &self.stored)
    }

    /// Takes the master's table (GET_ALL_SUBSCRIPTIONGROUP_CONFIG's body) as
    /// it is: a slave's periodic copy. Writes only on a change.
    pub fn replace_from_master(&mut self, json: &[u8]) -> Result<bool, MetadataError> {
        let stored: Stored = decode(&self.path, json)?;
        if stored.data_version == self.stored.data_version
            && stored.subscription_group_table == self.stored.subscription_group_table
        {
            return Ok(false);
        }
        self.stored = stored;
        write_json(&self.path, &self.stored)?;
        Ok(true)
    }

    pub fn delete(&mut self, group: &str, now_ms: i64) -> Result<bool, MetadataError> {
        if self.stored.subscription_group_table.remove(group).is_none() {
            return Ok(false);
        }
        self.stored.data_version.next(now_ms);
        write_json(&self.path, &self.stored)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_created_persisted_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscriptionGroup.json");
        let mut table = GroupTable::load(&path, 1).unwrap();
        assert_eq!(table.find_or_create("g1", false, 2).unwrap(), None);
        let g = table.find_or_create("g1", true, 2).unwrap().unwrap();
        assert_eq!(g.retry_max_times, 16);
        table
            .upsert(
                SubscriptionGroupConfig {
                    retry_max_times: 3,
                    ..SubscriptionGroupConfig::new("g2")
                },
                3,
            )
            .unwrap();
        let table2 = GroupTable::load(&path, 4).unwrap();
        assert_eq!(table2.get("g2").unwrap().retry_max_times, 3);
        assert!(table2.get("g1").is_some());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"subscriptionGroupTable\"") && text.contains("\"retryMaxTimes\""));
        let mut table2 = table2;
        assert!(table2.delete("g1", 5).unwrap());
        assert!(GroupTable::load(&path, 6).unwrap().get("g1").is_none());
    }

    #[test]
    fn a_rocketmq_file_with_missing_fields_loads_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscriptionGroup.json");
        std::fs::write(&path, r#"{"subscriptionGroupTable":{"g":{"groupName":"g","consumeEnable":false,"unknownField":1}},"dataVersion":{"counter":7,"timestamp":1}}"#).unwrap();
        let table = GroupTable::load(&path, 9).unwrap();
        let g = table.get("g").unwrap();
        assert!(!g.consume_enable);
        assert_eq!(g.retry_queue_nums, 1);
        assert_eq!(table.data_version().counter, 7);
    }
}
