//! The broker's check-back for ORDER_CANCEL half messages whose outcome it
//! has not heard: the order's status decides.
//!
//! - CONFIRMED or PAID: nothing to compensate, roll back.
//! - CANCELLED: compensate, commit.
//! - PENDING older than the saga timeout: the saga died; cancel the order
//!   (conditionally, so a saga that confirms at the same moment wins or
//!   loses cleanly) and commit.
//! - PENDING and young: the saga is still running, unknown.
//! - No such order: its local transaction never committed, roll back.

use mq_client::{async_trait, LocalTransactionState, MessageExt, TransactionChecker};
use shop_common::now_ms;
use tracing::{info, warn};
use uuid::Uuid;

use crate::model::OrderStatus;
use crate::{repo, AppState};

pub struct OrderChecker {
    pub(crate) state: std::sync::OnceLock<AppState>,
}

impl OrderChecker {
    pub(crate) async fn decide(
        state: &AppState,
        order_id: Uuid,
        now: i64,
    ) -> Result<LocalTransactionState, sqlx::Error> {
        let Some(order) = repo::get(&state.db, order_id).await? else {
            return Ok(LocalTransactionState::Rollback);
        };
        Ok(match order.status {
            OrderStatus::Confirmed | OrderStatus::Paid => LocalTransactionState::Rollback,
            OrderStatus::Cancelled => LocalTransactionState::Commit,
            OrderStatus::Pending
                if now - order.created_at >= state.config.saga_timeout.as_millis() as i64 =>
            {
                if repo::transition_db(
                    &state.db,
                    order_id,
                    OrderStatus::Pending,
                    OrderStatus::Cancelled,
                    Some("saga timeout"),
                )
                .await?
                {
                    state.metrics.order_cancelled("saga_timeout");
                    info!(%order_id, "check-back cancelled an abandoned order");
                    LocalTransactionState::Commit
                } else {
                    // It moved on meanwhile: decide on its new status.
                    match repo::get(&state.db, order_id).await?.map(|o| o.status) {
                        Some(OrderStatus::Cancelled) => LocalTransactionState::Commit,
                        Some(OrderStatus::Confirmed | OrderStatus::Paid) => {
                            LocalTransactionState::Rollback
                        }
                        _ => LocalTransactionState::Unknown,
                    }
                }
            }
            OrderStatus::Pending => LocalTransactionState::Unknown,
        })
    }
}

#[async_trait]
impl TransactionChecker for OrderChecker {
    async fn check(&self, msg: &MessageExt) -> LocalTransactionState {
        let Some(state) = self.state.get() else {
            return LocalTransactionState::Unknown;
        };
        let Some(order_id) = msg.keys().first().and_then(|k| k.parse::<Uuid>().ok()) else {
            warn!(msg_id = %msg.msg_id(), "a check-back for a message without an order id; rolling back");
            return LocalTransactionState::Rollback;
        };
        // The half message carries the saga's trace: the check-back's lines
        // join it.
        let trace = shop_common::trace::from_message(msg);
        let span = tracing::info_span!(
            "check_back",
            trace_id = %trace.parent.trace_id_hex(),
            %order_id,
            msg_id = %msg.msg_id(),
        );
        let decided = shop_common::trace::scope(
            trace,
            tracing::Instrument::instrument(Self::decide(state, order_id, now_ms()), span),
        )
        .await;
        match decided {
            Ok(outcome) => outcome,
            Err(error) => {
                warn!(%order_id, %error, "check-back could not read the order");
                LocalTransactionState::Unknown
            }
        }
    }
}
