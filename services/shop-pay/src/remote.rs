//! The order service, asked over HTTP for the order a payment is for.

use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;
use uuid::Uuid;

/// What the pay service reads of an order (`GET /orders/{id}` of the order
/// service; other fields are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RemoteOrder {
    pub id: Uuid,
    pub user_id: i64,
    /// `PENDING`, `CONFIRMED`, `CANCELLED` or `PAID`.
    pub status: String,
    /// A string like `"12.30"` (a number is accepted too).
    #[serde(deserialize_with = "shop_common::extract::decimal")]
    pub amount_to_pay: Decimal,
}

/// Why an order could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderLookupError {
    #[error("order {0} not found")]
    NotFound(Uuid),
    /// Timeout, connection refused, an unexpected status or body.
    #[error("the order service is unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug, Clone)]
pub struct OrderClient {
    http: reqwest::Client,
    base_url: String,
}

impl OrderClient {
    pub fn new(base_url: &str, timeout: Duration) -> OrderClient {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .expect("an HTTP client without TLS builds");
        OrderClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// `GET {order_url}/orders/{id}`.
    pub async fn order(&self, id: Uuid) -> Result<RemoteOrder, OrderLookupError> {
        let unavailable = |e: &dyn std::fmt::Display| OrderLookupError::Unavailable(e.to_string());
        let response = self
            .http
            .get(format!("{}/orders/{id}", self.base_url))
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(OrderLookupError::NotFound(id));
        }
        if !status.is_success() {
            return Err(OrderLookupError::Unavailable(format!("answered {status}")));
        }
        let bytes = response.bytes().await.map_err(|e| unavailable(&e))?;
        let order: RemoteOrder = serde_json::from_slice(&bytes)
            .map_err(|e| OrderLookupError::Unavailable(format!("unreadable order: {e}")))?;
        if order.id != id {
            return Err(OrderLookupError::Unavailable(format!(
                "asked for order {id}, got {}",
                order.id
            )));
        }
        Ok(order)
    }
}
