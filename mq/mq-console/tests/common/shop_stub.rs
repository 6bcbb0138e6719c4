//! A stub of the shop services' operator API on port 0, answering what
//! the services answer (their own tests pin those answers): a cancelled
//! and a paid order with their ledger rows, payment, logs and points.

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mq_client::{
    AdminClient, ClientConfig, LocalTransactionState, Message, MessageExt, ProducerConfig,
    TransactionChecker, TransactionProducer,
};
use mq_console::ShopConfig;
use mq_testkit::Cluster;
use serde_json::{json, Value};

pub const CANCELLED: &str = "11111111-1111-4111-8111-111111111111";
pub const PAID: &str = "22222222-2222-4222-8222-222222222222";
pub const PAYMENT: &str = "33333333-3333-4333-8333-333333333333";
pub const TOKEN: &str = "stub-operator-token";

/// What the stub answers; tests change it to break an invariant.
#[derive(Clone)]
pub struct Stub(pub Arc<Mutex<Value>>);

pub fn data() -> Value {
    let order = |id: &str, status: &str, coupon: Value, payment: Value, reason: Value| {
        json!({
            "id": id, "user_id": 7, "goods_id": 1, "quantity": 2, "unit_price": "10.00",
            "goods_amount": "20.00", "shipping_fee": "0.00", "coupon_id": coupon,
            "coupon_discount": "0.00", "balance_used": "5.00", "amount_to_pay": "15.00",
            "status": status, "cancel_reason": reason, "created_at": 1_700_000_000_000i64,
            "updated_at": 1_700_000_001_000i64, "payment_id": payment
        })
    };
    json!({
        "orders": [
            order(PAID, "PAID", json!(9), json!(PAYMENT), Value::Null),
            order(CANCELLED, "CANCELLED", json!(8), Value::Null, json!("goods refused: not enough stock")),
        ],
        "stock": [
            {"order_id": PAID, "operation": "reserve", "goods_id": 1, "quantity": 2, "created_at": 1_700_000_000_100i64},
        ],
        "coupon": [
            {"order_id": PAID, "operation": "use", "coupon_id": 9, "user_id": 7, "created_at": 1_700_000_000_200i64},
            {"order_id": CANCELLED, "operation": "cancel", "coupon_id": null, "user_id": null, "created_at": 1_700_000_002_000i64},
        ],
        "money": [
            {"order_id": PAID, "operation": "reserve", "user_id": 7, "amount": "5.00", "created_at": 1_700_000_000_300i64},
            {"order_id": CANCELLED, "operation": "cancel", "user_id": null, "amount": "0.00", "created_at": 1_700_000_002_000i64},
        ],
        "coupons": [
            {"id": 8, "user_id": 7, "amount": "3.00", "status": "unused", "order_id": null, "used_at": null, "created_at": 1},
            {"id": 9, "user_id": 7, "amount": "3.00", "status": "used", "order_id": PAID, "used_at": 1, "created_at": 1},
        ],
        "payments": [
            {"payment_id": PAYMENT, "order_id": PAID, "user_id": 7, "amount": "15.00", "status": "PAID",
             "trade_no": "GW-77", "created_at": 1_700_000_003_000i64, "paid_at": 1_700_000_004_000i64,
             "refunded_at": null, "pay_url": "http://gw/pay", "pay_msg_id": "AC1100"},
        ],
        "payment_log": [
            {"id": 1, "payment_id": PAYMENT, "event": "paid", "order_id": PAID, "user_id": 7, "amount": "15.00",
             "trade_no": "GW-77", "paid_at": 1, "refunded_at": null, "reason": null, "logged_at": 1_700_000_005_000i64},
        ],
        "order_log": [
            {"id": 1, "order_id": CANCELLED, "event": "cancelled", "user_id": 7, "reason": "stock", "logged_at": 1_700_000_002_500i64},
        ],
        "credits": [
            {"payment_id": PAYMENT, "order_id": PAID, "user_id": 7, "amount": "15.00", "points": 15, "credited_at": 1_700_000_006_000i64},
        ],
    })
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"))
}

type Params = Query<Vec<(String, String)>>;

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Rows of `list` for `order_id` when asked, all otherwise.
fn rows_of(stub: &Stub, list: &str, q: &[(String, String)]) -> Vec<Value> {
    let data = stub.0.lock().unwrap();
    data[list]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| param(q, "order_id").is_none_or(|id| r["order_id"] == id))
        .cloned()
        .collect()
}

pub async fn serve_stub(stub: Stub) -> String {
    async fn login(Json(body): Json<Value>) -> Response {
        if body["login"] == "ops" && body["password"] == "ops-secret" {
            Json(json!({"token": TOKEN, "expires_at": 0})).into_response()
        } else {
            StatusCode::UNAUTHORIZED.into_response()
        }
    }
    macro_rules! paged {
        ($list:literal, $field:literal) => {
            get(|State(stub): State<Stub>, headers: HeaderMap, Query(q): Params| async move {
                if !authorized(&headers) {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                Json(json!({ $field: rows_of(&stub, $list, &q), "next": null })).into_response()
            })
        };
    }
    macro_rules! listed {
        ($list:literal) => {
            get(
                |State(stub): State<Stub>, headers: HeaderMap, Query(q): Params| async move {
                    if !authorized(&headers) {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    // Pages by after_id: everything is on the first.
                    if param(&q, "after_id").is_some_and(|a| a != "0") {
                        return Json(json!([])).into_response();
                    }
                    Json(Value::Array(rows_of(&stub, $list, &q))).into_response()
                },
            )
        };
    }
    let app = Router::new()
        .route("/auth/login", post(login))
        .route(
            "/operator/orders",
            get(|State(stub): State<Stub>, headers: HeaderMap, Query(q): Params| async move {
                if !authorized(&headers) {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                let orders: Vec<Value> = rows_of(&stub, "orders", &[])
                    .into_iter()
                    .filter(|o| param(&q, "status").is_none_or(|s| o["status"] == s))
                    .collect();
                Json(json!({"orders": orders, "next": null, "saga_timeout_ms": 30_000, "sweep_interval_ms": 5_000}))
                    .into_response()
            }),
        )
        .route(
            "/operator/orders/{id}",
            get(|State(stub): State<Stub>, headers: HeaderMap, axum::extract::Path(id): axum::extract::Path<String>| async move {
                if !authorized(&headers) {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                match rows_of(&stub, "orders", &[]).into_iter().find(|o| o["id"] == id.as_str()) {
                    Some(o) => Json(o).into_response(),
                    None => (StatusCode::NOT_FOUND, Json(json!({"error": {"code": "order_not_found", "message": format!("no order {id}")}}))).into_response(),
                }
            }),
        )
        .route("/operator/stock-ledger", paged!("stock", "rows"))
        .route("/operator/coupon-ledger", paged!("coupon", "rows"))
        .route("/operator/money-ledger", paged!("money", "rows"))
        .route("/operator/payments", paged!("payments", "payments"))
        .route("/operator/credits", paged!("credits", "credits"))
        .route("/logs/payments", listed!("payment_log"))
        .route("/logs/orders", listed!("order_log"))
        .route("/coupons", listed!("coupons"))
        .with_state(stub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

pub fn shop_config(url: &str) -> ShopConfig {
    ShopConfig {
        order_url: url.to_owned(),
        goods_url: url.to_owned(),
        coupon_url: url.to_owned(),
        user_url: url.to_owned(),
        pay_url: url.to_owned(),
        log_url: url.to_owned(),
        points_url: url.to_owned(),
        login: "ops".to_owned(),
        password: "ops-secret".to_owned(),
    }
}

/// The saga's messages as the services publish them: an ORDER_CANCEL
/// half message per order keyed by its id (committed for the cancelled
/// order, rolled back for the paid one), PAY_SUCCESS keyed by the
/// payment's id. Returns once the committed ORDER_CANCEL can be found by
/// its key (the outcome goes to the broker oneway, as RocketMQ's does).
pub async fn publish_saga(cluster: &Cluster) {
    let producer = TransactionProducer::start(
        ProducerConfig::new("test-saga"),
        ClientConfig::new(cluster.namesrv.addr.clone()).with_instance_name("test-saga"),
        Arc::new(Decided),
    )
    .await
    .unwrap();
    for (order, outcome) in [
        (CANCELLED, LocalTransactionState::Commit),
        (PAID, LocalTransactionState::Rollback),
    ] {
        producer
            .send_in_transaction(
                Message::new("ORDER_CANCEL", "{}").with_keys([order]),
                |_| std::future::ready(outcome),
            )
            .await
            .unwrap();
    }
    producer
        .producer()
        .send(Message::new("PAY_SUCCESS", "{}").with_keys([PAYMENT]))
        .await
        .unwrap();
    let admin = AdminClient::start(
        ClientConfig::new(cluster.namesrv.addr.clone()).with_instance_name("test-saga-admin"),
    )
    .await
    .unwrap();
    for _ in 0..100 {
        let found = admin
            .query_message_by_key("ORDER_CANCEL", CANCELLED, 32, 0, i64::MAX)
            .await
            .unwrap_or_default();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    admin.shutdown().await;
    producer.shutdown().await;
}

/// Check-backs answer what the saga decided: commit the cancelled order's
/// compensation, roll back every other.
struct Decided;

#[mq_client::async_trait]
impl TransactionChecker for Decided {
    async fn check(&self, msg: &MessageExt) -> LocalTransactionState {
        if msg.keys().contains(&CANCELLED) {
            LocalTransactionState::Commit
        } else {
            LocalTransactionState::Rollback
        }
    }
}
