//! Calls to the goods, coupon and user services, each through
//! [`ServiceClient`]: a success, a refusal with the service's error code
//! (the order cannot go on), or unavailability.

use std::time::Duration;

use shop_common::api::coupon::{CouponView, UseRequest};
use shop_common::api::goods::{GoodsView, ReserveRequest as ReserveStock};
use shop_common::api::user::{ReserveRequest as ReserveBalance, UserView};
pub use shop_common::client::CallError;
use shop_common::client::ServiceClient;

use crate::model::{Cents, CouponId, GoodsId, OrderId, UserId};

/// The three services an order needs.
#[derive(Debug, Clone)]
pub struct Remote {
    goods: ServiceClient,
    coupon: ServiceClient,
    user: ServiceClient,
}

impl Remote {
    pub fn new(goods_url: &str, coupon_url: &str, user_url: &str, timeout: Duration) -> Remote {
        Remote {
            goods: ServiceClient::new("goods", goods_url, timeout),
            coupon: ServiceClient::new("coupon", coupon_url, timeout),
            user: ServiceClient::new("user", user_url, timeout),
        }
    }

    pub async fn goods(&self, id: GoodsId) -> Result<GoodsView, CallError> {
        self.goods.get(&format!("/goods/{id}")).await
    }

    pub async fn user(&self, id: UserId) -> Result<UserView, CallError> {
        self.user.get(&format!("/users/{id}")).await
    }

    pub async fn coupon(&self, id: CouponId) -> Result<CouponView, CallError> {
        self.coupon.get(&format!("/coupons/{id}")).await
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
            .post::<serde_json::Value, _>(&format!("/goods/{goods_id}/reservations"), &body)
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
            .post::<serde_json::Value, _>(&format!("/coupons/{coupon_id}/use"), &body)
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
            .post::<serde_json::Value, _>(&format!("/users/{user_id}/balance/reservations"), &body)
            .await
            .map(drop)
    }
}
