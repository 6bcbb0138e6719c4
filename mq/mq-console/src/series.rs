//! The dashboard's time series: messages in and out per broker and per
//! topic over the last hour and the last day.
//!
//! A background task ([`run_sampler`]) samples every configured name
//! server's cluster every [`ConsoleConfig::sample_interval`]: per master
//! broker its running put and get totals (the runtime info's
//! `msgPutTotalTodayNow` / `msgGetTotalTodayNow`), per topic the messages
//! stored (its queues' max offsets, summed over masters) and the messages
//! its groups consumed (their consumer offsets, from one
//! GET_BROKER_CONSUME_STATS per broker). What a sample adds to the series
//! is the growth of each total since the previous sample, so the figures
//! do not depend on the sampling interval; a total that went down (a
//! restarted broker, a deleted topic, an offset reset back) starts a new
//! baseline instead of counting.
//!
//! Each series keeps two bounded rings of time buckets: a minute per
//! bucket for the last hour, a quarter of an hour per bucket for the last
//! day. Memory is fixed per series, whatever the interval.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use maud::{html, Markup};
use mq_client::AdminClient;

use crate::pages::topics::{kind_of, Kind};
use crate::pages::{each, masters_of};

/// Buckets of the last hour: one a minute.
pub const HOUR: Window = Window {
    width_ms: 60_000,
    len: 60,
};
/// Buckets of the last day: one a quarter of an hour.
pub const DAY: Window = Window {
    width_ms: 15 * 60_000,
    len: 96,
};
/// Most topics one sample asks about (one request per topic and master).
const MAX_TOPICS: usize = 1000;

/// A ring's shape: bucket width and how many buckets it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub width_ms: i64,
    pub len: usize,
}

/// Counts per time bucket, the newest last, at most `window.len` buckets
/// that all lie within the window ending at the newest.
#[derive(Debug, Clone)]
pub struct Ring {
    window: Window,
    /// (bucket start ms, count), oldest first, starts increasing.
    buckets: VecDeque<(i64, i64)>,
}

impl Ring {
    pub fn new(window: Window) -> Ring {
        Ring {
            window,
            buckets: VecDeque::with_capacity(window.len),
        }
    }

    fn start_of(&self, at_ms: i64) -> i64 {
        at_ms - at_ms.rem_euclid(self.window.width_ms)
    }

    /// Counts `count` at `at_ms`. A time older than the window is dropped.
    pub fn add(&mut self, at_ms: i64, count: i64) {
        let start = self.start_of(at_ms);
        match self.buckets.back_mut() {
            Some((last, n)) if *last == start => *n += count,
            Some((last, _)) if *last > start => {
                // Out of order (a slow sample): into its bucket if kept.
                if let Some((_, n)) = self.buckets.iter_mut().find(|(s, _)| *s == start) {
                    *n += count;
                } else if let Some(i) = self.buckets.iter().position(|(s, _)| *s > start) {
                    if start > self.oldest_kept(self.buckets.back().map_or(start, |b| b.0)) {
                        self.buckets.insert(i, (start, count));
                    }
                }
            }
            _ => self.buckets.push_back((start, count)),
        }
        let newest = self.buckets.back().map_or(start, |b| b.0);
        let oldest = self.oldest_kept(newest);
        while self.buckets.front().is_some_and(|(s, _)| *s <= oldest) {
            self.buckets.pop_front();
        }
    }

    /// The start of the newest bucket that no longer fits before `newest`.
    fn oldest_kept(&self, newest: i64) -> i64 {
        newest - self.window.width_ms * self.window.len as i64
    }

    /// The window ending at `now_ms`'s bucket, oldest first, one entry per
    /// bucket (zero where nothing was counted).
    pub fn points(&self, now_ms: i64) -> Vec<(i64, i64)> {
        let last = self.start_of(now_ms);
        let first = last - self.window.width_ms * (self.window.len as i64 - 1);
        let mut out: Vec<(i64, i64)> = (0..self.window.len as i64)
            .map(|i| (first + i * self.window.width_ms, 0))
            .collect();
        for (start, n) in &self.buckets {
            if *start >= first && *start <= last {
                let i = ((start - first) / self.window.width_ms) as usize;
                out[i].1 += n;
            }
        }
        out
    }

    /// Everything counted within the window ending at `now_ms`.
    pub fn total(&self, now_ms: i64) -> i64 {
        self.points(now_ms).iter().map(|p| p.1).sum()
    }
}

/// What a series counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Broker(String),
    Topic(String),
}

/// Messages in or out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Way {
    In,
    Out,
}

/// One series: its hour and day rings.
#[derive(Debug, Clone)]
pub struct Series {
    pub hour: Ring,
    pub day: Ring,
}

impl Series {
    fn new() -> Series {
        Series {
            hour: Ring::new(HOUR),
            day: Ring::new(DAY),
        }
    }

    pub fn ring(&self, range: Range) -> &Ring {
        match range {
            Range::Hour => &self.hour,
            Range::Day => &self.day,
        }
    }
}

/// Which window a chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Hour,
    Day,
}

impl Range {
    pub fn parse(text: &str) -> Range {
        if text == "day" {
            Range::Day
        } else {
            Range::Hour
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Range::Hour => "hour",
            Range::Day => "day",
        }
    }
}

/// The series of one name server's cluster, and the totals the next
/// sample is compared with.
#[derive(Debug, Default)]
pub struct Cluster {
    pub series: BTreeMap<(Subject, Way), Series>,
    last: HashMap<(Subject, Way), i64>,
    /// Samples taken so far.
    pub samples: u64,
}

impl Cluster {
    /// Takes a sample of running totals taken at `at_ms`: each total's
    /// growth since the last sample is counted. The first sample only sets
    /// the baselines; a total first seen later (a topic created since)
    /// grew from zero.
    pub fn record(&mut self, at_ms: i64, totals: Vec<((Subject, Way), i64)>) {
        let first = self.samples == 0;
        for (key, total) in totals {
            let before =
                self.last
                    .insert(key.clone(), total)
                    .or(if first { None } else { Some(0) });
            let series = self.series.entry(key).or_insert_with(Series::new);
            if let Some(grown) = before.map(|b| total - b).filter(|g| *g > 0) {
                series.hour.add(at_ms, grown);
                series.day.add(at_ms, grown);
            }
        }
        self.samples += 1;
    }
}

/// Every name server's series, by its index in the configuration.
#[derive(Debug, Default)]
pub struct Store {
    clusters: Mutex<HashMap<usize, Cluster>>,
}

impl Store {
    pub fn record(&self, namesrv: usize, at_ms: i64, totals: Vec<((Subject, Way), i64)>) {
        lock(&self.clusters)
            .entry(namesrv)
            .or_default()
            .record(at_ms, totals);
    }

    /// Runs `read` on the series of name server `namesrv`.
    pub fn with<R>(&self, namesrv: usize, read: impl FnOnce(Option<&Cluster>) -> R) -> R {
        read(lock(&self.clusters).get(&namesrv))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The running totals of one cluster now: per master its puts and gets,
/// per normal topic the messages stored and consumed.
pub async fn totals(admin: &AdminClient) -> mq_client::Result<Vec<((Subject, Way), i64)>> {
    let info = admin.cluster_info().await?;
    let masters = masters_of(&info);
    let mut out = Vec::new();
    let per_broker = each(masters.clone(), |m| {
        let admin = admin.clone();
        async move {
            let runtime = admin.broker_runtime_info(&m.addr).await.ok();
            let consumed = admin.broker_consume_stats(&m.addr, false).await.ok();
            (m.name, runtime, consumed)
        }
    })
    .await;
    let mut consumed_by_topic: BTreeMap<String, i64> = BTreeMap::new();
    for (name, runtime, consumed) in per_broker {
        if let Some(runtime) = runtime {
            for (key, way) in [
                ("msgPutTotalTodayNow", Way::In),
                ("msgGetTotalTodayNow", Way::Out),
            ] {
                if let Some(n) = runtime.get(key).and_then(|v| v.trim().parse().ok()) {
                    out.push(((Subject::Broker(name.clone()), way), n));
                }
            }
        }
        for groups in consumed.iter().flat_map(|c| &c.consume_stats_list) {
            for stats in groups.values().flatten() {
                for (mq, offsets) in &stats.offset_table {
                    *consumed_by_topic.entry(mq.topic.clone()).or_default() +=
                        offsets.consumer_offset.max(0);
                }
            }
        }
    }
    let topics: Vec<String> = admin
        .topic_list()
        .await?
        .topic_list
        .into_iter()
        .filter(|t| kind_of(t, &info) == Kind::Normal)
        .take(MAX_TOPICS)
        .collect();
    let stored = each(topics, |topic| {
        let (admin, masters) = (admin.clone(), masters.clone());
        async move {
            let mut n = 0;
            let mut known = false;
            for m in &masters {
                if let Ok(stats) = admin.topic_stats(&m.addr, &topic).await {
                    known = true;
                    n += stats
                        .offset_table
                        .values()
                        .map(|o| o.max_offset.max(0))
                        .sum::<i64>();
                }
            }
            known.then_some((topic, n))
        }
    })
    .await;
    for (topic, n) in stored.into_iter().flatten() {
        let consumed = consumed_by_topic.get(&topic).copied().unwrap_or(0);
        out.push(((Subject::Topic(topic.clone()), Way::In), n));
        out.push(((Subject::Topic(topic), Way::Out), consumed));
    }
    Ok(out)
}

/// One sample of every configured name server (the sampler's step).
pub async fn sample_all(app: &crate::web::App) {
    for index in 0..app.cluster.addrs().len() {
        let admin = match app.cluster.admin(index).await {
            Ok(admin) => admin,
            Err(error) => {
                tracing::debug!(%error, "no admin client to sample with");
                continue;
            }
        };
        let at = crate::time::now_millis();
        match totals(&admin).await {
            Ok(totals) => app.series.record(index, at, totals),
            Err(error) => {
                tracing::debug!(%error, namesrv = app.cluster.addr(index), "sampling failed")
            }
        }
    }
}

/// Samples every `interval` until `stop` turns true.
pub async fn run_sampler(
    app: crate::web::App,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopped = async { stop.wait_for(|s| *s).await.is_ok() };
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped => break,
        }
        tokio::select! {
            () = sample_all(&app) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
}

/// A line chart of one or two series over the same buckets: the first
/// blue (in), the second green (out). Axis labels are text nodes, so maud
/// escapes them.
pub fn line_chart(title: &str, lines: &[(&str, &[(i64, i64)])]) -> Markup {
    const WIDTH: i64 = 560;
    const HEIGHT: i64 = 150;
    const LEFT: i64 = 48;
    const TOP: i64 = 8;
    const BOTTOM: i64 = 22;
    const COLOURS: [&str; 2] = ["#1976d2", "#2e7d32"];
    let plot_w = WIDTH - LEFT - 8;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.1))
        .max()
        .unwrap_or(0)
        .max(1);
    let n = lines.first().map_or(0, |(_, p)| p.len()).max(2) as i64;
    let x = |i: i64| LEFT + i * plot_w / (n - 1);
    let y = |v: i64| TOP + plot_h - v * plot_h / max;
    let path = |points: &[(i64, i64)]| -> String {
        points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{},{}", x(i as i64), y(p.1)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let first = lines
        .first()
        .and_then(|(_, p)| p.first())
        .map_or(0, |p| p.0);
    let last = lines.first().and_then(|(_, p)| p.last()).map_or(0, |p| p.0);
    html! {
        svg.chart.series xmlns="http://www.w3.org/2000/svg" width=(WIDTH) height=(HEIGHT) viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title) {
            line x1=(LEFT) y1=(TOP + plot_h) x2=(LEFT + plot_w) y2=(TOP + plot_h) stroke="#cbd2d9" {}
            line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(TOP + plot_h) stroke="#cbd2d9" {}
            text x=(LEFT - 6) y=(TOP + 10) text-anchor="end" font-size="11" fill="#52606d" { (max) }
            text x=(LEFT - 6) y=(TOP + plot_h) text-anchor="end" font-size="11" fill="#52606d" { "0" }
            text x=(LEFT) y=(HEIGHT - 6) font-size="11" fill="#52606d" { (clock(first, last - first)) }
            text x=(LEFT + plot_w) y=(HEIGHT - 6) text-anchor="end" font-size="11" fill="#52606d" { (clock(last, last - first)) }
            @for (i, (label, points)) in lines.iter().enumerate() {
                polyline points=(path(points)) fill="none" stroke=(COLOURS[i % 2]) stroke-width="2" {
                    title { (label) ": " (points.iter().map(|p| p.1).sum::<i64>()) }
                }
            }
        }
    }
}

/// `hh:mm` (UTC) of a bucket start, with the date (`mm-dd hh:mm`) when
/// the chart spans more than an hour.
fn clock(ms: i64, span_ms: i64) -> String {
    let rest = ms.rem_euclid(86_400_000);
    let time = format!("{:02}:{:02}", rest / 3_600_000, rest / 60_000 % 60);
    if span_ms > 3_600_000 {
        // format_ms is `yyyy-mm-dd hh:mm:ss.SSS`: take `mm-dd`.
        format!("{} {time}", &crate::time::format_ms(ms.max(1))[5..10])
    } else {
        time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Window = Window {
        width_ms: 10,
        len: 3,
    };

    #[test]
    fn a_ring_buckets_and_forgets() {
        let mut ring = Ring::new(SMALL);
        ring.add(0, 1);
        ring.add(5, 2);
        ring.add(12, 4);
        assert_eq!(ring.points(12), vec![(-10, 0), (0, 3), (10, 4)]);
        assert_eq!(ring.total(12), 7);
        // Later, the first bucket leaves the window; the ring stays bounded.
        ring.add(31, 1);
        assert_eq!(ring.points(31), vec![(10, 4), (20, 0), (30, 1)]);
        for t in (40..10_000).step_by(10) {
            ring.add(t, 1);
        }
        assert!(ring.buckets.len() <= SMALL.len);
        assert_eq!(ring.total(9_990), 3);
        // A late sample still in the window lands in its bucket; an older one is dropped.
        ring.add(9_975, 5);
        ring.add(100, 5);
        assert_eq!(ring.points(9_990), vec![(9_970, 6), (9_980, 1), (9_990, 1)]);
        // Nothing counted since: zeros.
        assert_eq!(ring.total(100_000), 0);
    }

    #[test]
    fn samples_count_growth_not_totals() {
        let mut c = Cluster::default();
        let key = (Subject::Topic("T".into()), Way::In);
        c.record(1_000, vec![(key.clone(), 100)]);
        assert_eq!(c.series[&key].hour.total(1_000), 0, "a baseline only");
        c.record(2_000, vec![(key.clone(), 103)]);
        c.record(61_000, vec![(key.clone(), 110)]);
        assert_eq!(c.series[&key].hour.total(61_000), 10);
        assert_eq!(c.series[&key].day.total(61_000), 10);
        // A total that fell (broker restart) is a new baseline.
        c.record(62_000, vec![(key.clone(), 2)]);
        c.record(63_000, vec![(key.clone(), 5)]);
        assert_eq!(c.series[&key].hour.total(63_000), 13);
        let points = c.series[&key].hour.points(63_000);
        assert_eq!(points.len(), 60);
        assert_eq!(points[58].1, 3);
        assert_eq!(points[59].1, 10);
        assert_eq!(c.samples, 5);
        // A topic created after the first sample grew from zero.
        let new = (Subject::Topic("New".into()), Way::In);
        c.record(64_000, vec![(new.clone(), 4)]);
        assert_eq!(c.series[&new].hour.total(64_000), 4);
    }

    #[test]
    fn the_chart_scales_and_escapes() {
        let ins = [(0, 0), (60_000, 4), (120_000, 2)];
        let outs = [(0, 0), (60_000, 1), (120_000, 0)];
        let svg = line_chart("<b>", &[("in", &ins), ("out", &outs)]).into_string();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("aria-label=\"&lt;b&gt;\""));
        assert_eq!(svg.matches("<polyline").count(), 2);
        // The highest point (4) touches the top of the plot, zero the bottom.
        assert!(svg.contains("points=\"48,128 300,8 552,68\""), "{svg}");
        assert!(svg.contains(">4</text>"));
        assert!(svg.contains(">00:00</text>") && svg.contains(">00:02</text>"));
        let day = [(0, 0), (86_400_000 - 900_000, 1)];
        let day = line_chart("day", &[("in", &day)]).into_string();
        assert!(
            day.contains(">01-01 00:00</text>") && day.contains(">01-01 23:45</text>"),
            "{day}"
        );
        assert!(svg.contains("<title>in: 6</title>"));
    }
}
