//! `mqbench`: load a RocketMQ-compatible broker and report throughput and
//! latency.
//!
//! ```text
//! mqbench producer -n 127.0.0.1:9876 -t BenchTopic --size 1024 --concurrency 32 --seconds 10
//! mqbench consumer -n 127.0.0.1:9876 -t BenchTopic -g bench-consumer --seconds 10
//! mqbench tx       -n 127.0.0.1:9876 -t BenchTopic --size 1024 --concurrency 32 --seconds 10
//! mqbench e2e      -n 127.0.0.1:9876 -t BenchTopic --size 1024 --rate 10000 --seconds 10
//! ```
//!
//! `producer` keeps `--concurrency` synchronous sends in flight; `tx` does
//! the same with transactional sends (half message + END_TRANSACTION
//! commit); `consumer` consumes the topic with a push consumer; `e2e` sends
//! at a fixed rate (a send starts every 1/rate s whether or not the earlier
//! ones are answered) to a push consumer in the same process and measures
//! the time from the start of each send to its delivery to the listener.
//! Each prints one summary line: messages/s, MB/s, and for sends
//! p50/p99/p999 latency.
//! Against brokers with ACL on it signs as `mqadmin` does
//! (`ROCKETMQ_ACCESS_KEY`/`ROCKETMQ_SECRET_KEY`, else `tools.yml`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use mq_client::{
    async_trait, ClientConfig, ConsumeFromWhere, ConsumeStatus, Credentials, Listener,
    LocalTransactionState, Message, MessageExt, Producer, ProducerConfig, PushConsumer,
    PushConsumerConfig, SendStatus, TransactionChecker, TransactionProducer,
};

#[derive(Parser, Debug)]
#[command(
    name = "mqbench",
    about = "Benchmark a RocketMQ-compatible broker",
    after_help = mq_client::credentials::TOOLS_HELP
)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(clap::Args, Debug, Clone)]
struct Common {
    /// Name server address(es), `;`-separated.
    #[arg(short = 'n', long, default_value = "127.0.0.1:9876")]
    namesrv: String,
    #[arg(short = 't', long, default_value = "BenchmarkTest")]
    topic: String,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Synchronous sends, `--concurrency` in flight.
    Producer {
        #[command(flatten)]
        common: Common,
        /// Message body size in bytes.
        #[arg(short = 's', long, default_value_t = 1024)]
        size: usize,
        /// Sends in flight at once.
        #[arg(short = 'c', long, default_value_t = 32)]
        concurrency: usize,
    },
    /// Transactional sends (half + commit), `--concurrency` in flight.
    Tx {
        #[command(flatten)]
        common: Common,
        #[arg(short = 's', long, default_value_t = 1024)]
        size: usize,
        #[arg(short = 'c', long, default_value_t = 32)]
        concurrency: usize,
    },
    /// Sends at a fixed rate to a push consumer in this process; reports
    /// send-to-delivery latency.
    E2e {
        #[command(flatten)]
        common: Common,
        #[arg(short = 's', long, default_value_t = 1024)]
        size: usize,
        /// Sends started per second.
        #[arg(short = 'r', long, default_value_t = 10_000)]
        rate: u64,
        #[arg(short = 'g', long, default_value = "mqbench-e2e")]
        group: String,
    },
    /// A push consumer of the topic.
    Consumer {
        #[command(flatten)]
        common: Common,
        #[arg(short = 'g', long, default_value = "benchmark-consumer")]
        group: String,
    },
}

fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        match args.mode {
            Mode::Producer {
                common,
                size,
                concurrency,
            } => produce(common, size, concurrency, false).await,
            Mode::Tx {
                common,
                size,
                concurrency,
            } => produce(common, size, concurrency, true).await,
            Mode::Consumer { common, group } => consume(common, group).await,
            Mode::E2e {
                common,
                size,
                rate,
                group,
            } => end_to_end(common, size, rate, group).await,
        }
    })
}

/// Latency percentiles of sorted microseconds.
fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

struct CommitAll;

#[async_trait]
impl TransactionChecker for CommitAll {
    async fn check(&self, _msg: &MessageExt) -> LocalTransactionState {
        LocalTransactionState::Commit
    }
}

enum Sender {
    Plain(Producer),
    Tx(TransactionProducer),
}

async fn produce(
    common: Common,
    size: usize,
    concurrency: usize,
    transactional: bool,
) -> Result<()> {
    let client = ClientConfig::new(common.namesrv.clone())
        .with_instance_name(format!("mqbench-{}", std::process::id()))
        .with_credentials(Credentials::for_tools()?);
    let config = ProducerConfig::new(if transactional {
        "mqbench-tx-producer"
    } else {
        "mqbench-producer"
    });
    let sender = Arc::new(if transactional {
        Sender::Tx(TransactionProducer::start(config, client, Arc::new(CommitAll)).await?)
    } else {
        Sender::Plain(Producer::start(config, client).await?)
    });
    let body = Bytes::from(vec![b'x'; size]);
    // Warm up: routes, connections, topic auto-creation.
    let warm = Message::new(common.topic.clone(), body.clone());
    match sender.as_ref() {
        Sender::Plain(p) => drop(p.send(warm).await.context("the first send")?),
        Sender::Tx(p) => drop(
            p.send_in_transaction(warm, |_| async { LocalTransactionState::Commit })
                .await
                .context("the first send")?,
        ),
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (sender, stop, sent, failed, latencies, topic, body) = (
            sender.clone(),
            stop.clone(),
            sent.clone(),
            failed.clone(),
            latencies.clone(),
            common.topic.clone(),
            body.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(100_000);
            while !stop.load(Ordering::Relaxed) {
                let msg = Message::new(topic.clone(), body.clone());
                let t = Instant::now();
                let ok = match sender.as_ref() {
                    // Only SEND_OK counts: a SYNC_MASTER's SLAVE_NOT_AVAILABLE
                    // or FLUSH_SLAVE_TIMEOUT stored the message but did not
                    // replicate it in time.
                    Sender::Plain(p) => p
                        .send(msg)
                        .await
                        .is_ok_and(|r| r.status == SendStatus::SendOk),
                    Sender::Tx(p) => p
                        .send_in_transaction(msg, |_| async { LocalTransactionState::Commit })
                        .await
                        .is_ok(),
                };
                if ok {
                    mine.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    sent.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies.lock().expect("not poisoned").extend(mine);
        }));
    }
    tokio::time::sleep(Duration::from_secs(common.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for w in workers {
        let _ = w.await;
    }
    let mut all = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    all.sort_unstable();
    let n = sent.load(Ordering::Relaxed);
    println!(
        "{} size={size} concurrency={concurrency} sent={n} failed={} msgs/s={:.0} MB/s={:.1} p50={:.2}ms p99={:.2}ms p999={:.2}ms",
        if transactional { "tx" } else { "producer" },
        failed.load(Ordering::Relaxed),
        n as f64 / elapsed,
        n as f64 * size as f64 / elapsed / 1e6,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
    );
    match sender.as_ref() {
        Sender::Plain(p) => p.shutdown().await,
        Sender::Tx(p) => p.shutdown().await,
    }
    Ok(())
}

/// Bytes at the start of an `e2e` body: a marker, the run's token (so
/// that messages an earlier run left in the topic are not counted), then the
/// microseconds from the run's start to the send's start. A probe carries
/// the marker and the token only.
const E2E_MAGIC: &[u8; 8] = b"mqbe2e01";
const E2E_HEADER: usize = 24;

/// How long `e2e` waits after the last send for its deliveries.
const E2E_DRAIN: Duration = Duration::from_secs(5);

async fn end_to_end(common: Common, size: usize, rate: u64, group: String) -> Result<()> {
    let origin = Instant::now();
    let token = u64::from(std::process::id()) << 32
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    let client = ClientConfig::new(common.namesrv.clone())
        .with_instance_name(format!("mqbench-e2e-{}", std::process::id()))
        .with_credentials(Credentials::for_tools()?);
    // The consumer: ours, from the end of each queue; every delivery is
    // timed against the send start written into its body.
    let mut config = PushConsumerConfig::new(group);
    config.consume_from_where = ConsumeFromWhere::ConsumeFromLastOffset;
    let consumer = PushConsumer::new(config, client.clone());
    consumer.subscribe(&common.topic, "*")?;
    let delivered = Arc::new(Mutex::new(Vec::<u32>::new()));
    let probes = Arc::new(AtomicU64::new(0));
    let (d, p) = (delivered.clone(), probes.clone());
    consumer
        .start(Listener::concurrent(move |msgs: Vec<MessageExt>| {
            let now = origin.elapsed().as_micros() as u64;
            let mut mine = Vec::new();
            for m in &msgs {
                match e2e_stamp(&m.body, token) {
                    Some(Some(sent)) => {
                        mine.push(now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32)
                    }
                    Some(None) => drop(p.fetch_add(1, Ordering::Relaxed)),
                    None => {}
                }
            }
            if !mine.is_empty() {
                d.lock().expect("not poisoned").extend(mine);
            }
            async { ConsumeStatus::Success }
        }))
        .await?;
    let producer =
        Arc::new(Producer::start(ProducerConfig::new("mqbench-e2e-producer"), client).await?);
    // Ready when a probe (a body without the marker) comes back: the
    // consumer owns its queues and has its offsets.
    let ready_by = Instant::now() + Duration::from_secs(60);
    while probes.load(Ordering::Relaxed) == 0 {
        anyhow::ensure!(
            Instant::now() < ready_by,
            "the consumer never received a probe"
        );
        for _ in 0..8 {
            let mut probe = E2E_MAGIC.to_vec();
            probe.extend_from_slice(&token.to_be_bytes());
            let probe = Message::new(common.topic.clone(), probe);
            producer.send(probe).await.context("a probe send")?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rate = rate.max(1);
    let total = rate * common.seconds;
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let send_latencies = Arc::new(Mutex::new(Vec::<u32>::with_capacity(total as usize)));
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + Duration::from_nanos(i * 1_000_000_000 / rate);
        tokio::time::sleep_until(due.into()).await;
        let at = origin.elapsed().as_micros() as u64;
        let mut body = Vec::with_capacity(size.max(E2E_HEADER));
        body.extend_from_slice(E2E_MAGIC);
        body.extend_from_slice(&token.to_be_bytes());
        body.extend_from_slice(&at.to_be_bytes());
        body.resize(size.max(E2E_HEADER), b'x');
        let msg = Message::new(common.topic.clone(), body);
        let (producer, sent, failed, latencies) = (
            producer.clone(),
            sent.clone(),
            failed.clone(),
            send_latencies.clone(),
        );
        sends.spawn(async move {
            let t = Instant::now();
            match producer.send(msg).await {
                Ok(r) if r.status == SendStatus::SendOk => {
                    let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    latencies.lock().expect("not poisoned").push(us);
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                _ => drop(failed.fetch_add(1, Ordering::Relaxed)),
            }
        });
        while sends.try_join_next().is_some() {}
    }
    let elapsed = started.elapsed().as_secs_f64();
    while sends.join_next().await.is_some() {}
    let n = sent.load(Ordering::Relaxed);
    let drain_by = Instant::now() + E2E_DRAIN;
    while (delivered.lock().expect("not poisoned").len() as u64) < n && Instant::now() < drain_by {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut e2e = std::mem::take(&mut *delivered.lock().expect("not poisoned"));
    e2e.sort_unstable();
    let mut send = std::mem::take(&mut *send_latencies.lock().expect("not poisoned"));
    send.sort_unstable();
    println!(
        "e2e size={size} rate={rate} sent={n} failed={} delivered={} msgs/s={:.0} send_p50={:.2}ms send_p99={:.2}ms p50={:.2}ms p99={:.2}ms p999={:.2}ms max={:.2}ms",
        failed.load(Ordering::Relaxed),
        e2e.len(),
        n as f64 / elapsed,
        percentile(&send, 0.50),
        percentile(&send, 0.99),
        percentile(&e2e, 0.50),
        percentile(&e2e, 0.99),
        percentile(&e2e, 0.999),
        percentile(&e2e, 1.0),
    );
    consumer.shutdown().await;
    producer.shutdown().await;
    Ok(())
}

/// `None` for a body that is not this run's; `Some(None)` for this run's
/// probe; `Some(Some(start))` for a timed message sent at `start`.
fn e2e_stamp(body: &[u8], token: u64) -> Option<Option<u64>> {
    let rest = body
        .strip_prefix(E2E_MAGIC)?
        .strip_prefix(&token.to_be_bytes()[..])?;
    match rest.get(..8) {
        None => Some(None),
        Some(stamp) => Some(Some(u64::from_be_bytes(stamp.try_into().ok()?))),
    }
}

async fn consume(common: Common, group: String) -> Result<()> {
    let client = ClientConfig::new(common.namesrv.clone())
        .with_instance_name(format!("mqbench-c-{}", std::process::id()))
        .with_credentials(Credentials::for_tools()?);
    let mut config = PushConsumerConfig::new(group);
    config.consume_from_where = ConsumeFromWhere::ConsumeFromFirstOffset;
    config.consume_batch_max_size = 32;
    let consumer = PushConsumer::new(config, client);
    consumer.subscribe(&common.topic, "*")?;
    let count = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let (c, b) = (count.clone(), bytes.clone());
    consumer
        .start(Listener::concurrent(move |msgs: Vec<MessageExt>| {
            c.fetch_add(msgs.len() as u64, Ordering::Relaxed);
            b.fetch_add(
                msgs.iter().map(|m| m.body.len() as u64).sum(),
                Ordering::Relaxed,
            );
            async { ConsumeStatus::Success }
        }))
        .await?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(common.seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let n = count.load(Ordering::Relaxed);
    println!(
        "consumer consumed={n} msgs/s={:.0} MB/s={:.1}",
        n as f64 / elapsed,
        bytes.load(Ordering::Relaxed) as f64 / elapsed / 1e6
    );
    consumer.shutdown().await;
    Ok(())
}
