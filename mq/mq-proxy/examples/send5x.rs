//! Sends through the gRPC endpoint with Apache's 5.x Rust SDK (`rocketmq`
//! 5.0.0) as fast as `concurrency` tasks sharing one producer can, for
//! `seconds`, and prints one line in the format of `mqbench producer`, so
//! the two can be compared side by side (BENCHMARKS.md, issue 19):
//!
//! ```text
//! cargo run --release -p mq-proxy --example send5x -- 127.0.0.1:8081 BenchmarkTest 1024 32 10
//! ```
//!
//! The topic must exist (the 5.x SDK does not create topics).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocketmq::conf::{ClientOption, ProducerOption};
use rocketmq::model::message::MessageBuilder;
use rocketmq::Producer;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let endpoint: String = arg(&args, 0, "127.0.0.1:8081".to_owned());
    let topic: String = arg(&args, 1, "BenchmarkTest".to_owned());
    let size: usize = arg(&args, 2, 1024);
    let concurrency: usize = arg(&args, 3, 32);
    let seconds: u64 = arg(&args, 4, 10);

    let mut option = ProducerOption::default();
    option.set_topics(vec![topic.clone()]);
    let mut client = ClientOption::default();
    client.set_access_url(endpoint);
    if let (Ok(key), Ok(secret)) = (
        std::env::var("ROCKETMQ_ACCESS_KEY"),
        std::env::var("ROCKETMQ_SECRET_KEY"),
    ) {
        client.set_access_key(key);
        client.set_secret_key(secret);
    }
    let mut producer = Producer::new(option, client).expect("a producer");
    producer.start().await.expect("the producer starts");
    let producer = Arc::new(producer);
    let body = vec![b'x'; size];
    let message = |topic: &str| {
        MessageBuilder::builder()
            .set_topic(topic)
            .set_body(body.clone())
            .build()
            .expect("a message")
    };
    // Warm up: route and connection.
    producer
        .send(message(&topic))
        .await
        .expect("the first send");

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (producer, stop, sent, failed, latencies) = (
            producer.clone(),
            stop.clone(),
            sent.clone(),
            failed.clone(),
            latencies.clone(),
        );
        let (topic, body) = (topic.clone(), body.clone());
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(100_000);
            while !stop.load(Ordering::Relaxed) {
                let msg = MessageBuilder::builder()
                    .set_topic(topic.as_str())
                    .set_body(body.clone())
                    .build()
                    .expect("a message");
                let t = Instant::now();
                if producer.send(msg).await.is_ok() {
                    mine.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    sent.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies.lock().expect("not poisoned").extend(mine);
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for w in workers {
        let _ = w.await;
    }
    let mut all = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    all.sort_unstable();
    let n = sent.load(Ordering::Relaxed);
    println!(
        "grpc size={size} concurrency={concurrency} sent={n} failed={} msgs/s={:.0} MB/s={:.1} p50={:.2}ms p99={:.2}ms p999={:.2}ms",
        failed.load(Ordering::Relaxed),
        n as f64 / elapsed,
        n as f64 * size as f64 / elapsed / 1e6,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
    );
}
