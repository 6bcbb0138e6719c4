//! The `payments` table: every statement of the pay service.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use shop_common::Db;

/// Where a payment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// Created, waiting for the gateway's notification.
    Unpaid,
    /// The gateway's signed notification arrived and the order took it.
    Paid,
    /// The gateway's signed notification arrived for an order that was
    /// CANCELLED: the money goes back, nothing is booked.
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Unpaid => "UNPAID",
            PaymentStatus::Paid => "PAID",
            PaymentStatus::Refunded => "REFUNDED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "UNPAID" => Some(PaymentStatus::Unpaid),
            "PAID" => Some(PaymentStatus::Paid),
            "REFUNDED" => Some(PaymentStatus::Refunded),
            _ => None,
        }
    }
}

/// A payment as stored (amount in cents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: Uuid,
    pub order_id: Uuid,
    pub user_id: i64,
    pub amount_cents: i64,
    pub status: PaymentStatus,
    pub trade_no: Option<String>,
    /// The PAY_SUCCESS (or PAY_REFUND) half message whose local
    /// transaction marked it PAID (or REFUNDED).
    pub pay_msg_id: Option<String>,
    pub created_at: i64,
    /// When the gateway's notification was taken.
    pub paid_at: Option<i64>,
    pub refunded_at: Option<i64>,
}

const COLUMNS: &str =
    "id, order_id, user_id, amount_cents, status, trade_no, pay_msg_id, created_at, paid_at, \
     refunded_at";

fn uuid_column(row: &AnyRow, column: &str) -> Result<Uuid, sqlx::Error> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e: uuid::Error| sqlx::Error::Decode(e.into()))
}

impl Payment {
    fn from_row(row: &AnyRow) -> Result<Payment, sqlx::Error> {
        let status: String = row.try_get("status")?;
        Ok(Payment {
            id: uuid_column(row, "id")?,
            order_id: uuid_column(row, "order_id")?,
            user_id: row.try_get("user_id")?,
            amount_cents: row.try_get("amount_cents")?,
            status: PaymentStatus::parse(&status).ok_or_else(|| {
                sqlx::Error::Decode(format!("unknown payment status {status}").into())
            })?,
            trade_no: row.try_get("trade_no")?,
            pay_msg_id: row.try_get("pay_msg_id")?,
            created_at: row.try_get("created_at")?,
            paid_at: row.try_get("paid_at")?,
            refunded_at: row.try_get("refunded_at")?,
        })
    }
}

/// Inserts `payment` unless its order already has one; returns the
/// order's payment either way (`true` when it is the one just inserted).
/// The unique `order_id` makes two racing creations agree on one payment.
pub async fn insert_or_get(db: &Db, payment: &Payment) -> Result<(Payment, bool), sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO payments (id, order_id, user_id, amount_cents, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(payment.id.to_string())
    .bind(payment.order_id.to_string())
    .bind(payment.user_id)
    .bind(payment.amount_cents)
    .bind(PaymentStatus::Unpaid.as_str())
    .bind(payment.created_at)
    .execute(db.pool())
    .await?
    .rows_affected()
        == 1;
    let stored = by_order(db, payment.order_id)
        .await?
        .ok_or_else(|| sqlx::Error::Protocol("the payment vanished after its insert".into()))?;
    Ok((stored, inserted))
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM payments WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(Payment::from_row)
        .transpose()
}

pub async fn by_order(db: &Db, order_id: Uuid) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = $1"
    ))
    .bind(order_id.to_string())
    .fetch_optional(db.pool())
    .await?
    .as_ref()
    .map(Payment::from_row)
    .transpose()
}

/// UNPAID → PAID with the gateway's trade number, as one conditional
/// statement: `true` when this call made the change, `false` when the
/// payment was already PAID (or does not exist).
pub async fn mark_paid(
    conn: &mut AnyConnection,
    id: Uuid,
    trade_no: &str,
    pay_msg_id: Option<&str>,
    paid_at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE payments SET status = $1, trade_no = $2, pay_msg_id = $3, paid_at = $4 \
         WHERE id = $5 AND status = $6",
    )
    .bind(PaymentStatus::Paid.as_str())
    .bind(trade_no)
    .bind(pay_msg_id)
    .bind(paid_at)
    .bind(id.to_string())
    .bind(PaymentStatus::Unpaid.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`mark_paid`] on a connection of the pool.
pub async fn mark_paid_db(
    db: &Db,
    id: Uuid,
    trade_no: &str,
    pay_msg_id: Option<&str>,
    paid_at: i64,
) -> Result<bool, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    mark_paid(&mut conn, id, trade_no, pay_msg_id, paid_at).await
}

/// UNPAID → REFUNDED with the gateway's trade number, as one conditional
/// statement: `true` when this call made the change.
pub async fn mark_refunded(
    conn: &mut AnyConnection,
    id: Uuid,
    trade_no: &str,
    msg_id: Option<&str>,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE payments SET status = $1, trade_no = $2, pay_msg_id = $3, paid_at = $4, refunded_at = $4 \
         WHERE id = $5 AND status = $6",
    )
    .bind(PaymentStatus::Refunded.as_str())
    .bind(trade_no)
    .bind(msg_id)
    .bind(at)
    .bind(id.to_string())
    .bind(PaymentStatus::Unpaid.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`mark_refunded`] on a connection of the pool.
pub async fn mark_refunded_db(
    db: &Db,
    id: Uuid,
    trade_no: &str,
    msg_id: Option<&str>,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    mark_refunded(&mut conn, id, trade_no, msg_id, at).await
}

/// The operator's payments: the one of `order_id`, or (`None`) the first
/// `limit` by order id after order id `after`.
pub async fn list_by_order(
    db: &Db,
    order_id: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Payment>, sqlx::Error> {
    let rows = match order_id {
        Some(order_id) => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM payments WHERE order_id = $1"
            ))
            .bind(order_id.to_string())
            .fetch_all(db.pool())
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM payments WHERE order_id > $1 ORDER BY order_id LIMIT $2"
            ))
            .bind(after.map(|id| id.to_string()).unwrap_or_default())
            .bind(limit)
            .fetch_all(db.pool())
            .await?
        }
    };
    rows.iter().map(Payment::from_row).collect()
}
