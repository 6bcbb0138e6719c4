//! What a producer is configured with and what a send returns.

use mq_protocol::body::MessageQueue;
use serde::{Deserialize, Serialize};

/// Settings of a producer (RocketMQ's `DefaultMQProducer` fields).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub group: String,
    /// Extra attempts, each on another broker when there is one (2).
    pub retry_times_when_send_failed: u32,
    /// Bodies larger than this are zlib-compressed (4 KiB, as Java does).
    pub compress_msg_body_over: usize,
    /// Queues of a topic auto-created on first send (4).
    pub default_topic_queue_nums: i32,
    /// Largest body accepted (4 MiB).
    pub max_message_size: usize,
}

impl ProducerConfig {
    /// RocketMQ's defaults for a producer of `group`.
    pub fn new(group: impl Into<String>) -> Self {
        ProducerConfig {
            group: group.into(),
            retry_times_when_send_failed: 2,
            compress_msg_body_over: 4 * 1024,
            default_topic_queue_nums: 4,
            max_message_size: 4 * 1024 * 1024,
        }
    }
}

/// How the broker stored a message (RocketMQ's `SendStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SendStatus {
    SendOk,
    FlushDiskTimeout,
    FlushSlaveTimeout,
    SlaveNotAvailable,
}

/// The outcome of a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResult {
    pub status: SendStatus,
    /// The client-side unique id (`UNIQ_KEY`); for a batch, every id joined by `,`.
    pub msg_id: String,
    /// Store host and commit log offset as hex (`,`-joined for a batch).
    pub offset_msg_id: String,
    pub queue: MessageQueue,
    pub queue_offset: i64,
    pub transaction_id: Option<String>,
    /// The broker the message went to.
    pub broker_addr: String,
}
