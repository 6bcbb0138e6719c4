//! What the order service consumes: ORDER_CANCEL (an order cancelled by
//! anyone is CANCELLED here too) and PAY_SUCCESS (a paid order is PAID).

use mq_client::{async_trait, MessageExt};
use shop_common::events::{body, EventError, EventHandler, OrderCancelled, PaymentSucceeded};
use sqlx::AnyConnection;
use tracing::info;

use crate::model::OrderStatus;
use crate::repo;

/// Consumer group of this service's ORDER_CANCEL consumer.
pub const CANCEL_GROUP: &str = "order-service-order-cancel";
/// Consumer group of this service's PAY_SUCCESS consumer.
pub const PAY_GROUP: &str = "order-service-pay-success";

pub struct OnOrderCancelled;

#[async_trait]
impl EventHandler for OnOrderCancelled {
    async fn apply(&self, tx: &mut AnyConnection, msg: &MessageExt) -> Result<(), EventError> {
        let event: OrderCancelled = body(msg)?;
        if repo::transition(
            tx,
            event.order_id,
            OrderStatus::Pending,
            OrderStatus::Cancelled,
            Some(&event.reason),
        )
        .await?
        {
            info!(order_id = %event.order_id, "order cancelled by ORDER_CANCEL");
        }
        Ok(())
    }
}

pub struct OnPaymentSucceeded;

#[async_trait]
impl EventHandler for OnPaymentSucceeded {
    async fn apply(&self, tx: &mut AnyConnection, msg: &MessageExt) -> Result<(), EventError> {
        let event: PaymentSucceeded = body(msg)?;
        if repo::transition(
            tx,
            event.order_id,
            OrderStatus::Confirmed,
            OrderStatus::Paid,
            None,
        )
        .await?
        {
            info!(order_id = %event.order_id, payment_id = %event.payment_id, "order paid");
        }
        Ok(())
    }
}
