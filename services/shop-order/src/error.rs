//! Everything that can go wrong placing or reading an order, and how each
//! answers over HTTP (the status of each lives here, in the HTTP layer).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use shop_common::ApiError;
use thiserror::Error;
use uuid::Uuid;

use crate::model::{Cents, CouponId, GoodsId, UserId};
use crate::remote::CallError;

#[derive(Debug, Error)]
pub enum OrderError {
    /// A field of the request is out of range (`code` names which rule).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// The price the user saw is not the goods' price.
    #[error("the price of goods {goods_id} is {price}, not {asked}")]
    PriceMismatch {
        goods_id: GoodsId,
        price: Decimal,
        /// As the request wrote it.
        asked: Decimal,
    },
    #[error("goods {goods_id} has {stock} in stock, {requested} requested")]
    InsufficientStock {
        goods_id: GoodsId,
        stock: i64,
        requested: i64,
    },
    #[error("coupon {0} belongs to another user")]
    CouponNotOwned(CouponId),
    #[error("coupon {0} is already used")]
    CouponUsed(CouponId),
    #[error("user {user_id} has a balance of {balance}, {requested} requested")]
    InsufficientBalance {
        user_id: UserId,
        balance: Decimal,
        requested: Cents,
    },
    /// A service the order needs refused what it was asked before anything
    /// was saved (no such goods, user or coupon, ...).
    #[error("{}", refusal(.0))]
    Refused(CallError),
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

/// A refusal shows the refusing service's own message.
fn refusal(error: &CallError) -> String {
    match error {
        CallError::Refused { message, .. } => message.clone(),
        other => other.to_string(),
    }
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
            refused @ CallError::Refused { .. } => OrderError::Refused(refused),
            unavailable => OrderError::Unavailable(unavailable),
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> Self {
        let message = error.to_string();
        match error {
            OrderError::Invalid { code, .. } => ApiError::bad_request(code, message),
            OrderError::PriceMismatch { .. } => ApiError::bad_request("price_mismatch", message),
            OrderError::InsufficientStock { .. } => {
                ApiError::conflict("insufficient_stock", message)
            }
            OrderError::CouponNotOwned(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "coupon_not_owned", message)
            }
            OrderError::CouponUsed(_) => ApiError::conflict("coupon_used", message),
            OrderError::InsufficientBalance { .. } => {
                ApiError::conflict("insufficient_balance", message)
            }
            // The refusing service's own status and code, passed through.
            OrderError::Refused(CallError::Refused { status, code, .. }) => {
                let status = StatusCode::from_u16(status)
                    .ok()
                    .filter(StatusCode::is_client_error)
                    .unwrap_or(StatusCode::CONFLICT);
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
            OrderError::Refused(_) | OrderError::Unavailable(_) | OrderError::Broker(_) => {
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

impl IntoResponse for OrderError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
