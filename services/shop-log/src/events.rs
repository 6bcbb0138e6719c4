//! The consumers: PAY_SUCCESS and PAY_REFUND into `payment_log`,
//! ORDER_CANCEL into `order_log`, each applied once per (group, message
//! key) by `shop_common::events::apply_once`.

use mq_client::{async_trait, MessageExt};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shop_common::events::{body, EventError, EventHandler, OrderCancelled, PaymentSucceeded};
use shop_common::now_ms;
use sqlx::AnyConnection;
use tracing::info;
use uuid::Uuid;

use crate::repo;

/// This service's consumer group for PAY_SUCCESS.
pub const PAY_GROUP: &str = "log-service-pay-success";
/// This service's consumer group for ORDER_CANCEL.
pub const CANCEL_GROUP: &str = "log-service-order-cancel";
/// This service's consumer group for PAY_REFUND.
pub const REFUND_GROUP: &str = "log-service-pay-refund";

/// Topic of refunded payments: the pay service publishes one, KEYS the
/// payment id, when a payment arrives for an order that was cancelled.
pub const PAY_REFUND: &str = "PAY_REFUND";

/// The body of a PAY_REFUND message, as the pay service writes it
/// (`shop_pay::events::PaymentRefunded`; a copy until it moves to
/// `shop_common::events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub user_id: i64,
    /// What was paid at the gateway and goes back.
    pub amount: Decimal,
    /// The gateway's trade number of the payment refunded.
    pub trade_no: String,
    pub refunded_at: i64,
    /// Why: `order_cancelled`.
    pub reason: String,
}

pub struct OnPaymentSucceeded;

#[async_trait]
impl EventHandler for OnPaymentSucceeded {
    async fn apply(&self, tx: &mut AnyConnection, msg: &MessageExt) -> Result<(), EventError> {
        let event: PaymentSucceeded = body(msg)?;
        let logged = repo::log_payment(tx, &event, now_ms()).await?;
        info!(payment_id = %event.payment_id, order_id = %event.order_id, logged, "PAY_SUCCESS logged");
        Ok(())
    }
}

pub struct OnOrderCancelled;

#[async_trait]
impl EventHandler for OnOrderCancelled {
    async fn apply(&self, tx: &mut AnyConnection, msg: &MessageExt) -> Result<(), EventError> {
        let event: OrderCancelled = body(msg)?;
        let logged = repo::log_cancellation(tx, &event, now_ms()).await?;
        info!(order_id = %event.order_id, logged, "ORDER_CANCEL logged");
        Ok(())
    }
}

pub struct OnPaymentRefunded;

#[async_trait]
impl EventHandler for OnPaymentRefunded {
    async fn apply(&self, tx: &mut AnyConnection, msg: &MessageExt) -> Result<(), EventError> {
        let event: PaymentRefunded = body(msg)?;
        let logged = repo::log_refund(tx, &event, now_ms()).await?;
        info!(payment_id = %event.payment_id, order_id = %event.order_id, logged, "PAY_REFUND logged");
        Ok(())
    }
}
