//! The gateway on port 0 against small stubs of the merchant's callback
//! (retries, refusals, signatures, what is shown of its answer) and
//! against the real pay service (no broker) with a stub of the order
//! service's internal API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use shop_common::api::pay::signature::{canonical, verify};
use shop_common::auth::{ServiceCaller, ServiceKey};
use shop_common::client::ServiceClient;
use shop_common::config::Secret;
use shop_common::testing::{Served, TestDatabase};
use shop_common::ApiError;
use shop_gateway::config::{TEST_GATEWAY_SECRET, TEST_MERCHANT_KEY};
use shop_gateway::Config;
use tempfile::TempDir;
use uuid::Uuid;

/// Serves `app` on a free loopback port; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A gateway serving until stopped, with its trades in `dir`.
struct TestGateway {
    url: String,
    served: Served,
}

impl TestGateway {
    async fn start(config: Config) -> TestGateway {
        let app = shop_gateway::SERVICE
            .start(shop_common::service::ServiceConfig::for_tests_with(
                "", config,
            ))
            .await
            .unwrap();
        let served = Served::start(app);
        TestGateway {
            url: format!("http://127.0.0.1:{}", served.port),
            served,
        }
    }

    /// The merchant's signed client of this gateway.
    fn merchant(&self) -> ServiceClient {
        ServiceClient::new("gateway", &self.url, std::time::Duration::from_secs(3))
            .signed_by(ServiceKey::new("shop", TEST_MERCHANT_KEY).unwrap())
    }

    /// Registers a payment as the merchant.
    async fn register(&self, payment_id: Uuid, order_id: Uuid, amount: &str) -> Value {
        self.merchant()
            .post(
                "/api/payments",
                &json!({ "payment_id": payment_id, "order_id": order_id, "amount": amount }),
            )
            .await
            .unwrap()
    }

    async fn pay(&self, body: Value) -> (StatusCode, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/api/pay", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }
}

/// A merchant callback that answers 503 `failures` times, then 200 with
/// `answer`, and keeps every notification it received.
#[derive(Clone)]
struct Merchant {
    failures: usize,
    answer: Value,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Default for Merchant {
    fn default() -> Self {
        Merchant {
            failures: 0,
            answer: json!({ "result": "success" }),
            received: Arc::default(),
        }
    }
}

impl Merchant {
    async fn serve(&self) -> String {
        async fn callback(
            State(m): State<Merchant>,
            axum::Json(body): axum::Json<Value>,
        ) -> Response {
            let mut received = m.received.lock().unwrap();
            received.push(body);
            if received.len() <= m.failures {
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            } else {
                axum::Json(m.answer.clone()).into_response()
            }
        }
        let url = serve(
            Router::new()
                .route("/payments/callback", post(callback))
                .with_state(self.clone()),
        )
        .await;
        format!("{url}/payments/callback")
    }
}

#[tokio::test]
async fn a_notification_is_signed_and_retried_until_accepted_and_its_answer_is_not_shown() {
    let merchant = Merchant {
        failures: 2,
        // What the finding saw reflected back to the payer.
        answer: json!({ "result": "success", "internal": "the merchant's own data" }),
        ..Merchant::default()
    };
    let notify_url = merchant.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start(Config::for_tests(&notify_url, dir.path())).await;
    let (payment_id, order_id) = (Uuid::new_v4(), Uuid::new_v4());
    let registered = gateway.register(payment_id, order_id, "12.3").await;
    assert_eq!(registered["amount"], "12.30");
    assert_eq!(registered["pay_path"], format!("/pay/{payment_id}"));
    assert_eq!(registered["trade_no"], Value::Null);

    let (status, outcome) = gateway.pay(json!({ "payment_id": payment_id })).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["accepted"], true);
    assert_eq!(outcome["attempts"], 3);
    assert_eq!(outcome["callback_status"], 200);
    assert!(outcome.get("callback_answer").is_none(), "{outcome}");
    assert!(
        !outcome.to_string().contains("the merchant's own data"),
        "{outcome}"
    );
    let trade_no = outcome["trade_no"].as_str().unwrap().to_owned();

    let received = merchant.received.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    for n in &received {
        assert_eq!(n, &received[0], "every attempt sends the same notification");
    }
    let n = &received[0];
    assert_eq!(n["payment_id"], payment_id.to_string());
    assert_eq!(n["order_id"], order_id.to_string());
    assert_eq!(n["amount"], "12.30");
    assert_eq!(n["trade_no"], trade_no.as_str());
    let text = canonical(payment_id, order_id, 1230, &trade_no);
    assert!(verify(
        TEST_GATEWAY_SECRET.as_bytes(),
        &text,
        n["signature"].as_str().unwrap()
    ));
    assert!(!verify(
        b"another key",
        &text,
        n["signature"].as_str().unwrap()
    ));

    // Paying the same payment again re-sends the same trade number, with
    // the registered fields given or not...
    let (_, again) = gateway
        .pay(json!({ "payment_id": payment_id, "order_id": order_id, "amount": 12.30, "notify_url": notify_url }))
        .await;
    assert_eq!(again["trade_no"], trade_no.as_str());
    assert_eq!(again["attempts"], 1);
    // ...but not for another amount or order.
    for body in [
        json!({ "payment_id": payment_id, "amount": "1.00" }),
        json!({ "payment_id": payment_id, "order_id": Uuid::new_v4() }),
    ] {
        let (status, refused) = gateway.pay(body).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(refused["error"]["code"], "payment_conflict");
    }
    // A registration of the same payment for another amount is refused.
    let refused = gateway
        .merchant()
        .post::<Value, _>(
            "/api/payments",
            &json!({ "payment_id": payment_id, "order_id": order_id, "amount": "1.00" }),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "payment_conflict");
    let again = gateway.register(payment_id, order_id, "12.30").await;
    assert_eq!(again["trade_no"], trade_no.as_str());
}

#[tokio::test]
async fn the_gateway_notifies_only_the_registered_url_and_only_registered_payments() {
    // The findings: the gateway POSTed to any notify_url it was given (it
    // reached the user service and reflected its reply), and signed for
    // any payment.
    let merchant = Merchant::default();
    let notify_url = merchant.serve().await;
    let elsewhere = Merchant::default();
    let elsewhere_url = elsewhere.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start(Config::for_tests(&notify_url, dir.path())).await;

    // A payment nobody registered: nothing is signed or sent.
    let (payment_id, order_id) = (Uuid::new_v4(), Uuid::new_v4());
    let (status, refused) = gateway
        .pay(json!({ "payment_id": payment_id, "order_id": order_id, "amount": "5.00", "notify_url": notify_url }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(refused["error"]["code"], "payment_not_registered");
    let page = reqwest::get(format!("{}/pay/{payment_id}", gateway.url))
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);

    // Registered, but paid naming another notify URL: refused.
    gateway.register(payment_id, order_id, "5.00").await;
    let (status, refused) = gateway
        .pay(json!({ "payment_id": payment_id, "notify_url": elsewhere_url }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["code"], "notify_url_not_registered");
    assert!(merchant.received.lock().unwrap().is_empty());
    assert!(elsewhere.received.lock().unwrap().is_empty());

    // Only the merchant registers: unsigned, or signed with another key.
    let body = json!({ "payment_id": Uuid::new_v4(), "order_id": order_id, "amount": "5.00" });
    let unsigned = reqwest::Client::new()
        .post(format!("{}/api/payments", gateway.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let impostor = ServiceClient::new("gateway", &gateway.url, std::time::Duration::from_secs(3))
        .signed_by(ServiceKey::new("shop", "not-the-merchant-key").unwrap());
    let refused = impostor
        .post::<Value, _>("/api/payments", &body)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "merchant_unauthenticated");
    let (status, _) = gateway
        .pay(json!({ "payment_id": body["payment_id"] }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The registered payment, with the registered URL: notified there.
    let (status, outcome) = gateway.pay(json!({ "payment_id": payment_id })).await;
    assert_eq!(
        (status, outcome["accepted"].clone()),
        (StatusCode::OK, json!(true)),
        "{outcome}"
    );
    assert_eq!(merchant.received.lock().unwrap().len(), 1);
    assert!(elsewhere.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_merchant_is_tried_with_backoff_then_given_up() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let notify_url = format!(
        "http://{}/payments/callback",
        listener.local_addr().unwrap()
    );
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start(Config::for_tests(&notify_url, dir.path())).await;
    let payment_id = Uuid::new_v4();
    gateway.register(payment_id, Uuid::new_v4(), "5").await;
    let started = std::time::Instant::now();
    let (status, outcome) = gateway.pay(json!({ "payment_id": payment_id })).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["accepted"], false);
    assert_eq!(outcome["attempts"], 3);
    assert_eq!(outcome["callback_status"], Value::Null);
    // 20 ms, then 40 ms between the three attempts.
    assert!(started.elapsed() >= std::time::Duration::from_millis(60));
}

#[tokio::test]
async fn bad_requests_are_answered_in_the_shop_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start(Config::for_tests("http://127.0.0.1:1/cb", dir.path())).await;
    let payment_id = Uuid::new_v4();
    gateway.register(payment_id, Uuid::new_v4(), "5").await;
    let client = reqwest::Client::new();
    let good = json!({ "payment_id": payment_id });
    let mut cases: Vec<(String, StatusCode, &str)> = vec![
        ("{oops".to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
        (
            json!({ "payment_id": 1 }).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
    ];
    for (field, value, code) in [
        ("amount", json!("0"), "invalid_amount"),
        ("amount", json!("-1"), "invalid_amount"),
        ("amount", json!("0.001"), "invalid_amount"),
        ("amount", json!([1]), "invalid_body"),
        (
            "notify_url",
            json!("ftp://x/cb"),
            "notify_url_not_registered",
        ),
        (
            "notify_url",
            json!("not a url"),
            "notify_url_not_registered",
        ),
        ("order_id", json!("x"), "invalid_body"),
        ("extra", json!(1), "invalid_body"),
    ] {
        let mut body = good.clone();
        body[field] = value;
        cases.push((body.to_string(), StatusCode::BAD_REQUEST, code));
    }
    for (body, status, code) in cases {
        let response = client
            .post(format!("{}/api/pay", gateway.url))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code, "{body}");
    }
    let refused = gateway
        .merchant()
        .post::<Value, _>(
            "/api/payments",
            &json!({ "payment_id": Uuid::new_v4(), "order_id": Uuid::new_v4(), "amount": "0" }),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "invalid_amount");
    let response = client
        .get(format!("{}/pay/x", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "invalid_path");
}

#[test]
fn the_gateway_and_the_pay_service_share_their_test_secrets() {
    let pay = shop_pay::Config::for_tests("http://127.0.0.1:1");
    let dir = tempfile::tempdir().unwrap();
    let gateway = Config::for_tests("http://127.0.0.1:1/cb", dir.path());
    assert_eq!(pay.gateway_secret, gateway.gateway_secret);
    assert_eq!(pay.merchant, gateway.merchant);
}

/// The order service's internal API: its orders by id, each settled as
/// the real one does (CONFIRMED → PAID by the payment; CANCELLED answers
/// `cancelled`).
async fn order_stub(orders: HashMap<Uuid, Value>) -> String {
    let orders = Arc::new(Mutex::new(orders));
    async fn get_order(
        State(orders): State<Arc<Mutex<HashMap<Uuid, Value>>>>,
        caller: ServiceCaller,
        axum::extract::Path(id): axum::extract::Path<Uuid>,
    ) -> Result<axum::Json<Value>, ApiError> {
        caller.require(&["pay"])?;
        let orders = orders.lock().unwrap();
        orders
            .get(&id)
            .cloned()
            .map(axum::Json)
            .ok_or_else(|| ApiError::not_found("order_not_found", "no"))
    }
    async fn settle(
        State(orders): State<Arc<Mutex<HashMap<Uuid, Value>>>>,
        caller: ServiceCaller,
        axum::extract::Path(id): axum::extract::Path<Uuid>,
    ) -> Result<axum::Json<Value>, ApiError> {
        caller.require(&["pay"])?;
        let mut orders = orders.lock().unwrap();
        let order = orders
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found("order_not_found", "no"))?;
        let outcome = if order["status"] == "CANCELLED" {
            "cancelled"
        } else {
            "paid"
        };
        if outcome == "paid" {
            order["status"] = json!("PAID");
        }
        Ok(axum::Json(json!({ "order_id": id, "outcome": outcome })))
    }
    let auth = shop_common::testing::auth("order");
    let internal = Router::new()
        .route("/internal/orders/{id}", get(get_order))
        .route("/internal/orders/{id}/payments", post(settle));
    serve(shop_common::http::service_router(
        auth.protect(Router::new(), internal),
        orders,
    ))
    .await
}

/// The pay service (no broker) at `addr`, pointed at `gateway`.
async fn start_pay(
    db: &TestDatabase,
    addr: std::net::SocketAddr,
    order_url: &str,
    gateway: &str,
) -> String {
    let mut config = shop_pay::config_for_tests(&db.url, order_url);
    config.sessions = shop_common::testing::test_sessions();
    config.http_addr = addr;
    config.own.public_url = format!("http://{addr}");
    config.own.gateway_url = gateway.to_owned();
    let app = shop_pay::SERVICE.start(config).await.unwrap();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    format!("http://{addr}")
}

fn free_addr() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// `POST {pay}/payments` for `order_id` as customer 4: the payment.
async fn create_payment(pay: &str, order_id: Uuid) -> Value {
    reqwest::Client::new()
        .post(format!("{pay}/payments"))
        .bearer_auth("test-customer-4")
        .json(&json!({ "order_id": order_id }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn read_payment(pay: &str, payment_id: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{pay}/payments/{payment_id}"))
        .bearer_auth("test-customer-4")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

struct Shop {
    pay: String,
    gateway: TestGateway,
    dir: TempDir,
}

/// The pay service and the gateway, each knowing the other, and an order
/// of customer 4 for `amount`.
async fn shop(db: &TestDatabase, status: &str, amount: &str) -> (Shop, Uuid) {
    let order_id = Uuid::new_v4();
    let order_url = order_stub(HashMap::from([(
        order_id,
        json!({ "id": order_id, "user_id": 4, "status": status, "amount_to_pay": amount }),
    )]))
    .await;
    let pay_addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start(Config::for_tests(
        &format!("http://{pay_addr}/payments/callback"),
        dir.path(),
    ))
    .await;
    let pay = start_pay(db, pay_addr, &order_url, &gateway.url).await;
    (Shop { pay, gateway, dir }, order_id)
}

shop_common::db_test!(async fn a_person_pays_through_the_page_and_the_pay_service_accepts(db) {
    let (shop, order_id) = shop(&db, "CONFIRMED", "42.10").await;
    let gateway = &shop.gateway.url;
    let pay = &shop.pay;
    let client = reqwest::Client::new();
    let payment = create_payment(pay, order_id).await;
    let pay_url = payment["pay_url"].as_str().unwrap();
    assert!(pay_url.starts_with(&format!("{gateway}/pay/")), "{pay_url}");

    // The page shows the registered amount and a button.
    let page = client.get(pay_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("42.10"), "{html}");
    let payment_id = payment["payment_id"].as_str().unwrap();
    assert!(html.contains(&format!("action=\"/pay/{payment_id}\"")), "{html}");
    assert!(!html.contains("notify_url"), "{html}");

    // Pressing "Pay" posts the form; the pay service verifies and accepts.
    let done = client.post(format!("{gateway}/pay/{payment_id}")).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("Payment done"));
    let paid = read_payment(pay, payment_id).await;
    assert_eq!(paid["status"], "PAID");
    let trade_no = paid["trade_no"].as_str().unwrap().to_owned();
    assert!(trade_no.starts_with("GW-"));

    // A second click: the same trade number, answered as a replay.
    let again = client.post(format!("{gateway}/pay/{payment_id}")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let still = read_payment(pay, payment_id).await;
    assert_eq!(still["trade_no"], trade_no.as_str());
    assert_eq!(still["paid_at"], paid["paid_at"]);
});

shop_common::db_test!(async fn a_retry_after_a_gateway_restart_keeps_its_trade_number(db) {
    // The finding: a retry after a gateway restart for a payment that was
    // in fact paid got a new trade number and was refused 409
    // already_paid, so the payer saw a failure for a paid order.
    let (shop, order_id) = shop(&db, "CONFIRMED", "9.99").await;
    let payment = create_payment(&shop.pay, order_id).await;
    let payment_id: Uuid = payment["payment_id"].as_str().unwrap().parse().unwrap();
    let (status, first) = shop.gateway.pay(json!({ "payment_id": payment_id })).await;
    assert_eq!((status, first["accepted"].clone()), (StatusCode::OK, json!(true)), "{first}");
    let trade_no = first["trade_no"].as_str().unwrap().to_owned();

    // The gateway stops and starts again on its data folder.
    let Shop { pay, gateway, dir } = shop;
    let notify_url = format!("{pay}/payments/callback");
    gateway.served.stop().await;
    let restarted = TestGateway::start(Config::for_tests(&notify_url, dir.path())).await;
    let (status, retry) = restarted.pay(json!({ "payment_id": payment_id })).await;
    assert_eq!(status, StatusCode::OK, "{retry}");
    assert_eq!(retry["trade_no"], trade_no.as_str());
    assert_eq!(retry["accepted"], true, "{retry}");
    assert_eq!(retry["callback_status"], 200);
    let paid = read_payment(&pay, &payment_id.to_string()).await;
    assert_eq!((paid["status"].clone(), paid["trade_no"].clone()), (json!("PAID"), json!(trade_no)));
    // The page still knows it.
    let page = reqwest::get(format!("{}/pay/{payment_id}", restarted.url)).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
});

shop_common::db_test!(async fn a_gateway_with_another_secret_is_refused_once_and_changes_nothing(db) {
    let order_id = Uuid::new_v4();
    let order_url = order_stub(HashMap::from([(
        order_id,
        json!({ "id": order_id, "user_id": 4, "status": "CONFIRMED", "amount_to_pay": "3.00" }),
    )]))
    .await;
    let pay_addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(&format!("http://{pay_addr}/payments/callback"), dir.path());
    config.gateway_secret = Secret::new("an impostor's key");
    let gateway = TestGateway::start(config).await;
    let pay = start_pay(&db, pay_addr, &order_url, &gateway.url).await;
    let payment = create_payment(&pay, order_id).await;
    let (status, outcome) = gateway.pay(json!({ "payment_id": payment["payment_id"] })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outcome["accepted"], false);
    assert_eq!(outcome["callback_status"], 401);
    assert_eq!(outcome["attempts"], 1, "a refusal is not retried");
    let unpaid = read_payment(&pay, payment["payment_id"].as_str().unwrap()).await;
    assert_eq!(unpaid["status"], "UNPAID");
});
