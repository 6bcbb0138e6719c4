//! Operator requests about consumer groups that may reach into the
//! consumers themselves: INVOKE_BROKER_TO_RESET_OFFSET (the broker moves
//! the group's offsets and tells each member with
//! RESET_CONSUMER_CLIENT_OFFSET), INVOKE_BROKER_TO_GET_CONSUMER_STATUS
//! (asks each member, GET_CONSUMER_STATUS_FROM_CLIENT),
//! GET_CONSUMER_RUNNING_INFO (forwarded to the named client),
//! CONSUME_MESSAGE_DIRECTLY (a stored message handed to one member's
//! listener) and CLONE_GROUP_OFFSET.

use std::collections::BTreeSet;
use std::time::Duration;

use mq_protocol::admin_body::{GetConsumerStatusBody, ResetOffsetBody};
use mq_protocol::body::MessageQueue;
use mq_protocol::header::{
    CloneGroupOffsetRequestHeader, ConsumeMessageDirectlyResultRequestHeader,
    GetConsumerRunningInfoRequestHeader, GetConsumerStatusRequestHeader, ResetOffsetRequestHeader,
};
use mq_protocol::name::{GroupName, TopicName};
use mq_protocol::{request_code, RemotingCommand, ResponseCode};
use tracing::{info, warn};

use super::error::{ProcessError, Processed};
use super::success;
use crate::broker::Broker;
use crate::manager::clients::ClientInfo;

/// How long a consumer has to answer a status or running-info request.
const CLIENT_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Moves the group's offsets of `topic` to the first message stored at or
/// after `timestamp` (-1: the end of each queue). Without `isForce` an
/// offset only moves back. The new offsets are committed here and sent to
/// every online member, which drops what it holds and reads on from them.
pub(crate) async fn reset_offset(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: ResetOffsetRequestHeader = request.header()?;
    GroupName::parse(&header.group).map_err(ProcessError::system)?;
    let config = super::inspect::existing_topic(broker, &header.topic)?;
    let committed = broker.offsets.queues(&header.group, &header.topic);
    if committed.is_empty() && !broker.clients.is_online(&header.group) {
        return Err(ProcessError::new(
            ResponseCode::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!(
                "the consumer group <{}> has no offsets on topic <{}> and is not online",
                header.group, header.topic
            ),
        ));
    }
    let broker_name = broker.config().broker_name.clone();
    let mut body = ResetOffsetBody::default();
    for queue_id in 0..config.read_queue_nums {
        let consumer_offset = committed.get(&queue_id).copied().unwrap_or(0);
        let by_time = if header.timestamp == -1 {
            broker.store.max_offset_in_queue(&header.topic, queue_id)
        } else {
            broker
                .store
                .offset_by_timestamp(&header.topic, queue_id, header.timestamp)
        } as i64;
        let offset = if header.is_force || by_time < consumer_offset {
            by_time
        } else {
            consumer_offset
        };
        body.offset_table.insert(
            MessageQueue {
                topic: header.topic.clone(),
                broker_name: broker_name.clone(),
                queue_id,
            },
            offset,
        );
    }
    let reset: Vec<(i32, i64)> = body
        .offset_table
        .iter()
        .map(|(mq, offset)| (mq.queue_id, *offset))
        .collect();
    broker
        .offsets
        .commit_all(&header.group, &header.topic, &reset);
    broker.persist_offsets();
    let encoded = body.encode();
    for member in broker.clients.members(&header.group) {
        let notice = RemotingCommand::request(request_code::RESET_CONSUMER_CLIENT_OFFSET)
            .with_header(&header)
            .with_body(encoded.clone())
            .oneway();
        if let Err(e) = member.channel.oneway(notice).await {
            warn!(client = member.client_id, error = %e, "telling a consumer about an offset reset failed");
        }
    }
    info!(
        group = header.group,
        topic = header.topic,
        timestamp = header.timestamp,
        "consumer offsets reset"
    );
    Ok(success(request).with_body(encoded))
}

/// Asks every online member of the group (or the one at `clientAddr`) for
/// its offsets of the topic.
pub(crate) async fn consumer_status(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: GetConsumerStatusRequestHeader = request.header()?;
    let wanted = header.client_addr.as_deref().filter(|a| !a.is_empty());
    let members: Vec<ClientInfo> = broker
        .clients
        .members(&header.group)
        .into_iter()
        .filter(|m| {
            wanted.is_none_or(|a| a == m.client_id || a == m.channel.peer_addr().to_string())
        })
        .collect();
    if members.is_empty() {
        return Err(ProcessError::system(format!(
            "no consumer of group [{}] is online{}",
            header.group,
            wanted.map(|a| format!(" at {a}")).unwrap_or_default()
        )));
    }
    let mut body = GetConsumerStatusBody::default();
    for member in members {
        let ask = RemotingCommand::request(request_code::GET_CONSUMER_STATUS_FROM_CLIENT)
            .with_header(&GetConsumerStatusRequestHeader {
                client_addr: None,
                ..header.clone()
            });
        match member.channel.invoke(ask, CLIENT_ANSWER_TIMEOUT).await {
            Ok(answer) if answer.code == i32::from(ResponseCode::SUCCESS) => {
                match GetConsumerStatusBody::decode(&answer.body) {
                    Ok(status) => {
                        body.consumer_table
                            .insert(member.client_id.clone(), status.message_queue_table);
                    }
                    Err(e) => {
                        warn!(client = member.client_id, error = %e, "bad consumer status")
                    }
                }
            }
            Ok(answer) => {
                warn!(client = member.client_id, code = answer.code, remark = ?answer.remark, "consumer refused its status")
            }
            Err(e) => warn!(client = member.client_id, error = %e, "consumer status failed"),
        }
    }
    Ok(success(request).with_body(body.encode()))
}

/// Forwards GET_CONSUMER_RUNNING_INFO to the client and answers with what
/// it says.
pub(crate) async fn running_info(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: GetConsumerRunningInfoRequestHeader = request.header()?;
    let member = broker
        .clients
        .members(&header.consumer_group)
        .into_iter()
        .find(|m| m.client_id == header.client_id)
        .ok_or_else(|| {
            ProcessError::system(format!(
                "the consumer <{}> <{}> is not online",
                header.consumer_group, header.client_id
            ))
        })?;
    let ask =
        RemotingCommand::request(request_code::GET_CONSUMER_RUNNING_INFO).with_header(&header);
    let answer = member
        .channel
        .invoke(ask, CLIENT_ANSWER_TIMEOUT)
        .await
        .map_err(|e| {
            ProcessError::system(format!(
                "the consumer <{}> did not answer: {e}",
                header.client_id
            ))
        })?;
    let mut response = RemotingCommand::response_to(
        request,
        ResponseCode::from_i32(answer.code).unwrap_or(ResponseCode::SYSTEM_ERROR),
    );
    response.remark = answer.remark;
    response.body = answer.body;
    Ok(response)
}

/// CONSUME_MESSAGE_DIRECTLY: reads the message `msgId` names from the
/// store and hands it to one live member of the group (the one named by
/// `clientId`, else the first online), whose listener consumes it; the
/// answer is the member's ConsumeMessageDirectlyResult. Offsets do not
/// move: this is a re-run of the listener, not a delivery.
pub(crate) async fn consume_directly(broker: &Broker, request: &RemotingCommand) -> Processed {
    let mut header: ConsumeMessageDirectlyResultRequestHeader = request.header()?;
    GroupName::parse(&header.consumer_group).map_err(ProcessError::system)?;
    let msg_id = header.msg_id.clone().unwrap_or_default();
    let (_, offset) = mq_protocol::message::decode_message_id(&msg_id)
        .map_err(|_| ProcessError::system(format!("<{msg_id}> is not an offset message id")))?;
    let bytes = u64::try_from(offset)
        .ok()
        .and_then(|offset| {
            let msg = broker.store.look_message_by_offset(offset)?;
            broker.store.get_message_bytes(offset, msg.store_size)
        })
        .ok_or_else(|| {
            ProcessError::new(
                ResponseCode::NO_MESSAGE,
                format!("no message is stored at the offset of <{msg_id}>"),
            )
        })?;
    let wanted = header.client_id.as_deref().filter(|c| !c.is_empty());
    let member = broker
        .clients
        .members(&header.consumer_group)
        .into_iter()
        .find(|m| wanted.is_none_or(|c| c == m.client_id))
        .ok_or_else(|| {
            ProcessError::system(format!(
                "the consumer <{}> <{}> is not online",
                header.consumer_group,
                wanted.unwrap_or("any client")
            ))
        })?;
    header.broker_name = Some(broker.config().broker_name.clone());
    header.client_id = Some(member.client_id.clone());
    let ask = RemotingCommand::request(request_code::CONSUME_MESSAGE_DIRECTLY)
        .with_header(&header)
        .with_body(bytes);
    let answer = match member.channel.invoke(ask, CLIENT_ANSWER_TIMEOUT).await {
        Ok(answer) => answer,
        Err(e @ mq_remoting::RemotingError::Timeout { .. }) => {
            return Err(ProcessError::new(
                ResponseCode::CONSUME_MSG_TIMEOUT,
                format!(
                    "consumer <{}> <{}> timeout: {e}",
                    header.consumer_group, member.client_id
                ),
            ))
        }
        Err(e) => {
            return Err(ProcessError::system(format!(
                "invoke consumer <{}> <{}> failed: {e}",
                header.consumer_group, member.client_id
            )))
        }
    };
    info!(
        group = header.consumer_group,
        client = member.client_id,
        msg_id,
        code = answer.code,
        "message consumed directly"
    );
    let mut response = RemotingCommand::response_to(
        request,
        ResponseCode::from_i32(answer.code).unwrap_or(ResponseCode::SYSTEM_ERROR),
    );
    response.remark = answer.remark;
    response.body = answer.body;
    Ok(response)
}

/// Copies `srcGroup`'s offsets to `destGroup`, for one topic or all that
/// `srcGroup` has offsets on. Unless `offline`, a topic the online source
/// group no longer subscribes to is skipped.
pub(crate) fn clone_group_offset(broker: &Broker, request: &RemotingCommand) -> Processed {
    let header: CloneGroupOffsetRequestHeader = request.header()?;
    // Offsets are written under the destination group's name.
    GroupName::parse(&header.src_group).map_err(ProcessError::system)?;
    GroupName::parse(&header.dest_group).map_err(ProcessError::system)?;
    if let Some(topic) = header.topic.as_deref().filter(|t| !t.is_empty()) {
        TopicName::parse_internal(topic).map_err(ProcessError::system)?;
    }
    let topics: Vec<String> = match header.topic.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => vec![t.to_owned()],
        None => broker.offsets.topics_of_group(&header.src_group),
    };
    let subscribed: Option<BTreeSet<String>> = if header.offline.unwrap_or(false) {
        None
    } else {
        broker.clients.subscribed_topics(&header.src_group)
    };
    let mut cloned = 0;
    for topic_name in topics {
        if !broker.topics.contains(&topic_name) {
            continue;
        }
        if subscribed
            .as_ref()
            .is_some_and(|s| !s.contains(&topic_name))
        {
            continue;
        }
        broker
            .offsets
            .clone_group(&header.src_group, &header.dest_group, &topic_name);
        cloned += 1;
    }
    broker.persist_offsets();
    info!(
        src = header.src_group,
        dest = header.dest_group,
        topics = cloned,
        "group offsets cloned"
    );
    Ok(success(request))
}
