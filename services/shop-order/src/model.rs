//! An order, its ids and its amounts.

use std::fmt;

use rust_decimal::Decimal;
pub use shop_common::api::order::{OrderStatus, OrderView};
use shop_common::money::{from_cents, to_cents};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

/// Declares an id type over `$inner`, shown as the bare value.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An order of this service.
    OrderId(Uuid)
);
id_type!(
    /// A user of the user service.
    UserId(i64)
);
id_type!(
    /// A goods of the goods service.
    GoodsId(i64)
);
id_type!(
    /// A coupon of the coupon service.
    CouponId(i64)
);

/// An amount of money in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cents(pub i64);

impl Cents {
    pub const ZERO: Cents = Cents(0);

    /// A non-negative amount in whole cents, or `None`.
    pub fn from_decimal(amount: Decimal) -> Option<Cents> {
        to_cents(amount).ok().filter(|c| *c >= 0).map(Cents)
    }

    pub fn to_decimal(self) -> Decimal {
        from_cents(self.0)
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_decimal().fmt(f)
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
    pub goods_amount: Cents,
    pub shipping_fee: Cents,
    pub coupon_discount: Cents,
    pub balance_used: Cents,
    pub amount_to_pay: Cents,
}

/// What shipping costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shipping {
    pub fee: Cents,
    /// Orders whose goods amount reaches this ship free.
    pub free_from: Cents,
}

/// Pricing: shipping is free from `shipping.free_from` of goods; a coupon
/// takes off at most the goods amount (it is a discount on goods: it never
/// pays the shipping, and a coupon worth more than the goods is used up
/// with no change given); balance pays at most what is left. `None` when
/// the total is out of range.
pub fn compute_amounts(
    unit_price: Cents,
    quantity: i64,
    shipping: Shipping,
    coupon: Option<Cents>,
    balance: Cents,
) -> Option<Amounts> {
    let goods = unit_price.0.checked_mul(quantity)?;
    let shipping = if goods >= shipping.free_from.0 {
        0
    } else {
        shipping.fee.0
    };
    let total = goods.checked_add(shipping)?;
    let discount = coupon.map_or(0, |c| c.0).clamp(0, goods);
    let balance = balance.0.clamp(0, total - discount);
    Some(Amounts {
        goods_amount: Cents(goods),
        shipping_fee: Cents(shipping),
        coupon_discount: Cents(discount),
        balance_used: Cents(balance),
        amount_to_pay: Cents(total - discount - balance),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipping(fee: i64, free_from: i64) -> Shipping {
        Shipping {
            fee: Cents(fee),
            free_from: Cents(free_from),
        }
    }

    #[test]
    fn pricing() {
        // 3 x 20.00 = 60.00 + 10.00 shipping, 5.00 coupon, 20.00 balance.
        let a = compute_amounts(
            Cents(2000),
            3,
            shipping(1000, 10_000),
            Some(Cents(500)),
            Cents(2000),
        )
        .unwrap();
        assert_eq!(a.goods_amount, Cents(6000));
        assert_eq!(a.shipping_fee, Cents(1000));
        assert_eq!(a.amount_to_pay, Cents(7000 - 500 - 2000));
        // Free shipping from the threshold; a coupon bigger than the goods
        // takes the goods amount; balance then pays nothing.
        let b = compute_amounts(
            Cents(5000),
            2,
            shipping(1000, 10_000),
            Some(Cents(50_000)),
            Cents(9999),
        )
        .unwrap();
        assert_eq!(b.shipping_fee, Cents(0));
        assert_eq!(b.coupon_discount, Cents(10_000));
        assert_eq!(b.balance_used, Cents(0));
        assert_eq!(b.amount_to_pay, Cents(0));
        // Balance beyond the total pays the total.
        let c = compute_amounts(Cents(100), 1, shipping(0, 0), None, Cents(1_000_000)).unwrap();
        assert_eq!(c.balance_used, Cents(100));
        assert_eq!(c.amount_to_pay, Cents(0));
        assert!(compute_amounts(Cents(i64::MAX), 2, shipping(0, 0), None, Cents(0)).is_none());
        // A 10,000.00 coupon on 20.00 of goods with 10.00 shipping: it takes
        // the 20.00 of goods and the shipping is still to pay (it took the
        // whole 30.00 total before, leaving an order with 0.00 to pay).
        let d = compute_amounts(
            Cents(2000),
            1,
            shipping(1000, 10_000),
            Some(Cents(1_000_000)),
            Cents(0),
        )
        .unwrap();
        assert_eq!(d.coupon_discount, Cents(2000));
        assert_eq!(d.amount_to_pay, Cents(1000));
    }

    #[test]
    fn cents_are_whole_and_non_negative() {
        assert_eq!(
            Cents::from_decimal("12.30".parse().unwrap()),
            Some(Cents(1230))
        );
        assert_eq!(Cents::from_decimal("12.301".parse().unwrap()), None);
        assert_eq!(Cents::from_decimal("-1".parse().unwrap()), None);
        assert_eq!(Cents(1230).to_string(), "12.30");
        assert_eq!(GoodsId(7).to_string(), "7");
    }
}
