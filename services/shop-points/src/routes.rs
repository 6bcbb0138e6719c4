//! The HTTP API: a user's points and credits, and health.

use axum::extract::State;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shop_common::auth::Principal;
use shop_common::money::from_cents;
use shop_common::ApiError;
use uuid::Uuid;

use crate::extract::{Path, Query};
use crate::repo::{self, Credit};
use crate::AppState;

/// `GET /points/{user_id}`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PointsView {
    pub user_id: i64,
    pub points: i64,
}

/// One credit; `amount` is a string like `"12.30"`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreditView {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount: Decimal,
    pub points: i64,
    pub credited_at: i64,
}

impl From<Credit> for CreditView {
    fn from(c: Credit) -> Self {
        CreditView {
            payment_id: c.payment_id,
            order_id: c.order_id,
            amount: from_cents(c.amount_cents),
            points: c.points,
            credited_at: c.credited_at,
        }
    }
}

/// `GET /points/{user_id}/credits?limit=`.
#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CreditsQuery {
    pub limit: Option<i64>,
}

/// `user_id` if it is a user id `principal` may read the points of (their
/// own, or anyone's for an operator); someone else's answers 404
/// `points_not_found`, as if there were none.
fn user(principal: &Principal, user_id: i64) -> Result<i64, ApiError> {
    if user_id <= 0 {
        return Err(ApiError::bad_request(
            "invalid_user_id",
            "user_id must be a positive id",
        ));
    }
    if !principal.may_see(user_id) {
        return Err(ApiError::not_found(
            "points_not_found",
            format!("no points of user {user_id}"),
        ));
    }
    Ok(user_id)
}

/// `GET /points/{user_id}` → 200 `{user_id, points}` (0 for a user never
/// credited); 400 `invalid_path`, `invalid_user_id`; 401 without a token;
/// 404 `points_not_found` for someone else's.
#[utoipa::path(
    get,
    path = "/points/{user_id}",
    tag = "points",
    params(("user_id" = i64, Path)),
    responses(
        (status = 200, description = "OK", body = PointsView),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn get_points(
    State(state): State<AppState>,
    principal: Principal,
    Path(user_id): Path<i64>,
) -> Result<axum::Json<PointsView>, ApiError> {
    let user_id = user(&principal, user_id)?;
    let points = repo::balance(&state.db, user_id).await?;
    Ok(axum::Json(PointsView { user_id, points }))
}

/// `GET /points/{user_id}/credits` → 200 `[CreditView]`, oldest first; 400
/// `invalid_path`, `invalid_user_id`, `invalid_limit`, `invalid_query`; 401
/// without a token; 404 `points_not_found` for someone else's.
#[utoipa::path(
    get,
    path = "/points/{user_id}/credits",
    tag = "points",
    params(("user_id" = i64, Path), CreditsQuery),
    responses(
        (status = 200, description = "OK", body = Vec<CreditView>),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn list_credits(
    State(state): State<AppState>,
    principal: Principal,
    Path(user_id): Path<i64>,
    Query(query): Query<CreditsQuery>,
) -> Result<axum::Json<Vec<CreditView>>, ApiError> {
    let user_id = user(&principal, user_id)?;
    let limit = shop_common::http::page_limit(query.limit)?;
    let credits = repo::ledger(&state.db, user_id, limit).await?;
    Ok(axum::Json(credits.into_iter().map(Into::into).collect()))
}

/// `GET /operator/credits?order_id=&after=&limit=`: the credit of one
/// order, or a page of `limit` (default [`shop_common::http::DEFAULT_PAGE`]) by order id
/// after `after`.
#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OperatorQuery {
    pub order_id: Option<Uuid>,
    pub after: Option<Uuid>,
    pub limit: Option<i64>,
}

/// A credit as the operator sees it: whose it is too.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorCreditView {
    #[serde(flatten)]
    pub credit: CreditView,
    pub user_id: i64,
}

/// A page of credits; `next` is the `after` of the next page (none when
/// this is the last).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreditPage {
    pub credits: Vec<OperatorCreditView>,
    pub next: Option<Uuid>,
}

/// `GET /operator/credits` (operator only) → 200 [`CreditPage`], so that
/// the console can show an order's points and check that every PAID
/// order got exactly its points; 400 `invalid_query`, `invalid_limit`;
/// 401; 403 `operator_only`.
#[utoipa::path(
    get,
    path = "/operator/credits",
    tag = "points",
    params(OperatorQuery),
    responses(
        (status = 200, description = "OK", body = CreditPage),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn operator_credits(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<OperatorQuery>,
) -> Result<axum::Json<CreditPage>, ApiError> {
    principal.require_operator()?;
    let limit = shop_common::http::page_limit(query.limit)?;
    let credits = repo::credits_by_order(&state.db, query.order_id, query.after, limit).await?;
    let next = match query.order_id {
        None if credits.len() as i64 == limit => credits.last().map(|c| c.order_id),
        _ => None,
    };
    Ok(axum::Json(CreditPage {
        credits: credits
            .into_iter()
            .map(|c| OperatorCreditView {
                user_id: c.user_id,
                credit: c.into(),
            })
            .collect(),
        next,
    }))
}

/// `GET /health`: the service answers and its database does too.
#[utoipa::path(
    get,
    path = "/health",
    tag = "points",
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
