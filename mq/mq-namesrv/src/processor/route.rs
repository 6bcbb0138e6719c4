//! Route queries and topic/permission administration.

use mq_protocol::route::{decode_json, encode_json, TopicRouteData, NAMESPACE_ORDER_TOPIC_CONFIG};
use mq_protocol::{RemotingCommand, ResponseCode};
use mq_remoting::HandlerError;
use tracing::info;

use super::{required, success};
use crate::server::NameServer;

/// RocketMQ's FAQ page for a topic that has no route.
const APPLY_TOPIC_URL: &str = "http://rocketmq.apache.org/docs/faq/";

/// Header `topic`; body `TopicRouteData`, or TOPIC_NOT_EXIST.
pub(super) fn get_route_info_by_topic(
    server: &NameServer,
    request: &RemotingCommand,
) -> Result<RemotingCommand, HandlerError> {
    let topic = required(request, "topic")?;
    let route = server.read_routes().pickup_topic_route_data(topic);
    let Some(mut route) = route else {
        return Ok(RemotingCommand::response_to(request, ResponseCode::TOPIC_NOT_EXIST).with_remark(format!(
            "No topic route info in name server for the topic: {topic}\nSee {APPLY_TOPIC_URL} for further details."
        )));
    };
    if server.read_config().order_message_enable {
        route.order_topic_conf = server
            .kv()
            .get(NAMESPACE_ORDER_TOPIC_CONFIG, topic)
            .map(str::to_owned);
    }
    Ok(success(request).with_body(encode_json(&route)))
}

/// Body `ClusterInfo`.
pub(super) fn get_broker_cluster_info(
    server: &NameServer,
    request: &RemotingCommand,
) -> RemotingCommand {
    success(request).with_body(encode_json(&server.read_routes().cluster_info()))
}

/// Header `brokerName`; answers header `wipeTopicCount`.
pub(super) fn wipe_write_perm_of_broker(
    server: &NameServer,
    request: &RemotingCommand,
) -> Result<RemotingCommand, HandlerError> {
    let broker_name = required(request, "brokerName")?;
    let count = server.write_routes().wipe_write_perm(broker_name);
    info!(broker_name, topics = count, "write permission wiped");
    Ok(success(request).with_field("wipeTopicCount", count))
}

/// Header `brokerName`; answers header `addTopicCount`.
pub(super) fn add_write_perm_of_broker(
    server: &NameServer,
    request: &RemotingCommand,
) -> Result<RemotingCommand, HandlerError> {
    let broker_name = required(request, "brokerName")?;
    let count = server.write_routes().add_write_perm(broker_name);
    info!(broker_name, topics = count, "write permission added");
    Ok(success(request).with_field("addTopicCount", count))
}

/// Body `TopicList` of every topic.
pub(super) fn get_all_topic_list(
    server: &NameServer,
    request: &RemotingCommand,
) -> RemotingCommand {
    success(request).with_body(encode_json(&server.read_routes().all_topic_list()))
}

/// Header `topic` and, optionally, `clusterName`.
pub(super) fn delete_topic(
    server: &NameServer,
    request: &RemotingCommand,
) -> Result<RemotingCommand, HandlerError> {
    let topic = required(request, "topic")?;
    let cluster = request.field("clusterName").filter(|c| !c.is_empty());
    server.write_routes().delete_topic(topic, cluster);
    Ok(success(request))
}

/// Header `topic`, body `TopicRouteData` whose queue data is added for the
/// broker groups that are registered.
pub(super) fn register_topic(
    server: &NameServer,
    request: &RemotingCommand,
) -> Result<RemotingCommand, HandlerError> {
    let topic = required(request, "topic")?;
    if !request.body.is_empty() {
        let route: TopicRouteData = decode_json(&request.body)
            .map_err(|e| format!("Failed to decode TopicRouteData: {e}"))?;
        server
            .write_routes()
            .register_topic(topic, route.queue_datas);
    }
    Ok(success(request))
}

/// Header `cluster`; body `TopicList`.
pub(super) fn get_topics_by_cluster(
    server: &NameServer,
    request: &RemotingCommand,
) -> Result<RemotingCommand, HandlerError> {
    let cluster = required(request, "cluster")?;
    Ok(success(request).with_body(encode_json(
        &server.read_routes().topics_by_cluster(cluster),
    )))
}

/// Body `TopicList` of cluster and broker names plus one broker address.
pub(super) fn get_system_topic_list(
    server: &NameServer,
    request: &RemotingCommand,
) -> RemotingCommand {
    success(request).with_body(encode_json(&server.read_routes().system_topic_list()))
}
