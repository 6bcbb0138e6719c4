//! Queue and consumer offsets.

use mq_protocol::body::MessageQueue;

use super::AdminClient;
use crate::error::Result;
use crate::route::readable_queues;

impl AdminClient {
    /// The group's committed offset of `mq`, `None` if it has none.
    pub async fn consumer_offset(&self, group: &str, mq: &MessageQueue) -> Result<Option<i64>> {
        self.instance()?.query_consumer_offset(group, mq).await
    }

    /// Sets the group's offset of `mq` on its broker.
    pub async fn update_consumer_offset(
        &self,
        group: &str,
        mq: &MessageQueue,
        offset: i64,
    ) -> Result<()> {
        self.instance()?
            .update_consumer_offset(group, mq, offset)
            .await
    }

    /// The offset after the last message of `mq`.
    pub async fn max_offset(&self, mq: &MessageQueue) -> Result<i64> {
        self.instance()?.max_offset(mq).await
    }

    /// The offset of the oldest message of `mq` still stored.
    pub async fn min_offset(&self, mq: &MessageQueue) -> Result<i64> {
        self.instance()?.min_offset(mq).await
    }

    /// The readable queues of `topic`, sorted.
    pub async fn topic_queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        let route = self.instance()?.update_route(topic).await?;
        Ok(readable_queues(topic, &route))
    }
}
