//! The producer: queue choice, retries on another broker, SEND_MESSAGE_V2
//! and SEND_BATCH_MESSAGE, auto-creation through `TBW102`.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use mq_protocol::body::{java_string_hash, MessageQueue};
use mq_protocol::header::{
    SendMessageRequestHeader, SendMessageRequestHeaderV2, SendMessageResponseHeader,
};
use mq_protocol::message::{properties_to_string, property, sys_flag, BatchEntry};
use mq_protocol::route::{perm, TopicRouteData, MASTER_ID};
use mq_protocol::topic::{validate_topic, AUTO_CREATE_TOPIC_KEY_TOPIC, RETRY_GROUP_TOPIC_PREFIX};
use mq_protocol::{request_code, RemotingCommand, ResponseCode};
use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::config::ClientConfig;
use crate::id::{create_unique_id, now_millis};
use crate::instance::{is_network_error, ClientInstance};
use crate::message::Message;
use crate::{ClientError, Result};

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

/// The writable queues of a topic, with a round-robin cursor (RocketMQ's
/// `TopicPublishInfo`).
#[derive(Debug)]
pub(crate) struct TopicPublishInfo {
    pub queues: Vec<MessageQueue>,
    cursor: AtomicUsize,
    /// The route it was built from; rebuilt when the cached route changes.
    route: Option<Arc<TopicRouteData>>,
}

impl TopicPublishInfo {
    /// The writable queues of every broker group with a master, ordered by
    /// broker name and queue id. `limit` caps each group's queue count
    /// (used when borrowing `TBW102`'s route).
    pub(crate) fn from_route(topic: &str, route: &TopicRouteData, limit: Option<i32>) -> Self {
        let mut datas: Vec<_> = route.queue_datas.iter().collect();
        datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        let mut queues = Vec::new();
        for data in datas {
            if !perm::is_writeable(data.perm) {
                continue;
            }
            let has_master = route.broker_datas.iter().any(|b| {
                b.broker_name == data.broker_name && b.broker_addrs.contains_key(&MASTER_ID)
            });
            if !has_master {
                continue;
            }
            let count = limit.map_or(data.write_queue_nums, |l| l.min(data.write_queue_nums));
            for queue_id in 0..count.max(0) {
                queues.push(MessageQueue {
                    topic: topic.to_owned(),
                    broker_name: data.broker_name.clone(),
                    queue_id,
                });
            }
        }
        TopicPublishInfo::new(queues)
    }

    pub(crate) fn new(queues: Vec<MessageQueue>) -> Self {
        TopicPublishInfo {
            queues,
            cursor: AtomicUsize::new(rand_seed()),
            route: None,
        }
    }

    /// The next queue round robin, avoiding `last_broker` (the broker of a
    /// failed attempt) while another broker has a queue.
    pub(crate) fn select_queue(&self, last_broker: Option<&str>) -> Option<&MessageQueue> {
        if self.queues.is_empty() {
            return None;
        }
        let n = self.queues.len();
        if let Some(last) = last_broker {
            for _ in 0..n {
                let index = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
                let queue = &self.queues[index];
                if queue.broker_name != last {
                    return Some(queue);
                }
            }
        }
        let index = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
        Some(&self.queues[index])
    }
}

fn rand_seed() -> usize {
    (now_millis() as usize) ^ (std::process::id() as usize)
}

/// Runs up to `times` attempts, each on the next queue avoiding the broker
/// that failed last; stops at the first success or at an error that another
/// broker would not fix.
pub(crate) async fn send_with_retry<F, Fut>(
    topic: &str,
    info: &TopicPublishInfo,
    times: u32,
    mut attempt: F,
) -> Result<SendResult>
where
    F: FnMut(MessageQueue) -> Fut,
    Fut: Future<Output = Result<SendResult>>,
{
    let mut last_broker: Option<String> = None;
    let mut last_error = None;
    let mut attempts = 0;
    for _ in 0..times.max(1) {
        let Some(queue) = info.select_queue(last_broker.as_deref()).cloned() else {
            break;
        };
        attempts += 1;
        let broker = queue.broker_name.clone();
        match attempt(queue).await {
            Ok(result) => return Ok(result),
            Err(error) if is_retriable(&error) => {
                debug!(topic, broker, %error, "send failed, trying another broker");
                last_broker = Some(broker);
                last_error = Some(error);
            }
            Err(error) => return Err(error),
        }
    }
    Err(match last_error {
        Some(last) => ClientError::SendFailed {
            topic: topic.to_owned(),
            attempts,
            last: Box::new(last),
        },
        None => ClientError::NoRoute {
            topic: topic.to_owned(),
        },
    })
}

/// Failures another broker may not have (RocketMQ's retry list).
fn is_retriable(error: &ClientError) -> bool {
    if is_network_error(error) || matches!(error, ClientError::BrokerNotFound { .. }) {
        return true;
    }
    error.response_code().is_some_and(|code| {
        [
            ResponseCode::TOPIC_NOT_EXIST,
            ResponseCode::SERVICE_NOT_AVAILABLE,
            ResponseCode::SYSTEM_ERROR,
            ResponseCode::SYSTEM_BUSY,
            ResponseCode::NO_PERMISSION,
            ResponseCode::NO_BUYER_ID,
            ResponseCode::NOT_IN_CURRENT_UNIT,
        ]
        .iter()
        .any(|c| i32::from(*c) == code)
    })
}

/// A message ready for the wire.
pub(crate) struct Prepared {
    pub topic: String,
    pub flag: i32,
    pub body: Bytes,
    pub properties: String,
    pub sys_flag: i32,
    pub unique_id: String,
    pub reconsume_times: Option<i32>,
    pub max_reconsume_times: Option<i32>,
    pub batch: bool,
}

/// Sends messages to a topic's queues (RocketMQ's `DefaultMQProducer`).
/// Cheap to clone; clones share the producer. Sends may run concurrently.
#[derive(Clone)]
pub struct Producer {
    pub(crate) inner: Arc<ProducerInner>,
}

pub(crate) struct ProducerInner {
    pub config: ProducerConfig,
    pub instance: Arc<ClientInstance>,
    publish: Mutex<HashMap<String, Arc<TopicPublishInfo>>>,
    running: AtomicBool,
}

impl Producer {
    /// Starts a producer of `config.group`.
    pub async fn start(config: ProducerConfig, client: ClientConfig) -> Result<Producer> {
        Self::start_with_checker(config, client, None).await
    }

    pub(crate) async fn start_with_checker(
        config: ProducerConfig,
        client: ClientConfig,
        checker: Option<Arc<dyn crate::TransactionChecker>>,
    ) -> Result<Producer> {
        mq_protocol::topic::validate_group(&config.group).map_err(ClientError::InvalidArgument)?;
        let instance = ClientInstance::acquire(&client)?;
        if let Err(error) = instance.register_producer(&config.group, checker) {
            instance.release();
            return Err(error);
        }
        instance.send_heartbeat_to_all().await;
        Ok(Producer {
            inner: Arc::new(ProducerInner {
                config,
                instance,
                publish: Mutex::default(),
                running: AtomicBool::new(true),
            }),
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
        if self.inner.running.swap(false, Ordering::SeqCst) {
            self.inner
                .instance
                .unregister_producer(&self.inner.config.group)
                .await;
            self.inner.instance.release();
        }
    }
}

/// `hash mod n`, made non-negative the way RocketMQ's hash selector does.
pub fn select_by_hash(hash: i32, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let n = n as i32;
    (hash % n).unsigned_abs() as usize
}

impl ProducerInner {
    fn check_running(&self) -> Result<()> {
        if self.running.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(ClientError::NotRunning("producer"))
        }
    }

    fn validate(&self, msg: &Message) -> Result<()> {
        self.check_running()?;
        validate_topic(&msg.topic).map_err(ClientError::InvalidArgument)?;
        if msg.body.is_empty() {
            return Err(ClientError::InvalidArgument(
                "the message body is empty".into(),
            ));
        }
        if msg.body.len() > self.config.max_message_size {
            return Err(ClientError::InvalidArgument(format!(
                "the message body is {} bytes, over the limit of {}",
                msg.body.len(),
                self.config.max_message_size
            )));
        }
        Ok(())
    }

    pub(crate) fn prepare(&self, mut msg: Message) -> Result<Prepared> {
        self.validate(&msg)?;
        let unique_id = match msg.unique_id() {
            Some(id) => id.to_owned(),
            None => {
                let id = create_unique_id();
                msg.properties
                    .insert(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX.into(), id.clone());
                id
            }
        };
        let mut sys = 0;
        let mut body = msg.body.clone();
        if body.len() > self.config.compress_msg_body_over {
            body = compress(&body);
            sys |= sys_flag::COMPRESSED;
        }
        if msg.property(property::TRANSACTION_PREPARED) == Some("true") {
            sys |= sys_flag::TRANSACTION_PREPARED_TYPE;
        }
        let (reconsume_times, max_reconsume_times) =
            if msg.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
                (
                    msg.property(property::RECONSUME_TIME)
                        .and_then(|v| v.parse().ok()),
                    msg.property(property::MAX_RECONSUME_TIMES)
                        .and_then(|v| v.parse().ok()),
                )
            } else {
                (Some(0), None)
            };
        Ok(Prepared {
            properties: properties_to_string(&msg.properties),
            topic: msg.topic,
            flag: msg.flag,
            body,
            sys_flag: sys,
            unique_id,
            reconsume_times,
            max_reconsume_times,
            batch: false,
        })
    }

    fn prepare_batch(&self, msgs: Vec<Message>) -> Result<Prepared> {
        let Some(first) = msgs.first() else {
            return Err(ClientError::InvalidArgument("an empty batch".into()));
        };
        let topic = first.topic.clone();
        let mut body = BytesMut::new();
        let mut ids = Vec::with_capacity(msgs.len());
        for mut msg in msgs {
            self.validate(&msg)?;
            if msg.topic != topic {
                return Err(ClientError::InvalidArgument(format!(
                    "a batch holds one topic, not {topic} and {}",
                    msg.topic
                )));
            }
            if msg.delay_level() > 0 {
                return Err(ClientError::InvalidArgument(
                    "batched messages cannot have a delay level".into(),
                ));
            }
            if topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
                return Err(ClientError::InvalidArgument(
                    "batches cannot go to a retry topic".into(),
                ));
            }
            let id = match msg.unique_id() {
                Some(id) => id.to_owned(),
                None => create_unique_id(),
            };
            msg.properties
                .insert(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX.into(), id.clone());
            ids.push(id);
            BatchEntry {
                flag: msg.flag,
                body: msg.body,
                properties: msg.properties,
            }
            .encode(&mut body)?;
        }
        if body.len() > self.config.max_message_size {
            return Err(ClientError::InvalidArgument(format!(
                "the batch is {} bytes, over the limit of {}",
                body.len(),
                self.config.max_message_size
            )));
        }
        let mut batch_properties = mq_protocol::Properties::new();
        batch_properties.insert(property::WAIT_STORE_MSG_OK.into(), "true".into());
        Ok(Prepared {
            topic,
            flag: 0,
            body: body.freeze(),
            properties: properties_to_string(&batch_properties),
            sys_flag: 0,
            unique_id: ids.join(","),
            reconsume_times: Some(0),
            max_reconsume_times: None,
            batch: true,
        })
    }

    /// The topic's writable queues: from its route, else from `TBW102`'s
    /// route so that the first send auto-creates the topic.
    pub(crate) async fn publish_info(&self, topic: &str) -> Result<Arc<TopicPublishInfo>> {
        let instance = &self.instance;
        let cached = self
            .publish
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .cloned();
        let route = match instance.cached_route(topic) {
            Some(route) => Some(route),
            None if cached.is_some() => None,
            None => match instance.update_route(topic).await {
                Ok(route) => Some(route),
                Err(ClientError::NoRoute { .. }) => None,
                Err(error) => return Err(error),
            },
        };
        if let Some(route) = route {
            if let Some(info) = &cached {
                if info.route.as_ref().is_some_and(|r| Arc::ptr_eq(r, &route)) {
                    return Ok(info.clone());
                }
            }
            let mut info = TopicPublishInfo::from_route(topic, &route, None);
            if !info.queues.is_empty() {
                info.route = Some(route);
                let info = Arc::new(info);
                self.publish
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(topic.to_owned(), info.clone());
                return Ok(info);
            }
        }
        if let Some(info) = cached {
            return Ok(info);
        }
        // No route yet: borrow TBW102's brokers; the broker creates the topic.
        instance.watch_topic(topic);
        let template = instance
            .fetch_route(AUTO_CREATE_TOPIC_KEY_TOPIC)
            .await
            .map_err(|error| match error {
                ClientError::NoRoute { .. } => ClientError::NoRoute {
                    topic: topic.to_owned(),
                },
                other => other,
            })?;
        instance.remember_brokers(&template);
        let info = TopicPublishInfo::from_route(
            topic,
            &template,
            Some(self.config.default_topic_queue_nums),
        );
        if info.queues.is_empty() {
            return Err(ClientError::NoRoute {
                topic: topic.to_owned(),
            });
        }
        let info = Arc::new(info);
        self.publish
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.to_owned(), info.clone());
        Ok(info)
    }

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

    pub(crate) fn request(&self, prepared: &Prepared, queue: &MessageQueue) -> RemotingCommand {
        let header = SendMessageRequestHeader {
            producer_group: self.config.group.clone(),
            topic: prepared.topic.clone(),
            default_topic: AUTO_CREATE_TOPIC_KEY_TOPIC.into(),
            default_topic_queue_nums: self.config.default_topic_queue_nums,
            queue_id: queue.queue_id,
            sys_flag: prepared.sys_flag,
            born_timestamp: now_millis(),
            flag: prepared.flag,
            properties: Some(prepared.properties.clone()),
            reconsume_times: prepared.reconsume_times,
            unit_mode: Some(false),
            batch: Some(prepared.batch),
            max_reconsume_times: prepared.max_reconsume_times,
        };
        let code = if prepared.batch {
            request_code::SEND_BATCH_MESSAGE
        } else {
            request_code::SEND_MESSAGE_V2
        };
        RemotingCommand::request(code)
            .with_header(&SendMessageRequestHeaderV2::from_v1(&header))
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

/// zlib at level 5, as Java's producer compresses.
fn compress(body: &[u8]) -> Bytes {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(5));
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .map(Bytes::from)
        .expect("compressing into memory cannot fail")
}

/// Inflates a zlib body.
pub(crate) fn decompress(body: &[u8]) -> std::io::Result<Bytes> {
    let mut decoder = flate2::write::ZlibDecoder::new(Vec::new());
    decoder.write_all(body)?;
    decoder.finish().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_protocol::route::{BrokerData, QueueData};

    fn route(brokers: &[(&str, i32, i32)]) -> TopicRouteData {
        TopicRouteData {
            queue_datas: brokers
                .iter()
                .map(|(name, queues, perm)| QueueData {
                    broker_name: (*name).into(),
                    read_queue_nums: *queues,
                    write_queue_nums: *queues,
                    perm: *perm,
                    topic_sys_flag: 0,
                })
                .collect(),
            broker_datas: brokers
                .iter()
                .map(|(name, _, _)| BrokerData {
                    cluster: "c".into(),
                    broker_name: (*name).into(),
                    broker_addrs: [(0, format!("{name}:10911"))].into(),
                })
                .collect(),
            ..TopicRouteData::default()
        }
    }

    fn result(queue: &MessageQueue) -> SendResult {
        SendResult {
            status: SendStatus::SendOk,
            msg_id: "id".into(),
            offset_msg_id: "off".into(),
            queue: queue.clone(),
            queue_offset: 0,
            transaction_id: None,
            broker_addr: String::new(),
        }
    }

    #[test]
    fn publish_info_takes_writable_queues_of_brokers_with_a_master() {
        let mut r = route(&[("b", 2, 6), ("a", 3, 6), ("ro", 4, 4)]);
        r.broker_datas.push(BrokerData {
            cluster: "c".into(),
            broker_name: "slave-only".into(),
            broker_addrs: [(1, "s:1".to_owned())].into(),
        });
        r.queue_datas.push(QueueData {
            broker_name: "slave-only".into(),
            read_queue_nums: 4,
            write_queue_nums: 4,
            perm: 6,
            topic_sys_flag: 0,
        });
        let info = TopicPublishInfo::from_route("T", &r, None);
        let names: Vec<(String, i32)> = info
            .queues
            .iter()
            .map(|q| (q.broker_name.clone(), q.queue_id))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a".into(), 0),
                ("a".into(), 1),
                ("a".into(), 2),
                ("b".into(), 0),
                ("b".into(), 1)
            ]
        );
        let limited = TopicPublishInfo::from_route("T", &r, Some(1));
        assert_eq!(limited.queues.len(), 2);
    }

    #[test]
    fn round_robin_visits_every_queue_evenly() {
        let info = TopicPublishInfo::from_route("T", &route(&[("a", 2, 6), ("b", 2, 6)]), None);
        let mut counts: HashMap<MessageQueue, usize> = HashMap::new();
        for _ in 0..400 {
            *counts
                .entry(info.select_queue(None).unwrap().clone())
                .or_default() += 1;
        }
        assert_eq!(counts.len(), 4);
        assert!(counts.values().all(|&c| c == 100), "{counts:?}");
    }

    #[test]
    fn selection_avoids_the_failed_broker() {
        let info = TopicPublishInfo::from_route("T", &route(&[("a", 2, 6), ("b", 2, 6)]), None);
        for _ in 0..20 {
            assert_eq!(info.select_queue(Some("a")).unwrap().broker_name, "b");
        }
        // With a single broker the failed one is still used.
        let single = TopicPublishInfo::from_route("T", &route(&[("a", 2, 6)]), None);
        assert_eq!(single.select_queue(Some("a")).unwrap().broker_name, "a");
    }

    #[tokio::test]
    async fn a_failed_send_is_retried_on_another_broker() {
        let info = TopicPublishInfo::from_route("T", &route(&[("a", 4, 6), ("b", 4, 6)]), None);
        for _ in 0..8 {
            let tried = Mutex::new(Vec::new());
            let outcome = send_with_retry("T", &info, 3, |queue| {
                tried.lock().unwrap().push(queue.broker_name.clone());
                let first = tried.lock().unwrap().len() == 1;
                async move {
                    if first {
                        Err(ClientError::Remoting(
                            mq_remoting::RemotingError::ConnectFailed {
                                addr: queue.broker_name.clone(),
                                reason: "refused".into(),
                            },
                        ))
                    } else {
                        Ok(result(&queue))
                    }
                }
            })
            .await
            .unwrap();
            let tried = tried.into_inner().unwrap();
            assert_eq!(tried.len(), 2);
            assert_ne!(tried[0], tried[1], "the retry went to the same broker");
            assert_eq!(outcome.queue.broker_name, tried[1]);
        }
    }

    #[tokio::test]
    async fn retries_stop_at_the_limit_and_on_final_errors() {
        let info = TopicPublishInfo::from_route("T", &route(&[("a", 1, 6), ("b", 1, 6)]), None);
        let calls = AtomicUsize::new(0);
        let err = send_with_retry("T", &info, 3, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err::<SendResult, _>(ClientError::Remoting(mq_remoting::RemotingError::Remote {
                    code: i32::from(ResponseCode::SYSTEM_ERROR),
                    remark: "disk".into(),
                }))
            }
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(
            matches!(err, ClientError::SendFailed { attempts: 3, .. }),
            "{err}"
        );
        assert_eq!(err.response_code(), Some(1));

        let calls = AtomicUsize::new(0);
        let err = send_with_retry("T", &info, 3, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err::<SendResult, _>(ClientError::Remoting(mq_remoting::RemotingError::Remote {
                    code: i32::from(ResponseCode::MESSAGE_ILLEGAL),
                    remark: "too big".into(),
                }))
            }
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "MESSAGE_ILLEGAL is final");
        assert_eq!(err.response_code(), Some(13));
    }

    #[test]
    fn hash_selector_matches_javas() {
        // Java: Math.abs(hash % n), with Java's remainder sign rules.
        assert_eq!(select_by_hash(5, 4), 1);
        // "TagA".hashCode() = 2598919; 2598919 % 7 = 1.
        assert_eq!(select_by_hash(java_string_hash("TagA"), 7), 1);
        assert_eq!(select_by_hash(-7, 4), 3);
        assert_eq!(select_by_hash(i32::MIN, 3), 2);
    }

    #[test]
    fn compression_round_trips() {
        let body = vec![b'x'; 10_000];
        let packed = compress(&body);
        assert!(packed.len() < 1000);
        assert_eq!(decompress(&packed).unwrap(), Bytes::from(body));
    }
}
