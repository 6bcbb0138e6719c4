//! Requests a broker sends to this client for an operator (`mqadmin`):
//!
//! - RESET_CONSUMER_CLIENT_OFFSET: the broker moved a group's offsets
//!   (`resetOffsetByTime`); the consumer drops the queues it holds, takes
//!   the new offsets and reads on from them.
//! - GET_CONSUMER_STATUS_FROM_CLIENT: the consumer's offsets of a topic
//!   (`getConsumerStatus`).
//! - GET_CONSUMER_RUNNING_INFO: what the consumer is doing
//!   (`consumerStatus`).
//!
//! Each is served by the group's [`ConsumerRegistration`].

use std::collections::BTreeMap;

use mq_protocol::admin_body::{
    running_info, ConsumerRunningInfo, GetConsumerStatusBody, ResetOffsetBody,
};
use mq_protocol::body::ConsumerData;
use mq_protocol::header::{
    GetConsumerRunningInfoRequestHeader, GetConsumerStatusRequestHeader, ResetOffsetRequestHeader,
};
use mq_protocol::{request_code, RemotingCommand, ResponseCode};
use tracing::{info, warn};

use crate::instance::ClientInstance;

fn error(request: &RemotingCommand, remark: String) -> RemotingCommand {
    RemotingCommand::response_to(request, ResponseCode::SYSTEM_ERROR).with_remark(remark)
}

/// Answers one of the requests above (`None` for a oneway request);
/// anything else is REQUEST_CODE_NOT_SUPPORTED.
pub(crate) fn answer(
    instance: &ClientInstance,
    request: &RemotingCommand,
) -> Option<RemotingCommand> {
    let response = match request.code {
        request_code::RESET_CONSUMER_CLIENT_OFFSET => reset_offset(instance, request),
        request_code::GET_CONSUMER_STATUS_FROM_CLIENT => consumer_status(instance, request),
        request_code::GET_CONSUMER_RUNNING_INFO => running(instance, request),
        _ => mq_remoting::not_supported(request),
    };
    (!request.is_oneway()).then_some(response)
}

fn reset_offset(instance: &ClientInstance, request: &RemotingCommand) -> RemotingCommand {
    let header: ResetOffsetRequestHeader = match request.header() {
        Ok(h) => h,
        Err(e) => return error(request, format!("bad reset header: {e}")),
    };
    let body = match ResetOffsetBody::decode(&request.body) {
        Ok(b) => b,
        Err(e) => return error(request, format!("bad reset body: {e}")),
    };
    let Some(consumer) = instance.consumer(&header.group) else {
        return error(
            request,
            format!("no consumer of group {} here", header.group),
        );
    };
    let offsets: BTreeMap<_, _> = body
        .offset_table
        .into_iter()
        .filter(|(mq, _)| mq.topic == header.topic)
        .collect();
    info!(
        group = header.group,
        topic = header.topic,
        queues = offsets.len(),
        "offsets reset by the broker"
    );
    consumer.reset_offsets(&header.topic, &offsets);
    RemotingCommand::response_to(request, ResponseCode::SUCCESS)
}

fn consumer_status(instance: &ClientInstance, request: &RemotingCommand) -> RemotingCommand {
    let header: GetConsumerStatusRequestHeader = match request.header() {
        Ok(h) => h,
        Err(e) => return error(request, format!("bad status header: {e}")),
    };
    let Some(consumer) = instance.consumer(&header.group) else {
        return error(
            request,
            format!("no consumer of group {} here", header.group),
        );
    };
    let body = GetConsumerStatusBody {
        message_queue_table: consumer.topic_offsets(&header.topic),
        consumer_table: BTreeMap::new(),
    };
    RemotingCommand::response_to(request, ResponseCode::SUCCESS).with_body(body.encode())
}

fn running(instance: &ClientInstance, request: &RemotingCommand) -> RemotingCommand {
    let header: GetConsumerRunningInfoRequestHeader = match request.header() {
        Ok(h) => h,
        Err(e) => return error(request, format!("bad running info header: {e}")),
    };
    let Some(consumer) = instance.consumer(&header.consumer_group) else {
        warn!(
            group = header.consumer_group,
            "running info asked for a group not here"
        );
        return error(
            request,
            format!("the consumer group <{}> not exist", header.consumer_group),
        );
    };
    let mut info = consumer.running_info();
    info.properties.insert(
        running_info::PROP_NAMESERVER_ADDR.to_owned(),
        instance.namesrv_addrs().join(";"),
    );
    info.properties.insert(
        running_info::PROP_CLIENT_VERSION.to_owned(),
        format!("rocketshop {}", env!("CARGO_PKG_VERSION")),
    );
    if header.jstack_enable.unwrap_or(false) {
        // There is no JVM to dump; say what the process is instead.
        info.jstack = Some(format!(
            "process {} (Rust, tokio); thread dumps are a JVM feature",
            std::process::id()
        ));
    }
    RemotingCommand::response_to(request, ResponseCode::SUCCESS).with_body(info.encode())
}

/// Running info every consumer can give: its subscriptions and kind.
pub(crate) fn basic_running_info(data: &ConsumerData) -> ConsumerRunningInfo {
    let mut info = ConsumerRunningInfo {
        subscription_set: data.subscription_data_set.clone(),
        ..ConsumerRunningInfo::default()
    };
    let consume_type = serde_json::to_value(data.consume_type)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    info.properties
        .insert(running_info::PROP_CONSUME_TYPE.to_owned(), consume_type);
    for (key, value) in [
        ("messageModel", serde_json::to_value(data.message_model)),
        (
            "consumeFromWhere",
            serde_json::to_value(data.consume_from_where),
        ),
    ] {
        if let Some(v) = value.ok().and_then(|v| v.as_str().map(str::to_owned)) {
            info.properties.insert(key.to_owned(), v);
        }
    }
    info.properties
        .insert("consumerGroup".to_owned(), data.group_name.clone());
    info
}
