//! The pay API against a fresh database per test, on SQLite and on
//! PostgreSQL (`shop_common::db_test!`), with small axum stubs on port 0
//! playing the order service's internal endpoints (which take only the pay
//! service's signed calls) and the gateway's merchant API (which takes only
//! requests signed with the merchant key). Callers are test tokens
//! (`shop_common::testing::TestTokens`). No broker: a callback settles the
//! payment without publishing (the broker path is tested end to end in
//! `shop-gateway/tests/pay_flow.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mq_client::LocalTransactionState;
use serde_json::{json, Value};
use shop_common::auth::service::Verifier;
use shop_common::auth::{Keyring, ServiceCaller, ServiceKey};
use shop_common::testing::{migrated, RouterClient, TestDatabase};
use shop_common::{ApiError, Db};
use shop_pay::checker::{PayChecker, CHECK_GRACE_MS};
use shop_pay::config::{TEST_GATEWAY_SECRET, TEST_MERCHANT_KEY};
use shop_pay::signature::{canonical, sign};
use shop_pay::{router, AppState, Config, MIGRATIONS, SERVICE};
use uuid::Uuid;

/// The order service's orders, by id, what it settled, and how often it
/// was asked for an order.
#[derive(Clone, Default)]
struct OrderStub {
    orders: Arc<Mutex<HashMap<Uuid, Value>>>,
    /// (order, payment, outcome) of every settlement.
    settled: Arc<Mutex<Vec<(Uuid, Uuid, String)>>>,
    calls: Arc<AtomicUsize>,
}

impl OrderStub {
    fn add_for(&self, user_id: i64, status: &str, amount_to_pay: &str) -> Uuid {
        let id = Uuid::new_v4();
        self.orders.lock().unwrap().insert(
            id,
            json!({
                "id": id, "user_id": user_id, "goods_id": 1, "quantity": 1,
                "unit_price": "99.00", "amount_to_pay": amount_to_pay,
                "status": status, "created_at": 1, "updated_at": 1,
            }),
        );
        id
    }

    fn add(&self, status: &str, amount_to_pay: &str) -> Uuid {
        self.add_for(7, status, amount_to_pay)
    }

    fn set_status(&self, id: Uuid, status: &str) {
        self.orders.lock().unwrap().get_mut(&id).unwrap()["status"] = json!(status);
    }

    fn status(&self, id: Uuid) -> String {
        self.orders.lock().unwrap()[&id]["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Serves the order service's internal endpoints on a free port;
    /// returns its base URL.
    async fn serve(&self) -> String {
        async fn get_order(
            State(stub): State<OrderStub>,
            caller: ServiceCaller,
            axum::extract::Path(id): axum::extract::Path<Uuid>,
        ) -> Result<Response, ApiError> {
            caller.require(&["pay"])?;
            stub.calls.fetch_add(1, Ordering::SeqCst);
            match stub.orders.lock().unwrap().get(&id) {
                Some(order) => Ok(axum::Json(order.clone()).into_response()),
                None => Err(ApiError::not_found("order_not_found", "no")),
            }
        }
        async fn settle(
            State(stub): State<OrderStub>,
            caller: ServiceCaller,
            axum::extract::Path(id): axum::extract::Path<Uuid>,
            axum::Json(body): axum::Json<Value>,
        ) -> Result<axum::Json<Value>, ApiError> {
            caller.require(&["pay"])?;
            let payment: Uuid = body["payment_id"].as_str().unwrap().parse().unwrap();
            let mut orders = stub.orders.lock().unwrap();
            let order = orders
                .get_mut(&id)
                .ok_or_else(|| ApiError::not_found("order_not_found", "no"))?;
            if body["amount"] != order["amount_to_pay"] {
                return Err(ApiError::conflict("amount_mismatch", "no"));
            }
            let outcome = match order["status"].as_str().unwrap() {
                "CONFIRMED" => {
                    order["status"] = json!("PAID");
                    order["payment_id"] = json!(payment);
                    "paid"
                }
                "PAID" if order["payment_id"] == json!(payment) => "paid",
                "PAID" => return Err(ApiError::conflict("paid_by_another_payment", "no")),
                "CANCELLED" => "cancelled",
                _ => return Err(ApiError::conflict("order_not_payable", "no")),
            };
            stub.settled
                .lock()
                .unwrap()
                .push((id, payment, outcome.to_owned()));
            Ok(axum::Json(json!({ "order_id": id, "outcome": outcome })))
        }
        let auth = shop_common::testing::auth("order");
        let internal = Router::new()
            .route("/internal/orders/{id}", get(get_order))
            .route("/internal/orders/{id}/payments", post(settle));
        let app =
            shop_common::http::service_router(auth.protect(Router::new(), internal), self.clone());
        serve(app).await
    }
}

/// The gateway's merchant API: the payments registered with a request the
/// merchant signed.
#[derive(Clone, Default)]
struct GatewayStub {
    registered: Arc<Mutex<Vec<Value>>>,
}

impl GatewayStub {
    async fn serve(&self) -> String {
        async fn register(
            State((stub, verifier)): State<(GatewayStub, Arc<Verifier>)>,
            request: Request,
        ) -> Response {
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
            let path = parts.uri.path_and_query().unwrap().as_str();
            if verifier
                .verify("POST", path, &parts.headers, &bytes, shop_common::now_ms())
                .is_err()
            {
                return ApiError::unauthorized("merchant_unauthenticated", "no").into_response();
            }
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            stub.registered.lock().unwrap().push(body.clone());
            axum::Json(body).into_response()
        }
        let mut keyring = Keyring::default();
        keyring.insert(ServiceKey::new("shop", TEST_MERCHANT_KEY).unwrap());
        let verifier = Arc::new(Verifier::new(Arc::new(keyring)));
        serve(
            Router::new()
                .route("/api/payments", post(register))
                .with_state((self.clone(), verifier)),
        )
        .await
    }
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[derive(Clone)]
struct TestApp {
    api: RouterClient,
    db: Db,
    orders: OrderStub,
    gateway: GatewayStub,
}

async fn spawn_app(test_db: &TestDatabase) -> TestApp {
    let orders = OrderStub::default();
    let order_url = orders.serve().await;
    spawn_app_with(test_db, &order_url, orders).await
}

async fn spawn_app_with(test_db: &TestDatabase, order_url: &str, orders: OrderStub) -> TestApp {
    let gateway = GatewayStub::default();
    let mut config = Config::for_tests(order_url);
    config.gateway_url = gateway.serve().await;
    let db = migrated(test_db, MIGRATIONS).await;
    let auth = shop_common::testing::auth("pay");
    TestApp {
        api: RouterClient::new(router(AppState::without_broker(db.clone(), config, auth))),
        db,
        orders,
        gateway,
    }
}

impl std::ops::Deref for TestApp {
    type Target = RouterClient;

    fn deref(&self) -> &RouterClient {
        &self.api
    }
}

impl TestApp {
    /// Customer 7, who owns the stub's orders.
    fn ann(&self) -> RouterClient {
        self.api.customer(7)
    }

    /// A payment for a new CONFIRMED order of `amount`; returns (payment, order).
    async fn payment(&self, amount: &str) -> (Uuid, Uuid) {
        let order_id = self.orders.add("CONFIRMED", amount);
        let answer = self
            .ann()
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

shop_common::db_test!(async fn a_payment_is_created_once_per_confirmed_order_and_registered_at_the_gateway(db) {
    let app = spawn_app(&db).await;
    let order_id = app.orders.add("CONFIRMED", "12.30");
    let answer = app.ann().post("/payments", json!({ "order_id": order_id })).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert!(!answer.replayed);
    assert_eq!(answer.body["order_id"], order_id.to_string());
    assert_eq!(answer.body["user_id"], 7);
    assert_eq!(answer.body["amount"], "12.30");
    assert_eq!(answer.body["status"], "UNPAID");
    assert_eq!(answer.body["trade_no"], Value::Null);
    let payment_id = answer.body["payment_id"].as_str().unwrap().to_owned();
    let pay_url = answer.body["pay_url"].as_str().unwrap();
    assert!(pay_url.ends_with(&format!("/pay/{payment_id}")), "{pay_url}");
    assert!(!pay_url.contains("notify_url"), "the gateway knows where to notify: {pay_url}");
    // Registered at the gateway, signed with the merchant key.
    let registered = app.gateway.registered.lock().unwrap().clone();
    assert_eq!(registered, vec![json!({"payment_id": payment_id, "order_id": order_id, "amount": "12.30"})]);

    // Asked again: the same payment, without asking the order service.
    let again = app.ann().post("/payments", json!({ "order_id": order_id })).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert!(again.replayed);
    assert_eq!(again.body["payment_id"], payment_id.as_str());
    assert_eq!(app.orders.calls.load(Ordering::SeqCst), 1);
    assert_eq!(app.payment_count().await, 1);

    let read = app.ann().get(&format!("/payments/{payment_id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["amount"], "12.30");
    assert_eq!(read.body["status"], "UNPAID");
});

shop_common::db_test!(async fn nobody_pays_for_or_reads_another_users_payment(db) {
    // The finding: a payment could be created for someone else's order,
    // and every payment read.
    let app = spawn_app(&db).await;
    let order_id = app.orders.add("CONFIRMED", "12.30");
    for caller in [app.customer(8), app.anonymous()] {
        let answer = caller.post("/payments", json!({ "order_id": order_id })).await;
        assert!(
            matches!(answer.status, StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED),
            "{}",
            answer.body
        );
    }
    let answer = app.customer(8).post("/payments", json!({ "order_id": order_id })).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::NOT_FOUND, "order_not_found"));
    assert_eq!(app.payment_count().await, 0);

    let (payment_id, order_id) = app.payment("12.30").await;
    // Once it exists, the other customer still gets nothing.
    let answer = app.customer(8).post("/payments", json!({ "order_id": order_id })).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::NOT_FOUND, "order_not_found"));
    let path = format!("/payments/{payment_id}");
    let answer = app.customer(8).get(&path).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::NOT_FOUND, "payment_not_found"));
    let answer = app.anonymous().get(&path).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    assert_eq!(app.operator().get(&path).await.status, StatusCode::OK);
    assert_eq!(app.ann().get(&path).await.status, StatusCode::OK);
    assert_eq!(app.anonymous().get("/health").await.status, StatusCode::OK);
});

shop_common::db_test!(async fn racing_creations_agree_on_one_payment(db) {
    let app = spawn_app(&db).await;
    let order_id = app.orders.add("CONFIRMED", "5.00");
    let requests = (0..6).map(|_| {
        let app = app.clone();
        tokio::spawn(async move { app.ann().post("/payments", json!({ "order_id": order_id })).await })
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
        let answer = app.ann().post("/payments", json!({ "order_id": order_id })).await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{status}: {}", answer.body);
        assert_eq!(answer.code(), "order_not_payable");
        assert!(answer.body["error"]["message"].as_str().unwrap().contains(status));
    }
    let free = app.orders.add("CONFIRMED", "0.00");
    let answer = app.ann().post("/payments", json!({ "order_id": free })).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.code(), "nothing_to_pay");

    let answer = app.ann().post("/payments", json!({ "order_id": Uuid::new_v4() })).await;
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
    let answer = app.ann().post("/payments", json!({ "order_id": Uuid::new_v4() })).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.body);
    assert_eq!(answer.code(), "order_service_unavailable");
    assert!(!answer.body["error"]["message"].as_str().unwrap().contains("127.0.0.1"));
    assert_eq!(app.payment_count().await, 0);
});

shop_common::db_test!(async fn a_signed_callback_pays_once_and_a_replay_changes_nothing(db) {
    let app = spawn_app(&db).await;
    let (payment_id, order_id) = app.payment("12.30").await;
    let callback = notification(TEST_GATEWAY_SECRET, payment_id, order_id, 1230, "GW-1");
    let answer = app.post("/payments/callback", callback.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, json!({ "result": "success" }));
    let (status, trade_no, paid_at) = app.payment_row(payment_id).await;
    assert_eq!(status, "PAID");
    assert_eq!(trade_no.as_deref(), Some("GW-1"));
    assert!(paid_at.is_some());
    // The order took the payment (a signed call of the pay service).
    assert_eq!(app.orders.status(order_id), "PAID");
    assert_eq!(app.orders.settled.lock().unwrap().clone(), vec![(order_id, payment_id, "paid".to_owned())]);

    // The same notification again (the gateway retries): the same answer,
    // the row untouched.
    let replay = app.post("/payments/callback", callback).await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.body);
    assert_eq!(replay.body, json!({ "result": "success" }));
    assert_eq!(app.payment_row(payment_id).await, (status.clone(), trade_no.clone(), paid_at));

    // A second, correctly signed payment with another trade number: refused.
    let second = notification(TEST_GATEWAY_SECRET, payment_id, order_id, 1230, "GW-2");
    let answer = app.post("/payments/callback", second).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert_eq!(answer.code(), "already_paid");
    assert_eq!(app.payment_row(payment_id).await, (status, trade_no, paid_at));

    let read = app.ann().get(&format!("/payments/{payment_id}")).await;
    assert_eq!(read.body["status"], "PAID");
    assert_eq!(read.body["trade_no"], "GW-1");

    // A paid payment is still the order's payment.
    let again = app.ann().post("/payments", json!({ "order_id": order_id })).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["status"], "PAID");
});

shop_common::db_test!(async fn a_payment_for_a_cancelled_order_is_refunded_not_booked(db) {
    // The finding: a callback for an order that is CANCELLED was accepted,
    // the payment PAID, points credited, log written, the order still
    // CANCELLED.
    let app = spawn_app(&db).await;
    let (payment_id, order_id) = app.payment("12.30").await;
    app.orders.set_status(order_id, "CANCELLED");
    let callback = notification(TEST_GATEWAY_SECRET, payment_id, order_id, 1230, "GW-7");
    for _ in 0..2 {
        let answer = app.post("/payments/callback", callback.clone()).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.body, json!({ "result": "refunded" }));
        let (status, trade_no, _) = app.payment_row(payment_id).await;
        assert_eq!((status.as_str(), trade_no.as_deref()), ("REFUNDED", Some("GW-7")));
    }
    assert_eq!(app.orders.status(order_id), "CANCELLED");
    assert_eq!(app.orders.settled.lock().unwrap().len(), 1, "a replay asks nobody");
    let read = app.ann().get(&format!("/payments/{payment_id}")).await;
    assert_eq!(read.body["status"], "REFUNDED");
    assert!(read.body["refunded_at"].is_i64(), "{}", read.body);
    // Another trade number for it is still a second payment, refused.
    let answer = app
        .post("/payments/callback", notification(TEST_GATEWAY_SECRET, payment_id, order_id, 1230, "GW-8"))
        .await;
    assert_eq!((answer.status, answer.code()), (StatusCode::CONFLICT, "already_paid"));
    // The invariant: no PAID payment whose order is not PAID.
    let paid: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payments WHERE status = 'PAID'")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(paid, 0);
});

shop_common::db_test!(async fn concurrent_callbacks_pay_once(db) {
    let app = spawn_app(&db).await;
    let (payment_id, order_id) = app.payment("3.00").await;
    let callback = notification(TEST_GATEWAY_SECRET, payment_id, order_id, 300, "GW-9");
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

    // Signed with another key, and with the public development default
    // that once was the pay service's secret.
    for key in ["not-the-secret", "dev-gateway-secret-change-me"] {
        let forged = notification(key, payment_id, order_id, 1230, "GW-1");
        let answer = app.post("/payments/callback", forged).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
        assert_eq!(answer.code(), "invalid_signature");
    }

    // A good signature, then the amount changed in transit.
    let mut tampered = notification(TEST_GATEWAY_SECRET, payment_id, order_id, 1230, "GW-1");
    tampered["amount"] = json!("0.01");
    let answer = app.post("/payments/callback", tampered).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.code(), "invalid_signature");

    // A good signature with one hex digit changed, and none at all.
    let mut flipped = notification(TEST_GATEWAY_SECRET, payment_id, order_id, 1230, "GW-1");
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
            notification(TEST_GATEWAY_SECRET, Uuid::new_v4(), order_id, 1230, "GW-1"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.code(), "payment_not_found");
    let answer = app
        .post(
            "/payments/callback",
            notification(TEST_GATEWAY_SECRET, payment_id, Uuid::new_v4(), 1230, "GW-1"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.code(), "order_mismatch");
    for cents in [1229, 1231, 123] {
        let answer = app
            .post(
                "/payments/callback",
                notification(TEST_GATEWAY_SECRET, payment_id, order_id, cents, "GW-1"),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{cents}");
        assert_eq!(answer.code(), "amount_mismatch");
    }

    assert_eq!(app.payment_row(payment_id).await, unpaid);
    assert_eq!(app.orders.status(order_id), "CONFIRMED");
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
    let ann = app.ann();
    for (method, path, content_type, body, status, code) in cases {
        let answer = ann.send(method, path, content_type, body.to_owned()).await;
        assert_eq!(answer.status, status, "{method} {path} {body}: {}", answer.body);
        assert_eq!(answer.code(), code, "{method} {path} {body}");
        assert!(answer.body["error"]["message"].is_string());
    }

    // Well-formed JSON with values out of range.
    let (payment_id, order_id) = app.payment("1.00").await;
    let mut callback = notification(TEST_GATEWAY_SECRET, payment_id, order_id, 100, "GW-1");
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
    let (payment_id, _) = app.payment("2.00").await;
    let (refunded_id, _) = app.payment("3.00").await;
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
    // Marking it again changes nothing, nor refunding it.
    assert!(!shop_pay::repo::mark_paid_db(&app.db, payment_id, "GW-2", Some("M2"), now).await.unwrap());
    assert!(!shop_pay::repo::mark_refunded_db(&app.db, payment_id, "GW-2", Some("M3"), now).await.unwrap());
    assert_eq!(decide(payment_id, "M1", now).await, LocalTransactionState::Commit);
    // REFUNDED by R1 (its PAY_REFUND): R1 commits, others roll back.
    assert!(shop_pay::repo::mark_refunded_db(&app.db, refunded_id, "GW-3", Some("R1"), now).await.unwrap());
    assert_eq!(decide(refunded_id, "R1", now).await, LocalTransactionState::Commit);
    assert_eq!(decide(refunded_id, "R2", now).await, LocalTransactionState::Rollback);
    assert!(!shop_pay::repo::mark_paid_db(&app.db, refunded_id, "GW-3", Some("M4"), now).await.unwrap());
});

shop_common::db_test!(async fn the_application_serves_on_a_free_port_and_stops(db) {
    let orders = OrderStub::default();
    let order_url = orders.serve().await;
    let mut config = shop_pay::config_for_tests(&db.url, &order_url);
    config.sessions = shop_common::testing::test_sessions();
    let app = SERVICE.start(config).await.unwrap();
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
    let status = reqwest::get(format!("http://127.0.0.1:{port}/payments/{}", Uuid::new_v4()))
        .await
        .unwrap()
        .status();
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
});

shop_common::db_test!(async fn operators_read_payments_by_order_and_in_pages(db) {
    let app = spawn_app(&db).await;
    let mut made = Vec::new();
    for amount in ["1.00", "2.00", "3.00"] {
        made.push(app.payment(amount).await);
    }
    let (paid, paid_order) = made[0];
    let callback = notification(TEST_GATEWAY_SECRET, paid, paid_order, 100, "GW-OPS");
    assert_eq!(app.post("/payments/callback", callback).await.status, StatusCode::OK);
    made.sort_by_key(|(_, order)| *order);

    let one = app.operator().get(&format!("/operator/payments?order_id={paid_order}")).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let payments = one.body["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1, "{}", one.body);
    assert_eq!(payments[0]["payment_id"], paid.to_string());
    assert_eq!(payments[0]["status"], "PAID");
    assert_eq!(payments[0]["trade_no"], "GW-OPS");
    assert!(payments[0].get("pay_msg_id").is_some(), "{}", one.body);
    assert!(one.body["next"].is_null());
    let none = app.operator().get(&format!("/operator/payments?order_id={}", Uuid::new_v4())).await;
    assert_eq!(none.body["payments"], json!([]));

    let first = app.operator().get("/operator/payments?limit=2").await;
    assert_eq!(first.body["payments"].as_array().unwrap().len(), 2, "{}", first.body);
    assert_eq!(first.body["next"], made[1].1.to_string());
    let second = app.operator().get(&format!("/operator/payments?limit=2&after={}", made[1].1)).await;
    assert_eq!(second.body["payments"][0]["order_id"], made[2].1.to_string());
    assert!(second.body["next"].is_null());

    assert_eq!(app.ann().get("/operator/payments").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.api.anonymous().get("/operator/payments").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.operator().get("/operator/payments?limit=0").await.status, StatusCode::BAD_REQUEST);
});
