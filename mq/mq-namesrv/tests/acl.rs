//! The name server's plain ACL (`aclEnable`, beyond RocketMQ 4.x):
//! registrations and admin requests need a signed request from an admin
//! account; route and cluster reads stay open to unsigned clients. Driven
//! frame by frame over the wire.

use std::time::Duration;

use mq_namesrv::{NameServer, NamesrvConfig};
use mq_protocol::acl::sign_request;
use mq_protocol::route::{encode_json, ClusterInfo, RegisterBrokerBody, TopicConfig};
use mq_protocol::{request_code as rc, RemotingCommand, ResponseCode};
use mq_remoting::{ClientConfig, RemotingClient};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const T: Duration = Duration::from_secs(10);

const ACCOUNTS: &str = "\
accounts:
  - accessKey: rocketmq2
    secretKey: admin-secret
    admin: true
  - accessKey: producer1
    secretKey: producer-secret
    defaultTopicPerm: PUB
";
const ADMIN: (&str, &str) = ("rocketmq2", "admin-secret");
const PRODUCER: (&str, &str) = ("producer1", "producer-secret");

struct Server {
    addr: String,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn acl_config(dir: &tempfile::TempDir, accounts: &str) -> NamesrvConfig {
    let file = dir.path().join("plain_acl.yml");
    std::fs::write(&file, accounts).unwrap();
    NamesrvConfig {
        kv_config_path: dir.path().join("kvConfig.json"),
        acl_enable: true,
        acl_file_path: file.display().to_string(),
        ..NamesrvConfig::default()
    }
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let server = NameServer::new(acl_config(&dir, ACCOUNTS)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        server
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await;
    });
    Server {
        addr,
        stop: Some(stop),
        _dir: dir,
    }
}

fn register(broker: &str, topic: &str) -> RemotingCommand {
    let mut body = RegisterBrokerBody::default();
    body.topic_config_serialize_wrapper
        .topic_config_table
        .insert(topic.to_owned(), TopicConfig::new(topic));
    let bytes = encode_json(&body);
    let crc = (crc32fast::hash(&bytes) & 0x7FFF_FFFF) as i32;
    RemotingCommand::request(rc::REGISTER_BROKER)
        .with_field("brokerName", broker)
        .with_field("brokerAddr", "127.0.0.1:10911")
        .with_field("clusterName", "DefaultCluster")
        .with_field("haServerAddr", "127.0.0.1:10912")
        .with_field("brokerId", 0)
        .with_field("compressed", false)
        .with_field("bodyCrc32", crc)
        .with_body(bytes)
}

fn signed(mut request: RemotingCommand, (ak, sk): (&str, &str)) -> RemotingCommand {
    sign_request(&mut request, ak, sk, None);
    request
}

async fn answer(client: &RemotingClient, s: &Server, request: RemotingCommand) -> RemotingCommand {
    client.invoke(&s.addr, request, T).await.unwrap()
}

async fn refused(client: &RemotingClient, s: &Server, request: RemotingCommand, missing: &str) {
    let response = answer(client, s, request).await;
    let remark = response.remark.clone().unwrap_or_default();
    assert_eq!(
        response.response_code(),
        Some(ResponseCode::NO_PERMISSION),
        "{remark}"
    );
    assert!(
        remark.contains(missing),
        "remark {remark:?} should name {missing:?}"
    );
}

async fn code(
    client: &RemotingClient,
    s: &Server,
    request: RemotingCommand,
) -> Option<ResponseCode> {
    answer(client, s, request).await.response_code()
}

async fn brokers(client: &RemotingClient, s: &Server) -> Vec<String> {
    let response = answer(
        client,
        s,
        RemotingCommand::request(rc::GET_BROKER_CLUSTER_INFO),
    )
    .await;
    assert_eq!(response.response_code(), Some(ResponseCode::SUCCESS));
    let info: ClusterInfo = mq_protocol::route::decode_json(&response.body).unwrap();
    info.broker_addr_table.into_keys().collect()
}

fn route(topic: &str) -> RemotingCommand {
    RemotingCommand::request(rc::GET_ROUTEINFO_BY_TOPIC).with_field("topic", topic)
}

#[tokio::test]
async fn registrations_need_an_admin_signature_and_reads_stay_open() {
    let s = start().await;
    let client = RemotingClient::new(ClientConfig::default());

    // A fake broker (unsigned, or signed by a non-admin) never enters a route.
    refused(&client, &s, register("fake", "Stolen"), "not signed").await;
    refused(
        &client,
        &s,
        signed(register("fake", "Stolen"), PRODUCER),
        "admin",
    )
    .await;
    refused(
        &client,
        &s,
        signed(register("fake", "Stolen"), ("rocketmq2", "guessed-secret")),
        "signature",
    )
    .await;
    assert_eq!(
        code(&client, &s, route("Stolen")).await,
        Some(ResponseCode::TOPIC_NOT_EXIST)
    );
    assert!(brokers(&client, &s).await.is_empty());

    // The same connection registers a real broker; routes read unsigned.
    assert_eq!(
        code(&client, &s, signed(register("real", "Orders"), ADMIN)).await,
        Some(ResponseCode::SUCCESS)
    );
    assert_eq!(
        code(&client, &s, route("Orders")).await,
        Some(ResponseCode::SUCCESS)
    );
    assert_eq!(brokers(&client, &s).await, ["real"]);

    // The destructive and configuration requests need an admin account.
    let wipe =
        || RemotingCommand::request(rc::WIPE_WRITE_PERM_OF_BROKER).with_field("brokerName", "real");
    refused(&client, &s, wipe(), "not signed").await;
    refused(&client, &s, signed(wipe(), PRODUCER), "admin").await;
    let delete =
        || RemotingCommand::request(rc::DELETE_TOPIC_IN_NAMESRV).with_field("topic", "Orders");
    refused(&client, &s, signed(delete(), PRODUCER), "admin").await;
    let put_kv = RemotingCommand::request(rc::PUT_KV_CONFIG)
        .with_field("namespace", "ns")
        .with_field("key", "k")
        .with_field("value", "v");
    refused(&client, &s, put_kv, "not signed").await;
    let delete_kv = RemotingCommand::request(rc::DELETE_KV_CONFIG)
        .with_field("namespace", "ns")
        .with_field("key", "k");
    refused(&client, &s, signed(delete_kv, PRODUCER), "admin").await;
    let update = RemotingCommand::request(rc::UPDATE_NAMESRV_CONFIG).with_body("aclEnable=false");
    refused(&client, &s, update, "not signed").await;
    refused(
        &client,
        &s,
        signed(RemotingCommand::request(rc::GET_NAMESRV_CONFIG), PRODUCER),
        "admin",
    )
    .await;
    let unregister = RemotingCommand::request(rc::UNREGISTER_BROKER)
        .with_field("brokerName", "real")
        .with_field("brokerAddr", "127.0.0.1:10911")
        .with_field("clusterName", "DefaultCluster")
        .with_field("brokerId", 0);
    refused(&client, &s, unregister.clone(), "not signed").await;
    assert_eq!(brokers(&client, &s).await, ["real"]);

    // An admin may.
    assert_eq!(
        code(&client, &s, signed(wipe(), ADMIN)).await,
        Some(ResponseCode::SUCCESS)
    );
    assert_eq!(
        code(&client, &s, signed(unregister, ADMIN)).await,
        Some(ResponseCode::SUCCESS)
    );
    assert!(brokers(&client, &s).await.is_empty());
}

#[test]
fn a_malformed_accounts_file_stops_start_up_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = acl_config(
        &dir,
        &ACCOUNTS.replace("defaultTopicPerm: PUB", "defaultTopicPerm: WRITE"),
    );
    let err = match NameServer::new(config) {
        Ok(_) => panic!("a name server with a malformed ACL file must not start"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("plain_acl.yml:7:"), "{err}");
    assert!(err.contains("WRITE"), "{err}");
}
