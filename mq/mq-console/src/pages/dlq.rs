//! Dead letters: each group's `%DLQ%` topic with its message count; a
//! group's dead letters, paged; resending one or a selection to the topic
//! they came from; export as JSON or CSV.

use std::fmt::Write;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use maud::html;
use mq_client::{Message, MessageExt, MessageQueue};
use mq_protocol::message::property;
use mq_protocol::name::TopicName;
use mq_protocol::topic::DLQ_GROUP_TOPIC_PREFIX;

use super::{read_queues, topic_masters};
use crate::layout::{csrf, framed, group_link, page, topic_link, Nav};
use crate::time::format_ms;
use crate::web::{enc, finish, CheckedForm, ConsoleError, Ctx};

/// Dead letters on one page.
const PAGE: usize = 50;
/// Most dead letters one export holds.
const MAX_EXPORT: usize = 10_000;
/// Most dead letters one resend takes.
const MAX_RESEND: usize = 100;
/// Characters of a body shown in the list.
const PREVIEW: usize = 80;

/// A group's DLQ queues and how many messages each holds now; none for a
/// group that never dead-lettered anything (its DLQ topic does not exist).
async fn dlq_queues(
    ctx: &Ctx,
    dlq: &TopicName,
) -> Result<Vec<(MessageQueue, i64, i64)>, ConsoleError> {
    let admin = ctx.admin().await?;
    let masters = match topic_masters(&admin, dlq.as_str()).await {
        Err(ConsoleError::Cluster(e)) if topic_does_not_exist(&e) => return Ok(Vec::new()),
        other => other?,
    };
    let mut queues = Vec::new();
    for m in masters {
        let stats = admin.topic_stats(&m.addr, dlq.as_str()).await?;
        for (mq, o) in stats.offset_table {
            queues.push((mq, o.min_offset, o.max_offset));
        }
    }
    Ok(queues)
}

fn topic_does_not_exist(error: &mq_client::ClientError) -> bool {
    matches!(error, mq_client::ClientError::NoRoute { .. })
        || error.response_code() == Some(i32::from(mq_protocol::ResponseCode::TOPIC_NOT_EXIST))
}

/// Up to `limit` dead letters after skipping `skip`, in queue order, and
/// how many there are.
async fn read(
    ctx: &Ctx,
    dlq: &TopicName,
    skip: usize,
    limit: usize,
) -> Result<(Vec<MessageExt>, usize), ConsoleError> {
    let queues = dlq_queues(ctx, dlq).await?;
    let puller = ctx.puller().await?;
    read_queues(&puller, &queues, skip, limit).await
}

fn original_topic(m: &MessageExt) -> &str {
    m.property(property::RETRY_TOPIC).unwrap_or("")
}

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut short: String = text.chars().take(PREVIEW).collect();
    if text.chars().count() > PREVIEW {
        short.push('…');
    }
    short
}

/// `GET /dlq` (every group's dead letters) or `/dlq?group=&skip=`.
pub async fn dlq(ctx: Ctx) -> Response {
    let result = dlq_page(&ctx).await;
    framed(&ctx, Nav::Dlq, result)
}

async fn dlq_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let t = ctx.t;
    if ctx.query.get("group").is_empty() {
        let admin = ctx.admin().await?;
        let topics: Vec<String> = admin
            .topic_list()
            .await?
            .topic_list
            .into_iter()
            .filter(|t| t.starts_with(DLQ_GROUP_TOPIC_PREFIX))
            .collect();
        let mut rows = Vec::new();
        for topic in topics {
            let Ok(name) = TopicName::parse_internal(&topic) else {
                continue;
            };
            let Some(group) = name.group_of_retry_or_dlq() else {
                continue;
            };
            let count: i64 = dlq_queues(ctx, &name)
                .await
                .map(|q| q.iter().map(|(_, min, max)| (max - min).max(0)).sum())
                .unwrap_or(0);
            rows.push((group, count));
        }
        let body = html! {
            table {
                thead { tr { th { (t.group) } th.num { (t.dead_letters) } th {} } }
                tbody {
                    @for (group, count) in &rows {
                        tr {
                            td { (group_link(group.as_str())) }
                            td.num { (count) }
                            td { a href=(format!("/dlq?group={}", enc(group.as_str()))) { (t.browse) } }
                        }
                    }
                    @if rows.is_empty() { tr { td.note colspan="3" { (t.none) } } }
                }
            }
        };
        return Ok(page(ctx, Nav::Dlq, t.nav_dlq, false, body));
    }
    let group = ctx.query.group("group")?;
    let skip = ctx.query.number("skip", 0..=i64::from(u32::MAX), 0)? as usize;
    let dlq = TopicName::dlq(&group);
    let (messages, total) = read(ctx, &dlq, skip, PAGE).await?;
    let base = format!("/dlq?group={}", enc(group.as_str()));
    let body = html! {
        p {
            (t.dead_letters) ": " (total) " · "
            a href=(format!("/dlq/export?group={}&format=json", enc(group.as_str()))) { "JSON" } " · "
            a href=(format!("/dlq/export?group={}&format=csv", enc(group.as_str()))) { "CSV" }
        }
        form method="post" action="/dlq/resend" {
            (csrf(ctx))
            input type="hidden" name="group" value=(group.as_str());
            table {
                thead { tr { th {} th { (t.message_id) } th { (t.original_topic) } th { (t.tag) } th { (t.message_key) } th.num { (t.reconsume_times) } th { (t.store_time) } th { (t.body) } } }
                tbody {
                    @for m in &messages {
                        tr {
                            td { input type="checkbox" name="id" value=(m.offset_msg_id()); }
                            td.mono { a href=(format!("/message?id={}", enc(&m.offset_msg_id()))) { (m.msg_id()) } }
                            td { (topic_link(original_topic(m))) }
                            td { (m.property("TAGS").unwrap_or("")) }
                            td { (m.property("KEYS").unwrap_or("")) }
                            td.num { (m.reconsume_times) }
                            td { (format_ms(m.store_timestamp)) }
                            td.mono { (preview(&m.body)) }
                        }
                    }
                    @if messages.is_empty() { tr { td.note colspan="8" { (t.none) } } }
                }
            }
            @if ctx.viewer.is_admin() && !messages.is_empty() {
                p { button type="submit" { (t.resend_selected) } }
            }
        }
        p.note {
            @if skip > 0 { a href=(format!("{base}&skip={}", skip.saturating_sub(PAGE))) { "← " (t.previous) } " " }
            (skip + 1) "–" (skip + messages.len()) " / " (total)
            @if skip + messages.len() < total { " " a href=(format!("{base}&skip={}", skip + PAGE)) { (t.next) " →" } }
        }
    };
    Ok(page(
        ctx,
        Nav::Dlq,
        &format!("{} {group}", t.nav_dlq),
        false,
        body,
    ))
}

/// `POST /dlq/resend`: the chosen dead letters of the group go back to
/// the topic they came from (as new messages with the same body, tags and
/// keys); each must be a message of this group's DLQ.
pub async fn resend(ctx: Ctx, form: CheckedForm) -> Response {
    let f = &form.fields;
    let back = format!("/dlq?group={}", enc(f.get("group")));
    let outcome = async {
        form.require_admin()?;
        let group = f.group("group")?;
        let dlq = TopicName::dlq(&group);
        let ids = f.all("id");
        if ids.is_empty() || ids.len() > MAX_RESEND {
            return Err(ConsoleError::BadRequest(format!("choose 1 to {MAX_RESEND} messages")));
        }
        let admin = ctx.admin().await?;
        let producer = ctx.producer().await?;
        let mut sent = 0;
        for id in ids {
            if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConsoleError::BadRequest(format!("{id:?} is not an offset message id")));
            }
            let m = super::view_known_message(&admin, id).await?;
            if m.topic != dlq.as_str() {
                return Err(ConsoleError::BadRequest(format!("{id} is not a dead letter of {group}")));
            }
            let topic = TopicName::parse_internal(original_topic(&m))
                .map_err(|_| ConsoleError::BadRequest(format!("{id} does not say which topic it came from")))?;
            let mut again = Message::new(topic.as_str(), Bytes::copy_from_slice(&m.body));
            if let Some(tags) = m.property("TAGS") {
                again = again.with_tags(tags);
            }
            if let Some(keys) = m.property("KEYS") {
                again = again.with_keys(keys.split(' '));
            }
            producer.send(again).await?;
            sent += 1;
        }
        tracing::info!(user = ?form.viewer.user_name(), group = %group, sent, "dead letters resent");
        Ok(format!("{}: {sent}", ctx.t.resent))
    }
    .await;
    finish(&ctx.app, &form.viewer, &back, outcome)
}

/// A CSV cell: quoted, quotes doubled, and a leading `= + - @` (a formula
/// to a spreadsheet) defused with a `'`.
fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// `GET /dlq/export?group=&format=json|csv`: at most [`MAX_EXPORT`].
pub async fn export(ctx: Ctx) -> Response {
    let result = async {
        let group = ctx.query.group("group")?;
        let csv = match ctx.query.get("format") {
            "" | "json" => false,
            "csv" => true,
            other => {
                return Err(ConsoleError::BadRequest(format!(
                    "unknown format {other:?}"
                )))
            }
        };
        let (messages, _) = read(&ctx, &TopicName::dlq(&group), 0, MAX_EXPORT).await?;
        let (body, kind, ext) = if csv {
            let mut out = String::from(
                "msgId,offsetMsgId,originalTopic,tags,keys,reconsumeTimes,storeTimestamp,body\r\n",
            );
            for m in &messages {
                let _ = write!(
                    out,
                    "{},{},{},{},{},{},{},{}\r\n",
                    csv_cell(&m.msg_id()),
                    csv_cell(&m.offset_msg_id()),
                    csv_cell(original_topic(m)),
                    csv_cell(m.property("TAGS").unwrap_or("")),
                    csv_cell(m.property("KEYS").unwrap_or("")),
                    m.reconsume_times,
                    m.store_timestamp,
                    csv_cell(&String::from_utf8_lossy(&m.body)),
                );
            }
            (out, "text/csv; charset=utf-8", "csv")
        } else {
            let rows: Vec<serde_json::Value> = messages
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "msgId": m.msg_id(),
                        "offsetMsgId": m.offset_msg_id(),
                        "originalTopic": original_topic(m),
                        "tags": m.property("TAGS"),
                        "keys": m.property("KEYS"),
                        "reconsumeTimes": m.reconsume_times,
                        "storeTimestamp": m.store_timestamp,
                        "properties": m.properties,
                        "body": String::from_utf8_lossy(&m.body),
                    })
                })
                .collect();
            (
                serde_json::to_string_pretty(&rows).unwrap_or_default(),
                "application/json",
                "json",
            )
        };
        // A checked group name has only [%|a-zA-Z0-9_-]: safe in the header.
        let disposition = format!("attachment; filename=\"dlq-{group}.{ext}\"");
        Ok((
            [
                (header::CONTENT_TYPE, kind.to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            body,
        )
            .into_response())
    }
    .await;
    framed(&ctx, Nav::Dlq, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "\"plain\"");
        assert_eq!(csv_cell("a \"b\", c"), "\"a \"\"b\"\", c\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "\"'-1\"");
    }
}
