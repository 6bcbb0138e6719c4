//! The cluster overview (brokers by cluster with role, address, version,
//! in/out TPS and slave fall-behind), the name server switch, and a
//! broker's runtime info and configuration.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use maud::html;

use super::{each, figure, first_tps};
use crate::layout::{csrf, framed, page, Nav};
use crate::web::{enc, finish, CheckedForm, ConsoleError, Ctx};

/// The keys the broker's UPDATE_BROKER_CONFIG takes while it runs (its
/// run-time allow-list; a test checks the broker accepts each): only these
/// get an edit field. The broker checks the value.
pub const EDITABLE_KEYS: &[&str] = &[
    "brokerPermission",
    "defaultTopicQueueNums",
    "autoCreateTopicEnable",
    "clusterTopicEnable",
    "brokerTopicEnable",
    "autoCreateSubscriptionGroup",
    "haSendHeartbeatInterval",
    "haHousekeepingInterval",
    "haTransferBatchSize",
    "haSlaveFallbehindMax",
    "registerNameServerPeriod",
    "registerBrokerTimeoutMills",
    "transactionTimeOut",
    "transactionCheckMax",
    "transactionCheckInterval",
    "rejectTransactionMessage",
    "timerWheelEnable",
    "timerMaxDelaySec",
    "longPollingEnable",
    "shortPollingTimeMills",
    "slaveReadEnable",
    "accessMessageInMemoryMaxRatio",
    "notifyConsumerIdsChangedEnable",
    "flushConsumerOffsetInterval",
    "serverFrameMaxLength",
];

/// One broker row of the overview.
struct Row {
    cluster: String,
    broker: String,
    id: i64,
    addr: String,
    runtime: Option<BTreeMap<String, String>>,
}

/// `GET /`: every broker of every cluster, refreshed every 10 s.
pub async fn overview(ctx: Ctx) -> Response {
    let result = overview_page(&ctx).await;
    framed(&ctx, Nav::Cluster, result)
}

async fn overview_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let t = ctx.t;
    let admin = ctx.admin().await?;
    let info = admin.cluster_info().await?;
    let mut rows = Vec::new();
    for (cluster, names) in &info.cluster_addr_table {
        for name in names {
            let Some(broker) = info.broker_addr_table.get(name) else {
                continue;
            };
            for (id, addr) in &broker.broker_addrs {
                rows.push((cluster.clone(), name.clone(), *id, addr.clone()));
            }
        }
    }
    let rows: Vec<Row> = each(rows, |(cluster, broker, id, addr)| {
        let admin = admin.clone();
        async move {
            let runtime = admin.broker_runtime_info(&addr).await.ok();
            Row {
                cluster,
                broker,
                id,
                addr,
                runtime,
            }
        }
    })
    .await;
    // A slave's distance behind its master, in commit log bytes.
    let master_offset = |broker: &str| {
        rows.iter()
            .find(|r| r.broker == broker && r.id == 0)
            .and_then(|r| r.runtime.as_ref())
            .map(|rt| figure(rt, "commitLogMaxOffset"))
    };
    let body = html! {
        @if rows.is_empty() {
            p.note { (t.no_brokers) }
        } @else {
            table {
                thead { tr {
                    th { (t.cluster) } th { (t.broker) } th.num { (t.broker_id) } th { (t.role) }
                    th { (t.address) } th { (t.version) } th.num { (t.in_tps) } th.num { (t.out_tps) }
                    th.num { (t.in_today) } th.num { (t.out_today) } th.num { (t.fall_behind) }
                } }
                tbody {
                    @for row in &rows {
                        tr {
                            td.nowrap { (row.cluster) }
                            td.nowrap { (row.broker) }
                            td.num { (row.id) }
                            td { @if row.id == 0 { span.badge.master { (t.master) } } @else { span.badge.slave { (t.slave) } } }
                            td { a href=(format!("/broker?addr={}", enc(&row.addr))) { (row.addr) } }
                            @match &row.runtime {
                                Some(rt) => {
                                    td { (rt.get("brokerVersionDesc").map_or("-", String::as_str)) }
                                    td.num { (format!("{:.2}", first_tps(rt, "putTps"))) }
                                    td.num { (format!("{:.2}", first_tps(rt, "getTransferedTps"))) }
                                    td.num { (figure(rt, "msgPutTotalTodayNow") - figure(rt, "msgPutTotalTodayMorning")) }
                                    td.num { (figure(rt, "msgGetTotalTodayNow") - figure(rt, "msgGetTotalTodayMorning")) }
                                    td.num {
                                        @if row.id == 0 { "-" } @else {
                                            @match master_offset(&row.broker) {
                                                Some(m) => { ((m - figure(rt, "commitLogMaxOffset")).max(0)) }
                                                None => { "-" }
                                            }
                                        }
                                    }
                                }
                                None => {
                                    td colspan="6" { span.badge.bad { (t.unreachable) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(ctx, Nav::Cluster, t.nav_cluster, true, body))
}

/// `POST /namesrv`: pick one of the configured name servers for this
/// session's pages.
pub async fn select_namesrv(ctx: Ctx, form: CheckedForm) -> Response {
    let addr = form.fields.get("addr");
    let outcome = if let Some(index) = ctx.app.cluster.index_of(addr) {
        ctx.app.sessions.set_namesrv(&form.viewer.id, index);
        Ok(format!("{}: {addr}", ctx.t.namesrv))
    } else {
        Err(ConsoleError::BadRequest(format!(
            "{addr:?} is not one of the configured name servers"
        )))
    };
    finish(&ctx.app, &form.viewer, "/", outcome)
}

/// The broker address of a request, if the name server lists it.
async fn known_broker(ctx: &Ctx, addr: &str) -> Result<(String, i64), ConsoleError> {
    let admin = ctx.admin().await?;
    let info = admin.cluster_info().await?;
    info.broker_addr_table
        .values()
        .find_map(|b| {
            b.broker_addrs
                .iter()
                .find(|(_, a)| a.as_str() == addr)
                .map(|(id, _)| (b.broker_name.clone(), *id))
        })
        .ok_or_else(|| ConsoleError::NotFound(format!("no broker at {addr:?} is registered")))
}

/// `GET /broker?addr=`: runtime info and configuration.
pub async fn broker(ctx: Ctx) -> Response {
    let result = broker_page(&ctx).await;
    framed(&ctx, Nav::Cluster, result)
}

async fn broker_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let t = ctx.t;
    let addr = ctx.query.line("addr")?.to_owned();
    let (name, id) = known_broker(ctx, &addr).await?;
    let admin = ctx.admin().await?;
    let runtime = admin.broker_runtime_info(&addr).await?;
    let config = admin.broker_config(&addr).await?;
    let admin_view = ctx.viewer.is_admin();
    let body = html! {
        div.cols {
            section.card {
                h2 { (t.runtime_info) }
                table {
                    thead { tr { th { (t.key) } th { (t.value) } } }
                    tbody { @for (k, v) in &runtime { tr { td { code { (k) } } td.mono { (v) } } } }
                }
            }
            section.card {
                h2 { (t.editable_keys) }
                @if !admin_view { p.note { (t.viewer_only) } }
                table {
                    thead { tr { th { (t.key) } th { (t.value) } } }
                    tbody {
                        @for key in EDITABLE_KEYS {
                            @if let Some(value) = config.get(*key) {
                                tr {
                                    td { code { (key) } }
                                    td {
                                        @if admin_view {
                                            form.inline method="post" action="/broker/config" {
                                                (csrf(ctx))
                                                input type="hidden" name="addr" value=(addr);
                                                input type="hidden" name="key" value=(key);
                                                input type="text" name="value" value=(value) size="14";
                                                button type="submit" { (t.update) }
                                            }
                                        } @else { span.mono { (value) } }
                                    }
                                }
                            }
                        }
                    }
                }
                h2 { (t.other_keys) }
                table {
                    thead { tr { th { (t.key) } th { (t.value) } } }
                    tbody { @for (k, v) in &config { tr { td { code { (k) } } td.mono { (v) } } } }
                }
            }
        }
    };
    let title = format!("{} {name} ({} {id}, {addr})", t.broker, t.broker_id);
    Ok(page(ctx, Nav::Cluster, &title, false, body))
}

/// `POST /broker/config`: one run-time key, through UPDATE_BROKER_CONFIG.
pub async fn update_config(ctx: Ctx, form: CheckedForm) -> Response {
    let addr = form.fields.get("addr").to_owned();
    let back = format!("/broker?addr={}", enc(&addr));
    let outcome = async {
        form.require_admin()?;
        let key = form.fields.line("key")?;
        if !EDITABLE_KEYS.contains(&key) {
            return Err(ConsoleError::BadRequest(format!(
                "{key:?} cannot be changed while the broker runs"
            )));
        }
        let value = form.fields.line("value")?;
        known_broker(&ctx, &addr).await?;
        let admin = ctx.admin().await?;
        admin
            .update_broker_config(&addr, &[(key.to_owned(), value.to_owned())])
            .await?;
        tracing::info!(user = ?form.viewer.user_name(), %addr, key, value, "broker config updated");
        Ok(format!("{key}={value}"))
    }
    .await;
    finish(&ctx.app, &form.viewer, &back, outcome).into_response()
}
