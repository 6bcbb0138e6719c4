//! The quickstart producer and consumer, the consumer-side `mqadmin`
//! commands that need a live consumer (progress, status, connections,
//! offset reset and clone, stats, monitoring), and `mqshutdown` against
//! real `mqnamesrv` / `mqbroker` processes.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::{run, Out};
use mq_client::{ClientConfig, Message, Producer, ProducerConfig};
use mq_testkit::{wait_for, Cluster};

const GROUP: &str = "please_rename_unique_group_name_4";

/// mqadmin with NAMESRV_ADDR set (not -n), which must succeed.
async fn admin(ns: &str, args: &[&str]) -> Out {
    let out = run(env!("CARGO_BIN_EXE_mqadmin"), args, Some(ns)).await;
    assert!(out.ok, "mqadmin {args:?}:\n{}{}", out.stdout, out.stderr);
    out
}

/// A child process killed (by PID) if the test ends early.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the quickstart consumer printed so far.
#[derive(Default)]
struct Received {
    lines: usize,
    bodies: BTreeSet<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_and_consumer_commands() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv.addr.clone();
    let ns = ns.as_str();

    let sent = run(env!("CARGO_BIN_EXE_quickstart-producer"), &[], Some(ns)).await;
    assert!(sent.ok, "{}", sent.stderr);
    let lines: Vec<&str> = sent.stdout.lines().collect();
    assert_eq!(lines.len(), 1000);
    assert!(lines
        .iter()
        .all(|l| l.starts_with("SendResult [sendStatus=SEND_OK")
            && l.contains("messageQueue=MessageQueue [topic=TopicTest, brokerName=broker-a")));

    let mut child = Command::new(env!("CARGO_BIN_EXE_quickstart-consumer"))
        .env("NAMESRV_ADDR", ns)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the consumer starts");
    let stdout = child.stdout.take().unwrap();
    let consumer = Guard(child);
    let received = Arc::new(Mutex::new(Received::default()));
    {
        let received = received.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(body) = line.split("body=").nth(1) {
                    let mut r = received.lock().unwrap();
                    r.lines += 1;
                    r.bodies.insert(body.trim_end_matches(']').to_owned());
                }
            }
        });
    }
    let lines_now = || received.lock().unwrap().lines;
    wait_for("1000 messages received", || async {
        (received.lock().unwrap().bodies.len() == 1000).then_some(())
    })
    .await;
    assert!(received
        .lock()
        .unwrap()
        .bodies
        .iter()
        .all(|b| b.starts_with("Hello RocketMQ ")));
    assert!(received
        .lock()
        .unwrap()
        .bodies
        .contains("Hello RocketMQ 999"));

    // Connections and status while the consumer runs.
    let conn = admin(ns, &["consumerConnection", "-g", GROUP]).await;
    let rows = conn.rows();
    let client_id = rows[0][1].to_owned();
    assert!(client_id.contains("quickstart-consumer"), "{}", conn.stdout);
    assert!(conn.stdout.contains("Topic: TopicTest"), "{}", conn.stdout);
    assert!(conn.stdout.contains("MessageModel: CLUSTERING"));

    let progress = wait_for("the offsets committed", || async {
        let out = admin(ns, &["consumerProgress", "-g", GROUP, "-s", "true"]).await;
        (out.summary("Diff Total") == Some("0")).then_some(out)
    })
    .await;
    let topic_rows: Vec<_> = progress
        .rows()
        .into_iter()
        .filter(|r| r[0] == "TopicTest")
        .collect();
    assert!(!topic_rows.is_empty(), "{}", progress.stdout);
    let (stored, consumed): (i64, i64) = topic_rows.iter().fold((0, 0), |(s, c), r| {
        (
            s + r[3].parse::<i64>().unwrap(),
            c + r[4].parse::<i64>().unwrap(),
        )
    });
    assert_eq!((stored, consumed), (1000, 1000), "{}", progress.stdout);
    assert!(
        topic_rows.iter().all(|r| r[5] == "127.0.0.1"),
        "client IP: {}",
        progress.stdout
    );

    let groups = admin(ns, &["consumerProgress"]).await;
    let row = groups
        .rows()
        .into_iter()
        .find(|r| r[0] == GROUP)
        .expect("the group listed");
    assert_eq!(row[1], "1", "one member: {}", groups.stdout);

    let status = admin(ns, &["consumerStatus", "-g", GROUP]).await;
    assert_eq!(status.rows()[0][1], client_id, "{}", status.stdout);
    let detail = admin(ns, &["consumerStatus", "-g", GROUP, "-i", &client_id]).await;
    let offsets: i64 = detail
        .rows()
        .iter()
        .filter(|r| r[0] == "TopicTest")
        .map(|r| r[3].parse::<i64>().unwrap())
        .sum();
    assert_eq!(offsets, 1000, "{}", detail.stdout);
    assert!(
        detail.stdout.contains("PROP_CONSUME_TYPE"),
        "{}",
        detail.stdout
    );

    let from_client = admin(ns, &["getConsumerStatus", "-g", GROUP, "-t", "TopicTest"]).await;
    assert!(
        from_client.stdout.contains(&format!("client: {client_id}")),
        "{}",
        from_client.stdout
    );
    let offsets: i64 = from_client
        .rows()
        .iter()
        .filter(|r| r[0] == "broker-a")
        .map(|r| r[2].parse::<i64>().unwrap())
        .sum();
    assert_eq!(offsets, 1000, "{}", from_client.stdout);

    let stats = admin(ns, &["statsAll", "-t", "TopicTest"]).await;
    let row = stats
        .rows()
        .into_iter()
        .find(|r| r[1] == GROUP)
        .expect("a group row");
    assert_eq!(row[0], "TopicTest");
    assert_eq!(row[2], "0", "no backlog: {}", stats.stdout);
    assert_eq!(row[5], "1000", "in 24h: {}", stats.stdout);
    assert!(
        row[6].parse::<i64>().unwrap() >= 1000,
        "out 24h: {}",
        stats.stdout
    );

    let active = admin(ns, &["statsAll", "-a"]).await;
    let topics: Vec<&str> = active.rows().iter().map(|r| r[0]).collect();
    assert!(topics.contains(&"TopicTest"), "{}", active.stdout);
    assert!(
        !topics.contains(&"TBW102"),
        "-a leaves idle topics out: {}",
        active.stdout
    );

    let broker_stats = admin(ns, &["brokerConsumeStats", "-b", &cluster.broker_addr]).await;
    assert!(broker_stats
        .rows()
        .iter()
        .any(|r| r[0] == "TopicTest" && r[1] == GROUP));
    assert_eq!(broker_stats.summary("Diff Total"), Some("0"));

    let monitor = admin(ns, &["startMonitoring", "-r", "1"]).await;
    assert!(
        monitor
            .stdout
            .contains(&format!("[MONITOR] group={GROUP} online=1 topics=")),
        "{}",
        monitor.stdout
    );

    // A reset to the beginning makes the running consumer read it all again.
    let before = lines_now();
    let reset = admin(
        ns,
        &[
            "resetOffsetByTime",
            "-g",
            GROUP,
            "-t",
            "TopicTest",
            "-s",
            "0",
        ],
    )
    .await;
    let reset_rows: Vec<_> = reset
        .rows()
        .into_iter()
        .filter(|r| r[0] == "broker-a")
        .collect();
    assert!(
        !reset_rows.is_empty() && reset_rows.iter().all(|r| r[2] == "0"),
        "{}",
        reset.stdout
    );
    wait_for("the messages read again", || async {
        (lines_now() >= before + 1000).then_some(())
    })
    .await;

    // Clone the (again complete) offsets into a new group.
    wait_for("the offsets committed again", || async {
        let out = admin(ns, &["consumerProgress", "-g", GROUP]).await;
        (out.summary("Diff Total") == Some("0")).then_some(())
    })
    .await;
    admin(
        ns,
        &[
            "cloneGroupOffset",
            "-s",
            GROUP,
            "-d",
            "cloned_group",
            "-t",
            "TopicTest",
        ],
    )
    .await;
    let cloned = admin(ns, &["consumerProgress", "-g", "cloned_group"]).await;
    assert_eq!(cloned.summary("Diff Total"), Some("0"), "{}", cloned.stdout);
    let consumed: i64 = cloned
        .rows()
        .iter()
        .filter(|r| r[0] == "TopicTest")
        .map(|r| r[4].parse::<i64>().unwrap())
        .sum();
    assert_eq!(consumed, 1000, "{}", cloned.stdout);

    // A producer online for producerConnection.
    let client = ClientConfig::new(ns).with_instance_name("tools-test-producer");
    let producer = Producer::start(ProducerConfig::new("tools-test-producers"), client)
        .await
        .unwrap();
    producer
        .send(Message::new("TopicTest", &b"one more"[..]))
        .await
        .unwrap();
    let conn = wait_for("the producer's heartbeat", || async {
        let out = run(
            env!("CARGO_BIN_EXE_mqadmin"),
            &[
                "producerConnection",
                "-g",
                "tools-test-producers",
                "-t",
                "TopicTest",
            ],
            Some(ns),
        )
        .await;
        out.ok.then_some(out)
    })
    .await;
    assert_eq!(conn.rows().len(), 1, "{}", conn.stdout);
    assert!(
        conn.rows()[0][1].contains("tools-test-producer"),
        "{}",
        conn.stdout
    );
    producer.shutdown().await;
    drop(consumer);
}

/// The folder of the server binaries (next to ours, same profile), built
/// here when missing.
///
/// `cargo test --workspace` has built them already. Building them again from
/// here would resolve features for two packages instead of the workspace and
/// recompile shared dependencies (over a minute in CI), so an existing pair
/// is used as it is; after changing a server, run the workspace's tests or
/// build it before running this crate's alone.
fn server_binaries() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_mqshutdown"))
        .parent()
        .unwrap()
        .to_owned();
    if ["mqnamesrv", "mqbroker"]
        .iter()
        .all(|name| dir.join(name).is_file())
    {
        return dir;
    }
    let profile = if dir.ends_with("release") {
        "release"
    } else {
        "dev"
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--profile",
            profile,
            "-p",
            "mq-namesrv",
            "-p",
            "mq-broker",
            "--bins",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Starts a server binary and reads stdout up to its boot line.
fn start(
    bin: &Path,
    config: &Path,
) -> (
    Child,
    String,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(config)
        .env("ROCKETMQ_LOG_ROOT", config.with_extension("logs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let boot = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("boot success"))
        .expect("a boot line");
    (child, boot, lines)
}

fn mqshutdown(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mqshutdown"))
        .args(args)
        .output()
        .expect("mqshutdown runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn mqshutdown_stops_only_the_matching_servers_cleanly() {
    let bins = server_binaries();
    let dir = tempfile::tempdir().unwrap();
    // Unique to this test: only processes started with these files match.
    let tag = dir.path().display().to_string();

    let ns_config = dir.path().join("namesrv.properties");
    std::fs::write(
        &ns_config,
        format!("listenPort=0\nbindAddress=127.0.0.1\nkvConfigPath={tag}/kv.json\n"),
    )
    .unwrap();
    let (ns_child, boot, _ns_lines) = start(&bins.join("mqnamesrv"), &ns_config);
    let ns_addr = boot.rsplit("address=").next().unwrap().trim().to_owned();
    let namesrv = Guard(ns_child);

    let broker_config = dir.path().join("broker-a.properties");
    std::fs::write(
        &broker_config,
        format!(
            "brokerName=broker-a\nnamesrvAddr={ns_addr}\nlistenPort=0\nbindAddress=127.0.0.1\n\
             storePathRootDir={tag}/store\nmapedFileSizeCommitLog=8388608\n"
        ),
    )
    .unwrap();
    let (broker_child, _, broker_lines) = start(&bins.join("mqbroker"), &broker_config);
    let broker_pid = broker_child.id();
    let mut broker = Guard(broker_child);

    let (ok, _, stderr) = mqshutdown(&["broker", "--match", "/no/such/config/anywhere"]);
    assert!(
        !ok && stderr.trim() == "mqshutdown: No mqbroker running.",
        "{stderr}"
    );

    let (ok, stdout, stderr) = mqshutdown(&["broker", "--match", &tag, "--timeout", "30"]);
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        vec![
            format!("The mqbroker({broker_pid}) is running..."),
            format!("Send shutdown request to mqbroker({broker_pid}) OK"),
            format!("mqbroker({broker_pid}) stopped"),
        ]
    );
    let status = broker.0.wait().unwrap();
    assert!(status.success(), "a clean stop exits 0: {status:?}");
    let said: Vec<String> = broker_lines.map_while(Result::ok).collect();
    assert!(
        said.iter().any(|l| l.contains("shut down cleanly")),
        "{said:?}"
    );
    assert!(
        !dir.path().join("store/abort").exists(),
        "no abort file after a clean stop"
    );

    let (ok, _, stderr) = mqshutdown(&["broker", "--match", &tag]);
    assert!(!ok && stderr.contains("No mqbroker running."), "{stderr}");

    let ns_pid = namesrv.0.id();
    let (ok, stdout, stderr) = mqshutdown(&["namesrv", "--match", &tag]);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("mqnamesrv({ns_pid}) stopped")),
        "{stdout}"
    );

    let (ok, _, stderr) = mqshutdown(&["everything"]);
    assert!(
        !ok && stderr.contains("usage: mqshutdown namesrv|broker"),
        "{stderr}"
    );
}
