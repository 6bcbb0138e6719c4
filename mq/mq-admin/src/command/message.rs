//! sendMessage, queryMsgByKey, queryMsgById.

use anyhow::Result;
use bytes::Bytes;
use mq_client::{ClientConfig, Message, MessageExt, Producer, ProducerConfig};

use super::{admin, value, Command};
use crate::args::{FlagSpec, Flags};

const SEND_MESSAGE_FLAGS: &[FlagSpec] = &[
    value('t', "topic", "topic name", true),
    value('p', "body", "UTF-8 string format of the message body", true),
    value('k', "keys", "message keys", false),
    value('c', "tags", "message tags", false),
];

pub const SEND_MESSAGE: Command = Command {
    name: "sendMessage",
    summary: "Send a message",
    flags: SEND_MESSAGE_FLAGS,
    run: |f| Box::pin(send_message(f)),
};

async fn send_message(f: Flags) -> Result<()> {
    let client = ClientConfig::new(f.namesrv()?)
        .with_instance_name(format!("mqadmin-send-{}", std::process::id()));
    let producer = Producer::start(ProducerConfig::new("mqadmin-producer"), client).await?;
    let mut msg = Message::new(f.value('t')?, Bytes::from(f.value('p')?.to_owned()));
    if let Some(tags) = f.get('c') {
        msg = msg.with_tags(tags);
    }
    if let Some(keys) = f.get('k') {
        msg = msg.with_keys(keys.split(' ').filter(|k| !k.is_empty()));
    }
    let sent = producer.send(msg).await;
    producer.shutdown().await;
    let sent = sent?;
    println!(
        "{:<32} {:<4} {:<20} {:<32}",
        "#Broker Name", "#QID", "#Send Result", "#MsgId"
    );
    println!(
        "{:<32} {:<4} {:<20} {:<32}",
        sent.queue.broker_name,
        sent.queue.queue_id,
        format!("{:?}", sent.status),
        sent.msg_id
    );
    Ok(())
}

const QUERY_BY_KEY_FLAGS: &[FlagSpec] = &[
    value('t', "topic", "topic name", true),
    value('k', "msgKey", "message key", true),
];

pub const QUERY_MSG_BY_KEY: Command = Command {
    name: "queryMsgByKey",
    summary: "Query Message by Key",
    flags: QUERY_BY_KEY_FLAGS,
    run: |f| Box::pin(query_by_key(f)),
};

async fn query_by_key(f: Flags) -> Result<()> {
    let (topic, key) = (f.value('t')?, f.value('k')?);
    let admin = admin(&f).await?;
    let found = admin
        .query_message_by_key(topic, key, 64, 0, i64::MAX)
        .await?;
    println!("{:<50} {:<4} {:<10}", "#Message ID", "#QID", "#Offset");
    for m in &found {
        println!(
            "{:<50} {:<4} {:<10}",
            m.offset_msg_id(),
            m.queue_id,
            m.queue_offset
        );
    }
    admin.shutdown().await;
    Ok(())
}

const QUERY_BY_ID_FLAGS: &[FlagSpec] = &[value(
    'i',
    "msgId",
    "message id (the offset message id)",
    true,
)];

pub const QUERY_MSG_BY_ID: Command = Command {
    name: "queryMsgById",
    summary: "Query Message by Id",
    flags: QUERY_BY_ID_FLAGS,
    run: |f| Box::pin(query_by_id(f)),
};

async fn query_by_id(f: Flags) -> Result<()> {
    let id = f.value('i')?;
    let admin = admin(&f).await?;
    let msg = admin.view_message(id).await;
    admin.shutdown().await;
    print!("{}", describe(&msg?));
    Ok(())
}

/// A message as RocketMQ's `queryMsgById` prints it.
fn describe(m: &MessageExt) -> String {
    let mut out = String::new();
    let rows = [
        ("OffsetID", m.offset_msg_id()),
        ("Topic", m.topic.clone()),
        ("Tags", format!("[{}]", m.tags().unwrap_or(""))),
        ("Keys", format!("[{}]", m.keys().join(" "))),
        ("Queue ID", m.queue_id.to_string()),
        ("Queue Offset", m.queue_offset.to_string()),
        ("CommitLog Offset", m.commit_log_offset.to_string()),
        ("Reconsume Times", m.reconsume_times.to_string()),
        ("Born Timestamp", m.born_timestamp.to_string()),
        ("Store Timestamp", m.store_timestamp.to_string()),
        ("Born Host", m.born_host.to_string()),
        ("Store Host", m.store_host.to_string()),
        ("System Flag", m.sys_flag.to_string()),
        ("Properties", format!("{:?}", m.properties)),
        (
            "Message Body",
            String::from_utf8_lossy(&m.body).into_owned(),
        ),
    ];
    for (name, value) in rows {
        out.push_str(&format!("{name:<20}: {value}\n"));
    }
    out
}
