//! One saga, one trace (issue 18 part 4): the `traceparent` of
//! `POST /orders` reaches the goods, coupon and user services' requests and,
//! in a message property, every ORDER_CANCEL consumer; a payment's trace
//! reaches the PAY_SUCCESS consumers. Checked on the log lines themselves,
//! captured from the process' subscriber.

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::json;
use shop_e2e::*;

/// Every line the services of this test process log.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter(
                "warn,shop_common=debug,shop_order=debug,shop_goods=debug,shop_coupon=debug,\
                 shop_user=debug,shop_pay=debug,shop_log=debug,shop_points=debug",
            )
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        captured
    })
}

/// The captured lines that carry `trace_id`.
fn lines_of(trace_id: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned();
    text.lines()
        .filter(|line| line.contains(&format!("trace_id={trace_id}")))
        .map(str::to_owned)
        .collect()
}

/// Waits until some line of `trace_id` contains all of `parts`.
async fn wait_for_line(trace_id: &str, parts: &[&str]) {
    let what = format!("a line of trace {trace_id} with {parts:?}");
    eventually(&what, || async {
        lines_of(trace_id)
            .iter()
            .any(|line| parts.iter().all(|part| line.contains(part)))
    })
    .await;
}

shop_common::db_test!(async fn one_orders_trace_id_is_on_every_services_lines_and_its_cancel_consumers(db) {
    logs();
    // The balance reservation fails (the user service is checked, then
    // its reservation answers 500), so the order is cancelled and
    // compensated.
    let options = Options {
        user_fault: Some(Fault::Fail),
        ..Options::default()
    };
    let Some(mut shop) = Shop::start(db.kind, options).await else { return };
    let goods = shop.add_goods("20.00", 10).await;
    let user = shop.add_user("100.00").await;
    let coupon = shop.add_coupon(user, "5.00").await;
    // The caller's trace, unlike any other test's.
    let trace_id = shop_common::trace::TraceParent::new_root().trace_id_hex();
    let trace_id = trace_id.as_str();
    let answer: serde_json::Value = shop
        .http
        .post(format!("{}/orders", shop.order.url))
        .bearer_auth(shop.token_of(user))
        .header("traceparent", format!("00-{trace_id}-7d1e2f3a4b5c6d7e-01"))
        .json(&json!({"user_id": user, "goods_id": goods, "quantity": 1, "unit_price": "20.00", "coupon_id": coupon, "balance": "30.00"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order_id = answer["error"]["message"]
        .as_str()
        .and_then(|m| m.split_whitespace().nth(1))
        .and_then(|id| id.parse::<uuid::Uuid>().ok())
        .unwrap_or_else(|| panic!("a cancelled order's id in {answer}"))
        .to_string();
    let order = format!("order_id={order_id}");

    // The HTTP requests of the saga, in each service.
    wait_for_line(trace_id, &["service=order", "route=/orders", &order, "order cancelled"]).await;
    wait_for_line(trace_id, &["service=goods", "route=/internal/goods/{id}/reservations", &order]).await;
    wait_for_line(trace_id, &["service=coupon", "route=/internal/coupons/{id}/use", &order]).await;
    // The user service saw the saga's check before the proxy failed its
    // reservation.
    wait_for_line(trace_id, &["service=user", "route=/internal/users/{id}", "request answered"]).await;
    // The ORDER_CANCEL consumers, continuing the trace from the message.
    for (service, group) in [
        ("order", shop_order::events::CANCEL_GROUP),
        ("goods", shop_goods::events::CANCEL_GROUP),
        ("coupon", shop_coupon::events::CANCEL_GROUP),
        ("user", shop_user::events::CANCEL_GROUP),
        ("log", shop_log::events::CANCEL_GROUP),
    ] {
        wait_for_line(
            trace_id,
            &[&format!("service={service}"), &format!("group={group}"), "topic=ORDER_CANCEL", &order, "event consumed"],
        )
        .await;
    }
    // Once the order exists, every line of its trace names it: the
    // reservations' and the consumers' (only the checks before it was saved,
    // its token's and its goods', user's and coupon's, cannot).
    let after_saving = ["event{", "/reservations", "/use ", "order cancelled", "order pending"];
    let lines = lines_of(trace_id);
    assert!(lines.len() >= 10, "{lines:#?}");
    for line in lines {
        if after_saving.iter().any(|part| line.contains(part)) {
            assert!(line.contains(&order), "a line of the saga without its order id: {line}");
        }
    }
    shop.stop().await;
});

shop_common::db_test!(async fn a_payments_trace_reaches_the_pay_success_consumers(db) {
    logs();
    let Some(mut shop) = Shop::start(db.kind, Options::default()).await else { return };
    let goods = shop.add_goods("20.00", 10).await;
    let user = shop.add_user("0.00").await;
    let (status, order) = shop
        .place_order(json!({"user_id": user, "goods_id": goods, "quantity": 1, "unit_price": "20.00"}))
        .await;
    assert!(status.is_success(), "{order}");
    let order_id = order["id"].as_str().unwrap().to_owned();
    shop.pay(&order_id).await;
    // The gateway's callback starts the payment's trace at the pay service.
    let callback_trace = || {
        String::from_utf8_lossy(&logs().0.lock().unwrap())
            .lines()
            .find(|l| {
                l.contains("service=pay")
                    && l.contains("route=/payments/callback")
                    && l.contains(&format!("order_id={order_id}"))
            })
            .and_then(|l| l.split("trace_id=").nth(1))
            .map(|rest| rest.chars().take(32).collect::<String>())
    };
    eventually("the pay service's callback line", || async {
        callback_trace().is_some()
    })
    .await;
    let trace_id = callback_trace().unwrap();
    let order = format!("order_id={order_id}");
    for (service, group) in [
        ("order", shop_order::events::PAY_GROUP),
        ("log", shop_log::events::PAY_GROUP),
        ("points", shop_points::events::PAY_GROUP),
    ] {
        wait_for_line(
            &trace_id,
            &[&format!("service={service}"), &format!("group={group}"), "topic=PAY_SUCCESS", &order, "event consumed"],
        )
        .await;
    }
    shop.stop().await;
});
