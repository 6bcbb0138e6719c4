//! The gateway's pages and API.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use rust_decimal::Decimal;
use serde::Deserialize;
use shop_common::api::pay::signature::two_decimals;
use shop_common::extract::{decimal, Json, Path, Query};
use shop_common::money::to_cents;
use shop_common::ApiError;
use uuid::Uuid;

use crate::gateway::{PayOrder, PayOutcome, PayRefused};
use crate::AppState;

/// `POST /api/pay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    /// A string like `"12.30"` or a number.
    #[serde(deserialize_with = "decimal")]
    pub amount: Decimal,
    /// The merchant's callback URL.
    pub notify_url: String,
}

/// The query of `GET /pay/{payment_id}` and the form of `POST /pay/{payment_id}`
/// (what the pay service's `pay_url` carries).
#[derive(Debug, Deserialize)]
pub struct PayForm {
    pub order_id: Uuid,
    #[serde(deserialize_with = "decimal")]
    pub amount: Decimal,
    pub notify_url: String,
}

fn pay_order(
    payment_id: Uuid,
    order_id: Uuid,
    amount: Decimal,
    notify_url: &str,
) -> Result<PayOrder, ApiError> {
    let amount_cents = to_cents(amount).ok().filter(|c| *c > 0).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_amount",
            "amount must be a positive amount in whole cents",
        )
    })?;
    let notify_url = reqwest::Url::parse(notify_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_notify_url",
                "notify_url must be an http:// or https:// URL",
            )
        })?;
    Ok(PayOrder {
        payment_id,
        order_id,
        amount_cents,
        notify_url,
    })
}

impl From<PayRefused> for ApiError {
    fn from(refused: PayRefused) -> Self {
        match refused {
            PayRefused::Conflict { .. } => {
                ApiError::conflict("payment_conflict", refused.to_string())
            }
        }
    }
}

/// `POST /api/pay` → 200 [`PayOutcome`] `{trade_no, callback_status,
/// accepted, attempts, callback_answer}` whatever the merchant answered
/// (`accepted` says whether it took the notification); 400
/// `invalid_amount`, `invalid_notify_url`, `invalid_json`, `invalid_body`;
/// 409 `payment_conflict` (this payment id was paid here for another order
/// or amount).
pub async fn api_pay(
    State(state): State<AppState>,
    Json(body): Json<PayRequest>,
) -> Result<axum::Json<PayOutcome>, ApiError> {
    let order = pay_order(
        body.payment_id,
        body.order_id,
        body.amount,
        &body.notify_url,
    )?;
    Ok(axum::Json(state.gateway.pay(&order).await?))
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

/// `GET /pay/{payment_id}?order_id=&amount=&notify_url=` → the pay page: the
/// payment and a "Pay" button that posts the same fields to
/// `POST /pay/{payment_id}`.
pub async fn pay_page(
    Path(payment_id): Path<Uuid>,
    Query(query): Query<PayForm>,
) -> Result<Html<String>, ApiError> {
    let order = pay_order(payment_id, query.order_id, query.amount, &query.notify_url)?;
    let amount = two_decimals(order.amount_cents);
    let body = format!(
        "<p>Order <code>{order_id}</code></p>\n\
         <p>Amount <strong>{amount}</strong></p>\n\
         <form method=\"post\" action=\"/pay/{payment_id}\">\n\
         <input type=\"hidden\" name=\"order_id\" value=\"{order_id}\">\n\
         <input type=\"hidden\" name=\"amount\" value=\"{amount}\">\n\
         <input type=\"hidden\" name=\"notify_url\" value=\"{notify_url}\">\n\
         <button type=\"submit\">Pay {amount}</button>\n</form>",
        order_id = order.order_id,
        notify_url = escape(order.notify_url.as_str()),
    );
    Ok(Html(page("Fake payment gateway", &body)))
}

/// `POST /pay/{payment_id}` (the page's form) → an HTML page with the
/// outcome: 200 when the merchant accepted the notification, 502 when it
/// refused it or could not be reached.
pub async fn pay_form(
    State(state): State<AppState>,
    Path(payment_id): Path<Uuid>,
    form: Result<Form<PayForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(form) = form.map_err(|e| ApiError::bad_request("invalid_form", e.body_text()))?;
    let order = pay_order(payment_id, form.order_id, form.amount, &form.notify_url)?;
    let outcome = state.gateway.pay(&order).await?;
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
