//! Typed errors of the remoting layer.

use mq_protocol::{ProtocolError, RemotingCommand, ResponseCode};
use thiserror::Error;

use crate::deadline::ReadLimit;

/// What a request handler may fail with. Its `Display` text becomes the
/// remark of the SYSTEM_ERROR response the peer gets.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Why a remoting call or connection failed.
#[derive(Debug, Error)]
pub enum RemotingError {
    /// No connection could be made to `addr` (refused, unreachable, connect
    /// timeout, or still backing off after earlier failures).
    #[error("connect to {addr} failed: {reason}")]
    ConnectFailed { addr: String, reason: String },
    /// No response to request `code` arrived within `timeout_ms`.
    #[error("request code {code} to {addr} timed out after {timeout_ms} ms")]
    Timeout {
        addr: String,
        code: i32,
        timeout_ms: u64,
    },
    /// The connection closed before the response arrived (or was already
    /// closed when the request was made).
    #[error("connection to {addr} closed")]
    ConnectionClosed { addr: String },
    /// The peer sent bytes that are not a valid frame; the connection is
    /// closed.
    #[error("bad frame from {addr}: {source}")]
    Frame {
        addr: String,
        #[source]
        source: ProtocolError,
    },
    /// Reading or writing the socket failed.
    #[error("I/O error on connection to {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// A server's read limit passed: the peer completed no frame for the
    /// idle time, or did not finish a frame it had started in time. The
    /// connection is closed.
    #[error("{}", read_timeout_text(addr, *limit, *after_ms, *buffered))]
    ReadTimeout {
        addr: String,
        limit: ReadLimit,
        after_ms: u64,
        /// Bytes of the unfinished frame.
        buffered: usize,
    },
    /// The peer answered with a response code other than SUCCESS (see
    /// [`check_success`]).
    #[error("remote error {code} ({name}): {remark}", name = code_name(*.code))]
    Remote { code: i32, remark: String },
}

fn read_timeout_text(addr: &str, limit: ReadLimit, after_ms: u64, buffered: usize) -> String {
    match limit {
        ReadLimit::Idle => format!("connection from {addr} idle for {after_ms} ms"),
        ReadLimit::Frame => format!(
            "frame from {addr} not complete within {after_ms} ms ({buffered} bytes arrived)"
        ),
    }
}

fn code_name(code: i32) -> &'static str {
    ResponseCode::from_i32(code).map_or("UNKNOWN", ResponseCode::name)
}

/// Passes a SUCCESS response through and turns any other into
/// [`RemotingError::Remote`] with its code and remark.
///
/// [`RemotingClient::invoke`](crate::RemotingClient::invoke) returns every
/// response as it came, because many non-success codes carry meaning
/// (PULL_NOT_FOUND, QUERY_NOT_FOUND, ...); callers that only accept success
/// use this.
pub fn check_success(response: RemotingCommand) -> Result<RemotingCommand, RemotingError> {
    if response.code == i32::from(ResponseCode::SUCCESS) {
        Ok(response)
    } else {
        Err(RemotingError::Remote {
            code: response.code,
            remark: response.remark.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_success_keeps_code_and_remark() {
        let request = RemotingCommand::request(105);
        let ok = RemotingCommand::response_to(&request, ResponseCode::SUCCESS);
        assert!(check_success(ok).is_ok());
        let missing = RemotingCommand::response_to(&request, ResponseCode::TOPIC_NOT_EXIST)
            .with_remark("no route");
        let err = check_success(missing).unwrap_err();
        assert!(matches!(&err, RemotingError::Remote { code: 17, remark } if remark == "no route"));
        assert_eq!(
            err.to_string(),
            "remote error 17 (TOPIC_NOT_EXIST): no route"
        );
    }
}
