//! Loopback tests of the server, the client and full-duplex channels.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_protocol::frame::flag;
use mq_protocol::{request_code, RemotingCommand, ResponseCode, SerializeType};
use mq_remoting::{
    async_trait, not_supported, serve_with, Channel, ClientConfig, Connection, HandlerError,
    RemotingClient, RemotingError, RequestHandler, ServerConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Barrier, Semaphore};

const ECHO: i32 = 1;
const GATED: i32 = 2;
const FAIL: i32 = 3;
const CALLBACK: i32 = 4;
const CLOSE: i32 = 5;
const BARRIER: i32 = 6;
const PANIC: i32 = 7;
const GATED_PANIC: i32 = 8;

const LONG: Duration = Duration::from_secs(10);

/// Answers by code; records the channels it saw open and close.
struct TestHandler {
    gates: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Ids of GATED requests whose handler has started waiting.
    parked: Mutex<Vec<String>>,
    barrier: Barrier,
    opened: Mutex<Vec<Channel>>,
    closed: mpsc::UnboundedSender<u64>,
}

impl TestHandler {
    fn new(barrier: usize) -> (Arc<Self>, mpsc::UnboundedReceiver<u64>) {
        let (closed, closed_rx) = mpsc::unbounded_channel();
        let handler = Arc::new(TestHandler {
            gates: Mutex::new(HashMap::new()),
            parked: Mutex::new(Vec::new()),
            barrier: Barrier::new(barrier),
            opened: Mutex::new(Vec::new()),
            closed,
        });
        (handler, closed_rx)
    }

    fn gate(&self, id: &str) -> Arc<Semaphore> {
        self.gates
            .lock()
            .unwrap()
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(0)))
            .clone()
    }

    fn release(&self, id: &str) {
        self.gate(id).add_permits(1);
    }

    fn opened(&self) -> Vec<Channel> {
        self.opened.lock().unwrap().clone()
    }
}

fn id_of(request: &RemotingCommand) -> String {
    request.field("id").unwrap_or_default().to_owned()
}

#[async_trait]
impl RequestHandler for TestHandler {
    async fn handle(
        &self,
        channel: &Channel,
        request: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, HandlerError> {
        let id = id_of(&request);
        let ok = RemotingCommand::response_to(&request, ResponseCode::SUCCESS);
        match request.code {
            ECHO => Ok(Some(ok.with_remark(id).with_body(request.body.clone()))),
            GATED => {
                self.parked.lock().unwrap().push(id.clone());
                let _permit = self.gate(&id).acquire_owned().await?;
                Ok(Some(ok.with_remark(id)))
            }
            FAIL => Err(format!("boom: {id}").into()),
            CALLBACK => {
                let ask = RemotingCommand::request(request_code::CHECK_TRANSACTION_STATE)
                    .with_field("id", &id);
                let answer = channel.invoke(ask, LONG).await?;
                Ok(Some(ok.with_remark(answer.remark.unwrap_or_default())))
            }
            CLOSE => {
                channel.close();
                Ok(None)
            }
            BARRIER => {
                self.barrier.wait().await;
                Ok(Some(ok.with_remark(id)))
            }
            PANIC => panic!("handler bug: {id}"),
            GATED_PANIC => {
                let _permit = self.gate(&id).acquire_owned().await?;
                panic!("late handler bug: {id}")
            }
            _ => Ok(Some(not_supported(&request))),
        }
    }

    fn on_open(&self, channel: &Channel) {
        self.opened.lock().unwrap().push(channel.clone());
    }

    fn on_close(&self, channel: &Channel) {
        let _ = self.closed.send(channel.id());
    }
}

struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    async fn start(handler: Arc<TestHandler>, config: ServerConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(listener, handler, config, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn addr(&self) -> String {
        self.addr.to_string()
    }
}

async fn start(barrier: usize) -> (TestServer, Arc<TestHandler>, mpsc::UnboundedReceiver<u64>) {
    let (handler, closed) = TestHandler::new(barrier);
    let server = TestServer::start(handler.clone(), ServerConfig::default()).await;
    (server, handler, closed)
}

fn request(code: i32, id: &str) -> RemotingCommand {
    RemotingCommand::request(code).with_field("id", id)
}

async fn raw(addr: SocketAddr) -> Connection {
    Connection::new(
        TcpStream::connect(addr).await.unwrap(),
        mq_protocol::DEFAULT_MAX_FRAME_LEN,
    )
    .unwrap()
}

/// Reads until the server closes the socket; panics if it sends a frame.
async fn expect_eof(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(LONG, stream.read(&mut buf))
        .await
        .expect("server did not close the connection");
    // A reset is a close too.
    if let Ok(n) = read {
        assert_eq!(
            n,
            0,
            "server sent bytes instead of closing: {:?}",
            &buf[..n]
        );
    }
}

#[tokio::test]
async fn request_and_response_over_loopback() {
    let (server, _handler, _closed) = start(1).await;
    let client = RemotingClient::new(ClientConfig::default());
    let response = client
        .invoke(
            &server.addr(),
            request(ECHO, "a").with_body(&b"payload"[..]),
            LONG,
        )
        .await
        .unwrap();
    assert!(response.is_response());
    assert_eq!(response.response_code(), Some(ResponseCode::SUCCESS));
    assert_eq!(response.remark.as_deref(), Some("a"));
    assert_eq!(&response.body[..], b"payload");

    // Unknown codes are answered, not dropped, and the connection stays.
    let unknown = client
        .invoke(&server.addr(), request(999, "u"), LONG)
        .await
        .unwrap();
    assert_eq!(
        unknown.response_code(),
        Some(ResponseCode::REQUEST_CODE_NOT_SUPPORTED)
    );
    let again = client
        .invoke(&server.addr(), request(ECHO, "b"), LONG)
        .await
        .unwrap();
    assert_eq!(again.remark.as_deref(), Some("b"));
}

#[tokio::test]
async fn responses_echo_opaque_and_serialize_type() {
    let (server, _handler, _closed) = start(1).await;
    let mut conn = raw(server.addr).await;
    for (opaque, st) in [(41, SerializeType::RocketMq), (42, SerializeType::Json)] {
        let mut req = request(ECHO, "x");
        req.opaque = opaque;
        req.serialize_type = st;
        conn.write_frame(&req).await.unwrap();
        let response = conn.read_frame().await.unwrap().unwrap();
        assert_eq!(response.opaque, opaque);
        assert_eq!(response.serialize_type, st);
        assert!(response.is_response());
    }
}

#[tokio::test]
async fn many_concurrent_requests_share_one_connection() {
    const N: usize = 64;
    // Every handler waits at a barrier of N: the test only finishes if all N
    // requests of the one connection are being handled at the same time.
    let (server, handler, _closed) = start(N).await;
    let client = RemotingClient::new(ClientConfig::default());
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..N {
        let client = client.clone();
        let addr = server.addr();
        calls.spawn(async move {
            let response = client
                .invoke(&addr, request(BARRIER, &i.to_string()), LONG)
                .await
                .unwrap();
            (i, response)
        });
    }
    while let Some(joined) = calls.join_next().await {
        let (i, response) = joined.unwrap();
        assert_eq!(
            response.remark,
            Some(i.to_string()),
            "response matched to the wrong request"
        );
    }
    assert_eq!(
        handler.opened().len(),
        1,
        "the client must reuse its connection"
    );
}

#[tokio::test]
async fn slow_requests_complete_out_of_order_without_blocking_others() {
    let (server, handler, _closed) = start(1).await;
    let mut conn = raw(server.addr).await;
    for (opaque, id) in [(11, "g1"), (12, "g2"), (13, "g3")] {
        let mut req = request(GATED, id);
        req.opaque = opaque;
        conn.write_frame(&req).await.unwrap();
    }
    // A fast request behind three held ones is answered first.
    let mut echo = request(ECHO, "fast");
    echo.opaque = 14;
    conn.write_frame(&echo).await.unwrap();
    assert_eq!(conn.read_frame().await.unwrap().unwrap().opaque, 14);
    for (id, opaque) in [("g3", 13), ("g1", 11), ("g2", 12)] {
        handler.release(id);
        let response = conn.read_frame().await.unwrap().unwrap();
        assert_eq!(response.opaque, opaque);
        assert_eq!(response.remark.as_deref(), Some(id));
    }
}

/// The client side of a call-back: answers CHECK_TRANSACTION_STATE.
struct ClientSide;

#[async_trait]
impl RequestHandler for ClientSide {
    async fn handle(
        &self,
        _channel: &Channel,
        request: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, HandlerError> {
        if request.code == request_code::CHECK_TRANSACTION_STATE {
            let answer = format!("COMMIT {}", id_of(&request));
            Ok(Some(
                RemotingCommand::response_to(&request, ResponseCode::SUCCESS).with_remark(answer),
            ))
        } else {
            Ok(Some(not_supported(&request)))
        }
    }
}

#[tokio::test]
async fn server_invokes_the_client_on_the_same_connection() {
    let (server, handler, _closed) = start(1).await;
    let client = RemotingClient::with_handler(ClientConfig::default(), Arc::new(ClientSide));
    // While handling a request, the server asks the client and waits.
    let response = client
        .invoke(&server.addr(), request(CALLBACK, "t1"), LONG)
        .await
        .unwrap();
    assert_eq!(response.remark.as_deref(), Some("COMMIT t1"));

    // Later, outside any request, through the channel the server kept.
    let channels = handler.opened();
    assert_eq!(channels.len(), 1);
    let channel = &channels[0];
    let client_channel = client.channel(&server.addr(), LONG).await.unwrap();
    assert_eq!(channel.peer_addr(), client_channel.local_addr());
    let answer = channel
        .invoke(request(request_code::CHECK_TRANSACTION_STATE, "t2"), LONG)
        .await
        .unwrap();
    assert_eq!(answer.remark.as_deref(), Some("COMMIT t2"));
    // A request code the client does not serve is answered, not dropped.
    let other = channel.invoke(request(ECHO, "x"), LONG).await.unwrap();
    assert_eq!(
        other.response_code(),
        Some(ResponseCode::REQUEST_CODE_NOT_SUPPORTED)
    );
    // Oneway from the server is accepted and nothing comes back for it.
    channel
        .oneway(request(request_code::NOTIFY_CONSUMER_IDS_CHANGED, "n"))
        .await
        .unwrap();
    let after = client
        .invoke(&server.addr(), request(ECHO, "still"), LONG)
        .await
        .unwrap();
    assert_eq!(after.remark.as_deref(), Some("still"));
}

#[tokio::test]
async fn timeouts_are_typed_and_late_responses_are_dropped() {
    let (server, handler, _closed) = start(1).await;
    let client = RemotingClient::new(ClientConfig::default());
    let error = client
        .invoke(
            &server.addr(),
            request(GATED, "late"),
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
    match error {
        RemotingError::Timeout {
            addr,
            code,
            timeout_ms,
        } => {
            assert_eq!(addr, server.addr());
            assert_eq!(code, GATED);
            assert_eq!(timeout_ms, 50);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // The late response arrives for an opaque nobody waits for any more; the
    // connection carries on.
    handler.release("late");
    let response = client
        .invoke(&server.addr(), request(ECHO, "next"), LONG)
        .await
        .unwrap();
    assert_eq!(response.remark.as_deref(), Some("next"));
    assert_eq!(handler.opened().len(), 1);
}

#[tokio::test]
async fn handler_errors_answer_system_error_and_oneways_get_nothing() {
    let (server, _handler, _closed) = start(1).await;
    let mut conn = raw(server.addr).await;
    let mut oneway = request(FAIL, "quiet").oneway();
    oneway.opaque = 1;
    conn.write_frame(&oneway).await.unwrap();
    let mut ok_oneway = request(ECHO, "quiet too").oneway();
    ok_oneway.opaque = 2;
    conn.write_frame(&ok_oneway).await.unwrap();
    let mut failing = request(FAIL, "loud");
    failing.opaque = 3;
    conn.write_frame(&failing).await.unwrap();
    let response = conn.read_frame().await.unwrap().unwrap();
    assert_eq!(response.opaque, 3, "oneway requests must get no response");
    assert_eq!(response.response_code(), Some(ResponseCode::SYSTEM_ERROR));
    assert_eq!(response.remark.as_deref(), Some("boom: loud"));
}

/// A handler that panics, when first polled or after it waited, answers
/// SYSTEM_ERROR with the panic's message; the connection goes on serving.
#[tokio::test]
async fn a_panicking_handler_answers_system_error_and_the_connection_stays() {
    let (server, handler, _closed) = start(1).await;
    let mut conn = raw(server.addr).await;
    let mut late = request(GATED_PANIC, "late");
    late.opaque = 1;
    conn.write_frame(&late).await.unwrap();
    let mut early = request(PANIC, "early");
    early.opaque = 2;
    conn.write_frame(&early).await.unwrap();
    let response = conn.read_frame().await.unwrap().unwrap();
    assert_eq!(response.opaque, 2);
    assert_eq!(response.response_code(), Some(ResponseCode::SYSTEM_ERROR));
    assert_eq!(
        response.remark.as_deref(),
        Some("request handler failed: panicked: handler bug: early")
    );
    handler.release("late");
    let response = conn.read_frame().await.unwrap().unwrap();
    assert_eq!(response.opaque, 1);
    assert_eq!(response.response_code(), Some(ResponseCode::SYSTEM_ERROR));
    assert_eq!(
        response.remark.as_deref(),
        Some("request handler failed: panicked: late handler bug: late")
    );
    let mut echo = request(ECHO, "after");
    echo.opaque = 3;
    conn.write_frame(&echo).await.unwrap();
    let response = conn.read_frame().await.unwrap().unwrap();
    assert_eq!(
        (response.opaque, response.remark.as_deref()),
        (3, Some("after"))
    );
}

/// Frames that arrive in one segment are all served: those that finish at
/// once are answered (in order) while one of them is held, and a held one
/// is answered when it finishes.
#[tokio::test]
async fn pipelined_requests_are_all_answered_around_a_held_one() {
    let (server, handler, _closed) = start(1).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut frames = bytes::BytesMut::new();
    for (opaque, code, id) in [
        (1, ECHO, "e1"),
        (2, GATED, "held"),
        (3, ECHO, "e3"),
        (4, FAIL, "f4"),
        (5, ECHO, "e5"),
    ] {
        let mut req = request(code, id).with_body(id.as_bytes().to_vec());
        req.opaque = opaque;
        req.encode(&mut frames);
    }
    stream.write_all(&frames).await.unwrap();
    let mut conn = Connection::new(stream, mq_protocol::DEFAULT_MAX_FRAME_LEN).unwrap();
    let mut answered = Vec::new();
    for _ in 0..4 {
        let response = conn.read_frame().await.unwrap().unwrap();
        answered.push((response.opaque, response.code, response.body.to_vec()));
    }
    let ok: i32 = ResponseCode::SUCCESS.into();
    let error: i32 = ResponseCode::SYSTEM_ERROR.into();
    assert_eq!(
        answered,
        vec![
            (1, ok, b"e1".to_vec()),
            (3, ok, b"e3".to_vec()),
            (4, error, Vec::new()),
            (5, ok, b"e5".to_vec()),
        ]
    );
    handler.release("held");
    let response = conn.read_frame().await.unwrap().unwrap();
    assert_eq!(
        (response.opaque, response.remark.as_deref()),
        (2, Some("held"))
    );
}

/// The requests that came before a bad frame are answered before the
/// connection closes.
#[tokio::test]
async fn requests_before_a_bad_frame_are_answered_then_the_connection_closes() {
    let (server, _handler, _closed) = start(1).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut frames = bytes::BytesMut::new();
    for opaque in [1, 2] {
        let mut req = request(ECHO, "before");
        req.opaque = opaque;
        req.encode(&mut frames);
    }
    // A frame with an unknown serialize type.
    frames.extend_from_slice(&[0, 0, 0, 4, 7, 0, 0, 0]);
    stream.write_all(&frames).await.unwrap();
    let mut got = Vec::new();
    // The server may reset rather than close: what arrived before counts.
    let _ = tokio::time::timeout(LONG, stream.read_to_end(&mut got))
        .await
        .expect("server did not close the connection");
    let mut at = 0;
    let mut opaques = Vec::new();
    while let Some((response, used)) =
        RemotingCommand::decode(&got[at..], mq_protocol::DEFAULT_MAX_FRAME_LEN).unwrap()
    {
        opaques.push(response.opaque);
        at += used;
    }
    assert_eq!(opaques, vec![1, 2]);
    assert_eq!(at, got.len(), "nothing but the two answers");
}

#[tokio::test]
async fn bad_frames_close_only_their_connection() {
    let (handler, mut closed) = TestHandler::new(1);
    let config = ServerConfig {
        max_frame_len: 4096,
        ..ServerConfig::default()
    };
    let server = TestServer::start(handler.clone(), config).await;
    let client = RemotingClient::new(ClientConfig::default());
    client
        .invoke(&server.addr(), request(ECHO, "before"), LONG)
        .await
        .unwrap();

    let cases: [&[u8]; 4] = [
        // Not JSON.
        &[0, 0, 0, 7, 0, 0, 0, 3, b'x', b'y', b'z'],
        // Length prefix far above the limit: refused from the prefix alone.
        &[0x7f, 0xff, 0xff, 0xff],
        // Just above the limit.
        &4097u32.to_be_bytes(),
        // Unknown serialize type.
        &[0, 0, 0, 4, 9, 0, 0, 0],
    ];
    for bytes in cases {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        expect_eof(&mut stream).await;
        // The server noticed and reported the close.
        tokio::time::timeout(LONG, closed.recv())
            .await
            .unwrap()
            .unwrap();
        let response = client
            .invoke(&server.addr(), request(ECHO, "after"), LONG)
            .await
            .unwrap();
        assert_eq!(response.remark.as_deref(), Some("after"));
    }
    assert_eq!(handler.opened().len(), 1 + cases.len());
}

#[tokio::test]
async fn responses_to_unknown_opaques_are_ignored() {
    let (server, _handler, _closed) = start(1).await;
    let mut conn = raw(server.addr).await;
    let mut stray = RemotingCommand::request(0);
    stray.flag = flag::RESPONSE;
    stray.opaque = 999;
    conn.write_frame(&stray).await.unwrap();
    let mut echo = request(ECHO, "e");
    echo.opaque = 5;
    conn.write_frame(&echo).await.unwrap();
    let response = conn.read_frame().await.unwrap().unwrap();
    assert_eq!(response.opaque, 5);
    assert_eq!(response.remark.as_deref(), Some("e"));
}

#[tokio::test]
async fn a_closed_connection_fails_pending_calls_notifies_and_reconnects() {
    let (server, handler, mut closed) = start(1).await;
    let client = RemotingClient::new(ClientConfig::default());
    let error = client
        .invoke(&server.addr(), request(CLOSE, "c"), LONG)
        .await
        .unwrap_err();
    assert!(
        matches!(error, RemotingError::ConnectionClosed { .. }),
        "{error:?}"
    );
    let closed_id = tokio::time::timeout(LONG, closed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(closed_id, handler.opened()[0].id());
    assert!(handler.opened()[0].is_closed());
    // The client makes a new connection.
    let response = client
        .invoke(&server.addr(), request(ECHO, "new"), LONG)
        .await
        .unwrap();
    assert_eq!(response.remark.as_deref(), Some("new"));
    assert_eq!(handler.opened().len(), 2);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_finishes_requests_in_flight() {
    let (mut server, handler, _closed) = start(1).await;
    let client = RemotingClient::new(ClientConfig::default());
    let addr = server.addr();
    let in_flight = {
        let client = client.clone();
        let addr = addr.clone();
        tokio::spawn(async move { client.invoke(&addr, request(GATED, "last"), LONG).await })
    };
    // Wait until the server has the connection and the request is parked.
    while !handler.parked.lock().unwrap().contains(&"last".to_string()) {
        tokio::task::yield_now().await;
    }
    server.stop.take().unwrap().send(()).unwrap();
    // The listener goes away: new connections are refused.
    loop {
        match TcpStream::connect(server.addr).await {
            Err(_) => break,
            Ok(_) => tokio::task::yield_now().await,
        }
    }
    assert!(
        !server.task.is_finished(),
        "the server must wait for the request in flight"
    );
    handler.release("last");
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.remark.as_deref(), Some("last"));
    tokio::time::timeout(LONG, &mut server.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn connect_failures_are_typed_and_back_off() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let client = RemotingClient::new(ClientConfig {
        initial_backoff: Duration::from_secs(3600),
        max_backoff: Duration::from_secs(3600),
        ..ClientConfig::default()
    });
    let first = client
        .invoke(&addr, request(ECHO, "x"), LONG)
        .await
        .unwrap_err();
    assert!(
        matches!(&first, RemotingError::ConnectFailed { addr: a, .. } if *a == addr),
        "{first:?}"
    );
    // Within the backoff a call whose deadline ends before the next attempt
    // fails at once instead of hammering the address.
    let second = client
        .invoke(&addr, request(ECHO, "x"), LONG)
        .await
        .unwrap_err();
    match second {
        RemotingError::ConnectFailed { reason, .. } => {
            assert!(reason.contains("backing off"), "{reason}")
        }
        other => panic!("expected ConnectFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn the_client_refuses_oversized_responses() {
    let (server, _handler, _closed) = start(1).await;
    let client = RemotingClient::new(ClientConfig {
        max_frame_len: 1024,
        ..ClientConfig::default()
    });
    let error = client
        .invoke(
            &server.addr(),
            request(ECHO, "big").with_body(vec![7u8; 4096]),
            LONG,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, RemotingError::ConnectionClosed { .. }),
        "{error:?}"
    );
}
