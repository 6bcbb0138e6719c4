//! updateTopic, deleteTopic, topicList, topicRoute.

use std::collections::BTreeSet;

use anyhow::{bail, Result};
use mq_client::{AdminClient, TopicSpec};
use mq_protocol::route::perm;
use mq_protocol::topic::{DLQ_GROUP_TOPIC_PREFIX, RETRY_GROUP_TOPIC_PREFIX};

use super::common::{admin, switch, value, Command};
use crate::args::{FlagSpec, Flags};

/// Topic names `mqadmin updateTopic` accepts, as RocketMQ's tool: `^[a-zA-Z0-9_-]+$`.
pub(crate) fn check_topic_name(topic: &str) -> Result<()> {
    if topic.is_empty()
        || topic.len() > 127
        || !topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        bail!("the topic name {topic:?} is invalid: it must match ^[a-zA-Z0-9_-]+$ and be at most 127 characters");
    }
    Ok(())
}

const UPDATE_TOPIC_FLAGS: &[FlagSpec] = &[
    value('b', "brokerAddr", "create topic to which broker", false),
    value('c', "clusterName", "create topic to which cluster", false),
    value('t', "topic", "topic name", true),
    value(
        'r',
        "readQueueNums",
        "set read queue nums (default 8)",
        false,
    ),
    value(
        'w',
        "writeQueueNums",
        "set write queue nums (default 8)",
        false,
    ),
    value(
        'p',
        "perm",
        "set topic's permission(2|4|6), intro[2:W 4:R; 6:RW] (default 6)",
        false,
    ),
    value('o', "order", "set topic's order(true|false)", false),
];

pub const UPDATE_TOPIC: Command = Command {
    name: "updateTopic",
    summary: "Update or create topic",
    flags: UPDATE_TOPIC_FLAGS,
    run: |f| Box::pin(update_topic(f)),
};

async fn update_topic(f: Flags) -> Result<()> {
    let topic = f.value('t')?.to_owned();
    check_topic_name(&topic)?;
    let read = f.number('r', 8)?;
    let write = f.number('w', 8)?;
    let permission: i32 = f.number('p', perm::READ | perm::WRITE)?;
    if ![2, 4, 6].contains(&permission) {
        bail!("option -p must be 2, 4 or 6, got {permission}");
    }
    if !(1..=1024).contains(&read) || !(1..=1024).contains(&write) {
        bail!("queue numbers must be between 1 and 1024");
    }
    let order = match f.get('o') {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => bail!("option -o must be true or false, got {other:?}"),
    };
    let spec = TopicSpec {
        perm: permission,
        order,
        ..TopicSpec::new(topic.clone()).with_queues(read, write)
    };
    let admin = admin(&f).await?;
    let brokers = match (f.get('b'), f.get('c')) {
        (Some(addr), _) => {
            admin.create_topic(addr, &spec).await?;
            vec![addr.to_owned()]
        }
        (None, Some(cluster)) => admin.create_topic_in_cluster(cluster, &spec).await?,
        (None, None) => bail!("one of -b (broker) or -c (cluster) is required"),
    };
    for addr in brokers {
        println!("create topic to {addr} success.");
    }
    println!(
        "TopicConfig [topicName={topic}, readQueueNums={read}, writeQueueNums={write}, perm={}, topicFilterType=SINGLE_TAG, topicSysFlag=0, order={order}]",
        perm::to_string(permission)
    );
    admin.shutdown().await;
    Ok(())
}

const DELETE_TOPIC_FLAGS: &[FlagSpec] = &[
    value('t', "topic", "topic name", true),
    value('c', "clusterName", "delete topic from which cluster", true),
];

pub const DELETE_TOPIC: Command = Command {
    name: "deleteTopic",
    summary: "Delete topic from broker and NameServer",
    flags: DELETE_TOPIC_FLAGS,
    run: |f| Box::pin(delete_topic(f)),
};

async fn delete_topic(f: Flags) -> Result<()> {
    let (topic, cluster) = (f.value('t')?, f.value('c')?);
    let admin = admin(&f).await?;
    admin.delete_topic_in_cluster(cluster, topic).await?;
    println!("delete topic [{topic}] from cluster [{cluster}] success.");
    admin.shutdown().await;
    Ok(())
}

const TOPIC_LIST_FLAGS: &[FlagSpec] = &[switch(
    'c',
    "clusterModel",
    "with each topic's cluster and consumer groups",
)];

pub const TOPIC_LIST: Command = Command {
    name: "topicList",
    summary: "Fetch all topic list from name server",
    flags: TOPIC_LIST_FLAGS,
    run: |f| Box::pin(topic_list(f)),
};

async fn topic_list(f: Flags) -> Result<()> {
    let admin = admin(&f).await?;
    let result = topic_list_with(&admin, f.get('c').is_some()).await;
    admin.shutdown().await;
    result
}

async fn topic_list_with(admin: &AdminClient, clusters: bool) -> Result<()> {
    let list = admin.topic_list().await?;
    if !clusters {
        for topic in list.topic_list {
            println!("{topic}");
        }
        return Ok(());
    }
    println!(
        "{:<20}  {:<48}  {:<48}",
        "#Cluster Name", "#Topic", "#Consumer Group"
    );
    for topic in &list.topic_list {
        if topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) || topic.starts_with(DLQ_GROUP_TOPIC_PREFIX)
        {
            continue;
        }
        // A topic whose route vanished meanwhile is skipped.
        let Ok(route) = admin.topic_route(topic).await else {
            continue;
        };
        let cluster = route
            .broker_datas
            .first()
            .map(|b| b.cluster.clone())
            .unwrap_or_default();
        let mut groups = BTreeSet::new();
        for broker in &route.broker_datas {
            if let Some(addr) = broker.master_addr() {
                if let Ok(list) = admin.topic_consumed_by(addr, topic).await {
                    groups.extend(list.group_list);
                }
            }
        }
        if groups.is_empty() {
            groups.insert(String::new());
        }
        for group in groups {
            println!("{cluster:<20}  {topic:<48}  {group:<48}");
        }
    }
    Ok(())
}

const TOPIC_ROUTE_FLAGS: &[FlagSpec] = &[value('t', "topic", "topic name", true)];

pub const TOPIC_ROUTE: Command = Command {
    name: "topicRoute",
    summary: "Examine topic route info",
    flags: TOPIC_ROUTE_FLAGS,
    run: |f| Box::pin(topic_route(f)),
};

async fn topic_route(f: Flags) -> Result<()> {
    let topic = f.value('t')?;
    let admin = admin(&f).await?;
    let route = admin.topic_route(topic).await?;
    println!("{}", serde_json::to_string_pretty(&route)?);
    admin.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_rocketmqs_rule() {
        assert!(check_topic_name("Order_Cancel-1").is_ok());
        assert!(check_topic_name("a b").is_err());
        assert!(check_topic_name("%RETRY%g").is_err());
        assert!(check_topic_name("").is_err());
    }
}
