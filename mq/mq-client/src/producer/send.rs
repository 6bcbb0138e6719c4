//! One producer's sending machinery: the running flag, preparation, the
//! SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE request, one attempt on one queue
//! and the retried send over the topic's queues.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mq_protocol::body::MessageQueue;
use mq_protocol::header::{SendMessageRequestHeaderV2, SendMessageResponseHeader};
use mq_protocol::topic::AUTO_CREATE_TOPIC_KEY_TOPIC;
use mq_protocol::{request_code, RemotingCommand, ResponseCode};

use super::batch::prepare_batch;
use super::config::{ProducerConfig, SendResult, SendStatus};
use super::prepare::{prepare, Prepared};
use super::publish::PublishTable;
use super::queue::TopicPublishInfo;
use super::retry::send_with_retry;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;
use crate::message::Message;
use crate::time::now_millis;

/// What every clone of a [`super::Producer`] shares.
pub(crate) struct ProducerInner {
    pub config: ProducerConfig,
    pub instance: Arc<ClientInstance>,
    publish: PublishTable,
    running: AtomicBool,
}

impl ProducerInner {
    /// A running producer of `config.group` on `instance`.
    pub(super) fn new(config: ProducerConfig, instance: Arc<ClientInstance>) -> Self {
        ProducerInner {
            config,
            instance,
            publish: PublishTable::default(),
            running: AtomicBool::new(true),
        }
    }

    /// Marks the producer stopped; true if it was running.
    pub(super) fn stop(&self) -> bool {
        self.running.swap(false, Ordering::SeqCst)
    }

    fn check_running(&self) -> Result<()> {
        if self.running.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(ClientError::NotRunning("producer"))
        }
    }

    /// `msg` checked and ready for the wire.
    pub(crate) fn prepare(&self, msg: Message) -> Result<Prepared> {
        self.check_running()?;
        prepare(&self.config, msg)
    }

    /// `msgs` checked and encoded as one batch.
    pub(super) fn prepare_batch(&self, msgs: Vec<Message>) -> Result<Prepared> {
        // An empty batch is refused as such, running or not.
        if !msgs.is_empty() {
            self.check_running()?;
        }
        prepare_batch(&self.config, msgs)
    }

    /// The topic's writable queues (see [`PublishTable::get`]).
    pub(crate) async fn publish_info(&self, topic: &str) -> Result<Arc<TopicPublishInfo>> {
        self.publish
            .get(&self.instance, topic, self.config.default_topic_queue_nums)
            .await
    }

    /// The master address of `queue`'s broker group, refreshing the route
    /// once if it is unknown.
    pub(crate) async fn broker_addr(&self, queue: &MessageQueue) -> Result<String> {
        if let Some(addr) = self.instance.master_addr(&queue.broker_name) {
            return Ok(addr);
        }
        self.instance.update_route(&queue.topic).await.ok();
        self.instance
            .master_addr(&queue.broker_name)
            .ok_or_else(|| ClientError::BrokerNotFound {
                broker_name: queue.broker_name.clone(),
            })
    }

    /// SEND_MESSAGE_V2 (or SEND_BATCH_MESSAGE) of `prepared` to `queue`,
    /// with the short field names (built directly: no long-named header
    /// copied into a short-named one).
    pub(crate) fn request(&self, prepared: &Prepared, queue: &MessageQueue) -> RemotingCommand {
        let header = SendMessageRequestHeaderV2 {
            a: self.config.group.clone(),
            b: prepared.topic.clone(),
            c: AUTO_CREATE_TOPIC_KEY_TOPIC.into(),
            d: self.config.default_topic_queue_nums,
            e: queue.queue_id,
            f: prepared.sys_flag,
            g: now_millis(),
            h: prepared.flag,
            i: Some(prepared.properties.clone()),
            j: prepared.reconsume_times,
            k: Some(false),
            l: prepared.max_reconsume_times,
            m: Some(prepared.batch),
        };
        let code = if prepared.batch {
            request_code::SEND_BATCH_MESSAGE
        } else {
            request_code::SEND_MESSAGE_V2
        };
        RemotingCommand::request(code)
            .with_header(&header)
            .with_body(prepared.body.clone())
    }

    /// Sends to the topic's queues round robin with retries on other brokers.
    pub(crate) async fn send_prepared(&self, prepared: &Prepared) -> Result<SendResult> {
        let info = self.publish_info(&prepared.topic).await?;
        let times = 1 + self.config.retry_times_when_send_failed;
        let result = send_with_retry(&prepared.topic, &info, times, |queue| async move {
            self.send_to(prepared, &queue).await
        })
        .await;
        if result.is_err() {
            // A failed broker may have left the route: look again now.
            self.instance.update_route(&prepared.topic).await.ok();
        }
        result
    }

    /// One attempt on one queue.
    pub(crate) async fn send_to(
        &self,
        prepared: &Prepared,
        queue: &MessageQueue,
    ) -> Result<SendResult> {
        self.check_running()?;
        let addr = self.broker_addr(queue).await?;
        let response = self
            .instance
            .invoke(&addr, self.request(prepared, queue))
            .await?;
        let status = match ResponseCode::from_i32(response.code) {
            Some(ResponseCode::SUCCESS) => SendStatus::SendOk,
            Some(ResponseCode::FLUSH_DISK_TIMEOUT) => SendStatus::FlushDiskTimeout,
            Some(ResponseCode::FLUSH_SLAVE_TIMEOUT) => SendStatus::FlushSlaveTimeout,
            Some(ResponseCode::SLAVE_NOT_AVAILABLE) => SendStatus::SlaveNotAvailable,
            _ => {
                return Err(ClientError::Remoting(mq_remoting::RemotingError::Remote {
                    code: response.code,
                    remark: format!("{} (broker {addr})", response.remark.unwrap_or_default()),
                }))
            }
        };
        let header: SendMessageResponseHeader = response.header()?;
        Ok(SendResult {
            status,
            msg_id: prepared.unique_id.clone(),
            offset_msg_id: header.msg_id,
            queue: MessageQueue {
                topic: queue.topic.clone(),
                broker_name: queue.broker_name.clone(),
                queue_id: header.queue_id,
            },
            queue_offset: header.queue_offset,
            transaction_id: header.transaction_id,
            broker_addr: addr,
        })
    }
}
