//! Users, balances and the money ledger: every statement that touches the
//! database.
//!
//! A balance reservation and a cancellation each run in one transaction
//! that writes its ledger row first. The ledger's primary key
//! `(order_id, operation)` is what makes them happen once: a repeated
//! reservation finds its `reserve` row, a repeated cancellation its `cancel`
//! row, and neither touches the balance again. Money is taken by one
//! conditional `UPDATE ... WHERE balance_cents >= amount`, so racing orders
//! cannot overspend (and `CHECK (balance_cents >= 0)` backs it up).

use shop_common::ledger::{self, AmountLedger, Cancel, Hold, Reserve};
use shop_common::money::from_cents;
use shop_common::Db;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::error::UserError;

/// The money ledger: a reservation takes `amount_cents` from
/// `users.balance_cents`.
const MONEY: AmountLedger = AmountLedger {
    ledger: "money_ledger",
    owner: "user_id",
    amount: "amount_cents",
    accounts: "users",
    balance: "balance_cents",
};

/// Largest amount one order may take from a balance, in cents
/// (1,000,000.00): far above any real basket, low enough to stop a typo.
pub const MAX_RESERVATION_CENTS: i64 = 100_000_000;
/// Largest balance a user may be created with, in cents (1,000,000,000.00).
pub const MAX_BALANCE_CENTS: i64 = 100_000_000_000;
/// Longest user name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub balance_cents: i64,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// Money taken from a balance by one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceReservation {
    pub order_id: Uuid,
    pub user_id: i64,
    pub amount_cents: i64,
    pub reserved_at: i64,
}

/// The result of [`reserve`].
pub type Reserved = ledger::Reserved<BalanceReservation>;
/// What the ledger holds for one order; a cancellation's `restored` is the
/// user and amount (cents) refunded.
pub type OrderLedger = ledger::OrderLedger<BalanceReservation>;

impl BalanceReservation {
    /// The `reserve` row of `order_id` as a reservation.
    fn of(order_id: Uuid, hold: Hold) -> BalanceReservation {
        BalanceReservation {
            order_id,
            user_id: hold.owner,
            amount_cents: hold.amount,
            reserved_at: hold.at_ms,
        }
    }
}

/// The result of [`cancel_order`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// First cancellation of an order that had reserved money: it is back.
    Refunded { user_id: i64, amount_cents: i64 },
    /// First cancellation of an order that had reserved nothing here; the
    /// marker makes a later reservation for it fail with `order_cancelled`.
    NothingReserved,
    /// The order was cancelled before; nothing changed.
    AlreadyCancelled,
}

impl CancelOutcome {
    /// Whether this call refunded money.
    pub fn restored(&self) -> bool {
        matches!(self, CancelOutcome::Refunded { .. })
    }
}

pub(crate) use shop_common::now_ms;

fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        balance_cents: row.try_get("balance_cents")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Checks the name and the opening balance and stores a new user.
pub async fn create_user(db: &Db, name: &str, balance_cents: i64) -> Result<User, UserError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(UserError::invalid(
            "invalid_name",
            format!("name must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if !(0..=MAX_BALANCE_CENTS).contains(&balance_cents) {
        return Err(UserError::invalid(
            "invalid_balance",
            format!(
                "balance must be between 0.00 and {}",
                from_cents(MAX_BALANCE_CENTS)
            ),
        ));
    }
    let created_at = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (name, balance_cents, created_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(name)
    .bind(balance_cents)
    .bind(created_at)
    .fetch_one(db.pool())
    .await?;
    Ok(User {
        id,
        name: name.to_owned(),
        balance_cents,
        created_at,
    })
}

/// The user `id`, or [`UserError::UserNotFound`].
pub async fn get_user(db: &Db, id: i64) -> Result<User, UserError> {
    let row = sqlx::query("SELECT id, name, balance_cents, created_at FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(UserError::UserNotFound(id))?;
    Ok(user_from_row(&row)?)
}

/// Takes `amount_cents` from the balance of `user_id` for `order_id`.
///
/// Idempotent per order: repeating the same reservation answers the same
/// [`BalanceReservation`] (with `replayed`) and changes nothing; another
/// user or amount for the same order is [`UserError::ReservationMismatch`].
/// A cancelled order is refused with [`UserError::OrderCancelled`]. On any
/// error nothing changes.
pub async fn reserve(
    db: &Db,
    user_id: i64,
    order_id: Uuid,
    amount_cents: i64,
) -> Result<Reserved, UserError> {
    if !(1..=MAX_RESERVATION_CENTS).contains(&amount_cents) {
        return Err(UserError::invalid(
            "invalid_amount",
            format!(
                "amount must be between 0.01 and {}",
                from_cents(MAX_RESERVATION_CENTS)
            ),
        ));
    }
    let reservation = |hold| BalanceReservation::of(order_id, hold);
    Ok(
        match MONEY.reserve(db, order_id, user_id, amount_cents).await? {
            Reserve::Taken(hold) => Reserved {
                reservation: reservation(hold),
                replayed: false,
            },
            Reserve::Replayed(hold) => Reserved {
                reservation: reservation(hold),
                replayed: true,
            },
            Reserve::Mismatch(earlier) => {
                return Err(UserError::ReservationMismatch {
                    order_id,
                    user_id: earlier.owner,
                    amount_cents: earlier.amount,
                })
            }
            Reserve::Cancelled => return Err(UserError::OrderCancelled(order_id)),
            Reserve::NoAccount => return Err(UserError::UserNotFound(user_id)),
            Reserve::Insufficient { available } => {
                return Err(UserError::InsufficientBalance {
                    user_id,
                    requested_cents: amount_cents,
                    available_cents: available,
                })
            }
        },
    )
}

/// The ledger rows of `order_id`.
pub async fn order_ledger(db: &Db, order_id: Uuid) -> Result<OrderLedger, UserError> {
    Ok(MONEY
        .order_ledger(db, order_id, |hold| BalanceReservation::of(order_id, hold))
        .await?)
}

/// The ORDER_CANCEL compensation: records that `order_id` is cancelled (so a
/// later reservation for it is refused) and refunds the money it reserved,
/// if any, exactly once. A second call changes nothing and answers
/// [`CancelOutcome::AlreadyCancelled`].
pub async fn cancel_order(db: &Db, order_id: Uuid) -> Result<CancelOutcome, UserError> {
    let mut tx = db.pool().begin().await?;
    let outcome = cancel_order_in(&mut tx, order_id).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// [`cancel_order`] inside a transaction the caller owns and commits, for a
/// consumer that records other rows (e.g. its consumed message) with it.
pub async fn cancel_order_in(
    conn: &mut AnyConnection,
    order_id: Uuid,
) -> Result<CancelOutcome, UserError> {
    Ok(match MONEY.cancel_in(conn, order_id).await? {
        Cancel::Restored(hold) => CancelOutcome::Refunded {
            user_id: hold.owner,
            amount_cents: hold.amount,
        },
        Cancel::NothingReserved => CancelOutcome::NothingReserved,
        Cancel::AlreadyCancelled => CancelOutcome::AlreadyCancelled,
    })
}
