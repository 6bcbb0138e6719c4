//! The 5.x status codes (`Code` of the protos) the endpoint answers with,
//! and how failures of the 4.x side map onto them.

use mq_client::ClientError;
use mq_protocol::ResponseCode;

use crate::pb::{Code, Status};

/// A refused or failed request: a 5.x code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ProxyError {
    pub code: Code,
    pub message: String,
}

impl ProxyError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ProxyError {
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ProxyError::new(Code::BadRequest, message)
    }

    /// The `Status` a response carries.
    pub fn status(&self) -> Status {
        Status {
            code: self.code as i32,
            message: self.message.clone(),
        }
    }
}

/// `OK`.
pub fn ok() -> Status {
    Status {
        code: Code::Ok as i32,
        message: "OK".into(),
    }
}

/// The status of `result`: `OK` or the error's code.
pub fn of<T>(result: &Result<T, ProxyError>) -> Status {
    match result {
        Ok(_) => ok(),
        Err(error) => error.status(),
    }
}

/// Maps a 4.x client failure: the broker's response code where there is
/// one, else what went wrong on the way.
impl From<ClientError> for ProxyError {
    fn from(error: ClientError) -> Self {
        let message = error.to_string();
        let code = match &error {
            ClientError::NoRoute { .. } => Code::TopicNotFound,
            ClientError::InvalidArgument(_) => Code::BadRequest,
            ClientError::BrokerNotFound { .. } | ClientError::NoNameServer => Code::InternalError,
            _ => match error.response_code().and_then(ResponseCode::from_i32) {
                Some(code) => broker_code(code),
                None if is_timeout(&error) => Code::ProxyTimeout,
                None => Code::InternalServerError,
            },
        };
        ProxyError { code, message }
    }
}

fn is_timeout(error: &ClientError) -> bool {
    match error {
        ClientError::Remoting(mq_remoting::RemotingError::Timeout { .. }) => true,
        ClientError::SendFailed { last, .. } => is_timeout(last),
        _ => false,
    }
}

/// The 5.x code of a 4.x broker response code.
pub fn broker_code(code: ResponseCode) -> Code {
    use ResponseCode as R;
    match code {
        R::SUCCESS => Code::Ok,
        R::NO_PERMISSION => Code::Forbidden,
        R::TOPIC_NOT_EXIST => Code::TopicNotFound,
        R::SUBSCRIPTION_GROUP_NOT_EXIST => Code::ConsumerGroupNotFound,
        R::MESSAGE_ILLEGAL | R::INVALID_PARAMETER => Code::BadRequest,
        R::FLUSH_DISK_TIMEOUT => Code::MasterPersistenceTimeout,
        R::FLUSH_SLAVE_TIMEOUT => Code::SlavePersistenceTimeout,
        R::SLAVE_NOT_AVAILABLE => Code::HaNotAvailable,
        R::SERVICE_NOT_AVAILABLE | R::SYSTEM_BUSY => Code::TooManyRequests,
        R::REQUEST_CODE_NOT_SUPPORTED => Code::NotImplemented,
        _ => Code::InternalServerError,
    }
}
