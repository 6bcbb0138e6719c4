//! Coupons and the coupon ledger: every statement that touches the database.
//!
//! Using a coupon for an order and cancelling an order each run in one
//! transaction that writes its ledger row first. The ledger's primary key
//! `(order_id, operation)` is what makes them happen once: a repeated use
//! finds its `use` row, a repeated cancellation its `cancel` row, and neither
//! touches the coupon again. A coupon is taken by one conditional
//! `UPDATE ... WHERE id = $ AND user_id = $ AND status = 'unused'`, so two
//! orders racing for one coupon cannot both have it.

use shop_common::ledger::{claim, mark_cancelled, Claim};
use shop_common::Db;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::error::CouponError;

/// The most `max_coupon_amount` may be set to, in cents (10,000.00).
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000;
/// The default of `max_coupon_amount`, in cents (100.00): the largest coupon
/// an operator may issue unless configured otherwise.
pub const DEFAULT_MAX_AMOUNT_CENTS: i64 = 10_000;
/// Most coupons one listing returns.
pub const MAX_PAGE: i64 = 1_000;

pub use shop_common::api::coupon::CouponStatus;

/// A coupon as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coupon {
    pub id: i64,
    pub user_id: i64,
    pub amount_cents: i64,
    pub status: CouponStatus,
    /// The order that used it, while `status` is `Used`.
    pub order_id: Option<Uuid>,
    /// Milliseconds since the Unix epoch.
    pub used_at: Option<i64>,
    pub created_at: i64,
}

/// The result of [`use_coupon`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponUse {
    pub coupon: Coupon,
    /// The order had used exactly this coupon before; nothing changed now.
    pub replayed: bool,
}

/// The result of [`cancel_order`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// First cancellation of an order that had used a coupon: it is unused again.
    Released { coupon_id: i64 },
    /// First cancellation of an order that had used no coupon here; the
    /// marker makes a later use for it fail with `order_cancelled`.
    NothingUsed,
    /// The order was cancelled before; nothing changed.
    AlreadyCancelled,
}

impl CancelOutcome {
    /// Whether this call gave a coupon back.
    pub fn restored(&self) -> bool {
        matches!(self, CancelOutcome::Released { .. })
    }
}

pub(crate) use shop_common::now_ms;

const COUPON_COLUMNS: &str = "id, user_id, amount_cents, status, order_id, used_at, created_at";

fn coupon_from_row(row: &AnyRow) -> Result<Coupon, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let status = match CouponStatus::parse(&status) {
        Some(status) => status,
        None => {
            return Err(sqlx::Error::Decode(
                format!("unknown coupon status {status:?}").into(),
            ));
        }
    };
    let order_id: Option<String> = row.try_get("order_id")?;
    let order_id = order_id
        .map(|text| Uuid::parse_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .transpose()?;
    Ok(Coupon {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        amount_cents: row.try_get("amount_cents")?,
        status,
        order_id,
        used_at: row.try_get("used_at")?,
        created_at: row.try_get("created_at")?,
    })
}

fn check_user_id(user_id: i64) -> Result<(), CouponError> {
    if user_id <= 0 {
        return Err(CouponError::invalid(
            "invalid_user_id",
            "user_id must be a positive user id",
        ));
    }
    Ok(())
}

/// Creates an unused coupon worth `amount_cents` (0.01 to `max_cents`) for
/// `user_id`. The user is not looked up: users belong to the user service.
pub async fn create_coupon(
    db: &Db,
    user_id: i64,
    amount_cents: i64,
    max_cents: i64,
) -> Result<Coupon, CouponError> {
    check_user_id(user_id)?;
    if !(1..=max_cents).contains(&amount_cents) {
        return Err(CouponError::invalid(
            "invalid_amount",
            format!(
                "amount must be between 0.01 and {}",
                shop_common::money::from_cents(max_cents)
            ),
        ));
    }
    let created_at = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO coupon (user_id, amount_cents, status, created_at) VALUES ($1, $2, 'unused', $3) RETURNING id",
    )
    .bind(user_id)
    .bind(amount_cents)
    .bind(created_at)
    .fetch_one(db.pool())
    .await?;
    Ok(Coupon {
        id,
        user_id,
        amount_cents,
        status: CouponStatus::Unused,
        order_id: None,
        used_at: None,
        created_at,
    })
}

/// The coupon `id`, or [`CouponError::CouponNotFound`].
pub async fn get_coupon(db: &Db, id: i64) -> Result<Coupon, CouponError> {
    let row = sqlx::query(&format!(
        "SELECT {COUPON_COLUMNS} FROM coupon WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .ok_or(CouponError::CouponNotFound(id))?;
    Ok(coupon_from_row(&row)?)
}

/// The coupons of `user_id` (of everyone: `None`) with an id above
/// `after_id`, by id, at most `limit` (1 to [`MAX_PAGE`]).
pub async fn list_coupons(
    db: &Db,
    user_id: Option<i64>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<Coupon>, CouponError> {
    if let Some(user_id) = user_id {
        check_user_id(user_id)?;
    }
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(CouponError::invalid(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let rows = match user_id {
        Some(user_id) => sqlx::query(&format!(
            "SELECT {COUPON_COLUMNS} FROM coupon WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(user_id)
        .bind(after_id)
        .bind(limit)
        .fetch_all(db.pool())
        .await?,
        None => sqlx::query(&format!(
            "SELECT {COUPON_COLUMNS} FROM coupon WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after_id)
        .bind(limit)
        .fetch_all(db.pool())
        .await?,
    };
    Ok(rows.iter().map(coupon_from_row).collect::<Result<_, _>>()?)
}

/// Uses coupon `coupon_id` of `user_id` for `order_id`.
///
/// Idempotent per order: repeating the same use answers the same coupon
/// (with `replayed`) and changes nothing; another coupon for the same order
/// is [`CouponError::ReservationMismatch`]. A cancelled order is refused with
/// [`CouponError::OrderCancelled`]. On any error nothing changes.
pub async fn use_coupon(
    db: &Db,
    coupon_id: i64,
    order_id: Uuid,
    user_id: i64,
) -> Result<CouponUse, CouponError> {
    check_user_id(user_id)?;
    let order = order_id.to_string();
    let used_at = now_ms();
    let mut tx = db.pool().begin().await?;
    let claimed = claim(
        &mut tx,
        "coupon_ledger",
        order_id,
        sqlx::query(
            "INSERT INTO coupon_ledger (order_id, operation, coupon_id, user_id, created_at) \
             VALUES ($1, 'use', $2, $3, $4) ON CONFLICT (order_id, operation) DO NOTHING",
        )
        .bind(&order)
        .bind(coupon_id)
        .bind(user_id)
        .bind(used_at),
    )
    .await?;
    if claimed == Claim::Cancelled {
        tx.rollback().await?;
        return Err(CouponError::OrderCancelled(order_id));
    }
    if claimed == Claim::Repeated {
        let earlier = sqlx::query("SELECT coupon_id, user_id FROM coupon_ledger WHERE order_id = $1 AND operation = 'use'")
            .bind(&order)
            .fetch_one(&mut *tx)
            .await?;
        let (earlier_coupon, earlier_user): (i64, i64) =
            (earlier.try_get("coupon_id")?, earlier.try_get("user_id")?);
        if earlier_coupon != coupon_id || earlier_user != user_id {
            tx.rollback().await?;
            return Err(CouponError::ReservationMismatch {
                order_id,
                coupon_id: earlier_coupon,
            });
        }
        let row = sqlx::query(&format!(
            "SELECT {COUPON_COLUMNS} FROM coupon WHERE id = $1"
        ))
        .bind(coupon_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.rollback().await?;
        return Ok(CouponUse {
            coupon: coupon_from_row(&row)?,
            replayed: true,
        });
    }

    let taken = sqlx::query(&format!(
        "UPDATE coupon SET status = 'used', order_id = $1, used_at = $2 \
         WHERE id = $3 AND user_id = $4 AND status = 'unused' RETURNING {COUPON_COLUMNS}"
    ))
    .bind(&order)
    .bind(used_at)
    .bind(coupon_id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = taken else {
        let owner: Option<i64> = sqlx::query_scalar("SELECT user_id FROM coupon WHERE id = $1")
            .bind(coupon_id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.rollback().await?;
        return Err(match owner {
            None => CouponError::CouponNotFound(coupon_id),
            Some(owner) if owner != user_id => CouponError::CouponNotOwned { coupon_id, user_id },
            Some(_) => CouponError::CouponUsed(coupon_id),
        });
    };
    let coupon = coupon_from_row(&row)?;
    tx.commit().await?;
    Ok(CouponUse {
        coupon,
        replayed: false,
    })
}

/// The ORDER_CANCEL compensation: records that `order_id` is cancelled (so a
/// later use of a coupon for it is refused) and makes the coupon it used, if
/// any, unused again, exactly once. A second call changes nothing and
/// answers [`CancelOutcome::AlreadyCancelled`].
pub async fn cancel_order(db: &Db, order_id: Uuid) -> Result<CancelOutcome, CouponError> {
    db.in_transaction(async |conn| cancel_order_in(conn, order_id).await)
        .await
}

/// [`cancel_order`] inside a transaction the caller owns and commits, for a
/// consumer that records other rows (e.g. its consumed message) with it.
pub async fn cancel_order_in(
    conn: &mut AnyConnection,
    order_id: Uuid,
) -> Result<CancelOutcome, CouponError> {
    let order = order_id.to_string();
    if !mark_cancelled(conn, "coupon_ledger", &[], order_id).await? {
        return Ok(CancelOutcome::AlreadyCancelled);
    }
    let used: Option<i64> = sqlx::query_scalar(
        "SELECT coupon_id FROM coupon_ledger WHERE order_id = $1 AND operation = 'use'",
    )
    .bind(&order)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(coupon_id) = used else {
        return Ok(CancelOutcome::NothingUsed);
    };
    // The order_id guard keeps a coupon that somehow moved on untouched.
    let released = sqlx::query(
        "UPDATE coupon SET status = 'unused', order_id = NULL, used_at = NULL WHERE id = $1 AND order_id = $2",
    )
    .bind(coupon_id)
    .bind(&order)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if !released {
        tracing::warn!(%order_id, coupon_id, "the coupon this order used is no longer held by it; nothing released");
        return Ok(CancelOutcome::NothingUsed);
    }
    sqlx::query(
        "UPDATE coupon_ledger SET coupon_id = $1 WHERE order_id = $2 AND operation = 'cancel'",
    )
    .bind(coupon_id)
    .bind(&order)
    .execute(&mut *conn)
    .await?;
    Ok(CancelOutcome::Released { coupon_id })
}

/// One row of the coupon ledger as the operator reads it: `use` (the
/// order used coupon `coupon_id` of `user_id`) or `cancel` (it released
/// `coupon_id`; none when it had used no coupon).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub order_id: Uuid,
    pub operation: String,
    pub coupon_id: Option<i64>,
    pub user_id: Option<i64>,
    pub created_at: i64,
}

/// The coupon ledger for the operator, one order or a page of whole orders
/// ([`shop_common::ledger::operator_rows`]).
pub async fn ledger_rows(
    db: &Db,
    order_id: Option<Uuid>,
    after: Option<Uuid>,
    orders: i64,
) -> Result<Vec<LedgerRow>, CouponError> {
    let rows = shop_common::ledger::operator_rows(
        db,
        "coupon_ledger",
        "order_id, operation, coupon_id, user_id, created_at",
        order_id,
        after,
        orders,
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok(LedgerRow {
                order_id: shop_common::ledger::row_order_id(row)?,
                operation: row.try_get("operation")?,
                coupon_id: row.try_get("coupon_id")?,
                user_id: row.try_get("user_id")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}
