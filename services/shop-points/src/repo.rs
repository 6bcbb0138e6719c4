//! Points: how many a payment earns, and the `points_ledger` and
//! `user_points` tables.

use serde::{Deserialize, Serialize};
use shop_common::events::{EventError, PaymentSucceeded};
use shop_common::money::to_cents;
use shop_common::Db;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

/// Points earned by paying `amount_cents`: one per whole unit, the cents
/// dropped (`12.99` earns 12). `None` for a negative amount.
pub fn points_for(amount_cents: i64) -> Option<i64> {
    (amount_cents >= 0).then_some(amount_cents / 100)
}

/// One credit of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub user_id: i64,
    pub amount_cents: i64,
    pub points: i64,
    pub credited_at: i64,
}

fn uuid_column(row: &AnyRow, column: &str) -> Result<Uuid, sqlx::Error> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e: uuid::Error| sqlx::Error::Decode(e.into()))
}

impl Credit {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Credit {
            payment_id: uuid_column(row, "payment_id")?,
            order_id: uuid_column(row, "order_id")?,
            user_id: row.try_get("user_id")?,
            amount_cents: row.try_get("amount_cents")?,
            points: row.try_get("points")?,
            credited_at: row.try_get("credited_at")?,
        })
    }
}

/// Credits the points of a payment, inside the consumer's transaction:
/// the ledger row first (unique per payment and per order), then the
/// balance, only when the ledger row is new. Returns the points credited
/// (`None`: this payment or order was credited already).
pub async fn credit(
    conn: &mut AnyConnection,
    event: &PaymentSucceeded,
    now_ms: i64,
) -> Result<Option<i64>, EventError> {
    let amount_cents = to_cents(event.amount)
        .map_err(|e| EventError::Invalid(format!("payment {}: {e}", event.payment_id)))?;
    let points = points_for(amount_cents).ok_or_else(|| {
        EventError::Invalid(format!(
            "payment {} has a negative amount {}",
            event.payment_id, event.amount
        ))
    })?;
    let inserted = sqlx::query(
        "INSERT INTO points_ledger (payment_id, order_id, user_id, amount_cents, points, credited_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(event.payment_id.to_string())
    .bind(event.order_id.to_string())
    .bind(event.user_id)
    .bind(amount_cents)
    .bind(points)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO user_points (user_id, points, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET points = user_points.points + excluded.points, \
         updated_at = excluded.updated_at",
    )
    .bind(event.user_id)
    .bind(points)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(Some(points))
}

/// A user's points; 0 for a user never credited.
pub async fn balance(db: &Db, user_id: i64) -> Result<i64, sqlx::Error> {
    let points: Option<i64> =
        sqlx::query_scalar("SELECT points FROM user_points WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(db.pool())
            .await?;
    Ok(points.unwrap_or(0))
}

/// A user's credits, oldest first.
pub async fn ledger(db: &Db, user_id: i64, limit: i64) -> Result<Vec<Credit>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT payment_id, order_id, user_id, amount_cents, points, credited_at \
         FROM points_ledger WHERE user_id = $1 ORDER BY credited_at, payment_id LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(Credit::from_row).collect()
}

/// The operator's credits: the one of `order_id`, or (`None`) the first
/// `limit` by order id after order id `after`.
pub async fn credits_by_order(
    db: &Db,
    order_id: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Credit>, sqlx::Error> {
    let rows = match order_id {
        Some(order_id) => {
            sqlx::query(
                "SELECT payment_id, order_id, user_id, amount_cents, points, credited_at \
                 FROM points_ledger WHERE order_id = $1",
            )
            .bind(order_id.to_string())
            .fetch_all(db.pool())
            .await?
        }
        None => {
            sqlx::query(
                "SELECT payment_id, order_id, user_id, amount_cents, points, credited_at \
                 FROM points_ledger WHERE order_id > $1 ORDER BY order_id LIMIT $2",
            )
            .bind(after.map(|id| id.to_string()).unwrap_or_default())
            .bind(limit)
            .fetch_all(db.pool())
            .await?
        }
    };
    rows.iter().map(Credit::from_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_point_per_whole_unit() {
        for (cents, points) in [
            (0, 0),
            (1, 0),
            (99, 0),
            (100, 1),
            (1299, 12),
            (1230, 12),
            (10_000, 100),
            (i64::MAX, i64::MAX / 100),
        ] {
            assert_eq!(points_for(cents), Some(points), "{cents}");
        }
        assert_eq!(points_for(-100), None);
    }
}
