//! How long the console's pages take with many topics and groups: starts a
//! name server and broker of its own, creates `TOPICS` topics and `GROUPS`
//! consumer groups (each with committed offsets on one topic), serves the
//! console and times `ROUNDS` requests of each page, printing p50 and max.
//! `cargo run --release -p mq-console --example bench_pages -- [TOPICS] [GROUPS] [ROUNDS]`
//! (defaults 1000 200 20). A program, not a test: figures go to BENCHMARKS.md.

use std::time::{Duration, Instant};

use mq_client::{AdminClient, ClientConfig, MessageQueue, SubscriptionGroupConfig, TopicSpec};
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
    eprintln!(
        "set up {topics} topics and {groups} groups in {:?}",
        started.elapsed()
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let config = ConsoleConfig::new(vec![cluster.namesrv.addr.clone()]).with_login_required(false);
    tokio::spawn(async move {
        let _ = mq_console::serve(listener, config, std::future::pending()).await;
    });
    let http = reqwest::Client::new();
    let broker = format!("/broker?addr={}", cluster.broker_addr.replace(':', "%3A"));
    let pages = [
        "/",
        "/dashboard",
        "/topics",
        "/topics?filter=all&q=bench",
        "/topic?topic=BenchTopic7",
        "/consumers",
        "/consumers?sort=lag",
        "/consumer?group=bench-group-7",
        broker.as_str(),
        "/dlq",
        "/transactions",
        "/audit",
    ];
    println!("{:<32} {:>8} {:>8}", "page", "p50 ms", "max ms");
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
            "{path:<32} {:>8.1} {:>8.1}",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0
        );
    }
    admin.shutdown().await;
    Ok(())
}
