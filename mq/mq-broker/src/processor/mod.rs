//! Request processing: one `match` from request code to the function that
//! serves it, one file per family. Every processor gets the request and
//! returns the response or a [`error::ProcessError`] (response code and
//! remark) that the dispatcher answers with; a malformed header becomes a
//! clear error response, never a dropped connection.

use std::sync::Arc;
use std::time::Instant;

use mq_acl::Validator;
use mq_protocol::{request_code as code, RemotingCommand, ResponseCode};
use mq_remoting::{async_trait, not_supported, Channel, HandlerError, RequestHandler};
use tracing::debug;

use crate::broker::Broker;
use crate::metrics::RpcMetrics;
use error::Processed;

pub(crate) mod admin;
pub(crate) mod broker_admin;
pub(crate) mod consumer;
pub(crate) mod consumer_admin;
pub(crate) mod error;
pub(crate) mod filter;
pub(crate) mod inspect;
pub(crate) mod pull;
pub(crate) mod query;
pub(crate) mod send;
pub(crate) mod transaction;

/// Serves the broker's remoting port.
pub struct BrokerHandler {
    broker: Arc<Broker>,
    /// The plain ACL check (`aclEnable`); `None` costs one branch per request.
    acl: Option<Arc<Validator>>,
    /// Request latencies for the metrics endpoint.
    rpc: RpcMetrics,
}

impl BrokerHandler {
    pub(crate) fn new(broker: Arc<Broker>, acl: Option<Arc<Validator>>, rpc: RpcMetrics) -> Self {
        BrokerHandler { broker, acl, rpc }
    }

    /// The processor of `request`'s code; unknown codes are answered
    /// REQUEST_CODE_NOT_SUPPORTED.
    async fn dispatch(&self, channel: &Channel, request: &RemotingCommand) -> Processed {
        let b = &self.broker;
        match request.code {
            code::SEND_MESSAGE | code::SEND_MESSAGE_V2 | code::SEND_BATCH_MESSAGE => {
                send::send_message(b, channel.peer_addr(), request).await
            }
            code::END_TRANSACTION => transaction::end_transaction(b, request).await,
            code::GET_TRANSACTION_HALF_STATUS => transaction::half_status(b, request),
            code::CONSUMER_SEND_MSG_BACK => send::consumer_send_msg_back(b, request).await,
            code::PULL_MESSAGE => pull::pull_message(b, request).await,
            code::HEART_BEAT => consumer::heartbeat(b, channel, request),
            code::UNREGISTER_CLIENT => consumer::unregister_client(b, channel, request),
            code::CHECK_CLIENT_CONFIG => consumer::check_client_config(b, request),
            code::GET_CONSUMER_LIST_BY_GROUP => consumer::consumer_list(b, request),
            code::QUERY_CONSUMER_OFFSET => consumer::query_offset(b, request),
            code::UPDATE_CONSUMER_OFFSET => consumer::update_offset(b, request),
            code::GET_CONSUMER_CONNECTION_LIST => consumer::consumer_connections(b, request),
            code::GET_PRODUCER_CONNECTION_LIST => consumer::producer_connections(b, request),
            code::LOCK_BATCH_MQ => consumer::lock_batch(b, request),
            code::UNLOCK_BATCH_MQ => consumer::unlock_batch(b, request),
            code::GET_MAX_OFFSET => query::max_offset(b, request),
            code::GET_MIN_OFFSET => query::min_offset(b, request),
            code::GET_EARLIEST_MSG_STORETIME => query::earliest_store_time(b, request),
            code::SEARCH_OFFSET_BY_TIMESTAMP => query::search_offset(b, request),
            code::QUERY_MESSAGE => query::query_message(b, request),
            code::VIEW_MESSAGE_BY_ID => query::view_message(b, request),
            code::UPDATE_AND_CREATE_TOPIC => admin::create_topic(b, request),
            code::DELETE_TOPIC_IN_BROKER => admin::delete_topic(b, request),
            code::GET_ALL_TOPIC_CONFIG => admin::all_topic_config(b, request),
            code::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP => admin::create_group(b, request),
            code::DELETE_SUBSCRIPTIONGROUP => admin::delete_group(b, request),
            code::GET_ALL_SUBSCRIPTIONGROUP_CONFIG => admin::all_group_config(b, request),
            code::GET_BROKER_CONFIG => admin::broker_config(b, request),
            code::GET_BROKER_RUNTIME_INFO => admin::runtime_info(b, request),
            code::GET_ALL_CONSUMER_OFFSET => admin::all_consumer_offsets(b, request),
            code::GET_ALL_DELAY_OFFSET => admin::all_delay_offsets(b, request),
            code::GET_TIMER_CHECK_POINT => admin::timer_checkpoint(b, request),
            code::UPDATE_BROKER_CONFIG => broker_admin::update_config(b, request),
            code::CLEAN_EXPIRED_CONSUMEQUEUE => broker_admin::clean_expired_cq(b, request),
            code::CLEAN_UNUSED_TOPIC => broker_admin::clean_unused_topic(b, request),
            code::GET_TOPIC_STATS_INFO => inspect::topic_stats(b, request),
            code::GET_CONSUME_STATS => inspect::consume_stats(b, request),
            code::GET_BROKER_CONSUME_STATS => inspect::broker_consume_stats(b, request),
            code::VIEW_BROKER_STATS_DATA => inspect::view_stats(b, request),
            code::QUERY_TOPIC_CONSUME_BY_WHO => inspect::consumed_by(b, request),
            code::INVOKE_BROKER_TO_RESET_OFFSET => consumer_admin::reset_offset(b, request).await,
            code::INVOKE_BROKER_TO_GET_CONSUMER_STATUS => {
                consumer_admin::consumer_status(b, request).await
            }
            code::GET_CONSUMER_RUNNING_INFO => consumer_admin::running_info(b, request).await,
            code::CONSUME_MESSAGE_DIRECTLY => consumer_admin::consume_directly(b, request).await,
            code::CLONE_GROUP_OFFSET => consumer_admin::clone_group_offset(b, request),
            other => {
                debug!(code = other, peer = %channel.peer_addr(), "unsupported request code");
                Ok(not_supported(request))
            }
        }
    }
}

impl BrokerHandler {
    /// The response to `request` from what its processor returned, after
    /// the bookkeeping every request gets: a registration, awaited, when a
    /// send, heartbeat or admin request created or deleted a topic, and the
    /// request's latency.
    async fn answer(
        &self,
        request: &RemotingCommand,
        processed: Processed,
        started: Instant,
    ) -> RemotingCommand {
        let response = processed.unwrap_or_else(|e| e.into_response(request));
        if matches!(
            request.code,
            code::SEND_MESSAGE
                | code::SEND_MESSAGE_V2
                | code::SEND_BATCH_MESSAGE
                | code::HEART_BEAT
                | code::CONSUMER_SEND_MSG_BACK
                | code::UPDATE_AND_CREATE_TOPIC
                | code::DELETE_TOPIC_IN_BROKER
        ) {
            crate::registration::register_if_topics_changed(&self.broker).await;
        }
        self.rpc.observe(request.code, response.code, started);
        response
    }
}

/// The broker's own 5.x endpoint (Local mode) sends and ends transactions
/// without a connection; the rest of its requests (heartbeats, pulls,
/// offsets) depend on the connection or are rare and take the port. The
/// endpoint checks its callers' rights itself, so no ACL check is made
/// here; the born host of its messages is the broker's own address.
#[async_trait]
impl mq_client::InProcessBroker for BrokerHandler {
    async fn serve(&self, request: RemotingCommand) -> Result<RemotingCommand, RemotingCommand> {
        let started = Instant::now();
        let b = &self.broker;
        let processed = match request.code {
            code::SEND_MESSAGE | code::SEND_MESSAGE_V2 | code::SEND_BATCH_MESSAGE => {
                send::send_message(b, b.store_host, &request).await
            }
            code::END_TRANSACTION => transaction::end_transaction(b, &request).await,
            _ => return Err(request),
        };
        Ok(self.answer(&request, processed, started).await)
    }
}

pub(crate) fn success(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response_to(request, ResponseCode::SUCCESS)
}

#[async_trait]
impl RequestHandler for BrokerHandler {
    async fn handle(
        &self,
        channel: &Channel,
        request: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, HandlerError> {
        let started = Instant::now();
        if let Some(acl) = &self.acl {
            // A refusal is an answer like any other: the connection stays.
            if let Err(refusal) = acl.check(channel.peer_addr().ip(), &request) {
                debug!(code = request.code, peer = %channel.peer_addr(), %refusal, "ACL refused");
                let response = refusal.into_response(&request);
                self.rpc.observe(request.code, response.code, started);
                return Ok(Some(response));
            }
        }
        let processed = self.dispatch(channel, &request).await;
        Ok(Some(self.answer(&request, processed, started).await))
    }

    fn on_close(&self, channel: &Channel) {
        for group in self.broker.clients.channel_closed(channel.id()) {
            self.broker.notify_consumer_ids_changed(&group);
        }
    }
}
