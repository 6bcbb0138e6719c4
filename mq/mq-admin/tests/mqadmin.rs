//! `mqadmin` against a live name server and broker: each command's output
//! parsed and checked, and errors as one line with a non-zero exit. Each
//! test starts its own cluster (in this process, on port 0), so they run
//! in parallel without sharing state.

mod common;

use common::{run, Out};
use mq_testkit::{wait_for, Cluster};

async fn mqadmin(args: &[&str]) -> Out {
    run(env!("CARGO_BIN_EXE_mqadmin"), args, None).await
}

/// Runs mqadmin and insists that it succeeds.
async fn ok(args: &[&str]) -> Out {
    let out = mqadmin(args).await;
    assert!(
        out.ok,
        "mqadmin {args:?} failed:\n{}{}",
        out.stdout, out.stderr
    );
    out
}

/// Runs mqadmin, which must succeed, until it prints at least one row.
async fn ok_with_rows(args: &[&str]) -> Out {
    wait_for(&format!("mqadmin {args:?} to print a row"), || async {
        let out = ok(args).await;
        (!out.rows().is_empty()).then_some(out)
    })
    .await
}

/// `updateOrderConf -m get` for `topic`, which must print `orderConf=[conf]`.
async fn assert_order_conf(ns: &str, topic: &str, conf: &str) {
    let got = ok(&["updateOrderConf", "-n", ns, "-t", topic, "-m", "get"]).await;
    assert!(
        got.stdout.contains(&format!("orderConf=[{conf}]")),
        "{}",
        got.stdout
    );
}

/// Runs mqadmin and insists that it fails with one line on stderr that
/// says `says`.
async fn fails(args: &[&str], says: &str) {
    let out = mqadmin(args).await;
    assert!(!out.ok, "{args:?} should fail:\n{}", out.stdout);
    assert_eq!(
        out.stderr.lines().count(),
        1,
        "{args:?}: one line, got {}",
        out.stderr
    );
    assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
}

/// `sendMessage` and the broker name, queue id and unique id it reports.
async fn send(ns: &str, args: &[&str]) -> (String, i32, String) {
    let mut all = vec!["sendMessage", "-n", ns];
    all.extend_from_slice(args);
    let out = ok(&all).await;
    let row = out.rows().into_iter().next().expect("a result row");
    assert_eq!(row[2], "SEND_OK", "{}", out.stdout);
    (
        row[0].to_owned(),
        row[1].parse().unwrap(),
        row[3].to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_commands() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv.addr.as_str();
    let broker = cluster.broker_addr.as_str();

    let created = ok(&[
        "updateTopic",
        "-n",
        ns,
        "-b",
        broker,
        "-t",
        "AdminTopic",
        "-r",
        "3",
        "-w",
        "5",
    ])
    .await;
    assert!(created
        .stdout
        .contains(&format!("create topic to {broker} success.")));
    assert!(created
        .stdout
        .contains("readQueueNums=3, writeQueueNums=5, perm=RW-"));
    // By cluster too.
    ok(&[
        "updateTopic",
        "-n",
        ns,
        "-c",
        "DefaultCluster",
        "-t",
        "ClusterTopic",
    ])
    .await;

    let route = ok(&["topicRoute", "-n", ns, "-t", "AdminTopic"]).await;
    let json: serde_json::Value = serde_json::from_str(&route.stdout).unwrap();
    assert_eq!(
        json["queueDatas"][0]["readQueueNums"], 3,
        "{}",
        route.stdout
    );
    assert_eq!(json["queueDatas"][0]["writeQueueNums"], 5);
    assert_eq!(json["queueDatas"][0]["perm"], 6);
    assert_eq!(json["brokerDatas"][0]["brokerAddrs"]["0"], broker);

    let list = ok(&["topicList", "-n", ns]).await;
    assert!(list.stdout.lines().any(|l| l == "AdminTopic"));
    assert!(list.stdout.lines().any(|l| l == "ClusterTopic"));
    let by_cluster = ok(&["topicList", "-n", ns, "-c"]).await;
    assert!(
        by_cluster
            .rows()
            .iter()
            .any(|r| r[..] == ["DefaultCluster", "AdminTopic"]),
        "{}",
        by_cluster.stdout
    );

    send(ns, &["-t", "AdminTopic", "-p", "one"]).await;
    let status = ok(&["topicStatus", "-n", ns, "-t", "AdminTopic"]).await;
    let rows = status.rows();
    assert_eq!(rows.len(), 5, "{}", status.stdout);
    let stored: i64 = rows.iter().map(|r| r[3].parse::<i64>().unwrap()).sum();
    assert_eq!(stored, 1, "one message in one queue: {}", status.stdout);
    assert!(rows.iter().all(|r| r[0] == "broker-a"));

    let clusters = ok(&["topicClusterList", "-n", ns, "-t", "AdminTopic"]).await;
    assert_eq!(clusters.stdout.trim(), "DefaultCluster");

    let allocated = ok(&[
        "allocateMQ",
        "-n",
        ns,
        "-t",
        "AdminTopic",
        "-i",
        "10.0.0.2,10.0.0.1",
    ])
    .await;
    let json: serde_json::Value = serde_json::from_str(&allocated.stdout).unwrap();
    let first = json["result"]["10.0.0.1"].as_array().unwrap();
    let second = json["result"]["10.0.0.2"].as_array().unwrap();
    assert_eq!((first.len(), second.len()), (2, 1), "{}", allocated.stdout);
    assert_eq!(first[0]["queueId"], 0);
    assert_eq!(second[0]["queueId"], 2);

    let perm = ok(&[
        "updateTopicPerm",
        "-n",
        ns,
        "-c",
        "DefaultCluster",
        "-t",
        "AdminTopic",
        "-p",
        "4",
    ])
    .await;
    assert!(
        perm.stdout.contains("update topic perm from 6 to 4"),
        "{}",
        perm.stdout
    );
    let route = ok(&["topicRoute", "-n", ns, "-t", "AdminTopic"]).await;
    let json: serde_json::Value = serde_json::from_str(&route.stdout).unwrap();
    assert_eq!(json["queueDatas"][0]["perm"], 4, "{}", route.stdout);

    ok(&[
        "updateOrderConf",
        "-n",
        ns,
        "-t",
        "AdminTopic",
        "-m",
        "put",
        "-v",
        "broker-a:3",
    ])
    .await;
    assert_order_conf(ns, "AdminTopic", "broker-a:3").await;
    // Routes carry the order conf once the name servers are told to.
    ok(&[
        "updateNamesrvConfig",
        "-n",
        ns,
        "-k",
        "orderMessageEnable",
        "-v",
        "true",
    ])
    .await;
    let route = ok(&["topicRoute", "-n", ns, "-t", "AdminTopic"]).await;
    assert!(
        route.stdout.contains("\"orderTopicConf\": \"broker-a:3\""),
        "{}",
        route.stdout
    );
    ok(&[
        "updateOrderConf",
        "-n",
        ns,
        "-t",
        "AdminTopic",
        "-m",
        "delete",
    ])
    .await;
    fails(
        &["updateOrderConf", "-n", ns, "-t", "AdminTopic", "-m", "get"],
        "no order conf",
    )
    .await;
    fails(
        &[
            "updateOrderConf",
            "-n",
            ns,
            "-t",
            "AdminTopic",
            "-m",
            "put",
            "-v",
            "broker-a",
        ],
        "bad order conf",
    )
    .await;

    ok(&[
        "deleteTopic",
        "-n",
        ns,
        "-c",
        "DefaultCluster",
        "-t",
        "AdminTopic",
    ])
    .await;
    fails(&["topicRoute", "-n", ns, "-t", "AdminTopic"], "AdminTopic").await;
    fails(&["topicStatus", "-n", ns, "-t", "AdminTopic"], "AdminTopic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_commands() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv.addr.as_str();
    let broker = cluster.broker_addr.as_str();
    ok(&[
        "updateTopic",
        "-n",
        ns,
        "-b",
        broker,
        "-t",
        "MsgTopic",
        "-r",
        "4",
        "-w",
        "4",
    ])
    .await;

    let (name, qid, uniq) = send(
        ns,
        &[
            "-t",
            "MsgTopic",
            "-p",
            "hello admin",
            "-k",
            "admin-key",
            "-c",
            "TagA",
        ],
    )
    .await;
    assert_eq!(name, "broker-a");

    let by_key = ok(&[
        "queryMsgByKey",
        "-n",
        ns,
        "-t",
        "MsgTopic",
        "-k",
        "admin-key",
    ])
    .await;
    let rows = by_key.rows();
    assert_eq!(rows.len(), 1, "{}", by_key.stdout);
    assert_eq!(rows[0][1], qid.to_string());
    let offset_id = rows[0][0];

    let by_id = ok(&["queryMsgById", "-n", ns, "-i", offset_id]).await;
    assert!(
        by_id.stdout.contains("Message Body        : hello admin"),
        "{}",
        by_id.stdout
    );
    assert!(by_id.stdout.contains("Tags                : [TagA]"));

    let by_uniq = ok(&[
        "queryMsgByUniqueKey",
        "-n",
        ns,
        "-t",
        "MsgTopic",
        "-i",
        &uniq,
    ])
    .await;
    assert!(
        by_uniq
            .stdout
            .contains(&format!("OffsetID            : {offset_id}")),
        "{}",
        by_uniq.stdout
    );
    fails(
        &[
            "queryMsgByUniqueKey",
            "-n",
            ns,
            "-t",
            "MsgTopic",
            "-i",
            "0000",
        ],
        "no message",
    )
    .await;

    let by_offset = ok(&[
        "queryMsgByOffset",
        "-n",
        ns,
        "-t",
        "MsgTopic",
        "-b",
        "broker-a",
        "-i",
        &qid.to_string(),
        "-o",
        "0",
    ])
    .await;
    assert!(
        by_offset
            .stdout
            .contains("Message Body        : hello admin"),
        "{}",
        by_offset.stdout
    );
    fails(
        &[
            "queryMsgByOffset",
            "-n",
            ns,
            "-t",
            "MsgTopic",
            "-b",
            "broker-a",
            "-i",
            &qid.to_string(),
            "-o",
            "7",
        ],
        "no message at offset 7",
    )
    .await;

    // Three TagA and two TagB into queue 1, aimed with -b and -i.
    let other = (qid + 1) % 4;
    for tag in ["TagA", "TagB", "TagA", "TagB", "TagA"] {
        let (_, q, _) = send(
            ns,
            &[
                "-t",
                "MsgTopic",
                "-p",
                &format!("to {other}"),
                "-c",
                tag,
                "-b",
                "broker-a",
                "-i",
                &other.to_string(),
            ],
        )
        .await;
        assert_eq!(q, other);
    }
    let counted = ok(&[
        "printMsgByQueue",
        "-n",
        ns,
        "-t",
        "MsgTopic",
        "-a",
        "broker-a",
        "-i",
        &other.to_string(),
        "-f",
        "true",
    ])
    .await;
    assert_eq!(
        counted.rows(),
        vec![
            vec!["Tag:", "TagA", "Count:", "3"],
            vec!["Tag:", "TagB", "Count:", "2"]
        ],
        "{}",
        counted.stdout
    );

    let printed = ok(&["printMsg", "-n", ns, "-t", "MsgTopic", "-s", "TagB"]).await;
    let bodies: Vec<&str> = printed
        .stdout
        .lines()
        .filter(|l| l.starts_with("MSGID:"))
        .collect();
    assert_eq!(bodies.len(), 2, "{}", printed.stdout);
    assert!(bodies
        .iter()
        .all(|l| l.ends_with(&format!("BODY: to {other}"))));

    let consumed = ok(&["consumeMessage", "-n", ns, "-t", "MsgTopic", "-c", "4"]).await;
    assert_eq!(
        consumed
            .stdout
            .lines()
            .filter(|l| l.starts_with("MSGID:"))
            .count(),
        4
    );
    assert!(consumed.stdout.contains("Consume ok: 4 message(s)"));
    let one_queue = ok(&[
        "consumeMessage",
        "-n",
        ns,
        "-t",
        "MsgTopic",
        "-b",
        "broker-a",
        "-i",
        &other.to_string(),
        "-o",
        "3",
    ])
    .await;
    assert!(
        one_queue.stdout.contains("Consume ok: 2 message(s)"),
        "{}",
        one_queue.stdout
    );

    let rt = ok(&[
        "checkMsgSendRT",
        "-n",
        ns,
        "-t",
        "MsgTopic",
        "-a",
        "3",
        "-s",
        "16",
    ])
    .await;
    let rows = rt.rows();
    assert_eq!(rows.len(), 4, "{}", rt.stdout);
    assert!(rows[..3].iter().all(|r| r[2] == "SEND_OK"));
    assert!(rt
        .summary("Avg RT")
        .is_some_and(|v| v.parse::<f64>().is_ok()));

    fails(
        &[
            "sendMessage",
            "-n",
            ns,
            "-t",
            "MsgTopic",
            "-p",
            "x",
            "-i",
            "1",
        ],
        "needs -b",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_msg_by_id_pushes_the_message_to_a_client() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv.addr.as_str();
    cluster.create_topic("PushTopic", 2).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let consumer = mq_client::PushConsumer::new(
        mq_client::PushConsumerConfig::new("push-group"),
        mq_client::ClientConfig::new(ns).with_instance_name("mqadmin-push-test"),
    );
    consumer.subscribe("PushTopic", "*").unwrap();
    consumer
        .start(mq_client::Listener::concurrent(
            move |_m: Vec<mq_client::MessageExt>| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    mq_client::ConsumeStatus::Success
                }
            },
        ))
        .await
        .unwrap();
    send(ns, &["-t", "PushTopic", "-p", "push me", "-k", "push-key"]).await;
    let by_key = ok_with_rows(&[
        "queryMsgByKey",
        "-n",
        ns,
        "-t",
        "PushTopic",
        "-k",
        "push-key",
    ])
    .await;
    let offset_id = by_key.rows()[0][0].to_owned();
    wait_for("the first delivery", || async {
        (runs.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let connections = ok_with_rows(&["consumerConnection", "-n", ns, "-g", "push-group"]).await;
    let client_id = connections
        .stdout
        .split_whitespace()
        .find(|w| w.contains('@'))
        .expect("a client id")
        .to_owned();
    let pushed = ok(&[
        "queryMsgById",
        "-n",
        ns,
        "-i",
        &offset_id,
        "-g",
        "push-group",
        "-d",
        &client_id,
    ])
    .await;
    assert!(
        pushed.stdout.contains(
            "ConsumeMessageDirectlyResult [order=false, autoCommit=true, consumeResult=CR_SUCCESS, remark=null"
        ),
        "{}",
        pushed.stdout
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    fails(
        &[
            "queryMsgById",
            "-n",
            ns,
            "-i",
            &offset_id,
            "-g",
            "push-group",
            "-d",
            "1.2.3.4@nobody",
        ],
        "not online",
    )
    .await;
    consumer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_and_cluster_commands() {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("broker-a.properties");
    std::fs::write(
        &config_file,
        "# ours\nbrokerName=broker-a\nslaveReadEnable=false\n",
    )
    .unwrap();
    let path = config_file.display().to_string();
    let cluster = Cluster::start_with(move |broker, _| broker.broker_config_path = path).await;
    let ns = cluster.namesrv.addr.as_str();
    let broker = cluster.broker_addr.as_str();

    let clusters = ok_with_rows(&["clusterList", "-n", ns]).await;
    let row = &clusters.rows()[0];
    assert_eq!(
        row[..4],
        ["DefaultCluster", "broker-a", "0", broker],
        "{}",
        clusters.stdout
    );
    assert_eq!(row.last(), Some(&"true"), "active: {}", clusters.stdout);

    ok(&[
        "updateBrokerConfig",
        "-n",
        ns,
        "-b",
        broker,
        "-k",
        "slaveReadEnable",
        "-v",
        "true",
    ])
    .await;
    let config = ok(&["getBrokerConfig", "-n", ns, "-b", broker]).await;
    assert!(
        config
            .rows()
            .iter()
            .any(|r| r[..] == ["slaveReadEnable", "=", "true"]),
        "{}",
        config.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&config_file).unwrap(),
        "# ours\nbrokerName=broker-a\nslaveReadEnable=true\n",
        "persisted in place"
    );
    fails(
        &[
            "updateBrokerConfig",
            "-n",
            ns,
            "-b",
            broker,
            "-k",
            "defaultTopicQueueNums",
            "-v",
            "0",
        ],
        "defaultTopicQueueNums",
    )
    .await;
    fails(
        &[
            "updateBrokerConfig",
            "-n",
            ns,
            "-b",
            broker,
            "-k",
            "brokerName",
            "-v",
            "other",
        ],
        "cannot change",
    )
    .await;
    assert!(
        std::fs::read_to_string(&config_file)
            .unwrap()
            .contains("brokerName=broker-a\n"),
        "a refused update changes nothing"
    );

    // Traffic for the runtime figures.
    let sent = ok(&[
        "sendMsgStatus",
        "-n",
        ns,
        "-b",
        "broker-a",
        "-c",
        "3",
        "-s",
        "32",
    ])
    .await;
    let lines: Vec<&str> = sent.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", sent.stdout);
    assert!(lines
        .iter()
        .all(|l| l.starts_with("rt=") && l.contains("sendStatus=SEND_OK")));

    let status = ok(&["brokerStatus", "-n", ns, "-b", broker]).await;
    let value = |key: &str| {
        status
            .stdout
            .lines()
            .find_map(|l| {
                l.strip_prefix(key)
                    .filter(|r| r.trim_start().starts_with(':'))
            })
            .map(|r| r.trim_start()[1..].trim().to_owned())
    };
    assert_eq!(
        value("msgPutTotalTodayNow").as_deref(),
        Some("3"),
        "{}",
        status.stdout
    );
    assert_eq!(value("brokerRole").as_deref(), Some("ASYNC_MASTER"));
    assert!(value("putTps").is_some());

    let clusters = ok(&["clusterList", "-n", ns]).await;
    let row = &clusters.rows()[0];
    let hours: f64 = row[row.len() - 2]
        .parse()
        .expect("hours of messages stored");
    assert!((0.0..1.0).contains(&hours), "{}", clusters.stdout);

    let more = ok(&["clusterList", "-n", ns, "-m"]).await;
    assert_eq!(
        more.rows()[0][..],
        ["DefaultCluster", "broker-a", "0", "0", "0", "3", "0"],
        "{}",
        more.stdout
    );

    let rt = ok(&["clusterListRT", "-n", ns, "-a", "2", "-s", "16"]).await;
    let row = &rt.rows()[0];
    assert_eq!(row[..2], ["DefaultCluster", "broker-a"], "{}", rt.stdout);
    assert_eq!(row[3..], ["2", "0"], "{}", rt.stdout);

    for command in ["cleanExpiredCQ", "cleanUnusedTopic"] {
        let cleaned = ok(&[command, "-n", ns, "-c", "DefaultCluster"]).await;
        assert!(
            cleaned.stdout.starts_with(&format!("{broker}: success")),
            "{}",
            cleaned.stdout
        );
    }

    let wiped = ok(&["wipeWritePerm", "-n", ns, "-b", "broker-a"]).await;
    let count: i32 = wiped
        .stdout
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(count > 0, "{}", wiped.stdout);
    let route = ok(&["topicRoute", "-n", ns, "-t", "broker-a"]).await;
    let json: serde_json::Value = serde_json::from_str(&route.stdout).unwrap();
    assert_eq!(
        json["queueDatas"][0]["perm"].as_i64().unwrap() & 2,
        0,
        "write bit wiped"
    );

    fails(
        &["brokerStatus", "-n", ns, "-c", "NoSuchCluster"],
        "NoSuchCluster",
    )
    .await;
    fails(&["wipeWritePerm", "-n", ns], "missing required option -b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namesrv_commands() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv.addr.as_str();

    ok(&[
        "updateKvConfig",
        "-n",
        ns,
        "-s",
        "ORDER_TOPIC_CONFIG",
        "-k",
        "KvTopic",
        "-v",
        "broker-a:2",
    ])
    .await;
    assert_order_conf(ns, "KvTopic", "broker-a:2").await;
    ok(&[
        "deleteKvConfig",
        "-n",
        ns,
        "-s",
        "ORDER_TOPIC_CONFIG",
        "-k",
        "KvTopic",
    ])
    .await;
    fails(
        &["updateOrderConf", "-n", ns, "-t", "KvTopic", "-m", "get"],
        "no order conf",
    )
    .await;

    let config = ok(&["getNamesrvConfig", "-n", ns]).await;
    assert!(config
        .stdout
        .starts_with(&format!("============{ns}============")));
    assert!(
        config
            .rows()
            .iter()
            .any(|r| r[..] == ["orderMessageEnable", "=", "false"]),
        "{}",
        config.stdout
    );
    ok(&[
        "updateNamesrvConfig",
        "-n",
        ns,
        "-k",
        "orderMessageEnable",
        "-v",
        "true",
    ])
    .await;
    let config = ok(&["getNamesrvConfig", "-n", ns]).await;
    assert!(config
        .rows()
        .iter()
        .any(|r| r[..] == ["orderMessageEnable", "=", "true"]));
    fails(
        &[
            "updateNamesrvConfig",
            "-n",
            ns,
            "-k",
            "kvConfigPath",
            "-v",
            "/tmp/x",
        ],
        "black list",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_help_and_errors() {
    let usage = ok(&[]).await;
    for name in [
        "updateTopic",
        "deleteTopic",
        "topicList",
        "topicRoute",
        "topicStatus",
        "topicClusterList",
        "updateTopicPerm",
        "updateOrderConf",
        "allocateMQ",
        "statsAll",
        "clusterList",
        "clusterRT",
        "clusterListRT",
        "updateBrokerConfig",
        "brokerStatus",
        "brokerConsumeStats",
        "getBrokerConfig",
        "wipeWritePerm",
        "cleanExpiredCQ",
        "cleanUnusedTopic",
        "sendMsgStatus",
        "queryMsgById",
        "queryMsgByKey",
        "queryMsgByOffset",
        "queryMsgByUniqueKey",
        "checkMsgSendRT",
        "sendMessage",
        "consumeMessage",
        "printMsg",
        "printMsgByQueue",
        "resetOffsetByTime",
        "consumerProgress",
        "consumerStatus",
        "getConsumerStatus",
        "updateSubGroup",
        "deleteSubGroup",
        "cloneGroupOffset",
        "consumerConnection",
        "producerConnection",
        "updateKvConfig",
        "deleteKvConfig",
        "getNamesrvConfig",
        "updateNamesrvConfig",
        "startMonitoring",
    ] {
        assert!(
            usage
                .stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} missing from:\n{}",
            usage.stdout
        );
        let help = ok(&["help", name]).await;
        assert!(
            help.stdout.contains("-n,--namesrvAddr"),
            "{name}: {}",
            help.stdout
        );
    }
    let help = ok(&["help", "resetOffsetByTime"]).await;
    for flag in ["-g,--group", "-t,--topic", "-s,--timestamp", "-f,--force"] {
        assert!(help.stdout.contains(flag), "{}", help.stdout);
    }

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["noSuchCommand"], "unknown command"),
        (
            vec!["updateTopic", "-n", "127.0.0.1:1", "-b", "127.0.0.1:2"],
            "missing required option -t",
        ),
        (
            vec![
                "updateTopic",
                "-n",
                "127.0.0.1:1",
                "-b",
                "127.0.0.1:2",
                "-t",
                "bad topic!",
            ],
            "invalid",
        ),
        (
            vec![
                "updateTopic",
                "-n",
                "127.0.0.1:1",
                "-b",
                "127.0.0.1:2",
                "-t",
                "T",
                "-r",
                "many",
            ],
            "must be a number",
        ),
        (
            vec![
                "updateTopicPerm",
                "-n",
                "127.0.0.1:1",
                "-b",
                "127.0.0.1:2",
                "-t",
                "T",
                "-p",
                "3",
            ],
            "must be 2, 4 or 6",
        ),
        (
            vec![
                "resetOffsetByTime",
                "-n",
                "127.0.0.1:1",
                "-g",
                "g",
                "-t",
                "T",
                "-s",
                "yesterday",
            ],
            "bad time",
        ),
        (
            vec![
                "resetOffsetByTime",
                "-n",
                "127.0.0.1:1",
                "-g",
                "g",
                "-t",
                "T",
                "-s",
                "now",
                "-f",
                "maybe",
            ],
            "true or false",
        ),
        (
            vec![
                "updateOrderConf",
                "-n",
                "127.0.0.1:1",
                "-t",
                "T",
                "-m",
                "list",
            ],
            "get, put or delete",
        ),
        (
            vec!["printMsg", "-n", "127.0.0.1:1", "-t", "T", "-c", "GBK"],
            "charset",
        ),
        (vec!["topicList"], "no name server"),
        (vec!["topicList", "-n", "127.0.0.1:1"], "127.0.0.1:1"),
        (vec!["clusterList", "-n", "127.0.0.1:1"], "127.0.0.1:1"),
    ];
    for (args, says) in cases {
        fails(&args, says).await;
    }

    // Against a live cluster: unknown topics and groups.
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv.addr.as_str();
    fails(
        &["topicStatus", "-n", ns, "-t", "NoSuchTopic"],
        "NoSuchTopic",
    )
    .await;
    fails(
        &["consumerProgress", "-n", ns, "-g", "no-such-group"],
        "no-such-group",
    )
    .await;
    fails(
        &["consumerConnection", "-n", ns, "-g", "no-such-group"],
        "not online",
    )
    .await;
    fails(
        &["consumerStatus", "-n", ns, "-g", "no-such-group"],
        "not online",
    )
    .await;
    fails(
        &[
            "resetOffsetByTime",
            "-n",
            ns,
            "-g",
            "no-such-group",
            "-t",
            "TBW102",
            "-s",
            "now",
        ],
        "no-such-group",
    )
    .await;
    fails(
        &[
            "producerConnection",
            "-n",
            ns,
            "-g",
            "no-such-group",
            "-t",
            "TBW102",
        ],
        "not online",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commands() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv.addr.as_str();
    let broker = cluster.broker_addr.as_str();

    let group = ok(&[
        "updateSubGroup",
        "-n",
        ns,
        "-b",
        broker,
        "-g",
        "admin-group",
        "-r",
        "3",
        "-s",
        "false",
        "-o",
        "true",
    ])
    .await;
    assert!(group
        .stdout
        .contains(&format!("create subscription group to {broker} success.")));
    assert!(
        group
            .stdout
            .contains("groupName=admin-group, consumeEnable=false")
            && group.stdout.contains("retryMaxTimes=3")
            && group.stdout.contains("consumeMessageOrderly=true"),
        "{}",
        group.stdout
    );
    // By cluster too; then the group is gone after deleteSubGroup.
    ok(&[
        "updateSubGroup",
        "-n",
        ns,
        "-c",
        "DefaultCluster",
        "-g",
        "admin-group-2",
    ])
    .await;
    let deleted = ok(&[
        "deleteSubGroup",
        "-n",
        ns,
        "-b",
        broker,
        "-g",
        "admin-group",
    ])
    .await;
    assert!(deleted
        .stdout
        .contains("delete subscription group [admin-group]"));
    fails(
        &[
            "updateSubGroup",
            "-n",
            ns,
            "-b",
            broker,
            "-g",
            "g",
            "-s",
            "yes",
        ],
        "true or false",
    )
    .await;
    fails(&["deleteSubGroup", "-n", ns, "-g", "g"], "-b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_commands_remove_queues_of_topics_the_broker_no_longer_has() {
    let root = tempfile::tempdir().unwrap();
    let store_root = root.path().to_owned();
    let mut first = Cluster::start_with({
        let r = store_root.clone();
        move |_, store| store.store_path_root_dir = r
    })
    .await;
    let ns = first.namesrv.addr.clone();
    ok(&[
        "updateTopic",
        "-n",
        &ns,
        "-b",
        &first.broker_addr,
        "-t",
        "Stray",
        "-r",
        "2",
        "-w",
        "2",
    ])
    .await;
    send(&ns, &["-t", "Stray", "-p", "left behind"]).await;
    first.stop().await;
    drop(first);

    // The topic leaves the topic table but its consume queues stay.
    let topics_file = store_root.join("config/topics.json");
    let mut topics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&topics_file).unwrap()).unwrap();
    assert!(topics["topicConfigTable"]
        .as_object_mut()
        .unwrap()
        .remove("Stray")
        .is_some());
    std::fs::write(&topics_file, topics.to_string()).unwrap();
    assert!(store_root.join("consumequeue/Stray").exists());

    let second = Cluster::start_with({
        let r = store_root.clone();
        move |_, store| store.store_path_root_dir = r
    })
    .await;
    let ns = second.namesrv.addr.as_str();
    let broker = second.broker_addr.as_str();
    // Its message is still in the commit log: not expired.
    let expired = ok(&["cleanExpiredCQ", "-n", ns, "-b", broker]).await;
    assert!(
        expired
            .stdout
            .contains("removed the consume queues of 0 topic(s)"),
        "{}",
        expired.stdout
    );
    assert!(store_root.join("consumequeue/Stray").exists());
    let unused = ok(&["cleanUnusedTopic", "-n", ns, "-b", broker]).await;
    assert!(
        unused
            .stdout
            .contains("removed the consume queues of 1 topic(s)"),
        "{}",
        unused.stdout
    );
    assert!(!store_root.join("consumequeue/Stray").exists());
    let again = ok(&["cleanUnusedTopic", "-n", ns, "-c", "DefaultCluster"]).await;
    assert!(again.stdout.contains("of 0 topic(s)"), "{}", again.stdout);
}

/// The admin requests this work added, sent malformed: each gets an error
/// answer, the broker keeps serving and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_admin_requests_get_clear_errors() {
    use mq_protocol::{request_code as code, RemotingCommand};

    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("broker.properties");
    std::fs::write(&config_file, "brokerName=broker-a\n").unwrap();
    let path = config_file.display().to_string();
    let cluster = Cluster::start_with(move |broker, _| broker.broker_config_path = path).await;
    let ns = cluster.namesrv.addr.as_str();
    let broker = cluster.broker_addr.as_str();
    let admin = mq_client::AdminClient::start(
        mq_client::ClientConfig::new(ns).with_instance_name("malformed-requests"),
    )
    .await
    .unwrap();

    let requests = [
        RemotingCommand::request(code::GET_TOPIC_STATS_INFO),
        RemotingCommand::request(code::GET_CONSUME_STATS),
        RemotingCommand::request(code::GET_BROKER_CONSUME_STATS).with_field("isOrder", "maybe"),
        RemotingCommand::request(code::VIEW_BROKER_STATS_DATA)
            .with_field("statsName", "NO_SUCH_STATS")
            .with_field("statsKey", "x"),
        RemotingCommand::request(code::QUERY_TOPIC_CONSUME_BY_WHO),
        RemotingCommand::request(code::INVOKE_BROKER_TO_RESET_OFFSET)
            .with_field("group", "g")
            .with_field("topic", "T")
            .with_field("timestamp", "soon")
            .with_field("isForce", "true"),
        RemotingCommand::request(code::INVOKE_BROKER_TO_GET_CONSUMER_STATUS)
            .with_field("group", "g")
            .with_field("topic", "T"),
        RemotingCommand::request(code::GET_CONSUMER_RUNNING_INFO)
            .with_field("consumerGroup", "g")
            .with_field("clientId", "nobody"),
        RemotingCommand::request(code::CLONE_GROUP_OFFSET).with_field("srcGroup", "a"),
        RemotingCommand::request(code::UPDATE_BROKER_CONFIG).with_body(&b"\xff\xfe=\x00"[..]),
        RemotingCommand::request(code::UPDATE_BROKER_CONFIG)
            .with_body(&b"slaveReadEnable=true\nbrokerPermission=banana\n"[..]),
        RemotingCommand::request(code::UPDATE_BROKER_CONFIG).with_body(&b""[..]),
    ];
    for request in requests {
        let what = request.code;
        let answer = admin.call_broker(broker, request).await;
        assert!(answer.is_err(), "code {what} should be refused");
    }
    assert_eq!(
        std::fs::read_to_string(&config_file).unwrap(),
        "brokerName=broker-a\n",
        "no refused update reached the file"
    );
    let config = ok(&["getBrokerConfig", "-n", ns, "-b", broker]).await;
    assert!(
        config
            .rows()
            .iter()
            .any(|r| r[..] == ["slaveReadEnable", "=", "false"]),
        "a half-valid update applies nothing: {}",
        config.stdout
    );
    admin.shutdown().await;
}
