//! The typed errors of the client.

use mq_protocol::{ProtocolError, RemotingCommand};
use mq_remoting::RemotingError;
use thiserror::Error;

/// Why a client call failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// Neither the configuration nor `NAMESRV_ADDR` names a name server.
    #[error("no name server address: set namesrv_addr or NAMESRV_ADDR")]
    NoNameServer,
    /// The name servers know no route for the topic (and, for a send, none
    /// for the auto-create template topic either).
    #[error("no route for topic {topic}")]
    NoRoute { topic: String },
    /// A route names a broker group but no usable address for it.
    #[error("no address for broker {broker_name}")]
    BrokerNotFound { broker_name: String },
    /// A call to a server failed (connect, timeout, closed connection) or the
    /// server answered with an unexpected response code.
    #[error(transparent)]
    Remoting(#[from] RemotingError),
    /// A server's answer could not be decoded.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A JSON body could not be decoded.
    #[error("bad JSON body: {0}")]
    Json(#[from] serde_json::Error),
    /// The message or argument is not acceptable (empty body, bad topic,
    /// batch over several topics, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Every attempt of a send failed; `last` is the last failure.
    #[error("send to {topic} failed after {attempts} attempt(s): {last}")]
    SendFailed {
        topic: String,
        attempts: u32,
        #[source]
        last: Box<ClientError>,
    },
    /// A local file (broadcasting offsets) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The object was used before `start` or after `shutdown`.
    #[error("{0} is not running")]
    NotRunning(&'static str),
}

impl ClientError {
    /// The broker's response code, when the failure is a broker's answer.
    pub fn response_code(&self) -> Option<i32> {
        match self {
            ClientError::Remoting(RemotingError::Remote { code, .. }) => Some(*code),
            ClientError::SendFailed { last, .. } => last.response_code(),
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Turns a non-SUCCESS response into an error naming the broker.
pub(crate) fn expect_success(response: RemotingCommand) -> Result<RemotingCommand> {
    mq_remoting::check_success(response).map_err(ClientError::from)
}

/// True when the error is a connection-level failure rather than a broker's answer.
pub(crate) fn is_network_error(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Remoting(
            RemotingError::ConnectFailed { .. }
                | RemotingError::Timeout { .. }
                | RemotingError::ConnectionClosed { .. }
                | RemotingError::Io { .. }
        )
    )
}
