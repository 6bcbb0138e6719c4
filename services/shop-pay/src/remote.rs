//! The services the pay service calls: the order service (internal
//! endpoints, signed with this service's key) and the gateway (its
//! merchant API, signed with the merchant key).

use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shop_common::api::order::OrderToPay;
use shop_common::auth::ServiceKey;
use shop_common::client::{CallError, ServiceClient};
use uuid::Uuid;

/// Why an order could not be read or settled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderLookupError {
    #[error("order {0} not found")]
    NotFound(Uuid),
    /// The order service refused the settlement (`code`: why).
    #[error("the order service refused: {message} ({code})")]
    Refused { code: String, message: String },
    /// Timeout, connection refused, an unexpected status or body.
    #[error("the order service is unavailable: {0}")]
    Unavailable(String),
}

/// `POST /internal/orders/{id}/payments` of the order service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettleRequest {
    pub payment_id: Uuid,
    /// A string like `"12.30"`.
    pub amount: Decimal,
}

/// Its answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SettleAnswer {
    pub order_id: Uuid,
    pub outcome: Settled,
}

/// What the order's state decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settled {
    /// The order is PAID by the payment: book it.
    Paid,
    /// The order is CANCELLED: refund the payment.
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct OrderClient {
    client: ServiceClient,
}

fn lookup_error(id: Uuid, error: CallError) -> OrderLookupError {
    match error {
        CallError::Refused { status: 404, .. } => OrderLookupError::NotFound(id),
        CallError::Refused { code, message, .. } => OrderLookupError::Refused { code, message },
        CallError::Unavailable { reason, .. } => OrderLookupError::Unavailable(reason),
    }
}

impl OrderClient {
    /// The order service at `base_url`, every call signed with `key`.
    pub fn new(base_url: &str, timeout: Duration, key: &ServiceKey) -> OrderClient {
        OrderClient {
            client: ServiceClient::new("order", base_url, timeout).signed_by(key.clone()),
        }
    }

    /// `GET {order_url}/internal/orders/{id}`.
    pub async fn order(&self, id: Uuid) -> Result<OrderToPay, OrderLookupError> {
        let order: OrderToPay = self
            .client
            .get(&format!("/internal/orders/{id}"))
            .await
            .map_err(|e| match lookup_error(id, e) {
                OrderLookupError::Refused { code, .. } => {
                    OrderLookupError::Unavailable(format!("refused: {code}"))
                }
                other => other,
            })?;
        if order.id != id {
            return Err(OrderLookupError::Unavailable(format!(
                "asked for order {id}, got {}",
                order.id
            )));
        }
        Ok(order)
    }

    /// `POST {order_url}/internal/orders/{id}/payments`: whether the order
    /// takes the payment (it is PAID by it now) or is cancelled.
    pub async fn settle(
        &self,
        id: Uuid,
        payment_id: Uuid,
        amount: Decimal,
    ) -> Result<Settled, OrderLookupError> {
        let answer: SettleAnswer = self
            .client
            .post(
                &format!("/internal/orders/{id}/payments"),
                &SettleRequest { payment_id, amount },
            )
            .await
            .map_err(|e| lookup_error(id, e))?;
        if answer.order_id != id {
            return Err(OrderLookupError::Unavailable(format!(
                "settled order {id}, answered for {}",
                answer.order_id
            )));
        }
        Ok(answer.outcome)
    }
}

/// `POST /api/payments` of the gateway: the merchant registers a payment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterPayment {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    /// A string like `"12.30"`.
    pub amount: Decimal,
}

/// The gateway's merchant API.
#[derive(Debug, Clone)]
pub struct GatewayClient {
    client: ServiceClient,
}

impl GatewayClient {
    /// The gateway at `base_url`, every request signed with the merchant
    /// key.
    pub fn new(base_url: &str, timeout: Duration, merchant: &ServiceKey) -> GatewayClient {
        GatewayClient {
            client: ServiceClient::new("gateway", base_url, timeout).signed_by(merchant.clone()),
        }
    }

    /// Registers a payment (the same registration again is answered as the
    /// first).
    pub async fn register(&self, payment: &RegisterPayment) -> Result<(), CallError> {
        self.client
            .post::<serde_json::Value, _>("/api/payments", payment)
            .await
            .map(drop)
    }
}
