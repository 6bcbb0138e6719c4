//! The shop's orders (beyond the dashboard): a list with filters, and an
//! order's saga as a timeline.
//!
//! The timeline is put together from the services' operator API (the
//! order, its ledger rows in goods, coupon and user, its payment, the log
//! service's rows and the points credit) and from the broker: the
//! ORDER_CANCEL half message and its committed message by key = order id,
//! the PAY_SUCCESS messages by key = payment id (the pay service's key),
//! and each consumer group's consume state of the committed messages.

use axum::response::Response;
use maud::{html, Markup};
use mq_client::{AdminClient, MessageExt};
use mq_protocol::topic::TRANS_HALF_TOPIC;

use super::messages::{consume_states, state_badges, GroupState};
use crate::layout::{framed, page, Nav};
use crate::shop::{Ledger, LedgerRow, Order, OrderQuery};
use crate::time::{format_ms, now_millis, parse_time};
use crate::web::{enc, ConsoleError, Ctx};

/// Orders on one page of the list.
const ORDER_PAGE: usize = 50;
/// Most messages a key query asks for.
const MAX_KEY_RESULTS: i32 = 32;
/// The topics of the saga (the shop's names).
const ORDER_CANCEL: &str = "ORDER_CANCEL";
const PAY_SUCCESS: &str = "PAY_SUCCESS";
const STATUSES: [&str; 4] = ["PENDING", "CONFIRMED", "CANCELLED", "PAID"];

fn shop_error(e: crate::shop::ShopError) -> ConsoleError {
    ConsoleError::Shop(e.to_string())
}

/// A status as a coloured badge.
pub fn status_badge(status: &str) -> Markup {
    let class = match status {
        "PAID" | "CONFIRMED" => "badge ok",
        "CANCELLED" => "badge bad",
        _ => "badge warn",
    };
    html! { span class=(class) { (status) } }
}

/// `GET /orders?status=&user=&from=&to=&before=`.
pub async fn list(ctx: Ctx) -> Response {
    let result = list_page(&ctx).await;
    framed(&ctx, Nav::Orders, result)
}

async fn list_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let t = ctx.t;
    let status = ctx.query.line("status")?.to_ascii_uppercase();
    let user = ctx.query.line("user")?.to_owned();
    let from = ctx.query.line("from")?.to_owned();
    let to = ctx.query.line("to")?.to_owned();
    let before = ctx.query.line("before")?.to_owned();
    let form = html! {
        section.card {
            form.grid method="get" action="/orders" {
                label { (t.status)
                    select name="status" {
                        option value="" { (t.all) }
                        @for s in STATUSES { option value=(s) selected[status == s] { (s) } }
                    }
                }
                label { (t.user_id) input type="number" name="user" value=(user) min="1"; }
                label { (t.from_time) input type="text" name="from" value=(from) placeholder="2024-05-01 00:00"; }
                label { (t.to_time) input type="text" name="to" value=(to) placeholder="now"; }
                button type="submit" { (t.filter) }
            }
        }
    };
    let bad_time = || {
        ConsoleError::BadRequest(
            "from and to must be now, yyyy-mm-dd hh:mm[:ss] (UTC) or milliseconds".into(),
        )
    };
    let query = OrderQuery {
        status: (!status.is_empty()).then(|| status.clone()),
        user_id: if user.is_empty() {
            None
        } else {
            Some(ctx.query.number("user", 1..=i64::MAX, 0)?)
        },
        from_ms: if from.is_empty() {
            None
        } else {
            Some(parse_time(&from).ok_or_else(bad_time)?)
        },
        to_ms: if to.is_empty() {
            None
        } else {
            Some(parse_time(&to).ok_or_else(bad_time)?)
        },
        before: (!before.is_empty()).then(|| before.clone()),
        limit: ORDER_PAGE,
    };
    if !status.is_empty() && !STATUSES.contains(&status.as_str()) {
        return Err(ConsoleError::BadRequest(format!(
            "status must be one of {}",
            STATUSES.join(", ")
        )));
    }
    let page_of = ctx.app.shop.orders(&query).await.map_err(shop_error)?;
    let base = format!(
        "/orders?status={}&user={}&from={}&to={}",
        enc(&status),
        enc(&user),
        enc(&from),
        enc(&to)
    );
    let body = html! {
        (form)
        @if page_of.orders.is_empty() { p.note { (t.no_orders) } } @else {
            table {
                thead { tr {
                    th { (t.shop_order) } th { (t.status) } th.num { (t.user_id) } th.num { (t.goods) } th.num { (t.quantity) }
                    th.num { (t.amount_to_pay) } th { (t.created) } th { (t.reason) }
                } }
                tbody {
                    @for o in &page_of.orders {
                        tr {
                            td.mono.nowrap { a href=(format!("/order?id={}", enc(&o.id))) { (o.id) } }
                            td { (status_badge(&o.status)) }
                            td.num { (o.user_id) }
                            td.num { (o.goods_id) }
                            td.num { (o.quantity) }
                            td.num { (o.amount_to_pay) }
                            td.mono.nowrap { (format_ms(o.created_at)) }
                            td { (o.cancel_reason.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        p.note {
            @if !before.is_empty() { a href=(base.clone()) { "⇤ " (t.newest) } " " }
            @if let Some(next) = &page_of.next { a href=(format!("{base}&before={}", enc(next))) { (t.next) " →" } " " }
            (t.all_times_utc)
        }
    };
    Ok(page(ctx, Nav::Orders, t.nav_orders, false, body))
}

/// One step of a saga.
struct Step {
    /// When it happened (0: not known).
    at: i64,
    title: String,
    /// `ok`, `bad`, `warn` or `` (information).
    state: &'static str,
    detail: Markup,
}

fn step(at: i64, title: impl Into<String>, state: &'static str, detail: Markup) -> Step {
    Step {
        at,
        title: title.into(),
        state,
        detail,
    }
}

/// Messages of `topic` with key `key`, oldest first.
async fn by_key(admin: &AdminClient, topic: &str, key: &str) -> Vec<MessageExt> {
    let mut found = admin
        .query_message_by_key(topic, key, MAX_KEY_RESULTS, 0, now_millis() + 60_000)
        .await
        .unwrap_or_default();
    found.retain(|m| m.keys().contains(&key));
    found.sort_by_key(|m| m.store_timestamp);
    found
}

/// Half messages of `real_topic` with key `key`.
async fn halves(admin: &AdminClient, real_topic: &str, key: &str) -> Vec<MessageExt> {
    let mut found = by_key(admin, TRANS_HALF_TOPIC, key).await;
    found.retain(|m| m.property("REAL_TOPIC") == Some(real_topic));
    found
}

fn message_line(ctx: &Ctx, m: &MessageExt) -> Markup {
    let t = ctx.t;
    html! {
        (t.message_id) " "
        a.mono href=(format!("/message?id={}", enc(&m.offset_msg_id()))) { (m.msg_id()) }
        " · " (t.store_time) " " (format_ms(m.store_timestamp))
    }
}

fn groups_table(ctx: &Ctx, states: &[GroupState]) -> Markup {
    let t = ctx.t;
    html! {
        @if states.is_empty() { span.note { (t.no_groups) } } @else {
            ul.groups {
                @for s in states {
                    li { (crate::layout::group_link(&s.group)) " " (state_badges(ctx, s)) }
                }
            }
        }
    }
}

fn ledger_step(
    ctx: &Ctx,
    rows: &[LedgerRow],
    operation: &str,
    title: &str,
    what: impl Fn(&LedgerRow) -> String,
    asked: bool,
    cancelled: bool,
) -> Step {
    let t = ctx.t;
    match rows.iter().find(|r| r.operation == operation) {
        Some(r) => step(r.created_at, title, "ok", html! { (what(r)) }),
        // A cancelled order may have been refused this one (or cancelled
        // before it was taken): nothing to give back, not a missing row.
        None if asked && cancelled => step(0, title, "", html! { (t.nothing_reserved) }),
        None if asked => step(0, title, "warn", html! { (t.no_ledger_row) }),
        None => step(0, title, "", html! { (t.not_used) }),
    }
}

/// `GET /order?id=`.
pub async fn detail(ctx: Ctx) -> Response {
    let result = detail_page(&ctx).await;
    framed(&ctx, Nav::Orders, result)
}

async fn detail_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let t = ctx.t;
    let id = ctx.query.line("id")?.to_owned();
    if id.len() != 36 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(ConsoleError::BadRequest(
            "the order id must be a UUID".into(),
        ));
    }
    let shop = &ctx.app.shop;
    let order: Order = shop.order(&id).await.map_err(shop_error)?;
    let (stock, coupon, money, payments, pay_logs, order_logs, credits) = tokio::join!(
        shop.ledger_of(Ledger::Stock, &id),
        shop.ledger_of(Ledger::Coupon, &id),
        shop.ledger_of(Ledger::Money, &id),
        shop.payments_of(&id),
        shop.payment_log_of(&id),
        shop.order_log_of(&id),
        shop.credits_of(&id),
    );
    let (stock, coupon, money) = (
        stock.map_err(shop_error)?,
        coupon.map_err(shop_error)?,
        money.map_err(shop_error)?,
    );
    let payments = payments.map_err(shop_error)?;
    let pay_logs = pay_logs.map_err(shop_error)?;
    let order_logs = order_logs.map_err(shop_error)?;
    let credits = credits.map_err(shop_error)?;
    let admin = ctx.admin().await?;
    let cancel_halves = halves(&admin, ORDER_CANCEL, &id).await;
    let cancels = by_key(&admin, ORDER_CANCEL, &id).await;

    let cancelled = order.status == "CANCELLED";
    let mut steps = Vec::new();
    steps.push(step(
        order.created_at,
        t.step_saved,
        "ok",
        html! { (t.user_id) " " (order.user_id) " · " (t.goods) " " (order.goods_id) " × " (order.quantity) " · " (t.amount_to_pay) " " (order.amount_to_pay) },
    ));
    steps.push(match cancel_halves.first() {
        Some(m) => step(m.store_timestamp, t.step_half, "ok", message_line(ctx, m)),
        None => step(0, t.step_half, "warn", html! { (t.not_on_broker) }),
    });
    steps.push(ledger_step(
        ctx,
        &stock,
        "reserve",
        t.step_stock,
        |r| {
            format!(
                "{} {} × {}",
                t.goods,
                r.owner.unwrap_or(0),
                r.amount.as_deref().unwrap_or("0")
            )
        },
        true,
        cancelled,
    ));
    steps.push(ledger_step(
        ctx,
        &coupon,
        "use",
        t.step_coupon,
        |r| format!("{} {}", t.coupon, r.owner.unwrap_or(0)),
        order.coupon_id.is_some(),
        cancelled,
    ));
    let balance_is_zero = order.balance_used.trim_start_matches(['0', '.']).is_empty();
    steps.push(ledger_step(
        ctx,
        &money,
        "reserve",
        t.step_balance,
        |r| format!("{} {}", t.amount, r.amount.as_deref().unwrap_or("0")),
        !balance_is_zero,
        cancelled,
    ));
    match order.status.as_str() {
        "PENDING" => steps.push(step(
            0,
            t.step_decided,
            "warn",
            html! { (status_badge("PENDING")) " " (t.in_flight) },
        )),
        "CANCELLED" => {
            steps.push(step(
                order.updated_at,
                t.step_decided,
                "bad",
                html! { (status_badge("CANCELLED")) " " (order.cancel_reason.as_deref().unwrap_or("")) },
            ));
            steps.push(match cancels.first() {
                Some(m) => step(
                    m.store_timestamp,
                    t.step_committed,
                    "ok",
                    message_line(ctx, m),
                ),
                None => step(0, t.step_committed, "warn", html! { (t.not_on_broker) }),
            });
            let states = match cancels.first() {
                Some(m) => consume_states(&admin, m).await.1,
                None => Vec::new(),
            };
            let undone = |rows: &[LedgerRow]| {
                rows.iter()
                    .find(|r| r.operation == "cancel")
                    .map(|r| r.created_at)
            };
            let detail = html! {
                (groups_table(ctx, &states))
                ul.groups {
                    @for (name, at) in [
                        ("goods", undone(&stock)),
                        ("coupon", undone(&coupon)),
                        ("user", undone(&money)),
                        ("log", order_logs.first().map(|l| l.logged_at)),
                    ] {
                        li {
                            (name) ": "
                            @match at {
                                Some(at) => { span.badge.ok { (t.applied) } " " span.mono { (format_ms(at)) } }
                                None => { span.badge.warn { (t.not_applied) } }
                            }
                        }
                    }
                }
            };
            let all_applied = [undone(&stock), undone(&coupon), undone(&money)]
                .iter()
                .all(Option::is_some);
            steps.push(step(
                0,
                t.step_cancel_applied,
                if all_applied { "ok" } else { "warn" },
                detail,
            ));
        }
        status => {
            steps.push(step(
                0,
                t.step_decided,
                "ok",
                html! { (status_badge("CONFIRMED")) },
            ));
            steps.push(if cancels.is_empty() {
                step(
                    0,
                    t.step_rolled_back,
                    "ok",
                    html! { (t.nothing_to_compensate) },
                )
            } else {
                step(
                    0,
                    t.step_rolled_back,
                    "bad",
                    html! { (t.committed_for_live) " " (message_line(ctx, &cancels[0])) },
                )
            });
            let payment = payments.first();
            match payment {
                None => steps.push(step(0, t.step_payment, "", html! { (t.no_payment) })),
                Some(p) => {
                    steps.push(step(p.created_at, t.step_payment, "ok", html! {
                        (t.payment) " " span.mono { (p.payment_id) } " · " (p.amount) " · " (p.status)
                    }));
                    steps.push(match p.paid_at {
                        Some(at) => step(
                            at,
                            t.step_callback,
                            "ok",
                            html! { (t.trade_no) " " (p.trade_no.as_deref().unwrap_or("")) },
                        ),
                        None => step(0, t.step_callback, "warn", html! { (t.not_yet) }),
                    });
                    let pays = by_key(&admin, PAY_SUCCESS, &p.payment_id).await;
                    steps.push(match pays.first() {
                        Some(m) => step(
                            m.store_timestamp,
                            t.step_pay_success,
                            "ok",
                            message_line(ctx, m),
                        ),
                        None if p.status == "PAID" => {
                            step(0, t.step_pay_success, "warn", html! { (t.not_on_broker) })
                        }
                        None => step(0, t.step_pay_success, "", html! { (t.not_yet) }),
                    });
                    let states = match pays.first() {
                        Some(m) => consume_states(&admin, m).await.1,
                        None => Vec::new(),
                    };
                    let paid_log = pay_logs.iter().find(|l| l.event == "paid");
                    let credit = credits.first();
                    let detail = html! {
                        (groups_table(ctx, &states))
                        ul.groups {
                            li { "order: " @if status == "PAID" { span.badge.ok { "PAID" } " " span.mono { (format_ms(order.updated_at)) } } @else { span.badge.warn { (t.not_applied) } } }
                            li { "log: " @match paid_log { Some(l) => { span.badge.ok { (t.applied) } " " span.mono { (format_ms(l.logged_at)) } } None => { span.badge.warn { (t.not_applied) } } } }
                            li { "points: " @match credit { Some(c) => { span.badge.ok { (c.points) " " (t.points) } " " span.mono { (format_ms(c.credited_at)) } } None => { span.badge.warn { (t.not_applied) } } } }
                        }
                    };
                    let all = status == "PAID" && paid_log.is_some() && credit.is_some();
                    let any = p.status == "PAID";
                    steps.push(step(
                        0,
                        t.step_pay_applied,
                        if all {
                            "ok"
                        } else if any {
                            "warn"
                        } else {
                            ""
                        },
                        detail,
                    ));
                }
            }
        }
    }
    let body = html! {
        section.card {
            dl.kv {
                dt { (t.shop_order) } dd { (order.id) }
                dt { (t.status) } dd { (status_badge(&order.status)) }
                dt { (t.user_id) } dd { (order.user_id) }
                dt { (t.amount_to_pay) } dd { (order.amount_to_pay) }
                dt { (t.created) } dd { (format_ms(order.created_at)) }
                dt { (t.updated) } dd { (format_ms(order.updated_at)) }
            }
        }
        section.card {
            h2 { (t.saga) }
            ol.timeline {
                @for s in &steps {
                    li class=(s.state) {
                        div.when.mono { (if s.at > 0 { format_ms(s.at) } else { "—".to_owned() }) }
                        div.what { strong { (s.title) } div { (s.detail) } }
                    }
                }
            }
            p.note { (t.all_times_utc) }
        }
    };
    Ok(page(
        ctx,
        Nav::Orders,
        &format!("{} {}", t.shop_order, order.id),
        false,
        body,
    ))
}
