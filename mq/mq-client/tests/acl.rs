//! The client against a broker with `aclEnable=true`: producers,
//! transactional producers (with a check-back), push consumers and the
//! admin client sign with their configured keys and work; a wrong secret
//! or no keys at all get NO_PERMISSION.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use mq_client::{
    async_trait, AdminClient, ClientConfig, Credentials, LocalTransactionState, Message,
    MessageExt, Producer, ProducerConfig, PushConsumer, TopicSpec, TransactionChecker,
    TransactionProducer,
};

/// RocketMQ's NO_PERMISSION.
const NO_PERMISSION: i32 = 16;

/// An operator (admin) and a user that may publish and subscribe to the two
/// test topics as the two test consumer groups; nothing else.
const PLAIN_ACL: &str = "\
globalWhiteRemoteAddresses: []
accounts:
  - accessKey: acl-operator
    secretKey: operator-secret
    admin: true
  - accessKey: acl-user
    secretKey: 12345678
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms:
      - AclTopic=PUB|SUB
      - AclTx=PUB|SUB
    groupPerms:
      - acl-consumer=SUB
      - acl-tx-consumer=SUB
";

fn operator() -> Credentials {
    Credentials::new("acl-operator", "operator-secret")
}

fn user() -> Credentials {
    Credentials::new("acl-user", "12345678")
}

/// A broker with ACL on, its accounts file in the broker's folder.
async fn start_acl_broker(namesrv: &str, dir: &Path) -> TestBroker {
    let file = dir.join("plain_acl.yml");
    std::fs::write(&file, PLAIN_ACL).unwrap();
    let file = file.display().to_string();
    TestBroker::start_temp("broker-acl", namesrv, move |broker, _| {
        broker.register_name_server_period = 30_000;
        broker.transaction_time_out = 300;
        broker.transaction_check_interval = 200;
        broker.acl_enable = true;
        broker.acl_file_path = file;
    })
    .await
}

fn signed(namesrv: &str, credentials: Option<Credentials>) -> ClientConfig {
    client_config(namesrv).with_credentials(credentials)
}

/// The operator creates `topic` on the broker and waits for its route.
async fn create_topic(namesrv: &str, broker: &str, topic: &str) {
    let admin = AdminClient::start(signed(namesrv, Some(operator())))
        .await
        .unwrap();
    admin
        .create_topic(broker, &TopicSpec::new(topic).with_queues(2, 2))
        .await
        .unwrap();
    wait_until(&format!("the route of {topic}"), LIMIT, || async {
        admin.topic_route(topic).await.is_ok()
    })
    .await;
    admin.shutdown().await;
}

/// A push consumer of `group` on `topic` collecting bodies, signed as the
/// test user.
async fn consumer(namesrv: &str, group: &str, topic: &str) -> (PushConsumer, Seen) {
    collecting(signed(namesrv, Some(user())), group, topic).await
}

async fn send_code(namesrv: &str, credentials: Option<Credentials>) -> Option<i32> {
    let producer = Producer::start(
        ProducerConfig::new("acl-producer"),
        signed(namesrv, credentials),
    )
    .await
    .unwrap();
    let error = producer
        .send(Message::new("AclTopic", "refused"))
        .await
        .expect_err("the broker refuses the send");
    producer.shutdown().await;
    error.response_code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_producer_and_consumer_work_and_bad_keys_are_refused() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_acl_broker(&ns.addr, dir.path()).await;
    create_topic(&ns.addr, &broker.addr, "AclTopic").await;

    let (consumer, seen) = consumer(&ns.addr, "acl-consumer", "AclTopic").await;
    let producer = Producer::start(
        ProducerConfig::new("acl-producer"),
        signed(&ns.addr, Some(user())),
    )
    .await
    .unwrap();
    producer
        .send(Message::new("AclTopic", "signed hello"))
        .await
        .expect("a signed send with the right keys succeeds");
    producer.shutdown().await;
    wait_until("the signed message consumed", LIMIT, || async {
        seen.lock().unwrap().iter().any(|b| b == "signed hello")
    })
    .await;

    let wrong = Credentials::new("acl-user", "not-the-secret");
    assert_eq!(send_code(&ns.addr, Some(wrong)).await, Some(NO_PERMISSION));
    assert_eq!(send_code(&ns.addr, None).await, Some(NO_PERMISSION));

    // Creating a topic needs an admin account: the user is refused.
    let admin = AdminClient::start(signed(&ns.addr, Some(user())))
        .await
        .unwrap();
    let refused = admin
        .create_topic(&broker.addr, &TopicSpec::new("AclOther"))
        .await
        .expect_err("a non-admin account cannot create topics");
    assert_eq!(refused.response_code(), Some(NO_PERMISSION), "{refused}");
    admin.shutdown().await;

    consumer.shutdown().await;
    broker.stop().await;
}

/// Commits every message it is asked about.
struct CommitAll;

#[async_trait]
impl TransactionChecker for CommitAll {
    async fn check(&self, _msg: &MessageExt) -> LocalTransactionState {
        LocalTransactionState::Commit
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_through_a_signed_check_back() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_acl_broker(&ns.addr, dir.path()).await;
    create_topic(&ns.addr, &broker.addr, "AclTx").await;

    let (consumer, seen) = consumer(&ns.addr, "acl-tx-consumer", "AclTx").await;
    let producer = TransactionProducer::start(
        ProducerConfig::new("acl-tx-producer"),
        signed(&ns.addr, Some(user())),
        Arc::new(CommitAll),
    )
    .await
    .unwrap();
    producer
        .send_in_transaction(Message::new("AclTx", "committed at once"), |_| async {
            LocalTransactionState::Commit
        })
        .await
        .unwrap();
    // Unknown: only the check-back's END_TRANSACTION, signed too, commits it.
    producer
        .send_in_transaction(
            Message::new("AclTx", "committed by check-back"),
            |_| async { LocalTransactionState::Unknown },
        )
        .await
        .unwrap();
    wait_until("both committed messages consumed", LIMIT, || async {
        let seen = seen.lock().unwrap();
        ["committed at once", "committed by check-back"]
            .iter()
            .all(|want| seen.iter().any(|b| b == want))
    })
    .await;

    producer.shutdown().await;
    consumer.shutdown().await;
    broker.stop().await;
}
