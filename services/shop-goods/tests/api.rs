//! The goods API against a fresh database per test, on SQLite and on
//! PostgreSQL (`shop_common::db_test!`), through `Router::oneshot` and, for
//! start-up and shutdown, through the real listener on port 0.

use axum::http::StatusCode;
use mq_client::MessageExt;
use serde_json::json;
use shop_common::events::{OrderCancelled, ORDER_CANCEL};
use shop_common::idempotency::record_consumption;
use shop_common::testing::{self, Answer, Served};
use shop_goods::repo::{MAX_PRICE_CENTS, MAX_RESERVATION_QUANTITY};
use shop_goods::{
    cancel_order, cancel_order_in, router, subscriptions, AppState, CancelOutcome, Restock,
    MIGRATIONS, SERVICE,
};
use uuid::Uuid;

shop_common::test_app!(MIGRATIONS, |db, auth| router(AppState { db }, auth));

impl TestApp {
    async fn create_goods(&self, name: &str, price: &str, stock: i64) -> i64 {
        let answer = self
            .operator()
            .post(
                "/goods",
                json!({ "name": name, "price": price, "stock": stock }),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body["id"].as_i64().unwrap()
    }

    /// A reservation as the order service makes it: a signed internal call.
    async fn reserve(&self, goods_id: i64, order_id: Uuid, quantity: i64) -> Answer {
        self.service("order")
            .post(
                &format!("/internal/goods/{goods_id}/reservations"),
                json!({ "order_id": order_id, "quantity": quantity }),
            )
            .await
    }

    async fn stock(&self, goods_id: i64) -> i64 {
        let answer = self.get(&format!("/goods/{goods_id}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["stock"].as_i64().unwrap()
    }

    /// The ledger of `order_id` for goods `goods_id`, as the order service
    /// reads it.
    async fn ledger(&self, goods_id: i64, order_id: Uuid) -> Answer {
        self.service("order")
            .get(&format!(
                "/internal/goods/{goods_id}/reservations/{order_id}"
            ))
            .await
    }

    async fn ledger_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM stock_ledger")
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }
}

shop_common::db_test!(async fn goods_are_created_listed_and_read(db) {
    let app = spawn_app(&db).await;
    let answer = app.operator().post("/goods", json!({ "name": "  Tea  ", "price": 12.3, "stock": 7 })).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.body["name"], "Tea");
    assert_eq!(answer.body["price"], "12.30", "prices are answered as strings with cents");
    assert_eq!(answer.body["stock"], 7);
    let tea = answer.body["id"].as_i64().unwrap();
    let cup = app.create_goods("Cup", "4.05", 0).await;
    assert_ne!(tea, cup);

    let answer = app.get(&format!("/goods/{cup}")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["price"], "4.05");
    assert_eq!(answer.body["stock"], 0);

    let answer = app.get("/goods").await;
    let names: Vec<&str> = answer.body.as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Tea", "Cup"]);
    let answer = app.get(&format!("/goods?after_id={tea}&limit=1")).await;
    assert_eq!(answer.body.as_array().unwrap().len(), 1);
    assert_eq!(answer.body[0]["id"], cup);

    let answer = app.get("/goods/999999").await;
    assert_eq!((answer.status, answer.code()), (StatusCode::NOT_FOUND, "goods_not_found"));
});

shop_common::db_test!(async fn a_reservation_takes_stock_once_and_replays_the_same_answer(db) {
    let app = spawn_app(&db).await;
    let goods = app.create_goods("Tea", "3.00", 10).await;
    let order = Uuid::new_v4();

    let first = app.reserve(goods, order, 3).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(!first.replayed);
    assert_eq!(first.body["quantity"], 3);
    assert_eq!(first.body["order_id"], order.to_string());
    assert_eq!(app.stock(goods).await, 7);

    let again = app.reserve(goods, order, 3).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.replayed);
    assert_eq!(again.body, first.body, "a replay answers the same success");
    assert_eq!(app.stock(goods).await, 7, "a replay takes nothing");

    // The same order cannot change what it reserved.
    let changed = app.reserve(goods, order, 4).await;
    assert_eq!((changed.status, changed.code()), (StatusCode::CONFLICT, "reservation_mismatch"));
    let other_goods = app.create_goods("Cup", "1.00", 10).await;
    let elsewhere = app.reserve(other_goods, order, 3).await;
    assert_eq!((elsewhere.status, elsewhere.code()), (StatusCode::CONFLICT, "reservation_mismatch"));
    assert_eq!(app.stock(goods).await, 7);
    assert_eq!(app.stock(other_goods).await, 10);

    let ledger = app.ledger(goods, order).await;
    assert_eq!(ledger.status, StatusCode::OK);
    assert_eq!(ledger.body["status"], "reserved");
    assert_eq!(ledger.body["reserved_quantity"], 3);
    assert_eq!(ledger.body["restored_quantity"], 0);
    let unknown = app.ledger(goods, Uuid::new_v4()).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "reservation_not_found"));
    assert_eq!(app.ledger_rows().await, 1);
});

shop_common::db_test!(async fn insufficient_stock_and_unknown_goods_change_nothing(db) {
    let app = spawn_app(&db).await;
    let goods = app.create_goods("Tea", "3.00", 2).await;
    let order = Uuid::new_v4();

    let short = app.reserve(goods, order, 3).await;
    assert_eq!((short.status, short.code()), (StatusCode::CONFLICT, "insufficient_stock"));
    assert!(short.body["error"]["message"].as_str().unwrap().contains("2 available"), "{}", short.body);
    assert_eq!(app.stock(goods).await, 2);
    assert_eq!(app.ledger_rows().await, 0, "a refused reservation leaves no ledger row");

    let missing = app.reserve(424242, order, 1).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "goods_not_found"));
    assert_eq!(app.ledger_rows().await, 0);

    // The refusal did not burn the order id: the same order can reserve what there is.
    let exact = app.reserve(goods, order, 2).await;
    assert_eq!(exact.status, StatusCode::OK, "{}", exact.body);
    assert_eq!(app.stock(goods).await, 0);
});

shop_common::db_test!(async fn cancellation_restores_the_stock_exactly_once(db) {
    let app = spawn_app(&db).await;
    let goods = app.create_goods("Tea", "3.00", 10).await;
    let order = Uuid::new_v4();
    assert_eq!(app.reserve(goods, order, 4).await.status, StatusCode::OK);
    assert_eq!(app.stock(goods).await, 6);

    let first = cancel_order(&app.db, order).await.unwrap();
    assert_eq!(first, CancelOutcome::Restored(Restock { goods_id: goods, quantity: 4 }));
    assert!(first.restored());
    assert_eq!(app.stock(goods).await, 10);

    let second = cancel_order(&app.db, order).await.unwrap();
    assert_eq!(second, CancelOutcome::AlreadyCancelled);
    assert!(!second.restored());
    assert_eq!(app.stock(goods).await, 10, "a second cancellation puts nothing back");

    // A late retry of the reservation is refused and takes nothing.
    let late = app.reserve(goods, order, 4).await;
    assert_eq!((late.status, late.code()), (StatusCode::CONFLICT, "order_cancelled"));
    assert_eq!(app.stock(goods).await, 10);

    let ledger = app.ledger(goods, order).await;
    assert_eq!(ledger.body["status"], "cancelled");
    assert_eq!(ledger.body["reserved_quantity"], 4);
    assert_eq!(ledger.body["restored_quantity"], 4);
});

shop_common::db_test!(async fn a_cancellation_before_the_reservation_refuses_it(db) {
    let app = spawn_app(&db).await;
    let goods = app.create_goods("Tea", "3.00", 5).await;
    let order = Uuid::new_v4();

    assert_eq!(cancel_order(&app.db, order).await.unwrap(), CancelOutcome::NothingReserved);
    let late = app.reserve(goods, order, 1).await;
    assert_eq!((late.status, late.code()), (StatusCode::CONFLICT, "order_cancelled"));
    assert_eq!(app.stock(goods).await, 5);
    assert_eq!(app.ledger_rows().await, 1, "only the cancellation marker");
    assert_eq!(cancel_order(&app.db, order).await.unwrap(), CancelOutcome::AlreadyCancelled);

    let ledger = app.ledger(goods, order).await;
    assert_eq!(ledger.body["status"], "cancelled");
    assert_eq!(ledger.body["reserved_quantity"], 0);
    assert_eq!(ledger.body["restored_quantity"], 0);
});

shop_common::db_test!(async fn racing_orders_never_oversell(db) {
    let app = spawn_app(&db).await;
    let goods = app.create_goods("Last units", "9.99", 5).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.reserve(goods, Uuid::new_v4(), 1).await })
        })
        .collect();
    let mut succeeded = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        match answer.status {
            StatusCode::OK => succeeded += 1,
            StatusCode::CONFLICT => assert_eq!(answer.code(), "insufficient_stock"),
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    assert_eq!(succeeded, 5);
    assert_eq!(app.stock(goods).await, 0);
    assert_eq!(app.ledger_rows().await, 5);
});

shop_common::db_test!(async fn a_reservation_racing_its_cancellation_never_keeps_stock(db) {
    // The saga cancels an order whose reservation timed out while that
    // reservation may still be running: whichever wins, the stock must end
    // where it started, and the reservation either never happened or was put back.
    let app = spawn_app(&db).await;
    let goods = app.create_goods("Contended", "1.00", 1_000).await;
    let orders: Vec<Uuid> = (0..30).map(|_| Uuid::new_v4()).collect();
    let mut tasks = Vec::new();
    for &order in &orders {
        let reserving = app.clone();
        tasks.push(tokio::spawn(async move {
            let answer = reserving.reserve(goods, order, 2).await;
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
    assert_eq!(app.stock(goods).await, 1_000, "no cancelled order keeps stock");
    for order in orders {
        let ledger = app.ledger(goods, order).await;
        assert_eq!(ledger.body["status"], "cancelled");
        assert_eq!(ledger.body["reserved_quantity"], ledger.body["restored_quantity"], "{}", ledger.body);
    }
});

shop_common::db_test!(async fn bad_input_is_a_clear_4xx_and_changes_nothing(db) {
    let app = spawn_app(&db).await;
    let goods = app.create_goods("Tea", "3.00", 10).await;
    let path = format!("/internal/goods/{goods}/reservations");
    let order = Uuid::new_v4().to_string();
    let too_many = MAX_RESERVATION_QUANTITY + 1;
    let cases: Vec<(&str, Option<&str>, String, StatusCode, &str)> = vec![
        ("POST", Some("application/json"), "{\"order_id\": ".to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
        ("POST", Some("application/json"), "not json".to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
        ("POST", Some("application/json"), json!({ "quantity": 1 }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        ("POST", Some("application/json"), json!({ "order_id": order }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        ("POST", Some("application/json"), json!({ "order_id": order, "quantity": "1" }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        ("POST", Some("application/json"), json!({ "order_id": order, "quantity": 1.5 }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        ("POST", Some("application/json"), json!({ "order_id": "order-1", "quantity": 1 }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        ("POST", Some("application/json"), json!({ "order_id": order, "quantity": 1e30 }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        ("POST", Some("application/json"), json!({ "order_id": order, "quantity": 0 }).to_string(), StatusCode::BAD_REQUEST, "invalid_quantity"),
        ("POST", Some("application/json"), json!({ "order_id": order, "quantity": -1 }).to_string(), StatusCode::BAD_REQUEST, "invalid_quantity"),
        ("POST", Some("application/json"), json!({ "order_id": order, "quantity": too_many }).to_string(), StatusCode::BAD_REQUEST, "invalid_quantity"),
        ("POST", None, json!({ "order_id": order, "quantity": 1 }).to_string(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    ];
    for (method, content_type, body, status, code) in cases {
        let answer = app.service("order").send(method, &path, content_type, body.clone()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{body}: {}", answer.body);
        assert!(!answer.body["error"]["message"].as_str().unwrap().is_empty());
    }

    let goods_cases = [
        (json!({ "name": "Fraction", "price": "1.001", "stock": 1 }), "invalid_price"),
        (json!({ "name": "Fraction", "price": 0.005, "stock": 1 }), "invalid_price"),
        (json!({ "name": "Negative", "price": "-1.00", "stock": 1 }), "invalid_price"),
        (json!({ "name": "Free", "price": "0.00", "stock": 1 }), "invalid_price"),
        (json!({ "name": "Huge", "price": "99999999999999999", "stock": 1 }), "invalid_price"),
        (json!({ "name": "Words", "price": "ten", "stock": 1 }), "invalid_body"),
        (json!({ "name": "Negative stock", "price": "1.00", "stock": -1 }), "invalid_stock"),
        (json!({ "name": "   ", "price": "1.00", "stock": 1 }), "invalid_name"),
        (json!({ "name": "Tab\tbed", "price": "1.00", "stock": 1 }), "invalid_name"),
        (json!({ "price": "1.00", "stock": 1 }), "invalid_body"),
    ];
    for (body, code) in goods_cases {
        let answer = app.operator().post("/goods", body.clone()).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, code), "{body}: {}", answer.body);
    }

    for (path, code) in [("/goods/abc", "invalid_path"), ("/internal/goods/1/reservations/not-a-uuid", "invalid_path")] {
        let answer = app.service("order").get(path).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, code), "{path}");
    }
    let answer = app.get("/goods?limit=0").await;
    assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, "invalid_limit"));
    let answer = app.get("/goods?limit=many").await;
    assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, "invalid_query"));
    let answer = app.get("/nowhere").await;
    assert_eq!((answer.status, answer.code()), (StatusCode::NOT_FOUND, "not_found"));
    let answer = app.send("DELETE", "/goods", None, String::new()).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));

    assert_eq!(app.stock(goods).await, 10);
    assert_eq!(app.ledger_rows().await, 0);
    assert_eq!(app.get("/goods").await.body.as_array().unwrap().len(), 1, "no bad goods was created");
});

shop_common::db_test!(async fn the_application_serves_on_a_free_port_and_stops_cleanly(db) {
    let served = Served::start(SERVICE.start(SERVICE.config_for_tests(&db.url)).await.unwrap());

    // The started service checks its callers: no token, no catalogue change;
    // no signature, no reservation.
    let (status, body) = served.http("POST", "/goods", r#"{"name": "Tea", "price": "2.50", "stock": 3}"#).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("unauthenticated"), "{body}");
    let (status, body) = served.http("GET", "/health", "").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = served.http("GET", "/goods", "").await;
    assert_eq!((status, body.as_str()), (200, "[]"), "the catalogue needs no token");
    let (status, body) = served.http("POST", "/internal/goods/1/reservations", "{oops").await;
    assert_eq!(status, 401);
    assert!(body.contains("service_unauthenticated"), "{body}");

    served.stop().await;
});

shop_common::db_test!(async fn a_consumer_applies_the_cancellation_with_its_consumed_message(db) {
    // How the ORDER_CANCEL consumer will call it: the compensation and the
    // consumed-message row in one transaction. An attempt that fails before
    // its commit leaves nothing behind; the redelivery applies it once.
    let app = spawn_app(&db).await;
    let goods = app.create_goods("Tea", "3.00", 10).await;
    let order = Uuid::new_v4();
    assert_eq!(app.reserve(goods, order, 4).await.status, StatusCode::OK);

    let mut tx = app.db.pool().begin().await.unwrap();
    assert!(record_consumption(&mut tx, "goods-order-cancel", "msg-1", 1).await.unwrap());
    assert!(cancel_order_in(&mut tx, order).await.unwrap().restored());
    tx.rollback().await.unwrap();
    assert_eq!(app.stock(goods).await, 6, "a rolled-back attempt restores nothing");

    for delivery in 0..2 {
        let mut tx = app.db.pool().begin().await.unwrap();
        let first = record_consumption(&mut tx, "goods-order-cancel", "msg-1", 2).await.unwrap();
        assert_eq!(first, delivery == 0);
        if first {
            let outcome = cancel_order_in(&mut tx, order).await.unwrap();
            assert_eq!(outcome, CancelOutcome::Restored(Restock { goods_id: goods, quantity: 4 }));
        }
        tx.commit().await.unwrap();
    }
    assert_eq!(app.stock(goods).await, 10);
});

shop_common::db_test!(async fn goods_priced_zero_or_beyond_the_bound_are_refused(db) {
    // Finding: goods priced 0.00 were created (and ordered for nothing).
    let app = spawn_app(&db).await;
    let too_much = format!("{}.01", MAX_PRICE_CENTS / 100);
    for price in [json!("0.00"), json!(0), json!("-0.01"), json!(too_much)] {
        let answer = app.operator().post("/goods", json!({ "name": "Free", "price": price, "stock": 8 })).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, "invalid_price"), "{price}");
    }
    assert_eq!(app.get("/goods").await.body, json!([]), "no goods was created");

    let tea = app.create_goods("Tea", "0.01", 8).await;
    let answer = app.operator().send("PATCH", &format!("/goods/{tea}"), Some("application/json"), json!({ "price": "0.00" }).to_string()).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, "invalid_price"));
    assert_eq!(app.get(&format!("/goods/{tea}")).await.body["price"], "0.01");
});

shop_common::db_test!(async fn only_operators_create_and_change_goods(db) {
    let app = spawn_app(&db).await;
    let body = json!({ "name": "Tea", "price": "3.00", "stock": 8 });
    let anonymous = app.post("/goods", body.clone()).await;
    assert_eq!((anonymous.status, anonymous.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    let customer = app.customer(7).post("/goods", body.clone()).await;
    assert_eq!((customer.status, customer.code()), (StatusCode::FORBIDDEN, "operator_only"));
    let forged = app.bearer("shop_not-a-token").post("/goods", body.clone()).await;
    assert_eq!((forged.status, forged.code()), (StatusCode::UNAUTHORIZED, "invalid_token"));
    assert_eq!(app.get("/goods").await.body, json!([]), "no goods was created");

    let tea = app.create_goods("Tea", "3.00", 8).await;
    let path = format!("/goods/{tea}");
    let change = json!({ "name": "Green tea", "price": "4.20", "stock": 12 }).to_string();
    for client in [app.anonymous(), app.customer(7)] {
        let answer = client.send("PATCH", &path, Some("application/json"), change.clone()).await;
        assert!(answer.status == StatusCode::UNAUTHORIZED || answer.code() == "operator_only", "{}", answer.body);
    }
    let view = app.get(&path).await.body;
    assert_eq!((view["name"].as_str(), view["price"].as_str(), view["stock"].as_i64()), (Some("Tea"), Some("3.00"), Some(8)));

    let changed = app.operator().send("PATCH", &path, Some("application/json"), change).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!((changed.body["name"].as_str(), changed.body["price"].as_str(), changed.body["stock"].as_i64()), (Some("Green tea"), Some("4.20"), Some(12)));
    // A field left out stays as it is.
    let priced = app.operator().send("PATCH", &path, Some("application/json"), json!({ "price": 5 }).to_string()).await;
    assert_eq!((priced.body["name"].as_str(), priced.body["price"].as_str(), priced.body["stock"].as_i64()), (Some("Green tea"), Some("5.00"), Some(12)));
    for (body, status, code) in [
        (json!({ "colour": "green" }), StatusCode::BAD_REQUEST, "invalid_body"),
        (json!({ "stock": -1 }), StatusCode::BAD_REQUEST, "invalid_stock"),
        (json!({ "name": " " }), StatusCode::BAD_REQUEST, "invalid_name"),
        // Finding (schemathesis): a NUL in the name was a 500 on PostgreSQL.
        (json!({ "name": "\u{0}0l", "stock": 133357 }), StatusCode::BAD_REQUEST, "invalid_name"),
    ] {
        let answer = app.operator().send("PATCH", &path, Some("application/json"), body.to_string()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{body}");
    }
    let missing = app.operator().send("PATCH", "/goods/424242", Some("application/json"), json!({ "stock": 1 }).to_string()).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "goods_not_found"));
    assert_eq!(app.stock(tea).await, 12);
});

shop_common::db_test!(async fn only_the_order_service_reserves_stock(db) {
    // Finding: POST /goods/{id}/reservations with an invented order id took
    // all 8 units, and nothing gave them back.
    let app = spawn_app(&db).await;
    let goods = app.create_goods("Last units", "9.99", 8).await;
    let order = Uuid::new_v4();
    let body = json!({ "order_id": order, "quantity": 8 });
    let path = format!("/internal/goods/{goods}/reservations");
    for (who, client, status, code) in [
        ("unsigned", app.anonymous(), StatusCode::UNAUTHORIZED, "service_unauthenticated"),
        ("a customer's token", app.customer(7), StatusCode::UNAUTHORIZED, "service_unauthenticated"),
        ("an operator's token", app.operator(), StatusCode::UNAUTHORIZED, "service_unauthenticated"),
        ("signed by pay", app.service("pay"), StatusCode::FORBIDDEN, "service_forbidden"),
        ("signed by coupon", app.service("coupon"), StatusCode::FORBIDDEN, "service_forbidden"),
    ] {
        let answer = client.post(&path, body.clone()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{who}: {}", answer.body);
        let ledger = client.get(&format!("{path}/{order}")).await;
        assert_eq!(ledger.status, status, "{who} reads no reservation");
    }
    // The old public path is gone.
    let old = app.customer(7).post(&format!("/goods/{goods}/reservations"), body.clone()).await;
    assert_eq!((old.status, old.code()), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(app.stock(goods).await, 8, "nothing was taken");
    assert_eq!(app.ledger_rows().await, 0);

    assert_eq!(app.reserve(goods, order, 8).await.status, StatusCode::OK);
    assert_eq!(app.stock(goods).await, 0);
});

/// Delivers `msg` as the service's ORDER_CANCEL consumer does: applied once
/// if its subscription's publisher signed it; `None` when it is refused.
async fn deliver(db: &shop_common::Db, msg: &MessageExt) -> Option<bool> {
    shop_common::testing::deliver(db, subscriptions(), ORDER_CANCEL, msg).await
}

fn cancel_message(order_id: Uuid) -> MessageExt {
    let event = OrderCancelled {
        order_id,
        user_id: 7,
        reason: "test".to_owned(),
    };
    testing::message(
        ORDER_CANCEL,
        &order_id.to_string(),
        serde_json::to_vec(&event).unwrap(),
    )
}

shop_common::db_test!(async fn only_an_order_cancel_the_order_service_signed_restores_stock(db) {
    // Finding: a plain send of ORDER_CANCEL gave back a confirmed order's stock.
    let app = spawn_app(&db).await;
    let goods = app.create_goods("Tea", "3.00", 10).await;
    let order = Uuid::new_v4();
    assert_eq!(app.reserve(goods, order, 4).await.status, StatusCode::OK);

    let unsigned = cancel_message(order);
    let by_pay = testing::signed("pay", ORDER_CANCEL, cancel_message(order));
    // Signed for another order, then pointed at this one.
    let mut altered = testing::signed("order", ORDER_CANCEL, cancel_message(Uuid::new_v4()));
    altered.body = cancel_message(order).body;
    for (what, msg) in [("unsigned", &unsigned), ("signed by pay", &by_pay), ("altered", &altered)] {
        assert_eq!(deliver(&app.db, msg).await, None, "{what}");
    }
    assert_eq!(app.stock(goods).await, 6, "no forged event was applied");
    let consumed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM consumed_message").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!(consumed, 0);

    let genuine = testing::signed("order", ORDER_CANCEL, cancel_message(order));
    assert_eq!(deliver(&app.db, &genuine).await, Some(true));
    assert_eq!(app.stock(goods).await, 10);
});

shop_common::db_test!(async fn operators_read_the_stock_ledger_by_order_and_in_pages(db) {
    let app = spawn_app(&db).await;
    let tea = app.create_goods("Tea", "2.00", 100).await;
    let mut orders: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    orders.sort();
    for (i, order) in orders.iter().enumerate() {
        let answer = app.reserve(tea, *order, i as i64 + 1).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    assert!(matches!(cancel_order(&app.db, orders[1]).await.unwrap(), CancelOutcome::Restored(_)));

    let one = app.operator().get(&format!("/operator/stock-ledger?order_id={}", orders[1])).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let rows = one.body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{}", one.body);
    assert_eq!(rows[0]["operation"], "cancel");
    assert_eq!(rows[0]["quantity"], 2);
    assert_eq!(rows[1]["operation"], "reserve");
    assert_eq!(rows[1]["goods_id"], tea);
    assert!(rows[1]["created_at"].as_i64().unwrap() > 0);
    assert!(one.body["next"].is_null());

    // Pages of two orders: the second order's two rows stay together.
    let first = app.operator().get("/operator/stock-ledger?limit=2").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["rows"].as_array().unwrap().len(), 3);
    assert_eq!(first.body["next"], orders[1].to_string());
    let second = app.operator().get(&format!("/operator/stock-ledger?limit=2&after={}", orders[1])).await;
    let rows = second.body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["order_id"], orders[2].to_string());
    assert!(second.body["next"].is_null());

    assert_eq!(app.customer(1).get("/operator/stock-ledger").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.anonymous().get("/operator/stock-ledger").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.operator().get("/operator/stock-ledger?limit=0").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.operator().get("/operator/stock-ledger?order_id=x").await.status, StatusCode::BAD_REQUEST);
});
