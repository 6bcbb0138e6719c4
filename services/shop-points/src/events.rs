//! The PAY_SUCCESS consumer: credits the payment's points once per
//! (group, payment id) through `shop_common::events::apply_once`, and once
//! per payment and per order through the ledger's unique keys.

use mq_client::{async_trait, MessageExt};
use shop_common::events::{body, EventError, EventHandler, PaymentSucceeded};
use shop_common::now_ms;
use sqlx::AnyConnection;
use tracing::info;

/// This service's consumer group for PAY_SUCCESS.
pub const PAY_GROUP: &str = "points-service-pay-success";

pub struct OnPaymentSucceeded;

#[async_trait]
impl EventHandler for OnPaymentSucceeded {
    async fn apply(&self, tx: &mut AnyConnection, msg: &MessageExt) -> Result<(), EventError> {
        let event: PaymentSucceeded = body(msg)?;
        let credited = crate::repo::credit(tx, &event, now_ms()).await?;
        info!(payment_id = %event.payment_id, user_id = event.user_id, ?credited, "PAY_SUCCESS credited");
        Ok(())
    }
}
