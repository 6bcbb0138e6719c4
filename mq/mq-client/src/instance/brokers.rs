//! The broker address table of a client instance: every broker group's
//! addresses by broker id (from every route seen), which addresses just
//! failed to answer, and which broker each queue's pulls should go to.
//! Pure bookkeeping: the instance does the I/O.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mq_protocol::body::MessageQueue;
use mq_protocol::route::{TopicRouteData, MASTER_ID};

use crate::sync::lock;

/// How long a broker address that failed with a network error is passed
/// over in favour of another broker of its group (a slave while the master
/// is down); after that it is tried again.
const UNREACHABLE_FOR: Duration = Duration::from_secs(5);

/// Broker addresses and what is known of their reachability.
#[derive(Default)]
pub(super) struct BrokerTable {
    /// Broker addresses by broker name and broker id, from every route seen.
    brokers: Mutex<HashMap<String, BTreeMap<i64, String>>>,
    /// Broker addresses a request just failed to reach, and when: requests
    /// prefer another broker of the group for [`UNREACHABLE_FOR`].
    unreachable: Mutex<HashMap<String, Instant>>,
    /// The broker id each queue's broker suggested pulling from next
    /// (RocketMQ's pullFromWhichNodeTable).
    pull_from: Mutex<HashMap<MessageQueue, i64>>,
}

impl BrokerTable {
    /// Adds the route's broker addresses; true if an address was not known
    /// before (that broker needs a heartbeat).
    pub(super) fn remember(&self, route: &TopicRouteData) -> bool {
        let mut new_broker = false;
        let mut brokers = lock(&self.brokers);
        for data in &route.broker_datas {
            let known = brokers.entry(data.broker_name.clone()).or_default();
            if *known != data.broker_addrs {
                new_broker |= data
                    .broker_addrs
                    .values()
                    .any(|a| !known.values().any(|k| k == a));
                known.clone_from(&data.broker_addrs);
            }
        }
        new_broker
    }

    /// The master's address of a broker group.
    pub(super) fn master_addr(&self, broker_name: &str) -> Option<String> {
        lock(&self.brokers)
            .get(broker_name)
            .and_then(|addrs| addrs.get(&MASTER_ID).cloned())
    }

    /// The address of broker `preferred` of the group if it is known and
    /// reachable, else the master, else the other brokers by id; addresses
    /// that just failed come last.
    pub(super) fn pick_addr(&self, broker_name: &str, preferred: i64) -> Option<String> {
        let brokers = lock(&self.brokers);
        let addrs = brokers.get(broker_name)?;
        let unreachable = lock(&self.unreachable);
        let reachable = |addr: &String| {
            unreachable
                .get(addr)
                .is_none_or(|at| at.elapsed() >= UNREACHABLE_FOR)
        };
        let ordered = addrs
            .get(&preferred)
            .into_iter()
            .chain(addrs.get(&MASTER_ID))
            .chain(addrs.values());
        ordered
            .clone()
            .find(|a| reachable(a))
            .or_else(|| ordered.clone().next())
            .cloned()
    }

    /// Every known broker address, sorted, once each.
    pub(super) fn all_addrs(&self) -> Vec<String> {
        let mut addrs: Vec<String> = lock(&self.brokers)
            .values()
            .flat_map(|a| a.values().cloned())
            .collect();
        addrs.sort();
        addrs.dedup();
        addrs
    }

    /// A request to `addr` failed with a network error.
    pub(super) fn mark_unreachable(&self, addr: &str) {
        lock(&self.unreachable).insert(addr.to_owned(), Instant::now());
    }

    /// A request to `addr` was answered.
    pub(super) fn mark_reachable(&self, addr: &str) {
        let mut unreachable = lock(&self.unreachable);
        if !unreachable.is_empty() {
            unreachable.remove(addr);
        }
    }

    /// Remembers the broker id a pull response suggested for `mq`.
    pub(super) fn set_pull_from(&self, mq: &MessageQueue, broker_id: i64) {
        let mut table = lock(&self.pull_from);
        if broker_id == MASTER_ID {
            table.remove(mq);
        } else {
            table.insert(mq.clone(), broker_id);
        }
    }

    /// The broker id to pull `mq` from (the master unless a broker said otherwise).
    pub(super) fn pull_from(&self, mq: &MessageQueue) -> i64 {
        lock(&self.pull_from).get(mq).copied().unwrap_or(MASTER_ID)
    }
}
