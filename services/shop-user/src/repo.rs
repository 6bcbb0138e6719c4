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
//!
//! Money enters a balance only through an operator's top-up
//! ([`top_up`]), ledgered in `balance_top_ups` whose primary key, the
//! operator's `reference`, makes it happen once. Sign-up starts at 0.00.

use shop_common::ledger::{self, AmountLedger, Cancel, Hold, Reserve};
use shop_common::money::from_cents;
use shop_common::Db;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::error::UserError;
use crate::password::{Login, StoredHash};

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
/// Largest balance a top-up may bring a user to, in cents (1,000,000,000.00).
pub const MAX_BALANCE_CENTS: i64 = 100_000_000_000;
/// Largest single top-up, in cents (100,000.00).
pub const MAX_TOP_UP_CENTS: i64 = 10_000_000;
/// Longest top-up reference, in bytes.
pub const MAX_REFERENCE_LEN: usize = 64;
/// Most top-ups one listing returns.
pub const MAX_PAGE: i64 = 1_000;
/// Longest user name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    /// `None` only for a user created before logins existed, who cannot
    /// log in.
    pub login: Option<String>,
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

/// The result of [`cancel_order`]: on the first cancellation of an order
/// that had reserved money, the money given back; the cancel marker makes a
/// later reservation for the order fail with `order_cancelled`.
pub type CancelOutcome = Cancel<Refund>;

/// Money given back by an order's cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refund {
    pub user_id: i64,
    pub amount_cents: i64,
}

pub(crate) use shop_common::now_ms;

const USER_COLUMNS: &str = "id, login, name, balance_cents, created_at";

fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        login: row.try_get("login")?,
        name: row.try_get("name")?,
        balance_cents: row.try_get("balance_cents")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Checks `name` and stores a new customer `login` with `password_hash`
/// and a balance of 0.00; [`UserError::LoginTaken`] when the login is
/// someone's already.
pub async fn create_user(
    db: &Db,
    login: &Login,
    name: &str,
    password_hash: &str,
) -> Result<User, UserError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(UserError::invalid(
            "invalid_name",
            format!("name must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    let created_at = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (login, password_hash, name, balance_cents, created_at) \
         VALUES ($1, $2, $3, 0, $4) RETURNING id",
    )
    .bind(login.as_str())
    .bind(password_hash)
    .bind(name)
    .bind(created_at)
    .fetch_one(db.pool())
    .await
    .map_err(|e| match e.as_database_error() {
        Some(d) if d.is_unique_violation() => UserError::LoginTaken(login.to_string()),
        _ => UserError::Database(e),
    })?;
    Ok(User {
        id,
        login: Some(login.to_string()),
        name: name.to_owned(),
        balance_cents: 0,
        created_at,
    })
}

/// The id and password hash of customer `login`, if there is one.
pub async fn credentials(db: &Db, login: &Login) -> Result<Option<(i64, StoredHash)>, UserError> {
    let row = sqlx::query("SELECT id, password_hash FROM users WHERE login = $1")
        .bind(login.as_str())
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let hash: Option<String> = row.try_get("password_hash")?;
    // A hash that does not parse cannot match: the log-in fails as for a
    // wrong password (and is logged).
    let hash = hash.and_then(|h| match StoredHash::parse(&h) {
        Ok(hash) => Some(hash),
        Err(e) => {
            tracing::error!(login = %login, error = %e, "stored password hash is unreadable");
            None
        }
    });
    let id: i64 = row.try_get("id")?;
    Ok(hash.map(|hash| (id, hash)))
}

/// The user `id`, or [`UserError::UserNotFound`].
pub async fn get_user(db: &Db, id: i64) -> Result<User, UserError> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
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
    db.in_transaction(async |conn| cancel_order_in(conn, order_id).await)
        .await
}

/// [`cancel_order`] inside a transaction the caller owns and commits, for a
/// consumer that records other rows (e.g. its consumed message) with it.
pub async fn cancel_order_in(
    conn: &mut AnyConnection,
    order_id: Uuid,
) -> Result<CancelOutcome, UserError> {
    Ok(MONEY.cancel_in(conn, order_id).await?.map(|hold| Refund {
        user_id: hold.owner,
        amount_cents: hold.amount,
    }))
}

/// A top-up as ledgered: `amount_cents` added to `user_id`'s balance by
/// `operator`, which then was `balance_after_cents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUp {
    pub reference: String,
    pub user_id: i64,
    pub amount_cents: i64,
    pub balance_after_cents: i64,
    pub operator: String,
    pub created_at: i64,
}

/// The result of [`top_up`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToppedUp {
    pub top_up: TopUp,
    /// The reference was topped up before; nothing changed now.
    pub replayed: bool,
}

fn check_reference(reference: &str) -> Result<(), UserError> {
    let valid = !reference.is_empty()
        && reference.len() <= MAX_REFERENCE_LEN
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(UserError::invalid(
            "invalid_reference",
            format!(
                "reference must be 1 to {MAX_REFERENCE_LEN} characters of A-Z, a-z, 0-9, '_', '.', ':' and '-'"
            ),
        ))
    }
}

fn top_up_from_row(row: &AnyRow) -> Result<TopUp, sqlx::Error> {
    Ok(TopUp {
        reference: row.try_get("reference")?,
        user_id: row.try_get("user_id")?,
        amount_cents: row.try_get("amount_cents")?,
        balance_after_cents: row.try_get("balance_after_cents")?,
        operator: row.try_get("operator_login")?,
        created_at: row.try_get("created_at")?,
    })
}

const TOP_UP_COLUMNS: &str =
    "reference, user_id, amount_cents, balance_after_cents, operator_login, created_at";

/// The top-ups of `user_id`, oldest first, at most `limit` (1 to
/// [`MAX_PAGE`]), those after `after_ms` (their `created_at`).
pub async fn top_ups(
    db: &Db,
    user_id: i64,
    after_ms: i64,
    limit: i64,
) -> Result<Vec<TopUp>, UserError> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(UserError::invalid(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let rows = sqlx::query(&format!(
        "SELECT {TOP_UP_COLUMNS} FROM balance_top_ups WHERE user_id = $1 AND created_at > $2 \
         ORDER BY created_at, reference LIMIT $3"
    ))
    .bind(user_id)
    .bind(after_ms)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(top_up_from_row).collect::<Result<_, _>>()?)
}

async fn find_top_up(
    conn: &mut AnyConnection,
    reference: &str,
) -> Result<Option<TopUp>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {TOP_UP_COLUMNS} FROM balance_top_ups WHERE reference = $1"
    ))
    .bind(reference)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(top_up_from_row).transpose()
}

/// Adds `amount_cents` (0.01 to [`MAX_TOP_UP_CENTS`]) to the balance of
/// `user_id`, once per `reference`: the same reference again with the same
/// user and amount answers the first top-up (`replayed`) and adds nothing;
/// with another user or amount it is [`UserError::ReferenceMismatch`]. A
/// balance may not grow past [`MAX_BALANCE_CENTS`]. On any error nothing
/// changes.
pub async fn top_up(
    db: &Db,
    user_id: i64,
    amount_cents: i64,
    reference: &str,
    operator: &str,
) -> Result<ToppedUp, UserError> {
    if !(1..=MAX_TOP_UP_CENTS).contains(&amount_cents) {
        return Err(UserError::invalid(
            "invalid_amount",
            format!(
                "amount must be between 0.01 and {}",
                from_cents(MAX_TOP_UP_CENTS)
            ),
        ));
    }
    check_reference(reference)?;
    let replay = |earlier: TopUp| {
        if earlier.user_id == user_id && earlier.amount_cents == amount_cents {
            Ok(ToppedUp {
                top_up: earlier,
                replayed: true,
            })
        } else {
            Err(UserError::ReferenceMismatch {
                reference: reference.to_owned(),
                user_id: earlier.user_id,
                amount_cents: earlier.amount_cents,
            })
        }
    };
    // The balance is written first, so the transaction holds its write lock
    // from the start (SQLite cannot upgrade a read to a write under
    // contention); a replay then rolls the addition back.
    let mut tx = db.pool().begin().await?;
    let balance: Option<i64> = sqlx::query_scalar(
        "UPDATE users SET balance_cents = balance_cents + $1 \
         WHERE id = $2 AND balance_cents <= $3 RETURNING balance_cents",
    )
    .bind(amount_cents)
    .bind(user_id)
    .bind(MAX_BALANCE_CENTS - amount_cents)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(balance_after_cents) = balance else {
        tx.rollback().await?;
        let mut conn = db.pool().acquire().await?;
        if let Some(earlier) = find_top_up(&mut conn, reference).await? {
            return replay(earlier);
        }
        drop(conn);
        get_user(db, user_id).await?;
        return Err(UserError::BalanceLimit {
            user_id,
            max_cents: MAX_BALANCE_CENTS,
        });
    };
    let created_at = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO balance_top_ups \
         (reference, user_id, amount_cents, balance_after_cents, operator_login, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (reference) DO NOTHING",
    )
    .bind(reference)
    .bind(user_id)
    .bind(amount_cents)
    .bind(balance_after_cents)
    .bind(operator)
    .bind(created_at)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        // This reference was topped up before (or by a concurrent call that
        // committed first): undo the addition and answer as a replay.
        tx.rollback().await?;
        let mut conn = db.pool().acquire().await?;
        let earlier = find_top_up(&mut conn, reference)
            .await?
            .ok_or_else(|| UserError::Database(sqlx::Error::RowNotFound))?;
        return replay(earlier);
    }
    tx.commit().await?;
    Ok(ToppedUp {
        top_up: TopUp {
            reference: reference.to_owned(),
            user_id,
            amount_cents,
            balance_after_cents,
            operator: operator.to_owned(),
            created_at,
        },
        replayed: false,
    })
}

/// One row of the money ledger as the operator reads it: `reserve` (the
/// order took `amount_cents` from `user_id`'s balance) or `cancel` (it
/// gave `amount_cents` back; none and 0 when it had reserved nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub order_id: Uuid,
    pub operation: String,
    pub user_id: Option<i64>,
    pub amount_cents: i64,
    pub created_at: i64,
}

/// The money ledger for the operator, one order or a page of whole orders
/// ([`shop_common::ledger::operator_rows`]).
pub async fn ledger_rows(
    db: &Db,
    order_id: Option<Uuid>,
    after: Option<Uuid>,
    orders: i64,
) -> Result<Vec<LedgerRow>, UserError> {
    let rows = shop_common::ledger::operator_rows(
        db,
        "money_ledger",
        "order_id, operation, user_id, amount_cents, created_at",
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
                user_id: row.try_get("user_id")?,
                amount_cents: row.try_get("amount_cents")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}
