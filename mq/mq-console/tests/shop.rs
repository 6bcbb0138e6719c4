//! The shop pages over HTTP: the orders list, the saga timelines of a
//! cancelled and a paid order, the invariants (green, then red with the
//! offending order) and the audit log, against a real name server and
//! broker (mq-testkit) and a stub of the services' operator API on port 0
//! that answers what the services answer (the services' own tests pin
//! those answers; the all-in-one run in `shop-suite` wires the real ones).

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{Browser, Console, ADMIN};
use mq_client::{ClientConfig, Message, Producer, ProducerConfig};
use mq_console::ShopConfig;
use mq_testkit::Cluster;
use serde_json::{json, Value};

const CANCELLED: &str = "11111111-1111-4111-8111-111111111111";
const PAID: &str = "22222222-2222-4222-8222-222222222222";
const PAYMENT: &str = "33333333-3333-4333-8333-333333333333";
const TOKEN: &str = "stub-operator-token";

/// What the stub answers; tests change it to break an invariant.
#[derive(Clone)]
struct Stub(Arc<Mutex<Value>>);

fn data() -> Value {
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

async fn serve_stub(stub: Stub) -> String {
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

fn shop_config(url: &str) -> ShopConfig {
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

struct Shop {
    cluster: Cluster,
    console: Console,
    browser: Browser,
    stub: Stub,
    data: tempfile::TempDir,
}

async fn start() -> Shop {
    let cluster = Cluster::start().await;
    cluster.create_topic("ORDER_CANCEL", 2).await;
    cluster.create_topic("PAY_SUCCESS", 2).await;
    let stub = Stub(Arc::new(Mutex::new(data())));
    let url = serve_stub(stub.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let config = common::config(&cluster.namesrv.addr)
        .with_shop(shop_config(&url))
        .with_data_dir(data.path());
    let console = Console::start(config).await;
    let mut browser = console.browser();
    browser.login(ADMIN.0, ADMIN.1).await;
    Shop {
        cluster,
        console,
        browser,
        stub,
        data,
    }
}

/// The saga's messages as the services publish them: ORDER_CANCEL keyed
/// by the cancelled order's id, PAY_SUCCESS by the payment's id.
async fn publish_saga(cluster: &Cluster) {
    let producer = Producer::start(
        ProducerConfig::new("test-saga"),
        ClientConfig::new(cluster.namesrv.addr.clone()).with_instance_name("test-saga"),
    )
    .await
    .unwrap();
    producer
        .send(Message::new("ORDER_CANCEL", "{}").with_keys([CANCELLED]))
        .await
        .unwrap();
    producer
        .send(Message::new("PAY_SUCCESS", "{}").with_keys([PAYMENT]))
        .await
        .unwrap();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_listed_and_filtered() {
    let mut shop = start().await;
    let page = shop.browser.get("/orders").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.expect(PAID)
        .expect(CANCELLED)
        .expect("goods refused: not enough stock");
    page.expect("href=\"/orders\"")
        .expect("href=\"/invariants\"");
    let page = shop.browser.get("/orders?status=PAID").await;
    page.expect(PAID).expect_not(CANCELLED);
    // The form's checks answer inside the page, with the reason.
    let bad = shop.browser.get("/orders?status=LOST").await;
    assert_eq!(bad.status, 400);
    bad.expect("status must be one of");
    let bad = shop.browser.get("/orders?from=yesterday").await;
    assert_eq!(bad.status, 400);
    bad.expect("from and to must be");
    shop.console.stop().await;
    shop.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_and_a_paid_order_show_every_step_of_their_saga() {
    let mut shop = start().await;
    publish_saga(&shop.cluster).await;
    let cancelled = shop
        .browser
        .get_until(
            &format!("/order?id={CANCELLED}"),
            "Half message committed: ORDER_CANCEL delivered</strong><div>Message id",
        )
        .await;
    for step in [
        "Order saved PENDING",
        "ORDER_CANCEL half message stored",
        "Stock reserved (goods)",
        "Coupon used (coupon)",
        "Balance reserved (user)",
        "goods refused: not enough stock",
        "ORDER_CANCEL applied by each group",
    ] {
        cancelled.expect(step);
    }
    let paid = shop
        .browser
        .get_until(
            &format!("/order?id={PAID}"),
            "PAY_SUCCESS published</strong><div>Message id",
        )
        .await;
    for step in [
        "Order saved PENDING",
        "Half message rolled back",
        "nothing to compensate",
        "Payment created",
        PAYMENT,
        "Gateway callback",
        "GW-77",
        "PAY_SUCCESS applied by order, log and points",
        "15 points",
    ] {
        paid.expect(step);
    }
    paid.expect("2023-11-14 22:13:20.100");
    let missing = shop
        .browser
        .get("/order?id=44444444-4444-4444-8444-444444444444")
        .await;
    assert_eq!(missing.status, 502);
    missing.expect("no order");
    let bad = shop.browser.get("/order?id=../etc").await;
    assert_eq!(bad.status, 400);
    shop.console.stop().await;
    shop.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invariants_are_green_then_red_with_the_offending_order() {
    let mut shop = start().await;
    let page = shop.browser.get("/invariants").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.expect("Every invariant holds").expect_not("broken");
    page.expect("http-equiv=\"refresh\"");
    // The paid order's points go missing, the cancelled order keeps its coupon.
    {
        let mut data = shop.stub.0.lock().unwrap();
        data["credits"] = json!([]);
        data["coupons"][0]["status"] = json!("used");
        data["coupons"][0]["order_id"] = json!(CANCELLED);
    }
    let page = shop.browser.get("/invariants").await;
    page.expect("Some invariants are broken");
    page.expect("no points, should be 15");
    page.expect("CANCELLED but still holds coupon 8");
    page.expect(&format!("/order?id={PAID}"));
    shop.console.stop().await;
    shop.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_actions_are_in_the_audit_log_and_survive_a_restart() {
    let mut shop = start().await;
    shop.browser.get("/topics").await;
    let page = shop
        .browser
        .post(
            "/topics",
            &[
                ("topic", "Audited"),
                ("read", "4"),
                ("write", "4"),
                ("perm", "6"),
                ("broker", "broker-a"),
            ],
        )
        .await;
    assert!(page.flash().is_some(), "{}", page.body);
    shop.browser.get("/topics").await;
    shop.browser
        .post(
            "/topic/delete",
            &[("topic", "Audited"), ("confirm", "wrong")],
        )
        .await;
    let audit = shop.browser.get("/audit").await;
    audit
        .expect("/topics")
        .expect("topic=Audited")
        .expect("/topic/delete")
        .expect(ADMIN.0);
    audit.expect_not("confirm=wrong").expect_not("_csrf=");
    assert!(
        audit.body.contains("badge bad"),
        "the refused delete is recorded as failed"
    );
    let file = std::fs::read_to_string(shop.data.path().join("audit.log")).unwrap();
    assert_eq!(file.lines().count(), 2, "{file}");
    // A console started again on the same folder shows them.
    shop.console.stop().await;
    let config = common::config(&shop.cluster.namesrv.addr).with_data_dir(shop.data.path());
    let mut again = Console::start(config).await;
    let mut browser = again.browser();
    browser.login(ADMIN.0, ADMIN.1).await;
    browser.get("/audit").await.expect("topic=Audited");
    // Without shop keys there are no shop pages in the navigation.
    browser.get("/").await.expect_not("href=\"/invariants\"");
    again.stop().await;
    shop.cluster.stop().await;
}
