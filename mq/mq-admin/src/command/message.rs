//! sendMessage, queryMsgByKey, queryMsgById, queryMsgByOffset,
//! queryMsgByUniqueKey, and how these print a message.

use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use mq_client::{Message, MessageExt, MessageQueue, PullConsumer, PullStatus, SendStatus};

use super::common::{admin, client_config, producer, value, Command};
use crate::args::{FlagSpec, Flags};
use crate::time::format_ms;

/// A send status as RocketMQ prints it (`SEND_OK`, ...).
pub(crate) fn status_name(status: SendStatus) -> &'static str {
    match status {
        SendStatus::SendOk => "SEND_OK",
        SendStatus::FlushDiskTimeout => "FLUSH_DISK_TIMEOUT",
        SendStatus::FlushSlaveTimeout => "FLUSH_SLAVE_TIMEOUT",
        SendStatus::SlaveNotAvailable => "SLAVE_NOT_AVAILABLE",
    }
}

const SEND_MESSAGE_FLAGS: &[FlagSpec] = &[
    value('t', "topic", "topic name", true),
    value('p', "body", "UTF-8 string format of the message body", true),
    value('k', "keys", "message keys", false),
    value('c', "tags", "message tags", false),
    value('b', "broker", "send message to target broker", false),
    value('i', "qid", "send message to target queue", false),
];

pub const SEND_MESSAGE: Command = Command {
    name: "sendMessage",
    summary: "Send a message",
    flags: SEND_MESSAGE_FLAGS,
    run: |f| Box::pin(send_message(f)),
};

async fn send_message(f: Flags) -> Result<()> {
    let topic = f.value('t')?.to_owned();
    let queue_id: Option<i32> = f.get('i').map(|_| f.number('i', 0)).transpose()?;
    if queue_id.is_some() && f.get('b').is_none() {
        bail!("-i (queue id) needs -b (broker name)");
    }
    let mut msg = Message::new(topic.clone(), Bytes::from(f.value('p')?.to_owned()));
    if let Some(tags) = f.get('c') {
        msg = msg.with_tags(tags);
    }
    if let Some(keys) = f.get('k') {
        msg = msg.with_keys(keys.split(' ').filter(|k| !k.is_empty()));
    }
    let producer = producer(&f, "mqadmin-producer").await?;
    let sent = match f.get('b') {
        None => producer.send(msg).await,
        Some(broker) => {
            let queue = MessageQueue {
                topic: topic.clone(),
                broker_name: broker.to_owned(),
                queue_id: queue_id.unwrap_or(0),
            };
            producer.send_to_queue(msg, &queue).await
        }
    };
    producer.shutdown().await;
    let sent = sent?;
    println!(
        "{:<32}  {:<4}  {:<20}  #MsgId",
        "#Broker Name", "#QID", "#Send Result"
    );
    println!(
        "{:<32}  {:<4}  {:<20}  {}",
        sent.queue.broker_name,
        sent.queue.queue_id,
        status_name(sent.status),
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
        .await;
    admin.shutdown().await;
    let found = found?;
    println!("{:<50} {:<4} {:<10}", "#Message ID", "#QID", "#Offset");
    for m in &found {
        println!(
            "{:<50} {:<4} {:<10}",
            m.offset_msg_id(),
            m.queue_id,
            m.queue_offset
        );
    }
    Ok(())
}

const QUERY_BY_ID_FLAGS: &[FlagSpec] = &[
    value('i', "msgId", "message id (the offset message id)", true),
    value('g', "consumerGroup", "consumer group name", false),
    value('d', "clientId", "The consumer's client id", false),
];

pub const QUERY_MSG_BY_ID: Command = Command {
    name: "queryMsgById",
    summary: "Query Message by Id",
    flags: QUERY_BY_ID_FLAGS,
    run: |f| Box::pin(query_by_id(f)),
};

async fn query_by_id(f: Flags) -> Result<()> {
    let id = f.value('i')?;
    let admin = admin(&f).await?;
    if let (Some(group), Some(client)) = (f.get('g'), f.get('d')) {
        // RocketMQ's pushMsg: the client consumes the message directly.
        let result = push_message(&admin, group, client, id).await;
        admin.shutdown().await;
        let r = result?;
        println!(
            "ConsumeMessageDirectlyResult [order={}, autoCommit={}, consumeResult={}, remark={}, spentTimeMills={}]",
            r.order,
            r.auto_commit,
            r.consume_result
                .map_or("null".to_owned(), |c| format!("{c:?}")),
            r.remark.as_deref().unwrap_or("null"),
            r.spent_time_mills
        );
        return Ok(());
    }
    let msg = admin.view_message(id).await;
    admin.shutdown().await;
    print!("{}", describe(&msg?));
    Ok(())
}

/// Hands the message `id` names to `client` of `group` through the broker
/// that stored it (CONSUME_MESSAGE_DIRECTLY).
async fn push_message(
    admin: &mq_client::AdminClient,
    group: &str,
    client: &str,
    id: &str,
) -> Result<mq_protocol::admin_body::ConsumeMessageDirectlyResult> {
    let msg = admin.view_message(id).await?;
    let addr = msg.store_host.to_string();
    Ok(admin
        .consume_message_directly(&addr, group, Some(client), &msg.topic, id)
        .await?)
}

const QUERY_BY_UNIQUE_KEY_FLAGS: &[FlagSpec] = &[
    value('i', "msgId", "message id (the client's unique key)", true),
    value('t', "topic", "topic name", true),
];

pub const QUERY_MSG_BY_UNIQUE_KEY: Command = Command {
    name: "queryMsgByUniqueKey",
    summary: "Query Message by Unique key",
    flags: QUERY_BY_UNIQUE_KEY_FLAGS,
    run: |f| Box::pin(query_by_unique_key(f)),
};

async fn query_by_unique_key(f: Flags) -> Result<()> {
    let (id, topic) = (f.value('i')?, f.value('t')?);
    let admin = admin(&f).await?;
    let found = admin.query_message_by_unique_key(topic, id).await;
    admin.shutdown().await;
    let found = found?;
    if found.is_empty() {
        bail!("no message of topic {topic} has the unique key {id}");
    }
    for (i, m) in found.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", describe(m));
    }
    Ok(())
}

const QUERY_BY_OFFSET_FLAGS: &[FlagSpec] = &[
    value('t', "topic", "topic name", true),
    value('b', "brokerName", "Broker Name", true),
    value('i', "queueId", "Queue Id", true),
    value('o', "offset", "Queue Offset", true),
];

pub const QUERY_MSG_BY_OFFSET: Command = Command {
    name: "queryMsgByOffset",
    summary: "Query Message by offset",
    flags: QUERY_BY_OFFSET_FLAGS,
    run: |f| Box::pin(query_by_offset(f)),
};

async fn query_by_offset(f: Flags) -> Result<()> {
    let mq = MessageQueue {
        topic: f.value('t')?.to_owned(),
        broker_name: f.value('b')?.to_owned(),
        queue_id: f.number('i', 0)?,
    };
    let offset: i64 = f.number('o', 0)?;
    let consumer = tools_consumer(&f).await?;
    let pulled = consumer.pull(&mq, "*", offset, 1).await;
    consumer.shutdown().await;
    let pulled = pulled?;
    let msg = match pulled.status {
        PullStatus::Found => pulled.messages.into_iter().next(),
        _ => None,
    }
    .filter(|m| m.queue_offset == offset)
    .ok_or_else(|| {
        anyhow!(
            "no message at offset {offset} of {}:{}:{} (the queue holds {}..{})",
            mq.topic,
            mq.broker_name,
            mq.queue_id,
            pulled.min_offset,
            pulled.max_offset
        )
    })?;
    print!("{}", describe(&msg));
    Ok(())
}

/// The pull consumer the reading commands use (RocketMQ's TOOLS_CONSUMER).
pub(crate) async fn tools_consumer(f: &Flags) -> Result<PullConsumer> {
    let group = f.get('g').unwrap_or("TOOLS_CONSUMER").to_owned();
    let client = client_config(f, format!("mqadmin-pull-{}", std::process::id()))?;
    Ok(PullConsumer::start(group, client).await?)
}

/// A message as RocketMQ's `queryMsgById` prints it.
pub(crate) fn describe(m: &MessageExt) -> String {
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
        ("Born Timestamp", format_ms(m.born_timestamp)),
        ("Store Timestamp", format_ms(m.store_timestamp)),
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

/// One line per message, as RocketMQ's printMsg prints them.
pub(crate) fn one_line(m: &MessageExt, print_body: bool) -> String {
    let id = m.property("UNIQ_KEY").unwrap_or("");
    let mut line = format!(
        "MSGID: {id} MessageExt [topic={}, queueId={}, queueOffset={}, storeTimestamp={}, bornHost={}, offsetMsgId={}, tags={}, keys={}, reconsumeTimes={}]",
        m.topic,
        m.queue_id,
        m.queue_offset,
        format_ms(m.store_timestamp),
        m.born_host,
        m.offset_msg_id(),
        m.tags().unwrap_or(""),
        m.keys().join(" "),
        m.reconsume_times
    );
    if print_body {
        line.push_str(" BODY: ");
        line.push_str(&String::from_utf8_lossy(&m.body));
    }
    line
}
