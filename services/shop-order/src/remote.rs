//! Calls to the goods, coupon and user services. Each call has a timeout;
//! an answer is either a success, a refusal with the service's error code
//! (the order cannot go on), or unavailability (timeout, connection error,
//! 5xx: the service could not be asked).

use std::time::Duration;

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shop_common::http::ErrorEnvelope;
use uuid::Uuid;

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The service answered with a 4xx: `code` is its machine-readable reason.
    #[error("{service} refused: {message} ({code})")]
    Refused {
        service: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    /// No usable answer (timeout, connection refused, 5xx, garbage).
    #[error("{service} unavailable: {reason}")]
    Unavailable {
        service: &'static str,
        reason: String,
    },
}

impl CallError {
    pub fn code(&self) -> &str {
        match self {
            CallError::Refused { code, .. } => code,
            CallError::Unavailable { .. } => "service_unavailable",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Goods {
    pub id: i64,
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    pub stock: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(with = "rust_decimal::serde::str")]
    pub balance: Decimal,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Coupon {
    pub id: i64,
    pub user_id: i64,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub status: String,
    pub order_id: Option<Uuid>,
}

/// The three services an order needs.
#[derive(Debug, Clone)]
pub struct Remote {
    http: reqwest::Client,
    goods_url: String,
    coupon_url: String,
    user_url: String,
}

impl Remote {
    pub fn new(goods_url: &str, coupon_url: &str, user_url: &str, timeout: Duration) -> Remote {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .expect("an HTTP client without TLS builds");
        Remote {
            http,
            goods_url: goods_url.trim_end_matches('/').to_owned(),
            coupon_url: coupon_url.trim_end_matches('/').to_owned(),
            user_url: user_url.trim_end_matches('/').to_owned(),
        }
    }

    pub async fn goods(&self, id: i64) -> Result<Goods, CallError> {
        self.get("goods", &format!("{}/goods/{id}", self.goods_url))
            .await
    }

    pub async fn user(&self, id: i64) -> Result<User, CallError> {
        self.get("user", &format!("{}/users/{id}", self.user_url))
            .await
    }

    pub async fn coupon(&self, id: i64) -> Result<Coupon, CallError> {
        self.get("coupon", &format!("{}/coupons/{id}", self.coupon_url))
            .await
    }

    pub async fn reserve_stock(
        &self,
        goods_id: i64,
        order_id: Uuid,
        quantity: i64,
    ) -> Result<(), CallError> {
        #[derive(Serialize)]
        struct Body {
            order_id: Uuid,
            quantity: i64,
        }
        self.post::<serde_json::Value, _>(
            "goods",
            &format!("{}/goods/{goods_id}/reservations", self.goods_url),
            &Body { order_id, quantity },
        )
        .await
        .map(drop)
    }

    pub async fn use_coupon(
        &self,
        coupon_id: i64,
        order_id: Uuid,
        user_id: i64,
    ) -> Result<(), CallError> {
        #[derive(Serialize)]
        struct Body {
            order_id: Uuid,
            user_id: i64,
        }
        self.post::<serde_json::Value, _>(
            "coupon",
            &format!("{}/coupons/{coupon_id}/use", self.coupon_url),
            &Body { order_id, user_id },
        )
        .await
        .map(drop)
    }

    pub async fn reserve_balance(
        &self,
        user_id: i64,
        order_id: Uuid,
        amount: Decimal,
    ) -> Result<(), CallError> {
        #[derive(Serialize)]
        struct Body {
            order_id: Uuid,
            #[serde(with = "rust_decimal::serde::str")]
            amount: Decimal,
        }
        self.post::<serde_json::Value, _>(
            "user",
            &format!("{}/users/{user_id}/balance/reservations", self.user_url),
            &Body { order_id, amount },
        )
        .await
        .map(drop)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        service: &'static str,
        url: &str,
    ) -> Result<T, CallError> {
        answer(service, self.http.get(url).send().await).await
    }

    async fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        service: &'static str,
        url: &str,
        body: &B,
    ) -> Result<T, CallError> {
        answer(service, self.http.post(url).json(body).send().await).await
    }
}

async fn answer<T: DeserializeOwned>(
    service: &'static str,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, CallError> {
    let unavailable = |reason: String| CallError::Unavailable { service, reason };
    let response = sent.map_err(|e| unavailable(e.to_string()))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|e| unavailable(format!("unreadable answer: {e}")));
    }
    if status.is_client_error() {
        let (code, message) = match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
            Ok(envelope) => (envelope.error.code, envelope.error.message),
            Err(_) => (
                "refused".to_owned(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ),
        };
        return Err(CallError::Refused {
            service,
            status: status.as_u16(),
            code,
            message,
        });
    }
    Err(unavailable(format!("answered {status}")))
}
