//! The shop's invariants (DESIGN.md, "Invariants the tests check"), run
//! live against the services' operator API, each green or red with the
//! rows that break it.
//!
//! The services keep no "initial" stock or balance (operators change both),
//! so the stock and balance checks are stated on the ledgers, which move in
//! the same transaction as the stock and the balance: what an order holds
//! in a ledger (its reservation less its cancellation) is exactly what it
//! should hold (its quantity or balance use while CONFIRMED or PAID, zero
//! once CANCELLED). Summed per goods and user that is
//! `initial = current + held by live orders`. Orders still PENDING are in
//! their saga and are checked only for their age.

use std::collections::{BTreeMap, HashMap};

use axum::response::Response;
use maud::{html, Markup};

use super::orders::status_badge;
use crate::layout::{framed, page, Nav};
use crate::shop::{Coupon, Credit, Ledger, LedgerRow, Order, PaymentLog};
use crate::time::{format_ms, now_millis};
use crate::web::{enc, ConsoleError, Ctx};

/// Offending rows shown per check.
const SHOWN: usize = 50;

/// One check's result.
pub struct Check {
    pub name: &'static str,
    pub offending: Vec<(String, String)>,
}

/// An amount like `"12.30"` in cents; none when it is not one.
pub fn cents(amount: &str) -> Option<i64> {
    let amount = amount.trim();
    let (whole, frac) = amount.split_once('.').unwrap_or((amount, ""));
    if frac.len() > 2 || whole.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    whole.checked_mul(100)?.checked_add(frac)
}

/// What an order holds in a ledger: `(owner, amount)` reserved less
/// cancelled, from its rows.
fn held(rows: &[&LedgerRow]) -> (Option<i64>, i64) {
    let mut owner = None;
    let mut amount = 0;
    for r in rows {
        let a = r.amount.as_deref().map_or(1, cents_or_count);
        match r.operation.as_str() {
            "reserve" | "use" => {
                owner = r.owner;
                amount += a;
            }
            _ => {
                amount -= if r.owner.is_some() || r.amount.is_some() {
                    a
                } else {
                    0
                }
            }
        }
    }
    (owner, amount)
}

/// A quantity (`"3"`) as is, an amount (`"12.30"`) in cents.
fn cents_or_count(text: &str) -> i64 {
    if text.contains('.') {
        cents(text).unwrap_or(0)
    } else {
        text.parse().unwrap_or(0)
    }
}

fn by_order(rows: &[LedgerRow]) -> BTreeMap<&str, Vec<&LedgerRow>> {
    let mut map: BTreeMap<&str, Vec<&LedgerRow>> = BTreeMap::new();
    for r in rows {
        map.entry(r.order_id.as_str()).or_default().push(r);
    }
    map
}

/// Everything the checks read.
pub struct ShopState {
    pub orders: Vec<Order>,
    pub pending_bound_ms: u64,
    pub stock: Vec<LedgerRow>,
    pub coupon: Vec<LedgerRow>,
    pub money: Vec<LedgerRow>,
    pub coupons: Vec<Coupon>,
    pub payment_log: Vec<PaymentLog>,
    pub credits: Vec<Credit>,
}

/// The checks, in DESIGN.md's order.
pub fn run_checks(state: &ShopState, now_ms: i64) -> Vec<Check> {
    let orders: HashMap<&str, &Order> = state.orders.iter().map(|o| (o.id.as_str(), o)).collect();
    // Stock and balance: what each decided order holds in the ledger.
    let ledger_check = |name, rows: &[LedgerRow], expect: &dyn Fn(&Order) -> (i64, i64)| {
        let mut offending = Vec::new();
        let rows = by_order(rows);
        for (id, rows) in &rows {
            match orders.get(id) {
                None => offending.push((
                    id.to_string(),
                    "ledger rows of an order the order service does not know".to_owned(),
                )),
                Some(o) if o.status == "PENDING" => {}
                Some(o) => {
                    let (owner, amount) = held(rows);
                    let (want_owner, want) = expect(o);
                    if amount != want || (want > 0 && owner != Some(want_owner)) {
                        offending.push((
                            o.id.clone(),
                            format!(
                                "{}: holds {amount} of {}, should hold {want} of {want_owner}",
                                o.status,
                                owner.unwrap_or(0)
                            ),
                        ));
                    }
                }
            }
        }
        for o in state
            .orders
            .iter()
            .filter(|o| o.is_live() && !rows.contains_key(o.id.as_str()))
        {
            let (_, want) = expect(o);
            if want > 0 {
                offending.push((
                    o.id.clone(),
                    format!("{}: no ledger row, should hold {want}", o.status),
                ));
            }
        }
        Check { name, offending }
    };
    let stock = ledger_check("stock", &state.stock, &|o: &Order| {
        (o.goods_id, if o.is_live() { o.quantity } else { 0 })
    });
    let balance = ledger_check("balance", &state.money, &|o: &Order| {
        (
            o.user_id,
            if o.is_live() {
                cents(&o.balance_used).unwrap_or(0)
            } else {
                0
            },
        )
    });

    // Coupons: used by at most one live order, the one the coupon names;
    // a cancelled order's coupon is not held by it.
    let mut coupon_offending = Vec::new();
    let coupons: HashMap<i64, &Coupon> = state.coupons.iter().map(|c| (c.id, c)).collect();
    let mut live_by_coupon: BTreeMap<i64, Vec<&Order>> = BTreeMap::new();
    for o in &state.orders {
        if let (Some(c), true) = (o.coupon_id, o.is_live()) {
            live_by_coupon.entry(c).or_default().push(o);
        }
    }
    for (coupon, users) in &live_by_coupon {
        if users.len() > 1 {
            coupon_offending.push((
                format!("coupon {coupon}"),
                format!("used by {} live orders", users.len()),
            ));
        }
        for o in users {
            match coupons.get(coupon) {
                Some(c) if c.status == "used" && c.order_id.as_deref() == Some(o.id.as_str()) => {}
                Some(c) => coupon_offending.push((
                    o.id.clone(),
                    format!(
                        "coupon {coupon} is {} by {}",
                        c.status,
                        c.order_id.as_deref().unwrap_or("no order")
                    ),
                )),
                None => {
                    coupon_offending.push((o.id.clone(), format!("coupon {coupon} does not exist")))
                }
            }
        }
    }
    for c in &state.coupons {
        if let Some(holder) = c.order_id.as_deref() {
            match orders.get(holder) {
                Some(o) if o.status == "CANCELLED" => coupon_offending.push((
                    o.id.clone(),
                    format!("CANCELLED but still holds coupon {}", c.id),
                )),
                None => coupon_offending.push((
                    holder.to_owned(),
                    format!(
                        "coupon {} is used by an order the order service does not know",
                        c.id
                    ),
                )),
                _ => {}
            }
        }
    }
    let coupon_ledger = by_order(&state.coupon);
    for (id, rows) in &coupon_ledger {
        if let Some(o) = orders.get(id) {
            let (_, held) = held(rows);
            if o.status == "CANCELLED" && held > 0 {
                coupon_offending.push((
                    o.id.clone(),
                    "CANCELLED but its coupon ledger was not released".to_owned(),
                ));
            }
        }
    }
    let coupon = Check {
        name: "coupon",
        offending: coupon_offending,
    };

    // Every PAID order: exactly one payment log and exactly its points.
    let mut paid_offending = Vec::new();
    let mut logs: HashMap<&str, usize> = HashMap::new();
    for l in state.payment_log.iter().filter(|l| l.event == "paid") {
        *logs.entry(l.order_id.as_str()).or_default() += 1;
    }
    let credits: HashMap<&str, &Credit> = state
        .credits
        .iter()
        .map(|c| (c.order_id.as_str(), c))
        .collect();
    for o in state.orders.iter().filter(|o| o.status == "PAID") {
        let n = logs.get(o.id.as_str()).copied().unwrap_or(0);
        if n != 1 {
            paid_offending.push((o.id.clone(), format!("{n} payment logs, should be 1")));
        }
        let want = cents(&o.amount_to_pay).unwrap_or(0) / 100;
        match credits.get(o.id.as_str()) {
            Some(c) if c.points == want => {}
            Some(c) => paid_offending.push((
                o.id.clone(),
                format!("{} points, should be {want}", c.points),
            )),
            None => paid_offending.push((o.id.clone(), format!("no points, should be {want}"))),
        }
    }
    for c in &state.credits {
        if orders
            .get(c.order_id.as_str())
            .is_some_and(|o| o.status != "PAID")
        {
            paid_offending.push((
                c.order_id.clone(),
                format!("{} points credited to an order that is not PAID", c.points),
            ));
        }
    }
    let paid = Check {
        name: "paid",
        offending: paid_offending,
    };

    // No order PENDING longer than the saga timeout plus one sweep.
    let bound = state.pending_bound_ms as i64;
    let pending = Check {
        name: "pending",
        offending: state
            .orders
            .iter()
            .filter(|o| o.status == "PENDING" && now_ms - o.created_at > bound)
            .map(|o| {
                (
                    o.id.clone(),
                    format!(
                        "PENDING since {} ({} s)",
                        format_ms(o.created_at),
                        (now_ms - o.created_at) / 1000
                    ),
                )
            })
            .collect(),
    };
    vec![stock, balance, coupon, paid, pending]
}

/// Reads everything the checks need from the services, at once.
async fn read_state(ctx: &Ctx) -> Result<ShopState, ConsoleError> {
    let shop = &ctx.app.shop;
    let e = |e: crate::shop::ShopError| ConsoleError::Shop(e.to_string());
    let (orders, stock, coupon, money, coupons, payment_log, credits) = tokio::join!(
        shop.all_orders(),
        shop.whole_ledger(Ledger::Stock),
        shop.whole_ledger(Ledger::Coupon),
        shop.whole_ledger(Ledger::Money),
        shop.all_coupons(),
        shop.whole_payment_log(),
        shop.all_credits(),
    );
    let (orders, pending_bound_ms) = orders.map_err(e)?;
    Ok(ShopState {
        orders,
        pending_bound_ms,
        stock: stock.map_err(e)?,
        coupon: coupon.map_err(e)?,
        money: money.map_err(e)?,
        coupons: coupons.map_err(e)?,
        payment_log: payment_log.map_err(e)?,
        credits: credits.map_err(e)?,
    })
}

/// `GET /invariants`.
pub async fn invariants(ctx: Ctx) -> Response {
    let result = invariants_page(&ctx).await;
    framed(&ctx, Nav::Invariants, result)
}

fn offender(id: &str) -> Markup {
    if id.len() == 36 {
        html! { a.mono href=(format!("/order?id={}", enc(id))) { (id) } }
    } else {
        html! { span.mono { (id) } }
    }
}

async fn invariants_page(ctx: &Ctx) -> Result<Response, ConsoleError> {
    let t = ctx.t;
    let state = read_state(ctx).await?;
    let checks = run_checks(&state, now_millis());
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &state.orders {
        *counts.entry(o.status.as_str()).or_default() += 1;
    }
    let all_ok = checks.iter().all(|c| c.offending.is_empty());
    let body = html! {
        p {
            @if all_ok { span.badge.ok.big { (t.all_hold) } } @else { span.badge.bad.big { (t.some_broken) } }
            " " @for (status, n) in &counts { (status_badge(status)) " " (n) " " }
        }
        @for c in &checks {
            section.card.check id=(format!("check-{}", c.name)) {
                h2 {
                    @if c.offending.is_empty() { span.badge.ok { (t.holds) } } @else { span.badge.bad { (t.broken) " · " (c.offending.len()) } }
                    " " (check_title(ctx, c.name))
                }
                p.note { (check_rule(ctx, c.name)) }
                @if !c.offending.is_empty() {
                    table {
                        thead { tr { th { (t.shop_order) } th { (t.why) } } }
                        tbody {
                            @for (id, why) in c.offending.iter().take(SHOWN) {
                                tr { td { (offender(id)) } td { (why) } }
                            }
                        }
                    }
                    @if c.offending.len() > SHOWN { p.note { (SHOWN) " / " (c.offending.len()) } }
                }
            }
        }
    };
    Ok(page(ctx, Nav::Invariants, t.nav_invariants, true, body))
}

fn check_title(ctx: &Ctx, name: &str) -> &'static str {
    let t = ctx.t;
    match name {
        "stock" => t.inv_stock,
        "balance" => t.inv_balance,
        "coupon" => t.inv_coupon,
        "paid" => t.inv_paid,
        _ => t.inv_pending,
    }
}

fn check_rule(ctx: &Ctx, name: &str) -> &'static str {
    let t = ctx.t;
    match name {
        "stock" => t.inv_stock_rule,
        "balance" => t.inv_balance_rule,
        "coupon" => t.inv_coupon_rule,
        "paid" => t.inv_paid_rule,
        _ => t.inv_pending_rule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, status: &str, quantity: i64, balance: &str, coupon: Option<i64>) -> Order {
        Order {
            id: id.into(),
            user_id: 7,
            goods_id: 1,
            quantity,
            coupon_id: coupon,
            balance_used: balance.into(),
            amount_to_pay: "12.99".into(),
            status: status.into(),
            cancel_reason: None,
            created_at: 1000,
            updated_at: 1000,
            payment_id: None,
        }
    }

    fn row(order: &str, op: &str, owner: Option<i64>, amount: Option<&str>) -> LedgerRow {
        LedgerRow {
            order_id: order.into(),
            operation: op.into(),
            owner,
            amount: amount.map(str::to_owned),
            created_at: 1,
        }
    }

    fn state() -> ShopState {
        ShopState {
            orders: vec![
                order("a", "PAID", 2, "1.50", Some(9)),
                order("b", "CANCELLED", 3, "0.00", Some(8)),
                order("c", "PENDING", 1, "0.00", None),
            ],
            pending_bound_ms: 60_000,
            stock: vec![
                row("a", "reserve", Some(1), Some("2")),
                row("b", "cancel", Some(1), Some("3")),
                row("b", "reserve", Some(1), Some("3")),
            ],
            coupon: vec![
                row("a", "use", Some(9), None),
                row("b", "cancel", None, None),
            ],
            money: vec![row("a", "reserve", Some(7), Some("1.50"))],
            coupons: vec![
                Coupon {
                    id: 9,
                    user_id: 7,
                    status: "used".into(),
                    order_id: Some("a".into()),
                },
                Coupon {
                    id: 8,
                    user_id: 7,
                    status: "unused".into(),
                    order_id: None,
                },
            ],
            payment_log: vec![PaymentLog {
                id: 1,
                payment_id: "p".into(),
                event: "paid".into(),
                order_id: "a".into(),
                amount: "12.99".into(),
                logged_at: 1,
            }],
            credits: vec![Credit {
                payment_id: "p".into(),
                order_id: "a".into(),
                amount: "12.99".into(),
                points: 12,
                credited_at: 1,
            }],
        }
    }

    #[test]
    fn a_consistent_shop_holds_every_invariant() {
        for c in run_checks(&state(), 2000) {
            assert!(c.offending.is_empty(), "{}: {:?}", c.name, c.offending);
        }
    }

    #[test]
    fn each_break_is_found_with_its_order() {
        let broken = |f: &dyn Fn(&mut ShopState), name: &str| {
            let mut s = state();
            f(&mut s);
            let checks = run_checks(&s, 2000);
            let c = checks.iter().find(|c| c.name == name).unwrap();
            assert!(!c.offending.is_empty(), "{name} should break");
            checks.iter().filter(|c| !c.offending.is_empty()).count()
        };
        broken(
            &|s| {
                s.stock
                    .retain(|r| !(r.order_id == "b" && r.operation == "cancel"))
            },
            "stock",
        );
        broken(&|s| s.stock[0].amount = Some("1".into()), "stock");
        broken(&|s| s.money.clear(), "balance");
        broken(
            &|s| {
                s.coupons[1] = Coupon {
                    id: 8,
                    user_id: 7,
                    status: "used".into(),
                    order_id: Some("b".into()),
                }
            },
            "coupon",
        );
        broken(&|s| s.credits[0].points = 13, "paid");
        broken(&|s| s.payment_log.push(s.payment_log[0].clone()), "paid");
        broken(&|s| s.orders[2].created_at = -100_000, "pending");
        assert_eq!(cents("12.3"), Some(1230));
        assert_eq!(cents("0.05"), Some(5));
        assert_eq!(cents("x"), None);
    }
}
