//! The services' Prometheus metrics.
//!
//! One [`ShopMetrics`] holds the families; every service of a process
//! records into the same ones with its own `service` label, so the
//! all-in-one run registers them once ([`ShopMetrics::register`]) beside
//! the broker's and serves them on one port. A standalone service with
//! `metrics_addr` set serves its own registry there.
//!
//! - `shop_http_requests_total{service, method, route, status}` and
//!   `shop_http_request_duration_seconds{service, method, route, status}`:
//!   every answered request, by the route that matched (its template,
//!   `/orders/{id}`, never the raw path; `unmatched` for the 404
//!   fallback), so a scan of random paths cannot grow the label set.
//! - `shop_saga_orders_total{outcome, reason}`: orders confirmed, and
//!   cancelled by their reason's code (`insufficient_stock`,
//!   `service_unavailable`, `saga_timeout`, ...).
//! - `shop_events_consumed_total{service, group, topic, result}`: events
//!   `applied`, `duplicate` (consumed before), `rejected` (not signed by
//!   their owner) or `failed` (to be retried).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The labels of an HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HttpLabels {
    pub service: &'static str,
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// The labels of a saga's end.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SagaLabels {
    /// `confirmed` or `cancelled`.
    pub outcome: &'static str,
    /// Why it was cancelled (an error code); empty when confirmed.
    pub reason: String,
}

/// The labels of a consumed event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct EventLabels {
    pub service: &'static str,
    pub group: &'static str,
    pub topic: &'static str,
    pub result: &'static str,
}

/// What became of a consumed event, as [`EventLabels::result`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventResult {
    Applied,
    Duplicate,
    Rejected,
    Failed,
}

impl EventResult {
    pub fn label(self) -> &'static str {
        match self {
            EventResult::Applied => "applied",
            EventResult::Duplicate => "duplicate",
            EventResult::Rejected => "rejected",
            EventResult::Failed => "failed",
        }
    }
}

type Latency = Family<HttpLabels, Histogram, fn() -> Histogram>;

/// Request latency buckets, in seconds: 1 ms to about 16 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new((0..15).map(|i| 0.001 * f64::from(1u32 << i)))
}

/// The families every service of a process records into (cheap to clone:
/// each family is shared).
#[derive(Clone)]
pub struct ShopMetrics {
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_latency: Latency,
    pub saga_orders: Family<SagaLabels, Counter>,
    pub events: Family<EventLabels, Counter>,
}

impl std::fmt::Debug for ShopMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShopMetrics")
    }
}

impl Default for ShopMetrics {
    fn default() -> Self {
        ShopMetrics::new()
    }
}

impl ShopMetrics {
    pub fn new() -> ShopMetrics {
        ShopMetrics {
            http_requests: Family::default(),
            http_latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            saga_orders: Family::default(),
            events: Family::default(),
        }
    }

    /// Registers the families (under the `shop_` prefix) in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let shop = registry.sub_registry_with_prefix("shop");
        shop.register(
            "http_requests",
            "HTTP requests answered, by service, method, matched route and status",
            self.http_requests.clone(),
        );
        shop.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request, by service, method, matched route and status",
            prometheus_client::registry::Unit::Seconds,
            self.http_latency.clone(),
        );
        shop.register(
            "saga_orders",
            "Orders whose saga ended: confirmed, or cancelled by reason",
            self.saga_orders.clone(),
        );
        shop.register(
            "events_consumed",
            "Events consumed, by service, consumer group, topic and result",
            self.events.clone(),
        );
    }

    /// A registry with these families alone (a standalone service's).
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::default();
        self.register(&mut registry);
        registry
    }

    /// The recorder of service `service`.
    pub fn for_service(&self, service: &'static str) -> Metrics {
        Metrics {
            families: self.clone(),
            service,
        }
    }
}

/// What one service records into a [`ShopMetrics`].
#[derive(Debug, Clone)]
pub struct Metrics {
    families: ShopMetrics,
    service: &'static str,
}

impl Metrics {
    /// A recorder of its own (tests, a service built without a frame).
    pub fn detached(service: &'static str) -> Metrics {
        ShopMetrics::new().for_service(service)
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// One answered request; `route` is the matched route template.
    pub fn http(&self, method: &str, route: &str, status: u16, took: Duration) {
        let labels = HttpLabels {
            service: self.service,
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        };
        self.families.http_requests.get_or_create(&labels).inc();
        self.families
            .http_latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// An order confirmed.
    pub fn order_confirmed(&self) {
        self.families
            .saga_orders
            .get_or_create(&SagaLabels {
                outcome: "confirmed",
                reason: String::new(),
            })
            .inc();
    }

    /// An order cancelled, `reason` its error code.
    pub fn order_cancelled(&self, reason: &str) {
        self.families
            .saga_orders
            .get_or_create(&SagaLabels {
                outcome: "cancelled",
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// One consumed event of `topic` in `group`.
    pub fn event(&self, group: &'static str, topic: &'static str, result: EventResult) {
        self.families
            .events
            .get_or_create(&EventLabels {
                service: self.service,
                group,
                topic,
                result: result.label(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exposed_with_its_labels() {
        let shop = ShopMetrics::new();
        let registry = shop.registry();
        let goods = shop.for_service("goods");
        goods.http("GET", "/goods/{id}", 200, Duration::from_millis(3));
        goods.event("g", "ORDER_CANCEL", EventResult::Duplicate);
        shop.for_service("order")
            .order_cancelled("insufficient_stock");
        shop.for_service("order").order_confirmed();
        let text = telemetry::metrics::render(&registry).unwrap();
        for line in [
            r#"shop_http_requests_total{service="goods",method="GET",route="/goods/{id}",status="200"} 1"#,
            r#"shop_http_request_duration_seconds_count{service="goods",method="GET",route="/goods/{id}",status="200"} 1"#,
            r#"shop_http_request_duration_seconds_bucket{le="0.004",service="goods",method="GET",route="/goods/{id}",status="200"} 1"#,
            r#"shop_saga_orders_total{outcome="cancelled",reason="insufficient_stock"} 1"#,
            r#"shop_saga_orders_total{outcome="confirmed",reason=""} 1"#,
            r#"shop_events_consumed_total{service="goods",group="g",topic="ORDER_CANCEL",result="duplicate"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}
