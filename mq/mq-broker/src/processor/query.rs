//! Offsets and message lookups: GET_MAX_OFFSET, GET_MIN_OFFSET,
//! GET_EARLIEST_MSG_STORETIME, SEARCH_OFFSET_BY_TIMESTAMP, QUERY_MESSAGE (by
//! key, through the index) and VIEW_MESSAGE_BY_ID (by commit log offset).

use bytes::BytesMut;
use mq_protocol::header::{
    OffsetResponseHeader, QueryMessageRequestHeader, QueryMessageResponseHeader,
    QueueRequestHeader, SearchOffsetRequestHeader, ViewMessageRequestHeader,
};
use mq_protocol::name::TopicName;
use mq_protocol::{MessageExt, RemotingCommand, ResponseCode};

use super::error::{ProcessError, Processed};
use super::success;
use crate::broker::Broker;

/// Most messages one QUERY_MESSAGE returns (RocketMQ's defaultQueryMaxNum).
const QUERY_MAX_NUM: i32 = 32;

/// Answers with one offset of the queue the request names.
fn queue_offset(request: &RemotingCommand, offset: impl FnOnce(&str, i32) -> u64) -> Processed {
    let header: QueueRequestHeader = request.header()?;
    TopicName::parse_internal(&header.topic).map_err(ProcessError::system)?;
    let offset = offset(&header.topic, header.queue_id) as i64;
    Ok(success(request).with_header(&OffsetResponseHeader { offset }))
}

/// GET_MAX_OFFSET.
pub(crate) fn max_offset(broker: &Broker, request: &RemotingCommand) -> Processed {
    queue_offset(request, |topic, queue_id| {
        broker.store.max_offset_in_queue(topic, queue_id)
    })
}

/// GET_MIN_OFFSET.
pub(crate) fn min_offset(broker: &Broker, request: &RemotingCommand) -> Processed {
    queue_offset(request, |topic, queue_id| {
        broker.store.min_offset_in_queue(topic, queue_id)
    })
}

/// GET_EARLIEST_MSG_STORETIME.
pub(crate) fn earliest_store_time(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: QueueRequestHeader = request.header()?;
    TopicName::parse_internal(&header.topic).map_err(ProcessError::system)?;
    let min = broker
        .store
        .min_offset_in_queue(&header.topic, header.queue_id);
    let result =
        broker
            .store
            .get_message(&header.topic, header.queue_id, min, 1, usize::MAX, &|_| {
                true
            });
    let timestamp = result
        .messages
        .first()
        .and_then(|bytes| MessageExt::decode(bytes, false).ok())
        .map_or(-1, |(m, _)| m.store_timestamp);
    Ok(success(request).with_field("timestamp", timestamp))
}

/// SEARCH_OFFSET_BY_TIMESTAMP.
pub(crate) fn search_offset(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: SearchOffsetRequestHeader = request.header()?;
    TopicName::parse_internal(&header.topic).map_err(ProcessError::system)?;
    let offset = broker
        .store
        .offset_by_timestamp(&header.topic, header.queue_id, header.timestamp)
        as i64;
    Ok(success(request).with_header(&OffsetResponseHeader { offset }))
}

/// QUERY_MESSAGE.
pub(crate) fn query_message(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: QueryMessageRequestHeader = request.header()?;
    TopicName::parse_internal(&header.topic).map_err(ProcessError::system)?;
    let max = header.max_num.clamp(1, QUERY_MAX_NUM) as usize;
    let messages = broker.store.query_message(
        &header.topic,
        &header.key,
        max,
        header.begin_timestamp,
        header.end_timestamp,
    );
    let mut body = BytesMut::new();
    let mut last_phy = 0;
    for m in &messages {
        if let Some(bytes) = broker
            .store
            .get_message_bytes(m.commit_log_offset as u64, m.store_size)
        {
            body.extend_from_slice(&bytes);
            last_phy = last_phy.max(m.commit_log_offset);
        }
    }
    if body.is_empty() {
        return Err(ProcessError::new(
            ResponseCode::QUERY_NOT_FOUND,
            "can not find message, maybe time range not correct",
        ));
    }
    Ok(success(request)
        .with_header(&QueryMessageResponseHeader {
            index_last_update_timestamp: messages
                .iter()
                .map(|m| m.store_timestamp)
                .max()
                .unwrap_or(0),
            index_last_update_phyoffset: last_phy,
        })
        .with_body(body.freeze()))
}

/// VIEW_MESSAGE_BY_ID.
pub(crate) fn view_message(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: ViewMessageRequestHeader = request.header()?;
    let bytes = u64::try_from(header.offset)
        .ok()
        .and_then(|offset| {
            let msg = broker.store.look_message_by_offset(offset)?;
            broker.store.get_message_bytes(offset, msg.store_size)
        })
        .ok_or_else(|| {
            ProcessError::system(format!(
                "can not find message by the offset, {}",
                header.offset
            ))
        })?;
    Ok(success(request).with_body(bytes))
}
