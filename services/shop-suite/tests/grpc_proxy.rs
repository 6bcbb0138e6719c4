//! The all-in-one shop serves RocketMQ 5.x clients: Apache's Rust SDK
//! sends and receives through the `grpc-proxy` of the banner, signed with
//! an account of the shop's accounts file; the proxy's own (admin) account
//! lends no rights: an unsigned client is refused, and an account may do
//! through the proxy only what it may do at the broker.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{sigint, start};
use mq_acl::AclConfig;
use mq_client::{AdminClient, ClientConfig, Credentials, TopicSpec};
use rocketmq::conf::{ClientOption, ProducerOption, SimpleConsumerOption};
use rocketmq::model::common::{FilterExpression, FilterType};
use rocketmq::model::message::MessageBuilder;
use rocketmq::{Producer, SimpleConsumer};

const TOPIC: &str = "ShopProxyProbe";

fn keys(file: &Path, access_key: &str) -> (String, String) {
    let config = AclConfig::load(file).expect("the accounts file parses");
    let account = &config.accounts[access_key];
    (account.access_key.clone(), account.secret_key.clone())
}

fn client_option(proxy: &str, account: Option<&(String, String)>) -> ClientOption {
    let mut client = ClientOption::default();
    client.set_access_url(proxy);
    client.set_long_polling_timeout(Duration::from_secs(2));
    if let Some((ak, sk)) = account {
        client.set_access_key(ak);
        client.set_secret_key(sk);
    }
    client
}

async fn producer(
    proxy: &str,
    topic: &str,
    account: Option<&(String, String)>,
) -> Result<Producer, rocketmq::error::ClientError> {
    let mut option = ProducerOption::default();
    option.set_topics(vec![topic]);
    let mut producer = Producer::new(option, client_option(proxy, account)).unwrap();
    producer.start().await.map(|()| producer)
}

fn message(topic: &str, body: &str) -> impl rocketmq::model::message::Message {
    MessageBuilder::builder()
        .set_topic(topic)
        .set_body(body.as_bytes().to_vec())
        .set_tag("probe")
        .build()
        .unwrap()
}

fn code_of(error: &rocketmq::error::ClientError) -> String {
    error
        .context()
        .iter()
        .find(|(k, _)| *k == "code")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| format!("no code in {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5x_sdk_sends_and_receives_through_the_shops_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut shop = start(&data);
    let proxy = shop
        .urls
        .get("grpc-proxy")
        .unwrap_or_else(|| panic!("the banner names the gRPC proxy: {:?}", shop.urls))
        .clone();
    let file = Path::new(&shop.urls["accounts"]).to_owned();
    let operator = keys(&file, "shop-operator");

    // A topic of its own, so the shop's consumers see nothing of the probe.
    let admin = AdminClient::start(
        ClientConfig::new(shop.urls["namesrv"].clone())
            .with_instance_name(format!("proxy-probe-{}", std::process::id()))
            .with_credentials(Credentials::new(&operator.0, &operator.1)),
    )
    .await
    .unwrap();
    admin
        .create_topic(
            &shop.urls["broker"],
            &TopicSpec::new(TOPIC).with_queues(1, 1),
        )
        .await
        .unwrap();
    wait_until_true(|| async { admin.topic_route(TOPIC).await.is_ok() }).await;
    admin.shutdown().await;

    let sender = producer(&proxy, TOPIC, Some(&operator))
        .await
        .expect("the operator's 5.x producer starts");
    let receipt = sender
        .send(message(TOPIC, "through the shop's proxy"))
        .await
        .expect("the operator may publish");

    let mut option = SimpleConsumerOption::default();
    option.set_consumer_group("shop-proxy-probe");
    option.set_topics(vec![TOPIC]);
    let mut consumer = SimpleConsumer::new(option, client_option(&proxy, Some(&operator))).unwrap();
    consumer
        .start()
        .await
        .expect("the operator's consumer starts");
    let all = FilterExpression::new(FilterType::Tag, "*");
    let got = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let got = consumer
                .receive_with(TOPIC, &all, 1, Duration::from_secs(30))
                .await
                .expect("receive");
            if let Some(message) = got.into_iter().next() {
                return message;
            }
        }
    })
    .await
    .expect("the probe arrives within 30 s");
    assert_eq!(got.body(), b"through the shop's proxy");
    assert_eq!(got.message_id(), receipt.message_id());
    consumer.ack(&got).await.expect("ack");

    // Unsigned: refused by the proxy, whose own account is an admin's.
    let unsigned = producer(&proxy, TOPIC, None).await.expect_err("refused");
    assert_eq!(code_of(&unsigned), "UNAUTHORIZED", "{unsigned}");
    // shop-log may only subscribe to ORDER_CANCEL: it cannot forge one
    // through the proxy either.
    let log = keys(&file, "shop-log");
    let forger = producer(&proxy, "ORDER_CANCEL", Some(&log))
        .await
        .expect("shop-log may read the route of ORDER_CANCEL");
    let forged = forger
        .send(message("ORDER_CANCEL", "{\"order_id\":\"forged\"}"))
        .await
        .expect_err("shop-log may not publish ORDER_CANCEL");
    assert_eq!(code_of(&forged), "FORBIDDEN", "{forged}");

    sender.shutdown().await.unwrap();
    forger.shutdown().await.unwrap();
    consumer.shutdown().await.unwrap();
    assert!(sigint(&mut shop).success(), "the shop stops cleanly");
}

/// Polls `check` every 100 ms for up to 30 s.
async fn wait_until_true<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the route of {TOPIC} did not appear");
}
