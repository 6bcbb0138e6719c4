//! Request dispatch: one `match` from request code to the function that
//! serves it. Unknown codes answer REQUEST_CODE_NOT_SUPPORTED.

mod broker;
mod config;
mod kv;
mod route;

use mq_protocol::{request_code as rc, ProtocolError, RemotingCommand, ResponseCode};
use mq_remoting::{async_trait, not_supported, Channel, HandlerError, RequestHandler};
use tracing::{debug, info};

use crate::server::NameServer;

#[async_trait]
impl RequestHandler for NameServer {
    async fn handle(
        &self,
        channel: &Channel,
        request: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, HandlerError> {
        debug!(peer = %channel.peer_addr(), code = request.code, "request");
        if let Some(acl) = self.acl() {
            // A refusal is an answer like any other: the connection stays.
            if let Err(refusal) = acl.check(channel.peer_addr().ip(), &request) {
                debug!(code = request.code, peer = %channel.peer_addr(), %refusal, "ACL refused");
                return Ok(Some(refusal.into_response(&request)));
            }
        }
        let response = match request.code {
            rc::REGISTER_BROKER => broker::register_broker(self, channel, &request)?,
            rc::UNREGISTER_BROKER => broker::unregister_broker(self, &request)?,
            rc::QUERY_DATA_VERSION => broker::query_data_version(self, &request)?,
            rc::GET_ROUTEINFO_BY_TOPIC => route::get_route_info_by_topic(self, &request)?,
            rc::GET_BROKER_CLUSTER_INFO => route::get_broker_cluster_info(self, &request),
            rc::WIPE_WRITE_PERM_OF_BROKER => route::wipe_write_perm_of_broker(self, &request)?,
            rc::ADD_WRITE_PERM_OF_BROKER => route::add_write_perm_of_broker(self, &request)?,
            rc::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => route::get_all_topic_list(self, &request),
            rc::DELETE_TOPIC_IN_NAMESRV => route::delete_topic(self, &request)?,
            rc::REGISTER_TOPIC_IN_NAMESRV => route::register_topic(self, &request)?,
            rc::GET_TOPICS_BY_CLUSTER => route::get_topics_by_cluster(self, &request)?,
            rc::GET_SYSTEM_TOPIC_LIST_FROM_NS => route::get_system_topic_list(self, &request),
            rc::PUT_KV_CONFIG => kv::put_kv_config(self, &request)?,
            rc::GET_KV_CONFIG => kv::get_kv_config(self, &request)?,
            rc::DELETE_KV_CONFIG => kv::delete_kv_config(self, &request)?,
            rc::GET_KVLIST_BY_NAMESPACE => kv::get_kv_list_by_namespace(self, &request)?,
            rc::UPDATE_NAMESRV_CONFIG => config::update_config(self, channel, &request),
            rc::GET_NAMESRV_CONFIG => config::get_config(self, &request),
            _ => not_supported(&request),
        };
        Ok(Some(response))
    }

    fn on_close(&self, channel: &Channel) {
        for addr in self.write_routes().on_channel_closed(channel.id()) {
            info!(broker_addr = addr, peer = %channel.peer_addr(), "broker connection closed; broker removed");
        }
    }
}

/// A SUCCESS response to `request`.
fn success(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response_to(request, ResponseCode::SUCCESS)
}

/// A header field the request must carry.
fn required<'a>(request: &'a RemotingCommand, key: &'static str) -> Result<&'a str, ProtocolError> {
    request.field(key).ok_or(ProtocolError::MissingField(key))
}

fn required_i64(request: &RemotingCommand, key: &'static str) -> Result<i64, ProtocolError> {
    mq_protocol::header::parse_field(key, required(request, key)?)
}

/// An optional boolean header field, read as Java's `Boolean.parseBoolean`.
fn optional_bool(request: &RemotingCommand, key: &str) -> bool {
    request
        .field(key)
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}
