//! Bodies of the admin requests `mqadmin` sends: topic and consume
//! statistics, offset resets, consumer status and running info, broker
//! stats, connections and group lists.
//!
//! Those with maps keyed by [`MessageQueue`] are fastjson-shaped (see
//! [`crate::fastjson`]) and have `encode` / `decode`; the rest are plain
//! JSON through serde.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::body::{ConsumeFromWhere, ConsumeType, MessageModel, MessageQueue, SubscriptionData};
use crate::fastjson::{keyed_map, read_keyed_map, FastjsonError, Value};

/// The offsets of one queue (RocketMQ's `TopicOffset`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicOffset {
    pub min_offset: i64,
    pub max_offset: i64,
    pub last_update_timestamp: i64,
}

/// GET_TOPIC_STATS_INFO's answer (RocketMQ's `TopicStatsTable`).
///
/// Wire: `{"offsetTable":{{MessageQueue}:{TopicOffset},...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicStatsTable {
    pub offset_table: BTreeMap<MessageQueue, TopicOffset>,
}

impl TopicStatsTable {
    pub fn encode(&self) -> Vec<u8> {
        Value::object([("offsetTable", keyed_map(&self.offset_table))])
            .to_text()
            .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, FastjsonError> {
        let v = Value::parse_bytes(bytes)?;
        Ok(TopicStatsTable {
            offset_table: read_keyed_map(v.get("offsetTable"))?.into_iter().collect(),
        })
    }
}

/// A group's position in one queue (RocketMQ's `OffsetWrapper`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OffsetWrapper {
    pub broker_offset: i64,
    pub consumer_offset: i64,
    /// Store time of the last consumed message (ms), 0 if none.
    pub last_timestamp: i64,
}

/// GET_CONSUME_STATS's answer (RocketMQ's `ConsumeStats`).
///
/// Wire: `{"consumeTps":1.5,"offsetTable":{{MessageQueue}:{OffsetWrapper}}}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumeStats {
    pub offset_table: BTreeMap<MessageQueue, OffsetWrapper>,
    pub consume_tps: f64,
}

impl ConsumeStats {
    /// Messages stored but not consumed yet, over every queue.
    pub fn total_diff(&self) -> i64 {
        self.offset_table
            .values()
            .map(|o| (o.broker_offset - o.consumer_offset).max(0))
            .sum()
    }

    fn to_value(&self) -> Value {
        Value::object([
            ("consumeTps", Value::from_serde(&self.consume_tps)),
            ("offsetTable", keyed_map(&self.offset_table)),
        ])
    }

    fn from_value(v: &Value) -> Result<Self, FastjsonError> {
        Ok(ConsumeStats {
            offset_table: read_keyed_map(v.get("offsetTable"))?.into_iter().collect(),
            consume_tps: match v.get("consumeTps") {
                Some(tps) => tps.to_serde()?,
                None => 0.0,
            },
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        self.to_value().to_text().into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, FastjsonError> {
        Self::from_value(&Value::parse_bytes(bytes)?)
    }
}

/// GET_BROKER_CONSUME_STATS's answer (RocketMQ's `ConsumeStatsList`): per
/// group, the stats of each topic it consumes.
///
/// Wire: `{"brokerAddr":"..","consumeStatsList":[{"group":[{ConsumeStats}]}],"totalDiff":0}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumeStatsList {
    pub consume_stats_list: Vec<BTreeMap<String, Vec<ConsumeStats>>>,
    pub broker_addr: String,
    pub total_diff: i64,
}

impl ConsumeStatsList {
    pub fn encode(&self) -> Vec<u8> {
        let list = Value::Array(
            self.consume_stats_list
                .iter()
                .map(|groups| {
                    Value::object(groups.iter().map(|(group, stats)| {
                        (
                            group.as_str(),
                            Value::Array(stats.iter().map(ConsumeStats::to_value).collect()),
                        )
                    }))
                })
                .collect(),
        );
        Value::object([
            ("brokerAddr", Value::String(self.broker_addr.clone())),
            ("consumeStatsList", list),
            ("totalDiff", Value::from_serde(&self.total_diff)),
        ])
        .to_text()
        .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, FastjsonError> {
        let v = Value::parse_bytes(bytes)?;
        let mut list = Vec::new();
        if let Some(Value::Array(items)) = v.get("consumeStatsList") {
            for item in items {
                let mut groups = BTreeMap::new();
                let Value::Object(entries) = item else {
                    return Err(FastjsonError::Shape("consumeStatsList item".into()));
                };
                for (group, stats) in entries {
                    let group: String = group.to_serde()?;
                    let Value::Array(stats) = stats else {
                        return Err(FastjsonError::Shape("consume stats of a group".into()));
                    };
                    let stats = stats
                        .iter()
                        .map(ConsumeStats::from_value)
                        .collect::<Result<_, _>>()?;
                    groups.insert(group, stats);
                }
                list.push(groups);
            }
        }
        Ok(ConsumeStatsList {
            consume_stats_list: list,
            broker_addr: v
                .get("brokerAddr")
                .map(Value::to_serde)
                .transpose()?
                .unwrap_or_default(),
            total_diff: v
                .get("totalDiff")
                .map(Value::to_serde)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// A map from queue to offset: RESET_CONSUMER_CLIENT_OFFSET's and
/// INVOKE_BROKER_TO_RESET_OFFSET's body (RocketMQ's `ResetOffsetBody`).
///
/// Wire: `{"offsetTable":{{MessageQueue}:12}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResetOffsetBody {
    pub offset_table: BTreeMap<MessageQueue, i64>,
}

impl ResetOffsetBody {
    pub fn encode(&self) -> Vec<u8> {
        Value::object([("offsetTable", keyed_map(&self.offset_table))])
            .to_text()
            .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, FastjsonError> {
        let v = Value::parse_bytes(bytes)?;
        Ok(ResetOffsetBody {
            offset_table: read_keyed_map(v.get("offsetTable"))?.into_iter().collect(),
        })
    }
}

/// INVOKE_BROKER_TO_GET_CONSUMER_STATUS's answer and
/// GET_CONSUMER_STATUS_FROM_CLIENT's (RocketMQ's `GetConsumerStatusBody`):
/// a client answers `messageQueueTable`; the broker gathers them by client
/// id in `consumerTable`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetConsumerStatusBody {
    pub message_queue_table: BTreeMap<MessageQueue, i64>,
    pub consumer_table: BTreeMap<String, BTreeMap<MessageQueue, i64>>,
}

impl GetConsumerStatusBody {
    pub fn encode(&self) -> Vec<u8> {
        Value::object([
            ("consumerTable", {
                Value::object(
                    self.consumer_table
                        .iter()
                        .map(|(id, table)| (id.as_str(), keyed_map(table))),
                )
            }),
            ("messageQueueTable", keyed_map(&self.message_queue_table)),
        ])
        .to_text()
        .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, FastjsonError> {
        let v = Value::parse_bytes(bytes)?;
        let mut consumer_table = BTreeMap::new();
        if let Some(Value::Object(entries)) = v.get("consumerTable") {
            for (id, table) in entries {
                consumer_table.insert(
                    id.to_serde::<String>()?,
                    read_keyed_map(Some(table))?.into_iter().collect(),
                );
            }
        }
        Ok(GetConsumerStatusBody {
            message_queue_table: read_keyed_map(v.get("messageQueueTable"))?
                .into_iter()
                .collect(),
            consumer_table,
        })
    }
}

/// A consumer's view of one of its queues (RocketMQ's `ProcessQueueInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProcessQueueInfo {
    pub commit_offset: i64,
    pub cached_msg_min_offset: i64,
    pub cached_msg_max_offset: i64,
    pub cached_msg_count: i32,
    pub cached_msg_size_in_mi_b: i32,
    pub locked: bool,
    pub droped: bool,
    pub last_pull_timestamp: i64,
    pub last_consume_timestamp: i64,
}

/// Consumption rates of one topic (RocketMQ's `ConsumeStatus`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumeStatus {
    #[serde(rename = "pullRT")]
    pub pull_rt: f64,
    #[serde(rename = "pullTPS")]
    pub pull_tps: f64,
    #[serde(rename = "consumeRT")]
    pub consume_rt: f64,
    #[serde(rename = "consumeOKTPS")]
    pub consume_ok_tps: f64,
    #[serde(rename = "consumeFailedTPS")]
    pub consume_failed_tps: f64,
    #[serde(rename = "consumeFailedMsgs")]
    pub consume_failed_msgs: i64,
}

/// GET_CONSUMER_RUNNING_INFO's answer (RocketMQ's `ConsumerRunningInfo`).
///
/// Wire: `{"jstack":..,"mqTable":{{MessageQueue}:{ProcessQueueInfo}},
/// "properties":{..},"statusTable":{topic:{ConsumeStatus}},"subscriptionSet":[..]}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumerRunningInfo {
    pub properties: BTreeMap<String, String>,
    pub subscription_set: Vec<SubscriptionData>,
    pub mq_table: BTreeMap<MessageQueue, ProcessQueueInfo>,
    pub status_table: BTreeMap<String, ConsumeStatus>,
    pub jstack: Option<String>,
}

impl ConsumerRunningInfo {
    pub fn encode(&self) -> Vec<u8> {
        let mut entries = vec![
            ("mqTable", keyed_map(&self.mq_table)),
            ("properties", Value::from_serde(&self.properties)),
            ("statusTable", Value::from_serde(&self.status_table)),
            ("subscriptionSet", Value::from_serde(&self.subscription_set)),
        ];
        if let Some(jstack) = &self.jstack {
            entries.insert(0, ("jstack", Value::String(jstack.clone())));
        }
        Value::object(entries).to_text().into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, FastjsonError> {
        let v = Value::parse_bytes(bytes)?;
        let get = |key: &str| -> Result<Option<Value>, FastjsonError> {
            Ok(v.get(key).filter(|x| **x != Value::Null).cloned())
        };
        Ok(ConsumerRunningInfo {
            properties: get("properties")?
                .map(|p| p.to_serde())
                .transpose()?
                .unwrap_or_default(),
            subscription_set: get("subscriptionSet")?
                .map(|p| p.to_serde())
                .transpose()?
                .unwrap_or_default(),
            mq_table: read_keyed_map(v.get("mqTable"))?.into_iter().collect(),
            status_table: get("statusTable")?
                .map(|p| p.to_serde())
                .transpose()?
                .unwrap_or_default(),
            jstack: get("jstack")?.map(|p| p.to_serde()).transpose()?,
        })
    }
}

/// Property keys of [`ConsumerRunningInfo::properties`], as RocketMQ names them.
pub mod running_info {
    pub const PROP_NAMESERVER_ADDR: &str = "PROP_NAMESERVER_ADDR";
    pub const PROP_THREADPOOL_CORE_SIZE: &str = "PROP_THREADPOOL_CORE_SIZE";
    pub const PROP_CONSUME_ORDERLY: &str = "PROP_CONSUMEORDERLY";
    pub const PROP_CONSUME_TYPE: &str = "PROP_CONSUME_TYPE";
    pub const PROP_CLIENT_VERSION: &str = "PROP_CLIENT_VERSION";
    pub const PROP_CONSUMER_START_TIMESTAMP: &str = "PROP_CONSUMER_START_TIMESTAMP";
}

/// One window of a broker statistic (RocketMQ's `BrokerStatsItem`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BrokerStatsItem {
    pub sum: i64,
    pub tps: f64,
    pub avgpt: f64,
}

/// VIEW_BROKER_STATS_DATA's answer (RocketMQ's `BrokerStatsData`): the last
/// minute, hour and day of one statistic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerStatsData {
    pub stats_minute: BrokerStatsItem,
    pub stats_hour: BrokerStatsItem,
    pub stats_day: BrokerStatsItem,
}

/// QUERY_TOPIC_CONSUME_BY_WHO's answer (RocketMQ's `GroupList`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupList {
    pub group_list: BTreeSet<String>,
}

/// One client connection (RocketMQ's `Connection`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Connection {
    pub client_id: String,
    pub client_addr: String,
    pub language: String,
    pub version: i32,
}

/// GET_CONSUMER_CONNECTION_LIST's answer (RocketMQ's `ConsumerConnection`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerConnection {
    pub connection_set: Vec<Connection>,
    pub subscription_table: BTreeMap<String, SubscriptionData>,
    pub consume_type: ConsumeType,
    pub message_model: MessageModel,
    pub consume_from_where: ConsumeFromWhere,
}

/// GET_PRODUCER_CONNECTION_LIST's answer (RocketMQ's `ProducerConnection`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerConnection {
    pub connection_set: Vec<Connection>,
}

/// One half message still waiting for its outcome, as operators see it.
///
/// Fields added later default when absent, so older answers still parse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PendingHalf {
    /// Offset in the half topic's queue 0.
    pub queue_offset: u64,
    pub commit_log_offset: i64,
    /// The topic the message is for (its `REAL_TOPIC`).
    pub topic: String,
    pub producer_group: String,
    pub msg_id: String,
    /// The message's `KEYS`, empty when it has none.
    pub keys: String,
    /// When the broker stored the half message (ms).
    pub store_timestamp: i64,
    /// How long ago it was stored when the broker answered (ms).
    pub age_ms: i64,
    /// Check-backs (CHECK_TRANSACTION_STATE) the broker sent for it so far.
    pub check_times: u32,
}

/// GET_TRANSACTION_HALF_STATUS's answer (ours; RocketMQ has no such request).
///
/// Wire: plain JSON, `{"frontier":0,"pending":[{PendingHalf},...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HalfStatus {
    /// Every half queue offset below this has an outcome.
    pub frontier: u64,
    /// Oldest first.
    pub pending: Vec<PendingHalf>,
}

/// The statistic names VIEW_BROKER_STATS_DATA knows (RocketMQ's
/// `BrokerStatsManager` names).
pub mod stats_name {
    /// Messages put to a topic; key: the topic.
    pub const TOPIC_PUT_NUMS: &str = "TOPIC_PUT_NUMS";
    /// Bytes put to a topic; key: the topic.
    pub const TOPIC_PUT_SIZE: &str = "TOPIC_PUT_SIZE";
    /// Messages a group got from a topic; key: `topic@group`.
    pub const GROUP_GET_NUMS: &str = "GROUP_GET_NUMS";
    /// Bytes a group got from a topic; key: `topic@group`.
    pub const GROUP_GET_SIZE: &str = "GROUP_GET_SIZE";
    /// Messages put to the broker; key: the cluster name.
    pub const BROKER_PUT_NUMS: &str = "BROKER_PUT_NUMS";
    /// Messages got from the broker; key: the cluster name.
    pub const BROKER_GET_NUMS: &str = "BROKER_GET_NUMS";
}

/// How a listener took a message it was handed directly (RocketMQ's
/// `CMResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(non_camel_case_types)]
pub enum CMResult {
    /// Consumed.
    CR_SUCCESS,
    /// The listener asked to try again later.
    CR_LATER,
    /// An ordered listener rolled back.
    CR_ROLLBACK,
    /// An ordered listener committed.
    CR_COMMIT,
    /// The listener failed (panicked); `remark` says how.
    CR_THROW_EXCEPTION,
    /// The listener gave no verdict.
    CR_RETURN_NULL,
}

/// CONSUME_MESSAGE_DIRECTLY's answer (RocketMQ's
/// `ConsumeMessageDirectlyResult`).
///
/// Wire: plain JSON, `{"order":false,"autoCommit":true,
/// "consumeResult":"CR_SUCCESS","remark":null,"spentTimeMills":3}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumeMessageDirectlyResult {
    /// The consumer is an ordered one.
    pub order: bool,
    pub auto_commit: bool,
    pub consume_result: Option<CMResult>,
    pub remark: Option<String>,
    /// How long the listener took (ms; RocketMQ's spelling).
    pub spent_time_mills: i64,
}

impl Default for ConsumeMessageDirectlyResult {
    fn default() -> Self {
        ConsumeMessageDirectlyResult {
            order: false,
            auto_commit: true,
            consume_result: None,
            remark: None,
            spent_time_mills: 0,
        }
    }
}

impl ConsumeMessageDirectlyResult {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(id: i32) -> MessageQueue {
        MessageQueue {
            topic: "T".into(),
            broker_name: "b".into(),
            queue_id: id,
        }
    }

    #[test]
    fn topic_stats_golden_and_round_trip() {
        let mut t = TopicStatsTable::default();
        t.offset_table.insert(
            mq(0),
            TopicOffset {
                min_offset: 1,
                max_offset: 5,
                last_update_timestamp: 9,
            },
        );
        let bytes = t.encode();
        // Field names sorted, as fastjson writes them.
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"lastUpdateTimestamp":9,"maxOffset":5,"minOffset":1}}}"#
        );
        assert_eq!(TopicStatsTable::decode(&bytes).unwrap(), t);
        for end in 0..bytes.len() {
            assert!(TopicStatsTable::decode(&bytes[..end]).is_err());
        }
    }

    #[test]
    fn consume_stats_list_from_java() {
        let java = r#"{"brokerAddr":"10.0.0.1:10911","consumeStatsList":[{"g1":[{"consumeTps":0.5,"offsetTable":{{"brokerName":"b","queueId":1,"topic":"T"}:{"brokerOffset":10,"consumerOffset":4,"lastTimestamp":7}}}]}],"totalDiff":6}"#;
        let list = ConsumeStatsList::decode(java.as_bytes()).unwrap();
        assert_eq!(list.total_diff, 6);
        let stats = &list.consume_stats_list[0]["g1"][0];
        assert_eq!(stats.total_diff(), 6);
        assert_eq!(stats.offset_table[&mq(1)].consumer_offset, 4);
        assert_eq!(ConsumeStatsList::decode(&list.encode()).unwrap(), list);
    }

    #[test]
    fn reset_status_and_running_info_round_trip() {
        let reset = ResetOffsetBody {
            offset_table: [(mq(0), 3), (mq(2), 0)].into(),
        };
        assert_eq!(ResetOffsetBody::decode(&reset.encode()).unwrap(), reset);
        let status = GetConsumerStatusBody {
            message_queue_table: [(mq(1), 2)].into(),
            consumer_table: [("c@1".to_owned(), [(mq(0), 4)].into())].into(),
        };
        assert_eq!(
            GetConsumerStatusBody::decode(&status.encode()).unwrap(),
            status
        );
        let info = ConsumerRunningInfo {
            properties: [(
                "PROP_CONSUME_TYPE".to_owned(),
                "CONSUME_PASSIVELY".to_owned(),
            )]
            .into(),
            subscription_set: vec![SubscriptionData::parse("T", "*", 1)],
            mq_table: [(
                mq(0),
                ProcessQueueInfo {
                    commit_offset: 3,
                    ..ProcessQueueInfo::default()
                },
            )]
            .into(),
            status_table: [("T".to_owned(), ConsumeStatus::default())].into(),
            jstack: None,
        };
        assert_eq!(ConsumerRunningInfo::decode(&info.encode()).unwrap(), info);
        assert!(ConsumerRunningInfo::decode(b"{\"mqTable\":[1]}").is_err());
    }

    #[test]
    fn half_status_reads_answers_without_the_newer_fields() {
        let old = br#"{"frontier":3,"pending":[{"queueOffset":4,"commitLogOffset":99,"topic":"T","producerGroup":"g","msgId":"M","ageMs":7,"checkTimes":2}]}"#;
        let status: HalfStatus = serde_json::from_slice(old).unwrap();
        assert_eq!(status.frontier, 3);
        assert_eq!(status.pending[0].check_times, 2);
        assert_eq!(status.pending[0].keys, "");
        assert_eq!(status.pending[0].store_timestamp, 0);
        let back: HalfStatus =
            serde_json::from_slice(&serde_json::to_vec(&status).unwrap()).unwrap();
        assert_eq!(back, status);
    }

    #[test]
    fn consume_directly_result_golden_and_from_java() {
        let result = ConsumeMessageDirectlyResult {
            consume_result: Some(CMResult::CR_LATER),
            spent_time_mills: 3,
            ..ConsumeMessageDirectlyResult::default()
        };
        assert_eq!(
            std::str::from_utf8(&result.encode()).unwrap(),
            r#"{"order":false,"autoCommit":true,"consumeResult":"CR_LATER","remark":null,"spentTimeMills":3}"#
        );
        let java = br#"{"autoCommit":true,"consumeResult":"CR_THROW_EXCEPTION","order":true,"remark":"NullPointerException","spentTimeMills":12}"#;
        let back = ConsumeMessageDirectlyResult::decode(java).unwrap();
        assert_eq!(back.consume_result, Some(CMResult::CR_THROW_EXCEPTION));
        assert!(back.order);
        assert_eq!(back.remark.as_deref(), Some("NullPointerException"));
        assert!(ConsumeMessageDirectlyResult::decode(br#"{"consumeResult":"CR_MAYBE"}"#).is_err());
    }
}
