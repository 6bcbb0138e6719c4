//! Consumer offsets (`config/consumerOffset.json`) and delay-level offsets
//! (`config/delayOffset.json`).
//!
//! Offsets change on every commit, so they are kept in memory and persisted
//! by [`ConsumerOffsets::persist`], which the broker calls every
//! `flushConsumerOffsetInterval` and at shutdown, as RocketMQ does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::persist::{decode, read_json, write_json};
use super::MetadataError;

/// The key of a topic/group pair in RocketMQ's offset table.
fn key(topic: &str, group: &str) -> String {
    format!("{topic}@{group}")
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct StoredOffsets {
    offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// Committed consumer offsets by topic, group and queue.
#[derive(Debug)]
pub struct ConsumerOffsets {
    path: PathBuf,
    stored: StoredOffsets,
    dirty: bool,
}

impl ConsumerOffsets {
    pub fn load(path: &Path) -> Result<Self, MetadataError> {
        Ok(ConsumerOffsets {
            path: path.to_owned(),
            stored: read_json(path)?.unwrap_or_default(),
            dirty: false,
        })
    }

    pub fn commit(&mut self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let queues = self
            .stored
            .offset_table
            .entry(key(topic, group))
            .or_default();
        if queues.insert(queue_id, offset) != Some(offset) {
            self.dirty = true;
        }
    }

    pub fn query(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.stored
            .offset_table
            .get(&key(topic, group))
            .and_then(|q| q.get(&queue_id))
            .copied()
    }

    /// Every queue's offset of a group on a topic.
    pub fn queues(&self, group: &str, topic: &str) -> BTreeMap<i32, i64> {
        self.stored
            .offset_table
            .get(&key(topic, group))
            .cloned()
            .unwrap_or_default()
    }

    /// Every (topic, group) pair with offsets.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.stored
            .offset_table
            .keys()
            .filter_map(|k| k.rsplit_once('@'))
    }

    /// Groups with offsets on `topic`.
    pub fn groups_of_topic(&self, topic: &str) -> Vec<String> {
        self.pairs()
            .filter(|(t, _)| *t == topic)
            .map(|(_, g)| g.to_owned())
            .collect()
    }

    /// Topics a group has offsets on.
    pub fn topics_of_group(&self, group: &str) -> Vec<String> {
        self.pairs()
            .filter(|(_, g)| *g == group)
            .map(|(t, _)| t.to_owned())
            .collect()
    }

    /// Copies `from` group's offsets on `topic` to `to` (cloneGroupOffset).
    pub fn clone_group(&mut self, from: &str, to: &str, topic: &str) {
        if let Some(queues) = self.stored.offset_table.get(&key(topic, from)).cloned() {
            self.stored.offset_table.insert(key(topic, to), queues);
            self.dirty = true;
        }
    }

    /// Forgets every offset of a group.
    pub fn remove_group(&mut self, group: &str) {
        self.remove_where(|_, g| g == group);
    }

    /// Forgets every offset on a topic (the topic was deleted).
    pub fn remove_topic(&mut self, topic: &str) {
        self.remove_where(|t, _| t == topic);
    }

    /// Removes the entries whose (topic, group) `gone` says.
    fn remove_where(&mut self, gone: impl Fn(&str, &str) -> bool) {
        let before = self.stored.offset_table.len();
        self.stored
            .offset_table
            .retain(|k, _| k.rsplit_once('@').is_none_or(|(t, g)| !gone(t, g)));
        self.dirty |= before != self.stored.offset_table.len();
    }

    /// The whole table as RocketMQ's JSON (GET_ALL_CONSUMER_OFFSET).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.stored).expect("offsets serialize")
    }

    /// Replaces the table (a slave syncing from its master).
    pub fn replace_from_json(&mut self, json: &[u8]) -> Result<(), MetadataError> {
        self.stored = decode(&self.path, json)?;
        self.dirty = true;
        Ok(())
    }

    /// A slave's periodic copy from its master (GET_ALL_CONSUMER_OFFSET's
    /// body): the master's entries replace ours queue by queue, and entries
    /// only this slave has (committed while the master was away) stay, as
    /// RocketMQ's slave does.
    pub fn merge_from_master(&mut self, json: &[u8]) -> Result<(), MetadataError> {
        let master: StoredOffsets = decode(&self.path, json)?;
        for (key, queues) in master.offset_table {
            let ours = self.stored.offset_table.entry(key).or_default();
            for (queue_id, offset) in queues {
                if ours.insert(queue_id, offset) != Some(offset) {
                    self.dirty = true;
                }
            }
        }
        Ok(())
    }

    /// Writes the table if anything changed since the last write.
    pub fn persist(&mut self) -> Result<(), MetadataError> {
        if self.dirty {
            write_json(&self.path, &self.stored)?;
            self.dirty = false;
        }
        Ok(())
    }

    /// The table as it is now, to be written outside the caller's lock,
    /// if anything changed since the last write; counts it as written
    /// (after a failed write, [`mark_changed`](Self::mark_changed)).
    pub fn take_changes(&mut self) -> Option<OffsetsSnapshot> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        Some(OffsetsSnapshot {
            path: self.path.clone(),
            stored: self.stored.clone(),
        })
    }

    /// Counts the table as changed, so that the next persist writes it.
    pub fn mark_changed(&mut self) {
        self.dirty = true;
    }
}

/// A copy of the consumer offsets taken by [`ConsumerOffsets::take_changes`].
#[derive(Debug)]
pub struct OffsetsSnapshot {
    path: PathBuf,
    stored: StoredOffsets,
}

impl OffsetsSnapshot {
    /// Writes the copy to the table's file (tmp, fsync, rename).
    pub fn write(&self) -> Result<(), MetadataError> {
        write_json(&self.path, &self.stored)
    }
}

/// How far the schedule service has delivered each delay level's queue.
#[derive(Debug)]
pub struct DelayOffsets {
    path: PathBuf,
    stored: StoredOffsetsByLevel,
    /// Changed since the last write (true at first, so that the file is
    /// written once even when nothing is ever delayed).
    dirty: bool,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct StoredOffsetsByLevel {
    offset_table: BTreeMap<i32, i64>,
}

impl DelayOffsets {
    pub fn load(path: &Path) -> Result<Self, MetadataError> {
        Ok(DelayOffsets {
            path: path.to_owned(),
            stored: read_json(path)?.unwrap_or_default(),
            dirty: true,
        })
    }

    pub fn get(&self, level: i32) -> i64 {
        self.stored.offset_table.get(&level).copied().unwrap_or(0)
    }

    pub fn set(&mut self, level: i32, offset: i64) {
        if self.stored.offset_table.insert(level, offset) != Some(offset) {
            self.dirty = true;
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.stored).expect("offsets serialize")
    }

    /// Takes the master's table (GET_ALL_DELAY_OFFSET's body): a slave's
    /// periodic copy, so that it knows where delivery stands if it is ever
    /// made master.
    pub fn replace_from_master(&mut self, json: &[u8]) -> Result<(), MetadataError> {
        let master: StoredOffsetsByLevel = decode(&self.path, json)?;
        if master.offset_table != self.stored.offset_table {
            self.stored = master;
            self.dirty = true;
        }
        self.persist()
    }

    /// Writes the table if anything changed since the last write.
    pub fn persist(&mut self) -> Result<(), MetadataError> {
        if self.dirty {
            write_json(&self.path, &self.stored)?;
            self.dirty = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slave_takes_the_masters_offsets_and_keeps_its_own_others() {
        let dir = tempfile::tempdir().unwrap();
        let mut master = ConsumerOffsets::load(&dir.path().join("m.json")).unwrap();
        master.commit("g", "T", 0, 10);
        master.commit("g", "T", 1, 20);
        let mut slave = ConsumerOffsets::load(&dir.path().join("s.json")).unwrap();
        slave.commit("g", "T", 1, 25);
        slave.commit("g", "T", 2, 7);
        slave.merge_from_master(&master.to_json()).unwrap();
        assert_eq!(slave.query("g", "T", 0), Some(10));
        assert_eq!(
            slave.query("g", "T", 1),
            Some(20),
            "the master's entry wins"
        );
        assert_eq!(
            slave.query("g", "T", 2),
            Some(7),
            "a slave-only entry stays"
        );
        assert!(slave.merge_from_master(b"not json").is_err());
        assert_eq!(
            slave.query("g", "T", 0),
            Some(10),
            "a bad body changes nothing"
        );
    }

    #[test]
    fn offsets_commit_query_persist_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consumerOffset.json");
        let mut offsets = ConsumerOffsets::load(&path).unwrap();
        offsets.commit("g1", "TopicA", 0, 10);
        offsets.commit("g1", "TopicA", 1, 20);
        offsets.commit("g2", "TopicA", 0, 5);
        offsets.commit("g1", "Topic@B", 0, 7);
        assert_eq!(offsets.query("g1", "TopicA", 1), Some(20));
        assert_eq!(offsets.query("g1", "TopicA", 9), None);
        let mut groups = offsets.groups_of_topic("TopicA");
        groups.sort();
        assert_eq!(groups, vec!["g1", "g2"]);
        assert_eq!(offsets.topics_of_group("g1").len(), 2);
        offsets.persist().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"TopicA@g1\""), "{text}");
        let mut reloaded = ConsumerOffsets::load(&path).unwrap();
        assert_eq!(
            reloaded.queues("g1", "TopicA"),
            BTreeMap::from([(0, 10), (1, 20)])
        );
        reloaded.clone_group("g1", "g3", "TopicA");
        assert_eq!(reloaded.query("g3", "TopicA", 1), Some(20));
        reloaded.remove_group("g1");
        assert_eq!(reloaded.query("g1", "TopicA", 0), None);
        assert_eq!(reloaded.query("g2", "TopicA", 0), Some(5));
        reloaded.remove_topic("TopicA");
        assert!(reloaded.groups_of_topic("TopicA").is_empty());
    }

    #[test]
    fn a_rocketmq_offset_file_with_bare_numeric_keys_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consumerOffset.json");
        std::fs::write(
            &path,
            r#"{"offsetTable":{"TopicTest@please_rename_unique_group_name_4":{0:250,1:249}}}"#,
        )
        .unwrap();
        let offsets = ConsumerOffsets::load(&path).unwrap();
        assert_eq!(
            offsets.query("please_rename_unique_group_name_4", "TopicTest", 1),
            Some(249)
        );
    }

    #[test]
    fn delay_offsets_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("delayOffset.json");
        let mut d = DelayOffsets::load(&path).unwrap();
        assert_eq!(d.get(3), 0);
        d.set(3, 42);
        d.persist().unwrap();
        assert_eq!(DelayOffsets::load(&path).unwrap().get(3), 42);
    }

    #[test]
    fn delay_offsets_are_written_only_when_they_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("delayOffset.json");
        let mut d = DelayOffsets::load(&path).unwrap();
        d.persist().unwrap();
        assert!(path.exists(), "written once, even empty");
        std::fs::remove_file(&path).unwrap();
        d.persist().unwrap();
        assert!(!path.exists(), "nothing changed: no write (an fsync saved)");
        d.set(3, 7);
        d.persist().unwrap();
        assert_eq!(DelayOffsets::load(&path).unwrap().get(3), 7);
        std::fs::remove_file(&path).unwrap();
        d.set(3, 7);
        d.persist().unwrap();
        assert!(!path.exists(), "the same offset again: no write");
        d.replace_from_master(br#"{"offsetTable":{"3":7}}"#)
            .unwrap();
        assert!(!path.exists(), "the master's copy is what we have");
        d.replace_from_master(br#"{"offsetTable":{"3":9}}"#)
            .unwrap();
        assert_eq!(DelayOffsets::load(&path).unwrap().get(3), 9);
    }
}
