//! The dashboard: messages in and out per broker and of the busiest
//! topics over the last hour or day as line charts (the console's own
//! samples, see [`crate::series`]), and the figures of each broker's
//! VIEW_BROKER_STATS_DATA (messages in and out over the last hour and
//! day, the topics that took the most) as bar charts, all drawn as SVG by
//! the server.

use axum::response::Response;
use maud::{html, Markup};
use mq_protocol::admin_body::{stats_name, BrokerStatsData};

use super::topics::{kind_of, Kind};
use super::{each, masters_of};
use crate::layout::{framed, page, Nav};
use crate::series::{line_chart, Range, Subject, Way};
use crate::web::{ConsoleError, Ctx};

/// At most this many topics are asked for their figures (one request per
/// topic and broker).
const MAX_TOPICS: usize = 1000;
/// Bars in the top-topics charts.
const TOP: usize = 10;
/// Topics with a time series chart.
const TOP_SERIES: usize = 5;

/// One bar: a label and its value.
pub struct Bar {
    pub label: String,
    pub value: i64,
}

/// A horizontal bar chart; labels are text nodes, so maud escapes them.
pub fn bar_chart(bars: &[Bar], colour: &str) -> Markup {
    const WIDTH: i64 = 560;
    const LABEL: i64 = 190;
    const ROW: i64 = 26;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let height = ROW * bars.len().max(1) as i64 + 6;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" width=(WIDTH) height=(height) viewBox=(format!("0 0 {WIDTH} {height}")) role="img" {
            @if bars.is_empty() {
                text x="0" y="18" fill="#7b8794" font-size="12" { "-" }
            }
            @for (i, bar) in bars.iter().enumerate() {
                @let y = i as i64 * ROW + 4;
                @let w = (bar.value * (WIDTH - LABEL - 70) / max).max(if bar.value > 0 { 2 } else { 0 });
                text x=(LABEL - 8) y=(y + 15) text-anchor="end" font-size="12" fill="#1f2933" { (truncate(&bar.label, 28)) }
                rect x=(LABEL) y=(y + 2) width=(w) height=(ROW - 8) rx="2" fill=(colour) {}
                text x=(LABEL + w + 6) y=(y + 15) font-size="12" fill="#52606d" { (bar.value) }
            }
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// A broker's messages in and out, each over the last (hour, day).
struct BrokerFigures {
    name: String,
    put: (i64, i64),
    get: (i64, i64),
}

fn hour_day(data: &Option<BrokerStatsData>) -> (i64, i64) {
    data.as_ref()
        .map_or((0, 0), |d| (d.stats_hour.sum, d.stats_day.sum))
}

/// `GET /dashboard`.
pub async fn dashboard(ctx: Ctx) -> Response {
    let result = dashboard_page(&ctx).await;
    framed(&ctx, Nav::Dashboard, result)
}

async fn dashboard_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let t = ctx.t;
    let admin = ctx.admin().await?;
    let info = admin.cluster_info().await?;
    let masters = masters_of(&info);
    // Per broker: messages in and out over the last hour and day.
    let brokers: Vec<(String, String, String)> = info
        .broker_addr_table
        .values()
        .filter_map(|b| {
            Some((
                b.broker_name.clone(),
                b.cluster.clone(),
                b.master_addr()?.to_owned(),
            ))
        })
        .collect();
    let per_broker = each(brokers, |(name, cluster, addr)| {
        let admin = admin.clone();
        async move {
            let put = admin
                .view_stats(&addr, stats_name::BROKER_PUT_NUMS, &cluster)
                .await
                .ok()
                .flatten();
            let get = admin
                .view_stats(&addr, stats_name::BROKER_GET_NUMS, &cluster)
                .await
                .ok()
                .flatten();
            BrokerFigures {
                name,
                put: hour_day(&put),
                get: hour_day(&get),
            }
        }
    })
    .await;
    // Per topic: messages in over the last hour and day, over every master.
    let topics: Vec<String> = admin
        .topic_list()
        .await?
        .topic_list
        .into_iter()
        .filter(|topic| kind_of(topic, &info) == Kind::Normal)
        .take(MAX_TOPICS)
        .collect();
    let per_topic = each(topics, |topic| {
        let (admin, masters) = (admin.clone(), masters.clone());
        async move {
            let (mut hour, mut day) = (0, 0);
            for m in &masters {
                let data = admin
                    .view_stats(&m.addr, stats_name::TOPIC_PUT_NUMS, &topic)
                    .await
                    .ok()
                    .flatten();
                let (h, d) = hour_day(&data);
                hour += h;
                day += d;
            }
            (topic, hour, day)
        }
    })
    .await;
    let bars = |pick: &dyn Fn(&BrokerFigures) -> i64| -> Vec<Bar> {
        per_broker
            .iter()
            .map(|b| Bar {
                label: b.name.clone(),
                value: pick(b),
            })
            .collect()
    };
    let top = |pick: &dyn Fn(&(String, i64, i64)) -> i64| -> Vec<Bar> {
        let mut rows: Vec<Bar> = per_topic
            .iter()
            .map(|r| Bar {
                label: r.0.clone(),
                value: pick(r),
            })
            .filter(|b| b.value > 0)
            .collect();
        rows.sort_by_key(|b| std::cmp::Reverse(b.value));
        rows.truncate(TOP);
        rows
    };
    let top_day = top(&|r| r.2);
    let body = html! {
        (time_series(ctx))
        div.cols {
            section.card {
                h2 { (t.in_hour) }
                (bar_chart(&bars(&|b| b.put.0), "#1976d2"))
            }
            section.card {
                h2 { (t.out_hour) }
                (bar_chart(&bars(&|b| b.get.0), "#2e7d32"))
            }
            section.card {
                h2 { (t.in_day) }
                (bar_chart(&bars(&|b| b.put.1), "#1976d2"))
            }
            section.card {
                h2 { (t.out_day) }
                (bar_chart(&bars(&|b| b.get.1), "#2e7d32"))
            }
            section.card {
                h2 { (t.top_topics_hour) }
                (bar_chart(&top(&|r| r.1), "#ef6c00"))
            }
            section.card {
                h2 { (t.top_topics_day) }
                (bar_chart(&top_day, "#ef6c00"))
            }
        }
    };
    Ok(page(ctx, Nav::Dashboard, t.nav_dashboard, true, body))
}

/// The line charts of the console's samples: per broker, and for the
/// busiest topics, messages in and out over the chosen range.
fn time_series(ctx: &Ctx) -> Markup {
    let t = ctx.t;
    let range = Range::parse(ctx.query.get("range"));
    let now = crate::time::now_millis();
    let interval = ctx.app.config.sample_interval.as_secs_f64();
    // (title, in, out) per chart, read under the store's lock.
    type Chart = (String, Vec<(i64, i64)>, Vec<(i64, i64)>);
    let (brokers, topics, samples): (Vec<Chart>, Vec<Chart>, u64) =
        ctx.app.series.with(ctx.viewer.namesrv, |cluster| {
            let Some(cluster) = cluster else {
                return (Vec::new(), Vec::new(), 0);
            };
            let points = |subject: &Subject, way: Way| {
                cluster
                    .series
                    .get(&(subject.clone(), way))
                    .map(|s| s.ring(range).points(now))
                    .unwrap_or_default()
            };
            let chart = |subject: &Subject, name: &str| -> Chart {
                (
                    name.to_owned(),
                    points(subject, Way::In),
                    points(subject, Way::Out),
                )
            };
            let brokers = cluster
                .series
                .keys()
                .filter(|(_, way)| *way == Way::In)
                .filter_map(|(subject, _)| match subject {
                    Subject::Broker(name) => Some(chart(subject, name)),
                    Subject::Topic(_) => None,
                })
                .collect();
            let mut busiest: Vec<(i64, &Subject, &str)> = cluster
                .series
                .iter()
                .filter_map(|((subject, way), series)| match subject {
                    Subject::Topic(name) if *way == Way::In => {
                        let moved = series.ring(range).total(now)
                            + cluster
                                .series
                                .get(&(subject.clone(), Way::Out))
                                .map_or(0, |s| s.ring(range).total(now));
                        (moved > 0).then_some((moved, subject, name.as_str()))
                    }
                    _ => None,
                })
                .collect();
            busiest.sort_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(b.2)));
            let topics = busiest
                .into_iter()
                .take(TOP_SERIES)
                .map(|(_, subject, name)| chart(subject, name))
                .collect();
            (brokers, topics, cluster.samples)
        });
    let draw = |charts: &[Chart]| {
        html! {
            @for (name, ins, outs) in charts {
                figure.series {
                    figcaption {
                        strong { (name) } " · "
                        span.legend-in { (t.legend_in) " " (ins.iter().map(|p| p.1).sum::<i64>()) }
                        " · "
                        span.legend-out { (t.legend_out) " " (outs.iter().map(|p| p.1).sum::<i64>()) }
                    }
                    (line_chart(name, &[(t.legend_in, ins), (t.legend_out, outs)]))
                }
            }
        }
    };
    html! {
        p.range {
            @for (r, label) in [(Range::Hour, t.last_hour), (Range::Day, t.last_day)] {
                a class=@if r == range { "active" } href=(format!("/dashboard?range={}", r.code())) { (label) }
                " "
            }
        }
        @if samples < 2 {
            p.note { (t.no_samples) " " (interval) }
        }
        div.cols {
            section.card {
                h2 { (t.series_brokers) }
                (draw(&brokers))
            }
            section.card {
                h2 { (t.series_topics) }
                @if topics.is_empty() { p.note { "-" } }
                (draw(&topics))
            }
        }
        p.note { (t.sampled_every) " " (interval) " · " (t.all_times_utc) }
    }
}
