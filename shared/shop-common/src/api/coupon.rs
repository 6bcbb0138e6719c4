//! The coupon service's API as the order service calls it.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Whether a coupon can still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CouponStatus {
    Unused,
    Used,
}

impl CouponStatus {
    /// As stored and as the API writes it: `unused`, `used`.
    pub fn as_str(self) -> &'static str {
        match self {
            CouponStatus::Unused => "unused",
            CouponStatus::Used => "used",
        }
    }

    /// The status named `s`, if any.
    pub fn parse(s: &str) -> Option<CouponStatus> {
        match s {
            "unused" => Some(CouponStatus::Unused),
            "used" => Some(CouponStatus::Used),
            _ => None,
        }
    }
}

impl fmt::Display for CouponStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A coupon as the API shows it (`GET /coupons/{id}`); `amount` is always a
/// string like `"5.00"`, `order_id` and `used_at` are null while unused.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CouponView {
    pub id: i64,
    pub user_id: i64,
    pub amount: Decimal,
    pub status: CouponStatus,
    pub order_id: Option<Uuid>,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

/// `POST /coupons/{id}/use`: `user_id` uses the coupon for `order_id`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UseRequest {
    pub order_id: Uuid,
    pub user_id: i64,
}
