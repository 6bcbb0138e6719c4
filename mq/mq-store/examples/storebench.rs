//! Store append benchmark: N concurrent writers putting fixed-size messages
//! for S seconds, then msgs/s, MB/s, messages per commit log flush and put
//! latency percentiles.
//!
//! ```text
//! cargo run --release -p mq-store --example storebench -- \
//!     --flush async|sync --writers N --size 1024 --seconds S [--dir PATH] [--no-keys]
//! ```
//! Each message carries a TAGS and a UNIQ_KEY property, as RocketMQ clients
//! send them, so every put also writes a consume queue entry and an index
//! entry. `--dir` picks the file system (default: a temporary folder under
//! the system temp dir); the store is deleted afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mq_store::{FlushDiskType, MessageStore, MessageStoreConfig, PutMessage, PutStatus};

struct Args {
    flush: FlushDiskType,
    writers: usize,
    size: usize,
    seconds: u64,
    dir: Option<String>,
    keys: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        flush: FlushDiskType::AsyncFlush,
        writers: 1,
        size: 1024,
        seconds: 10,
        dir: None,
        keys: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--flush" => {
                a.flush = match value()?.as_str() {
                    "async" => FlushDiskType::AsyncFlush,
                    "sync" => FlushDiskType::SyncFlush,
                    other => return Err(format!("--flush async|sync, not {other}")),
                }
            }
            "--writers" => a.writers = value()?.parse().map_err(|e| format!("--writers: {e}"))?,
            "--size" => a.size = value()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--seconds" => a.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--dir" => a.dir = Some(value()?),
            "--no-keys" => a.keys = false,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let tmp = match &args.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let mut config = MessageStoreConfig::with_root(tmp.path());
    config.flush_disk_type = args.flush;
    let store = Arc::new(MessageStore::open(config)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    // The body size is chosen so that the stored message is `--size` bytes.
    let keys = args.keys;
    let probe = move |body_len: usize, n: u64| PutMessage {
        topic: "BenchTopic".into(),
        queue_id: (n % 8) as i32,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 0,
        born_host: "127.0.0.1:50000".parse().expect("addr"),
        store_host: "127.0.0.1:10911".parse().expect("addr"),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from(vec![b'x'; body_len]),
        properties: if keys {
            format!("TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}7F00000100002A9F{n:016X}\u{2}")
        } else {
            "TAGS\u{1}TagA\u{2}".to_owned()
        },
    };
    let overhead = {
        let r = runtime.block_on(store.put_message(probe(0, 0)))?;
        r.wrote_bytes
    };
    let body_len = args.size.saturating_sub(overhead);

    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let flushes_before = store.stats().commit_log_flushes;
    let started = Instant::now();
    let (latencies, bytes, timeouts) = runtime.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..args.writers {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(1 << 20);
                let mut bytes = 0u64;
                let mut timeouts = 0u64;
                let mut n = (w as u64) << 40;
                while Instant::now() < deadline {
                    let m = probe(body_len, n);
                    n += 1;
                    let t = Instant::now();
                    let r = store.put_message(m).await.expect("put");
                    lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    bytes += r.wrote_bytes as u64;
                    if r.status == PutStatus::FlushDiskTimeout {
                        timeouts += 1;
                    }
                }
                (lat, bytes, timeouts)
            }));
        }
        let mut all = Vec::new();
        let (mut bytes, mut timeouts) = (0, 0);
        for t in tasks {
            let (l, b, to) = t.await.expect("writer");
            all.extend(l);
            bytes += b;
            timeouts += to;
        }
        (all, bytes, timeouts)
    });
    let elapsed = started.elapsed().as_secs_f64();
    let flushes = store.stats().commit_log_flushes - flushes_before;
    let mut sorted = latencies;
    sorted.sort_unstable();
    let msgs = sorted.len() as f64;
    println!(
        "flush={:?} writers={} size={} seconds={:.1}",
        args.flush, args.writers, args.size, elapsed
    );
    println!(
        "msgs={} msgs/s={:.0} MB/s={:.1} flushes={} msgs/flush={:.1} p50_us={} p99_us={} flush_timeouts={}",
        sorted.len(),
        msgs / elapsed,
        bytes as f64 / elapsed / 1e6,
        flushes,
        if flushes > 0 { msgs / flushes as f64 } else { 0.0 },
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.99),
        timeouts
    );
    store.shutdown()?;
    Ok(())
}
