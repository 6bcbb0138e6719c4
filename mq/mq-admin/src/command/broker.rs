//! updateBrokerConfig, brokerStatus, brokerConsumeStats, getBrokerConfig,
//! wipeWritePerm, cleanExpiredCQ, cleanUnusedTopic, sendMsgStatus.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use mq_client::Message;

use super::common::{admin, body_of_size, producer, target_brokers, value, Command};
use crate::args::{FlagSpec, Flags};
use crate::time::{format_ms, now_ms};

const B_OR_C: [FlagSpec; 2] = [
    value('b', "brokerAddr", "broker address", false),
    value('c', "clusterName", "every master of this cluster", false),
];

const UPDATE_BROKER_CONFIG_FLAGS: &[FlagSpec] = &[
    B_OR_C[0],
    B_OR_C[1],
    value('k', "key", "config key", true),
    value('v', "value", "config value", true),
];

pub const UPDATE_BROKER_CONFIG: Command = Command {
    name: "updateBrokerConfig",
    summary: "Update broker's config",
    flags: UPDATE_BROKER_CONFIG_FLAGS,
    run: |f| Box::pin(update_broker_config(f)),
};

async fn update_broker_config(f: Flags) -> Result<()> {
    let entry = (
        f.value('k')?.trim().to_owned(),
        f.value('v')?.trim().to_owned(),
    );
    if entry.0.is_empty() || entry.0.contains(['=', '\n']) || entry.1.contains('\n') {
        bail!("bad key or value: {}={}", entry.0, entry.1);
    }
    let admin = admin(&f).await?;
    let result = async {
        for addr in target_brokers(&admin, &f).await? {
            admin
                .update_broker_config(&addr, std::slice::from_ref(&entry))
                .await?;
            println!("update broker config success, {addr}");
        }
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}

pub const BROKER_STATUS: Command = Command {
    name: "brokerStatus",
    summary: "Fetch broker runtime status data",
    flags: &B_OR_C,
    run: |f| Box::pin(broker_status(f)),
};

async fn broker_status(f: Flags) -> Result<()> {
    let admin = admin(&f).await?;
    let result = async {
        let brokers = target_brokers(&admin, &f).await?;
        let many = brokers.len() > 1 || f.get('c').is_some();
        for addr in brokers {
            for (key, value) in admin.broker_runtime_info(&addr).await? {
                if many {
                    println!("{addr:<24} {key:<32}: {value}");
                } else {
                    println!("{key:<32}: {value}");
                }
            }
        }
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}

const BROKER_CONSUME_STATS_FLAGS: &[FlagSpec] = &[
    value('b', "brokerAddr", "Broker address", true),
    value(
        't',
        "timeoutMillis",
        "request timeout Millis (default 50000)",
        false,
    ),
    value('l', "level", "threshold of print diff (default 0)", false),
    value(
        'o',
        "order",
        "order topic (true|false, default false)",
        false,
    ),
];

pub const BROKER_CONSUME_STATS: Command = Command {
    name: "brokerConsumeStats",
    summary: "Fetch broker consume stats data",
    flags: BROKER_CONSUME_STATS_FLAGS,
    run: |f| Box::pin(broker_consume_stats(f)),
};

async fn broker_consume_stats(f: Flags) -> Result<()> {
    let addr = f.value('b')?;
    let level: i64 = f.number('l', 0)?;
    let order = super::common::boolean(&f, 'o', false)?;
    let timeout = Duration::from_millis(f.number('t', 50_000)?);
    let admin = admin(&f).await?;
    let list = tokio::time::timeout(timeout, admin.broker_consume_stats(addr, order)).await;
    admin.shutdown().await;
    let list = list.map_err(|_| anyhow!("no answer from {addr} within {timeout:?}"))??;
    println!(
        "{:<48}  {:<48}  {:<24}  {:<4}  {:<20}  {:<20}  {:<20}  #LastTime",
        "#Topic", "#Group", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Diff",
    );
    for groups in &list.consume_stats_list {
        for (group, stats) in groups {
            for stat in stats {
                for (mq, o) in &stat.offset_table {
                    let diff = o.broker_offset - o.consumer_offset;
                    if diff < level {
                        continue;
                    }
                    let last = if o.last_timestamp > 0 {
                        format_ms(o.last_timestamp)
                    } else {
                        "UNKNOWN".to_owned()
                    };
                    println!(
                        "{:<48}  {group:<48}  {:<24}  {:<4}  {:<20}  {:<20}  {diff:<20}  {last}",
                        mq.topic, mq.broker_name, mq.queue_id, o.broker_offset, o.consumer_offset
                    );
                }
            }
        }
    }
    println!();
    println!("Diff Total: {}", list.total_diff);
    Ok(())
}

pub const GET_BROKER_CONFIG: Command = Command {
    name: "getBrokerConfig",
    summary: "Get broker config by cluster or special broker",
    flags: &B_OR_C,
    run: |f| Box::pin(get_broker_config(f)),
};

async fn get_broker_config(f: Flags) -> Result<()> {
    let admin = admin(&f).await?;
    let result = async {
        for addr in target_brokers(&admin, &f).await? {
            println!("============{addr}============");
            for (key, value) in admin.broker_config(&addr).await? {
                println!("{key:<50}=  {value}");
            }
        }
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}

const WIPE_FLAGS: &[FlagSpec] = &[value('b', "brokerName", "broker name", true)];

pub const WIPE_WRITE_PERM: Command = Command {
    name: "wipeWritePerm",
    summary: "Wipe write perm of broker in all name server",
    flags: WIPE_FLAGS,
    run: |f| Box::pin(wipe_write_perm(f)),
};

async fn wipe_write_perm(f: Flags) -> Result<()> {
    let name = f.value('b')?;
    let admin = admin(&f).await?;
    let result = async {
        for ns in admin.namesrv_addrs()? {
            let count = admin.wipe_write_perm(&ns, name).await?;
            println!("wipe write perm of broker[{name}] in name server[{ns}] OK, {count}");
        }
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}

pub const CLEAN_EXPIRED_CQ: Command = Command {
    name: "cleanExpiredCQ",
    summary: "Clean expired ConsumeQueue on broker.",
    flags: &B_OR_C,
    run: |f| Box::pin(clean(f, false)),
};

pub const CLEAN_UNUSED_TOPIC: Command = Command {
    name: "cleanUnusedTopic",
    summary: "Clean unused topic on broker.",
    flags: &B_OR_C,
    run: |f| Box::pin(clean(f, true)),
};

async fn clean(f: Flags, unused_topics: bool) -> Result<()> {
    let admin = admin(&f).await?;
    let result = async {
        for addr in target_brokers(&admin, &f).await? {
            let remark = if unused_topics {
                admin.clean_unused_topic(&addr).await?
            } else {
                admin.clean_expired_consume_queue(&addr).await?
            };
            println!("{addr}: success, {remark}");
        }
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}

const SEND_MSG_STATUS_FLAGS: &[FlagSpec] = &[
    value('b', "brokerName", "Broker Name", true),
    value('s', "messageSize", "Message Size, Default: 128", false),
    value('c', "count", "send message count, Default: 50", false),
];

pub const SEND_MSG_STATUS: Command = Command {
    name: "sendMsgStatus",
    summary: "send msg to broker.",
    flags: SEND_MSG_STATUS_FLAGS,
    run: |f| Box::pin(send_msg_status(f)),
};

/// Sends to the broker's own topic (named after it) and prints each
/// send's time and result.
async fn send_msg_status(f: Flags) -> Result<()> {
    let broker = f.value('b')?.to_owned();
    let size: usize = f.number('s', 128)?;
    let count: u32 = f.number('c', 50)?;
    if size == 0 {
        bail!("-s must be positive");
    }
    let producer = producer(&f, &format!("PID_SMSC_{}", now_ms())).await?;
    let result = async {
        for _ in 0..count {
            let started = Instant::now();
            let sent = producer
                .send(Message::new(broker.clone(), body_of_size(size)))
                .await?;
            println!(
                "rt={:.3}ms, SendResult=SendResult [sendStatus={}, msgId={}, offsetMsgId={}, messageQueue=MessageQueue [topic={}, brokerName={}, queueId={}], queueOffset={}]",
                started.elapsed().as_secs_f64() * 1000.0,
                super::message::status_name(sent.status),
                sent.msg_id,
                sent.offset_msg_id,
                sent.queue.topic,
                sent.queue.broker_name,
                sent.queue.queue_id,
                sent.queue_offset
            );
        }
        Ok(())
    }
    .await;
    producer.shutdown().await;
    result
}
