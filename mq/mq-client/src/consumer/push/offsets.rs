//! The push consumer's offsets: where its store lives, where a newly owned
//! queue starts, recording each queue's committable offset, and the task
//! that writes the offsets out.

use std::path::PathBuf;
use std::sync::Arc;

use mq_protocol::body::{ConsumeFromWhere, MessageModel, MessageQueue};
use mq_protocol::topic::RETRY_GROUP_TOPIC_PREFIX;
use tracing::debug;

use super::config::PushConsumerConfig;
use super::process_queue::ProcessQueue;
use super::started::{pause, Started};
use crate::consumer::offset_store::OffsetStore;
use crate::error::Result;
use crate::instance::ClientInstance;
use crate::sync::lock;

/// The group's offset store: the brokers when clustering, a file of this
/// client's when broadcasting.
pub(super) fn open_store(
    config: &PushConsumerConfig,
    instance: &Arc<ClientInstance>,
) -> Result<OffsetStore> {
    match config.message_model {
        MessageModel::Clustering => Ok(OffsetStore::remote(instance.clone(), &config.group)),
        MessageModel::Broadcasting => {
            let path = config.offset_store_path.clone().unwrap_or_else(|| {
                let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
                home.join(".rocketmq_offsets")
                    .join(instance.client_id())
                    .join(&config.group)
                    .join("offsets.json")
            });
            OffsetStore::local(path)
        }
    }
}

impl Started {
    /// Records the queue's committable offset unless it was released.
    pub(super) fn refresh_offset(&self, pq: &ProcessQueue) {
        if !pq.is_dropped() {
            self.offsets.update(&pq.mq, pq.tracker().committable());
        }
    }

    /// Where a newly owned queue starts (RocketMQ's `computePullFromWhere`).
    pub(super) async fn initial_offset(&self, mq: &MessageQueue) -> Result<i64> {
        if let Some(offset) = self.offsets.read_stored(mq).await? {
            return Ok(offset);
        }
        let retry = mq.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX);
        match self.config.consume_from_where {
            ConsumeFromWhere::ConsumeFromFirstOffset => Ok(0),
            ConsumeFromWhere::ConsumeFromTimestamp if !retry => {
                self.instance
                    .search_offset(mq, self.config.consume_timestamp)
                    .await
            }
            _ if retry => Ok(0),
            _ => self.instance.max_offset(mq).await,
        }
    }
}

/// Writes the owned queues' offsets every `persist_interval`.
pub(super) async fn persist_loop(started: Arc<Started>) {
    let stop = started.stop.subscribe();
    while !pause(&stop, started.persist_interval).await {
        let mqs: Vec<MessageQueue> = lock(&started.queues).keys().cloned().collect();
        if let Err(error) = started.offsets.persist(&mqs).await {
            debug!(%error, "offset persist failed");
        }
    }
}
