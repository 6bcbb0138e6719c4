//! topicStatus, topicClusterList, allocateMQ.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};
use mq_client::consumer::allocate_averagely;

use super::common::{admin, topic_masters, value, Command};
use crate::args::{FlagSpec, Flags};
use crate::time::format_ms;

const TOPIC_FLAG: &[FlagSpec] = &[value('t', "topic", "topic name", true)];

pub const TOPIC_STATUS: Command = Command {
    name: "topicStatus",
    summary: "Examine topic Status info",
    flags: TOPIC_FLAG,
    run: |f| Box::pin(topic_status(f)),
};

async fn topic_status(f: Flags) -> Result<()> {
    let topic = f.value('t')?;
    let admin = admin(&f).await?;
    let result = async {
        let mut rows = BTreeMap::new();
        for (_, addr) in topic_masters(&admin, topic).await? {
            rows.extend(admin.topic_stats(&addr, topic).await?.offset_table);
        }
        println!(
            "{:<32}  {:<4}  {:<20}  {:<20}    #Last Updated",
            "#Broker Name", "#QID", "#Min Offset", "#Max Offset"
        );
        for (mq, o) in rows {
            let updated = if o.last_update_timestamp > 0 {
                format_ms(o.last_update_timestamp)
            } else {
                String::new()
            };
            println!(
                "{:<32}  {:<4}  {:<20}  {:<20}    {updated}",
                mq.broker_name, mq.queue_id, o.min_offset, o.max_offset
            );
        }
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}

pub const TOPIC_CLUSTER_LIST: Command = Command {
    name: "topicClusterList",
    summary: "Get cluster info for topic",
    flags: TOPIC_FLAG,
    run: |f| Box::pin(topic_cluster_list(f)),
};

async fn topic_cluster_list(f: Flags) -> Result<()> {
    let topic = f.value('t')?;
    let admin = admin(&f).await?;
    let route = admin.topic_route(topic).await;
    admin.shutdown().await;
    let clusters: BTreeSet<String> = route?.broker_datas.into_iter().map(|b| b.cluster).collect();
    for cluster in clusters {
        println!("{cluster}");
    }
    Ok(())
}

const ALLOCATE_FLAGS: &[FlagSpec] = &[
    value('t', "topic", "topic name", true),
    value('i', "ipList", "ipList, e.g. 10.0.0.1,10.0.0.2", true),
];

pub const ALLOCATE_MQ: Command = Command {
    name: "allocateMQ",
    summary: "Allocate MQ",
    flags: ALLOCATE_FLAGS,
    run: |f| Box::pin(allocate_mq(f)),
};

/// Which queues each consumer (named by IP) would get under "allocate
/// averagely", printed as RocketMQ's `RebalanceResult` JSON.
async fn allocate_mq(f: Flags) -> Result<()> {
    let topic = f.value('t')?;
    let ips: Vec<String> = f
        .value('i')?
        .split(',')
        .map(|ip| ip.trim().to_owned())
        .filter(|ip| !ip.is_empty())
        .collect();
    if ips.is_empty() {
        bail!("option -i needs at least one IP");
    }
    let admin = admin(&f).await?;
    let queues = admin.topic_queues(topic).await;
    admin.shutdown().await;
    let queues = queues?;
    let mut sorted = ips.clone();
    sorted.sort();
    let result: BTreeMap<&str, Vec<serde_json::Value>> = ips
        .iter()
        .map(|ip| {
            let mine = allocate_averagely(ip, &queues, &sorted)
                .into_iter()
                .map(|mq| serde_json::to_value(mq).unwrap_or_default())
                .collect();
            (ip.as_str(), mine)
        })
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({ "result": result }))?
    );
    Ok(())
}
