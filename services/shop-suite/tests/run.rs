//! The `shop` binary: starts everything, serves an order, stops cleanly on
//! SIGINT (no broker `abort` file), and a second run reuses the data.

mod common;

use std::time::Duration;

use common::{sigint, start};

#[tokio::test]
async fn one_command_runs_the_shop_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut shop = start(&data);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let goods: serde_json::Value = http
        .get(format!("{}/goods", shop.urls["goods"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(goods.as_array().unwrap().len(), 3, "demo goods seeded");
    let mug = &goods[0];
    let order: serde_json::Value = http
        .post(format!("{}/orders", shop.urls["order"]))
        .json(&serde_json::json!({"user_id": 1, "goods_id": mug["id"], "quantity": 2, "unit_price": mug["price"], "coupon_id": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(order["status"], "CONFIRMED", "{order}");

    // Pay it through the fake gateway; the callback fans out to the order,
    // log and points services.
    let payment: serde_json::Value = http
        .post(format!("{}/payments", shop.urls["pay"]))
        .json(&serde_json::json!({"order_id": order["id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(payment["amount"], order["amount_to_pay"], "{payment}");
    let paid: serde_json::Value = http
        .post(format!("{}/api/pay", shop.urls["gateway"]))
        .json(&serde_json::json!({
            "payment_id": payment["payment_id"],
            "order_id": order["id"],
            "amount": payment["amount"],
            "notify_url": format!("{}/payments/callback", shop.urls["pay"]),
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(paid["accepted"], true, "{paid}");
    let order_url = format!(
        "{}/orders/{}",
        shop.urls["order"],
        order["id"].as_str().unwrap()
    );
    let mut status = String::new();
    for _ in 0..200 {
        let now: serde_json::Value = http
            .get(&order_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status = now["status"].as_str().unwrap_or_default().to_owned();
        if status == "PAID" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "PAID");
    // 2 x 12.50 + 10.00 shipping - 5.00 coupon = 30.00 paid: 30 points.
    let mut points = serde_json::Value::Null;
    for _ in 0..200 {
        points = http
            .get(format!("{}/points/1", shop.urls["points"]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if points["points"] == 30 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(points["points"], 30, "{points}");

    let status = sigint(&mut shop);
    assert!(status.success(), "{status:?}");
    assert!(data.join("broker/checkpoint").exists());
    assert!(
        !data.join("broker/abort").exists(),
        "a clean stop leaves no abort file"
    );

    // A second run reuses the data: no second seeding, the order is still there.
    let mut again = start(&data);
    let goods: serde_json::Value = http
        .get(format!("{}/goods", again.urls["goods"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(goods.as_array().unwrap().len(), 3);
    let kept: serde_json::Value = http
        .get(format!(
            "{}/orders/{}",
            again.urls["order"],
            order["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kept["status"], "PAID");
    assert!(sigint(&mut again).success());
}
