//! The broker's check-back for PAY_SUCCESS half messages whose end it has
//! not heard (this process died, or END_TRANSACTION was lost): the payment
//! the message is for (its KEYS) decides.
//!
//! The same holds for the PAY_REFUND half message of a refund, whose local
//! transaction marks the payment REFUNDED.
//!
//! - PAID or REFUNDED by this very message (`pay_msg_id` is the message's
//!   unique id): the local transaction committed, commit.
//! - PAID or REFUNDED by another message (a replayed or concurrent callback sent this
//!   one and found the payment already paid), or without a message: this
//!   one carries nothing new, roll back. The payment's own PAY_SUCCESS is
//!   (or was) committed on its own.
//! - UNPAID, and the half message is younger than [`CHECK_GRACE_MS`]: its
//!   local transaction may still be running, unknown (asked again later).
//! - UNPAID and older: the local transaction never committed (it failed,
//!   or the process died before it), roll back. The gateway, which got no
//!   success answer, sends the notification again and starts over.
//! - No such payment, or a message without a payment id: roll back.

use mq_client::{async_trait, LocalTransactionState, MessageExt, TransactionChecker};
use shop_common::{now_ms, Db};
use tracing::{info, warn};
use uuid::Uuid;

use crate::repo::{self, PaymentStatus};

/// How long after its birth an UNPAID payment's half message is still
/// given the benefit of the doubt. Far longer than a local transaction
/// takes (its statement waits at most the pool's 10 s acquire timeout).
pub const CHECK_GRACE_MS: i64 = 60_000;

pub struct PayChecker {
    pub db: Db,
}

impl PayChecker {
    /// The outcome for the half message `msg_id` (born at `born_ms`) of
    /// `payment_id`, at time `now`.
    pub async fn decide(
        db: &Db,
        payment_id: Uuid,
        msg_id: &str,
        born_ms: i64,
        now: i64,
    ) -> Result<LocalTransactionState, sqlx::Error> {
        let Some(payment) = repo::get(db, payment_id).await? else {
            return Ok(LocalTransactionState::Rollback);
        };
        Ok(match payment.status {
            PaymentStatus::Paid | PaymentStatus::Refunded
                if payment.pay_msg_id.as_deref() == Some(msg_id) =>
            {
                LocalTransactionState::Commit
            }
            PaymentStatus::Paid | PaymentStatus::Refunded => LocalTransactionState::Rollback,
            PaymentStatus::Unpaid if now - born_ms < CHECK_GRACE_MS => {
                LocalTransactionState::Unknown
            }
            PaymentStatus::Unpaid => LocalTransactionState::Rollback,
        })
    }
}

#[async_trait]
impl TransactionChecker for PayChecker {
    async fn check(&self, msg: &MessageExt) -> LocalTransactionState {
        let Some(payment_id) = msg.keys().first().and_then(|k| k.parse::<Uuid>().ok()) else {
            warn!(msg_id = %msg.msg_id(), "a check-back for a message without a payment id; rolling back");
            return LocalTransactionState::Rollback;
        };
        let msg_id = msg.msg_id();
        match Self::decide(&self.db, payment_id, &msg_id, msg.born_timestamp, now_ms()).await {
            Ok(outcome) => {
                info!(%payment_id, %msg_id, ?outcome, "PAY_SUCCESS check-back");
                outcome
            }
            Err(error) => {
                warn!(%payment_id, %error, "check-back could not read the payment");
                LocalTransactionState::Unknown
            }
        }
    }
}
