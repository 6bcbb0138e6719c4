//! The `shop` binary: starts everything, serves an order with the demo
//! logins it generated, stops cleanly on SIGINT (no broker `abort` file),
//! and a second run reuses the data and the secrets.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{log_in, password, sigint, start};
use serde_json::{json, Value};

async fn get(http: &reqwest::Client, token: &str, url: String) -> (u16, Value) {
    let response = http.get(url).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(
    http: &reqwest::Client,
    token: Option<&str>,
    url: String,
    body: Value,
) -> (u16, Value) {
    let mut request = http.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn one_command_runs_the_shop_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut shop = start(&data);
    let secrets = data.join("secrets.properties");
    let mode = std::fs::metadata(&secrets).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the secrets file is private");
    assert_eq!(
        shop.urls["operator"], "ops",
        "the banner names the operator login"
    );

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // The console runs beside the services and asks who is there.
    let console = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/topics", shop.urls["console"]))
        .send()
        .await
        .unwrap();
    assert_eq!(console.status().as_u16(), 303, "the console needs a log-in");
    let goods: Value = http
        .get(format!("{}/goods", shop.urls["goods"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(goods.as_array().unwrap().len(), 3, "demo goods seeded");
    let mug = &goods[0];
    let order_body =
        json!({"goods_id": mug["id"], "quantity": 2, "unit_price": mug["price"], "coupon_id": 1});

    // Without a token nothing is ordered; a wrong password gets no token.
    let (status, _) = post(
        &http,
        None,
        format!("{}/orders", shop.urls["order"]),
        order_body.clone(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = post(
        &http,
        None,
        format!("{}/auth/login", shop.urls["user"]),
        json!({"login": "alice", "password": "dev-gateway-secret-change-me"}),
    )
    .await;
    assert_eq!(status, 401);

    let alice = log_in(&http, &shop, &data, "alice").await;
    let (status, me) = get(&http, &alice, format!("{}/users/me", shop.urls["user"])).await;
    assert_eq!(
        (status, me["balance"].as_str()),
        (200, Some("200.00")),
        "{me}"
    );
    let (status, order) = post(
        &http,
        Some(&alice),
        format!("{}/orders", shop.urls["order"]),
        order_body,
    )
    .await;
    assert_eq!(
        (status, order["status"].as_str()),
        (201, Some("CONFIRMED")),
        "{order}"
    );
    let order_id = order["id"].as_str().unwrap().to_owned();

    // Pay it through the fake gateway; the callback fans out to the order,
    // log and points services.
    let (status, payment) = post(
        &http,
        Some(&alice),
        format!("{}/payments", shop.urls["pay"]),
        json!({"order_id": order_id}),
    )
    .await;
    assert!(status < 300, "{payment}");
    assert_eq!(payment["amount"], order["amount_to_pay"], "{payment}");
    let (status, paid) = post(
        &http,
        None,
        format!("{}/api/pay", shop.urls["gateway"]),
        json!({"payment_id": payment["payment_id"]}),
    )
    .await;
    assert_eq!(
        (status, paid["accepted"].as_bool()),
        (200, Some(true)),
        "{paid}"
    );
    let mut status = String::new();
    for _ in 0..200 {
        let (_, now) = get(
            &http,
            &alice,
            format!("{}/orders/{order_id}", shop.urls["order"]),
        )
        .await;
        status = now["status"].as_str().unwrap_or_default().to_owned();
        if status == "PAID" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "PAID");
    // 2 x 12.50 + 10.00 shipping - 5.00 coupon = 30.00 paid: 30 points.
    let mut points = Value::Null;
    for _ in 0..200 {
        (_, points) = get(&http, &alice, format!("{}/points/1", shop.urls["points"])).await;
        if points["points"] == 30 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(points["points"], 30, "{points}");
    // One metrics port for every service of the process.
    let metrics = http
        .get(&shop.urls["metrics"])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        r#"shop_saga_orders_total{outcome="confirmed",reason=""} 1"#,
        r#"shop_http_requests_total{service="order",method="POST",route="/orders",status="201"} 1"#,
        r#"shop_http_requests_total{service="pay",method="POST",route="/payments/callback",status="200"}"#,
        r#"shop_events_consumed_total{service="points",group="points-service-pay-success",topic="PAY_SUCCESS",result="applied"} 1"#,
        // The broker's and the name server's, on the same port.
        r#"rocketmq_messages_in_total{cluster="DefaultCluster",node_id="broker-a-0",topic="PAY_SUCCESS"}"#,
        r#"rocketmq_rpc_latency_count{cluster="DefaultCluster",node_id="broker-a-0",protocol_type="remoting",request_code="310",response_code="0"}"#,
        r#"rocketmq_namesrv_brokers{cluster="DefaultCluster",role="master"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} missing in\n{metrics}");
    }
    // Bob sees none of it.
    let bob = log_in(&http, &shop, &data, "bob").await;
    let (status, _) = get(
        &http,
        &bob,
        format!("{}/orders/{order_id}", shop.urls["order"]),
    )
    .await;
    assert_eq!(status, 404);

    let status = sigint(&mut shop);
    assert!(status.success(), "{status:?}");
    assert!(data.join("broker/checkpoint").exists());
    assert!(
        !data.join("broker/abort").exists(),
        "a clean stop leaves no abort file"
    );
    // Each part logs to its own file under <data>/logs, everything to shop.log.
    let logs = data.join("logs");
    let read = |name: &str| std::fs::read_to_string(logs.join(name)).unwrap_or_default();
    assert!(read("broker.log").contains("broker stopped cleanly"));
    assert!(!read("broker.log").contains("shop_order"));
    assert!(read("shop.log").contains("broker stopped cleanly"));
    for name in ["namesrv.log", "order.log", "pay.log", "console.log"] {
        assert!(logs.join(name).exists(), "{name} missing");
    }

    // A second run reuses the data and the secrets: no second seeding, the
    // order is still there, the same password logs in.
    let first_password = password(&data, "alice");
    let mut again = start(&data);
    assert_eq!(password(&data, "alice"), first_password);
    let goods: Value = http
        .get(format!("{}/goods", again.urls["goods"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(goods.as_array().unwrap().len(), 3);
    let alice = log_in(&http, &again, &data, "alice").await;
    let (_, kept) = get(
        &http,
        &alice,
        format!("{}/orders/{order_id}", again.urls["order"]),
    )
    .await;
    assert_eq!(kept["status"], "PAID");
    assert!(sigint(&mut again).success());
}
