//! Typed request and response headers, carried in a frame's `extFields` as
//! strings. Field names are RocketMQ's (`SendMessageRequestHeader` and
//! friends); `SEND_MESSAGE_V2` uses one-letter names for the same fields.
//!
//! A required field that is missing or malformed is a typed
//! [`ProtocolError`]; optional fields are `Option`s. Unknown fields are
//! ignored, as RocketMQ's servers do.

use crate::error::ProtocolError;
use crate::frame::RemotingCommand;

pub use crate::fields::{Fields, Text};

/// One value of a header.
pub trait HeaderField: Sized {
    fn read(fields: &Fields, key: &'static str) -> Result<Self, ProtocolError>;
    fn write(&self, fields: &mut Fields, key: &'static str);
}

fn required<'a>(fields: &'a Fields, key: &'static str) -> Result<&'a str, ProtocolError> {
    fields.get(key).ok_or(ProtocolError::MissingField(key))
}

/// `value` of the field `key` as a number (or anything `FromStr`), spaces
/// around it ignored; a typed error naming the field otherwise.
pub fn parse_field<T: std::str::FromStr>(
    key: &'static str,
    value: &str,
) -> Result<T, ProtocolError> {
    value
        .trim()
        .parse()
        .map_err(|_| ProtocolError::InvalidField {
            field: key,
            value: value.to_owned(),
        })
}

impl HeaderField for String {
    fn read(fields: &Fields, key: &'static str) -> Result<Self, ProtocolError> {
        required(fields, key).map(str::to_owned)
    }
    fn write(&self, fields: &mut Fields, key: &'static str) {
        fields.append(key, self);
    }
}

macro_rules! number_field {
    ($($ty:ty),*) => {$(
        impl HeaderField for $ty {
            fn read(fields: &Fields, key: &'static str) -> Result<Self, ProtocolError> {
                parse_field(key, required(fields, key)?)
            }
            fn write(&self, fields: &mut Fields, key: &'static str) {
                fields.append(key, self);
            }
        }
    )*};
}

number_field!(i32, i64, bool);

impl<T: HeaderField> HeaderField for Option<T> {
    fn read(fields: &Fields, key: &'static str) -> Result<Self, ProtocolError> {
        match fields.get(key) {
            None => Ok(None),
            Some("") => Ok(None),
            Some(_) => T::read(fields, key).map(Some),
        }
    }
    fn write(&self, fields: &mut Fields, key: &'static str) {
        if let Some(value) = self {
            value.write(fields, key);
        }
    }
}

/// A typed header.
pub trait CommandHeader: Sized {
    fn from_fields(fields: &Fields) -> Result<Self, ProtocolError>;
    fn to_fields(&self) -> Fields;
}

impl RemotingCommand {
    /// Decodes this command's extFields as `H`.
    pub fn header<H: CommandHeader>(&self) -> Result<H, ProtocolError> {
        H::from_fields(&self.ext_fields)
    }

    /// Replaces this command's extFields with `header`.
    pub fn with_header<H: CommandHeader>(mut self, header: &H) -> Self {
        self.ext_fields = header.to_fields();
        self
    }
}

macro_rules! headers {
    ($($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty = $key:literal,)* })*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl CommandHeader for $name {
            fn from_fields(fields: &Fields) -> Result<Self, ProtocolError> {
                Ok($name { $($field: HeaderField::read(fields, $key)?,)* })
            }

            fn to_fields(&self) -> Fields {
                #[allow(unused_mut)]
                let mut fields = Fields::with_capacity(<[&str]>::len(&[$($key),*]));
                $(HeaderField::write(&self.$field, &mut fields, $key);)*
                fields
            }
        }
    )*};
}

headers! {
    /// SEND_MESSAGE and SEND_BATCH_MESSAGE.
    pub struct SendMessageRequestHeader {
        producer_group: String = "producerGroup",
        topic: String = "topic",
        /// The template topic for auto-creation (`TBW102`).
        default_topic: String = "defaultTopic",
        default_topic_queue_nums: i32 = "defaultTopicQueueNums",
        /// -1 (or anything out of range) lets the broker choose.
        queue_id: i32 = "queueId",
        sys_flag: i32 = "sysFlag",
        born_timestamp: i64 = "bornTimestamp",
        flag: i32 = "flag",
        /// Message properties in their string form.
        properties: Option<String> = "properties",
        reconsume_times: Option<i32> = "reconsumeTimes",
        unit_mode: Option<bool> = "unitMode",
        batch: Option<bool> = "batch",
        max_reconsume_times: Option<i32> = "maxReconsumeTimes",
    }

    /// SEND_MESSAGE_V2: the same fields under one-letter names.
    pub struct SendMessageRequestHeaderV2 {
        a: String = "a",
        b: String = "b",
        c: String = "c",
        d: i32 = "d",
        e: i32 = "e",
        f: i32 = "f",
        g: i64 = "g",
        h: i32 = "h",
        i: Option<String> = "i",
        j: Option<i32> = "j",
        k: Option<bool> = "k",
        l: Option<i32> = "l",
        m: Option<bool> = "m",
    }

    pub struct SendMessageResponseHeader {
        msg_id: String = "msgId",
        queue_id: i32 = "queueId",
        queue_offset: i64 = "queueOffset",
        transaction_id: Option<String> = "transactionId",
    }

    pub struct PullMessageRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        queue_offset: i64 = "queueOffset",
        max_msg_nums: i32 = "maxMsgNums",
        /// Bits of [`pull_sys_flag`].
        sys_flag: i32 = "sysFlag",
        commit_offset: i64 = "commitOffset",
        suspend_timeout_millis: i64 = "suspendTimeoutMillis",
        subscription: Option<String> = "subscription",
        sub_version: i64 = "subVersion",
        expression_type: Option<String> = "expressionType",
        max_msg_bytes: Option<i32> = "maxMsgBytes",
    }

    pub struct PullMessageResponseHeader {
        suggest_which_broker_id: i64 = "suggestWhichBrokerId",
        next_begin_offset: i64 = "nextBeginOffset",
        min_offset: i64 = "minOffset",
        max_offset: i64 = "maxOffset",
    }

    pub struct QueryConsumerOffsetRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        set_zero_if_not_found: Option<bool> = "setZeroIfNotFound",
    }

    pub struct UpdateConsumerOffsetRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        commit_offset: i64 = "commitOffset",
    }

    /// The response of the offset queries (consumer, max, min, search).
    pub struct OffsetResponseHeader {
        offset: i64 = "offset",
    }

    /// The answer to GET_TIMER_CHECK_POINT (ours: RocketMQ's has no header).
    pub struct TimerCheckpointResponseHeader {
        /// The master's commit log end when it read the checkpoint: every
        /// delivered copy the checkpoint counts lies below it.
        commit_log_max_offset: i64 = "commitLogMaxOffset",
    }

    pub struct ConsumerSendMsgBackRequestHeader {
        /// Commit log offset of the message to retry.
        offset: i64 = "offset",
        group: String = "group",
        /// 0 lets the broker pick `3 + reconsumeTimes`; -1 sends it straight to the DLQ.
        delay_level: i32 = "delayLevel",
        origin_msg_id: Option<String> = "originMsgId",
        origin_topic: Option<String> = "originTopic",
        unit_mode: Option<bool> = "unitMode",
        max_reconsume_times: Option<i32> = "maxReconsumeTimes",
    }

    pub struct EndTransactionRequestHeader {
        topic: Option<String> = "topic",
        producer_group: String = "producerGroup",
        /// Queue offset of the half message.
        tran_state_table_offset: i64 = "tranStateTableOffset",
        /// Commit log offset of the half message.
        commit_log_offset: i64 = "commitLogOffset",
        /// A sys flag transaction type: commit, rollback, or not-type for unknown.
        commit_or_rollback: i32 = "commitOrRollback",
        from_transaction_check: Option<bool> = "fromTransactionCheck",
        msg_id: String = "msgId",
        transaction_id: Option<String> = "transactionId",
    }

    pub struct CheckTransactionStateRequestHeader {
        topic: Option<String> = "topic",
        tran_state_table_offset: i64 = "tranStateTableOffset",
        commit_log_offset: i64 = "commitLogOffset",
        msg_id: Option<String> = "msgId",
        transaction_id: Option<String> = "transactionId",
        offset_msg_id: Option<String> = "offsetMsgId",
    }

    /// GET_MAX_OFFSET, GET_MIN_OFFSET, GET_EARLIEST_MSG_STORETIME.
    pub struct QueueRequestHeader {
        topic: String = "topic",
        queue_id: i32 = "queueId",
    }

    pub struct SearchOffsetRequestHeader {
        topic: String = "topic",
        queue_id: i32 = "queueId",
        timestamp: i64 = "timestamp",
    }

    pub struct QueryMessageRequestHeader {
        topic: String = "topic",
        key: String = "key",
        max_num: i32 = "maxNum",
        begin_timestamp: i64 = "beginTimestamp",
        end_timestamp: i64 = "endTimestamp",
    }

    pub struct QueryMessageResponseHeader {
        index_last_update_timestamp: i64 = "indexLastUpdateTimestamp",
        index_last_update_phyoffset: i64 = "indexLastUpdatePhyoffset",
    }

    pub struct ViewMessageRequestHeader {
        topic: Option<String> = "topic",
        offset: i64 = "offset",
    }

    /// GET_CONSUMER_LIST_BY_GROUP, NOTIFY_CONSUMER_IDS_CHANGED.
    pub struct ConsumerGroupHeader {
        consumer_group: String = "consumerGroup",
    }

    pub struct UnregisterClientRequestHeader {
        client_id: String = "clientID",
        producer_group: Option<String> = "producerGroup",
        consumer_group: Option<String> = "consumerGroup",
    }

    /// UPDATE_AND_CREATE_TOPIC.
    pub struct CreateTopicRequestHeader {
        topic: String = "topic",
        default_topic: String = "defaultTopic",
        read_queue_nums: i32 = "readQueueNums",
        write_queue_nums: i32 = "writeQueueNums",
        perm: i32 = "perm",
        topic_filter_type: String = "topicFilterType",
        topic_sys_flag: Option<i32> = "topicSysFlag",
        order: Option<bool> = "order",
    }

    /// DELETE_TOPIC_IN_BROKER, DELETE_TOPIC_IN_NAMESRV, GET_TOPIC_STATS_INFO,
    /// GET_ROUTEINFO_BY_TOPIC.
    pub struct TopicHeader {
        topic: String = "topic",
    }

    pub struct GetConsumeStatsRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: Option<String> = "topic",
    }

    /// INVOKE_BROKER_TO_RESET_OFFSET (admin → broker) and
    /// RESET_CONSUMER_CLIENT_OFFSET (broker → client). `timestamp` -1 means
    /// the end of each queue.
    pub struct ResetOffsetRequestHeader {
        group: String = "group",
        topic: String = "topic",
        timestamp: i64 = "timestamp",
        is_force: bool = "isForce",
    }

    /// INVOKE_BROKER_TO_GET_CONSUMER_STATUS and GET_CONSUMER_STATUS_FROM_CLIENT.
    pub struct GetConsumerStatusRequestHeader {
        topic: String = "topic",
        group: String = "group",
        client_addr: Option<String> = "clientAddr",
    }

    /// GET_CONSUMER_RUNNING_INFO (admin → broker → client).
    pub struct GetConsumerRunningInfoRequestHeader {
        consumer_group: String = "consumerGroup",
        client_id: String = "clientId",
        jstack_enable: Option<bool> = "jstackEnable",
    }

    pub struct CloneGroupOffsetRequestHeader {
        src_group: String = "srcGroup",
        dest_group: String = "destGroup",
        topic: Option<String> = "topic",
        offline: Option<bool> = "offline",
    }

    /// VIEW_BROKER_STATS_DATA: e.g. `TOPIC_PUT_NUMS` and a topic name.
    pub struct ViewBrokerStatsDataRequestHeader {
        stats_name: String = "statsName",
        stats_key: String = "statsKey",
    }

    /// GET_BROKER_CONSUME_STATS.
    pub struct GetConsumeStatsInBrokerHeader {
        is_order: bool = "isOrder",
    }

    /// GET_PRODUCER_CONNECTION_LIST.
    pub struct ProducerGroupHeader {
        producer_group: String = "producerGroup",
    }

    /// WIPE_WRITE_PERM_OF_BROKER.
    pub struct BrokerNameHeader {
        broker_name: String = "brokerName",
    }

    /// The answer to WIPE_WRITE_PERM_OF_BROKER.
    pub struct WipeWritePermResponseHeader {
        wipe_topic_count: i32 = "wipeTopicCount",
    }

    /// PUT_KV_CONFIG, GET_KV_CONFIG, DELETE_KV_CONFIG (`value` only on put).
    pub struct KvConfigHeader {
        namespace: String = "namespace",
        key: String = "key",
        value: Option<String> = "value",
    }

    pub struct NamespaceHeader {
        namespace: String = "namespace",
    }

    /// CONSUME_MESSAGE_DIRECTLY (admin → broker → client): run the group's
    /// listener on the message `msgId` names (an offset message id). The
    /// broker fills `brokerName` and puts the stored message in the body
    /// before forwarding; `clientId` picks the member (RocketMQ requires
    /// it; our broker takes any live member when it is empty).
    pub struct ConsumeMessageDirectlyResultRequestHeader {
        consumer_group: String = "consumerGroup",
        client_id: Option<String> = "clientId",
        msg_id: Option<String> = "msgId",
        broker_name: Option<String> = "brokerName",
        topic: Option<String> = "topic",
    }
}

impl SendMessageRequestHeaderV2 {
    pub fn from_v1(h: &SendMessageRequestHeader) -> Self {
        SendMessageRequestHeaderV2 {
            a: h.producer_group.clone(),
            b: h.topic.clone(),
            c: h.default_topic.clone(),
            d: h.default_topic_queue_nums,
            e: h.queue_id,
            f: h.sys_flag,
            g: h.born_timestamp,
            h: h.flag,
            i: h.properties.clone(),
            j: h.reconsume_times,
            k: h.unit_mode,
            l: h.max_reconsume_times,
            m: h.batch,
        }
    }

    pub fn into_v1(self) -> SendMessageRequestHeader {
        SendMessageRequestHeader {
            producer_group: self.a,
            topic: self.b,
            default_topic: self.c,
            default_topic_queue_nums: self.d,
            queue_id: self.e,
            sys_flag: self.f,
            born_timestamp: self.g,
            flag: self.h,
            properties: self.i,
            reconsume_times: self.j,
            unit_mode: self.k,
            batch: self.m,
            max_reconsume_times: self.l,
        }
    }
}

/// Bits of [`PullMessageRequestHeader::sys_flag`].
pub mod pull_sys_flag {
    /// The request carries the consumer's commit offset.
    pub const COMMIT_OFFSET: i32 = 0x1;
    /// The broker may hold the request until a message arrives.
    pub const SUSPEND: i32 = 0x1 << 1;
    /// The request carries its subscription expression.
    pub const SUBSCRIPTION: i32 = 0x1 << 2;
    pub const CLASS_FILTER: i32 = 0x1 << 3;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_header() -> SendMessageRequestHeader {
        SendMessageRequestHeader {
            producer_group: "pg".into(),
            topic: "TopicTest".into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: 2,
            sys_flag: 0,
            born_timestamp: 1_700_000_000_000,
            flag: 0,
            properties: Some("TAGS\u{1}A\u{2}".into()),
            reconsume_times: Some(0),
            unit_mode: Some(false),
            batch: None,
            max_reconsume_times: None,
        }
    }

    #[test]
    fn headers_round_trip_through_a_command() {
        let h = send_header();
        let cmd = RemotingCommand::request(crate::request_code::SEND_MESSAGE).with_header(&h);
        assert_eq!(cmd.field("producerGroup"), Some("pg"));
        assert_eq!(cmd.field("batch"), None);
        assert_eq!(cmd.header::<SendMessageRequestHeader>().unwrap(), h);
    }

    #[test]
    fn v2_is_the_same_header_with_short_names() {
        let h = send_header();
        let v2 = SendMessageRequestHeaderV2::from_v1(&h);
        let fields = v2.to_fields();
        assert_eq!(fields.get("b"), Some("TopicTest"));
        assert_eq!(fields.get("e"), Some("2"));
        let back = SendMessageRequestHeaderV2::from_fields(&fields)
            .unwrap()
            .into_v1();
        assert_eq!(back, h);
    }

    #[test]
    fn missing_and_malformed_fields_are_typed_errors() {
        let mut fields = send_header().to_fields();
        fields.remove("topic");
        assert_eq!(
            SendMessageRequestHeader::from_fields(&fields),
            Err(ProtocolError::MissingField("topic"))
        );
        let mut fields = send_header().to_fields();
        fields.insert("queueId", "two");
        assert_eq!(
            SendMessageRequestHeader::from_fields(&fields),
            Err(ProtocolError::InvalidField {
                field: "queueId",
                value: "two".into()
            })
        );
        // Optional fields: absent or empty is None, present but bad is an error.
        let mut fields = send_header().to_fields();
        fields.insert("reconsumeTimes", "");
        assert_eq!(
            SendMessageRequestHeader::from_fields(&fields)
                .unwrap()
                .reconsume_times,
            None
        );
        fields.insert("reconsumeTimes", "x");
        assert!(SendMessageRequestHeader::from_fields(&fields).is_err());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut fields = TopicHeader { topic: "t".into() }.to_fields();
        fields.insert("AccessKey", "ak");
        assert_eq!(TopicHeader::from_fields(&fields).unwrap().topic, "t");
    }
}
