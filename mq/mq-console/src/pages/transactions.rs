//! Transactions (beyond the dashboard): half messages still waiting for
//! their producer's commit or rollback, with their age and check count,
//! per producer group.
//!
//! Each master answers GET_TRANSACTION_HALF_STATUS (ours) with its pending
//! halves and how often it checked each back. A broker that does not answer
//! it is read the slow way, without check counts: a half message is pending
//! while no op message (RMQ_SYS_TRANS_OP_HALF_TOPIC, whose body is the
//! half's queue offset) records its outcome. Ops are written after the
//! halves they resolve, so the ops stored since the oldest half read are all
//! that can resolve them: only those are read.

use std::collections::{BTreeMap, HashSet};

use axum::response::Response;
use maud::html;
use mq_client::consumer::PullStatus;
use mq_client::{AdminClient, MessageExt, MessageQueue, PullConsumer};
use mq_protocol::message::property;
use mq_protocol::topic::{TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC};

use super::{all_masters, Master};
use crate::layout::{framed, page, topic_link, Nav};
use crate::time::{format_ms, now_millis};
use crate::web::{ConsoleError, Ctx};

/// The half messages looked at per broker.
const MAX_HALVES: i64 = 1000;
/// Most op messages read per broker.
const MAX_OPS: i64 = 20_000;
const PULL_BATCH: i32 = 32;

/// The messages of `mq` from `from` to `to` (bounded by the caller).
async fn read_range(
    puller: &PullConsumer,
    mq: &MessageQueue,
    from: i64,
    to: i64,
) -> Result<Vec<MessageExt>, ConsoleError> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < to {
        let pulled = puller.pull(mq, "*", offset, PULL_BATCH).await?;
        if pulled.status != PullStatus::Found || pulled.messages.is_empty() {
            break;
        }
        offset = pulled.next_begin_offset;
        out.extend(pulled.messages.into_iter().filter(|m| m.queue_offset < to));
    }
    Ok(out)
}

/// The pending half messages on one master.
async fn pending_on(ctx: &Ctx, master: &Master) -> Result<Vec<MessageExt>, ConsoleError> {
    let puller = ctx.puller().await?;
    let half = MessageQueue {
        topic: TRANS_HALF_TOPIC.to_owned(),
        broker_name: master.name.clone(),
        queue_id: 0,
    };
    let op = MessageQueue {
        topic: TRANS_OP_HALF_TOPIC.to_owned(),
        broker_name: master.name.clone(),
        queue_id: 0,
    };
    let (min, max) = match (
        puller.min_offset(&half).await,
        puller.max_offset(&half).await,
    ) {
        (Ok(min), Ok(max)) => (min, max),
        // No transaction ever reached this broker.
        _ => return Ok(Vec::new()),
    };
    let halves = read_range(&puller, &half, min.max(max - MAX_HALVES), max).await?;
    let Some(oldest) = halves.iter().map(|m| m.store_timestamp).min() else {
        return Ok(Vec::new());
    };
    let mut resolved: HashSet<i64> = HashSet::new();
    if let (Ok(op_max), Ok(op_from)) = (
        puller.max_offset(&op).await,
        puller.search_offset(&op, oldest).await,
    ) {
        let from = op_from.max(op_max - MAX_OPS);
        for m in read_range(&puller, &op, from, op_max).await? {
            resolved.extend(
                String::from_utf8_lossy(&m.body)
                    .split(',')
                    .filter_map(|o| o.trim().parse::<i64>().ok()),
            );
        }
    }
    Ok(halves
        .into_iter()
        .filter(|m| !resolved.contains(&m.queue_offset))
        .collect())
}

/// One pending half message on the page.
struct Row {
    broker: String,
    producer_group: String,
    msg_id: String,
    topic: String,
    keys: String,
    store_timestamp: i64,
    /// None when the broker does not say.
    check_times: Option<u32>,
}

/// The pending halves of one master: its own answer, or the slow way when
/// it gives none.
async fn rows_on(
    ctx: &Ctx,
    admin: &AdminClient,
    master: &Master,
) -> Result<Vec<Row>, ConsoleError> {
    match admin
        .transaction_half_status(&master.addr, MAX_HALVES as usize)
        .await
    {
        Ok(status) => Ok(status
            .pending
            .into_iter()
            .map(|h| Row {
                broker: master.name.clone(),
                producer_group: h.producer_group,
                msg_id: h.msg_id,
                topic: h.topic,
                keys: h.keys,
                store_timestamp: h.store_timestamp,
                check_times: Some(h.check_times),
            })
            .collect()),
        Err(e) => {
            tracing::debug!(broker = %master.name, error = %e, "no half status; reading the half topic");
            Ok(pending_on(ctx, master)
                .await?
                .into_iter()
                .map(|m| Row {
                    broker: master.name.clone(),
                    producer_group: m
                        .property(property::PRODUCER_GROUP)
                        .unwrap_or("")
                        .to_owned(),
                    msg_id: m.msg_id(),
                    topic: m.property(property::REAL_TOPIC).unwrap_or("").to_owned(),
                    keys: m.property(property::KEYS).unwrap_or("").to_owned(),
                    store_timestamp: m.store_timestamp,
                    check_times: m
                        .property(property::TRANSACTION_CHECK_TIMES)
                        .and_then(|c| c.parse().ok()),
                })
                .collect())
        }
    }
}

/// `GET /transactions`.
pub async fn transactions(ctx: Ctx) -> Response {
    let result = transactions_page(&ctx).await;
    framed(&ctx, Nav::Transactions, result)
}

async fn transactions_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let t = ctx.t;
    let admin = ctx.admin().await?;
    let mut by_group: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for m in all_masters(&admin).await? {
        for row in rows_on(ctx, &admin, &m).await? {
            by_group
                .entry(row.producer_group.clone())
                .or_default()
                .push(row);
        }
    }
    let now = now_millis();
    let body = html! {
        p.note { (t.pending_note) }
        @if by_group.is_empty() { p { (t.no_pending) } }
        @for (group, rows) in &by_group {
            section.card {
                h2 { (t.producer_group) " " (group) " · " (rows.len()) }
                table {
                    thead { tr { th { (t.message_id) } th { (t.topic) } th { (t.message_key) } th { (t.broker) } th { (t.store_time) } th.num { (t.age_seconds) } th.num { (t.check_times) } } }
                    tbody {
                        @for r in rows {
                            tr {
                                td.mono { (r.msg_id) }
                                td { (topic_link(&r.topic)) }
                                td { (r.keys) }
                                td { (r.broker) }
                                td { (format_ms(r.store_timestamp)) }
                                td.num { ((now - r.store_timestamp).max(0) / 1000) }
                                td.num.checks {
                                    @match r.check_times {
                                        Some(n) => (n),
                                        None => "-",
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(ctx, Nav::Transactions, t.nav_transactions, true, body))
}
