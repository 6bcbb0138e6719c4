//! The shop's events on the broker, and exactly-once consumption of them.
//!
//! Topics: [`ORDER_CANCEL`] (a failed or abandoned order: undo what it took),
//! [`PAY_SUCCESS`] (a payment went through) and [`PAY_REFUND`] (a payment
//! for a cancelled order was refunded). Every event carries a
//! business key as its message KEYS (`order id` for ORDER_CANCEL, `payment
//! id` for PAY_SUCCESS); consumers deduplicate on it, so a message delivered
//! twice, or the same event published twice, is applied once.
//!
//! [`subscribe`] runs a clustering push consumer whose handler applies each
//! message inside one database transaction together with the
//! `consumed_message` row. A handler error rolls the transaction back and
//! the message is retried through the broker (`%RETRY%<group>`), ending in
//! the group's dead-letter queue when the retries run out.
//!
//! Events are believed only from their owner: the publisher signs topic,
//! keys and body with its service key ([`sign`], property
//! [`SIGNATURE_PROPERTY`]) and a consumer applies only what its
//! subscription's publisher signed ([`verify`]). A forged or altered event
//! is logged with its message id and acknowledged unapplied, so it does
//! not block its queue.

use std::sync::Arc;

use mq_client::{
    async_trait, ClientConfig, ConsumeStatus, Listener, Message, MessageExt, PushConsumer,
    PushConsumerConfig,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::auth::{Keyring, ServiceKey};
use tracing::Instrument;

use crate::idempotency::record_consumption;
use crate::metrics::{EventResult, Metrics};
use crate::service::Subscription;
use crate::Db;

/// Topic of order cancellations (the compensation of the order saga).
pub const ORDER_CANCEL: &str = "ORDER_CANCEL";
/// Topic of successful payments.
pub const PAY_SUCCESS: &str = "PAY_SUCCESS";
/// Topic of refunded payments: the pay service publishes one (KEYS the
/// payment id) when a payment arrives for an order that was cancelled; the
/// log service records the refund.
pub const PAY_REFUND: &str = "PAY_REFUND";

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

/// The user property that carries an event's signature:
/// `<publisher>:<hex HMAC-SHA256>`.
pub const SIGNATURE_PROPERTY: &str = "SHOP_SIGNATURE";

/// The text an event's signature covers: its topic (the one it was sent
/// to, not a retry topic), keys and body.
fn event_text(topic: &str, keys: &str, body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!(
        "shop-event-v1\n{topic}\n{keys}\n{}",
        crate::auth::service::hex(&digest)
    )
}

/// `message` signed by `key`: set its keys before signing. It also gets
/// the current trace context ([`crate::trace::inject`]), which the
/// signature does not cover: it only correlates log lines, and its
/// consumer checks its form.
pub fn sign(key: &ServiceKey, message: Message) -> Message {
    let keys = message.keys().join(" ");
    let text = event_text(&message.topic, &keys, &message.body);
    let signature = format!("{}:{}", key.name(), key.sign(text.as_bytes()));
    crate::trace::inject(message.with_property(SIGNATURE_PROPERTY, signature))
}

/// Why an event was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Forged {
    #[error("the event is not signed")]
    Unsigned,
    #[error("the event is signed by {0:?}, not by its owner {1:?}")]
    NotTheOwner(String, &'static str),
    #[error("the owner {0:?} is not in trusted_services")]
    OwnerUnknown(&'static str),
    #[error("the signature does not match the event (forged or altered)")]
    BadSignature,
}

/// Whether `msg`, consumed from `topic`, was signed by `publisher` with the
/// key `trusted` holds for it.
pub fn verify(
    trusted: &Keyring,
    publisher: &'static str,
    topic: &str,
    msg: &MessageExt,
) -> Result<(), Forged> {
    let signature = msg.property(SIGNATURE_PROPERTY).ok_or(Forged::Unsigned)?;
    let (signer, mac) = signature.split_once(':').ok_or(Forged::BadSignature)?;
    if signer != publisher {
        return Err(Forged::NotTheOwner(signer.to_owned(), publisher));
    }
    let key = trusted
        .get(publisher)
        .ok_or(Forged::OwnerUnknown(publisher))?;
    let text = event_text(topic, &msg.keys().join(" "), &msg.body);
    if key.verify(text.as_bytes(), mac) {
        Ok(())
    } else {
        Err(Forged::BadSignature)
    }
}

/// What became of one message a consumer was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Its effect committed.
    Applied,
    /// Its key was consumed before: nothing done.
    Duplicate,
    /// Not signed by the subscription's publisher: logged, not applied.
    Rejected(Forged),
}

/// What a consumer of `subscription` does with `msg`: applies it once
/// ([`apply_once`]) if its publisher signed it, else logs it with its
/// message id and leaves it unapplied. An error means it is to be retried.
pub async fn deliver(
    db: &Db,
    trusted: &Keyring,
    subscription: &Subscription,
    msg: &MessageExt,
) -> Result<Delivery, EventError> {
    let (group, topic) = (subscription.group, subscription.topic);
    if let Err(forged) = verify(trusted, subscription.publisher, topic, msg) {
        tracing::warn!(
            group,
            topic,
            msg_id = %msg.msg_id(),
            key = %dedup_key(msg),
            reason = %forged,
            "event rejected, not applied"
        );
        return Ok(Delivery::Rejected(forged));
    }
    if apply_once(db, group, subscription.handler.as_ref(), msg).await? {
        Ok(Delivery::Applied)
    } else {
        Ok(Delivery::Duplicate)
    }
}

/// Starts a clustering consumer of the subscription's topic in its group:
/// each message its publisher signed goes through [`apply_once`]; any other
/// is logged and acknowledged unapplied. Each message is handled in a span
/// (`event`, with the service, group, topic, message id, the trace it
/// carries and its order id) and counted in `metrics`.
pub async fn subscribe(
    db: Db,
    client: ClientConfig,
    subscription: Subscription,
    trusted: Arc<Keyring>,
    metrics: Metrics,
) -> mq_client::Result<PushConsumer> {
    let consumer = PushConsumer::new(PushConsumerConfig::new(subscription.group), client);
    consumer.subscribe(subscription.topic, "*")?;
    let subscription = Arc::new(subscription);
    consumer
        .start(Listener::concurrent(move |msgs: Vec<MessageExt>| {
            let db = db.clone();
            let trusted = trusted.clone();
            let subscription = subscription.clone();
            let metrics = metrics.clone();
            async move {
                for msg in &msgs {
                    if consume(&db, &trusted, &subscription, &metrics, msg)
                        .await
                        .is_err()
                    {
                        return ConsumeStatus::ReconsumeLater;
                    }
                }
                ConsumeStatus::Success
            }
        }))
        .await?;
    Ok(consumer)
}

/// One message of a consumer: delivered in its trace's span, counted, and
/// logged; an error means it is to be retried.
async fn consume(
    db: &Db,
    trusted: &Keyring,
    subscription: &Subscription,
    metrics: &Metrics,
    msg: &MessageExt,
) -> Result<(), ()> {
    let (group, topic) = (subscription.group, subscription.topic);
    let trace = crate::trace::from_message(msg);
    let span = tracing::info_span!(
        "event",
        service = %metrics.service(),
        group = %group,
        topic = %topic,
        msg_id = %msg.msg_id(),
        trace_id = %trace.parent.trace_id_hex(),
        order_id = tracing::field::Empty,
    );
    if let Some(order_id) = trace.order_id {
        span.record("order_id", tracing::field::display(order_id));
    }
    let work = async {
        match deliver(db, trusted, subscription, msg).await {
            Ok(delivery) => {
                let result = match delivery {
                    Delivery::Applied => EventResult::Applied,
                    Delivery::Duplicate => EventResult::Duplicate,
                    Delivery::Rejected(_) => EventResult::Rejected,
                };
                metrics.event(group, topic, result);
                tracing::debug!(key = %dedup_key(msg), ?delivery, "event consumed");
                Ok(())
            }
            Err(error) => {
                metrics.event(group, topic, EventResult::Failed);
                tracing::warn!(key = %dedup_key(msg), %error, reconsume = msg.reconsume_times, "event failed; retrying later");
                Err(())
            }
        }
    };
    crate::trace::scope(trace, work.instrument(span)).await
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
