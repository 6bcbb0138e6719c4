//! The HTTP limits of the service frame, over real sockets: a service
//! started through [`Service::start`] (no database) with small limits, and
//! clients that misbehave byte by byte.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use shop_common::service::{
    Extension, Frame, HttpLimits, Parts, Service, ServiceConfig, StartError,
};
use shop_common::testing::Served;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// How long a test waits for what must happen; far above every limit set.
const PATIENCE: Duration = Duration::from_secs(10);

/// A test API: `POST /echo` answers its JSON body; `GET /slow` answers once
/// the test releases it.
struct TestApi {
    /// A permit for each `/slow` request being handled.
    entered: Arc<Semaphore>,
    /// Permits the test adds to let `/slow` requests answer.
    release: Arc<Semaphore>,
}

impl Extension for TestApi {
    type Config = ();
    type State = ();

    async fn start(&'static self, _frame: Frame<'_, ()>) -> Result<Parts<()>, StartError> {
        let router = Router::new()
            .route(
                "/echo",
                post(
                    |shop_common::extract::Json(body): shop_common::extract::Json<
                        serde_json::Value,
                    >| async move { axum::Json(body) },
                ),
            )
            .route(
                "/slow",
                get(move || async move {
                    self.entered.add_permits(1);
                    self.release.acquire().await.unwrap().forget();
                    "done"
                }),
            );
        Ok(Parts::new((), router))
    }
}

/// Starts the test API with `limits`.
async fn start(limits: HttpLimits) -> (Served, &'static TestApi) {
    let service: &'static Service<TestApi> = Box::leak(Box::new(Service {
        name: "limits",
        about: "HTTP limits test",
        env_prefix: "LIMITS_TEST",
        default_port: 0,
        migrations: None,
        extension: TestApi {
            entered: Arc::new(Semaphore::new(0)),
            release: Arc::new(Semaphore::new(0)),
        },
    }));
    let mut config = ServiceConfig::for_tests_with("", ());
    config.http = limits;
    let app = service.start(config).await.unwrap();
    (Served::start(app), &service.extension)
}

async fn connect(served: &Served) -> TcpStream {
    TcpStream::connect(("127.0.0.1", served.port))
        .await
        .unwrap()
}

/// Everything the server sends until it closes the connection; panics if
/// it is still open after [`PATIENCE`].
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                // A close with unread input may reach us as a reset.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("reading: {e}"),
            }
        }
    })
    .await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        read.is_ok(),
        "still open after {PATIENCE:?}; got {answer:?}"
    );
    answer
}

/// The status of `answer` and its JSON error code.
fn status_and_code(answer: &str) -> (u16, String) {
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let code = serde_json::from_str::<shop_common::http::ErrorEnvelope>(body)
        .map(|e| e.error.code)
        .unwrap_or_else(|_| format!("not a JSON error: {body:?}"));
    (status, code)
}

fn limits() -> HttpLimits {
    HttpLimits {
        header_read_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(500),
        max_body_bytes: 1024,
        max_in_flight: 2,
    }
}

#[tokio::test]
async fn half_sent_request_headers_are_cut_off_after_the_header_read_timeout() {
    let (served, _) = start(limits()).await;
    let mut streams = Vec::new();
    for _ in 0..5 {
        let mut stream = connect(&served).await;
        stream
            .write_all(b"GET /echo HTTP/1.1\r\nhost: localhost\r\nx-slow: ")
            .await
            .unwrap();
        streams.push(stream);
    }
    for stream in &mut streams {
        until_closed(stream).await;
    }
    // The server still answers well-behaved clients.
    let (status, _) = served.http("POST", "/echo", "{\"a\":1}").await;
    assert_eq!(status, 200);
    served.stop().await;
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_when_the_request_times_out() {
    let (served, _) = start(limits()).await;
    let mut stream = connect(&served).await;
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"a\":",
        )
        .await
        .unwrap();
    let answer = until_closed(&mut stream).await;
    assert_eq!(
        status_and_code(&answer),
        (408, "request_timeout".to_owned()),
        "{answer}"
    );
    served.stop().await;
}

#[tokio::test]
async fn a_body_declared_too_large_is_answered_413_before_it_is_sent() {
    let (served, _) = start(limits()).await;
    // The request timeout is far off: the answer must not wait for it.
    let mut patient = limits();
    patient.request_timeout = PATIENCE * 10;
    let (patient_server, _) = start(patient).await;
    for server in [&served, &patient_server] {
        let mut stream = connect(server).await;
        stream
            .write_all(
                b"POST /echo HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                  content-length: 2000000000\r\n\r\n",
            )
            .await
            .unwrap();
        let answer = until_closed(&mut stream).await;
        assert_eq!(
            status_and_code(&answer),
            (413, "body_too_large".to_owned()),
            "{answer}"
        );
    }

    // A chunked body has no length to check first: it is cut off as it
    // grows past the limit.
    let mut stream = connect(&patient_server).await;
    let chunk = format!("[{}1]", "1,".repeat(1000));
    let request = format!(
        "POST /echo HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = until_closed(&mut stream).await;
    assert_eq!(
        status_and_code(&answer),
        (413, "body_too_large".to_owned()),
        "{answer}"
    );
    // Within the limit it is answered as before.
    assert_eq!(
        served.http("POST", "/echo", "[1,2]").await,
        (200, "[1,2]".to_owned())
    );
    served.stop().await;
    patient_server.stop().await;
}

#[tokio::test]
async fn a_request_over_the_in_flight_bound_is_answered_503_with_retry_after() {
    let mut patient = limits();
    patient.request_timeout = PATIENCE * 10;
    let (served, api) = start(patient).await;
    let slow = |mut stream: TcpStream| async move {
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        until_closed(&mut stream).await
    };
    let first = tokio::spawn(slow(connect(&served).await));
    let second = tokio::spawn(slow(connect(&served).await));
    tokio::time::timeout(PATIENCE, api.entered.acquire_many(2))
        .await
        .expect("both slow requests are being handled")
        .unwrap()
        .forget();

    let mut stream = connect(&served).await;
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut stream).await;
    assert_eq!(
        status_and_code(&answer),
        (503, "overloaded".to_owned()),
        "{answer}"
    );
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nretry-after: 1\r\n"),
        "{answer}"
    );

    // The requests in flight are answered, and then there is room again.
    api.release.add_permits(2);
    for request in [first, second] {
        let answer = request.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    assert_eq!(served.http("POST", "/echo", "{}").await.0, 200);
    served.stop().await;
}
