//! The HTTP API: request and response bodies, and one handler per endpoint.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
pub use shop_common::api::coupon::{CouponView, UseRequest};
use shop_common::auth::{Principal, ServiceCaller};
use shop_common::http::json_replayed;
use shop_common::ledger::{next_after, LedgerQuery};
use shop_common::money::{from_cents, to_cents};
use shop_common::ApiError;
use uuid::Uuid;

use crate::extract::{decimal, Json, Path, Query};
use crate::repo::{self, Coupon};
use crate::AppState;

/// Page size of `GET /coupons` when the client gives none.
pub const DEFAULT_PAGE: i64 = 100;

/// `POST /coupons`. `amount` is a string or a number with at most two decimals.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateCoupon {
    pub user_id: i64,
    #[serde(deserialize_with = "decimal")]
    pub amount: Decimal,
}

impl From<Coupon> for CouponView {
    fn from(c: Coupon) -> Self {
        CouponView {
            id: c.id,
            user_id: c.user_id,
            amount: from_cents(c.amount_cents),
            status: c.status,
            order_id: c.order_id,
            used_at: c.used_at,
            created_at: c.created_at,
        }
    }
}

/// `GET /coupons?user_id=N&after_id=&limit=`: a customer's own coupons
/// (`user_id` theirs or left out); an operator's choice of user, or
/// everyone's without `user_id`.
#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub user_id: Option<i64>,
    #[serde(default)]
    pub after_id: i64,
    pub limit: Option<i64>,
}

/// `POST /coupons` (operator only) → 201 [`CouponView`]; 400
/// `invalid_amount` (above `max_coupon_amount` too), `invalid_user_id`; 401
/// without a token, 403 `operator_only`.
#[utoipa::path(
    post,
    path = "/coupons",
    tag = "coupon",
    request_body = CreateCoupon,
    responses(
        (status = 201, description = "Created", body = CouponView),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn create_coupon(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateCoupon>,
) -> Result<(StatusCode, axum::Json<CouponView>), ApiError> {
    principal.require_operator()?;
    let amount_cents = to_cents(body.amount)
        .map_err(|e| ApiError::bad_request("invalid_amount", format!("amount: {e}")))?;
    let coupon = repo::create_coupon(
        &state.db,
        body.user_id,
        amount_cents,
        state.max_amount_cents,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(coupon.into())))
}

/// `GET /coupons?user_id=N` → 200 `[CouponView]` by id; 400 `invalid_query`,
/// `invalid_user_id`, `invalid_limit`; 401 without a token, 403
/// `not_your_account` for a customer naming another user.
#[utoipa::path(
    get,
    path = "/coupons",
    tag = "coupon",
    params(ListQuery),
    responses(
        (status = 200, description = "OK", body = Vec<CouponView>),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn list_coupons(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Vec<CouponView>>, ApiError> {
    let user_id = principal.act_for(query.user_id)?;
    let coupons = repo::list_coupons(
        &state.db,
        user_id,
        query.after_id,
        query.limit.unwrap_or(DEFAULT_PAGE),
    )
    .await?;
    Ok(axum::Json(
        coupons.into_iter().map(CouponView::from).collect(),
    ))
}

/// `GET /coupons/{id}` → 200 [`CouponView`] of the caller's own coupon (an
/// operator's: any); 401 without a token; 404 `coupon_not_found`, for
/// someone else's too.
#[utoipa::path(
    get,
    path = "/coupons/{id}",
    tag = "coupon",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "OK", body = CouponView),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn get_coupon(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<CouponView>, ApiError> {
    let coupon = repo::get_coupon(&state.db, id).await?;
    if !principal.may_see(coupon.user_id) {
        return Err(crate::CouponError::CouponNotFound(id).into());
    }
    Ok(axum::Json(coupon.into()))
}

/// `GET /internal/coupons/{id}` (the order service only) → 200
/// [`CouponView`]; 401 `service_unauthenticated`, 403 `service_forbidden`,
/// 404 `coupon_not_found`.
#[utoipa::path(
    get,
    path = "/internal/coupons/{id}",
    tag = "coupon",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "OK", body = CouponView),
        shop_common::openapi::Refusals
    ),
    security(("service_caller" = [], "service_timestamp" = [], "service_nonce" = [], "service_signature" = []))
)]
pub async fn internal_coupon(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path(id): Path<i64>,
) -> Result<axum::Json<CouponView>, ApiError> {
    caller.require(&["order"])?;
    Ok(axum::Json(repo::get_coupon(&state.db, id).await?.into()))
}

/// `POST /internal/coupons/{id}/use` (the order service only) → 200
/// [`CouponView`] (the same on a replay, with `idempotent-replayed: true`);
/// 400 `invalid_user_id`, 401 `service_unauthenticated`, 403
/// `service_forbidden`, `coupon_not_owned`, 404 `coupon_not_found`, 409
/// `coupon_used`, `order_cancelled`, `reservation_mismatch`.
#[utoipa::path(
    post,
    path = "/internal/coupons/{id}/use",
    tag = "coupon",
    params(("id" = i64, Path)),
    request_body = UseRequest,
    responses(
        (status = 200, description = "OK", body = CouponView),
        shop_common::openapi::Refusals
    ),
    security(("service_caller" = [], "service_timestamp" = [], "service_nonce" = [], "service_signature" = []))
)]
pub async fn use_coupon(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path(coupon_id): Path<i64>,
    Json(body): Json<UseRequest>,
) -> Result<Response, ApiError> {
    caller.require(&["order"])?;
    let used = repo::use_coupon(&state.db, coupon_id, body.order_id, body.user_id).await?;
    Ok(json_replayed(CouponView::from(used.coupon), used.replayed))
}

/// A coupon ledger row: `operation` is `use` or `cancel`; a cancel's
/// `coupon_id` is the coupon it released (null: none).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerRowView {
    pub order_id: Uuid,
    pub operation: String,
    pub coupon_id: Option<i64>,
    pub user_id: Option<i64>,
    pub created_at: i64,
}

/// A page of ledger rows; `next` is the `after` of the next page (none
/// when this is the last).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerPage {
    pub rows: Vec<LedgerRowView>,
    pub next: Option<Uuid>,
}

/// `GET /operator/coupon-ledger` (operator only) → 200 [`LedgerPage`], so
/// that the console can show an order's coupon use and check that a
/// coupon is held by live orders only; 400 `invalid_query`,
/// `invalid_limit`; 401; 403 `operator_only`.
#[utoipa::path(
    get,
    path = "/operator/coupon-ledger",
    tag = "coupon",
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
                coupon_id: r.coupon_id,
                user_id: r.user_id,
                created_at: r.created_at,
            })
            .collect(),
        next,
    }))
}

/// `GET /health`: the service answers and its database does too.
#[utoipa::path(
    get,
    path = "/health",
    tag = "coupon",
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
