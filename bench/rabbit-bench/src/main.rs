//! RabbitMQ publish benchmark:
//! `rabbit-bench <amqp-uri> <size> <in-flight> <seconds> [quorum|stream]`.
//! Declares a durable queue `bench` of the given type (quorum by default;
//! both replicate and write to disk before confirming), keeps `in-flight`
//! persistent publishes outstanding on one confirm-mode channel, counts a
//! publish when its confirm (ack) arrives, and prints the same summary as
//! mqbench.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let uri = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let size: usize = args.get(2).map_or(Ok(1024), |s| s.parse())?;
    let in_flight: usize = args.get(3).map_or(Ok(32), |s| s.parse())?;
    let seconds: u64 = args.get(4).map_or(Ok(10), |s| s.parse())?;
    let kind = args.get(5).cloned().unwrap_or_else(|| "quorum".into());
    let conn = Connection::connect(&uri, ConnectionProperties::default()).await?;
    // A delete of a missing queue is fine; a failed one closes its channel.
    if let Ok(ch) = conn.create_channel().await {
        let _ = ch.queue_delete("bench", QueueDeleteOptions::default()).await;
    }
    let channel = conn.create_channel().await?;
    let mut queue_args = FieldTable::default();
    queue_args.insert("x-queue-type".into(), AMQPValue::LongString(kind.clone().into()));
    channel
        .queue_declare(
            "bench",
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            queue_args,
        )
        .await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let body = Arc::new(vec![b'x'; size]);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..in_flight {
        let (channel, body, stop, sent, failed, latencies) = (
            channel.clone(),
            body.clone(),
            stop.clone(),
            sent.clone(),
            failed.clone(),
            latencies.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let confirmed = match channel
                    .basic_publish(
                        "",
                        "bench",
                        BasicPublishOptions::default(),
                        &body,
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await
                {
                    Ok(confirm) => matches!(confirm.await, Ok(Confirmation::Ack(_))),
                    Err(_) => false,
                };
                if confirmed {
                    mine.push(t.elapsed().as_micros() as u32);
                    sent.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    if !channel.status().connected() {
                        break;
                    }
                }
            }
            latencies.lock().unwrap().extend(mine);
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for w in workers {
        let _ = w.await;
    }
    let mut all = std::mem::take(&mut *latencies.lock().unwrap());
    all.sort_unstable();
    let p = |q: f64| {
        if all.is_empty() {
            0.0
        } else {
            f64::from(all[((all.len() - 1) as f64 * q) as usize]) / 1000.0
        }
    };
    let n = sent.load(Ordering::Relaxed);
    println!(
        "rabbitmq-{kind} size={size} concurrency={in_flight} sent={n} failed={} msgs/s={:.0} MB/s={:.1} p50={:.2}ms p99={:.2}ms p999={:.2}ms",
        failed.load(Ordering::Relaxed),
        n as f64 / elapsed,
        n as f64 * size as f64 / elapsed / 1e6,
        p(0.5),
        p(0.99),
        p(0.999)
    );
    if let Ok(ch) = conn.create_channel().await {
        let _ = ch.queue_delete("bench", QueueDeleteOptions::default()).await;
    }
    let _ = conn.close(0, "done").await;
    Ok(())
}
