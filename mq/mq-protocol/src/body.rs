//! JSON bodies of the client ↔ broker requests: heartbeats, queue locks,
//! consumer lists. Field names are RocketMQ's; unknown fields are ignored and
//! missing ones take their defaults, as fastjson does.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::filter::ExpressionType;

/// A queue of a topic on one broker group (RocketMQ's `MessageQueue`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageQueue {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
}

/// How a group consumes (RocketMQ's `ConsumeType`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsumeType {
    #[serde(rename = "CONSUME_ACTIVELY")]
    ConsumeActively,
    #[default]
    #[serde(rename = "CONSUME_PASSIVELY")]
    ConsumePassively,
    #[serde(rename = "CONSUME_POP")]
    ConsumePop,
}

/// Clustering (each message to one member) or broadcasting (to all).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageModel {
    Broadcasting,
    #[default]
    Clustering,
}

/// Where a new group starts (RocketMQ's `ConsumeFromWhere`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsumeFromWhere {
    #[default]
    ConsumeFromLastOffset,
    ConsumeFromFirstOffset,
    ConsumeFromTimestamp,
    #[serde(other)]
    Other,
}

/// One topic subscription of a consumer (RocketMQ's `SubscriptionData`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionData {
    pub class_filter_mode: bool,
    pub topic: String,
    /// The expression: for TAG, `*` or tags separated by `||`; for
    /// SQL92, the selector's text.
    pub sub_string: String,
    pub tags_set: BTreeSet<String>,
    pub code_set: BTreeSet<i32>,
    pub sub_version: i64,
    pub expression_type: String,
}

impl Default for SubscriptionData {
    fn default() -> Self {
        SubscriptionData {
            class_filter_mode: false,
            topic: String::new(),
            sub_string: "*".into(),
            tags_set: BTreeSet::new(),
            code_set: BTreeSet::new(),
            sub_version: 0,
            expression_type: "TAG".into(),
        }
    }
}

/// Java's `String.hashCode`, which RocketMQ uses as the tag code stored in
/// consume queues.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

impl SubscriptionData {
    /// A TAG subscription from an expression such as `*` or `TagA || TagB`.
    pub fn parse(topic: &str, expression: &str, sub_version: i64) -> Self {
        let expression = expression.trim();
        let mut data = SubscriptionData {
            topic: topic.to_owned(),
            sub_string: if expression.is_empty() {
                "*".into()
            } else {
                expression.to_owned()
            },
            sub_version,
            ..SubscriptionData::default()
        };
        if data.sub_string != "*" {
            for tag in data
                .sub_string
                .split("||")
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                data.tags_set.insert(tag.to_owned());
                data.code_set.insert(java_string_hash(tag));
            }
        }
        data
    }

    /// A subscription from an expression of `expression_type` (RocketMQ's
    /// `FilterAPI.build`): TAG (or none) as [`SubscriptionData::parse`];
    /// SQL92 with its text as the expression and no tags. Only the type
    /// is checked here (an unknown one, or an empty SQL92 expression, is
    /// refused); whether the SQL92 text parses is
    /// [`crate::filter::Selector::parse`]'s to say.
    pub fn build(
        topic: &str,
        expression: &str,
        expression_type: Option<&str>,
        sub_version: i64,
    ) -> Result<Self, String> {
        match ExpressionType::parse(expression_type)? {
            ExpressionType::Tag => Ok(Self::parse(topic, expression, sub_version)),
            ExpressionType::Sql92 if expression.trim().is_empty() => {
                Err("the SQL92 expression is empty".into())
            }
            ExpressionType::Sql92 => Ok(SubscriptionData {
                topic: topic.to_owned(),
                sub_string: expression.to_owned(),
                sub_version,
                expression_type: ExpressionType::SQL92.into(),
                ..SubscriptionData::default()
            }),
        }
    }

    /// The subscription's expression type, if it is one we know.
    pub fn expression_type(&self) -> Result<ExpressionType, String> {
        ExpressionType::parse(Some(&self.expression_type))
    }

    /// Whether the expression is a tag expression (RocketMQ's
    /// `ExpressionType.isTagType`: an empty type is TAG too).
    pub fn is_tag_type(&self) -> bool {
        self.expression_type() == Ok(ExpressionType::Tag)
    }

    /// Whether every tag matches (also true of a SQL92 subscription, which
    /// has no tags: its filter is the broker's to apply).
    pub fn is_all(&self) -> bool {
        self.sub_string.trim() == "*" || self.tags_set.is_empty()
    }

    /// Whether a message with `tags` matches (the exact check after the
    /// tag-code filter).
    pub fn matches_tag(&self, tags: Option<&str>) -> bool {
        self.is_all() || tags.is_some_and(|t| self.tags_set.contains(t))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerData {
    pub group_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerData {
    pub group_name: String,
    pub consume_type: ConsumeType,
    pub message_model: MessageModel,
    pub consume_from_where: ConsumeFromWhere,
    pub subscription_data_set: Vec<SubscriptionData>,
    pub unit_mode: bool,
}

/// The body of HEART_BEAT.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HeartbeatData {
    #[serde(rename = "clientID")]
    pub client_id: String,
    #[serde(rename = "producerDataSet")]
    pub producer_data_set: Vec<ProducerData>,
    #[serde(rename = "consumerDataSet")]
    pub consumer_data_set: Vec<ConsumerData>,
}

/// The body of CHECK_CLIENT_CONFIG: before it starts, a consumer asks a
/// broker of the topic whether it serves the subscription (a SQL92 one
/// needs the broker's property filter).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CheckClientRequestBody {
    pub client_id: String,
    pub group: String,
    pub subscription_data: Option<SubscriptionData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The body of LOCK_BATCH_MQ and UNLOCK_BATCH_MQ.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LockBatchRequestBody {
    pub consumer_group: String,
    pub client_id: String,
    pub only_this_broker: bool,
    pub mq_set: BTreeSet<MessageQueue>,
}

/// The response body of LOCK_BATCH_MQ: the queues now held by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LockBatchResponseBody {
    #[serde(rename = "lockOKMQSet")]
    pub lock_ok_mq_set: BTreeSet<MessageQueue>,
}

/// The response body of GET_CONSUMER_LIST_BY_GROUP.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerListBody {
    pub consumer_id_list: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::decode_json;

    #[test]
    fn java_hash_matches_known_values() {
        // "TagA".hashCode() and "".hashCode() in Java.
        assert_eq!(java_string_hash("TagA"), 2_598_919);
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(
            java_string_hash("ORDER_CANCEL"),
            "ORDER_CANCEL"
                .encode_utf16()
                .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
        );
    }

    #[test]
    fn subscription_expressions() {
        let all = SubscriptionData::parse("T", "*", 1);
        assert!(all.is_all() && all.matches_tag(None));
        let some = SubscriptionData::parse("T", "TagA || TagB", 1);
        assert_eq!(some.tags_set.len(), 2);
        assert!(some.code_set.contains(&java_string_hash("TagB")));
        assert!(some.matches_tag(Some("TagA")));
        assert!(!some.matches_tag(Some("TagC")));
        assert!(!some.matches_tag(None));
    }

    #[test]
    fn subscriptions_are_built_by_expression_type() {
        let tag = SubscriptionData::build("T", "A || B", None, 7).unwrap();
        assert_eq!(tag, SubscriptionData::parse("T", "A || B", 7));
        assert!(tag.is_tag_type());
        let tag = SubscriptionData::build("T", "*", Some("TAG"), 7).unwrap();
        assert!(tag.is_all() && tag.is_tag_type());
        let sql = SubscriptionData::build("T", "a > 5 || b", Some("SQL92"), 7).unwrap();
        assert_eq!(sql.expression_type, "SQL92");
        assert_eq!(sql.sub_string, "a > 5 || b");
        assert!(sql.tags_set.is_empty() && sql.code_set.is_empty());
        assert!(!sql.is_tag_type());
        assert_eq!(sql.expression_type(), Ok(ExpressionType::Sql92));
        assert!(SubscriptionData::build("T", " ", Some("SQL92"), 7).is_err());
        assert!(SubscriptionData::build("T", "a", Some("JAVA"), 7).is_err());
        // A heartbeat's empty type is TAG.
        let empty = SubscriptionData {
            expression_type: String::new(),
            ..SubscriptionData::default()
        };
        assert!(empty.is_tag_type());
    }

    #[test]
    fn a_java_heartbeat_decodes() {
        let json = r#"{"clientID":"192.168.0.2@1234","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"g","messageModel":"CLUSTERING","subscriptionDataSet":[{"classFilterMode":false,"codeSet":[2598919],"expressionType":"TAG","subString":"TagA","subVersion":1700000000000,"tagsSet":["TagA"],"topic":"TopicTest"}],"unitMode":false}],"producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"}],"heartbeatFingerprint":0,"withoutSub":false}"#;
        let hb: HeartbeatData = decode_json(json.as_bytes()).unwrap();
        assert_eq!(hb.client_id, "192.168.0.2@1234");
        let c = &hb.consumer_data_set[0];
        assert_eq!(c.message_model, MessageModel::Clustering);
        assert_eq!(
            c.consume_from_where,
            ConsumeFromWhere::ConsumeFromFirstOffset
        );
        assert!(c.subscription_data_set[0].matches_tag(Some("TagA")));
        let back: HeartbeatData = decode_json(&serde_json::to_vec(&hb).unwrap()).unwrap();
        assert_eq!(back, hb);
    }

    #[test]
    fn a_java_check_client_body_decodes() {
        let json = r#"{"clientId":"10.0.0.2@77","group":"g","subscriptionData":{"classFilterMode":false,"codeSet":[],"expressionType":"SQL92","subString":"a > 5","subVersion":1,"tagsSet":[],"topic":"T"}}"#;
        let body: CheckClientRequestBody = decode_json(json.as_bytes()).unwrap();
        assert_eq!(body.group, "g");
        let sub = body.subscription_data.as_ref().unwrap();
        assert_eq!(sub.sub_string, "a > 5");
        assert!(!sub.is_tag_type());
        let back: CheckClientRequestBody =
            decode_json(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn lock_bodies_round_trip() {
        let body = LockBatchRequestBody {
            consumer_group: "g".into(),
            client_id: "c".into(),
            only_this_broker: true,
            mq_set: [MessageQueue {
                topic: "t".into(),
                broker_name: "b".into(),
                queue_id: 1,
            }]
            .into(),
        };
        let json = serde_json::to_string(&body).unwrap();
        assert!(json.contains("\"mqSet\"") && json.contains("\"brokerName\""));
        assert_eq!(
            serde_json::from_str::<LockBatchRequestBody>(&json).unwrap(),
            body
        );
        let resp = serde_json::to_string(&LockBatchResponseBody {
            lock_ok_mq_set: body.mq_set.clone(),
        })
        .unwrap();
        assert!(resp.contains("lockOKMQSet"));
    }
}
