//! The `payment_log` and `order_log` tables: the consumers' effects and
//! the API's queries. A payment's row is its `paid` event (PAY_SUCCESS) or
//! its `refunded` one (PAY_REFUND), each at most once per payment.

use serde::{Deserialize, Serialize};
use shop_common::events::{EventError, OrderCancelled, PaymentSucceeded};

use crate::events::PaymentRefunded;
use shop_common::money::to_cents;
use shop_common::Db;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

/// The event an ORDER_CANCEL message records.
pub const EVENT_CANCELLED: &str = "cancelled";
/// The payment event a PAY_SUCCESS message records.
pub const EVENT_PAID: &str = "paid";
/// The payment event a PAY_REFUND message records.
pub const EVENT_REFUNDED: &str = "refunded";

/// A payment event as logged: `paid` (with `paid_at`) or `refunded` (with
/// `refunded_at` and `reason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentLog {
    pub id: i64,
    pub payment_id: Uuid,
    pub event: String,
    pub order_id: Uuid,
    pub user_id: i64,
    pub amount_cents: i64,
    pub trade_no: String,
    pub paid_at: Option<i64>,
    pub refunded_at: Option<i64>,
    pub reason: Option<String>,
    pub logged_at: i64,
}

/// An order event as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderLog {
    pub id: i64,
    pub order_id: Uuid,
    pub event: String,
    pub user_id: i64,
    pub reason: String,
    pub logged_at: i64,
}

fn uuid_column(row: &AnyRow, column: &str) -> Result<Uuid, sqlx::Error> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e: uuid::Error| sqlx::Error::Decode(e.into()))
}

impl PaymentLog {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(PaymentLog {
            id: row.try_get("id")?,
            payment_id: uuid_column(row, "payment_id")?,
            event: row.try_get("event")?,
            order_id: uuid_column(row, "order_id")?,
            user_id: row.try_get("user_id")?,
            amount_cents: row.try_get("amount_cents")?,
            trade_no: row.try_get("trade_no")?,
            paid_at: row.try_get("paid_at")?,
            refunded_at: row.try_get("refunded_at")?,
            reason: row.try_get("reason")?,
            logged_at: row.try_get("logged_at")?,
        })
    }
}

impl OrderLog {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(OrderLog {
            id: row.try_get("id")?,
            order_id: uuid_column(row, "order_id")?,
            event: row.try_get("event")?,
            user_id: row.try_get("user_id")?,
            reason: row.try_get("reason")?,
            logged_at: row.try_get("logged_at")?,
        })
    }
}

/// Logs a payment; `false` when it was logged already (the unique payment
/// id and event guard even a copy of the event under another message key).
pub async fn log_payment(
    conn: &mut AnyConnection,
    event: &PaymentSucceeded,
    now_ms: i64,
) -> Result<bool, EventError> {
    let amount_cents = to_cents(event.amount)
        .map_err(|e| EventError::Invalid(format!("payment {}: {e}", event.payment_id)))?;
    let done = sqlx::query(
        "INSERT INTO payment_log (payment_id, event, order_id, user_id, amount_cents, trade_no, paid_at, logged_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (payment_id, event) DO NOTHING",
    )
    .bind(event.payment_id.to_string())
    .bind(EVENT_PAID)
    .bind(event.order_id.to_string())
    .bind(event.user_id)
    .bind(amount_cents)
    .bind(&event.trade_no)
    .bind(event.paid_at)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Logs a payment's refund; `false` when it was logged already.
pub async fn log_refund(
    conn: &mut AnyConnection,
    event: &PaymentRefunded,
    now_ms: i64,
) -> Result<bool, EventError> {
    let amount_cents = to_cents(event.amount)
        .map_err(|e| EventError::Invalid(format!("refund of payment {}: {e}", event.payment_id)))?;
    let done = sqlx::query(
        "INSERT INTO payment_log \
         (payment_id, event, order_id, user_id, amount_cents, trade_no, refunded_at, reason, logged_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (payment_id, event) DO NOTHING",
    )
    .bind(event.payment_id.to_string())
    .bind(EVENT_REFUNDED)
    .bind(event.order_id.to_string())
    .bind(event.user_id)
    .bind(amount_cents)
    .bind(&event.trade_no)
    .bind(event.refunded_at)
    .bind(&event.reason)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Logs an order's cancellation; `false` when it was logged already.
pub async fn log_cancellation(
    conn: &mut AnyConnection,
    event: &OrderCancelled,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO order_log (order_id, event, user_id, reason, logged_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id, event) DO NOTHING",
    )
    .bind(event.order_id.to_string())
    .bind(EVENT_CANCELLED)
    .bind(event.user_id)
    .bind(&event.reason)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Which rows a listing returns: optional filters, then ids above
/// `after_id`, at most `limit`, by id.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub order_id: Option<Uuid>,
    pub user_id: Option<i64>,
    pub after_id: i64,
    pub limit: i64,
}

pub async fn payments(db: &Db, filter: &Filter) -> Result<Vec<PaymentLog>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, payment_id, event, order_id, user_id, amount_cents, trade_no, paid_at, \
         refunded_at, reason, logged_at FROM payment_log \
         WHERE ($1 IS NULL OR order_id = $1) AND ($2 IS NULL OR user_id = $2) AND id > $3 \
         ORDER BY id LIMIT $4",
    )
    .bind(filter.order_id.map(|id| id.to_string()))
    .bind(filter.user_id)
    .bind(filter.after_id)
    .bind(filter.limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(PaymentLog::from_row).collect()
}

pub async fn orders(db: &Db, filter: &Filter) -> Result<Vec<OrderLog>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, order_id, event, user_id, reason, logged_at FROM order_log \
         WHERE ($1 IS NULL OR order_id = $1) AND ($2 IS NULL OR user_id = $2) AND id > $3 \
         ORDER BY id LIMIT $4",
    )
    .bind(filter.order_id.map(|id| id.to_string()))
    .bind(filter.user_id)
    .bind(filter.after_id)
    .bind(filter.limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(OrderLog::from_row).collect()
}
