//! ACL on both sides of the proxy: a broker with `aclEnable=true` and the
//! proxy with `enableACL` read the same `plain_acl.yml`. The Apache Rust
//! SDK signs with an account's keys; the proxy checks the signature and
//! the account's permissions, and signs its own 4.x requests with its
//! account from the proxy configuration.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{code_of, Env, Mode};
use mq_client::{AdminClient, ClientConfig, Credentials, TopicSpec};
use mq_proxy::config::Secret;
use mq_testkit::{wait_for, wait_until, Cluster, WAIT};
use rocketmq::conf::{ClientOption, ProducerOption, SimpleConsumerOption};
use rocketmq::model::common::{FilterExpression, FilterType};
use rocketmq::model::message::MessageBuilder;
use rocketmq::{Producer, SimpleConsumer};

/// The proxy's admin account, a user that may publish and subscribe to
/// `Acl5` as `cg-acl5` and only subscribe to `Acl5Read`, nothing else.
const PLAIN_ACL: &str = "\
globalWhiteRemoteAddresses: []
accounts:
  - accessKey: proxy-admin
    secretKey: proxy-admin-secret
    admin: true
  - accessKey: app-user
    secretKey: app-user-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms:
      - Acl5=PUB|SUB
      - Acl5Read=SUB
    groupPerms:
      - cg-acl5=SUB
";

const ADMIN: (&str, &str) = ("proxy-admin", "proxy-admin-secret");
const USER: (&str, &str) = ("app-user", "app-user-secret");

/// A broker with ACL on and the proxy in front of it with ACL on, both on
/// the accounts file in `dir`; the proxy, in `mode`, signs as
/// `proxy_account`.
async fn start(dir: &Path, proxy_account: Option<(&str, &str)>, mode: Mode) -> Env {
    let file = dir.join("plain_acl.yml");
    std::fs::write(&file, PLAIN_ACL).unwrap();
    let path = file.display().to_string();
    let broker_path = path.clone();
    let cluster = Cluster::start_with(move |broker, _| {
        broker.acl_enable = true;
        broker.acl_file_path = broker_path;
    })
    .await;
    let env = Env::start_on(cluster, mode, |config| {
        config.enable_acl = true;
        config.acl_file_path = path;
        config.access_key = proxy_account.map(|(ak, _)| ak.to_owned());
        config.secret_key = proxy_account.map(|(_, sk)| Secret(sk.to_owned()));
    })
    .await;
    for topic in ["Acl5", "Acl5Read"] {
        create_topic(&env, topic).await;
    }
    env
}

/// The operator creates `topic` (signed: the broker checks it) and waits
/// for its route.
async fn create_topic(env: &Env, topic: &str) {
    let admin = AdminClient::start(
        ClientConfig::new(env.cluster.namesrv.addr.clone())
            .with_instance_name(format!("acl-admin-{}", env.proxy_addr.port()))
            .with_credentials(Credentials::new(ADMIN.0, ADMIN.1)),
    )
    .await
    .unwrap();
    admin
        .create_topic(
            &env.cluster.broker_addr,
            &TopicSpec::new(topic).with_queues(1, 1),
        )
        .await
        .unwrap();
    wait_until(&format!("the route of {topic}"), WAIT, || async {
        admin.topic_route(topic).await.is_ok()
    })
    .await;
    admin.shutdown().await;
}

fn client_option(env: &Env, account: Option<(&str, &str)>) -> ClientOption {
    let mut client = ClientOption::default();
    client.set_access_url(env.access_url());
    client.set_long_polling_timeout(Duration::from_secs(2));
    if let Some((ak, sk)) = account {
        client.set_access_key(ak);
        client.set_secret_key(sk);
    }
    client
}

async fn producer(
    env: &Env,
    topic: &str,
    account: Option<(&str, &str)>,
) -> Result<Producer, rocketmq::error::ClientError> {
    let mut option = ProducerOption::default();
    option.set_topics(vec![topic]);
    let mut producer = Producer::new(option, client_option(env, account)).expect("producer");
    producer.start().await.map(|()| producer)
}

async fn simple_consumer(
    env: &Env,
    group: &str,
    topic: &str,
    account: Option<(&str, &str)>,
) -> Result<SimpleConsumer, rocketmq::error::ClientError> {
    let mut option = SimpleConsumerOption::default();
    option.set_consumer_group(group);
    option.set_topics(vec![topic]);
    let mut consumer = SimpleConsumer::new(option, client_option(env, account)).expect("consumer");
    consumer.start().await.map(|()| consumer)
}

fn message(topic: &str, body: &str) -> impl rocketmq::model::message::Message {
    MessageBuilder::builder()
        .set_topic(topic)
        .set_body(body.as_bytes().to_vec())
        .set_tag("TagA")
        .build()
        .unwrap()
}

fn message_of(error: &rocketmq::error::ClientError) -> String {
    error
        .context()
        .iter()
        .find(|(k, _)| *k == "message")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_producer_and_consumer_work_through_a_signing_proxy() {
    signed_producer_and_consumer(Mode::Cluster).await;
}

/// In the broker's process the proxy's sends skip the broker's check,
/// not the proxy's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_producer_and_consumer_work_through_a_local_proxy() {
    signed_producer_and_consumer(Mode::Local).await;
}

async fn signed_producer_and_consumer(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = start(dir.path(), Some(ADMIN), mode).await;
    let producer = producer(&env, "Acl5", Some(USER))
        .await
        .expect("the user's producer starts");
    let receipt = producer
        .send(message("Acl5", "signed"))
        .await
        .expect("the user may publish to Acl5");
    let consumer = simple_consumer(&env, "cg-acl5", "Acl5", Some(USER))
        .await
        .expect("the user's consumer starts");
    let all = FilterExpression::new(FilterType::Tag, "*");
    let receive = |invisible: Duration| {
        let (consumer, all) = (&consumer, &all);
        async move {
            wait_for("the signed message", || async {
                consumer
                    .receive_with("Acl5", all, 1, invisible)
                    .await
                    .expect("the user may receive as cg-acl5")
                    .into_iter()
                    .next()
            })
            .await
        }
    };
    let first = receive(Duration::from_secs(1)).await;
    assert_eq!(first.body(), b"signed");
    assert_eq!(first.message_id(), receipt.message_id());
    // Not acknowledged: the proxy revives it into %RETRY%cg-acl5, a send
    // the broker's ACL checks against the proxy's own account.
    let got = receive(Duration::from_secs(30)).await;
    assert_eq!(got.message_id(), receipt.message_id());
    assert_eq!(got.delivery_attempt(), 2);
    consumer.ack(&got).await.expect("the user may acknowledge");
    producer.shutdown().await.unwrap();
    consumer.shutdown().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_or_no_signature_is_unauthorized() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = start(dir.path(), Some(ADMIN), Mode::Cluster).await;
    let wrong = producer(&env, "Acl5", Some(("app-user", "not-the-secret")))
        .await
        .expect_err("a wrong secret is refused");
    assert_eq!(code_of(&wrong), "UNAUTHORIZED", "{wrong}");
    assert!(message_of(&wrong).contains("does not verify"), "{wrong}");

    let unsigned = producer(&env, "Acl5", None)
        .await
        .expect_err("an unsigned client is refused");
    assert_eq!(code_of(&unsigned), "UNAUTHORIZED", "{unsigned}");
    assert!(message_of(&unsigned).contains("not signed"), "{unsigned}");

    let unknown = simple_consumer(&env, "cg-acl5", "Acl5", Some(("nobody-at-all", "x-secret")))
        .await
        .expect_err("an unknown account is refused");
    assert_eq!(code_of(&unknown), "UNAUTHORIZED", "{unknown}");
    assert!(message_of(&unknown).contains("nobody-at-all"), "{unknown}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_without_the_permission_is_forbidden() {
    forbidden_without_permission(Mode::Cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_without_the_permission_is_forbidden_by_a_local_proxy() {
    forbidden_without_permission(Mode::Local).await;
}

async fn forbidden_without_permission(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = start(dir.path(), Some(ADMIN), mode).await;
    // SUB on Acl5Read: the route is readable, a send is not allowed.
    let producer = producer(&env, "Acl5Read", Some(USER))
        .await
        .expect("SUB is enough for the route");
    let refused = producer
        .send(message("Acl5Read", "not allowed"))
        .await
        .expect_err("no PUB on Acl5Read");
    assert_eq!(code_of(&refused), "FORBIDDEN", "{refused}");
    assert!(
        message_of(&refused).contains("no PUB permission on topic Acl5Read"),
        "{refused}"
    );
    // A group the user does not own.
    let consumer = simple_consumer(&env, "cg-other", "Acl5", Some(USER))
        .await
        .expect("the route is readable");
    let all = FilterExpression::new(FilterType::Tag, "*");
    let refused = consumer
        .receive_with("Acl5", &all, 1, Duration::from_secs(30))
        .await
        .expect_err("no SUB on cg-other");
    assert_eq!(code_of(&refused), "FORBIDDEN", "{refused}");
    assert!(message_of(&refused).contains("group cg-other"), "{refused}");
    // A topic the user has no entry for: not even its route.
    let hidden = producer_on_denied_topic(&env).await;
    assert_eq!(code_of(&hidden), "FORBIDDEN", "{hidden}");
    producer.shutdown().await.unwrap();
    // Its termination names the group too: refused as well.
    let refused = consumer.shutdown().await.expect_err("no SUB on cg-other");
    assert_eq!(code_of(&refused), "FORBIDDEN", "{refused}");
    env.stop().await;
}

async fn producer_on_denied_topic(env: &Env) -> rocketmq::error::ClientError {
    create_topic(env, "Acl5Hidden").await;
    producer(env, "Acl5Hidden", Some(USER))
        .await
        .expect_err("DENY by default")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_without_its_own_account_is_refused_by_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = start(dir.path(), None, Mode::Cluster).await;
    let producer = producer(&env, "Acl5", Some(USER))
        .await
        .expect("routes come from the name server, which is open");
    let refused = producer
        .send(message("Acl5", "unsigned at the broker"))
        .await
        .expect_err("the broker refuses the proxy's unsigned send");
    // The broker's NO_PERMISSION, passed on as FORBIDDEN.
    assert_eq!(code_of(&refused), "FORBIDDEN", "{refused}");
    producer.shutdown().await.unwrap();
    env.stop().await;
}
