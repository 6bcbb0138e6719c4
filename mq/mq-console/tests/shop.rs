//! The shop pages over HTTP: the orders list, the saga timelines of a
//! cancelled and a paid order, the invariants (green, then red with the
//! offending order) and the audit log, against a real name server and
//! broker (mq-testkit) and a stub of the services' operator API on port 0
//! that answers what the services answer (the services' own tests pin
//! those answers; the all-in-one run in `shop-suite` wires the real ones).

mod common;

use std::sync::{Arc, Mutex};

use common::shop_stub::{
    data, publish_saga, serve_stub, shop_config, Stub, CANCELLED, PAID, PAYMENT,
};
use common::{Browser, Console, ADMIN};
use mq_testkit::Cluster;
use serde_json::json;

struct Shop {
    cluster: Cluster,
    console: Console,
    browser: Browser,
    stub: Stub,
    data: tempfile::TempDir,
}

async fn start() -> Shop {
    let cluster = Cluster::start().await;
    cluster.create_topic("ORDER_CANCEL", 2).await;
    cluster.create_topic("PAY_SUCCESS", 2).await;
    let stub = Stub(Arc::new(Mutex::new(data())));
    let url = serve_stub(stub.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let config = common::config(&cluster.namesrv.addr)
        .with_shop(shop_config(&url))
        .with_data_dir(data.path());
    let console = Console::start(config).await;
    let mut browser = console.browser();
    browser.login(ADMIN.0, ADMIN.1).await;
    Shop {
        cluster,
        console,
        browser,
        stub,
        data,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_listed_and_filtered() {
    let mut shop = start().await;
    let page = shop.browser.get("/orders").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.expect(PAID)
        .expect(CANCELLED)
        .expect("goods refused: not enough stock");
    page.expect("href=\"/orders\"")
        .expect("href=\"/invariants\"");
    let page = shop.browser.get("/orders?status=PAID").await;
    page.expect(PAID).expect_not(CANCELLED);
    // The form's checks answer inside the page, with the reason.
    let bad = shop.browser.get("/orders?status=LOST").await;
    assert_eq!(bad.status, 400);
    bad.expect("status must be one of");
    let bad = shop.browser.get("/orders?from=yesterday").await;
    assert_eq!(bad.status, 400);
    bad.expect("from and to must be");
    shop.console.stop().await;
    shop.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_and_a_paid_order_show_every_step_of_their_saga() {
    let mut shop = start().await;
    publish_saga(&shop.cluster).await;
    let cancelled = shop
        .browser
        .get_until(
            &format!("/order?id={CANCELLED}"),
            "Half message committed: ORDER_CANCEL delivered</strong><div>Message id",
        )
        .await;
    for step in [
        "Order saved PENDING",
        "ORDER_CANCEL half message stored",
        "Stock reserved (goods)",
        "Coupon used (coupon)",
        "Balance reserved (user)",
        "goods refused: not enough stock",
        "ORDER_CANCEL applied by each group",
    ] {
        cancelled.expect(step);
    }
    // Both half messages are on the broker (stored, then committed or
    // rolled back), so no step warns that its message is missing.
    cancelled.expect_not("not found on the broker");
    let paid = shop
        .browser
        .get_until(
            &format!("/order?id={PAID}"),
            "PAY_SUCCESS published</strong><div>Message id",
        )
        .await;
    for step in [
        "Order saved PENDING",
        "Half message rolled back",
        "nothing to compensate",
        "Payment created",
        PAYMENT,
        "Gateway callback",
        "GW-77",
        "PAY_SUCCESS applied by order, log and points",
        "15 points",
    ] {
        paid.expect(step);
    }
    paid.expect_not("not found on the broker");
    paid.expect("2023-11-14 22:13:20.100");
    let missing = shop
        .browser
        .get("/order?id=44444444-4444-4444-8444-444444444444")
        .await;
    assert_eq!(missing.status, 502);
    missing.expect("no order");
    let bad = shop.browser.get("/order?id=../etc").await;
    assert_eq!(bad.status, 400);
    shop.console.stop().await;
    shop.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invariants_are_green_then_red_with_the_offending_order() {
    let mut shop = start().await;
    let page = shop.browser.get("/invariants").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.expect("Every invariant holds").expect_not("broken");
    page.expect("http-equiv=\"refresh\"");
    // The paid order's points go missing, the cancelled order keeps its coupon.
    {
        let mut data = shop.stub.0.lock().unwrap();
        data["credits"] = json!([]);
        data["coupons"][0]["status"] = json!("used");
        data["coupons"][0]["order_id"] = json!(CANCELLED);
    }
    let page = shop.browser.get("/invariants").await;
    page.expect("Some invariants are broken");
    page.expect("no points, should be 15");
    page.expect("CANCELLED but still holds coupon 8");
    page.expect(&format!("/order?id={PAID}"));
    shop.console.stop().await;
    shop.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_actions_are_in_the_audit_log_and_survive_a_restart() {
    let mut shop = start().await;
    shop.browser.get("/topics").await;
    let page = shop
        .browser
        .post(
            "/topics",
            &[
                ("topic", "Audited"),
                ("read", "4"),
                ("write", "4"),
                ("perm", "6"),
                ("broker", "broker-a"),
            ],
        )
        .await;
    assert!(page.flash().is_some(), "{}", page.body);
    shop.browser.get("/topics").await;
    shop.browser
        .post(
            "/topic/delete",
            &[("topic", "Audited"), ("confirm", "wrong")],
        )
        .await;
    let audit = shop.browser.get("/audit").await;
    audit
        .expect("/topics")
        .expect("topic=Audited")
        .expect("/topic/delete")
        .expect(ADMIN.0);
    audit.expect_not("confirm=wrong").expect_not("_csrf=");
    assert!(
        audit.body.contains("badge bad"),
        "the refused delete is recorded as failed"
    );
    let file = std::fs::read_to_string(shop.data.path().join("audit.log")).unwrap();
    assert_eq!(file.lines().count(), 2, "{file}");
    // A console started again on the same folder shows them.
    shop.console.stop().await;
    let config = common::config(&shop.cluster.namesrv.addr).with_data_dir(shop.data.path());
    let mut again = Console::start(config).await;
    let mut browser = again.browser();
    browser.login(ADMIN.0, ADMIN.1).await;
    browser.get("/audit").await.expect("topic=Audited");
    // Without shop keys there are no shop pages in the navigation.
    browser.get("/").await.expect_not("href=\"/invariants\"");
    again.stop().await;
    shop.cluster.stop().await;
}
