//! A name server and brokers in-process on port 0, and a raw remoting client
//! that speaks to them frame by frame (the client crate is tested on its own).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mq_broker::{BrokerConfig, BrokerHandle};
use mq_namesrv::config::NamesrvConfig;
use mq_protocol::body::{ConsumerData, HeartbeatData, ProducerData, SubscriptionData};
use mq_protocol::header::{
    pull_sys_flag, PullMessageRequestHeader, PullMessageResponseHeader, SendMessageRequestHeader,
    SendMessageRequestHeaderV2, SendMessageResponseHeader,
};
use mq_protocol::message::{properties_to_string, Properties};
use mq_protocol::route::{encode_json, perm};
use mq_protocol::{request_code, MessageExt, RemotingCommand, ResponseCode};
use mq_remoting::{ClientConfig, RemotingClient, RequestHandler};
use mq_store::MessageStoreConfig;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub struct NameServer {
    pub addr: String,
    stop: Option<oneshot::Sender<()>>,
    _dir: TempDir,
}

impl NameServer {
    pub async fn start() -> NameServer {
        let dir = tempfile::tempdir().unwrap();
        let config = NamesrvConfig {
            kv_config_path: dir.path().join("kvConfig.json"),
            ..NamesrvConfig::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = mq_namesrv::run(listener, config, async move {
                let _ = stopped.await;
            })
            .await;
        });
        NameServer {
            addr,
            stop: Some(stop),
            _dir: dir,
        }
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Broker and store configs for a test: small files, port 0, loopback.
pub fn configs(name: &str, root: &Path, namesrv: &str) -> (BrokerConfig, MessageStoreConfig) {
    let broker = BrokerConfig {
        broker_name: name.to_owned(),
        namesrv_addr: namesrv.to_owned(),
        listen_port: 0,
        bind_address: "127.0.0.1".into(),
        broker_ip1: "127.0.0.1".into(),
        transaction_time_out: 300,
        transaction_check_interval: 200,
        ..BrokerConfig::default()
    };
    let mut store = MessageStoreConfig::with_root(root);
    store.maped_file_size_commit_log = 8 * 1024 * 1024;
    store.maped_file_size_consume_queue = 20 * 1000;
    store.max_hash_slot_num = 1000;
    store.max_index_num = 4000;
    store.message_delay_level = "1s 1s 1s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s".into();
    (broker, store)
}

pub struct TestBroker {
    pub handle: Option<BrokerHandle>,
    pub addr: String,
    pub root: PathBuf,
    pub name: String,
    pub namesrv: String,
}

impl TestBroker {
    pub async fn start(name: &str, root: &Path, namesrv: &str) -> TestBroker {
        Self::start_with(name, root, namesrv, |_, _| {}).await
    }

    pub async fn start_with(
        name: &str,
        root: &Path,
        namesrv: &str,
        tweak: impl FnOnce(&mut BrokerConfig, &mut MessageStoreConfig),
    ) -> TestBroker {
        let (mut broker, mut store) = configs(name, root, namesrv);
        tweak(&mut broker, &mut store);
        let handle = BrokerHandle::start(broker, store)
            .await
            .expect("broker starts");
        TestBroker {
            addr: handle.addr().to_string(),
            handle: Some(handle),
            root: root.to_owned(),
            name: name.to_owned(),
            namesrv: namesrv.to_owned(),
        }
    }

    pub async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
    }
}

pub fn client() -> RemotingClient {
    RemotingClient::new(ClientConfig::default())
}

pub fn client_with(handler: Arc<dyn RequestHandler>) -> RemotingClient {
    RemotingClient::with_handler(ClientConfig::default(), handler)
}

pub async fn call(
    client: &RemotingClient,
    addr: &str,
    request: RemotingCommand,
) -> RemotingCommand {
    client
        .invoke(addr, request, TIMEOUT)
        .await
        .expect("the call is answered")
}

pub fn code(response: &RemotingCommand) -> Option<ResponseCode> {
    response.response_code()
}

pub async fn create_topic(client: &RemotingClient, broker: &str, topic: &str, queues: i32) {
    let response = call(
        client,
        broker,
        RemotingCommand::request(request_code::UPDATE_AND_CREATE_TOPIC)
            .with_field("topic", topic)
            .with_field("defaultTopic", "TBW102")
            .with_field("readQueueNums", queues)
            .with_field("writeQueueNums", queues)
            .with_field("perm", perm::READ | perm::WRITE)
            .with_field("topicFilterType", "SINGLE_TAG"),
    )
    .await;
    assert_eq!(
        code(&response),
        Some(ResponseCode::SUCCESS),
        "{:?}",
        response.remark
    );
}

/// A message to send.
pub fn message(
    topic: &str,
    queue_id: i32,
    tags: &str,
    keys: &str,
    body: &[u8],
) -> (SendMessageRequestHeader, Vec<u8>) {
    let mut properties = Properties::new();
    if !tags.is_empty() {
        properties.insert("TAGS".into(), tags.into());
    }
    if !keys.is_empty() {
        properties.insert("KEYS".into(), keys.into());
    }
    properties.insert("UNIQ_KEY".into(), format!("{:032X}", rand_u128()));
    properties.insert("WAIT".into(), "true".into());
    (
        SendMessageRequestHeader {
            producer_group: "test-producer".into(),
            topic: topic.into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id,
            sys_flag: 0,
            born_timestamp: now_ms(),
            flag: 0,
            properties: Some(properties_to_string(&properties)),
            reconsume_times: Some(0),
            unit_mode: Some(false),
            batch: Some(false),
            max_reconsume_times: None,
        },
        body.to_vec(),
    )
}

pub fn with_property(
    mut msg: (SendMessageRequestHeader, Vec<u8>),
    key: &str,
    value: &str,
) -> (SendMessageRequestHeader, Vec<u8>) {
    let mut properties =
        mq_protocol::message::string_to_properties(msg.0.properties.as_deref().unwrap_or(""));
    properties.insert(key.into(), value.into());
    msg.0.properties = Some(properties_to_string(&properties));
    msg
}

pub fn rand_u128() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    (u128::from(std::process::id()) << 96)
        | (u128::from(now_ms() as u64) << 32)
        | u128::from(COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Sends with SEND_MESSAGE_V2 and returns the response.
pub async fn send_raw(
    client: &RemotingClient,
    broker: &str,
    msg: (SendMessageRequestHeader, Vec<u8>),
) -> RemotingCommand {
    let request = RemotingCommand::request(request_code::SEND_MESSAGE_V2)
        .with_header(&SendMessageRequestHeaderV2::from_v1(&msg.0))
        .with_body(msg.1);
    call(client, broker, request).await
}

/// Sends and expects SEND_OK.
pub async fn send(
    client: &RemotingClient,
    broker: &str,
    msg: (SendMessageRequestHeader, Vec<u8>),
) -> SendMessageResponseHeader {
    let response = send_raw(client, broker, msg).await;
    assert_eq!(
        code(&response),
        Some(ResponseCode::SUCCESS),
        "send failed: {:?}",
        response.remark
    );
    response.header().unwrap()
}

pub async fn heartbeat_consumer(
    client: &RemotingClient,
    broker: &str,
    client_id: &str,
    group: &str,
    subs: &[(&str, &str)],
) {
    let data = HeartbeatData {
        client_id: client_id.into(),
        producer_data_set: vec![],
        consumer_data_set: vec![ConsumerData {
            group_name: group.into(),
            subscription_data_set: subs
                .iter()
                .map(|(topic, expr)| SubscriptionData::parse(topic, expr, now_ms()))
                .collect(),
            ..ConsumerData::default()
        }],
    };
    let response = call(
        client,
        broker,
        RemotingCommand::request(request_code::HEART_BEAT).with_body(encode_json(&data)),
    )
    .await;
    assert_eq!(code(&response), Some(ResponseCode::SUCCESS));
}

pub async fn heartbeat_producer(
    client: &RemotingClient,
    broker: &str,
    client_id: &str,
    group: &str,
) {
    let data = HeartbeatData {
        client_id: client_id.into(),
        producer_data_set: vec![ProducerData {
            group_name: group.into(),
        }],
        consumer_data_set: vec![],
    };
    let response = call(
        client,
        broker,
        RemotingCommand::request(request_code::HEART_BEAT).with_body(encode_json(&data)),
    )
    .await;
    assert_eq!(code(&response), Some(ResponseCode::SUCCESS));
}

pub struct Pulled {
    pub code: Option<ResponseCode>,
    pub header: Option<PullMessageResponseHeader>,
    pub messages: Vec<MessageExt>,
}

pub async fn pull(
    client: &RemotingClient,
    broker: &str,
    group: &str,
    topic: &str,
    queue_id: i32,
    offset: i64,
    suspend_ms: i64,
) -> Pulled {
    let mut sys_flag = 0;
    if suspend_ms > 0 {
        sys_flag |= pull_sys_flag::SUSPEND;
    }
    let header = PullMessageRequestHeader {
        consumer_group: group.into(),
        topic: topic.into(),
        queue_id,
        queue_offset: offset,
        max_msg_nums: 32,
        sys_flag,
        commit_offset: 0,
        suspend_timeout_millis: suspend_ms,
        subscription: None,
        sub_version: 0,
        expression_type: None,
        max_msg_bytes: None,
    };
    let response = client
        .invoke(
            broker,
            RemotingCommand::request(request_code::PULL_MESSAGE).with_header(&header),
            TIMEOUT + Duration::from_millis(suspend_ms as u64),
        )
        .await
        .expect("pull answered");
    Pulled {
        code: code(&response),
        header: response.header().ok(),
        messages: MessageExt::decode_all(&response.body).expect("pull body decodes"),
    }
}

/// Pulls every queue of `topic` from offset 0 until `want` messages arrived
/// or the deadline passed.
pub async fn pull_all(
    client: &RemotingClient,
    broker: &str,
    group: &str,
    topic: &str,
    queues: i32,
    want: usize,
    within: Duration,
) -> Vec<MessageExt> {
    let deadline = tokio::time::Instant::now() + within;
    let mut offsets = vec![0i64; queues as usize];
    let mut out = Vec::new();
    while out.len() < want && tokio::time::Instant::now() < deadline {
        for q in 0..queues {
            let pulled = pull(client, broker, group, topic, q, offsets[q as usize], 0).await;
            if let Some(h) = &pulled.header {
                if pulled.code == Some(ResponseCode::SUCCESS)
                    || pulled.code == Some(ResponseCode::PULL_RETRY_IMMEDIATELY)
                {
                    offsets[q as usize] = h.next_begin_offset;
                }
            }
            out.extend(pulled.messages);
        }
        if out.len() < want {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    out
}

/// A `mqbroker` process.
pub struct BrokerProcess {
    pub child: Child,
    pub addr: String,
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn write_config(dir: &Path, namesrv: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("broker-a.properties");
    let text = format!(
        "brokerClusterName=DefaultCluster\nbrokerName=broker-a\nbrokerId=0\nbrokerRole=ASYNC_MASTER\n\
         namesrvAddr={namesrv}\nlistenPort=0\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\n\
         storePathRootDir={}\nmapedFileSizeCommitLog=8388608\nmapedFileSizeConsumeQueue=20000\n\
         maxHashSlotNum=1000\nmaxIndexNum=4000\n{extra}",
        dir.join("store").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts the binary and waits for its boot line.
pub fn start_process(config: &Path) -> BrokerProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mqbroker"))
        .arg("-c")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mqbroker starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next().expect("a boot line").unwrap();
    assert!(line.contains("boot success"), "{line}");
    let addr = line
        .split(", ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("the address in the boot line")
        .to_owned();
    std::thread::spawn(move || for _ in lines {});
    BrokerProcess { child, addr }
}

pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}
