//! Paying an order: DESIGN.md section 5, "Pay", with the order deciding
//! whether a payment is booked or refunded.
//!
//! 1. [`create_payment`]: the caller's own CONFIRMED order with something
//!    to pay gets one UNPAID payment (the same one however often it is
//!    asked for), registered at the gateway with a request signed with the
//!    merchant key, and a URL at the gateway.
//! 2. [`handle_callback`]: the gateway's notification is checked
//!    (signature first, then payment, order and amount). Then the order
//!    decides, atomically on its side ([`crate::remote::OrderClient::settle`]):
//!    - it is PAID by this payment now: one transactional message, the
//!      PAY_SUCCESS half message is stored, its local transaction marks
//!      the payment PAID (a single conditional UPDATE), and the message is
//!      committed when that UPDATE changed the row, rolled back when the
//!      payment was already PAID;
//!    - it is CANCELLED: the same with a PAY_REFUND half message whose
//!      local transaction marks the payment REFUNDED. The order stays
//!      CANCELLED, no PAY_SUCCESS is published, so no points are credited;
//!      the log records the refund.
//!
//!    A replayed notification is answered as the first was and publishes
//!    nothing.
//! 3. If this process dies between a half message and its end, the broker
//!    asks [`crate::checker::PayChecker`], which reads the payment.

use std::sync::{Arc, Mutex};

use mq_client::{LocalTransactionState, Message, SendResult, TransactionProducer};
use shop_common::api::order::OrderStatus;
pub use shop_common::api::pay::Notification;
use shop_common::auth::{Principal, ServiceKey};
use shop_common::events::{PaymentSucceeded, PAY_SUCCESS};
use shop_common::money::{from_cents, to_cents};
use shop_common::now_ms;
use tracing::{info, warn};
use uuid::Uuid;

use crate::config::Config;
use crate::error::PayError;
use crate::events::{PaymentRefunded, PAY_REFUND};
use crate::remote::{OrderLookupError, RegisterPayment, Settled};
use crate::repo::{self, Payment, PaymentStatus};
use crate::signature::{canonical, two_decimals, valid_trade_no, verify, MAX_TRADE_NO_LEN};
use crate::AppState;

/// The order status a payment can be created for.
pub const PAYABLE_STATUS: OrderStatus = OrderStatus::Confirmed;

fn order_error(error: OrderLookupError) -> PayError {
    match error {
        OrderLookupError::NotFound(id) => PayError::OrderNotFound(id),
        OrderLookupError::Refused { code, message } => PayError::OrderRefused { code, message },
        OrderLookupError::Unavailable(detail) => PayError::OrderServiceUnavailable(detail),
    }
}

/// Returns the payment of `order_id`, an order of the caller's, creating
/// it when the order has none: `(payment, true)` when it was created by
/// this call. Another user's order answers as if it did not exist. An
/// unpaid payment is (again) registered at the gateway before it is
/// answered, so a registration that failed once is made up for.
pub async fn create_payment(
    state: &AppState,
    caller: &Principal,
    order_id: Uuid,
) -> Result<(Payment, bool), PayError> {
    let (payment, created) = match repo::by_order(&state.db, order_id).await? {
        Some(existing) if caller.may_see(existing.user_id) => (existing, false),
        Some(_) => return Err(PayError::OrderNotFound(order_id)),
        None => {
            let order = state.orders.order(order_id).await.map_err(order_error)?;
            if !caller.may_see(order.user_id) {
                return Err(PayError::OrderNotFound(order_id));
            }
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
                refunded_at: None,
            };
            let (payment, created) = repo::insert_or_get(&state.db, &payment).await?;
            if created {
                info!(payment_id = %payment.id, %order_id, amount_cents, "payment created");
            }
            (payment, created)
        }
    };
    if payment.status == PaymentStatus::Unpaid {
        state
            .gateway
            .register(&RegisterPayment {
                payment_id: payment.id,
                order_id: payment.order_id,
                amount: from_cents(payment.amount_cents),
            })
            .await
            .map_err(|e| PayError::GatewayUnavailable(e.to_string()))?;
    }
    Ok((payment, created))
}

/// Where the user pays: `{gateway_url}/pay/{payment_id}` (the gateway
/// knows the payment from its registration).
pub fn pay_url(config: &Config, payment: &Payment) -> Option<String> {
    let url = reqwest::Url::parse(&format!("{}/pay/{}", config.gateway_url, payment.id)).ok()?;
    Some(url.into())
}

/// How an accepted notification was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// This notification marked the payment PAID and PAY_SUCCESS went out.
    Paid,
    /// The order was cancelled: this notification marked the payment
    /// REFUNDED and PAY_REFUND went out.
    Refunded,
    /// The payment was already PAID (or REFUNDED) with this trade number:
    /// nothing new.
    Replayed(PaymentStatus),
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
    // A verified callback of this order's payment: its lines, the call to
    // the order service and PAY_SUCCESS name the order.
    shop_common::trace::set_order_id(payment.order_id);
    if payment.amount_cents != amount_cents {
        return Err(PayError::AmountMismatch {
            payment_id: payment.id,
            expected: two_decimals(payment.amount_cents),
            got: two_decimals(amount_cents),
        });
    }
    if payment.status != PaymentStatus::Unpaid {
        return replay(&payment, &n.trade_no);
    }
    // The order decides: PAID by this payment, or CANCELLED.
    let settled = state
        .orders
        .settle(
            payment.order_id,
            payment.id,
            from_cents(payment.amount_cents),
        )
        .await
        .map_err(order_error)?;
    let at = now_ms();
    let (changed, outcome) = match settled {
        Settled::Paid => {
            let message = pay_success_message(&state.auth.key, &payment, &n.trade_no, at);
            let changed = match &state.producer {
                Some(producer) => {
                    let (trade, payment_id) = (n.trade_no.clone(), payment.id);
                    in_transaction(state, producer, message, move |db, msg_id| async move {
                        repo::mark_paid_db(&db, payment_id, &trade, Some(&msg_id), at).await
                    })
                    .await?
                }
                None => {
                    warn!(payment_id = %payment.id, "no broker configured: payment marked PAID, PAY_SUCCESS not published");
                    repo::mark_paid_db(&state.db, payment.id, &n.trade_no, None, at).await?
                }
            };
            (changed, CallbackOutcome::Paid)
        }
        Settled::Cancelled => {
            let message = refund_message(&state.auth.key, &payment, &n.trade_no, at);
            let changed = match &state.producer {
                Some(producer) => {
                    let (trade, payment_id) = (n.trade_no.clone(), payment.id);
                    in_transaction(state, producer, message, move |db, msg_id| async move {
                        repo::mark_refunded_db(&db, payment_id, &trade, Some(&msg_id), at).await
                    })
                    .await?
                }
                None => {
                    warn!(payment_id = %payment.id, "no broker configured: payment marked REFUNDED, PAY_REFUND not published");
                    repo::mark_refunded_db(&state.db, payment.id, &n.trade_no, None, at).await?
                }
            };
            (changed, CallbackOutcome::Refunded)
        }
    };
    if changed {
        match outcome {
            CallbackOutcome::Refunded => {
                warn!(payment_id = %payment.id, order_id = %payment.order_id, trade_no = %n.trade_no, "payment for a cancelled order refunded")
            }
            _ => {
                info!(payment_id = %payment.id, order_id = %payment.order_id, trade_no = %n.trade_no, "payment paid")
            }
        }
        return Ok(outcome);
    }
    // A concurrent notification marked it first: answer as for a replay.
    let now = repo::get(&state.db, payment.id)
        .await?
        .ok_or(PayError::PaymentNotFound(payment.id))?;
    replay(&now, &n.trade_no)
}

/// A notification for a PAID or REFUNDED payment: the same trade number
/// is a replay (answered as the first, nothing new); another one is a
/// second payment at the gateway, refused.
fn replay(payment: &Payment, trade_no: &str) -> Result<CallbackOutcome, PayError> {
    if payment.trade_no.as_deref() == Some(trade_no) {
        info!(payment_id = %payment.id, "replayed callback; nothing new");
        Ok(CallbackOutcome::Replayed(payment.status))
    } else {
        warn!(payment_id = %payment.id, trade_no, "a second trade number for a paid payment refused");
        Err(PayError::AlreadyPaid {
            payment_id: payment.id,
        })
    }
}

/// The PAY_SUCCESS message of a payment, signed with `key` (the pay
/// service's): KEYS = payment id, so consumers apply it once however
/// often it is delivered or published.
pub fn pay_success_message(
    key: &ServiceKey,
    payment: &Payment,
    trade_no: &str,
    paid_at: i64,
) -> Message {
    let event = PaymentSucceeded {
        payment_id: payment.id,
        order_id: payment.order_id,
        user_id: payment.user_id,
        amount: from_cents(payment.amount_cents),
        trade_no: trade_no.to_owned(),
        paid_at,
    };
    let message = Message::new(
        PAY_SUCCESS,
        serde_json::to_vec(&event).expect("the body serializes"),
    )
    .with_tags("paid")
    .with_keys([payment.id.to_string()]);
    shop_common::events::sign(key, message)
}

/// The PAY_REFUND message of a payment, signed with `key`: KEYS = payment
/// id.
pub fn refund_message(
    key: &ServiceKey,
    payment: &Payment,
    trade_no: &str,
    refunded_at: i64,
) -> Message {
    let event = PaymentRefunded {
        payment_id: payment.id,
        order_id: payment.order_id,
        user_id: payment.user_id,
        amount: from_cents(payment.amount_cents),
        trade_no: trade_no.to_owned(),
        refunded_at,
        reason: "order_cancelled".to_owned(),
    };
    let message = Message::new(
        PAY_REFUND,
        serde_json::to_vec(&event).expect("the body serializes"),
    )
    .with_tags("refunded")
    .with_keys([payment.id.to_string()]);
    shop_common::events::sign(key, message)
}

/// Sends `message` as a half message whose local transaction is `local`
/// (a conditional UPDATE of the payment, given the database and the half
/// message's unique id);
/// returns whether the local transaction changed the row. The message is
/// committed when it did, rolled back when it did not, and left to the
/// check-back when the UPDATE failed.
async fn in_transaction<F, Fut>(
    state: &AppState,
    producer: &TransactionProducer,
    message: Message,
    local: F,
) -> Result<bool, PayError>
where
    F: FnOnce(shop_common::Db, String) -> Fut,
    Fut: std::future::Future<Output = Result<bool, sqlx::Error>>,
{
    let slot: Arc<Mutex<Option<Result<bool, sqlx::Error>>>> = Arc::default();
    let db = state.db.clone();
    let result_slot = slot.clone();
    let topic = message.topic.clone();
    let sent = producer
        .send_in_transaction(message, move |send: SendResult| async move {
            let result = local(db, send.msg_id.clone()).await;
            let outcome = match &result {
                Ok(true) => LocalTransactionState::Commit,
                Ok(false) => LocalTransactionState::Rollback,
                // The UPDATE may or may not have committed: the
                // check-back reads the payment and decides.
                Err(error) => {
                    warn!(%topic, %error, "updating the payment failed; left to the check-back");
                    LocalTransactionState::Unknown
                }
            };
            *result_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
            outcome
        })
        .await?;
    let local = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    match local {
        Some(result) => Ok(result?),
        None => Err(PayError::HalfMessageNotStored(format!(
            "{:?}",
            sent.send.status
        ))),
    }
}
