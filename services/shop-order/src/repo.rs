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

/// Every user's orders, newest first, without PENDING ones (an operator's
/// list).
pub async fn list_all(db: &Db, limit: i64) -> Result<Vec<Order>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM orders WHERE status <> 'PENDING' ORDER BY created_at DESC, id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(Order::from_row)
    .collect()
}

/// What settling a payment with an order came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// The order is PAID by this payment (now, or by an earlier call).
    Paid,
    /// The order is CANCELLED: the payment must be refunded.
    Cancelled,
    /// The order was paid by another payment.
    PaidByAnother,
    /// The order is not CONFIRMED (still PENDING).
    NotPayable(OrderStatus),
    /// The payment's amount is not what the order has to pay.
    AmountMismatch {
        amount_to_pay_cents: i64,
    },
    NotFound,
}

/// Settles payment `payment_id` of `amount_cents` with order `id`: a
/// CONFIRMED order owing exactly that becomes PAID by it in one conditional
/// statement; otherwise the order's state says why not. PAID and CANCELLED
/// are final, so what is read after a refused update is the order's fate.
pub async fn settle(
    db: &Db,
    id: Uuid,
    payment_id: Uuid,
    amount_cents: i64,
) -> Result<Settlement, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE orders SET status = $1, payment_id = $2, updated_at = $3 \
         WHERE id = $4 AND status = $5 AND amount_to_pay_cents = $6",
    )
    .bind(OrderStatus::Paid.as_str())
    .bind(payment_id.to_string())
    .bind(now_ms())
    .bind(id.to_string())
    .bind(OrderStatus::Confirmed.as_str())
    .bind(amount_cents)
    .execute(db.pool())
    .await?;
    if done.rows_affected() == 1 {
        return Ok(Settlement::Paid);
    }
    let row: Option<(String, Option<String>, i64)> =
        sqlx::query_as("SELECT status, payment_id, amount_to_pay_cents FROM orders WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(db.pool())
            .await?;
    let Some((status, paid_by, amount_to_pay_cents)) = row else {
        return Ok(Settlement::NotFound);
    };
    let status = OrderStatus::parse(&status)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown order status {status}").into()))?;
    Ok(match status {
        OrderStatus::Cancelled => Settlement::Cancelled,
        // Paid by this payment before, or by an old PAY_SUCCESS of it
        // (no payment id kept).
        OrderStatus::Paid if paid_by.is_none() || paid_by == Some(payment_id.to_string()) => {
            Settlement::Paid
        }
        OrderStatus::Paid => Settlement::PaidByAnother,
        OrderStatus::Confirmed => Settlement::AmountMismatch {
            amount_to_pay_cents,
        },
        OrderStatus::Pending => Settlement::NotPayable(status),
    })
}

/// CONFIRMED → PAID by `payment_id`, from a PAY_SUCCESS event (the pay
/// service settled it first, so this is normally a no-op): `true` when it
/// made the change. A CANCELLED order is never made PAID.
pub async fn paid_by_event(
    conn: &mut AnyConnection,
    id: Uuid,
    payment_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE orders SET status = $1, payment_id = $2, updated_at = $3 WHERE id = $4 AND status = $5",
    )
    .bind(OrderStatus::Paid.as_str())
    .bind(payment_id.to_string())
    .bind(now_ms())
    .bind(id.to_string())
    .bind(OrderStatus::Confirmed.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What an operator's order list asks for; every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub user_id: Option<i64>,
    /// Created at or after (ms since the epoch).
    pub from_ms: Option<i64>,
    /// Created before (ms since the epoch).
    pub to_ms: Option<i64>,
    /// Continue after this order of an earlier page: its `(created_at, id)`.
    pub before: Option<(i64, Uuid)>,
    pub limit: i64,
}

/// Orders of every status (PENDING too) that match `filter`, newest
/// first (`created_at`, then id, both descending), with the id of the
/// payment that paid each (if any): the operator's list and the console's.
pub async fn list_filtered(
    db: &Db,
    filter: &OrderFilter,
) -> Result<Vec<(Order, Option<String>)>, sqlx::Error> {
    let mut conditions = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if filter.status.is_some() {
        conditions.push(format!("status = {}", next()));
    }
    if filter.user_id.is_some() {
        conditions.push(format!("user_id = {}", next()));
    }
    if filter.from_ms.is_some() {
        conditions.push(format!("created_at >= {}", next()));
    }
    if filter.to_ms.is_some() {
        conditions.push(format!("created_at < {}", next()));
    }
    if filter.before.is_some() {
        let (a, b, c) = (next(), next(), next());
        conditions.push(format!(
            "(created_at < {a} OR (created_at = {b} AND id < {c}))"
        ));
    }
    let limit = next();
    let wheres = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {COLUMNS}, payment_id FROM orders {wheres} ORDER BY created_at DESC, id DESC LIMIT {limit}"
    );
    let mut query = sqlx::query(&sql);
    if let Some(status) = filter.status {
        query = query.bind(status.as_str());
    }
    if let Some(user_id) = filter.user_id {
        query = query.bind(user_id);
    }
    if let Some(from) = filter.from_ms {
        query = query.bind(from);
    }
    if let Some(to) = filter.to_ms {
        query = query.bind(to);
    }
    if let Some((at, id)) = filter.before {
        query = query.bind(at).bind(at).bind(id.to_string());
    }
    query
        .bind(filter.limit)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| {
            use sqlx::Row;
            Ok((Order::from_row(row)?, row.try_get("payment_id")?))
        })
        .collect()
}

/// Order `id` (PENDING too) and the id of the payment that paid it.
pub async fn get_with_payment(
    db: &Db,
    id: Uuid,
) -> Result<Option<(Order, Option<String>)>, sqlx::Error> {
    use sqlx::Row;
    sqlx::query(&format!(
        "SELECT {COLUMNS}, payment_id FROM orders WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(db.pool())
    .await?
    .map(|row| Ok((Order::from_row(&row)?, row.try_get("payment_id")?)))
    .transpose()
}
