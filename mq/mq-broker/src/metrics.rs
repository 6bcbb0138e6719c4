//! The broker's Prometheus metrics, under RocketMQ 5's names so that its
//! Grafana dashboards find them.
//!
//! Most figures are read at scrape time from what the broker keeps anyway
//! (the statistics behind VIEW_BROKER_STATS_DATA, the store's offsets, the
//! consumer offsets, replication): a [`BrokerCollector`] turns them into
//! text. Only the request latency is recorded as it happens, into one
//! histogram per (request code, response code).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `rocketmq_messages_in_total` | counter | topic |
//! | `rocketmq_throughput_in_total` (bytes) | counter | topic |
//! | `rocketmq_messages_out_total` | counter | topic, consumer_group |
//! | `rocketmq_throughput_out_total` (bytes) | counter | topic, consumer_group |
//! | `rocketmq_rpc_latency` (ms) | histogram | protocol_type, request_code, response_code |
//! | `rocketmq_storage_size` (bytes) | gauge | store (`commitlog`, `consumequeue`) |
//! | `rocketmq_storage_flush_latency` (ms) | histogram | |
//! | `rocketmq_storage_flush_behind_bytes` | gauge | |
//! | `rocketmq_storage_disk_ratio` | gauge | |
//! | `rocketmq_consumer_lag_messages` | gauge | topic, consumer_group, queue_id |
//! | `rocketmq_half_messages` | gauge | |
//! | `rocketmq_slave_fall_behind_bytes` | gauge | (masters with a slave) |
//! | `rocketmq_topic_number`, `rocketmq_consumer_group_number` | gauge | |
//!
//! Every series also carries `cluster` and `node_id` (the broker name and
//! id, `broker-a-0`), as RocketMQ 5's exporter labels them.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use mq_protocol::admin_body::stats_name;
use mq_protocol::topic;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, LabelSetEncoder,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::broker::Broker;
use crate::util::now_ms;

/// Bucket bounds (ms) of `rocketmq_rpc_latency`, RocketMQ 5's.
const RPC_LATENCY_BUCKETS_MS: [f64; 10] = [
    1.0, 3.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 3000.0, 10000.0,
];

/// Half messages counted at most per scrape; more shows as this many.
const HALF_MESSAGES_COUNTED: usize = 100_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    protocol_type: &'static str,
    request_code: i32,
    response_code: i32,
}

type RpcFamily = Family<RpcLabels, Histogram, fn() -> Histogram>;

fn rpc_histogram() -> Histogram {
    Histogram::new(RPC_LATENCY_BUCKETS_MS)
}

/// What the request path records: the latency of every answered request.
#[derive(Clone)]
pub(crate) struct RpcMetrics {
    latency: RpcFamily,
}

impl RpcMetrics {
    pub(crate) fn new() -> Self {
        RpcMetrics {
            latency: Family::new_with_constructor(rpc_histogram),
        }
    }

    /// A request with `request_code`, answered `response_code`, `started`
    /// when its frame was decoded.
    pub(crate) fn observe(&self, request_code: i32, response_code: i32, started: Instant) {
        let labels = RpcLabels {
            protocol_type: "remoting",
            request_code,
            response_code,
        };
        self.latency
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64() * 1000.0);
    }
}

/// Registers the broker's metrics (the collector and the latency
/// histograms) in `registry`.
pub(crate) fn register(registry: &mut Registry, broker: Arc<Broker>, rpc: &RpcMetrics) {
    let config = broker.config();
    let node = Node {
        cluster: config.broker_cluster_name.clone(),
        node_id: format!("{}-{}", config.broker_name, config.broker_id),
    };
    let labelled = registry.sub_registry_with_labels(
        [
            ("cluster".into(), node.cluster.clone().into()),
            ("node_id".into(), node.node_id.clone().into()),
        ]
        .into_iter(),
    );
    labelled.register(
        "rocketmq_rpc_latency",
        "Time from a request's arrival to its answer, in milliseconds",
        rpc.latency.clone(),
    );
    registry.register_collector(Box::new(BrokerCollector { broker, node }));
}

#[derive(Clone, Debug)]
struct Node {
    cluster: String,
    node_id: String,
}

/// Labels of one series: the node's plus the series' own.
struct Labels<'a> {
    node: &'a Node,
    own: &'a [(&'static str, &'a str)],
}

impl EncodeLabelSet for Labels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        [
            ("cluster", self.node.cluster.as_str()),
            ("node_id", self.node.node_id.as_str()),
        ]
        .as_slice()
        .encode(encoder)?;
        self.own.encode(encoder)
    }
}

/// Reads the broker's figures on each scrape.
struct BrokerCollector {
    broker: Arc<Broker>,
    node: Node,
}

impl fmt::Debug for BrokerCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerCollector")
            .field("node", &self.node)
            .finish()
    }
}

enum Kind {
    Counter,
    Gauge,
}

impl BrokerCollector {
    /// One metric family from `(own labels, value)` rows.
    fn family<'r>(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        kind: Kind,
        rows: impl IntoIterator<Item = (Vec<(&'static str, &'r str)>, f64)>,
    ) -> Result<(), fmt::Error> {
        let metric_type = match kind {
            Kind::Counter => ConstCounter::new(0u64).metric_type(),
            Kind::Gauge => ConstGauge::new(0i64).metric_type(),
        };
        let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
        for (own, value) in rows {
            let labels = Labels {
                node: &self.node,
                own: &own,
            };
            let series = metric.encode_family(&labels)?;
            match kind {
                Kind::Counter => ConstCounter::new(value.max(0.0) as u64).encode(series)?,
                Kind::Gauge => ConstGauge::new(value).encode(series)?,
            }
        }
        Ok(())
    }
}

impl Collector for BrokerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let b = &self.broker;
        let puts = b.stats.totals(stats_name::TOPIC_PUT_NUMS);
        let put_bytes = b.stats.totals(stats_name::TOPIC_PUT_SIZE);
        let gets = b.stats.totals(stats_name::GROUP_GET_NUMS);
        let get_bytes = b.stats.totals(stats_name::GROUP_GET_SIZE);
        let by_topic = |rows: &[(String, i64)]| -> Vec<(String, f64)> {
            rows.iter().map(|(k, v)| (k.clone(), *v as f64)).collect()
        };
        let put_rows = by_topic(&puts);
        let put_byte_rows = by_topic(&put_bytes);
        self.family(
            &mut encoder,
            "rocketmq_messages_in",
            "Messages stored by sends, per topic",
            Kind::Counter,
            put_rows
                .iter()
                .map(|(t, v)| (vec![("topic", t.as_str())], *v)),
        )?;
        self.family(
            &mut encoder,
            "rocketmq_throughput_in",
            "Bytes of message bodies stored by sends, per topic",
            Kind::Counter,
            put_byte_rows
                .iter()
                .map(|(t, v)| (vec![("topic", t.as_str())], *v)),
        )?;
        // GROUP_GET_* keys are `topic@group`.
        let split = |rows: &[(String, i64)]| -> Vec<(String, String, f64)> {
            rows.iter()
                .filter_map(|(key, v)| {
                    let (topic, group) = key.split_once('@')?;
                    Some((topic.to_owned(), group.to_owned(), *v as f64))
                })
                .collect()
        };
        let get_rows = split(&gets);
        let get_byte_rows = split(&get_bytes);
        self.family(
            &mut encoder,
            "rocketmq_messages_out",
            "Messages delivered to consumers, per topic and group",
            Kind::Counter,
            get_rows.iter().map(|(t, g, v)| {
                (
                    vec![("topic", t.as_str()), ("consumer_group", g.as_str())],
                    *v,
                )
            }),
        )?;
        self.family(
            &mut encoder,
            "rocketmq_throughput_out",
            "Bytes of messages delivered to consumers, per topic and group",
            Kind::Counter,
            get_byte_rows.iter().map(|(t, g, v)| {
                (
                    vec![("topic", t.as_str()), ("consumer_group", g.as_str())],
                    *v,
                )
            }),
        )?;

        let store = &b.store;
        let queues = store.topics_and_queues();
        // A consume queue entry is 20 bytes.
        let queue_bytes: u64 = queues
            .iter()
            .flat_map(|(t, ids)| ids.iter().map(move |q| (t, *q)))
            .map(|(t, q)| {
                store
                    .max_offset_in_queue(t, q)
                    .saturating_sub(store.min_offset_in_queue(t, q))
                    * 20
            })
            .sum();
        let commit_log_bytes = store
            .commit_log_max_offset()
            .saturating_sub(store.commit_log_min_offset());
        self.family(
            &mut encoder,
            "rocketmq_storage_size",
            "Bytes of data held, per store file kind",
            Kind::Gauge,
            [
                (vec![("store", "commitlog")], commit_log_bytes as f64),
                (vec![("store", "consumequeue")], queue_bytes as f64),
            ],
        )?;
        self.family(
            &mut encoder,
            "rocketmq_storage_flush_behind_bytes",
            "Bytes of commit log written but not yet flushed to disk",
            Kind::Gauge,
            [(
                vec![],
                store
                    .commit_log_max_offset()
                    .saturating_sub(store.flushed_offset()) as f64,
            )],
        )?;

        let stats = store.stats();
        let mut flush = encoder.encode_descriptor(
            "rocketmq_storage_flush_latency",
            "Time of commit log flushes that wrote something, in milliseconds",
            None,
            prometheus_client::metrics::MetricType::Histogram,
        )?;
        let buckets: Vec<(f64, u64)> = mq_store::FLUSH_LATENCY_BOUNDS_MS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(stats.flush_latency)
            .collect();
        let labels = Labels {
            node: &self.node,
            own: &[],
        };
        flush
            .encode_family(&labels)?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                stats.flush_micros_total as f64 / 1000.0,
                stats.flush_latency.iter().sum(),
                &buckets,
                None,
            )?;

        if let Some(ratio) = store.disk_ratio() {
            self.family(
                &mut encoder,
                "rocketmq_storage_disk_ratio",
                "Share (0-1) of the commit log's disk in use",
                Kind::Gauge,
                [(vec![], ratio)],
            )?;
        }

        let mut lag_rows = Vec::new();
        let pairs = b.offsets.pairs();
        for (topic, group) in &pairs {
            for (queue_id, offset) in b.offsets.queues(group, topic) {
                let max = store.max_offset_in_queue(topic, queue_id);
                let lag = max.saturating_sub(offset.max(0) as u64);
                lag_rows.push((topic.as_str(), group.as_str(), queue_id.to_string(), lag));
            }
        }
        self.family(
            &mut encoder,
            "rocketmq_consumer_lag_messages",
            "Messages in a queue that a consumer group has not consumed",
            Kind::Gauge,
            lag_rows.iter().map(|(t, g, q, lag)| {
                (
                    vec![
                        ("topic", *t),
                        ("consumer_group", *g),
                        ("queue_id", q.as_str()),
                    ],
                    *lag as f64,
                )
            }),
        )?;

        let half = b
            .transactions
            .pending(store, now_ms(), HALF_MESSAGES_COUNTED)
            .pending
            .len();
        self.family(
            &mut encoder,
            "rocketmq_half_messages",
            "Transactional half messages waiting for a commit or rollback",
            Kind::Gauge,
            [(vec![], half as f64)],
        )?;

        if !b.ha.is_slave() && b.ha.slave_count() > 0 {
            let behind = store
                .commit_log_max_offset()
                .saturating_sub(b.ha.acked_offset());
            self.family(
                &mut encoder,
                "rocketmq_slave_fall_behind_bytes",
                "Bytes of commit log the best slave has not acknowledged",
                Kind::Gauge,
                [(vec![], behind as f64)],
            )?;
        }

        let topics = b.topics.wrapper().topic_config_table;
        let user_topics = topics.keys().filter(|t| !topic::is_system_topic(t)).count();
        self.family(
            &mut encoder,
            "rocketmq_topic_number",
            "Topics on this broker, system topics excluded",
            Kind::Gauge,
            [(vec![], user_topics as f64)],
        )?;
        let groups = b.groups.all().0.len();
        self.family(
            &mut encoder,
            "rocketmq_consumer_group_number",
            "Subscription groups on this broker",
            Kind::Gauge,
            [(vec![], groups as f64)],
        )?;
        Ok(())
    }
}
