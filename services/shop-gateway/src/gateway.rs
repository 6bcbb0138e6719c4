//! Paying and notifying: what the fake gateway does when a payment is
//! made.
//!
//! A payment gets a trade number once: paying the same payment again
//! (a second click, a script retrying) re-sends the notification with the
//! same trade number, which the pay service answers as a replay. The
//! notification is `shop_common::api::pay::Notification`, signed as
//! `shop_common::api::pay::signature` defines; it is sent up to `callback_attempts`
//! times, waiting `callback_backoff` before the second attempt and twice as
//! long before each next one, while the merchant does not answer or
//! answers 5xx. A 2xx accepts it; a 4xx refuses it for good.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use shop_common::api::pay::signature::two_decimals;
use shop_common::api::pay::Notification;
use shop_common::client::{Answer, ServiceClient};
use tracing::{info, warn};
use uuid::Uuid;

use crate::config::Config;

/// What is being paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayOrder {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount_cents: i64,
    /// Where the notification goes (the merchant's callback).
    pub notify_url: reqwest::Url,
}

/// How a payment went: the gateway's trade number and what the merchant
/// answered to the notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayOutcome {
    pub trade_no: String,
    /// The HTTP status of the merchant's last answer; `None` when it never
    /// answered (connection refused, timeout).
    pub callback_status: Option<u16>,
    /// Whether the merchant accepted the notification (2xx).
    pub accepted: bool,
    /// How many times the notification was sent.
    pub attempts: u32,
    /// The merchant's last answer, when it was JSON.
    pub callback_answer: Option<serde_json::Value>,
}

/// Why a payment was refused by the gateway itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayRefused {
    #[error("payment {payment_id} was already paid here for order {order_id} and amount {amount}")]
    Conflict {
        payment_id: Uuid,
        order_id: Uuid,
        amount: String,
    },
}

/// A payment made at this gateway.
#[derive(Debug, Clone)]
struct Trade {
    order_id: Uuid,
    amount_cents: i64,
    trade_no: String,
}

/// The gateway: its settings, a client of the merchants' callbacks and the
/// trades made so far (in memory; a restart forgets them, which is fine for
/// a fake).
#[derive(Debug, Clone)]
pub struct Gateway {
    config: Arc<Config>,
    merchant: ServiceClient,
    trades: Arc<Mutex<HashMap<Uuid, Trade>>>,
}

impl Gateway {
    pub fn new(config: Config) -> Gateway {
        // Each notification names its own URL; there is no base URL.
        let merchant = ServiceClient::new("merchant", "", config.call_timeout);
        Gateway {
            config: Arc::new(config),
            merchant,
            trades: Arc::default(),
        }
    }

    /// The trade number of `order`'s payment: the one it already has, or a
    /// new one. A payment id paid before for another order or amount is
    /// refused.
    fn trade_no(&self, order: &PayOrder) -> Result<String, PayRefused> {
        let mut trades = self.trades.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(trade) = trades.get(&order.payment_id) {
            if trade.order_id != order.order_id || trade.amount_cents != order.amount_cents {
                return Err(PayRefused::Conflict {
                    payment_id: order.payment_id,
                    order_id: trade.order_id,
                    amount: two_decimals(trade.amount_cents),
                });
            }
            return Ok(trade.trade_no.clone());
        }
        let trade_no = format!("GW-{}", Uuid::new_v4().simple());
        trades.insert(
            order.payment_id,
            Trade {
                order_id: order.order_id,
                amount_cents: order.amount_cents,
                trade_no: trade_no.clone(),
            },
        );
        Ok(trade_no)
    }

    /// The signed notification of a payment.
    pub fn notification(&self, order: &PayOrder, trade_no: &str) -> Notification {
        Notification::signed(
            &self.config.gateway_secret,
            order.payment_id,
            order.order_id,
            order.amount_cents,
            trade_no,
        )
    }

    /// Pays `order` and notifies the merchant (with retries).
    pub async fn pay(&self, order: &PayOrder) -> Result<PayOutcome, PayRefused> {
        let trade_no = self.trade_no(order)?;
        let body = self.notification(order, &trade_no);
        let mut outcome = PayOutcome {
            trade_no,
            callback_status: None,
            accepted: false,
            attempts: 0,
            callback_answer: None,
        };
        let mut backoff = self.config.callback_backoff;
        for attempt in 1..=self.config.callback_attempts {
            if attempt > 1 {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
            outcome.attempts = attempt;
            match self
                .merchant
                .post_for_answer(order.notify_url.clone(), &body)
                .await
            {
                Ok(Answer { status, json }) => {
                    outcome.callback_status = Some(status.as_u16());
                    outcome.callback_answer = json;
                    if status.is_success() {
                        outcome.accepted = true;
                        info!(payment_id = %order.payment_id, trade_no = %outcome.trade_no, attempt, "notification accepted");
                        return Ok(outcome);
                    }
                    if status.is_client_error() {
                        warn!(payment_id = %order.payment_id, %status, answer = ?outcome.callback_answer, "notification refused");
                        return Ok(outcome);
                    }
                    warn!(payment_id = %order.payment_id, %status, attempt, "notification failed; retrying");
                }
                Err(error) => {
                    outcome.callback_status = None;
                    outcome.callback_answer = None;
                    warn!(payment_id = %order.payment_id, %error, attempt, "notification not delivered; retrying");
                }
            }
        }
        warn!(payment_id = %order.payment_id, attempts = outcome.attempts, "giving up on the notification");
        Ok(outcome)
    }
}
