//! The gateway on port 0 against small stubs of the merchant's callback
//! (retries, refusals, signatures) and against the real pay service (no
//! broker) with a stub of the order service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use shop_common::api::pay::signature::{canonical, verify};
use shop_common::api::pay::DEV_GATEWAY_SECRET;
use shop_common::config::Secret;
use shop_common::service::ServiceConfig;
use shop_common::testing::TestDatabase;
use shop_gateway::Config;
use uuid::Uuid;

/// Serves `app` on a free loopback port; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn start_gateway(config: Config) -> String {
    let app = shop_gateway::SERVICE
        .start(ServiceConfig::for_tests_with("", config))
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    url
}

/// A merchant callback that answers 503 `failures` times, then 200, and
/// keeps every notification it received.
#[derive(Clone, Default)]
struct Merchant {
    failures: usize,
    received: Arc<Mutex<Vec<Value>>>,
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
                axum::Json(json!({ "result": "success" })).into_response()
            }
        }
        let url = serve(
            Router::new()
                .route("/payments/callback", axum::routing::post(callback))
                .with_state(self.clone()),
        )
        .await;
        format!("{url}/payments/callback")
    }
}

async fn api_pay(gateway: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{gateway}/api/pay"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_notification_is_signed_and_retried_until_accepted() {
    let merchant = Merchant {
        failures: 2,
        ..Merchant::default()
    };
    let notify_url = merchant.serve().await;
    let gateway = start_gateway(Config::for_tests()).await;
    let (payment_id, order_id) = (Uuid::new_v4(), Uuid::new_v4());
    let (status, outcome) = api_pay(
        &gateway,
        json!({ "payment_id": payment_id, "order_id": order_id, "amount": "12.3", "notify_url": notify_url }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["accepted"], true);
    assert_eq!(outcome["attempts"], 3);
    assert_eq!(outcome["callback_status"], 200);
    assert_eq!(outcome["callback_answer"], json!({ "result": "success" }));
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
        DEV_GATEWAY_SECRET.as_bytes(),
        &text,
        n["signature"].as_str().unwrap()
    ));
    assert!(!verify(
        b"another key",
        &text,
        n["signature"].as_str().unwrap()
    ));

    // Paying the same payment again re-sends the same trade number.
    let (_, again) = api_pay(
        &gateway,
        json!({ "payment_id": payment_id, "order_id": order_id, "amount": 12.30, "notify_url": notify_url }),
    )
    .await;
    assert_eq!(again["trade_no"], trade_no.as_str());
    assert_eq!(again["attempts"], 1);
    // ...but not for another amount.
    let (status, refused) = api_pay(
        &gateway,
        json!({ "payment_id": payment_id, "order_id": order_id, "amount": "1.00", "notify_url": notify_url }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["error"]["code"], "payment_conflict");
}

#[tokio::test]
async fn an_unreachable_merchant_is_tried_with_backoff_then_given_up() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let notify_url = format!(
        "http://{}/payments/callback",
        listener.local_addr().unwrap()
    );
    drop(listener);
    let gateway = start_gateway(Config::for_tests()).await;
    let started = std::time::Instant::now();
    let (status, outcome) = api_pay(
        &gateway,
        json!({ "payment_id": Uuid::new_v4(), "order_id": Uuid::new_v4(), "amount": "5", "notify_url": notify_url }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["accepted"], false);
    assert_eq!(outcome["attempts"], 3);
    assert_eq!(outcome["callback_status"], Value::Null);
    // 20 ms, then 40 ms between the three attempts.
    assert!(started.elapsed() >= std::time::Duration::from_millis(60));
}

#[tokio::test]
async fn bad_requests_are_answered_in_the_shop_error_shape() {
    let gateway = start_gateway(Config::for_tests()).await;
    let client = reqwest::Client::new();
    let good = json!({ "payment_id": Uuid::new_v4(), "order_id": Uuid::new_v4(), "amount": "5", "notify_url": "http://127.0.0.1:1/cb" });
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
        ("notify_url", json!("ftp://x/cb"), "invalid_notify_url"),
        ("notify_url", json!("not a url"), "invalid_notify_url"),
        ("order_id", json!("x"), "invalid_body"),
    ] {
        let mut body = good.clone();
        body[field] = value;
        cases.push((body.to_string(), StatusCode::BAD_REQUEST, code));
    }
    for (body, status, code) in cases {
        let response = client
            .post(format!("{gateway}/api/pay"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code, "{body}");
    }
    let response = client
        .get(format!(
            "{gateway}/pay/{}?order_id=x&amount=1&notify_url=http://a/b",
            Uuid::new_v4()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "invalid_query");
    let response = client
        .post(format!("{gateway}/pay/{}", Uuid::new_v4()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("order_id=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "invalid_form");
}

/// The order service's `GET /orders/{id}`, from a map.
async fn order_stub(orders: HashMap<Uuid, Value>) -> String {
    let orders = Arc::new(orders);
    serve(Router::new().route(
        "/orders/{id}",
        axum::routing::get(move |axum::extract::Path(id): axum::extract::Path<Uuid>| {
            let orders = orders.clone();
            async move {
                match orders.get(&id) {
                    Some(order) => axum::Json(order.clone()).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }
        }),
    ))
    .await
}

/// `POST {pay}/payments` for `order_id`: the payment.
async fn create_payment(client: &reqwest::Client, pay: &str, order_id: Uuid) -> Value {
    client
        .post(format!("{pay}/payments"))
        .json(&json!({ "order_id": order_id }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The pay service (no broker) on a free port, pointed at `gateway`.
async fn start_pay(db: &TestDatabase, order_url: &str, gateway: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = ServiceConfig::for_tests_with(&db.url, shop_pay::Config::for_tests(order_url));
    config.http_addr = addr;
    config.own.public_url = format!("http://{addr}");
    config.own.gateway_url = gateway.to_owned();
    let app = shop_pay::SERVICE.start(config).await.unwrap();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    format!("http://{addr}")
}

shop_common::db_test!(async fn a_person_pays_through_the_page_and_the_pay_service_accepts(db) {
    let order_id = Uuid::new_v4();
    let order_url = order_stub(HashMap::from([(
        order_id,
        json!({ "id": order_id, "user_id": 4, "status": "CONFIRMED", "amount_to_pay": "42.10" }),
    )]))
    .await;
    let gateway = start_gateway(Config::for_tests()).await;
    let pay = start_pay(&db, &order_url, &gateway).await;
    let client = reqwest::Client::new();
    let payment = create_payment(&client, &pay, order_id).await;
    let pay_url = payment["pay_url"].as_str().unwrap();
    assert!(pay_url.starts_with(&format!("{gateway}/pay/")), "{pay_url}");

    // The page shows the amount and a form carrying the pay URL's fields.
    let page = client.get(pay_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("42.10"), "{html}");
    let payment_id = payment["payment_id"].as_str().unwrap();
    assert!(html.contains(&format!("action=\"/pay/{payment_id}\"")), "{html}");
    assert!(html.contains(&format!("value=\"{pay}/payments/callback\"")), "{html}");

    // Pressing "Pay" posts the form; the pay service verifies and accepts.
    let form = [
        ("order_id", order_id.to_string()),
        ("amount", "42.10".to_owned()),
        ("notify_url", format!("{pay}/payments/callback")),
    ];
    let form_body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(':', "%3A").replace('/', "%2F")))
        .collect::<Vec<_>>()
        .join("&");
    let done = client
        .post(format!("{gateway}/pay/{payment_id}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("Payment done"));
    let paid: Value = client
        .get(format!("{pay}/payments/{payment_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(paid["status"], "PAID");
    let trade_no = paid["trade_no"].as_str().unwrap().to_owned();
    assert!(trade_no.starts_with("GW-"));

    // A second click: the same trade number, answered as a replay.
    let again = client
        .post(format!("{gateway}/pay/{payment_id}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let still: Value = client
        .get(format!("{pay}/payments/{payment_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(still["trade_no"], trade_no.as_str());
    assert_eq!(still["paid_at"], paid["paid_at"]);
});

shop_common::db_test!(async fn a_gateway_with_another_secret_is_refused_once_and_changes_nothing(db) {
    let order_id = Uuid::new_v4();
    let order_url = order_stub(HashMap::from([(
        order_id,
        json!({ "id": order_id, "user_id": 4, "status": "CONFIRMED", "amount_to_pay": "3.00" }),
    )]))
    .await;
    let mut config = Config::for_tests();
    config.gateway_secret = Secret::new("an impostor's key");
    let gateway = start_gateway(config).await;
    let pay = start_pay(&db, &order_url, &gateway).await;
    let client = reqwest::Client::new();
    let payment = create_payment(&client, &pay, order_id).await;
    let (status, outcome) = api_pay(
        &gateway,
        json!({
            "payment_id": payment["payment_id"], "order_id": order_id, "amount": "3.00",
            "notify_url": format!("{pay}/payments/callback"),
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outcome["accepted"], false);
    assert_eq!(outcome["callback_status"], 401);
    assert_eq!(outcome["attempts"], 1, "a refusal is not retried");
    assert_eq!(outcome["callback_answer"]["error"]["code"], "invalid_signature");
    let unpaid: Value = client
        .get(format!("{pay}/payments/{}", payment["payment_id"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unpaid["status"], "UNPAID");
});
