//! The ORDER_CANCEL consumer: an order that failed or was abandoned gives
//! back what it took here, exactly once ([`crate::cancel_order_in`] inside
//! the consumer's transaction, with its consumed-message row).

use mq_client::{async_trait, MessageExt};
use shop_common::events::{body, EventError, EventHandler, OrderCancelled};
use sqlx::AnyConnection;
use tracing::info;

/// This service's consumer group for ORDER_CANCEL.
pub const CANCEL_GROUP: &str = "goods-service-order-cancel";

pub struct OnOrderCancelled;

#[async_trait]
impl EventHandler for OnOrderCancelled {
    async fn apply(&self, tx: &mut AnyConnection, msg: &MessageExt) -> Result<(), EventError> {
        let event: OrderCancelled = body(msg)?;
        let outcome = crate::cancel_order_in(tx, event.order_id).await?;
        info!(order_id = %event.order_id, ?outcome, "ORDER_CANCEL applied");
        Ok(())
    }
}
