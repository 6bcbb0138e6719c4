//! Queue locks of ordered clustering consumers (LOCK_BATCH_MQ): renewed
//! every `lock_renew_interval` so that one member at a time consumes a
//! queue, released when a queue is given up.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mq_protocol::body::MessageQueue;
use tracing::warn;

use super::started::{pause, Started};

/// Queues grouped by broker group and topic, as one lock request carries them.
type ByBroker = BTreeMap<(String, String), BTreeSet<MessageQueue>>;

fn by_broker<'a>(mqs: impl IntoIterator<Item = &'a MessageQueue>) -> ByBroker {
    let mut by_broker = ByBroker::new();
    for mq in mqs {
        by_broker
            .entry((mq.broker_name.clone(), mq.topic.clone()))
            .or_default()
            .insert(mq.clone());
    }
    by_broker
}

impl Started {
    /// Locks every owned queue again; a queue whose lock was lost stops
    /// being consumed until it is regained.
    pub(super) async fn renew_locks(&self) {
        let queues = self.process_queues();
        for ((broker, topic), mqs) in by_broker(queues.iter().map(|pq| &pq.mq)) {
            match self
                .instance
                .lock_batch(&broker, &topic, &self.config.group, mqs.clone())
                .await
            {
                Ok(held) => {
                    for pq in &queues {
                        if mqs.contains(&pq.mq) {
                            let now = held.contains(&pq.mq);
                            if !now {
                                warn!(mq = ?pq.mq, "queue lock lost");
                            }
                            pq.locked.store(now, Ordering::SeqCst);
                            pq.wake.notify_waiters();
                        }
                    }
                }
                Err(error) => warn!(broker, %error, "lock renewal failed"),
            }
        }
    }

    /// Releases the locks of `mqs`.
    pub(super) async fn unlock_all(&self, mqs: &[MessageQueue]) {
        for ((broker, topic), set) in by_broker(mqs) {
            if let Err(error) = self
                .instance
                .unlock_batch(&broker, &topic, &self.config.group, set)
                .await
            {
                warn!(broker, %error, "unlock failed");
            }
        }
    }
}

/// Renews the locks every `lock_renew_interval`.
pub(super) async fn lock_loop(started: Arc<Started>) {
    let stop = started.stop.subscribe();
    while !pause(&stop, started.config.lock_renew_interval).await {
        started.renew_locks().await;
    }
}
