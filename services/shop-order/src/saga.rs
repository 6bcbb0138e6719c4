//! Placing an order: the saga of DESIGN.md section 5.
//!
//! 1. Ask the goods, user and coupon services.
//! 2. Check the request against their answers and compute the amounts
//!    ([`precheck`], a pure function).
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
use shop_common::api::coupon::{CouponStatus, CouponView};
use shop_common::api::goods::GoodsView;
use shop_common::api::user::UserView;
use shop_common::auth::ServiceKey;
use shop_common::events::{OrderCancelled, ORDER_CANCEL};
use shop_common::money::to_cents;
use shop_common::now_ms;
use tracing::{info, warn};
use uuid::Uuid;

use crate::error::OrderError;
use crate::model::{
    compute_amounts, Amounts, Cents, CouponId, GoodsId, Order, OrderId, OrderStatus, Shipping,
    UserId,
};
use crate::remote::CallError;
use crate::{repo, AppState};

/// Units of one goods an order may take at most.
pub const MAX_QUANTITY: i64 = 10_000;

/// The body of `POST /orders`. The order is the caller's: `user_id` may be
/// left out, and if given it must be the caller's own.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    #[serde(default)]
    pub user_id: Option<i64>,
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
    #[derive(Deserialize, utoipa::ToSchema)]
    struct Wrap(#[serde(deserialize_with = "shop_common::extract::decimal")] Decimal);
    Option::<Wrap>::deserialize(d).map(|w| w.map(|Wrap(v)| v))
}

/// The ORDER_CANCEL message of an order, signed by `key` (the order
/// service's): the goods, coupon and user services apply only what the
/// order service signed.
pub fn cancel_message(key: &ServiceKey, order: &Order, reason: &str) -> Message {
    let body = OrderCancelled {
        order_id: order.id,
        user_id: order.user_id,
        reason: reason.to_owned(),
    };
    let message = Message::new(
        ORDER_CANCEL,
        serde_json::to_vec(&body).expect("the body serializes"),
    )
    .with_tags("cancel")
    .with_keys([order.id.to_string()]);
    shop_common::events::sign(key, message)
}

/// A `POST /orders` whose fields passed [`PlaceOrder::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub user_id: UserId,
    pub goods_id: GoodsId,
    pub quantity: i64,
    pub unit_price: Cents,
    /// The price as the request wrote it, for a refusal's message.
    pub asked_price: Decimal,
    pub coupon_id: Option<CouponId>,
    /// How much of the balance to spend (at most the total).
    pub balance: Cents,
}

impl PlaceOrder {
    /// The request of customer `user_id` (whom the caller's token names,
    /// and whom the handler checked `self.user_id` against) with its ids
    /// and amounts checked and typed.
    pub fn validate(&self, user_id: i64) -> Result<OrderRequest, OrderError> {
        if user_id <= 0 {
            return Err(OrderError::invalid(
                "invalid_user_id",
                "user_id must be a positive id",
            ));
        }
        if self.goods_id <= 0 {
            return Err(OrderError::invalid(
                "invalid_goods_id",
                "goods_id must be a positive id",
            ));
        }
        if !(1..=MAX_QUANTITY).contains(&self.quantity) {
            return Err(OrderError::invalid(
                "invalid_quantity",
                format!("quantity must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        if self.coupon_id.is_some_and(|c| c <= 0) {
            return Err(OrderError::invalid(
                "invalid_coupon_id",
                "coupon_id must be a positive id",
            ));
        }
        let unit_price = Cents::from_decimal(self.unit_price).ok_or_else(|| {
            OrderError::invalid(
                "invalid_price",
                "unit_price must be a non-negative amount in whole cents",
            )
        })?;
        let balance = match self.balance {
            None => Cents::ZERO,
            Some(b) => Cents::from_decimal(b).ok_or_else(|| {
                OrderError::invalid(
                    "invalid_balance",
                    "balance must be a non-negative amount in whole cents",
                )
            })?,
        };
        Ok(OrderRequest {
            user_id: UserId(user_id),
            goods_id: GoodsId(self.goods_id),
            quantity: self.quantity,
            unit_price,
            asked_price: self.unit_price,
            coupon_id: self.coupon_id.map(CouponId),
            balance,
        })
    }
}

/// The pre-check of an order against what the goods, user and coupon
/// services answered, and its amounts: pure, so every refusal is tested
/// without a service. `coupon` is the request's coupon, if it has one.
pub fn precheck(
    req: &OrderRequest,
    goods: &GoodsView,
    user: &UserView,
    coupon: Option<&CouponView>,
    shipping: Shipping,
) -> Result<Amounts, OrderError> {
    let unreadable = |reason: String| {
        OrderError::Unavailable(CallError::Unavailable {
            service: "goods",
            reason,
        })
    };
    let goods_price = to_cents(goods.price).map_err(|e| unreadable(e.to_string()))?;
    if goods_price != req.unit_price.0 {
        return Err(OrderError::PriceMismatch {
            goods_id: GoodsId(goods.id),
            price: goods.price,
            asked: req.asked_price,
        });
    }
    if req.quantity > goods.stock {
        return Err(OrderError::InsufficientStock {
            goods_id: GoodsId(goods.id),
            stock: goods.stock,
            requested: req.quantity,
        });
    }
    let coupon_amount = match coupon {
        None => None,
        Some(c) if c.user_id != req.user_id.0 => {
            return Err(OrderError::CouponNotOwned(CouponId(c.id)))
        }
        Some(c) if c.status != CouponStatus::Unused => {
            return Err(OrderError::CouponUsed(CouponId(c.id)))
        }
        Some(c) => Some(Cents(to_cents(c.amount).unwrap_or(0))),
    };
    let user_balance = Cents(to_cents(user.balance).unwrap_or(0));
    if req.balance > user_balance {
        return Err(OrderError::InsufficientBalance {
            user_id: UserId(user.id),
            balance: user.balance,
            requested: req.balance,
        });
    }
    compute_amounts(
        req.unit_price,
        req.quantity,
        shipping,
        coupon_amount,
        req.balance,
    )
    .ok_or_else(|| OrderError::invalid("invalid_quantity", "the order total is out of range"))
}

/// Places an order for customer `user_id`; returns it CONFIRMED, or the
/// reason it was refused or cancelled.
pub async fn place_order(
    state: &AppState,
    user_id: i64,
    req: PlaceOrder,
) -> Result<Order, OrderError> {
    let req = req.validate(user_id)?;

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

    // 2. Amounts.
    let amounts = precheck(&req, &goods, &user, coupon.as_ref(), state.config.shipping)?;
    let now = now_ms();
    let order = Order {
        id: Uuid::new_v4(),
        user_id: req.user_id.0,
        goods_id: req.goods_id.0,
        quantity: req.quantity,
        unit_price_cents: req.unit_price.0,
        goods_amount_cents: amounts.goods_amount.0,
        shipping_fee_cents: amounts.shipping_fee.0,
        coupon_id: req.coupon_id.map(|c| c.0),
        coupon_discount_cents: amounts.coupon_discount.0,
        balance_used_cents: amounts.balance_used.0,
        amount_to_pay_cents: amounts.amount_to_pay.0,
        status: OrderStatus::Pending,
        cancel_reason: None,
        created_at: now,
        updated_at: now,
    };
    // From here on every log line, call and event of this saga names it.
    shop_common::trace::set_order_id(order.id);

    // 3. Arm the compensation: the half message, with saving the order as
    // its local transaction.
    let db = state.db.clone();
    let pending = order.clone();
    let armed = state
        .producer
        .send_in_transaction(
            cancel_message(&state.auth.key, &order, "saga failed"),
            move |_| async move {
                match repo::insert_pending(&db, &pending).await {
                    // Decided later by this saga (or by a check-back).
                    Ok(()) => LocalTransactionState::Unknown,
                    Err(error) => {
                        warn!(order_id = %pending.id, %error, "saving a pending order failed");
                        LocalTransactionState::Rollback
                    }
                }
            },
        )
        .await?;
    if armed.state == LocalTransactionState::Rollback {
        return Err(OrderError::Database(sqlx::Error::Protocol(
            "the order could not be saved".into(),
        )));
    }
    info!(order_id = %order.id, msg_id = %armed.handle.msg_id, "order pending, compensation armed");

    // 4. Reservations.
    let order_id = OrderId(order.id);
    let stock = remote.reserve_stock(req.goods_id, order_id, order.quantity);
    let coupon = async {
        match req.coupon_id {
            Some(id) => remote.use_coupon(id, order_id, req.user_id).await,
            None => Ok(()),
        }
    };
    let balance = async {
        if amounts.balance_used > Cents::ZERO {
            remote
                .reserve_balance(req.user_id, order_id, amounts.balance_used)
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
                state.metrics.order_confirmed();
                info!(order_id = %order.id, "order confirmed");
                Ok(Order {
                    status: OrderStatus::Confirmed,
                    ..order
                })
            } else {
                // The check-back or the sweeper gave up on this order first
                // (and counted it).
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
            state.metrics.order_cancelled(error.code());
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
        // The saga's own trace died with it: the compensation starts one.
        let trace = shop_common::trace::Trace {
            order_id: Some(order.id),
            ..shop_common::trace::Trace::new_root()
        };
        let span = tracing::info_span!(
            "sweep",
            trace_id = %trace.parent.trace_id_hex(),
            order_id = %order.id,
        );
        let swept = shop_common::trace::scope(
            trace,
            tracing::Instrument::instrument(sweep_one(state, &order), span),
        )
        .await?;
        cancelled += usize::from(swept);
    }
    Ok(cancelled)
}

/// Cancels one abandoned order and publishes its ORDER_CANCEL; false when
/// its saga or a check-back decided it first.
async fn sweep_one(state: &AppState, order: &Order) -> Result<bool, OrderError> {
    if !repo::transition_db(
        &state.db,
        order.id,
        OrderStatus::Pending,
        OrderStatus::Cancelled,
        Some("saga timeout"),
    )
    .await?
    {
        return Ok(false);
    }
    state
        .producer
        .producer()
        .send(cancel_message(&state.auth.key, order, "saga timeout"))
        .await?;
    state.metrics.order_cancelled("saga_timeout");
    warn!(order_id = %order.id, "abandoned order cancelled by the sweeper");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: serde_json::Value) -> Result<OrderRequest, OrderError> {
        let user_id = body["user_id"].as_i64().unwrap_or(7);
        serde_json::from_value::<PlaceOrder>(body)
            .unwrap()
            .validate(user_id)
    }

    fn ok_request() -> OrderRequest {
        request(serde_json::json!({
            "user_id": 7, "goods_id": 3, "quantity": 2, "unit_price": "20.00",
            "coupon_id": 9, "balance": "5"
        }))
        .unwrap()
    }

    fn goods(price: &str, stock: i64) -> GoodsView {
        GoodsView {
            id: 3,
            name: "pen".into(),
            price: price.parse().unwrap(),
            stock,
            created_at: 0,
        }
    }

    fn user(balance: &str) -> UserView {
        UserView {
            id: 7,
            name: "ann".into(),
            balance: balance.parse().unwrap(),
            created_at: 0,
        }
    }

    fn coupon(user_id: i64, status: CouponStatus) -> CouponView {
        CouponView {
            id: 9,
            user_id,
            amount: "3.00".parse().unwrap(),
            status,
            order_id: None,
            used_at: None,
            created_at: 0,
        }
    }

    const SHIPPING: Shipping = Shipping {
        fee: Cents(1000),
        free_from: Cents(10_000),
    };

    fn code(error: OrderError) -> String {
        shop_common::ApiError::from(error).code.into_owned()
    }

    #[test]
    fn validation_types_the_request_and_names_the_bad_field() {
        let req = ok_request();
        assert_eq!(req.user_id, UserId(7));
        assert_eq!(req.goods_id, GoodsId(3));
        assert_eq!(req.unit_price, Cents(2000));
        assert_eq!(req.coupon_id, Some(CouponId(9)));
        assert_eq!(req.balance, Cents(500));
        for (body, expected) in [
            (
                serde_json::json!({"user_id": 0, "goods_id": 1, "quantity": 1, "unit_price": 1}),
                "invalid_user_id",
            ),
            (
                serde_json::json!({"user_id": 1, "goods_id": -1, "quantity": 1, "unit_price": 1}),
                "invalid_goods_id",
            ),
            (
                serde_json::json!({"user_id": 1, "goods_id": 1, "quantity": 0, "unit_price": 1}),
                "invalid_quantity",
            ),
            (
                serde_json::json!({"user_id": 1, "goods_id": 1, "quantity": MAX_QUANTITY + 1, "unit_price": 1}),
                "invalid_quantity",
            ),
            (
                serde_json::json!({"user_id": 1, "goods_id": 1, "quantity": 1, "unit_price": 1, "coupon_id": 0}),
                "invalid_coupon_id",
            ),
            (
                serde_json::json!({"user_id": 1, "goods_id": 1, "quantity": 1, "unit_price": "1.001"}),
                "invalid_price",
            ),
            (
                serde_json::json!({"user_id": 1, "goods_id": 1, "quantity": 1, "unit_price": 1, "balance": "-1"}),
                "invalid_balance",
            ),
        ] {
            assert_eq!(code(request(body).unwrap_err()), expected);
        }
    }

    #[test]
    fn precheck_prices_an_order_that_passes() {
        let req = ok_request();
        let amounts = precheck(
            &req,
            &goods("20.00", 5),
            &user("50.00"),
            Some(&coupon(7, CouponStatus::Unused)),
            SHIPPING,
        )
        .unwrap();
        // 2 x 20.00 + 10.00 shipping - 3.00 coupon - 5.00 balance.
        assert_eq!(amounts.goods_amount, Cents(4000));
        assert_eq!(amounts.shipping_fee, Cents(1000));
        assert_eq!(amounts.coupon_discount, Cents(300));
        assert_eq!(amounts.balance_used, Cents(500));
        assert_eq!(amounts.amount_to_pay, Cents(4200));
    }

    #[test]
    fn precheck_refuses_with_the_reason() {
        let req = ok_request();
        let unused = coupon(7, CouponStatus::Unused);
        let cases = [
            (
                goods("21.00", 5),
                user("50.00"),
                unused.clone(),
                "price_mismatch",
            ),
            (
                goods("20.00", 1),
                user("50.00"),
                unused.clone(),
                "insufficient_stock",
            ),
            (
                goods("20.00", 5),
                user("50.00"),
                coupon(8, CouponStatus::Unused),
                "coupon_not_owned",
            ),
            (
                goods("20.00", 5),
                user("50.00"),
                coupon(7, CouponStatus::Used),
                "coupon_used",
            ),
            (
                goods("20.00", 5),
                user("4.99"),
                unused,
                "insufficient_balance",
            ),
        ];
        for (goods, user, coupon, expected) in cases {
            let error = precheck(&req, &goods, &user, Some(&coupon), SHIPPING).unwrap_err();
            assert_eq!(code(error), expected);
        }
        let error = precheck(&req, &goods("21.00", 5), &user("50.00"), None, SHIPPING).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the price of goods 3 is 21.00, not 20.00"
        );
    }
}
