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
    /// Serialises writes of the file, which happen outside `table`'s lock,
    /// so that an older snapshot never overwrites a newer one.
    writing: Mutex<()>,
}

impl ConsumerOffsetManager {
    pub(crate) fn new(table: ConsumerOffsets) -> Self {
        ConsumerOffsetManager {
            table: Mutex::new(table),
            writing: Mutex::new(()),
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

    /// Writes the table if it changed since the last write: a snapshot
    /// taken under the table's lock, then `before_write`, then the file
    /// (tmp, fsync, rename) with the lock released, so that commits on the
    /// runtime's worker never wait for the disk. If `before_write` or the
    /// write fails, the next persist writes the table again.
    pub(crate) fn persist(
        &self,
        before_write: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), String> {
        let _writing = lock(&self.writing);
        let Some(snapshot) = lock(&self.table).take_changes() else {
            return Ok(());
        };
        let written = before_write().and_then(|()| snapshot.write().map_err(|e| e.to_string()));
        if written.is_err() {
            lock(&self.table).mark_changed();
        }
        written
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::{broker_with_store, message, no_timed_flush};
    use crate::config::BrokerConfig;

    fn on_disk(path: &std::path::Path, group: &str) -> Option<i64> {
        ConsumerOffsets::load(path).unwrap().query(group, "T", 0)
    }

    /// The file is written from a snapshot: a commit made meanwhile is
    /// written by the next persist, and a failure before the write leaves
    /// the file as it was and the table to be written again.
    #[test]
    fn a_persist_writes_its_snapshot_and_leaves_later_commits_to_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consumerOffset.json");
        let manager = ConsumerOffsetManager::new(ConsumerOffsets::load(&path).unwrap());
        manager.commit("g", "T", 0, 5);
        manager
            .persist(|| {
                manager.commit("late", "T", 0, 9);
                Ok(())
            })
            .unwrap();
        assert_eq!(on_disk(&path, "g"), Some(5));
        assert_eq!(on_disk(&path, "late"), None, "after the snapshot");
        manager.persist(|| Ok(())).unwrap();
        assert_eq!(on_disk(&path, "late"), Some(9), "written by the next one");

        manager.commit("g", "T", 0, 6);
        assert!(manager.persist(|| Err("flush failed".into())).is_err());
        assert_eq!(on_disk(&path, "g"), Some(5), "nothing written");
        manager.persist(|| Ok(())).unwrap();
        assert_eq!(
            on_disk(&path, "g"),
            Some(6),
            "written again after a failure"
        );
    }

    /// Under ASYNC_FLUSH the broker flushes the commit log before it writes
    /// the offsets (a committed offset may count on a retry copy).
    #[tokio::test]
    async fn offsets_are_written_after_the_commit_log_is_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker_with_store(dir.path(), BrokerConfig::default(), no_timed_flush);
        broker.put(message("%RETRY%g", &[])).await.unwrap();
        broker.offsets.commit("g", "T", 0, 1);
        assert!(broker.store.flushed_offset() < broker.store.commit_log_max_offset());
        broker.persist_offsets();
        assert_eq!(
            broker.store.flushed_offset(),
            broker.store.commit_log_max_offset()
        );
    }
}
