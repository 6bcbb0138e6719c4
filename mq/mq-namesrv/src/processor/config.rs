//! UPDATE_NAMESRV_CONFIG and GET_NAMESRV_CONFIG: the configuration as
//! `key=value` lines in the body.

use mq_protocol::{RemotingCommand, ResponseCode};
use mq_remoting::Channel;
use tracing::{info, warn};

use super::success;
use crate::config::{parse_properties, NamesrvConfig, BLACK_LIST};
use crate::server::NameServer;

/// The keys UPDATE_NAMESRV_CONFIG may change, with the range (inclusive)
/// of the numbers among them. Paths are on [`BLACK_LIST`]; the sockets
/// (`listenPort`, `bindAddress`, `frameMaxLength`) are read once at start
/// and the name server does not rewrite its file, so they are refused too.
const RUNTIME_KEYS: &[(&str, Option<(u64, u64)>)] = &[
    ("productEnvName", None),
    ("clusterTest", None),
    ("orderMessageEnable", None),
    ("scanNotActiveBrokerInterval", Some((1_000, 3_600_000))),
    ("brokerChannelExpiredTime", Some((1_000, 86_400_000))),
];

/// Why an UPDATE_NAMESRV_CONFIG is refused: the response code and remark.
type Refusal = (ResponseCode, String);

/// Parses the body into the configuration to switch to, before anything
/// changes: UTF-8 `.properties` text whose keys are all on
/// [`RUNTIME_KEYS`], with one-line values (no control character, which an
/// escaped `\n` in the text becomes) in range. Black-listed keys answer
/// NO_PERMISSION as RocketMQ's do; everything else wrong INVALID_PARAMETER.
fn parse_change(current: &NamesrvConfig, body: &[u8]) -> Result<NamesrvConfig, Refusal> {
    let invalid = |remark: String| (ResponseCode::INVALID_PARAMETER, remark);
    let text = std::str::from_utf8(body).map_err(|_| {
        (
            ResponseCode::SYSTEM_ERROR,
            "string2Properties error".to_owned(),
        )
    })?;
    let entries = parse_properties(text, "UPDATE_NAMESRV_CONFIG")
        .map_err(|error| (ResponseCode::SYSTEM_ERROR, error.to_string()))?;
    if entries
        .iter()
        .any(|(key, _)| BLACK_LIST.contains(&key.as_str()))
    {
        return Err((
            ResponseCode::NO_PERMISSION,
            "Can not update config in black list.".to_owned(),
        ));
    }
    let mut updated = current.clone();
    for (key, value) in &entries {
        if key.chars().chain(value.chars()).any(char::is_control) {
            return Err(invalid(format!(
                "the value of {key:?} contains a control character (a line break?); values are one line"
            )));
        }
        let Some((_, range)) = RUNTIME_KEYS.iter().find(|(k, _)| k == key) else {
            return Err(invalid(format!(
                "{key} cannot change while the name server runs"
            )));
        };
        updated
            .set(key, value, "UPDATE_NAMESRV_CONFIG")
            .map_err(|error| invalid(error.to_string()))?;
        if let Some((low, high)) = range {
            match value.trim().parse::<u64>() {
                Ok(n) if (*low..=*high).contains(&n) => {}
                _ => {
                    return Err(invalid(format!(
                        "{key} must be within {low}..={high}, got {value}"
                    )))
                }
            }
        }
    }
    Ok(updated)
}

/// UPDATE_NAMESRV_CONFIG: applies the body once [`parse_change`] accepts
/// all of it; a refused body changes nothing. Changes last until restart
/// (the file is not rewritten).
pub(super) fn update_config(
    server: &NameServer,
    channel: &Channel,
    request: &RemotingCommand,
) -> RemotingCommand {
    info!(peer = %channel.peer_addr(), "update config");
    if request.body.is_empty() {
        return success(request);
    }
    match parse_change(&server.config(), &request.body) {
        Ok(updated) => {
            *server.write_config() = updated;
            success(request)
        }
        Err((code, remark)) => {
            warn!(peer = %channel.peer_addr(), %remark, "update config refused");
            RemotingCommand::response_to(request, code).with_remark(remark)
        }
    }
}

/// Body: every configuration key as `key=value` lines.
pub(super) fn get_config(server: &NameServer, request: &RemotingCommand) -> RemotingCommand {
    success(request).with_body(server.config().to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<NamesrvConfig, Refusal> {
        parse_change(&NamesrvConfig::default(), body.as_bytes())
    }

    #[test]
    fn run_time_keys_apply() {
        let updated = parse("orderMessageEnable=true\nbrokerChannelExpiredTime=60000").unwrap();
        assert!(updated.order_message_enable);
        assert_eq!(updated.broker_channel_expired_time_ms, 60_000);
    }

    #[test]
    fn paths_sockets_lines_and_ranges_are_refused() {
        let code = |body: &str| parse(body).unwrap_err().0;
        assert_eq!(code("kvConfigPath=/tmp/x"), ResponseCode::NO_PERMISSION);
        assert_eq!(code("configStorePath=/tmp/x"), ResponseCode::NO_PERMISSION);
        for body in [
            "productEnvName=a\\nkvConfigPath=/tmp/x",
            "listenPort=1",
            "bindAddress=127.0.0.1",
            "frameMaxLength=2147483647",
            "serverWorkerThreads=8",
            "noSuchKey=1",
            "scanNotActiveBrokerInterval=1",
            "brokerChannelExpiredTime=99999999999",
            "orderMessageEnable=yes",
        ] {
            assert_eq!(code(body), ResponseCode::INVALID_PARAMETER, "{body}");
        }
        let (_, remark) = parse("productEnvName=a\\nrocketmqHome=/").unwrap_err();
        assert!(remark.contains("control character"), "{remark}");
    }
}
