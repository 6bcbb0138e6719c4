//! The HTTP API: request and response bodies, and one handler per endpoint.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shop_common::api::pay::CallbackAnswer;
use shop_common::auth::Principal;
use shop_common::http::json_replayed;
use shop_common::money::from_cents;
use shop_common::ApiError;
use uuid::Uuid;

use crate::error::PayError;
use crate::extract::{Json, Path, Query};
use crate::payment::{self, CallbackOutcome, Notification};
use crate::repo::{self, Payment, PaymentStatus};
use crate::AppState;

/// `POST /payments`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    pub order_id: Uuid,
}

/// A payment as the API shows it; `amount` is a string like `"12.30"`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentView {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub user_id: i64,
    pub amount: Decimal,
    pub status: PaymentStatus,
    pub trade_no: Option<String>,
    pub created_at: i64,
    pub paid_at: Option<i64>,
    /// Set when the payment was refunded (its order was cancelled).
    #[serde(default)]
    pub refunded_at: Option<i64>,
    /// Where the user pays, at the gateway.
    pub pay_url: String,
}

fn view(state: &AppState, payment: Payment) -> Result<PaymentView, ApiError> {
    let pay_url = payment::pay_url(&state.config, &payment).ok_or_else(|| {
        ApiError::internal(format!(
            "cannot build a pay URL from gateway_url {}",
            state.config.gateway_url
        ))
    })?;
    Ok(PaymentView {
        payment_id: payment.id,
        order_id: payment.order_id,
        user_id: payment.user_id,
        amount: from_cents(payment.amount_cents),
        status: payment.status,
        trade_no: payment.trade_no,
        created_at: payment.created_at,
        paid_at: payment.paid_at,
        refunded_at: payment.refunded_at,
        pay_url,
    })
}

/// `POST /payments` (a bearer token) → 201 [`PaymentView`] when created,
/// 200 with `idempotent-replayed: true` when the order already has a
/// payment; 404 `order_not_found` (also for another user's order), 409
/// `order_not_payable` (not CONFIRMED), `nothing_to_pay` (amount 0), 503
/// `order_service_unavailable`, `gateway_unavailable`.
#[utoipa::path(
    post,
    path = "/payments",
    tag = "pay",
    request_body = CreatePayment,
    responses(
        (status = 201, description = "Created", body = PaymentView),
        (status = 200, description = "A repeated request, answered as the first (idempotent-replayed: true)", body = PaymentView),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn create_payment(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreatePayment>,
) -> Result<Response, ApiError> {
    let (payment, created) = payment::create_payment(&state, &principal, body.order_id).await?;
    let view = view(&state, payment)?;
    if created {
        return Ok((StatusCode::CREATED, axum::Json(view)).into_response());
    }
    Ok(json_replayed(view, true))
}

/// `GET /payments/{id}` (a bearer token) → 200 [`PaymentView`] of the
/// caller's own payment (an operator: any); 404 `payment_not_found`,
/// another's too.
#[utoipa::path(
    get,
    path = "/payments/{id}",
    tag = "pay",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "OK", body = PaymentView),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn get_payment(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<PaymentView>, ApiError> {
    let payment = repo::get(&state.db, id)
        .await?
        .filter(|payment| principal.may_see(payment.user_id))
        .ok_or(PayError::PaymentNotFound(id))?;
    Ok(axum::Json(view(&state, payment)?))
}

/// `POST /payments/callback` (the gateway's notification, no token: its
/// signature is checked) → 200 `{"result": "success"}` when the payment is
/// booked, `{"result": "refunded"}` when its order was cancelled and it is
/// refunded, the same for a replay; 400 `invalid_amount`,
/// `invalid_trade_no`, `order_mismatch`, `amount_mismatch`; 401
/// `invalid_signature`; 404 `payment_not_found`; 409 `already_paid` (paid
/// with another trade number) or the order's refusal; 503
/// `broker_unavailable`, `order_service_unavailable` (nothing changed, the
/// gateway should retry).
#[utoipa::path(
    post,
    path = "/payments/callback",
    tag = "pay",
    request_body = Notification,
    responses(
        (status = 200, description = "OK", body = CallbackAnswer),
        shop_common::openapi::Refusals
    )
)]
pub async fn callback(
    State(state): State<AppState>,
    Json(notification): Json<Notification>,
) -> Result<axum::Json<CallbackAnswer>, ApiError> {
    let outcome = payment::handle_callback(&state, &notification).await?;
    Ok(axum::Json(match outcome {
        CallbackOutcome::Refunded | CallbackOutcome::Replayed(PaymentStatus::Refunded) => {
            CallbackAnswer {
                result: "refunded".to_owned(),
            }
        }
        _ => CallbackAnswer::success(),
    }))
}

/// `GET /operator/payments?order_id=&after=&limit=`: the payment of one
/// order, or a page of `limit` (default 100) by order id after `after`.
#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OperatorQuery {
    pub order_id: Option<Uuid>,
    pub after: Option<Uuid>,
    pub limit: Option<i64>,
}

/// A payment as the operator sees it: [`PaymentView`] and the unique id
/// of the PAY_SUCCESS (or PAY_REFUND) half message whose local
/// transaction settled it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorPaymentView {
    #[serde(flatten)]
    pub payment: PaymentView,
    pub pay_msg_id: Option<String>,
}

/// A page of payments; `next` is the `after` of the next page (none when
/// this is the last).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentPage {
    pub payments: Vec<OperatorPaymentView>,
    pub next: Option<Uuid>,
}

/// `GET /operator/payments` (operator only) → 200 [`PaymentPage`]; 400
/// `invalid_query`, `invalid_limit`; 401; 403 `operator_only`.
#[utoipa::path(
    get,
    path = "/operator/payments",
    tag = "pay",
    params(OperatorQuery),
    responses(
        (status = 200, description = "OK", body = PaymentPage),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn operator_payments(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<OperatorQuery>,
) -> Result<axum::Json<PaymentPage>, ApiError> {
    principal.require_operator()?;
    let limit = shop_common::http::page_limit(query.limit)?;
    let payments = repo::list_by_order(&state.db, query.order_id, query.after, limit).await?;
    let next = match query.order_id {
        None if payments.len() as i64 == limit => payments.last().map(|p| p.order_id),
        _ => None,
    };
    let payments = payments
        .into_iter()
        .map(|payment| {
            let pay_msg_id = payment.pay_msg_id.clone();
            Ok(OperatorPaymentView {
                payment: view(&state, payment)?,
                pay_msg_id,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(axum::Json(PaymentPage { payments, next }))
}

/// `GET /health`: the service answers and its database does too.
#[utoipa::path(
    get,
    path = "/health",
    tag = "pay",
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
