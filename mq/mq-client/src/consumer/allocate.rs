//! Queue allocation among the members of a clustering group.

use mq_protocol::body::MessageQueue;

/// RocketMQ's `AllocateMessageQueueAveragely`: with `queues` and
/// `consumers` both sorted, consumer `i` takes a contiguous run of queues;
/// the first `queues % consumers` consumers take one more than the others,
/// and when there are more consumers than queues the extra ones get none.
/// A consumer not in the list gets nothing.
pub fn allocate_averagely(
    current: &str,
    queues: &[MessageQueue],
    consumers: &[String],
) -> Vec<MessageQueue> {
    let Some(index) = consumers.iter().position(|c| c == current) else {
        return Vec::new();
    };
    let (q, c) = (queues.len(), consumers.len());
    if q == 0 {
        return Vec::new();
    }
    let rem = q % c;
    let size = if q <= c {
        1
    } else if rem > 0 && index < rem {
        q / c + 1
    } else {
        q / c
    };
    let start = if rem > 0 && index < rem {
        index * size
    } else {
        index * size + rem
    };
    let range = size.min(q.saturating_sub(start));
    (0..range)
        .map(|i| queues[(start + i) % q].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(n: i32) -> Vec<MessageQueue> {
        (0..n)
            .map(|i| MessageQueue {
                topic: "T".into(),
                broker_name: if i < n / 2 { "a" } else { "b" }.into(),
                queue_id: i,
            })
            .collect()
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}@1")).collect()
    }

    fn assignment(q: i32, c: usize) -> Vec<Vec<i32>> {
        let (queues, consumers) = (queues(q), ids(c));
        consumers
            .iter()
            .map(|id| {
                allocate_averagely(id, &queues, &consumers)
                    .iter()
                    .map(|q| q.queue_id)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn matches_rocketmqs_allocation() {
        // Values computed by AllocateMessageQueueAveragely's formula.
        assert_eq!(assignment(8, 2), vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
        assert_eq!(
            assignment(8, 3),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]
        );
        assert_eq!(
            assignment(10, 4),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7], vec![8, 9]]
        );
        assert_eq!(assignment(4, 4), vec![vec![0], vec![1], vec![2], vec![3]]);
        assert_eq!(
            assignment(3, 5),
            vec![vec![0], vec![1], vec![2], vec![], vec![]]
        );
        assert_eq!(assignment(5, 1), vec![vec![0, 1, 2, 3, 4]]);
        assert_eq!(assignment(0, 2), vec![Vec::<i32>::new(), vec![]]);
    }

    #[test]
    fn every_queue_goes_to_exactly_one_member() {
        for q in 0..20 {
            for c in 1..8 {
                let mut all: Vec<i32> = assignment(q, c).into_iter().flatten().collect();
                all.sort_unstable();
                assert_eq!(all, (0..q).collect::<Vec<_>>(), "{q} queues, {c} consumers");
            }
        }
    }

    #[test]
    fn unknown_consumer_gets_nothing() {
        assert!(allocate_averagely("x@1", &queues(4), &ids(2)).is_empty());
    }
}
