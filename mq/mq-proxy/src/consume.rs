//! The consumer RPCs of [`Proxy`]: QueryAssignment, ReceiveMessage,
//! AckMessage, ChangeInvisibleDuration, ForwardMessageToDeadLetterQueue,
//! PullMessage and the offset RPCs, over [`crate::consumer::Consumers`].

use std::time::{Duration, Instant};

use mq_client::{MessageQueue as Queue4, MessageSelector};
use mq_protocol::filter::Selector;
use mq_protocol::route::TopicRouteData;

use crate::consumer::{lock, Receipt, SendBack, MAX_LONG_POLL};
use crate::convert;
use crate::pb::*;
use crate::status::{self, ProxyError};
use crate::Proxy;

/// The longest invisible time a receive may ask for (RocketMQ's limit).
const MAX_INVISIBLE: Duration = Duration::from_secs(12 * 3600);

/// The internal group offset queries without a group run as.
const OFFSET_QUERY_GROUP: &str = "PROXY_GRPC_OFFSET_QUERY";

fn duration(d: Option<&prost_types::Duration>) -> Option<Duration> {
    let d = d?;
    if d.seconds < 0 || d.nanos < 0 {
        return None;
    }
    Some(Duration::new(d.seconds as u64, d.nanos as u32))
}

pub(crate) fn proto_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// The 4.x queue a 5.x message queue names.
fn queue(mq: Option<&MessageQueue>) -> Result<Queue4, ProxyError> {
    let mq = mq.ok_or_else(|| ProxyError::bad_request("no message queue"))?;
    let topic = convert::topic_name(mq.topic.as_ref())?;
    let broker = mq
        .broker
        .as_ref()
        .map(|b| b.name.clone())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ProxyError::bad_request("the message queue names no broker"))?;
    if mq.id < 0 {
        return Err(ProxyError::bad_request(format!(
            "queue id {} of {topic}: ask QueryAssignment for the queues",
            mq.id
        )));
    }
    Ok(Queue4 {
        topic,
        broker_name: broker,
        queue_id: mq.id,
    })
}

/// The 4.x selector of a filter: a tag expression (`*` when there is
/// none), or a SQL92 one, which the broker evaluates. A SQL92 expression
/// that does not parse is ILLEGAL_FILTER_EXPRESSION with what is wrong,
/// before any pull (RocketMQ's proxy answers that code for the
/// expressions its `FilterAPI.build` refuses).
fn expression(filter: Option<&FilterExpression>) -> Result<MessageSelector, ProxyError> {
    match filter {
        None => Ok(MessageSelector::all()),
        Some(f) if f.r#type() == FilterType::Sql => {
            Selector::parse(&f.expression)
                .map_err(|e| ProxyError::new(Code::IllegalFilterExpression, e.to_string()))?;
            Ok(MessageSelector::by_sql(f.expression.clone()))
        }
        Some(f) if f.expression.trim().is_empty() => Ok(MessageSelector::all()),
        Some(f) => Ok(MessageSelector::by_tag(f.expression.clone())),
    }
}

fn master_addr(route: &TopicRouteData, broker: &str) -> Result<String, ProxyError> {
    route
        .broker_datas
        .iter()
        .find(|b| b.broker_name == broker)
        .and_then(|b| b.broker_addrs.get(&0).cloned())
        .ok_or_else(|| {
            ProxyError::new(
                Code::NotFound,
                format!("broker {broker} has no master in the route"),
            )
        })
}

/// What one receive returned.
pub(crate) struct Received {
    pub messages: Vec<Message>,
}

impl Proxy {
    pub(crate) async fn query_assignment(
        &self,
        request: QueryAssignmentRequest,
    ) -> Result<Vec<Assignment>, ProxyError> {
        let topic = convert::topic_name(request.topic.as_ref())?;
        convert::group_name(request.group.as_ref())?;
        let endpoints = request
            .endpoints
            .filter(|e| !e.addresses.is_empty())
            .ok_or_else(|| ProxyError::bad_request("the request names no endpoints"))?;
        let route = self.route(&topic).await?;
        Ok(crate::service::message_queues(&topic, &route, &endpoints)
            .into_iter()
            .filter(|q| matches!(q.permission(), Permission::Read | Permission::ReadWrite))
            .map(|q| Assignment {
                message_queue: Some(q),
            })
            .collect())
    }

    pub(crate) async fn receive(
        &self,
        client_id: &str,
        request: ReceiveMessageRequest,
        deadline: Option<Duration>,
    ) -> Result<Received, ProxyError> {
        let group = convert::group_name(request.group.as_ref())?;
        let mq = queue(request.message_queue.as_ref())?;
        let expression = expression(request.filter_expression.as_ref())?;
        let invisible = duration(request.invisible_duration.as_ref())
            .filter(|d| !d.is_zero() && *d <= MAX_INVISIBLE)
            .ok_or_else(|| {
                ProxyError::new(
                    Code::IllegalInvisibleTime,
                    format!("the invisible duration must be above 0 and at most {MAX_INVISIBLE:?}"),
                )
            })?;
        let batch = request.batch_size.clamp(1, 32);
        let mut wait = duration(request.long_polling_timeout.as_ref())
            .unwrap_or(Duration::ZERO)
            .min(MAX_LONG_POLL);
        if let Some(deadline) = deadline {
            // Answer before the client gives up on the call.
            wait = wait.min(deadline.saturating_sub(Duration::from_millis(500)));
        }
        let route = self.route(&mq.topic).await?;
        let broker_addr = master_addr(&route, &mq.broker_name)?;
        let fifo = self.inner.sessions.is_fifo_consumer(client_id);
        let delivered = self
            .inner
            .consumers
            .receive(
                &self.inner.admin,
                &broker_addr,
                &group,
                &mq,
                &expression,
                batch,
                invisible,
                wait,
                fifo,
            )
            .await?;
        let messages = delivered
            .into_iter()
            .map(|d| {
                let mut message = convert::inbound(&d.message, &d.topic);
                if let Some(sys) = message.system_properties.as_mut() {
                    sys.receipt_handle = Some(d.receipt.encode());
                    sys.delivery_attempt = Some(d.attempts);
                    sys.invisible_duration = Some(proto_duration(invisible));
                }
                message
            })
            .collect();
        Ok(Received { messages })
    }

    async fn commit_slot(&self, group: &str, mq: &Queue4) -> Result<(), ProxyError> {
        let slot = self.inner.consumers.slot(group, mq).await?;
        self.inner
            .consumers
            .commit_slot(group, mq, &slot, false)
            .await
    }

    async fn ack_one(&self, group: &str, topic: &str, handle: &str) -> Result<(), ProxyError> {
        let receipt = Receipt::decode(handle)?;
        let slot = self
            .inner
            .consumers
            .known_slot(group, topic, &receipt)
            .ok_or_else(|| {
                ProxyError::new(
                    Code::InvalidReceiptHandle,
                    "the receipt handle names no queue this proxy delivered from",
                )
            })?;
        lock(&slot.state).ack(&receipt)?;
        self.commit_slot(group, &receipt.queue(group, topic)).await
    }

    pub(crate) async fn ack(
        &self,
        request: AckMessageRequest,
    ) -> Result<(Status, Vec<AckMessageResultEntry>), ProxyError> {
        let group = convert::group_name(request.group.as_ref())?;
        let topic = convert::topic_name(request.topic.as_ref())?;
        if request.entries.is_empty() {
            return Err(ProxyError::bad_request("no entries to acknowledge"));
        }
        let mut entries = Vec::with_capacity(request.entries.len());
        for entry in request.entries {
            let result = self.ack_one(&group, &topic, &entry.receipt_handle).await;
            entries.push(AckMessageResultEntry {
                message_id: entry.message_id,
                receipt_handle: entry.receipt_handle,
                status: Some(status::of(&result)),
            });
        }
        let first = entries[0].status.clone().unwrap_or_else(status::ok);
        let overall = if entries
            .iter()
            .all(|e| e.status.as_ref().map(|s| s.code) == Some(first.code))
        {
            first
        } else {
            Status {
                code: Code::MultipleResults as i32,
                message: "the entries have different results".into(),
            }
        };
        Ok((overall, entries))
    }

    pub(crate) async fn change_invisible_duration(
        &self,
        request: ChangeInvisibleDurationRequest,
    ) -> Result<String, ProxyError> {
        let group = convert::group_name(request.group.as_ref())?;
        let topic = convert::topic_name(request.topic.as_ref())?;
        let invisible = duration(request.invisible_duration.as_ref())
            .filter(|d| *d <= MAX_INVISIBLE)
            .ok_or_else(|| {
                ProxyError::new(
                    Code::IllegalInvisibleTime,
                    format!("the invisible duration must be at most {MAX_INVISIBLE:?}"),
                )
            })?;
        let receipt = Receipt::decode(&request.receipt_handle)?;
        let slot = self
            .inner
            .consumers
            .known_slot(&group, &topic, &receipt)
            .ok_or_else(|| {
                ProxyError::new(
                    Code::InvalidReceiptHandle,
                    "the receipt handle names no queue this proxy delivered from",
                )
            })?;
        let delivery = lock(&slot.state).change_invisible(&receipt, Instant::now() + invisible)?;
        Ok(Receipt {
            delivery,
            ..receipt
        }
        .encode())
    }

    pub(crate) async fn forward_to_dlq(
        &self,
        request: ForwardMessageToDeadLetterQueueRequest,
    ) -> Result<(), ProxyError> {
        let group = convert::group_name(request.group.as_ref())?;
        let topic = convert::topic_name(request.topic.as_ref())?;
        let receipt = Receipt::decode(&request.receipt_handle)?;
        let slot = self
            .inner
            .consumers
            .known_slot(&group, &topic, &receipt)
            .ok_or_else(|| {
                ProxyError::new(
                    Code::InvalidReceiptHandle,
                    "the receipt handle names no queue this proxy delivered from",
                )
            })?;
        let mq = receipt.queue(&group, &topic);
        let route = self.route(&topic).await?;
        let broker_addr = master_addr(&route, &mq.broker_name)?;
        let consumer = self.inner.consumers.consumer(&group).await?;
        let pulled = consumer.pull(&mq, "*", receipt.offset, 1).await?;
        let message = pulled
            .messages
            .into_iter()
            .find(|m| m.queue_offset == receipt.offset)
            .ok_or_else(|| {
                ProxyError::new(Code::MessageNotFound, "the message is no longer stored")
            })?;
        lock(&slot.state).ack(&receipt)?;
        let back = SendBack {
            admin: &self.inner.admin,
            broker_addr: &broker_addr,
            group: &group,
            max_attempts: request.max_delivery_attempts.max(1),
        };
        back.to_dlq(&message).await?;
        self.commit_slot(&group, &mq).await
    }

    pub(crate) async fn pull(
        &self,
        request: PullMessageRequest,
    ) -> Result<(Vec<Message>, i64), ProxyError> {
        let group = convert::group_name(request.group.as_ref())?;
        let mq = queue(request.message_queue.as_ref())?;
        let expression = expression(request.filter_expression.as_ref())?;
        if request.offset < 0 {
            return Err(ProxyError::new(
                Code::IllegalOffset,
                "the offset is negative",
            ));
        }
        let consumer = self.inner.consumers.consumer(&group).await?;
        let wait = duration(request.long_polling_timeout.as_ref())
            .unwrap_or(Duration::ZERO)
            .min(MAX_LONG_POLL);
        let batch = request.batch_size.clamp(1, 32);
        let result = if wait.is_zero() {
            consumer
                .pull(&mq, &expression, request.offset, batch)
                .await?
        } else {
            consumer
                .pull_blocking(&mq, &expression, request.offset, batch, wait)
                .await?
        };
        let messages = result
            .messages
            .iter()
            .map(|m| convert::inbound(m, &mq.topic))
            .collect();
        Ok((messages, result.next_begin_offset))
    }

    pub(crate) async fn get_offset(&self, request: GetOffsetRequest) -> Result<i64, ProxyError> {
        let group = convert::group_name(request.group.as_ref())?;
        let mq = queue(request.message_queue.as_ref())?;
        let consumer = self.inner.consumers.consumer(&group).await?;
        consumer.committed_offset(&mq).await?.ok_or_else(|| {
            ProxyError::new(
                Code::OffsetNotFound,
                format!(
                    "group {group} has no offset for {}:{}",
                    mq.topic, mq.queue_id
                ),
            )
        })
    }

    pub(crate) async fn update_offset(
        &self,
        request: UpdateOffsetRequest,
    ) -> Result<(), ProxyError> {
        let group = convert::group_name(request.group.as_ref())?;
        let mq = queue(request.message_queue.as_ref())?;
        if request.offset < 0 {
            return Err(ProxyError::new(
                Code::IllegalOffset,
                "the offset is negative",
            ));
        }
        self.inner
            .consumers
            .commit(&group, &mq, request.offset)
            .await
    }

    pub(crate) async fn query_offset(
        &self,
        request: QueryOffsetRequest,
    ) -> Result<i64, ProxyError> {
        let mq = queue(request.message_queue.as_ref())?;
        let consumer = self.inner.consumers.consumer(OFFSET_QUERY_GROUP).await?;
        Ok(match request.query_offset_policy() {
            QueryOffsetPolicy::Beginning => consumer.min_offset(&mq).await?,
            QueryOffsetPolicy::End => consumer.max_offset(&mq).await?,
            QueryOffsetPolicy::Timestamp => {
                let ts = request.timestamp.as_ref().ok_or_else(|| {
                    ProxyError::bad_request("a TIMESTAMP query needs a timestamp")
                })?;
                let ms = ts.seconds.saturating_mul(1000) + i64::from(ts.nanos / 1_000_000);
                consumer.search_offset(&mq, ms).await?
            }
        })
    }
}
