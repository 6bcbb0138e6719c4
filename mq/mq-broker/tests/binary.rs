//! The real `mqbroker` binary: boot line, `-p`, config errors, SIGTERM
//! (clean: no abort file) and SIGKILL (recovery keeps every acknowledged
//! message, and a transaction armed before the kill is still ended after).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use mq_protocol::header::EndTransactionRequestHeader;
use mq_protocol::message::{decode_message_id, sys_flag};
use mq_protocol::{request_code, RemotingCommand, ResponseCode};

#[tokio::test]
async fn sigterm_stops_cleanly_and_sigkill_loses_nothing_acknowledged_under_sync_flush() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &ns.addr, "flushDiskType=SYNC_FLUSH\n");
    let c = client();

    let mut broker = BrokerProcess::spawn(&config);
    create_topic(&c, &broker.addr, "Durable", 1).await;
    send(
        &c,
        &broker.addr,
        message("Durable", 0, "", "", b"before term"),
    )
    .await;
    broker.signal("TERM");
    let status = broker.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        !dir.path().join("store/abort").exists(),
        "a clean stop removes the abort file"
    );

    let mut broker = BrokerProcess::spawn(&config);
    let mut acked = Vec::new();
    for i in 0..50 {
        acked.push(
            send(
                &c,
                &broker.addr,
                message("Durable", 0, "", "", format!("m{i}").as_bytes()),
            )
            .await,
        );
    }
    broker.signal("KILL");
    broker.child.wait().unwrap();
    assert!(
        dir.path().join("store/abort").exists(),
        "a crash leaves the abort file"
    );

    let broker = BrokerProcess::spawn(&config);
    let c = client();
    heartbeat_consumer(&c, &broker.addr, "c1", "g", &[("Durable", "*")]).await;
    let got = pull_all(
        &c,
        &broker.addr,
        "g",
        "Durable",
        1,
        51,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        got.len(),
        51,
        "every acknowledged message is back after SIGKILL"
    );
    assert_eq!(&got[0].body[..], b"before term");
    assert_eq!(&got[50].body[..], b"m49");
}

#[tokio::test]
async fn a_transaction_armed_before_a_sigkill_is_ended_after_restart() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Check-backs off during the test: the outcome comes from the producer.
    let config = write_config(
        dir.path(),
        &ns.addr,
        "flushDiskType=SYNC_FLUSH\ntransactionTimeOut=3600000\n",
    );
    let c = client();
    let mut broker = BrokerProcess::spawn(&config);
    create_topic(&c, &broker.addr, "Tx", 1).await;
    let mut half = with_property(message("Tx", 0, "", "", b"armed"), "TRAN_MSG", "true");
    half = with_property(half, "PGROUP", "p");
    half.0.sys_flag = sys_flag::TRANSACTION_PREPARED_TYPE;
    let sent = send(&c, &broker.addr, half).await;
    broker.signal("KILL");
    broker.child.wait().unwrap();

    let broker = BrokerProcess::spawn(&config);
    let c = client();
    let (_, commit_log_offset) = decode_message_id(&sent.msg_id).unwrap();
    let end = RemotingCommand::request(request_code::END_TRANSACTION).with_header(
        &EndTransactionRequestHeader {
            topic: None,
            producer_group: "p".into(),
            tran_state_table_offset: sent.queue_offset,
            commit_log_offset,
            commit_or_rollback: sys_flag::TRANSACTION_COMMIT_TYPE,
            from_transaction_check: Some(false),
            msg_id: sent.msg_id.clone(),
            transaction_id: sent.transaction_id.clone(),
        },
    );
    assert_eq!(
        code(&call(&c, &broker.addr, end).await),
        Some(ResponseCode::SUCCESS)
    );
    heartbeat_consumer(&c, &broker.addr, "c1", "g", &[("Tx", "*")]).await;
    // Check-backs are off, so the END_TRANSACTION above is the only outcome:
    // what the queue holds now is final.
    let got = pull_to_end(&c, &broker.addr, "g", "Tx", 0).await;
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].body[..], b"armed");
}

#[test]
fn print_config_and_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "127.0.0.1:1",
        "deleteWhen=04\nsomeUnknownKey=1\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_mqbroker"))
        .args(["-c", config.to_str().unwrap(), "-p"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("brokerName=broker-a"));
    assert!(text.contains("deleteWhen=04"));
    assert!(text.contains("flushDiskType=ASYNC_FLUSH"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("someUnknownKey"),
        "unknown keys warn"
    );

    let bad = dir.path().join("bad.properties");
    std::fs::write(&bad, "brokerName=b\nbrokerId=one\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mqbroker"))
        .args(["-c", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("brokerId") && err.contains("bad.properties"),
        "{err}"
    );

    std::fs::write(&bad, "brokerRole=LEADER\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mqbroker"))
        .args(["-c", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("brokerRole"));
}

#[tokio::test]
async fn logs_go_to_broker_log_and_store_log_in_the_log_root_and_roll_over() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rocketmqlogs");
    // Each start writes more than 400 bytes; two rolled files are kept.
    let config = write_config(
        dir.path(),
        &ns.addr,
        &format!(
            "rocketmqLogRoot={}\nrocketmqLogMaxFileSize=400\nrocketmqLogMaxIndex=2\n",
            root.display()
        ),
    );
    for _ in 0..3 {
        let mut broker = std::process::Command::new(env!("CARGO_BIN_EXE_mqbroker"))
            .arg("-c")
            .arg(&config)
            .env_remove("ROCKETMQ_LOG_ROOT")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = broker.stdout.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let boot = lines.next().unwrap().unwrap();
        assert!(boot.contains("boot success"), "{boot}");
        signal(&broker, "TERM");
        assert!(broker.wait().unwrap().success());
    }
    let broker_log = std::fs::read_to_string(root.join("broker.log")).unwrap();
    let store_log = std::fs::read_to_string(root.join("store.log")).unwrap();
    assert!(
        broker_log.contains("broker stopped cleanly"),
        "{broker_log}"
    );
    assert!(store_log.contains("mq_store"), "{store_log}");
    assert!(!store_log.contains("mq_broker"), "{store_log}");
    let mut rolled: Vec<String> = std::fs::read_dir(root.join("otherdays"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("broker."))
        .collect();
    rolled.sort();
    assert_eq!(rolled.len(), 2, "{rolled:?}");
    for name in rolled {
        let text = std::fs::read_to_string(root.join("otherdays").join(&name)).unwrap();
        assert!(
            text.len() <= 400 || text.lines().count() == 1,
            "{name} holds {} bytes",
            text.len()
        );
    }
}
