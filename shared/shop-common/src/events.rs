//! The shop's events on the broker, and exactly-once consumption of them.
//!
//! Topics: [`ORDER_CANCEL`] (a failed or abandoned order: undo what it took)
//! and [`PAY_SUCCESS`] (a payment went through). Every event carries a
//! business key as its message KEYS (`order id` for ORDER_CANCEL, `payment
//! id` for PAY_SUCCESS); consumers deduplicate on it, so a message delivered
//! twice, or the same event published twice, is applied once.
//!
//! [`subscribe`] runs a clustering push consumer whose handler applies each
//! message inside one database transaction together with the
//! `consumed_message` row. A handler error rolls the transaction back and
//! the message is retried through the broker (`%RETRY%<group>`), ending in
//! the group's dead-letter queue when the retries run out.

use std::sync::Arc;

use mq_client::{
    async_trait, ClientConfig, ConsumeStatus, Listener, MessageExt, PushConsumer,
    PushConsumerConfig,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::idempotency::record_consumption;
use crate::Db;

/// Topic of order cancellations (the compensation of the order saga).
pub const ORDER_CANCEL: &str = "ORDER_CANCEL";
/// Topic of successful payments.
pub const PAY_SUCCESS: &str = "PAY_SUCCESS";

/// The body of an ORDER_CANCEL message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub user_id: i64,
    pub reason: String,
}

/// The body of a PAY_SUCCESS message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSucceeded {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub user_id: i64,
    pub amount: Decimal,
    pub trade_no: String,
    pub paid_at: i64,
}

/// The key a consumer deduplicates a message on: its first KEYS entry (the
/// business key), else its message id.
pub fn dedup_key(msg: &MessageExt) -> String {
    msg.keys()
        .first()
        .map(|k| (*k).to_owned())
        .unwrap_or_else(|| msg.msg_id())
}

/// Why a message could not be applied; it is retried through the broker.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("message {msg_id} has a bad body: {source}")]
    BadBody {
        msg_id: String,
        source: serde_json::Error,
    },
    /// The event cannot be applied as it is (an amount out of range, ...).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Applies one message's effect inside the consumer's transaction.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// The effect of `msg`. Runs at most once per (group, key) that
    /// commits; an error rolls everything back and the message is retried.
    async fn apply(&self, tx: &mut AnyConnection, msg: &MessageExt) -> Result<(), EventError>;
}

/// Applies `msg` once for `group`: the effect and the consumed-message row
/// commit together. Returns whether the effect ran (false: a duplicate).
pub async fn apply_once(
    db: &Db,
    group: &str,
    handler: &dyn EventHandler,
    msg: &MessageExt,
) -> Result<bool, EventError> {
    let mut tx = db.pool().begin().await?;
    if !record_consumption(&mut tx, group, &dedup_key(msg), crate::now_ms()).await? {
        return Ok(false);
    }
    handler.apply(&mut tx, msg).await?;
    tx.commit().await?;
    Ok(true)
}

/// Starts a clustering consumer of `topic` in `group` whose messages go
/// through [`apply_once`].
pub async fn subscribe(
    db: Db,
    client: ClientConfig,
    group: &str,
    topic: &str,
    handler: Arc<dyn EventHandler>,
) -> mq_client::Result<PushConsumer> {
    let consumer = PushConsumer::new(PushConsumerConfig::new(group), client);
    consumer.subscribe(topic, "*")?;
    let group_name = group.to_owned();
    consumer
        .start(Listener::concurrent(move |msgs: Vec<MessageExt>| {
            let db = db.clone();
            let handler = handler.clone();
            let group = group_name.clone();
            async move {
                for msg in &msgs {
                    match apply_once(&db, &group, handler.as_ref(), msg).await {
                        Ok(applied) => tracing::debug!(%group, key = %dedup_key(msg), applied, "event consumed"),
                        Err(error) => {
                            tracing::warn!(%group, key = %dedup_key(msg), %error, reconsume = msg.reconsume_times, "event failed; retrying later");
                            return ConsumeStatus::ReconsumeLater;
                        }
                    }
                }
                ConsumeStatus::Success
            }
        }))
        .await?;
    Ok(consumer)
}

/// A client instance name unique in this process: `<role>-<pid>-<n>`.
/// Producers and consumers with equal instance names share a client
/// instance, which refuses two consumers of one group; several services in
/// one process (the all-in-one runner, tests) each need their own.
pub fn instance_name(role: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{role}-{}-{n}", std::process::id())
}

/// Parses a JSON message body.
pub fn body<T: for<'de> Deserialize<'de>>(msg: &MessageExt) -> Result<T, EventError> {
    serde_json::from_slice(&msg.body).map_err(|source| EventError::BadBody {
        msg_id: msg.msg_id(),
        source,
    })
}
