//! Paying an order: DESIGN.md section 5, "Pay".
//!
//! 1. [`create_payment`]: a CONFIRMED order with something to pay gets one
//!    UNPAID payment (the same one however often it is asked for) and a URL
//!    at the gateway.
//! 2. [`handle_callback`]: the gateway's notification is checked (signature
//!    first, then payment, order and amount); then one transactional
//!    message: the PAY_SUCCESS half message is stored, its local
//!    transaction marks the payment PAID (a single conditional UPDATE), and
//!    the message is committed when that UPDATE changed the row, rolled
//!    back when the payment was already PAID. A replayed notification is
//!    answered as the first was and publishes nothing.
//! 3. If this process dies between the half message and its end, the broker
//!    asks [`crate::checker::PayChecker`], which reads the payment.

use std::sync::{Arc, Mutex};

use mq_client::{LocalTransactionState, Message, SendResult, TransactionProducer};
use shop_common::api::order::OrderStatus;
pub use shop_common::api::pay::Notification;
use shop_common::events::{PaymentSucceeded, PAY_SUCCESS};
use shop_common::money::{from_cents, to_cents};
use shop_common::now_ms;
use tracing::{info, warn};
use uuid::Uuid;

use crate::config::Config;
use crate::error::PayError;
use crate::remote::OrderLookupError;
use crate::repo::{self, Payment, PaymentStatus};
use crate::signature::{canonical, two_decimals, valid_trade_no, verify, MAX_TRADE_NO_LEN};
use crate::AppState;

/// The order status a payment can be created for.
pub const PAYABLE_STATUS: OrderStatus = OrderStatus::Confirmed;

/// Returns the payment of `order_id`, creating it when the order has none:
/// `(payment, true)` when it was created by this call. An existing payment
/// is returned without asking the order service again.
pub async fn create_payment(state: &AppState, order_id: Uuid) -> Result<(Payment, bool), PayError> {
    if let Some(existing) = repo::by_order(&state.db, order_id).await? {
        return Ok((existing, false));
    }
    let order = state.orders.order(order_id).await.map_err(|e| match e {
        OrderLookupError::NotFound(id) => PayError::OrderNotFound(id),
        OrderLookupError::Unavailable(detail) => PayError::OrderServiceUnavailable(detail),
    })?;
    if order.status != PAYABLE_STATUS {
        return Err(PayError::OrderNotPayable {
            order_id,
            status: order.status,
        });
    }
    let amount_cents = to_cents(order.amount_to_pay)
        .ok()
        .filter(|c| *c >= 0)
        .ok_or_else(|| {
            PayError::OrderServiceUnavailable(format!(
                "order {order_id} has an unusable amount to pay {}",
                order.amount_to_pay
            ))
        })?;
    if amount_cents == 0 {
        return Err(PayError::NothingToPay(order_id));
    }
    let payment = Payment {
        id: Uuid::new_v4(),
        order_id,
        user_id: order.user_id,
        amount_cents,
        status: PaymentStatus::Unpaid,
        trade_no: None,
        pay_msg_id: None,
        created_at: now_ms(),
        paid_at: None,
    };
    let (payment, created) = repo::insert_or_get(&state.db, &payment).await?;
    if created {
        info!(payment_id = %payment.id, %order_id, amount_cents, "payment created");
    }
    Ok((payment, created))
}

/// Where the user pays: `{gateway_url}/pay/{payment_id}?order_id=..&amount=..&notify_url=..`,
/// the query form-encoded; `notify_url` is this service's callback.
pub fn pay_url(config: &Config, payment: &Payment) -> Option<String> {
    let mut url =
        reqwest::Url::parse(&format!("{}/pay/{}", config.gateway_url, payment.id)).ok()?;
    url.query_pairs_mut()
        .append_pair("order_id", &payment.order_id.to_string())
        .append_pair("amount", &two_decimals(payment.amount_cents))
        .append_pair("notify_url", &config.callback_url());
    Some(url.into())
}

/// How an accepted notification was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// This notification marked the payment PAID and PAY_SUCCESS went out.
    Paid,
    /// The payment was already PAID with this trade number: nothing new.
    Replayed,
}

/// Checks and applies a notification. Nothing changes unless every check
/// passes; see the module documentation for the order of the checks.
pub async fn handle_callback(
    state: &AppState,
    n: &Notification,
) -> Result<CallbackOutcome, PayError> {
    let amount_cents = to_cents(n.amount).ok().filter(|c| *c >= 0).ok_or_else(|| {
        PayError::invalid(
            "invalid_amount",
            "amount must be a non-negative amount in whole cents",
        )
    })?;
    if !valid_trade_no(&n.trade_no) {
        return Err(PayError::invalid(
            "invalid_trade_no",
            format!("trade_no must be 1 to {MAX_TRADE_NO_LEN} letters, digits, '-' or '_'"),
        ));
    }
    let text = canonical(n.payment_id, n.order_id, amount_cents, &n.trade_no);
    if !verify(state.config.gateway_secret.expose(), &text, &n.signature) {
        warn!(payment_id = %n.payment_id, "callback with an invalid signature refused");
        return Err(PayError::InvalidSignature);
    }
    let payment = repo::get(&state.db, n.payment_id)
        .await?
        .ok_or(PayError::PaymentNotFound(n.payment_id))?;
    if payment.order_id != n.order_id {
        return Err(PayError::OrderMismatch {
            payment_id: payment.id,
        });
    }
    if payment.amount_cents != amount_cents {
        return Err(PayError::AmountMismatch {
            payment_id: payment.id,
            expected: two_decimals(payment.amount_cents),
            got: two_decimals(amount_cents),
        });
    }
    if payment.status == PaymentStatus::Paid {
        return replay(&payment, &n.trade_no);
    }
    let paid_at = now_ms();
    let changed = match &state.producer {
        Some(producer) => publish_paid(state, producer, &payment, &n.trade_no, paid_at).await?,
        None => {
            warn!(payment_id = %payment.id, "no broker configured: payment marked PAID, PAY_SUCCESS not published");
            repo::mark_paid_db(&state.db, payment.id, &n.trade_no, None, paid_at).await?
        }
    };
    if changed {
        info!(payment_id = %payment.id, order_id = %payment.order_id, trade_no = %n.trade_no, "payment paid");
        return Ok(CallbackOutcome::Paid);
    }
    // A concurrent notification marked it first: answer as for a replay.
    let now = repo::get(&state.db, payment.id)
        .await?
        .ok_or(PayError::PaymentNotFound(payment.id))?;
    replay(&now, &n.trade_no)
}

/// A notification for a PAID payment: the same trade number is a replay
/// (success, nothing new); another one is a second payment at the gateway,
/// refused.
fn replay(payment: &Payment, trade_no: &str) -> Result<CallbackOutcome, PayError> {
    if payment.trade_no.as_deref() == Some(trade_no) {
        info!(payment_id = %payment.id, "replayed callback; nothing new");
        Ok(CallbackOutcome::Replayed)
    } else {
        warn!(payment_id = %payment.id, trade_no, "a second trade number for a paid payment refused");
        Err(PayError::AlreadyPaid {
            payment_id: payment.id,
        })
    }
}

/// The PAY_SUCCESS message of a payment: KEYS = payment id, so consumers
/// apply it once however often it is delivered or published.
pub fn pay_success_message(payment: &Payment, trade_no: &str, paid_at: i64) -> Message {
    let event = PaymentSucceeded {
        payment_id: payment.id,
        order_id: payment.order_id,
        user_id: payment.user_id,
        amount: from_cents(payment.amount_cents),
        trade_no: trade_no.to_owned(),
        paid_at,
    };
    Message::new(
        PAY_SUCCESS,
        serde_json::to_vec(&event).expect("the body serializes"),
    )
    .with_tags("paid")
    .with_keys([payment.id.to_string()])
}

/// Sends PAY_SUCCESS as a half message whose local transaction marks the
/// payment PAID; returns whether the local transaction changed the row.
async fn publish_paid(
    state: &AppState,
    producer: &TransactionProducer,
    payment: &Payment,
    trade_no: &str,
    paid_at: i64,
) -> Result<bool, PayError> {
    let local: Arc<Mutex<Option<Result<bool, sqlx::Error>>>> = Arc::default();
    let db = state.db.clone();
    let result_slot = local.clone();
    let payment_id = payment.id;
    let trade = trade_no.to_owned();
    let sent = producer
        .send_in_transaction(
            pay_success_message(payment, trade_no, paid_at),
            move |send: SendResult| async move {
                let result =
                    repo::mark_paid_db(&db, payment_id, &trade, Some(&send.msg_id), paid_at).await;
                let outcome = match &result {
                    Ok(true) => LocalTransactionState::Commit,
                    Ok(false) => LocalTransactionState::Rollback,
                    // The UPDATE may or may not have committed: the
                    // check-back reads the payment and decides.
                    Err(error) => {
                        warn!(%payment_id, %error, "marking the payment PAID failed; left to the check-back");
                        LocalTransactionState::Unknown
                    }
                };
                *result_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                outcome
            },
        )
        .await?;
    let local = local.lock().unwrap_or_else(|e| e.into_inner()).take();
    match local {
        Some(result) => Ok(result?),
        None => Err(PayError::HalfMessageNotStored(format!(
            "{:?}",
            sent.send.status
        ))),
    }
}
