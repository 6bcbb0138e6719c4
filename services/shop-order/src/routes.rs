//! The HTTP API of the order service: the customers' routes (bearer
//! token: a customer acts only as themself, an operator reads everything)
//! and the pay service's internal ones (signed calls).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shop_common::auth::{Principal, ServiceCaller};
use shop_common::extract::{decimal, Json, Path, Query};
use shop_common::money::{from_cents, to_cents};
use shop_common::ApiError;
use uuid::Uuid;

use crate::error::OrderError;
use crate::model::{OrderStatus, OrderView};
use crate::repo::Settlement;
use crate::saga::{self, PlaceOrder};
use crate::{repo, AppState};

/// `POST /orders` (a customer's token) → 201 [`OrderView`] (CONFIRMED),
/// for the caller: a body `user_id` that is not the caller's is refused
/// 403 `not_your_account`, an operator 403 `customer_only` (an operator
/// has no balance or coupons to spend). Refusals before anything is saved:
/// 400 (`invalid_*`, `price_mismatch`), 403 `coupon_not_owned`, 404
/// (`goods_not_found`, `user_not_found`, `coupon_not_found`), 409
/// (`insufficient_stock`, `insufficient_balance`, `coupon_used`), 503
/// `service_unavailable`. A saved order that could not be completed is
/// cancelled and answered 409 (or 503) with the reason and its id.
#[utoipa::path(
    post,
    path = "/orders",
    tag = "order",
    request_body = PlaceOrder,
    responses(
        (status = 201, description = "Created", body = OrderView),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn place_order(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<PlaceOrder>,
) -> Result<(StatusCode, axum::Json<OrderView>), ApiError> {
    let customer = principal.require_customer()?;
    let user_id = principal.act_for(body.user_id)?.unwrap_or(customer);
    let order = saga::place_order(&state, user_id, body).await?;
    Ok((StatusCode::CREATED, axum::Json(order.into())))
}

/// `GET /orders/{id}` → 200 [`OrderView`] of the caller's own order (an
/// operator: any); 404 `order_not_found` for another's, as if it did not
/// exist.
#[utoipa::path(
    get,
    path = "/orders/{id}",
    tag = "order",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "OK", body = OrderView),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn get_order(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<OrderView>, ApiError> {
    let order = repo::get(&state.db, id)
        .await
        .map_err(OrderError::from)?
        .filter(|order| principal.may_see(order.user_id))
        .ok_or(OrderError::NotFound(id))?;
    Ok(axum::Json(order.into()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub user_id: Option<i64>,
    pub limit: Option<i64>,
}

/// `GET /orders[?user_id=N][&limit=M]` → 200 `[OrderView]`, newest first,
/// without orders still in their saga: a customer's own (another
/// `user_id`: 403 `not_your_account`); an operator's of user N, or of
/// everyone without `user_id`.
#[utoipa::path(
    get,
    path = "/orders",
    tag = "order",
    params(ListQuery),
    responses(
        (status = 200, description = "OK", body = Vec<OrderView>),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn list_orders(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Vec<OrderView>>, ApiError> {
    let user_id = principal.act_for(query.user_id)?;
    let limit = shop_common::http::page_limit(query.limit)?;
    let orders = match user_id {
        Some(user_id) => repo::list_by_user(&state.db, user_id, limit).await,
        None => repo::list_all(&state.db, limit).await,
    }
    .map_err(OrderError::from)?;
    Ok(axum::Json(
        orders.into_iter().map(OrderView::from).collect(),
    ))
}

/// `GET /operator/orders?status=&user_id=&from=&to=&before=&limit=`:
/// `from` and `to` are milliseconds since the epoch (created at or after
/// `from`, before `to`); `before` is the `next` of an earlier page.
#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OperatorListQuery {
    pub status: Option<String>,
    pub user_id: Option<i64>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub before: Option<String>,
    pub limit: Option<i64>,
}

/// An order as the operator sees it: every field of [`OrderView`] and
/// the payment that paid it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorOrderView {
    #[serde(flatten)]
    pub order: OrderView,
    pub payment_id: Option<Uuid>,
}

/// A page of orders. `next` is the `before` of the next page (none when
/// this is the last); `saga_timeout_ms` and `sweep_interval_ms` bound how
/// long an order may stay PENDING (the saga timeout plus one sweep or
/// check-back), for the console's check.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OperatorOrderView>,
    pub next: Option<String>,
    pub saga_timeout_ms: u64,
    pub sweep_interval_ms: u64,
}

fn operator_view((order, payment_id): (crate::model::Order, Option<String>)) -> OperatorOrderView {
    OperatorOrderView {
        order: order.into(),
        payment_id: payment_id.and_then(|p| p.parse().ok()),
    }
}

/// A page cursor: `<created_at>_<id>` of the last order shown.
fn parse_cursor(cursor: &str) -> Option<(i64, Uuid)> {
    let (at, id) = cursor.split_once('_')?;
    Some((at.parse().ok()?, id.parse().ok()?))
}

/// `GET /operator/orders` (operator only) → 200 [`OrderPage`], newest
/// first, PENDING orders included; 400 `invalid_query`, `invalid_status`,
/// `invalid_cursor`, `invalid_limit`, `invalid_range`; 401; 403
/// `operator_only`.
#[utoipa::path(
    get,
    path = "/operator/orders",
    tag = "order",
    params(OperatorListQuery),
    responses(
        (status = 200, description = "OK", body = OrderPage),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn operator_orders(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<OperatorListQuery>,
) -> Result<axum::Json<OrderPage>, ApiError> {
    principal.require_operator()?;
    let limit = shop_common::http::page_limit(query.limit)?;
    let status = match query.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(OrderStatus::parse(&s.to_ascii_uppercase()).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_status",
                "status must be PENDING, CONFIRMED, CANCELLED or PAID",
            )
        })?),
    };
    let before = match query.before.as_deref() {
        None | Some("") => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "before must be a page's next")
        })?),
    };
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if from > to {
            return Err(ApiError::bad_request(
                "invalid_range",
                "from must not be after to",
            ));
        }
    }
    let filter = repo::OrderFilter {
        status,
        user_id: query.user_id,
        from_ms: query.from,
        to_ms: query.to,
        before,
        limit,
    };
    let orders = repo::list_filtered(&state.db, &filter)
        .await
        .map_err(OrderError::from)?;
    let next = if orders.len() as i64 == limit {
        orders
            .last()
            .map(|(o, _)| format!("{}_{}", o.created_at, o.id))
    } else {
        None
    };
    Ok(axum::Json(OrderPage {
        orders: orders.into_iter().map(operator_view).collect(),
        next,
        saga_timeout_ms: state.config.saga_timeout.as_millis() as u64,
        sweep_interval_ms: state.config.sweep_interval.as_millis() as u64,
    }))
}

/// `GET /operator/orders/{id}` (operator only) → 200 [`OperatorOrderView`],
/// PENDING too; 404 `order_not_found`; 401; 403 `operator_only`.
#[utoipa::path(
    get,
    path = "/operator/orders/{id}",
    tag = "order",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "OK", body = OperatorOrderView),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn operator_order(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<OperatorOrderView>, ApiError> {
    principal.require_operator()?;
    let order = repo::get_with_payment(&state.db, id)
        .await
        .map_err(OrderError::from)?
        .ok_or(OrderError::NotFound(id))?;
    Ok(axum::Json(operator_view(order)))
}

/// `GET /internal/orders/{id}` (the pay service) → 200 [`OrderView`]; 404
/// `order_not_found`.
#[utoipa::path(
    get,
    path = "/internal/orders/{id}",
    tag = "order",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "OK", body = OrderView),
        shop_common::openapi::Refusals
    ),
    security(("service_caller" = [], "service_timestamp" = [], "service_nonce" = [], "service_signature" = []))
)]
pub async fn internal_order(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<OrderView>, ApiError> {
    caller.require(&["pay"])?;
    let order = repo::get(&state.db, id)
        .await
        .map_err(OrderError::from)?
        .ok_or(OrderError::NotFound(id))?;
    Ok(axum::Json(order.into()))
}

/// `POST /internal/orders/{id}/payments`: the pay service settles a
/// payment whose gateway notification it verified.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    pub payment_id: Uuid,
    /// What was paid, a string like `"12.30"`.
    #[serde(deserialize_with = "decimal")]
    pub amount: rust_decimal::Decimal,
}

/// The order's answer: `paid` (it is PAID by this payment: book it) or
/// `cancelled` (it is CANCELLED: refund the payment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SettleAnswer {
    pub order_id: Uuid,
    pub outcome: SettleOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SettleOutcome {
    Paid,
    Cancelled,
}

/// `POST /internal/orders/{id}/payments {payment_id, amount}` (the pay
/// service) → 200 [`SettleAnswer`]: the order's state decides, in one
/// conditional statement, whether a payment is booked or refunded, so a
/// cancellation and a payment cannot both win. A repeated call for the
/// same payment answers the same. 404 `order_not_found`; 409
/// `order_not_payable` (PENDING), `paid_by_another_payment`,
/// `amount_mismatch`.
#[utoipa::path(
    post,
    path = "/internal/orders/{id}/payments",
    tag = "order",
    params(("id" = Uuid, Path)),
    request_body = SettleRequest,
    responses(
        (status = 200, description = "OK", body = SettleAnswer),
        shop_common::openapi::Refusals
    ),
    security(("service_caller" = [], "service_timestamp" = [], "service_nonce" = [], "service_signature" = []))
)]
pub async fn settle_payment(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path(id): Path<Uuid>,
    Json(body): Json<SettleRequest>,
) -> Result<axum::Json<SettleAnswer>, ApiError> {
    caller.require(&["pay"])?;
    let amount_cents = to_cents(body.amount)
        .ok()
        .filter(|c| *c > 0)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_amount",
                "amount must be a positive amount in whole cents",
            )
        })?;
    let outcome = match repo::settle(&state.db, id, body.payment_id, amount_cents)
        .await
        .map_err(OrderError::from)?
    {
        Settlement::Paid => SettleOutcome::Paid,
        Settlement::Cancelled => SettleOutcome::Cancelled,
        Settlement::NotFound => return Err(OrderError::NotFound(id).into()),
        Settlement::PaidByAnother => {
            return Err(ApiError::conflict(
                "paid_by_another_payment",
                format!("order {id} was paid by another payment"),
            ))
        }
        Settlement::NotPayable(status) => {
            return Err(ApiError::conflict(
                "order_not_payable",
                format!("order {id} is {status}"),
            ))
        }
        Settlement::AmountMismatch {
            amount_to_pay_cents,
        } => {
            return Err(ApiError::conflict(
                "amount_mismatch",
                format!(
                    "order {id} has {} to pay, not {}",
                    from_cents(amount_to_pay_cents),
                    body.amount
                ),
            ))
        }
    };
    tracing::info!(order_id = %id, payment_id = %body.payment_id, ?outcome, "payment settled");
    Ok(axum::Json(SettleAnswer {
        order_id: id,
        outcome,
    }))
}

/// `GET /health` → 200 once the database answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "order",
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
