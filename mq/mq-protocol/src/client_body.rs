//! Admin bodies and headers the client crate needs beyond [`crate::body`]
//! and [`crate::header`]: subscription group configuration.

use serde::{Deserialize, Serialize};

use crate::error::ProtocolError;
use crate::header::{CommandHeader, Fields, HeaderField};

/// A consumer group's settings on a broker (RocketMQ's
/// `SubscriptionGroupConfig`), the body of
/// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionGroupConfig {
    pub group_name: String,
    pub consume_enable: bool,
    pub consume_from_min_enable: bool,
    pub consume_broadcast_enable: bool,
    pub retry_queue_nums: i32,
    pub retry_max_times: i32,
    pub broker_id: i64,
    pub which_broker_when_consume_slowly: i64,
    pub notify_consumer_ids_changed_enable: bool,
    /// RocketMQ 5's `consumeMessageOrderly`: the group consumes FIFO (5.x
    /// clients get one message of a message group at a time, the next once
    /// it is acknowledged). 4.x clients choose orderly consumption
    /// themselves and ignore it.
    pub consume_message_orderly: bool,
}

impl Default for SubscriptionGroupConfig {
    fn default() -> Self {
        SubscriptionGroupConfig {
            group_name: String::new(),
            consume_enable: true,
            consume_from_min_enable: true,
            consume_broadcast_enable: true,
            retry_queue_nums: 1,
            retry_max_times: 16,
            broker_id: 0,
            which_broker_when_consume_slowly: 1,
            notify_consumer_ids_changed_enable: true,
            consume_message_orderly: false,
        }
    }
}

impl SubscriptionGroupConfig {
    /// RocketMQ's defaults for `group`.
    pub fn new(group: impl Into<String>) -> Self {
        SubscriptionGroupConfig {
            group_name: group.into(),
            ..SubscriptionGroupConfig::default()
        }
    }
}

/// DELETE_SUBSCRIPTIONGROUP.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteSubscriptionGroupRequestHeader {
    pub group_name: String,
}

impl CommandHeader for DeleteSubscriptionGroupRequestHeader {
    fn from_fields(fields: &Fields) -> Result<Self, ProtocolError> {
        Ok(DeleteSubscriptionGroupRequestHeader {
            group_name: HeaderField::read(fields, "groupName")?,
        })
    }

    fn to_fields(&self) -> Fields {
        let mut fields = Fields::new();
        self.group_name.write(&mut fields, "groupName");
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::decode_json;

    #[test]
    fn subscription_group_json_uses_rocketmq_names() {
        let config = SubscriptionGroupConfig::new("g");
        let json = serde_json::to_string(&config).unwrap();
        for key in [
            "\"groupName\":\"g\"",
            "\"consumeEnable\":true",
            "\"consumeFromMinEnable\":true",
            "\"consumeBroadcastEnable\":true",
            "\"retryQueueNums\":1",
            "\"retryMaxTimes\":16",
            "\"brokerId\":0",
            "\"whichBrokerWhenConsumeSlowly\":1",
            "\"notifyConsumerIdsChangedEnable\":true",
            "\"consumeMessageOrderly\":false",
        ] {
            assert!(json.contains(key), "{key} missing from {json}");
        }
        let java = r#"{"groupName":"g","retryMaxTimes":3,"consumeEnable":false,"extra":1}"#;
        let back: SubscriptionGroupConfig = decode_json(java.as_bytes()).unwrap();
        assert_eq!(back.retry_max_times, 3);
        assert!(!back.consume_enable);
        assert_eq!(back.retry_queue_nums, 1);
        assert!(!back.consume_message_orderly, "absent in 4.x: not FIFO");
        let fifo = r#"{"groupName":"g","consumeMessageOrderly":true}"#;
        let back: SubscriptionGroupConfig = decode_json(fifo.as_bytes()).unwrap();
        assert!(back.consume_message_orderly);
    }

    #[test]
    fn delete_group_header() {
        let header = DeleteSubscriptionGroupRequestHeader {
            group_name: "g".into(),
        };
        let fields = header.to_fields();
        assert_eq!(fields.get("groupName"), Some("g"));
        assert_eq!(
            DeleteSubscriptionGroupRequestHeader::from_fields(&fields).unwrap(),
            header
        );
        assert_eq!(
            DeleteSubscriptionGroupRequestHeader::from_fields(&Fields::new()),
            Err(ProtocolError::MissingField("groupName"))
        );
    }
}
