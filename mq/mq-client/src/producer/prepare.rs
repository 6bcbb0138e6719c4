//! Preparation: a [`Message`] checked and turned into what SEND_MESSAGE_V2
//! carries (unique id, compressed body, sys flag, properties text).

use bytes::Bytes;
use mq_protocol::message::{properties_to_string, property, sys_flag};
use mq_protocol::topic::{validate_topic, RETRY_GROUP_TOPIC_PREFIX};

use super::config::ProducerConfig;
use crate::compress::compress;
use crate::error::{ClientError, Result};
use crate::id::create_unique_id;
use crate::message::Message;

/// A message ready for the wire.
pub(crate) struct Prepared {
    pub topic: String,
    pub flag: i32,
    pub body: Bytes,
    pub properties: String,
    pub sys_flag: i32,
    pub unique_id: String,
    pub reconsume_times: Option<i32>,
    pub max_reconsume_times: Option<i32>,
    pub batch: bool,
}

/// Refuses a message the broker would refuse: a bad topic, an empty body,
/// a body over `max_message_size`.
pub(super) fn validate(config: &ProducerConfig, msg: &Message) -> Result<()> {
    validate_topic(&msg.topic).map_err(ClientError::InvalidArgument)?;
    if msg.body.is_empty() {
        return Err(ClientError::InvalidArgument(
            "the message body is empty".into(),
        ));
    }
    if msg.body.len() > config.max_message_size {
        return Err(ClientError::InvalidArgument(format!(
            "the message body is {} bytes, over the limit of {}",
            msg.body.len(),
            config.max_message_size
        )));
    }
    Ok(())
}

/// Checks `msg`, gives it a unique id unless it has one, compresses a
/// large body and marks half and retry messages.
pub(super) fn prepare(config: &ProducerConfig, mut msg: Message) -> Result<Prepared> {
    validate(config, &msg)?;
    let unique_id = match msg.unique_id() {
        Some(id) => id.to_owned(),
        None => {
            let id = create_unique_id();
            msg.properties
                .insert(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX.into(), id.clone());
            id
        }
    };
    let mut sys = 0;
    let mut body = msg.body.clone();
    if body.len() > config.compress_msg_body_over {
        body = compress(&body);
        sys |= sys_flag::COMPRESSED;
    }
    if msg.property(property::TRANSACTION_PREPARED) == Some("true") {
        sys |= sys_flag::TRANSACTION_PREPARED_TYPE;
    }
    let (reconsume_times, max_reconsume_times) = if msg.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX)
    {
        (
            msg.property(property::RECONSUME_TIME)
                .and_then(|v| v.parse().ok()),
            msg.property(property::MAX_RECONSUME_TIMES)
                .and_then(|v| v.parse().ok()),
        )
    } else {
        (Some(0), None)
    };
    Ok(Prepared {
        properties: properties_to_string(&msg.properties),
        topic: msg.topic,
        flag: msg.flag,
        body,
        sys_flag: sys,
        unique_id,
        reconsume_times,
        max_reconsume_times,
        batch: false,
    })
}
