//! consumerProgress, consumerStatus, getConsumerStatus.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, bail, Result};
use mq_client::{AdminClient, MessageQueue};
use mq_protocol::admin_body::{ConsumeStats, ConsumerRunningInfo};
use mq_protocol::topic::RETRY_GROUP_TOPIC_PREFIX;

use super::common::{admin, boolean, topic_masters, value, Command};
use super::connection::{all_masters, consumer_connection_of};
use crate::args::{FlagSpec, Flags};
use crate::time::format_ms;

/// The group's consume stats over every master; an error when no broker
/// has any progress for it (an unknown group).
pub(crate) async fn group_stats(admin: &AdminClient, group: &str) -> Result<ConsumeStats> {
    let mut all = ConsumeStats::default();
    for addr in all_masters(admin).await? {
        let stats = admin.consume_stats(&addr, group, None).await?;
        all.consume_tps += stats.consume_tps;
        all.offset_table.extend(stats.offset_table);
    }
    all.offset_table
        .retain(|mq, _| !mq.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX));
    if all.offset_table.is_empty() {
        bail!("consumer group {group} has no consume progress on any broker");
    }
    Ok(all)
}

/// Running info of every online member, by client id (members that do not
/// answer are left out).
async fn running_infos(
    admin: &AdminClient,
    group: &str,
) -> Result<BTreeMap<String, ConsumerRunningInfo>> {
    let (addr, conn) = consumer_connection_of(admin, group).await?;
    let mut infos = BTreeMap::new();
    for c in conn.connection_set {
        if let Ok(info) = admin
            .consumer_running_info(&addr, group, &c.client_id, false)
            .await
        {
            infos.insert(c.client_id, info);
        }
    }
    Ok(infos)
}

const PROGRESS_FLAGS: &[FlagSpec] = &[
    value('g', "groupName", "consumer group name", false),
    value(
        's',
        "showClientIP",
        "Show Client IP per Queue (true|false, default false)",
        false,
    ),
];

pub const CONSUMER_PROGRESS: Command = Command {
    name: "consumerProgress",
    summary: "Query consumers's progress, speed",
    flags: PROGRESS_FLAGS,
    run: |f| Box::pin(consumer_progress(f)),
};

async fn consumer_progress(f: Flags) -> Result<()> {
    let show_ip = boolean(&f, 's', false)?;
    let admin = admin(&f).await?;
    let result = match f.get('g') {
        Some(group) => progress_of(&admin, group, show_ip).await,
        None => all_groups(&admin).await,
    };
    admin.shutdown().await;
    result
}

async fn progress_of(admin: &AdminClient, group: &str, show_ip: bool) -> Result<()> {
    let stats = group_stats(admin, group).await?;
    let mut holders: BTreeMap<MessageQueue, String> = BTreeMap::new();
    if show_ip {
        for (client_id, info) in running_infos(admin, group).await.unwrap_or_default() {
            let ip = client_id.split('@').next().unwrap_or(&client_id).to_owned();
            for mq in info.mq_table.keys() {
                holders.insert(mq.clone(), ip.clone());
            }
        }
    }
    let ip_header = if show_ip {
        format!("{:<20}  ", "#Client IP")
    } else {
        String::new()
    };
    println!(
        "{:<48}  {:<32}  {:<4}  {:<20}  {:<20}  {ip_header}{:<20}  #LastTime",
        "#Topic", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Diff"
    );
    let mut diff_total = 0;
    for (mq, o) in &stats.offset_table {
        let diff = o.broker_offset - o.consumer_offset;
        diff_total += diff;
        let ip = if show_ip {
            format!("{:<20}  ", holders.get(mq).map_or("N/A", String::as_str))
        } else {
            String::new()
        };
        let last = if o.last_timestamp > 0 {
            format_ms(o.last_timestamp)
        } else {
            "N/A".to_owned()
        };
        println!(
            "{:<48}  {:<32}  {:<4}  {:<20}  {:<20}  {ip}{diff:<20}  {last}",
            mq.topic, mq.broker_name, mq.queue_id, o.broker_offset, o.consumer_offset
        );
    }
    println!();
    println!("Consume TPS: {:.2}", stats.consume_tps);
    println!("Diff Total: {diff_total}");
    Ok(())
}

/// Every group with a retry topic: its members, kind and backlog.
async fn all_groups(admin: &AdminClient) -> Result<()> {
    let topics = admin.topic_list().await?.topic_list;
    let groups: BTreeSet<&str> = topics
        .iter()
        .filter_map(|t| t.strip_prefix(RETRY_GROUP_TOPIC_PREFIX))
        .collect();
    println!(
        "{:<48}  {:<6}  {:<24}  {:<18}  {:<14}  {:<8}  #Diff Total",
        "#Group", "#Count", "#Version", "#Type", "#Model", "#TPS"
    );
    let name = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    for group in groups {
        let (tps, diff) = match group_stats(admin, group).await {
            Ok(s) => (s.consume_tps, s.total_diff()),
            Err(_) => (0.0, 0),
        };
        let (count, version, kind, model) = match consumer_connection_of(admin, group).await {
            Ok((_, c)) => (
                c.connection_set.len(),
                c.connection_set
                    .iter()
                    .map(|x| x.version)
                    .min()
                    .map_or("OFFLINE".to_owned(), |v| v.to_string()),
                name(serde_json::to_value(c.consume_type)),
                name(serde_json::to_value(c.message_model)),
            ),
            Err(_) => (0, "OFFLINE".to_owned(), String::new(), String::new()),
        };
        println!(
            "{group:<48}  {count:<6}  {version:<24}  {kind:<18}  {model:<14}  {tps:<8.2}  {diff}"
        );
    }
    Ok(())
}

const STATUS_FLAGS: &[FlagSpec] = &[
    value('g', "consumerGroup", "consumer group name", true),
    value('i', "clientId", "The consumer's client id", false),
    value(
        's',
        "jstack",
        "Run jstack command in the consumer progress",
        false,
    ),
];

pub const CONSUMER_STATUS: Command = Command {
    name: "consumerStatus",
    summary: "Query consumer's internal data structure",
    flags: STATUS_FLAGS,
    run: |f| Box::pin(consumer_status(f)),
};

fn print_running_info(client_id: &str, info: &ConsumerRunningInfo) {
    println!("#Consumer: {client_id}");
    println!();
    println!("#Consumer Properties#");
    for (k, v) in &info.properties {
        println!("{k:<40}: {v}");
    }
    println!();
    println!("#Consumer Subscription#");
    for (i, sub) in info.subscription_set.iter().enumerate() {
        println!(
            "{:03} Topic: {:<40} SubExpression: {}",
            i + 1,
            sub.topic,
            sub.sub_string
        );
    }
    println!();
    println!("#Consumer Offset#");
    println!(
        "{:<48}  {:<32}  {:<4}  {:<20}  {:<12}  {:<8}",
        "#Topic", "#Broker Name", "#QID", "#Consumer Offset", "#Cached Msgs", "#Locked"
    );
    for (mq, pq) in &info.mq_table {
        println!(
            "{:<48}  {:<32}  {:<4}  {:<20}  {:<12}  {:<8}",
            mq.topic, mq.broker_name, mq.queue_id, pq.commit_offset, pq.cached_msg_count, pq.locked
        );
    }
    if !info.status_table.is_empty() {
        println!();
        println!("#Consumer RT&TPS#");
    }
    for (topic, s) in &info.status_table {
        println!(
            "{topic:<48}  pullRT={:.2} pullTPS={:.2} consumeRT={:.2} consumeOKTPS={:.2} consumeFailedTPS={:.2} consumeFailedMsgsInHour={}",
            s.pull_rt, s.pull_tps, s.consume_rt, s.consume_ok_tps, s.consume_failed_tps, s.consume_failed_msgs
        );
    }
    if let Some(jstack) = &info.jstack {
        println!();
        println!("#Consumer jstack#");
        println!("{jstack}");
    }
}

async fn consumer_status(f: Flags) -> Result<()> {
    let group = f.value('g')?;
    let jstack = boolean(&f, 's', false)?;
    let admin = admin(&f).await?;
    let result = async {
        let (addr, conn) = consumer_connection_of(&admin, group).await?;
        match f.get('i') {
            Some(client_id) => {
                if !conn.connection_set.iter().any(|c| c.client_id == client_id) {
                    bail!("client {client_id} of group {group} is not online");
                }
                let info = admin
                    .consumer_running_info(&addr, group, client_id, jstack)
                    .await?;
                print_running_info(client_id, &info);
            }
            None => {
                println!(
                    "{:<5} {:<48} {:<10} {:<8} #Subscriptions",
                    "#No", "#ClientId", "#Version", "#Queues"
                );
                for (i, c) in conn.connection_set.iter().enumerate() {
                    let info = admin
                        .consumer_running_info(&addr, group, &c.client_id, jstack)
                        .await?;
                    let subs: Vec<String> = info
                        .subscription_set
                        .iter()
                        .map(|s| format!("{}:{}", s.topic, s.sub_string))
                        .collect();
                    println!(
                        "{:03}   {:<48} {:<10} {:<8} {}",
                        i + 1,
                        c.client_id,
                        c.version,
                        info.mq_table.len(),
                        subs.join(",")
                    );
                }
                let mut subscriptions: BTreeSet<(String, String)> = BTreeSet::new();
                for info in running_infos(&admin, group).await?.values() {
                    subscriptions.extend(
                        info.subscription_set
                            .iter()
                            .map(|s| (s.topic.clone(), s.sub_string.clone())),
                    );
                }
                let same = subscriptions
                    .iter()
                    .map(|(t, _)| t)
                    .collect::<BTreeSet<_>>()
                    .len()
                    == subscriptions.len();
                println!();
                if same {
                    println!("Same subscription in the same group of consumer");
                } else {
                    println!(
                        "WARN: members of group {group} subscribe differently: {subscriptions:?}"
                    );
                }
                println!("Rebalance OK");
            }
        }
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}

const GET_STATUS_FLAGS: &[FlagSpec] = &[
    value('g', "group", "set the consumer group", true),
    value('t', "topic", "set the topic", true),
    value('i', "originClientId", "set the consumer clientId", false),
];

pub const GET_CONSUMER_STATUS: Command = Command {
    name: "getConsumerStatus",
    summary: "get consumer status from client.",
    flags: GET_STATUS_FLAGS,
    run: |f| Box::pin(get_consumer_status(f)),
};

async fn get_consumer_status(f: Flags) -> Result<()> {
    let (group, topic) = (f.value('g')?, f.value('t')?);
    let client = f.get('i');
    let admin = admin(&f).await?;
    let result = async {
        let mut by_client: BTreeMap<String, BTreeMap<MessageQueue, i64>> = BTreeMap::new();
        for (_, addr) in topic_masters(&admin, topic).await? {
            let status = admin.consumer_status(&addr, group, topic, client).await?;
            for (id, table) in status.consumer_table {
                by_client.entry(id).or_default().extend(table);
            }
        }
        if by_client.is_empty() {
            return Err(anyhow!("no consumer of group {group} answered"));
        }
        println!(
            "get consumer status from client. group={group}, topic={topic}, originClientId={}",
            client.unwrap_or("")
        );
        for (id, table) in by_client {
            println!("client: {id}");
            println!(
                "{:<40}  {:<20}  {:<20}",
                "#brokerName", "#queueId", "#offset"
            );
            for (mq, offset) in table {
                println!(
                    "{:<40}  {:<20}  {:<20}",
                    mq.broker_name, mq.queue_id, offset
                );
            }
        }
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}
