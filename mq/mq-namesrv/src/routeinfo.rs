//! The broker registry and the topic routes built from it (RocketMQ's
//! `RouteInfoManager`). Pure state: every method that depends on time takes
//! `now` in milliseconds, so expiry is a step function tests drive.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mq_protocol::route::{
    perm, BrokerData, ClusterInfo, DataVersion, QueueData, TopicConfigSerializeWrapper, TopicList,
    TopicRouteData, MASTER_ID,
};
use mq_remoting::Channel;
use tracing::info;

/// What the name server knows of one live broker process.
#[derive(Debug, Clone)]
pub struct BrokerLiveInfo {
    pub last_update_millis: u64,
    pub data_version: DataVersion,
    /// The connection it registered over; closing it drops the broker.
    pub channel: Option<Channel>,
    pub ha_server_addr: String,
}

/// One REGISTER_BROKER request.
#[derive(Debug, Clone, Default)]
pub struct BrokerRegistration {
    pub cluster_name: String,
    pub broker_addr: String,
    pub broker_name: String,
    pub broker_id: i64,
    pub ha_server_addr: String,
    pub topic_config: TopicConfigSerializeWrapper,
    /// `None` leaves the broker's filter servers as they were.
    pub filter_server_list: Option<Vec<String>>,
    pub channel: Option<Channel>,
}

/// What a slave learns when it registers: its master.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrationResult {
    pub ha_server_addr: Option<String>,
    pub master_addr: Option<String>,
}

/// The registry. Broker groups are keyed by broker name, live brokers by
/// address.
#[derive(Debug, Default)]
pub struct RouteInfoManager {
    /// topic → broker name → queue data.
    topic_queue_table: BTreeMap<String, BTreeMap<String, QueueData>>,
    /// broker name → its group.
    broker_addr_table: BTreeMap<String, BrokerData>,
    /// cluster → broker names.
    cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
    /// broker address → liveness.
    broker_live_table: HashMap<String, BrokerLiveInfo>,
    /// broker address → filter servers.
    filter_server_table: HashMap<String, Vec<String>>,
}

impl RouteInfoManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or refreshes a broker. A master's topics update the routes when
    /// its data version changed or it registers for the first time.
    pub fn register_broker(
        &mut self,
        registration: BrokerRegistration,
        now: u64,
    ) -> RegistrationResult {
        let BrokerRegistration {
            cluster_name,
            broker_addr,
            broker_name,
            broker_id,
            ha_server_addr,
            topic_config,
            filter_server_list,
            channel,
        } = registration;
        self.cluster_addr_table
            .entry(cluster_name.clone())
            .or_default()
            .insert(broker_name.clone());

        let group = self
            .broker_addr_table
            .entry(broker_name.clone())
            .or_insert_with(|| BrokerData {
                cluster: cluster_name.clone(),
                broker_name: broker_name.clone(),
                broker_addrs: BTreeMap::new(),
            });
        let first_in_group = group.broker_addrs.is_empty();
        // One address has one id: a slave promoted to master (or the other
        // way round) loses its old entry.
        group
            .broker_addrs
            .retain(|id, addr| *id == broker_id || *addr != broker_addr);
        let old_addr = group.broker_addrs.insert(broker_id, broker_addr.clone());
        let register_first = first_in_group || old_addr.is_none();
        if broker_id == MASTER_ID && old_addr.as_deref().is_some_and(|old| old != broker_addr) {
            info!(broker_name, old = ?old_addr, new = broker_addr, "master address changed");
        }

        if broker_id == MASTER_ID
            && (register_first
                || self.is_broker_topic_config_changed(&broker_addr, &topic_config.data_version))
        {
            for config in topic_config.topic_config_table.values() {
                self.topic_queue_table
                    .entry(config.topic_name.clone())
                    .or_default()
                    .insert(
                        broker_name.clone(),
                        QueueData::from_topic_config(&broker_name, config),
                    );
            }
        }

        let previous = self.broker_live_table.insert(
            broker_addr.clone(),
            BrokerLiveInfo {
                last_update_millis: now,
                data_version: topic_config.data_version,
                channel,
                ha_server_addr,
            },
        );
        if previous.is_none() {
            info!(
                cluster_name,
                broker_name, broker_id, broker_addr, "new broker registered"
            );
        }

        if let Some(list) = filter_server_list {
            if list.is_empty() {
                self.filter_server_table.remove(&broker_addr);
            } else {
                self.filter_server_table.insert(broker_addr.clone(), list);
            }
        }

        let mut result = RegistrationResult::default();
        if broker_id != MASTER_ID {
            let master = self
                .broker_addr_table
                .get(&broker_name)
                .and_then(|group| group.master_addr().map(str::to_owned));
            if let Some(master) = master {
                if let Some(live) = self.broker_live_table.get(&master) {
                    result.ha_server_addr = Some(live.ha_server_addr.clone());
                    result.master_addr = Some(master);
                }
            }
        }
        result
    }

    /// True when the name server has no version for the broker or a
    /// different one.
    pub fn is_broker_topic_config_changed(&self, broker_addr: &str, version: &DataVersion) -> bool {
        self.query_broker_data_version(broker_addr) != Some(*version)
    }

    pub fn query_broker_data_version(&self, broker_addr: &str) -> Option<DataVersion> {
        self.broker_live_table
            .get(broker_addr)
            .map(|live| live.data_version)
    }

    /// Marks the broker as heard from at `now`.
    pub fn touch_broker(&mut self, broker_addr: &str, now: u64) {
        if let Some(live) = self.broker_live_table.get_mut(broker_addr) {
            live.last_update_millis = now;
        }
    }

    /// Removes a broker by its registration: its address from the group, and
    /// the group and its queue data when it was the last one.
    pub fn unregister_broker(
        &mut self,
        cluster_name: &str,
        broker_addr: &str,
        broker_name: &str,
        broker_id: i64,
    ) {
        let live = self.broker_live_table.remove(broker_addr);
        info!(broker_addr, found = live.is_some(), "unregister broker");
        self.filter_server_table.remove(broker_addr);
        let mut group_gone = false;
        if let Some(group) = self.broker_addr_table.get_mut(broker_name) {
            group.broker_addrs.remove(&broker_id);
            if group.broker_addrs.is_empty() {
                self.broker_addr_table.remove(broker_name);
                group_gone = true;
            }
        }
        if group_gone {
            if let Some(names) = self.cluster_addr_table.get_mut(cluster_name) {
                names.remove(broker_name);
                if names.is_empty() {
                    self.cluster_addr_table.remove(cluster_name);
                }
            }
            self.remove_topics_of(broker_name);
        }
    }

    /// Drops the brokers that registered over the channel `channel_id` (one,
    /// normally); returns their addresses.
    pub fn on_channel_closed(&mut self, channel_id: u64) -> Vec<String> {
        let addrs: Vec<String> = self
            .broker_live_table
            .iter()
            .filter(|(_, live)| live.channel.as_ref().is_some_and(|c| c.id() == channel_id))
            .map(|(addr, _)| addr.clone())
            .collect();
        for addr in &addrs {
            self.remove_broker_addr(addr);
        }
        addrs
    }

    /// Drops every broker not heard from within `expire_ms` before `now`,
    /// closing its connection; returns their addresses.
    pub fn scan_not_active_brokers(&mut self, now: u64, expire_ms: u64) -> Vec<String> {
        let expired: Vec<String> = self
            .broker_live_table
            .iter()
            .filter(|(_, live)| live.last_update_millis.saturating_add(expire_ms) < now)
            .map(|(addr, _)| addr.clone())
            .collect();
        for addr in &expired {
            if let Some(channel) = self
                .broker_live_table
                .get(addr)
                .and_then(|live| live.channel.clone())
            {
                channel.close();
            }
            info!(
                broker_addr = addr,
                expire_ms, "broker expired: not heard from in time"
            );
            self.remove_broker_addr(addr);
        }
        expired
    }

    /// Forgets the broker at `addr` everywhere (RocketMQ's
    /// `onChannelDestroy`).
    fn remove_broker_addr(&mut self, addr: &str) {
        self.broker_live_table.remove(addr);
        self.filter_server_table.remove(addr);
        let mut emptied = None;
        for (name, group) in &mut self.broker_addr_table {
            let before = group.broker_addrs.len();
            group.broker_addrs.retain(|_, a| a != addr);
            if group.broker_addrs.len() != before {
                if group.broker_addrs.is_empty() {
                    emptied = Some(name.clone());
                }
                break;
            }
        }
        if let Some(name) = emptied {
            self.broker_addr_table.remove(&name);
            self.cluster_addr_table.retain(|_, names| {
                names.remove(&name);
                !names.is_empty()
            });
            self.remove_topics_of(&name);
        }
    }

    fn remove_topics_of(&mut self, broker_name: &str) {
        self.topic_queue_table.retain(|_, by_broker| {
            by_broker.remove(broker_name);
            !by_broker.is_empty()
        });
    }

    /// The route of `topic`: the queue data of every broker group that has
    /// it and those groups' addresses; `None` when no live group has it.
    pub fn pickup_topic_route_data(&self, topic: &str) -> Option<TopicRouteData> {
        let by_broker = self.topic_queue_table.get(topic)?;
        let mut route = TopicRouteData {
            queue_datas: by_broker.values().cloned().collect(),
            ..TopicRouteData::default()
        };
        for name in by_broker.keys() {
            if let Some(group) = self.broker_addr_table.get(name) {
                for addr in group.broker_addrs.values() {
                    if let Some(servers) = self.filter_server_table.get(addr) {
                        route
                            .filter_server_table
                            .insert(addr.clone(), servers.clone());
                    }
                }
                route.broker_datas.push(group.clone());
            }
        }
        if route.broker_datas.is_empty() {
            return None;
        }
        Some(route)
    }

    pub fn cluster_info(&self) -> ClusterInfo {
        ClusterInfo {
            broker_addr_table: self.broker_addr_table.clone(),
            cluster_addr_table: self.cluster_addr_table.clone(),
        }
    }

    /// Clears the write bit of `broker_name`'s queue data in every topic;
    /// returns how many topics it touched.
    pub fn wipe_write_perm(&mut self, broker_name: &str) -> usize {
        self.update_perm(broker_name, |p| p & !perm::WRITE)
    }

    /// Gives `broker_name`'s queue data read and write permission again;
    /// returns how many topics it touched.
    pub fn add_write_perm(&mut self, broker_name: &str) -> usize {
        self.update_perm(broker_name, |_| perm::READ | perm::WRITE)
    }

    fn update_perm(&mut self, broker_name: &str, change: impl Fn(i32) -> i32) -> usize {
        let mut count = 0;
        for by_broker in self.topic_queue_table.values_mut() {
            if let Some(queue_data) = by_broker.get_mut(broker_name) {
                queue_data.perm = change(queue_data.perm);
                count += 1;
            }
        }
        count
    }

    pub fn all_topic_list(&self) -> TopicList {
        TopicList {
            topic_list: self.topic_queue_table.keys().cloned().collect(),
            broker_addr: None,
        }
    }

    /// Removes `topic` from the routes, or only from `cluster`'s broker
    /// groups when a cluster is given.
    pub fn delete_topic(&mut self, topic: &str, cluster: Option<&str>) {
        match cluster {
            None => {
                self.topic_queue_table.remove(topic);
            }
            Some(cluster) => {
                let Some(names) = self.cluster_addr_table.get(cluster) else {
                    return;
                };
                if let Some(by_broker) = self.topic_queue_table.get_mut(topic) {
                    by_broker.retain(|name, _| !names.contains(name));
                    if by_broker.is_empty() {
                        self.topic_queue_table.remove(topic);
                    }
                }
            }
        }
    }

    /// Adds queue data for `topic` for the broker groups it names that are
    /// registered (REGISTER_TOPIC_IN_NAMESRV).
    pub fn register_topic(&mut self, topic: &str, queue_datas: Vec<QueueData>) {
        for queue_data in queue_datas {
            if self.broker_addr_table.contains_key(&queue_data.broker_name) {
                self.topic_queue_table
                    .entry(topic.to_owned())
                    .or_default()
                    .insert(queue_data.broker_name.clone(), queue_data);
            }
        }
    }

    /// Topics served by any broker group of `cluster`.
    pub fn topics_by_cluster(&self, cluster: &str) -> TopicList {
        let names = self.cluster_addr_table.get(cluster);
        let topic_list = self
            .topic_queue_table
            .iter()
            .filter(|(_, by_broker)| {
                names.is_some_and(|names| by_broker.keys().any(|name| names.contains(name)))
            })
            .map(|(topic, _)| topic.clone())
            .collect();
        TopicList {
            topic_list,
            broker_addr: None,
        }
    }

    /// Cluster and broker names, which brokers also use as system topics,
    /// and one broker address to ask for more.
    pub fn system_topic_list(&self) -> TopicList {
        let mut topic_list = BTreeSet::new();
        for (cluster, names) in &self.cluster_addr_table {
            topic_list.insert(cluster.clone());
            topic_list.extend(names.iter().cloned());
        }
        let broker_addr = self
            .broker_addr_table
            .values()
            .find_map(|group| group.broker_addrs.values().next().cloned());
        TopicList {
            topic_list,
            broker_addr,
        }
    }

    /// Live broker addresses and when each was last heard from.
    pub fn live_brokers(&self) -> BTreeMap<String, u64> {
        self.broker_live_table
            .iter()
            .map(|(addr, live)| (addr.clone(), live.last_update_millis))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use mq_protocol::route::TopicConfig;

    use super::*;

    fn registration(
        name: &str,
        id: i64,
        addr: &str,
        topics: &[(&str, i32)],
        version: i64,
    ) -> BrokerRegistration {
        let mut topic_config = TopicConfigSerializeWrapper::default();
        for (topic, queues) in topics {
            let mut config = TopicConfig::new(*topic);
            config.read_queue_nums = *queues;
            config.write_queue_nums = *queues;
            topic_config
                .topic_config_table
                .insert((*topic).to_owned(), config);
        }
        topic_config.data_version = DataVersion {
            timestamp: 1,
            counter: version,
        };
        BrokerRegistration {
            cluster_name: "DefaultCluster".into(),
            broker_addr: addr.into(),
            broker_name: name.into(),
            broker_id: id,
            ha_server_addr: format!("{addr}-ha"),
            topic_config,
            filter_server_list: Some(Vec::new()),
            channel: None,
        }
    }

    #[test]
    fn master_topics_build_routes_and_slaves_learn_their_master() {
        let mut routes = RouteInfoManager::new();
        routes.register_broker(registration("a", 0, "a0", &[("T", 4)], 1), 0);
        let result = routes.register_broker(registration("a", 1, "a1", &[("SlaveOnly", 4)], 1), 0);
        assert_eq!(result.master_addr.as_deref(), Some("a0"));
        assert_eq!(result.ha_server_addr.as_deref(), Some("a0-ha"));
        // A slave's topics do not make routes.
        assert!(routes.pickup_topic_route_data("SlaveOnly").is_none());
        let route = routes.pickup_topic_route_data("T").unwrap();
        assert_eq!(route.broker_datas[0].broker_addrs.len(), 2);
    }

    #[test]
    fn same_version_does_not_rewrite_queue_data_new_version_does() {
        let mut routes = RouteInfoManager::new();
        routes.register_broker(registration("a", 0, "a0", &[("T", 4)], 1), 0);
        routes.wipe_write_perm("a");
        routes.register_broker(registration("a", 0, "a0", &[("T", 4)], 1), 10);
        assert_eq!(
            routes.pickup_topic_route_data("T").unwrap().queue_datas[0].perm,
            perm::READ
        );
        routes.register_broker(registration("a", 0, "a0", &[("T", 8)], 2), 20);
        let qd = &routes.pickup_topic_route_data("T").unwrap().queue_datas[0];
        assert_eq!(
            (qd.perm, qd.write_queue_nums),
            (perm::READ | perm::WRITE, 8)
        );
    }

    #[test]
    fn a_promoted_slave_keeps_one_entry_per_address() {
        let mut routes = RouteInfoManager::new();
        routes.register_broker(registration("a", 1, "x", &[], 1), 0);
        routes.register_broker(registration("a", 0, "x", &[("T", 1)], 1), 0);
        let info = routes.cluster_info();
        assert_eq!(
            info.broker_addr_table["a"].broker_addrs,
            BTreeMap::from([(0, "x".to_string())])
        );
    }

    #[test]
    fn expiry_is_strictly_after_the_timeout() {
        let mut routes = RouteInfoManager::new();
        routes.register_broker(registration("a", 0, "a0", &[("T", 4)], 1), 1_000);
        assert!(routes
            .scan_not_active_brokers(1_000 + 120_000, 120_000)
            .is_empty());
        assert_eq!(
            routes.scan_not_active_brokers(1_000 + 120_001, 120_000),
            vec!["a0".to_string()]
        );
        assert!(routes.pickup_topic_route_data("T").is_none());
        assert!(routes.cluster_info().cluster_addr_table.is_empty());
    }

    #[test]
    fn delete_topic_in_one_cluster_only() {
        let mut routes = RouteInfoManager::new();
        routes.register_broker(registration("a", 0, "a0", &[("T", 4)], 1), 0);
        let mut other = registration("b", 0, "b0", &[("T", 4)], 1);
        other.cluster_name = "Other".into();
        routes.register_broker(other, 0);
        routes.delete_topic("T", Some("Other"));
        let route = routes.pickup_topic_route_data("T").unwrap();
        assert_eq!(route.queue_datas.len(), 1);
        assert_eq!(route.queue_datas[0].broker_name, "a");
        routes.delete_topic("T", None);
        assert!(routes.pickup_topic_route_data("T").is_none());
    }
}
