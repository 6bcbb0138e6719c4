//! The coupon API against a fresh database per test, on SQLite and on
//! PostgreSQL (`shop_common::db_test!`), through `Router::oneshot` and, for
//! start-up and shutdown, through the real listener on port 0.

use axum::http::StatusCode;
use serde_json::{json, Value};
use shop_common::idempotency::record_consumption;
use shop_common::service::ServiceConfig;
use shop_common::testing::{Answer, Served};
use shop_coupon::repo::MAX_AMOUNT_CENTS;
use shop_coupon::{
    cancel_order, cancel_order_in, router, AppState, CancelOutcome, MIGRATIONS, SERVICE,
};
use uuid::Uuid;

shop_common::test_app!(MIGRATIONS, |db| router(AppState { db }));

impl TestApp {
    async fn create_coupon(&self, user_id: i64, amount: &str) -> i64 {
        let answer = self
            .post("/coupons", json!({ "user_id": user_id, "amount": amount }))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body["id"].as_i64().unwrap()
    }

    async fn use_coupon(&self, coupon_id: i64, order_id: Uuid, user_id: i64) -> Answer {
        self.post(
            &format!("/coupons/{coupon_id}/use"),
            json!({ "order_id": order_id, "user_id": user_id }),
        )
        .await
    }

    async fn coupon(&self, coupon_id: i64) -> Value {
        let answer = self.get(&format!("/coupons/{coupon_id}")).await;
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
    let answer = app.post("/coupons", json!({ "user_id": ALICE, "amount": 5 })).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["amount"], "5.00", "amounts are answered as strings with cents");
    assert_eq!(answer.body["status"], "unused");
    assert_eq!(answer.body["order_id"], Value::Null);
    assert_eq!(answer.body["used_at"], Value::Null);
    let first = answer.body["id"].as_i64().unwrap();
    let second = app.create_coupon(ALICE, "2.50").await;
    let bobs = app.create_coupon(BOB, "1.25").await;

    assert_eq!(app.coupon(second).await["amount"], "2.50");
    let answer = app.get(&format!("/coupons?user_id={ALICE}")).await;
    let ids: Vec<i64> = answer.body.as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [first, second]);
    let answer = app.get(&format!("/coupons?user_id={BOB}")).await;
    assert_eq!(answer.body[0]["id"], bobs);
    let answer = app.get(&format!("/coupons?user_id={ALICE}&after_id={first}&limit=5")).await;
    assert_eq!(answer.body.as_array().unwrap().len(), 1);
    assert_eq!(app.get("/coupons?user_id=99").await.body, json!([]));

    let answer = app.get("/coupons/999999").await;
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
    let path = format!("/coupons/{coupon}/use");
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
        let answer = app.send("POST", &path, content_type, body.clone()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{body}: {}", answer.body);
        assert!(!answer.body["error"]["message"].as_str().unwrap().is_empty());
    }

    let too_much = format!("{}.01", MAX_AMOUNT_CENTS / 100);
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
        let answer = app.post("/coupons", body.clone()).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, code), "{body}: {}", answer.body);
    }

    for (path, code) in [
        ("/coupons/x", "invalid_path"),
        ("/coupons", "invalid_query"),
        ("/coupons?user_id=abc", "invalid_query"),
        ("/coupons?user_id=1&limit=100000", "invalid_limit"),
    ] {
        let answer = app.get(path).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, code), "{path}: {}", answer.body);
    }
    let answer = app.send("PUT", &path, None, String::new()).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));

    assert_eq!(app.coupon(coupon).await["status"], "unused");
    assert_eq!(app.ledger_rows().await, 0);
    let listed = app.get(&format!("/coupons?user_id={ALICE}")).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "no bad coupon was created");
});

shop_common::db_test!(async fn the_application_serves_on_a_free_port_and_stops_cleanly(db) {
    let served = Served::start(SERVICE.start(ServiceConfig::for_tests(&db.url)).await.unwrap());

    let (status, body) = served.http("POST", "/coupons", r#"{"user_id": 1, "amount": "2.50"}"#).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = served.http("GET", "/health", "").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = served.http("POST", "/coupons/1/use", "{oops").await;
    assert_eq!(status, 400);
    assert!(body.contains("invalid_json"), "{body}");

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
