//! Route and registration data exchanged with the name server, as JSON
//! bodies.
//!
//! Field names are RocketMQ 4.x's (`TopicRouteData`, `QueueData`,
//! `BrokerData`, `ClusterInfo`, `TopicList`, `KVTable`, `TopicConfig`,
//! `TopicConfigSerializeWrapper`, `RegisterBrokerBody`, `DataVersion`), so
//! the broker, the client and Java peers read each other's bodies.
//!
//! Java writes these bodies with fastjson, which leaves numeric map keys
//! unquoted (`"brokerAddrs":{0:"10.0.0.1:10911"}`). That is not JSON, so
//! [`decode_json`] retries with [`fastjson::quote_numeric_keys`] when a
//! strict parse fails. We always write standard JSON ([`encode_json`]),
//! which fastjson reads.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::fastjson;

/// The broker id of a master; slaves have ids above 0.
pub const MASTER_ID: i64 = 0;

/// The KV namespace whose entries give a topic's `orderTopicConf`.
pub const NAMESPACE_ORDER_TOPIC_CONFIG: &str = "ORDER_TOPIC_CONFIG";

/// Permission bits of topics and queue data (RocketMQ's `PermName`).
pub mod perm {
    pub const PRIORITY: i32 = 1 << 3;
    pub const READ: i32 = 1 << 2;
    pub const WRITE: i32 = 1 << 1;
    pub const INHERIT: i32 = 1;

    pub fn is_readable(perm: i32) -> bool {
        perm & READ == READ
    }

    pub fn is_writeable(perm: i32) -> bool {
        perm & WRITE == WRITE
    }

    /// `perm` as RocketMQ prints it, e.g. `RW-` or `R--`.
    pub fn to_string(perm: i32) -> String {
        let mut s = String::with_capacity(3);
        s.push(if is_readable(perm) { 'R' } else { '-' });
        s.push(if is_writeable(perm) { 'W' } else { '-' });
        s.push(if perm & INHERIT == INHERIT { 'X' } else { '-' });
        s
    }
}

/// Which version of a broker's topic configuration the name server holds.
/// A broker bumps it on every topic change; equal versions mean nothing to
/// update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataVersion {
    pub timestamp: i64,
    pub counter: i64,
}

impl DataVersion {
    /// A version stamped `now_millis` with counter 0.
    pub fn new(now_millis: i64) -> Self {
        DataVersion {
            timestamp: now_millis,
            counter: 0,
        }
    }

    /// The next version: counter + 1, stamped `now_millis`.
    pub fn next(&mut self, now_millis: i64) {
        self.timestamp = now_millis;
        self.counter += 1;
    }
}

/// How a topic's tags are filtered (RocketMQ's `TopicFilterType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TopicFilterType {
    #[default]
    SingleTag,
    MultiTag,
}

/// Default queue counts of a topic, as in RocketMQ's `TopicConfig`.
pub const DEFAULT_READ_QUEUE_NUMS: i32 = 16;
pub const DEFAULT_WRITE_QUEUE_NUMS: i32 = 16;

/// One topic of a broker (RocketMQ's `TopicConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfig {
    pub topic_name: String,
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
    pub perm: i32,
    pub topic_filter_type: TopicFilterType,
    pub topic_sys_flag: i32,
    pub order: bool,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            topic_name: String::new(),
            read_queue_nums: DEFAULT_READ_QUEUE_NUMS,
            write_queue_nums: DEFAULT_WRITE_QUEUE_NUMS,
            perm: perm::READ | perm::WRITE,
            topic_filter_type: TopicFilterType::SingleTag,
            topic_sys_flag: 0,
            order: false,
        }
    }
}

impl TopicConfig {
    /// A topic with default settings.
    pub fn new(topic_name: impl Into<String>) -> Self {
        TopicConfig {
            topic_name: topic_name.into(),
            ..TopicConfig::default()
        }
    }
}

/// All topics of a broker and their version (RocketMQ's
/// `TopicConfigSerializeWrapper`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfigSerializeWrapper {
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    pub data_version: DataVersion,
}

/// The body of REGISTER_BROKER (RocketMQ's `RegisterBrokerBody`, uncompressed
/// form).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisterBrokerBody {
    pub topic_config_serialize_wrapper: TopicConfigSerializeWrapper,
    pub filter_server_list: Vec<String>,
}

/// One broker group's share of a topic (RocketMQ's `QueueData`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueueData {
    pub broker_name: String,
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
    pub perm: i32,
    /// Spelled `topicSynFlag` by RocketMQ releases before 4.9.
    #[serde(alias = "topicSynFlag")]
    pub topic_sys_flag: i32,
}

impl QueueData {
    /// The queue data a master's topic config gives its broker group.
    pub fn from_topic_config(broker_name: &str, config: &TopicConfig) -> Self {
        QueueData {
            broker_name: broker_name.to_owned(),
            read_queue_nums: config.read_queue_nums,
            write_queue_nums: config.write_queue_nums,
            perm: config.perm,
            topic_sys_flag: config.topic_sys_flag,
        }
    }
}

/// A broker group: the brokers sharing one `brokerName`, by broker id (0 is
/// the master). RocketMQ's `BrokerData`.
///
/// Serialized by hand (below) to add `enableActingMaster`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerData {
    pub cluster: String,
    pub broker_name: String,
    pub broker_addrs: BTreeMap<i64, String>,
}

/// Writes RocketMQ 5's `enableActingMaster: false` beside the 4.x fields.
/// Java 4.x readers ignore it, but clients modelled on 5.x require it: the
/// `rocketmq-client-rust` crate declares it as a plain `bool` without a
/// default, so a route without it fails to parse ("missing field
/// `enableActingMaster`") and every send fails. We never act as master for
/// another broker, hence always `false`.
impl Serialize for BrokerData {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            cluster: &'a str,
            broker_name: &'a str,
            broker_addrs: &'a BTreeMap<i64, String>,
            enable_acting_master: bool,
        }
        Wire {
            cluster: &self.cluster,
            broker_name: &self.broker_name,
            broker_addrs: &self.broker_addrs,
            enable_acting_master: false,
        }
        .serialize(serializer)
    }
}

impl BrokerData {
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&MASTER_ID).map(String::as_str)
    }

    /// The master's address, or else the address with the lowest id.
    pub fn select_broker_addr(&self) -> Option<&str> {
        self.master_addr()
            .or_else(|| self.broker_addrs.values().next().map(String::as_str))
    }
}

/// The route of one topic (RocketMQ's `TopicRouteData`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicRouteData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_topic_conf: Option<String>,
    pub queue_datas: Vec<QueueData>,
    pub broker_datas: Vec<BrokerData>,
    /// Filter servers by broker address.
    pub filter_server_table: BTreeMap<String, Vec<String>>,
}

/// All broker groups and clusters (RocketMQ's `ClusterInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterInfo {
    /// Broker groups by broker name.
    pub broker_addr_table: BTreeMap<String, BrokerData>,
    /// Broker names by cluster name.
    pub cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
}

/// A set of topic names (RocketMQ's `TopicList`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicList {
    pub topic_list: BTreeSet<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_addr: Option<String>,
}

/// The entries of one KV namespace (RocketMQ's `KVTable`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KvTable {
    pub table: BTreeMap<String, String>,
}

/// Standard JSON for a body.
pub fn encode_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("route types serialize to JSON")
}

/// Decodes a JSON body, accepting fastjson's unquoted numeric map keys.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(strict) => {
            let Ok(text) = std::str::from_utf8(bytes) else {
                return Err(strict);
            };
            match fastjson::quote_numeric_keys(text) {
                Ok(Cow::Owned(fixed)) => serde_json::from_str(&fixed),
                // Nothing to quote, or not even fastjson: the strict error says why.
                Ok(Cow::Borrowed(_)) | Err(_) => Err(strict),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastjson_route_data_decodes() {
        let body = br#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"DefaultCluster"}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#;
        let route: TopicRouteData = decode_json(body).unwrap();
        assert_eq!(route.broker_datas[0].master_addr(), Some("127.0.0.1:10911"));
        assert_eq!(route.broker_datas[0].broker_addrs[&1], "127.0.0.1:10921");
        assert_eq!(route.queue_datas[0].write_queue_nums, 4);
        assert_eq!(route.order_topic_conf, None);
        // What we write is standard JSON with quoted keys, and reads back.
        let ours = encode_json(&route);
        let text = String::from_utf8(ours.clone()).unwrap();
        assert!(
            text.contains(r#""brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.1:10921"}"#),
            "{text}"
        );
        assert_eq!(
            serde_json::from_slice::<TopicRouteData>(&ours).unwrap(),
            route
        );
        // Only bare keys are quoted: strings that look like keys stay.
        let table: KvTable =
            decode_json(br#"{"table":{"k":"{0:1}","e":"\"{5:6}"},"n":{1 : 2}}"#).unwrap();
        assert_eq!(table.table["k"], "{0:1}");
        assert_eq!(table.table["e"], "\"{5:6}");
        let map: BTreeMap<i64, String> = decode_json(br#"{0:"a", 1 : "b",-1:"c"}"#).unwrap();
        assert_eq!(map[&-1], "c");
        // Empty and truncated input is an error, not a panic.
        for bad in ["", "{12", "{-"] {
            assert!(decode_json::<BTreeMap<i64, String>>(bad.as_bytes()).is_err());
        }
    }

    #[test]
    fn broker_data_carries_enable_acting_master_for_5x_clients() {
        let data = BrokerData {
            cluster: "c".into(),
            broker_name: "broker-a".into(),
            broker_addrs: BTreeMap::from([(0, "h:1".into())]),
        };
        let json: serde_json::Value = serde_json::from_slice(&encode_json(&data)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "cluster": "c",
                "brokerName": "broker-a",
                "brokerAddrs": {"0": "h:1"},
                "enableActingMaster": false
            })
        );
        // And it reads back, as do 4.x bodies without the field.
        assert_eq!(
            decode_json::<BrokerData>(&encode_json(&data)).unwrap(),
            data
        );
    }

    #[test]
    fn register_body_as_a_java_broker_sends_it() {
        let body = br#"{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":3,"stateVersion":0,"timestamp":1700000000000},"topicConfigTable":{"TopicTest":{"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"TopicTest","topicSysFlag":0,"writeQueueNums":4,"attributes":{}}}}}"#;
        let parsed: RegisterBrokerBody = decode_json(body).unwrap();
        let wrapper = &parsed.topic_config_serialize_wrapper;
        assert_eq!(
            wrapper.data_version,
            DataVersion {
                timestamp: 1_700_000_000_000,
                counter: 3
            }
        );
        let topic = &wrapper.topic_config_table["TopicTest"];
        assert_eq!(topic.read_queue_nums, 4);
        assert_eq!(topic.topic_filter_type, TopicFilterType::SingleTag);
        let round: RegisterBrokerBody = decode_json(&encode_json(&parsed)).unwrap();
        assert_eq!(round, parsed);
    }

    #[test]
    fn old_queue_data_spelling_and_defaults() {
        let qd: QueueData =
            decode_json(br#"{"brokerName":"b","perm":6,"topicSynFlag":2}"#).unwrap();
        assert_eq!(qd.topic_sys_flag, 2);
        let tc: TopicConfig = decode_json(br#"{"topicName":"T"}"#).unwrap();
        assert_eq!(tc, TopicConfig::new("T"));
        assert_eq!(tc.perm, perm::READ | perm::WRITE);
    }

    #[test]
    fn cluster_info_topic_list_and_kv_table_shapes() {
        let mut info = ClusterInfo::default();
        info.broker_addr_table.insert(
            "broker-a".into(),
            BrokerData {
                cluster: "c".into(),
                broker_name: "broker-a".into(),
                broker_addrs: BTreeMap::from([(0, "h:1".into())]),
            },
        );
        info.cluster_addr_table
            .insert("c".into(), BTreeSet::from(["broker-a".to_string()]));
        let json: serde_json::Value = serde_json::from_slice(&encode_json(&info)).unwrap();
        assert_eq!(
            json["brokerAddrTable"]["broker-a"]["brokerAddrs"]["0"],
            "h:1"
        );
        assert_eq!(json["clusterAddrTable"]["c"][0], "broker-a");

        let list = TopicList {
            topic_list: BTreeSet::from(["A".to_string()]),
            broker_addr: None,
        };
        assert_eq!(
            String::from_utf8(encode_json(&list)).unwrap(),
            r#"{"topicList":["A"]}"#
        );
        let kv = KvTable {
            table: BTreeMap::from([("k".to_string(), "v".to_string())]),
        };
        assert_eq!(
            String::from_utf8(encode_json(&kv)).unwrap(),
            r#"{"table":{"k":"v"}}"#
        );
        assert!(decode_json::<KvTable>(b"{not json").is_err());
    }

    #[test]
    fn perm_strings() {
        assert_eq!(perm::to_string(6), "RW-");
        assert_eq!(perm::to_string(4), "R--");
        assert!(!perm::is_writeable(4));
    }
}
