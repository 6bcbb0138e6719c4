//! updateSubGroup, deleteSubGroup.

use anyhow::{bail, Result};
use mq_client::SubscriptionGroupConfig;

use super::common::{admin, boolean, value, Command};
use crate::args::{FlagSpec, Flags};

const UPDATE_SUB_GROUP_FLAGS: &[FlagSpec] = &[
    value(
        'b',
        "brokerAddr",
        "create subscription group to which broker",
        false,
    ),
    value(
        'c',
        "clusterName",
        "create subscription group to which cluster",
        false,
    ),
    value('g', "groupName", "consumer group name", true),
    value('s', "consumeEnable", "consume enable (default true)", false),
    value(
        'm',
        "consumeFromMinEnable",
        "from min offset (default true)",
        false,
    ),
    value(
        'd',
        "consumeBroadcastEnable",
        "broadcast (default true)",
        false,
    ),
    value('q', "retryQueueNums", "retry queue nums (default 1)", false),
    value('r', "retryMaxTimes", "retry max times (default 16)", false),
    value(
        'i',
        "brokerId",
        "consumer from which broker id (default 0)",
        false,
    ),
    value(
        'w',
        "whichBrokerWhenConsumeSlowly",
        "which broker id when consume slowly (default 1)",
        false,
    ),
    value(
        'a',
        "notifyConsumerIdsChanged",
        "notify consumer ids changed (default true)",
        false,
    ),
    value(
        'o',
        "consumeMessageOrderly",
        "consume message orderly, for 5.x clients (default false)",
        false,
    ),
];

pub const UPDATE_SUB_GROUP: Command = Command {
    name: "updateSubGroup",
    summary: "Update or create subscription group",
    flags: UPDATE_SUB_GROUP_FLAGS,
    run: |f| Box::pin(update_sub_group(f)),
};

async fn update_sub_group(f: Flags) -> Result<()> {
    let group = f.value('g')?.to_owned();
    let defaults = SubscriptionGroupConfig::default();
    let config = SubscriptionGroupConfig {
        group_name: group.clone(),
        consume_enable: boolean(&f, 's', defaults.consume_enable)?,
        consume_from_min_enable: boolean(&f, 'm', defaults.consume_from_min_enable)?,
        consume_broadcast_enable: boolean(&f, 'd', defaults.consume_broadcast_enable)?,
        retry_queue_nums: f.number('q', defaults.retry_queue_nums)?,
        retry_max_times: f.number('r', defaults.retry_max_times)?,
        broker_id: f.number('i', defaults.broker_id)?,
        which_broker_when_consume_slowly: f
            .number('w', defaults.which_broker_when_consume_slowly)?,
        notify_consumer_ids_changed_enable: boolean(
            &f,
            'a',
            defaults.notify_consumer_ids_changed_enable,
        )?,
        consume_message_orderly: boolean(&f, 'o', defaults.consume_message_orderly)?,
    };
    let admin = admin(&f).await?;
    let brokers = match (f.get('b'), f.get('c')) {
        (Some(addr), _) => vec![addr.to_owned()],
        (None, Some(cluster)) => admin.cluster_masters(cluster).await?,
        (None, None) => bail!("one of -b (broker) or -c (cluster) is required"),
    };
    for addr in &brokers {
        admin.create_subscription_group(addr, &config).await?;
        println!("create subscription group to {addr} success.");
    }
    let c = &config;
    println!(
        "SubscriptionGroupConfig [groupName={}, consumeEnable={}, consumeFromMinEnable={}, consumeBroadcastEnable={}, retryQueueNums={}, retryMaxTimes={}, brokerId={}, whichBrokerWhenConsumeSlowly={}, notifyConsumerIdsChangedEnable={}, consumeMessageOrderly={}]",
        c.group_name,
        c.consume_enable,
        c.consume_from_min_enable,
        c.consume_broadcast_enable,
        c.retry_queue_nums,
        c.retry_max_times,
        c.broker_id,
        c.which_broker_when_consume_slowly,
        c.notify_consumer_ids_changed_enable,
        c.consume_message_orderly
    );
    admin.shutdown().await;
    Ok(())
}

const DELETE_SUB_GROUP_FLAGS: &[FlagSpec] = &[
    value(
        'b',
        "brokerAddr",
        "delete subscription group from which broker",
        false,
    ),
    value(
        'c',
        "clusterName",
        "delete subscription group from which cluster",
        false,
    ),
    value('g', "groupName", "subscription group name", true),
];

pub const DELETE_SUB_GROUP: Command = Command {
    name: "deleteSubGroup",
    summary: "Delete subscription group from broker",
    flags: DELETE_SUB_GROUP_FLAGS,
    run: |f| Box::pin(delete_sub_group(f)),
};

async fn delete_sub_group(f: Flags) -> Result<()> {
    let group = f.value('g')?;
    let admin = admin(&f).await?;
    let brokers = match (f.get('b'), f.get('c')) {
        (Some(addr), _) => vec![addr.to_owned()],
        (None, Some(cluster)) => admin.cluster_masters(cluster).await?,
        (None, None) => bail!("one of -b (broker) or -c (cluster) is required"),
    };
    for addr in &brokers {
        admin.delete_subscription_group(addr, group).await?;
        println!("delete subscription group [{group}] from broker [{addr}] success.");
    }
    admin.shutdown().await;
    Ok(())
}
