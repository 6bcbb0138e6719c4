//! What the order service consumes: ORDER_CANCEL (an order cancelled by
//! anyone is CANCELLED here too) and PAY_SUCCESS (a paid order is PAID).
//! The frame applies only events their owner signed (ORDER_CANCEL: this
//! service; PAY_SUCCESS: the pay service, [`subscriptions`]); on top of
//! that, an event never overrides a decided order: ORDER_CANCEL moves only a
//! PENDING order (a CONFIRMED or PAID one stays as it is, whatever the
//! event says), PAY_SUCCESS only a CONFIRMED one (a CANCELLED order is
//! never made PAID; its payment is refunded by the pay service).

use std::sync::Arc;

use mq_client::{async_trait, MessageExt};
use shop_common::events::{
    body, EventError, EventHandler, OrderCancelled, PaymentSucceeded, ORDER_CANCEL, PAY_SUCCESS,
};
use shop_common::service::Subscription;
use sqlx::AnyConnection;
use tracing::{info, warn};

use crate::model::OrderStatus;
use crate::repo;

/// Consumer group of this service's ORDER_CANCEL consumer.
pub const CANCEL_GROUP: &str = "order-service-order-cancel";
/// Consumer group of this service's PAY_SUCCESS consumer.
pub const PAY_GROUP: &str = "order-service-pay-success";

/// The topics the order service consumes, each from its owner.
pub fn subscriptions() -> Vec<Subscription> {
    vec![
        Subscription {
            group: CANCEL_GROUP,
            topic: ORDER_CANCEL,
            publisher: "order",
            handler: Arc::new(OnOrderCancelled),
        },
        Subscription {
            group: PAY_GROUP,
            topic: PAY_SUCCESS,
            publisher: "pay",
            handler: Arc::new(OnPaymentSucceeded),
        },
    ]
}

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
        } else if let Some(status) = status_of(tx, event.order_id).await? {
            if matches!(status, OrderStatus::Confirmed | OrderStatus::Paid) {
                warn!(
                    order_id = %event.order_id,
                    %status,
                    msg_id = %msg.msg_id(),
                    "ORDER_CANCEL for a decided order ignored"
                );
            }
        }
        Ok(())
    }
}

async fn status_of(
    tx: &mut AnyConnection,
    id: uuid::Uuid,
) -> Result<Option<OrderStatus>, sqlx::Error> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(tx)
        .await?;
    Ok(status.as_deref().and_then(OrderStatus::parse))
}

pub struct OnPaymentSucceeded;

#[async_trait]
impl EventHandler for OnPaymentSucceeded {
    async fn apply(&self, tx: &mut AnyConnection, msg: &MessageExt) -> Result<(), EventError> {
        let event: PaymentSucceeded = body(msg)?;
        if repo::paid_by_event(tx, event.order_id, event.payment_id).await? {
            info!(order_id = %event.order_id, payment_id = %event.payment_id, "order paid");
        }
        Ok(())
    }
}
