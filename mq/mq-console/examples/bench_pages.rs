//! How long the console's pages take with many topics and groups: starts a
//! name server and broker of its own, creates `TOPICS` topics and `GROUPS`
//! consumer groups (each with committed offsets on one topic), a few
//! messages, and a stub of the shop's operator API (the saga's cancelled
//! and paid orders, as the browser tests use); serves the console (its
//! time series sampling every 5 s, so the dashboard's charts have data
//! and the sampling runs during the timings) and times `ROUNDS` requests
//! of each page, printing p50 and max.
//! `cargo run --release -p mq-console --example bench_pages -- [TOPICS] [GROUPS] [ROUNDS]`
//! (defaults 1000 200 20). A program, not a test: figures go to BENCHMARKS.md.

use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../tests/common/shop_stub.rs"]
mod shop_stub;

use mq_client::{
    AdminClient, ClientConfig, Message, MessageQueue, Producer, ProducerConfig,
    SubscriptionGroupConfig, TopicSpec,
};
use mq_console::ConsoleConfig;
use mq_testkit::Cluster;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let topics = args.next().transpose()?.unwrap_or(1000);
    let groups = args.next().transpose()?.unwrap_or(200);
    let rounds = args.next().transpose()?.unwrap_or(20);
    let cluster = Cluster::start().await;
    let admin = AdminClient::start(
        ClientConfig::new(&cluster.namesrv.addr).with_instance_name("bench-admin"),
    )
    .await?;
    let started = Instant::now();
    for i in 0..topics {
        admin
            .create_topic(
                &cluster.broker_addr,
                &TopicSpec::new(format!("BenchTopic{i}")).with_queues(4, 4),
            )
            .await?;
    }
    for i in 0..groups {
        let group = format!("bench-group-{i}");
        admin
            .create_subscription_group(
                &cluster.broker_addr,
                &SubscriptionGroupConfig::new(group.clone()),
            )
            .await?;
        let mq = MessageQueue {
            topic: format!("BenchTopic{}", i % topics.max(1)),
            broker_name: cluster.broker_name.clone(),
            queue_id: 0,
        };
        admin.update_consumer_offset(&group, &mq, 0).await?;
    }
    // The name server learns the topics with the broker's next registration.
    loop {
        let listed = admin.topic_list().await?.topic_list.len();
        if listed >= topics {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Messages to find by key, id and time, and the saga's messages.
    let producer = Producer::start(
        ProducerConfig::new("bench-producer"),
        ClientConfig::new(&cluster.namesrv.addr).with_instance_name("bench-producer"),
    )
    .await?;
    let mut sent = None;
    for i in 0..20 {
        let result = producer
            .send(
                Message::new("BenchTopic7", format!("bench body {i}"))
                    .with_tags("BenchTag")
                    .with_keys(["bench-key"]),
            )
            .await?;
        sent.get_or_insert(result);
    }
    let sent = sent.expect("a message was sent");
    cluster.create_topic("ORDER_CANCEL", 2).await;
    cluster.create_topic("PAY_SUCCESS", 2).await;
    shop_stub::publish_saga(&cluster).await;
    let shop = shop_stub::serve_stub(shop_stub::Stub(std::sync::Arc::new(std::sync::Mutex::new(
        shop_stub::data(),
    ))))
    .await;
    eprintln!(
        "set up {topics} topics and {groups} groups in {:?}",
        started.elapsed()
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let config = ConsoleConfig::new(vec![cluster.namesrv.addr.clone()])
        .with_login_required(false)
        .with_shop(shop_stub::shop_config(&shop))
        .with_sample_interval(Duration::from_secs(5));
    tokio::spawn(async move {
        let _ = mq_console::serve(listener, config, std::future::pending()).await;
    });
    let http = reqwest::Client::new();
    let broker = format!("/broker?addr={}", cluster.broker_addr.replace(':', "%3A"));
    let by_id = format!("/message?id={}", sent.offset_msg_id);
    let by_unique = format!("/messages?topic=BenchTopic7&id={}", sent.msg_id);
    let cancelled = format!("/order?id={}", shop_stub::CANCELLED);
    let paid = format!("/order?id={}", shop_stub::PAID);
    // Two samples, so the dashboard draws its time series.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let pages = [
        "/",
        "/dashboard",
        "/dashboard?range=day",
        "/topics",
        "/topics?filter=all&q=bench",
        "/topic?topic=BenchTopic7",
        "/consumers",
        "/consumers?sort=lag",
        "/consumer?group=bench-group-7",
        "/producers?topic=BenchTopic7&group=bench-producer",
        broker.as_str(),
        "/messages?topic=BenchTopic7&key=bench-key",
        by_unique.as_str(),
        "/messages?topic=BenchTopic7&begin=2020-01-01+00%3A00&end=now",
        by_id.as_str(),
        "/dlq",
        "/dlq?group=bench-group-7",
        "/transactions",
        "/orders",
        cancelled.as_str(),
        paid.as_str(),
        "/invariants",
        "/audit",
    ];
    println!("{:<62} {:>8} {:>8}", "page", "p50 ms", "max ms");
    for path in pages {
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            let response = http.get(format!("{url}{path}")).send().await?;
            let status = response.status();
            response.bytes().await?;
            anyhow::ensure!(status.is_success(), "{path}: {status}");
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "{path:<62} {:>8.1} {:>8.1}",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0
        );
    }
    producer.shutdown().await;
    admin.shutdown().await;
    Ok(())
}
