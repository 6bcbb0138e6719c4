//! The consumer-side broker requests (RocketMQ's `MQClientAPIImpl` for
//! pulls, offsets, send-back, locks and group membership).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use mq_protocol::body::{
    CheckClientRequestBody, ConsumerListBody, LockBatchRequestBody, LockBatchResponseBody,
    MessageQueue, SubscriptionData,
};
use mq_protocol::header::{
    ConsumerGroupHeader, ConsumerSendMsgBackRequestHeader, OffsetResponseHeader,
    PullMessageRequestHeader, PullMessageResponseHeader, QueryConsumerOffsetRequestHeader,
    QueueRequestHeader, SearchOffsetRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use mq_protocol::route::{decode_json, encode_json};
use mq_protocol::{request_code, MessageExt, RemotingCommand, ResponseCode};
use serde::{Deserialize, Serialize};

use crate::compress::inflate;
use crate::error::{expect_success, ClientError, Result};
use crate::instance::ClientInstance;

/// What a pull found (RocketMQ's `PullStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullStatus {
    /// Messages (maybe none left after the client's exact tag check).
    Found,
    /// Nothing at or after the offset yet.
    NoNewMsg,
    /// Messages exist but none matched the tag codes.
    NoMatchedMsg,
    /// The offset is outside the queue; continue at `next_begin_offset`.
    OffsetIllegal,
}

/// The result of one pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullResult {
    pub status: PullStatus,
    pub next_begin_offset: i64,
    pub min_offset: i64,
    pub max_offset: i64,
    pub messages: Vec<MessageExt>,
}

impl ClientInstance {
    /// The master address of `mq`'s broker group (a slave when the master
    /// is gone or just failed to answer), refreshing the route if unknown.
    pub(crate) async fn queue_addr(self: &Arc<Self>, mq: &MessageQueue) -> Result<String> {
        self.broker_addr_for(&mq.topic, &mq.broker_name).await
    }

    /// PULL_MESSAGE; bodies decompressed, nothing filtered.
    pub(crate) async fn pull(
        self: &Arc<Self>,
        mq: &MessageQueue,
        header: PullMessageRequestHeader,
        timeout: Duration,
    ) -> Result<PullResult> {
        let mut addr = self.queue_addr(mq).await?;
        if let Some(suggested) = self.pick_addr(&mq.broker_name, self.pull_from(mq)) {
            addr = suggested;
        }
        let request = RemotingCommand::request(request_code::PULL_MESSAGE).with_header(&header);
        let response = self.invoke_timeout(&addr, request, timeout).await?;
        let status = match ResponseCode::from_i32(response.code) {
            Some(ResponseCode::SUCCESS) => PullStatus::Found,
            Some(ResponseCode::PULL_NOT_FOUND) => PullStatus::NoNewMsg,
            Some(ResponseCode::PULL_RETRY_IMMEDIATELY) => PullStatus::NoMatchedMsg,
            Some(ResponseCode::PULL_OFFSET_MOVED) => PullStatus::OffsetIllegal,
            _ => return Err(expect_success(response).unwrap_err()),
        };
        let head: PullMessageResponseHeader = response.header()?;
        self.set_pull_from(mq, head.suggest_which_broker_id);
        let messages = if status == PullStatus::Found {
            let mut messages = MessageExt::decode_all(&response.body)?;
            for msg in &mut messages {
                inflate(msg)?;
            }
            messages
        } else {
            Vec::new()
        };
        Ok(PullResult {
            status,
            next_begin_offset: head.next_begin_offset,
            min_offset: head.min_offset,
            max_offset: head.max_offset,
            messages,
        })
    }

    /// CHECK_CLIENT_CONFIG of each subscription in `subs` with every
    /// master of its topic (RocketMQ's `checkClientInBroker`, which asks one
    /// broker): a broker that cannot serve a SQL92 filter (its property
    /// filter off, or the expression refused) says why, and that is the
    /// error. A topic without a route yet is not checked.
    pub(crate) async fn check_client_config(
        self: &Arc<Self>,
        group: &str,
        subs: &[SubscriptionData],
    ) -> Result<()> {
        for sub in subs {
            let Ok(route) = self.route(&sub.topic).await else {
                continue;
            };
            let body = CheckClientRequestBody {
                client_id: self.client_id().to_owned(),
                group: group.to_owned(),
                subscription_data: Some(sub.clone()),
                namespace: None,
            };
            for broker in &route.broker_datas {
                let Some(addr) = broker.select_broker_addr() else {
                    continue;
                };
                let request = RemotingCommand::request(request_code::CHECK_CLIENT_CONFIG)
                    .with_body(encode_json(&body));
                expect_success(self.invoke(addr, request).await?)?;
            }
        }
        Ok(())
    }

    /// The group's committed offset of `mq`, `None` if it has none.
    pub(crate) async fn query_consumer_offset(
        self: &Arc<Self>,
        group: &str,
        mq: &MessageQueue,
    ) -> Result<Option<i64>> {
        let addr = self.queue_addr(mq).await?;
        let request = RemotingCommand::request(request_code::QUERY_CONSUMER_OFFSET).with_header(
            &QueryConsumerOffsetRequestHeader {
                consumer_group: group.to_owned(),
                topic: mq.topic.clone(),
                queue_id: mq.queue_id,
                set_zero_if_not_found: None,
            },
        );
        let response = self.invoke(&addr, request).await?;
        if response.code == i32::from(ResponseCode::QUERY_NOT_FOUND) {
            return Ok(None);
        }
        let header: OffsetResponseHeader = expect_success(response)?.header()?;
        Ok((header.offset >= 0).then_some(header.offset))
    }

    pub(crate) async fn update_consumer_offset(
        self: &Arc<Self>,
        group: &str,
        mq: &MessageQueue,
        offset: i64,
    ) -> Result<()> {
        let addr = self.queue_addr(mq).await?;
        let request = RemotingCommand::request(request_code::UPDATE_CONSUMER_OFFSET).with_header(
            &UpdateConsumerOffsetRequestHeader {
                consumer_group: group.to_owned(),
                topic: mq.topic.clone(),
                queue_id: mq.queue_id,
                commit_offset: offset,
            },
        );
        expect_success(self.invoke(&addr, request).await?)?;
        Ok(())
    }

    async fn queue_offset_request(
        self: &Arc<Self>,
        mq: &MessageQueue,
        request: RemotingCommand,
    ) -> Result<i64> {
        let addr = self.queue_addr(mq).await?;
        let header: OffsetResponseHeader =
            expect_success(self.invoke(&addr, request).await?)?.header()?;
        Ok(header.offset)
    }

    /// GET_MAX_OFFSET or GET_MIN_OFFSET (`code`) of `mq`.
    async fn queue_bound(self: &Arc<Self>, mq: &MessageQueue, code: i32) -> Result<i64> {
        let request = RemotingCommand::request(code).with_header(&QueueRequestHeader {
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
        });
        self.queue_offset_request(mq, request).await
    }

    /// The offset after the last message of `mq`.
    pub(crate) async fn max_offset(self: &Arc<Self>, mq: &MessageQueue) -> Result<i64> {
        self.queue_bound(mq, request_code::GET_MAX_OFFSET).await
    }

    /// The offset of the first message of `mq` still stored.
    pub(crate) async fn min_offset(self: &Arc<Self>, mq: &MessageQueue) -> Result<i64> {
        self.queue_bound(mq, request_code::GET_MIN_OFFSET).await
    }

    /// The offset of the first message of `mq` stored at or after
    /// `timestamp` (ms).
    pub(crate) async fn search_offset(
        self: &Arc<Self>,
        mq: &MessageQueue,
        timestamp: i64,
    ) -> Result<i64> {
        let request = RemotingCommand::request(request_code::SEARCH_OFFSET_BY_TIMESTAMP)
            .with_header(&SearchOffsetRequestHeader {
                topic: mq.topic.clone(),
                queue_id: mq.queue_id,
                timestamp,
            });
        self.queue_offset_request(mq, request).await
    }

    /// CONSUMER_SEND_MSG_BACK of a message pulled from `mq`.
    pub(crate) async fn send_back(
        self: &Arc<Self>,
        mq: &MessageQueue,
        msg: &MessageExt,
        group: &str,
        delay_level: i32,
        max_reconsume_times: i32,
    ) -> Result<()> {
        let addr = self.queue_addr(mq).await?;
        let request = RemotingCommand::request(request_code::CONSUMER_SEND_MSG_BACK).with_header(
            &ConsumerSendMsgBackRequestHeader {
                offset: msg.commit_log_offset,
                group: group.to_owned(),
                delay_level,
                origin_msg_id: Some(msg.msg_id()),
                origin_topic: Some(msg.topic.clone()),
                unit_mode: Some(false),
                max_reconsume_times: Some(max_reconsume_times),
            },
        );
        expect_success(self.invoke(&addr, request).await?)?;
        Ok(())
    }

    /// The client ids of the group's live members, as a broker of `topic` knows them.
    pub(crate) async fn consumer_ids(
        self: &Arc<Self>,
        topic: &str,
        group: &str,
    ) -> Result<Vec<String>> {
        let route = self.route(topic).await?;
        let mut last = ClientError::NoRoute {
            topic: topic.to_owned(),
        };
        for broker in &route.broker_datas {
            let Some(addr) = broker.select_broker_addr() else {
                continue;
            };
            let request = RemotingCommand::request(request_code::GET_CONSUMER_LIST_BY_GROUP)
                .with_header(&ConsumerGroupHeader {
                    consumer_group: group.to_owned(),
                });
            match self.invoke(addr, request).await.and_then(expect_success) {
                Ok(response) => {
                    let body: ConsumerListBody = decode_json(&response.body)?;
                    return Ok(body.consumer_id_list);
                }
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    /// LOCK_BATCH_MQ on one broker; returns the queues now held.
    pub(crate) async fn lock_batch(
        self: &Arc<Self>,
        broker_name: &str,
        topic: &str,
        group: &str,
        queues: BTreeSet<MessageQueue>,
    ) -> Result<BTreeSet<MessageQueue>> {
        let response = self
            .lock_request(
                request_code::LOCK_BATCH_MQ,
                broker_name,
                topic,
                group,
                queues,
            )
            .await?;
        let body: LockBatchResponseBody = decode_json(&response.body)?;
        Ok(body.lock_ok_mq_set)
    }

    /// UNLOCK_BATCH_MQ on one broker.
    pub(crate) async fn unlock_batch(
        self: &Arc<Self>,
        broker_name: &str,
        topic: &str,
        group: &str,
        queues: BTreeSet<MessageQueue>,
    ) -> Result<()> {
        self.lock_request(
            request_code::UNLOCK_BATCH_MQ,
            broker_name,
            topic,
            group,
            queues,
        )
        .await?;
        Ok(())
    }

    /// LOCK_BATCH_MQ or UNLOCK_BATCH_MQ (`code`) of `queues` for this
    /// client on the broker group `broker_name`.
    async fn lock_request(
        self: &Arc<Self>,
        code: i32,
        broker_name: &str,
        topic: &str,
        group: &str,
        queues: BTreeSet<MessageQueue>,
    ) -> Result<RemotingCommand> {
        let addr = self.broker_addr_for(topic, broker_name).await?;
        let body = LockBatchRequestBody {
            consumer_group: group.to_owned(),
            client_id: self.client_id().to_owned(),
            only_this_broker: false,
            mq_set: queues,
        };
        let request = RemotingCommand::request(code).with_body(encode_json(&body));
        expect_success(self.invoke(&addr, request).await?)
    }
}
