//! RocketMQ's `ConsumerOffsetManager` and the schedule service's delay
//! offsets: the offset tables behind their locks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::metadata::offsets::{ConsumerOffsets, DelayOffsets};
use crate::metadata::MetadataError;
use crate::util::lock;

/// Where each consumer group stands in each queue.
#[derive(Debug)]
pub(crate) struct ConsumerOffsetManager {
    table: Mutex<ConsumerOffsets>,
}

impl ConsumerOffsetManager {
    pub(crate) fn new(table: ConsumerOffsets) -> Self {
        ConsumerOffsetManager {
            table: Mutex::new(table),
        }
    }

    pub(crate) fn commit(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        lock(&self.table).commit(group, topic, queue_id, offset);
    }

    /// Commits several queues of one topic at once.
    pub(crate) fn commit_all(&self, group: &str, topic: &str, offsets: &[(i32, i64)]) {
        let mut table = lock(&self.table);
        for (queue_id, offset) in offsets {
            table.commit(group, topic, *queue_id, *offset);
        }
    }

    pub(crate) fn query(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        lock(&self.table).query(group, topic, queue_id)
    }

    /// The group's offset of every queue of `topic`.
    pub(crate) fn queues(&self, group: &str, topic: &str) -> BTreeMap<i32, i64> {
        lock(&self.table).queues(group, topic)
    }

    /// Every (topic, group) with offsets.
    pub(crate) fn pairs(&self) -> BTreeSet<(String, String)> {
        lock(&self.table)
            .pairs()
            .map(|(t, g)| (t.to_owned(), g.to_owned()))
            .collect()
    }

    pub(crate) fn groups_of_topic(&self, topic: &str) -> Vec<String> {
        lock(&self.table).groups_of_topic(topic)
    }

    pub(crate) fn topics_of_group(&self, group: &str) -> Vec<String> {
        lock(&self.table).topics_of_group(group)
    }

    pub(crate) fn clone_group(&self, from: &str, to: &str, topic: &str) {
        lock(&self.table).clone_group(from, to, topic);
    }

    pub(crate) fn remove_topic(&self, topic: &str) {
        lock(&self.table).remove_topic(topic);
    }

    /// The table as RocketMQ's `consumerOffset.json` (GET_ALL_CONSUMER_OFFSET).
    pub(crate) fn to_json(&self) -> Vec<u8> {
        lock(&self.table).to_json()
    }

    /// Takes the master's offsets over ours and persists (a slave's copy).
    pub(crate) fn merge_from_master(&self, json: &[u8]) -> Result<(), MetadataError> {
        let mut table = lock(&self.table);
        table.merge_from_master(json).and_then(|()| table.persist())
    }

    /// Writes the table if it changed since the last write.
    pub(crate) fn persist(&self) -> Result<(), MetadataError> {
        lock(&self.table).persist()
    }
}

/// How far the schedule service has delivered each delay level's queue.
#[derive(Debug)]
pub(crate) struct DelayOffsetManager {
    table: Mutex<DelayOffsets>,
}

impl DelayOffsetManager {
    pub(crate) fn new(table: DelayOffsets) -> Self {
        DelayOffsetManager {
            table: Mutex::new(table),
        }
    }

    pub(crate) fn get(&self, level: i32) -> i64 {
        lock(&self.table).get(level)
    }

    /// Records that `level` was delivered up to `offset` and persists.
    pub(crate) fn advance(&self, level: i32, offset: i64) -> Result<(), MetadataError> {
        let mut table = lock(&self.table);
        table.set(level, offset);
        table.persist()
    }

    /// The table as RocketMQ's `delayOffset.json` (GET_ALL_DELAY_OFFSET).
    pub(crate) fn to_json(&self) -> Vec<u8> {
        lock(&self.table).to_json()
    }

    /// Takes the master's table (a slave's copy).
    pub(crate) fn replace_from_master(&self, json: &[u8]) -> Result<(), MetadataError> {
        lock(&self.table).replace_from_master(json)
    }

    pub(crate) fn persist(&self) -> Result<(), MetadataError> {
        lock(&self.table).persist()
    }
}
