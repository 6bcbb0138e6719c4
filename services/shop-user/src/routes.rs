//! The HTTP API: request and response bodies, and one handler per endpoint.

use shop_common::ledger::{next_after, LedgerQuery};
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
pub use shop_common::api::user::{ReserveRequest, UserView};
use shop_common::auth::{new_token, Principal, ServiceCaller, SessionView, VerifyRequest};
use shop_common::http::json_replayed;
use shop_common::money::{from_cents, to_cents};
use shop_common::{now_ms, ApiError};
use uuid::Uuid;

use crate::error::UserError;
use crate::extract::{decimal, Json, Path, Query};
use crate::password::{check_password, Login};
use crate::repo::{self, BalanceReservation, OrderLedger, TopUp, User};
use crate::{sessions, AppState};

/// `POST /auth/signup`: a new customer. A balance cannot be given (an
/// unknown field is refused): money comes only from an operator's top-up.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Signup {
    pub login: String,
    pub password: String,
    pub name: String,
}

/// `POST /auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
}

/// The answer to a log-in: send `Authorization: Bearer <token>` until
/// `expires_at` (ms since the epoch).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginAnswer {
    pub token: String,
    pub expires_at: i64,
    pub principal: Principal,
}

/// A user as the API shows it: [`UserView`] and the login (`null` for a
/// user from before logins). The order service reads it as a `UserView`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: i64,
    pub login: Option<String>,
    pub name: String,
    pub balance: Decimal,
    pub created_at: i64,
}

impl From<User> for AccountView {
    fn from(u: User) -> Self {
        AccountView {
            id: u.id,
            login: u.login,
            name: u.name,
            balance: from_cents(u.balance_cents),
            created_at: u.created_at,
        }
    }
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

/// `POST /users/{id}/balance/top-ups`: `reference` (the operator's, e.g. a
/// bank transfer id) makes it happen once.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    #[serde(deserialize_with = "decimal")]
    pub amount: Decimal,
    pub reference: String,
}

/// `GET /users/{id}/balance/top-ups?after=&limit=`: `after` is a
/// `created_at` (ms) to page from.
#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TopUpsQuery {
    #[serde(default)]
    pub after: i64,
    pub limit: Option<i64>,
}

/// Top-ups listed when the client gives no limit.
pub const DEFAULT_PAGE: i64 = 100;

/// A top-up as ledgered; `balance` is the balance it left.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopUpView {
    pub reference: String,
    pub user_id: i64,
    pub amount: Decimal,
    pub balance: Decimal,
    pub operator: String,
    pub created_at: i64,
}

impl From<TopUp> for TopUpView {
    fn from(t: TopUp) -> Self {
        TopUpView {
            reference: t.reference,
            user_id: t.user_id,
            amount: from_cents(t.amount_cents),
            balance: from_cents(t.balance_after_cents),
            operator: t.operator,
            created_at: t.created_at,
        }
    }
}

/// The answer to a reservation, the same every time it is repeated.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
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

/// `POST /auth/signup` (no token) → 201 [`AccountView`] with a balance of
/// 0.00; 400 `invalid_login`, `invalid_password`, `invalid_name`,
/// `invalid_body` (a `balance` too), 409 `login_taken` (an operator's login
/// too).
#[utoipa::path(
    post,
    path = "/auth/signup",
    tag = "user",
    request_body = Signup,
    responses(
        (status = 201, description = "Created", body = AccountView),
        shop_common::openapi::Refusals
    )
)]
pub async fn signup(
    State(state): State<AppState>,
    Json(body): Json<Signup>,
) -> Result<(StatusCode, axum::Json<AccountView>), ApiError> {
    let login = Login::parse(&body.login)
        .map_err(|e| ApiError::bad_request("invalid_login", e.to_string()))?;
    check_password(&body.password)
        .map_err(|e| ApiError::bad_request("invalid_password", e.to_string()))?;
    if state.operators.contains(login.as_str()) {
        return Err(UserError::LoginTaken(login.to_string()).into());
    }
    let hash = state
        .hasher
        .hash(&body.password)
        .await
        .map_err(|e| ApiError::bad_request("invalid_password", e.to_string()))?;
    let user = repo::create_user(&state.db, &login, &body.name, &hash).await?;
    Ok((StatusCode::CREATED, axum::Json(user.into())))
}

/// `POST /auth/login` (no token) → 200 [`LoginAnswer`]; 401
/// `invalid_credentials` for an unknown login and a wrong password alike
/// (both cost one password hash); 429 `too_many_attempts` with
/// `Retry-After` once a login has failed `login_max_failures` times in a
/// row, for `login_lockout_ms`.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "user",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "OK", body = LoginAnswer),
        shop_common::openapi::Refusals
    )
)]
pub async fn login(
    State(state): State<AppState>,
    Json(body): Json<LoginRequest>,
) -> Result<axum::Json<LoginAnswer>, UserError> {
    if let Err(wait) = state.limiter.check(&body.login, Instant::now()) {
        return Err(UserError::TooManyAttempts { retry_after: wait });
    }
    // Operators first: sign-up refuses their logins. The customers' table
    // is asked in every case, so an operator's log-in takes as long as a
    // customer's.
    let (principal, stored) = match Login::parse(&body.login) {
        Ok(login) => {
            let customer = repo::credentials(&state.db, &login).await?;
            match (state.operators.get(login.as_str()), customer) {
                (Some(hash), _) => (
                    Some(Principal::Operator {
                        login: login.to_string(),
                    }),
                    Some(hash.clone()),
                ),
                (None, Some((user_id, hash))) => {
                    (Some(Principal::Customer { user_id }), Some(hash))
                }
                (None, None) => (None, None),
            }
        }
        Err(_) => (None, None),
    };
    let matches = state.hasher.verify(stored, &body.password).await;
    let principal = match principal {
        Some(principal) if matches => principal,
        _ => {
            if let Some(wait) = state.limiter.failed(&body.login, Instant::now()) {
                tracing::warn!(
                    lockout_s = wait.as_secs(),
                    "a login failed too often and is locked"
                );
            }
            return Err(UserError::InvalidCredentials);
        }
    };
    state.limiter.succeeded(&body.login);
    let token = new_token();
    let ttl = i64::try_from(state.session_ttl.as_millis()).unwrap_or(i64::MAX);
    let expires_at = now_ms().saturating_add(ttl);
    sessions::open(&state.db, &token, &principal, expires_at).await?;
    Ok(axum::Json(LoginAnswer {
        token,
        expires_at,
        principal,
    }))
}

/// `POST /auth/logout` → 204: the caller's token is revoked at once (other
/// services stop taking it within `session_cache_ms`); 401 without a live
/// token.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "user",
    responses(
        (status = 204, description = "No content"),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn logout(
    State(state): State<AppState>,
    _caller: Principal,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = shop_common::auth::bearer_token(&headers)
        .ok_or_else(|| ApiError::unauthorized("unauthenticated", "no bearer token"))?;
    sessions::revoke(&state.db, token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /users/me` → 200 [`AccountView`] of the customer; 401, 403
/// `customer_only` for an operator (who has no account here).
#[utoipa::path(
    get,
    path = "/users/me",
    tag = "user",
    responses(
        (status = 200, description = "OK", body = AccountView),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn me(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<AccountView>, ApiError> {
    let id = principal.require_customer()?;
    Ok(axum::Json(repo::get_user(&state.db, id).await?.into()))
}

/// `GET /users/{id}` → 200 [`AccountView`] of the caller themself, or of
/// anyone for an operator; 401 without a token; 404 `user_not_found`, for
/// someone else too.
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "user",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "OK", body = AccountView),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn get_user(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<AccountView>, ApiError> {
    if !principal.may_see(id) {
        return Err(UserError::UserNotFound(id).into());
    }
    Ok(axum::Json(repo::get_user(&state.db, id).await?.into()))
}

/// `POST /users/{id}/balance/top-ups` (operator only) → 201 [`TopUpView`]
/// (200 with `idempotent-replayed: true` for a reference used before); 400
/// `invalid_amount` (0.01 to 100,000.00), `invalid_reference`; 401, 403
/// `operator_only`; 404 `user_not_found`; 409 `reference_mismatch`,
/// `balance_limit`.
#[utoipa::path(
    post,
    path = "/users/{id}/balance/top-ups",
    tag = "user",
    params(("id" = i64, Path)),
    request_body = TopUpRequest,
    responses(
        (status = 201, description = "Created", body = TopUpView),
        (status = 200, description = "A repeated request, answered as the first (idempotent-replayed: true)", body = TopUpView),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn top_up(
    State(state): State<AppState>,
    principal: Principal,
    Path(user_id): Path<i64>,
    Json(body): Json<TopUpRequest>,
) -> Result<Response, ApiError> {
    let operator = principal.require_operator()?;
    let amount_cents = to_cents(body.amount)
        .map_err(|e| ApiError::bad_request("invalid_amount", format!("amount: {e}")))?;
    let done = repo::top_up(&state.db, user_id, amount_cents, &body.reference, operator).await?;
    let view = TopUpView::from(done.top_up);
    if done.replayed {
        Ok(json_replayed(view, true))
    } else {
        tracing::info!(user_id, reference = %view.reference, amount = %view.amount, operator, "balance topped up");
        Ok((StatusCode::CREATED, axum::Json(view)).into_response())
    }
}

/// `GET /users/{id}/balance/top-ups?after=&limit=` → 200 `[TopUpView]`,
/// oldest first, of the caller themself or of anyone for an operator; 400
/// `invalid_limit`, `invalid_query`; 401; 404 `user_not_found`, for
/// someone else too.
#[utoipa::path(
    get,
    path = "/users/{id}/balance/top-ups",
    tag = "user",
    params(("id" = i64, Path), TopUpsQuery),
    responses(
        (status = 200, description = "OK", body = Vec<TopUpView>),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn list_top_ups(
    State(state): State<AppState>,
    principal: Principal,
    Path(user_id): Path<i64>,
    Query(query): Query<TopUpsQuery>,
) -> Result<axum::Json<Vec<TopUpView>>, ApiError> {
    if !principal.may_see(user_id) {
        return Err(UserError::UserNotFound(user_id).into());
    }
    repo::get_user(&state.db, user_id).await?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    let top_ups = repo::top_ups(&state.db, user_id, query.after, limit).await?;
    Ok(axum::Json(
        top_ups.into_iter().map(TopUpView::from).collect(),
    ))
}

/// A money ledger row: `operation` is `reserve` or `cancel`; a cancel's
/// `user_id` and `amount` are what it refunded (null and 0: nothing).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerRowView {
    pub order_id: Uuid,
    pub operation: String,
    pub user_id: Option<i64>,
    /// A string like `"12.30"`.
    pub amount: Decimal,
    pub created_at: i64,
}

/// A page of ledger rows; `next` is the `after` of the next page (none
/// when this is the last).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerPage {
    pub rows: Vec<LedgerRowView>,
    pub next: Option<Uuid>,
}

/// `GET /operator/money-ledger` (operator only) → 200 [`LedgerPage`], so
/// that the console can show an order's balance use and check that the
/// balance held is what live orders used; 400 `invalid_query`,
/// `invalid_limit`; 401; 403 `operator_only`.
#[utoipa::path(
    get,
    path = "/operator/money-ledger",
    tag = "user",
    params(LedgerQuery),
    responses(
        (status = 200, description = "OK", body = LedgerPage),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn operator_ledger(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<LedgerQuery>,
) -> Result<axum::Json<LedgerPage>, ApiError> {
    principal.require_operator()?;
    let limit = shop_common::http::page_limit(query.limit)?;
    let rows = repo::ledger_rows(&state.db, query.order_id, query.after, limit).await?;
    let next = next_after(&query, limit, rows.iter().map(|r| r.order_id));
    Ok(axum::Json(LedgerPage {
        rows: rows
            .into_iter()
            .map(|r| LedgerRowView {
                order_id: r.order_id,
                operation: r.operation,
                user_id: r.user_id,
                amount: from_cents(r.amount_cents),
                created_at: r.created_at,
            })
            .collect(),
        next,
    }))
}

/// `POST /internal/sessions/verify` (any trusted service) → 200
/// [`SessionView`]; 401 `invalid_token` for an unknown, expired or revoked
/// token.
#[utoipa::path(
    post,
    path = "/internal/sessions/verify",
    tag = "user",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "OK", body = SessionView),
        shop_common::openapi::Refusals
    ),
    security(("service_caller" = [], "service_timestamp" = [], "service_nonce" = [], "service_signature" = []))
)]
pub async fn verify(
    State(state): State<AppState>,
    _caller: ServiceCaller,
    Json(body): Json<VerifyRequest>,
) -> Result<axum::Json<SessionView>, ApiError> {
    match state.sessions().lookup(&body.token).await? {
        Some(view) => Ok(axum::Json(view)),
        None => Err(ApiError::unauthorized(
            "invalid_token",
            "the token is unknown, expired or revoked",
        )),
    }
}

/// `GET /internal/users/{id}` (the order service only) → 200
/// [`AccountView`] (read as a [`UserView`]); 404 `user_not_found`.
#[utoipa::path(
    get,
    path = "/internal/users/{id}",
    tag = "user",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "OK", body = AccountView),
        shop_common::openapi::Refusals
    ),
    security(("service_caller" = [], "service_timestamp" = [], "service_nonce" = [], "service_signature" = []))
)]
pub async fn internal_user(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path(id): Path<i64>,
) -> Result<axum::Json<AccountView>, ApiError> {
    caller.require(&["order"])?;
    Ok(axum::Json(repo::get_user(&state.db, id).await?.into()))
}

/// `POST /internal/users/{id}/balance/reservations` (the order service
/// only) → 200 [`ReservationView`] (the same on a replay, with
/// `idempotent-replayed: true`); 400 `invalid_amount`, 401
/// `service_unauthenticated`, 403 `service_forbidden`, 404
/// `user_not_found`, 409 `insufficient_balance`, `order_cancelled`,
/// `reservation_mismatch`.
#[utoipa::path(
    post,
    path = "/internal/users/{id}/balance/reservations",
    tag = "user",
    params(("id" = i64, Path)),
    request_body = ReserveRequest,
    responses(
        (status = 200, description = "OK", body = ReservationView),
        shop_common::openapi::Refusals
    ),
    security(("service_caller" = [], "service_timestamp" = [], "service_nonce" = [], "service_signature" = []))
)]
pub async fn reserve(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path(user_id): Path<i64>,
    Json(body): Json<ReserveRequest>,
) -> Result<Response, ApiError> {
    caller.require(&["order"])?;
    let amount_cents = to_cents(body.amount)
        .map_err(|e| ApiError::bad_request("invalid_amount", format!("amount: {e}")))?;
    let reserved = repo::reserve(&state.db, user_id, body.order_id, amount_cents).await?;
    Ok(json_replayed(
        ReservationView::from(reserved.reservation),
        reserved.replayed,
    ))
}

/// `GET /internal/users/{id}/balance/reservations/{order_id}` (the order
/// service only) → 200 [`LedgerView`]; 404 `user_not_found`,
/// `reservation_not_found`.
#[utoipa::path(
    get,
    path = "/internal/users/{id}/balance/reservations/{order_id}",
    tag = "user",
    params(("id" = i64, Path), ("order_id" = Uuid, Path)),
    responses(
        (status = 200, description = "OK", body = LedgerView),
        shop_common::openapi::Refusals
    ),
    security(("service_caller" = [], "service_timestamp" = [], "service_nonce" = [], "service_signature" = []))
)]
pub async fn order_ledger(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path((user_id, order_id)): Path<(i64, Uuid)>,
) -> Result<axum::Json<LedgerView>, ApiError> {
    caller.require(&["order"])?;
    // An unknown user is a 404 of its own, not a missing reservation.
    repo::get_user(&state.db, user_id).await?;
    let ledger = repo::order_ledger(&state.db, order_id).await?;
    Ok(axum::Json(ledger_view(user_id, ledger)?))
}

/// `GET /health`: the service answers and its database does too.
#[utoipa::path(
    get,
    path = "/health",
    tag = "user",
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        shop_common::openapi::Refusals
    )
)]
pub async fn health(
    State(state): State<AppState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    shop_common::http::health(&state.db).await
}
