//! What a started push consumer tells its client instance: its part of the
//! heartbeat, and its answers to the brokers' requests about it (running
//! info, offsets of a topic, an offset reset, a message to consume
//! directly).

use std::collections::BTreeMap;
use std::sync::Arc;

use mq_protocol::admin_body::{running_info, ConsumerRunningInfo, ProcessQueueInfo};
use mq_protocol::body::{ConsumeType, ConsumerData, MessageQueue};
use mq_protocol::MessageExt;
use tracing::info;

use super::process_queue::ProcessQueue;
use super::started::Started;
use crate::instance::{basic_running_info, ConsumerRegistration, DirectConsume};
use crate::sync::lock;

impl ConsumerRegistration for Started {
    fn consumer_data(&self) -> ConsumerData {
        ConsumerData {
            group_name: self.config.group.clone(),
            consume_type: ConsumeType::ConsumePassively,
            message_model: self.config.message_model,
            consume_from_where: self.config.consume_from_where,
            subscription_data_set: lock(&self.subscriptions).values().cloned().collect(),
            unit_mode: false,
        }
    }

    fn trigger_rebalance(&self) {
        self.rebalance_now.notify_one();
    }

    fn running_info(&self) -> ConsumerRunningInfo {
        let mut info = basic_running_info(&self.consumer_data());
        for (key, value) in [
            (
                running_info::PROP_CONSUME_ORDERLY,
                self.listener.is_ordered().to_string(),
            ),
            (
                running_info::PROP_THREADPOOL_CORE_SIZE,
                self.config.consume_concurrency.to_string(),
            ),
        ] {
            info.properties.insert(key.to_owned(), value);
        }
        for (mq, pq) in lock(&self.queues).iter() {
            let tracker = pq.tracker();
            info.mq_table.insert(
                mq.clone(),
                ProcessQueueInfo {
                    commit_offset: self.offsets.get(mq).unwrap_or(-1),
                    cached_msg_min_offset: tracker.committable(),
                    cached_msg_max_offset: tracker.next() - 1,
                    cached_msg_count: tracker.in_flight() as i32,
                    locked: pq.is_locked(),
                    droped: pq.is_dropped(),
                    ..ProcessQueueInfo::default()
                },
            );
        }
        // No RT/TPS figures: this consumer does not measure them, and
        // zeros would read as "idle".
        info
    }

    fn topic_offsets(&self, topic: &str) -> BTreeMap<MessageQueue, i64> {
        lock(&self.queues)
            .keys()
            .filter(|mq| mq.topic == topic)
            .filter_map(|mq| self.offsets.get(mq).map(|o| (mq.clone(), o)))
            .collect()
    }

    /// Drops the reset queues this member holds (their in-flight messages
    /// no longer commit), records the new offsets, and rebalances: the
    /// queues come back starting from the stored, reset offsets.
    fn reset_offsets(&self, topic: &str, offsets: &BTreeMap<MessageQueue, i64>) {
        let dropped: Vec<Arc<ProcessQueue>> = {
            let mut queues = lock(&self.queues);
            offsets.keys().filter_map(|mq| queues.remove(mq)).collect()
        };
        for pq in &dropped {
            pq.release();
        }
        for (mq, offset) in offsets {
            self.offsets.set(mq, *offset);
        }
        info!(
            group = self.config.group,
            topic,
            dropped = dropped.len(),
            "offsets reset; rebalancing"
        );
        self.rebalance_now.notify_one();
    }

    fn consume_directly(&self, msg: MessageExt) -> Option<DirectConsume> {
        Some(Box::pin(super::direct::consume_directly(
            self.listener.clone(),
            self.config.group.clone(),
            msg,
        )))
    }
}
