//! Batch encoding: messages of one topic in one SEND_BATCH_MESSAGE body
//! (RocketMQ's `MessageBatch`), each with its own unique id.

use bytes::BytesMut;
use mq_protocol::message::{properties_to_string, property, BatchEntry};
use mq_protocol::topic::RETRY_GROUP_TOPIC_PREFIX;

use super::config::ProducerConfig;
use super::prepare::{validate, Prepared};
use crate::error::{ClientError, Result};
use crate::id::create_unique_id;
use crate::message::Message;

/// Checks and encodes `msgs` as one batch; the unique ids are joined by `,`.
pub(super) fn prepare_batch(config: &ProducerConfig, msgs: Vec<Message>) -> Result<Prepared> {
    let Some(first) = msgs.first() else {
        return Err(ClientError::InvalidArgument("an empty batch".into()));
    };
    let topic = first.topic.clone();
    let mut body = BytesMut::new();
    let mut ids = Vec::with_capacity(msgs.len());
    for mut msg in msgs {
        validate(config, &msg)?;
        if msg.topic != topic {
            return Err(ClientError::InvalidArgument(format!(
                "a batch holds one topic, not {topic} and {}",
                msg.topic
            )));
        }
        if msg.delay_level() > 0 {
            return Err(ClientError::InvalidArgument(
                "batched messages cannot have a delay level".into(),
            ));
        }
        if topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
            return Err(ClientError::InvalidArgument(
                "batches cannot go to a retry topic".into(),
            ));
        }
        let id = match msg.unique_id() {
            Some(id) => id.to_owned(),
            None => create_unique_id(),
        };
        msg.properties
            .insert(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX.into(), id.clone());
        ids.push(id);
        BatchEntry {
            flag: msg.flag,
            body: msg.body,
            properties: msg.properties,
        }
        .encode(&mut body)?;
    }
    if body.len() > config.max_message_size {
        return Err(ClientError::InvalidArgument(format!(
            "the batch is {} bytes, over the limit of {}",
            body.len(),
            config.max_message_size
        )));
    }
    let mut batch_properties = mq_protocol::Properties::new();
    batch_properties.insert(property::WAIT_STORE_MSG_OK.into(), "true".into());
    Ok(Prepared {
        topic,
        flag: 0,
        body: body.freeze(),
        properties: properties_to_string(&batch_properties),
        sys_flag: 0,
        unique_id: ids.join(","),
        reconsume_times: Some(0),
        max_reconsume_times: None,
        batch: true,
    })
}
