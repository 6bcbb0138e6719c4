//! Consumer groups: the list with client count, version, model, TPS and
//! lag (sortable), create/update and delete; a group's clients,
//! subscriptions and per-queue consume detail; reset offset.

use std::collections::{BTreeMap, BTreeSet};

use axum::response::Response;
use maud::html;
use mq_client::{MessageQueue, SubscriptionGroupConfig};
use mq_protocol::admin_body::{ConsumerConnection, OffsetWrapper};
use mq_protocol::topic::RETRY_GROUP_TOPIC_PREFIX;

use super::topics::reset_group_offset;
use super::{all_masters, chosen_masters, each, masters_of, Master};
use crate::layout::{csrf, delete_form, framed, group_link, page, topic_link, Nav};
use crate::time::format_ms;
use crate::web::{enc, finish, CheckedForm, ConsoleError, Ctx};

/// Groups the brokers and tools keep for themselves (RocketMQ's
/// `MixAll` system groups), hidden unless asked for.
pub fn is_system_group(group: &str) -> bool {
    matches!(
        group,
        "TOOLS_CONSUMER"
            | "FILTERSRV_CONSUMER"
            | "__MONITOR_CONSUMER"
            | "CLIENT_INNER_PRODUCER"
            | "SELF_TEST_P_GROUP"
            | "SELF_TEST_C_GROUP"
            | "CID_ONS-HTTP-PROXY"
            | "CID_ONSAPI_PERMISSION"
            | "CID_ONSAPI_OWNER"
            | "CID_ONSAPI_PULL"
    ) || group.starts_with("CID_RMQ_SYS_")
}

/// One row of the group list.
struct GroupRow {
    group: String,
    clients: usize,
    version: String,
    model: String,
    kind: String,
    tps: f64,
    lag: i64,
}

fn enum_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The group's connections from the first master that has any.
async fn connection_of(
    admin: &mq_client::AdminClient,
    masters: &[Master],
    group: &str,
) -> Option<(String, ConsumerConnection)> {
    for m in masters {
        if let Ok(c) = admin.consumer_connection(&m.addr, group).await {
            if !c.connection_set.is_empty() {
                return Some((m.addr.clone(), c));
            }
        }
    }
    None
}

/// `GET /consumers?q=&system=true&sort=group|clients|tps|lag`.
pub async fn list(ctx: Ctx) -> Response {
    let result = list_page(&ctx).await;
    framed(&ctx, Nav::Consumers, result)
}

async fn list_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let t = ctx.t;
    let search = ctx.query.line("q")?.to_lowercase();
    let system = ctx.query.flag("system");
    let sort = match ctx.query.get("sort") {
        "" | "group" => "group",
        s @ ("clients" | "tps" | "lag") => s,
        other => return Err(ConsoleError::BadRequest(format!("unknown sort {other:?}"))),
    };
    let admin = ctx.admin().await?;
    let info = admin.cluster_info().await?;
    let masters = masters_of(&info);
    let mut groups: BTreeSet<String> = BTreeSet::new();
    for m in &masters {
        if let Ok(table) = admin.subscription_groups(&m.addr).await {
            groups.extend(table.into_keys());
        }
    }
    let groups: Vec<String> = groups
        .into_iter()
        .filter(|g| system || !is_system_group(g))
        .filter(|g| search.is_empty() || g.to_lowercase().contains(&search))
        .collect();
    let mut rows: Vec<GroupRow> = each(groups, |group| {
        let (admin, masters) = (admin.clone(), masters.clone());
        async move {
            let (mut tps, mut lag) = (0.0, 0);
            for m in &masters {
                if let Ok(s) = admin.consume_stats(&m.addr, &group, None).await {
                    tps += s.consume_tps;
                    lag += s
                        .offset_table
                        .iter()
                        .filter(|(mq, _)| !mq.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX))
                        .map(|(_, o)| (o.broker_offset - o.consumer_offset).max(0))
                        .sum::<i64>();
                }
            }
            let conn = connection_of(&admin, &masters, &group).await;
            let (clients, version, model, kind) = match conn {
                Some((_, c)) => (
                    c.connection_set.len(),
                    c.connection_set
                        .iter()
                        .map(|x| x.version)
                        .min()
                        .map_or(String::new(), |v| v.to_string()),
                    enum_name(&c.message_model),
                    enum_name(&c.consume_type),
                ),
                None => (0, String::new(), String::new(), String::new()),
            };
            GroupRow {
                group,
                clients,
                version,
                model,
                kind,
                tps,
                lag,
            }
        }
    })
    .await;
    match sort {
        "clients" => rows.sort_by_key(|r| std::cmp::Reverse(r.clients)),
        "tps" => rows.sort_by(|a, b| b.tps.total_cmp(&a.tps)),
        "lag" => rows.sort_by_key(|r| std::cmp::Reverse(r.lag)),
        _ => rows.sort_by(|a, b| a.group.cmp(&b.group)),
    }
    let sort_link = |key: &str| {
        format!(
            "/consumers?sort={key}&q={}{}",
            enc(&search),
            if system { "&system=true" } else { "" }
        )
    };
    let body = html! {
        div.filters {
            form.inline method="get" action="/consumers" {
                input type="text" name="q" value=(search) placeholder=(t.search);
                label.check { input type="checkbox" name="system" value="true" checked[system]; (t.filter_system) }
                input type="hidden" name="sort" value=(sort);
                button type="submit" { (t.search) }
            }
            span.note { (rows.len()) }
        }
        table {
            thead { tr {
                th { a href=(sort_link("group")) { (t.group) } }
                th.num { a href=(sort_link("clients")) { (t.clients) } }
                th { (t.version) } th { (t.consume_type) } th { (t.model) }
                th.num { a href=(sort_link("tps")) { (t.tps) } }
                th.num { a href=(sort_link("lag")) { (t.lag) } }
            } }
            tbody {
                @for r in &rows {
                    tr {
                        td { (group_link(&r.group)) }
                        td.num { @if r.clients == 0 { span.badge.warn { (t.offline) } } @else { (r.clients) } }
                        td { (r.version) } td { (r.kind) } td { (r.model) }
                        td.num { (format!("{:.2}", r.tps)) }
                        td.num { (r.lag) }
                    }
                }
                @if rows.is_empty() { tr { td.note colspan="7" { (t.none) } } }
            }
        }
        @if ctx.viewer.is_admin() {
            section.card {
                h2 { (t.create_group) }
                (group_form(ctx, &masters, None))
            }
        }
    };
    Ok(page(ctx, Nav::Consumers, t.groups, false, body))
}

fn group_form(
    ctx: &Ctx,
    masters: &[Master],
    existing: Option<&SubscriptionGroupConfig>,
) -> maud::Markup {
    let t = ctx.t;
    let defaults = SubscriptionGroupConfig::default();
    let c = existing.unwrap_or(&defaults);
    html! {
        form.grid method="post" action="/consumers" {
            (csrf(ctx))
            label { (t.group)
                @if let Some(e) = existing {
                    input type="hidden" name="existing" value="true";
                    input type="text" name="group" value=(e.group_name) readonly;
                } @else {
                    input type="text" name="group" required maxlength="255" pattern="[%|a-zA-Z0-9_-]+";
                }
            }
            label { (t.retry_max_times) input type="number" name="retryMaxTimes" min="0" max="64" value=(c.retry_max_times); }
            label.check { input type="checkbox" name="consumeEnable" value="true" checked[c.consume_enable]; (t.consume_enable) }
            label.check { input type="checkbox" name="broadcast" value="true" checked[c.consume_broadcast_enable]; (t.broadcast) }
            label.check { input type="checkbox" name="orderly" value="true" checked[c.consume_message_orderly]; (t.orderly) }
            fieldset {
                legend { (t.target) }
                @for m in masters {
                    label.check { input type="checkbox" name="broker" value=(m.name) checked; (m.name) }
                }
            }
            button type="submit" { (t.save) }
        }
    }
}

/// `POST /consumers`: create or update a group on the chosen masters.
pub async fn upsert(ctx: Ctx, form: CheckedForm) -> Response {
    let f = &form.fields;
    let back = match f.get("group") {
        "" => "/consumers".to_owned(),
        g => format!("/consumer?group={}", enc(g)),
    };
    let outcome = async {
        form.require_admin()?;
        let group = f.group("group")?;
        let retry_max_times = f.number("retryMaxTimes", 0..=64, 16)? as i32;
        let admin = ctx.admin().await?;
        let info = admin.cluster_info().await?;
        let masters = chosen_masters(&info, &f.all("broker"))?;
        let config = SubscriptionGroupConfig {
            group_name: group.as_str().to_owned(),
            consume_enable: f.flag("consumeEnable"),
            consume_broadcast_enable: f.flag("broadcast"),
            retry_max_times,
            consume_message_orderly: f.flag("orderly"),
            ..SubscriptionGroupConfig::default()
        };
        for m in &masters {
            admin.create_subscription_group(&m.addr, &config).await?;
        }
        tracing::info!(user = ?form.viewer.user_name(), group = %group, "group created or updated");
        Ok(format!("{} {group}", ctx.t.done))
    }
    .await;
    let back = if outcome.is_err() && !f.flag("existing") {
        "/consumers".to_owned()
    } else {
        back
    };
    finish(&ctx.app, &form.viewer, &back, outcome)
}

/// `GET /consumer?group=`.
pub async fn detail(ctx: Ctx) -> Response {
    let result = detail_page(&ctx).await;
    framed(&ctx, Nav::Consumers, result)
}

async fn detail_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let t = ctx.t;
    let group = ctx.query.group("group")?;
    let admin = ctx.admin().await?;
    let masters = all_masters(&admin).await?;
    let mut config = None;
    for m in &masters {
        if let Ok(table) = admin.subscription_groups(&m.addr).await {
            if let Some(c) = table.get(group.as_str()) {
                config = Some(c.clone());
                break;
            }
        }
    }
    let mut offsets: BTreeMap<MessageQueue, OffsetWrapper> = BTreeMap::new();
    let mut tps = 0.0;
    for m in &masters {
        if let Ok(s) = admin.consume_stats(&m.addr, group.as_str(), None).await {
            tps += s.consume_tps;
            offsets.extend(s.offset_table);
        }
    }
    if config.is_none() && offsets.is_empty() {
        return Err(ConsoleError::NotFound(format!(
            "no broker knows the group {group}"
        )));
    }
    let conn = connection_of(&admin, &masters, group.as_str()).await;
    // Which client holds which queue, from each member's running info.
    let mut holders: BTreeMap<MessageQueue, String> = BTreeMap::new();
    if let Some((addr, c)) = &conn {
        for client in &c.connection_set {
            if let Ok(info) = admin
                .consumer_running_info(addr, group.as_str(), &client.client_id, false)
                .await
            {
                for mq in info.mq_table.keys() {
                    holders.insert(mq.clone(), client.client_id.clone());
                }
            }
        }
    }
    let topics: BTreeSet<String> = offsets
        .keys()
        .map(|mq| mq.topic.clone())
        .chain(
            conn.iter()
                .flat_map(|(_, c)| c.subscription_table.keys().cloned()),
        )
        .filter(|topic| !topic.starts_with(RETRY_GROUP_TOPIC_PREFIX))
        .collect();
    let lag: i64 = offsets
        .iter()
        .filter(|(mq, _)| !mq.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX))
        .map(|(_, o)| (o.broker_offset - o.consumer_offset).max(0))
        .sum();
    let admin_view = ctx.viewer.is_admin();
    let body = html! {
        p { (t.tps) ": " (format!("{:.2}", tps)) " · " (t.lag) ": " (lag) }
        div.cols {
            section.card {
                h2 { (t.connections) }
                @match &conn {
                    Some((_, c)) => {
                        p.note { (t.consume_type) ": " (enum_name(&c.consume_type)) " · " (t.model) ": " (enum_name(&c.message_model)) }
                        table {
                            thead { tr { th { (t.client_id) } th { (t.client_addr) } th { (t.language) } th { (t.version) } } }
                            tbody { @for x in &c.connection_set { tr { td.mono { (x.client_id) } td { (x.client_addr) } td { (x.language) } td { (x.version) } } } }
                        }
                    }
                    None => { p { span.badge.warn { (t.offline) } } }
                }
            }
            section.card {
                h2 { (t.subscriptions) }
                @match &conn {
                    Some((_, c)) => {
                        table {
                            thead { tr { th { (t.topic) } th { (t.expression) } } }
                            tbody { @for (topic, sub) in &c.subscription_table { tr { td { (topic_link(topic)) } td { code { (sub.sub_string) } } } } }
                        }
                    }
                    None => { p.note { (t.none) } }
                }
            }
        }
        section.card {
            h2 { (t.consume_detail) }
            table {
                thead { tr { th { (t.topic) } th { (t.broker) } th.num { (t.queue) } th.num { (t.broker_offset) } th.num { (t.consumer_offset) } th.num { (t.lag) } th { (t.client_id) } th { (t.last_update) } } }
                tbody {
                    @for (mq, o) in &offsets {
                        tr {
                            td { (topic_link(&mq.topic)) } td { (mq.broker_name) } td.num { (mq.queue_id) }
                            td.num { (o.broker_offset) } td.num { (o.consumer_offset) } td.num { ((o.broker_offset - o.consumer_offset).max(0)) }
                            td.mono { (holders.get(mq).map_or("-", String::as_str)) }
                            td { (format_ms(o.last_timestamp)) }
                        }
                    }
                }
            }
            p.note { (t.all_times_utc) }
        }
        @if admin_view {
            div.cols {
                section.card {
                    h2 { (t.reset_offset) }
                    form.stack method="post" action="/consumer/reset" {
                        (csrf(ctx))
                        input type="hidden" name="group" value=(group.as_str());
                        label { (t.topic) select name="topic" required { @for topic in &topics { option value=(topic) { (topic) } } } }
                        label { (t.reset_time) input type="text" name="time" required placeholder="2024-05-01 00:00:00"; }
                        label.check { input type="checkbox" name="force" value="true" checked; (t.force) }
                        div { button type="submit" { (t.reset) } }
                    }
                }
                section.card {
                    h2 { (t.config) }
                    @let on: Vec<Master> = masters.clone();
                    @if let Some(c) = &config { (group_form(ctx, &on, Some(c))) } @else { p.note { (t.none) } }
                }
            }
            section.card {
                h2 { (t.delete_group) }
                (delete_form(ctx, "/consumer/delete", "group", group.as_str(), t.delete))
            }
        } @else {
            p.note { (t.viewer_only) }
        }
    };
    Ok(page(
        ctx,
        Nav::Consumers,
        &format!("{} {}", t.group, group),
        false,
        body,
    ))
}

/// `POST /consumer/delete`: only when the name was typed again.
pub async fn delete(ctx: Ctx, form: CheckedForm) -> Response {
    let f = &form.fields;
    let raw = f.get("group").to_owned();
    let outcome = async {
        form.require_admin()?;
        let group = f.group("group")?;
        if f.get("confirm") != group.as_str() {
            return Err(ConsoleError::BadRequest(ctx.t.confirm_mismatch.to_owned()));
        }
        let admin = ctx.admin().await?;
        for m in all_masters(&admin).await? {
            admin
                .delete_subscription_group(&m.addr, group.as_str())
                .await?;
        }
        tracing::info!(user = ?form.viewer.user_name(), group = %group, "group deleted");
        Ok(format!("{} {group}: {}", ctx.t.done, ctx.t.delete))
    }
    .await;
    let back = match outcome {
        Ok(_) => "/consumers".to_owned(),
        Err(_) => format!("/consumer?group={}", enc(&raw)),
    };
    finish(&ctx.app, &form.viewer, &back, outcome)
}

/// `POST /consumer/reset`.
pub async fn reset_offset(ctx: Ctx, form: CheckedForm) -> Response {
    let back = format!("/consumer?group={}", enc(form.fields.get("group")));
    let outcome = async {
        form.require_admin()?;
        reset_group_offset(&ctx, &form.fields).await
    }
    .await;
    finish(&ctx.app, &form.viewer, &back, outcome)
}
