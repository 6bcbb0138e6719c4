//! The third-party `rocketmq-client-rust` crate against our broker with
//! `aclEnable=true`, signing with its own `AclClientRPCHook` (Java's
//! `AclClientRPCHook` ported): with the right keys its producer sends and
//! its push consumer receives; with a wrong secret the broker answers
//! NO_PERMISSION.

#[allow(unused_imports)]
mod common;

use std::sync::{Arc, Mutex};

use mq_client::{AdminClient, Credentials, TopicSpec};
use rocketmq_client_rust::{
    AclClientRPCHook, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, DefaultMQProducer,
    DefaultMQPushConsumer, MQPushConsumer, SendStatus, SessionCredentials,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;

use common::{
    bounded, client_config, client_runtime, explain, message, unique, wait_for, Cluster, Expect,
};

/// RocketMQ's NO_PERMISSION.
const NO_PERMISSION: i32 = 16;

const SECRET: &str = "12345678";

/// An operator (admin) and a user that may publish and subscribe to every
/// topic and group.
const PLAIN_ACL: &str = "\
globalWhiteRemoteAddresses: []
accounts:
  - accessKey: interop-operator
    secretKey: operator-secret
    admin: true
  - accessKey: interop-user
    secretKey: 12345678
    admin: false
    defaultTopicPerm: PUB|SUB
    defaultGroupPerm: PUB|SUB
";

/// The third-party client's ACL hook for the user with `secret`.
fn hook(secret: &str) -> Arc<AclClientRPCHook> {
    Arc::new(AclClientRPCHook::new(SessionCredentials::with_keys(
        "interop-user",
        secret,
    )))
}

/// Our name server and a broker with ACL on, the accounts file in `dir`.
async fn start_acl_cluster(dir: &std::path::Path) -> Cluster {
    let file = dir.join("plain_acl.yml");
    std::fs::write(&file, PLAIN_ACL).unwrap();
    let file = file.display().to_string();
    Cluster::start_with(move |broker, _| {
        broker.broker_name = unique("interop-acl-broker");
        broker.acl_enable = true;
        broker.acl_file_path = file;
    })
    .await
}

/// A started third-party producer signing with `secret`.
async fn producer(cluster: &Cluster, scope: &'static str, secret: &str) -> DefaultMQProducer {
    let mut producer = DefaultMQProducer::builder(client_runtime(scope))
        .client_config(client_config(&cluster.namesrv.addr, scope))
        .producer_group(unique("interop-acl-producer"))
        .name_server_addr(cluster.namesrv.addr.clone())
        .send_msg_timeout(10_000)
        .rpc_hook(hook(secret))
        .build();
    bounded("third-party producer start", producer.start())
        .await
        .expect("third-party producer starts");
    producer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_third_party_client_works_and_a_wrong_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start_acl_cluster(dir.path()).await;
    let topic = unique("InteropAcl");
    // The topic is created by our admin client with the operator's keys.
    let admin = AdminClient::start(
        mq_client::ClientConfig::new(cluster.namesrv.addr.clone())
            .with_instance_name(unique("interop-acl-admin"))
            .with_credentials(Credentials::new("interop-operator", "operator-secret")),
    )
    .await
    .unwrap();
    admin
        .create_topic(
            &cluster.broker_addr,
            &TopicSpec::new(&topic).with_queues(2, 2),
        )
        .await
        .unwrap();
    admin.shutdown().await;

    let inbox: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&inbox);
    let mut consumer = DefaultMQPushConsumer::builder(client_runtime("acl-push"))
        .client_config(client_config(&cluster.namesrv.addr, "acl-push"))
        .name_server_addr(cluster.namesrv.addr.clone())
        .consumer_group(unique("interop-acl-consumer"))
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .rpc_hook(Some(hook(SECRET)))
        .build();
    consumer
        .subscribe(topic.clone(), "*".to_owned())
        .await
        .or_explain("subscribe");
    consumer.register_message_listener_concurrently(
        move |msgs: &[&MessageExt], _context: &ConsumeConcurrentlyContext| {
            let mut sink = sink.lock().unwrap();
            for msg in msgs {
                sink.push(
                    String::from_utf8_lossy(msg.body().as_deref().unwrap_or_default()).into_owned(),
                );
            }
            Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
        },
    );
    bounded("third-party push consumer start", consumer.start())
        .await
        .or_explain("third-party push consumer starts");

    let mut signed = producer(&cluster, "acl-signed", SECRET).await;
    let result = bounded(
        "signed third-party send",
        signed.send_with_timeout(message(&topic, "TagAcl", "signed by a stranger"), 10_000),
    )
    .await
    .or_explain("the signed send succeeds")
    .expect("a sync send returns a SendResult");
    assert_eq!(result.send_status, SendStatus::SendOk, "{result:?}");
    wait_for(
        "the signed message consumed by the signed push consumer",
        || async {
            inbox
                .lock()
                .unwrap()
                .iter()
                .any(|b| b == "signed by a stranger")
                .then_some(())
        },
    )
    .await;
    signed.shutdown().await;

    let mut wrong = producer(&cluster, "acl-wrong", "not-the-secret").await;
    let error = bounded(
        "third-party send with a wrong secret",
        wrong.send_with_timeout(message(&topic, "TagAcl", "refused"), 10_000),
    )
    .await
    .expect_err("a wrong secret is refused");
    assert_eq!(
        error.broker_response_code(),
        Some(NO_PERMISSION),
        "{}",
        explain(&error)
    );
    wrong.shutdown().await;

    consumer.shutdown().await;
    cluster.stop().await;
}
