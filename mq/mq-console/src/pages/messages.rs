//! Messages: by topic and key, by topic and message id (the client's
//! unique id or the broker's offset id), and a message's detail with its
//! consume state per subscribed group, and resending it to one group
//! (CONSUME_MESSAGE_DIRECTLY: a live member's listener consumes it again).

use std::collections::BTreeSet;
use std::fmt::Write;

use axum::response::Response;
use maud::{html, Markup};
use mq_client::{MessageExt, MessageQueue};
use mq_protocol::topic::{dlq_topic, retry_topic};

use super::read_queues;
use crate::layout::{csrf, framed, group_link, page, topic_link, Nav};
use crate::time::{format_ms, now_millis, parse_time};
use crate::web::{enc, finish, CheckedForm, ConsoleError, Ctx};

/// Messages on one page of a time range.
const TIME_PAGE: usize = 50;
/// Most messages a key query returns per broker.
const MAX_KEY_RESULTS: i32 = 64;
/// Most body bytes shown as text.
const MAX_TEXT_BODY: usize = 64 * 1024;
/// Most body bytes shown as hex.
const MAX_HEX_BODY: usize = 4 * 1024;

/// An offset message id: store host and commit log offset, 32 hex digits.
fn is_offset_msg_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `GET /messages?topic=&key=`, `?topic=&id=` or `?topic=&begin=&end=&skip=`.
pub async fn search(ctx: Ctx) -> Response {
    let result = search_page(&ctx).await;
    framed(&ctx, Nav::Messages, result)
}

async fn search_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let t = ctx.t;
    let topic_raw = ctx.query.line("topic")?.to_owned();
    let key = ctx.query.line("key")?.to_owned();
    let id = ctx.query.line("id")?.to_owned();
    let begin_raw = ctx.query.line("begin")?.to_owned();
    let end_raw = ctx.query.line("end")?.to_owned();
    let forms = html! {
        div.cols {
            section.card {
                h2 { (t.by_key) }
                form.inline method="get" action="/messages" {
                    input type="text" name="topic" value=(topic_raw) placeholder=(t.topic) required;
                    input type="text" name="key" value=(key) placeholder=(t.message_key) required;
                    button type="submit" { (t.query) }
                }
            }
            section.card {
                h2 { (t.by_time) }
                form.inline method="get" action="/messages" {
                    input type="text" name="topic" value=(topic_raw) placeholder=(t.topic) required;
                    input type="text" name="begin" value=(begin_raw) placeholder="2024-05-01 00:00" required size="16";
                    input type="text" name="end" value=(end_raw) placeholder="now" required size="16";
                    button type="submit" { (t.query) }
                }
            }
            section.card {
                h2 { (t.by_id) }
                form.inline method="get" action="/messages" {
                    input type="text" name="topic" value=(topic_raw) placeholder=(t.topic);
                    input type="text" name="id" value=(id) placeholder=(t.message_id) required size="36";
                    button type="submit" { (t.query) }
                }
            }
        }
    };
    let found: Option<Vec<MessageExt>> = if !key.is_empty() {
        let topic = ctx.query.any_topic("topic")?;
        let admin = ctx.admin().await?;
        Some(
            admin
                .query_message_by_key(
                    topic.as_str(),
                    &key,
                    MAX_KEY_RESULTS,
                    0,
                    now_millis() + 60_000,
                )
                .await?,
        )
    } else if !id.is_empty() {
        Some(find_by_id(ctx, &topic_raw, &id).await?)
    } else if !begin_raw.is_empty() || !end_raw.is_empty() {
        let (found, total, skip) = by_time(ctx).await?;
        let base = format!(
            "/messages?topic={}&begin={}&end={}",
            enc(&topic_raw),
            enc(&begin_raw),
            enc(&end_raw)
        );
        let pager = html! {
            p.note {
                @if skip > 0 { a href=(format!("{base}&skip={}", skip.saturating_sub(TIME_PAGE))) { "← " (t.previous) } " " }
                (if found.is_empty() { skip } else { skip + 1 }) "–" (skip + found.len()) " / " (total)
                @if skip + found.len() < total { " " a href=(format!("{base}&skip={}", skip + TIME_PAGE)) { (t.next) " →" } }
            }
        };
        let body = html! {
            (forms)
            @if found.is_empty() { p.note { (t.no_messages) } } @else { (message_table(ctx, &found)) }
            (pager)
        };
        return Ok(page(ctx, Nav::Messages, t.nav_messages, false, body));
    } else {
        None
    };
    let body = html! {
        (forms)
        @if let Some(found) = &found {
            @if found.is_empty() { p.note { (t.no_messages) } } @else {
                (message_table(ctx, found))
            }
        }
    };
    Ok(page(ctx, Nav::Messages, t.nav_messages, false, body))
}

/// Messages of a topic stored between `begin` and `end`, a page at a time:
/// the page, how many there are, and how many were skipped.
async fn by_time(ctx: &Ctx) -> Result<(Vec<MessageExt>, usize, usize), ConsoleError> {
    let topic = ctx.query.any_topic("topic")?;
    let bad = || {
        ConsoleError::BadRequest(
            "begin and end must be now, yyyy-mm-dd hh:mm[:ss] (UTC) or milliseconds".into(),
        )
    };
    let begin = parse_time(ctx.query.line("begin")?).ok_or_else(bad)?;
    let end = parse_time(ctx.query.line("end")?).ok_or_else(bad)?;
    if end <= begin {
        return Err(ConsoleError::BadRequest("end must be after begin".into()));
    }
    let skip = ctx.query.number("skip", 0..=i64::from(u32::MAX), 0)? as usize;
    let admin = ctx.admin().await?;
    let puller = ctx.puller().await?;
    let mut ranges = Vec::new();
    for mq in admin.topic_queues(topic.as_str()).await? {
        let from = puller.search_offset(&mq, begin).await?;
        let max = puller.max_offset(&mq).await?;
        // The first offset stored at or after `end`. With nothing stored
        // that late the broker names the last message, which is in range.
        let mut to = puller.search_offset(&mq, end).await?.min(max);
        if to < max {
            let last = puller.pull(&mq, "*", to, 1).await?;
            if last
                .messages
                .first()
                .is_some_and(|m| m.queue_offset == to && m.store_timestamp < end)
            {
                to += 1;
            }
        }
        ranges.push((mq, from, to.max(from)));
    }
    let (mut found, total) = read_queues(&puller, &ranges, skip, TIME_PAGE).await?;
    found.retain(|m| m.store_timestamp >= begin && m.store_timestamp < end);
    found.sort_by_key(|m| m.store_timestamp);
    Ok((found, total, skip))
}

/// The messages a message id names: the client's unique id within
/// `topic`, else (32 hex digits) the broker's offset id.
async fn find_by_id(ctx: &Ctx, topic: &str, id: &str) -> Result<Vec<MessageExt>, ConsoleError> {
    let admin = ctx.admin().await?;
    if !topic.is_empty() {
        let topic = ctx.query.any_topic("topic")?;
        let found = admin
            .query_message_by_unique_key(topic.as_str(), id)
            .await?;
        if !found.is_empty() || !is_offset_msg_id(id) {
            return Ok(found);
        }
    }
    if !is_offset_msg_id(id) {
        return Err(ConsoleError::BadRequest(
            "without a topic, give the offset message id (32 hex digits)".into(),
        ));
    }
    Ok(vec![super::view_known_message(&admin, id).await?])
}

fn message_table(ctx: &Ctx, found: &[MessageExt]) -> Markup {
    let t = ctx.t;
    html! {
        table {
            thead { tr { th { (t.message_id) } th { (t.topic) } th { (t.tag) } th { (t.message_key) } th { (t.queue) } th { (t.store_time) } } }
            tbody {
                @for m in found {
                    tr {
                        td.mono { a href=(format!("/message?id={}", enc(&m.offset_msg_id()))) { (m.msg_id()) } }
                        td { (topic_link(&m.topic)) }
                        td { (m.property("TAGS").unwrap_or("")) }
                        td { (m.property("KEYS").unwrap_or("")) }
                        td.num { (m.queue_id) " @ " (m.queue_offset) }
                        td { (format_ms(m.store_timestamp)) }
                    }
                }
            }
        }
        p.note { (t.all_times_utc) }
    }
}

/// How a subscribed group stands with one message: consumed (its offset
/// passed the message; none: no offset yet), how often it went to the
/// group's retry topic, and whether it is a dead letter.
pub struct GroupState {
    pub group: String,
    pub consumed: Option<bool>,
    pub retried: usize,
    pub dead: bool,
}

/// The broker that stored `msg` and how each group that consumes its
/// topic there stands with it.
pub async fn consume_states(
    admin: &mq_client::AdminClient,
    msg: &MessageExt,
) -> (Option<mq_protocol::route::BrokerData>, Vec<GroupState>) {
    // The broker that stored it, and the groups that consume its topic there.
    let route = admin.topic_route(&msg.topic).await.ok();
    let store = msg.store_host.to_string();
    let broker = route.as_ref().and_then(|r| {
        r.broker_datas
            .iter()
            .find(|b| b.broker_addrs.values().any(|a| *a == store))
            .cloned()
    });
    let mut states = Vec::new();
    if let Some(b) = &broker {
        let addr = b.master_addr().unwrap_or(&store).to_owned();
        let groups: BTreeSet<String> = admin
            .topic_consumed_by(&addr, &msg.topic)
            .await
            .map(|g| g.group_list)
            .unwrap_or_default();
        let mq = MessageQueue {
            topic: msg.topic.clone(),
            broker_name: b.broker_name.clone(),
            queue_id: msg.queue_id,
        };
        let uniq = msg.msg_id();
        for group in groups {
            let consumed = admin
                .consumer_offset(&group, &mq)
                .await
                .ok()
                .flatten()
                .map(|offset| offset > msg.queue_offset);
            let retried = admin
                .query_message_by_unique_key(&retry_topic(&group), &uniq)
                .await
                .map_or(0, |v| v.len());
            let dead = admin
                .query_message_by_unique_key(&dlq_topic(&group), &uniq)
                .await
                .is_ok_and(|v| !v.is_empty());
            states.push(GroupState {
                group,
                consumed,
                retried,
                dead,
            });
        }
    }
    (broker, states)
}

/// The consume state of each group as badges.
pub fn state_badges(ctx: &Ctx, s: &GroupState) -> Markup {
    let t = ctx.t;
    html! {
        @match s.consumed {
            Some(true) => { span.badge.ok { (t.consumed) } }
            Some(false) => { span.badge.warn { (t.not_consumed) } }
            None => { span.badge { (t.none) } }
        }
        @if s.retried > 0 { " " span.badge.warn { (t.filter_retry) " × " (s.retried) } }
        @if s.dead { " " span.badge.bad { (t.filter_dlq) } }
    }
}

/// `GET /message?id=<offset message id>`.
pub async fn detail(ctx: Ctx) -> Response {
    let result = detail_page(&ctx).await;
    framed(&ctx, Nav::Messages, result)
}

async fn detail_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let t = ctx.t;
    let id = ctx.query.line("id")?;
    if !is_offset_msg_id(id) {
        return Err(ConsoleError::BadRequest(
            "the message id must be an offset message id (32 hex digits)".into(),
        ));
    }
    let admin = ctx.admin().await?;
    let msg = super::view_known_message(&admin, id).await?;
    let (broker, states) = consume_states(&admin, &msg).await;
    let shown_text = &msg.body[..msg.body.len().min(MAX_TEXT_BODY)];
    let shown_hex = &msg.body[..msg.body.len().min(MAX_HEX_BODY)];
    let mut hex = String::with_capacity(shown_hex.len() * 3);
    for (i, b) in shown_hex.iter().enumerate() {
        let sep = if i % 32 == 31 { '\n' } else { ' ' };
        let _ = write!(hex, "{b:02x}{sep}");
    }
    let body = html! {
        div.cols {
            section.card {
                dl.kv {
                    dt { (t.topic) } dd { (topic_link(&msg.topic)) }
                    dt { (t.message_id) } dd { (msg.msg_id()) }
                    dt { "offsetMsgId" } dd { (msg.offset_msg_id()) }
                    dt { (t.tag) } dd { (msg.property("TAGS").unwrap_or("")) }
                    dt { (t.message_key) } dd { (msg.property("KEYS").unwrap_or("")) }
                    dt { (t.queue) } dd { (broker.as_ref().map_or("?", |b| b.broker_name.as_str())) " / " (msg.queue_id) " @ " (msg.queue_offset) }
                    dt { (t.born_time) } dd { (format_ms(msg.born_timestamp)) }
                    dt { (t.born_host) } dd { (msg.born_host) }
                    dt { (t.store_time) } dd { (format_ms(msg.store_timestamp)) }
                    dt { (t.store_host) } dd { (msg.store_host) }
                    dt { (t.reconsume_times) } dd { (msg.reconsume_times) }
                }
            }
            section.card {
                h2 { (t.properties) }
                table {
                    thead { tr { th { (t.key) } th { (t.value) } } }
                    tbody { @for (k, v) in &msg.properties { tr { td { code { (k) } } td.mono { (v) } } } }
                }
            }
        }
        section.card {
            h2 { (t.consume_state) }
            @if states.is_empty() { p.note { (t.no_groups) } } @else {
                table {
                    thead { tr { th { (t.group) } th { (t.status) } th { (t.action) } } }
                    tbody {
                        @for s in &states {
                            tr {
                                td { (group_link(&s.group)) }
                                td { (state_badges(ctx, s)) }
                                td { (resend_form(ctx, id, &s.group)) }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { (t.body_text) }
            @if msg.body.len() > MAX_TEXT_BODY { p.note { (t.truncated) " " (MAX_TEXT_BODY) " " (t.bytes) } }
            pre { (String::from_utf8_lossy(shown_text)) }
            h2 { (t.body_hex) }
            @if msg.body.len() > MAX_HEX_BODY { p.note { (t.truncated) " " (MAX_HEX_BODY) " " (t.bytes) } }
            pre { (hex) }
        }
    };
    Ok(page(
        ctx,
        Nav::Messages,
        &format!("{} {}", t.message_id, msg.msg_id()),
        false,
        body,
    ))
}

/// The resend-to-one-group form of a message's consume state row: a
/// confirmation box that must be ticked, then the button.
fn resend_form(ctx: &Ctx, id: &str, group: &str) -> Markup {
    let t = ctx.t;
    html! {
        form.inline.resend method="post" action="/message/resend" {
            (csrf(ctx))
            input type="hidden" name="id" value=(id);
            input type="hidden" name="group" value=(group);
            label.confirm {
                input type="checkbox" name="confirm" value="yes" required;
                " " (t.confirm_resend)
            }
            button type="submit" { (t.resend_to_group) }
        }
    }
}

/// `POST /message/resend` (`id`, `group`, `confirm`, optional `client`):
/// asks the broker that stored the message to hand it to one live member
/// of the group (the named client, else the first the broker lists), whose
/// listener consumes it again; the flash says what the listener decided.
pub async fn resend(ctx: Ctx, form: CheckedForm) -> Response {
    let f = &form.fields;
    let id = f.get("id");
    let back = if is_offset_msg_id(id) {
        format!("/message?id={}", enc(id))
    } else {
        "/messages".to_owned()
    };
    let outcome = async {
        form.require_admin()?;
        let group = f.group("group")?;
        if !is_offset_msg_id(id) {
            return Err(ConsoleError::BadRequest(
                "the message id must be an offset message id (32 hex digits)".into(),
            ));
        }
        if !f.flag("confirm") {
            return Err(ConsoleError::BadRequest(ctx.t.must_confirm.to_owned()));
        }
        let admin = ctx.admin().await?;
        let msg = super::view_known_message(&admin, id).await?;
        let store = msg.store_host.to_string();
        let info = admin.cluster_info().await?;
        let addr = info
            .broker_addr_table
            .values()
            .find(|b| b.broker_addrs.values().any(|a| *a == store))
            .and_then(|b| b.master_addr())
            .unwrap_or(&store)
            .to_owned();
        let clients: Vec<String> = admin
            .consumer_connection(&addr, group.as_str())
            .await
            .map(|c| c.connection_set.into_iter().map(|c| c.client_id).collect())
            .unwrap_or_default();
        let wanted = f.line("client")?;
        let client = if wanted.is_empty() {
            clients.first()
        } else {
            clients.iter().find(|c| *c == wanted)
        };
        let Some(client) = client else {
            return Err(ConsoleError::BadRequest(format!(
                "{} {group}",
                ctx.t.no_live_client
            )));
        };
        let result = admin
            .consume_message_directly(&addr, group.as_str(), Some(client), &msg.topic, id)
            .await?;
        let verdict = result
            .consume_result
            .map_or("CR_RETURN_NULL".to_owned(), |r| format!("{r:?}"));
        tracing::info!(user = ?form.viewer.user_name(), group = %group, client, msg_id = id, verdict, "message resent to a group");
        let text = format!(
            "{} ({group}, {client}): {verdict}, {} {} ms{}",
            ctx.t.consumed_directly,
            ctx.t.spent,
            result.spent_time_mills,
            result
                .remark
                .as_deref()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default()
        );
        if result.consume_result == Some(mq_protocol::admin_body::CMResult::CR_SUCCESS) {
            Ok(text)
        } else {
            Err(ConsoleError::BadRequest(text))
        }
    }
    .await;
    finish(&ctx.app, &form.viewer, &back, outcome)
}
