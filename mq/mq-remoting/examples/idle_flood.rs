//! Latency of a good client while many idle connections are open.
//!
//! ```text
//! cargo run --release -p mq-remoting --example idle_flood -- \
//!     [--connections 10000] [--requests 100] [--addr HOST:PORT]
//! ```
//!
//! Without `--addr` it starts a server of its own in a child process (so
//! the idle connections' two ends do not share one open-file limit) that
//! answers every request; with `--addr` (e.g. a running `mqnamesrv`) it
//! sends GET_ROUTEINFO_BY_TOPIC there; any answer counts. It measures the
//! requests of one fresh client first with no idle connections, then with
//! `--connections` idle ones open, and prints median, p99 and max.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mq_protocol::{request_code, RemotingCommand, ResponseCode};
use mq_remoting::{
    async_trait, raise_fd_limit, serve, Channel, ClientConfig, HandlerError, RemotingClient,
    RequestHandler,
};
use tokio::net::{TcpListener, TcpStream};

const SERVE_FLAG: &str = "--serve";
const LISTENING: &str = "listening on ";
/// Connects in flight at once: under the listen backlog (128, std's).
const CONNECT_WINDOW: usize = 100;

struct Answer;

#[async_trait]
impl RequestHandler for Answer {
    async fn handle(
        &self,
        _channel: &Channel,
        request: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, HandlerError> {
        Ok(Some(RemotingCommand::response_to(
            &request,
            ResponseCode::SUCCESS,
        )))
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == SERVE_FLAG) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{LISTENING}{}", listener.local_addr().unwrap());
        serve(listener, Arc::new(Answer), std::future::pending::<()>()).await;
        return;
    }
    let connections: usize = arg(&args, "--connections").map_or(10_000, |n| n.parse().unwrap());
    let requests: usize = arg(&args, "--requests").map_or(100, |n| n.parse().unwrap());
    let fd_limit = raise_fd_limit();
    let mut child = None;
    let addr = match arg(&args, "--addr") {
        Some(addr) => addr,
        None => {
            let mut server = Command::new(std::env::current_exe().unwrap())
                .arg(SERVE_FLAG)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut line = String::new();
            BufReader::new(server.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            child = Some(server);
            line.trim().strip_prefix(LISTENING).unwrap().to_owned()
        }
    };
    println!("server {addr}, open-file limit here {fd_limit:?}");
    let idle0 = measure(&addr, requests).await;
    report("0 idle connections", &idle0);
    let started = Instant::now();
    let mut idle = Vec::with_capacity(connections);
    while idle.len() < connections {
        let batch = CONNECT_WINDOW.min(connections - idle.len());
        let connects: Vec<_> = (0..batch)
            .map(|_| tokio::spawn(TcpStream::connect(addr.clone())))
            .collect();
        for connect in connects {
            idle.push(connect.await.unwrap().expect("idle connection"));
        }
    }
    println!(
        "{} idle connections opened in {:?}",
        idle.len(),
        started.elapsed()
    );
    if let Some(server) = &child {
        println!("server memory: {}", rss(server.id()));
    }
    let flooded = measure(&addr, requests).await;
    report(&format!("{connections} idle connections"), &flooded);
    drop(idle);
    if let Some(mut server) = child {
        let _ = server.kill();
        let _ = server.wait();
    }
}

/// Latencies of `requests` sequential requests of a fresh client (its
/// connect included in the first).
async fn measure(addr: &str, requests: usize) -> Vec<Duration> {
    let client = RemotingClient::new(ClientConfig::default());
    let mut latencies = Vec::with_capacity(requests);
    for _ in 0..requests {
        let request = RemotingCommand::request(request_code::GET_ROUTEINFO_BY_TOPIC)
            .with_field("topic", "TBW102");
        let started = Instant::now();
        client
            .invoke(addr, request, Duration::from_secs(5))
            .await
            .expect("answered within 5 s");
        latencies.push(started.elapsed());
    }
    latencies
}

fn report(what: &str, latencies: &[Duration]) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: {} requests, first {:?}, median {:?}, p99 {:?}, max {:?}",
        sorted.len(),
        latencies[0],
        at(0.5),
        at(0.99),
        sorted[sorted.len() - 1]
    );
}

fn rss(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l["VmRSS:".len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}
