//! The name server in-process on port 0, driven over the wire.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mq_namesrv::{ManualClock, NameServer, NamesrvConfig};
use mq_protocol::route::{
    decode_json, encode_json, perm, ClusterInfo, DataVersion, KvTable, RegisterBrokerBody,
    TopicConfig, TopicList, TopicRouteData,
};
use mq_protocol::{
    request_code as rc, RemotingCommand, ResponseCode, SerializeType, DEFAULT_MAX_FRAME_LEN,
};
use mq_remoting::{ClientConfig, Connection, RemotingClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const T: Duration = Duration::from_secs(10);
const START: u64 = 1_700_000_000_000;

struct TestNamesrv {
    addr: SocketAddr,
    server: NameServer,
    clock: Arc<ManualClock>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestNamesrv {
    async fn start(config: NamesrvConfig) -> Self {
        let clock = Arc::new(ManualClock::new(START));
        let server = NameServer::with_clock(config, clock.clone()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = {
            let server = server.clone();
            tokio::spawn(async move {
                server
                    .serve(listener, async move {
                        let _ = stopped.await;
                    })
                    .await;
            })
        };
        TestNamesrv {
            addr,
            server,
            clock,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap();
    }

    fn addr(&self) -> String {
        self.addr.to_string()
    }
}

fn test_config(dir: &tempfile::TempDir) -> NamesrvConfig {
    NamesrvConfig {
        kv_config_path: dir.path().join("kvConfig.json"),
        ..NamesrvConfig::default()
    }
}

async fn call(
    client: &RemotingClient,
    ns: &TestNamesrv,
    request: RemotingCommand,
) -> RemotingCommand {
    client.invoke(&ns.addr(), request, T).await.unwrap()
}

/// Sends `request` and decodes the JSON body of the answer.
async fn call_json<T: serde::de::DeserializeOwned>(
    client: &RemotingClient,
    ns: &TestNamesrv,
    request: RemotingCommand,
) -> T {
    decode_json(&call(client, ns, request).await.body).unwrap()
}

fn register_request(
    cluster: &str,
    name: &str,
    id: i64,
    addr: &str,
    topics: &[(&str, i32)],
    counter: i64,
) -> RemotingCommand {
    let mut body = RegisterBrokerBody::default();
    for (topic, queues) in topics {
        let mut config = TopicConfig::new(*topic);
        config.read_queue_nums = *queues;
        config.write_queue_nums = *queues;
        body.topic_config_serialize_wrapper
            .topic_config_table
            .insert((*topic).to_owned(), config);
    }
    body.topic_config_serialize_wrapper.data_version = DataVersion {
        timestamp: 1,
        counter,
    };
    let bytes = encode_json(&body);
    let crc = (crc32(&bytes) & 0x7FFF_FFFF) as i32;
    RemotingCommand::request(rc::REGISTER_BROKER)
        .with_field("brokerName", name)
        .with_field("brokerAddr", addr)
        .with_field("clusterName", cluster)
        .with_field("haServerAddr", format!("{addr}-ha"))
        .with_field("brokerId", id)
        .with_field("compressed", false)
        .with_field("bodyCrc32", crc)
        .with_body(bytes)
}

/// Table-driven CRC32 (IEEE), so the test does not share the server's code.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

async fn get_route(
    client: &RemotingClient,
    ns: &TestNamesrv,
    topic: &str,
) -> Result<TopicRouteData, RemotingCommand> {
    let response = call(
        client,
        ns,
        RemotingCommand::request(rc::GET_ROUTEINFO_BY_TOPIC).with_field("topic", topic),
    )
    .await;
    if response.code == 0 {
        Ok(decode_json(&response.body).unwrap())
    } else {
        Err(response)
    }
}

fn client() -> RemotingClient {
    RemotingClient::new(ClientConfig::default())
}

/// broker-a (master a0 + slave a1) and broker-b (master b0) in one cluster,
/// each registered over a connection of its own, as real brokers do. The
/// returned clients (a0, b0, a1) keep those connections open.
async fn register_cluster(ns: &TestNamesrv) -> Vec<RemotingClient> {
    let brokers = vec![client(), client(), client()];
    for (client, request) in brokers.iter().zip([
        register_request(
            "DefaultCluster",
            "broker-a",
            0,
            "10.0.0.1:10911",
            &[("TopicTest", 4)],
            1,
        ),
        register_request(
            "DefaultCluster",
            "broker-b",
            0,
            "10.0.0.2:10911",
            &[("TopicTest", 8), ("OnlyB", 2)],
            1,
        ),
    ]) {
        let response = call(client, ns, request).await;
        assert_eq!(response.code, 0, "{:?}", response.remark);
        assert_eq!(response.field("masterAddr"), None);
    }
    let slave = call(
        &brokers[2],
        ns,
        register_request(
            "DefaultCluster",
            "broker-a",
            1,
            "10.0.0.1:10921",
            &[("TopicTest", 4)],
            1,
        ),
    )
    .await;
    assert_eq!(slave.code, 0);
    assert_eq!(slave.field("masterAddr"), Some("10.0.0.1:10911"));
    assert_eq!(slave.field("haServerAddr"), Some("10.0.0.1:10911-ha"));
    brokers
}

#[tokio::test]
async fn two_broker_groups_and_a_slave_make_one_route() {
    let dir = tempfile::tempdir().unwrap();
    let ns = TestNamesrv::start(test_config(&dir)).await;
    let client = client();
    let _brokers = register_cluster(&ns).await;

    let route = get_route(&client, &ns, "TopicTest").await.unwrap();
    let queues: BTreeMap<_, _> = route
        .queue_datas
        .iter()
        .map(|q| {
            (
                q.broker_name.as_str(),
                (q.read_queue_nums, q.write_queue_nums, q.perm),
            )
        })
        .collect();
    assert_eq!(
        queues,
        BTreeMap::from([("broker-a", (4, 4, 6)), ("broker-b", (8, 8, 6))])
    );
    let groups: BTreeMap<_, _> = route
        .broker_datas
        .iter()
        .map(|b| {
            (
                b.broker_name.as_str(),
                (b.cluster.as_str(), b.broker_addrs.clone()),
            )
        })
        .collect();
    assert_eq!(
        groups["broker-a"],
        (
            "DefaultCluster",
            BTreeMap::from([
                (0, "10.0.0.1:10911".to_string()),
                (1, "10.0.0.1:10921".to_string())
            ])
        )
    );
    assert_eq!(
        groups["broker-b"].1,
        BTreeMap::from([(0, "10.0.0.2:10911".to_string())])
    );
    // Only broker-b has OnlyB.
    let only_b = get_route(&client, &ns, "OnlyB").await.unwrap();
    assert_eq!(only_b.broker_datas.len(), 1);
    assert_eq!(only_b.broker_datas[0].broker_name, "broker-b");

    let info: ClusterInfo = call_json(
        &client,
        &ns,
        RemotingCommand::request(rc::GET_BROKER_CLUSTER_INFO),
    )
    .await;
    assert_eq!(
        info.cluster_addr_table["DefaultCluster"]
            .iter()
            .collect::<Vec<_>>(),
        ["broker-a", "broker-b"]
    );
    assert_eq!(info.broker_addr_table["broker-a"].broker_addrs.len(), 2);

    let all: TopicList = call_json(
        &client,
        &ns,
        RemotingCommand::request(rc::GET_ALL_TOPIC_LIST_FROM_NAMESERVER),
    )
    .await;
    assert_eq!(
        all.topic_list.iter().collect::<Vec<_>>(),
        ["OnlyB", "TopicTest"]
    );
    let by_cluster: TopicList = call_json(
        &client,
        &ns,
        RemotingCommand::request(rc::GET_TOPICS_BY_CLUSTER).with_field("cluster", "DefaultCluster"),
    )
    .await;
    assert_eq!(by_cluster.topic_list, all.topic_list);
    let system: TopicList = call_json(
        &client,
        &ns,
        RemotingCommand::request(rc::GET_SYSTEM_TOPIC_LIST_FROM_NS),
    )
    .await;
    assert!(system.topic_list.contains("DefaultCluster") && system.topic_list.contains("broker-b"));
    assert!(system.broker_addr.is_some());

    let missing = get_route(&client, &ns, "NoSuchTopic").await.unwrap_err();
    assert_eq!(missing.response_code(), Some(ResponseCode::TOPIC_NOT_EXIST));
    assert!(missing
        .remark
        .unwrap()
        .contains("No topic route info in name server for the topic: NoSuchTopic"));
}

#[tokio::test]
async fn unregister_removes_a_group_and_its_topics() {
    let dir = tempfile::tempdir().unwrap();
    let ns = TestNamesrv::start(test_config(&dir)).await;
    let client = client();
    let _brokers = register_cluster(&ns).await;
    let unregister = RemotingCommand::request(rc::UNREGISTER_BROKER)
        .with_field("brokerName", "broker-b")
        .with_field("brokerAddr", "10.0.0.2:10911")
        .with_field("clusterName", "DefaultCluster")
        .with_field("brokerId", 0);
    assert_eq!(call(&client, &ns, unregister).await.code, 0);
    let route = get_route(&client, &ns, "TopicTest").await.unwrap();
    assert_eq!(route.broker_datas.len(), 1);
    assert_eq!(route.queue_datas.len(), 1);
    assert_eq!(route.queue_datas[0].broker_name, "broker-a");
    assert!(get_route(&client, &ns, "OnlyB").await.is_err());

    // Unregistering the slave keeps the master.
    let slave = RemotingCommand::request(rc::UNREGISTER_BROKER)
        .with_field("brokerName", "broker-a")
        .with_field("brokerAddr", "10.0.0.1:10921")
        .with_field("clusterName", "DefaultCluster")
        .with_field("brokerId", 1);
    assert_eq!(call(&client, &ns, slave).await.code, 0);
    let route = get_route(&client, &ns, "TopicTest").await.unwrap();
    assert_eq!(route.broker_datas[0].broker_addrs.len(), 1);
}

#[tokio::test]
async fn silent_brokers_expire_on_the_scan_step() {
    let dir = tempfile::tempdir().unwrap();
    let config = NamesrvConfig {
        broker_channel_expired_time_ms: 5_000,
        ..test_config(&dir)
    };
    let ns = TestNamesrv::start(config).await;
    let client = client();
    let brokers = register_cluster(&ns).await;

    // broker-b re-registers at +3 s; everyone else stays silent.
    ns.clock.advance(3_000);
    let again = register_request(
        "DefaultCluster",
        "broker-b",
        0,
        "10.0.0.2:10911",
        &[("TopicTest", 8), ("OnlyB", 2)],
        1,
    );
    assert_eq!(call(&brokers[1], &ns, again).await.code, 0);

    ns.clock.set(START + 5_000);
    assert_eq!(
        ns.server.scan_not_active_brokers(),
        0,
        "exactly at the timeout is not expired yet"
    );
    ns.clock.set(START + 5_001);
    assert_eq!(
        ns.server.scan_not_active_brokers(),
        2,
        "broker-a master and slave expire"
    );
    let route = get_route(&client, &ns, "TopicTest").await.unwrap();
    assert_eq!(route.broker_datas.len(), 1);
    assert_eq!(route.broker_datas[0].broker_name, "broker-b");

    // A QUERY_DATA_VERSION with an unchanged version counts as a heartbeat.
    ns.clock.set(START + 7_000);
    let query = RemotingCommand::request(rc::QUERY_DATA_VERSION)
        .with_field("brokerName", "broker-b")
        .with_field("brokerAddr", "10.0.0.2:10911")
        .with_field("clusterName", "DefaultCluster")
        .with_field("brokerId", 0)
        .with_body(encode_json(&DataVersion {
            timestamp: 1,
            counter: 1,
        }));
    let answer = call(&client, &ns, query.clone()).await;
    assert_eq!(answer.field("changed"), Some("false"));
    let held: DataVersion = decode_json(&answer.body).unwrap();
    assert_eq!(held.counter, 1);
    let mut newer = query;
    newer.body = encode_json(&DataVersion {
        timestamp: 2,
        counter: 2,
    })
    .into();
    assert_eq!(
        call(&client, &ns, newer).await.field("changed"),
        Some("true")
    );

    ns.clock.set(START + 12_000);
    assert_eq!(ns.server.scan_not_active_brokers(), 0, "heard from at +7 s");
    ns.clock.set(START + 12_001);
    assert_eq!(ns.server.scan_not_active_brokers(), 1);
    assert!(get_route(&client, &ns, "TopicTest").await.is_err());
}

#[tokio::test]
async fn a_broker_whose_connection_closes_is_dropped_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ns = TestNamesrv::start(test_config(&dir)).await;
    let client = client();
    let broker = RemotingClient::new(ClientConfig::default());
    let request = register_request("C", "broker-x", 0, "10.0.0.9:10911", &[("X", 1)], 1);
    assert_eq!(broker.invoke(&ns.addr(), request, T).await.unwrap().code, 0);
    assert!(get_route(&client, &ns, "X").await.is_ok());
    drop(broker);
    // Wait for the close to be noticed (an event, not a timing assertion).
    let deadline = tokio::time::Instant::now() + T;
    while get_route(&client, &ns, "X").await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broker was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn wipe_and_add_write_permission() {
    let dir = tempfile::tempdir().unwrap();
    let ns = TestNamesrv::start(test_config(&dir)).await;
    let client = client();
    let _brokers = register_cluster(&ns).await;
    let wipe = call(
        &client,
        &ns,
        RemotingCommand::request(rc::WIPE_WRITE_PERM_OF_BROKER)
            .with_field("brokerName", "broker-b"),
    )
    .await;
    assert_eq!(wipe.code, 0);
    assert_eq!(wipe.field("wipeTopicCount"), Some("2"));
    let route = get_route(&client, &ns, "TopicTest").await.unwrap();
    for qd in &route.queue_datas {
        let expected = if qd.broker_name == "broker-b" {
            perm::READ
        } else {
            perm::READ | perm::WRITE
        };
        assert_eq!(qd.perm, expected, "{}", qd.broker_name);
    }
    let add = call(
        &client,
        &ns,
        RemotingCommand::request(rc::ADD_WRITE_PERM_OF_BROKER).with_field("brokerName", "broker-b"),
    )
    .await;
    assert_eq!(add.field("addTopicCount"), Some("2"));
    let route = get_route(&client, &ns, "OnlyB").await.unwrap();
    assert_eq!(route.queue_datas[0].perm, perm::READ | perm::WRITE);
    let none = call(
        &client,
        &ns,
        RemotingCommand::request(rc::WIPE_WRITE_PERM_OF_BROKER).with_field("brokerName", "nobody"),
    )
    .await;
    assert_eq!(none.field("wipeTopicCount"), Some("0"));
}

#[tokio::test]
async fn delete_and_register_topic() {
    let dir = tempfile::tempdir().unwrap();
    let ns = TestNamesrv::start(test_config(&dir)).await;
    let client = client();
    let _brokers = register_cluster(&ns).await;
    let delete = RemotingCommand::request(rc::DELETE_TOPIC_IN_NAMESRV).with_field("topic", "OnlyB");
    assert_eq!(call(&client, &ns, delete).await.code, 0);
    assert!(get_route(&client, &ns, "OnlyB").await.is_err());
    // fastjson writes numeric map keys bare; the body must still decode.
    let body = br#"{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}],"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":3,"topicSysFlag":0,"writeQueueNums":3},{"brokerName":"unknown-broker","perm":6,"readQueueNums":3,"writeQueueNums":3}]}"#;
    let register = RemotingCommand::request(rc::REGISTER_TOPIC_IN_NAMESRV)
        .with_field("topic", "Fresh")
        .with_body(&body[..]);
    assert_eq!(call(&client, &ns, register).await.code, 0);
    let route = get_route(&client, &ns, "Fresh").await.unwrap();
    assert_eq!(
        route.queue_datas.len(),
        1,
        "unregistered groups are skipped"
    );
    assert_eq!(route.queue_datas[0].read_queue_nums, 3);
}

#[tokio::test]
async fn kv_config_round_trip_and_persistence_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ns = TestNamesrv::start(test_config(&dir)).await;
    let client = client();
    for (key, value) in [("k1", "v1"), ("k2", "v2")] {
        let put = RemotingCommand::request(rc::PUT_KV_CONFIG)
            .with_field("namespace", "ns1")
            .with_field("key", key)
            .with_field("value", value);
        assert_eq!(call(&client, &ns, put).await.code, 0);
    }
    let get = |key: &str| {
        RemotingCommand::request(rc::GET_KV_CONFIG)
            .with_field("namespace", "ns1")
            .with_field("key", key)
    };
    assert_eq!(
        call(&client, &ns, get("k1")).await.field("value"),
        Some("v1")
    );
    let list = call(
        &client,
        &ns,
        RemotingCommand::request(rc::GET_KVLIST_BY_NAMESPACE).with_field("namespace", "ns1"),
    )
    .await;
    let table: KvTable = decode_json(&list.body).unwrap();
    assert_eq!(table.table.len(), 2);
    let delete = RemotingCommand::request(rc::DELETE_KV_CONFIG)
        .with_field("namespace", "ns1")
        .with_field("key", "k1");
    assert_eq!(call(&client, &ns, delete).await.code, 0);
    let gone = call(&client, &ns, get("k1")).await;
    assert_eq!(gone.response_code(), Some(ResponseCode::QUERY_NOT_FOUND));
    assert_eq!(
        gone.remark.as_deref(),
        Some("No config item, Namespace: ns1 Key: k1")
    );
    let no_ns = call(
        &client,
        &ns,
        RemotingCommand::request(rc::GET_KVLIST_BY_NAMESPACE).with_field("namespace", "none"),
    )
    .await;
    assert_eq!(no_ns.response_code(), Some(ResponseCode::QUERY_NOT_FOUND));
    // A put without a value is refused.
    let bad = RemotingCommand::request(rc::PUT_KV_CONFIG)
        .with_field("namespace", "ns1")
        .with_field("key", "k3");
    assert_eq!(
        call(&client, &ns, bad).await.response_code(),
        Some(ResponseCode::SYSTEM_ERROR)
    );
    ns.stop().await;

    let restarted = TestNamesrv::start(test_config(&dir)).await;
    assert_eq!(
        call(&client, &restarted, get("k2")).await.field("value"),
        Some("v2")
    );
    assert_eq!(
        call(&client, &restarted, get("k1")).await.code,
        ResponseCode::QUERY_NOT_FOUND as i32
    );
}

#[tokio::test]
async fn order_topic_conf_comes_from_the_kv_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let config = NamesrvConfig {
        order_message_enable: true,
        ..test_config(&dir)
    };
    let ns = TestNamesrv::start(config).await;
    let client = client();
    let put = RemotingCommand::request(rc::PUT_KV_CONFIG)
        .with_field("namespace", "ORDER_TOPIC_CONFIG")
        .with_field("key", "TopicTest")
        .with_field("value", "broker-a:4;broker-b:8");
    assert_eq!(call(&client, &ns, put).await.code, 0);
    let register = call(
        &client,
        &ns,
        register_request(
            "DefaultCluster",
            "broker-a",
            0,
            "10.0.0.1:10911",
            &[("TopicTest", 4)],
            1,
        ),
    )
    .await;
    // Brokers get the namespace back when they register.
    let table: KvTable = decode_json(&register.body).unwrap();
    assert_eq!(table.table["TopicTest"], "broker-a:4;broker-b:8");
    let route = get_route(&client, &ns, "TopicTest").await.unwrap();
    assert_eq!(
        route.order_topic_conf.as_deref(),
        Some("broker-a:4;broker-b:8")
    );
}

#[tokio::test]
async fn namesrv_config_get_and_update() {
    let dir = tempfile::tempdir().unwrap();
    let ns = TestNamesrv::start(test_config(&dir)).await;
    let client = client();
    let update = RemotingCommand::request(rc::UPDATE_NAMESRV_CONFIG)
        .with_body(&b"orderMessageEnable=true\n"[..]);
    assert_eq!(call(&client, &ns, update).await.code, 0);
    let got = call(
        &client,
        &ns,
        RemotingCommand::request(rc::GET_NAMESRV_CONFIG),
    )
    .await;
    let text = String::from_utf8(got.body.to_vec()).unwrap();
    assert!(text.contains("orderMessageEnable=true\n"), "{text}");
    assert!(ns.server.config().order_message_enable);
    let black = RemotingCommand::request(rc::UPDATE_NAMESRV_CONFIG)
        .with_body(&b"kvConfigPath=/tmp/elsewhere"[..]);
    assert_eq!(
        call(&client, &ns, black).await.response_code(),
        Some(ResponseCode::NO_PERMISSION)
    );
    let wrong =
        RemotingCommand::request(rc::UPDATE_NAMESRV_CONFIG).with_body(&b"listenPort=abc"[..]);
    let answer = call(&client, &ns, wrong).await;
    assert_eq!(
        answer.response_code(),
        Some(ResponseCode::INVALID_PARAMETER)
    );
    assert!(answer.remark.unwrap().contains("listenPort"));
}

#[tokio::test]
async fn bad_registrations_are_answered_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let ns = TestNamesrv::start(test_config(&dir)).await;
    let client = client();
    let mut bad_crc = register_request("C", "b", 0, "h:1", &[("T", 1)], 1);
    bad_crc.ext_fields.insert("bodyCrc32", "12345");
    let answer = call(&client, &ns, bad_crc).await;
    assert_eq!(answer.response_code(), Some(ResponseCode::SYSTEM_ERROR));
    assert_eq!(answer.remark.as_deref(), Some("crc32 not match"));
    let mut no_name = register_request("C", "b", 0, "h:1", &[("T", 1)], 1);
    no_name.ext_fields.remove("brokerName");
    let answer = call(&client, &ns, no_name).await;
    assert_eq!(answer.response_code(), Some(ResponseCode::SYSTEM_ERROR));
    assert!(answer.remark.unwrap().contains("brokerName"));
    let mut garbage = register_request("C", "b", 0, "h:1", &[], 1);
    garbage.ext_fields.insert("bodyCrc32", "0");
    garbage.body = (&b"{not json"[..]).into();
    assert_eq!(
        call(&client, &ns, garbage).await.response_code(),
        Some(ResponseCode::SYSTEM_ERROR)
    );
    // Nothing was registered, and the connection still serves.
    let info: ClusterInfo = call_json(
        &client,
        &ns,
        RemotingCommand::request(rc::GET_BROKER_CLUSTER_INFO),
    )
    .await;
    assert!(info.broker_addr_table.is_empty());
}

#[tokio::test]
async fn unknown_codes_answer_not_supported_and_the_connection_stays() {
    let dir = tempfile::tempdir().unwrap();
    let ns = TestNamesrv::start(test_config(&dir)).await;
    let mut conn = Connection::new(
        TcpStream::connect(ns.addr).await.unwrap(),
        DEFAULT_MAX_FRAME_LEN,
    )
    .unwrap();
    for (opaque, code) in [
        (1, 9999),
        (2, rc::SEND_MESSAGE),
        (3, rc::GET_BROKER_CLUSTER_INFO),
    ] {
        let mut request = RemotingCommand::request(code);
        request.opaque = opaque;
        conn.write_frame(&request).await.unwrap();
        let response = conn.read_frame().await.unwrap().unwrap();
        assert_eq!(response.opaque, opaque);
        let expected = if code == rc::GET_BROKER_CLUSTER_INFO {
            ResponseCode::SUCCESS
        } else {
            ResponseCode::REQUEST_CODE_NOT_SUPPORTED
        };
        assert_eq!(response.response_code(), Some(expected));
    }
}

/// A frame with a hand-written JSON header.
fn json_frame(header: &str, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&((4 + header.len() + body.len()) as u32).to_be_bytes());
    frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
    frame.extend_from_slice(header.as_bytes());
    frame.extend_from_slice(body);
    frame
}

#[tokio::test]
async fn hand_written_frames_from_clients_in_the_wild() {
    let dir = tempfile::tempdir().unwrap();
    let ns = TestNamesrv::start(test_config(&dir)).await;
    let _brokers = register_cluster(&ns).await;
    let headers = [
        // A Java client with ACL and ONS fields, everything present.
        r#"{"code":105,"language":"JAVA","version":401,"opaque":11,"flag":0,"remark":null,"extFields":{"topic":"TopicTest","AccessKey":"ak","Signature":"c2ln","OnsChannel":"ALIYUN"},"serializeTypeCurrentRPC":"JSON"}"#,
        // No serializeTypeCurrentRPC, remark, or version; another language.
        r#"{"code":105,"language":"GO","opaque":12,"flag":0,"extFields":{"topic":"TopicTest"}}"#,
        // Numbers as strings, an unknown language, unknown top-level fields.
        r#"{"code":"105","language":"COBOL","opaque":"13","flag":"0","version":"0","AccessKey":"ak","extFields":{"topic":"TopicTest","acceptStandardJsonOnly":"true"}}"#,
        // A numeric language code and an empty remark.
        r#"{"code":105,"language":3,"opaque":14,"flag":0,"remark":"","extFields":{"topic":"TopicTest"}}"#,
    ];
    let mut stream = TcpStream::connect(ns.addr).await.unwrap();
    for (i, header) in headers.iter().enumerate() {
        stream.write_all(&json_frame(header, b"")).await.unwrap();
        let response = read_response(&mut stream).await;
        assert_eq!(response.opaque, 11 + i as i32, "{header}");
        assert_eq!(response.serialize_type, SerializeType::Json);
        assert_eq!(response.code, 0, "{header}: {:?}", response.remark);
        let route: TopicRouteData = decode_json(&response.body).unwrap();
        assert_eq!(route.broker_datas.len(), 2);
    }
    // A ROCKETMQ binary header gets a binary reply.
    let mut binary =
        RemotingCommand::request(rc::GET_ROUTEINFO_BY_TOPIC).with_field("topic", "OnlyB");
    binary.opaque = 21;
    binary.serialize_type = SerializeType::RocketMq;
    stream.write_all(&binary.to_bytes()).await.unwrap();
    let response = read_response(&mut stream).await;
    assert_eq!(response.opaque, 21);
    assert_eq!(response.serialize_type, SerializeType::RocketMq);
    assert_eq!(response.code, 0);
    // Errors keep the request's serialize type too.
    let mut missing =
        RemotingCommand::request(rc::GET_ROUTEINFO_BY_TOPIC).with_field("topic", "Nope");
    missing.opaque = 22;
    missing.serialize_type = SerializeType::RocketMq;
    stream.write_all(&missing.to_bytes()).await.unwrap();
    let response = read_response(&mut stream).await;
    assert_eq!(response.serialize_type, SerializeType::RocketMq);
    assert_eq!(
        response.response_code(),
        Some(ResponseCode::TOPIC_NOT_EXIST)
    );
    assert!(response.remark.unwrap().contains("Nope"));
}

async fn read_response(stream: &mut TcpStream) -> RemotingCommand {
    let mut prefix = [0u8; 4];
    tokio::time::timeout(T, stream.read_exact(&mut prefix))
        .await
        .unwrap()
        .unwrap();
    let len = u32::from_be_bytes(prefix) as usize;
    let mut frame = prefix.to_vec();
    frame.resize(4 + len, 0);
    stream.read_exact(&mut frame[4..]).await.unwrap();
    let (command, used) = RemotingCommand::decode(&frame, DEFAULT_MAX_FRAME_LEN)
        .unwrap()
        .unwrap();
    assert_eq!(used, frame.len());
    command
}

#[tokio::test]
async fn malformed_and_oversized_frames_close_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let config = NamesrvConfig {
        frame_max_length: 64 * 1024,
        ..test_config(&dir)
    };
    let ns = TestNamesrv::start(config).await;
    let client = client();
    let _brokers = register_cluster(&ns).await;
    let garbage: Vec<u8> = json_frame("{this is not json", b"");
    let oversized = ((64 * 1024 + 1) as u32).to_be_bytes().to_vec();
    let header_too_long = vec![0, 0, 0, 8, 0, 0, 0, 200, b'{', b'}', b' ', b' '];
    for bytes in [garbage, oversized, header_too_long] {
        let mut stream = TcpStream::connect(ns.addr).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(T, stream.read(&mut buf))
            .await
            .unwrap();
        // A reset (Err) is a close as well.
        if let Ok(n) = read {
            assert_eq!(n, 0, "expected the connection to be closed");
        }
        assert!(get_route(&client, &ns, "TopicTest").await.is_ok());
    }
}
