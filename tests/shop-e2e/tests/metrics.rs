//! The services' metrics under traffic (issue 18 part 3): scrape, act,
//! scrape again. Every service records into one set of families, as in the
//! all-in-one run.

use axum::http::StatusCode;
use mq_client::{ClientConfig, Message, Producer, ProducerConfig};
use serde_json::json;
use shop_e2e::*;

fn scrape(shop: &Shop) -> String {
    telemetry::metrics::render(&shop.metrics.registry()).expect("the metrics encode")
}

/// The value of `series` (name and labels as exposed), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn delta(before: &str, after: &str, series: &str) -> f64 {
    sample(after, series) - sample(before, series)
}

fn events(service: &str, group: &str, topic: &str, result: &str) -> String {
    format!(
        r#"shop_events_consumed_total{{service="{service}",group="{group}",topic="{topic}",result="{result}"}}"#
    )
}

/// Publishes `message` as an outsider (the test cluster runs without ACL).
async fn publish(shop: &Shop, message: Message) {
    let producer = Producer::start(
        ProducerConfig::new("metrics-test"),
        ClientConfig::new(shop.cluster.namesrv.addr.clone())
            .with_instance_name(shop_common::events::instance_name("metrics-test")),
    )
    .await
    .expect("the producer starts");
    producer.send(message).await.expect("the broker stores it");
    producer.shutdown().await;
}

const CANCEL_GROUPS: [(&str, &str); 5] = [
    ("order", shop_order::events::CANCEL_GROUP),
    ("goods", shop_goods::events::CANCEL_GROUP),
    ("coupon", shop_coupon::events::CANCEL_GROUP),
    ("user", shop_user::events::CANCEL_GROUP),
    ("log", shop_log::events::CANCEL_GROUP),
];

shop_common::db_test!(async fn every_service_metric_changes_under_traffic(db) {
    let options = Options { user_fault: Some(Fault::Fail), ..Options::default() };
    let Some(mut shop) = Shop::start(db.kind, options).await else { return };
    let goods = shop.add_goods("20.00", 10).await;
    let user = shop.add_user("100.00").await;
    let before = scrape(&shop);

    // A confirmed order (no balance: the failing user service is not asked
    // to reserve), paid; a cancelled one (its balance reservation fails).
    let (status, confirmed) = shop
        .place_order(json!({"user_id": user, "goods_id": goods, "quantity": 1, "unit_price": "20.00"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{confirmed}");
    let confirmed_id = confirmed["id"].as_str().unwrap().to_owned();
    shop.pay(&confirmed_id).await;
    let (status, cancelled) = shop
        .place_order(json!({"user_id": user, "goods_id": goods, "quantity": 1, "unit_price": "20.00", "balance": "5.00"}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{cancelled}");
    let cancelled_id = cancelled["error"]["message"].as_str().unwrap().split_whitespace().nth(1).unwrap().to_owned();
    eventually("the ORDER_CANCEL consumers applied the cancellation", || async {
        let now = scrape(&shop);
        CANCEL_GROUPS.iter().all(|(service, group)| delta(&before, &now, &events(service, group, "ORDER_CANCEL", "applied")) >= 1.0)
    })
    .await;
    eventually("the PAY_SUCCESS consumers applied the payment", || async {
        let now = scrape(&shop);
        [("order", shop_order::events::PAY_GROUP), ("log", shop_log::events::PAY_GROUP), ("points", shop_points::events::PAY_GROUP)]
            .iter()
            .all(|(service, group)| delta(&before, &now, &events(service, group, "PAY_SUCCESS", "applied")) == 1.0)
    })
    .await;

    // The same cancellation again, signed by the order service: a duplicate
    // everywhere; one signed by nobody: rejected everywhere.
    let body = json!({"order_id": cancelled_id, "user_id": user, "reason": "again"}).to_string().into_bytes();
    let again = Message::new("ORDER_CANCEL", body.clone()).with_keys([cancelled_id.clone()]);
    publish(&shop, shop_common::events::sign(&shop_common::auth::ServiceKey::for_tests("order"), again)).await;
    publish(&shop, Message::new("ORDER_CANCEL", body).with_keys([cancelled_id.clone()])).await;
    eventually("every ORDER_CANCEL consumer counted a duplicate and a rejection", || async {
        let now = scrape(&shop);
        CANCEL_GROUPS.iter().all(|(service, group)| {
            delta(&before, &now, &events(service, group, "ORDER_CANCEL", "duplicate")) == 1.0
                && delta(&before, &now, &events(service, group, "ORDER_CANCEL", "rejected")) == 1.0
        })
    })
    .await;

    let after = scrape(&shop);
    for (series, expected) in [
        (r#"shop_saga_orders_total{outcome="confirmed",reason=""}"#, 1.0),
        (r#"shop_saga_orders_total{outcome="cancelled",reason="service_unavailable"}"#, 1.0),
        (r#"shop_http_requests_total{service="order",method="POST",route="/orders",status="201"}"#, 1.0),
        (r#"shop_http_requests_total{service="order",method="POST",route="/orders",status="503"}"#, 1.0),
        (r#"shop_http_request_duration_seconds_count{service="order",method="POST",route="/orders",status="201"}"#, 1.0),
        (r#"shop_http_requests_total{service="goods",method="POST",route="/internal/goods/{id}/reservations",status="200"}"#, 2.0),
        (r#"shop_http_requests_total{service="pay",method="POST",route="/payments/callback",status="200"}"#, 1.0),
    ] {
        assert_eq!(delta(&before, &after, series), expected, "{series} in\n{after}");
    }
    // The dashboard in deploy/ queries only series the services expose.
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/shop-and-broker.json"
    ))
    .expect("the dashboard");
    let queried: std::collections::BTreeSet<&str> = dashboard
        .match_indices("shop_")
        .map(|(at, _)| {
            let rest = &dashboard[at..];
            &rest[..rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len())]
        })
        .filter(|name| name.len() > "shop_".len())
        .collect();
    assert!(queried.len() >= 4, "{queried:?}");
    for name in queried {
        assert!(after.contains(&format!("\n{name}{{")), "the dashboard queries {name}, not exposed:\n{after}");
    }
    shop.stop().await;
});
