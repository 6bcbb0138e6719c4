//! The frame around every page and small rendering helpers. maud escapes
//! every spliced value, and nothing here uses `PreEscaped`: the CSS is a
//! file of its own.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use crate::i18n::Lang;
use crate::web::{enc, ConsoleError, Ctx};

const CSS: &str = include_str!("../static/console.css");

/// `GET /static/console.css`.
pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Cluster,
    Topics,
    Consumers,
    Producers,
    Messages,
    Dlq,
    Transactions,
    Orders,
    Invariants,
    Audit,
}

/// The hidden CSRF field every POST form carries.
pub fn csrf(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="_csrf" value=(ctx.viewer.csrf); }
}

/// The language switch link to `lang` for the current page.
fn lang_link(ctx: &Ctx, lang: Lang) -> String {
    let sep = if ctx.path.contains('?') { '&' } else { '?' };
    format!("{}{sep}lang={}", ctx.path, lang.code())
}

/// A whole page: head, navigation, name server switch, flash, `body`.
pub fn page(ctx: &Ctx, nav: Nav, title: &str, refresh: bool, body: Markup) -> Response {
    let t = ctx.t;
    let cluster = &ctx.app.cluster;
    let markup = html! {
        (DOCTYPE)
        html lang=(ctx.lang.html()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh { meta http-equiv="refresh" content="10"; }
                title { (title) " · " (t.console) }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                header.top {
                    a.brand href="/" { (t.console) }
                    nav {
                        @for (entry, href, label) in [
                            (Nav::Dashboard, "/dashboard", t.nav_dashboard),
                            (Nav::Cluster, "/", t.nav_cluster),
                            (Nav::Topics, "/topics", t.nav_topics),
                            (Nav::Consumers, "/consumers", t.nav_consumers),
                            (Nav::Producers, "/producers", t.nav_producers),
                            (Nav::Messages, "/messages", t.nav_messages),
                            (Nav::Dlq, "/dlq", t.nav_dlq),
                            (Nav::Transactions, "/transactions", t.nav_transactions),
                        ] {
                            a class=@if entry == nav { "active" } href=(href) { (label) }
                        }
                        @if ctx.app.shop.is_configured() {
                            @for (entry, href, label) in [
                                (Nav::Orders, "/orders", t.nav_orders),
                                (Nav::Invariants, "/invariants", t.nav_invariants),
                            ] {
                                a class=@if entry == nav { "active" } href=(href) { (label) }
                            }
                        }
                        a class=@if nav == Nav::Audit { "active" } href="/audit" { (t.nav_audit) }
                    }
                    div.right {
                        form.inline method="post" action="/namesrv" {
                            (csrf(ctx))
                            label title=(t.namesrv) {
                                select name="addr" aria-label=(t.namesrv) {
                                    @for addr in cluster.addrs() {
                                        option value=(addr) selected[addr == ctx.namesrv()] { (addr) }
                                    }
                                }
                            }
                            button type="submit" { (t.switch) }
                        }
                        span.lang {
                            a href=(lang_link(ctx, Lang::En)) class=@if ctx.lang == Lang::En { "active" } { "EN" }
                            " | "
                            a href=(lang_link(ctx, Lang::Zh)) class=@if ctx.lang == Lang::Zh { "active" } { "中文" }
                        }
                        @if let Some(name) = ctx.viewer.user_name() {
                            form.inline method="post" action="/logout" {
                                (csrf(ctx))
                                span.user { (name) }
                                button type="submit" { (t.logout) }
                            }
                        }
                    }
                }
                main {
                    @if let Some(flash) = &ctx.viewer.flash {
                        div class=(if flash.ok { "flash ok" } else { "flash error" }) role="status" { (flash.text) }
                    }
                    h1 { (title) }
                    (body)
                    @if refresh { p.note { (t.refresh_note) } }
                }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// `result`, or its error shown inside the frame (so the navigation and
/// the name server switch stay at hand when a name server is down).
pub fn framed(ctx: &Ctx, nav: Nav, result: Result<Response, ConsoleError>) -> Response {
    match result {
        Ok(response) => response,
        Err(error) => {
            let status = error.status();
            let body = html! { div.flash.error role="alert" { (error.to_string()) } };
            let mut response = page(ctx, nav, ctx.t.error, false, body);
            *response.status_mut() = status;
            response
        }
    }
}

/// The page of an error, without the frame (the request may not have a
/// session, or a language).
pub fn error_page(message: &str) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html {
                head {
                    meta charset="utf-8";
                    title { "Error" }
                    link rel="stylesheet" href="/static/console.css";
                }
                body {
                    main {
                        h1 { "Error · 错误" }
                        div.flash.error { (message) }
                        p { a href="/" { "Back · 返回" } }
                    }
                }
            }
        }
        .into_string(),
    )
}

/// A link to a topic's page.
pub fn topic_link(topic: &str) -> Markup {
    html! { a href=(format!("/topic?topic={}", enc(topic))) { (topic) } }
}

/// A link to a consumer group's page.
pub fn group_link(group: &str) -> Markup {
    html! { a href=(format!("/consumer?group={}", enc(group))) { (group) } }
}

/// A typed-confirmation delete form: the name must be typed again.
pub fn delete_form(ctx: &Ctx, action: &str, field: &str, name: &str, label: &str) -> Markup {
    let t = ctx.t;
    html! {
        form.danger method="post" action=(action) {
            (csrf(ctx))
            input type="hidden" name=(field) value=(name);
            label {
                span { (t.type_to_confirm) ": " code { (name) } }
                input type="text" name="confirm" required autocomplete="off";
            }
            button.danger type="submit" { (label) }
        }
    }
}
