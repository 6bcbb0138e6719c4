//! Every statement on the `orders` table. Status changes are conditional
//! (`WHERE status = <expected>`), so the saga, the check-back, the sweeper
//! and the consumers can race without one overwriting another's decision.

use shop_common::{now_ms, Db};
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::model::{Order, OrderStatus};

const COLUMNS: &str = "id, user_id, goods_id, quantity, unit_price_cents, goods_amount_cents, shipping_fee_cents, \
     coupon_id, coupon_discount_cents, balance_used_cents, amount_to_pay_cents, status, cancel_reason, created_at, updated_at";

/// Saves a new PENDING order.
pub async fn insert_pending(db: &Db, order: &Order) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO orders ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    ))
    .bind(order.id.to_string())
    .bind(order.user_id)
    .bind(order.goods_id)
    .bind(order.quantity)
    .bind(order.unit_price_cents)
    .bind(order.goods_amount_cents)
    .bind(order.shipping_fee_cents)
    .bind(order.coupon_id)
    .bind(order.coupon_discount_cents)
    .bind(order.balance_used_cents)
    .bind(order.amount_to_pay_cents)
    .bind(OrderStatus::Pending.as_str())
    .bind(order.cancel_reason.as_deref())
    .bind(order.created_at)
    .bind(order.updated_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Order>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM orders WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(db.pool())
        .await?
        .map(|row| Order::from_row(&row))
        .transpose()
}

/// A user's orders, newest first; PENDING ones are in flight and not shown.
pub async fn list_by_user(db: &Db, user_id: i64, limit: i64) -> Result<Vec<Order>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM orders WHERE user_id = $1 AND status <> 'PENDING' ORDER BY created_at DESC, id LIMIT $2"
    ))
    .bind(user_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(Order::from_row)
    .collect()
}

/// Moves an order from `from` to `to`; false when it was not in `from`.
pub async fn transition(
    conn: &mut AnyConnection,
    id: Uuid,
    from: OrderStatus,
    to: OrderStatus,
    reason: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE orders SET status = $1, cancel_reason = COALESCE($2, cancel_reason), updated_at = $3 \
         WHERE id = $4 AND status = $5",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(now_ms())
    .bind(id.to_string())
    .bind(from.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`transition`] on a pooled connection.
pub async fn transition_db(
    db: &Db,
    id: Uuid,
    from: OrderStatus,
    to: OrderStatus,
    reason: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    transition(&mut conn, id, from, to, reason).await
}

/// PENDING orders created before `before_ms`, oldest first.
pub async fn pending_before(
    db: &Db,
    before_ms: i64,
    limit: i64,
) -> Result<Vec<Order>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM orders WHERE status = 'PENDING' AND created_at < $1 ORDER BY created_at LIMIT $2"
    ))
    .bind(before_ms)
    .bind(limit)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(Order::from_row)
    .collect()
}
