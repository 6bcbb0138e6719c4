//! The events the pay service publishes, each signed with its key:
//! PAY_SUCCESS (`shop_common::events`) for a payment booked, and
//! [`PAY_REFUND`] for a payment refunded because its order was cancelled
//! (issue 15 part 7), which the log service records as a refund.
//!
//! PAY_REFUND is new: the topic must exist on the broker, the pay
//! service's account may publish it and the log service's consumer group
//! subscribe to it; its body is [`PaymentRefunded`], KEYS the payment id.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Topic of refunded payments.
pub const PAY_REFUND: &str = "PAY_REFUND";

/// The body of a PAY_REFUND message.
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
