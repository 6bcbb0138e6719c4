//! The per-order ledger every reserving service keeps (goods: stock, user:
//! balance, coupon: coupons), and the protocol that makes a reservation and
//! its ORDER_CANCEL compensation each happen once, in either order.
//!
//! A ledger table has one row per `(order_id, operation)`: the take
//! (`reserve` or `use`) and the `cancel` marker. Both are written first in
//! their transaction, under the order's lock ([`lock_order`]):
//! - a repeated take finds its row ([`Claim::Repeated`]) and changes nothing;
//! - a take after the marker is refused ([`Claim::Cancelled`]), so a
//!   reservation that arrives after its order was compensated cannot leak;
//! - a repeated cancellation finds its marker and changes nothing.
//!
//! [`AmountLedger`] is the whole protocol for a ledger whose take is an
//! amount subtracted from a balance column (stock, money). The coupon ledger
//! uses [`claim`] and [`mark_cancelled`] around its own status change.
//!
//! Table and column names are `'static` strings of the services, never
//! input; every value is bound.

use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::db::lock_order;
use crate::{now_ms, Db};

/// What writing the take row found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The row is new: go on and take.
    New,
    /// The order took before; the earlier row stands.
    Repeated,
    /// The order was cancelled here; nothing may be taken for it.
    Cancelled,
}

/// Locks `order_id`, runs `insert_take` (an `INSERT ... ON CONFLICT
/// (order_id, operation) DO NOTHING` of the take row) and looks for the
/// order's cancel marker in `ledger`.
///
/// Write first: on SQLite the insert takes the write lock before anything is
/// read, so racing transactions queue on the busy timeout instead of failing
/// to upgrade a read snapshot.
pub async fn claim<'q>(
    conn: &mut AnyConnection,
    ledger: &str,
    order_id: Uuid,
    insert_take: Query<'q, Any, AnyArguments<'q>>,
) -> Result<Claim, sqlx::Error> {
    lock_order(conn, order_id).await?;
    let inserted = insert_take.execute(&mut *conn).await?.rows_affected() == 1;
    let cancelled = sqlx::query(&format!(
        "SELECT 1 FROM {ledger} WHERE order_id = $1 AND operation = 'cancel'"
    ))
    .bind(order_id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .is_some();
    Ok(match (cancelled, inserted) {
        (true, _) => Claim::Cancelled,
        (false, true) => Claim::New,
        (false, false) => Claim::Repeated,
    })
}

/// Locks `order_id` and writes its cancel marker in `ledger` (the other
/// columns NULL, `zero_columns` 0). False when the marker was there: the
/// order was compensated before and nothing more may change.
pub async fn mark_cancelled(
    conn: &mut AnyConnection,
    ledger: &str,
    zero_columns: &[&str],
    order_id: Uuid,
) -> Result<bool, sqlx::Error> {
    lock_order(conn, order_id).await?;
    let (columns, zeros) = zero_columns.iter().fold(
        (String::new(), String::new()),
        |(mut columns, mut zeros), column| {
            columns.push_str(", ");
            columns.push_str(column);
            zeros.push_str(", 0");
            (columns, zeros)
        },
    );
    let first = sqlx::query(&format!(
        "INSERT INTO {ledger} (order_id, operation, created_at{columns}) \
         VALUES ($1, 'cancel', $2{zeros}) ON CONFLICT (order_id, operation) DO NOTHING"
    ))
    .bind(order_id.to_string())
    .bind(now_ms())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    Ok(first)
}

/// A ledger whose take subtracts an amount from an account's balance column:
/// `UPDATE {accounts} SET {balance} = {balance} - amount WHERE id = owner
/// AND {balance} >= amount`, so racing orders cannot overdraw.
#[derive(Debug, Clone, Copy)]
pub struct AmountLedger {
    /// The ledger table, e.g. `stock_ledger`.
    pub ledger: &'static str,
    /// Its column naming the account, e.g. `goods_id`.
    pub owner: &'static str,
    /// Its column holding the amount, e.g. `quantity`.
    pub amount: &'static str,
    /// The accounts table, e.g. `goods`.
    pub accounts: &'static str,
    /// The accounts' balance column, e.g. `stock`.
    pub balance: &'static str,
}

/// An amount held for one order: its `reserve` row, or what a `cancel` row
/// put back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub owner: i64,
    pub amount: i64,
    /// When the row was written, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// What [`AmountLedger::reserve`] did. Only `Taken` changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    Taken(Hold),
    /// The same reservation was made before.
    Replayed(Hold),
    /// The order reserved something else before (that earlier hold).
    Mismatch(Hold),
    /// The order was cancelled here.
    Cancelled,
    /// No account has that id.
    NoAccount,
    /// The account holds less than asked.
    Insufficient {
        available: i64,
    },
}

/// The `cancel` row of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelMarker {
    /// What was put back, when the order had reserved something.
    pub restored: Option<Hold>,
    pub at_ms: i64,
}

/// A reservation as a service shows it (`R`), and whether the order had
/// made exactly this one before (nothing changed now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved<R> {
    pub reservation: R,
    pub replayed: bool,
}

/// What the ledger holds for one order, its reservation as a service shows
/// it (`R`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLedger<R> {
    pub order_id: Uuid,
    pub reservation: Option<R>,
    pub cancellation: Option<Cancellation>,
}

/// The `cancel` row of an order, as a service shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    /// The owner and amount put back, when the order had reserved some.
    pub restored: Option<(i64, i64)>,
    pub cancelled_at: i64,
}

/// What [`AmountLedger::cancel_in`] did; a service names what came back
/// in its own terms with [`Cancel::map`] (stock restocked, money refunded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel<T = Hold> {
    /// First cancellation of an order that held an amount: it is back.
    Restored(T),
    /// First cancellation of an order that held nothing here; the marker
    /// refuses a later reservation for it.
    NothingReserved,
    /// Cancelled before; nothing changed.
    AlreadyCancelled,
}

impl<T> Cancel<T> {
    /// The same outcome with what came back seen through `view`.
    pub fn map<U>(self, view: impl FnOnce(T) -> U) -> Cancel<U> {
        match self {
            Cancel::Restored(held) => Cancel::Restored(view(held)),
            Cancel::NothingReserved => Cancel::NothingReserved,
            Cancel::AlreadyCancelled => Cancel::AlreadyCancelled,
        }
    }

    /// Whether this cancellation gave something back.
    pub fn restored(&self) -> bool {
        matches!(self, Cancel::Restored(_))
    }
}

impl AmountLedger {
    /// Takes `amount` from account `owner` for `order_id`, once, in one
    /// transaction; on anything but [`Reserve::Taken`] nothing changes.
    pub async fn reserve(
        &self,
        db: &Db,
        order_id: Uuid,
        owner: i64,
        amount: i64,
    ) -> Result<Reserve, sqlx::Error> {
        let Self {
            ledger,
            owner: owner_column,
            amount: amount_column,
            accounts,
            balance,
        } = *self;
        let at_ms = now_ms();
        let mut tx = db.pool().begin().await?;
        let insert = format!(
            "INSERT INTO {ledger} (order_id, operation, {owner_column}, {amount_column}, created_at) \
             VALUES ($1, 'reserve', $2, $3, $4) ON CONFLICT (order_id, operation) DO NOTHING"
        );
        let claimed = claim(
            &mut tx,
            ledger,
            order_id,
            sqlx::query(&insert)
                .bind(order_id.to_string())
                .bind(owner)
                .bind(amount)
                .bind(at_ms),
        )
        .await?;
        let outcome = match claimed {
            Claim::Cancelled => Reserve::Cancelled,
            Claim::Repeated => match self.reservation(&mut tx, order_id).await? {
                Some(earlier) if earlier.owner == owner && earlier.amount == amount => {
                    Reserve::Replayed(earlier)
                }
                Some(earlier) => Reserve::Mismatch(earlier),
                // The row that blocked the insert is there until we commit.
                None => return Err(sqlx::Error::RowNotFound),
            },
            Claim::New => {
                let taken = sqlx::query(&format!(
                    "UPDATE {accounts} SET {balance} = {balance} - $1 WHERE id = $2 AND {balance} >= $1"
                ))
                .bind(amount)
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if taken {
                    tx.commit().await?;
                    return Ok(Reserve::Taken(Hold {
                        owner,
                        amount,
                        at_ms,
                    }));
                }
                let available: Option<i64> =
                    sqlx::query_scalar(&format!("SELECT {balance} FROM {accounts} WHERE id = $1"))
                        .bind(owner)
                        .fetch_optional(&mut *tx)
                        .await?;
                match available {
                    None => Reserve::NoAccount,
                    Some(available) => Reserve::Insufficient { available },
                }
            }
        };
        tx.rollback().await?;
        Ok(outcome)
    }

    /// Both rows of `order_id`, its reservation shown by `view`.
    pub async fn order_ledger<R>(
        &self,
        db: &Db,
        order_id: Uuid,
        view: impl Fn(Hold) -> R,
    ) -> Result<OrderLedger<R>, sqlx::Error> {
        let mut conn = db.pool().acquire().await?;
        let reservation = self.reservation(&mut conn, order_id).await?.map(view);
        let cancellation =
            self.cancellation(&mut conn, order_id)
                .await?
                .map(|marker| Cancellation {
                    restored: marker.restored.map(|hold| (hold.owner, hold.amount)),
                    cancelled_at: marker.at_ms,
                });
        Ok(OrderLedger {
            order_id,
            reservation,
            cancellation,
        })
    }

    /// The `reserve` row of `order_id`.
    pub async fn reservation(
        &self,
        conn: &mut AnyConnection,
        order_id: Uuid,
    ) -> Result<Option<Hold>, sqlx::Error> {
        Ok(self
            .row(conn, order_id, "reserve")
            .await?
            .and_then(|(owner, amount, at_ms)| {
                owner.map(|owner| Hold {
                    owner,
                    amount,
                    at_ms,
                })
            }))
    }

    /// The `cancel` row of `order_id`.
    pub async fn cancellation(
        &self,
        conn: &mut AnyConnection,
        order_id: Uuid,
    ) -> Result<Option<CancelMarker>, sqlx::Error> {
        Ok(self
            .row(conn, order_id, "cancel")
            .await?
            .map(|(owner, amount, at_ms)| CancelMarker {
                restored: owner.map(|owner| Hold {
                    owner,
                    amount,
                    at_ms,
                }),
                at_ms,
            }))
    }

    /// The owner (NULL on a cancel marker that restored nothing), amount and
    /// time of one ledger row.
    async fn row(
        &self,
        conn: &mut AnyConnection,
        order_id: Uuid,
        operation: &str,
    ) -> Result<Option<(Option<i64>, i64, i64)>, sqlx::Error> {
        let Self {
            ledger,
            owner,
            amount,
            ..
        } = *self;
        let row = sqlx::query(&format!(
            "SELECT {owner}, {amount}, created_at FROM {ledger} WHERE order_id = $1 AND operation = $2"
        ))
        .bind(order_id.to_string())
        .bind(operation)
        .fetch_optional(conn)
        .await?;
        row.map(|row| {
            Ok((
                row.try_get(owner)?,
                row.try_get(amount)?,
                row.try_get("created_at")?,
            ))
        })
        .transpose()
    }

    /// The ORDER_CANCEL compensation inside the caller's transaction: writes
    /// the order's cancel marker and, the first time, puts back what it
    /// reserved, recording that on the marker.
    pub async fn cancel_in(
        &self,
        conn: &mut AnyConnection,
        order_id: Uuid,
    ) -> Result<Cancel, sqlx::Error> {
        let Self {
            ledger,
            owner,
            amount,
            accounts,
            balance,
        } = *self;
        if !mark_cancelled(conn, ledger, &[amount], order_id).await? {
            return Ok(Cancel::AlreadyCancelled);
        }
        let Some(held) = self.reservation(conn, order_id).await? else {
            return Ok(Cancel::NothingReserved);
        };
        sqlx::query(&format!(
            "UPDATE {accounts} SET {balance} = {balance} + $1 WHERE id = $2"
        ))
        .bind(held.amount)
        .bind(held.owner)
        .execute(&mut *conn)
        .await?;
        sqlx::query(&format!(
            "UPDATE {ledger} SET {owner} = $1, {amount} = $2 WHERE order_id = $3 AND operation = 'cancel'"
        ))
        .bind(held.owner)
        .bind(held.amount)
        .bind(order_id.to_string())
        .execute(&mut *conn)
        .await?;
        Ok(Cancel::Restored(held))
    }
}

/// The operator's read of a ledger table: `columns` (which must include
/// `order_id`) of the rows of `order_id`, or, without one, of every row of
/// the first `orders` orders whose id sorts after `after`, by order id then
/// operation. A page holds whole orders, so a reader that continues after
/// the last order id of a page misses no row.
pub async fn operator_rows(
    db: &Db,
    table: &'static str,
    columns: &'static str,
    order_id: Option<Uuid>,
    after: Option<Uuid>,
    orders: i64,
) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
    match order_id {
        Some(order_id) => {
            sqlx::query(&format!(
                "SELECT {columns} FROM {table} WHERE order_id = $1 ORDER BY operation"
            ))
            .bind(order_id.to_string())
            .fetch_all(db.pool())
            .await
        }
        None => {
            sqlx::query(&format!(
                "SELECT {columns} FROM {table} WHERE order_id IN (SELECT DISTINCT order_id \
                 FROM {table} WHERE order_id > $1 ORDER BY order_id LIMIT $2) \
                 ORDER BY order_id, operation"
            ))
            .bind(after.map(|id| id.to_string()).unwrap_or_default())
            .bind(orders)
            .fetch_all(db.pool())
            .await
        }
    }
}

/// The `order_id` column of a ledger row.
pub fn row_order_id(row: &sqlx::any::AnyRow) -> Result<Uuid, sqlx::Error> {
    let order_id: String = row.try_get("order_id")?;
    order_id
        .parse()
        .map_err(|e: uuid::Error| sqlx::Error::Decode(e.into()))
}

/// The query of an operator's ledger listing
/// (`GET /operator/<kind>-ledger?order_id=&after=&limit=`): one order's
/// rows, or a page of `limit` orders (see [`crate::http::page_limit`])
/// whose ids sort after `after`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    pub order_id: Option<Uuid>,
    pub after: Option<Uuid>,
    pub limit: Option<i64>,
}

/// The `after` of the page following one that answered `query` with rows
/// of `orders` (in order, each id once or repeated in a run): the last
/// order of a full page, none for the last page or a single order's rows.
pub fn next_after(
    query: &LedgerQuery,
    limit: i64,
    orders: impl IntoIterator<Item = Uuid>,
) -> Option<Uuid> {
    if query.order_id.is_some() {
        return None;
    }
    let mut count = 0;
    let mut last = None;
    for id in orders {
        if last != Some(id) {
            count += 1;
            last = Some(id);
        }
    }
    (count == limit).then_some(last).flatten()
}

#[cfg(test)]
mod next_after_tests {
    use super::*;

    fn query(order_id: Option<Uuid>) -> LedgerQuery {
        LedgerQuery {
            order_id,
            after: None,
            limit: None,
        }
    }

    #[test]
    fn a_full_page_continues_after_its_last_order() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        // Two orders, three rows: a full page of two.
        assert_eq!(next_after(&query(None), 2, [a, a, b]), Some(b));
        // Fewer orders than the limit: the last page.
        assert_eq!(next_after(&query(None), 3, [a, a, b]), None);
        assert_eq!(next_after(&query(None), 1, []), None);
        // One order's rows never page.
        assert_eq!(next_after(&query(Some(a)), 1, [a, a]), None);
    }
}
