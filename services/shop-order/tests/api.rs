//! The order API on port 0 with a fresh database per test, on SQLite and
//! on PostgreSQL (`shop_common::db_test!`): a name server and a broker for
//! the saga's transactional producer, and the real goods, coupon and user
//! services (API only, no consumers) on databases of their own.

use axum::http::StatusCode;
use mq_testkit::Cluster;
use serde_json::{json, Value};
use shop_common::events::{ORDER_CANCEL, PAY_SUCCESS};
use shop_common::service::ServiceConfig;
use shop_common::testing::{Served, TestDatabase};
use shop_common::DbKind;

/// The order service with what it calls, each serving on its own port.
struct TestShop {
    order: Served,
    goods: Served,
    coupon: Served,
    user: Served,
    http: reqwest::Client,
    cluster: Cluster,
    _dbs: Vec<TestDatabase>,
}

fn url(served: &Served) -> String {
    format!("http://127.0.0.1:{}", served.port)
}

impl TestShop {
    /// Everything started on `order_db` and three more databases of its
    /// kind.
    async fn start(order_db: &TestDatabase) -> TestShop {
        let mut dbs = Vec::new();
        for _ in 0..3 {
            dbs.push(create(order_db.kind).await);
        }
        let goods = Served::start(
            shop_goods::SERVICE
                .start(ServiceConfig::for_tests(&dbs[0].url))
                .await
                .unwrap(),
        );
        let coupon = Served::start(
            shop_coupon::SERVICE
                .start(ServiceConfig::for_tests(&dbs[1].url))
                .await
                .unwrap(),
        );
        let user = Served::start(
            shop_user::SERVICE
                .start(ServiceConfig::for_tests(&dbs[2].url))
                .await
                .unwrap(),
        );
        let cluster = Cluster::start().await;
        cluster.create_topic(ORDER_CANCEL, 4).await;
        cluster.create_topic(PAY_SUCCESS, 4).await;

        let mut config = shop_order::SERVICE.config_for_tests(&order_db.url);
        config.namesrv_addr = cluster.namesrv.addr.clone();
        config.own.goods_url = url(&goods);
        config.own.coupon_url = url(&coupon);
        config.own.user_url = url(&user);
        let order = Served::start(shop_order::SERVICE.start(config).await.unwrap());
        TestShop {
            order,
            goods,
            coupon,
            user,
            http: reqwest::Client::new(),
            cluster,
            _dbs: dbs,
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: String,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn post(&self, served: &Served, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            reqwest::Method::POST,
            format!("{}{path}", url(served)),
            Some(body),
        )
        .await
    }

    async fn get(&self, served: &Served, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, format!("{}{path}", url(served)), None)
            .await
    }

    /// Creates something through `served`'s API; returns its id.
    async fn create(&self, served: &Served, path: &str, body: Value) -> i64 {
        let (status, answer) = self.post(served, path, body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {answer}");
        answer["id"].as_i64().unwrap()
    }

    async fn place(&self, body: Value) -> (StatusCode, Value) {
        self.post(&self.order, "/orders", body).await
    }

    async fn stop(mut self) {
        self.order.stop().await;
        self.goods.stop().await;
        self.coupon.stop().await;
        self.user.stop().await;
        self.cluster.stop().await;
    }
}

/// Another database of `kind` (present whenever the test runs at all).
async fn create(kind: DbKind) -> TestDatabase {
    TestDatabase::create(kind)
        .await
        .expect("the test's database kind is available")
}

shop_common::db_test!(async fn an_order_is_placed_confirmed_and_read_back(db) {
    let shop = TestShop::start(&db).await;
    let goods = shop.create(&shop.goods, "/goods", json!({ "name": "Tea", "price": "20.00", "stock": 10 })).await;
    let user = shop.create(&shop.user, "/users", json!({ "name": "Ann", "balance": "50.00" })).await;
    let coupon = shop.create(&shop.coupon, "/coupons", json!({ "user_id": user, "amount": "3.00" })).await;

    let (status, order) = shop
        .place(json!({
            "user_id": user, "goods_id": goods, "quantity": 2, "unit_price": "20.00",
            "coupon_id": coupon, "balance": "5.00"
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "CONFIRMED");
    // 2 x 20.00 + 10.00 shipping - 3.00 coupon - 5.00 balance.
    assert_eq!(order["goods_amount"], "40.00");
    assert_eq!(order["shipping_fee"], "10.00");
    assert_eq!(order["coupon_discount"], "3.00");
    assert_eq!(order["balance_used"], "5.00");
    assert_eq!(order["amount_to_pay"], "42.00");

    let id = order["id"].as_str().unwrap();
    // As stored: the same order, its `updated_at` the moment it was
    // confirmed (the answer to POST carries the time it was saved).
    let (status, mut read) = shop.get(&shop.order, &format!("/orders/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(read["updated_at"].as_i64() >= order["updated_at"].as_i64(), "{read}");
    read["updated_at"] = order["updated_at"].clone();
    assert_eq!(read, order);
    let (status, mut list) = shop.get(&shop.order, &format!("/orders?user_id={user}")).await;
    assert_eq!(status, StatusCode::OK);
    list[0]["updated_at"] = order["updated_at"].clone();
    assert_eq!(list, json!([order]));

    // What the order took, at its owners.
    let (_, goods_now) = shop.get(&shop.goods, &format!("/goods/{goods}")).await;
    assert_eq!(goods_now["stock"], 8);
    let (_, user_now) = shop.get(&shop.user, &format!("/users/{user}")).await;
    assert_eq!(user_now["balance"], "45.00");
    let (_, coupon_now) = shop.get(&shop.coupon, &format!("/coupons/{coupon}")).await;
    assert_eq!(coupon_now["status"], "used");
    assert_eq!(coupon_now["order_id"], order["id"]);
    shop.stop().await;
});

shop_common::db_test!(async fn refusals_before_saving_name_their_reason_and_save_nothing(db) {
    let shop = TestShop::start(&db).await;
    let goods = shop.create(&shop.goods, "/goods", json!({ "name": "Tea", "price": "20.00", "stock": 3 })).await;
    let user = shop.create(&shop.user, "/users", json!({ "name": "Ann", "balance": "10.00" })).await;
    let other = shop.create(&shop.user, "/users", json!({ "name": "Bob", "balance": "0" })).await;
    let coupon = shop.create(&shop.coupon, "/coupons", json!({ "user_id": other, "amount": "1.00" })).await;

    let order = |quantity: i64, price: &str, extra: Value| {
        let mut body = json!({ "user_id": user, "goods_id": goods, "quantity": quantity, "unit_price": price });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    for (body, expected_status, expected_code) in [
        (order(0, "20.00", json!({})), StatusCode::BAD_REQUEST, "invalid_quantity"),
        (order(1, "19.99", json!({})), StatusCode::BAD_REQUEST, "price_mismatch"),
        (order(4, "20.00", json!({})), StatusCode::CONFLICT, "insufficient_stock"),
        (order(1, "20.00", json!({ "balance": "10.01" })), StatusCode::CONFLICT, "insufficient_balance"),
        (order(1, "20.00", json!({ "coupon_id": coupon })), StatusCode::FORBIDDEN, "coupon_not_owned"),
        (order(1, "20.00", json!({ "coupon_id": 999 })), StatusCode::NOT_FOUND, "coupon_not_found"),
        (json!({ "user_id": user, "goods_id": 999, "quantity": 1, "unit_price": "1" }), StatusCode::NOT_FOUND, "goods_not_found"),
        (json!({ "user_id": 999, "goods_id": goods, "quantity": 1, "unit_price": "20.00" }), StatusCode::NOT_FOUND, "user_not_found"),
        (json!({ "user_id": user, "goods_id": goods, "quantity": 1 }), StatusCode::BAD_REQUEST, "invalid_body"),
    ] {
        let (status, answer) = shop.place(body.clone()).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (expected_status, Some(expected_code)), "{body} → {answer}");
    }
    let (status, list) = shop.get(&shop.order, &format!("/orders?user_id={user}")).await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));
    let (_, goods_now) = shop.get(&shop.goods, &format!("/goods/{goods}")).await;
    assert_eq!(goods_now["stock"], 3, "nothing was reserved");
    shop.stop().await;
});

shop_common::db_test!(async fn reads_and_unknown_endpoints_answer_in_the_error_shape(db) {
    let shop = TestShop::start(&db).await;
    let (status, health) = shop.get(&shop.order, "/health").await;
    assert_eq!((status, health), (StatusCode::OK, json!({ "status": "ok" })));
    let missing = uuid::Uuid::new_v4();
    let (status, answer) = shop.get(&shop.order, &format!("/orders/{missing}")).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("order_not_found")));
    let (status, answer) = shop.get(&shop.order, "/orders?user_id=1&limit=0").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_limit")));
    let (status, answer) = shop.get(&shop.order, "/nowhere").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, answer) = shop.send(reqwest::Method::DELETE, format!("{}/orders", url(&shop.order)), None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
    shop.stop().await;
});
