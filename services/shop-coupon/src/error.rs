//! Everything that can go wrong in the coupon service, and how each answers
//! over HTTP.

use axum::response::{IntoResponse, Response};
use shop_common::ApiError;
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum CouponError {
    /// A field of a request is out of range (`code` names which rule).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("coupon {0} not found")]
    CouponNotFound(i64),
    /// Answered 403: the coupon exists but is someone else's.
    #[error("coupon {coupon_id} does not belong to user {user_id}")]
    CouponNotOwned { coupon_id: i64, user_id: i64 },
    #[error("coupon {0} is already used by another order")]
    CouponUsed(i64),
    #[error("order {0} was cancelled; no coupon can be used for it")]
    OrderCancelled(Uuid),
    #[error("order {order_id} already used coupon {coupon_id}; an order uses one coupon")]
    ReservationMismatch { order_id: Uuid, coupon_id: i64 },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl CouponError {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        CouponError::Invalid {
            code,
            message: message.into(),
        }
    }
}

impl From<CouponError> for ApiError {
    fn from(error: CouponError) -> Self {
        let message = error.to_string();
        match error {
            CouponError::Invalid { code, .. } => ApiError::bad_request(code, message),
            CouponError::CouponNotFound(_) => ApiError::not_found("coupon_not_found", message),
            CouponError::CouponNotOwned { .. } => ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "coupon_not_owned",
                message,
            ),
            CouponError::CouponUsed(_) => ApiError::conflict("coupon_used", message),
            CouponError::OrderCancelled(_) => ApiError::conflict("order_cancelled", message),
            CouponError::ReservationMismatch { .. } => {
                ApiError::conflict("reservation_mismatch", message)
            }
            // Logged in full, answered without detail.
            CouponError::Database(e) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for CouponError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

/// A consumer's failure: retried through the broker.
impl From<CouponError> for shop_common::events::EventError {
    fn from(error: CouponError) -> Self {
        match error {
            CouponError::Database(e) => Self::Database(e),
            other => Self::Invalid(other.to_string()),
        }
    }
}
