//! The user service's API as the order service calls it.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::extract::decimal;

/// A user as the API shows it (`GET /users/{id}`); `balance` is always a
/// string like `"100.00"`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: i64,
    pub name: String,
    pub balance: Decimal,
    pub created_at: i64,
}

/// `POST /users/{id}/balance/reservations`: hold `amount` of the balance
/// for `order_id`. Sent as a string like `"12.30"`; a number is accepted.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReserveRequest {
    pub order_id: Uuid,
    #[serde(deserialize_with = "decimal")]
    pub amount: Decimal,
}
