//! UPDATE_NAMESRV_CONFIG and GET_NAMESRV_CONFIG: the configuration as
//! `key=value` lines in the body.

use mq_protocol::{RemotingCommand, ResponseCode};
use mq_remoting::Channel;
use tracing::{info, warn};

use super::success;
use crate::config::{parse_properties, KeyOutcome, BLACK_LIST};
use crate::server::NameServer;

/// Applies the properties in the body. Keys on the black list (paths) are
/// refused with NO_PERMISSION; a bad value changes nothing and answers
/// INVALID_PARAMETER. Changes last until restart (the file is not
/// rewritten); `listenPort` and `bindAddress` take effect at the next start.
pub(super) fn update_config(
    server: &NameServer,
    channel: &Channel,
    request: &RemotingCommand,
) -> RemotingCommand {
    info!(peer = %channel.peer_addr(), "update config");
    if request.body.is_empty() {
        return success(request);
    }
    let Ok(text) = std::str::from_utf8(&request.body) else {
        return RemotingCommand::response_to(request, ResponseCode::SYSTEM_ERROR)
            .with_remark("string2Properties error");
    };
    let entries = match parse_properties(text, "UPDATE_NAMESRV_CONFIG") {
        Ok(entries) => entries,
        Err(error) => {
            return RemotingCommand::response_to(request, ResponseCode::SYSTEM_ERROR)
                .with_remark(error.to_string())
        }
    };
    if entries
        .iter()
        .any(|(key, _)| BLACK_LIST.contains(&key.as_str()))
    {
        return RemotingCommand::response_to(request, ResponseCode::NO_PERMISSION)
            .with_remark("Can not update config in black list.");
    }
    let mut updated = server.config();
    for (key, value) in &entries {
        match updated.set(key, value, "UPDATE_NAMESRV_CONFIG") {
            Ok(KeyOutcome::Applied | KeyOutcome::Ignored) => {}
            Ok(KeyOutcome::Unknown) => warn!(key, "update config: unknown key ignored"),
            Err(error) => {
                return RemotingCommand::response_to(request, ResponseCode::INVALID_PARAMETER)
                    .with_remark(error.to_string())
            }
        }
    }
    *server.write_config() = updated;
    success(request)
}

/// Body: every configuration key as `key=value` lines.
pub(super) fn get_config(server: &NameServer, request: &RemotingCommand) -> RemotingCommand {
    success(request).with_body(server.config().to_string().into_bytes())
}
