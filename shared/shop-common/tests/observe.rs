//! What the frame wraps around every request, over real sockets: a
//! request's trace (the caller's `traceparent` continued, else a new one)
//! on every log line it causes, and its count and latency on the
//! service's own `/metrics` (`metrics_addr`), by matched route.

use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use shop_common::service::{Extension, Frame, Parts, Service, ServiceConfig, StartError};
use shop_common::testing::Served;

/// Every line the tests' services log, as the fmt layer writes them.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        captured
    })
}

/// `GET /things/{id}` logs a line and answers the trace id it runs in.
struct Things;

impl Extension for Things {
    type Config = ();
    type State = ();

    async fn start(&'static self, _frame: Frame<'_, ()>) -> Result<Parts<()>, StartError> {
        let router = Router::new().route(
            "/things/{id}",
            get(|Path(id): Path<u32>| async move {
                tracing::info!(thing = id, "looking a thing up");
                shop_common::trace::current()
                    .map(|t| t.parent.trace_id_hex())
                    .unwrap_or_default()
            }),
        );
        Ok(Parts::new((), router))
    }
}

static THINGS: Service<Things> = Service {
    name: "things",
    about: "observe test",
    env_prefix: "OBSERVE_TEST",
    default_port: 0,
    migrations: None,
    extension: Things,
};

async fn start() -> (Served, String) {
    let mut config = ServiceConfig::for_tests_with("", ());
    config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let app = THINGS.start(config).await.unwrap();
    let metrics = format!("http://{}/metrics", app.metrics_addr().unwrap());
    (Served::start(app), metrics)
}

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The value of the sample `series` (name and labels as exposed), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_request_continues_a_valid_trace_and_every_line_carries_it() {
    let logs = logs();
    let (served, _) = start().await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/things/7", served.port);
    let given = "0af7651916cd43dd8448eb211c80319c";
    let answered = client
        .get(&url)
        .header("traceparent", format!("00-{given}-b7ad6b7169203331-01"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(answered, given);
    let lines: Vec<String> = logs
        .text()
        .lines()
        .filter(|l| l.contains(given))
        .map(str::to_owned)
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("looking a thing up")
            && l.contains("service=things")
            && l.contains("route=/things/{id}")),
        "{lines:#?}"
    );
    assert!(lines
        .iter()
        .any(|l| l.contains("request answered") && l.contains("status=200")));

    // A forged or malformed header starts a new trace instead.
    for bad in [
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "junk-\u{e9}",
    ] {
        let answered = client
            .get(&url)
            .header("traceparent", bad)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(answered.len(), 32, "{answered}");
        assert_ne!(answered.to_lowercase(), given);
        assert_ne!(answered, "0".repeat(32));
    }
    let fresh = client.get(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(fresh.len(), 32);
    assert_ne!(fresh, given);
    served.stop().await;
}

#[tokio::test]
async fn requests_are_counted_by_matched_route_and_status_on_the_metrics_port() {
    logs();
    let (served, metrics) = start().await;
    let ok = r#"shop_http_requests_total{service="things",method="GET",route="/things/{id}",status="200"}"#;
    let bad = r#"shop_http_requests_total{service="things",method="GET",route="/things/{id}",status="400"}"#;
    let unmatched =
        r#"shop_http_requests_total{service="things",method="GET",route="unmatched",status="404"}"#;
    let latency = r#"shop_http_request_duration_seconds_count{service="things",method="GET",route="/things/{id}",status="200"}"#;
    let before = scrape(&metrics).await;
    for path in ["/things/1", "/things/2", "/things/x", "/no/such/path/123"] {
        served.http("GET", path, "").await;
    }
    let after = scrape(&metrics).await;
    assert!(
        after.contains("# TYPE shop_http_requests counter"),
        "{after}"
    );
    assert!(after.contains("# TYPE shop_http_request_duration_seconds histogram"));
    assert_eq!(sample(&after, ok) - sample(&before, ok), 2.0, "{after}");
    assert_eq!(sample(&after, bad) - sample(&before, bad), 1.0, "{after}");
    assert_eq!(
        sample(&after, unmatched) - sample(&before, unmatched),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, latency) - sample(&before, latency),
        2.0,
        "{after}"
    );
    // The raw path never becomes a label.
    assert!(!after.contains("/no/such/path"), "{after}");
    assert!(!after.contains("/things/1"), "{after}");
    served.stop().await;
}
