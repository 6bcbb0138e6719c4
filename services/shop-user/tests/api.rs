//! The user API against a fresh database per test, on SQLite and on
//! PostgreSQL (`shop_common::db_test!`), through `Router::oneshot` and, for
//! start-up and shutdown, through the real listener on port 0.

use axum::http::StatusCode;
use serde_json::{json, Value};
use shop_common::idempotency::record_consumption;
use shop_common::service::ServiceConfig;
use shop_common::testing::{Answer, Served};
use shop_user::repo::MAX_RESERVATION_CENTS;
use shop_user::{
    cancel_order, cancel_order_in, router, AppState, CancelOutcome, MIGRATIONS, SERVICE,
};
use uuid::Uuid;

shop_common::test_app!(MIGRATIONS, |db| router(AppState { db }));

impl TestApp {
    async fn create_user(&self, name: &str, balance: &str) -> i64 {
        let answer = self
            .post("/users", json!({ "name": name, "balance": balance }))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body["id"].as_i64().unwrap()
    }

    async fn reserve(&self, user_id: i64, order_id: Uuid, amount: Value) -> Answer {
        self.post(
            &format!("/users/{user_id}/balance/reservations"),
            json!({ "order_id": order_id, "amount": amount }),
        )
        .await
    }

    async fn balance(&self, user_id: i64) -> String {
        let answer = self.get(&format!("/users/{user_id}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["balance"].as_str().unwrap().to_owned()
    }

    async fn ledger_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM money_ledger")
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }
}

shop_common::db_test!(async fn users_are_created_and_read(db) {
    let app = spawn_app(&db).await;
    let answer = app.post("/users", json!({ "name": " Ann ", "balance": 100.5 })).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["name"], "Ann");
    assert_eq!(answer.body["balance"], "100.50", "amounts are answered as strings with cents");
    assert!(answer.body.get("points").is_none(), "points belong to the points service");
    let ann = answer.body["id"].as_i64().unwrap();
    let bob = app.create_user("Bob", "0").await;
    assert_ne!(ann, bob);
    assert_eq!(app.balance(bob).await, "0.00");

    let answer = app.get(&format!("/users/{ann}")).await;
    assert_eq!(answer.body["name"], "Ann");
    let answer = app.get("/users/999999").await;
    assert_eq!((answer.status, answer.code()), (StatusCode::NOT_FOUND, "user_not_found"));
});

shop_common::db_test!(async fn a_reservation_takes_money_once_and_replays_the_same_answer(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "100.00").await;
    let order = Uuid::new_v4();

    let first = app.reserve(user, order, json!("12.34")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(!first.replayed);
    assert_eq!(first.body["amount"], "12.34");
    assert_eq!(first.body["order_id"], order.to_string());
    assert_eq!(app.balance(user).await, "87.66", "cents are kept exactly");

    // The same amount as a JSON number is the same reservation.
    let again = app.reserve(user, order, json!(12.34)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.replayed);
    assert_eq!(again.body, first.body, "a replay answers the same success");
    assert_eq!(app.balance(user).await, "87.66", "a replay takes nothing");

    let changed = app.reserve(user, order, json!("12.35")).await;
    assert_eq!((changed.status, changed.code()), (StatusCode::CONFLICT, "reservation_mismatch"));
    let other_user = app.create_user("Bob", "50.00").await;
    let elsewhere = app.reserve(other_user, order, json!("12.34")).await;
    assert_eq!((elsewhere.status, elsewhere.code()), (StatusCode::CONFLICT, "reservation_mismatch"));
    assert_eq!(app.balance(user).await, "87.66");
    assert_eq!(app.balance(other_user).await, "50.00");

    let ledger = app.get(&format!("/users/{user}/balance/reservations/{order}")).await;
    assert_eq!(ledger.status, StatusCode::OK);
    assert_eq!(ledger.body["status"], "reserved");
    assert_eq!(ledger.body["reserved_amount"], "12.34");
    assert_eq!(ledger.body["refunded_amount"], "0.00");
    let unknown = app.get(&format!("/users/{user}/balance/reservations/{}", Uuid::new_v4())).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "reservation_not_found"));
    assert_eq!(app.ledger_rows().await, 1);
});

shop_common::db_test!(async fn insufficient_balance_and_unknown_users_change_nothing(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "10.00").await;
    let order = Uuid::new_v4();

    let short = app.reserve(user, order, json!("10.01")).await;
    assert_eq!((short.status, short.code()), (StatusCode::CONFLICT, "insufficient_balance"));
    assert!(short.body["error"]["message"].as_str().unwrap().contains("10.00 available"), "{}", short.body);
    assert_eq!(app.balance(user).await, "10.00");
    assert_eq!(app.ledger_rows().await, 0, "a refused reservation leaves no ledger row");

    let missing = app.reserve(424242, order, json!("1.00")).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "user_not_found"));
    assert_eq!(app.ledger_rows().await, 0);

    // The refusal did not burn the order id: the whole balance can be reserved.
    let exact = app.reserve(user, order, json!("10")).await;
    assert_eq!(exact.status, StatusCode::OK, "{}", exact.body);
    assert_eq!(app.balance(user).await, "0.00");
});

shop_common::db_test!(async fn cancellation_refunds_exactly_once(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "100.00").await;
    let order = Uuid::new_v4();
    assert_eq!(app.reserve(user, order, json!("40.05")).await.status, StatusCode::OK);
    assert_eq!(app.balance(user).await, "59.95");

    let first = cancel_order(&app.db, order).await.unwrap();
    assert_eq!(first, CancelOutcome::Refunded { user_id: user, amount_cents: 4005 });
    assert!(first.restored());
    assert_eq!(app.balance(user).await, "100.00");

    let second = cancel_order(&app.db, order).await.unwrap();
    assert_eq!(second, CancelOutcome::AlreadyCancelled);
    assert!(!second.restored());
    assert_eq!(app.balance(user).await, "100.00", "a second cancellation refunds nothing");

    let late = app.reserve(user, order, json!("40.05")).await;
    assert_eq!((late.status, late.code()), (StatusCode::CONFLICT, "order_cancelled"));
    assert_eq!(app.balance(user).await, "100.00");

    let ledger = app.get(&format!("/users/{user}/balance/reservations/{order}")).await;
    assert_eq!(ledger.body["status"], "cancelled");
    assert_eq!(ledger.body["reserved_amount"], "40.05");
    assert_eq!(ledger.body["refunded_amount"], "40.05");
});

shop_common::db_test!(async fn a_cancellation_before_the_reservation_refuses_it(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "100.00").await;
    let order = Uuid::new_v4();

    assert_eq!(cancel_order(&app.db, order).await.unwrap(), CancelOutcome::NothingReserved);
    let late = app.reserve(user, order, json!("1.00")).await;
    assert_eq!((late.status, late.code()), (StatusCode::CONFLICT, "order_cancelled"));
    assert_eq!(app.balance(user).await, "100.00");
    assert_eq!(app.ledger_rows().await, 1, "only the cancellation marker");
    assert_eq!(cancel_order(&app.db, order).await.unwrap(), CancelOutcome::AlreadyCancelled);

    let ledger = app.get(&format!("/users/{user}/balance/reservations/{order}")).await;
    assert_eq!(ledger.body["status"], "cancelled");
    assert_eq!(ledger.body["reserved_amount"], "0.00");
});

shop_common::db_test!(async fn racing_orders_never_overspend(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "5.00").await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.reserve(user, Uuid::new_v4(), json!("1.00")).await })
        })
        .collect();
    let mut succeeded = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        match answer.status {
            StatusCode::OK => succeeded += 1,
            StatusCode::CONFLICT => assert_eq!(answer.code(), "insufficient_balance"),
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    assert_eq!(succeeded, 5);
    assert_eq!(app.balance(user).await, "0.00");
    assert_eq!(app.ledger_rows().await, 5);
});

shop_common::db_test!(async fn a_reservation_racing_its_cancellation_never_keeps_money(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "1000.00").await;
    let orders: Vec<Uuid> = (0..30).map(|_| Uuid::new_v4()).collect();
    let mut tasks = Vec::new();
    for &order in &orders {
        let reserving = app.clone();
        tasks.push(tokio::spawn(async move {
            let answer = reserving.reserve(user, order, json!("2.50")).await;
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
    assert_eq!(app.balance(user).await, "1000.00", "no cancelled order keeps money");
    for order in orders {
        let ledger = app.get(&format!("/users/{user}/balance/reservations/{order}")).await;
        assert_eq!(ledger.body["status"], "cancelled");
        assert_eq!(ledger.body["reserved_amount"], ledger.body["refunded_amount"], "{}", ledger.body);
    }
});

shop_common::db_test!(async fn bad_input_is_a_clear_4xx_and_changes_nothing(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "100.00").await;
    let path = format!("/users/{user}/balance/reservations");
    let order = Uuid::new_v4().to_string();
    let too_much = format!("{}.01", MAX_RESERVATION_CENTS / 100);
    let cases: Vec<(Option<&str>, String, StatusCode, &str)> = vec![
        (Some("application/json"), "{\"order_id\": ".to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
        (Some("application/json"), "".to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
        (Some("application/json"), json!({ "amount": "1.00" }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Some("application/json"), json!({ "order_id": order }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Some("application/json"), json!({ "order_id": order, "amount": "one" }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Some("application/json"), json!({ "order_id": order, "amount": true }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Some("application/json"), json!({ "order_id": "x", "amount": "1.00" }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Some("application/json"), json!({ "order_id": order, "amount": "0.001" }).to_string(), StatusCode::BAD_REQUEST, "invalid_amount"),
        (Some("application/json"), json!({ "order_id": order, "amount": 1.005 }).to_string(), StatusCode::BAD_REQUEST, "invalid_amount"),
        (Some("application/json"), json!({ "order_id": order, "amount": 0 }).to_string(), StatusCode::BAD_REQUEST, "invalid_amount"),
        (Some("application/json"), json!({ "order_id": order, "amount": "-1.00" }).to_string(), StatusCode::BAD_REQUEST, "invalid_amount"),
        (Some("application/json"), json!({ "order_id": order, "amount": too_much }).to_string(), StatusCode::BAD_REQUEST, "invalid_amount"),
        (Some("application/json"), json!({ "order_id": order, "amount": "1e30" }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (None, json!({ "order_id": order, "amount": "1.00" }).to_string(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    ];
    for (content_type, body, status, code) in cases {
        let answer = app.send("POST", &path, content_type, body.clone()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{body}: {}", answer.body);
        assert!(!answer.body["error"]["message"].as_str().unwrap().is_empty());
    }

    let create_cases = [
        (json!({ "name": "Fraction", "balance": "1.001" }), "invalid_balance"),
        (json!({ "name": "Negative", "balance": -1 }), "invalid_balance"),
        (json!({ "name": "Huge", "balance": "99999999999999999" }), "invalid_balance"),
        (json!({ "name": "", "balance": "1.00" }), "invalid_name"),
        (json!({ "name": 7, "balance": "1.00" }), "invalid_body"),
        (json!({ "balance": "1.00" }), "invalid_body"),
        (json!({ "name": "No balance" }), "invalid_body"),
    ];
    for (body, code) in create_cases {
        let answer = app.post("/users", body.clone()).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, code), "{body}: {}", answer.body);
    }

    for (path, code) in [("/users/abc", "invalid_path"), ("/users/1/balance/reservations/nope", "invalid_path")] {
        let answer = app.get(path).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, code), "{path}");
    }
    let answer = app.send("GET", "/users", None, String::new()).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));

    assert_eq!(app.balance(user).await, "100.00");
    assert_eq!(app.ledger_rows().await, 0);
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!(users, 1, "no bad user was created");
});

shop_common::db_test!(async fn the_application_serves_on_a_free_port_and_stops_cleanly(db) {
    let served = Served::start(SERVICE.start(ServiceConfig::for_tests(&db.url)).await.unwrap());

    let (status, body) = served.http("POST", "/users", r#"{"name": "Ann", "balance": "2.50"}"#).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = served.http("GET", "/health", "").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = served.http("POST", "/users/1/balance/reservations", "{oops").await;
    assert_eq!(status, 400);
    assert!(body.contains("invalid_json"), "{body}");

    served.stop().await;
});

shop_common::db_test!(async fn a_consumer_applies_the_cancellation_with_its_consumed_message(db) {
    // How the ORDER_CANCEL consumer will call it: the compensation and the
    // consumed-message row in one transaction. An attempt that fails before
    // its commit leaves nothing behind; the redelivery applies it once.
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "100.00").await;
    let order = Uuid::new_v4();
    assert_eq!(app.reserve(user, order, json!("30.00")).await.status, StatusCode::OK);

    let mut tx = app.db.pool().begin().await.unwrap();
    assert!(record_consumption(&mut tx, "user-order-cancel", "msg-1", 1).await.unwrap());
    assert!(cancel_order_in(&mut tx, order).await.unwrap().restored());
    tx.rollback().await.unwrap();
    assert_eq!(app.balance(user).await, "70.00", "a rolled-back attempt refunds nothing");

    for delivery in 0..2 {
        let mut tx = app.db.pool().begin().await.unwrap();
        let first = record_consumption(&mut tx, "user-order-cancel", "msg-1", 2).await.unwrap();
        assert_eq!(first, delivery == 0);
        if first {
            let outcome = cancel_order_in(&mut tx, order).await.unwrap();
            assert_eq!(outcome, CancelOutcome::Refunded { user_id: user, amount_cents: 3000 });
        }
        tx.commit().await.unwrap();
    }
    assert_eq!(app.balance(user).await, "100.00");
});
