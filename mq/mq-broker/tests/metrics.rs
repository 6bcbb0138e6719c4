//! `metricsExporterType=PROM`: the real `mqbroker` serves Prometheus text
//! with RocketMQ 5's metric names, and the figures follow the traffic
//! (scrape, send and consume, scrape again).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use mq_protocol::message::sys_flag;
use mq_protocol::{request_code, RemotingCommand, ResponseCode};

/// The value of the first series of `metric` whose labels contain every
/// one of `labels` (`name="value"` pieces); `None` when there is none.
fn value(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, rest) = series.split_once('{').unwrap_or((series, ""));
            (name == metric && labels.iter().all(|l| rest.contains(l)))
                .then(|| value.parse().ok())
                .flatten()
        })
        .next()
}

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url)
        .await
        .expect("the metrics endpoint answers");
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn every_broker_metric_is_served_and_follows_the_traffic() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &ns.addr,
        "metricsExporterType=PROM\nmetricsPromExporterHost=127.0.0.1\nmetricsPromExporterPort=0\n\
         transactionTimeOut=3600000\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_mqbroker"))
        .arg("-c")
        .arg(&config)
        .env("ROCKETMQ_LOG_ROOT", dir.path().join("logs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let boot = lines.next().unwrap().unwrap();
    let addr = boot
        .split(", ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap()
        .to_owned();
    let _replication = lines.next().unwrap().unwrap();
    let metrics_line = lines.next().unwrap().unwrap();
    let url = metrics_line
        .rsplit(' ')
        .next()
        .expect("the metrics URL")
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/metrics"),
        "{url}"
    );
    std::thread::spawn(move || for _ in lines {});
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _broker = Kill(child);

    let c = client();
    create_topic(&c, &addr, "Metered", 1).await;
    let before = scrape(&url).await;
    for name in [
        "rocketmq_rpc_latency_count",
        "rocketmq_storage_size",
        "rocketmq_storage_flush_behind_bytes",
        "rocketmq_storage_flush_latency_count",
        "rocketmq_storage_disk_ratio",
        "rocketmq_half_messages",
        "rocketmq_topic_number",
        "rocketmq_consumer_group_number",
    ] {
        assert!(
            value(&before, name, &[]).is_some(),
            "{name} missing:\n{before}"
        );
    }
    assert!(before.contains("cluster=\"DefaultCluster\""), "{before}");
    assert!(before.contains("node_id=\"broker-a-0\""), "{before}");
    let topic = ["topic=\"Metered\""];
    assert_eq!(value(&before, "rocketmq_messages_in_total", &topic), None);
    let commit_log_before =
        value(&before, "rocketmq_storage_size", &["store=\"commitlog\""]).unwrap();
    let half_before = value(&before, "rocketmq_half_messages", &[]).unwrap();
    let sends_before = value(
        &before,
        "rocketmq_rpc_latency_count",
        &["request_code=\"310\"", "response_code=\"0\""],
    )
    .unwrap_or(0.0);

    for i in 0..3 {
        send(
            &c,
            &addr,
            message("Metered", 0, "", "", format!("m{i}").as_bytes()),
        )
        .await;
    }
    let mut half = with_property(message("Metered", 0, "", "", b"half"), "TRAN_MSG", "true");
    half = with_property(half, "PGROUP", "p");
    half.0.sys_flag = sys_flag::TRANSACTION_PREPARED_TYPE;
    send(&c, &addr, half).await;
    heartbeat_consumer(&c, &addr, "c1", "mg", &[("Metered", "*")]).await;
    let got = pull_all(&c, &addr, "mg", "Metered", 1, 3, WAIT).await;
    assert_eq!(got.len(), 3);
    let commit = RemotingCommand::request(request_code::UPDATE_CONSUMER_OFFSET)
        .with_field("consumerGroup", "mg")
        .with_field("topic", "Metered")
        .with_field("queueId", "0")
        .with_field("commitOffset", "1");
    assert_eq!(
        code(&call(&c, &addr, commit).await),
        Some(ResponseCode::SUCCESS)
    );

    let after = scrape(&url).await;
    // Three plain sends and the half message, counted under its topic as
    // RocketMQ's send statistics do.
    assert_eq!(
        value(&after, "rocketmq_messages_in_total", &topic),
        Some(4.0),
        "{after}"
    );
    assert!(value(&after, "rocketmq_throughput_in_total", &topic).unwrap() >= 6.0);
    let group = ["topic=\"Metered\"", "consumer_group=\"mg\""];
    assert_eq!(
        value(&after, "rocketmq_messages_out_total", &group),
        Some(3.0),
        "{after}"
    );
    assert!(value(&after, "rocketmq_throughput_out_total", &group).unwrap() > 0.0);
    assert_eq!(
        value(
            &after,
            "rocketmq_consumer_lag_messages",
            &[
                "topic=\"Metered\"",
                "consumer_group=\"mg\"",
                "queue_id=\"0\""
            ]
        ),
        Some(2.0),
        "{after}"
    );
    assert!(
        value(&after, "rocketmq_storage_size", &["store=\"commitlog\""]).unwrap()
            > commit_log_before
    );
    assert_eq!(
        value(&after, "rocketmq_half_messages", &[]),
        Some(half_before + 1.0)
    );
    let sends_after = value(
        &after,
        "rocketmq_rpc_latency_count",
        &["request_code=\"310\"", "response_code=\"0\""],
    )
    .unwrap_or(0.0);
    assert!(
        sends_after >= sends_before + 4.0,
        "sends counted: {sends_before} -> {sends_after}\n{after}"
    );
    assert!(value(&after, "rocketmq_topic_number", &[]).unwrap() >= 1.0);
    // The sends were flushed (ASYNC_FLUSH, every few hundred ms): wait for
    // a flush to be counted rather than for a time.
    let flushes_before = value(&before, "rocketmq_storage_flush_latency_count", &[]).unwrap();
    let mut flushes_after = flushes_before;
    for _ in 0..100 {
        flushes_after = value(
            &scrape(&url).await,
            "rocketmq_storage_flush_latency_count",
            &[],
        )
        .unwrap();
        if flushes_after > flushes_before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(flushes_after > flushes_before, "no flush counted");
    assert!(after.ends_with("# EOF\n"));
}

#[tokio::test]
async fn a_master_reports_how_far_its_slave_is_behind() {
    use mq_broker::BrokerRole;
    use prometheus_client::registry::Registry;

    let ns = NameServer::start().await;
    let master = TestBroker::start_temp("broker-ha", &ns.addr, |broker, store| {
        short_timings(broker, store);
        broker.ha_send_heartbeat_interval = 200;
    })
    .await;
    let mut registry = Registry::default();
    master
        .handle
        .as_ref()
        .unwrap()
        .register_metrics(&mut registry);
    let render = || telemetry::metrics::render(&registry).unwrap();
    let fall_behind = |text: &str| value(text, "rocketmq_slave_fall_behind_bytes", &[]);
    assert_eq!(fall_behind(&render()), None, "no slave, no series");

    let c = client();
    create_topic(&c, &master.addr, "Replicated", 1).await;
    for i in 0..20 {
        send(
            &c,
            &master.addr,
            message("Replicated", 0, "", "", format!("m{i}").as_bytes()),
        )
        .await;
    }
    let _slave = TestBroker::start_temp("broker-ha", &ns.addr, |broker, store| {
        short_timings(broker, store);
        broker.broker_id = 1;
        broker.broker_role = BrokerRole::Slave;
        broker.ha_send_heartbeat_interval = 200;
    })
    .await;
    // Once connected, the slave catches up: the series appears and reaches 0.
    wait_for("the slave caught up in the metrics", || {
        let text = render();
        async move { (fall_behind(&text) == Some(0.0)).then_some(()) }
    })
    .await;
    let text = render();
    assert!(
        value(&text, "rocketmq_storage_size", &["store=\"commitlog\""]).unwrap() > 0.0,
        "{text}"
    );
}
