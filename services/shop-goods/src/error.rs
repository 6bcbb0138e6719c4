//! Everything that can go wrong in the goods service, and how each answers
//! over HTTP.

use axum::response::{IntoResponse, Response};
use shop_common::ApiError;
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum GoodsError {
    /// A field of a request is out of range (`code` names which rule).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("goods {0} not found")]
    GoodsNotFound(i64),
    #[error("not enough stock of goods {goods_id}: {requested} requested, {available} available")]
    InsufficientStock {
        goods_id: i64,
        requested: i64,
        available: i64,
    },
    #[error("order {0} was cancelled; no stock can be reserved for it")]
    OrderCancelled(Uuid),
    #[error("order {order_id} already reserved {quantity} of goods {goods_id}; a reservation for an order cannot change")]
    ReservationMismatch {
        order_id: Uuid,
        goods_id: i64,
        quantity: i64,
    },
    #[error("order {order_id} has no reservation or cancellation for goods {goods_id}")]
    ReservationNotFound { order_id: Uuid, goods_id: i64 },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl GoodsError {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        GoodsError::Invalid {
            code,
            message: message.into(),
        }
    }
}

impl From<GoodsError> for ApiError {
    fn from(error: GoodsError) -> Self {
        let message = error.to_string();
        match error {
            GoodsError::Invalid { code, .. } => ApiError::bad_request(code, message),
            GoodsError::GoodsNotFound(_) => ApiError::not_found("goods_not_found", message),
            GoodsError::InsufficientStock { .. } => {
                ApiError::conflict("insufficient_stock", message)
            }
            GoodsError::OrderCancelled(_) => ApiError::conflict("order_cancelled", message),
            GoodsError::ReservationMismatch { .. } => {
                ApiError::conflict("reservation_mismatch", message)
            }
            GoodsError::ReservationNotFound { .. } => {
                ApiError::not_found("reservation_not_found", message)
            }
            // Logged in full, answered without detail.
            GoodsError::Database(e) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for GoodsError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

/// A consumer's failure: retried through the broker.
impl From<GoodsError> for shop_common::events::EventError {
    fn from(error: GoodsError) -> Self {
        match error {
            GoodsError::Database(e) => Self::Database(e),
            other => Self::Invalid(other.to_string()),
        }
    }
}
