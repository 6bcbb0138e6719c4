//! resetOffsetByTime, cloneGroupOffset.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use super::common::{admin, boolean, topic_masters, value, Command};
use crate::args::{FlagSpec, Flags};
use crate::time::{format_ms, parse_timestamp};

const RESET_FLAGS: &[FlagSpec] = &[
    value('g', "group", "set the consumer group", true),
    value('t', "topic", "set the topic", true),
    value(
        's',
        "timestamp",
        "set the timestamp[now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]",
        true,
    ),
    value(
        'f',
        "force",
        "set the force rollback by timestamp switch[true|false] (default true)",
        false,
    ),
];

pub const RESET_OFFSET_BY_TIME: Command = Command {
    name: "resetOffsetByTime",
    summary: "Reset consumer offset by timestamp(without client restart).",
    flags: RESET_FLAGS,
    run: |f| Box::pin(reset_offset_by_time(f)),
};

async fn reset_offset_by_time(f: Flags) -> Result<()> {
    let (group, topic) = (f.value('g')?, f.value('t')?);
    let text = f.value('s')?;
    let timestamp = parse_timestamp(text)?;
    let force = boolean(&f, 'f', true)?;
    let admin = admin(&f).await?;
    let result = async {
        let mut table = BTreeMap::new();
        for (_, addr) in topic_masters(&admin, topic).await? {
            let body = admin
                .reset_offset_by_time(&addr, group, topic, timestamp, force)
                .await?;
            table.extend(body.offset_table);
        }
        println!(
            "rollback consumer offset by specified group[{group}], topic[{topic}], force[{force}], timestamp(string)[{text}], timestamp(long)[{timestamp}] ({})",
            format_ms(timestamp)
        );
        println!("{:<40}  {:<40}  {:<40}", "#brokerName", "#queueId", "#offset");
        for (mq, offset) in table {
            println!("{:<40}  {:<40}  {:<40}", mq.broker_name, mq.queue_id, offset);
        }
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}

const CLONE_FLAGS: &[FlagSpec] = &[
    value('s', "srcGroup", "set source consumer group", true),
    value('d', "destGroup", "set destination consumer group", true),
    value('t', "topic", "set the topic", true),
    value(
        'o',
        "offline",
        "the group or the topic is offline (true|false, default false)",
        false,
    ),
];

pub const CLONE_GROUP_OFFSET: Command = Command {
    name: "cloneGroupOffset",
    summary: "clone offset from other group.",
    flags: CLONE_FLAGS,
    run: |f| Box::pin(clone_group_offset(f)),
};

async fn clone_group_offset(f: Flags) -> Result<()> {
    let (src, dest, topic) = (f.value('s')?, f.value('d')?, f.value('t')?);
    if src == dest {
        bail!("the source and destination groups are the same");
    }
    let offline = boolean(&f, 'o', false)?;
    let admin = admin(&f).await?;
    let result = async {
        for (_, addr) in topic_masters(&admin, topic).await? {
            admin
                .clone_group_offset(&addr, src, dest, Some(topic), offline)
                .await?;
        }
        println!("clone group offset success. srcGroup[{src}], destGroup=[{dest}], topic[{topic}]");
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}
