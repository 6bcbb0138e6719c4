//! The console's client of the shop: the services' operator API over
//! HTTP, logged in as the configured operator (the user service's
//! `POST /auth/login`), never their databases.
//!
//! Every answer is read into the types below, which name only the fields
//! the pages use (the services may add others). A token that expired is
//! replaced by a new log-in once per call.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::sync::Mutex;

/// How long one call to a service may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows asked for per page when reading a whole list.
const PAGE: usize = 1000;
/// Most pages read for one whole list (a million rows): a bound, so that a
/// service that always answers `next` cannot keep a page busy for ever.
const MAX_PAGES: usize = 1000;

/// Where the shop's services are and who the console is there.
#[derive(Clone, PartialEq, Eq)]
pub struct ShopConfig {
    pub order_url: String,
    pub goods_url: String,
    pub coupon_url: String,
    pub user_url: String,
    pub pay_url: String,
    pub log_url: String,
    pub points_url: String,
    /// An operator login of the user service.
    pub login: String,
    pub password: String,
}

impl fmt::Debug for ShopConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShopConfig")
            .field("order_url", &self.order_url)
            .field("goods_url", &self.goods_url)
            .field("coupon_url", &self.coupon_url)
            .field("user_url", &self.user_url)
            .field("pay_url", &self.pay_url)
            .field("log_url", &self.log_url)
            .field("points_url", &self.points_url)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// Why a call to the shop failed, as the operator should read it.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    #[error("the shop is not configured (shop.* keys)")]
    NotConfigured,
    #[error("{service} service: {reason}")]
    Call {
        service: &'static str,
        reason: String,
    },
}

fn call_error(service: &'static str, reason: impl fmt::Display) -> ShopError {
    ShopError::Call {
        service,
        reason: reason.to_string(),
    }
}

/// An order as the order service's operator API shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: String,
    pub user_id: i64,
    pub goods_id: i64,
    pub quantity: i64,
    pub coupon_id: Option<i64>,
    pub balance_used: String,
    pub amount_to_pay: String,
    pub status: String,
    pub cancel_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub payment_id: Option<String>,
}

impl Order {
    /// CONFIRMED or PAID: it holds its stock, coupon and balance.
    pub fn is_live(&self) -> bool {
        matches!(self.status.as_str(), "CONFIRMED" | "PAID")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    pub next: Option<String>,
    pub saga_timeout_ms: u64,
    pub sweep_interval_ms: u64,
}

/// A row of the stock, coupon or money ledger. `owner` is the goods,
/// coupon or user; `amount` the quantity or money (none for coupons).
#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub order_id: String,
    pub operation: String,
    pub owner: Option<i64>,
    pub amount: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Deserialize)]
struct RawLedgerRow {
    order_id: String,
    operation: String,
    #[serde(default)]
    goods_id: Option<i64>,
    #[serde(default)]
    coupon_id: Option<i64>,
    #[serde(default)]
    user_id: Option<i64>,
    #[serde(default)]
    quantity: Option<i64>,
    #[serde(default)]
    amount: Option<String>,
    created_at: i64,
}

#[derive(Debug, Deserialize)]
struct LedgerPage {
    rows: Vec<RawLedgerRow>,
    next: Option<String>,
}

/// Which ledger of which service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ledger {
    Stock,
    Coupon,
    Money,
}

impl Ledger {
    fn service(self) -> &'static str {
        match self {
            Ledger::Stock => "goods",
            Ledger::Coupon => "coupon",
            Ledger::Money => "user",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Ledger::Stock => "/operator/stock-ledger",
            Ledger::Coupon => "/operator/coupon-ledger",
            Ledger::Money => "/operator/money-ledger",
        }
    }

    fn row(self, raw: RawLedgerRow) -> LedgerRow {
        let (owner, amount) = match self {
            Ledger::Stock => (raw.goods_id, raw.quantity.map(|q| q.to_string())),
            Ledger::Coupon => (raw.coupon_id, None),
            Ledger::Money => (raw.user_id, raw.amount),
        };
        LedgerRow {
            order_id: raw.order_id,
            operation: raw.operation,
            owner,
            amount,
            created_at: raw.created_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Payment {
    pub payment_id: String,
    pub order_id: String,
    pub amount: String,
    pub status: String,
    pub trade_no: Option<String>,
    pub created_at: i64,
    pub paid_at: Option<i64>,
    #[serde(default)]
    pub refunded_at: Option<i64>,
    #[serde(default)]
    pub pay_msg_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PaymentPage {
    payments: Vec<Payment>,
    next: Option<String>,
}

/// A row of the log service's payment log.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentLog {
    pub id: i64,
    pub payment_id: String,
    pub event: String,
    pub order_id: String,
    pub amount: String,
    pub logged_at: i64,
}

/// A row of the log service's order log (`event` is `cancelled`).
#[derive(Debug, Clone, Deserialize)]
pub struct OrderLog {
    pub id: i64,
    pub order_id: String,
    pub event: String,
    pub reason: String,
    pub logged_at: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Credit {
    pub payment_id: String,
    pub order_id: String,
    pub amount: String,
    pub points: i64,
    pub credited_at: i64,
}

#[derive(Debug, Deserialize)]
struct CreditPage {
    credits: Vec<Credit>,
    next: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Coupon {
    pub id: i64,
    pub user_id: i64,
    pub status: String,
    pub order_id: Option<String>,
}

/// What the order list asks for.
#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    pub status: Option<String>,
    pub user_id: Option<i64>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub before: Option<String>,
    pub limit: usize,
}

/// The shop as the console calls it.
pub struct ShopClient {
    config: Option<ShopConfig>,
    http: reqwest::Client,
    token: Mutex<Option<String>>,
}

impl ShopClient {
    pub fn new(config: Option<ShopConfig>) -> ShopClient {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .unwrap_or_default();
        ShopClient {
            config,
            http,
            token: Mutex::new(None),
        }
    }

    pub fn is_configured(&self) -> bool {
        self.config.is_some()
    }

    fn config(&self) -> Result<&ShopConfig, ShopError> {
        self.config.as_ref().ok_or(ShopError::NotConfigured)
    }

    /// A fresh operator token from the user service.
    async fn log_in(&self) -> Result<String, ShopError> {
        let config = self.config()?;
        #[derive(Deserialize)]
        struct Answer {
            token: String,
        }
        let response = self
            .http
            .post(format!("{}/auth/login", config.user_url))
            .json(&serde_json::json!({ "login": config.login, "password": config.password }))
            .send()
            .await
            .map_err(|e| call_error("user", format!("log-in: {}", short(e))))?;
        if !response.status().is_success() {
            return Err(call_error(
                "user",
                format!(
                    "the console's operator log-in was refused ({})",
                    response.status()
                ),
            ));
        }
        let answer: Answer = response
            .json()
            .await
            .map_err(|e| call_error("user", format!("log-in answer: {}", short(e))))?;
        Ok(answer.token)
    }

    async fn token(&self, renew: bool) -> Result<String, ShopError> {
        let mut token = self.token.lock().await;
        if renew || token.is_none() {
            *token = Some(self.log_in().await?);
        }
        Ok(token.clone().unwrap_or_default())
    }

    /// `GET base + path_and_query` as the operator; a 401 logs in again once.
    async fn get<T: DeserializeOwned>(
        &self,
        service: &'static str,
        base: &str,
        path_and_query: &str,
    ) -> Result<T, ShopError> {
        let url = format!("{base}{path_and_query}");
        let mut renew = false;
        loop {
            let token = self.token(renew).await?;
            let response = self
                .http
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|e| call_error(service, short(e)))?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && !renew {
                renew = true;
                continue;
            }
            if !status.is_success() {
                // The shop's error shape: {"error": {"code", "message"}}.
                #[derive(Deserialize)]
                struct Refusal {
                    error: RefusalBody,
                }
                #[derive(Deserialize)]
                struct RefusalBody {
                    message: String,
                }
                let text = response.text().await.unwrap_or_default();
                let message = serde_json::from_str::<Refusal>(&text)
                    .map(|r| r.error.message)
                    .unwrap_or_default();
                return Err(call_error(service, format!("{status} {message}")));
            }
            return response
                .json()
                .await
                .map_err(|e| call_error(service, format!("unreadable answer: {}", short(e))));
        }
    }

    /// One page of orders.
    pub async fn orders(&self, query: &OrderQuery) -> Result<OrderPage, ShopError> {
        let config = self.config()?;
        let mut q = vec![format!("limit={}", query.limit.clamp(1, PAGE))];
        if let Some(s) = &query.status {
            q.push(format!("status={}", crate::web::enc(s)));
        }
        if let Some(u) = query.user_id {
            q.push(format!("user_id={u}"));
        }
        if let Some(f) = query.from_ms {
            q.push(format!("from={f}"));
        }
        if let Some(t) = query.to_ms {
            q.push(format!("to={t}"));
        }
        if let Some(b) = &query.before {
            q.push(format!("before={}", crate::web::enc(b)));
        }
        self.get(
            "order",
            &config.order_url,
            &format!("/operator/orders?{}", q.join("&")),
        )
        .await
    }

    /// Every order, and the order service's PENDING bound.
    pub async fn all_orders(&self) -> Result<(Vec<Order>, u64), ShopError> {
        let mut query = OrderQuery {
            limit: PAGE,
            ..OrderQuery::default()
        };
        let mut out = Vec::new();
        let mut bound = 0;
        for _ in 0..MAX_PAGES {
            let page = self.orders(&query).await?;
            bound = page.saga_timeout_ms + page.sweep_interval_ms;
            out.extend(page.orders);
            match page.next {
                Some(next) => query.before = Some(next),
                None => break,
            }
        }
        Ok((out, bound))
    }

    pub async fn order(&self, id: &str) -> Result<Order, ShopError> {
        let config = self.config()?;
        self.get(
            "order",
            &config.order_url,
            &format!("/operator/orders/{}", crate::web::enc(id)),
        )
        .await
    }

    fn ledger_base(&self, ledger: Ledger) -> Result<&str, ShopError> {
        let config = self.config()?;
        Ok(match ledger {
            Ledger::Stock => &config.goods_url,
            Ledger::Coupon => &config.coupon_url,
            Ledger::Money => &config.user_url,
        })
    }

    /// The rows of one order in `ledger`.
    pub async fn ledger_of(
        &self,
        ledger: Ledger,
        order_id: &str,
    ) -> Result<Vec<LedgerRow>, ShopError> {
        let base = self.ledger_base(ledger)?;
        let page: LedgerPage = self
            .get(
                ledger.service(),
                base,
                &format!("{}?order_id={}", ledger.path(), crate::web::enc(order_id)),
            )
            .await?;
        Ok(page.rows.into_iter().map(|r| ledger.row(r)).collect())
    }

    /// Every row of `ledger`.
    pub async fn whole_ledger(&self, ledger: Ledger) -> Result<Vec<LedgerRow>, ShopError> {
        let base = self.ledger_base(ledger)?;
        let mut out = Vec::new();
        let mut after = String::new();
        for _ in 0..MAX_PAGES {
            let mut path = format!("{}?limit={PAGE}", ledger.path());
            if !after.is_empty() {
                path.push_str(&format!("&after={after}"));
            }
            let page: LedgerPage = self.get(ledger.service(), base, &path).await?;
            out.extend(page.rows.into_iter().map(|r| ledger.row(r)));
            match page.next {
                Some(next) => after = crate::web::enc(&next),
                None => break,
            }
        }
        Ok(out)
    }

    pub async fn payments_of(&self, order_id: &str) -> Result<Vec<Payment>, ShopError> {
        let config = self.config()?;
        let page: PaymentPage = self
            .get(
                "pay",
                &config.pay_url,
                &format!("/operator/payments?order_id={}", crate::web::enc(order_id)),
            )
            .await?;
        Ok(page.payments)
    }

    pub async fn all_payments(&self) -> Result<Vec<Payment>, ShopError> {
        let config = self.config()?;
        let mut out = Vec::new();
        let mut after = String::new();
        for _ in 0..MAX_PAGES {
            let mut path = format!("/operator/payments?limit={PAGE}");
            if !after.is_empty() {
                path.push_str(&format!("&after={after}"));
            }
            let page: PaymentPage = self.get("pay", &config.pay_url, &path).await?;
            out.extend(page.payments);
            match page.next {
                Some(next) => after = crate::web::enc(&next),
                None => break,
            }
        }
        Ok(out)
    }

    pub async fn payment_log_of(&self, order_id: &str) -> Result<Vec<PaymentLog>, ShopError> {
        let config = self.config()?;
        self.get(
            "log",
            &config.log_url,
            &format!(
                "/logs/payments?order_id={}&limit={PAGE}",
                crate::web::enc(order_id)
            ),
        )
        .await
    }

    pub async fn order_log_of(&self, order_id: &str) -> Result<Vec<OrderLog>, ShopError> {
        let config = self.config()?;
        self.get(
            "log",
            &config.log_url,
            &format!(
                "/logs/orders?order_id={}&limit={PAGE}",
                crate::web::enc(order_id)
            ),
        )
        .await
    }

    pub async fn whole_payment_log(&self) -> Result<Vec<PaymentLog>, ShopError> {
        let config = self.config()?;
        let mut out: Vec<PaymentLog> = Vec::new();
        let mut after = 0;
        for _ in 0..MAX_PAGES {
            let page: Vec<PaymentLog> = self
                .get(
                    "log",
                    &config.log_url,
                    &format!("/logs/payments?after_id={after}&limit={PAGE}"),
                )
                .await?;
            let full = page.len() == PAGE;
            after = page.last().map_or(after, |p| p.id);
            out.extend(page);
            if !full {
                break;
            }
        }
        Ok(out)
    }

    pub async fn credits_of(&self, order_id: &str) -> Result<Vec<Credit>, ShopError> {
        let config = self.config()?;
        let page: CreditPage = self
            .get(
                "points",
                &config.points_url,
                &format!("/operator/credits?order_id={}", crate::web::enc(order_id)),
            )
            .await?;
        Ok(page.credits)
    }

    pub async fn all_credits(&self) -> Result<Vec<Credit>, ShopError> {
        let config = self.config()?;
        let mut out = Vec::new();
        let mut after = String::new();
        for _ in 0..MAX_PAGES {
            let mut path = format!("/operator/credits?limit={PAGE}");
            if !after.is_empty() {
                path.push_str(&format!("&after={after}"));
            }
            let page: CreditPage = self.get("points", &config.points_url, &path).await?;
            out.extend(page.credits);
            match page.next {
                Some(next) => after = crate::web::enc(&next),
                None => break,
            }
        }
        Ok(out)
    }

    pub async fn all_coupons(&self) -> Result<Vec<Coupon>, ShopError> {
        let config = self.config()?;
        let mut out: Vec<Coupon> = Vec::new();
        let mut after = 0;
        for _ in 0..MAX_PAGES {
            let page: Vec<Coupon> = self
                .get(
                    "coupon",
                    &config.coupon_url,
                    &format!("/coupons?after_id={after}&limit={PAGE}"),
                )
                .await?;
            let full = page.len() == PAGE;
            after = page.last().map_or(after, |c| c.id);
            out.extend(page);
            if !full {
                break;
            }
        }
        Ok(out)
    }
}

/// A reqwest error without the URL's query (it may hold ids only, but a
/// short line reads better on a page).
fn short(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "did not answer in time".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        error.without_url().to_string()
    }
}
