//! The events the pay service publishes, each signed with its key:
//! PAY_SUCCESS (`shop_common::events`) for a payment booked, and
//! [`PAY_REFUND`] for a payment refunded because its order was cancelled
//! (issue 15 part 7), which the log service records as a refund.
//!
//! PAY_REFUND's topic must exist on the broker, the pay service's account
//! may publish it and the log service's consumer group subscribe to it;
//! its body is [`PaymentRefunded`], KEYS the payment id (both defined in
//! `shop_common::events`, for both ends).

pub use shop_common::events::{PaymentRefunded, PAY_REFUND};
