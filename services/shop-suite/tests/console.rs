//! The console's shop pages against the real services of the all-in-one
//! `shop` (the console's own tests use a stub of their operator API): after
//! a mixed run (one order confirmed and paid, one cancelled because its
//! stock reservation lost a race for the last unit) the orders list shows
//! both, each order page shows every step of its saga with the broker's
//! consume state, and the invariants are green.

mod common;
#[allow(dead_code)] // This test uses part of the client.
#[path = "../../../mq/mq-console/tests/common/browser.rs"]
mod console_client;

use std::time::Duration;

use common::{log_in, password, start};
use console_client::Browser;
use serde_json::{json, Value};

/// POSTs `body` as JSON to `url` (with `token` as the bearer, if any) and
/// returns the JSON answer, whatever its status.
async fn post(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut request = http.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

async fn place(http: &reqwest::Client, url: &str, token: &str, body: Value) -> Value {
    post(http, format!("{url}/orders"), Some(token), body).await
}

#[tokio::test]
async fn the_console_shows_the_real_services_sagas_and_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let shop = start(&data);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let goods: Value = http
        .get(format!("{}/goods", shop.urls["goods"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mug = &goods[0];

    // Alice's order is confirmed and paid through the gateway.
    let alice = log_in(&http, &shop, &data, "alice").await;
    let paid = place(
        &http,
        &shop.urls["order"],
        &alice,
        json!({"goods_id": mug["id"], "quantity": 2, "unit_price": mug["price"], "coupon_id": 1, "balance": "5.00"}),
    )
    .await;
    assert_eq!(paid["status"], "CONFIRMED", "{paid}");
    let paid_id = paid["id"].as_str().unwrap().to_owned();
    // One point per whole unit paid.
    let to_pay: f64 = paid["amount_to_pay"].as_str().unwrap().parse().unwrap();
    let points = format!("{} points", to_pay.floor() as i64);
    let payment = post(
        &http,
        format!("{}/payments", shop.urls["pay"]),
        Some(&alice),
        json!({"order_id": paid_id}),
    )
    .await;
    let payment_id = payment["payment_id"]
        .as_str()
        .expect("a payment")
        .to_owned();
    let accepted = post(
        &http,
        format!("{}/api/pay", shop.urls["gateway"]),
        None,
        json!({"payment_id": payment_id}),
    )
    .await;
    assert_eq!(accepted["accepted"], true, "{accepted}");

    // A cancelled order: the order service refuses what it can see is
    // short before saving anything, so a cancellation needs a reservation
    // that fails after the order is saved. Two of Bob's orders race for
    // the last unit of a goods: both pass the check, one reservation
    // fails, and that order is cancelled. A round where the orders do not
    // overlap (the second is refused 409 before anything is saved) is
    // tried again with a new goods. No coupon: one used by a round's
    // winner would refuse every later round's order before it is saved.
    let ops = log_in(&http, &shop, &data, "ops").await;
    let bob = log_in(&http, &shop, &data, "bob").await;
    let mut cancelled_id = None;
    for round in 0..20 {
        let last_one = post(
            &http,
            format!("{}/goods", shop.urls["goods"]),
            Some(&ops),
            json!({"name": format!("Last one {round}"), "price": "12.00", "stock": 1}),
        )
        .await;
        let order = || {
            let body = json!({"goods_id": last_one["id"], "quantity": 1, "unit_price": "12.00"});
            place(&http, &shop.urls["order"], &bob, body)
        };
        let (first, second) = tokio::join!(order(), order());
        cancelled_id = [first, second].iter().find_map(|answer| {
            let message = answer["error"]["message"].as_str()?;
            message
                .split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
                .find(|word| word.len() == 36)
                .map(str::to_owned)
        });
        if cancelled_id.is_some() {
            break;
        }
    }
    let cancelled_id = cancelled_id.expect("two racing orders for one unit cancel one of them");
    let order: Value = http
        .get(format!("{}/orders/{cancelled_id}", shop.urls["order"]))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(order["status"], "CANCELLED", "{order}");

    let mut console = Browser::new(&shop.urls["console"]);
    console.login("ops", &password(&data, "ops")).await;
    let list = console.get("/orders").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        list.body.contains(&paid_id) && list.body.contains(&cancelled_id),
        "{}",
        list.body
    );
    let only_cancelled = console.get("/orders?status=CANCELLED").await;
    only_cancelled.expect(&cancelled_id).expect_not(&paid_id);

    console
        .get_until_shows(
            &format!("/order?id={paid_id}"),
            &[
                "Order saved PENDING",
                "ORDER_CANCEL half message stored",
                "Stock reserved (goods)",
                "Coupon used (coupon)",
                "Balance reserved (user)",
                "Half message rolled back",
                "Payment created",
                &payment_id,
                "Gateway callback",
                "PAY_SUCCESS published</strong><div>Message id",
                "PAY_SUCCESS applied by order, log and points",
                &points,
            ],
            &[
                "not consumed yet",
                "no ledger row",
                "not found on the broker",
            ],
        )
        .await;
    console
        .get_until_shows(
            &format!("/order?id={cancelled_id}"),
            &[
                "Order saved PENDING",
                "ORDER_CANCEL half message stored",
                "Half message committed: ORDER_CANCEL delivered</strong><div>Message id",
                "ORDER_CANCEL applied by each group",
                "goods refused",
                "insufficient_stock",
                "nothing reserved",
            ],
            &[
                "not consumed yet",
                "no ledger row",
                "not found on the broker",
            ],
        )
        .await;
    let invariants = console
        .get_until_shows("/invariants", &["Every invariant holds"], &[])
        .await;
    invariants.expect_not("broken");
}
