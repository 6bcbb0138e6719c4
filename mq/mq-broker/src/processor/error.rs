//! Why a request failed, as the client hears it: a response code and a
//! remark. Processors return `Result<RemotingCommand, ProcessError>` and use
//! `?`; the dispatcher turns an error into the response.

use mq_protocol::ResponseCode;
use mq_protocol::{ProtocolError, RemotingCommand};
use mq_store::StoreError;

use crate::metadata::MetadataError;

/// A refused request: the response code and remark to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessError {
    pub code: ResponseCode,
    pub remark: String,
}

/// What a processor returns.
pub(crate) type Processed = Result<RemotingCommand, ProcessError>;

impl ProcessError {
    pub(crate) fn new(code: ResponseCode, remark: impl Into<String>) -> Self {
        ProcessError {
            code,
            remark: remark.into(),
        }
    }

    /// SYSTEM_ERROR with `remark`, RocketMQ's answer to most bad requests.
    pub(crate) fn system(remark: impl Into<String>) -> Self {
        ProcessError::new(ResponseCode::SYSTEM_ERROR, remark)
    }

    /// The response to `request` that carries this error.
    pub(crate) fn into_response(self, request: &RemotingCommand) -> RemotingCommand {
        RemotingCommand::response_to(request, self.code).with_remark(self.remark)
    }
}

/// Timer properties the send path refused.
impl From<crate::tasks::timer::TimerRefusal> for ProcessError {
    fn from(refusal: crate::tasks::timer::TimerRefusal) -> Self {
        ProcessError::new(refusal.code, refusal.reason)
    }
}

/// A request header that could not be decoded.
impl From<ProtocolError> for ProcessError {
    fn from(error: ProtocolError) -> Self {
        ProcessError::system(format!("bad request header: {error}"))
    }
}

/// A put the store refused.
impl From<StoreError> for ProcessError {
    fn from(error: StoreError) -> Self {
        let code = match error {
            StoreError::MessageTooLarge { .. }
            | StoreError::IllegalMessage { .. }
            | StoreError::InvalidMessage(_) => ResponseCode::MESSAGE_ILLEGAL,
            StoreError::DiskFull { .. } | StoreError::ShutDown => {
                ResponseCode::SERVICE_NOT_AVAILABLE
            }
            _ => ResponseCode::SYSTEM_ERROR,
        };
        ProcessError::new(code, error.to_string())
    }
}

/// A metadata file that could not be written.
impl From<MetadataError> for ProcessError {
    fn from(error: MetadataError) -> Self {
        ProcessError::system(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_refusals_keep_their_codes() {
        let e = ProcessError::from(StoreError::ShutDown);
        assert_eq!(e.code, ResponseCode::SERVICE_NOT_AVAILABLE);
        assert_eq!(e.remark, StoreError::ShutDown.to_string());
        let request = RemotingCommand::request(10);
        let response = ProcessError::system("no").into_response(&request);
        assert_eq!(response.code, i32::from(ResponseCode::SYSTEM_ERROR));
        assert_eq!(response.remark.as_deref(), Some("no"));
    }
}
