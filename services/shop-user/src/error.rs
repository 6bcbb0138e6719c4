//! Everything that can go wrong in the user service, and how each answers
//! over HTTP.

use axum::response::{IntoResponse, Response};
use shop_common::money::from_cents;
use shop_common::ApiError;
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum UserError {
    /// A field of a request is out of range (`code` names which rule).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("user {0} not found")]
    UserNotFound(i64),
    #[error(
        "balance of user {user_id} is too low: {} requested, {} available",
        from_cents(*requested_cents),
        from_cents(*available_cents)
    )]
    InsufficientBalance {
        user_id: i64,
        requested_cents: i64,
        available_cents: i64,
    },
    #[error("order {0} was cancelled; no money can be reserved for it")]
    OrderCancelled(Uuid),
    #[error(
        "order {order_id} already reserved {} from user {user_id}; a reservation for an order cannot change",
        from_cents(*amount_cents)
    )]
    ReservationMismatch {
        order_id: Uuid,
        user_id: i64,
        amount_cents: i64,
    },
    #[error("order {order_id} has no reservation or cancellation for user {user_id}")]
    ReservationNotFound { order_id: Uuid, user_id: i64 },
    #[error("login {0} is taken")]
    LoginTaken(String),
    /// The same answer for an unknown login and a wrong password.
    #[error("unknown login or wrong password")]
    InvalidCredentials,
    /// Answered 429 with `Retry-After`.
    #[error("too many failed log-ins for this login; try again in {} s", retry_after.as_secs().max(1))]
    TooManyAttempts { retry_after: std::time::Duration },
    #[error(
        "top-up {reference} already added {} to user {user_id}; a reference is used once",
        from_cents(*amount_cents)
    )]
    ReferenceMismatch {
        reference: String,
        user_id: i64,
        amount_cents: i64,
    },
    #[error("the balance of user {user_id} may not exceed {}", from_cents(*max_cents))]
    BalanceLimit { user_id: i64, max_cents: i64 },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl UserError {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        UserError::Invalid {
            code,
            message: message.into(),
        }
    }
}

impl From<UserError> for ApiError {
    fn from(error: UserError) -> Self {
        let message = error.to_string();
        match error {
            UserError::Invalid { code, .. } => ApiError::bad_request(code, message),
            UserError::UserNotFound(_) => ApiError::not_found("user_not_found", message),
            UserError::InsufficientBalance { .. } => {
                ApiError::conflict("insufficient_balance", message)
            }
            UserError::OrderCancelled(_) => ApiError::conflict("order_cancelled", message),
            UserError::ReservationMismatch { .. } => {
                ApiError::conflict("reservation_mismatch", message)
            }
            UserError::ReservationNotFound { .. } => {
                ApiError::not_found("reservation_not_found", message)
            }
            UserError::LoginTaken(_) => ApiError::conflict("login_taken", message),
            UserError::InvalidCredentials => ApiError::unauthorized("invalid_credentials", message),
            UserError::TooManyAttempts { .. } => ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                message,
            ),
            UserError::ReferenceMismatch { .. } => {
                ApiError::conflict("reference_mismatch", message)
            }
            UserError::BalanceLimit { .. } => ApiError::conflict("balance_limit", message),
            // Logged in full, answered without detail.
            UserError::Database(e) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for UserError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            UserError::TooManyAttempts { retry_after } => Some(retry_after.as_secs().max(1)),
            _ => None,
        };
        let mut response = ApiError::from(self).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// A consumer's failure: retried through the broker.
impl From<UserError> for shop_common::events::EventError {
    fn from(error: UserError) -> Self {
        match error {
            UserError::Database(e) => Self::Database(e),
            other => Self::Invalid(other.to_string()),
        }
    }
}
