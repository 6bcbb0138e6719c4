//! `GET /metrics` in Prometheus' text format (OpenMetrics 1.0) over a
//! [`Registry`] that the process filled at start-up; values are read at
//! scrape time (counters and gauges are atomics, collectors read the
//! broker's own statistics).
//!
//! Who may call: anyone who can reach the port. It is off by default in the
//! standalone servers and bound to loopback in the all-in-one run; the
//! figures carry topic and group names, no message content or secrets.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The content type Prometheus asks for and `encode` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry as exposition text.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    encode(&mut text, registry)?;
    Ok(text)
}

/// The `/metrics` route alone, for a process that serves it beside others.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move { scrape(&registry) }
        }),
    )
}

fn scrape(registry: &Registry) -> Response {
    match render(registry) {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response(),
    }
}

/// Serves `/metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router(registry))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A `/metrics` endpoint running on its own task; it stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl MetricsServer {
    /// Binds `host:port` (port 0 picks one); call it before the rest of the
    /// process starts, so that a taken port stops nothing half-started.
    pub async fn bind(host: &str, port: u16) -> io::Result<TcpListener> {
        TcpListener::bind((host, port)).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen for metrics on {host}:{port}: {e}"),
            )
        })
    }

    /// Serves `registry` on `listener` until the returned value is dropped.
    pub fn spawn(listener: TcpListener, registry: Registry) -> io::Result<MetricsServer> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, Arc::new(registry), async move {
            let _ = stopped.await;
        }));
        Ok(MetricsServer { addr, _stop: stop })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>/metrics`.
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[tokio::test]
    async fn serves_the_registry_and_nothing_else() {
        let mut registry = Registry::default();
        let sent: Counter = Counter::default();
        registry.register("demo_sent", "Messages sent", sent.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Arc::new(registry), async move {
            let _ = stopped.await;
        }));
        sent.inc_by(3);
        let response = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE.as_str()],
            CONTENT_TYPE
        );
        let text = response.text().await.unwrap();
        assert!(text.contains("demo_sent_total 3"), "{text}");
        assert!(text.ends_with("# EOF\n"));
        let missing = reqwest::get(format!("http://{addr}/other")).await.unwrap();
        assert_eq!(missing.status(), 404);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
