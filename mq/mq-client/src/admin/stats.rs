//! Statistics: queue offsets of a topic, a group's progress, a broker's
//! consumer backlog, put/get counters, who consumes a topic.

use mq_protocol::admin_body::{
    BrokerStatsData, ConsumeStats, ConsumeStatsList, GroupList, TopicStatsTable,
};
use mq_protocol::header::{
    GetConsumeStatsInBrokerHeader, GetConsumeStatsRequestHeader, TopicHeader,
    ViewBrokerStatsDataRequestHeader,
};
use mq_protocol::route::decode_json;
use mq_protocol::{request_code, RemotingCommand};

use super::AdminClient;
use crate::error::{ClientError, Result};

fn body_error(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::InvalidArgument(format!("bad {what} body: {e}"))
}

impl AdminClient {
    /// GET_TOPIC_STATS_INFO: min/max offset and last store time of each
    /// queue of `topic` on the broker at `addr`.
    pub async fn topic_stats(&self, addr: &str, topic: &str) -> Result<TopicStatsTable> {
        let request = RemotingCommand::request(request_code::GET_TOPIC_STATS_INFO).with_header(
            &TopicHeader {
                topic: topic.to_owned(),
            },
        );
        let response = self.call_broker(addr, request).await?;
        TopicStatsTable::decode(&response.body).map_err(|e| body_error("topic stats", e))
    }

    /// GET_CONSUME_STATS: the group's offsets against the broker's, for one
    /// topic or every topic the group consumes on that broker.
    pub async fn consume_stats(
        &self,
        addr: &str,
        group: &str,
        topic: Option<&str>,
    ) -> Result<ConsumeStats> {
        let request = RemotingCommand::request(request_code::GET_CONSUME_STATS).with_header(
            &GetConsumeStatsRequestHeader {
                consumer_group: group.to_owned(),
                topic: topic.map(str::to_owned),
            },
        );
        let response = self.call_broker(addr, request).await?;
        ConsumeStats::decode(&response.body).map_err(|e| body_error("consume stats", e))
    }

    /// GET_BROKER_CONSUME_STATS: every group's stats on the broker.
    pub async fn broker_consume_stats(
        &self,
        addr: &str,
        is_order: bool,
    ) -> Result<ConsumeStatsList> {
        let request = RemotingCommand::request(request_code::GET_BROKER_CONSUME_STATS)
            .with_header(&GetConsumeStatsInBrokerHeader { is_order });
        let response = self.call_broker(addr, request).await?;
        ConsumeStatsList::decode(&response.body).map_err(|e| body_error("consume stats list", e))
    }

    /// VIEW_BROKER_STATS_DATA, e.g. (`TOPIC_PUT_NUMS`, topic) or
    /// (`GROUP_GET_NUMS`, `topic@group`). `None` when the broker never
    /// counted it.
    pub async fn view_stats(
        &self,
        addr: &str,
        name: &str,
        key: &str,
    ) -> Result<Option<BrokerStatsData>> {
        let request = RemotingCommand::request(request_code::VIEW_BROKER_STATS_DATA).with_header(
            &ViewBrokerStatsDataRequestHeader {
                stats_name: name.to_owned(),
                stats_key: key.to_owned(),
            },
        );
        let response = self.instance()?.invoke(addr, request).await?;
        if response.code != i32::from(mq_protocol::ResponseCode::SUCCESS) {
            return Ok(None);
        }
        Ok(Some(
            decode_json(&response.body).map_err(|e| body_error("stats", e))?,
        ))
    }

    /// QUERY_TOPIC_CONSUME_BY_WHO on one broker.
    pub async fn topic_consumed_by(&self, addr: &str, topic: &str) -> Result<GroupList> {
        let request = RemotingCommand::request(request_code::QUERY_TOPIC_CONSUME_BY_WHO)
            .with_header(&TopicHeader {
                topic: topic.to_owned(),
            });
        let response = self.call_broker(addr, request).await?;
        decode_json(&response.body).map_err(|e| body_error("group list", e))
    }
}
