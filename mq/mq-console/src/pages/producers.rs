//! Producers: the connections of a producer group that sends to a topic.

use axum::response::Response;
use maud::html;

use super::topic_masters;
use crate::layout::{framed, page, Nav};
use crate::web::{ConsoleError, Ctx};

/// The query form and, for a topic and group, their connections.
async fn body(ctx: &Ctx) -> Result<maud::Markup, ConsoleError> {
    let t = ctx.t;
    let topic_raw = ctx.query.line("topic")?.to_owned();
    let group_raw = ctx.query.line("group")?.to_owned();
    let form = html! {
        form.inline method="get" action="/producers" {
            label { (t.topic) " " input type="text" name="topic" value=(topic_raw) required; }
            label { (t.producer_group) " " input type="text" name="group" value=(group_raw) required; }
            button type="submit" { (t.query) }
        }
    };
    if topic_raw.is_empty() || group_raw.is_empty() {
        return Ok(form);
    }
    let topic = ctx.query.any_topic("topic")?;
    let group = ctx.query.group("group")?;
    let admin = ctx.admin().await?;
    let mut rows = Vec::new();
    for m in topic_masters(&admin, topic.as_str()).await? {
        match admin.producer_connection(&m.addr, group.as_str()).await {
            Ok(c) => rows.extend(c.connection_set.into_iter().map(|c| (m.name.clone(), c))),
            Err(e) => tracing::debug!(error = %e, broker = %m.name, "no producer connection"),
        }
    }
    Ok(html! {
        (form)
        section.card {
            h2 { (t.connections) }
            @if rows.is_empty() { p.note { (t.none) } } @else {
                table {
                    thead { tr { th { (t.broker) } th { (t.client_id) } th { (t.client_addr) } th { (t.language) } th { (t.version) } } }
                    tbody { @for (broker, c) in &rows { tr { td { (broker) } td.mono { (c.client_id) } td { (c.client_addr) } td { (c.language) } td { (c.version) } } } }
                }
            }
        }
    })
}

/// `GET /producers`.
pub async fn connections(ctx: Ctx) -> Response {
    let result = connections_page(&ctx).await;
    framed(&ctx, Nav::Producers, result)
}

async fn connections_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let body = body(ctx).await?;
    Ok(page(ctx, Nav::Producers, ctx.t.nav_producers, false, body))
}
