//! JetStream publish benchmark: `nats-bench <url> <size> <in-flight> <seconds>`.
//! Creates a file-backed stream `BENCH` on subject `bench`, keeps `in-flight`
//! acknowledged publishes outstanding, prints the same summary as mqbench.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1:4222".into());
    let size: usize = args.get(2).map_or(Ok(1024), |s| s.parse())?;
    let in_flight: usize = args.get(3).map_or(Ok(32), |s| s.parse())?;
    let seconds: u64 = args.get(4).map_or(Ok(10), |s| s.parse())?;
    let client = async_nats::connect(&url).await?;
    let js = async_nats::jetstream::new(client);
    let _ = js.delete_stream("BENCH").await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "BENCH".into(),
        subjects: vec!["bench".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    let body = bytes::Bytes::from(vec![b'x'; size]);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..in_flight {
        let (js, body, stop, sent, latencies) = (js.clone(), body.clone(), stop.clone(), sent.clone(), latencies.clone());
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ack = match js.publish("bench", body.clone()).await {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                if ack {
                    mine.push(t.elapsed().as_micros() as u32);
                    sent.fetch_add(1, Ordering::Relaxed);
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
    let p = |q: f64| if all.is_empty() { 0.0 } else { f64::from(all[((all.len() - 1) as f64 * q) as usize]) / 1000.0 };
    let n = sent.load(Ordering::Relaxed);
    println!(
        "jetstream size={size} concurrency={in_flight} sent={n} msgs/s={:.0} MB/s={:.1} p50={:.2}ms p99={:.2}ms p999={:.2}ms",
        n as f64 / elapsed,
        n as f64 * size as f64 / elapsed / 1e6,
        p(0.5),
        p(0.99),
        p(0.999)
    );
    let _ = js.delete_stream("BENCH").await;
    Ok(())
}
