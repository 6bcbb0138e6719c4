//! The HTTP API: request and response bodies, and one handler per endpoint.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
pub use shop_common::api::user::{ReserveRequest, UserView};
use shop_common::http::json_replayed;
use shop_common::money::{from_cents, to_cents};
use shop_common::ApiError;
use uuid::Uuid;

use crate::error::UserError;
use crate::extract::{decimal, Json, Path};
use crate::repo::{self, BalanceReservation, OrderLedger, User};
use crate::AppState;

/// `POST /users`. `balance` is a string or a number with at most two decimals.
#[derive(Debug, Deserialize)]
pub struct CreateUser {
    pub name: String,
    #[serde(deserialize_with = "decimal")]
    pub balance: Decimal,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id,
            name: u.name,
            balance: from_cents(u.balance_cents),
            created_at: u.created_at,
        }
    }
}

/// The answer to a reservation, the same every time it is repeated.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReservationView {
    pub order_id: Uuid,
    pub user_id: i64,
    pub amount: Decimal,
    pub reserved_at: i64,
}

impl From<BalanceReservation> for ReservationView {
    fn from(r: BalanceReservation) -> Self {
        ReservationView {
            order_id: r.order_id,
            user_id: r.user_id,
            amount: from_cents(r.amount_cents),
            reserved_at: r.reserved_at,
        }
    }
}

/// `GET /users/{id}/balance/reservations/{order_id}`: `status` is `reserved`
/// (money held) or `cancelled` (`refunded_amount` went back to the balance;
/// 0 when the order was cancelled before it reserved anything).
#[derive(Debug, Serialize, Deserialize)]
pub struct LedgerView {
    pub order_id: Uuid,
    pub user_id: i64,
    pub status: String,
    pub reserved_amount: Decimal,
    pub reserved_at: Option<i64>,
    pub refunded_amount: Decimal,
    pub cancelled_at: Option<i64>,
}

fn ledger_view(user_id: i64, ledger: OrderLedger) -> Result<LedgerView, UserError> {
    let reservation = ledger.reservation.filter(|r| r.user_id == user_id);
    // A cancellation is shown for any user when it refunded nothing, since
    // it then refuses reservations from every balance for that order.
    let cancellation = ledger.cancellation.filter(|c| {
        c.restored
            .is_none_or(|(refunded_user, _)| refunded_user == user_id)
    });
    if reservation.is_none() && cancellation.is_none() {
        return Err(UserError::ReservationNotFound {
            order_id: ledger.order_id,
            user_id,
        });
    }
    Ok(LedgerView {
        order_id: ledger.order_id,
        user_id,
        status: if cancellation.is_some() {
            "cancelled"
        } else {
            "reserved"
        }
        .to_owned(),
        reserved_amount: from_cents(reservation.as_ref().map_or(0, |r| r.amount_cents)),
        reserved_at: reservation.as_ref().map(|r| r.reserved_at),
        refunded_amount: from_cents(
            cancellation
                .as_ref()
                .and_then(|c| c.restored)
                .map_or(0, |(_, a)| a),
        ),
        cancelled_at: cancellation.map(|c| c.cancelled_at),
    })
}

/// `POST /users` → 201 [`UserView`]; 400 `invalid_name`, `invalid_balance`.
pub async fn create_user(
    State(state): State<AppState>,
    Json(body): Json<CreateUser>,
) -> Result<(StatusCode, axum::Json<UserView>), ApiError> {
    let balance_cents = to_cents(body.balance)
        .map_err(|e| ApiError::bad_request("invalid_balance", format!("balance: {e}")))?;
    let user = repo::create_user(&state.db, &body.name, balance_cents).await?;
    Ok((StatusCode::CREATED, axum::Json(user.into())))
}

/// `GET /users/{id}` → 200 [`UserView`]; 404 `user_not_found`.
pub async fn get_user(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<axum::Json<UserView>, ApiError> {
    Ok(axum::Json(repo::get_user(&state.db, id).await?.into()))
}

/// `POST /users/{id}/balance/reservations` → 200 [`ReservationView`] (the
/// same on a replay, with `idempotent-replayed: true`); 400 `invalid_amount`,
/// 404 `user_not_found`, 409 `insufficient_balance`, `order_cancelled`,
/// `reservation_mismatch`.
pub async fn reserve(
    State(state): State<AppState>,
    Path(user_id): Path<i64>,
    Json(body): Json<ReserveRequest>,
) -> Result<Response, ApiError> {
    let amount_cents = to_cents(body.amount)
        .map_err(|e| ApiError::bad_request("invalid_amount", format!("amount: {e}")))?;
    let reserved = repo::reserve(&state.db, user_id, body.order_id, amount_cents).await?;
    Ok(json_replayed(
        ReservationView::from(reserved.reservation),
        reserved.replayed,
    ))
}

/// `GET /users/{id}/balance/reservations/{order_id}` → 200 [`LedgerView`];
/// 404 `user_not_found`, `reservation_not_found`.
pub async fn order_ledger(
    State(state): State<AppState>,
    Path((user_id, order_id)): Path<(i64, Uuid)>,
) -> Result<axum::Json<LedgerView>, ApiError> {
    // An unknown user is a 404 of its own, not a missing reservation.
    repo::get_user(&state.db, user_id).await?;
    let ledger = repo::order_ledger(&state.db, order_id).await?;
    Ok(axum::Json(ledger_view(user_id, ledger)?))
}

/// `GET /health`: the service answers and its database does too.
pub async fn health(
    State(state): State<AppState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    shop_common::http::health(&state.db).await
}
