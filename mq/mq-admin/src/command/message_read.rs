//! Reading and measuring: consumeMessage, printMsg, printMsgByQueue,
//! checkMsgSendRT.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Result};
use mq_client::{Message, MessageExt, MessageQueue, PullConsumer, PullStatus};

use super::common::{body_of_size, boolean, producer, value, Command};
use super::message::{one_line, status_name, tools_consumer};
use crate::args::{FlagSpec, Flags};
use crate::time::{now_ms, parse_timestamp};

/// Messages asked for per pull.
const PULL_BATCH: i32 = 32;

/// Pulls `mq` from `begin` to `end` (queue offsets), at most `limit`
/// messages, handing each to `each`. Returns how many were handed.
async fn read_queue(
    consumer: &PullConsumer,
    mq: &MessageQueue,
    expression: &str,
    begin: i64,
    end: i64,
    limit: usize,
    each: &mut dyn FnMut(&MessageExt),
) -> Result<usize> {
    let mut offset = begin;
    let mut seen = 0;
    while offset < end && seen < limit {
        let pulled = consumer.pull(mq, expression, offset, PULL_BATCH).await?;
        match pulled.status {
            PullStatus::Found | PullStatus::NoMatchedMsg => {
                for m in pulled.messages.iter().filter(|m| m.queue_offset < end) {
                    if seen == limit {
                        break;
                    }
                    each(m);
                    seen += 1;
                }
                if pulled.next_begin_offset <= offset {
                    break;
                }
                offset = pulled.next_begin_offset;
            }
            PullStatus::NoNewMsg => break,
            PullStatus::OffsetIllegal => {
                if pulled.next_begin_offset <= offset {
                    break;
                }
                offset = pulled.next_begin_offset;
            }
        }
    }
    Ok(seen)
}

/// The offsets to read between `-b`/`-e` style timestamps, or the whole
/// queue.
async fn offsets_between(
    consumer: &PullConsumer,
    mq: &MessageQueue,
    begin: Option<i64>,
    end: Option<i64>,
) -> Result<(i64, i64)> {
    let from = match begin {
        Some(ts) => consumer.search_offset(mq, ts).await?,
        None => consumer.min_offset(mq).await?,
    };
    let to = match end {
        Some(ts) => consumer.search_offset(mq, ts).await?,
        None => consumer.max_offset(mq).await?,
    };
    Ok((from, to))
}

fn timestamp(f: &Flags, short: char) -> Result<Option<i64>> {
    f.get(short).map(parse_timestamp).transpose()
}

/// Bodies are printed as UTF-8; `-c` may name it, nothing else.
fn check_charset(f: &Flags) -> Result<()> {
    match f.get('c') {
        None => Ok(()),
        Some(c) if c.eq_ignore_ascii_case("UTF-8") || c.eq_ignore_ascii_case("UTF8") => Ok(()),
        Some(other) => bail!("charset {other} is not supported: bodies print as UTF-8"),
    }
}

const CONSUME_MESSAGE_FLAGS: &[FlagSpec] = &[
    value('t', "topic", "Topic name", true),
    value('b', "brokerName", "Broker name", false),
    value('i', "queueId", "Queue Id", false),
    value('o', "offset", "Queue Offset", false),
    value(
        'g',
        "consumerGroup",
        "Consumer Group name (default TOOLS_CONSUMER)",
        false,
    ),
    value(
        's',
        "beginTimestamp",
        "Begin timestamp (now, ms, or yyyy-MM-dd#HH:mm:ss:SSS)",
        false,
    ),
    value(
        'e',
        "endTimestamp",
        "End timestamp (now, ms, or yyyy-MM-dd#HH:mm:ss:SSS)",
        false,
    ),
    value(
        'c',
        "MessageNumber",
        "Number of messages to consume (default 128)",
        false,
    ),
    value(
        'd',
        "printBody",
        "print each message's body (default true)",
        false,
    ),
];

pub const CONSUME_MESSAGE: Command = Command {
    name: "consumeMessage",
    summary: "Consume message",
    flags: CONSUME_MESSAGE_FLAGS,
    run: |f| Box::pin(consume_message(f)),
};

async fn consume_message(f: Flags) -> Result<()> {
    let topic = f.value('t')?.to_owned();
    let limit: usize = f.number('c', 128)?;
    let begin = timestamp(&f, 's')?;
    let end = timestamp(&f, 'e')?;
    let offset: Option<i64> = f.get('o').map(|_| f.number('o', 0)).transpose()?;
    if f.get('i').is_some() && f.get('b').is_none() {
        bail!("-i (queue id) needs -b (broker name)");
    }
    if offset.is_some() && f.get('i').is_none() {
        bail!("-o (offset) needs -b and -i (one queue)");
    }
    let print_body = boolean(&f, 'd', true)?;
    let consumer = tools_consumer(&f).await?;
    let result = async {
        let queues: Vec<MessageQueue> = consumer
            .fetch_queues(&topic)
            .await?
            .into_iter()
            .filter(|mq| f.get('b').is_none_or(|b| b == mq.broker_name))
            .filter(|mq| {
                f.get('i')
                    .is_none_or(|i| i.trim() == mq.queue_id.to_string())
            })
            .collect();
        if queues.is_empty() {
            bail!("no readable queue of topic {topic} matches");
        }
        let mut left = limit;
        for mq in &queues {
            let (mut from, to) = offsets_between(&consumer, mq, begin, end).await?;
            if let Some(o) = offset {
                from = o;
            }
            let read = read_queue(&consumer, mq, "*", from, to, left, &mut |m| {
                println!("{}", one_line(m, print_body));
            })
            .await?;
            left -= read;
            if left == 0 {
                break;
            }
        }
        println!("Consume ok: {} message(s)", limit - left);
        Ok(())
    }
    .await;
    consumer.shutdown().await;
    result
}

const PRINT_MSG_FLAGS: &[FlagSpec] = &[
    value('t', "topic", "topic name", true),
    value('c', "charset", "CharsetName(eg: UTF-8)", false),
    value(
        's',
        "subExpression",
        "Subscribe Expression(eg: TagA || TagB)",
        false,
    ),
    value('b', "beginTimestamp", "Begin timestamp", false),
    value('e', "endTimestamp", "End timestamp", false),
    value('d', "printBody", "print body (default true)", false),
];

pub const PRINT_MSG: Command = Command {
    name: "printMsg",
    summary: "Print Message Detail",
    flags: PRINT_MSG_FLAGS,
    run: |f| Box::pin(print_msg(f)),
};

async fn print_msg(f: Flags) -> Result<()> {
    let topic = f.value('t')?.to_owned();
    check_charset(&f)?;
    let expression = f.get('s').unwrap_or("*").to_owned();
    let (begin, end) = (timestamp(&f, 'b')?, timestamp(&f, 'e')?);
    let print_body = boolean(&f, 'd', true)?;
    let consumer = tools_consumer(&f).await?;
    let result = async {
        for mq in consumer.fetch_queues(&topic).await? {
            let (from, to) = offsets_between(&consumer, &mq, begin, end).await?;
            println!(
                "minOffset={from}, maxOffset={to}, MessageQueue [topic={}, brokerName={}, queueId={}]",
                mq.topic, mq.broker_name, mq.queue_id
            );
            read_queue(&consumer, &mq, &expression, from, to, usize::MAX, &mut |m| {
                println!("{}", one_line(m, print_body));
            })
            .await?;
        }
        Ok(())
    }
    .await;
    consumer.shutdown().await;
    result
}

const PRINT_MSG_BY_QUEUE_FLAGS: &[FlagSpec] = &[
    value('t', "topic", "topic name", true),
    value('a', "brokerName", "broker name", true),
    value('i', "queueId", "queue id", true),
    value('c', "charset", "CharsetName(eg: UTF-8)", false),
    value(
        's',
        "subExpression",
        "Subscribe Expression(eg: TagA || TagB)",
        false,
    ),
    value('b', "beginTimestamp", "Begin timestamp", false),
    value('e', "endTimestamp", "End timestamp", false),
    value('p', "printMsg", "print msg (default false)", false),
    value('d', "printBody", "print body (default false)", false),
    value(
        'f',
        "calculate",
        "count messages by tag (default false)",
        false,
    ),
];

pub const PRINT_MSG_BY_QUEUE: Command = Command {
    name: "printMsgByQueue",
    summary: "Print Message Detail by queueId",
    flags: PRINT_MSG_BY_QUEUE_FLAGS,
    run: |f| Box::pin(print_msg_by_queue(f)),
};

async fn print_msg_by_queue(f: Flags) -> Result<()> {
    let mq = MessageQueue {
        topic: f.value('t')?.to_owned(),
        broker_name: f.value('a')?.to_owned(),
        queue_id: f.number('i', 0)?,
    };
    check_charset(&f)?;
    let expression = f.get('s').unwrap_or("*").to_owned();
    let (begin, end) = (timestamp(&f, 'b')?, timestamp(&f, 'e')?);
    let print = boolean(&f, 'p', false)?;
    let print_body = boolean(&f, 'd', false)?;
    let count_tags = boolean(&f, 'f', false)?;
    let consumer = tools_consumer(&f).await?;
    let result = async {
        let (from, to) = offsets_between(&consumer, &mq, begin, end).await?;
        let mut tags: BTreeMap<String, u64> = BTreeMap::new();
        read_queue(
            &consumer,
            &mq,
            &expression,
            from,
            to,
            usize::MAX,
            &mut |m| {
                if print {
                    println!("{}", one_line(m, print_body));
                }
                if count_tags {
                    *tags.entry(m.tags().unwrap_or("").to_owned()).or_default() += 1;
                }
            },
        )
        .await?;
        if count_tags {
            let mut counted: Vec<(String, u64)> = tags.into_iter().collect();
            counted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            for (tag, count) in counted {
                println!("Tag: {tag:<30} Count: {count}");
            }
        }
        Ok(())
    }
    .await;
    consumer.shutdown().await;
    result
}

const CHECK_RT_FLAGS: &[FlagSpec] = &[
    value('t', "topic", "topic name", true),
    value('a', "amount", "message amount (default 100)", false),
    value('s', "size", "message size (default 128 Byte)", false),
];

pub const CHECK_MSG_SEND_RT: Command = Command {
    name: "checkMsgSendRT",
    summary: "Check message send response time",
    flags: CHECK_RT_FLAGS,
    run: |f| Box::pin(check_msg_send_rt(f)),
};

async fn check_msg_send_rt(f: Flags) -> Result<()> {
    let topic = f.value('t')?.to_owned();
    let amount: u32 = f.number('a', 100)?;
    let size: usize = f.number('s', 128)?;
    if amount == 0 || size == 0 {
        bail!("-a and -s must be positive");
    }
    let producer = producer(&f, &format!("PID_SMSC_{}", now_ms())).await?;
    let result = async {
        println!(
            "{:<32}  {:<4}  {:<20}    #RT",
            "#Broker Name", "#QID", "#Send Result"
        );
        let mut total = 0.0;
        for _ in 0..amount {
            let started = Instant::now();
            let sent = producer
                .send(Message::new(topic.clone(), body_of_size(size)))
                .await;
            let rt = started.elapsed().as_secs_f64() * 1000.0;
            total += rt;
            match sent {
                Ok(sent) => println!(
                    "{:<32}  {:<4}  {:<20}    {rt:.3}",
                    sent.queue.broker_name,
                    sent.queue.queue_id,
                    status_name(sent.status)
                ),
                Err(e) => println!(
                    "{:<32}  {:<4}  {:<20}    {rt:.3}",
                    "-",
                    "-",
                    format!("FAILED: {e}")
                ),
            }
        }
        println!("Avg RT: {:.3}", total / f64::from(amount));
        Ok(())
    }
    .await;
    producer.shutdown().await;
    result
}
