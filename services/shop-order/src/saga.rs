//! Placing an order: the saga of DESIGN.md section 5.
//!
//! 1. Check the request against the goods, user and coupon services.
//! 2. Compute the amounts.
//! 3. Arm the compensation: an ORDER_CANCEL *half* message whose local
//!    transaction saves the order as PENDING. The half message stays
//!    invisible until the order's fate is known.
//! 4. Reserve stock, coupon and balance (concurrently, each idempotent by
//!    order id in its owner's ledger).
//! 5. All reserved: mark the order CONFIRMED and roll the half message back
//!    (nothing to compensate). Anything failed: mark it CANCELLED and commit
//!    the half message, so the goods, coupon and user services undo what
//!    this order took.
//! 6. If this process dies between 3 and 5, the broker checks back
//!    ([`crate::checker::OrderChecker`]) and the [`sweep`] step cancels
//!    PENDING orders older than the saga timeout.

use mq_client::{LocalTransactionState, Message, TransactionHandle};
use rust_decimal::Decimal;
use serde::Deserialize;
use shop_common::events::{OrderCancelled, ORDER_CANCEL};
use shop_common::money::{from_cents, to_cents};
use shop_common::now_ms;
use tracing::{info, warn};
use uuid::Uuid;

use crate::error::OrderError;
use crate::model::{compute_amounts, Order, OrderStatus};
use crate::remote::CallError;
use crate::{repo, AppState};

/// Units of one goods an order may take at most.
pub const MAX_QUANTITY: i64 = 10_000;

/// The body of `POST /orders`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub user_id: i64,
    pub goods_id: i64,
    pub quantity: i64,
    /// The price the user saw; it must equal the goods' price.
    #[serde(deserialize_with = "shop_common::extract::decimal")]
    pub unit_price: Decimal,
    #[serde(default)]
    pub coupon_id: Option<i64>,
    /// How much of the user's balance to spend (at most the total).
    #[serde(default, deserialize_with = "optional_decimal")]
    pub balance: Option<Decimal>,
}

fn optional_decimal<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "shop_common::extract::decimal")] Decimal);
    Option::<Wrap>::deserialize(d).map(|w| w.map(|Wrap(v)| v))
}

/// The ORDER_CANCEL message of an order.
pub(crate) fn cancel_message(order: &Order, reason: &str) -> Message {
    let body = OrderCancelled {
        order_id: order.id,
        user_id: order.user_id,
        reason: reason.to_owned(),
    };
    Message::new(
        ORDER_CANCEL,
        serde_json::to_vec(&body).expect("the body serializes"),
    )
    .with_tags("cancel")
    .with_keys([order.id.to_string()])
}

fn validate(req: &PlaceOrder) -> Result<(i64, i64), OrderError> {
    if req.user_id <= 0 {
        return Err(OrderError::invalid(
            "invalid_user_id",
            "user_id must be a positive id",
        ));
    }
    if req.goods_id <= 0 {
        return Err(OrderError::invalid(
            "invalid_goods_id",
            "goods_id must be a positive id",
        ));
    }
    if !(1..=MAX_QUANTITY).contains(&req.quantity) {
        return Err(OrderError::invalid(
            "invalid_quantity",
            format!("quantity must be between 1 and {MAX_QUANTITY}"),
        ));
    }
    if req.coupon_id.is_some_and(|c| c <= 0) {
        return Err(OrderError::invalid(
            "invalid_coupon_id",
            "coupon_id must be a positive id",
        ));
    }
    let price = to_cents(req.unit_price)
        .ok()
        .filter(|c| *c >= 0)
        .ok_or_else(|| {
            OrderError::invalid(
                "invalid_price",
                "unit_price must be a non-negative amount in whole cents",
            )
        })?;
    let balance = match req.balance {
        None => 0,
        Some(b) => to_cents(b).ok().filter(|c| *c >= 0).ok_or_else(|| {
            OrderError::invalid(
                "invalid_balance",
                "balance must be a non-negative amount in whole cents",
            )
        })?,
    };
    Ok((price, balance))
}

/// Places an order; returns it CONFIRMED, or the reason it was refused or
/// cancelled.
pub async fn place_order(state: &AppState, req: PlaceOrder) -> Result<Order, OrderError> {
    let (price_cents, balance_cents) = validate(&req)?;

    // 1. Checks, before anything is saved.
    let remote = &state.remote;
    let coupon = async {
        match req.coupon_id {
            Some(id) => remote.coupon(id).await.map(Some),
            None => Ok(None),
        }
    };
    let (goods, user, coupon) =
        tokio::join!(remote.goods(req.goods_id), remote.user(req.user_id), coupon);
    let goods = goods.map_err(OrderError::from_check)?;
    let user = user.map_err(OrderError::from_check)?;
    let coupon = coupon.map_err(OrderError::from_check)?;
    let goods_price = to_cents(goods.price).map_err(|e| {
        OrderError::Unavailable(CallError::Unavailable {
            service: "goods",
            reason: e.to_string(),
        })
    })?;
    if goods_price != price_cents {
        return Err(OrderError::Rejected {
            code: "price_mismatch".into(),
            status: axum::http::StatusCode::BAD_REQUEST,
            message: format!(
                "the price of goods {} is {}, not {}",
                goods.id, goods.price, req.unit_price
            ),
        });
    }
    if req.quantity > goods.stock {
        return Err(OrderError::Rejected {
            code: "insufficient_stock".into(),
            status: axum::http::StatusCode::CONFLICT,
            message: format!(
                "goods {} has {} in stock, {} requested",
                goods.id, goods.stock, req.quantity
            ),
        });
    }
    let coupon_cents = match &coupon {
        None => None,
        Some(c) if c.user_id != req.user_id => {
            return Err(OrderError::Rejected {
                code: "coupon_not_owned".into(),
                status: axum::http::StatusCode::FORBIDDEN,
                message: format!("coupon {} belongs to another user", c.id),
            })
        }
        Some(c) if c.status != "unused" => {
            return Err(OrderError::Rejected {
                code: "coupon_used".into(),
                status: axum::http::StatusCode::CONFLICT,
                message: format!("coupon {} is already used", c.id),
            })
        }
        Some(c) => Some(to_cents(c.amount).unwrap_or(0)),
    };
    let user_balance = to_cents(user.balance).unwrap_or(0);
    if balance_cents > user_balance {
        return Err(OrderError::Rejected {
            code: "insufficient_balance".into(),
            status: axum::http::StatusCode::CONFLICT,
            message: format!(
                "user {} has a balance of {}, {} requested",
                user.id,
                user.balance,
                from_cents(balance_cents)
            ),
        });
    }

    // 2. Amounts.
    let amounts = compute_amounts(
        price_cents,
        req.quantity,
        state.config.shipping_fee_cents,
        state.config.free_shipping_threshold_cents,
        coupon_cents,
        balance_cents,
    )
    .ok_or_else(|| OrderError::invalid("invalid_quantity", "the order total is out of range"))?;
    let now = now_ms();
    let order = Order {
        id: Uuid::new_v4(),
        user_id: req.user_id,
        goods_id: req.goods_id,
        quantity: req.quantity,
        unit_price_cents: price_cents,
        goods_amount_cents: amounts.goods_amount_cents,
        shipping_fee_cents: amounts.shipping_fee_cents,
        coupon_id: req.coupon_id,
        coupon_discount_cents: amounts.coupon_discount_cents,
        balance_used_cents: amounts.balance_used_cents,
        amount_to_pay_cents: amounts.amount_to_pay_cents,
        status: OrderStatus::Pending,
        cancel_reason: None,
        created_at: now,
        updated_at: now,
    };

    // 3. Arm the compensation: the half message, with saving the order as
    // its local transaction.
    let db = state.db.clone();
    let pending = order.clone();
    let armed = state
        .producer
        .send_in_transaction(cancel_message(&order, "saga failed"), move |_| async move {
            match repo::insert_pending(&db, &pending).await {
                // Decided later by this saga (or by a check-back).
                Ok(()) => LocalTransactionState::Unknown,
                Err(error) => {
                    warn!(order_id = %pending.id, %error, "saving a pending order failed");
                    LocalTransactionState::Rollback
                }
            }
        })
        .await?;
    if armed.state == LocalTransactionState::Rollback {
        return Err(OrderError::Database(sqlx::Error::Protocol(
            "the order could not be saved".into(),
        )));
    }
    info!(order_id = %order.id, msg_id = %armed.handle.msg_id, "order pending, compensation armed");

    // 4. Reservations.
    let stock = remote.reserve_stock(order.goods_id, order.id, order.quantity);
    let coupon = async {
        match order.coupon_id {
            Some(id) => remote.use_coupon(id, order.id, order.user_id).await,
            None => Ok(()),
        }
    };
    let balance = async {
        if order.balance_used_cents > 0 {
            remote
                .reserve_balance(
                    order.user_id,
                    order.id,
                    from_cents(order.balance_used_cents),
                )
                .await
        } else {
            Ok(())
        }
    };
    let (stock, coupon, balance) = tokio::join!(stock, coupon, balance);
    let failure = [stock, coupon, balance].into_iter().find_map(Result::err);

    // 5. Confirm, or cancel and compensate.
    match failure {
        None => {
            if repo::transition_db(
                &state.db,
                order.id,
                OrderStatus::Pending,
                OrderStatus::Confirmed,
                None,
            )
            .await?
            {
                end(state, &armed.handle, LocalTransactionState::Rollback).await;
                info!(order_id = %order.id, "order confirmed");
                Ok(Order {
                    status: OrderStatus::Confirmed,
                    ..order
                })
            } else {
                // The check-back or the sweeper gave up on this order first.
                end(state, &armed.handle, LocalTransactionState::Commit).await;
                Err(OrderError::Cancelled {
                    order_id: order.id,
                    code: "saga_timeout".into(),
                    reason: "the order took longer than the saga timeout".into(),
                })
            }
        }
        Some(error) => {
            let reason = error.to_string();
            repo::transition_db(
                &state.db,
                order.id,
                OrderStatus::Pending,
                OrderStatus::Cancelled,
                Some(&reason),
            )
            .await?;
            end(state, &armed.handle, LocalTransactionState::Commit).await;
            info!(order_id = %order.id, %reason, "order cancelled, compensation released");
            Err(OrderError::Cancelled {
                order_id: order.id,
                code: error.code().to_owned(),
                reason,
            })
        }
    }
}

/// Ends the half message; a lost END_TRANSACTION is resolved by the
/// check-back, which reads the order's status.
async fn end(state: &AppState, handle: &TransactionHandle, outcome: LocalTransactionState) {
    if let Err(error) = state.producer.end_transaction(handle, outcome).await {
        warn!(msg_id = %handle.msg_id, %error, "END_TRANSACTION failed; the check-back will settle it");
    }
}

/// One step of the sweeper: PENDING orders older than the saga timeout
/// (their saga died and the broker gave up checking) are cancelled and an
/// ORDER_CANCEL is published for them. Returns how many were cancelled.
pub async fn sweep(state: &AppState, now: i64) -> Result<usize, OrderError> {
    let deadline = now - state.config.saga_timeout.as_millis() as i64;
    let stale = repo::pending_before(&state.db, deadline, 100).await?;
    let mut cancelled = 0;
    for order in stale {
        if repo::transition_db(
            &state.db,
            order.id,
            OrderStatus::Pending,
            OrderStatus::Cancelled,
            Some("saga timeout"),
        )
        .await?
        {
            state
                .producer
                .producer()
                .send(cancel_message(&order, "saga timeout"))
                .await?;
            warn!(order_id = %order.id, "abandoned order cancelled by the sweeper");
            cancelled += 1;
        }
    }
    Ok(cancelled)
}
