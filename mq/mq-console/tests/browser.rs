//! The console in a real browser: headless Chromium driven through
//! chromedriver's WebDriver protocol (a few JSON calls, spoken here with
//! reqwest). Without Debian's `chromium` and `chromium-driver` the test
//! says so and passes, except under CI (`CI=true`), where it fails.
//! With `CONSOLE_SCREENSHOTS=DIR` every page visited is saved as
//! `DIR/console-<page>.png` to look at.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use common::{Console, ADMIN};
use mq_testkit::{wait_for, Cluster};
use serde_json::{json, Value};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A WebDriver session on a chromedriver this test started.
struct Driver {
    http: reqwest::Client,
    base: String,
    _process: tokio::process::Child,
    shots: Option<PathBuf>,
}

impl Driver {
    /// Starts chromedriver and a headless Chromium session; none when they
    /// are not installed outside CI.
    async fn start() -> Option<Driver> {
        let missing: Vec<&str> = [CHROMEDRIVER, CHROMIUM]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        if !missing.is_empty() {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !ci,
                "{missing:?} missing: CI must install chromium and chromium-driver (.ci/run does)"
            );
            eprintln!("skipping the browser test: {missing:?} not installed (apt-get install chromium chromium-driver)");
            return None;
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let process = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        wait_for("chromedriver to be ready", || async {
            let status: Value = http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            status["value"]["ready"].as_bool().filter(|r| *r)
        })
        .await;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"]
            }
        }}});
        let session: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"))
            .to_owned();
        Some(Driver {
            http,
            base: format!("{base}/session/{id}"),
            _process: process,
            shots: std::env::var_os("CONSOLE_SCREENSHOTS").map(PathBuf::from),
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"].get("error").is_some() {
            panic!("WebDriver {path}: {answer}");
        }
        answer["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        // An element reference is an object with one key (the W3C
        // element identifier) whose value is the reference.
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits until the page shows `text`; returns the page.
    async fn wait_text(&self, text: &str) -> String {
        wait_for(&format!("the page to show {text:?}"), || async {
            let page = self.source().await;
            page.contains(text).then_some(page)
        })
        .await
    }

    async fn shot(&self, name: &str) {
        let Some(dir) = &self.shots else { return };
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(dir.join(format!("console-{name}.png")), bytes).unwrap();
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_create_a_topic_send_and_find_a_message() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let cluster = Cluster::start().await;
    let console = Console::start(
        common::config(&cluster.namesrv.addr).with_sample_interval(Duration::from_millis(200)),
    )
    .await;
    let url = &console.url;

    driver.goto(&format!("{url}/")).await;
    driver.wait_text("name=\"password\"").await;
    driver.shot("login").await;
    driver.type_into("input[name=username]", ADMIN.0).await;
    driver.type_into("input[name=password]", ADMIN.1).await;
    driver.click(".login button[type=submit]").await;
    driver.wait_text("broker-a").await;
    driver.shot("cluster").await;

    driver.goto(&format!("{url}/topics")).await;
    driver
        .type_into("form.grid input[name=topic]", "BrowserTopic")
        .await;
    driver.click("form.grid button[type=submit]").await;
    driver.wait_text("Send a test message").await;
    driver
        .type_into("form[action='/topic/send'] input[name=tag]", "TagB")
        .await;
    driver
        .type_into(
            "form[action='/topic/send'] input[name=key]",
            "browser-key-1",
        )
        .await;
    driver
        .type_into(
            "form[action='/topic/send'] textarea[name=body]",
            "hello from <chromium>",
        )
        .await;
    driver
        .click("form[action='/topic/send'] button[type=submit]")
        .await;
    let page = driver.wait_text("Sent: ").await;
    assert!(page.contains("BrowserTopic"), "{page}");
    driver.shot("topic").await;

    driver.goto(&format!("{url}/topics")).await;
    driver.wait_text("BrowserTopic").await;
    driver.shot("topics").await;

    // The broker indexes a key just after it acknowledges the send: search
    // through the form again until it finds the message.
    wait_for("the key search to find the message", || async {
        driver.goto(&format!("{url}/messages")).await;
        driver
            .type_into("section.card form input[name=topic]", "BrowserTopic")
            .await;
        driver
            .type_into("section.card form input[name=key]", "browser-key-1")
            .await;
        driver.click("section.card form button[type=submit]").await;
        let page = driver.wait_text("</main>").await;
        page.contains("TagB").then_some(())
    })
    .await;
    driver.shot("messages").await;
    driver.click("td.mono a").await;
    let page = driver.wait_text("hello from &lt;chromium&gt;").await;
    assert!(page.contains("browser-key-1"));
    driver.shot("message").await;

    // The dashboard's time series: the message sent above shows in
    // BrowserTopic's chart after the next samples; switch to the day.
    wait_for("BrowserTopic's time series", || async {
        driver.goto(&format!("{url}/dashboard")).await;
        let page = driver.wait_text("</main>").await;
        page.contains("<strong>BrowserTopic</strong> · <span class=\"legend-in\">in 1</span>")
            .then_some(())
    })
    .await;
    driver.shot("dashboard").await;
    driver.click("p.range a[href='/dashboard?range=day']").await;
    let page = driver
        .wait_text("class=\"active\" href=\"/dashboard?range=day\"")
        .await;
    assert!(page.contains("<polyline"), "{page}");
    driver.shot("dashboard-day").await;

    for (path, name) in [
        ("/dlq", "dlq"),
        ("/transactions", "transactions"),
        ("/consumers", "consumers"),
        (
            "/producers?topic=BrowserTopic&group=SELF_TEST_P_GROUP",
            "producers",
        ),
        (
            &format!("/broker?addr={}", common::enc(&cluster.broker_addr)),
            "broker",
        ),
        ("/topics?lang=zh", "topics-zh"),
    ] {
        driver.goto(&format!("{url}{path}")).await;
        driver.wait_text("</main>").await;
        driver.shot(name).await;
    }
    driver.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_a_cancelled_and_a_paid_order_and_the_invariants() {
    use common::shop_stub::{self, CANCELLED, PAID, PAYMENT};
    let Some(driver) = Driver::start().await else {
        return;
    };
    let cluster = Cluster::start().await;
    cluster.create_topic("ORDER_CANCEL", 2).await;
    cluster.create_topic("PAY_SUCCESS", 2).await;
    let stub = shop_stub::Stub(std::sync::Arc::new(
        std::sync::Mutex::new(shop_stub::data()),
    ));
    let shop = shop_stub::serve_stub(stub).await;
    shop_stub::publish_saga(&cluster).await;
    let data = tempfile::tempdir().unwrap();
    let console = Console::start(
        common::config(&cluster.namesrv.addr)
            .with_shop(shop_stub::shop_config(&shop))
            .with_data_dir(data.path()),
    )
    .await;
    let url = &console.url;
    driver.goto(&format!("{url}/")).await;
    driver.wait_text("name=\"password\"").await;
    driver.type_into("input[name=username]", ADMIN.0).await;
    driver.type_into("input[name=password]", ADMIN.1).await;
    driver.click(".login button[type=submit]").await;
    driver.wait_text("broker-a").await;

    // From the list to the cancelled order, by its link.
    driver.goto(&format!("{url}/orders")).await;
    driver.wait_text(CANCELLED).await;
    driver.shot("orders").await;
    driver
        .click(&format!("a[href='/order?id={CANCELLED}']"))
        .await;
    wait_for("the cancelled order's committed ORDER_CANCEL", || async {
        driver.goto(&format!("{url}/order?id={CANCELLED}")).await;
        let page = driver.wait_text("</main>").await;
        page.contains("ORDER_CANCEL delivered</strong><div>Message id")
            .then_some(())
    })
    .await;
    let page = driver.source().await;
    for step in [
        "Order saved PENDING",
        "ORDER_CANCEL half message stored",
        "Stock reserved (goods)",
        "Coupon used (coupon)",
        "Balance reserved (user)",
        "goods refused: not enough stock",
        "ORDER_CANCEL applied by each group",
    ] {
        assert!(page.contains(step), "{step} missing:\n{page}");
    }
    driver.shot("order-cancelled").await;

    wait_for("the paid order's PAY_SUCCESS", || async {
        driver.goto(&format!("{url}/order?id={PAID}")).await;
        let page = driver.wait_text("</main>").await;
        page.contains("PAY_SUCCESS published</strong><div>Message id")
            .then_some(())
    })
    .await;
    let page = driver.source().await;
    for step in [
        "Order saved PENDING",
        "Half message rolled back",
        "Payment created",
        PAYMENT,
        "Gateway callback",
        "PAY_SUCCESS applied by order, log and points",
        "15 points",
    ] {
        assert!(page.contains(step), "{step} missing:\n{page}");
    }
    driver.shot("order-paid").await;

    driver.goto(&format!("{url}/invariants")).await;
    let page = driver.wait_text("</main>").await;
    assert!(page.contains("Every invariant holds"), "{page}");
    assert!(!page.contains(">broken"), "{page}");
    driver.shot("invariants").await;
    driver.goto(&format!("{url}/audit")).await;
    driver.wait_text("</main>").await;
    driver.shot("audit").await;
    driver.quit().await;
}

/// Logs the admin in through the form.
async fn log_in(driver: &Driver, url: &str) {
    driver.goto(&format!("{url}/")).await;
    driver.wait_text("name=\"password\"").await;
    driver.type_into("input[name=username]", ADMIN.0).await;
    driver.type_into("input[name=password]", ADMIN.1).await;
    driver.click(".login button[type=submit]").await;
    driver.wait_text("broker-a").await;
}

/// A unique client instance name (instances are shared by client id).
fn instance(role: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "browser-{role}-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A push consumer of `group` on `topic` answering every message with `status`.
async fn consumer(
    cluster: &Cluster,
    group: &str,
    topic: &str,
    status: mq_client::ConsumeStatus,
) -> mq_client::PushConsumer {
    let mut config = mq_client::consumer::PushConsumerConfig::new(group);
    config.max_reconsume_times = 1;
    let consumer = mq_client::PushConsumer::new(
        config,
        mq_client::ClientConfig::new(&cluster.namesrv.addr).with_instance_name(instance(group)),
    );
    consumer.subscribe(topic, "*").unwrap();
    consumer
        .start(mq_client::Listener::concurrent(
            move |_m: Vec<mq_client::MessageExt>| async move { status },
        ))
        .await
        .unwrap();
    consumer
}

/// `group`'s committed offsets on `topic`, summed.
async fn committed(admin: &mq_client::AdminClient, cluster: &Cluster, group: &str) -> Option<i64> {
    let stats = admin
        .consume_stats(&cluster.broker_addr, group, Some("BrowserFlow"))
        .await
        .ok()?;
    (!stats.offset_table.is_empty())
        .then(|| stats.offset_table.values().map(|o| o.consumer_offset).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_by_id_reset_an_offset_and_resend_a_dead_letter() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    // Half messages are checked back but never discarded.
    let cluster = Cluster::start_with(|b, _| b.transaction_check_max = u32::MAX).await;
    let console = Console::start(common::config(&cluster.namesrv.addr)).await;
    let url = &console.url;
    let admin = mq_client::AdminClient::start(
        mq_client::ClientConfig::new(&cluster.namesrv.addr).with_instance_name(instance("admin")),
    )
    .await
    .unwrap();
    log_in(&driver, url).await;

    // Create the topic through the form, then send a test message.
    driver.goto(&format!("{url}/topics")).await;
    driver
        .type_into("form.grid input[name=topic]", "BrowserFlow")
        .await;
    driver.click("form.grid button[type=submit]").await;
    driver.wait_text("Send a test message").await;
    driver.shot("flow-topic-created").await;
    wait_for("the name server to route BrowserFlow", || async {
        admin.topic_route("BrowserFlow").await.ok()
    })
    .await;
    // One group consumes everything, another fails everything into its DLQ.
    let ok = consumer(
        &cluster,
        "flow-group",
        "BrowserFlow",
        mq_client::ConsumeStatus::Success,
    )
    .await;
    let failing = consumer(
        &cluster,
        "flow-dlq",
        "BrowserFlow",
        mq_client::ConsumeStatus::ReconsumeLater,
    )
    .await;
    driver
        .type_into("form[action='/topic/send'] input[name=key]", "flow-key")
        .await;
    driver
        .type_into(
            "form[action='/topic/send'] textarea[name=body]",
            "flow body",
        )
        .await;
    driver
        .click("form[action='/topic/send'] button[type=submit]")
        .await;
    let page = driver.wait_text("Sent: ").await;
    let offset_id = page
        .split("offsetMsgId ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("no offsetMsgId in the flash:\n{page}"))
        .to_owned();
    wait_for("flow-group to consume the message", || async {
        (committed(&admin, &cluster, "flow-group").await? == 1).then_some(())
    })
    .await;
    wait_for("the message in flow-dlq's dead letters", || async {
        let stats = admin
            .topic_stats(&cluster.broker_addr, "%DLQ%flow-dlq")
            .await
            .ok()?;
        let n: i64 = stats
            .offset_table
            .values()
            .map(|o| o.max_offset - o.min_offset)
            .sum();
        (n == 1).then_some(())
    })
    .await;
    failing.shutdown().await;

    // Find it by id: each group's consume state.
    driver.goto(&format!("{url}/messages")).await;
    driver.type_into("input[name=id]", &offset_id).await;
    driver
        .click("form:has(input[name=id]) button[type=submit]")
        .await;
    driver.wait_text("flow-key").await;
    driver.shot("flow-messages-by-id").await;
    driver.click("td.mono a").await;
    let page = driver.wait_text("flow body").await;
    for expected in [
        "flow-group</a></td><td><span class=\"badge ok\">consumed</span></td>",
        "flow-dlq</a></td><td><span class=\"badge ok\">consumed</span> \
         <span class=\"badge warn\">Retry × 1</span> <span class=\"badge bad\">Dead letter</span>",
    ] {
        assert!(page.contains(expected), "{expected} missing:\n{page}");
    }
    driver.shot("flow-message").await;

    // Resend it to flow-group: tick the confirmation, press the button,
    // and see what the live member's listener said.
    let row = "tr:has(a[href='/consumer?group=flow-group']) form[action='/message/resend']";
    driver.click(&format!("{row} input[name=confirm]")).await;
    driver.click(&format!("{row} button[type=submit]")).await;
    let page = driver.wait_text("class=\"flash ").await;
    assert!(
        page.contains("Consumed directly (flow-group") && page.contains("CR_SUCCESS"),
        "{page}"
    );
    driver.shot("flow-message-resent").await;
    // flow-dlq has no live member any more: a clear refusal.
    let row = "tr:has(a[href='/consumer?group=flow-dlq']) form[action='/message/resend']";
    driver.click(&format!("{row} input[name=confirm]")).await;
    driver.click(&format!("{row} button[type=submit]")).await;
    let page = driver.wait_text("class=\"flash error").await;
    assert!(
        page.contains("No consumer of this group is online"),
        "{page}"
    );

    // Reset flow-group to the beginning of time through its page.
    ok.shutdown().await;
    driver
        .goto(&format!("{url}/consumer?group=flow-group"))
        .await;
    driver.wait_text("action=\"/consumer/reset\"").await;
    driver
        .type_into(
            "form[action='/consumer/reset'] input[name=time]",
            "1970-01-02 00:00",
        )
        .await;
    driver
        .click("form[action='/consumer/reset'] button[type=submit]")
        .await;
    let page = driver.wait_text("class=\"flash ").await;
    assert!(page.contains("8 Queue"), "8 queues reset:\n{page}");
    driver.shot("flow-consumer-reset").await;
    wait_for("flow-group's offset back at 0", || async {
        (committed(&admin, &cluster, "flow-group").await? == 0).then_some(())
    })
    .await;

    // Resend the dead letter to BrowserFlow.
    driver.goto(&format!("{url}/dlq?group=flow-dlq")).await;
    driver.wait_text("flow-key").await;
    driver.shot("flow-dlq").await;
    driver
        .click("form[action='/dlq/resend'] input[name=id]")
        .await;
    driver
        .click("form[action='/dlq/resend'] button[type=submit]")
        .await;
    driver.wait_text("Resent: 1").await;
    driver.shot("flow-dlq-resent").await;
    wait_for("the resent message in BrowserFlow", || async {
        let stats = admin
            .topic_stats(&cluster.broker_addr, "BrowserFlow")
            .await
            .ok()?;
        let n: i64 = stats.offset_table.values().map(|o| o.max_offset).sum();
        (n == 2).then_some(())
    })
    .await;

    // A half message its producer never decides: the transactions page
    // shows how often the broker checked it back.
    let producer = mq_client::TransactionProducer::start(
        mq_client::ProducerConfig::new("flow-tx"),
        mq_client::ClientConfig::new(&cluster.namesrv.addr).with_instance_name(instance("tx")),
        std::sync::Arc::new(Undecided),
    )
    .await
    .unwrap();
    producer
        .send_half(mq_client::Message::new("BrowserFlow", "undecided").with_keys(["flow-half"]))
        .await
        .unwrap();
    wait_for("a check-back counted on the transactions page", || async {
        driver.goto(&format!("{url}/transactions")).await;
        let page = driver.wait_text("</main>").await;
        let row = page
            .split("<tr>")
            .find(|r| r.contains("<td>flow-half</td>"))?;
        let count = row
            .split("<td class=\"num checks\">")
            .nth(1)?
            .split('<')
            .next()?;
        (count.parse::<u32>().ok()? >= 1).then_some(())
    })
    .await;
    driver.shot("flow-transactions").await;
    producer.producer().shutdown().await;
    admin.shutdown().await;
    driver.quit().await;
}

/// A producer whose local transactions are never decided.
struct Undecided;

#[mq_client::async_trait]
impl mq_client::TransactionChecker for Undecided {
    async fn check(&self, _msg: &mq_client::MessageExt) -> mq_client::LocalTransactionState {
        mq_client::LocalTransactionState::Unknown
    }
}
