//! The state of transactional messages that is not in the commit log:
//! which half messages have an outcome and how often the others were
//! checked back (`config/transactionCheck.json`), behind its lock, and
//! which half messages are having their outcome written right now.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mq_protocol::message::property;
use mq_protocol::{topic, MessageExt};
use mq_store::MessageStore;
use serde::{Deserialize, Serialize};

use crate::metadata::persist::{flush_commit_log_first, read_json, write_json};
use crate::metadata::MetadataError;
use crate::util::lock;

#[derive(Debug, Default, Serialize, Deserialize, Clone)]
#[serde(rename_all = "camelCase", default)]
struct Stored {
    /// Every half queue offset below this has an outcome.
    frontier: u64,
    /// Check-backs sent so far, by half queue offset.
    check_times: BTreeMap<u64, u32>,
}

/// Which half messages have an outcome, and how often the others were checked.
#[derive(Debug)]
struct TransactionState {
    path: PathBuf,
    stored: Stored,
    /// Half queue offsets at or past the frontier that have an outcome.
    ended: BTreeSet<u64>,
    /// Half queue offsets whose outcome is being written (see
    /// [`TransactionManager::claim`]); not persisted.
    deciding: BTreeSet<u64>,
}

impl TransactionState {
    /// Loads the state and rebuilds the outcomes from the op topic.
    fn load(path: &Path, store: &mq_store::MessageStore) -> Result<Self, MetadataError> {
        let stored: Stored = read_json(path)?.unwrap_or_default();
        let mut state = TransactionState {
            path: path.to_owned(),
            stored,
            ended: BTreeSet::new(),
            deciding: BTreeSet::new(),
        };
        let mut offset = store.min_offset_in_queue(topic::TRANS_OP_HALF_TOPIC, 0);
        loop {
            let result = store.get_message(
                topic::TRANS_OP_HALF_TOPIC,
                0,
                offset,
                256,
                usize::MAX,
                &|_| true,
            );
            if result.messages.is_empty() {
                break;
            }
            for bytes in &result.messages {
                if let Ok((op, _)) = MessageExt::decode(bytes, false) {
                    if let Some(half) = std::str::from_utf8(&op.body)
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                    {
                        if half >= state.stored.frontier {
                            state.ended.insert(half);
                        }
                    }
                }
            }
            if result.next_begin_offset <= offset {
                break;
            }
            offset = result.next_begin_offset;
        }
        Ok(state)
    }

    fn is_ended(&self, half_offset: u64) -> bool {
        half_offset < self.stored.frontier || self.ended.contains(&half_offset)
    }

    fn mark_ended(&mut self, half_offset: u64) {
        if half_offset >= self.stored.frontier {
            self.ended.insert(half_offset);
        }
        self.stored.check_times.remove(&half_offset);
    }

    /// Moves the frontier past every half with an outcome.
    fn advance(&mut self) {
        while self.ended.remove(&self.stored.frontier) {
            self.stored.frontier += 1;
        }
    }
}

pub use mq_protocol::admin_body::{HalfStatus, PendingHalf};

/// A claim on one half message's outcome ([`TransactionManager::claim`]);
/// released when dropped.
#[derive(Debug)]
pub(crate) struct Deciding<'a> {
    manager: &'a TransactionManager,
    half_offset: u64,
}

impl Deciding<'_> {
    /// Records the outcome and moves the frontier past it if it can.
    pub(crate) fn ended(self) {
        let mut state = lock(&self.manager.state);
        state.mark_ended(self.half_offset);
        state.advance();
    }
}

impl Drop for Deciding<'_> {
    fn drop(&mut self) {
        lock(&self.manager.state).deciding.remove(&self.half_offset);
    }
}

/// Outcomes and check counts of half messages, shared by END_TRANSACTION and
/// the check service.
#[derive(Debug)]
pub(crate) struct TransactionManager {
    state: Mutex<TransactionState>,
    /// Serialises writes of the state file, which happen outside `state`'s
    /// lock, so that an older snapshot never overwrites a newer one.
    writing: Mutex<()>,
}

impl TransactionManager {
    /// Loads the state and rebuilds the outcomes from the op topic.
    pub(crate) fn load(path: &Path, store: &MessageStore) -> Result<Self, MetadataError> {
        Ok(TransactionManager {
            state: Mutex::new(TransactionState::load(path, store)?),
            writing: Mutex::new(()),
        })
    }

    /// The right to write one half message's outcome (commit, rollback,
    /// discard), or `None` when it has one or another caller is writing
    /// one. One outcome per half: a second END_TRANSACTION, or a check-back
    /// answer, that arrives meanwhile changes nothing, as one that arrives
    /// after it. Different halves are decided concurrently, so under
    /// SYNC_FLUSH or SYNC_MASTER their writes share flushes and replication
    /// round trips instead of waiting for each other's. If the writing
    /// fails the claim is dropped and the half stays pending for the
    /// check-back.
    pub(crate) fn claim(&self, half_offset: u64) -> Option<Deciding<'_>> {
        let mut state = lock(&self.state);
        if state.is_ended(half_offset) || !state.deciding.insert(half_offset) {
            return None;
        }
        Some(Deciding {
            manager: self,
            half_offset,
        })
    }

    pub(crate) fn is_ended(&self, half_offset: u64) -> bool {
        lock(&self.state).is_ended(half_offset)
    }

    /// Every half queue offset below this has an outcome.
    pub(crate) fn frontier(&self) -> u64 {
        lock(&self.state).stored.frontier
    }

    /// Whether a half has an outcome, and how often it was checked.
    pub(crate) fn check_state(&self, half_offset: u64) -> (bool, u32) {
        let state = lock(&self.state);
        (
            state.is_ended(half_offset),
            state
                .stored
                .check_times
                .get(&half_offset)
                .copied()
                .unwrap_or(0),
        )
    }

    /// Records that a half was checked `times` times.
    pub(crate) fn set_check_times(&self, half_offset: u64, times: u32) {
        lock(&self.state)
            .stored
            .check_times
            .insert(half_offset, times);
    }

    /// Moves the frontier past everything resolved and persists the state.
    /// The file is written (and fsynced) from a snapshot after the state's
    /// lock is released: END_TRANSACTION takes that lock on the send path.
    ///
    /// The commit log is flushed between the snapshot and the write
    /// ([`flush_commit_log_first`]): an outcome is recorded after its
    /// committed message and op record are written, not after they are
    /// flushed.
    pub(crate) fn advance_and_persist(&self, store: &MessageStore) -> Result<(), String> {
        let _writing = lock(&self.writing);
        let (path, snapshot) = {
            let mut state = lock(&self.state);
            state.advance();
            (state.path.clone(), state.stored.clone())
        };
        flush_commit_log_first(store)?;
        write_json(&path, &snapshot).map_err(|e| e.to_string())
    }

    /// The half messages still waiting for an outcome.
    pub(crate) fn pending(&self, store: &MessageStore, now: i64, max: usize) -> HalfStatus {
        let (frontier, checks) = {
            let state = lock(&self.state);
            (state.stored.frontier, state.stored.check_times.clone())
        };
        let mut pending = Vec::new();
        let mut offset = frontier;
        while pending.len() < max {
            let result =
                store.get_message(topic::TRANS_HALF_TOPIC, 0, offset, 64, usize::MAX, &|_| {
                    true
                });
            if result.messages.is_empty() {
                break;
            }
            for bytes in &result.messages {
                let Ok((half, _)) = MessageExt::decode(bytes, false) else {
                    continue;
                };
                let q = half.queue_offset as u64;
                if self.is_ended(q) {
                    continue;
                }
                pending.push(PendingHalf {
                    queue_offset: q,
                    commit_log_offset: half.commit_log_offset,
                    topic: half
                        .property(property::REAL_TOPIC)
                        .unwrap_or_default()
                        .to_owned(),
                    producer_group: half
                        .property(property::PRODUCER_GROUP)
                        .unwrap_or_default()
                        .to_owned(),
                    msg_id: half.msg_id(),
                    keys: half.property(property::KEYS).unwrap_or_default().to_owned(),
                    store_timestamp: half.store_timestamp,
                    age_ms: now - half.store_timestamp,
                    check_times: checks.get(&q).copied().unwrap_or(0),
                });
            }
            if result.next_begin_offset <= offset {
                break;
            }
            offset = result.next_begin_offset;
        }
        pending.truncate(max);
        HalfStatus { frontier, pending }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One claim per half at a time, none once it has an outcome; other
    /// halves are claimed meanwhile; a dropped claim (a failed write)
    /// leaves the half pending.
    #[test]
    fn a_half_is_claimed_by_one_caller_and_never_after_its_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            MessageStore::open(mq_store::MessageStoreConfig::with_root(dir.path())).unwrap();
        let manager = TransactionManager::load(&dir.path().join("tx.json"), &store).unwrap();

        let first = manager.claim(0).expect("a pending half is claimed");
        assert!(
            manager.claim(0).is_none(),
            "a second caller gets no claim while the first holds it"
        );
        let other = manager.claim(1).expect("another half is claimed meanwhile");

        drop(other);
        assert!(!manager.is_ended(1), "a dropped claim records no outcome");
        manager.claim(1).expect("and leaves the half claimable");

        first.ended();
        assert!(manager.is_ended(0));
        assert!(manager.claim(0).is_none(), "an ended half is never claimed");
        assert_eq!(manager.frontier(), 1, "the frontier moved past it");
        store.shutdown().unwrap();
    }
}
