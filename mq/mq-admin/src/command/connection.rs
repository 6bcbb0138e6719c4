//! consumerConnection, producerConnection.

use anyhow::{anyhow, Result};
use mq_client::AdminClient;
use mq_protocol::admin_body::ConsumerConnection;

use super::common::{admin, topic_masters, value, Command};
use crate::args::{FlagSpec, Flags};

/// Every master address of every cluster.
pub(crate) async fn all_masters(admin: &AdminClient) -> Result<Vec<String>> {
    let info = admin.cluster_info().await?;
    Ok(info
        .broker_addr_table
        .values()
        .filter_map(|b| b.master_addr().map(str::to_owned))
        .collect())
}

/// The group's connections, from the first broker that knows it online.
pub(crate) async fn consumer_connection_of(
    admin: &AdminClient,
    group: &str,
) -> Result<(String, ConsumerConnection)> {
    let mut last = None;
    for addr in all_masters(admin).await? {
        match admin.consumer_connection(&addr, group).await {
            Ok(c) if !c.connection_set.is_empty() => return Ok((addr, c)),
            Ok(_) => {}
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => anyhow!("consumer group {group} is not online: {e}"),
        None => anyhow!("consumer group {group} is not online"),
    })
}

const GROUP_FLAG: &[FlagSpec] = &[value('g', "consumerGroup", "consumer group name", true)];

pub const CONSUMER_CONNECTION: Command = Command {
    name: "consumerConnection",
    summary: "Query consumer's socket connection, client version and subscription",
    flags: GROUP_FLAG,
    run: |f| Box::pin(consumer_connection(f)),
};

async fn consumer_connection(f: Flags) -> Result<()> {
    let group = f.value('g')?;
    let admin = admin(&f).await?;
    let found = consumer_connection_of(&admin, group).await;
    admin.shutdown().await;
    let (_, c) = found?;
    println!(
        "{:<5} {:<48} {:<22} {:<8} #Version",
        "#No", "#ClientId", "#ClientAddr", "#Language"
    );
    for (i, conn) in c.connection_set.iter().enumerate() {
        println!(
            "{:03}   {:<48} {:<22} {:<8} {}",
            i + 1,
            conn.client_id,
            conn.client_addr,
            conn.language,
            conn.version
        );
    }
    println!();
    println!("Below is subscription:");
    for (i, (topic, sub)) in c.subscription_table.iter().enumerate() {
        println!(
            "{:03}  Topic: {topic:<40} SubExpression: {}",
            i + 1,
            sub.sub_string
        );
    }
    println!();
    let name = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    println!(
        "ConsumeType: {}",
        name(serde_json::to_value(c.consume_type))
    );
    println!(
        "MessageModel: {}",
        name(serde_json::to_value(c.message_model))
    );
    println!(
        "ConsumeFromWhere: {}",
        name(serde_json::to_value(c.consume_from_where))
    );
    Ok(())
}

const PRODUCER_FLAGS: &[FlagSpec] = &[
    value('g', "producerGroup", "producer group name", true),
    value('t', "topic", "topic name", true),
];

pub const PRODUCER_CONNECTION: Command = Command {
    name: "producerConnection",
    summary: "Query producer's socket connection and client version",
    flags: PRODUCER_FLAGS,
    run: |f| Box::pin(producer_connection(f)),
};

async fn producer_connection(f: Flags) -> Result<()> {
    let (group, topic) = (f.value('g')?, f.value('t')?);
    let admin = admin(&f).await?;
    let result = async {
        let mut connections = Vec::new();
        let mut last = None;
        for (_, addr) in topic_masters(&admin, topic).await? {
            match admin.producer_connection(&addr, group).await {
                Ok(p) => connections.extend(p.connection_set),
                Err(e) => last = Some(e),
            }
        }
        if connections.is_empty() {
            return Err(match last {
                Some(e) => anyhow!("producer group {group} is not online: {e}"),
                None => anyhow!("producer group {group} is not online"),
            });
        }
        connections.sort();
        connections.dedup();
        for (i, conn) in connections.iter().enumerate() {
            println!(
                "{:04}  {:<48} {:<22} {:<8} {}",
                i + 1,
                conn.client_id,
                conn.client_addr,
                conn.language,
                conn.version
            );
        }
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}
