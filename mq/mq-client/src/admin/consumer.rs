//! Consumer groups at work: offset resets, offsets held by each member,
//! running info, a message consumed directly by one member, offset
//! clones, and the connections of groups.

use std::time::Duration;

use mq_protocol::admin_body::{
    ConsumeMessageDirectlyResult, ConsumerConnection, ConsumerRunningInfo, GetConsumerStatusBody,
    ProducerConnection, ResetOffsetBody,
};
use mq_protocol::header::{
    CloneGroupOffsetRequestHeader, ConsumeMessageDirectlyResultRequestHeader, ConsumerGroupHeader,
    GetConsumerRunningInfoRequestHeader, GetConsumerStatusRequestHeader, ProducerGroupHeader,
    ResetOffsetRequestHeader,
};
use mq_protocol::route::decode_json;
use mq_protocol::{request_code, RemotingCommand};

use super::AdminClient;
use crate::error::{expect_success, ClientError, Result};

/// How long a direct consume may take: the broker gives the consumer 5 s
/// and answers CONSUME_MSG_TIMEOUT after that, so wait a little longer
/// than the broker does.
const CONSUME_DIRECTLY_TIMEOUT: Duration = Duration::from_secs(8);

fn body_error(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::InvalidArgument(format!("bad {what} body: {e}"))
}

impl AdminClient {
    /// INVOKE_BROKER_TO_RESET_OFFSET: the broker moves the group's offsets
    /// of `topic` to `timestamp` (ms; -1 for the end), commits them and
    /// tells the online members. Returns the new offsets.
    pub async fn reset_offset_by_time(
        &self,
        addr: &str,
        group: &str,
        topic: &str,
        timestamp: i64,
        force: bool,
    ) -> Result<ResetOffsetBody> {
        let request = RemotingCommand::request(request_code::INVOKE_BROKER_TO_RESET_OFFSET)
            .with_header(&ResetOffsetRequestHeader {
                group: group.to_owned(),
                topic: topic.to_owned(),
                timestamp,
                is_force: force,
            });
        let response = self.call_broker(addr, request).await?;
        ResetOffsetBody::decode(&response.body).map_err(|e| body_error("reset offset", e))
    }

    /// INVOKE_BROKER_TO_GET_CONSUMER_STATUS: each online member's offsets of
    /// `topic` (all members, or the one at `client_addr`).
    pub async fn consumer_status(
        &self,
        addr: &str,
        group: &str,
        topic: &str,
        client_addr: Option<&str>,
    ) -> Result<GetConsumerStatusBody> {
        let request = RemotingCommand::request(request_code::INVOKE_BROKER_TO_GET_CONSUMER_STATUS)
            .with_header(&GetConsumerStatusRequestHeader {
                topic: topic.to_owned(),
                group: group.to_owned(),
                client_addr: client_addr.map(str::to_owned),
            });
        let response = self.call_broker(addr, request).await?;
        GetConsumerStatusBody::decode(&response.body).map_err(|e| body_error("consumer status", e))
    }

    /// GET_CONSUMER_RUNNING_INFO, through the broker at `addr` to the client.
    pub async fn consumer_running_info(
        &self,
        addr: &str,
        group: &str,
        client_id: &str,
        jstack: bool,
    ) -> Result<ConsumerRunningInfo> {
        let request = RemotingCommand::request(request_code::GET_CONSUMER_RUNNING_INFO)
            .with_header(&GetConsumerRunningInfoRequestHeader {
                consumer_group: group.to_owned(),
                client_id: client_id.to_owned(),
                jstack_enable: Some(jstack),
            });
        let response = self.call_broker(addr, request).await?;
        ConsumerRunningInfo::decode(&response.body).map_err(|e| body_error("running info", e))
    }

    /// CONSUME_MESSAGE_DIRECTLY through the broker at `addr` (the one that
    /// stored the message): the member `client_id` of `group` (any online
    /// member when `None`) runs its listener on the message `msg_id` (an
    /// offset message id) and says how that went. Offsets do not move.
    pub async fn consume_message_directly(
        &self,
        addr: &str,
        group: &str,
        client_id: Option<&str>,
        topic: &str,
        msg_id: &str,
    ) -> Result<ConsumeMessageDirectlyResult> {
        let request = RemotingCommand::request(request_code::CONSUME_MESSAGE_DIRECTLY).with_header(
            &ConsumeMessageDirectlyResultRequestHeader {
                consumer_group: group.to_owned(),
                client_id: client_id.map(str::to_owned),
                msg_id: Some(msg_id.to_owned()),
                broker_name: None,
                topic: Some(topic.to_owned()),
            },
        );
        let response = expect_success(
            self.instance()?
                .invoke_timeout(addr, request, CONSUME_DIRECTLY_TIMEOUT)
                .await?,
        )?;
        ConsumeMessageDirectlyResult::decode(&response.body)
            .map_err(|e| body_error("consume directly result", e))
    }

    /// CLONE_GROUP_OFFSET on one broker.
    pub async fn clone_group_offset(
        &self,
        addr: &str,
        src_group: &str,
        dest_group: &str,
        topic: Option<&str>,
        offline: bool,
    ) -> Result<()> {
        let request = RemotingCommand::request(request_code::CLONE_GROUP_OFFSET).with_header(
            &CloneGroupOffsetRequestHeader {
                src_group: src_group.to_owned(),
                dest_group: dest_group.to_owned(),
                topic: topic.map(str::to_owned),
                offline: Some(offline),
            },
        );
        self.call_broker(addr, request).await?;
        Ok(())
    }

    /// GET_CONSUMER_CONNECTION_LIST on one broker.
    pub async fn consumer_connection(&self, addr: &str, group: &str) -> Result<ConsumerConnection> {
        let request = RemotingCommand::request(request_code::GET_CONSUMER_CONNECTION_LIST)
            .with_header(&ConsumerGroupHeader {
                consumer_group: group.to_owned(),
            });
        let response = self.call_broker(addr, request).await?;
        decode_json(&response.body).map_err(|e| body_error("consumer connection", e))
    }

    /// GET_PRODUCER_CONNECTION_LIST on one broker.
    pub async fn producer_connection(&self, addr: &str, group: &str) -> Result<ProducerConnection> {
        let request = RemotingCommand::request(request_code::GET_PRODUCER_CONNECTION_LIST)
            .with_header(&ProducerGroupHeader {
                producer_group: group.to_owned(),
            });
        let response = self.call_broker(addr, request).await?;
        decode_json(&response.body).map_err(|e| body_error("producer connection", e))
    }
}
