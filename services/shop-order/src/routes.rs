//! The HTTP API of the order service.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use shop_common::extract::{Json, Path, Query};
use shop_common::ApiError;
use uuid::Uuid;

use crate::error::OrderError;
use crate::model::OrderView;
use crate::saga::{self, PlaceOrder};
use crate::{repo, AppState};

/// Orders one list returns at most.
const MAX_PAGE: i64 = 1000;

/// `POST /orders` → 201 [`OrderView`] (CONFIRMED). Refusals before anything
/// is saved: 400 (`invalid_*`, `price_mismatch`), 403 `coupon_not_owned`,
/// 404 (`goods_not_found`, `user_not_found`, `coupon_not_found`), 409
/// (`insufficient_stock`, `insufficient_balance`, `coupon_used`), 503
/// `service_unavailable`. A saved order that could not be completed is
/// cancelled and answered 409 (or 503) with the reason and its id.
pub async fn place_order(
    State(state): State<AppState>,
    Json(body): Json<PlaceOrder>,
) -> Result<(StatusCode, axum::Json<OrderView>), ApiError> {
    let order = saga::place_order(&state, body).await?;
    Ok((StatusCode::CREATED, axum::Json(order.into())))
}

/// `GET /orders/{id}` → 200 [`OrderView`]; 404 `order_not_found`.
pub async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<OrderView>, ApiError> {
    let order = repo::get(&state.db, id)
        .await
        .map_err(OrderError::from)?
        .ok_or(OrderError::NotFound(id))?;
    Ok(axum::Json(order.into()))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub user_id: i64,
    pub limit: Option<i64>,
}

/// `GET /orders?user_id=N[&limit=M]` → 200 `[OrderView]`, newest first,
/// without orders still in their saga.
pub async fn list_orders(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Vec<OrderView>>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let orders = repo::list_by_user(&state.db, query.user_id, limit)
        .await
        .map_err(OrderError::from)?;
    Ok(axum::Json(
        orders.into_iter().map(OrderView::from).collect(),
    ))
}

/// `GET /health` → 200 once the database answers.
pub async fn health(
    State(state): State<AppState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    shop_common::http::health(&state.db).await
}
