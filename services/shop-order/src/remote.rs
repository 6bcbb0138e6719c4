//! Calls to the goods, coupon and user services, each through a
//! [`ServiceClient`] signed with this service's key: the reservations and
//! the reads of users and coupons are internal endpoints that only the
//! order service may call (DESIGN §6). Each call is a success, a refusal
//! with the service's error code (the order cannot go on), or
//! unavailability.

use std::time::Duration;

use shop_common::api::coupon::{CouponView, UseRequest};
use shop_common::api::goods::{GoodsView, ReserveRequest as ReserveStock};
use shop_common::api::user::{ReserveRequest as ReserveBalance, UserView};
use shop_common::auth::ServiceKey;
pub use shop_common::client::CallError;
use shop_common::client::ServiceClient;

use crate::model::{Cents, CouponId, GoodsId, OrderId, UserId};

/// Where the order service reaches each service and what it calls there.
pub mod paths {
    use crate::model::{CouponId, GoodsId, UserId};

    /// The goods (public: anyone may read the catalogue).
    pub fn goods(id: GoodsId) -> String {
        format!("/goods/{id}")
    }
    pub fn stock_reservations(id: GoodsId) -> String {
        format!("/internal/goods/{id}/reservations")
    }
    pub fn user(id: UserId) -> String {
        format!("/internal/users/{id}")
    }
    pub fn balance_reservations(id: UserId) -> String {
        format!("/internal/users/{id}/balance/reservations")
    }
    pub fn coupon(id: CouponId) -> String {
        format!("/internal/coupons/{id}")
    }
    pub fn coupon_use(id: CouponId) -> String {
        format!("/internal/coupons/{id}/use")
    }
}

/// The three services an order needs.
#[derive(Debug, Clone)]
pub struct Remote {
    goods: ServiceClient,
    coupon: ServiceClient,
    user: ServiceClient,
}

impl Remote {
    /// Clients of the three services, every call signed with `key`.
    pub fn new(
        goods_url: &str,
        coupon_url: &str,
        user_url: &str,
        timeout: Duration,
        key: &ServiceKey,
    ) -> Remote {
        let client = |name, url| ServiceClient::new(name, url, timeout).signed_by(key.clone());
        Remote {
            goods: client("goods", goods_url),
            coupon: client("coupon", coupon_url),
            user: client("user", user_url),
        }
    }

    pub async fn goods(&self, id: GoodsId) -> Result<GoodsView, CallError> {
        self.goods.get(&paths::goods(id)).await
    }

    pub async fn user(&self, id: UserId) -> Result<UserView, CallError> {
        self.user.get(&paths::user(id)).await
    }

    pub async fn coupon(&self, id: CouponId) -> Result<CouponView, CallError> {
        self.coupon.get(&paths::coupon(id)).await
    }

    pub async fn reserve_stock(
        &self,
        goods_id: GoodsId,
        order_id: OrderId,
        quantity: i64,
    ) -> Result<(), CallError> {
        let body = ReserveStock {
            order_id: order_id.0,
            quantity,
        };
        self.goods
            .post::<serde_json::Value, _>(&paths::stock_reservations(goods_id), &body)
            .await
            .map(drop)
    }

    pub async fn use_coupon(
        &self,
        coupon_id: CouponId,
        order_id: OrderId,
        user_id: UserId,
    ) -> Result<(), CallError> {
        let body = UseRequest {
            order_id: order_id.0,
            user_id: user_id.0,
        };
        self.coupon
            .post::<serde_json::Value, _>(&paths::coupon_use(coupon_id), &body)
            .await
            .map(drop)
    }

    pub async fn reserve_balance(
        &self,
        user_id: UserId,
        order_id: OrderId,
        amount: Cents,
    ) -> Result<(), CallError> {
        let body = ReserveBalance {
            order_id: order_id.0,
            amount: amount.to_decimal(),
        };
        self.user
            .post::<serde_json::Value, _>(&paths::balance_reservations(user_id), &body)
            .await
            .map(drop)
    }
}
