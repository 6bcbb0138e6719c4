//! Goods, stock and the stock ledger: every statement that touches the
//! database.
//!
//! A reservation and a cancellation each run in one transaction that writes
//! its ledger row first. The ledger's primary key `(order_id, operation)` is
//! what makes them happen once: a repeated reservation finds its `reserve`
//! row, a repeated cancellation finds its `cancel` row, and neither touches
//! the stock again. Stock is taken by one conditional
//! `UPDATE ... WHERE stock >= quantity`, so racing orders cannot oversell
//! (and `CHECK (stock >= 0)` backs it up).

use shop_common::ledger::{self, AmountLedger, Cancel, Hold, Reserve};
use shop_common::Db;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::error::GoodsError;

/// The stock ledger: a reservation takes `quantity` from `goods.stock`.
const STOCK: AmountLedger = AmountLedger {
    ledger: "stock_ledger",
    owner: "goods_id",
    amount: "quantity",
    accounts: "goods",
    balance: "stock",
};

/// Largest quantity one order may reserve of one goods: far above any real
/// basket, low enough that a typo or an attack cannot empty a warehouse.
pub const MAX_RESERVATION_QUANTITY: i64 = 10_000;
/// Largest stock a goods may be created with.
pub const MAX_STOCK: i64 = 1_000_000_000;
/// Largest unit price, in cents (1,000,000.00).
pub const MAX_PRICE_CENTS: i64 = 100_000_000;
/// Longest goods name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Most goods `list_goods` returns at once.
pub const MAX_PAGE: i64 = 1_000;

/// A goods as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goods {
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// What a new goods needs.
#[derive(Debug, Clone)]
pub struct NewGoods {
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
}

/// Stock taken by one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub order_id: Uuid,
    pub goods_id: i64,
    pub quantity: i64,
    pub reserved_at: i64,
}

/// The result of [`reserve`].
pub type Reserved = ledger::Reserved<Reservation>;
/// What the ledger holds for one order; a cancellation's `restored` is the
/// goods and quantity put back.
pub type OrderLedger = ledger::OrderLedger<Reservation>;

impl Reservation {
    /// The `reserve` row of `order_id` as a reservation.
    fn of(order_id: Uuid, hold: Hold) -> Reservation {
        Reservation {
            order_id,
            goods_id: hold.owner,
            quantity: hold.amount,
            reserved_at: hold.at_ms,
        }
    }
}

/// The result of [`cancel_order`]: on the first cancellation of an order
/// that had reserved stock, the stock put back; the cancel marker makes a
/// later reservation for the order fail with `order_cancelled`.
pub type CancelOutcome = Cancel<Restock>;

/// Stock put back by an order's cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restock {
    pub goods_id: i64,
    pub quantity: i64,
}

pub(crate) use shop_common::now_ms;

fn goods_from_row(row: &AnyRow) -> Result<Goods, sqlx::Error> {
    Ok(Goods {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        price_cents: row.try_get("price_cents")?,
        stock: row.try_get("stock")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Refuses a name that is empty after trimming, too long or holding a
/// control character (PostgreSQL cannot store a NUL in text: that was a 500
/// where a 400 belongs); answers it trimmed.
fn check_name(name: &str) -> Result<&str, GoodsError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(GoodsError::invalid(
            "invalid_name",
            format!("name must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(GoodsError::invalid(
            "invalid_name",
            "name must not contain control characters",
        ));
    }
    Ok(name)
}

/// Refuses a price of 0.00 or less, or above [`MAX_PRICE_CENTS`]: a goods
/// for nothing would let an order confirm with nothing paid.
fn check_price(price_cents: i64) -> Result<(), GoodsError> {
    if !(1..=MAX_PRICE_CENTS).contains(&price_cents) {
        return Err(GoodsError::invalid(
            "invalid_price",
            format!(
                "price must be between 0.01 and {}",
                shop_common::money::from_cents(MAX_PRICE_CENTS)
            ),
        ));
    }
    Ok(())
}

fn check_stock(stock: i64) -> Result<(), GoodsError> {
    if !(0..=MAX_STOCK).contains(&stock) {
        return Err(GoodsError::invalid(
            "invalid_stock",
            format!("stock must be between 0 and {MAX_STOCK}"),
        ));
    }
    Ok(())
}

/// Checks `new` and stores it.
pub async fn create_goods(db: &Db, new: &NewGoods) -> Result<Goods, GoodsError> {
    let name = check_name(&new.name)?;
    check_price(new.price_cents)?;
    check_stock(new.stock)?;
    let created_at = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO goods (name, price_cents, stock, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(name)
    .bind(new.price_cents)
    .bind(new.stock)
    .bind(created_at)
    .fetch_one(db.pool())
    .await?;
    Ok(Goods {
        id,
        name: name.to_owned(),
        price_cents: new.price_cents,
        stock: new.stock,
        created_at,
    })
}

/// The goods `id`, or [`GoodsError::GoodsNotFound`].
pub async fn get_goods(db: &Db, id: i64) -> Result<Goods, GoodsError> {
    let row =
        sqlx::query("SELECT id, name, price_cents, stock, created_at FROM goods WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?
            .ok_or(GoodsError::GoodsNotFound(id))?;
    Ok(goods_from_row(&row)?)
}

/// What an operator changes of a goods; `None` keeps the field.
#[derive(Debug, Clone, Default)]
pub struct GoodsChange {
    pub name: Option<String>,
    pub price_cents: Option<i64>,
    /// The stock available from now on (reservations already taken stay
    /// taken; a cancellation later puts its quantity back on top).
    pub stock: Option<i64>,
}

/// Checks `change` and applies it to goods `id` in one statement; answers
/// the goods as it is now. Orders already placed keep the price they were
/// given.
pub async fn update_goods(db: &Db, id: i64, change: &GoodsChange) -> Result<Goods, GoodsError> {
    let name = change.name.as_deref().map(check_name).transpose()?;
    if let Some(price_cents) = change.price_cents {
        check_price(price_cents)?;
    }
    if let Some(stock) = change.stock {
        check_stock(stock)?;
    }
    let updated = sqlx::query(
        "UPDATE goods SET name = COALESCE($1, name), price_cents = COALESCE($2, price_cents), \
         stock = COALESCE($3, stock) WHERE id = $4",
    )
    .bind(name)
    .bind(change.price_cents)
    .bind(change.stock)
    .bind(id)
    .execute(db.pool())
    .await?;
    if updated.rows_affected() == 0 {
        return Err(GoodsError::GoodsNotFound(id));
    }
    get_goods(db, id).await
}

/// Goods with an id above `after_id`, by id, at most `limit` (1 to
/// [`MAX_PAGE`]).
pub async fn list_goods(db: &Db, after_id: i64, limit: i64) -> Result<Vec<Goods>, GoodsError> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(GoodsError::invalid(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let rows = sqlx::query(
        "SELECT id, name, price_cents, stock, created_at FROM goods WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(goods_from_row).collect::<Result<_, _>>()?)
}

/// Reserves `quantity` of goods `goods_id` for `order_id`.
///
/// Idempotent per order: repeating the same reservation answers the same
/// [`Reservation`] (with `replayed`) and changes nothing; a different goods
/// or quantity for the same order is [`GoodsError::ReservationMismatch`]. A
/// cancelled order is refused with [`GoodsError::OrderCancelled`]. On any
/// error nothing changes.
pub async fn reserve(
    db: &Db,
    goods_id: i64,
    order_id: Uuid,
    quantity: i64,
) -> Result<Reserved, GoodsError> {
    if !(1..=MAX_RESERVATION_QUANTITY).contains(&quantity) {
        return Err(GoodsError::invalid(
            "invalid_quantity",
            format!("quantity must be between 1 and {MAX_RESERVATION_QUANTITY}"),
        ));
    }
    let reservation = |hold| Reservation::of(order_id, hold);
    Ok(
        match STOCK.reserve(db, order_id, goods_id, quantity).await? {
            Reserve::Taken(hold) => Reserved {
                reservation: reservation(hold),
                replayed: false,
            },
            Reserve::Replayed(hold) => Reserved {
                reservation: reservation(hold),
                replayed: true,
            },
            Reserve::Mismatch(earlier) => {
                return Err(GoodsError::ReservationMismatch {
                    order_id,
                    goods_id: earlier.owner,
                    quantity: earlier.amount,
                })
            }
            Reserve::Cancelled => return Err(GoodsError::OrderCancelled(order_id)),
            Reserve::NoAccount => return Err(GoodsError::GoodsNotFound(goods_id)),
            Reserve::Insufficient { available } => {
                return Err(GoodsError::InsufficientStock {
                    goods_id,
                    requested: quantity,
                    available,
                })
            }
        },
    )
}

/// The ledger rows of `order_id`.
pub async fn order_ledger(db: &Db, order_id: Uuid) -> Result<OrderLedger, GoodsError> {
    Ok(STOCK
        .order_ledger(db, order_id, |hold| Reservation::of(order_id, hold))
        .await?)
}

/// The ORDER_CANCEL compensation: records that `order_id` is cancelled (so a
/// later reservation for it is refused) and puts back the stock it reserved,
/// if any, exactly once. A second call changes nothing and answers
/// [`CancelOutcome::AlreadyCancelled`].
pub async fn cancel_order(db: &Db, order_id: Uuid) -> Result<CancelOutcome, GoodsError> {
    db.in_transaction(async |conn| cancel_order_in(conn, order_id).await)
        .await
}

/// [`cancel_order`] inside a transaction the caller owns and commits, for a
/// consumer that records other rows (e.g. its consumed message) with it.
pub async fn cancel_order_in(
    conn: &mut AnyConnection,
    order_id: Uuid,
) -> Result<CancelOutcome, GoodsError> {
    Ok(STOCK.cancel_in(conn, order_id).await?.map(|hold| Restock {
        goods_id: hold.owner,
        quantity: hold.amount,
    }))
}

/// One row of the stock ledger as the operator reads it: `reserve` (the
/// order took `quantity` of `goods_id`) or `cancel` (it put back
/// `quantity` of `goods_id`; none and 0 when it had reserved nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub order_id: Uuid,
    pub operation: String,
    pub goods_id: Option<i64>,
    pub quantity: i64,
    pub created_at: i64,
}

/// The stock ledger for the operator, one order or a page of whole orders
/// ([`shop_common::ledger::operator_rows`]).
pub async fn ledger_rows(
    db: &Db,
    order_id: Option<Uuid>,
    after: Option<Uuid>,
    orders: i64,
) -> Result<Vec<LedgerRow>, GoodsError> {
    let rows = shop_common::ledger::operator_rows(
        db,
        "stock_ledger",
        "order_id, operation, goods_id, quantity, created_at",
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
                goods_id: row.try_get("goods_id")?,
                quantity: row.try_get("quantity")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}
