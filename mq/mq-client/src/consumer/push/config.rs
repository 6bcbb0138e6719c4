//! The settings of a push consumer.

use std::path::PathBuf;
use std::time::Duration;

use mq_protocol::body::{ConsumeFromWhere, MessageModel};

use crate::time::now_millis;

/// Settings of a push consumer (RocketMQ's `DefaultMQPushConsumer` fields).
#[derive(Debug, Clone)]
pub struct PushConsumerConfig {
    pub group: String,
    pub message_model: MessageModel,
    /// Where a queue with no committed offset starts.
    pub consume_from_where: ConsumeFromWhere,
    /// For `ConsumeFromTimestamp`: Unix ms (default half an hour ago).
    pub consume_timestamp: i64,
    /// Messages per listener call (1).
    pub consume_batch_max_size: usize,
    /// Messages per pull (32).
    pub pull_batch_size: i32,
    /// Listener calls running at once (20).
    pub consume_concurrency: usize,
    /// Deliveries before a message goes to the DLQ (16).
    pub max_reconsume_times: i32,
    /// A queue stops pulling while this many of its messages are in flight (1000).
    pub pull_threshold_for_queue: usize,
    /// How often the group is rebalanced besides on membership changes (20 s).
    pub rebalance_interval: Duration,
    /// How long the broker holds a pull with nothing to return (15 s).
    pub broker_suspend_max: Duration,
    /// How often ordered consumers renew their queue locks (20 s).
    pub lock_renew_interval: Duration,
    /// The pause before an ordered queue retries a message (1 s).
    pub suspend_current_queue_time: Duration,
    /// The pause before a failed pull is tried again (1 s).
    pub pull_retry_delay: Duration,
    /// The pause before messages whose send-back failed are consumed
    /// again locally (5 s).
    pub local_retry_delay: Duration,
    /// The longest `shutdown` waits for running listener calls (10 s).
    pub shutdown_wait: Duration,
    /// Broadcasting offsets file; default
    /// `~/.rocketmq_offsets/<client id>/<group>/offsets.json`.
    pub offset_store_path: Option<PathBuf>,
}

impl PushConsumerConfig {
    /// RocketMQ's defaults for a consumer of `group`.
    pub fn new(group: impl Into<String>) -> Self {
        PushConsumerConfig {
            group: group.into(),
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::ConsumeFromLastOffset,
            consume_timestamp: now_millis() - 30 * 60 * 1000,
            consume_batch_max_size: 1,
            pull_batch_size: 32,
            consume_concurrency: 20,
            max_reconsume_times: 16,
            pull_threshold_for_queue: 1000,
            rebalance_interval: Duration::from_secs(20),
            broker_suspend_max: Duration::from_secs(15),
            lock_renew_interval: Duration::from_secs(20),
            suspend_current_queue_time: Duration::from_secs(1),
            pull_retry_delay: Duration::from_secs(1),
            local_retry_delay: Duration::from_secs(5),
            shutdown_wait: Duration::from_secs(10),
            offset_store_path: None,
        }
    }
}
