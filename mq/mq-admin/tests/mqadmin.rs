//! `mqadmin` against a live name server and broker: each command's output
//! parsed and checked, and errors as one line with a non-zero exit.

use mq_testkit::Cluster;

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn mqadmin(args: &[&str]) -> Out {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqadmin"))
        .args(args)
        .env_remove("NAMESRV_ADDR")
        .output()
        .await
        .expect("mqadmin runs");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_group_and_message_commands_against_a_live_broker() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv.addr.as_str();
    let broker = cluster.broker_addr.as_str();

    let created = mqadmin(&[
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
    assert!(created.ok, "{}", created.stderr);
    assert!(
        created
            .stdout
            .contains(&format!("create topic to {broker} success.")),
        "{}",
        created.stdout
    );
    assert!(
        created
            .stdout
            .contains("readQueueNums=3, writeQueueNums=5, perm=RW-"),
        "{}",
        created.stdout
    );

    let route = mqadmin(&["topicRoute", "-n", ns, "-t", "AdminTopic"]).await;
    assert!(route.ok, "{}", route.stderr);
    assert!(
        route.stdout.contains("\"readQueueNums\": 3")
            && route.stdout.contains("\"writeQueueNums\": 5"),
        "{}",
        route.stdout
    );
    assert!(route.stdout.contains(broker));

    let list = mqadmin(&["topicList", "-n", ns]).await;
    assert!(
        list.stdout.lines().any(|l| l == "AdminTopic"),
        "{}",
        list.stdout
    );

    let clusters = mqadmin(&["clusterList", "-n", ns]).await;
    let row = clusters
        .stdout
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>();
    assert_eq!(
        row,
        vec!["DefaultCluster", "broker-a", "0", broker],
        "{}",
        clusters.stdout
    );

    let sent = mqadmin(&[
        "sendMessage",
        "-n",
        ns,
        "-t",
        "AdminTopic",
        "-p",
        "hello admin",
        "-k",
        "admin-key",
        "-c",
        "TagA",
    ])
    .await;
    assert!(sent.ok, "{}", sent.stderr);
    assert!(
        sent.stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("SendOk")),
        "{}",
        sent.stdout
    );

    let by_key = mqadmin(&[
        "queryMsgByKey",
        "-n",
        ns,
        "-t",
        "AdminTopic",
        "-k",
        "admin-key",
    ])
    .await;
    assert!(by_key.ok, "{}", by_key.stderr);
    let rows: Vec<&str> = by_key.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{}", by_key.stdout);
    let offset_id = rows[0].split_whitespace().next().unwrap();

    let by_id = mqadmin(&["queryMsgById", "-n", ns, "-i", offset_id]).await;
    assert!(by_id.ok, "{}", by_id.stderr);
    assert!(
        by_id.stdout.contains("Message Body        : hello admin"),
        "{}",
        by_id.stdout
    );
    assert!(
        by_id.stdout.contains("Tags                : [TagA]"),
        "{}",
        by_id.stdout
    );

    let group = mqadmin(&[
        "updateSubGroup",
        "-n",
        ns,
        "-b",
        broker,
        "-g",
        "admin-group",
        "-r",
        "3",
    ])
    .await;
    assert!(
        group.ok && group.stdout.contains("retry_max_times: 3"),
        "{}{}",
        group.stdout,
        group.stderr
    );
    let deleted = mqadmin(&[
        "deleteSubGroup",
        "-n",
        ns,
        "-b",
        broker,
        "-g",
        "admin-group",
    ])
    .await;
    assert!(deleted.ok, "{}", deleted.stderr);

    let gone = mqadmin(&[
        "deleteTopic",
        "-n",
        ns,
        "-c",
        "DefaultCluster",
        "-t",
        "AdminTopic",
    ])
    .await;
    assert!(gone.ok, "{}", gone.stderr);
    let route = mqadmin(&["topicRoute", "-n", ns, "-t", "AdminTopic"]).await;
    assert!(!route.ok);
    assert_eq!(route.stderr.lines().count(), 1, "{}", route.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_help_and_errors() {
    let usage = mqadmin(&[]).await;
    assert!(
        usage.ok && usage.stdout.contains("updateTopic") && usage.stdout.contains("queryMsgByKey")
    );
    let help = mqadmin(&["help", "updateTopic"]).await;
    assert!(
        help.ok && help.stdout.contains("-t,--topic") && help.stdout.contains("-n,--namesrvAddr"),
        "{}",
        help.stdout
    );

    for (args, says) in [
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
        (vec!["topicList"], "no name server"),
        (vec!["topicList", "-n", "127.0.0.1:1"], "127.0.0.1:1"),
    ] {
        let out = mqadmin(&args).await;
        assert!(!out.ok, "{args:?} should fail");
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "{args:?}: one line, got {}",
            out.stderr
        );
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}
