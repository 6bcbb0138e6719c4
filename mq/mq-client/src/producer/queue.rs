//! Queue choice: a topic's writable queues with a round-robin cursor that
//! steps around the broker of a failed attempt, and the hash selector of
//! ordered sends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mq_protocol::body::MessageQueue;
use mq_protocol::route::{perm, TopicRouteData, MASTER_ID};

use crate::time::now_millis;

/// The writable queues of a topic, with a round-robin cursor (RocketMQ's
/// `TopicPublishInfo`).
#[derive(Debug)]
pub(crate) struct TopicPublishInfo {
    pub queues: Vec<MessageQueue>,
    cursor: AtomicUsize,
    /// The route it was built from; rebuilt when the cached route changes.
    pub(super) route: Option<Arc<TopicRouteData>>,
}

impl TopicPublishInfo {
    /// The writable queues of every broker group with a master, ordered by
    /// broker name and queue id. `limit` caps each group's queue count
    /// (used when borrowing `TBW102`'s route).
    pub(crate) fn from_route(topic: &str, route: &TopicRouteData, limit: Option<i32>) -> Self {
        let mut datas: Vec<_> = route.queue_datas.iter().collect();
        datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        let mut queues = Vec::new();
        for data in datas {
            if !perm::is_writeable(data.perm) {
                continue;
            }
            let has_master = route.broker_datas.iter().any(|b| {
                b.broker_name == data.broker_name && b.broker_addrs.contains_key(&MASTER_ID)
            });
            if !has_master {
                continue;
            }
            let count = limit.map_or(data.write_queue_nums, |l| l.min(data.write_queue_nums));
            for queue_id in 0..count.max(0) {
                queues.push(MessageQueue {
                    topic: topic.to_owned(),
                    broker_name: data.broker_name.clone(),
                    queue_id,
                });
            }
        }
        TopicPublishInfo::new(queues)
    }

    /// `queues` in this order, the cursor at a random place.
    pub(crate) fn new(queues: Vec<MessageQueue>) -> Self {
        TopicPublishInfo {
            queues,
            cursor: AtomicUsize::new(rand_seed()),
            route: None,
        }
    }

    /// The next queue round robin, avoiding `last_broker` (the broker of a
    /// failed attempt) while another broker has a queue.
    pub(crate) fn select_queue(&self, last_broker: Option<&str>) -> Option<&MessageQueue> {
        if self.queues.is_empty() {
            return None;
        }
        let n = self.queues.len();
        if let Some(last) = last_broker {
            for _ in 0..n {
                let index = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
                let queue = &self.queues[index];
                if queue.broker_name != last {
                    return Some(queue);
                }
            }
        }
        let index = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
        Some(&self.queues[index])
    }
}

fn rand_seed() -> usize {
    (now_millis() as usize) ^ (std::process::id() as usize)
}

/// `hash mod n`, made non-negative the way RocketMQ's hash selector does.
pub fn select_by_hash(hash: i32, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let n = n as i32;
    (hash % n).unsigned_abs() as usize
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use mq_protocol::body::java_string_hash;
    use mq_protocol::route::{BrokerData, QueueData};

    fn route(brokers: &[(&str, i32, i32)]) -> TopicRouteData {
        TopicRouteData {
            queue_datas: brokers
                .iter()
                .map(|(name, queues, perm)| QueueData {
                    broker_name: (*name).into(),
                    read_queue_nums: *queues,
                    write_queue_nums: *queues,
                    perm: *perm,
                    topic_sys_flag: 0,
                })
                .collect(),
            broker_datas: brokers
                .iter()
                .map(|(name, _, _)| BrokerData {
                    cluster: "c".into(),
                    broker_name: (*name).into(),
                    broker_addrs: [(0, format!("{name}:10911"))].into(),
                })
                .collect(),
            ..TopicRouteData::default()
        }
    }

    #[test]
    fn publish_info_takes_writable_queues_of_brokers_with_a_master() {
        let mut r = route(&[("b", 2, 6), ("a", 3, 6), ("ro", 4, 4)]);
        r.broker_datas.push(BrokerData {
            cluster: "c".into(),
            broker_name: "slave-only".into(),
            broker_addrs: [(1, "s:1".to_owned())].into(),
        });
        r.queue_datas.push(QueueData {
            broker_name: "slave-only".into(),
            read_queue_nums: 4,
            write_queue_nums: 4,
            perm: 6,
            topic_sys_flag: 0,
        });
        let info = TopicPublishInfo::from_route("T", &r, None);
        let names: Vec<(String, i32)> = info
            .queues
            .iter()
            .map(|q| (q.broker_name.clone(), q.queue_id))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a".into(), 0),
                ("a".into(), 1),
                ("a".into(), 2),
                ("b".into(), 0),
                ("b".into(), 1)
            ]
        );
        let limited = TopicPublishInfo::from_route("T", &r, Some(1));
        assert_eq!(limited.queues.len(), 2);
    }

    #[test]
    fn round_robin_visits_every_queue_evenly() {
        let info = TopicPublishInfo::from_route("T", &route(&[("a", 2, 6), ("b", 2, 6)]), None);
        let mut counts: HashMap<MessageQueue, usize> = HashMap::new();
        for _ in 0..400 {
            *counts
                .entry(info.select_queue(None).unwrap().clone())
                .or_default() += 1;
        }
        assert_eq!(counts.len(), 4);
        assert!(counts.values().all(|&c| c == 100), "{counts:?}");
    }

    #[test]
    fn selection_avoids_the_failed_broker() {
        let info = TopicPublishInfo::from_route("T", &route(&[("a", 2, 6), ("b", 2, 6)]), None);
        for _ in 0..20 {
            assert_eq!(info.select_queue(Some("a")).unwrap().broker_name, "b");
        }
        // With a single broker the failed one is still used.
        let single = TopicPublishInfo::from_route("T", &route(&[("a", 2, 6)]), None);
        assert_eq!(single.select_queue(Some("a")).unwrap().broker_name, "a");
    }

    #[test]
    fn hash_selector_matches_javas() {
        // Java: Math.abs(hash % n), with Java's remainder sign rules.
        assert_eq!(select_by_hash(5, 4), 1);
        // "TagA".hashCode() = 2598919; 2598919 % 7 = 1.
        assert_eq!(select_by_hash(java_string_hash("TagA"), 7), 1);
        assert_eq!(select_by_hash(-7, 4), 3);
        assert_eq!(select_by_hash(i32::MIN, 3), 2);
    }
}
