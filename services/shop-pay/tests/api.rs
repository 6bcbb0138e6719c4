//! The pay API against a fresh database per test, on SQLite and on
//! PostgreSQL (`shop_common::db_test!`), with a small axum stub on port 0
//! playing the order service's `GET /orders/{id}`. No broker: a callback
//! marks the payment PAID without publishing (the broker path is tested
//! end to end in `shop-gateway/tests/pay_flow.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use mq_client::LocalTransactionState;
use serde_json::{json, Value};
use shop_common::service::ServiceConfig;
use shop_common::testing::{migrated, RouterClient, TestDatabase};
use shop_common::Db;
use shop_pay::checker::{PayChecker, CHECK_GRACE_MS};
use shop_pay::config::DEV_GATEWAY_SECRET;
use shop_pay::signature::{canonical, sign};
use shop_pay::{router, AppState, Config, MIGRATIONS, SERVICE};
use uuid::Uuid;

/// The order service's answers, by order id, and how often it was asked.
#[derive(Clone, Default)]
struct OrderStub {
    orders: Arc<Mutex<HashMap<Uuid, Value>>>,
    calls: Arc<AtomicUsize>,
}

impl OrderStub {
    fn add(&self, status: &str, amount_to_pay: &str) -> Uuid {
        let id = Uuid::new_v4();
        self.orders.lock().unwrap().insert(
            id,
            json!({
                "id": id, "user_id": 7, "goods_id": 1, "quantity": 1,
                "unit_price": "99.00", "amount_to_pay": amount_to_pay,
                "status": status, "created_at": 1, "updated_at": 1,
            }),
        );
        id
    }

    /// Serves `GET /orders/{id}` on a free port; returns its base URL.
    async fn serve(&self) -> String {
        async fn get_order(
            State(stub): State<OrderStub>,
            axum::extract::Path(id): axum::extract::Path<Uuid>,
        ) -> Response {
            stub.calls.fetch_add(1, Ordering::SeqCst);
            match stub.orders.lock().unwrap().get(&id) {
                Some(order) => axum::Json(order.clone()).into_response(),
                None => (
                    StatusCode::NOT_FOUND,
                    axum::Json(json!({"error": {"code": "order_not_found", "message": "no"}})),
                )
                    .into_response(),
            }
        }
        let app = Router::new()
            .route("/orders/{id}", axum::routing::get(get_order))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }
}

#[derive(Clone)]
struct TestApp {
    api: RouterClient,
    db: Db,
    orders: OrderStub,
}

async fn spawn_app(test_db: &TestDatabase) -> TestApp {
    let orders = OrderStub::default();
    let order_url = orders.serve().await;
    spawn_app_with(test_db, &order_url, orders).await
}

async fn spawn_app_with(test_db: &TestDatabase, order_url: &str, orders: OrderStub) -> TestApp {
    let db = migrated(test_db, MIGRATIONS).await;
    let config = Config::for_tests(order_url);
    TestApp {
        api: RouterClient::new(router(AppState::without_broker(db.clone(), config))),
        db,
        orders,
    }
}

impl std::ops::Deref for TestApp {
    type Target = RouterClient;

    fn deref(&self) -> &RouterClient {
        &self.api
    }
}

impl TestApp {
    /// A payment for a new CONFIRMED order of `amount`; returns (payment, order).
    async fn payment(&self, amount: &str) -> (Uuid, Uuid) {
        let order_id = self.orders.add("CONFIRMED", amount);
        let answer = self
            .post("/payments", json!({ "order_id": order_id }))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        (
            answer.body["payment_id"].as_str().unwrap().parse().unwrap(),
            order_id,
        )
    }

    async fn payment_row(&self, id: Uuid) -> (String, Option<String>, Option<i64>) {
        sqlx::query_as("SELECT status, trade_no, paid_at FROM payments WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }

    async fn payment_count(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM payments")
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }
}

/// A notification signed with `secret` over exactly these fields.
fn notification(
    secret: &str,
    payment_id: Uuid,
    order_id: Uuid,
    cents: i64,
    trade_no: &str,
) -> Value {
    let signature = sign(
        secret.as_bytes(),
        &canonical(payment_id, order_id, cents, trade_no),
    );
    json!({
        "payment_id": payment_id,
        "order_id": order_id,
        "amount": format!("{}.{:02}", cents / 100, cents % 100),
        "trade_no": trade_no,
        "signature": signature,
    })
}

shop_common::db_test!(async fn a_payment_is_created_once_per_confirmed_order(db) {
    let app = spawn_app(&db).await;
    let order_id = app.orders.add("CONFIRMED", "12.30");
    let answer = app.post("/payments", json!({ "order_id": order_id })).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert!(!answer.replayed);
    assert_eq!(answer.body["order_id"], order_id.to_string());
    assert_eq!(answer.body["user_id"], 7);
    assert_eq!(answer.body["amount"], "12.30");
    assert_eq!(answer.body["status"], "UNPAID");
    assert_eq!(answer.body["trade_no"], Value::Null);
    let payment_id = answer.body["payment_id"].as_str().unwrap().to_owned();
    let pay_url = answer.body["pay_url"].as_str().unwrap();
    assert_eq!(
        pay_url,
        format!(
            "http://127.0.0.1:8088/pay/{payment_id}?order_id={order_id}&amount=12.30\
             &notify_url=http%3A%2F%2F127.0.0.1%3A8085%2Fpayments%2Fcallback"
        )
    );

    // Asked again: the same payment, without asking the order service.
    let again = app.post("/payments", json!({ "order_id": order_id })).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert!(again.replayed);
    assert_eq!(again.body["payment_id"], payment_id.as_str());
    assert_eq!(app.orders.calls.load(Ordering::SeqCst), 1);
    assert_eq!(app.payment_count().await, 1);

    let read = app.get(&format!("/payments/{payment_id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["amount"], "12.30");
    assert_eq!(read.body["status"], "UNPAID");
});

shop_common::db_test!(async fn racing_creations_agree_on_one_payment(db) {
    let app = spawn_app(&db).await;
    let order_id = app.orders.add("CONFIRMED", "5.00");
    let requests = (0..6).map(|_| {
        let app = app.clone();
        tokio::spawn(async move { app.post("/payments", json!({ "order_id": order_id })).await })
    });
    let mut ids = std::collections::BTreeSet::new();
    let mut created = 0;
    for request in requests {
        let answer = request.await.unwrap();
        assert!(answer.status.is_success(), "{}", answer.body);
        created += usize::from(answer.status == StatusCode::CREATED);
        ids.insert(answer.body["payment_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(created >= 1);
    assert_eq!(app.payment_count().await, 1);
});

shop_common::db_test!(async fn only_a_confirmed_order_with_something_to_pay_gets_a_payment(db) {
    let app = spawn_app(&db).await;
    for status in ["PENDING", "CANCELLED", "PAID"] {
        let order_id = app.orders.add(status, "10.00");
        let answer = app.post("/payments", json!({ "order_id": order_id })).await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{status}: {}", answer.body);
        assert_eq!(answer.code(), "order_not_payable");
        assert!(answer.body["error"]["message"].as_str().unwrap().contains(status));
    }
    let free = app.orders.add("CONFIRMED", "0.00");
    let answer = app.post("/payments", json!({ "order_id": free })).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.code(), "nothing_to_pay");

    let answer = app.post("/payments", json!({ "order_id": Uuid::new_v4() })).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.code(), "order_not_found");
    assert_eq!(app.payment_count().await, 0);
});

shop_common::db_test!(async fn an_unreachable_order_service_is_a_503_that_changes_nothing(db) {
    // A port that was free a moment ago: connection refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let app = spawn_app_with(&db, &url, OrderStub::default()).await;
    let answer = app.post("/payments", json!({ "order_id": Uuid::new_v4() })).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.body);
    assert_eq!(answer.code(), "order_service_unavailable");
    assert!(!answer.body["error"]["message"].as_str().unwrap().contains("127.0.0.1"));
    assert_eq!(app.payment_count().await, 0);
});

shop_common::db_test!(async fn a_signed_callback_pays_once_and_a_replay_changes_nothing(db) {
    let app = spawn_app(&db).await;
    let (payment_id, order_id) = app.payment("12.30").await;
    let callback = notification(DEV_GATEWAY_SECRET, payment_id, order_id, 1230, "GW-1");
    let answer = app.post("/payments/callback", callback.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, json!({ "result": "success" }));
    let (status, trade_no, paid_at) = app.payment_row(payment_id).await;
    assert_eq!(status, "PAID");
    assert_eq!(trade_no.as_deref(), Some("GW-1"));
    assert!(paid_at.is_some());

    // The same notification again (the gateway retries): the same answer,
    // the row untouched.
    let replay = app.post("/payments/callback", callback).await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.body);
    assert_eq!(replay.body, json!({ "result": "success" }));
    assert_eq!(app.payment_row(payment_id).await, (status.clone(), trade_no.clone(), paid_at));

    // A second, correctly signed payment with another trade number: refused.
    let second = notification(DEV_GATEWAY_SECRET, payment_id, order_id, 1230, "GW-2");
    let answer = app.post("/payments/callback", second).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert_eq!(answer.code(), "already_paid");
    assert_eq!(app.payment_row(payment_id).await, (status, trade_no, paid_at));

    let read = app.get(&format!("/payments/{payment_id}")).await;
    assert_eq!(read.body["status"], "PAID");
    assert_eq!(read.body["trade_no"], "GW-1");

    // A paid payment is still the order's payment.
    let again = app.post("/payments", json!({ "order_id": order_id })).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["status"], "PAID");
});

shop_common::db_test!(async fn concurrent_callbacks_pay_once(db) {
    let app = spawn_app(&db).await;
    let (payment_id, order_id) = app.payment("3.00").await;
    let callback = notification(DEV_GATEWAY_SECRET, payment_id, order_id, 300, "GW-9");
    let requests: Vec<_> = (0..5)
        .map(|_| {
            let app = app.clone();
            let callback = callback.clone();
            tokio::spawn(async move { app.post("/payments/callback", callback).await })
        })
        .collect();
    for request in requests {
        let answer = request.await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    assert_eq!(app.payment_row(payment_id).await.0, "PAID");
});

shop_common::db_test!(async fn forged_tampered_and_mismatched_callbacks_change_nothing(db) {
    let app = spawn_app(&db).await;
    let (payment_id, order_id) = app.payment("12.30").await;
    let unpaid = app.payment_row(payment_id).await;
    assert_eq!(unpaid.0, "UNPAID");

    // Signed with another key.
    let forged = notification("not-the-secret", payment_id, order_id, 1230, "GW-1");
    let answer = app.post("/payments/callback", forged).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert_eq!(answer.code(), "invalid_signature");

    // A good signature, then the amount changed in transit.
    let mut tampered = notification(DEV_GATEWAY_SECRET, payment_id, order_id, 1230, "GW-1");
    tampered["amount"] = json!("0.01");
    let answer = app.post("/payments/callback", tampered).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.code(), "invalid_signature");

    // A good signature with one hex digit changed, and none at all.
    let mut flipped = notification(DEV_GATEWAY_SECRET, payment_id, order_id, 1230, "GW-1");
    let mut signature = flipped["signature"].as_str().unwrap().to_owned();
    let last = if signature.ends_with('0') { "1" } else { "0" };
    signature.replace_range(63.., last);
    flipped["signature"] = json!(signature);
    let answer = app.post("/payments/callback", flipped.clone()).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    flipped["signature"] = json!("");
    let answer = app.post("/payments/callback", flipped).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);

    // Correctly signed, but for an unknown payment, another order, another amount.
    let answer = app
        .post(
            "/payments/callback",
            notification(DEV_GATEWAY_SECRET, Uuid::new_v4(), order_id, 1230, "GW-1"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.code(), "payment_not_found");
    let answer = app
        .post(
            "/payments/callback",
            notification(DEV_GATEWAY_SECRET, payment_id, Uuid::new_v4(), 1230, "GW-1"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.code(), "order_mismatch");
    for cents in [1229, 1231, 123] {
        let answer = app
            .post(
                "/payments/callback",
                notification(DEV_GATEWAY_SECRET, payment_id, order_id, cents, "GW-1"),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{cents}");
        assert_eq!(answer.code(), "amount_mismatch");
    }

    assert_eq!(app.payment_row(payment_id).await, unpaid);
});

/// Method, path, content type, body, expected status and error code.
type BadInput = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    StatusCode,
    &'static str,
);

shop_common::db_test!(async fn bad_input_is_answered_in_the_shop_error_shape(db) {
    let app = spawn_app(&db).await;
    let cases: Vec<BadInput> = vec![
        ("POST", "/payments", Some("application/json"), "{not json", StatusCode::BAD_REQUEST, "invalid_json"),
        ("POST", "/payments", Some("application/json"), r#"{"order_id": 5}"#, StatusCode::BAD_REQUEST, "invalid_body"),
        ("POST", "/payments", Some("application/json"), r#"{"order_id": "nope"}"#, StatusCode::BAD_REQUEST, "invalid_body"),
        ("POST", "/payments", Some("application/json"), r#"{}"#, StatusCode::BAD_REQUEST, "invalid_body"),
        ("POST", "/payments", Some("application/json"), r#"{"order_id": "6f1c2a3b-0000-4000-8000-000000000001", "x": 1}"#, StatusCode::BAD_REQUEST, "invalid_body"),
        ("POST", "/payments", None, r#"{"order_id": "6f1c2a3b-0000-4000-8000-000000000001"}"#, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        ("POST", "/payments/callback", Some("application/json"), r#"{"trade_no": "GW"#, StatusCode::BAD_REQUEST, "invalid_json"),
        ("POST", "/payments/callback", Some("application/json"), r#"{"payment_id": 1}"#, StatusCode::BAD_REQUEST, "invalid_body"),
        ("GET", "/payments/42", None, "", StatusCode::BAD_REQUEST, "invalid_path"),
        ("GET", "/payments/6f1c2a3b-0000-4000-8000-000000000001", None, "", StatusCode::NOT_FOUND, "payment_not_found"),
        ("DELETE", "/payments", None, "", StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        ("GET", "/nowhere", None, "", StatusCode::NOT_FOUND, "not_found"),
    ];
    for (method, path, content_type, body, status, code) in cases {
        let answer = app.send(method, path, content_type, body.to_owned()).await;
        assert_eq!(answer.status, status, "{method} {path} {body}: {}", answer.body);
        assert_eq!(answer.code(), code, "{method} {path} {body}");
        assert!(answer.body["error"]["message"].is_string());
    }

    // Well-formed JSON with values out of range.
    let (payment_id, order_id) = app.payment("1.00").await;
    let mut callback = notification(DEV_GATEWAY_SECRET, payment_id, order_id, 100, "GW-1");
    for (field, value, code) in [
        ("amount", json!("ten"), "invalid_body"),
        ("amount", json!(true), "invalid_body"),
        ("amount", json!("0.001"), "invalid_amount"),
        ("amount", json!(-1), "invalid_amount"),
        ("trade_no", json!("GW-1&amount=9"), "invalid_trade_no"),
        ("trade_no", json!(""), "invalid_trade_no"),
        ("trade_no", json!(12), "invalid_body"),
        ("payment_id", json!("x"), "invalid_body"),
    ] {
        let saved = callback[field].clone();
        callback[field] = value.clone();
        let answer = app.post("/payments/callback", callback.clone()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{field}={value}: {}", answer.body);
        assert_eq!(answer.code(), code, "{field}={value}");
        callback[field] = saved;
    }
    // A number amount signs the same text as the string.
    callback["amount"] = json!(1.0);
    let answer = app.post("/payments/callback", callback).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(app.payment_row(payment_id).await.0, "PAID");
});

shop_common::db_test!(async fn the_check_back_reads_the_payment(db) {
    let app = spawn_app(&db).await;
    let (payment_id, order_id) = app.payment("2.00").await;
    let now = shop_common::now_ms();
    let decide = |id: Uuid, msg: &'static str, born: i64| {
        let db = app.db.clone();
        async move { PayChecker::decide(&db, id, msg, born, now).await.unwrap() }
    };
    // Unknown payment: nothing to deliver.
    assert_eq!(decide(Uuid::new_v4(), "M1", now).await, LocalTransactionState::Rollback);
    // UNPAID: a young half message may still be in its local transaction;
    // an old one never committed.
    assert_eq!(decide(payment_id, "M1", now - 1000).await, LocalTransactionState::Unknown);
    assert_eq!(
        decide(payment_id, "M1", now - CHECK_GRACE_MS).await,
        LocalTransactionState::Rollback
    );
    // PAID by M1: M1 commits, any other message (a replay's) rolls back.
    assert!(shop_pay::repo::mark_paid_db(&app.db, payment_id, "GW-1", Some("M1"), now).await.unwrap());
    assert_eq!(decide(payment_id, "M1", now).await, LocalTransactionState::Commit);
    assert_eq!(decide(payment_id, "M1", now - 10 * CHECK_GRACE_MS).await, LocalTransactionState::Commit);
    assert_eq!(decide(payment_id, "M2", now).await, LocalTransactionState::Rollback);
    // Marking it again changes nothing.
    assert!(!shop_pay::repo::mark_paid_db(&app.db, payment_id, "GW-2", Some("M2"), now).await.unwrap());
    assert_eq!(decide(payment_id, "M1", now).await, LocalTransactionState::Commit);
    let _ = order_id;
});

shop_common::db_test!(async fn the_application_serves_on_a_free_port_and_stops(db) {
    let orders = OrderStub::default();
    let order_url = orders.serve().await;
    let app = SERVICE
        .start(ServiceConfig::for_tests_with(&db.url, Config::for_tests(&order_url)))
        .await
        .unwrap();
    let port = app.port();
    assert_ne!(port, 0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let health: Value = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({ "status": "ok" }));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
});
