//! The consumers: PAY_SUCCESS and PAY_REFUND into `payment_log`,
//! ORDER_CANCEL into `order_log`, each applied once per (group, message
//! key) by `shop_common::events::apply_once`.

use mq_client::{async_trait, MessageExt};
use shop_common::events::{body, EventError, EventHandler, OrderCancelled, PaymentSucceeded};
use shop_common::now_ms;
use sqlx::AnyConnection;
use tracing::info;

use crate::repo;

/// This service's consumer group for PAY_SUCCESS.
pub const PAY_GROUP: &str = "log-service-pay-success";
/// This service's consumer group for ORDER_CANCEL.
pub const CANCEL_GROUP: &str = "log-service-order-cancel";
/// This service's consumer group for PAY_REFUND.
pub const REFUND_GROUP: &str = "log-service-pay-refund";

pub use shop_common::events::{PaymentRefunded, PAY_REFUND};

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
