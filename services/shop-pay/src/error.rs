//! Everything that can go wrong in the pay service, and how each answers
//! over HTTP.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shop_common::api::order::OrderStatus;
use shop_common::ApiError;
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum PayError {
    /// A field of a request is out of range (`code` names which rule).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("order {0} not found")]
    OrderNotFound(Uuid),
    #[error("order {order_id} is {status}; only a CONFIRMED order can be paid")]
    OrderNotPayable { order_id: Uuid, status: OrderStatus },
    #[error("order {0} has nothing left to pay (coupon and balance covered it)")]
    NothingToPay(Uuid),
    /// The detail goes to the log; the client learns only that the order
    /// service could not be asked.
    #[error("the order service is unavailable: {0}")]
    OrderServiceUnavailable(String),
    /// The order service refused to settle the payment (`code` says why:
    /// `paid_by_another_payment`, `amount_mismatch`, `order_not_payable`).
    #[error("the order refused the payment: {message}")]
    OrderRefused { code: String, message: String },
    /// The gateway could not be asked (or refused) to register a payment;
    /// the detail goes to the log.
    #[error("the payment gateway is unavailable: {0}")]
    GatewayUnavailable(String),
    #[error("payment {0} not found")]
    PaymentNotFound(Uuid),
    #[error("the notification's signature does not match its fields")]
    InvalidSignature,
    #[error("payment {payment_id} is for another order")]
    OrderMismatch { payment_id: Uuid },
    #[error("payment {payment_id} is for {expected}, the notification says {got}")]
    AmountMismatch {
        payment_id: Uuid,
        expected: String,
        got: String,
    },
    #[error("payment {payment_id} was already paid with another trade number")]
    AlreadyPaid { payment_id: Uuid },
    #[error("the message broker is unavailable: {0}")]
    BrokerUnavailable(#[from] mq_client::ClientError),
    /// The broker answered the half message with something else than
    /// SEND_OK; the local transaction did not run.
    #[error("the broker did not store the PAY_SUCCESS half message: {0}")]
    HalfMessageNotStored(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl PayError {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        PayError::Invalid {
            code,
            message: message.into(),
        }
    }
}

impl From<PayError> for ApiError {
    fn from(error: PayError) -> Self {
        let message = error.to_string();
        match error {
            PayError::Invalid { code, .. } => ApiError::bad_request(code, message),
            PayError::OrderNotFound(_) => ApiError::not_found("order_not_found", message),
            PayError::OrderNotPayable { .. } => ApiError::conflict("order_not_payable", message),
            PayError::NothingToPay(_) => ApiError::conflict("nothing_to_pay", message),
            PayError::OrderServiceUnavailable(detail) => {
                tracing::warn!(%detail, "order service unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "order_service_unavailable",
                    "the order service could not be reached; try again",
                )
            }
            PayError::OrderRefused { code, .. } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            PayError::GatewayUnavailable(detail) => {
                tracing::warn!(%detail, "gateway unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "gateway_unavailable",
                    "the payment gateway could not be reached; try again",
                )
            }
            PayError::PaymentNotFound(_) => ApiError::not_found("payment_not_found", message),
            PayError::InvalidSignature => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", message)
            }
            PayError::OrderMismatch { .. } => ApiError::bad_request("order_mismatch", message),
            PayError::AmountMismatch { .. } => ApiError::bad_request("amount_mismatch", message),
            PayError::AlreadyPaid { .. } => ApiError::conflict("already_paid", message),
            PayError::BrokerUnavailable(_) | PayError::HalfMessageNotStored(_) => {
                tracing::warn!(error = %message, "broker unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "broker_unavailable",
                    "the payment could not be recorded now; try again",
                )
            }
            // Logged in full, answered without detail.
            PayError::Database(e) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for PayError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
