//! What a topic's route says about its queues, for every part that reads
//! them: consumers rebalance over the readable queues, the pull consumer and
//! the admin client list them. (The producer's writable queues, with their
//! round-robin cursor, are `producer::queue`'s.)

use mq_protocol::body::MessageQueue;
use mq_protocol::route::{perm, TopicRouteData};

/// The readable queues of a topic, sorted.
pub(crate) fn readable_queues(topic: &str, route: &TopicRouteData) -> Vec<MessageQueue> {
    let mut queues: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .filter(|q| perm::is_readable(q.perm))
        .flat_map(|q| {
            (0..q.read_queue_nums.max(0)).map(|queue_id| MessageQueue {
                topic: topic.to_owned(),
                broker_name: q.broker_name.clone(),
                queue_id,
            })
        })
        .collect();
    queues.sort();
    queues
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_protocol::route::QueueData;

    #[test]
    fn readable_queues_sorted_and_filtered() {
        let route = TopicRouteData {
            queue_datas: vec![
                QueueData {
                    broker_name: "b".into(),
                    read_queue_nums: 2,
                    write_queue_nums: 2,
                    perm: 6,
                    topic_sys_flag: 0,
                },
                QueueData {
                    broker_name: "a".into(),
                    read_queue_nums: 1,
                    write_queue_nums: 1,
                    perm: 6,
                    topic_sys_flag: 0,
                },
                QueueData {
                    broker_name: "w".into(),
                    read_queue_nums: 3,
                    write_queue_nums: 3,
                    perm: 2,
                    topic_sys_flag: 0,
                },
            ],
            ..TopicRouteData::default()
        };
        let queues: Vec<(String, i32)> = readable_queues("T", &route)
            .into_iter()
            .map(|q| (q.broker_name, q.queue_id))
            .collect();
        assert_eq!(
            queues,
            vec![("a".into(), 0), ("b".into(), 0), ("b".into(), 1)]
        );
    }
}
