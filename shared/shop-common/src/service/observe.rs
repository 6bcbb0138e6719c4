//! What the frame wraps around every request of a service: its trace
//! ([`crate::trace`]: the caller's `traceparent` continued, or a new one),
//! a span with the service, method, matched route, `trace_id` and
//! `order_id` that every log line of the request carries, and its count
//! and latency ([`crate::metrics`]).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tracing::field::{display, Empty};
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::trace::{self, Trace};

/// The route label of a request that matched no route (the 404 fallback).
pub const UNMATCHED: &str = "unmatched";

/// `router` with every request traced and measured as `metrics`' service.
/// Applied outermost, so what the limits refuse (413, 503, 408) is
/// counted too.
pub fn observed(router: Router, metrics: Metrics) -> Router {
    router.layer(middleware::from_fn_with_state(metrics, observe))
}

async fn observe(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, |path| path.as_str())
        .to_owned();
    let method = request.method().as_str().to_owned();
    let trace = {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
        };
        Trace {
            parent: trace::continue_or_start(header(trace::HEADER)),
            order_id: header(trace::BAGGAGE).and_then(trace::order_id_from_baggage),
        }
    };
    let span = tracing::info_span!(
        "http",
        service = %metrics.service(),
        method = %method,
        route = %route,
        trace_id = %trace.parent.trace_id_hex(),
        order_id = Empty,
    );
    if let Some(order_id) = trace.order_id {
        span.record("order_id", display(order_id));
    }
    let response = trace::scope(trace, next.run(request))
        .instrument(span.clone())
        .await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    metrics.http(&method, &route, status, took);
    span.in_scope(|| {
        tracing::debug!(
            status,
            elapsed_ms = took.as_secs_f64() * 1000.0,
            "request answered"
        )
    });
    response
}
