//! What the fake gateway does, as a real one would.
//!
//! 1. The merchant (the shop's pay service) registers a payment with a
//!    signed server-to-server request ([`Gateway::register`]): payment id,
//!    order id, amount. Only registered payments can be paid here, so the
//!    gateway signs notifications only for payments the pay service
//!    created through it.
//! 2. A person pays it (the pay page, or `POST /api/pay`):
//!    [`Gateway::pay`] gives it a trade number once, written durably
//!    ([`crate::store`]) before the merchant hears of it, so paying again,
//!    before or after a restart of the gateway, re-sends the same trade
//!    number, which the pay service answers as a replay.
//! 3. The notification (`shop_common::api::pay::Notification`, signed as
//!    `shop_common::api::pay::signature` defines) goes to the one notify
//!    URL registered for the merchant in the configuration, up to
//!    `callback_attempts` times, waiting `callback_backoff` before the
//!    second attempt and twice as long before each next one, while the
//!    merchant does not answer or answers 5xx. A 2xx accepts it; a 4xx
//!    refuses it for good. What the merchant answered stays between the
//!    gateway and the merchant: the payer learns only whether it was
//!    accepted.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use shop_common::api::pay::signature::two_decimals;
use shop_common::api::pay::Notification;
use shop_common::client::{Answer, ServiceClient};
use tracing::{info, warn};
use uuid::Uuid;

use crate::config::Config;
use crate::store::{StoreError, Trade, TradeStore};

/// What the merchant registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayOrder {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount_cents: i64,
}

/// How a payment went: the gateway's trade number and whether the merchant
/// accepted the notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PayOutcome {
    pub trade_no: String,
    /// The HTTP status of the merchant's last answer; `None` when it never
    /// answered (connection refused, timeout).
    pub callback_status: Option<u16>,
    /// Whether the merchant accepted the notification (2xx).
    pub accepted: bool,
    /// How many times the notification was sent.
    pub attempts: u32,
}

/// Why the gateway itself refused.
#[derive(Debug, thiserror::Error)]
pub enum PayRefused {
    #[error("payment {payment_id} is registered here for order {order_id} and amount {amount}")]
    Conflict {
        payment_id: Uuid,
        order_id: Uuid,
        amount: String,
    },
    #[error("payment {0} was not registered by the merchant")]
    NotRegistered(Uuid),
    #[error("notifications go only to the merchant's registered notify URL")]
    NotifyUrlNotRegistered,
    #[error("the gateway cannot keep its trades: {0}")]
    Store(#[from] StoreError),
}

/// The gateway: its settings, a client of the merchant's callback and the
/// trades.
#[derive(Debug, Clone)]
pub struct Gateway {
    config: Arc<Config>,
    merchant: ServiceClient,
    store: TradeStore,
}

fn conflict(trade: &Trade) -> PayRefused {
    PayRefused::Conflict {
        payment_id: trade.payment_id,
        order_id: trade.order_id,
        amount: two_decimals(trade.amount_cents),
    }
}

impl Gateway {
    /// The gateway over the trades in `config.data_dir`.
    pub fn open(config: Config) -> Result<Gateway, StoreError> {
        let store = TradeStore::open(&config.data_dir)?;
        // Each notification goes to the registered URL in full.
        let merchant = ServiceClient::new("merchant", "", config.call_timeout);
        Ok(Gateway {
            config: Arc::new(config),
            merchant,
            store,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs a store change off the async threads (it fsyncs).
    async fn update<T: Send + 'static>(
        &self,
        payment_id: Uuid,
        change: impl FnOnce(Option<&Trade>) -> (Option<Trade>, T) + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.update(payment_id, change))
            .await
            .expect("a store update does not panic")
    }

    /// Registers `order` for the merchant; the same registration again is
    /// answered as the first (with its trade number if it was paid). The
    /// same payment id for another order or amount is refused.
    pub async fn register(&self, order: &PayOrder) -> Result<Trade, PayRefused> {
        let order = order.clone();
        self.update(order.payment_id, move |known| match known {
            Some(trade)
                if trade.order_id == order.order_id && trade.amount_cents == order.amount_cents =>
            {
                (None, Ok(trade.clone()))
            }
            Some(trade) => (None, Err(conflict(trade))),
            None => {
                let trade = Trade {
                    payment_id: order.payment_id,
                    order_id: order.order_id,
                    amount_cents: order.amount_cents,
                    trade_no: None,
                };
                (Some(trade.clone()), Ok(trade))
            }
        })
        .await?
    }

    /// The registered payment `payment_id`.
    pub fn registered(&self, payment_id: Uuid) -> Result<Trade, PayRefused> {
        self.store
            .get(payment_id)
            .ok_or(PayRefused::NotRegistered(payment_id))
    }

    /// The trade number of a registered payment: the one it has, or a new
    /// one, written before it is used.
    async fn trade_no(&self, payment_id: Uuid) -> Result<(Trade, String), PayRefused> {
        self.update(payment_id, move |known| match known {
            None => (None, Err(PayRefused::NotRegistered(payment_id))),
            Some(trade) => match &trade.trade_no {
                Some(no) => (None, Ok((trade.clone(), no.clone()))),
                None => {
                    let no = format!("GW-{}", Uuid::new_v4().simple());
                    let paid = Trade {
                        trade_no: Some(no.clone()),
                        ..trade.clone()
                    };
                    (Some(paid.clone()), Ok((paid, no)))
                }
            },
        })
        .await?
    }

    /// The signed notification of a trade.
    pub fn notification(&self, trade: &Trade, trade_no: &str) -> Notification {
        Notification::signed(
            &self.config.gateway_secret,
            trade.payment_id,
            trade.order_id,
            trade.amount_cents,
            trade_no,
        )
    }

    /// Pays the registered payment `payment_id` and notifies the merchant
    /// (with retries).
    pub async fn pay(&self, payment_id: Uuid) -> Result<PayOutcome, PayRefused> {
        let (trade, trade_no) = self.trade_no(payment_id).await?;
        let body = self.notification(&trade, &trade_no);
        let mut outcome = PayOutcome {
            trade_no,
            callback_status: None,
            accepted: false,
            attempts: 0,
        };
        let url = self.config.merchant_notify_url.clone();
        let mut backoff = self.config.callback_backoff;
        for attempt in 1..=self.config.callback_attempts {
            if attempt > 1 {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
            outcome.attempts = attempt;
            match self.merchant.post_for_answer(url.clone(), &body).await {
                Ok(Answer { status, json }) => {
                    outcome.callback_status = Some(status.as_u16());
                    if status.is_success() {
                        outcome.accepted = true;
                        info!(%payment_id, trade_no = %outcome.trade_no, attempt, "notification accepted");
                        return Ok(outcome);
                    }
                    if status.is_client_error() {
                        warn!(%payment_id, %status, answer = ?json, "notification refused");
                        return Ok(outcome);
                    }
                    warn!(%payment_id, %status, attempt, "notification failed; retrying");
                }
                Err(error) => {
                    outcome.callback_status = None;
                    warn!(%payment_id, %error, attempt, "notification not delivered; retrying");
                }
            }
        }
        warn!(%payment_id, attempts = outcome.attempts, "giving up on the notification");
        Ok(outcome)
    }
}
