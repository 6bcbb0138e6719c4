//! The goods service's API as the order service calls it.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A goods as the API shows it (`GET /goods/{id}`); `price` is always a
/// string like `"12.30"`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GoodsView {
    pub id: i64,
    pub name: String,
    pub price: Decimal,
    pub stock: i64,
    pub created_at: i64,
}

/// `POST /goods/{id}/reservations`: hold `quantity` for `order_id`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReserveRequest {
    pub order_id: Uuid,
    pub quantity: i64,
}
