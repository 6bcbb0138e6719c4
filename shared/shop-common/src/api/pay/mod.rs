//! The pay service's API as the gateway and clients call it: the gateway's
//! notification (`POST /payments/callback`), its [`signature`], and the
//! answer the gateway reads back.

pub mod signature;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Secret;

/// Where on the pay service the gateway posts its notification.
pub const CALLBACK_PATH: &str = "/payments/callback";

/// The gateway's notification of a payment. Fields other than these are
/// ignored; the signature covers exactly these, see [`signature`].
///
/// The fields are in alphabetical order, which is the order they have on
/// the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    /// Sent as a string with two decimals like `"12.30"`; a number is
    /// accepted.
    #[serde(deserialize_with = "crate::extract::decimal")]
    pub amount: Decimal,
    pub order_id: Uuid,
    pub payment_id: Uuid,
    /// Hex of HMAC-SHA256(gateway secret, canonical string).
    pub signature: String,
    pub trade_no: String,
}

impl Notification {
    /// The notification of `amount_cents` paid for `order_id` under
    /// `trade_no`, signed with `secret`.
    pub fn signed(
        secret: &Secret,
        payment_id: Uuid,
        order_id: Uuid,
        amount_cents: i64,
        trade_no: &str,
    ) -> Notification {
        let text = signature::canonical(payment_id, order_id, amount_cents, trade_no);
        let mut amount = crate::money::from_cents(amount_cents);
        amount.rescale(2);
        Notification {
            amount,
            order_id,
            payment_id,
            signature: signature::sign(secret.expose(), &text),
            trade_no: trade_no.to_owned(),
        }
    }
}

/// The pay service's answer to a notification it took (a replay included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallbackAnswer {
    /// `success`.
    pub result: String,
}

impl CallbackAnswer {
    pub fn success() -> CallbackAnswer {
        CallbackAnswer {
            result: "success".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notification_is_the_json_the_gateway_always_sent() {
        let payment_id: Uuid = "6f1c2a3b-0000-4000-8000-000000000001".parse().unwrap();
        let order_id: Uuid = "6f1c2a3b-0000-4000-8000-000000000002".parse().unwrap();
        let secret = Secret::new("key");
        let n = Notification::signed(&secret, payment_id, order_id, 1230, "GW-1");
        let text = signature::canonical(payment_id, order_id, 1230, "GW-1");
        let expected = serde_json::json!({
            "payment_id": payment_id,
            "order_id": order_id,
            "amount": signature::two_decimals(1230),
            "trade_no": "GW-1",
            "signature": signature::sign(b"key", &text),
        });
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        assert!(signature::verify(b"key", &text, &n.signature));
        assert_eq!(
            serde_json::to_string(&CallbackAnswer::success()).unwrap(),
            r#"{"result":"success"}"#
        );
    }
}
