//! Topics: the list with filters and search, create and update, a topic's
//! status, route and consumer groups with their lag, a test message,
//! resetting a group's offset by time, and delete (typed confirmation).

use std::collections::BTreeSet;

use axum::response::Response;
use bytes::Bytes;
use maud::{html, Markup};
use mq_client::{Message, TopicSpec};
use mq_protocol::route::{perm, ClusterInfo};
use mq_protocol::topic::{is_system_topic, DLQ_GROUP_TOPIC_PREFIX, RETRY_GROUP_TOPIC_PREFIX};

use super::{all_masters, chosen_masters, each, masters_of, topic_masters, Master};
use crate::layout::{csrf, delete_form, framed, group_link, page, topic_link, Nav};
use crate::time::{format_ms, parse_time};
use crate::web::{enc, finish, CheckedForm, ConsoleError, Ctx, Fields};

/// Largest test message body.
pub const MAX_TEST_BODY: usize = 128 * 1024;
/// Most queues a topic may be given here (RocketMQ's tools allow 1024).
const MAX_QUEUES: i64 = 1024;

/// Which topics the list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Retry,
    Dlq,
    System,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::Normal => "normal",
            Kind::Retry => "retry",
            Kind::Dlq => "dlq",
            Kind::System => "system",
        }
    }
}

/// What kind of topic `topic` is; cluster and broker names (the topics
/// brokers register for themselves) count as system topics.
pub fn kind_of(topic: &str, info: &ClusterInfo) -> Kind {
    if topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
        Kind::Retry
    } else if topic.starts_with(DLQ_GROUP_TOPIC_PREFIX) {
        Kind::Dlq
    } else if is_system_topic(topic)
        || info.cluster_addr_table.contains_key(topic)
        || info.broker_addr_table.contains_key(topic)
    {
        Kind::System
    } else {
        Kind::Normal
    }
}

fn kind_label(ctx: &Ctx, kind: Kind) -> &'static str {
    match kind {
        Kind::Normal => ctx.t.filter_normal,
        Kind::Retry => ctx.t.filter_retry,
        Kind::Dlq => ctx.t.filter_dlq,
        Kind::System => ctx.t.filter_system,
    }
}

/// `GET /topics?filter=normal|retry|dlq|system|all&q=`.
pub async fn list(ctx: Ctx) -> Response {
    let result = list_page(&ctx).await;
    framed(&ctx, Nav::Topics, result)
}

async fn list_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let t = ctx.t;
    let filter = match ctx.query.get("filter") {
        "" | "normal" => Some(Kind::Normal),
        "retry" => Some(Kind::Retry),
        "dlq" => Some(Kind::Dlq),
        "system" => Some(Kind::System),
        "all" => None,
        other => {
            return Err(ConsoleError::BadRequest(format!(
                "unknown filter {other:?}"
            )))
        }
    };
    let search = ctx.query.line("q")?.to_lowercase();
    let admin = ctx.admin().await?;
    let info = admin.cluster_info().await?;
    let topics = admin.topic_list().await?.topic_list;
    let shown: Vec<(&String, Kind)> = topics
        .iter()
        .map(|topic| (topic, kind_of(topic, &info)))
        .filter(|(_, kind)| filter.is_none_or(|f| f == *kind))
        .filter(|(topic, _)| search.is_empty() || topic.to_lowercase().contains(&search))
        .collect();
    let filter_code = filter.map_or("all", Kind::code);
    let body = html! {
        div.filters {
            @for (code, label) in [("normal", t.filter_normal), ("retry", t.filter_retry), ("dlq", t.filter_dlq), ("system", t.filter_system), ("all", t.filter_all)] {
                a class=@if code == filter_code { "active" } href=(format!("/topics?filter={code}&q={}", enc(&search))) { (label) }
            }
            form.inline method="get" action="/topics" {
                input type="hidden" name="filter" value=(filter_code);
                input type="text" name="q" value=(search) placeholder=(t.search);
                button type="submit" { (t.search) }
            }
            span.note { (shown.len()) " / " (topics.len()) }
        }
        table {
            thead { tr { th { (t.topic) } th { (t.kind) } } }
            tbody {
                @for (topic, kind) in &shown {
                    tr { td { (topic_link(topic)) } td { span.badge { (kind_label(ctx, *kind)) } } }
                }
                @if shown.is_empty() { tr { td.note colspan="2" { (t.none) } } }
            }
        }
        @if ctx.viewer.is_admin() {
            section.card {
                h2 { (t.create_topic) }
                (topic_form(ctx, &info, None))
            }
        }
    };
    Ok(page(ctx, Nav::Topics, t.topics, false, body))
}

/// The create/update form; `existing` fills it from a topic's route.
fn topic_form(
    ctx: &Ctx,
    info: &ClusterInfo,
    existing: Option<(&str, i32, i32, i32, &BTreeSet<String>)>,
) -> Markup {
    let t = ctx.t;
    let masters = masters_of(info);
    let (name, read, write, perm, on) = match existing {
        Some((name, r, w, p, on)) => (name, r, w, p, Some(on)),
        None => ("", 8, 8, perm::READ | perm::WRITE, None),
    };
    html! {
        form.grid method="post" action="/topics" {
            (csrf(ctx))
            label { (t.topic)
                @if existing.is_some() {
                    input type="hidden" name="existing" value="true";
                    input type="text" name="topic" value=(name) readonly;
                } @else {
                    input type="text" name="topic" required maxlength="127" pattern="[%|a-zA-Z0-9_-]+";
                }
            }
            label { (t.read_queues) input type="number" name="read" min="1" max=(MAX_QUEUES) value=(read); }
            label { (t.write_queues) input type="number" name="write" min="1" max=(MAX_QUEUES) value=(write); }
            label { (t.perm)
                select name="perm" {
                    @for (value, label) in [(6, "RW (6)"), (4, "R (4)"), (2, "W (2)")] {
                        option value=(value) selected[value == perm] { (label) }
                    }
                }
            }
            label.check { input type="checkbox" name="order" value="true"; (t.order) }
            fieldset {
                legend { (t.target) }
                @for m in &masters {
                    label.check { input type="checkbox" name="broker" value=(m.name) checked[on.is_none_or(|on| on.contains(&m.name))]; (m.name) }
                }
            }
            button type="submit" { (t.save) }
        }
    }
}

/// `POST /topics`: create or update a topic on the chosen masters.
pub async fn upsert(ctx: Ctx, form: CheckedForm) -> Response {
    let f = &form.fields;
    let topic = f.get("topic").to_owned();
    let existed = f.flag("existing");
    let back = if existed {
        format!("/topic?topic={}", enc(&topic))
    } else {
        "/topics".to_owned()
    };
    let outcome = async {
        form.require_admin()?;
        let topic = f.topic("topic")?;
        let spec = topic_spec(f, topic.as_str())?;
        let admin = ctx.admin().await?;
        let info = admin.cluster_info().await?;
        let masters = chosen_masters(&info, &f.all("broker"))?;
        for m in &masters {
            admin.create_topic(&m.addr, &spec).await?;
        }
        tracing::info!(user = ?form.viewer.user_name(), topic = %topic, "topic created or updated");
        Ok(format!(
            "{} {topic}: {} {}, {} {}, {} {}",
            ctx.t.done,
            ctx.t.read_queues,
            spec.read_queue_nums,
            ctx.t.write_queues,
            spec.write_queue_nums,
            ctx.t.perm,
            perm::to_string(spec.perm)
        ))
    }
    .await;
    let back = match (&outcome, existed) {
        (Ok(_), false) => format!("/topic?topic={}", enc(&topic)),
        _ => back,
    };
    finish(&ctx.app, &form.viewer, &back, outcome)
}

fn topic_spec(f: &Fields, topic: &str) -> Result<TopicSpec, ConsoleError> {
    let read = f.number("read", 1..=MAX_QUEUES, 8)? as i32;
    let write = f.number("write", 1..=MAX_QUEUES, 8)? as i32;
    let perm = f.number("perm", 2..=6, 6)? as i32;
    if ![2, 4, 6].contains(&perm) {
        return Err(ConsoleError::BadRequest(
            "perm must be 2 (W), 4 (R) or 6 (RW)".into(),
        ));
    }
    let mut spec = TopicSpec::new(topic).with_queues(read, write);
    spec.perm = perm;
    spec.order = f.flag("order");
    Ok(spec)
}

/// A group consuming the topic and its progress on it.
struct GroupLag {
    group: String,
    lag: i64,
    tps: f64,
}

/// `GET /topic?topic=`.
pub async fn detail(ctx: Ctx) -> Response {
    let result = detail_page(&ctx).await;
    framed(&ctx, Nav::Topics, result)
}

async fn detail_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let t = ctx.t;
    let topic = ctx.query.any_topic("topic")?;
    let admin = ctx.admin().await?;
    let info = admin.cluster_info().await?;
    let route = admin.topic_route(topic.as_str()).await?;
    let masters: Vec<Master> = route
        .broker_datas
        .iter()
        .filter_map(|b| {
            Some(Master {
                name: b.broker_name.clone(),
                addr: b.master_addr()?.to_owned(),
            })
        })
        .collect();
    let topic_name = topic.as_str().to_owned();
    let stats = each(masters.clone(), |m| {
        let (admin, topic) = (admin.clone(), topic_name.clone());
        async move { (m.name.clone(), admin.topic_stats(&m.addr, &topic).await) }
    })
    .await;
    let mut groups: BTreeSet<String> = BTreeSet::new();
    for m in &masters {
        if let Ok(list) = admin.topic_consumed_by(&m.addr, topic.as_str()).await {
            groups.extend(list.group_list);
        }
    }
    let lags: Vec<GroupLag> = each(groups.iter().cloned().collect(), |group| {
        let (admin, topic, masters) = (admin.clone(), topic_name.clone(), masters.clone());
        async move {
            let (mut lag, mut tps) = (0, 0.0);
            for m in &masters {
                if let Ok(stats) = admin.consume_stats(&m.addr, &group, Some(&topic)).await {
                    lag += stats.total_diff();
                    tps += stats.consume_tps;
                }
            }
            GroupLag { group, lag, tps }
        }
    })
    .await;
    let queue = route.queue_datas.first();
    let on: BTreeSet<String> = route
        .queue_datas
        .iter()
        .map(|q| q.broker_name.clone())
        .collect();
    let admin_view = ctx.viewer.is_admin();
    let kind = kind_of(topic.as_str(), &info);
    let body = html! {
        p { span.badge { (kind_label(ctx, kind)) } " "
            a href=(format!("/messages?topic={}", enc(topic.as_str()))) { (t.nav_messages) } " · "
            a href=(format!("/producers?topic={}", enc(topic.as_str()))) { (t.nav_producers) }
        }
        section.card {
            h2 { (t.status) }
            table {
                thead { tr { th { (t.broker) } th.num { (t.queue) } th.num { (t.min_offset) } th.num { (t.max_offset) } th { (t.last_update) } } }
                tbody {
                    @for (broker, result) in &stats {
                        @match result {
                            Ok(table) => {
                                @for (mq, o) in &table.offset_table {
                                    tr { td { (broker) } td.num { (mq.queue_id) } td.num { (o.min_offset) } td.num { (o.max_offset) } td { (format_ms(o.last_update_timestamp)) } }
                                }
                            }
                            Err(e) => { tr { td { (broker) } td colspan="4" { span.badge.bad { (e.to_string()) } } } }
                        }
                    }
                }
            }
            p.note { (t.all_times_utc) }
        }
        div.cols {
            section.card {
                h2 { (t.route) }
                table {
                    thead { tr { th { (t.broker) } th { (t.cluster) } th { (t.address) } th.num { (t.read_queues) } th.num { (t.write_queues) } th { (t.perm) } } }
                    tbody {
                        @for q in &route.queue_datas {
                            @let b = route.broker_datas.iter().find(|b| b.broker_name == q.broker_name);
                            tr {
                                td { (q.broker_name) }
                                td { (b.map_or("", |b| b.cluster.as_str())) }
                                td { @if let Some(b) = b { @for (id, a) in &b.broker_addrs { div { (id) ": " (a) } } } }
                                td.num { (q.read_queue_nums) } td.num { (q.write_queue_nums) } td { code { (perm::to_string(q.perm)) } }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { (t.consumer_groups) }
                @if lags.is_empty() { p.note { (t.no_groups) } } @else {
                    table {
                        thead { tr { th { (t.group) } th.num { (t.lag) } th.num { (t.tps) } } }
                        tbody { @for g in &lags { tr { td { (group_link(&g.group)) } td.num { (g.lag) } td.num { (format!("{:.2}", g.tps)) } } } }
                    }
                }
            }
        }
        @if admin_view {
            div.cols {
                section.card {
                    h2 { (t.send_message) }
                    form.stack method="post" action="/topic/send" {
                        (csrf(ctx))
                        input type="hidden" name="topic" value=(topic.as_str());
                        label { (t.tag) input type="text" name="tag" maxlength="255"; }
                        label { (t.message_key) input type="text" name="key" maxlength="255"; }
                        label { (t.body) textarea name="body" required maxlength=(MAX_TEST_BODY) {} }
                        div { button type="submit" { (t.send) } }
                    }
                }
                section.card {
                    h2 { (t.reset_offset) }
                    form.stack method="post" action="/topic/reset" {
                        (csrf(ctx))
                        input type="hidden" name="topic" value=(topic.as_str());
                        label { (t.group)
                            select name="group" required {
                                @for g in &groups { option value=(g) { (g) } }
                            }
                        }
                        label { (t.reset_time) input type="text" name="time" required placeholder="2024-05-01 00:00:00"; }
                        label.check { input type="checkbox" name="force" value="true" checked; (t.force) }
                        div { button type="submit" { (t.reset) } }
                    }
                }
            }
            @if let Some(q) = queue {
                section.card {
                    h2 { (t.config) }
                    (topic_form(ctx, &info, Some((topic.as_str(), q.read_queue_nums, q.write_queue_nums, q.perm, &on))))
                }
            }
            section.card {
                h2 { (t.delete_topic) }
                (delete_form(ctx, "/topic/delete", "topic", topic.as_str(), t.delete))
            }
        } @else {
            p.note { (t.viewer_only) }
        }
    };
    Ok(page(
        ctx,
        Nav::Topics,
        &format!("{} {}", t.topic, topic),
        false,
        body,
    ))
}

/// `POST /topic/delete`: only when the name was typed again.
pub async fn delete(ctx: Ctx, form: CheckedForm) -> Response {
    let f = &form.fields;
    let raw = f.get("topic").to_owned();
    let outcome = async {
        form.require_admin()?;
        let topic = f.any_topic("topic")?;
        if f.get("confirm") != topic.as_str() {
            return Err(ConsoleError::BadRequest(ctx.t.confirm_mismatch.to_owned()));
        }
        let admin = ctx.admin().await?;
        let masters = match topic_masters(&admin, topic.as_str()).await {
            Ok(m) if !m.is_empty() => m,
            _ => all_masters(&admin).await?,
        };
        let addrs: Vec<String> = masters.into_iter().map(|m| m.addr).collect();
        admin.delete_topic(topic.as_str(), &addrs).await?;
        tracing::info!(user = ?form.viewer.user_name(), topic = %topic, "topic deleted");
        Ok(format!("{} {topic}: {}", ctx.t.done, ctx.t.delete))
    }
    .await;
    let back = match outcome {
        Ok(_) => "/topics".to_owned(),
        Err(_) => format!("/topic?topic={}", enc(&raw)),
    };
    finish(&ctx.app, &form.viewer, &back, outcome)
}

/// `POST /topic/send`: a test message with tag, key and body.
pub async fn send(ctx: Ctx, form: CheckedForm) -> Response {
    let f = &form.fields;
    let back = format!("/topic?topic={}", enc(f.get("topic")));
    let outcome = async {
        form.require_admin()?;
        let topic = f.topic("topic")?;
        let tag = f.line("tag")?;
        let key = f.line("key")?;
        let body =
            f.0.iter()
                .find(|(k, _)| k == "body")
                .map_or("", |(_, v)| v.as_str());
        if body.is_empty() || body.len() > MAX_TEST_BODY {
            return Err(ConsoleError::BadRequest(format!(
                "the body must have 1 to {MAX_TEST_BODY} bytes"
            )));
        }
        let mut message = Message::new(topic.as_str(), Bytes::from(body.to_owned()));
        if !tag.is_empty() {
            message = message.with_tags(tag);
        }
        if !key.is_empty() {
            message = message.with_keys(key.split_whitespace());
        }
        let producer = ctx.producer().await?;
        let sent = producer.send(message).await?;
        Ok(format!(
            "{}: {:?}, {} {}, offsetMsgId {}, {} {}@{}",
            ctx.t.sent,
            sent.status,
            ctx.t.message_id,
            sent.msg_id,
            sent.offset_msg_id,
            ctx.t.queue,
            sent.queue.queue_id,
            sent.queue.broker_name
        ))
    }
    .await;
    finish(&ctx.app, &form.viewer, &back, outcome)
}

/// Resets `group`'s offsets of `topic` on every master of the topic to
/// `time`; returns how many queues moved.
pub async fn reset_group_offset(ctx: &Ctx, f: &Fields) -> Result<String, ConsoleError> {
    let topic = f.any_topic("topic")?;
    let group = f.group("group")?;
    let time = parse_time(f.line("time")?).ok_or_else(|| {
        ConsoleError::BadRequest(
            "the time must be now, yyyy-mm-dd hh:mm[:ss] (UTC) or milliseconds".into(),
        )
    })?;
    let admin = ctx.admin().await?;
    let mut moved = 0;
    for m in topic_masters(&admin, topic.as_str()).await? {
        let body = admin
            .reset_offset_by_time(
                &m.addr,
                group.as_str(),
                topic.as_str(),
                time,
                f.flag("force"),
            )
            .await?;
        moved += body.offset_table.len();
    }
    tracing::info!(group = %group, topic = %topic, time, "offset reset");
    Ok(format!(
        "{} {group} / {topic} → {}: {moved} {}",
        ctx.t.reset,
        format_ms(time),
        ctx.t.queue
    ))
}

/// `POST /topic/reset`.
pub async fn reset_offset(ctx: Ctx, form: CheckedForm) -> Response {
    let back = format!("/topic?topic={}", enc(form.fields.get("topic")));
    let outcome = async {
        form.require_admin()?;
        reset_group_offset(&ctx, &form.fields).await
    }
    .await;
    finish(&ctx.app, &form.viewer, &back, outcome)
}
