//! Rebalance (RocketMQ's `RebalanceImpl`): which queues of each subscribed
//! topic this member owns ("allocate averagely" over the group's members
//! when clustering, every queue when broadcasting); a queue gained starts a
//! pull task (and an ordered consume task), a queue lost is released with
//! its offset committed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use mq_protocol::body::MessageQueue;
use tracing::{debug, warn};

use super::ordered::ordered_loop;
use super::process_queue::ProcessQueue;
use super::pull_loop::pull_loop;
use super::started::{stopped, Started};
use crate::consumer::allocate::allocate_averagely;
use crate::error::Result;
use crate::route::readable_queues;
use crate::sync::lock;

/// How soon a rebalance that found a subscribed topic without a route (not
/// created yet) tries again, instead of waiting a whole rebalance interval:
/// the first message of a new topic then reaches its consumers in about a
/// second.
const MISSING_ROUTE_RETRY: Duration = Duration::from_secs(1);

/// Rebalances every `rebalance_interval`, and at once when asked.
pub(super) async fn rebalance_loop(started: Arc<Started>) {
    let stop = started.stop.subscribe();
    loop {
        let complete = started.rebalance().await;
        let wait = if complete {
            started.config.rebalance_interval
        } else {
            started.config.rebalance_interval.min(MISSING_ROUTE_RETRY)
        };
        tokio::select! {
            () = stopped(stop.clone()) => break,
            () = started.rebalance_now.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

impl Started {
    /// Reassigns queues; false when some subscribed topic could not be
    /// balanced yet (no route or no member list).
    pub(super) async fn rebalance(self: &Arc<Self>) -> bool {
        if self.is_stopped() {
            return true;
        }
        let mut complete = true;
        let _guard = self.rebalance_lock.lock().await;
        let instance = self.instance.clone();
        for topic in self.topics() {
            let route = match instance.route(&topic).await {
                Ok(route) => route,
                Err(error) => {
                    instance.watch_topic(&topic);
                    debug!(topic, %error, "rebalance: no route");
                    complete = false;
                    continue;
                }
            };
            let all = readable_queues(&topic, &route);
            let mine: BTreeSet<MessageQueue> = if self.clustering() {
                let mut ids = match instance.consumer_ids(&topic, &self.config.group).await {
                    Ok(ids) if !ids.is_empty() => ids,
                    Ok(_) => {
                        complete = false;
                        continue;
                    }
                    Err(error) => {
                        debug!(topic, %error, "rebalance: no consumer list");
                        complete = false;
                        continue;
                    }
                };
                ids.sort();
                allocate_averagely(instance.client_id(), &all, &ids)
                    .into_iter()
                    .collect()
            } else {
                all.into_iter().collect()
            };
            self.update_queues(&topic, mine).await;
        }
        complete
    }

    /// Releases the queues of `topic` not in `mine` and takes up the new ones.
    async fn update_queues(self: &Arc<Self>, topic: &str, mine: BTreeSet<MessageQueue>) {
        let removed: Vec<Arc<ProcessQueue>> = {
            let mut queues = lock(&self.queues);
            let gone: Vec<MessageQueue> = queues
                .keys()
                .filter(|mq| mq.topic == topic && !mine.contains(*mq))
                .cloned()
                .collect();
            gone.iter().filter_map(|mq| queues.remove(mq)).collect()
        };
        for pq in removed {
            self.drop_queue(&pq).await;
        }
        let added: Vec<MessageQueue> = {
            let queues = lock(&self.queues);
            mine.into_iter()
                .filter(|mq| !queues.contains_key(mq))
                .collect()
        };
        for mq in added {
            if let Err(error) = self.add_queue(mq.clone()).await {
                warn!(?mq, %error, "cannot start consuming queue");
            }
        }
    }

    /// Stops a queue this member no longer owns and commits its offset.
    async fn drop_queue(&self, pq: &Arc<ProcessQueue>) {
        pq.release();
        let offset = pq.tracker().committable();
        let offsets = &self.offsets;
        offsets.update(&pq.mq, offset);
        if let Err(error) = offsets.persist(std::slice::from_ref(&pq.mq)).await {
            warn!(mq = ?pq.mq, %error, "offset commit of a released queue failed");
        }
        offsets.remove(&pq.mq);
        if self.needs_locks() {
            self.unlock_all(std::slice::from_ref(&pq.mq)).await;
        }
        debug!(mq = ?pq.mq, offset, "queue released");
    }

    /// Takes up `mq`: locks it first when ordered (a queue another member
    /// holds is left alone), then pulls from its initial offset.
    async fn add_queue(self: &Arc<Self>, mq: MessageQueue) -> Result<()> {
        let locked = if self.needs_locks() {
            let held = self
                .instance
                .lock_batch(
                    &mq.broker_name,
                    &mq.topic,
                    &self.config.group,
                    [mq.clone()].into(),
                )
                .await?;
            if !held.contains(&mq) {
                debug!(?mq, "queue locked by another member");
                return Ok(());
            }
            true
        } else {
            false
        };
        let offset = self.initial_offset(&mq).await?;
        self.offsets.set(&mq, offset);
        let pq = Arc::new(ProcessQueue::new(mq.clone(), offset, locked));
        let mut tasks = vec![tokio::spawn(pull_loop(self.clone(), pq.clone()))];
        if self.listener.is_ordered() {
            tasks.push(tokio::spawn(ordered_loop(self.clone(), pq.clone())));
        }
        lock(&pq.tasks).extend(tasks);
        lock(&self.queues).insert(mq.clone(), pq);
        debug!(?mq, offset, "queue assigned");
        Ok(())
    }
}
