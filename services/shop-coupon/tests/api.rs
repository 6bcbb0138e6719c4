//! The coupon API against a fresh database per test, on SQLite and on
//! PostgreSQL (`shop_common::db_test!`), through `Router::oneshot` and, for
//! start-up and shutdown, through the real listener on port 0.

use axum::http::StatusCode;
use mq_client::MessageExt;
use serde_json::{json, Value};
use shop_common::events::{OrderCancelled, ORDER_CANCEL};
use shop_common::idempotency::record_consumption;
use shop_common::testing::{self, Answer, RouterClient, Served};
use shop_coupon::repo::DEFAULT_MAX_AMOUNT_CENTS;
use shop_coupon::{
    cancel_order, cancel_order_in, router, subscriptions, AppState, CancelOutcome, CouponConfig,
    MIGRATIONS, SERVICE,
};
use uuid::Uuid;

shop_common::test_app!(MIGRATIONS, |db, auth| router(
    AppState::new(db, &CouponConfig::default()),
    auth
));

impl TestApp {
    async fn create_coupon(&self, user_id: i64, amount: &str) -> i64 {
        let answer = self
            .operator()
            .post("/coupons", json!({ "user_id": user_id, "amount": amount }))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body["id"].as_i64().unwrap()
    }

    /// A use as the order service makes it: a signed internal call.
    async fn use_coupon(&self, coupon_id: i64, order_id: Uuid, user_id: i64) -> Answer {
        self.service("order")
            .post(
                &format!("/internal/coupons/{coupon_id}/use"),
                json!({ "order_id": order_id, "user_id": user_id }),
            )
            .await
    }

    async fn coupon(&self, coupon_id: i64) -> Value {
        let answer = self.operator().get(&format!("/coupons/{coupon_id}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body
    }

    async fn ledger_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM coupon_ledger")
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }
}

const ALICE: i64 = 1;
const BOB: i64 = 2;

shop_common::db_test!(async fn coupons_are_created_read_and_listed_by_user(db) {
    let app = spawn_app(&db).await;
    let answer = app.operator().post("/coupons", json!({ "user_id": ALICE, "amount": 5 })).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["amount"], "5.00", "amounts are answered as strings with cents");
    assert_eq!(answer.body["status"], "unused");
    assert_eq!(answer.body["order_id"], Value::Null);
    assert_eq!(answer.body["used_at"], Value::Null);
    let first = answer.body["id"].as_i64().unwrap();
    let second = app.create_coupon(ALICE, "2.50").await;
    let bobs = app.create_coupon(BOB, "1.25").await;

    assert_eq!(app.coupon(second).await["amount"], "2.50");
    let answer = app.operator().get(&format!("/coupons?user_id={ALICE}")).await;
    let ids: Vec<i64> = answer.body.as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [first, second]);
    let answer = app.operator().get(&format!("/coupons?user_id={BOB}")).await;
    assert_eq!(answer.body[0]["id"], bobs);
    let answer = app.operator().get(&format!("/coupons?user_id={ALICE}&after_id={first}&limit=5")).await;
    assert_eq!(answer.body.as_array().unwrap().len(), 1);
    assert_eq!(app.operator().get("/coupons?user_id=99").await.body, json!([]));
    // An operator reads everyone's.
    let all = app.operator().get("/coupons").await;
    assert_eq!(all.body.as_array().unwrap().len(), 3);

    let answer = app.operator().get("/coupons/999999").await;
    assert_eq!((answer.status, answer.code()), (StatusCode::NOT_FOUND, "coupon_not_found"));
});

shop_common::db_test!(async fn a_coupon_is_used_once_and_a_replay_answers_the_same(db) {
    let app = spawn_app(&db).await;
    let coupon = app.create_coupon(ALICE, "5.00").await;
    let other = app.create_coupon(ALICE, "3.00").await;
    let order = Uuid::new_v4();

    let first = app.use_coupon(coupon, order, ALICE).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(!first.replayed);
    assert_eq!(first.body["status"], "used");
    assert_eq!(first.body["order_id"], order.to_string());
    assert!(first.body["used_at"].is_i64());

    let again = app.use_coupon(coupon, order, ALICE).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.replayed);
    assert_eq!(again.body, first.body, "a replay answers the same success");

    // One order, one coupon.
    let second_coupon = app.use_coupon(other, order, ALICE).await;
    assert_eq!((second_coupon.status, second_coupon.code()), (StatusCode::CONFLICT, "reservation_mismatch"));
    assert_eq!(app.coupon(other).await["status"], "unused");
    assert_eq!(app.ledger_rows().await, 1);
});

shop_common::db_test!(async fn a_coupon_of_another_user_is_refused(db) {
    let app = spawn_app(&db).await;
    let coupon = app.create_coupon(ALICE, "5.00").await;
    let answer = app.use_coupon(coupon, Uuid::new_v4(), BOB).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::FORBIDDEN, "coupon_not_owned"));
    assert_eq!(app.coupon(coupon).await["status"], "unused");
    assert_eq!(app.ledger_rows().await, 0, "a refused use leaves no ledger row");

    // Someone else's coupon that is also used is still "not yours", not "used".
    assert_eq!(app.use_coupon(coupon, Uuid::new_v4(), ALICE).await.status, StatusCode::OK);
    let answer = app.use_coupon(coupon, Uuid::new_v4(), BOB).await;
    assert_eq!(answer.code(), "coupon_not_owned");
});

shop_common::db_test!(async fn a_coupon_used_by_another_order_is_refused(db) {
    let app = spawn_app(&db).await;
    let coupon = app.create_coupon(ALICE, "5.00").await;
    let first_order = Uuid::new_v4();
    let second_order = Uuid::new_v4();
    assert_eq!(app.use_coupon(coupon, first_order, ALICE).await.status, StatusCode::OK);

    let answer = app.use_coupon(coupon, second_order, ALICE).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::CONFLICT, "coupon_used"));
    assert_eq!(app.coupon(coupon).await["order_id"], first_order.to_string());
    assert_eq!(app.ledger_rows().await, 1);

    let answer = app.use_coupon(424242, second_order, ALICE).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::NOT_FOUND, "coupon_not_found"));
    assert_eq!(app.ledger_rows().await, 1);

    // The refusals did not burn the second order: it can use a free coupon.
    let free = app.create_coupon(ALICE, "1.00").await;
    assert_eq!(app.use_coupon(free, second_order, ALICE).await.status, StatusCode::OK);
});

shop_common::db_test!(async fn cancellation_releases_the_coupon_exactly_once(db) {
    let app = spawn_app(&db).await;
    let coupon = app.create_coupon(ALICE, "5.00").await;
    let cancelled_order = Uuid::new_v4();
    assert_eq!(app.use_coupon(coupon, cancelled_order, ALICE).await.status, StatusCode::OK);

    let first = cancel_order(&app.db, cancelled_order).await.unwrap();
    assert_eq!(first, CancelOutcome::Released { coupon_id: coupon });
    assert!(first.restored());
    let view = app.coupon(coupon).await;
    assert_eq!(view["status"], "unused");
    assert_eq!(view["order_id"], Value::Null);
    assert_eq!(view["used_at"], Value::Null);

    // The released coupon is usable again, by another order...
    let next_order = Uuid::new_v4();
    assert_eq!(app.use_coupon(coupon, next_order, ALICE).await.status, StatusCode::OK);
    // ...and a second cancellation of the first order must not take it away.
    let second = cancel_order(&app.db, cancelled_order).await.unwrap();
    assert_eq!(second, CancelOutcome::AlreadyCancelled);
    assert_eq!(app.coupon(coupon).await["order_id"], next_order.to_string());

    let late = app.use_coupon(coupon, cancelled_order, ALICE).await;
    assert_eq!((late.status, late.code()), (StatusCode::CONFLICT, "order_cancelled"));
    assert_eq!(app.coupon(coupon).await["order_id"], next_order.to_string());
});

shop_common::db_test!(async fn a_cancellation_before_the_use_refuses_it(db) {
    let app = spawn_app(&db).await;
    let coupon = app.create_coupon(ALICE, "5.00").await;
    let order = Uuid::new_v4();
    assert_eq!(cancel_order(&app.db, order).await.unwrap(), CancelOutcome::NothingUsed);

    let late = app.use_coupon(coupon, order, ALICE).await;
    assert_eq!((late.status, late.code()), (StatusCode::CONFLICT, "order_cancelled"));
    assert_eq!(app.coupon(coupon).await["status"], "unused");
    assert_eq!(app.ledger_rows().await, 1, "only the cancellation marker");
    assert_eq!(cancel_order(&app.db, order).await.unwrap(), CancelOutcome::AlreadyCancelled);
});

shop_common::db_test!(async fn racing_orders_for_one_coupon_use_it_once(db) {
    let app = spawn_app(&db).await;
    let coupon = app.create_coupon(ALICE, "5.00").await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.use_coupon(coupon, Uuid::new_v4(), ALICE).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let answer = task.await.unwrap();
        match answer.status {
            StatusCode::OK => winners.push(answer.body["order_id"].clone()),
            StatusCode::CONFLICT => assert_eq!(answer.code(), "coupon_used"),
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(app.coupon(coupon).await["order_id"], winners[0]);
    assert_eq!(app.ledger_rows().await, 1);
});

shop_common::db_test!(async fn a_use_racing_its_cancellation_never_keeps_the_coupon(db) {
    let app = spawn_app(&db).await;
    let mut tasks = Vec::new();
    let mut coupons = Vec::new();
    for _ in 0..30 {
        let coupon = app.create_coupon(ALICE, "1.00").await;
        coupons.push(coupon);
        let order = Uuid::new_v4();
        let using = app.clone();
        tasks.push(tokio::spawn(async move {
            let answer = using.use_coupon(coupon, order, ALICE).await;
            assert!(
                answer.status == StatusCode::OK || answer.code() == "order_cancelled",
                "{}: {}",
                answer.status,
                answer.body
            );
        }));
        let cancelling = app.db.clone();
        tasks.push(tokio::spawn(async move {
            cancel_order(&cancelling, order).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for coupon in coupons {
        assert_eq!(app.coupon(coupon).await["status"], "unused", "a cancelled order keeps no coupon");
    }
});

shop_common::db_test!(async fn bad_input_is_a_clear_4xx_and_changes_nothing(db) {
    let app = spawn_app(&db).await;
    let coupon = app.create_coupon(ALICE, "5.00").await;
    let path = format!("/internal/coupons/{coupon}/use");
    let order = Uuid::new_v4().to_string();
    let cases: Vec<(Option<&str>, String, StatusCode, &str)> = vec![
        (Some("application/json"), "{\"order_id\": ".to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
        (Some("application/json"), "{\"user_id\" 1}".to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
        (Some("application/json"), json!({ "user_id": ALICE }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Some("application/json"), json!({ "order_id": order }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Some("application/json"), json!({ "order_id": order, "user_id": "one" }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Some("application/json"), json!({ "order_id": 17, "user_id": ALICE }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Some("application/json"), json!({ "order_id": order, "user_id": 0 }).to_string(), StatusCode::BAD_REQUEST, "invalid_user_id"),
        (Some("application/json"), json!({ "order_id": order, "user_id": -5 }).to_string(), StatusCode::BAD_REQUEST, "invalid_user_id"),
        (Some("text/plain"), json!({ "order_id": order, "user_id": ALICE }).to_string(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    ];
    for (content_type, body, status, code) in cases {
        let answer = app.service("order").send("POST", &path, content_type, body.clone()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{body}: {}", answer.body);
        assert!(!answer.body["error"]["message"].as_str().unwrap().is_empty());
    }

    let too_much = format!("{}.01", DEFAULT_MAX_AMOUNT_CENTS / 100);
    let create_cases = [
        (json!({ "user_id": ALICE, "amount": "0.001" }), "invalid_amount"),
        (json!({ "user_id": ALICE, "amount": 0.015 }), "invalid_amount"),
        (json!({ "user_id": ALICE, "amount": "0" }), "invalid_amount"),
        (json!({ "user_id": ALICE, "amount": "-2" }), "invalid_amount"),
        (json!({ "user_id": ALICE, "amount": too_much }), "invalid_amount"),
        (json!({ "user_id": ALICE, "amount": [5] }), "invalid_body"),
        (json!({ "user_id": 0, "amount": "5" }), "invalid_user_id"),
        (json!({ "amount": "5" }), "invalid_body"),
    ];
    for (body, code) in create_cases {
        let answer = app.operator().post("/coupons", body.clone()).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, code), "{body}: {}", answer.body);
    }

    for (path, code) in [
        ("/coupons/x", "invalid_path"),
        ("/coupons?user_id=abc", "invalid_query"),
        ("/coupons?user_id=1&limit=100000", "invalid_limit"),
        ("/coupons?user_id=0", "invalid_user_id"),
    ] {
        let answer = app.operator().get(path).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, code), "{path}: {}", answer.body);
    }
    let answer = app.service("order").send("PUT", &path, None, String::new()).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));

    assert_eq!(app.coupon(coupon).await["status"], "unused");
    assert_eq!(app.ledger_rows().await, 0);
    let listed = app.operator().get(&format!("/coupons?user_id={ALICE}")).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "no bad coupon was created");
});

shop_common::db_test!(async fn the_application_serves_on_a_free_port_and_stops_cleanly(db) {
    let served = Served::start(SERVICE.start(SERVICE.config_for_tests(&db.url)).await.unwrap());

    // The started service checks its callers.
    let (status, body) = served.http("POST", "/coupons", r#"{"user_id": 1, "amount": "2.50"}"#).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = served.http("GET", "/health", "").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = served.http("POST", "/internal/coupons/1/use", "{oops").await;
    assert_eq!(status, 401);
    assert!(body.contains("service_unauthenticated"), "{body}");

    served.stop().await;
});

shop_common::db_test!(async fn a_consumer_applies_the_cancellation_with_its_consumed_message(db) {
    // How the ORDER_CANCEL consumer will call it: the compensation and the
    // consumed-message row in one transaction. An attempt that fails before
    // its commit leaves nothing behind; the redelivery applies it once.
    let app = spawn_app(&db).await;
    let coupon = app.create_coupon(ALICE, "5.00").await;
    let order = Uuid::new_v4();
    assert_eq!(app.use_coupon(coupon, order, ALICE).await.status, StatusCode::OK);

    let mut tx = app.db.pool().begin().await.unwrap();
    assert!(record_consumption(&mut tx, "coupon-order-cancel", "msg-1", 1).await.unwrap());
    assert!(cancel_order_in(&mut tx, order).await.unwrap().restored());
    tx.rollback().await.unwrap();
    assert_eq!(app.coupon(coupon).await["status"], "used", "a rolled-back attempt releases nothing");

    for delivery in 0..2 {
        let mut tx = app.db.pool().begin().await.unwrap();
        let first = record_consumption(&mut tx, "coupon-order-cancel", "msg-1", 2).await.unwrap();
        assert_eq!(first, delivery == 0);
        if first {
            let outcome = cancel_order_in(&mut tx, order).await.unwrap();
            assert_eq!(outcome, CancelOutcome::Released { coupon_id: coupon });
        }
        tx.commit().await.unwrap();
    }
    assert_eq!(app.coupon(coupon).await["status"], "unused");
});

shop_common::db_test!(async fn coupons_above_the_configured_maximum_are_refused(db) {
    // Finding: a 10,000.00 coupon made a CONFIRMED order with 0.00 to pay.
    let app = spawn_app(&db).await;
    for amount in ["10000.00", "100.01"] {
        let answer = app.operator().post("/coupons", json!({ "user_id": ALICE, "amount": amount })).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, "invalid_amount"), "{amount}");
        assert!(answer.body["error"]["message"].as_str().unwrap().contains("100.00"), "{}", answer.body);
    }
    assert_eq!(app.operator().get("/coupons").await.body, json!([]));
    app.create_coupon(ALICE, "100.00").await;

    // max_coupon_amount is the service's key.
    let db = shop_common::testing::migrated(&db, MIGRATIONS).await;
    let config = CouponConfig { max_amount_cents: 2500 };
    let strict = RouterClient::new(router(AppState::new(db, &config), testing::auth("coupon")));
    let answer = strict.operator().post("/coupons", json!({ "user_id": ALICE, "amount": "25.01" })).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, "invalid_amount"));
    let answer = strict.operator().post("/coupons", json!({ "user_id": ALICE, "amount": "25.00" })).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
});

shop_common::db_test!(async fn only_operators_issue_coupons(db) {
    // Finding: anyone created coupons for anyone.
    let app = spawn_app(&db).await;
    let body = json!({ "user_id": ALICE, "amount": "5.00" });
    let anonymous = app.post("/coupons", body.clone()).await;
    assert_eq!((anonymous.status, anonymous.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    let herself = app.customer(ALICE).post("/coupons", body.clone()).await;
    assert_eq!((herself.status, herself.code()), (StatusCode::FORBIDDEN, "operator_only"));
    let forged = app.bearer("test-operator").post("/coupons", body.clone()).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM coupon").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!(rows, 0, "no coupon was created");
});

shop_common::db_test!(async fn customers_read_only_their_own_coupons(db) {
    // Finding: every user's coupons could be read.
    let app = spawn_app(&db).await;
    let alices = app.create_coupon(ALICE, "5.00").await;
    let bobs = app.create_coupon(BOB, "1.25").await;
    let alice = app.customer(ALICE);

    let own = alice.get("/coupons").await;
    assert_eq!(own.status, StatusCode::OK);
    let ids: Vec<i64> = own.body.as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [alices], "without user_id: her own");
    assert_eq!(alice.get(&format!("/coupons?user_id={ALICE}")).await.body, own.body);
    let other = alice.get(&format!("/coupons?user_id={BOB}")).await;
    assert_eq!((other.status, other.code()), (StatusCode::FORBIDDEN, "not_your_account"));

    assert_eq!(alice.get(&format!("/coupons/{alices}")).await.status, StatusCode::OK);
    let bobs_coupon = alice.get(&format!("/coupons/{bobs}")).await;
    assert_eq!((bobs_coupon.status, bobs_coupon.code()), (StatusCode::NOT_FOUND, "coupon_not_found"));
    let missing = alice.get("/coupons/424242").await;
    assert_eq!(bobs_coupon.body["error"]["code"], missing.body["error"]["code"], "someone else's looks absent");

    for path in ["/coupons".to_owned(), format!("/coupons/{alices}")] {
        let anonymous = app.get(&path).await;
        assert_eq!((anonymous.status, anonymous.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"), "{path}");
    }
});

shop_common::db_test!(async fn only_the_order_service_uses_coupons(db) {
    // Finding: POST /coupons/{id}/use with an invented order id used a coupon.
    let app = spawn_app(&db).await;
    let coupon = app.create_coupon(ALICE, "5.00").await;
    let order = Uuid::new_v4();
    let body = json!({ "order_id": order, "user_id": ALICE });
    for (who, client, status, code) in [
        ("unsigned", app.anonymous(), StatusCode::UNAUTHORIZED, "service_unauthenticated"),
        ("its owner's token", app.customer(ALICE), StatusCode::UNAUTHORIZED, "service_unauthenticated"),
        ("an operator's token", app.operator(), StatusCode::UNAUTHORIZED, "service_unauthenticated"),
        ("signed by pay", app.service("pay"), StatusCode::FORBIDDEN, "service_forbidden"),
        ("signed by user", app.service("user"), StatusCode::FORBIDDEN, "service_forbidden"),
    ] {
        let answer = client.post(&format!("/internal/coupons/{coupon}/use"), body.clone()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{who}: {}", answer.body);
        let read = client.get(&format!("/internal/coupons/{coupon}")).await;
        assert_eq!(read.status, status, "{who}");
    }
    let old = app.customer(ALICE).post(&format!("/coupons/{coupon}/use"), body.clone()).await;
    assert_eq!((old.status, old.code()), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(app.coupon(coupon).await["status"], "unused");
    assert_eq!(app.ledger_rows().await, 0);

    let read = app.service("order").get(&format!("/internal/coupons/{coupon}")).await;
    assert_eq!((read.status, read.body["user_id"].as_i64()), (StatusCode::OK, Some(ALICE)));
    assert_eq!(app.use_coupon(coupon, order, ALICE).await.status, StatusCode::OK);
});

/// Delivers `msg` as the service's ORDER_CANCEL consumer does: applied once
/// if its subscription's publisher signed it; `None` when it is refused.
async fn deliver(db: &shop_common::Db, msg: &MessageExt) -> Option<bool> {
    shop_common::testing::deliver(db, subscriptions(), ORDER_CANCEL, msg).await
}

fn cancel_message(order_id: Uuid) -> MessageExt {
    let event = OrderCancelled {
        order_id,
        user_id: ALICE,
        reason: "test".to_owned(),
    };
    testing::message(
        ORDER_CANCEL,
        &order_id.to_string(),
        serde_json::to_vec(&event).unwrap(),
    )
}

shop_common::db_test!(async fn only_an_order_cancel_the_order_service_signed_releases_a_coupon(db) {
    // Finding: a plain send of ORDER_CANCEL gave back a confirmed order's coupon.
    let app = spawn_app(&db).await;
    let coupon = app.create_coupon(ALICE, "5.00").await;
    let order = Uuid::new_v4();
    assert_eq!(app.use_coupon(coupon, order, ALICE).await.status, StatusCode::OK);

    let unsigned = cancel_message(order);
    let by_pay = testing::signed("pay", ORDER_CANCEL, cancel_message(order));
    let mut altered = testing::signed("order", ORDER_CANCEL, cancel_message(Uuid::new_v4()));
    altered.body = cancel_message(order).body;
    for (what, msg) in [("unsigned", &unsigned), ("signed by pay", &by_pay), ("altered", &altered)] {
        assert_eq!(deliver(&app.db, msg).await, None, "{what}");
    }
    assert_eq!(app.coupon(coupon).await["status"], "used", "no forged event was applied");

    let genuine = testing::signed("order", ORDER_CANCEL, cancel_message(order));
    assert_eq!(deliver(&app.db, &genuine).await, Some(true));
    assert_eq!(app.coupon(coupon).await["status"], "unused");
});

shop_common::db_test!(async fn operators_read_the_coupon_ledger_by_order_and_in_pages(db) {
    let app = spawn_app(&db).await;
    let mut orders: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    orders.sort();
    let mut coupons = Vec::new();
    for order in &orders {
        let coupon = app.create_coupon(ALICE, "5.00").await;
        assert_eq!(app.use_coupon(coupon, *order, ALICE).await.status, StatusCode::OK);
        coupons.push(coupon);
    }
    assert!(cancel_order(&app.db, orders[1]).await.unwrap().restored());

    let one = app.operator().get(&format!("/operator/coupon-ledger?order_id={}", orders[1])).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let rows = one.body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{}", one.body);
    assert_eq!((rows[0]["operation"].as_str(), rows[0]["coupon_id"].as_i64()), (Some("cancel"), Some(coupons[1])));
    assert_eq!((rows[1]["operation"].as_str(), rows[1]["user_id"].as_i64()), (Some("use"), Some(ALICE)));
    assert!(rows[1]["created_at"].as_i64().unwrap() > 0);

    let first = app.operator().get("/operator/coupon-ledger?limit=2").await;
    assert_eq!(first.body["rows"].as_array().unwrap().len(), 3, "{}", first.body);
    assert_eq!(first.body["next"], orders[1].to_string());
    let second = app.operator().get(&format!("/operator/coupon-ledger?limit=2&after={}", orders[1])).await;
    assert_eq!(second.body["rows"].as_array().unwrap().len(), 1);
    assert!(second.body["next"].is_null());

    assert_eq!(app.customer(ALICE).get("/operator/coupon-ledger").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.anonymous().get("/operator/coupon-ledger").await.status, StatusCode::UNAUTHORIZED);
});
