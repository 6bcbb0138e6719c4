//! The log service against a fresh database per test, on SQLite and on
//! PostgreSQL: its consumers' handlers driven through
//! `shop_common::events::apply_once` with hand-built messages (each
//! delivered twice), and its API through `Router::oneshot` (`shop_common::testing::RouterClient`).

use axum::http::StatusCode;
use mq_client::MessageExt;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use shop_common::events::{
    apply_once, OrderCancelled, PaymentSucceeded, ORDER_CANCEL, PAY_SUCCESS,
};
use shop_common::service::ServiceConfig;
use shop_common::testing::{message, signed, Served};
use shop_log::events::{
    OnOrderCancelled, OnPaymentRefunded, OnPaymentSucceeded, PaymentRefunded, CANCEL_GROUP,
    PAY_GROUP, PAY_REFUND, REFUND_GROUP,
};
use shop_log::{router, subscriptions, AppState, MIGRATIONS, SERVICE};
use uuid::Uuid;

fn paid(amount: &str) -> PaymentSucceeded {
    PaymentSucceeded {
        payment_id: Uuid::new_v4(),
        order_id: Uuid::new_v4(),
        user_id: 7,
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

    async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }
}

shop_common::db_test!(async fn a_payment_is_logged_once_however_often_it_arrives(db) {
    let app = spawn_app(&db).await;
    let event = paid("12.30");
    let msg = pay_message(&event);
    assert!(apply_once(&app.db, PAY_GROUP, &OnPaymentSucceeded, &msg).await.unwrap());
    // Redelivered: the consumed-message row stops it.
    assert!(!apply_once(&app.db, PAY_GROUP, &OnPaymentSucceeded, &msg).await.unwrap());
    // The same event published again as another message (a new unique id,
    // the same KEYS): still once.
    let copy = pay_message(&event);
    assert!(!apply_once(&app.db, PAY_GROUP, &OnPaymentSucceeded, &copy).await.unwrap());
    // Even under another key, the unique payment id keeps one row.
    let other_key = message(PAY_SUCCESS, "another-key", serde_json::to_vec(&event).unwrap());
    assert!(apply_once(&app.db, PAY_GROUP, &OnPaymentSucceeded, &other_key).await.unwrap());
    assert_eq!(app.count("payment_log").await, 1);

    let (status, body) = app.get(&format!("/logs/payments?order_id={}", event.order_id)).await;
    assert_eq!(status, StatusCode::OK);
    let rows = body.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["payment_id"], event.payment_id.to_string());
    assert_eq!(rows[0]["amount"], "12.30");
    assert_eq!(rows[0]["trade_no"], "GW-1");
    assert_eq!(rows[0]["user_id"], 7);
    assert_eq!(rows[0]["paid_at"], 1_700_000_000_000_i64);
});

shop_common::db_test!(async fn a_cancellation_is_logged_once(db) {
    let app = spawn_app(&db).await;
    let event = OrderCancelled {
        order_id: Uuid::new_v4(),
        user_id: 3,
        reason: "goods refused: insufficient_stock".to_owned(),
    };
    let msg = message(ORDER_CANCEL, &event.order_id.to_string(), serde_json::to_vec(&event).unwrap());
    assert!(apply_once(&app.db, CANCEL_GROUP, &OnOrderCancelled, &msg).await.unwrap());
    assert!(!apply_once(&app.db, CANCEL_GROUP, &OnOrderCancelled, &msg).await.unwrap());
    assert_eq!(app.count("order_log").await, 1);

    let (status, body) = app.get(&format!("/logs/orders?order_id={}", event.order_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["event"], "cancelled");
    assert_eq!(body[0]["reason"], "goods refused: insufficient_stock");
    assert_eq!(body[0]["user_id"], 3);
    let (_, none) = app.get(&format!("/logs/orders?order_id={}", Uuid::new_v4())).await;
    assert_eq!(none, json!([]));
});

shop_common::db_test!(async fn a_bad_message_fails_and_leaves_no_trace(db) {
    let app = spawn_app(&db).await;
    let garbage = message(PAY_SUCCESS, "k1", b"{not json".to_vec());
    assert!(apply_once(&app.db, PAY_GROUP, &OnPaymentSucceeded, &garbage).await.is_err());
    // A fraction of a cent cannot be logged exactly: refused, not rounded.
    let msg = pay_message(&paid("0.001"));
    assert!(apply_once(&app.db, PAY_GROUP, &OnPaymentSucceeded, &msg).await.is_err());
    // Nothing recorded, so a redelivery is applied again (and fails again
    // until the broker's retries send it to the dead-letter queue).
    assert_eq!(app.count("consumed_message").await, 0);
    assert_eq!(app.count("payment_log").await, 0);
});

shop_common::db_test!(async fn listings_filter_and_page(db) {
    let app = spawn_app(&db).await;
    let events: Vec<_> = (0..5).map(|i| {
        let mut e = paid(&format!("{i}.50"));
        e.user_id = 100 + i % 2;
        e
    }).collect();
    for e in &events {
        assert!(apply_once(&app.db, PAY_GROUP, &OnPaymentSucceeded, &pay_message(e)).await.unwrap());
    }
    let (_, all) = app.get("/logs/payments").await;
    assert_eq!(all.as_array().unwrap().len(), 5);
    let (_, page) = app.get("/logs/payments?limit=2").await;
    let page = page.as_array().unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[1]["amount"], "1.50");
    let after = page[1]["id"].as_i64().unwrap();
    let (_, rest) = app.get(&format!("/logs/payments?after_id={after}")).await;
    assert_eq!(rest.as_array().unwrap().len(), 3);
    assert_eq!(rest[0]["amount"], "2.50");
    let (_, user) = app.get("/logs/payments?user_id=101").await;
    assert_eq!(user.as_array().unwrap().len(), 2);

    for (path, code) in [
        ("/logs/payments?limit=0", "invalid_limit"),
        ("/logs/payments?limit=1001", "invalid_limit"),
        ("/logs/payments?limit=ten", "invalid_query"),
        ("/logs/payments?order_id=42", "invalid_query"),
        ("/logs/orders?colour=red", "invalid_query"),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{path}");
    }
    let (status, body) = app.get("/logs").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
});

shop_common::db_test!(async fn the_application_serves_on_a_free_port_and_stops(db) {
    let app = SERVICE.start(ServiceConfig::for_tests(&db.url)).await.unwrap();
    assert!(app.consumers().is_empty());
    let served = Served::start(app);
    let (status, body) = served.http("GET", "/health", "").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = served.http("GET", "/logs/payments", "").await;
    assert_eq!(status, 401, "the started service wants a token: {body}");
    served.stop().await;
});

shop_common::db_test!(async fn customers_read_only_their_own_logs(db) {
    // Finding: every user's payment logs could be read.
    let app = spawn_app(&db).await;
    let mine = paid("12.30");
    let theirs = PaymentSucceeded { user_id: 8, ..paid("99.00") };
    for e in [&mine, &theirs] {
        assert!(apply_once(&app.db, PAY_GROUP, &OnPaymentSucceeded, &pay_message(e)).await.unwrap());
    }
    let cancelled = OrderCancelled { order_id: Uuid::new_v4(), user_id: 8, reason: "timeout".to_owned() };
    let msg = message(ORDER_CANCEL, &cancelled.order_id.to_string(), serde_json::to_vec(&cancelled).unwrap());
    assert!(apply_once(&app.db, CANCEL_GROUP, &OnOrderCancelled, &msg).await.unwrap());

    let customer = app.api.customer(7);
    let own = customer.get("/logs/payments").await;
    assert_eq!(own.status, StatusCode::OK);
    let rows = own.body.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["payment_id"], mine.payment_id.to_string());
    assert_eq!(customer.get("/logs/payments?user_id=7").await.body, own.body);
    for path in ["/logs/payments?user_id=8", "/logs/orders?user_id=8"] {
        let other = customer.get(path).await;
        assert_eq!((other.status, other.code()), (StatusCode::FORBIDDEN, "not_your_account"), "{path}");
    }
    // Naming someone else's order finds nothing of theirs.
    let by_order = customer.get(&format!("/logs/payments?order_id={}", theirs.order_id)).await;
    assert_eq!(by_order.body, json!([]));
    assert_eq!(customer.get("/logs/orders").await.body, json!([]));
    assert_eq!(app.api.customer(8).get("/logs/orders").await.body.as_array().unwrap().len(), 1);
    let (_, all) = app.get("/logs/payments").await;
    assert_eq!(all.as_array().unwrap().len(), 2, "an operator reads everyone's");
    for path in ["/logs/payments", "/logs/orders"] {
        let anonymous = app.api.get(path).await;
        assert_eq!((anonymous.status, anonymous.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"), "{path}");
    }
});

/// Delivers `msg` as the service's consumer of its topic does: applied once
/// if its subscription's publisher signed it; `None` when it is refused.
async fn deliver(db: &shop_common::Db, topic: &str, msg: &MessageExt) -> Option<bool> {
    shop_common::testing::deliver(db, subscriptions(), topic, msg).await
}

shop_common::db_test!(async fn only_events_signed_by_their_owner_are_logged(db) {
    // Finding: a forged PAY_SUCCESS wrote a payment log with no payment behind it.
    let app = spawn_app(&db).await;
    let event = paid("1000000.00");
    let unsigned = pay_message(&event);
    let by_order = signed("order", PAY_SUCCESS, pay_message(&event));
    let mut altered = signed("pay", PAY_SUCCESS, pay_message(&paid("1.00")));
    altered.body = pay_message(&event).body;
    for (what, msg) in [("unsigned", &unsigned), ("signed by order", &by_order), ("altered", &altered)] {
        assert_eq!(deliver(&app.db, PAY_SUCCESS, msg).await, None, "{what}");
    }
    let cancel = OrderCancelled { order_id: Uuid::new_v4(), user_id: 7, reason: "forged".to_owned() };
    let cancel_msg = || message(ORDER_CANCEL, &cancel.order_id.to_string(), serde_json::to_vec(&cancel).unwrap());
    assert_eq!(deliver(&app.db, ORDER_CANCEL, &cancel_msg()).await, None, "unsigned");
    assert_eq!(deliver(&app.db, ORDER_CANCEL, &signed("pay", ORDER_CANCEL, cancel_msg())).await, None, "signed by pay");
    assert_eq!(app.count("payment_log").await + app.count("order_log").await, 0);
    assert_eq!(app.count("consumed_message").await, 0);

    assert_eq!(deliver(&app.db, PAY_SUCCESS, &signed("pay", PAY_SUCCESS, pay_message(&event))).await, Some(true));
    assert_eq!(deliver(&app.db, ORDER_CANCEL, &signed("order", ORDER_CANCEL, cancel_msg())).await, Some(true));
    assert_eq!((app.count("payment_log").await, app.count("order_log").await), (1, 1));
});

fn refunded(amount: &str) -> PaymentRefunded {
    PaymentRefunded {
        payment_id: Uuid::new_v4(),
        order_id: Uuid::new_v4(),
        user_id: 7,
        amount: amount.parse::<Decimal>().unwrap(),
        trade_no: "GW-9".to_owned(),
        refunded_at: 1_700_000_100_000,
        reason: "order_cancelled".to_owned(),
    }
}

fn refund_message(event: &PaymentRefunded) -> MessageExt {
    message(
        PAY_REFUND,
        &event.payment_id.to_string(),
        serde_json::to_vec(event).unwrap(),
    )
}

shop_common::db_test!(async fn a_refund_is_logged_once_beside_the_payments(db) {
    // Issue 15 part 7: a payment for a cancelled order is refunded, and the
    // payment log records the refund.
    let app = spawn_app(&db).await;
    let event = refunded("12.30");
    let msg = refund_message(&event);
    assert!(apply_once(&app.db, REFUND_GROUP, &OnPaymentRefunded, &msg).await.unwrap());
    assert!(!apply_once(&app.db, REFUND_GROUP, &OnPaymentRefunded, &msg).await.unwrap());
    let other_key = message(PAY_REFUND, "another-key", serde_json::to_vec(&event).unwrap());
    assert!(apply_once(&app.db, REFUND_GROUP, &OnPaymentRefunded, &other_key).await.unwrap());
    assert_eq!(app.count("payment_log").await, 1, "one refund row per payment");
    // A payment that was booked and then refunded has both rows.
    let booked = PaymentSucceeded { payment_id: event.payment_id, order_id: event.order_id, ..paid("12.30") };
    assert!(apply_once(&app.db, PAY_GROUP, &OnPaymentSucceeded, &pay_message(&booked)).await.unwrap());
    assert_eq!(app.count("payment_log").await, 2);

    let (status, body) = app.get(&format!("/logs/payments?order_id={}", event.order_id)).await;
    assert_eq!(status, StatusCode::OK);
    let rows = body.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["event"].as_str(), rows[0]["amount"].as_str(), rows[0]["reason"].as_str()),
        (Some("refunded"), Some("12.30"), Some("order_cancelled"))
    );
    assert_eq!(rows[0]["refunded_at"], 1_700_000_100_000_i64);
    assert_eq!(rows[0]["paid_at"], Value::Null);
    assert_eq!(rows[0]["trade_no"], "GW-9");
    assert_eq!((rows[1]["event"].as_str(), rows[1]["refunded_at"].is_null()), (Some("paid"), true));
    assert_eq!(rows[1]["paid_at"], 1_700_000_000_000_i64);

    // A refund of a fraction of a cent cannot be logged exactly.
    let bad = refund_message(&refunded("0.001"));
    assert!(apply_once(&app.db, REFUND_GROUP, &OnPaymentRefunded, &bad).await.is_err());
    assert_eq!(app.count("payment_log").await, 2);
});

shop_common::db_test!(async fn only_a_pay_refund_the_pay_service_signed_is_logged(db) {
    let app = spawn_app(&db).await;
    let event = refunded("40.00");
    let mut altered = signed("pay", PAY_REFUND, refund_message(&refunded("1.00")));
    altered.body = refund_message(&event).body;
    for (what, msg) in [
        ("unsigned", refund_message(&event)),
        ("signed by order", signed("order", PAY_REFUND, refund_message(&event))),
        ("altered", altered),
    ] {
        assert_eq!(deliver(&app.db, PAY_REFUND, &msg).await, None, "{what}");
    }
    assert_eq!(app.count("payment_log").await, 0);
    let genuine = signed("pay", PAY_REFUND, refund_message(&event));
    assert_eq!(deliver(&app.db, PAY_REFUND, &genuine).await, Some(true));
    assert_eq!(app.count("payment_log").await, 1);
});

shop_common::db_test!(async fn payments_logged_before_refunds_existed_stay_paid(db) {
    // The 0002 migration rebuilds (SQLite) or alters (PostgreSQL) a
    // payment_log that already holds rows.
    let old = tempfile::tempdir().unwrap();
    let kind = match db.kind { shop_common::DbKind::Sqlite => "sqlite", shop_common::DbKind::Postgres => "postgres" };
    let first = format!("{}/../../migrations/{kind}/log/0001_init.sql", env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(first, old.path().join("0001_init.sql")).unwrap();
    let before = shop_common::Db::connect(&db.url, 2).await.unwrap();
    sqlx::migrate::Migrator::new(old.path()).await.unwrap().run(before.pool()).await.unwrap();
    sqlx::query(
        "INSERT INTO payment_log (payment_id, order_id, user_id, amount_cents, trade_no, paid_at, logged_at) \
         VALUES ($1, $2, 7, 1230, 'GW-1', 5, 6)",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(Uuid::new_v4().to_string())
    .execute(before.pool())
    .await
    .unwrap();
    before.close().await;

    let app = spawn_app(&db).await;
    let (_, rows) = app.get("/logs/payments").await;
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!((rows[0]["event"].as_str(), rows[0]["amount"].as_str(), rows[0]["paid_at"].as_i64()), (Some("paid"), Some("12.30"), Some(5)));
    let event = refunded("12.30");
    assert!(apply_once(&app.db, REFUND_GROUP, &OnPaymentRefunded, &refund_message(&event)).await.unwrap());
    assert_eq!(app.count("payment_log").await, 2);
});
