//! Master/slave replication with real `mqbroker` processes on port 0: the
//! slave's commit log is a byte-for-byte copy, SYNC_MASTER acknowledges
//! only what a slave has, consumers fall back to the slave while the master
//! is down, lag is reported, bad replication input closes only its own
//! connection, a slave ahead of its master keeps its log, and a slave
//! restarted as master does not deliver again the timer messages its
//! master delivered.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use mq_broker::metadata::timer::TimerCheckpoint;
use mq_client::{
    AdminClient, ClientConfig, ConsumeStatus, Listener, MessageExt, PushConsumer,
    PushConsumerConfig,
};
use mq_protocol::route::{decode_json, KvTable};
use mq_protocol::{request_code, RemotingCommand, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous: the machine running the tests may be loaded.
const LIMIT: Duration = Duration::from_secs(60);

/// One broker of group `broker-a` (id 0 = master, else slave).
fn config(dir: &Path, name: &str, namesrv: &str, role: &str, extra: &str) -> PathBuf {
    let id = if role == "SLAVE" { 1 } else { 0 };
    let path = dir.join(format!("{name}.properties"));
    let text = format!(
        "brokerClusterName=DefaultCluster\nbrokerName=broker-a\nbrokerId={id}\nbrokerRole={role}\n\
         namesrvAddr={namesrv}\nlistenPort=0\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\n\
         brokerIP2=127.0.0.1\nstorePathRootDir={}\nmapedFileSizeCommitLog=8388608\n\
         mapedFileSizeConsumeQueue=20000\nmaxHashSlotNum=1000\nmaxIndexNum=4000\n\
         registerNameServerPeriod=1000\nhaSendHeartbeatInterval=1000\n{extra}",
        dir.join(name).display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Polls `check` until it holds; after [`LIMIT`] panics naming `what`,
/// with the logs of `brokers`.
async fn wait_with_logs<F, Fut>(what: &str, brokers: &[&BrokerProcess], mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let logs = || {
        let logs: Vec<String> = brokers.iter().map(|b| b.log()).collect();
        logs.join("\n-----\n")
    };
    wait_explained(what, LIMIT, logs, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await;
}

async fn admin(namesrv: &str, name: &str) -> AdminClient {
    AdminClient::start(ClientConfig::new(namesrv.to_owned()).with_instance_name(name))
        .await
        .unwrap()
}

/// GET_BROKER_RUNTIME_INFO through the admin client (what `mqadmin
/// brokerStatus` prints); empty when the broker does not answer.
async fn runtime_info(admin: &AdminClient, addr: &str) -> BTreeMap<String, String> {
    match admin
        .call_broker(
            addr,
            RemotingCommand::request(request_code::GET_BROKER_RUNTIME_INFO),
        )
        .await
    {
        Ok(response) => decode_json::<KvTable>(&response.body).unwrap().table,
        Err(_) => BTreeMap::new(),
    }
}

async fn info_u64(admin: &AdminClient, addr: &str, key: &str) -> Option<u64> {
    runtime_info(admin, addr)
        .await
        .get(key)
        .and_then(|v| v.parse().ok())
}

async fn caught_up(admin: &AdminClient, master: &BrokerProcess, slave: &BrokerProcess) -> bool {
    let m = info_u64(admin, &master.addr, "commitLogMaxOffset").await;
    let s = info_u64(admin, &slave.addr, "commitLogMaxOffset").await;
    m.is_some() && m == s
}

fn commit_log(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(
        dir.join(name)
            .join("commitlog")
            .join("00000000000000000000"),
    )
    .unwrap()
}

/// Sends `n` messages with bodies `{prefix}-{i}` to `topic` (4 queues).
async fn send_many(
    client: &mq_remoting::RemotingClient,
    broker: &str,
    topic: &str,
    prefix: &str,
    n: usize,
) {
    for i in 0..n {
        let body = format!("{prefix}-{i}");
        send(
            client,
            broker,
            message(topic, (i % 4) as i32, "", "", body.as_bytes()),
        )
        .await;
    }
}

fn bodies(msgs: &[MessageExt]) -> BTreeSet<String> {
    msgs.iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slave_keeps_a_byte_for_byte_copy_across_restarts_of_either_side() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = admin(&ns.addr, "ha-copy-admin").await;
    let client = client();
    let master_conf = config(dir.path(), "master", &ns.addr, "ASYNC_MASTER", "");
    let slave_conf = config(dir.path(), "slave", &ns.addr, "SLAVE", "");
    let master = BrokerProcess::spawn(&master_conf);
    create_topic(&client, &master.addr, "Copied", 4).await;
    // Before the slave exists: it starts from an empty store.
    send_many(&client, &master.addr, "Copied", "before", 40).await;
    let slave = BrokerProcess::spawn(&slave_conf);
    send_many(&client, &master.addr, "Copied", "after", 40).await;
    wait_with_logs("the slave caught up", &[&master, &slave], || {
        caught_up(&admin, &master, &slave)
    })
    .await;
    assert!(
        commit_log(dir.path(), "master") == commit_log(dir.path(), "slave"),
        "commit logs differ"
    );

    // Routes and the cluster list show both, with their ids.
    wait_with_logs(
        "the name server lists master and slave",
        &[&master, &slave],
        || async {
            let info = admin.cluster_info().await.unwrap();
            info.broker_addr_table
                .get("broker-a")
                .map(|b| b.broker_addrs.clone())
                == Some(BTreeMap::from([
                    (0, master.addr.clone()),
                    (1, slave.addr.clone()),
                ]))
        },
    )
    .await;
    // The slave copies the master's topics, groups and offsets.
    wait_with_logs(
        "the slave has the master's topics",
        &[&master, &slave],
        || async {
            let response = call(
                &client,
                &slave.addr,
                RemotingCommand::request(request_code::GET_ALL_TOPIC_CONFIG),
            )
            .await;
            String::from_utf8_lossy(&response.body).contains("\"Copied\"")
        },
    )
    .await;
    let route = admin.topic_route("Copied").await.unwrap();
    assert_eq!(route.broker_datas[0].broker_addrs.len(), 2);

    // The slave refuses sends as RocketMQ's does, and serves reads of the
    // same bytes (its consume queues are rebuilt from the copy).
    let refused = send_raw(&client, &slave.addr, message("Copied", 0, "", "", b"no")).await;
    assert_eq!(code(&refused), Some(ResponseCode::SERVICE_NOT_AVAILABLE));
    heartbeat_consumer(&client, &master.addr, "c1", "readers", &[("Copied", "*")]).await;
    heartbeat_consumer(&client, &slave.addr, "c1", "readers", &[("Copied", "*")]).await;
    let from_master = pull_all(&client, &master.addr, "readers", "Copied", 4, 80, LIMIT).await;
    let from_slave = pull_all(&client, &slave.addr, "readers", "Copied", 4, 80, LIMIT).await;
    assert_eq!(from_slave.len(), 80);
    let key = |m: &MessageExt| {
        (
            m.queue_id,
            m.queue_offset,
            m.commit_log_offset,
            m.body.clone(),
        )
    };
    let mut a: Vec<_> = from_master.iter().map(key).collect();
    let mut b: Vec<_> = from_slave.iter().map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);

    // The slave stops cleanly and resumes from its own end.
    slave.stop();
    send_many(&client, &master.addr, "Copied", "while-slave-down", 30).await;
    let slave = BrokerProcess::spawn(&slave_conf);
    wait_with_logs("the restarted slave caught up", &[&master, &slave], || {
        caught_up(&admin, &master, &slave)
    })
    .await;
    assert!(commit_log(dir.path(), "master") == commit_log(dir.path(), "slave"));

    // The master is killed and comes back (on a new port): the slave
    // learns the new address from the name server and carries on.
    master.kill();
    let master = BrokerProcess::spawn(&master_conf);
    send_many(&client, &master.addr, "Copied", "new-master", 30).await;
    wait_with_logs(
        "the slave follows the restarted master",
        &[&master, &slave],
        || caught_up(&admin, &master, &slave),
    )
    .await;
    assert!(commit_log(dir.path(), "master") == commit_log(dir.path(), "slave"));
    admin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_master_acknowledges_only_what_the_slave_has() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = admin(&ns.addr, "ha-sync-admin").await;
    let client = client();
    let master = BrokerProcess::spawn(&config(
        dir.path(),
        "master",
        &ns.addr,
        "SYNC_MASTER",
        "syncFlushTimeout=3000\n",
    ));
    create_topic(&client, &master.addr, "Synced", 4).await;

    // No slave: stored, but the sender hears SLAVE_NOT_AVAILABLE.
    let lonely = send_raw(
        &client,
        &master.addr,
        message("Synced", 0, "", "", b"lonely"),
    )
    .await;
    assert_eq!(code(&lonely), Some(ResponseCode::SLAVE_NOT_AVAILABLE));
    assert!(info_u64(&admin, &master.addr, "commitLogMaxOffset").await > Some(0));

    let slave = BrokerProcess::spawn(&config(dir.path(), "slave", &ns.addr, "SLAVE", ""));
    wait_with_logs("the slave connected", &[&master, &slave], || async {
        info_u64(&admin, &master.addr, "haConnectionCount").await == Some(1)
    })
    .await;

    // Concurrent sends all succeed (sharing the slave's acknowledgements).
    let sends = (0..32).map(|i| {
        let client = client.clone();
        let addr = master.addr.clone();
        async move {
            let body = format!("sync-{i}");
            send_raw(
                &client,
                &addr,
                message("Synced", i % 4, "", "", body.as_bytes()),
            )
            .await
        }
    });
    for response in futures_join_all(sends).await {
        assert_eq!(
            code(&response),
            Some(ResponseCode::SUCCESS),
            "{:?}",
            response.remark
        );
    }

    // A slave that stops answering: FLUSH_SLAVE_TIMEOUT, still stored.
    slave.signal("STOP");
    let slow = send_raw(&client, &master.addr, message("Synced", 1, "", "", b"slow")).await;
    slave.signal("CONT");
    assert_eq!(code(&slow), Some(ResponseCode::FLUSH_SLAVE_TIMEOUT));

    // Every SEND_OK is on the slave, even if the master dies right after.
    let mut acknowledged = BTreeSet::new();
    for i in 0..20 {
        let body = format!("last-{i}");
        send(
            &client,
            &master.addr,
            message("Synced", i % 4, "", "", body.as_bytes()),
        )
        .await;
        acknowledged.insert(body);
    }
    master.kill();
    heartbeat_consumer(
        &client,
        &slave.addr,
        "c1",
        "sync-readers",
        &[("Synced", "*")],
    )
    .await;
    // 1 + 32 + 1 + 20 messages: the slave has all of them.
    let on_slave =
        bodies(&pull_all(&client, &slave.addr, "sync-readers", "Synced", 4, 54, LIMIT).await);
    assert!(
        acknowledged.is_subset(&on_slave),
        "missing on the slave: {:?}\n{}",
        acknowledged.difference(&on_slave).collect::<Vec<_>>(),
        slave.log()
    );
    assert!(on_slave.contains("lonely") && on_slave.contains("slow"));
    admin.shutdown().await;
}

/// `futures::future::join_all` without the dependency.
async fn futures_join_all<F: Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_master_reports_how_far_the_slave_is_behind() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = admin(&ns.addr, "ha-lag-admin").await;
    let client = client();
    let master = BrokerProcess::spawn(&config(dir.path(), "master", &ns.addr, "ASYNC_MASTER", ""));
    let slave = BrokerProcess::spawn(&config(dir.path(), "slave", &ns.addr, "SLAVE", ""));
    create_topic(&client, &master.addr, "Lagging", 4).await;
    send_many(&client, &master.addr, "Lagging", "a", 10).await;
    wait_with_logs("no lag", &[&master, &slave], || async {
        info_u64(&admin, &master.addr, "slaveFallBehindMuch").await == Some(0)
            && info_u64(&admin, &master.addr, "haConnectionCount").await == Some(1)
    })
    .await;
    let before = info_u64(&admin, &master.addr, "commitLogMaxOffset")
        .await
        .unwrap();
    slave.signal("STOP");
    send_many(&client, &master.addr, "Lagging", "b", 20).await;
    let after = info_u64(&admin, &master.addr, "commitLogMaxOffset")
        .await
        .unwrap();
    let lag = info_u64(&admin, &master.addr, "slaveFallBehindMuch").await;
    slave.signal("CONT");
    // At most the 20 messages sent since (the slave may have taken the
    // first before it stopped), and not nothing.
    let lag = lag.expect("slaveFallBehindMuch reported");
    assert!(
        lag > 0 && lag <= after - before,
        "lag {lag}, sent {}",
        after - before
    );
    wait_with_logs("the slave caught up again", &[&master, &slave], || async {
        info_u64(&admin, &master.addr, "slaveFallBehindMuch").await == Some(0)
    })
    .await;
    let slave_info = runtime_info(&admin, &slave.addr).await;
    assert_eq!(slave_info["haMasterConnected"], "true");
    assert_eq!(slave_info["haMasterAddress"], master.ha_addr);
    admin.shutdown().await;
}

/// Reads until the peer closes (true) or `within` passes (false).
async fn closed_by_peer(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_the_ha_port_closes_only_that_connection() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = admin(&ns.addr, "ha-bad-admin").await;
    let client = client();
    let master = BrokerProcess::spawn(&config(dir.path(), "master", &ns.addr, "ASYNC_MASTER", ""));
    let slave = BrokerProcess::spawn(&config(dir.path(), "slave", &ns.addr, "SLAVE", ""));
    create_topic(&client, &master.addr, "Guarded", 4).await;
    send_many(&client, &master.addr, "Guarded", "x", 10).await;
    wait_with_logs("replicating", &[&master, &slave], || {
        caught_up(&admin, &master, &slave)
    })
    .await;
    let end = info_u64(&admin, &master.addr, "commitLogMaxOffset")
        .await
        .unwrap();

    // Garbage: not an offset the master has.
    let mut garbage = TcpStream::connect(&master.ha_addr).await.unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_by_peer(&mut garbage, LIMIT).await, "garbage closes");

    // An offset inside a record.
    let mut inside = TcpStream::connect(&master.ha_addr).await.unwrap();
    inside.write_all(&3u64.to_be_bytes()).await.unwrap();
    assert!(
        closed_by_peer(&mut inside, LIMIT).await,
        "a mid-record offset closes"
    );

    // An offset past the master's end: told the master's end, then closed.
    let mut ahead = TcpStream::connect(&master.ha_addr).await.unwrap();
    ahead.write_all(&(end + 1000).to_be_bytes()).await.unwrap();
    let mut header = [0u8; 12];
    tokio::time::timeout(LIMIT, ahead.read_exact(&mut header))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u64::from_be_bytes(header[..8].try_into().unwrap()), end);
    assert!(closed_by_peer(&mut ahead, LIMIT).await);

    // A valid start, then an acknowledgement of bytes never sent.
    let mut liar = TcpStream::connect(&master.ha_addr).await.unwrap();
    liar.write_all(&end.to_be_bytes()).await.unwrap();
    liar.write_all(&(end + (1 << 30)).to_be_bytes())
        .await
        .unwrap();
    assert!(
        closed_by_peer(&mut liar, LIMIT).await,
        "a false acknowledgement closes"
    );

    // The real slave was not disturbed, nor was the broker.
    send_many(&client, &master.addr, "Guarded", "y", 10).await;
    wait_with_logs("still replicating", &[&master, &slave], || {
        caught_up(&admin, &master, &slave)
    })
    .await;
    assert_eq!(
        info_u64(&admin, &master.addr, "haConnectionCount").await,
        Some(1)
    );
    assert!(commit_log(dir.path(), "master") == commit_log(dir.path(), "slave"));
    admin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slave_ahead_of_its_master_stops_replicating_and_keeps_its_log() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = admin(&ns.addr, "ha-ahead-admin").await;
    let client = client();
    let master_conf = config(dir.path(), "master", &ns.addr, "ASYNC_MASTER", "");
    let slave_conf = config(dir.path(), "slave", &ns.addr, "SLAVE", "");
    let master = BrokerProcess::spawn(&master_conf);
    let slave = BrokerProcess::spawn(&slave_conf);
    create_topic(&client, &master.addr, "Lost", 4).await;
    send_many(&client, &master.addr, "Lost", "old", 20).await;
    wait_with_logs("replicated", &[&master, &slave], || {
        caught_up(&admin, &master, &slave)
    })
    .await;
    let copy = commit_log(dir.path(), "slave");
    let slave_end = info_u64(&admin, &slave.addr, "commitLogMaxOffset")
        .await
        .unwrap();

    // The master comes back without its data (a lost disk): behind the slave.
    master.kill();
    std::fs::remove_dir_all(dir.path().join("master")).unwrap();
    let master = BrokerProcess::spawn(&master_conf);
    wait_with_logs("the slave noticed", &[&master, &slave], || async {
        runtime_info(&admin, &slave.addr)
            .await
            .get("haSlaveDiverged")
            .is_some_and(|v| v != "false")
    })
    .await;
    create_topic(&client, &master.addr, "Lost", 4).await;
    send_many(&client, &master.addr, "Lost", "new", 5).await;
    assert!(
        commit_log(dir.path(), "slave") == copy,
        "the slave kept its log"
    );
    assert_eq!(
        info_u64(&admin, &slave.addr, "commitLogMaxOffset").await,
        Some(slave_end)
    );
    assert!(dir.path().join("slave").join("ha_diverged").exists());
    admin.shutdown().await;
}

type Seen = Arc<Mutex<Vec<String>>>;

fn recorder() -> (Seen, Listener) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let listener = Listener::concurrent(move |msgs: Vec<MessageExt>| {
        let sink = sink.clone();
        async move {
            sink.lock().unwrap().extend(
                msgs.iter()
                    .map(|m| String::from_utf8_lossy(&m.body).into_owned()),
            );
            ConsumeStatus::Success
        }
    });
    (seen, listener)
}

fn consumer(namesrv: &str, name: &str) -> PushConsumer {
    let mut client = ClientConfig::new(namesrv.to_owned()).with_instance_name(name);
    client.poll_name_server_interval = Duration::from_millis(500);
    client.persist_consumer_offset_interval = Duration::from_millis(500);
    let mut config = PushConsumerConfig::new("failover-group");
    config.rebalance_interval = Duration::from_secs(1);
    config.broker_suspend_max = Duration::from_secs(2);
    let consumer = PushConsumer::new(config, client);
    consumer.subscribe("Failover", "*").unwrap();
    consumer
}

/// The sum of `failover-group`'s committed offsets over the 4 queues of
/// `Failover` on `broker` (a queue without one counts 0).
async fn group_offsets(client: &mq_remoting::RemotingClient, broker: &str) -> i64 {
    let mut total = 0;
    for q in 0..4 {
        let response = call(
            client,
            broker,
            RemotingCommand::request(request_code::QUERY_CONSUMER_OFFSET)
                .with_field("consumerGroup", "failover-group")
                .with_field("topic", "Failover")
                .with_field("queueId", q),
        )
        .await;
        total += response
            .ext_fields
            .get("offset")
            .and_then(|o| o.parse::<i64>().ok())
            .unwrap_or(0);
    }
    total
}

fn count(seen: &Seen, prefix: &str) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|b| b.starts_with(prefix))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_read_from_the_slave_while_the_master_is_down() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = admin(&ns.addr, "ha-failover-admin").await;
    let client = client();
    let master_conf = config(dir.path(), "master", &ns.addr, "ASYNC_MASTER", "");
    let master = BrokerProcess::spawn(&master_conf);
    let slave = BrokerProcess::spawn(&config(dir.path(), "slave", &ns.addr, "SLAVE", ""));
    create_topic(&client, &master.addr, "Failover", 4).await;

    // Phase 1, master up: batch A consumed and committed on the master.
    send_many(&client, &master.addr, "Failover", "A", 20).await;
    let first = consumer(&ns.addr, "failover-1");
    let (seen1, listener) = recorder();
    first.start(listener).await.unwrap();
    wait_with_logs("A consumed", &[&master, &slave], || async {
        count(&seen1, "A-") >= 20
    })
    .await;
    first.shutdown().await;

    // Batch B reaches the slave with the committed offsets; then the
    // master dies.
    send_many(&client, &master.addr, "Failover", "B", 20).await;
    wait_with_logs(
        "B and the offsets on the slave",
        &[&master, &slave],
        || async {
            if !caught_up(&admin, &master, &slave).await {
                return false;
            }
            let total = group_offsets(&client, &slave.addr).await;
            total == 20
        },
    )
    .await;
    master.kill();

    // Phase 2, master down: a consumer of the group reads B from the slave,
    // starting where the group stood, and commits there.
    let second = consumer(&ns.addr, "failover-2");
    let (seen2, listener) = recorder();
    second.start(listener).await.unwrap();
    wait_with_logs("B consumed from the slave", &[&slave], || async {
        count(&seen2, "B-") >= 20
    })
    .await;
    assert_eq!(count(&seen2, "A-"), 0, "A is not read again");

    // Phase 3, the master is back (new port): the consumer moves to it and
    // carries on after B, its offsets committed there.
    let master = BrokerProcess::spawn(&master_conf);
    wait_with_logs("the master is routed again", &[&master, &slave], || async {
        admin
            .topic_route("Failover")
            .await
            .is_ok_and(|r| r.broker_datas[0].broker_addrs.get(&0) == Some(&master.addr))
    })
    .await;
    send_many(&client, &master.addr, "Failover", "C", 20).await;
    wait_with_logs("C consumed", &[&master, &slave], || async {
        count(&seen2, "C-") >= 20
    })
    .await;
    assert_eq!(count(&seen2, "B-"), 20, "B is read once");
    wait_with_logs(
        "the master has the group's offsets",
        &[&master, &slave],
        || async {
            let total = group_offsets(&client, &master.addr).await;
            total == 60
        },
    )
    .await;
    second.shutdown().await;
    admin.shutdown().await;
}

/// The `deploy/2m-2s-sync` files as an operator would start them (ports,
/// addresses and paths overridden for this machine): both slaves find their
/// masters and every SEND_OK is on the sending master's slave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2m_2s_sync_deploy_files_replicate() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/2m-2s-sync");
    let overridden = |name: &str| {
        deploy_file(
            &deploy.join(format!("{name}.properties")),
            dir.path(),
            &ns.addr,
            "registerNameServerPeriod=1000\n",
        )
    };
    let brokers: Vec<BrokerProcess> = ["broker-a", "broker-a-s", "broker-b", "broker-b-s"]
        .iter()
        .map(|name| BrokerProcess::spawn(&overridden(name)))
        .collect();
    let refs: Vec<&BrokerProcess> = brokers.iter().collect();
    let admin = admin(&ns.addr, "ha-deploy-admin").await;
    wait_with_logs("both slaves connected", &refs, || async {
        info_u64(&admin, &brokers[0].addr, "haConnectionCount").await == Some(1)
            && info_u64(&admin, &brokers[2].addr, "haConnectionCount").await == Some(1)
    })
    .await;
    let client = client();
    for (master, group) in [(&brokers[0], "a"), (&brokers[2], "b")] {
        // autoCreateTopicEnable=false in the files: the operator creates topics.
        create_topic(&client, &master.addr, "Deployed", 4).await;
        send_many(&client, &master.addr, "Deployed", group, 20).await;
    }
    // SYNC_MASTER: each SEND_OK above was on the slave before it returned.
    for (master, slave) in [(&brokers[0], &brokers[1]), (&brokers[2], &brokers[3])] {
        let m = info_u64(&admin, &master.addr, "commitLogMaxOffset").await;
        let s = info_u64(&admin, &slave.addr, "commitLogMaxOffset").await;
        assert!(m.is_some() && s >= m, "master {m:?}, slave {s:?}");
    }
    let info = admin.cluster_info().await.unwrap();
    for (name, master, slave) in [
        ("broker-a", &brokers[0], &brokers[1]),
        ("broker-b", &brokers[2], &brokers[3]),
    ] {
        assert_eq!(
            info.broker_addr_table[name].broker_addrs,
            BTreeMap::from([(0, master.addr.clone()), (1, slave.addr.clone())])
        );
    }
    admin.shutdown().await;
}

/// `slaveReadEnable`: a consumer reading far behind the commit log end is
/// told to pull from the slave (`suggestWhichBrokerId`), and the client does.
/// `accessMessageInMemoryMaxRatio=0` makes every read but the newest "far
/// behind", so the test needs no gigabytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_far_behind_is_sent_to_the_slave() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = admin(&ns.addr, "ha-slow-admin").await;
    let client = client();
    let extra = "slaveReadEnable=true\naccessMessageInMemoryMaxRatio=0\n";
    let master = BrokerProcess::spawn(&config(
        dir.path(),
        "master",
        &ns.addr,
        "ASYNC_MASTER",
        extra,
    ));
    let slave = BrokerProcess::spawn(&config(dir.path(), "slave", &ns.addr, "SLAVE", extra));
    create_topic(&client, &master.addr, "SlowReader", 1).await;
    for i in 0..10 {
        let body = format!("slow-{i}");
        send(
            &client,
            &master.addr,
            message("SlowReader", 0, "", "", body.as_bytes()),
        )
        .await;
    }
    wait_with_logs("replicated", &[&master, &slave], || {
        caught_up(&admin, &master, &slave)
    })
    .await;
    heartbeat_consumer(&client, &master.addr, "c1", "probe", &[("SlowReader", "*")]).await;
    let pulled = pull(&client, &master.addr, "probe", "SlowReader", 0, 0, 0).await;
    assert_eq!(pulled.header.unwrap().suggest_which_broker_id, 1);

    let consumer = mq_client::PullConsumer::start(
        "slow-group",
        ClientConfig::new(ns.addr.clone()).with_instance_name("ha-slow-consumer"),
    )
    .await
    .unwrap();
    let mq = consumer.fetch_queues("SlowReader").await.unwrap()[0].clone();
    let mut got = Vec::new();
    let mut offset = 0;
    while got.len() < 10 {
        let result = consumer.pull(&mq, "*", offset, 1).await.unwrap();
        offset = result.next_begin_offset;
        got.extend(
            result
                .messages
                .iter()
                .map(|m| String::from_utf8_lossy(&m.body).into_owned()),
        );
    }
    let want: Vec<String> = (0..10).map(|i| format!("slow-{i}")).collect();
    assert_eq!(got, want);
    // Only the first pull went to the master: the rest were served by the slave.
    let served = info_u64(&admin, &slave.addr, "msgGetTotalTodayNow").await;
    assert!(served >= Some(9), "the slave served {served:?}");
    consumer.shutdown().await;
    admin.shutdown().await;
}

/// A SYNC_MASTER of `broker-a` (a SEND_OK means the slave has the
/// message) and its slave, connected; `topic` on the master with one
/// queue, group `g` subscribed to it.
async fn synced_pair(
    dir: &Path,
    namesrv: &str,
    admin: &AdminClient,
    client: &mq_remoting::RemotingClient,
    topic: &str,
) -> (BrokerProcess, BrokerProcess) {
    let master = BrokerProcess::spawn(&config(
        dir,
        "master",
        namesrv,
        "SYNC_MASTER",
        "syncFlushTimeout=3000\n",
    ));
    let slave = BrokerProcess::spawn(&config(dir, "slave", namesrv, "SLAVE", ""));
    wait_with_logs("the slave connected", &[&master, &slave], || async {
        info_u64(admin, &master.addr, "haConnectionCount").await == Some(1)
    })
    .await;
    create_topic(client, &master.addr, topic, 1).await;
    heartbeat_consumer(client, &master.addr, "c1", "g", &[(topic, "*")]).await;
    (master, slave)
}

/// Stops `slave` and starts its store again as master: that broker, and
/// the bodies of the first `want` messages of `topic` there, in order.
async fn promote(
    dir: &Path,
    namesrv: &str,
    client: &mq_remoting::RemotingClient,
    slave: BrokerProcess,
    topic: &str,
    want: usize,
) -> (BrokerProcess, Vec<String>) {
    slave.stop();
    let promoted = BrokerProcess::spawn(&config(dir, "slave", namesrv, "ASYNC_MASTER", ""));
    heartbeat_consumer(client, &promoted.addr, "c1", "g", &[(topic, "*")]).await;
    let got = pull_all(client, &promoted.addr, "g", topic, 1, want, LIMIT).await;
    let got = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect();
    (promoted, got)
}

/// The timer checkpoint in the store of broker `name`; `None` while there
/// is none (or it cannot be read).
fn timer_checkpoint(dir: &Path, name: &str) -> Option<TimerCheckpoint> {
    let path = TimerCheckpoint::path(&dir.join(name).join("config"));
    path.exists()
        .then(|| TimerCheckpoint::load(&path).ok())
        .flatten()
}

/// A timer message of `body` due `delay_ms` after its send, to `Promoted`.
fn timed(body: &str, delay_ms: &str) -> (mq_protocol::header::SendMessageRequestHeader, Vec<u8>) {
    with_property(
        message("Promoted", 0, "", "", body.as_bytes()),
        "TIMER_DELAY_MS",
        delay_ms,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slave_restarted_as_master_does_not_deliver_its_masters_timer_messages_again() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = admin(&ns.addr, "ha-timer-admin").await;
    let client = client();
    let (master, slave) = synced_pair(dir.path(), &ns.addr, &admin, &client, "Promoted").await;

    // Delivered by the master.
    send(&client, &master.addr, timed("first", "1000")).await;
    let got = pull_all(&client, &master.addr, "g", "Promoted", 1, 1, LIMIT).await;
    assert_eq!(bodies(&got), BTreeSet::from(["first".to_owned()]));
    let delivered = TimerCheckpoint {
        offset: 1,
        delivered: vec![],
    };
    // The master serves its checkpoint ...
    let response = call(
        &client,
        &master.addr,
        RemotingCommand::request(request_code::GET_TIMER_CHECK_POINT),
    )
    .await;
    assert_eq!(code(&response), Some(ResponseCode::SUCCESS));
    assert!(response.field("commitLogMaxOffset").is_some());
    assert!(TimerCheckpoint::decode(&response.body).is_ok());
    // ... and the slave's copy counts the delivery (within one copy
    // interval, 10 s).
    wait_with_logs(
        "the slave's timer checkpoint counts the delivery",
        &[&master, &slave],
        || async { timer_checkpoint(dir.path(), "slave").as_ref() == Some(&delivered) },
    )
    .await;

    // Pending when the master dies (due in 3 s; the kill follows the
    // SEND_OK at once).
    send(&client, &master.addr, timed("second", "3000")).await;
    master.kill();

    // The slave's store, restarted as master.
    let (promoted, got) = promote(dir.path(), &ns.addr, &client, slave, "Promoted", 2).await;
    // A copy of "first" would be due before "second" and so written to the
    // queue before it: with "second" there, the queue is complete.
    assert_eq!(got, ["first", "second"], "{}", promoted.log());
    assert_eq!(max_offset(&client, &promoted.addr, "Promoted", 0).await, 2);
    wait_with_logs(
        "the promoted broker checkpoints its own delivery",
        &[&promoted],
        || async {
            timer_checkpoint(dir.path(), "slave")
                == Some(TimerCheckpoint {
                    offset: 2,
                    delivered: vec![],
                })
        },
    )
    .await;
    admin.shutdown().await;
}

/// Where the schedule service of broker `name` stands on delay `level`
/// (its `config/delayOffset.json`); 0 while there is none.
fn delay_offset(dir: &Path, name: &str, level: i32) -> i64 {
    std::fs::read(dir.join(name).join("config").join("delayOffset.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|table| table["offsetTable"][level.to_string()].as_i64())
        .unwrap_or(0)
}

/// A message of `body` to `Delayed` at delay `level` (1 = 1 s, 2 = 5 s).
fn delayed(body: &str, level: &str) -> (mq_protocol::header::SendMessageRequestHeader, Vec<u8>) {
    with_property(
        message("Delayed", 0, "", "", body.as_bytes()),
        "DELAY",
        level,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slave_restarted_as_master_neither_repeats_nor_skips_its_masters_delayed_messages() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = admin(&ns.addr, "ha-delay-admin").await;
    let client = client();
    let (master, slave) = synced_pair(dir.path(), &ns.addr, &admin, &client, "Delayed").await;

    // Delivered by the master after 1 s ...
    send(&client, &master.addr, delayed("first", "1")).await;
    let got = pull_all(&client, &master.addr, "g", "Delayed", 1, 1, LIMIT).await;
    assert_eq!(bodies(&got), BTreeSet::from(["first".to_owned()]));
    // ... and the slave's copy of the delay offsets counts it (within one
    // copy interval, 10 s, once its log holds the delivered copy).
    wait_with_logs(
        "the slave's delay offsets count the delivery",
        &[&master, &slave],
        || async { delay_offset(dir.path(), "slave", 1) == 1 },
    )
    .await;

    // Pending when the master dies (due in 5 s; the kill follows the
    // SEND_OK at once).
    send(&client, &master.addr, delayed("second", "2")).await;
    master.kill();

    // The slave's store, restarted as master.
    let (promoted, got) = promote(dir.path(), &ns.addr, &client, slave, "Delayed", 2).await;
    // A second copy of "first" would be due at once, before "second": with
    // "second" there, the queue is complete.
    assert_eq!(got, ["first", "second"], "{}", promoted.log());
    assert_eq!(max_offset(&client, &promoted.addr, "Delayed", 0).await, 2);
    admin.shutdown().await;
}
