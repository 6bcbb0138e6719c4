//! The invariants of DESIGN.md section 5, checked against every database.

use std::time::Duration;

use crate::{Shop, EVENTUALLY};

impl Shop {
    /// Checks DESIGN.md's invariants against every database; returns what
    /// is violated (empty when they all hold).
    pub async fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        let orders: Vec<OrderRow> = sqlx::query_as(
            "SELECT id, user_id, goods_id, quantity, coupon_id, balance_used_cents, amount_to_pay_cents, status, created_at FROM orders",
        )
        .fetch_all(self.order.db.pool())
        .await
        .expect("orders");
        let live = |status: &str| status == "CONFIRMED" || status == "PAID";
        for (goods_id, initial) in &self.initial_stock {
            let held: i64 = orders
                .iter()
                .filter(|o| o.goods_id == *goods_id && live(&o.status))
                .map(|o| o.quantity)
                .sum();
            let current: i64 = sqlx::query_scalar("SELECT stock FROM goods WHERE id = $1")
                .bind(*goods_id)
                .fetch_one(self.goods.db.pool())
                .await
                .expect("stock");
            if *initial != current + held {
                out.push(format!("stock of goods {goods_id}: initial {initial} != current {current} + held {held}"));
            }
        }
        for (user_id, initial) in &self.initial_balance {
            let held: i64 = orders
                .iter()
                .filter(|o| o.user_id == *user_id && live(&o.status))
                .map(|o| o.balance_used_cents)
                .sum();
            let current: i64 = sqlx::query_scalar("SELECT balance_cents FROM users WHERE id = $1")
                .bind(*user_id)
                .fetch_one(self.user.db.pool())
                .await
                .expect("balance");
            if *initial != current + held {
                out.push(format!("balance of user {user_id}: initial {initial} != current {current} + held {held}"));
            }
        }
        let coupons: Vec<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT id, status, order_id FROM coupon")
                .fetch_all(self.coupon.db.pool())
                .await
                .expect("coupons");
        for (coupon_id, status, order_id) in &coupons {
            let holders: Vec<_> = orders
                .iter()
                .filter(|o| o.coupon_id == Some(*coupon_id) && live(&o.status))
                .collect();
            if holders.len() > 1 {
                out.push(format!(
                    "coupon {coupon_id} is held by {} live orders",
                    holders.len()
                ));
            }
            match (status.as_str(), holders.first()) {
                ("used", Some(o)) if order_id.as_deref() == Some(o.id.as_str()) => {}
                ("unused", None) => {}
                (s, h) => out.push(format!(
                    "coupon {coupon_id} is {s} (order {order_id:?}) but its live order is {:?}",
                    h.map(|o| &o.id)
                )),
            }
        }
        for order in orders.iter().filter(|o| o.status == "PAID") {
            let logs: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM payment_log WHERE order_id = $1")
                    .bind(&order.id)
                    .fetch_one(self.log.db.pool())
                    .await
                    .expect("payment log");
            if logs != 1 {
                out.push(format!("PAID order {} has {logs} payment logs", order.id));
            }
            let points: Vec<i64> =
                sqlx::query_scalar("SELECT points FROM points_ledger WHERE order_id = $1")
                    .bind(&order.id)
                    .fetch_all(self.points.db.pool())
                    .await
                    .expect("points ledger");
            let expected = order.amount_to_pay_cents / 100;
            if points != [expected] {
                out.push(format!(
                    "PAID order {} credited {points:?} points, expected [{expected}]",
                    order.id
                ));
            }
        }
        let payments: Vec<(String, String, String)> =
            sqlx::query_as("SELECT id, order_id, status FROM payments WHERE status = 'PAID'")
                .fetch_all(self.pay.db.pool())
                .await
                .expect("payments");
        for (payment_id, order_id, _) in &payments {
            let order = orders.iter().find(|o| &o.id == order_id);
            if order.is_none_or(|o| o.status != "PAID") {
                out.push(format!(
                    "payment {payment_id} is PAID but its order {order_id} is {:?} (not refunded)",
                    order.map(|o| &o.status)
                ));
            }
        }
        let limit = shop_common::now_ms() - (self.options.saga_timeout.as_millis() as i64 + 2_000);
        for o in orders
            .iter()
            .filter(|o| o.status == "PENDING" && o.created_at < limit)
        {
            out.push(format!("order {} is PENDING past the saga timeout", o.id));
        }
        out
    }

    /// Waits until the invariants hold (compensations are asynchronous);
    /// panics with what is still violated.
    pub async fn assert_invariants(&self) {
        let deadline = tokio::time::Instant::now() + EVENTUALLY;
        loop {
            let violations = self.violations().await;
            if violations.is_empty() {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("invariants violated:\n{}", violations.join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The columns of an order the invariants need.
#[derive(Debug, sqlx::FromRow)]
struct OrderRow {
    id: String,
    user_id: i64,
    goods_id: i64,
    quantity: i64,
    coupon_id: Option<i64>,
    balance_used_cents: i64,
    amount_to_pay_cents: i64,
    status: String,
    created_at: i64,
}
