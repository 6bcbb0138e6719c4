//! The producer (RocketMQ's `DefaultMQProducer`): [`Producer`] and its
//! parts, each with one job:
//!
//! - `config`: [`ProducerConfig`], [`SendResult`], [`SendStatus`].
//! - `queue`: a topic's writable queues, round-robin choice that steps
//!   around a failed broker, [`select_by_hash`] for ordered sends.
//! - `retry`: which failures are retried on another broker, and how often.
//! - `prepare` and `batch`: a message (or a batch) checked and encoded for
//!   SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE.
//! - `publish`: the topic → queues table, from routes or `TBW102`.
//! - `send`: the request, one attempt, the retried send.

mod batch;
mod config;
mod prepare;
mod publish;
mod queue;
mod retry;
mod send;

use std::sync::Arc;

use mq_protocol::body::{java_string_hash, MessageQueue};

pub use config::{ProducerConfig, SendResult, SendStatus};
pub use queue::select_by_hash;
pub(crate) use send::ProducerInner;

use crate::config::ClientConfig;
use crate::end_transaction::TransactionChecker;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;
use crate::message::Message;

/// Sends messages to a topic's queues (RocketMQ's `DefaultMQProducer`).
/// Cheap to clone; clones share the producer. Sends may run concurrently.
#[derive(Clone)]
pub struct Producer {
    pub(crate) inner: Arc<ProducerInner>,
}

impl Producer {
    /// Starts a producer of `config.group`.
    pub async fn start(config: ProducerConfig, client: ClientConfig) -> Result<Producer> {
        Self::start_with_checker(config, client, None).await
    }

    /// Starts a producer whose group's check-backs go to `checker`.
    pub(crate) async fn start_with_checker(
        config: ProducerConfig,
        client: ClientConfig,
        checker: Option<Arc<dyn TransactionChecker>>,
    ) -> Result<Producer> {
        mq_protocol::topic::validate_group(&config.group).map_err(ClientError::InvalidArgument)?;
        let instance = ClientInstance::acquire(&client)?;
        if let Err(error) = instance.register_producer(&config.group, checker) {
            instance.release();
            return Err(error);
        }
        instance.send_heartbeat_to_all().await;
        Ok(Producer {
            inner: Arc::new(ProducerInner::new(config, instance)),
        })
    }

    pub fn group(&self) -> &str {
        &self.inner.config.group
    }

    /// This producer's client id.
    pub fn client_id(&self) -> &str {
        self.inner.instance.client_id()
    }

    /// Sends `msg` and waits for the broker; retries on another broker.
    pub async fn send(&self, msg: Message) -> Result<SendResult> {
        let prepared = self.inner.prepare(msg)?;
        self.inner.send_prepared(&prepared).await
    }

    /// Starts a send in a task of its own and returns its handle.
    pub fn send_async(&self, msg: Message) -> tokio::task::JoinHandle<Result<SendResult>> {
        let this = self.clone();
        tokio::spawn(async move { this.send(msg).await })
    }

    /// Sends `msg` without waiting for the broker's answer (one attempt).
    pub async fn send_oneway(&self, msg: Message) -> Result<()> {
        let prepared = self.inner.prepare(msg)?;
        let info = self.inner.publish_info(&prepared.topic).await?;
        let queue = info
            .select_queue(None)
            .cloned()
            .ok_or_else(|| ClientError::NoRoute {
                topic: prepared.topic.clone(),
            })?;
        let addr = self.inner.broker_addr(&queue).await?;
        let request = self.inner.request(&prepared, &queue);
        self.inner.instance.invoke_oneway(&addr, request).await
    }

    /// Sends `msg` to exactly `queue` (no retry elsewhere).
    pub async fn send_to_queue(&self, msg: Message, queue: &MessageQueue) -> Result<SendResult> {
        let mut prepared = self.inner.prepare(msg)?;
        if queue.topic != prepared.topic {
            return Err(ClientError::InvalidArgument(format!(
                "queue of topic {} for a message of topic {}",
                queue.topic, prepared.topic
            )));
        }
        prepared.topic.clone_from(&queue.topic);
        self.inner.send_to(&prepared, queue).await
    }

    /// Sends `msg` to the queue `selector` picks among the topic's writable
    /// queues (ordered messages: the same key always picks the same queue).
    pub async fn send_with_selector<S>(&self, msg: Message, selector: S) -> Result<SendResult>
    where
        S: FnOnce(&[MessageQueue], &Message) -> usize,
    {
        let info = self.inner.publish_info(&msg.topic).await?;
        if info.queues.is_empty() {
            return Err(ClientError::NoRoute { topic: msg.topic });
        }
        let index = selector(&info.queues, &msg) % info.queues.len();
        let queue = info.queues[index].clone();
        let prepared = self.inner.prepare(msg)?;
        self.inner.send_to(&prepared, &queue).await
    }

    /// Sends `msg` to the queue chosen by the hash of `key`, as RocketMQ's
    /// `SelectMessageQueueByHash` does with a string argument.
    pub async fn send_ordered(&self, msg: Message, key: &str) -> Result<SendResult> {
        let hash = java_string_hash(key);
        self.send_with_selector(msg, |queues, _| select_by_hash(hash, queues.len()))
            .await
    }

    /// Sends messages of one topic in one SEND_BATCH_MESSAGE request.
    pub async fn send_batch(&self, msgs: Vec<Message>) -> Result<SendResult> {
        let prepared = self.inner.prepare_batch(msgs)?;
        self.inner.send_prepared(&prepared).await
    }

    /// Unregisters the group from every broker and releases the client
    /// instance. Later sends fail.
    pub async fn shutdown(&self) {
        if self.inner.stop() {
            self.inner
                .instance
                .unregister_producer(&self.inner.config.group)
                .await;
            self.inner.instance.release();
        }
    }
}
