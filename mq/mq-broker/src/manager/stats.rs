//! Put and get counters by topic and by group, over the last minute, hour
//! and day (RocketMQ's `BrokerStatsManager`): what VIEW_BROKER_STATS_DATA
//! answers, what `mqadmin statsAll` and `clusterList` print, and the
//! consume TPS in GET_CONSUME_STATS.
//!
//! Each statistic is a running sum and a count of the events that added to
//! it. Snapshots of both are kept per window (every 10 s for the minute,
//! every 10 min for the hour, every hour for the day), taken lazily when
//! the statistic is touched; a window's figures are the difference between
//! now and its oldest snapshot. No background task is needed.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use mq_protocol::admin_body::{stats_name, BrokerStatsData, BrokerStatsItem};

use crate::util::{lock, now_ms};

#[derive(Debug, Clone, Copy)]
struct Snapshot {
    at_ms: i64,
    sum: i64,
    times: i64,
}

/// The snapshots of one window.
#[derive(Debug)]
struct Window {
    interval_ms: i64,
    keep: usize,
    snapshots: VecDeque<Snapshot>,
}

impl Window {
    fn new(interval_ms: i64, keep: usize, first: Snapshot) -> Self {
        Window {
            interval_ms,
            keep,
            snapshots: VecDeque::from([first]),
        }
    }

    fn sample(&mut self, now: Snapshot) {
        let due = self
            .snapshots
            .back()
            .is_none_or(|last| now.at_ms - last.at_ms >= self.interval_ms);
        if due {
            self.snapshots.push_back(now);
            while self.snapshots.len() > self.keep {
                self.snapshots.pop_front();
            }
        }
    }

    fn item(&self, now: Snapshot) -> BrokerStatsItem {
        let first = self.snapshots.front().copied().unwrap_or(now);
        let sum = now.sum - first.sum;
        let times = now.times - first.times;
        // A statistic younger than one snapshot interval is averaged over
        // the interval, so a first message is not a burst of thousands/s.
        let elapsed = (now.at_ms - first.at_ms).max(self.interval_ms);
        BrokerStatsItem {
            sum,
            tps: if elapsed > 0 {
                sum as f64 * 1000.0 / elapsed as f64
            } else {
                0.0
            },
            avgpt: if times > 0 {
                sum as f64 / times as f64
            } else {
                0.0
            },
        }
    }
}

/// One statistic: a sum, the number of additions and its windows.
#[derive(Debug)]
struct StatsItem {
    sum: i64,
    times: i64,
    minute: Window,
    hour: Window,
    day: Window,
}

const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

impl StatsItem {
    fn new(now_ms: i64) -> Self {
        let zero = Snapshot {
            at_ms: now_ms,
            sum: 0,
            times: 0,
        };
        StatsItem {
            sum: 0,
            times: 0,
            // 7 snapshots 10 s apart span the last minute; likewise below.
            minute: Window::new(10 * SECOND, 7, zero),
            hour: Window::new(10 * MINUTE, 7, zero),
            day: Window::new(HOUR, 25, zero),
        }
    }

    fn now(&self, now_ms: i64) -> Snapshot {
        Snapshot {
            at_ms: now_ms,
            sum: self.sum,
            times: self.times,
        }
    }

    fn add(&mut self, value: i64, now_ms: i64) {
        self.sample(now_ms);
        self.sum += value;
        self.times += 1;
    }

    fn sample(&mut self, now_ms: i64) {
        let now = self.now(now_ms);
        self.minute.sample(now);
        self.hour.sample(now);
        self.day.sample(now);
    }

    fn data(&mut self, now_ms: i64) -> BrokerStatsData {
        self.sample(now_ms);
        let now = self.now(now_ms);
        BrokerStatsData {
            stats_minute: self.minute.item(now),
            stats_hour: self.hour.item(now),
            stats_day: self.day.item(now),
        }
    }
}

/// Most statistics kept; a broker with more topics × groups than this
/// stops counting new ones rather than grow without bound.
const MAX_ITEMS: usize = 100_000;

/// The broker's statistics, by name then key. Sends and pulls record
/// under one lock and allocate only for a statistic seen the first time.
#[derive(Debug)]
pub struct BrokerStats {
    inner: Mutex<Inner>,
    /// The cluster name, key of the broker-wide statistics (fixed while
    /// the broker runs).
    cluster: String,
}

#[derive(Debug, Default)]
struct Inner {
    items: HashMap<&'static str, HashMap<String, StatsItem>>,
    count: usize,
    puts: DailyTotal,
    gets: DailyTotal,
}

impl Inner {
    fn add(&mut self, name: &'static str, key: &str, value: i64, now_ms: i64) {
        let by_key = self.items.entry(name).or_default();
        if let Some(item) = by_key.get_mut(key) {
            item.add(value, now_ms);
        } else if self.count < MAX_ITEMS {
            let mut item = StatsItem::new(now_ms);
            item.add(value, now_ms);
            by_key.insert(key.to_owned(), item);
            self.count += 1;
        }
    }
}

const DAY: i64 = 24 * HOUR;

/// A running total and its value at the start of today and of yesterday
/// (UTC days), for RocketMQ's `msgPutTotalTodayMorning` and friends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DailyTotal {
    pub now: i64,
    pub today_morning: i64,
    pub yesterday_morning: i64,
    day: i64,
}

impl DailyTotal {
    fn roll(&mut self, now_ms: i64) {
        let day = now_ms.div_euclid(DAY);
        if day != self.day {
            self.yesterday_morning = if day == self.day + 1 {
                self.today_morning
            } else {
                self.now
            };
            self.today_morning = self.now;
            self.day = day;
        }
    }

    fn add(&mut self, value: i64, now_ms: i64) {
        self.roll(now_ms);
        self.now += value;
    }
}

impl BrokerStats {
    pub fn new(cluster: &str) -> Self {
        let today = DailyTotal {
            day: now_ms().div_euclid(DAY),
            ..DailyTotal::default()
        };
        BrokerStats {
            inner: Mutex::new(Inner {
                puts: today,
                gets: today,
                ..Inner::default()
            }),
            cluster: cluster.to_owned(),
        }
    }

    /// Counts `msgs` messages of `bytes` bytes stored to `topic` by a send.
    pub fn record_put(&self, topic: &str, msgs: usize, bytes: usize) {
        self.record_put_at(topic, msgs, bytes, now_ms());
    }

    fn record_put_at(&self, topic: &str, msgs: usize, bytes: usize, now: i64) {
        let mut inner = lock(&self.inner);
        inner.add(stats_name::TOPIC_PUT_NUMS, topic, msgs as i64, now);
        inner.add(stats_name::TOPIC_PUT_SIZE, topic, bytes as i64, now);
        inner.add(stats_name::BROKER_PUT_NUMS, &self.cluster, msgs as i64, now);
        inner.puts.add(msgs as i64, now);
    }

    /// Counts `msgs` messages of `bytes` bytes `group` pulled from `topic`.
    pub fn record_get(&self, group: &str, topic: &str, msgs: usize, bytes: usize) {
        self.record_get_at(group, topic, msgs, bytes, now_ms());
    }

    fn record_get_at(&self, group: &str, topic: &str, msgs: usize, bytes: usize, now: i64) {
        let key = format!("{topic}@{group}");
        let mut inner = lock(&self.inner);
        inner.add(stats_name::GROUP_GET_NUMS, &key, msgs as i64, now);
        inner.add(stats_name::GROUP_GET_SIZE, &key, bytes as i64, now);
        inner.add(stats_name::BROKER_GET_NUMS, &self.cluster, msgs as i64, now);
        inner.gets.add(msgs as i64, now);
    }

    /// The figures of one statistic; `None` if it was never counted.
    pub fn view(&self, name: &str, key: &str) -> Option<BrokerStatsData> {
        self.view_at(name, key, now_ms())
    }

    fn view_at(&self, name: &str, key: &str, now: i64) -> Option<BrokerStatsData> {
        lock(&self.inner)
            .items
            .get_mut(name)?
            .get_mut(key)
            .map(|item| item.data(now))
    }

    /// Messages `group` got from `topic` per second over the last minute.
    pub fn consume_tps(&self, group: &str, topic: &str) -> f64 {
        self.view(stats_name::GROUP_GET_NUMS, &format!("{topic}@{group}"))
            .map_or(0.0, |d| d.stats_minute.tps)
    }

    /// The broker-wide put or get statistic (`BROKER_PUT_NUMS` / `BROKER_GET_NUMS`).
    pub fn broker_wide(&self, name: &str) -> BrokerStatsData {
        self.view(name, &self.cluster).unwrap_or_default()
    }

    /// Messages put and got since start, and at the start of today and of
    /// yesterday.
    pub fn daily_totals(&self) -> (DailyTotal, DailyTotal) {
        let now = now_ms();
        let mut inner = lock(&self.inner);
        inner.puts.roll(now);
        inner.gets.roll(now);
        (inner.puts, inner.gets)
    }

    /// Every key of statistic `name` with its running sum since start
    /// (what the metrics endpoint exports as counters).
    pub fn totals(&self, name: &str) -> Vec<(String, i64)> {
        lock(&self.inner)
            .items
            .get(name)
            .map(|by_key| {
                by_key
                    .iter()
                    .map(|(k, item)| (k.clone(), item.sum))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets a topic's statistics (the topic was deleted).
    pub fn remove_topic(&self, topic: &str) {
        let prefix = format!("{topic}@");
        let mut inner = lock(&self.inner);
        let mut removed = 0;
        for by_key in inner.items.values_mut() {
            let before = by_key.len();
            by_key.retain(|k, _| k != topic && !k.starts_with(&prefix));
            removed += before - by_key.len();
        }
        inner.count -= removed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_what_happened_in_them() {
        let stats = BrokerStats::new("C");
        let t0 = 1_000_000;
        stats.record_put_at("T", 2, 200, t0);
        stats.record_put_at("T", 3, 300, t0 + 5 * SECOND);
        let d = stats
            .view_at("TOPIC_PUT_NUMS", "T", t0 + 10 * SECOND)
            .unwrap();
        assert_eq!(d.stats_minute.sum, 5);
        assert!((d.stats_minute.tps - 0.5).abs() < 1e-9, "{d:?}");
        assert!((d.stats_minute.avgpt - 2.5).abs() < 1e-9);
        assert_eq!(d.stats_day.sum, 5);

        // Two minutes later the minute window has moved past both puts,
        // the hour and the day still hold them.
        stats.record_put_at("T", 1, 100, t0 + 20 * SECOND);
        for s in 3..=14 {
            stats.view_at("TOPIC_PUT_NUMS", "T", t0 + s * 10 * SECOND);
        }
        let d = stats
            .view_at("TOPIC_PUT_NUMS", "T", t0 + 150 * SECOND)
            .unwrap();
        assert_eq!(d.stats_minute.sum, 0, "{d:?}");
        assert_eq!(d.stats_hour.sum, 6);
        assert_eq!(d.stats_day.sum, 6);
        assert_eq!(
            stats
                .view_at("BROKER_PUT_NUMS", "C", t0 + 150 * SECOND)
                .unwrap()
                .stats_day
                .sum,
            6
        );
    }

    #[test]
    fn daily_totals_roll_at_midnight() {
        let mut t = DailyTotal::default();
        t.add(5, 10);
        t.add(3, DAY + 1);
        assert_eq!((t.now, t.today_morning, t.yesterday_morning), (8, 5, 0));
        t.add(1, 2 * DAY + 1);
        assert_eq!((t.now, t.today_morning, t.yesterday_morning), (9, 8, 5));
        t.add(1, 5 * DAY);
        assert_eq!((t.now, t.today_morning, t.yesterday_morning), (10, 9, 9));
    }

    #[test]
    fn gets_are_keyed_by_topic_and_group_and_removed_with_the_topic() {
        let stats = BrokerStats::new("C");
        stats.record_get_at("g", "T", 4, 40, 0);
        assert_eq!(
            stats
                .view_at("GROUP_GET_NUMS", "T@g", 1000)
                .unwrap()
                .stats_day
                .sum,
            4
        );
        assert!(stats.view("GROUP_GET_NUMS", "T@h").is_none());
        stats.remove_topic("T");
        assert!(stats.view("GROUP_GET_NUMS", "T@g").is_none());
        assert_eq!(stats.broker_wide("BROKER_GET_NUMS").stats_day.sum, 4);
    }
}
