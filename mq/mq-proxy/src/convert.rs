//! Messages between the two protocols: a 5.x `Message` to the 4.x message
//! a producer sends, and a stored 4.x message back to a 5.x `Message`.
//!
//! 5.x system properties map onto RocketMQ's 4.x property names: tag ->
//! `TAGS`, keys -> `KEYS` (space-joined), message id -> `UNIQ_KEY`,
//! message group -> `__SHARDINGKEY`, delivery timestamp ->
//! `TIMER_DELIVER_MS` (the broker's timer delivers it then); user
//! properties are kept as they are, so a 4.x consumer sees the same tags,
//! keys and properties and a 5.x consumer sees a 4.x producer's.

use std::collections::HashMap;
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mq_client::Message as Message4;
use mq_protocol::message::property;
use mq_protocol::MessageExt;
use prost_types::Timestamp;

use crate::pb::{self, Code, Encoding, MessageType, Resource, SystemProperties};
use crate::status::ProxyError;

/// The delivery time a delayed message carries (RocketMQ 5's timer key):
/// the broker's timer delivers it then.
pub const TIMER_DELIVER_MS: &str = property::TIMER_DELIVER_MS;

/// Property names of the 4.x system: a user property may not take one.
const RESERVED: &[&str] = &[
    property::KEYS,
    property::TAGS,
    property::WAIT_STORE_MSG_OK,
    property::DELAY_TIME_LEVEL,
    property::RETRY_TOPIC,
    property::REAL_TOPIC,
    property::REAL_QUEUE_ID,
    property::TRANSACTION_PREPARED,
    property::PRODUCER_GROUP,
    property::MIN_OFFSET,
    property::MAX_OFFSET,
    property::ORIGIN_MESSAGE_ID,
    property::RECONSUME_TIME,
    property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX,
    property::MAX_RECONSUME_TIMES,
    property::CONSUME_START_TIMESTAMP,
    property::CHECK_IMMUNITY_TIME_IN_SECONDS,
    property::TRANSACTION_PREPARED_QUEUE_OFFSET,
    property::TRANSACTION_ID,
    property::TRANSACTION_CHECK_TIMES,
    property::SHARDING_KEY,
    property::CLUSTER,
    property::TIMER_DELIVER_MS,
    property::TIMER_DELAY_SEC,
    property::TIMER_DELAY_MS,
    property::TIMER_OUT_MS,
];

/// How a 5.x message is to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendKind {
    Normal,
    /// To the queue chosen by the message group's hash.
    Fifo {
        group: String,
    },
    /// Carrying its delivery time (`TIMER_DELIVER_MS`).
    Delay,
    /// As a half message.
    Transaction,
}

/// A 5.x message turned into the 4.x message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub message: Message4,
    pub kind: SendKind,
}

fn millis(ts: &Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(ts.nanos / 1_000_000))
}

fn timestamp(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn check_resource(
    resource: Option<&Resource>,
    what: &str,
    code: Code,
) -> Result<String, ProxyError> {
    let resource = resource.ok_or_else(|| ProxyError::new(code, format!("no {what}")))?;
    if !resource.resource_namespace.is_empty() {
        return Err(ProxyError::new(
            code,
            format!(
                "{what} {}: namespaces are not supported (namespace {:?})",
                resource.name, resource.resource_namespace
            ),
        ));
    }
    mq_protocol::topic::validate_topic(&resource.name)
        .map_err(|reason| ProxyError::new(code, format!("{what} {:?}: {reason}", resource.name)))?;
    Ok(resource.name.clone())
}

/// The topic named by a request.
pub fn topic_name(resource: Option<&Resource>) -> Result<String, ProxyError> {
    check_resource(resource, "topic", Code::IllegalTopic)
}

/// The consumer group named by a request.
pub fn group_name(resource: Option<&Resource>) -> Result<String, ProxyError> {
    check_resource(resource, "consumer group", Code::IllegalConsumerGroup)
}

fn decode_body(body: Vec<u8>, encoding: i32) -> Result<Bytes, ProxyError> {
    match Encoding::try_from(encoding).unwrap_or(Encoding::Unspecified) {
        Encoding::Gzip => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body.as_slice())
                .read_to_end(&mut out)
                .map_err(|e| ProxyError::new(Code::MessageCorrupted, format!("gzip body: {e}")))?;
            Ok(out.into())
        }
        _ => Ok(body.into()),
    }
}

/// Checks a 5.x message and builds the 4.x message to send.
pub fn outbound(msg: pb::Message) -> Result<Outbound, ProxyError> {
    let topic = topic_name(msg.topic.as_ref())?;
    let sys = msg.system_properties.unwrap_or_default();
    if msg.body.is_empty() {
        return Err(ProxyError::new(
            Code::MessageBodyEmpty,
            "the message body is empty",
        ));
    }
    let body = decode_body(msg.body, sys.body_encoding)?;
    let mut out = Message4::new(topic, body);
    for (name, value) in msg.user_properties {
        if RESERVED.contains(&name.as_str()) || name.is_empty() {
            return Err(ProxyError::new(
                Code::IllegalMessagePropertyKey,
                format!("the property name {name:?} is reserved"),
            ));
        }
        if has_separator(&name) || has_separator(&value) {
            return Err(ProxyError::new(
                Code::IllegalMessagePropertyKey,
                format!("the property {name:?} holds a control character"),
            ));
        }
        out.properties.insert(name, value);
    }
    if let Some(tag) = sys.tag.filter(|t| !t.is_empty()) {
        if tag.contains('|') || tag.trim() != tag || has_separator(&tag) {
            return Err(ProxyError::new(
                Code::IllegalMessageTag,
                format!("the tag {tag:?} holds '|', blanks or control characters"),
            ));
        }
        out = out.with_tags(tag);
    }
    if !sys.keys.is_empty() {
        if let Some(key) = sys
            .keys
            .iter()
            .find(|k| k.is_empty() || k.contains(' ') || has_separator(k))
        {
            return Err(ProxyError::new(
                Code::IllegalMessageKey,
                format!("the key {key:?} is empty or holds blanks"),
            ));
        }
        out = out.with_keys(&sys.keys);
    }
    if !sys.message_id.is_empty() {
        if has_separator(&sys.message_id) || sys.message_id.len() > 128 {
            return Err(ProxyError::new(
                Code::IllegalMessageId,
                "the message id holds control characters or is too long",
            ));
        }
        out.properties.insert(
            property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX.into(),
            sys.message_id.clone(),
        );
    }
    let declared = MessageType::try_from(sys.message_type).unwrap_or(MessageType::Unspecified);
    let group = sys.message_group.filter(|g| !g.is_empty());
    let delivery = sys.delivery_timestamp.as_ref().map(millis);
    let kind = match declared {
        MessageType::Transaction => SendKind::Transaction,
        MessageType::Fifo => SendKind::Fifo {
            group: group.clone().ok_or_else(|| {
                ProxyError::new(
                    Code::IllegalMessageGroup,
                    "a FIFO message needs a message group",
                )
            })?,
        },
        MessageType::Delay => {
            if delivery.is_none() {
                return Err(ProxyError::new(
                    Code::IllegalDeliveryTime,
                    "a delay message needs a delivery timestamp",
                ));
            }
            SendKind::Delay
        }
        MessageType::Normal | MessageType::Unspecified => match (&group, delivery) {
            (Some(g), _) => SendKind::Fifo { group: g.clone() },
            (None, Some(_)) => SendKind::Delay,
            (None, None) => SendKind::Normal,
        },
        other => {
            return Err(ProxyError::new(
                Code::Unsupported,
                format!("message type {other:?} is not supported"),
            ))
        }
    };
    let conflict = match kind {
        SendKind::Normal => false,
        SendKind::Fifo { .. } => delivery.is_some(),
        SendKind::Delay => group.is_some(),
        SendKind::Transaction => group.is_some() || delivery.is_some(),
    };
    if conflict {
        return Err(ProxyError::new(
            Code::MessagePropertyConflictWithType,
            format!(
                "a {declared:?} message may not carry both a message group and a delivery time"
            ),
        ));
    }
    if let SendKind::Fifo { group } = &kind {
        if has_separator(group) {
            return Err(ProxyError::new(
                Code::IllegalMessageGroup,
                "the message group holds control characters",
            ));
        }
        out.properties
            .insert(property::SHARDING_KEY.into(), group.clone());
    }
    if let (SendKind::Delay, Some(at)) = (&kind, delivery) {
        // The broker's timer holds it until then (and refuses a time beyond
        // its timerMaxDelaySec); a time already past is delivered at once.
        if at < 0 {
            return Err(ProxyError::new(
                Code::IllegalDeliveryTime,
                format!("the delivery timestamp {at} ms is before 1970"),
            ));
        }
        out.properties
            .insert(TIMER_DELIVER_MS.into(), at.to_string());
    }
    Ok(Outbound { message: out, kind })
}

fn has_separator(s: &str) -> bool {
    s.contains(mq_protocol::message::NAME_VALUE_SEPARATOR)
        || s.contains(mq_protocol::message::PROPERTY_SEPARATOR)
}

/// The 5.x view of a stored message. User properties are every property
/// that is not one of the 4.x system's.
pub fn inbound(msg: &MessageExt, topic: &str) -> pb::Message {
    let props = &msg.properties;
    let get = |name: &str| props.get(name).cloned();
    let message_group = get(property::SHARDING_KEY);
    // As sent by a 5.x producer, else the due time the broker's timer
    // computed from a relative 4.x delay.
    let delivery = get(property::TIMER_DELIVER_MS)
        .or_else(|| get(property::TIMER_OUT_MS))
        .and_then(|v| v.parse::<i64>().ok());
    let message_type = if msg.property(property::TRANSACTION_PREPARED) == Some("true") {
        MessageType::Transaction
    } else if message_group.is_some() {
        MessageType::Fifo
    } else if delivery.is_some() || props.contains_key(property::DELAY_TIME_LEVEL) {
        MessageType::Delay
    } else {
        MessageType::Normal
    };
    let user_properties: HashMap<String, String> = props
        .iter()
        .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let keys = mq_protocol::message::split_keys(props.get(property::KEYS).map(String::as_str))
        .into_iter()
        .map(str::to_owned)
        .collect();
    pb::Message {
        topic: Some(Resource {
            resource_namespace: String::new(),
            name: topic.to_owned(),
        }),
        user_properties,
        system_properties: Some(SystemProperties {
            tag: get(property::TAGS),
            keys,
            message_id: get(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
                .unwrap_or_else(|| msg.msg_id()),
            body_digest: Some(pb::Digest {
                r#type: pb::DigestType::Crc32 as i32,
                checksum: format!("{:08X}", crc32fast::hash(&msg.body)),
            }),
            body_encoding: Encoding::Identity as i32,
            message_type: message_type as i32,
            born_timestamp: Some(timestamp(msg.born_timestamp)),
            born_host: msg.born_host.ip().to_string(),
            store_timestamp: Some(timestamp(msg.store_timestamp)),
            store_host: msg.store_host.to_string(),
            delivery_timestamp: delivery.map(timestamp),
            queue_id: msg.queue_id,
            queue_offset: Some(msg.queue_offset),
            delivery_attempt: Some(msg.reconsume_times + 1),
            message_group,
            ..SystemProperties::default()
        }),
        body: msg.body.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(sys: SystemProperties) -> pb::Message {
        pb::Message {
            topic: Some(Resource {
                resource_namespace: String::new(),
                name: "T".into(),
            }),
            user_properties: HashMap::from([("color".to_owned(), "red".to_owned())]),
            system_properties: Some(sys),
            body: b"hello".to_vec(),
        }
    }

    #[test]
    fn normal_message_keeps_tag_keys_id_and_properties() {
        let out = outbound(message(SystemProperties {
            tag: Some("TagA".into()),
            keys: vec!["k1".into(), "k2".into()],
            message_id: "ID1".into(),
            message_type: MessageType::Normal as i32,
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(out.kind, SendKind::Normal);
        assert_eq!(out.message.tags(), Some("TagA"));
        assert_eq!(out.message.keys(), vec!["k1", "k2"]);
        assert_eq!(out.message.unique_id(), Some("ID1"));
        assert_eq!(out.message.property("color"), Some("red"));
        assert_eq!(&out.message.body[..], b"hello");
    }

    #[test]
    fn fifo_needs_a_group_and_stores_it_as_sharding_key() {
        let fifo = SystemProperties {
            message_group: Some("g1".into()),
            message_type: MessageType::Fifo as i32,
            ..Default::default()
        };
        let out = outbound(message(fifo.clone())).unwrap();
        assert_eq!(out.kind, SendKind::Fifo { group: "g1".into() });
        assert_eq!(out.message.property(property::SHARDING_KEY), Some("g1"));
        let no_group = SystemProperties {
            message_group: None,
            ..fifo
        };
        assert_eq!(
            outbound(message(no_group)).unwrap_err().code,
            Code::IllegalMessageGroup
        );
    }

    #[test]
    fn a_delivery_time_is_sent_as_timer_deliver_ms_without_a_delay_level() {
        // 3.5 s and 26 h ahead: neither is a 4.x delay level; the broker's
        // timer holds them (and checks its timerMaxDelaySec).
        let now = now_ms();
        for at in [now + 3_500, now + 26 * 3_600_000, 13_000] {
            let out = outbound(message(SystemProperties {
                delivery_timestamp: Some(timestamp(at)),
                message_type: MessageType::Delay as i32,
                ..Default::default()
            }))
            .unwrap();
            assert_eq!(out.kind, SendKind::Delay);
            assert_eq!(out.message.delay_level(), 0, "no delay level");
            assert_eq!(out.message.property(property::DELAY_TIME_LEVEL), None);
            assert_eq!(
                out.message.property(TIMER_DELIVER_MS),
                Some(at.to_string().as_str())
            );
        }
        let before_1970 = message(SystemProperties {
            delivery_timestamp: Some(timestamp(-1_000)),
            message_type: MessageType::Delay as i32,
            ..Default::default()
        });
        assert_eq!(
            outbound(before_1970).unwrap_err().code,
            Code::IllegalDeliveryTime
        );
        // A user property may not pose as a timer property.
        for name in [
            TIMER_DELIVER_MS,
            property::TIMER_DELAY_SEC,
            property::TIMER_DELAY_MS,
            property::TIMER_OUT_MS,
        ] {
            let mut msg = message(SystemProperties::default());
            msg.user_properties.insert(name.into(), "1".into());
            assert_eq!(
                outbound(msg).unwrap_err().code,
                Code::IllegalMessagePropertyKey,
                "{name}"
            );
        }
    }

    #[test]
    fn a_received_timer_message_shows_its_original_delivery_time() {
        let sent = outbound(message(SystemProperties {
            delivery_timestamp: Some(timestamp(1_700_000_003_500)),
            message_type: MessageType::Delay as i32,
            ..Default::default()
        }))
        .unwrap()
        .message;
        let mut properties = sent.properties.clone();
        // What the broker's timer adds on the way.
        properties.insert(property::TIMER_OUT_MS.into(), "1700000003500".into());
        properties.insert(property::REAL_TOPIC.into(), "T".into());
        properties.insert(property::REAL_QUEUE_ID.into(), "0".into());
        let back = inbound(&stored(&sent.body, properties.clone()), "T");
        let sys = back.system_properties.unwrap();
        assert_eq!(sys.delivery_timestamp, Some(timestamp(1_700_000_003_500)));
        assert_eq!(sys.message_type, MessageType::Delay as i32);
        assert_eq!(
            back.user_properties.keys().collect::<Vec<_>>(),
            vec!["color"],
            "no broker property shows as a user property"
        );
        // A 4.x TIMER_DELAY_SEC message: the due time the broker computed.
        properties.remove(TIMER_DELIVER_MS);
        properties.insert(property::TIMER_DELAY_SEC.into(), "3".into());
        let back = inbound(&stored(&sent.body, properties), "T");
        assert_eq!(
            back.system_properties.unwrap().delivery_timestamp,
            Some(timestamp(1_700_000_003_500))
        );
    }

    fn stored(body: &Bytes, properties: mq_protocol::message::Properties) -> MessageExt {
        MessageExt {
            topic: "T".into(),
            body: body.clone(),
            properties,
            queue_id: 0,
            flag: 0,
            queue_offset: 0,
            commit_log_offset: 0,
            sys_flag: 0,
            born_timestamp: 1,
            born_host: "127.0.0.1:1".parse().unwrap(),
            store_timestamp: 2,
            store_host: "127.0.0.1:2".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body_crc: 0,
            store_size: 0,
        }
    }

    #[test]
    fn refusals_carry_their_codes() {
        let mut reserved = message(SystemProperties::default());
        reserved.user_properties.insert("KEYS".into(), "x".into());
        assert_eq!(
            outbound(reserved).unwrap_err().code,
            Code::IllegalMessagePropertyKey
        );
        let mut empty = message(SystemProperties::default());
        empty.body.clear();
        assert_eq!(outbound(empty).unwrap_err().code, Code::MessageBodyEmpty);
        let mut bad_topic = message(SystemProperties::default());
        bad_topic.topic.as_mut().unwrap().name = "a/b".into();
        assert_eq!(outbound(bad_topic).unwrap_err().code, Code::IllegalTopic);
        let conflict = SystemProperties {
            message_group: Some("g".into()),
            delivery_timestamp: Some(timestamp(5_000)),
            message_type: MessageType::Fifo as i32,
            ..Default::default()
        };
        assert_eq!(
            outbound(message(conflict)).unwrap_err().code,
            Code::MessagePropertyConflictWithType
        );
        let bad_tag = SystemProperties {
            tag: Some("a|b".into()),
            ..Default::default()
        };
        assert_eq!(
            outbound(message(bad_tag)).unwrap_err().code,
            Code::IllegalMessageTag
        );
    }

    #[test]
    fn gzip_bodies_are_inflated() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"zipped").unwrap();
        let mut msg = message(SystemProperties {
            body_encoding: Encoding::Gzip as i32,
            ..Default::default()
        });
        msg.body = gz.finish().unwrap();
        assert_eq!(&outbound(msg).unwrap().message.body[..], b"zipped");
    }

    #[test]
    fn a_stored_message_comes_back_with_its_properties() {
        let sent = outbound(message(SystemProperties {
            tag: Some("TagA".into()),
            keys: vec!["k1".into()],
            message_id: "ID9".into(),
            message_group: Some("g".into()),
            message_type: MessageType::Fifo as i32,
            ..Default::default()
        }))
        .unwrap()
        .message;
        let stored = MessageExt {
            queue_id: 2,
            queue_offset: 7,
            ..stored(&sent.body, sent.properties.clone())
        };
        let back = inbound(&stored, "T");
        let sys = back.system_properties.unwrap();
        assert_eq!(sys.tag.as_deref(), Some("TagA"));
        assert_eq!(sys.keys, vec!["k1".to_owned()]);
        assert_eq!(sys.message_id, "ID9");
        assert_eq!(sys.message_group.as_deref(), Some("g"));
        assert_eq!(sys.message_type, MessageType::Fifo as i32);
        assert_eq!((sys.queue_id, sys.queue_offset), (2, Some(7)));
        assert_eq!(
            back.user_properties.get("color").map(String::as_str),
            Some("red")
        );
        assert!(!back.user_properties.contains_key("WAIT"));
        assert_eq!(back.body, b"hello");
    }
}
