//! The `mqnamesrv` binary under a crowd of idle connections: a fresh client
//! still gets its answers. The name server runs in its own process, as in
//! production, so each side has its own open-file limit.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mq_protocol::{request_code as rc, RemotingCommand, ResponseCode};
use mq_remoting::{raise_fd_limit, ClientConfig, RemotingClient};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_mqnamesrv");
const BOOT_LINE: &str = "The Name Server boot success. serializeType=JSON, address=";
const IDLE_CONNECTIONS: usize = 10_000;
/// Connects in flight at once: under the listen backlog (128, std's).
const CONNECT_WINDOW: usize = 100;
/// Generous, so a loaded CI machine cannot make it flaky; the benchmark
/// (`mq-remoting`'s `idle_flood` example) measures the real latency.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Kills the name server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_namesrv(dir: &tempfile::TempDir) -> (Running, String) {
    let config = dir.path().join("namesrv.properties");
    std::fs::write(
        &config,
        format!(
            "listenPort=0\nbindAddress=127.0.0.1\nkvConfigPath={}\n",
            dir.path().join("kvConfig.json").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .env("ROCKETMQ_LOG_ROOT", dir.path().join("logs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let running = Running(child);
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(addr) = line.strip_prefix(BOOT_LINE) {
            return (running, addr.trim().to_owned());
        }
    }
    panic!("mqnamesrv exited without booting");
}

async fn answered(client: &RemotingClient, addr: &str, request: RemotingCommand) -> i32 {
    let started = Instant::now();
    let response = client
        .invoke(addr, request, ANSWER_WITHIN)
        .await
        .expect("the name server answers despite the idle connections");
    assert!(started.elapsed() <= ANSWER_WITHIN);
    response.code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_name_server_answers_with_ten_thousand_idle_connections_open() {
    let limit = raise_fd_limit().expect("RLIMIT_NOFILE is readable");
    assert!(
        limit > (IDLE_CONNECTIONS + 500) as u64,
        "this test needs an open-file hard limit above {} (ulimit -Hn), have {limit}",
        IDLE_CONNECTIONS + 500
    );
    let dir = tempfile::tempdir().unwrap();
    let (_namesrv, addr) = start_namesrv(&dir);

    let mut idle = Vec::with_capacity(IDLE_CONNECTIONS);
    while idle.len() < IDLE_CONNECTIONS {
        let batch = CONNECT_WINDOW.min(IDLE_CONNECTIONS - idle.len());
        let connects: Vec<_> = (0..batch)
            .map(|_| tokio::spawn(TcpStream::connect(addr.clone())))
            .collect();
        for connect in connects {
            idle.push(connect.await.unwrap().expect("idle connection"));
        }
    }

    let client = RemotingClient::new(ClientConfig::default());
    let route = RemotingCommand::request(rc::GET_ROUTEINFO_BY_TOPIC).with_field("topic", "TBW102");
    assert_eq!(
        answered(&client, &addr, route).await,
        i32::from(ResponseCode::TOPIC_NOT_EXIST)
    );
    let cluster = RemotingCommand::request(rc::GET_BROKER_CLUSTER_INFO);
    assert_eq!(
        answered(&client, &addr, cluster).await,
        i32::from(ResponseCode::SUCCESS)
    );
    drop(idle);
}
