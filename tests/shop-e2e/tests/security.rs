//! Who may do what in the shop, end to end with authentication on, on
//! SQLite and on PostgreSQL: strangers and other customers cannot act for
//! a user, internal endpoints refuse everyone but the order service,
//! forged events change nothing and do not block their queue, and a
//! payment for a cancelled order is refunded, not booked. The invariants
//! of DESIGN.md (with "no PAID payment whose order is not PAID") are
//! checked after each.

use std::time::Duration;

use axum::http::StatusCode;
use mq_client::{ClientConfig, Message, Producer, ProducerConfig};
use serde_json::json;
use shop_common::auth::ServiceKey;
use shop_common::DbKind;
use shop_e2e::*;

async fn shop(kind: DbKind) -> Option<Shop> {
    Shop::start(kind, Options::default()).await
}

/// Publishes `message` to the test cluster as an outsider (the test
/// cluster runs without ACL, so only the consumers' checks stand between
/// a forged event and its effect).
async fn publish(shop: &Shop, message: Message) {
    let producer = Producer::start(
        ProducerConfig::new("forger"),
        ClientConfig::new(shop.cluster.namesrv.addr.clone())
            .with_instance_name(shop_common::events::instance_name("forger")),
    )
    .await
    .expect("the forger's producer starts");
    producer.send(message).await.expect("the broker stores it");
    producer.shutdown().await;
}

shop_common::db_test!(async fn strangers_and_other_customers_cannot_act_for_a_user(db) {
    let Some(mut shop) = shop(db.kind).await else { return };
    let goods = shop.add_goods("20.00", 8).await;
    let alice = shop.add_user("100.00").await;
    let bob = shop.add_user("100.00").await;
    let coupon = shop.add_coupon(alice, "5.00").await;
    let bob_token = shop.token_of(bob);
    let order_body = json!({"user_id": alice, "goods_id": goods, "quantity": 1, "unit_price": "20.00", "coupon_id": coupon, "balance": "10.00"});

    // No token, or bob's, does not spend alice's balance and coupon.
    let orders = format!("{}/orders", shop.order.url);
    let (status, _) = shop.post_as(None, orders.clone(), order_body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, answer) = shop.post_as(Some(&bob_token), orders.clone(), order_body.clone()).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("not_your_account")));
    let (status, answer) = shop.post_as(Some("shop_0123"), orders.clone(), order_body.clone()).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")));

    // Alice's own order; bob can neither see it nor pay for it.
    let (status, order) = shop.place_order(order_body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["id"].as_str().unwrap().to_owned();
    let (status, _) = shop.get_as(&bob_token, format!("{}/orders/{order_id}", shop.order.url)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = shop.post_as(Some(&bob_token), format!("{}/payments", shop.pay.url), json!({"order_id": order_id})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for url in [
        format!("{}/users/{alice}", shop.user.url),
        format!("{}/coupons/{coupon}", shop.coupon.url),
    ] {
        let (status, answer) = shop.get_as(&bob_token, url.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{url}: {answer}");
    }
    let (status, _) = shop.get_as(&bob_token, format!("{}/orders?user_id={alice}", shop.order.url)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The internal endpoints refuse anyone but a signed order service:
    // nothing is held for an invented order.
    let invented = uuid::Uuid::new_v4();
    let outsider = ServiceKey::new("order", "a-secret-the-shop-never-issued").unwrap();
    for (url, body) in [
        (format!("{}/internal/users/{bob}/balance/reservations", shop.user.url), json!({"order_id": invented, "amount": "80.00"})),
        (format!("{}/internal/goods/{goods}/reservations", shop.goods.url), json!({"order_id": invented, "quantity": 7})),
    ] {
        for token in [None, Some(bob_token.as_str()), Some(shop.operator.as_str())] {
            let (status, answer) = shop.post_as(token, url.clone(), body.clone()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{url} with {token:?}: {answer}");
        }
        let bytes = serde_json::to_vec(&body).unwrap();
        let path = reqwest::Url::parse(&url).unwrap().path().to_owned();
        let mut request = shop.http.post(&url).header("content-type", "application/json").body(bytes.clone());
        for (name, value) in outsider.sign_call("POST", &path, &bytes, shop_common::now_ms()) {
            request = request.header(name, value);
        }
        assert_eq!(request.send().await.unwrap().status().as_u16(), 401, "{url} with a forged key");
    }
    assert_eq!(shop.balance(bob).await, "100.00".parse().unwrap());
    assert_eq!(shop.stock(goods).await, 7, "only alice's order holds stock");

    // Only operators change the catalogue, issue coupons and top up.
    for (url, body) in [
        (format!("{}/goods", shop.goods.url), json!({"name": "free", "price": "0.01", "stock": 5})),
        (format!("{}/coupons", shop.coupon.url), json!({"user_id": bob, "amount": "5.00"})),
        (format!("{}/users/{bob}/balance/top-ups", shop.user.url), json!({"amount": "1000.00", "reference": "self"})),
    ] {
        let (status, answer) = shop.post_as(Some(&bob_token), url.clone(), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{url}: {answer}");
    }
    assert_eq!(shop.balance(bob).await, "100.00".parse().unwrap());

    // A logged-out token is refused everywhere (after the services' one
    // second of caching).
    let (status, _) = shop.post_as(Some(&bob_token), format!("{}/auth/logout", shop.user.url), json!({})).await;
    assert!(status.is_success(), "{status}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, _) = shop.get_as(&bob_token, format!("{}/orders", shop.order.url)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    shop.assert_invariants().await;
    shop.stop().await;
});

shop_common::db_test!(async fn forged_events_change_nothing_and_do_not_block_their_queue(db) {
    let Some(mut shop) = shop(db.kind).await else { return };
    let goods = shop.add_goods("20.00", 10).await;
    let user = shop.add_user("100.00").await;
    let coupon = shop.add_coupon(user, "5.00").await;
    let (status, order) = shop
        .place_order(json!({"user_id": user, "goods_id": goods, "quantity": 2, "unit_price": "20.00", "coupon_id": coupon, "balance": "10.00"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["id"].as_str().unwrap().to_owned();

    // A plain ORDER_CANCEL for the CONFIRMED order, unsigned and signed by
    // a key the shop never issued; a PAY_SUCCESS for it with no payment.
    let cancel = json!({"order_id": order_id, "user_id": user, "reason": "forged"}).to_string();
    publish(&shop, Message::new("ORDER_CANCEL", cancel.clone()).with_keys([order_id.clone()])).await;
    let forger = ServiceKey::new("order", "a-secret-the-shop-never-issued").unwrap();
    publish(&shop, shop_common::events::sign(&forger, Message::new("ORDER_CANCEL", cancel).with_keys([order_id.clone()]))).await;
    let paid = json!({"payment_id": uuid::Uuid::new_v4(), "order_id": order_id, "user_id": user, "amount": "1000000.00", "trade_no": "FORGED", "paid_at": 1});
    publish(&shop, Message::new("PAY_SUCCESS", paid.to_string()).with_keys([paid["payment_id"].as_str().unwrap()])).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(shop.order(&order_id).await["status"], "CONFIRMED");
    assert_eq!(shop.stock(goods).await, 8);
    assert_eq!(shop.balance(user).await, "90.00".parse().unwrap());
    assert_eq!(shop.coupon_status(coupon).await, "used");
    assert_eq!(shop.points_of(user).await, 0);

    // The real payment still flows through the same queues.
    shop.pay(&order_id).await;
    eventually("the order is PAID", || async { shop.order(&order_id).await["status"] == "PAID" }).await;
    eventually("the points are credited", || async { shop.points_of(user).await == 35 }).await;
    shop.assert_invariants().await;
    shop.stop().await;
});

shop_common::db_test!(async fn a_payment_for_a_cancelled_order_is_refunded_not_booked(db) {
    let Some(mut shop) = shop(db.kind).await else { return };
    let goods = shop.add_goods("20.00", 10).await;
    let user = shop.add_user("0.00").await;
    let (status, order) = shop
        .place_order(json!({"user_id": user, "goods_id": goods, "quantity": 1, "unit_price": "20.00"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["id"].as_str().unwrap().to_owned();
    let (status, payment) = shop
        .post_as(Some(&shop.token_of(user)), format!("{}/payments", shop.pay.url), json!({"order_id": order_id}))
        .await;
    assert!(status.is_success(), "{payment}");
    // The order is cancelled after its payment was created and before the
    // payer pays (as an operator's cancellation would), and its stock
    // given back as the compensation does.
    sqlx::query("UPDATE orders SET status = 'CANCELLED' WHERE id = $1")
        .bind(&order_id)
        .execute(shop.order.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE goods SET stock = stock + 1 WHERE id = $1")
        .bind(goods)
        .execute(shop.goods.db.pool())
        .await
        .unwrap();
    let (status, _) = shop
        .post_as(None, format!("{}/api/pay", shop.gateway_url), json!({"payment_id": payment["payment_id"]}))
        .await;
    assert!(status.is_success() || status.is_client_error(), "{status}");
    let payment_id = payment["payment_id"].as_str().unwrap().to_owned();
    eventually("the payment is refunded", || async {
        let status: String = sqlx::query_scalar("SELECT status FROM payments WHERE id = $1")
            .bind(&payment_id)
            .fetch_one(shop.pay.db.pool())
            .await
            .unwrap();
        status == "REFUNDED"
    })
    .await;
    eventually("the payment log records the refund", || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payment_log WHERE order_id = $1 AND event = 'refunded'")
            .bind(&order_id)
            .fetch_one(shop.log.db.pool())
            .await
            .unwrap();
        n == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(shop.order(&order_id).await["status"], "CANCELLED");
    assert_eq!(shop.points_of(user).await, 0, "no points for a refunded payment");
    shop.assert_invariants().await;
    shop.stop().await;
});
