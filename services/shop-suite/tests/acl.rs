//! The all-in-one shop is secure by default: its name server and broker run
//! with ACL on, the accounts file it generates is private and parses, the
//! operator's keys administer the broker, and a plain SEND of ORDER_CANCEL
//! or PAY_SUCCESS by an account other than the event's owner, or unsigned,
//! is refused with NO_PERMISSION.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{sigint, start};
use mq_acl::AclConfig;
use mq_client::{
    AdminClient, ClientConfig, Credentials, Message, Producer, ProducerConfig, TopicSpec,
};

/// RocketMQ's NO_PERMISSION.
const NO_PERMISSION: i32 = 16;

fn keys(file: &Path, access_key: &str) -> Credentials {
    let config = AclConfig::load(file).expect("the accounts file parses");
    let account = &config.accounts[access_key];
    Credentials::new(&account.access_key, &account.secret_key)
}

fn client(namesrv: &str, credentials: Option<Credentials>) -> ClientConfig {
    ClientConfig::new(namesrv)
        .with_instance_name(format!("acl-test-{}", std::process::id()))
        .with_credentials(credentials)
}

/// The response code of a plain SEND of `topic` signed with `credentials`
/// (none: unsigned).
async fn send_code(namesrv: &str, topic: &str, credentials: Option<Credentials>) -> Option<i32> {
    let producer = Producer::start(
        ProducerConfig::new("acl-test-producer"),
        client(namesrv, credentials),
    )
    .await
    .unwrap();
    let error = producer
        .send(Message::new(topic, "{\"order_id\":\"forged\"}"))
        .await
        .expect_err("the broker refuses the send");
    producer.shutdown().await;
    error.response_code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_publishes_each_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut shop = start(&data);
    let file = Path::new(&shop.urls["accounts"]).to_owned();
    assert!(file.starts_with(std::fs::canonicalize(&data).unwrap()));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the accounts file is private");
    let config = AclConfig::load(&file).expect("the accounts file parses");
    assert!(config.accounts["shop-operator"].admin);
    assert!(!config.accounts["shop-log"].admin);
    let namesrv = shop.urls["namesrv"].clone();
    let broker = shop.urls["broker"].clone();

    // The banner's mqadmin line points at the operator's tools.yml.
    let mqadmin = &shop.urls["mqadmin"];
    let home = mqadmin
        .strip_prefix("ROCKETMQ_HOME=")
        .unwrap_or_else(|| panic!("the banner's mqadmin line: {mqadmin}"));
    let tools = std::fs::read_to_string(Path::new(home).join("conf/tools.yml")).unwrap();
    let operator = Credentials::from_tools_yml(&tools, "tools.yml")
        .unwrap()
        .expect("tools.yml names the operator's keys");
    assert_eq!(operator, keys(&file, "shop-operator"));

    let log = keys(&file, "shop-log");
    let points = keys(&file, "shop-points");
    let order = keys(&file, "shop-order");
    for (topic, who) in [
        ("ORDER_CANCEL", Some(log.clone())),
        ("ORDER_CANCEL", Some(points.clone())),
        ("ORDER_CANCEL", None),
        ("PAY_SUCCESS", Some(points)),
        ("PAY_SUCCESS", Some(log)),
        ("PAY_SUCCESS", Some(order)),
        ("PAY_SUCCESS", None),
    ] {
        let by = who.as_ref().map(|c| c.access_key.clone());
        assert_eq!(
            send_code(&namesrv, topic, who).await,
            Some(NO_PERMISSION),
            "a SEND of {topic} by {by:?} is refused"
        );
    }

    // The operator administers the broker; a service account may not.
    let admin = AdminClient::start(client(&namesrv, Some(operator)))
        .await
        .unwrap();
    admin
        .create_topic(&broker, &TopicSpec::new("AclProbe"))
        .await
        .expect("the operator creates a topic");
    admin.shutdown().await;
    let admin = AdminClient::start(client(&namesrv, Some(keys(&file, "shop-pay"))))
        .await
        .unwrap();
    let refused = admin
        .create_topic(&broker, &TopicSpec::new("AclProbe2"))
        .await
        .expect_err("a service account cannot create topics");
    assert_eq!(refused.response_code(), Some(NO_PERMISSION), "{refused}");
    admin.shutdown().await;

    assert!(sigint(&mut shop).success());
}
