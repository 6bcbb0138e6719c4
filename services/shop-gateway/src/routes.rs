//! The gateway's pages and API.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shop_common::api::pay::signature::two_decimals;
use shop_common::extract::{decimal, Json, Path};
use shop_common::money::to_cents;
use shop_common::ApiError;
use uuid::Uuid;

use crate::gateway::{PayOrder, PayOutcome, PayRefused};
use crate::store::Trade;
use crate::AppState;

/// `POST /api/payments` (the merchant, signed).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    /// A string like `"12.30"` or a number.
    #[serde(deserialize_with = "decimal")]
    #[schema(value_type = String, example = "12.30")]
    pub amount: Decimal,
}

/// A registered payment as the merchant sees it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentView {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount: String,
    /// `None` until it is paid.
    pub trade_no: Option<String>,
    /// Where the payer pays, on this gateway.
    pub pay_path: String,
}

impl From<Trade> for PaymentView {
    fn from(trade: Trade) -> Self {
        PaymentView {
            pay_path: format!("/pay/{}", trade.payment_id),
            payment_id: trade.payment_id,
            order_id: trade.order_id,
            amount: two_decimals(trade.amount_cents),
            trade_no: trade.trade_no,
        }
    }
}

/// `POST /api/pay`: pays a registered payment. `order_id`, `amount` and
/// `notify_url`, when given, must be what was registered.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    pub payment_id: Uuid,
    #[serde(default)]
    pub order_id: Option<Uuid>,
    #[serde(default, deserialize_with = "optional_decimal")]
    #[schema(value_type = Option<String>, example = "12.30")]
    pub amount: Option<Decimal>,
    #[serde(default)]
    pub notify_url: Option<String>,
}

fn optional_decimal<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "decimal")] Decimal);
    Option::<Wrap>::deserialize(d).map(|w| w.map(|Wrap(v)| v))
}

fn cents(amount: Decimal) -> Result<i64, ApiError> {
    to_cents(amount).ok().filter(|c| *c > 0).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_amount",
            "amount must be a positive amount in whole cents",
        )
    })
}

impl From<PayRefused> for ApiError {
    fn from(refused: PayRefused) -> Self {
        let message = refused.to_string();
        match refused {
            PayRefused::Conflict { .. } => ApiError::conflict("payment_conflict", message),
            PayRefused::NotRegistered(_) => ApiError::not_found("payment_not_registered", message),
            PayRefused::NotifyUrlNotRegistered => {
                ApiError::bad_request("notify_url_not_registered", message)
            }
            PayRefused::Store(error) => ApiError::internal(error),
        }
    }
}

/// `POST /api/payments {payment_id, order_id, amount}` (signed by the
/// merchant) → 200 [`PaymentView`], the same for a repeated registration;
/// 401 `merchant_unauthenticated`; 400 `invalid_amount`; 409
/// `payment_conflict` (this payment id is registered for another order or
/// amount).
#[utoipa::path(
    post,
    path = "/api/payments",
    tag = "gateway",
    request_body = RegisterRequest,
    responses(
        (status = 200, description = "Registered (also for a repeated registration)", body = PaymentView),
        shop_common::openapi::LocalRefusals
    ),
    security(("service_caller" = [], "service_timestamp" = [], "service_nonce" = [], "service_signature" = []))
)]
pub async fn register(
    State(state): State<AppState>,
    Json(body): Json<RegisterRequest>,
) -> Result<axum::Json<PaymentView>, ApiError> {
    let order = PayOrder {
        payment_id: body.payment_id,
        order_id: body.order_id,
        amount_cents: cents(body.amount)?,
    };
    Ok(axum::Json(state.gateway.register(&order).await?.into()))
}

/// `POST /api/pay {payment_id[, order_id, amount, notify_url]}` → 200
/// [`PayOutcome`] `{trade_no, callback_status, accepted, attempts}`
/// whatever the merchant answered (`accepted` says whether it took the
/// notification; what it answered is not repeated); 404
/// `payment_not_registered`; 400 `notify_url_not_registered`,
/// `invalid_amount`, `invalid_json`, `invalid_body`; 409
/// `payment_conflict` (another order or amount than registered).
#[utoipa::path(
    post,
    path = "/api/pay",
    tag = "gateway",
    request_body = PayRequest,
    responses(
        (status = 200, description = "Paid; whether the merchant accepted the notification", body = PayOutcome),
        shop_common::openapi::LocalRefusals
    )
)]
pub async fn api_pay(
    State(state): State<AppState>,
    Json(body): Json<PayRequest>,
) -> Result<axum::Json<PayOutcome>, ApiError> {
    let trade = state.gateway.registered(body.payment_id)?;
    if let Some(url) = &body.notify_url {
        let same = reqwest::Url::parse(url)
            .is_ok_and(|url| url == state.gateway.config().merchant_notify_url);
        if !same {
            return Err(PayRefused::NotifyUrlNotRegistered.into());
        }
    }
    let amount = body.amount.map(cents).transpose()?;
    if body.order_id.is_some_and(|o| o != trade.order_id)
        || amount.is_some_and(|a| a != trade.amount_cents)
    {
        return Err(PayRefused::Conflict {
            payment_id: trade.payment_id,
            order_id: trade.order_id,
            amount: two_decimals(trade.amount_cents),
        }
        .into());
    }
    Ok(axum::Json(state.gateway.pay(body.payment_id).await?))
}

/// Text for an HTML page: `&`, `<`, `>`, `"` and `'` escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body style=\"font-family: sans-serif; max-width: 32em; margin: 3em auto\">\n\
         <h1>{title}</h1>\n{body}\n</body></html>\n",
        title = escape(title)
    )
}

/// `GET /pay/{payment_id}` → the pay page of a registered payment (what
/// the merchant registered, whatever the URL's query says) with a "Pay"
/// button that posts to `POST /pay/{payment_id}`; 404
/// `payment_not_registered`.
#[utoipa::path(
    get,
    path = "/pay/{payment_id}",
    tag = "gateway",
    params(("payment_id" = Uuid, Path, description = "A payment the merchant registered")),
    responses(
        (status = 200, description = "The pay page", content_type = "text/html", body = String),
        shop_common::openapi::LocalRefusals
    )
)]
pub async fn pay_page(
    State(state): State<AppState>,
    Path(payment_id): Path<Uuid>,
) -> Result<Html<String>, ApiError> {
    let trade = state.gateway.registered(payment_id)?;
    let amount = two_decimals(trade.amount_cents);
    let body = format!(
        "<p>Order <code>{order_id}</code></p>\n\
         <p>Amount <strong>{amount}</strong></p>\n\
         <form method=\"post\" action=\"/pay/{payment_id}\">\n\
         <button type=\"submit\">Pay {amount}</button>\n</form>",
        order_id = trade.order_id,
    );
    Ok(Html(page("Fake payment gateway", &body)))
}

/// `POST /pay/{payment_id}` (the page's button; any form fields are
/// ignored) → an HTML page with the outcome: 200 when the merchant
/// accepted the notification, 502 when it refused it or could not be
/// reached; 404 `payment_not_registered`.
#[utoipa::path(
    post,
    path = "/pay/{payment_id}",
    tag = "gateway",
    params(("payment_id" = Uuid, Path, description = "A payment the merchant registered")),
    responses(
        (status = 200, description = "Paid, and the merchant accepted the notification", content_type = "text/html", body = String),
        (status = 502, description = "Paid, but the merchant refused the notification or did not answer", content_type = "text/html", body = String),
        shop_common::openapi::LocalRefusals
    )
)]
pub async fn pay_form(
    State(state): State<AppState>,
    Path(payment_id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let outcome = state.gateway.pay(payment_id).await?;
    let status = outcome
        .callback_status
        .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
    let (code, title, text) = if outcome.accepted {
        (
            StatusCode::OK,
            "Payment done",
            "The shop was notified and accepted the payment.",
        )
    } else {
        (
            StatusCode::BAD_GATEWAY,
            "Payment not confirmed",
            "The shop did not accept the notification.",
        )
    };
    let body = format!(
        "<p>{text}</p>\n<p>Trade number <code>{trade_no}</code></p>\n\
         <p>Shop's answer: {status} after {attempts} attempt(s)</p>",
        trade_no = escape(&outcome.trade_no),
        attempts = outcome.attempts,
    );
    Ok((code, Html(page(title, &body))).into_response())
}

/// `GET /health`.
#[utoipa::path(
    get,
    path = "/health",
    tag = "gateway",
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        shop_common::openapi::LocalRefusals
    )
)]
pub async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x?a=1&b='2'">"#),
            "&lt;a href=&quot;x?a=1&amp;b=&#39;2&#39;&quot;&gt;"
        );
    }
}
