//! Queue locks for ordered consumption (LOCK_BATCH_MQ / UNLOCK_BATCH_MQ): one
//! client of a group owns a queue at a time, so messages of a queue are
//! consumed in order even while the group rebalances. A lock not renewed
//! within [`LOCK_MAX_LIVE_MS`] lapses, so a dead client cannot hold a queue.

use std::collections::{BTreeSet, HashMap};

use mq_protocol::body::MessageQueue;

/// How long a lock lives without renewal (RocketMQ's 60 s); clients renew
/// every 20 s.
pub const LOCK_MAX_LIVE_MS: i64 = 60_000;

#[derive(Debug, Clone)]
struct Lock {
    client_id: String,
    renewed_ms: i64,
}

/// Locks by group and queue.
#[derive(Debug, Default)]
pub struct QueueLocks {
    groups: HashMap<String, HashMap<MessageQueue, Lock>>,
}

impl QueueLocks {
    /// Locks (or renews) every queue of `queues` that is free, lapsed or
    /// already `client_id`'s; returns the queues the client now holds.
    pub fn try_lock(
        &mut self,
        group: &str,
        client_id: &str,
        queues: &BTreeSet<MessageQueue>,
        now_ms: i64,
    ) -> BTreeSet<MessageQueue> {
        let locks = self.groups.entry(group.to_owned()).or_default();
        let mut held = BTreeSet::new();
        for mq in queues {
            let free = match locks.get(mq) {
                None => true,
                Some(lock) => {
                    lock.client_id == client_id || now_ms - lock.renewed_ms > LOCK_MAX_LIVE_MS
                }
            };
            if free {
                locks.insert(
                    mq.clone(),
                    Lock {
                        client_id: client_id.to_owned(),
                        renewed_ms: now_ms,
                    },
                );
                held.insert(mq.clone());
            }
        }
        held
    }

    /// Releases the queues of `queues` that `client_id` holds.
    pub fn unlock(&mut self, group: &str, client_id: &str, queues: &BTreeSet<MessageQueue>) {
        if let Some(locks) = self.groups.get_mut(group) {
            for mq in queues {
                if locks.get(mq).is_some_and(|l| l.client_id == client_id) {
                    locks.remove(mq);
                }
            }
        }
    }

    /// Releases every queue a client holds in any group (its connection closed).
    pub fn release_client(&mut self, client_id: &str) {
        for locks in self.groups.values_mut() {
            locks.retain(|_, l| l.client_id != client_id);
        }
    }

    /// Who holds a queue now, if anyone.
    #[cfg(test)]
    pub fn holder(&self, group: &str, mq: &MessageQueue, now_ms: i64) -> Option<&str> {
        self.groups
            .get(group)?
            .get(mq)
            .filter(|l| now_ms - l.renewed_ms <= LOCK_MAX_LIVE_MS)
            .map(|l| l.client_id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(id: i32) -> MessageQueue {
        MessageQueue {
            topic: "t".into(),
            broker_name: "b".into(),
            queue_id: id,
        }
    }

    #[test]
    fn one_client_per_queue_until_unlock_or_lapse() {
        let mut locks = QueueLocks::default();
        let both: BTreeSet<_> = [mq(0), mq(1)].into();
        assert_eq!(
            locks.try_lock("g", "c1", &[mq(0)].into(), 0),
            [mq(0)].into()
        );
        // c2 gets only the free queue.
        assert_eq!(locks.try_lock("g", "c2", &both, 10), [mq(1)].into());
        // Renewal by the holder works; another group is independent.
        assert_eq!(
            locks.try_lock("g", "c1", &[mq(0)].into(), 20),
            [mq(0)].into()
        );
        assert_eq!(locks.try_lock("other", "c3", &both, 20), both);
        assert_eq!(locks.holder("g", &mq(0), 30), Some("c1"));
        // Unlock by a non-holder does nothing; by the holder frees the queue.
        locks.unlock("g", "c2", &[mq(0)].into());
        assert_eq!(locks.holder("g", &mq(0), 30), Some("c1"));
        locks.unlock("g", "c1", &[mq(0)].into());
        assert_eq!(
            locks.try_lock("g", "c2", &[mq(0)].into(), 40),
            [mq(0)].into()
        );
        // A lapsed lock is taken over.
        assert_eq!(
            locks.try_lock("g", "c1", &[mq(1)].into(), 10 + LOCK_MAX_LIVE_MS),
            BTreeSet::new()
        );
        assert_eq!(
            locks.try_lock("g", "c1", &[mq(1)].into(), 11 + LOCK_MAX_LIVE_MS),
            [mq(1)].into()
        );
        locks.release_client("c2");
        assert_eq!(locks.holder("g", &mq(0), 50), None);
    }
}
