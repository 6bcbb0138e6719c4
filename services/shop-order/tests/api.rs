//! The order service on port 0 with a fresh database per test, on SQLite
//! and on PostgreSQL (`shop_common::db_test!`): a name server and a broker
//! for the saga's transactional producer and the consumers, and one stub
//! playing the goods, coupon and user services' side of AUTH.md's route
//! map (the public `GET /goods/{id}`, the internal reads and reservations,
//! which refuse any caller but a signed order service). Callers are test
//! tokens (`shop_common::testing::TestTokens`) and test service keys.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mq_client::{
    ClientConfig, ConsumeStatus, Listener, Message, MessageExt, Producer, ProducerConfig,
    PushConsumer, PushConsumerConfig,
};
use mq_testkit::Cluster;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use shop_common::api::coupon::{CouponStatus, CouponView};
use shop_common::api::goods::GoodsView;
use shop_common::api::user::UserView;
use shop_common::auth::{Keyring, ServiceCaller, ServiceKey};
use shop_common::events::{self, OrderCancelled, PaymentSucceeded, ORDER_CANCEL, PAY_SUCCESS};
use shop_common::testing::{RouterClient, Served, TestDatabase};
use shop_common::ApiError;
use uuid::Uuid;

const LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// The stub of the goods, coupon and user services.

#[derive(Default)]
struct StubData {
    /// id → (price, stock)
    goods: HashMap<i64, (Decimal, i64)>,
    /// id → balance
    users: HashMap<i64, Decimal>,
    /// id → (owner, amount, used)
    coupons: HashMap<i64, (i64, Decimal, bool)>,
    /// Users whose balance reservations are refused (a frozen account).
    frozen: Vec<i64>,
    /// (caller, path) of every internal call.
    calls: Vec<(String, String)>,
}

#[derive(Clone, Default)]
struct Stub(Arc<Mutex<StubData>>);

fn refusal(status: StatusCode, code: &'static str) -> Response {
    ApiError::new(status, code, code).into_response()
}

impl Stub {
    fn with<T>(&self, f: impl FnOnce(&mut StubData) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }

    fn record(&self, caller: &ServiceCaller, path: String) -> Result<(), ApiError> {
        self.with(|d| d.calls.push((caller.0.clone(), path)));
        caller.require(&["order"])
    }

    async fn serve(&self) -> String {
        async fn goods(
            State(s): State<Stub>,
            axum::extract::Path(id): axum::extract::Path<i64>,
        ) -> Response {
            match s.with(|d| d.goods.get(&id).copied()) {
                Some((price, stock)) => axum::Json(GoodsView {
                    id,
                    name: "Tea".into(),
                    price,
                    stock,
                    created_at: 1,
                })
                .into_response(),
                None => refusal(StatusCode::NOT_FOUND, "goods_not_found"),
            }
        }
        async fn reserve_stock(
            State(s): State<Stub>,
            caller: ServiceCaller,
            axum::extract::Path(id): axum::extract::Path<i64>,
            axum::Json(body): axum::Json<Value>,
        ) -> Response {
            if let Err(e) = s.record(&caller, format!("/internal/goods/{id}/reservations")) {
                return e.into_response();
            }
            let quantity = body["quantity"].as_i64().unwrap();
            s.with(|d| match d.goods.get_mut(&id) {
                Some((_, stock)) if *stock >= quantity => {
                    *stock -= quantity;
                    axum::Json(json!({"ok": true})).into_response()
                }
                Some(_) => refusal(StatusCode::CONFLICT, "insufficient_stock"),
                None => refusal(StatusCode::NOT_FOUND, "goods_not_found"),
            })
        }
        async fn user(
            State(s): State<Stub>,
            caller: ServiceCaller,
            axum::extract::Path(id): axum::extract::Path<i64>,
        ) -> Response {
            if let Err(e) = s.record(&caller, format!("/internal/users/{id}")) {
                return e.into_response();
            }
            match s.with(|d| d.users.get(&id).copied()) {
                Some(balance) => axum::Json(UserView {
                    id,
                    name: "Ann".into(),
                    balance,
                    created_at: 1,
                })
                .into_response(),
                None => refusal(StatusCode::NOT_FOUND, "user_not_found"),
            }
        }
        async fn reserve_balance(
            State(s): State<Stub>,
            caller: ServiceCaller,
            axum::extract::Path(id): axum::extract::Path<i64>,
            axum::Json(body): axum::Json<Value>,
        ) -> Response {
            if let Err(e) = s.record(
                &caller,
                format!("/internal/users/{id}/balance/reservations"),
            ) {
                return e.into_response();
            }
            let amount: Decimal = body["amount"].as_str().unwrap().parse().unwrap();
            s.with(|d| {
                if d.frozen.contains(&id) {
                    return refusal(StatusCode::CONFLICT, "account_frozen");
                }
                match d.users.get_mut(&id) {
                    Some(balance) if *balance >= amount => {
                        *balance -= amount;
                        axum::Json(json!({"ok": true})).into_response()
                    }
                    Some(_) => refusal(StatusCode::CONFLICT, "insufficient_balance"),
                    None => refusal(StatusCode::NOT_FOUND, "user_not_found"),
                }
            })
        }
        async fn coupon(
            State(s): State<Stub>,
            caller: ServiceCaller,
            axum::extract::Path(id): axum::extract::Path<i64>,
        ) -> Response {
            if let Err(e) = s.record(&caller, format!("/internal/coupons/{id}")) {
                return e.into_response();
            }
            match s.with(|d| d.coupons.get(&id).copied()) {
                Some((user_id, amount, used)) => axum::Json(CouponView {
                    id,
                    user_id,
                    amount,
                    status: if used {
                        CouponStatus::Used
                    } else {
                        CouponStatus::Unused
                    },
                    order_id: None,
                    used_at: None,
                    created_at: 1,
                })
                .into_response(),
                None => refusal(StatusCode::NOT_FOUND, "coupon_not_found"),
            }
        }
        async fn use_coupon(
            State(s): State<Stub>,
            caller: ServiceCaller,
            axum::extract::Path(id): axum::extract::Path<i64>,
        ) -> Response {
            if let Err(e) = s.record(&caller, format!("/internal/coupons/{id}/use")) {
                return e.into_response();
            }
            s.with(|d| match d.coupons.get_mut(&id) {
                Some((_, _, used)) if !*used => {
                    *used = true;
                    axum::Json(json!({"ok": true})).into_response()
                }
                Some(_) => refusal(StatusCode::CONFLICT, "coupon_used"),
                None => refusal(StatusCode::NOT_FOUND, "coupon_not_found"),
            })
        }
        let auth = shop_common::testing::auth("goods");
        let public = Router::new().route("/goods/{id}", get(goods));
        let internal = Router::new()
            .route("/internal/goods/{id}/reservations", post(reserve_stock))
            .route("/internal/users/{id}", get(user))
            .route(
                "/internal/users/{id}/balance/reservations",
                post(reserve_balance),
            )
            .route("/internal/coupons/{id}", get(coupon))
            .route("/internal/coupons/{id}/use", post(use_coupon));
        let app = shop_common::http::service_router(auth.protect(public, internal), self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }
}

// ---------------------------------------------------------------------------
// The order service under test.

/// Client settings for tests: loopback, short intervals.
fn client(mut config: ClientConfig) -> ClientConfig {
    config.client_ip = "127.0.0.1".into();
    config.poll_name_server_interval = Duration::from_millis(300);
    config.heartbeat_broker_interval = Duration::from_secs(1);
    config.persist_consumer_offset_interval = Duration::from_millis(200);
    config
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {LIMIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct TestShop {
    /// The order service's router, called in-process as a customer, an
    /// operator or a service.
    api: RouterClient,
    state: shop_order::AppState,
    stub: Stub,
    served: Served,
    cluster: Cluster,
}

impl TestShop {
    async fn start(db: &TestDatabase) -> TestShop {
        let stub = Stub::default();
        let stub_url = stub.serve().await;
        let cluster = Cluster::start().await;
        cluster.create_topic(ORDER_CANCEL, 4).await;
        cluster.create_topic(PAY_SUCCESS, 4).await;
        let mut config = shop_order::SERVICE.config_for_tests(&db.url);
        config.sessions = shop_common::testing::test_sessions();
        config.namesrv_addr = cluster.namesrv.addr.clone();
        config.own.goods_url = stub_url.clone();
        config.own.coupon_url = stub_url.clone();
        config.own.user_url = stub_url;
        let app = shop_order::SERVICE
            .start_with(config, client)
            .await
            .unwrap();
        let state = app.state().clone();
        for consumer in app.consumers() {
            wait_until("queues assigned to the order's consumers", || async {
                !consumer.assigned_queues().is_empty()
            })
            .await;
        }
        TestShop {
            api: RouterClient::new(shop_order::router(state.clone())),
            state,
            stub,
            served: Served::start(app),
            cluster,
        }
    }

    fn add_goods(&self, id: i64, price: &str, stock: i64) {
        self.stub
            .with(|d| d.goods.insert(id, (price.parse().unwrap(), stock)));
    }
    fn add_user(&self, id: i64, balance: &str) {
        self.stub
            .with(|d| d.users.insert(id, balance.parse().unwrap()));
    }
    fn add_coupon(&self, id: i64, user: i64, amount: &str) {
        self.stub
            .with(|d| d.coupons.insert(id, (user, amount.parse().unwrap(), false)));
    }
    fn stock(&self, id: i64) -> i64 {
        self.stub.with(|d| d.goods[&id].1)
    }
    fn balance(&self, id: i64) -> Decimal {
        self.stub.with(|d| d.users[&id])
    }
    fn coupon_used(&self, id: i64) -> bool {
        self.stub.with(|d| d.coupons[&id].2)
    }
    fn calls(&self) -> Vec<(String, String)> {
        self.stub.with(|d| d.calls.clone())
    }

    async fn status(&self, id: &str) -> String {
        sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(id)
            .fetch_one(self.state.db.pool())
            .await
            .unwrap()
    }

    /// A CONFIRMED order of customer 7: 2 x 20.00 + 10.00 shipping.
    async fn confirmed_order(&self) -> Value {
        self.add_goods(1, "20.00", 10);
        self.add_user(7, "50.00");
        let answer = self
            .api
            .customer(7)
            .post(
                "/orders",
                json!({"goods_id": 1, "quantity": 2, "unit_price": "20.00"}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body
    }

    async fn stop(mut self) {
        self.served.stop().await;
        self.cluster.stop().await;
    }
}

fn test_client(cluster: &Cluster, role: &str) -> ClientConfig {
    client(
        ClientConfig::new(cluster.namesrv.addr.clone())
            .with_instance_name(events::instance_name(role)),
    )
}

/// A producer that is not the order service (a forger on the network, or a
/// test sending what the services would).
async fn producer(cluster: &Cluster) -> Producer {
    Producer::start(
        ProducerConfig::new("test-forger"),
        test_client(cluster, "test-forger"),
    )
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------

shop_common::db_test!(async fn an_order_is_the_callers_and_only_its_owner_sees_it(db) {
    let shop = TestShop::start(&db).await;
    shop.add_goods(1, "20.00", 10);
    shop.add_user(7, "50.00");
    shop.add_coupon(9, 7, "3.00");

    let answer = shop
        .api
        .customer(7)
        .post(
            "/orders",
            json!({"goods_id": 1, "quantity": 2, "unit_price": "20.00", "coupon_id": 9, "balance": "5.00"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let order = answer.body;
    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(order["user_id"], 7, "the token's customer");
    assert_eq!(order["amount_to_pay"], "42.00");
    assert_eq!((shop.stock(1), shop.balance(7), shop.coupon_used(9)), (8, "45.00".parse().unwrap(), true));
    // Every call at the owners' internal endpoints was the order service's,
    // signed (the stub refuses anything else).
    let calls = shop.calls();
    assert_eq!(calls.len(), 5, "{calls:?}");
    assert!(calls.iter().all(|(caller, path)| caller == "order" && path.starts_with("/internal/")), "{calls:?}");

    // The owner's own user_id in the body is fine too.
    let again = shop
        .api
        .customer(7)
        .post("/orders", json!({"user_id": 7, "goods_id": 1, "quantity": 1, "unit_price": "20.00"}))
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);

    let id = order["id"].as_str().unwrap();
    let path = format!("/orders/{id}");
    assert_eq!(shop.api.customer(7).get(&path).await.body["id"], id);
    assert_eq!(shop.api.operator().get(&path).await.body["id"], id);
    let other = shop.api.customer(8).get(&path).await;
    assert_eq!((other.status, other.code()), (StatusCode::NOT_FOUND, "order_not_found"));
    let anonymous = shop.api.anonymous().get(&path).await;
    assert_eq!((anonymous.status, anonymous.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    let forged = shop.api.bearer("shop_not-a-token").get(&path).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    // Lists: one's own; another's refused; an operator's of anyone or all.
    let mine = shop.api.customer(7).get("/orders").await;
    assert_eq!(mine.body.as_array().unwrap().len(), 2, "{}", mine.body);
    let mine = shop.api.customer(7).get("/orders?user_id=7").await;
    assert_eq!(mine.body.as_array().unwrap().len(), 2);
    let theirs = shop.api.customer(8).get("/orders?user_id=7").await;
    assert_eq!((theirs.status, theirs.code()), (StatusCode::FORBIDDEN, "not_your_account"));
    assert_eq!(shop.api.customer(8).get("/orders").await.body, json!([]));
    assert_eq!(shop.api.operator().get("/orders?user_id=7").await.body.as_array().unwrap().len(), 2);
    assert_eq!(shop.api.operator().get("/orders").await.body.as_array().unwrap().len(), 2);
    assert_eq!(shop.api.anonymous().get("/orders").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(shop.api.anonymous().get("/health").await.status, StatusCode::OK);
    shop.stop().await;
});

shop_common::db_test!(async fn nobody_orders_with_another_users_balance_or_coupon(db) {
    // The finding: anyone placed an order spending another user's balance
    // and coupon, the `user_id` of the body was believed.
    let shop = TestShop::start(&db).await;
    shop.add_goods(1, "20.00", 10);
    shop.add_user(7, "80.00");
    shop.add_user(8, "0.00");
    shop.add_coupon(9, 7, "5.00");
    let body = json!({"user_id": 7, "goods_id": 1, "quantity": 1, "unit_price": "20.00", "coupon_id": 9, "balance": "15.00"});
    let stranger = shop.api.customer(8).post("/orders", body.clone()).await;
    assert_eq!((stranger.status, stranger.code()), (StatusCode::FORBIDDEN, "not_your_account"));
    let anonymous = shop.api.anonymous().post("/orders", body.clone()).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let operator = shop.api.operator().post("/orders", body.clone()).await;
    assert_eq!((operator.status, operator.code()), (StatusCode::FORBIDDEN, "customer_only"));
    // Without a user_id, customer 8 orders for customer 8: 7's coupon is not
    // theirs.
    let mut own = body.clone();
    own.as_object_mut().unwrap().remove("user_id");
    own.as_object_mut().unwrap().remove("balance");
    let answer = shop.api.customer(8).post("/orders", own).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::FORBIDDEN, "coupon_not_owned"));
    assert_eq!((shop.stock(1), shop.balance(7), shop.coupon_used(9)), (10, "80.00".parse().unwrap(), false));
    assert!(shop.calls().iter().all(|(_, path)| !path.contains("reservations") && !path.ends_with("/use")));
    shop.stop().await;
});

shop_common::db_test!(async fn refusals_before_saving_name_their_reason_and_save_nothing(db) {
    let shop = TestShop::start(&db).await;
    shop.add_goods(1, "20.00", 3);
    shop.add_user(7, "10.00");
    shop.add_user(8, "0.00");
    shop.add_coupon(9, 8, "1.00");
    let order = |quantity: i64, price: &str, extra: Value| {
        let mut body = json!({ "goods_id": 1, "quantity": quantity, "unit_price": price });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    for (body, expected_status, expected_code) in [
        (order(0, "20.00", json!({})), StatusCode::BAD_REQUEST, "invalid_quantity"),
        (order(1, "19.99", json!({})), StatusCode::BAD_REQUEST, "price_mismatch"),
        (order(4, "20.00", json!({})), StatusCode::CONFLICT, "insufficient_stock"),
        (order(1, "20.00", json!({ "balance": "10.01" })), StatusCode::CONFLICT, "insufficient_balance"),
        (order(1, "20.00", json!({ "coupon_id": 9 })), StatusCode::FORBIDDEN, "coupon_not_owned"),
        (order(1, "20.00", json!({ "coupon_id": 999 })), StatusCode::NOT_FOUND, "coupon_not_found"),
        (json!({ "goods_id": 999, "quantity": 1, "unit_price": "1" }), StatusCode::NOT_FOUND, "goods_not_found"),
        (json!({ "goods_id": 1, "quantity": 1 }), StatusCode::BAD_REQUEST, "invalid_body"),
    ] {
        let answer = shop.api.customer(7).post("/orders", body.clone()).await;
        assert_eq!((answer.status, answer.code()), (expected_status, expected_code), "{body} → {}", answer.body);
    }
    // A token of a user the user service does not know.
    let answer = shop.api.customer(999).post("/orders", order(1, "20.00", json!({}))).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::NOT_FOUND, "user_not_found"));
    assert_eq!(shop.api.customer(7).get("/orders").await.body, json!([]));
    assert_eq!(shop.stock(1), 3, "nothing was reserved");
    shop.stop().await;
});

shop_common::db_test!(async fn a_coupon_worth_more_than_the_goods_does_not_pay_the_shipping(db) {
    // The finding: a 10,000.00 coupon made a CONFIRMED order with 0.00 to
    // pay. A coupon discounts the goods, at most their amount.
    let shop = TestShop::start(&db).await;
    shop.add_goods(1, "20.00", 10);
    shop.add_user(7, "0.00");
    shop.add_coupon(9, 7, "10000.00");
    let answer = shop
        .api
        .customer(7)
        .post("/orders", json!({"goods_id": 1, "quantity": 1, "unit_price": "20.00", "coupon_id": 9}))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["coupon_discount"], "20.00");
    assert_eq!(answer.body["shipping_fee"], "10.00");
    assert_eq!(answer.body["amount_to_pay"], "10.00");
    shop.stop().await;
});

shop_common::db_test!(async fn the_cancel_events_are_signed_through_the_transaction_commit_and_the_sweeper(db) {
    // A reservation refused after the order was saved: the saga cancels it
    // and commits its ORDER_CANCEL half message. What consumers receive
    // carries the order service's signature, which the broker kept through
    // the commit (the half message is re-written to its real topic).
    let shop = TestShop::start(&db).await;
    shop.add_goods(1, "20.00", 10);
    shop.add_user(7, "50.00");
    shop.stub.with(|d| d.frozen.push(7));
    let received: Arc<Mutex<Vec<MessageExt>>> = Arc::default();
    let consumer = PushConsumer::new(
        PushConsumerConfig::new("test-cancel-watcher"),
        test_client(&shop.cluster, "test-cancel-watcher"),
    );
    consumer.subscribe(ORDER_CANCEL, "*").unwrap();
    let sink = received.clone();
    consumer
        .start(Listener::concurrent(move |msgs: Vec<MessageExt>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().extend(msgs);
                ConsumeStatus::Success
            }
        }))
        .await
        .unwrap();
    wait_until("the watcher's queues", || async { !consumer.assigned_queues().is_empty() }).await;

    let answer = shop
        .api
        .customer(7)
        .post("/orders", json!({"goods_id": 1, "quantity": 2, "unit_price": "20.00", "balance": "5.00"}))
        .await;
    assert_eq!((answer.status, answer.code()), (StatusCode::CONFLICT, "account_frozen"), "{}", answer.body);
    wait_until("the committed ORDER_CANCEL", || async { !received.lock().unwrap().is_empty() }).await;
    let msg = received.lock().unwrap()[0].clone();
    assert_eq!(msg.topic, ORDER_CANCEL);
    let event: OrderCancelled = events::body(&msg).unwrap();
    assert_eq!(event.user_id, 7);
    assert_eq!(shop.status(&event.order_id.to_string()).await, "CANCELLED");
    assert_eq!(events::verify(&Keyring::for_tests(), "order", ORDER_CANCEL, &msg), Ok(()));

    // The sweeper's plain send of an abandoned order is signed too.
    let abandoned = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO orders (id, user_id, goods_id, quantity, unit_price_cents, goods_amount_cents, shipping_fee_cents, \
         coupon_id, coupon_discount_cents, balance_used_cents, amount_to_pay_cents, status, cancel_reason, created_at, updated_at) \
         VALUES ($1, 7, 1, 1, 2000, 2000, 1000, NULL, 0, 0, 3000, 'PENDING', NULL, 1, 1)",
    )
    .bind(abandoned.to_string())
    .execute(shop.state.db.pool())
    .await
    .unwrap();
    assert_eq!(shop_order::saga::sweep(&shop.state, shop_common::now_ms()).await.unwrap(), 1);
    wait_until("the sweeper's ORDER_CANCEL", || async {
        received.lock().unwrap().iter().any(|m| m.keys().first() == Some(&abandoned.to_string().as_str()))
    })
    .await;
    let swept = received
        .lock()
        .unwrap()
        .iter()
        .find(|m| m.keys().first() == Some(&abandoned.to_string().as_str()))
        .cloned()
        .unwrap();
    assert_eq!(events::verify(&Keyring::for_tests(), "order", ORDER_CANCEL, &swept), Ok(()));
    consumer.shutdown().await;
    shop.stop().await;
});

shop_common::db_test!(async fn events_are_believed_only_from_their_owner_and_never_undo_a_decided_order(db) {
    // The findings: a plain send of ORDER_CANCEL for a CONFIRMED order was
    // applied; a forged PAY_SUCCESS marked an unpaid order PAID.
    let shop = TestShop::start(&db).await;
    let confirmed = shop.confirmed_order().await;
    let confirmed_id: Uuid = confirmed["id"].as_str().unwrap().parse().unwrap();
    let forger = producer(&shop.cluster).await;
    let cancel = |order_id: Uuid| {
        let body = OrderCancelled { order_id, user_id: 7, reason: "forged".into() };
        Message::new(ORDER_CANCEL, serde_json::to_vec(&body).unwrap()).with_keys([order_id.to_string()])
    };
    let paid = |order_id: Uuid| {
        let payment_id = Uuid::new_v4();
        let body = PaymentSucceeded {
            payment_id,
            order_id,
            user_id: 7,
            amount: "50.00".parse().unwrap(),
            trade_no: "GW-FORGED".into(),
            paid_at: 1,
        };
        Message::new(PAY_SUCCESS, serde_json::to_vec(&body).unwrap()).with_keys([payment_id.to_string()])
    };

    // A PENDING order (its saga still running, as far as anyone knows).
    let pending = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO orders (id, user_id, goods_id, quantity, unit_price_cents, goods_amount_cents, shipping_fee_cents, \
         coupon_id, coupon_discount_cents, balance_used_cents, amount_to_pay_cents, status, cancel_reason, created_at, updated_at) \
         VALUES ($1, 7, 1, 1, 2000, 2000, 1000, NULL, 0, 0, 3000, 'PENDING', NULL, $2, $2)",
    )
    .bind(pending.to_string())
    .bind(shop_common::now_ms())
    .execute(shop.state.db.pool())
    .await
    .unwrap();

    // Unsigned, and signed by the wrong service: not applied.
    forger.send(cancel(pending)).await.unwrap();
    forger.send(events::sign(&ServiceKey::for_tests("pay"), cancel(pending))).await.unwrap();
    forger.send(paid(confirmed_id)).await.unwrap();
    forger.send(events::sign(&ServiceKey::for_tests("order"), paid(confirmed_id))).await.unwrap();
    // Signed by the order service, for a CONFIRMED order: not applied either.
    forger.send(events::sign(&ServiceKey::for_tests("order"), cancel(confirmed_id))).await.unwrap();
    // A signed one behind them, to know they were all consumed.
    forger.send(events::sign(&ServiceKey::for_tests("order"), cancel(pending))).await.unwrap();
    wait_until("the signed ORDER_CANCEL applied", || async {
        shop.status(&pending.to_string()).await == "CANCELLED"
    })
    .await;
    let reason: Option<String> = sqlx::query_scalar("SELECT cancel_reason FROM orders WHERE id = $1")
        .bind(pending.to_string())
        .fetch_one(shop.state.db.pool())
        .await
        .unwrap();
    assert_eq!(reason.as_deref(), Some("forged"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(shop.status(&confirmed_id.to_string()).await, "CONFIRMED");

    // The pay service's signed PAY_SUCCESS makes it PAID; then even the
    // order service's own signed ORDER_CANCEL leaves it PAID.
    forger.send(events::sign(&ServiceKey::for_tests("pay"), paid(confirmed_id))).await.unwrap();
    wait_until("the signed PAY_SUCCESS applied", || async {
        shop.status(&confirmed_id.to_string()).await == "PAID"
    })
    .await;
    forger.send(events::sign(&ServiceKey::for_tests("order"), cancel(confirmed_id))).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(shop.status(&confirmed_id.to_string()).await, "PAID");
    // ...and PAY_SUCCESS never makes a CANCELLED order PAID.
    forger.send(events::sign(&ServiceKey::for_tests("pay"), paid(pending))).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(shop.status(&pending.to_string()).await, "CANCELLED");
    forger.shutdown().await;
    shop.stop().await;
});

shop_common::db_test!(async fn the_pay_service_reads_and_settles_orders_over_the_internal_api(db) {
    let shop = TestShop::start(&db).await;
    let order = shop.confirmed_order().await;
    let id = order["id"].as_str().unwrap();
    let path = format!("/internal/orders/{id}");

    // Only a signed call of the pay service.
    let unsigned = shop.api.anonymous().get(&path).await;
    assert_eq!((unsigned.status, unsigned.code()), (StatusCode::UNAUTHORIZED, "service_unauthenticated"));
    let customer = shop.api.customer(7).get(&path).await;
    assert_eq!(customer.status, StatusCode::UNAUTHORIZED);
    let goods = shop.api.service("goods").get(&path).await;
    assert_eq!((goods.status, goods.code()), (StatusCode::FORBIDDEN, "service_forbidden"));
    let read = shop.api.service("pay").get(&path).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body["amount_to_pay"], "50.00");
    assert_eq!(read.body["status"], "CONFIRMED");
    let missing = shop.api.service("pay").get(&format!("/internal/orders/{}", Uuid::new_v4())).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "order_not_found"));

    let settle = format!("/internal/orders/{id}/payments");
    let payment = Uuid::new_v4();
    let customer = shop.api.customer(7).post(&settle, json!({"payment_id": payment, "amount": "50.00"})).await;
    assert_eq!(customer.status, StatusCode::UNAUTHORIZED);
    let order_svc = shop.api.service("order").post(&settle, json!({"payment_id": payment, "amount": "50.00"})).await;
    assert_eq!(order_svc.status, StatusCode::FORBIDDEN);
    let wrong = shop.api.service("pay").post(&settle, json!({"payment_id": payment, "amount": "49.99"})).await;
    assert_eq!((wrong.status, wrong.code()), (StatusCode::CONFLICT, "amount_mismatch"));
    assert_eq!(shop.status(id).await, "CONFIRMED");
    for _ in 0..2 {
        let paid = shop.api.service("pay").post(&settle, json!({"payment_id": payment, "amount": "50.00"})).await;
        assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
        assert_eq!(paid.body, json!({"order_id": id, "outcome": "paid"}));
    }
    assert_eq!(shop.status(id).await, "PAID");
    let another = shop.api.service("pay").post(&settle, json!({"payment_id": Uuid::new_v4(), "amount": "50.00"})).await;
    assert_eq!((another.status, another.code()), (StatusCode::CONFLICT, "paid_by_another_payment"));

    // A cancelled order answers `cancelled`: the payment is to be refunded,
    // the order stays CANCELLED.
    sqlx::query("UPDATE orders SET status = 'CANCELLED', payment_id = NULL WHERE id = $1")
        .bind(id)
        .execute(shop.state.db.pool())
        .await
        .unwrap();
    let cancelled = shop.api.service("pay").post(&settle, json!({"payment_id": payment, "amount": "50.00"})).await;
    assert_eq!(cancelled.body, json!({"order_id": id, "outcome": "cancelled"}));
    assert_eq!(shop.status(id).await, "CANCELLED");
    let missing = shop
        .api
        .service("pay")
        .post(&format!("/internal/orders/{}/payments", Uuid::new_v4()), json!({"payment_id": payment, "amount": "1.00"}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    shop.stop().await;
});

shop_common::db_test!(async fn a_payment_and_a_cancellation_racing_for_an_order_cannot_both_win(db) {
    // However a settlement and a (hypothetical) cancellation of a
    // CONFIRMED order interleave, the order ends PAID with the payment
    // booked, or CANCELLED with it refunded.
    let shop = TestShop::start(&db).await;
    for _ in 0..10 {
        let order = shop.confirmed_order().await;
        let id = order["id"].as_str().unwrap().to_owned();
        let payment = Uuid::new_v4();
        let api = shop.api.clone();
        let settle_path = format!("/internal/orders/{id}/payments");
        let settle = tokio::spawn(async move {
            api.service("pay").post(&settle_path, json!({"payment_id": payment, "amount": "50.00"})).await
        });
        let db = shop.state.db.clone();
        let cancel_id = id.clone();
        let cancel = tokio::spawn(async move {
            let mut conn = db.pool().acquire().await.unwrap();
            shop_order::repo::transition(&mut conn, cancel_id.parse().unwrap(), shop_order::model::OrderStatus::Confirmed, shop_order::model::OrderStatus::Cancelled, Some("race")).await.unwrap()
        });
        let (settled, cancelled) = (settle.await.unwrap(), cancel.await.unwrap());
        let outcome = settled.body["outcome"].as_str().unwrap().to_owned();
        let status = shop.status(&id).await;
        match outcome.as_str() {
            "paid" => assert!(!cancelled && status == "PAID", "{status}"),
            "cancelled" => assert!(cancelled && status == "CANCELLED", "{status}"),
            other => panic!("{other}"),
        }
    }
    shop.stop().await;
});

/// A saved order of `user` created at `at`, in `status`.
async fn saved_order(db: &shop_common::Db, user: i64, at: i64, status: &str) -> Uuid {
    let id = Uuid::new_v4();
    let order = shop_order::model::Order {
        id,
        user_id: user,
        goods_id: 1,
        quantity: 1,
        unit_price_cents: 100,
        goods_amount_cents: 100,
        shipping_fee_cents: 0,
        coupon_id: None,
        coupon_discount_cents: 0,
        balance_used_cents: 0,
        amount_to_pay_cents: 100,
        status: shop_order::model::OrderStatus::Pending,
        cancel_reason: None,
        created_at: at,
        updated_at: at,
    };
    shop_order::repo::insert_pending(db, &order).await.unwrap();
    sqlx::query("UPDATE orders SET status = $1 WHERE id = $2")
        .bind(status)
        .bind(id.to_string())
        .execute(db.pool())
        .await
        .unwrap();
    id
}

shop_common::db_test!(async fn operators_list_orders_by_status_user_and_time_in_pages(db) {
    let shop = TestShop::start(&db).await;
    let db = &shop.state.db;
    // Recent, so that the sweeper leaves the PENDING one alone.
    let t = shop_common::now_ms();
    let pending = saved_order(db, 7, t + 1_000, "PENDING").await;
    let cancelled = saved_order(db, 7, t + 2_000, "CANCELLED").await;
    let paid = saved_order(db, 8, t + 3_000, "PAID").await;
    let confirmed = saved_order(db, 8, t + 4_000, "CONFIRMED").await;
    let ops = shop.api.operator();
    let ids = |answer: &shop_common::testing::Answer| -> Vec<String> {
        answer.body["orders"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
    };

    let all = ops.get("/operator/orders").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(ids(&all), [confirmed, paid, cancelled, pending].map(|u| u.to_string()), "newest first, PENDING too");
    assert!(all.body["next"].is_null());
    assert!(all.body["saga_timeout_ms"].as_u64().unwrap() > 0);
    assert!(all.body["orders"][0]["payment_id"].is_null());

    assert_eq!(ids(&ops.get("/operator/orders?status=pending").await), [pending.to_string()]);
    assert_eq!(ids(&ops.get("/operator/orders?user_id=8").await), [confirmed.to_string(), paid.to_string()]);
    assert_eq!(ids(&ops.get(&format!("/operator/orders?from={}&to={}", t + 2_000, t + 4_000)).await), [paid.to_string(), cancelled.to_string()]);

    let first = ops.get("/operator/orders?limit=3").await;
    assert_eq!(ids(&first).len(), 3);
    let next = first.body["next"].as_str().unwrap().to_owned();
    let second = ops.get(&format!("/operator/orders?limit=3&before={next}")).await;
    assert_eq!(ids(&second), [pending.to_string()]);
    assert!(second.body["next"].is_null());

    let one = ops.get(&format!("/operator/orders/{pending}")).await;
    assert_eq!((one.status, one.body["status"].as_str()), (StatusCode::OK, Some("PENDING")));
    let missing = ops.get(&format!("/operator/orders/{}", Uuid::new_v4())).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "order_not_found"));

    for (query, code) in [("status=LOST", "invalid_status"), ("before=x", "invalid_cursor"), ("limit=0", "invalid_limit"), ("from=5&to=1", "invalid_range"), ("color=red", "invalid_query")] {
        let answer = ops.get(&format!("/operator/orders?{query}")).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, code), "{query}");
    }
    assert_eq!(shop.api.customer(7).get("/operator/orders").await.status, StatusCode::FORBIDDEN);
    assert_eq!(shop.api.customer(7).get(&format!("/operator/orders/{pending}")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(shop.api.anonymous().get("/operator/orders").await.status, StatusCode::UNAUTHORIZED);
    shop.stop().await;
});
