//! REGISTER_BROKER, UNREGISTER_BROKER and QUERY_DATA_VERSION.

use mq_protocol::route::{
    decode_json, encode_json, DataVersion, RegisterBrokerBody, TopicConfigSerializeWrapper,
    NAMESPACE_ORDER_TOPIC_CONFIG,
};
use mq_protocol::{RemotingCommand, ResponseCode};
use mq_remoting::{Channel, HandlerError};

use super::{optional_bool, required, required_i64, success};
use crate::routeinfo::BrokerRegistration;
use crate::server::NameServer;

/// Header `brokerName, brokerAddr, clusterName, haServerAddr, brokerId,
/// compressed, bodyCrc32`; body `RegisterBrokerBody` (or, from brokers older
/// than 3.0.11, a bare `TopicConfigSerializeWrapper`). Answers header
/// `haServerAddr, masterAddr` and the ORDER_TOPIC_CONFIG KV table as body.
pub(super) fn register_broker(
    server: &NameServer,
    channel: &Channel,
    request: &RemotingCommand,
) -> Result<RemotingCommand, HandlerError> {
    let broker_name = required(request, "brokerName")?;
    let broker_addr = required(request, "brokerAddr")?;
    let cluster_name = required(request, "clusterName")?;
    let ha_server_addr = required(request, "haServerAddr")?;
    let broker_id = required_i64(request, "brokerId")?;
    let body_crc = request
        .field("bodyCrc32")
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(0);
    if body_crc != 0 && body_crc != java_crc32(&request.body) {
        tracing::warn!(peer = %channel.peer_addr(), broker_addr, "register broker: body crc32 does not match");
        return Ok(
            RemotingCommand::response_to(request, ResponseCode::SYSTEM_ERROR)
                .with_remark("crc32 not match"),
        );
    }
    if optional_bool(request, "compressed") && !request.body.is_empty() {
        return Err("compressed RegisterBrokerBody is not supported; set compressedRegister=false on the broker".into());
    }
    let (topic_config, filter_server_list) = decode_register_body(&request.body)?;
    let registration = BrokerRegistration {
        cluster_name: cluster_name.to_owned(),
        broker_addr: broker_addr.to_owned(),
        broker_name: broker_name.to_owned(),
        broker_id,
        ha_server_addr: ha_server_addr.to_owned(),
        topic_config,
        filter_server_list,
        channel: Some(channel.clone()),
    };
    let now = server.now_millis();
    let result = server.write_routes().register_broker(registration, now);
    let mut response = success(request);
    if let Some(ha) = result.ha_server_addr {
        response = response.with_field("haServerAddr", ha);
    }
    if let Some(master) = result.master_addr {
        response = response.with_field("masterAddr", master);
    }
    if let Some(table) = server.kv().list(NAMESPACE_ORDER_TOPIC_CONFIG) {
        response = response.with_body(encode_json(&table));
    }
    Ok(response)
}

/// The topics and filter servers a registration carries.
fn decode_register_body(
    body: &[u8],
) -> Result<(TopicConfigSerializeWrapper, Option<Vec<String>>), HandlerError> {
    if body.is_empty() {
        return Ok((TopicConfigSerializeWrapper::default(), Some(Vec::new())));
    }
    let value: serde_json::Value =
        decode_json(body).map_err(|e| format!("Failed to decode RegisterBrokerBody: {e}"))?;
    if value.get("topicConfigSerializeWrapper").is_some() || value.get("filterServerList").is_some()
    {
        let body: RegisterBrokerBody = serde_json::from_value(value)
            .map_err(|e| format!("Failed to decode RegisterBrokerBody: {e}"))?;
        Ok((
            body.topic_config_serialize_wrapper,
            Some(body.filter_server_list),
        ))
    } else {
        let wrapper: TopicConfigSerializeWrapper = serde_json::from_value(value)
            .map_err(|e| format!("Failed to decode TopicConfigSerializeWrapper: {e}"))?;
        Ok((wrapper, None))
    }
}

/// CRC32 as RocketMQ's `UtilAll.crc32` gives it: the IEEE CRC with the top
/// bit cleared.
fn java_crc32(bytes: &[u8]) -> i32 {
    (crc32fast::hash(bytes) & 0x7FFF_FFFF) as i32
}

/// Header `brokerName, brokerAddr, clusterName, brokerId`.
pub(super) fn unregister_broker(
    server: &NameServer,
    request: &RemotingCommand,
) -> Result<RemotingCommand, HandlerError> {
    let broker_name = required(request, "brokerName")?;
    let broker_addr = required(request, "brokerAddr")?;
    let cluster_name = required(request, "clusterName")?;
    let broker_id = required_i64(request, "brokerId")?;
    server
        .write_routes()
        .unregister_broker(cluster_name, broker_addr, broker_name, broker_id);
    Ok(success(request))
}

/// Header `brokerName, brokerAddr, clusterName, brokerId`, body the broker's
/// `DataVersion`. Answers header `changed` and the version the name server
/// holds as body; an unchanged version counts as a heartbeat.
pub(super) fn query_data_version(
    server: &NameServer,
    request: &RemotingCommand,
) -> Result<RemotingCommand, HandlerError> {
    required(request, "brokerName")?;
    let broker_addr = required(request, "brokerAddr")?;
    required(request, "clusterName")?;
    required_i64(request, "brokerId")?;
    let version: DataVersion =
        decode_json(&request.body).map_err(|e| format!("Failed to decode DataVersion: {e}"))?;
    let now = server.now_millis();
    let mut routes = server.write_routes();
    let changed = routes.is_broker_topic_config_changed(broker_addr, &version);
    if !changed {
        routes.touch_broker(broker_addr, now);
    }
    let held = routes.query_broker_data_version(broker_addr);
    drop(routes);
    let mut response = success(request).with_field("changed", changed);
    if let Some(held) = held {
        response = response.with_body(encode_json(&held));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_java_util_all() {
        // CRC32("123456789") = 0xCBF43926; Java masks the top bit.
        assert_eq!(java_crc32(b"123456789"), 0x4BF4_3926);
    }

    #[test]
    fn old_brokers_send_a_bare_wrapper() {
        let (wrapper, filters) =
            decode_register_body(br#"{"topicConfigTable":{"T":{"topicName":"T"}},"dataVersion":{"timestamp":5,"counter":1}}"#)
                .unwrap();
        assert!(wrapper.topic_config_table.contains_key("T"));
        assert_eq!(wrapper.data_version.counter, 1);
        assert!(filters.is_none());
        assert!(decode_register_body(b"[not an object").is_err());
    }
}
