//! The points service against a fresh database per test, on SQLite and on
//! PostgreSQL: the PAY_SUCCESS handler driven through
//! `shop_common::events::apply_once` with hand-built messages (each
//! delivered twice), and the API through `Router::oneshot` (`shop_common::testing::RouterClient`).

use axum::http::StatusCode;
use mq_client::MessageExt;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use shop_common::events::{apply_once, PaymentSucceeded, PAY_SUCCESS};
use shop_common::service::ServiceConfig;
use shop_common::testing::{message, signed, Served};
use shop_points::events::{OnPaymentSucceeded, PAY_GROUP};
use shop_points::{router, subscriptions, AppState, MIGRATIONS, SERVICE};
use uuid::Uuid;

fn paid(user_id: i64, amount: &str) -> PaymentSucceeded {
    PaymentSucceeded {
        payment_id: Uuid::new_v4(),
        order_id: Uuid::new_v4(),
        user_id,
        amount: amount.parse::<Decimal>().unwrap(),
        trade_no: "GW-1".to_owned(),
        paid_at: 1_700_000_000_000,
    }
}

fn pay_message(event: &PaymentSucceeded) -> MessageExt {
    message(
        PAY_SUCCESS,
        &event.payment_id.to_string(),
        serde_json::to_vec(event).unwrap(),
    )
}

shop_common::test_app!(MIGRATIONS, |db, auth| router(AppState { db }, auth));

impl TestApp {
    /// `path` read by an operator.
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let answer = self.api.operator().get(path).await;
        (answer.status, answer.body)
    }

    async fn points(&self, user_id: i64) -> i64 {
        let (status, body) = self.get(&format!("/points/{user_id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["user_id"], user_id);
        body["points"].as_i64().unwrap()
    }

    async fn apply(&self, msg: &MessageExt) -> bool {
        apply_once(&self.db, PAY_GROUP, &OnPaymentSucceeded, msg)
            .await
            .unwrap()
    }
}

shop_common::db_test!(async fn points_are_one_per_whole_unit_paid(db) {
    let app = spawn_app(&db).await;
    assert_eq!(app.points(7).await, 0, "a user never credited has 0 points");
    // 12.99 → 12, 0.99 → 0, 100 → 100, 5.01 → 5: 117 in all.
    for amount in ["12.99", "0.99", "100", "5.01"] {
        assert!(app.apply(&pay_message(&paid(7, amount))).await, "{amount}");
    }
    assert_eq!(app.points(7).await, 117);
    assert_eq!(app.points(8).await, 0, "another user is untouched");

    let (status, credits) = app.get("/points/7/credits").await;
    assert_eq!(status, StatusCode::OK);
    let mut points: Vec<(String, i64)> = credits
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["amount"].as_str().unwrap().to_owned(), c["points"].as_i64().unwrap()))
        .collect();
    points.sort();
    assert_eq!(
        points,
        vec![
            ("0.99".to_owned(), 0),
            ("100.00".to_owned(), 100),
            ("12.99".to_owned(), 12),
            ("5.01".to_owned(), 5)
        ]
    );
});

shop_common::db_test!(async fn a_payment_credits_once_however_often_it_arrives(db) {
    let app = spawn_app(&db).await;
    let event = paid(7, "12.30");
    let msg = pay_message(&event);
    assert!(app.apply(&msg).await);
    assert!(!app.apply(&msg).await, "a redelivery is skipped");
    assert!(!app.apply(&pay_message(&event)).await, "a re-publication under the same key too");
    assert_eq!(app.points(7).await, 12);

    // The same payment under another key, and another payment for the same
    // order: the ledger's unique keys stop both.
    let other_key = message(PAY_SUCCESS, "another-key", serde_json::to_vec(&event).unwrap());
    assert!(app.apply(&other_key).await);
    let same_order = PaymentSucceeded { payment_id: Uuid::new_v4(), ..event.clone() };
    assert!(app.apply(&pay_message(&same_order)).await);
    assert_eq!(app.points(7).await, 12);
    let ledger: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM points_ledger")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(ledger, 1);
});

shop_common::db_test!(async fn concurrent_deliveries_credit_once(db) {
    let app = spawn_app(&db).await;
    let event = paid(9, "50.00");
    let msg = pay_message(&event);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let db = app.db.clone();
            let msg = msg.clone();
            tokio::spawn(async move {
                // A losing transaction may fail on the unique key; the broker
                // would redeliver it, and the redelivery is skipped.
                apply_once(&db, PAY_GROUP, &OnPaymentSucceeded, &msg).await
            })
        })
        .collect();
    let mut applied = 0;
    for task in tasks {
        if let Ok(true) = task.await.unwrap() {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    assert!(!app.apply(&msg).await);
    assert_eq!(app.points(9).await, 50);
});

shop_common::db_test!(async fn bad_messages_credit_nothing(db) {
    let app = spawn_app(&db).await;
    for msg in [
        message(PAY_SUCCESS, "k1", b"not json".to_vec()),
        message(PAY_SUCCESS, "k2", br#"{"payment_id": 5}"#.to_vec()),
        pay_message(&paid(7, "0.001")),
        pay_message(&paid(7, "-3")),
    ] {
        assert!(apply_once(&app.db, PAY_GROUP, &OnPaymentSucceeded, &msg).await.is_err());
    }
    assert_eq!(app.points(7).await, 0);
    let consumed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM consumed_message")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(consumed, 0, "a failed message is not recorded, so it is retried");
});

shop_common::db_test!(async fn bad_requests_are_answered_in_the_shop_error_shape(db) {
    let app = spawn_app(&db).await;
    for (path, status, code) in [
        ("/points/abc", StatusCode::BAD_REQUEST, "invalid_path"),
        ("/points/0", StatusCode::BAD_REQUEST, "invalid_user_id"),
        ("/points/-4", StatusCode::BAD_REQUEST, "invalid_user_id"),
        ("/points/1/credits?limit=0", StatusCode::BAD_REQUEST, "invalid_limit"),
        ("/points/1/credits?limit=x", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/points", StatusCode::NOT_FOUND, "not_found"),
    ] {
        let (got, body) = app.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{path}");
    }
    let (_, body) = app.get("/points/1/credits").await;
    assert_eq!(body, json!([]));
});

shop_common::db_test!(async fn the_application_serves_on_a_free_port_and_stops(db) {
    let app = SERVICE.start(ServiceConfig::for_tests(&db.url)).await.unwrap();
    assert!(app.consumers().is_empty());
    let served = Served::start(app);
    let (status, body) = served.http("GET", "/health", "").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = served.http("GET", "/points/3", "").await;
    assert_eq!(status, 401, "the started service wants a token: {body}");
    served.stop().await;
});

shop_common::db_test!(async fn customers_read_only_their_own_points(db) {
    // Finding: every user's points could be read.
    let app = spawn_app(&db).await;
    assert!(app.apply(&pay_message(&paid(7, "12.00"))).await);
    assert!(app.apply(&pay_message(&paid(8, "30.00"))).await);
    let seven = app.api.customer(7);
    let own = seven.get("/points/7").await;
    assert_eq!((own.status, own.body["points"].as_i64()), (StatusCode::OK, Some(12)));
    assert_eq!(seven.get("/points/7/credits").await.body.as_array().unwrap().len(), 1);
    for path in ["/points/8", "/points/8/credits", "/points/424242"] {
        let other = seven.get(path).await;
        assert_eq!((other.status, other.code()), (StatusCode::NOT_FOUND, "points_not_found"), "{path}");
        let anonymous = app.api.get(path).await;
        assert_eq!((anonymous.status, anonymous.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"), "{path}");
    }
    assert_eq!(app.points(8).await, 30, "an operator reads everyone's");
});

/// Delivers `msg` as the service's PAY_SUCCESS consumer does: applied once
/// if its subscription's publisher signed it; `None` when it is refused.
async fn deliver(db: &shop_common::Db, msg: &MessageExt) -> Option<bool> {
    shop_common::testing::deliver(db, subscriptions(), PAY_SUCCESS, msg).await
}

shop_common::db_test!(async fn only_a_pay_success_the_pay_service_signed_credits_points(db) {
    // Finding: a forged PAY_SUCCESS credited 1,000,000 points.
    let app = spawn_app(&db).await;
    let event = paid(7, "1000000.00");
    let unsigned = pay_message(&event);
    let by_order = signed("order", PAY_SUCCESS, pay_message(&event));
    let mut altered = signed("pay", PAY_SUCCESS, pay_message(&paid(7, "1.00")));
    altered.body = pay_message(&event).body;
    for (what, msg) in [("unsigned", &unsigned), ("signed by order", &by_order), ("altered", &altered)] {
        assert_eq!(deliver(&app.db, msg).await, None, "{what}");
    }
    assert_eq!(app.points(7).await, 0, "no forged event was applied");

    let genuine = signed("pay", PAY_SUCCESS, pay_message(&paid(7, "25.00")));
    assert_eq!(deliver(&app.db, &genuine).await, Some(true));
    assert_eq!(app.points(7).await, 25);
});

shop_common::db_test!(async fn operators_read_credits_by_order_and_in_pages(db) {
    let app = spawn_app(&db).await;
    let mut events: Vec<PaymentSucceeded> = vec![paid(7, "12.99"), paid(8, "3.00"), paid(7, "1.00")];
    for event in &events {
        assert!(app.apply(&pay_message(event)).await);
    }
    events.sort_by_key(|e| e.order_id);

    let (status, one) = app.get(&format!("/operator/credits?order_id={}", events[0].order_id)).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    let credits = one["credits"].as_array().unwrap();
    assert_eq!(credits.len(), 1);
    assert_eq!(credits[0]["payment_id"], events[0].payment_id.to_string());
    assert_eq!(credits[0]["user_id"], events[0].user_id);
    assert_eq!(credits[0]["points"], crate_points(&events[0]));
    assert!(one["next"].is_null());

    let (_, first) = app.get("/operator/credits?limit=2").await;
    assert_eq!(first["credits"].as_array().unwrap().len(), 2, "{first}");
    assert_eq!(first["next"], events[1].order_id.to_string());
    let (_, second) = app.get(&format!("/operator/credits?limit=2&after={}", events[1].order_id)).await;
    assert_eq!(second["credits"][0]["order_id"], events[2].order_id.to_string());
    assert!(second["next"].is_null());

    let customer = app.api.customer(7).get("/operator/credits").await;
    assert_eq!((customer.status, customer.code()), (StatusCode::FORBIDDEN, "operator_only"));
    assert_eq!(app.api.get("/operator/credits").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/operator/credits?limit=0").await.0, StatusCode::BAD_REQUEST);
});

/// One point per whole unit paid.
fn crate_points(event: &PaymentSucceeded) -> i64 {
    shop_points::repo::points_for(shop_common::money::to_cents(event.amount).unwrap()).unwrap()
}
