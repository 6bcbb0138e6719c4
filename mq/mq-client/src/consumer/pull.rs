//! The pull consumer: the caller picks queues and offsets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mq_protocol::body::{ConsumeFromWhere, ConsumeType, ConsumerData, MessageModel, MessageQueue};
use mq_protocol::header::{pull_sys_flag, PullMessageRequestHeader};

use super::api::PullResult;
use super::MessageSelector;
use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::instance::{ClientInstance, ConsumerRegistration};
use crate::route::readable_queues;
use crate::time::now_millis;

/// A consumer that pulls explicitly (RocketMQ's `DefaultMQPullConsumer`).
/// Offsets are the caller's; [`PullConsumer::commit_offset`] stores one on
/// the broker for the group. Cheap to clone.
#[derive(Clone)]
pub struct PullConsumer {
    inner: Arc<PullInner>,
}

struct PullInner {
    group: String,
    instance: Arc<ClientInstance>,
    running: AtomicBool,
}

struct PullRegistration {
    group: String,
}

impl ConsumerRegistration for PullRegistration {
    fn consumer_data(&self) -> ConsumerData {
        ConsumerData {
            group_name: self.group.clone(),
            consume_type: ConsumeType::ConsumeActively,
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::ConsumeFromLastOffset,
            subscription_data_set: Vec::new(),
            unit_mode: false,
        }
    }

    fn trigger_rebalance(&self) {}
}

impl PullConsumer {
    pub async fn start(group: impl Into<String>, client: ClientConfig) -> Result<PullConsumer> {
        let group = group.into();
        mq_protocol::topic::validate_group(&group).map_err(ClientError::InvalidArgument)?;
        let instance = ClientInstance::acquire(&client)?;
        if let Err(error) = instance.register_consumer(
            &group,
            Arc::new(PullRegistration {
                group: group.clone(),
            }),
        ) {
            instance.release();
            return Err(error);
        }
        instance.send_heartbeat_to_all().await;
        Ok(PullConsumer {
            inner: Arc::new(PullInner {
                group,
                instance,
                running: AtomicBool::new(true),
            }),
        })
    }

    pub fn group(&self) -> &str {
        &self.inner.group
    }

    fn check(&self) -> Result<&Arc<ClientInstance>> {
        if self.inner.running.load(Ordering::SeqCst) {
            Ok(&self.inner.instance)
        } else {
            Err(ClientError::NotRunning("pull consumer"))
        }
    }

    /// The readable queues of `topic`, sorted, from a fresh route.
    pub async fn fetch_queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        let route = self.check()?.update_route(topic).await?;
        Ok(readable_queues(topic, &route))
    }

    /// Pulls up to `max` messages from `offset` matching `selector` (a tag
    /// expression as a `&str`, or [`MessageSelector::by_sql`]); answers at
    /// once when there are none. The next offset moves past the messages
    /// that did not match.
    pub async fn pull(
        &self,
        mq: &MessageQueue,
        selector: impl Into<MessageSelector>,
        offset: i64,
        max: i32,
    ) -> Result<PullResult> {
        self.pull_inner(mq, &selector.into(), offset, max, None)
            .await
    }

    /// Like [`PullConsumer::pull`], but the broker holds the request up to
    /// `wait` for a message to arrive.
    pub async fn pull_blocking(
        &self,
        mq: &MessageQueue,
        selector: impl Into<MessageSelector>,
        offset: i64,
        max: i32,
        wait: Duration,
    ) -> Result<PullResult> {
        self.pull_inner(mq, &selector.into(), offset, max, Some(wait))
            .await
    }

    async fn pull_inner(
        &self,
        mq: &MessageQueue,
        selector: &MessageSelector,
        offset: i64,
        max: i32,
        wait: Option<Duration>,
    ) -> Result<PullResult> {
        let instance = self.check()?;
        let sub = selector.subscription(&mq.topic, now_millis())?;
        let mut sys_flag = pull_sys_flag::SUBSCRIPTION;
        if wait.is_some() {
            sys_flag |= pull_sys_flag::SUSPEND;
        }
        let header = PullMessageRequestHeader {
            consumer_group: self.inner.group.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            queue_offset: offset,
            max_msg_nums: max,
            sys_flag,
            commit_offset: 0,
            suspend_timeout_millis: wait.map_or(0, |w| w.as_millis() as i64),
            subscription: Some(sub.sub_string.clone()),
            sub_version: sub.sub_version,
            expression_type: Some(sub.expression_type.clone()),
            max_msg_bytes: None,
        };
        let timeout = instance.timeout() + wait.unwrap_or_default();
        let mut result = instance.pull(mq, header, timeout).await?;
        result.messages.retain(|m| sub.matches_tag(m.tags()));
        Ok(result)
    }

    /// The group's committed offset of `mq`, `None` if it has none.
    pub async fn committed_offset(&self, mq: &MessageQueue) -> Result<Option<i64>> {
        self.check()?
            .query_consumer_offset(&self.inner.group, mq)
            .await
    }

    /// Stores `offset` as the group's offset of `mq` on the broker.
    pub async fn commit_offset(&self, mq: &MessageQueue, offset: i64) -> Result<()> {
        self.check()?
            .update_consumer_offset(&self.inner.group, mq, offset)
            .await
    }

    /// The first offset of `mq` whose message was stored at or after
    /// `timestamp` (Unix ms).
    pub async fn search_offset(&self, mq: &MessageQueue, timestamp: i64) -> Result<i64> {
        self.check()?.search_offset(mq, timestamp).await
    }

    pub async fn max_offset(&self, mq: &MessageQueue) -> Result<i64> {
        self.check()?.max_offset(mq).await
    }

    pub async fn min_offset(&self, mq: &MessageQueue) -> Result<i64> {
        self.check()?.min_offset(mq).await
    }

    pub async fn shutdown(&self) {
        if self.inner.running.swap(false, Ordering::SeqCst) {
            self.inner
                .instance
                .unregister_consumer(&self.inner.group)
                .await;
            self.inner.instance.release();
        }
    }
}
