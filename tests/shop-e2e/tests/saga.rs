//! The order saga end to end, on SQLite and on PostgreSQL: a real name
//! server and broker, the goods, coupon, user and order services, and the
//! invariants of DESIGN.md section 5 checked after every test.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use shop_common::DbKind;
use shop_e2e::*;

async fn shop(kind: DbKind, options: Options) -> Option<Shop> {
    Shop::start(kind, options).await
}

shop_common::db_test!(async fn a_happy_order_is_confirmed_and_holds_its_resources(db) {
    let Some(mut shop) = shop(db.kind, Options::default()).await else { return };
    let goods = shop.add_goods("20.00", 10).await;
    let user = shop.add_user("100.00").await;
    let coupon = shop.add_coupon(user, "5.00").await;
    let (status, order) = shop
        .place_order(json!({"user_id": user, "goods_id": goods, "quantity": 2, "unit_price": "20.00", "coupon_id": coupon, "balance": "10.00"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "CONFIRMED");
    // 40.00 of goods + 10.00 shipping - 5.00 coupon - 10.00 balance.
    assert_eq!(order["goods_amount"], "40.00");
    assert_eq!(order["shipping_fee"], "10.00");
    assert_eq!(order["coupon_discount"], "5.00");
    assert_eq!(order["balance_used"], "10.00");
    assert_eq!(order["amount_to_pay"], "35.00");
    assert_eq!(shop.stock(goods).await, 8);
    assert_eq!(shop.balance(user).await, "90.00".parse().unwrap());
    assert_eq!(shop.coupon_status(coupon).await, "used");
    // Its compensation was rolled back: nothing is given back later.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(shop.stock(goods).await, 8);
    let fetched = shop.order(order["id"].as_str().unwrap()).await;
    assert_eq!(fetched["status"], "CONFIRMED");
    shop.assert_invariants().await;
    shop.stop().await;
});

shop_common::db_test!(async fn bad_orders_are_refused_before_anything_is_saved(db) {
    let Some(mut shop) = shop(db.kind, Options::default()).await else { return };
    let goods = shop.add_goods("20.00", 3).await;
    let user = shop.add_user("10.00").await;
    let other = shop.add_user("10.00").await;
    let foreign_coupon = shop.add_coupon(other, "1.00").await;
    let base = json!({"user_id": user, "goods_id": goods, "quantity": 1, "unit_price": "20.00"});
    let with = |patch: serde_json::Value| {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (with(json!({"unit_price": "19.99"})), StatusCode::BAD_REQUEST, "price_mismatch"),
        (with(json!({"quantity": 0})), StatusCode::BAD_REQUEST, "invalid_quantity"),
        (with(json!({"quantity": -3})), StatusCode::BAD_REQUEST, "invalid_quantity"),
        (with(json!({"quantity": 4})), StatusCode::CONFLICT, "insufficient_stock"),
        (with(json!({"goods_id": 999_999})), StatusCode::NOT_FOUND, "goods_not_found"),
        // Another user's account, or one that does not exist: not the caller's.
        (with(json!({"user_id": other})), StatusCode::FORBIDDEN, "not_your_account"),
        (with(json!({"user_id": 999_999})), StatusCode::FORBIDDEN, "not_your_account"),
        (with(json!({"coupon_id": foreign_coupon})), StatusCode::FORBIDDEN, "coupon_not_owned"),
        (with(json!({"balance": "10.01"})), StatusCode::CONFLICT, "insufficient_balance"),
        (with(json!({"balance": "0.001"})), StatusCode::BAD_REQUEST, "invalid_balance"),
        (with(json!({"quantity": "two"})), StatusCode::BAD_REQUEST, "invalid_body"),
        (json!({"goods_id": goods}), StatusCode::BAD_REQUEST, "invalid_body"),
    ];
    let token = shop.token_of(user);
    for (body, status, code) in cases {
        let (got, answer) = shop
            .post_as(Some(&token), format!("{}/orders", shop.order.url), body.clone())
            .await;
        assert_eq!(got, status, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} → {answer}");
    }
    // Not JSON at all.
    let raw = shop.http.post(format!("{}/orders", shop.order.url)).bearer_auth(&token).header("content-type", "application/json").body("{").send().await.unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders").fetch_one(shop.order.db.pool()).await.unwrap();
    assert_eq!(n, 0, "nothing was saved");
    assert_eq!(shop.stock(goods).await, 3);
    shop.assert_invariants().await;
    shop.stop().await;
});

shop_common::db_test!(async fn a_failed_reservation_cancels_the_order_and_gives_everything_back(db) {
    let options = Options { user_fault: Some(Fault::Fail), ..Options::default() };
    let Some(mut shop) = shop(db.kind, options).await else { return };
    let goods = shop.add_goods("20.00", 10).await;
    let user = shop.add_user("100.00").await;
    let coupon = shop.add_coupon(user, "5.00").await;
    let (status, answer) = shop
        .place_order(json!({"user_id": user, "goods_id": goods, "quantity": 3, "unit_price": "20.00", "coupon_id": coupon, "balance": "10.00"}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    let order_id = answer["error"]["message"].as_str().unwrap().split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(shop.order(&order_id).await["status"], "CANCELLED");
    // The ORDER_CANCEL compensation gives back stock and coupon.
    eventually("the stock is restored", || async { shop.stock(goods).await == 10 }).await;
    eventually("the coupon is released", || async { shop.coupon_status(coupon).await == "unused" }).await;
    assert_eq!(shop.balance(user).await, "100.00".parse().unwrap());
    shop.assert_invariants().await;
    shop.stop().await;
});

shop_common::db_test!(async fn a_reservation_that_times_out_cancels_and_its_late_arrival_is_refused(db) {
    // The balance reservation reaches the user service 2.5 s late, after the
    // order timed out (1 s) and was compensated.
    let options = Options { user_fault: Some(Fault::Delay(Duration::from_millis(2500))), ..Options::default() };
    let Some(mut shop) = shop(db.kind, options).await else { return };
    let goods = shop.add_goods("20.00", 10).await;
    let user = shop.add_user("100.00").await;
    let (status, answer) = shop
        .place_order(json!({"user_id": user, "goods_id": goods, "quantity": 1, "unit_price": "20.00", "balance": "30.00"}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    eventually("the stock is restored", || async { shop.stock(goods).await == 10 }).await;
    // Well after the late reservation arrived: the balance is whole.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(shop.balance(user).await, "100.00".parse().unwrap());
    shop.assert_invariants().await;
    shop.stop().await;
});

shop_common::db_test!(async fn racing_orders_never_oversell_and_losers_are_compensated(db) {
    let Some(mut shop) = shop(db.kind, Options::default()).await else { return };
    let goods = shop.add_goods("10.00", 3).await;
    let mut users = Vec::new();
    for _ in 0..8 {
        users.push(shop.add_user("50.00").await);
    }
    let shop = Arc::new(shop);
    let mut tasks = Vec::new();
    for user in users.clone() {
        let shop = shop.clone();
        tasks.push(tokio::spawn(async move {
            shop.place_order(json!({"user_id": user, "goods_id": goods, "quantity": 1, "unit_price": "10.00", "balance": "5.00"})).await
        }));
    }
    let mut confirmed = 0;
    for task in tasks {
        let (status, answer) = task.await.unwrap();
        match status {
            StatusCode::CREATED => confirmed += 1,
            StatusCode::CONFLICT => assert_eq!(answer["error"]["code"], "insufficient_stock", "{answer}"),
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    assert_eq!(confirmed, 3, "exactly the stock is sold");
    assert_eq!(shop.stock(goods).await, 0);
    shop.assert_invariants().await;
    let shop = Arc::into_inner(shop).expect("no other owner");
    shop.stop().await;
});

shop_common::db_test!(async fn an_order_service_that_dies_mid_saga_is_settled_by_the_check_back(db) {
    // Reservations of balance hang for a long time; the order service dies
    // while one is in flight, after its order was saved as PENDING.
    let options = Options {
        user_fault: Some(Fault::Delay(Duration::from_secs(30))),
        call_timeout: Duration::from_secs(60),
        ..Options::default()
    };
    let Some(mut shop) = shop(db.kind, options).await else { return };
    let goods = shop.add_goods("20.00", 10).await;
    let user = shop.add_user("100.00").await;
    let coupon = shop.add_coupon(user, "5.00").await;
    let order_url = shop.order.url.clone();
    let http = shop.http.clone();
    let token = shop.token_of(user);
    let in_flight = tokio::spawn(async move {
        http.post(format!("{order_url}/orders"))
            .bearer_auth(token)
            .json(&json!({"user_id": user, "goods_id": goods, "quantity": 2, "unit_price": "20.00", "coupon_id": coupon, "balance": "10.00"}))
            .send()
            .await
    });
    eventually("the stock is reserved", || async { shop.stock(goods).await == 8 }).await;
    eventually("the coupon is used", || async { shop.coupon_status(coupon).await == "used" }).await;
    shop.order.kill();
    in_flight.abort();
    // A new instance of the order service (a restart) answers the broker's
    // check-back; its sweeper is slowed down so the check-back is what acts.
    shop.order = shop.start_order(Duration::from_secs(3600)).await;
    eventually("the order is cancelled", || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE status = 'CANCELLED'")
            .fetch_one(shop.order.db.pool())
            .await
            .unwrap();
        n == 1
    })
    .await;
    eventually("the stock is restored", || async { shop.stock(goods).await == 10 }).await;
    eventually("the coupon is released", || async { shop.coupon_status(coupon).await == "unused" }).await;
    shop.assert_invariants().await;
    shop.stop().await;
});

shop_common::db_test!(async fn a_paid_order_fans_out_to_order_log_and_points_exactly_once(db) {
    let Some(mut shop) = shop(db.kind, Options::default()).await else { return };
    let goods = shop.add_goods("19.99", 10).await;
    let user = shop.add_user("100.00").await;
    let (status, order) = shop
        .place_order(json!({"user_id": user, "goods_id": goods, "quantity": 3, "unit_price": "19.99", "balance": "0.50"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["id"].as_str().unwrap().to_owned();
    // 59.97 + 10.00 shipping - 0.50 balance = 69.47: 69 points.
    assert_eq!(order["amount_to_pay"], "69.47");
    let payment = shop.pay(&order_id).await;
    // The gateway notifies again (a second click): answered the same, no new effect.
    let again = shop.pay(&order_id).await;
    assert_eq!(again["payment_id"], payment["payment_id"]);
    eventually("the order is PAID", || async { shop.order(&order_id).await["status"] == "PAID" }).await;
    eventually("the points are credited", || async { shop.points_of(user).await == 69 }).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(shop.points_of(user).await, 69, "credited once");
    shop.assert_invariants().await;
    shop.stop().await;
});
