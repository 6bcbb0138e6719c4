//! The HTTP API: listings of the logs, and health.

use axum::extract::State;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shop_common::auth::Principal;
use shop_common::money::from_cents;
use shop_common::ApiError;
use uuid::Uuid;

use crate::extract::Query;
use crate::repo::{self, Filter, OrderLog, PaymentLog};
use crate::AppState;

/// `GET /logs/payments` and `GET /logs/orders`: every filter is optional.
#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub order_id: Option<Uuid>,
    pub user_id: Option<i64>,
    #[serde(default)]
    pub after_id: i64,
    pub limit: Option<i64>,
}

impl ListQuery {
    /// The filter `principal` may use: a customer's own logs only (a
    /// `user_id` of someone else: 403 `not_your_account`), an operator's
    /// as asked.
    fn filter(&self, principal: &Principal) -> Result<Filter, ApiError> {
        let user_id = principal.act_for(self.user_id)?;
        let limit = shop_common::http::page_limit(self.limit)?;
        Ok(Filter {
            order_id: self.order_id,
            user_id,
            after_id: self.after_id,
            limit,
        })
    }
}

/// A logged payment event; `amount` is a string like `"12.30"`. `event`
/// is `paid` (with `paid_at`) or `refunded` (with `refunded_at` and
/// `reason`); the other fields are null.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentLogView {
    pub id: i64,
    pub payment_id: Uuid,
    pub event: String,
    pub order_id: Uuid,
    pub user_id: i64,
    pub amount: Decimal,
    pub trade_no: String,
    pub paid_at: Option<i64>,
    pub refunded_at: Option<i64>,
    pub reason: Option<String>,
    pub logged_at: i64,
}

impl From<PaymentLog> for PaymentLogView {
    fn from(p: PaymentLog) -> Self {
        PaymentLogView {
            id: p.id,
            payment_id: p.payment_id,
            event: p.event,
            order_id: p.order_id,
            user_id: p.user_id,
            amount: from_cents(p.amount_cents),
            trade_no: p.trade_no,
            paid_at: p.paid_at,
            refunded_at: p.refunded_at,
            reason: p.reason,
            logged_at: p.logged_at,
        }
    }
}

/// `GET /logs/payments?order_id=&user_id=&after_id=&limit=` → 200
/// `[PaymentLogView]` by id, the caller's own (an operator's: anyone's);
/// 400 `invalid_query`, `invalid_limit`; 401 without a token; 403
/// `not_your_account`.
#[utoipa::path(
    get,
    path = "/logs/payments",
    tag = "log",
    params(ListQuery),
    responses(
        (status = 200, description = "OK", body = Vec<PaymentLogView>),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn list_payments(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Vec<PaymentLogView>>, ApiError> {
    let rows = repo::payments(&state.db, &query.filter(&principal)?).await?;
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}

/// `GET /logs/orders?order_id=&user_id=&after_id=&limit=` → 200
/// `[OrderLog]` by id (`event` is `cancelled`), the caller's own (an
/// operator's: anyone's); 400 `invalid_query`, `invalid_limit`; 401
/// without a token; 403 `not_your_account`.
#[utoipa::path(
    get,
    path = "/logs/orders",
    tag = "log",
    params(ListQuery),
    responses(
        (status = 200, description = "OK", body = Vec<crate::repo::OrderLog>),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn list_orders(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Vec<OrderLog>>, ApiError> {
    Ok(axum::Json(
        repo::orders(&state.db, &query.filter(&principal)?).await?,
    ))
}

/// `GET /health`: the service answers and its database does too.
#[utoipa::path(
    get,
    path = "/health",
    tag = "log",
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
