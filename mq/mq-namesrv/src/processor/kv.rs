//! PUT/GET/DELETE_KV_CONFIG and GET_KVLIST_BY_NAMESPACE.

use mq_protocol::route::encode_json;
use mq_protocol::{RemotingCommand, ResponseCode};
use mq_remoting::HandlerError;

use super::{required, success};
use crate::server::NameServer;

/// Header `namespace, key, value`.
pub(super) fn put_kv_config(
    server: &NameServer,
    request: &RemotingCommand,
) -> Result<RemotingCommand, HandlerError> {
    let namespace = required(request, "namespace")?;
    let key = required(request, "key")?;
    let value = required(request, "value")?;
    server
        .kv()
        .put(namespace, key, value)
        .map_err(|e| format!("KV config changed but could not be persisted: {e}"))?;
    Ok(success(request))
}

/// Header `namespace, key`; answers header `value`, or QUERY_NOT_FOUND.
pub(super) fn get_kv_config(
    server: &NameServer,
    request: &RemotingCommand,
) -> Result<RemotingCommand, HandlerError> {
    let namespace = required(request, "namespace")?;
    let key = required(request, "key")?;
    let value = server.kv().get(namespace, key).map(str::to_owned);
    Ok(match value {
        Some(value) => success(request).with_field("value", value),
        None => RemotingCommand::response_to(request, ResponseCode::QUERY_NOT_FOUND)
            .with_remark(format!("No config item, Namespace: {namespace} Key: {key}")),
    })
}

/// Header `namespace, key`.
pub(super) fn delete_kv_config(
    server: &NameServer,
    request: &RemotingCommand,
) -> Result<RemotingCommand, HandlerError> {
    let namespace = required(request, "namespace")?;
    let key = required(request, "key")?;
    server
        .kv()
        .delete(namespace, key)
        .map_err(|e| format!("KV config changed but could not be persisted: {e}"))?;
    Ok(success(request))
}

/// Header `namespace`; body `KVTable`, or QUERY_NOT_FOUND.
pub(super) fn get_kv_list_by_namespace(
    server: &NameServer,
    request: &RemotingCommand,
) -> Result<RemotingCommand, HandlerError> {
    let namespace = required(request, "namespace")?;
    let table = server.kv().list(namespace);
    Ok(match table {
        Some(table) => success(request).with_body(encode_json(&table)),
        None => RemotingCommand::response_to(request, ResponseCode::QUERY_NOT_FOUND)
            .with_remark(format!("No config item, Namespace: {namespace}")),
    })
}
