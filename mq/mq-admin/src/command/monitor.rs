//! statsAll, startMonitoring.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;
use mq_client::AdminClient;
use mq_protocol::admin_body::stats_name;
use mq_protocol::topic::{DLQ_GROUP_TOPIC_PREFIX, RETRY_GROUP_TOPIC_PREFIX};

use super::common::{admin, switch, topic_masters, value, Command};
use super::connection::consumer_connection_of;
use super::consumer::group_stats;
use crate::args::{FlagSpec, Flags};
use crate::time::{format_ms, now_ms};

const STATS_ALL_FLAGS: &[FlagSpec] = &[
    switch('a', "activeTopic", "print active topic only"),
    value('t', "topic", "print select topic only", false),
];

pub const STATS_ALL: Command = Command {
    name: "statsAll",
    summary: "Topic and Consumer tps stats",
    flags: STATS_ALL_FLAGS,
    run: |f| Box::pin(stats_all(f)),
};

/// One topic's rows: the put figures, then each consuming group's.
async fn topic_rows(admin: &AdminClient, topic: &str, active_only: bool) -> Result<()> {
    let masters = topic_masters(admin, topic).await?;
    let (mut in_tps, mut in_day) = (0.0, 0);
    let mut groups = BTreeSet::new();
    for (_, addr) in &masters {
        if let Some(d) = admin
            .view_stats(addr, stats_name::TOPIC_PUT_NUMS, topic)
            .await?
        {
            in_tps += d.stats_minute.tps;
            in_day += d.stats_day.sum;
        }
        groups.extend(admin.topic_consumed_by(addr, topic).await?.group_list);
    }
    if groups.is_empty() {
        if !active_only || in_day > 0 {
            println!(
                "{topic:<64}  {:<64} {:>12} {in_tps:>11.2} {:>11} {in_day:>14} {:>14}",
                "", "", "", "NO_CONSUMER"
            );
        }
        return Ok(());
    }
    for group in groups {
        let (mut out_tps, mut out_day, mut backlog) = (0.0, 0, 0);
        for (_, addr) in &masters {
            let key = format!("{topic}@{group}");
            if let Some(d) = admin
                .view_stats(addr, stats_name::GROUP_GET_NUMS, &key)
                .await?
            {
                out_tps += d.stats_minute.tps;
                out_day += d.stats_day.sum;
            }
            if let Ok(stats) = admin.consume_stats(addr, &group, Some(topic)).await {
                backlog += stats.total_diff();
            }
        }
        if !active_only || in_day > 0 || out_day > 0 {
            println!(
                "{topic:<64}  {group:<64} {backlog:>12} {in_tps:>11.2} {out_tps:>11.2} {in_day:>14} {out_day:>14}"
            );
        }
    }
    Ok(())
}

async fn stats_all(f: Flags) -> Result<()> {
    let active_only = f.get('a').is_some();
    let admin = admin(&f).await?;
    let result = async {
        let topics: Vec<String> = match f.get('t') {
            Some(t) => vec![t.to_owned()],
            None => admin.topic_list().await?.topic_list.into_iter().collect(),
        };
        println!(
            "{:<64}  {:<64} {:>12} {:>11} {:>11} {:>14} {:>14}",
            "#Topic",
            "#Consumer Group",
            "#Accumulation",
            "#InTPS",
            "#OutTPS",
            "#InMsg24Hour",
            "#OutMsg24Hour"
        );
        for topic in &topics {
            if topic.starts_with(RETRY_GROUP_TOPIC_PREFIX)
                || topic.starts_with(DLQ_GROUP_TOPIC_PREFIX)
            {
                continue;
            }
            match topic_rows(&admin, topic, active_only).await {
                Ok(()) => {}
                // A topic named with -t must exist; others may vanish meanwhile.
                Err(e) if f.get('t').is_some() => return Err(e),
                Err(_) => {}
            }
        }
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}

const MONITOR_FLAGS: &[FlagSpec] = &[
    value(
        'i',
        "interval",
        "seconds between rounds (default 20)",
        false,
    ),
    value(
        'r',
        "rounds",
        "stop after this many rounds (default: run until killed)",
        false,
    ),
    value(
        'l',
        "level",
        "report groups whose backlog reaches this (default 1)",
        false,
    ),
];

pub const START_MONITORING: Command = Command {
    name: "startMonitoring",
    summary: "Start Monitoring",
    flags: MONITOR_FLAGS,
    run: |f| Box::pin(start_monitoring(f)),
};

/// One monitoring round: for every consumer group (those with a retry
/// topic), its backlog per topic and how old its last consumed message is,
/// and whether its members are online.
async fn monitor_round(admin: &AdminClient, level: i64) -> Result<()> {
    let now = now_ms();
    println!("[MONITOR] round at {}", format_ms(now));
    let topics = admin.topic_list().await?.topic_list;
    let groups: BTreeSet<&str> = topics
        .iter()
        .filter_map(|t| t.strip_prefix(RETRY_GROUP_TOPIC_PREFIX))
        .collect();
    for group in groups {
        let online = consumer_connection_of(admin, group)
            .await
            .map_or(0, |(_, c)| c.connection_set.len());
        let Ok(stats) = group_stats(admin, group).await else {
            println!("[MONITOR] group={group} online={online} no consume progress yet");
            continue;
        };
        let mut by_topic: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
        for (mq, o) in &stats.offset_table {
            let entry = by_topic.entry(mq.topic.as_str()).or_insert((0, i64::MAX));
            let diff = (o.broker_offset - o.consumer_offset).max(0);
            entry.0 += diff;
            if diff > 0 && o.last_timestamp > 0 {
                entry.1 = entry.1.min(o.last_timestamp);
            }
        }
        let undone: i64 = by_topic.values().map(|(d, _)| d).sum();
        println!(
            "[MONITOR] group={group} online={online} topics={} undone={undone} tps={:.2}",
            by_topic.len(),
            stats.consume_tps
        );
        for (topic, (diff, oldest)) in by_topic {
            if diff < level {
                continue;
            }
            let delay = if oldest == i64::MAX {
                "unknown".to_owned()
            } else {
                format!("{}s", (now - oldest).max(0) / 1000)
            };
            println!(
                "[MONITOR] reportUndoneMsgs: group={group} topic={topic} undone={diff} behind={delay} online={online}"
            );
        }
        if online == 0 {
            println!("[MONITOR] reportConsumerNotOnline: group={group}");
        }
    }
    Ok(())
}

async fn start_monitoring(f: Flags) -> Result<()> {
    let interval: u64 = f.number('i', 20)?;
    let rounds: u64 = f.number('r', 0)?;
    let level: i64 = f.number('l', 1)?;
    let admin = admin(&f).await?;
    let result = async {
        let mut done = 0;
        loop {
            monitor_round(&admin, level).await?;
            done += 1;
            if rounds != 0 && done >= rounds {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(interval.max(1))).await;
        }
    }
    .await;
    admin.shutdown().await;
    result
}
