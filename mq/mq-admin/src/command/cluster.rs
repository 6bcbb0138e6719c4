//! clusterList, clusterListRT.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use mq_client::{AdminClient, Message};

use super::common::{admin, body_of_size, producer, switch, value, Command};
use crate::args::{FlagSpec, Flags};
use crate::time::now_ms;

const CLUSTER_LIST_FLAGS: &[FlagSpec] = &[
    switch('m', "moreStats", "Print more stats"),
    value(
        'i',
        "interval",
        "repeat every N seconds (default: print once)",
        false,
    ),
    value('c', "clusterName", "which cluster", false),
];

pub const CLUSTER_LIST: Command = Command {
    name: "clusterList",
    summary: "List cluster infos",
    flags: CLUSTER_LIST_FLAGS,
    run: |f| Box::pin(cluster_list(f)),
};

/// A figure of the runtime info, or `0` when the broker does not report it.
fn figure<'a>(info: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    info.get(key).map_or("0", String::as_str)
}

/// The first of RocketMQ's space-separated TPS figures.
fn first_tps(info: &BTreeMap<String, String>, key: &str) -> f64 {
    figure(info, key)
        .split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0)
}

fn total(info: &BTreeMap<String, String>, key: &str) -> i64 {
    figure(info, key).parse().unwrap_or(0)
}

async fn print_clusters(admin: &AdminClient, cluster: Option<&str>, more: bool) -> Result<()> {
    let info = admin.cluster_info().await?;
    if let Some(c) = cluster {
        if !info.cluster_addr_table.contains_key(c) {
            bail!("no cluster named {c}");
        }
    }
    if more {
        println!(
            "{:<16}  {:<22}  {:<4}  {:>14} {:>14} {:>14} {:>14}",
            "#Cluster Name",
            "#Broker Name",
            "#BID",
            "#InTotalYest",
            "#OutTotalYest",
            "#InTotalToday",
            "#OutTotalToday"
        );
    } else {
        println!(
            "{:<16}  {:<22}  {:<4}  {:<22}  {:<28}  {:>16}  {:>16}  {:>8}  {:>8}",
            "#Cluster Name",
            "#Broker Name",
            "#BID",
            "#Addr",
            "#Version",
            "#InTPS(LOAD)",
            "#OutTPS(LOAD)",
            "#Hour",
            "#Active"
        );
    }
    for (name, brokers) in &info.cluster_addr_table {
        if cluster.is_some_and(|c| c != name) {
            continue;
        }
        for broker_name in brokers {
            let Some(broker) = info.broker_addr_table.get(broker_name) else {
                continue;
            };
            for (id, addr) in &broker.broker_addrs {
                // A broker that does not answer still gets its row.
                let rt = admin.broker_runtime_info(addr).await.unwrap_or_default();
                if more {
                    let (in_yest, in_today, in_now) = (
                        total(&rt, "msgPutTotalYesterdayMorning"),
                        total(&rt, "msgPutTotalTodayMorning"),
                        total(&rt, "msgPutTotalTodayNow"),
                    );
                    let (out_yest, out_today, out_now) = (
                        total(&rt, "msgGetTotalYesterdayMorning"),
                        total(&rt, "msgGetTotalTodayMorning"),
                        total(&rt, "msgGetTotalTodayNow"),
                    );
                    println!(
                        "{name:<16}  {broker_name:<22}  {id:<4}  {:>14} {:>14} {:>14} {:>14}",
                        in_today - in_yest,
                        out_today - out_yest,
                        in_now - in_today,
                        out_now - out_today
                    );
                } else {
                    let version = rt
                        .get("brokerVersionDesc")
                        .cloned()
                        .unwrap_or_else(|| "unreachable".into());
                    let active = rt.get("brokerActive").map_or("false", String::as_str);
                    // Hours of messages stored, as RocketMQ's #Hour.
                    let oldest = total(&rt, "earliestMessageTimeStamp");
                    let hours = if oldest > 0 {
                        format!("{:.2}", (now_ms() - oldest) as f64 / 3_600_000.0)
                    } else {
                        "-".to_owned()
                    };
                    println!(
                        "{name:<16}  {broker_name:<22}  {id:<4}  {addr:<22}  {version:<28}  {:>16.2}  {:>16.2}  {hours:>8}  {active:>8}",
                        first_tps(&rt, "putTps"),
                        first_tps(&rt, "getTransferedTps"),
                    );
                }
            }
        }
    }
    Ok(())
}

async fn cluster_list(f: Flags) -> Result<()> {
    let interval: u64 = f.number('i', 0)?;
    let admin = admin(&f).await?;
    let result = async {
        loop {
            print_clusters(&admin, f.get('c'), f.get('m').is_some()).await?;
            if interval == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(interval)).await;
        }
    }
    .await;
    admin.shutdown().await;
    result
}

const CLUSTER_RT_FLAGS: &[FlagSpec] = &[
    value(
        'a',
        "amount",
        "message amount per broker (default 100)",
        false,
    ),
    value('s', "size", "message size in bytes (default 128)", false),
    value(
        'c',
        "cluster",
        "cluster name (default: every cluster)",
        false,
    ),
    value(
        'p',
        "printLog",
        "print as tlog lines: time|room|cluster|broker|rt (default false)",
        false,
    ),
    value(
        'm',
        "machineRoom",
        "machine room name, for -p (default noname)",
        false,
    ),
    value(
        'i',
        "interval",
        "repeat every N seconds (default: one round)",
        false,
    ),
];

pub const CLUSTER_LIST_RT: Command = Command {
    name: "clusterRT",
    summary: "List All clusters Message Send RT",
    flags: CLUSTER_RT_FLAGS,
    run: |f| Box::pin(cluster_rt(f)),
};

/// Sends `-a` messages to each broker's own topic (its broker name) and
/// prints the average send time.
async fn cluster_rt(f: Flags) -> Result<()> {
    let amount: u32 = f.number('a', 100)?;
    let size: usize = f.number('s', 128)?;
    let interval: u64 = f.number('i', 0)?;
    let tlog = super::common::boolean(&f, 'p', false)?;
    let room = f.get('m').unwrap_or("noname").to_owned();
    if amount == 0 || size == 0 {
        bail!("-a and -s must be positive");
    }
    let admin = admin(&f).await?;
    let producer = match producer(&f, &format!("CLUSTER_RT_{}", now_ms())).await {
        Ok(p) => p,
        Err(e) => {
            admin.shutdown().await;
            return Err(e);
        }
    };
    let result = async {
        let info = admin.cluster_info().await?;
        let clusters: Vec<String> = match f.get('c') {
            Some(c) if info.cluster_addr_table.contains_key(c) => vec![c.to_owned()],
            Some(c) => bail!("no cluster named {c}"),
            None => info.cluster_addr_table.keys().cloned().collect(),
        };
        if !tlog {
            println!(
                "{:<24}  {:<24}  {:<8}  {:<16}  {:<16}",
                "#Cluster Name", "#Broker Name", "#RT", "#successCount", "#failCount"
            );
        }
        loop {
            for cluster in &clusters {
                for broker in &info.cluster_addr_table[cluster] {
                    let (mut ok, mut failed, mut elapsed) = (0u32, 0u32, Duration::ZERO);
                    for _ in 0..amount {
                        let started = Instant::now();
                        match producer
                            .send(Message::new(broker.clone(), body_of_size(size)))
                            .await
                        {
                            Ok(_) => ok += 1,
                            Err(_) => failed += 1,
                        }
                        elapsed += started.elapsed();
                    }
                    let rt = elapsed.as_secs_f64() * 1000.0 / f64::from(amount);
                    if tlog {
                        println!(
                            "{}|{room}|{cluster}|{broker}|{rt:.0}",
                            crate::time::format_ms(now_ms())
                        );
                    } else {
                        println!(
                            "{cluster:<24}  {broker:<24}  {:<8}  {ok:<16}  {failed:<16}",
                            format!("{rt:.2}")
                        );
                    }
                }
            }
            if interval == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(interval)).await;
        }
    }
    .await;
    producer.shutdown().await;
    admin.shutdown().await;
    result
}
