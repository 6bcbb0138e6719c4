//! The audit log: who changed what in the cluster or the shop, and when,
//! newest first (see [`crate::audit`]).

use axum::response::Response;
use maud::html;

use crate::layout::{page, Nav};
use crate::time::format_ms;
use crate::web::Ctx;

/// Entries one page shows.
const SHOWN: usize = 500;

/// `GET /audit[?who=]`.
pub async fn audit(ctx: Ctx) -> Response {
    let t = ctx.t;
    let who = ctx.query.get("who").to_owned();
    let entries: Vec<_> = ctx
        .app
        .audit
        .newest(crate::audit::KEPT)
        .into_iter()
        .filter(|e| who.is_empty() || e.who == who)
        .take(SHOWN)
        .collect();
    let body = html! {
        form.inline.filters method="get" action="/audit" {
            input type="text" name="who" value=(who) placeholder=(t.operator);
            button type="submit" { (t.filter) }
        }
        @if entries.is_empty() { p.note { (t.no_audit) } } @else {
            table {
                thead { tr { th { (t.time) } th { (t.operator) } th { (t.action) } th { (t.target) } th { (t.outcome) } } }
                tbody {
                    @for e in &entries {
                        tr {
                            td.mono { (format_ms(e.at)) }
                            td { (e.who) }
                            td { code { (e.action) } }
                            td.mono { @for (k, v) in &e.target { (k) "=" (v) " " } }
                            td {
                                @if e.ok { span.badge.ok { "ok" } } @else { span.badge.bad { (t.failed) } }
                                " " (e.outcome)
                            }
                        }
                    }
                }
            }
        }
        p.note {
            (t.all_times_utc) " "
            @match ctx.app.audit.path() {
                Some(path) => { (t.audit_file) ": " code { (path.display().to_string()) } }
                None => { (t.audit_memory) }
            }
        }
    };
    page(&ctx, Nav::Audit, t.nav_audit, false, body)
}
