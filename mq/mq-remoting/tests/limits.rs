//! The server's connection limits: idle connections and stalled frames are
//! closed, connections beyond the maximum are refused (logged once), and
//! busy or slow-but-steady connections are left alone.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mq_protocol::{RemotingCommand, ResponseCode};
use mq_remoting::{
    async_trait, serve_with, Channel, Connection, HandlerError, RequestHandler, ServerConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const ECHO: i32 = 1;
/// Answers after the number of milliseconds in the `ms` field.
const SLOW: i32 = 2;

/// The bound on anything the tests wait for; they never sleep fixed times.
const LONG: Duration = Duration::from_secs(10);

struct Echo;

#[async_trait]
impl RequestHandler for Echo {
    async fn handle(
        &self,
        _channel: &Channel,
        request: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, HandlerError> {
        if request.code == SLOW {
            let ms = request.field("ms").unwrap_or("0").parse()?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Ok(Some(RemotingCommand::response_to(
            &request,
            ResponseCode::SUCCESS,
        )))
    }
}

struct Server {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(config: ServerConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_with(listener, Arc::new(Echo), config, async move {
        let _ = stopped.await;
    }));
    Server { addr, _stop: stop }
}

fn limits(idle_ms: u64, frame_ms: u64) -> ServerConfig {
    ServerConfig {
        idle_timeout: Some(Duration::from_millis(idle_ms)),
        frame_read_timeout: Some(Duration::from_millis(frame_ms)),
        ..ServerConfig::default()
    }
}

/// Reads until the server closes `stream`; returns how long that took.
async fn closed_after(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(LONG, stream.read(&mut buf))
        .await
        .expect("the server did not close the connection");
    if let Ok(n) = read {
        assert_eq!(n, 0, "the server sent bytes: {:?}", &buf[..n]);
    }
    started.elapsed()
}

async fn call(connection: &mut Connection, request: RemotingCommand) -> RemotingCommand {
    connection.write_frame(&request).await.unwrap();
    tokio::time::timeout(LONG, connection.read_frame())
        .await
        .expect("no answer in time")
        .unwrap()
        .expect("closed instead of answering")
}

async fn connect(addr: SocketAddr) -> Connection {
    let stream = TcpStream::connect(addr).await.unwrap();
    Connection::new(stream, mq_protocol::DEFAULT_MAX_FRAME_LEN).unwrap()
}

#[tokio::test]
async fn a_connection_that_never_sends_is_closed_after_the_idle_time() {
    let server = start(limits(300, 60_000)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let took = closed_after(&mut stream).await;
    assert!(
        took >= Duration::from_millis(250),
        "closed too early: {took:?}"
    );
}

#[tokio::test]
async fn a_frame_that_stalls_halfway_is_closed_after_the_frame_bound() {
    // Idle time far away: only the frame bound can close it.
    let server = start(limits(60_000, 300)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut frame = bytes::BytesMut::new();
    RemotingCommand::request(ECHO).encode(&mut frame);
    stream.write_all(&frame[..frame.len() / 2]).await.unwrap();
    let took = closed_after(&mut stream).await;
    assert!(
        took >= Duration::from_millis(250),
        "closed too early: {took:?}"
    );
}

#[tokio::test]
async fn frames_more_often_than_the_idle_time_keep_a_connection() {
    let server = start(limits(400, 60_000)).await;
    let mut connection = connect(server.addr).await;
    // Each pause is shorter than the idle time; together they are longer.
    for _ in 0..6 {
        let answer = call(
            &mut connection,
            RemotingCommand::request(SLOW).with_field("ms", "150"),
        )
        .await;
        assert_eq!(answer.code, i32::from(ResponseCode::SUCCESS));
    }
}

#[tokio::test]
async fn a_request_in_flight_longer_than_the_idle_time_is_answered() {
    let server = start(limits(200, 60_000)).await;
    let mut connection = connect(server.addr).await;
    let answer = call(
        &mut connection,
        RemotingCommand::request(SLOW).with_field("ms", "800"),
    )
    .await;
    assert_eq!(answer.code, i32::from(ResponseCode::SUCCESS));
}

/// A `MakeWriter` into a shared buffer, to read what the server logged.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn count(&self, needle: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .matches(needle)
            .count()
    }
}

#[tokio::test]
async fn connections_beyond_the_maximum_are_refused_and_logged_once() {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The test runtime is single-threaded, so the server logs here.
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = start(ServerConfig {
        max_connections: 3,
        ..ServerConfig::default()
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut connection = connect(server.addr).await;
        call(&mut connection, RemotingCommand::request(ECHO)).await;
        open.push(connection);
    }
    for _ in 0..5 {
        let mut refused = TcpStream::connect(server.addr).await.unwrap();
        closed_after(&mut refused).await;
    }
    assert_eq!(
        log.count("refusing new connections: serverMaxConnections reached"),
        1
    );
    // The ones held stay usable; once one closes, a new one is accepted.
    call(&mut open[0], RemotingCommand::request(ECHO)).await;
    drop(open.pop());
    let deadline = Instant::now() + LONG;
    loop {
        let mut connection = connect(server.addr).await;
        connection
            .write_frame(&RemotingCommand::request(ECHO))
            .await
            .unwrap();
        if let Ok(Some(_)) = connection.read_frame().await {
            break;
        }
        assert!(Instant::now() < deadline, "no connection accepted again");
        tokio::task::yield_now().await;
    }
    assert_eq!(log.count("accepting connections again"), 1);
}
