//! The console over HTTP against a real name server and broker: log-in,
//! sessions and CSRF, every page and action, escaping, languages.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{enc, start, Console, ADMIN, VIEWER};
use mq_client::consumer::PushConsumerConfig;
use mq_client::{
    AdminClient, ClientConfig, ConsumeStatus, Listener, MessageExt, PushConsumer, TopicSpec,
};
use mq_testkit::{wait_for, Cluster};

/// A unique client instance name: instances are shared by client id, and
/// the tests of this file run in one process against different clusters.
fn instance(role: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("test-{role}-{}", N.fetch_add(1, Ordering::Relaxed))
}

async fn admin(cluster: &Cluster) -> AdminClient {
    AdminClient::start(
        ClientConfig::new(&cluster.namesrv.addr).with_instance_name(instance("admin")),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_but_login_needs_a_session() {
    let cluster = Cluster::start().await;
    let console = Console::start(common::config(&cluster.namesrv.addr)).await;
    let mut b = console.browser();
    let first = b.get_raw("/").await;
    let cookie = first
        .set_cookies
        .iter()
        .find(|c| c.starts_with("MQCONSOLE_SESSION="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    for path in [
        "/",
        "/topics",
        "/topic?topic=TBW102",
        "/consumers",
        "/producers",
        "/messages",
        "/broker?addr=x",
    ] {
        let page = b.get_raw(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(page.location.as_deref(), Some("/login"), "{path}");
    }
    // A POST without a session is sent to log in too, and changes nothing.
    let page = b
        .post_raw("/topics", &[("topic", "Sneaky"), ("broker", "broker-a")])
        .await;
    assert_eq!(page.location.as_deref(), Some("/login"));
    let login = b.get("/login").await;
    assert_eq!(login.status, 200);
    login.expect("name=\"password\"");
    assert!(admin(&cluster).await.topic_route("Sneaky").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_and_out() {
    let cluster = Cluster::start().await;
    let console = Console::start(common::config(&cluster.namesrv.addr)).await;
    let mut b = console.browser();
    b.get("/login").await;
    let before = b.cookies["MQCONSOLE_SESSION"].clone();

    // Wrong password, unknown user: back to the form with the reason.
    for (user, password) in [(ADMIN.0, "wrong"), ("nobody", ADMIN.1), (ADMIN.0, "")] {
        let page = b
            .post("/login", &[("username", user), ("password", password)])
            .await;
        assert_eq!(
            page.flash().as_deref(),
            Some("Wrong user name or password."),
            "{user}/{password}"
        );
        page.expect_not("/logout");
    }
    // A form without the session's token is refused.
    let page = b
        .post_raw(
            "/login",
            &[
                ("_csrf", "0000"),
                ("username", ADMIN.0),
                ("password", ADMIN.1),
            ],
        )
        .await;
    assert_eq!(page.status, 403);

    let page = b
        .post("/login", &[("username", ADMIN.0), ("password", ADMIN.1)])
        .await;
    page.expect("/logout").expect(ADMIN.0).expect("broker-a");
    let after = b.cookies["MQCONSOLE_SESSION"].clone();
    assert_ne!(before, after, "logging in starts a new session");

    // The old session id is worth nothing.
    let mut stale = console.browser();
    stale.cookies.insert("MQCONSOLE_SESSION".into(), before);
    assert_eq!(stale.get_raw("/").await.location.as_deref(), Some("/login"));

    let page = b.post("/logout", &[]).await;
    page.expect("name=\"password\"");
    let mut old = console.browser();
    old.cookies.insert("MQCONSOLE_SESSION".into(), after);
    assert_eq!(old.get_raw("/").await.location.as_deref(), Some("/login"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire() {
    let cluster = Cluster::start().await;
    let mut config = common::config(&cluster.namesrv.addr);
    // Long enough for a loaded CI machine to log in and open a page.
    config.session_timeout = Duration::from_millis(2000);
    let console = Console::start(config).await;
    let mut b = console.browser();
    b.login(ADMIN.0, ADMIN.1).await;
    assert_eq!(b.get_raw("/topics").await.status, 200);
    // Expiry is a duration by definition: there is no state to wait on.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(
        b.get_raw("/topics").await.location.as_deref(),
        Some("/login")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_may_look_but_not_change() {
    let cluster = Cluster::start().await;
    let console = Console::start(common::config(&cluster.namesrv.addr)).await;
    let mut b = console.browser();
    b.login(VIEWER.0, VIEWER.1).await;
    b.get("/topics")
        .await
        .expect_not("Create or update a topic");
    let page = b
        .post(
            "/topics",
            &[("topic", "ViewerTopic"), ("broker", "broker-a")],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(admin(&cluster)
        .await
        .topic_route("ViewerTopic")
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_login_the_console_is_open_but_forms_still_need_the_token() {
    let cluster = Cluster::start().await;
    let config = common::config(&cluster.namesrv.addr).with_login_required(false);
    let console = Console::start(config).await;
    let mut b = console.browser();
    b.get("/").await.expect("broker-a").expect_not("/logout");
    let page = b
        .post_raw("/topics", &[("topic", "NoToken"), ("broker", "broker-a")])
        .await;
    assert_eq!(page.status, 403);
    b.get("/topics").await;
    let page = b
        .post("/topics", &[("topic", "WithToken"), ("broker", "broker-a")])
        .await;
    page.expect("WithToken");
    admin(&cluster)
        .await
        .topic_route("WithToken")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_overview_and_broker_config() {
    let (cluster, _console, mut b) = start().await;
    let page = b.get("/").await;
    page.expect("DefaultCluster")
        .expect("broker-a")
        .expect(&cluster.broker_addr)
        .expect("master")
        .expect("http-equiv=\"refresh\"");

    let path = format!("/broker?addr={}", enc(&cluster.broker_addr));
    let page = b.get(&path).await;
    page.expect("brokerVersionDesc")
        .expect("defaultTopicQueueNums");

    let page = b
        .post(
            "/broker/config",
            &[
                ("addr", &cluster.broker_addr),
                ("key", "defaultTopicQueueNums"),
                ("value", "5"),
            ],
        )
        .await;
    assert_eq!(page.flash().as_deref(), Some("defaultTopicQueueNums=5"));
    let config = admin(&cluster)
        .await
        .broker_config(&cluster.broker_addr)
        .await
        .unwrap();
    assert_eq!(config["defaultTopicQueueNums"], "5");

    // The broker's refusal is shown; a key outside the list is not sent.
    let page = b
        .post(
            "/broker/config",
            &[
                ("addr", &cluster.broker_addr),
                ("key", "defaultTopicQueueNums"),
                ("value", "99999"),
            ],
        )
        .await;
    let flash = page.flash().unwrap();
    assert!(flash.contains("defaultTopicQueueNums"), "{flash}");
    let page = b
        .post(
            "/broker/config",
            &[
                ("addr", &cluster.broker_addr),
                ("key", "storePathRootDir"),
                ("value", "/tmp/x"),
            ],
        )
        .await;
    assert!(page.flash().unwrap().contains("cannot be changed"));
    // An address the name server does not list is never dialled.
    let page = b.get("/broker?addr=127.0.0.1:1").await;
    assert_eq!(page.status, 404);
}

/// The console's list of editable keys is the broker's: the broker takes
/// each with its current value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_editable_key_is_one_the_broker_takes() {
    let (cluster, _console, mut b) = start().await;
    let admin = admin(&cluster).await;
    let config = admin.broker_config(&cluster.broker_addr).await.unwrap();
    let page = b
        .get(&format!("/broker?addr={}", enc(&cluster.broker_addr)))
        .await;
    let mut checked = 0;
    for (key, value) in &config {
        if !page.body.contains(&format!("name=\"key\" value=\"{key}\"")) {
            continue;
        }
        // Taken, or (a test broker's value below the range an operator may
        // set) refused for its value, not for its key.
        if let Err(e) = admin
            .update_broker_config(&cluster.broker_addr, &[(key.clone(), value.clone())])
            .await
        {
            assert!(
                e.to_string().contains("must be within"),
                "the broker refuses {key}={value}: {e}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} editable keys shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_create_list_filter_update_delete() {
    let (cluster, _console, mut b) = start().await;
    b.get("/topics").await;
    let page = b
        .post(
            "/topics",
            &[
                ("topic", "ConsoleTopic"),
                ("read", "4"),
                ("write", "4"),
                ("perm", "6"),
                ("broker", "broker-a"),
            ],
        )
        .await;
    assert!(
        page.flash().unwrap().contains("ConsoleTopic"),
        "{:?}",
        page.flash()
    );
    let admin = admin(&cluster).await;
    let route = wait_for("the topic's route", || async {
        admin.topic_route("ConsoleTopic").await.ok()
    })
    .await;
    assert_eq!(route.queue_datas[0].write_queue_nums, 4);

    // The topic page: four queues in its status, its route.
    let page = b.get("/topic?topic=ConsoleTopic").await;
    page.expect("RW-").expect(&cluster.broker_addr);
    assert_eq!(
        page.body
            .matches("<tr><td>broker-a</td><td class=\"num\">")
            .count(),
        4,
        "one status row per queue"
    );

    // Filters and search.
    // The name server lists a new topic with the broker's registration.
    b.get("/topics").await.expect("ConsoleTopic");
    b.get("/topics?filter=system")
        .await
        .expect_not("ConsoleTopic")
        .expect("TBW102");
    b.get("/topics?filter=normal").await.expect_not("TBW102");
    b.get("/topics?filter=all&q=consolet")
        .await
        .expect("ConsoleTopic")
        .expect_not("TBW102");
    assert_eq!(b.get("/topics?filter=bogus").await.status, 400);

    // Update: 2 queues, read only.
    let page = b
        .post(
            "/topics",
            &[
                ("topic", "ConsoleTopic"),
                ("existing", "true"),
                ("read", "2"),
                ("write", "2"),
                ("perm", "4"),
                ("broker", "broker-a"),
            ],
        )
        .await;
    page.expect("R--");
    // Bad input is refused with the reason and changes nothing.
    for (fields, reason) in [
        (
            vec![("topic", "../etc"), ("broker", "broker-a")],
            "contains",
        ),
        (
            vec![("topic", "Fine"), ("read", "0"), ("broker", "broker-a")],
            "read must be",
        ),
        (
            vec![("topic", "Fine"), ("perm", "7"), ("broker", "broker-a")],
            "perm must be",
        ),
        (
            vec![("topic", "Fine"), ("broker", "broker-zz")],
            "no master broker",
        ),
        (vec![("topic", "Fine")], "at least one broker"),
    ] {
        let page = b.post("/topics", &fields).await;
        let flash = page.flash().unwrap_or_default();
        assert!(flash.contains(reason), "{fields:?}: {flash}");
    }
    assert!(admin.topic_route("Fine").await.is_err());

    // Delete: the name must be typed again.
    let page = b
        .post(
            "/topic/delete",
            &[("topic", "ConsoleTopic"), ("confirm", "ConsoleTopi")],
        )
        .await;
    assert!(page.flash().unwrap().contains("does not match"));
    assert!(admin.topic_route("ConsoleTopic").await.is_ok());
    b.post(
        "/topic/delete",
        &[("topic", "ConsoleTopic"), ("confirm", "ConsoleTopic")],
    )
    .await;
    assert!(admin.topic_route("ConsoleTopic").await.is_err());
}

/// A push consumer of `group` on `topic` that takes everything.
async fn consumer(cluster: &Cluster, group: &str, topic: &str) -> PushConsumer {
    let consumer = PushConsumer::new(
        PushConsumerConfig::new(group),
        ClientConfig::new(&cluster.namesrv.addr)
            .with_instance_name(instance(&format!("consumer-{group}"))),
    );
    consumer.subscribe(topic, "*").unwrap();
    consumer
        .start(Listener::concurrent(|_msgs: Vec<MessageExt>| async {
            ConsumeStatus::Success
        }))
        .await
        .unwrap();
    consumer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_a_test_message_and_find_it_by_key_and_id() {
    let (cluster, _console, mut b) = start().await;
    cluster.create_topic("Orders", 2).await;
    b.get("/topic?topic=Orders").await;
    let body = "<script>alert(1)</script> & ünïcode";
    let page = b
        .post(
            "/topic/send",
            &[
                ("topic", "Orders"),
                ("tag", "TagA"),
                ("key", "order-42 <b>"),
                ("body", body),
            ],
        )
        .await;
    let flash = page.flash().unwrap();
    assert!(
        flash.starts_with("Sent: SendOk") || flash.contains("Sent"),
        "{flash}"
    );
    let msg_id = flash
        .split("Message id ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let offset_id = flash
        .split("offsetMsgId ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();

    let page = b
        .get_until("/messages?topic=Orders&key=order-42", &msg_id)
        .await;
    page.expect("TagA");
    let page = b.get(&format!("/messages?topic=Orders&id={msg_id}")).await;
    page.expect(&msg_id);
    let page = b.get(&format!("/messages?id={offset_id}")).await;
    page.expect(&msg_id);
    b.get("/messages?topic=Orders&key=nothing-here")
        .await
        .expect("No message found.");
    assert_eq!(b.get("/messages?id=not-hex").await.status, 400);

    // The detail escapes what the message carries.
    let page = b.get(&format!("/message?id={offset_id}")).await;
    page.expect("&lt;script&gt;alert(1)&lt;/script&gt; &amp; ünïcode")
        .expect_not("<script>")
        .expect("order-42 &lt;b&gt;")
        .expect("TagA")
        .expect("3c 73 63 72"); // "<scr" in hex

    // A group consumes it: its state shows on the detail page.
    let consumer = consumer(&cluster, "orders-group", "Orders").await;
    let admin = admin(&cluster).await;
    wait_for("the group to consume everything", || async {
        let stats = admin
            .consume_stats(&cluster.broker_addr, "orders-group", Some("Orders"))
            .await
            .ok()?;
        (!stats.offset_table.is_empty() && stats.total_diff() == 0).then_some(())
    })
    .await;
    let page = b.get(&format!("/message?id={offset_id}")).await;
    page.expect("orders-group").expect("consumed");
    consumer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_a_message_to_one_group() {
    let (cluster, console, mut b) = start().await;
    cluster.create_topic("Resend", 2).await;
    b.get("/topic?topic=Resend").await;
    let flash = b
        .post(
            "/topic/send",
            &[("topic", "Resend"), ("key", "order-9"), ("body", "again")],
        )
        .await
        .flash()
        .unwrap();
    let offset_id = flash
        .split("offsetMsgId ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let runs = std::sync::Arc::new(AtomicU64::new(0));
    let counter = runs.clone();
    let consumer = PushConsumer::new(
        PushConsumerConfig::new("resend-group"),
        ClientConfig::new(&cluster.namesrv.addr).with_instance_name(instance("resend")),
    );
    consumer.subscribe("Resend", "*").unwrap();
    consumer
        .start(Listener::concurrent(move |_msgs: Vec<MessageExt>| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                ConsumeStatus::Success
            }
        }))
        .await
        .unwrap();
    wait_for("the first delivery", || async {
        (runs.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let detail = format!("/message?id={offset_id}");
    let page = b.get_until(&detail, "resend-group").await;
    page.expect("Resend to this group")
        .expect("action=\"/message/resend\"");

    // Unconfirmed: refused, nothing consumed.
    let page = b
        .post(
            "/message/resend",
            &[("id", &offset_id), ("group", "resend-group")],
        )
        .await;
    assert!(page.flash().unwrap().contains("Tick the confirmation box"));
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // Confirmed: the member's listener ran, the result shows.
    let page = b
        .post(
            "/message/resend",
            &[
                ("id", &offset_id),
                ("group", "resend-group"),
                ("confirm", "yes"),
            ],
        )
        .await;
    let flash = page.flash().unwrap();
    assert!(flash.contains("Consumed directly (resend-group"), "{flash}");
    assert!(flash.contains("CR_SUCCESS"), "{flash}");
    assert!(page.body.contains("class=\"flash ok\""));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    b.get("/audit").await.expect("/message/resend");

    // No live member: a clear message.
    consumer.shutdown().await;
    let admin = admin(&cluster).await;
    wait_for("the member to leave", || async {
        admin
            .consumer_connection(&cluster.broker_addr, "resend-group")
            .await
            .map_or(true, |c| c.connection_set.is_empty())
            .then_some(())
    })
    .await;
    let page = b
        .post(
            "/message/resend",
            &[
                ("id", &offset_id),
                ("group", "resend-group"),
                ("confirm", "yes"),
            ],
        )
        .await;
    let flash = page.flash().unwrap();
    assert!(
        flash.contains("No consumer of this group is online") && flash.contains("resend-group"),
        "{flash}"
    );
    assert!(page.body.contains("class=\"flash error\""));

    // A viewer may not.
    let mut viewer = console.browser();
    viewer.login(VIEWER.0, VIEWER.1).await;
    viewer.get(&detail).await;
    let page = viewer
        .post(
            "/message/resend",
            &[
                ("id", &offset_id),
                ("group", "resend-group"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_groups_their_clients_lag_and_reset() {
    let (cluster, _console, mut b) = start().await;
    cluster.create_topic("Pay", 2).await;
    b.get("/consumers").await;
    let page = b
        .post(
            "/consumers",
            &[
                ("group", "pay-group"),
                ("retryMaxTimes", "3"),
                ("consumeEnable", "true"),
                ("orderly", "true"),
                ("broker", "broker-a"),
            ],
        )
        .await;
    assert!(page.flash().unwrap().contains("pay-group"));
    let admin = admin(&cluster).await;
    let groups = admin
        .subscription_groups(&cluster.broker_addr)
        .await
        .unwrap();
    assert_eq!(groups["pay-group"].retry_max_times, 3);
    assert!(groups["pay-group"].consume_message_orderly);
    admin
        .create_subscription_group(
            &cluster.broker_addr,
            &mq_client::SubscriptionGroupConfig::new("TOOLS_CONSUMER"),
        )
        .await
        .unwrap();
    b.get("/consumers")
        .await
        .expect("pay-group")
        .expect_not("TOOLS_CONSUMER");
    b.get("/consumers?system=true")
        .await
        .expect("TOOLS_CONSUMER");
    assert_eq!(b.get("/consumers?sort=evil").await.status, 400);
    let bad = b
        .post("/consumers", &[("group", "a/b"), ("broker", "broker-a")])
        .await;
    assert!(bad.flash().unwrap().contains("contains"));

    // A member online, a few messages consumed.
    let producer = mq_client::Producer::start(
        mq_client::ProducerConfig::new("pay-producer"),
        ClientConfig::new(&cluster.namesrv.addr).with_instance_name(instance("producer")),
    )
    .await
    .unwrap();
    for i in 0..6 {
        producer
            .send(mq_client::Message::new("Pay", format!("m{i}")))
            .await
            .unwrap();
    }
    let consumer = consumer(&cluster, "pay-group", "Pay").await;
    wait_for("pay-group to consume the six", || async {
        let stats = admin
            .consume_stats(&cluster.broker_addr, "pay-group", Some("Pay"))
            .await
            .ok()?;
        let consumed: i64 = stats.offset_table.values().map(|o| o.consumer_offset).sum();
        (consumed == 6).then_some(())
    })
    .await;
    let page = b.get("/consumer?group=pay-group").await;
    page.expect("@test-consumer-pay-group-")
        .expect("CLUSTERING")
        .expect("Pay")
        .expect("<td>JAVA</td><td>401</td>");
    b.get("/consumers?sort=lag").await.expect("pay-group");

    // Producers of the topic.
    let page = b.get("/producers?topic=Pay&group=pay-producer").await;
    page.expect("@test-producer-");

    // Reset to the beginning of time: the offsets go back to 0.
    consumer.shutdown().await;
    let page = b
        .post(
            "/consumer/reset",
            &[
                ("group", "pay-group"),
                ("topic", "Pay"),
                ("time", "1970-01-02 00:00"),
                ("force", "true"),
            ],
        )
        .await;
    let flash = page.flash().unwrap();
    assert!(flash.contains("2 Queue"), "{flash}");
    wait_for("the offsets to be reset", || async {
        let stats = admin
            .consume_stats(&cluster.broker_addr, "pay-group", Some("Pay"))
            .await
            .ok()?;
        (stats.offset_table.values().all(|o| o.consumer_offset == 0)).then_some(())
    })
    .await;
    let bad = b
        .post(
            "/consumer/reset",
            &[
                ("group", "pay-group"),
                ("topic", "Pay"),
                ("time", "yesterday"),
            ],
        )
        .await;
    assert!(bad.flash().unwrap().contains("the time must be"));

    // Delete with typed confirmation.
    b.post(
        "/consumer/delete",
        &[("group", "pay-group"), ("confirm", "nope")],
    )
    .await;
    assert!(admin
        .subscription_groups(&cluster.broker_addr)
        .await
        .unwrap()
        .contains_key("pay-group"));
    b.post(
        "/consumer/delete",
        &[("group", "pay-group"), ("confirm", "pay-group")],
    )
    .await;
    assert!(!admin
        .subscription_groups(&cluster.broker_addr)
        .await
        .unwrap()
        .contains_key("pay-group"));
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn english_and_chinese() {
    let (_cluster, _console, mut b) = start().await;
    b.get("/topics").await.expect(">Topics<");
    let page = b.get("/topics?lang=zh").await;
    page.expect("lang=\"zh-CN\"").expect(">主题<");
    assert!(page.set_cookies.iter().any(|c| c.starts_with("lang=zh")));
    b.get("/consumers").await.expect(">消费者<");
    b.get("/consumers?lang=en").await.expect(">Consumers<");
    b.get("/").await.expect(">Cluster<");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_and_escaped() {
    let (_cluster, _console, mut b) = start().await;
    let page = b.get("/topic?topic=%3Cimg%20src%3Dx%3E").await;
    assert_eq!(page.status, 400);
    page.expect_not("<img");
    assert_eq!(b.get("/consumer?group=..%2F..%2Fetc").await.status, 400);
    assert_eq!(b.get("/nope").await.status, 404);
    // A message id names its broker's address: one the name server does
    // not list (10.0.0.1:9876 here) is never dialled.
    let foreign = "0A0000010000269400000000000003E8";
    for path in [
        format!("/message?id={foreign}"),
        format!("/messages?id={foreign}"),
    ] {
        let page = b.get(&path).await;
        assert_eq!(page.status, 400, "{path}");
        page.expect("10.0.0.1:9876, which is no broker of this cluster");
    }
    // Security headers on every page.
    let page = b.get("/topics").await;
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(page.headers["x-frame-options"], "DENY");
    // A body over the limit is refused before it is read.
    let big = "x".repeat(400 * 1024);
    let page = b
        .post("/topic/send", &[("topic", "T"), ("body", &big)])
        .await;
    assert_eq!(page.status, 413);
    // The name server switch takes only configured addresses.
    let page = b.post("/namesrv", &[("addr", "10.0.0.1:9876")]).await;
    assert!(page.flash().unwrap().contains("not one of the configured"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_status_shows_offsets() {
    let (cluster, _console, mut b) = start().await;
    let admin = admin(&cluster).await;
    admin
        .create_topic(
            &cluster.broker_addr,
            &TopicSpec::new("Counted").with_queues(1, 1),
        )
        .await
        .unwrap();
    wait_for("the route", || async {
        admin.topic_route("Counted").await.ok()
    })
    .await;
    b.get("/topic?topic=Counted").await;
    for i in 0..3 {
        b.post(
            "/topic/send",
            &[("topic", "Counted"), ("body", &format!("b{i}"))],
        )
        .await;
    }
    // broker, queue 0, min 0, max 3.
    b.get_until(
        "/topic?topic=Counted",
        "<td class=\"num\">0</td><td class=\"num\">0</td><td class=\"num\">3</td>",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_name_server_keeps_the_switch_at_hand() {
    let cluster = Cluster::start().await;
    // Port 9 (discard) on loopback: nothing listens there.
    let config =
        mq_console::ConsoleConfig::new(vec![cluster.namesrv.addr.clone(), "127.0.0.1:9".into()])
            .with_users(common::users());
    let console = Console::start(config).await;
    let mut b = console.browser();
    b.login(ADMIN.0, ADMIN.1).await;
    let mut other = console.browser();
    other.login(VIEWER.0, VIEWER.1).await;
    let page = b.post("/namesrv", &[("addr", "127.0.0.1:9")]).await;
    assert_eq!(page.status, 502, "{}", page.body);
    page.expect("action=\"/namesrv\"")
        .expect("class=\"flash error\"");
    // The choice is the session's: another operator's pages stay put.
    other.get("/").await.expect("broker-a");
    let page = b.post("/namesrv", &[("addr", &cluster.namesrv.addr)]).await;
    assert_eq!(page.status, 200);
    page.expect("broker-a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reads_the_dashboards_files() {
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("application.properties"),
        format!(
            "server.port=0\nrocketmq.config.namesrvAddr={}\n",
            cluster.namesrv.addr
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_mq-console");
    let conf = dir.path().join("application.properties");
    // Log-in required by default and no users.properties: it refuses to start.
    let out = tokio::process::Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loginRequired is on"), "{stderr}");

    std::fs::write(
        dir.path().join("users.properties"),
        "admin=pw-from-file,1\n",
    )
    .unwrap();
    let mut child = tokio::process::Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = mq_testkit::bounded("the console's banner", lines.next_line())
        .await
        .unwrap()
        .unwrap();
    let url = line
        .strip_prefix("mq-console on ")
        .expect("the banner names the URL")
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "loopback by default: {url}"
    );
    let mut b = common::Browser::new(&url);
    b.login("admin", "pw-from-file").await;
    b.get("/").await.expect("broker-a");
    child.kill().await.unwrap();
}

const PLAIN_ACL: &str = "\
globalWhiteRemoteAddresses: []
accounts:
  - accessKey: console-operator
    secretKey: console-operator-secret
    admin: true
";

/// With ACL on, the console signs with the admin account of its
/// configuration (rocketmq.config.accessKey / secretKey); without it the
/// broker's refusal is what the operator sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_acl_on_the_console_signs_with_its_account() {
    let dir = tempfile::tempdir().unwrap();
    let acl_file = dir.path().join("plain_acl.yml");
    std::fs::write(&acl_file, PLAIN_ACL).unwrap();
    let acl_file = acl_file.display().to_string();
    let cluster = Cluster::start_with(move |broker, _| {
        broker.acl_enable = true;
        broker.acl_file_path = acl_file;
    })
    .await;

    let unsigned = Console::start(common::config(&cluster.namesrv.addr)).await;
    let mut b = unsigned.browser();
    b.login(ADMIN.0, ADMIN.1).await;
    b.get("/topics").await;
    let page = b
        .post("/topics", &[("topic", "AclTopic"), ("broker", "broker-a")])
        .await;
    let flash = page.flash().unwrap();
    assert!(flash.contains("NO_PERMISSION"), "{flash}");

    let (config, _) = mq_console::ConsoleConfig::from_properties(
        &format!(
            "rocketmq.config.namesrvAddr={}\nrocketmq.config.accessKey=console-operator\nrocketmq.config.secretKey=console-operator-secret\n",
            cluster.namesrv.addr
        ),
        "test",
        dir.path(),
    )
    .unwrap();
    let signed = Console::start(config.with_users(common::users())).await;
    let mut b = signed.browser();
    b.login(ADMIN.0, ADMIN.1).await;
    b.get("/topics").await;
    let page = b
        .post("/topics", &[("topic", "AclTopic"), ("broker", "broker-a")])
        .await;
    assert!(
        page.flash().unwrap().contains("AclTopic"),
        "{:?}",
        page.flash()
    );
    let page = b
        .post(
            "/topic/send",
            &[
                ("topic", "AclTopic"),
                ("key", "acl-key"),
                ("body", "signed"),
            ],
        )
        .await;
    assert!(
        page.flash().unwrap().starts_with("Sent: "),
        "{:?}",
        page.flash()
    );
    b.get_until("/messages?topic=AclTopic&key=acl-key", "acl-key</td>")
        .await;
    b.get("/consumers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_charts_messages_per_broker_and_topic() {
    let (cluster, _console, mut b) = start().await;
    cluster.create_topic("Hot", 1).await;
    cluster.create_topic("Cold", 1).await;
    b.get("/topic?topic=Hot").await;
    for i in 0..3 {
        b.post(
            "/topic/send",
            &[("topic", "Hot"), ("body", &format!("h{i}"))],
        )
        .await;
    }
    let page = b.get("/dashboard").await;
    page.expect("<svg").expect("http-equiv=\"refresh\"");
    // broker-a took 3 in the last hour and day; Hot is the top topic with
    // 3, Cold (nothing sent) has no bar.
    assert!(
        page.body.matches(">broker-a</text>").count() >= 4,
        "{}",
        page.body
    );
    assert!(page.body.matches(">3</text>").count() >= 4, "{}", page.body);
    page.expect(">Hot</text>").expect_not(">Cold</text>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_time_series_from_its_samples() {
    let cluster = mq_testkit::Cluster::start().await;
    let mut console = Console::start(
        common::config(&cluster.namesrv.addr).with_sample_interval(Duration::from_millis(200)),
    )
    .await;
    let mut b = console.browser();
    b.login(ADMIN.0, ADMIN.1).await;
    // Until two samples were taken the page says so.
    let page = b.get("/dashboard").await;
    page.expect("http-equiv=\"refresh\"")
        .expect("href=\"/dashboard?range=day\"");
    let deadline = tokio::time::Instant::now() + mq_testkit::WAIT;
    while b.get("/dashboard").await.body.contains("No samples yet") {
        assert!(tokio::time::Instant::now() < deadline, "never two samples");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.create_topic("Charted", 1).await;
    b.get("/topic?topic=Charted").await;
    for i in 0..3 {
        b.post(
            "/topic/send",
            &[("topic", "Charted"), ("body", &format!("c{i}"))],
        )
        .await;
    }
    // The next samples count the three messages in, for the topic and
    // the broker, in the hour and in the day.
    let page = b
        .get_until(
            "/dashboard",
            "<strong>Charted</strong> · <span class=\"legend-in\">in 3</span>",
        )
        .await;
    page.expect("<polyline").expect("<strong>broker-a</strong>");
    let page = b.get("/dashboard?range=day").await;
    page.expect("<strong>Charted</strong> · <span class=\"legend-in\">in 3</span>")
        .expect("class=\"active\" href=\"/dashboard?range=day\"");
    let page = b.get("/dashboard?range=hour&lang=zh").await;
    page.expect("各 Broker 的生产与消费");
    console.stop().await;
}

/// Total messages of `topic` on the broker (max - min over its queues).
async fn stored(admin: &AdminClient, cluster: &Cluster, topic: &str) -> i64 {
    admin
        .topic_stats(&cluster.broker_addr, topic)
        .await
        .map(|s| {
            s.offset_table
                .values()
                .map(|o| o.max_offset - o.min_offset)
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_browse_export_and_resend() {
    let (cluster, _console, mut b) = start().await;
    cluster.create_topic("Fragile", 1).await;
    let admin = admin(&cluster).await;
    // A consumer that never succeeds, sending each message to the DLQ
    // after one retry.
    let mut config = PushConsumerConfig::new("dlq-group");
    config.max_reconsume_times = 1;
    let consumer = PushConsumer::new(
        config,
        ClientConfig::new(&cluster.namesrv.addr).with_instance_name(instance("failing")),
    );
    consumer.subscribe("Fragile", "*").unwrap();
    consumer
        .start(Listener::concurrent(|_m: Vec<MessageExt>| async {
            ConsumeStatus::ReconsumeLater
        }))
        .await
        .unwrap();
    let producer = mq_client::Producer::start(
        mq_client::ProducerConfig::new("fragile-producer"),
        ClientConfig::new(&cluster.namesrv.addr).with_instance_name(instance("producer")),
    )
    .await
    .unwrap();
    for i in 0..2 {
        let msg = mq_client::Message::new("Fragile", format!("=cmd|{i}"))
            .with_tags("T")
            .with_keys([format!("dead-{i}")]);
        producer.send(msg).await.unwrap();
    }
    wait_for("both messages in the DLQ", || async {
        (stored(&admin, &cluster, "%DLQ%dlq-group").await == 2).then_some(())
    })
    .await;
    consumer.shutdown().await;

    b.get("/dlq")
        .await
        .expect("dlq-group")
        .expect("<td class=\"num\">2</td>");
    let page = b.get("/dlq?group=dlq-group").await;
    page.expect("dead-0")
        .expect("dead-1")
        .expect(">Fragile</a>")
        .expect("=cmd|0");
    let ids: Vec<String> = page
        .body
        .match_indices("name=\"id\" value=\"")
        .map(|(i, _)| page.body[i + 17..i + 17 + 32].to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{}", page.body);
    // A group that never dead-lettered anything has no DLQ topic: an empty
    // list, not the name server's "no route" as an error.
    let empty = b.get("/dlq?group=never-failed").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    empty.expect("Dead letters: 0");
    let empty = b.get("/dlq/export?group=never-failed&format=json").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert_eq!(empty.body.trim(), "[]");

    // Export: CSV with formulas defused, JSON with the original topic.
    let csv = b.get("/dlq/export?group=dlq-group&format=csv").await;
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    assert!(csv.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("dlq-dlq-group.csv"));
    assert_eq!(csv.body.lines().count(), 3, "{}", csv.body);
    assert!(csv.body.contains("\"'=cmd|0\""), "{}", csv.body);
    let json = b.get("/dlq/export?group=dlq-group&format=json").await;
    let rows: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["originalTopic"], "Fragile");
    assert_eq!(
        b.get("/dlq/export?group=dlq-group&format=xml").await.status,
        400
    );

    // Resend one to Fragile: one more message there.
    let before = stored(&admin, &cluster, "Fragile").await;
    b.get("/dlq?group=dlq-group").await;
    let page = b
        .post("/dlq/resend", &[("group", "dlq-group"), ("id", &ids[0])])
        .await;
    assert_eq!(page.flash().as_deref(), Some("Resent: 1"));
    wait_for("the resent message in Fragile", || async {
        (stored(&admin, &cluster, "Fragile").await == before + 1).then_some(())
    })
    .await;
    // Only dead letters of that group are resent.
    let other = admin
        .query_message_by_key("Fragile", "dead-0", 8, 0, i64::MAX)
        .await
        .unwrap();
    let page = b
        .post(
            "/dlq/resend",
            &[("group", "dlq-group"), ("id", &other[0].offset_msg_id())],
        )
        .await;
    assert!(
        page.flash().unwrap().contains("is not a dead letter"),
        "{:?}",
        page.flash()
    );
    // The message's page says what became of it for the group.
    b.get(&format!("/message?id={}", other[0].offset_msg_id()))
        .await
        .expect("dlq-group")
        .expect("<span class=\"badge bad\">Dead letter</span>");
    let page = b.post("/dlq/resend", &[("group", "dlq-group")]).await;
    assert!(page.flash().unwrap().contains("choose 1 to 100"));
    producer.shutdown().await;
}

/// A producer's local transactions that are never decided.
struct Undecided;

#[mq_client::async_trait]
impl mq_client::TransactionChecker for Undecided {
    async fn check(&self, _msg: &MessageExt) -> mq_client::LocalTransactionState {
        mq_client::LocalTransactionState::Unknown
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_half_messages_per_producer_group() {
    let (cluster, _console, mut b) = start().await;
    cluster.create_topic("TxTopic", 1).await;
    b.get("/transactions")
        .await
        .expect("No half message is pending.");
    let producer = mq_client::TransactionProducer::start(
        mq_client::ProducerConfig::new("tx-producer"),
        ClientConfig::new(&cluster.namesrv.addr).with_instance_name(instance("tx")),
        std::sync::Arc::new(Undecided),
    )
    .await
    .unwrap();
    let (_, pending) = producer
        .send_half(mq_client::Message::new("TxTopic", "half").with_keys(["tx-pending"]))
        .await
        .unwrap();
    producer
        .send_in_transaction(
            mq_client::Message::new("TxTopic", "done").with_keys(["tx-committed"]),
            |_| async { mq_client::LocalTransactionState::Commit },
        )
        .await
        .unwrap();
    // END_TRANSACTION is one-way: its op record lands a little later.
    let page = transactions_without(&mut b, "tx-committed").await;
    page.expect("tx-producer")
        .expect("tx-pending")
        .expect(">TxTopic</a>");
    producer
        .end_transaction(&pending, mq_client::LocalTransactionState::Rollback)
        .await
        .unwrap();
    transactions_without(&mut b, "tx-pending").await;
    producer.producer().shutdown().await;
}

/// A producer that never decides and counts the check-backs it gets.
struct CountingUndecided(std::sync::Arc<AtomicU64>);

#[mq_client::async_trait]
impl mq_client::TransactionChecker for CountingUndecided {
    async fn check(&self, _msg: &MessageExt) -> mq_client::LocalTransactionState {
        self.0.fetch_add(1, Ordering::SeqCst);
        mq_client::LocalTransactionState::Unknown
    }
}

/// The check-back count the transactions page shows in the row of `key`.
fn shown_check_times(page: &common::Page, key: &str) -> Option<String> {
    let cell = format!("<td>{key}</td>");
    let row = page.body.split("<tr>").find(|r| r.contains(&cell))?;
    let cell = row.split("<td class=\"num checks\">").nth(1)?;
    Some(cell.split('<').next()?.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_message_shows_how_often_it_was_checked_back() {
    let cluster = Cluster::start_with(|b, _| {
        b.transaction_time_out = 1;
        b.transaction_check_interval = 20;
        b.transaction_check_max = 1_000_000;
    })
    .await;
    let console = Console::start(common::config(&cluster.namesrv.addr)).await;
    let mut b = console.browser();
    b.login(ADMIN.0, ADMIN.1).await;
    cluster.create_topic("TxChecked", 1).await;
    let checks = std::sync::Arc::new(AtomicU64::new(0));
    let producer = mq_client::TransactionProducer::start(
        mq_client::ProducerConfig::new("tx-checked-producer"),
        ClientConfig::new(&cluster.namesrv.addr).with_instance_name(instance("tx-checked")),
        std::sync::Arc::new(CountingUndecided(checks.clone())),
    )
    .await
    .unwrap();
    producer
        .send_half(mq_client::Message::new("TxChecked", "undecided").with_keys(["tx-checked"]))
        .await
        .unwrap();
    const N: u64 = 3;
    wait_for("the producer to be checked back 3 times", || async {
        (checks.load(Ordering::SeqCst) >= N).then_some(())
    })
    .await;
    // The broker counts a check before it sends it, so it has counted at
    // least the N the producer got, and every check it counted arrives.
    let page = b.get("/transactions").await;
    page.expect("tx-checked-producer");
    let shown = shown_check_times(&page, "tx-checked")
        .unwrap_or_else(|| panic!("no check count for tx-checked:\n{}", page.body));
    let shown: u64 = shown
        .parse()
        .unwrap_or_else(|_| panic!("check count {shown:?} is not a number"));
    assert!(
        shown >= N,
        "the page shows {shown} check-backs, the producer got {N}"
    );
    wait_for(
        "the producer to get every check the page counted",
        || async { (checks.load(Ordering::SeqCst) >= shown).then_some(()) },
    )
    .await;
    producer.producer().shutdown().await;
}

/// The transactions page once it no longer shows `key`.
async fn transactions_without(b: &mut common::Browser, key: &str) -> common::Page {
    let deadline = tokio::time::Instant::now() + mq_testkit::WAIT;
    loop {
        let page = b.get("/transactions").await;
        if !page.body.contains(key) {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} still pending:\n{}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_by_time_range_are_paged() {
    let (cluster, _console, mut b) = start().await;
    cluster.create_topic("Timed", 2).await;
    let before = mq_client::time::now_millis() - 1;
    let producer = mq_client::Producer::start(
        mq_client::ProducerConfig::new("timed-producer"),
        ClientConfig::new(&cluster.namesrv.addr).with_instance_name(instance("producer")),
    )
    .await
    .unwrap();
    for i in 0..55 {
        producer
            .send(mq_client::Message::new("Timed", format!("t{i}")))
            .await
            .unwrap();
    }
    let rows = |page: &common::Page| page.body.matches("href=\"/message?id=").count();
    // The end is exclusive: one millisecond after the last store (a page
    // asked for "now" in the same millisecond would leave that one out).
    let after = mq_client::time::now_millis() + 1;
    let path = format!("/messages?topic=Timed&begin={before}&end={after}");
    // Consume queues are written just after the sends are acknowledged.
    let first = b.get_until(&path, "1–50 / 55").await;
    assert_eq!(rows(&first), 50, "{}", first.body);
    first.expect("1–50 / 55").expect("&amp;skip=50");
    let second = b.get(&format!("{path}&skip=50")).await;
    assert_eq!(rows(&second), 5);
    second.expect("51–55 / 55");
    // Before the first message: nothing.
    let early = b
        .get(&format!("/messages?topic=Timed&begin=1000&end={before}"))
        .await;
    assert_eq!(rows(&early), 0);
    early.expect("No message found.");
    assert_eq!(
        b.get("/messages?topic=Timed&begin=soon&end=now")
            .await
            .status,
        400
    );
    assert_eq!(
        b.get(&format!("/messages?topic=Timed&begin=now&end={before}"))
            .await
            .status,
        400
    );
    producer.shutdown().await;
}
