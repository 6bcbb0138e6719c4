//! The order service's API as the pay service and clients call it.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Saved, compensation armed, reservations under way.
    Pending,
    /// Everything reserved.
    Confirmed,
    /// Failed or abandoned; whatever it took is given back.
    Cancelled,
    /// Confirmed and paid.
    Paid,
}

impl OrderStatus {
    /// As stored and as the API writes it: `PENDING`, `CONFIRMED`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Paid => "PAID",
        }
    }

    /// The status named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(OrderStatus::Pending),
            "CONFIRMED" => Some(OrderStatus::Confirmed),
            "CANCELLED" => Some(OrderStatus::Cancelled),
            "PAID" => Some(OrderStatus::Paid),
            _ => None,
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An order as the API shows it (`POST /orders`, `GET /orders/{id}`);
/// amounts are strings like `"12.30"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    pub user_id: i64,
    pub goods_id: i64,
    pub quantity: i64,
    pub unit_price: Decimal,
    pub goods_amount: Decimal,
    pub shipping_fee: Decimal,
    pub coupon_id: Option<i64>,
    pub coupon_discount: Decimal,
    pub balance_used: Decimal,
    pub amount_to_pay: Decimal,
    pub status: OrderStatus,
    pub cancel_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What the pay service reads of an [`OrderView`] (other fields are
/// ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub struct OrderToPay {
    pub id: Uuid,
    pub user_id: i64,
    pub status: OrderStatus,
    /// A string like `"12.30"` (a number is accepted too).
    #[serde(deserialize_with = "crate::extract::decimal")]
    pub amount_to_pay: Decimal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in [
            OrderStatus::Pending,
            OrderStatus::Confirmed,
            OrderStatus::Cancelled,
            OrderStatus::Paid,
        ] {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(OrderStatus::parse("LOST"), None);
    }
}
