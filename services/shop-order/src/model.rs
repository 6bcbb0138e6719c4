//! An order, its status and its amounts.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shop_common::money::from_cents;
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Paid => "PAID",
        }
    }

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

/// An order as stored (amounts in cents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: Uuid,
    pub user_id: i64,
    pub goods_id: i64,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub goods_amount_cents: i64,
    pub shipping_fee_cents: i64,
    pub coupon_id: Option<i64>,
    pub coupon_discount_cents: i64,
    pub balance_used_cents: i64,
    pub amount_to_pay_cents: i64,
    pub status: OrderStatus,
    pub cancel_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Order {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Order, sqlx::Error> {
        let id: String = row.try_get("id")?;
        let status: String = row.try_get("status")?;
        Ok(Order {
            id: id
                .parse()
                .map_err(|e: uuid::Error| sqlx::Error::Decode(e.into()))?,
            user_id: row.try_get("user_id")?,
            goods_id: row.try_get("goods_id")?,
            quantity: row.try_get("quantity")?,
            unit_price_cents: row.try_get("unit_price_cents")?,
            goods_amount_cents: row.try_get("goods_amount_cents")?,
            shipping_fee_cents: row.try_get("shipping_fee_cents")?,
            coupon_id: row.try_get("coupon_id")?,
            coupon_discount_cents: row.try_get("coupon_discount_cents")?,
            balance_used_cents: row.try_get("balance_used_cents")?,
            amount_to_pay_cents: row.try_get("amount_to_pay_cents")?,
            status: OrderStatus::parse(&status).ok_or_else(|| {
                sqlx::Error::Decode(format!("unknown order status {status}").into())
            })?,
            cancel_reason: row.try_get("cancel_reason")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// An order as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

impl From<Order> for OrderView {
    fn from(o: Order) -> Self {
        OrderView {
            id: o.id,
            user_id: o.user_id,
            goods_id: o.goods_id,
            quantity: o.quantity,
            unit_price: from_cents(o.unit_price_cents),
            goods_amount: from_cents(o.goods_amount_cents),
            shipping_fee: from_cents(o.shipping_fee_cents),
            coupon_id: o.coupon_id,
            coupon_discount: from_cents(o.coupon_discount_cents),
            balance_used: from_cents(o.balance_used_cents),
            amount_to_pay: from_cents(o.amount_to_pay_cents),
            status: o.status,
            cancel_reason: o.cancel_reason,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// The amounts of an order, computed from the goods price, the coupon and
/// the balance the user wants to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amounts {
    pub goods_amount_cents: i64,
    pub shipping_fee_cents: i64,
    pub coupon_discount_cents: i64,
    pub balance_used_cents: i64,
    pub amount_to_pay_cents: i64,
}

/// Pricing: shipping is free from `free_threshold` of goods; a coupon takes
/// off at most the total; balance pays at most what is left.
pub fn compute_amounts(
    unit_price_cents: i64,
    quantity: i64,
    shipping_fee: i64,
    free_threshold: i64,
    coupon_cents: Option<i64>,
    balance_cents: i64,
) -> Option<Amounts> {
    let goods = unit_price_cents.checked_mul(quantity)?;
    let shipping = if goods >= free_threshold {
        0
    } else {
        shipping_fee
    };
    let total = goods.checked_add(shipping)?;
    let discount = coupon_cents.unwrap_or(0).clamp(0, total);
    let balance = balance_cents.clamp(0, total - discount);
    Some(Amounts {
        goods_amount_cents: goods,
        shipping_fee_cents: shipping,
        coupon_discount_cents: discount,
        balance_used_cents: balance,
        amount_to_pay_cents: total - discount - balance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pricing() {
        // 3 x 20.00 = 60.00 + 10.00 shipping, 5.00 coupon, 20.00 balance.
        let a = compute_amounts(2000, 3, 1000, 10_000, Some(500), 2000).unwrap();
        assert_eq!(a.goods_amount_cents, 6000);
        assert_eq!(a.shipping_fee_cents, 1000);
        assert_eq!(a.amount_to_pay_cents, 7000 - 500 - 2000);
        // Free shipping from the threshold; a coupon bigger than the total
        // takes the total; balance then pays nothing.
        let b = compute_amounts(5000, 2, 1000, 10_000, Some(50_000), 9999).unwrap();
        assert_eq!(b.shipping_fee_cents, 0);
        assert_eq!(b.coupon_discount_cents, 10_000);
        assert_eq!(b.balance_used_cents, 0);
        assert_eq!(b.amount_to_pay_cents, 0);
        // Balance beyond the total pays the total.
        let c = compute_amounts(100, 1, 0, 0, None, 1_000_000).unwrap();
        assert_eq!(c.balance_used_cents, 100);
        assert_eq!(c.amount_to_pay_cents, 0);
        assert!(compute_amounts(i64::MAX, 2, 0, 0, None, 0).is_none());
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            OrderStatus::Pending,
            OrderStatus::Confirmed,
            OrderStatus::Cancelled,
            OrderStatus::Paid,
        ] {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("LOST"), None);
    }
}
