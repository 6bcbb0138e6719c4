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

/// A send the broker's timer refused (a delivery time beyond its
/// `timerMaxDelaySec`, among others) is ILLEGAL_DELIVERY_TIME to a 5.x
/// client, as RocketMQ's proxy answers; any other error stays as it is.
pub fn delivery_time_refusal(error: ProxyError) -> ProxyError {
    if error.code == Code::BadRequest
        && error
            .message
            .contains(mq_protocol::message::TIMER_MESSAGE_ILLEGAL)
    {
        ProxyError {
            code: Code::IllegalDeliveryTime,
            ..error
        }
    } else {
        error
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
                // A SQL92 filter on a broker whose property filter is off.
                Some(ResponseCode::SYSTEM_ERROR)
                    if message.contains(mq_protocol::filter::PROPERTY_FILTER_DISABLED) =>
                {
                    Code::Unsupported
                }
                Some(code) => broker_code(code),
                None if is_timeout(&error) => Code::ProxyTimeout,
                None => Code::InternalServerError,
            },
        };
        let message = if code == Code::Unsupported {
            format!("SQL92 filters need enablePropertyFilter=true on the broker: {message}")
        } else {
            message
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
        R::SUBSCRIPTION_PARSE_FAILED | R::FILTER_DATA_NOT_EXIST => Code::IllegalFilterExpression,
        _ => Code::InternalServerError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(code: ResponseCode, remark: &str) -> ProxyError {
        ProxyError::from(ClientError::Remoting(mq_remoting::RemotingError::Remote {
            code: code as i32,
            remark: remark.to_owned(),
        }))
    }

    #[test]
    fn filter_refusals_have_filter_codes() {
        let off = remote(
            ResponseCode::SYSTEM_ERROR,
            "The broker does not support consumer to filter message by SQL92",
        );
        assert_eq!(off.code, Code::Unsupported);
        assert!(
            off.message.contains("enablePropertyFilter"),
            "{}",
            off.message
        );
        let parse = remote(
            ResponseCode::SUBSCRIPTION_PARSE_FAILED,
            "parse the consumer's subscription failed",
        );
        assert_eq!(parse.code, Code::IllegalFilterExpression);
        assert_eq!(
            remote(ResponseCode::SYSTEM_ERROR, "disk full").code,
            Code::InternalServerError
        );
    }

    #[test]
    fn a_timer_refusal_is_an_illegal_delivery_time() {
        let remote = |code: ResponseCode, remark: &str| {
            ProxyError::from(ClientError::Remoting(mq_remoting::RemotingError::Remote {
                code: code as i32,
                remark: remark.to_owned(),
            }))
        };
        let refused = remote(
            ResponseCode::MESSAGE_ILLEGAL,
            "timer message illegal: it is due 345600000 ms from now, beyond timerMaxDelaySec (259200 s)",
        );
        assert_eq!(refused.code, Code::BadRequest);
        let mapped = delivery_time_refusal(refused);
        assert_eq!(mapped.code, Code::IllegalDeliveryTime);
        assert!(
            mapped.message.contains("timerMaxDelaySec"),
            "{}",
            mapped.message
        );
        for other in [
            remote(
                ResponseCode::MESSAGE_ILLEGAL,
                "the message body is too large",
            ),
            remote(ResponseCode::SYSTEM_ERROR, "timer message illegal"),
        ] {
            let code = other.code;
            assert_eq!(delivery_time_refusal(other).code, code);
        }
    }
}
