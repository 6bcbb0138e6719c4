//! Requests a broker sends to this client on a connection the client
//! opened, answered from the instance's [`Members`]:
//!
//! - CHECK_TRANSACTION_STATE: the group's
//!   [`TransactionChecker`](crate::transaction::TransactionChecker) decides a
//!   half message; the answer is END_TRANSACTION (oneway,
//!   `fromTransactionCheck=true`) on the same connection.
//! - NOTIFY_CONSUMER_IDS_CHANGED: the group's consumer rebalances soon.
//! - RESET_CONSUMER_CLIENT_OFFSET: the broker moved a group's offsets
//!   (`resetOffsetByTime`); the consumer drops the queues it holds, takes
//!   the new offsets and reads on from them.
//! - GET_CONSUMER_STATUS_FROM_CLIENT: the consumer's offsets of a topic
//!   (`getConsumerStatus`).
//! - GET_CONSUMER_RUNNING_INFO: what the consumer is doing
//!   (`consumerStatus`).
//! - CONSUME_MESSAGE_DIRECTLY: the group's listener consumes the message in
//!   the body once more; the answer is its ConsumeMessageDirectlyResult.
//!
//! Anything else is REQUEST_CODE_NOT_SUPPORTED.

use std::collections::BTreeMap;
use std::sync::Weak;

use mq_protocol::acl::Signer;
use mq_protocol::admin_body::{running_info, GetConsumerStatusBody, ResetOffsetBody};
use mq_protocol::header::{
    CheckTransactionStateRequestHeader, ConsumeMessageDirectlyResultRequestHeader,
    ConsumerGroupHeader, GetConsumerRunningInfoRequestHeader, GetConsumerStatusRequestHeader,
    ResetOffsetRequestHeader,
};
use mq_protocol::message::property;
use mq_protocol::{request_code, MessageExt, RemotingCommand, ResponseCode};
use mq_remoting::{Channel, HandlerError, RequestHandler};
use tracing::{debug, info, warn};

use super::members::Members;
use crate::end_transaction::{end_transaction_request, TransactionHandle};
use crate::error::ClientError;

/// Answers the requests brokers send to the client.
pub(super) struct ClientHandler {
    /// The instance's members; gone once the instance is.
    pub(super) members: Weak<Members>,
    /// Reported in running info.
    pub(super) namesrv_addrs: Vec<String>,
    /// Signs the END_TRANSACTION a check-back answers with (a request of
    /// ours, unlike the responses to the broker's other requests).
    pub(super) signer: Option<Signer>,
}

#[mq_remoting::async_trait]
impl RequestHandler for ClientHandler {
    async fn handle(
        &self,
        channel: &Channel,
        request: RemotingCommand,
    ) -> std::result::Result<Option<RemotingCommand>, HandlerError> {
        let Some(members) = self.members.upgrade() else {
            return Ok(Some(mq_remoting::not_supported(&request)));
        };
        let response = match request.code {
            request_code::CHECK_TRANSACTION_STATE => {
                answer_check(&members, self.signer.as_ref(), channel, &request).await?;
                return Ok(None);
            }
            request_code::NOTIFY_CONSUMER_IDS_CHANGED => {
                let header: ConsumerGroupHeader = request.header()?;
                debug!(group = header.consumer_group, broker = %channel.peer_addr(), "consumer ids changed");
                if let Some(consumer) = members.consumer(&header.consumer_group) {
                    consumer.trigger_rebalance();
                }
                return Ok(None);
            }
            request_code::RESET_CONSUMER_CLIENT_OFFSET => reset_offset(&members, &request),
            request_code::GET_CONSUMER_STATUS_FROM_CLIENT => consumer_status(&members, &request),
            request_code::GET_CONSUMER_RUNNING_INFO => {
                running(&members, &self.namesrv_addrs, &request)
            }
            request_code::CONSUME_MESSAGE_DIRECTLY => consume_directly(&members, &request).await,
            _ => mq_remoting::not_supported(&request),
        };
        Ok((!request.is_oneway()).then_some(response))
    }
}

/// Asks the group's checker about the half message in `request` and
/// answers with END_TRANSACTION on the same connection.
async fn answer_check(
    members: &Members,
    signer: Option<&Signer>,
    channel: &Channel,
    request: &RemotingCommand,
) -> std::result::Result<(), HandlerError> {
    let header: CheckTransactionStateRequestHeader = request.header()?;
    let (msg, _) = MessageExt::decode(&request.body, false)?;
    let Some(group) = msg.property(property::PRODUCER_GROUP).map(str::to_owned) else {
        warn!(broker = %channel.peer_addr(), "check-back for a message without a producer group");
        return Ok(());
    };
    let Some(checker) = members.checker(&group) else {
        warn!(group, broker = %channel.peer_addr(), "check-back for a group with no checker here");
        return Ok(());
    };
    let state = checker.check(&msg).await;
    let handle = TransactionHandle {
        broker_addr: channel.peer_addr().to_string(),
        topic: msg.topic.clone(),
        producer_group: group,
        commit_log_offset: msg.commit_log_offset,
        queue_offset: msg.queue_offset,
        msg_id: msg.msg_id(),
        transaction_id: header.transaction_id.clone().or_else(|| {
            msg.property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
                .map(str::to_owned)
        }),
    };
    debug!(
        msg_id = handle.msg_id,
        ?state,
        "answering transaction check"
    );
    let mut end = end_transaction_request(&handle, state, true);
    if let Some(signer) = signer {
        signer.sign(&mut end);
    }
    channel
        .oneway(end)
        .await
        .map_err(|e| Box::new(ClientError::from(e)) as HandlerError)
}

fn error(request: &RemotingCommand, remark: String) -> RemotingCommand {
    RemotingCommand::response_to(request, ResponseCode::SYSTEM_ERROR).with_remark(remark)
}

fn reset_offset(members: &Members, request: &RemotingCommand) -> RemotingCommand {
    let header: ResetOffsetRequestHeader = match request.header() {
        Ok(h) => h,
        Err(e) => return error(request, format!("bad reset header: {e}")),
    };
    let body = match ResetOffsetBody::decode(&request.body) {
        Ok(b) => b,
        Err(e) => return error(request, format!("bad reset body: {e}")),
    };
    let Some(consumer) = members.consumer(&header.group) else {
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

fn consumer_status(members: &Members, request: &RemotingCommand) -> RemotingCommand {
    let header: GetConsumerStatusRequestHeader = match request.header() {
        Ok(h) => h,
        Err(e) => return error(request, format!("bad status header: {e}")),
    };
    let Some(consumer) = members.consumer(&header.group) else {
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

fn running(
    members: &Members,
    namesrv_addrs: &[String],
    request: &RemotingCommand,
) -> RemotingCommand {
    let header: GetConsumerRunningInfoRequestHeader = match request.header() {
        Ok(h) => h,
        Err(e) => return error(request, format!("bad running info header: {e}")),
    };
    let Some(consumer) = members.consumer(&header.consumer_group) else {
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
        namesrv_addrs.join(";"),
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

/// Hands the message in the body to the group's listener; an error when
/// the group has no consumer with a listener here.
async fn consume_directly(members: &Members, request: &RemotingCommand) -> RemotingCommand {
    let header: ConsumeMessageDirectlyResultRequestHeader = match request.header() {
        Ok(h) => h,
        Err(e) => return error(request, format!("bad consume directly header: {e}")),
    };
    let mut msg = match MessageExt::decode(&request.body, true) {
        Ok((msg, _)) => msg,
        Err(e) => return error(request, format!("bad message to consume directly: {e}")),
    };
    if let Err(e) = crate::compress::inflate(&mut msg) {
        return error(request, format!("the message's body does not inflate: {e}"));
    }
    let run = members
        .consumer(&header.consumer_group)
        .and_then(|consumer| consumer.consume_directly(msg));
    let Some(run) = run else {
        return error(
            request,
            format!(
                "The Consumer Group <{}> not exist in this consumer",
                header.consumer_group
            ),
        );
    };
    let result = run.await;
    RemotingCommand::response_to(request, ResponseCode::SUCCESS).with_body(result.encode())
}
