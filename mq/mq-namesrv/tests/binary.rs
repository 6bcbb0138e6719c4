//! The real `mqnamesrv` binary: start-up, config printing, serving, and a
//! clean stop on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mq_protocol::route::{
    decode_json, encode_json, RegisterBrokerBody, TopicConfig, TopicRouteData,
};
use mq_protocol::{request_code as rc, RemotingCommand, ResponseCode};
use mq_remoting::{ClientConfig, RemotingClient};

const BIN: &str = env!("CARGO_BIN_EXE_mqnamesrv");
const BOOT_LINE: &str = "The Name Server boot success. serializeType=JSON, address=";

/// Kills the child if the test fails before stopping it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for the boot line on stdout; returns the address and the rest of
/// stdout as it comes. Panics with the captured output if it does not boot.
fn wait_for_boot(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                if let Some(addr) = line.strip_prefix(BOOT_LINE) {
                    return addr.trim().to_owned();
                }
                seen.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                let mut stderr = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = err.read_to_string(&mut stderr);
                }
                panic!(
                    "mqnamesrv did not boot.\nstdout:\n{}\nstderr:\n{stderr}",
                    seen.join("\n")
                );
            }
        }
    }
}

#[test]
fn boots_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("namesrv.properties");
    let kv = dir.path().join("kv").join("kvConfig.json");
    std::fs::write(
        &config,
        format!(
            "listenPort=0\nbindAddress=127.0.0.1\nkvConfigPath={}\nserverWorkerThreads=8\nsomeUnknownKey=1\n",
            kv.display()
        ),
    )
    .unwrap();
    let logs = dir.path().join("logs");
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .env("ROCKETMQ_LOG_ROOT", &logs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = wait_for_boot(&mut child);
    let mut running = Running(child);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = RemotingClient::new(ClientConfig::default());
        let timeout = Duration::from_secs(10);
        let mut body = RegisterBrokerBody::default();
        body.topic_config_serialize_wrapper
            .topic_config_table
            .insert("BinTopic".into(), TopicConfig::new("BinTopic"));
        let register = RemotingCommand::request(rc::REGISTER_BROKER)
            .with_field("brokerName", "broker-a")
            .with_field("brokerAddr", "127.0.0.1:10911")
            .with_field("clusterName", "DefaultCluster")
            .with_field("haServerAddr", "127.0.0.1:10912")
            .with_field("brokerId", 0)
            .with_body(encode_json(&body));
        let response = client.invoke(&addr, register, timeout).await.unwrap();
        assert_eq!(response.response_code(), Some(ResponseCode::SUCCESS));
        let route = client
            .invoke(
                &addr,
                RemotingCommand::request(rc::GET_ROUTEINFO_BY_TOPIC)
                    .with_field("topic", "BinTopic"),
                timeout,
            )
            .await
            .unwrap();
        let route: TopicRouteData = decode_json(&route.body).unwrap();
        assert_eq!(route.broker_datas[0].master_addr(), Some("127.0.0.1:10911"));
        let put = RemotingCommand::request(rc::PUT_KV_CONFIG)
            .with_field("namespace", "ns")
            .with_field("key", "k")
            .with_field("value", "v");
        assert_eq!(client.invoke(&addr, put, timeout).await.unwrap().code, 0);
    });
    assert!(kv.exists(), "the KV config is written to kvConfigPath");

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(running.0.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = running.0.wait().unwrap();
    let mut stderr = String::new();
    running
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(exit.success(), "exit {exit:?}, stderr:\n{stderr}");
    assert!(
        stderr.contains("someUnknownKey"),
        "unknown keys warn:\n{stderr}"
    );
    let log = std::fs::read_to_string(logs.join("namesrv.log")).expect("namesrv.log is written");
    assert!(log.contains("someUnknownKey"), "{log}");
    assert!(log.contains("effective configuration"), "{log}");
    assert!(log.contains("name server stopped"), "{log}");
}

#[test]
fn the_log_rolls_over_by_size_and_keeps_a_bounded_number() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("namesrv.properties");
    // The effective configuration alone is longer than 300 bytes, so every
    // start rolls at least once; two rolled files are kept.
    std::fs::write(
        &config,
        format!(
            "listenPort=0\nbindAddress=127.0.0.1\nkvConfigPath={}\nrocketmqLogRoot={}\n\
             rocketmqLogMaxFileSize=300\nrocketmqLogMaxIndex=2\n",
            dir.path().join("kvConfig.json").display(),
            dir.path().join("configured-logs").display(),
        ),
    )
    .unwrap();
    for _ in 0..3 {
        let mut child = Command::new(BIN)
            .arg("-c")
            .arg(&config)
            .env_remove("ROCKETMQ_LOG_ROOT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_boot(&mut child);
        let running = Running(child);
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(running.0.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let mut running = running;
        assert!(running.0.wait().unwrap().success());
    }
    let logs = dir.path().join("configured-logs");
    assert!(logs.join("namesrv.log").exists());
    let rolled: Vec<_> = std::fs::read_dir(logs.join("otherdays"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(rolled.len(), 2, "{rolled:?}");
    for name in &rolled {
        assert!(
            name.starts_with("namesrv.") && name.ends_with(".log"),
            "{name}"
        );
    }
}

#[test]
fn print_config_shows_defaults_and_file_values() {
    let output = Command::new(BIN).arg("-p").output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.lines().any(|l| l == "listenPort=9876"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l == "bindAddress=0.0.0.0"),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ns.properties");
    std::fs::write(&config, "listenPort=19876\norderMessageEnable=true\n").unwrap();
    let output = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .arg("-p")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.lines().any(|l| l == "listenPort=19876"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l == "orderMessageEnable=true"),
        "{stdout}"
    );
}

#[test]
fn a_wrong_value_stops_start_up_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.properties");
    std::fs::write(&config, "listenPort=not-a-port\n").unwrap();
    let output = Command::new(BIN).arg("-c").arg(&config).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("listenPort"), "{stderr}");
    assert!(stderr.contains("broken.properties"), "{stderr}");
}

#[test]
fn metrics_count_the_registered_brokers_and_topics() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("namesrv.properties");
    std::fs::write(
        &config,
        format!(
            "listenPort=0\nbindAddress=127.0.0.1\nkvConfigPath={}\nmetricsExporterType=PROM\n\
             metricsPromExporterPort=0\n",
            dir.path().join("kvConfig.json").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .env("ROCKETMQ_LOG_ROOT", dir.path().join("logs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _running = Running(child);
    let mut next_line = || lines.next().expect("a line").expect("utf-8");
    let mut line = next_line();
    while !line.starts_with(BOOT_LINE) {
        line = next_line();
    }
    let addr = line.strip_prefix(BOOT_LINE).unwrap().trim().to_owned();
    let metrics = next_line();
    let url = metrics.rsplit(' ').next().unwrap().to_owned();
    assert!(url.ends_with("/metrics"), "{metrics}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let scrape = || async { reqwest::get(&url).await.unwrap().text().await.unwrap() };
        let before = scrape().await;
        assert!(before.contains("rocketmq_namesrv_topics 0"), "{before}");
        let client = RemotingClient::new(ClientConfig::default());
        let mut body = RegisterBrokerBody::default();
        body.topic_config_serialize_wrapper
            .topic_config_table
            .insert("Counted".into(), TopicConfig::new("Counted"));
        for (id, port) in [(0, 10911), (1, 10921)] {
            let register = RemotingCommand::request(rc::REGISTER_BROKER)
                .with_field("brokerName", "broker-a")
                .with_field("brokerAddr", format!("127.0.0.1:{port}"))
                .with_field("clusterName", "DefaultCluster")
                .with_field("haServerAddr", "127.0.0.1:10912")
                .with_field("brokerId", id)
                .with_body(encode_json(&body));
            let response = client
                .invoke(&addr, register, Duration::from_secs(10))
                .await
                .unwrap();
            assert_eq!(response.response_code(), Some(ResponseCode::SUCCESS));
        }
        let after = scrape().await;
        for series in [
            "rocketmq_namesrv_brokers{cluster=\"DefaultCluster\",role=\"master\"} 1",
            "rocketmq_namesrv_brokers{cluster=\"DefaultCluster\",role=\"slave\"} 1",
            "rocketmq_namesrv_broker_groups{cluster=\"DefaultCluster\"} 1",
            "rocketmq_namesrv_topics 1",
        ] {
            assert!(after.contains(series), "{series} missing:\n{after}");
        }
    });
}
