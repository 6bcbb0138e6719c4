//! The order service, asked over HTTP for the order a payment is for.

use std::time::Duration;

use shop_common::api::order::OrderToPay;
use shop_common::client::{CallError, ServiceClient};
use uuid::Uuid;

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
    client: ServiceClient,
}

impl OrderClient {
    pub fn new(base_url: &str, timeout: Duration) -> OrderClient {
        OrderClient {
            client: ServiceClient::new("order", base_url, timeout),
        }
    }

    /// `GET {order_url}/orders/{id}`.
    pub async fn order(&self, id: Uuid) -> Result<OrderToPay, OrderLookupError> {
        let order: OrderToPay =
            self.client
                .get(&format!("/orders/{id}"))
                .await
                .map_err(|e| match e {
                    CallError::Refused { status: 404, .. } => OrderLookupError::NotFound(id),
                    CallError::Refused { status, .. } => {
                        OrderLookupError::Unavailable(format!("answered {status}"))
                    }
                    CallError::Unavailable { reason, .. } => OrderLookupError::Unavailable(reason),
                })?;
        if order.id != id {
            return Err(OrderLookupError::Unavailable(format!(
                "asked for order {id}, got {}",
                order.id
            )));
        }
        Ok(order)
    }
}
