//! Everything that can go wrong placing or reading an order, and how each
//! answers over HTTP.

use axum::http::StatusCode;
use shop_common::ApiError;
use thiserror::Error;
use uuid::Uuid;

use crate::remote::CallError;

#[derive(Debug, Error)]
pub enum OrderError {
    /// A field of the request is out of range (`code` names which rule).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// The order cannot be placed as asked (checked before anything is saved).
    #[error("{message}")]
    Rejected {
        code: String,
        status: StatusCode,
        message: String,
    },
    /// The order was saved and then cancelled; whatever it took is being
    /// given back.
    #[error("order {order_id} was cancelled: {reason}")]
    Cancelled {
        order_id: Uuid,
        code: String,
        reason: String,
    },
    #[error("order {0} not found")]
    NotFound(Uuid),
    /// A service the order needs could not be asked; nothing was saved.
    #[error("{0}")]
    Unavailable(CallError),
    #[error("the message broker is unavailable: {0}")]
    Broker(#[from] mq_client::ClientError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl OrderError {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        OrderError::Invalid {
            code,
            message: message.into(),
        }
    }

    /// A check before saving failed because another service refused or
    /// could not answer.
    pub(crate) fn from_check(error: CallError) -> Self {
        match error {
            CallError::Refused {
                status,
                code,
                message,
                ..
            } => OrderError::Rejected {
                code,
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::CONFLICT),
                message,
            },
            unavailable => OrderError::Unavailable(unavailable),
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> Self {
        let message = error.to_string();
        match error {
            OrderError::Invalid { code, .. } => ApiError::bad_request(code, message),
            OrderError::Rejected { code, status, .. } => {
                let status = if status.is_client_error() {
                    status
                } else {
                    StatusCode::CONFLICT
                };
                ApiError::new(status, code, message)
            }
            OrderError::Cancelled { code, .. } => {
                let status = if code == "service_unavailable" {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::CONFLICT
                };
                ApiError::new(status, code, message)
            }
            OrderError::NotFound(_) => ApiError::not_found("order_not_found", message),
            OrderError::Unavailable(_) | OrderError::Broker(_) => {
                tracing::warn!(%message, "order refused: a dependency is unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    message,
                )
            }
            OrderError::Database(e) => ApiError::internal(e),
        }
    }
}
