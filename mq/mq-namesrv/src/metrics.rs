//! The name server's Prometheus metrics, read from the route table at
//! scrape time: live brokers (by cluster and role), broker groups and
//! topics.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `rocketmq_namesrv_brokers` | gauge | cluster, role (`master`, `slave`) |
//! | `rocketmq_namesrv_broker_groups` | gauge | cluster |
//! | `rocketmq_namesrv_topics` | gauge | |

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::server::NameServer;

struct NamesrvCollector(NameServer);

impl fmt::Debug for NamesrvCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NamesrvCollector")
    }
}

impl NameServer {
    /// Adds the name server's metrics to `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(NamesrvCollector(self.clone())));
    }
}

impl Collector for NamesrvCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let (clusters, topics) = {
            let routes = self.0.read_routes();
            (
                routes.cluster_info(),
                routes.all_topic_list().topic_list.len(),
            )
        };
        let gauge = ConstGauge::new(0i64);
        let mut brokers = encoder.encode_descriptor(
            "rocketmq_namesrv_brokers",
            "Brokers registered and alive, by cluster and role",
            None,
            gauge.metric_type(),
        )?;
        for (cluster, names) in &clusters.cluster_addr_table {
            let (mut masters, mut slaves) = (0i64, 0i64);
            for name in names {
                if let Some(group) = clusters.broker_addr_table.get(name) {
                    for id in group.broker_addrs.keys() {
                        if *id == 0 {
                            masters += 1;
                        } else {
                            slaves += 1;
                        }
                    }
                }
            }
            for (role, count) in [("master", masters), ("slave", slaves)] {
                let labels = [("cluster", cluster.as_str()), ("role", role)];
                ConstGauge::new(count).encode(brokers.encode_family(&labels)?)?;
            }
        }
        let mut groups = encoder.encode_descriptor(
            "rocketmq_namesrv_broker_groups",
            "Broker groups (brokerName) registered, by cluster",
            None,
            gauge.metric_type(),
        )?;
        for (cluster, names) in &clusters.cluster_addr_table {
            let labels = [("cluster", cluster.as_str())];
            ConstGauge::new(names.len() as i64).encode(groups.encode_family(&labels)?)?;
        }
        let metric = encoder.encode_descriptor(
            "rocketmq_namesrv_topics",
            "Topics with routes",
            None,
            gauge.metric_type(),
        )?;
        ConstGauge::new(topics as i64).encode(metric)?;
        Ok(())
    }
}
