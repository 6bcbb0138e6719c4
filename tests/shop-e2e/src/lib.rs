//! The shop running in this process for end-to-end tests: a name server and
//! a broker (mq-testkit), the goods, coupon, user and order services each on
//! its own fresh database (SQLite or PostgreSQL), HTTP on port 0; seeding
//! helpers; a fault proxy that makes a service fail or stall; and the
//! invariants of DESIGN.md section 5, checked against every database.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use mq_testkit::Cluster;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use shop_common::service::ServiceConfig;
use shop_common::testing::TestDatabase;
use shop_common::{Db, DbKind};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for asynchronous effects (compensations, check-backs).
pub const EVENTUALLY: Duration = Duration::from_secs(20);

/// One service running in this process.
pub struct Service {
    pub url: String,
    pub db: Db,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Service {
    fn spawn<F>(port: u16, db: Db, run: impl FnOnce(oneshot::Receiver<()>) -> F) -> Service
    where
        F: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(stopped));
        Service {
            url: format!("http://127.0.0.1:{port}"),
            db,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Starts a service with no keys of its own on `database_url`, at the
    /// name server `namesrv`.
    async fn start_plain(
        service: &'static shop_common::service::Service,
        database_url: &str,
        namesrv: &str,
    ) -> Service {
        let mut config = ServiceConfig::for_tests(database_url);
        config.namesrv_addr = namesrv.to_owned();
        let app = service
            .start(config)
            .await
            .unwrap_or_else(|e| panic!("the {} service starts: {e}", service.name));
        Service::spawn(app.port(), app.db().clone(), |rx| {
            app.run_until_stopped(stopped(rx))
        })
    }

    /// A service slot filled in later (its database already known).
    fn placeholder(db: Db) -> Service {
        Service {
            url: String::new(),
            db,
            stop: None,
            task: None,
        }
    }

    /// Stops the service gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Ends the service abruptly, as a crash would: its tasks are dropped
    /// mid-flight (in-flight requests, its producer's pending work).
    pub fn kill(&mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn stopped(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

/// What a fault proxy does with reservation calls.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer 500 without forwarding.
    Fail,
    /// Wait this long, then forward (a slow network or service).
    Delay(Duration),
}

/// Sits in front of a service: GETs pass through, POSTs meet `fault`.
pub struct FaultProxy {
    pub url: String,
}

#[derive(Clone)]
struct ProxyState {
    target: String,
    fault: Fault,
    http: reqwest::Client,
}

async fn forward_get(State(s): State<ProxyState>, uri: axum::http::Uri) -> impl IntoResponse {
    match s.http.get(format!("{}{}", s.target, uri)).send().await {
        Ok(r) => (
            StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
            r.bytes().await.unwrap_or_default(),
        )
            .into_response(),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

async fn faulty_post(
    State(s): State<ProxyState>,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    match s.fault {
        Fault::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response(),
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            let sent = s
                .http
                .post(format!("{}{}", s.target, uri))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            match sent {
                Ok(r) => (
                    StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
                    r.bytes().await.unwrap_or_default(),
                )
                    .into_response(),
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    }
}

impl FaultProxy {
    pub async fn start(target: &str, fault: Fault) -> FaultProxy {
        let state = ProxyState {
            target: target.to_owned(),
            fault,
            http: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/{*path}", get(forward_get).post(faulty_post))
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FaultProxy { url }
    }
}

/// Options of a shop under test.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// A fault in front of the user service, as the order service sees it.
    pub user_fault: Option<Fault>,
    pub saga_timeout: Duration,
    pub call_timeout: Duration,
    pub sweep_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            user_fault: None,
            saga_timeout: Duration::from_millis(1500),
            call_timeout: Duration::from_millis(1000),
            sweep_interval: Duration::from_millis(500),
        }
    }
}

/// The shop, with what was seeded so the invariants can be checked.
pub struct Shop {
    pub cluster: Cluster,
    pub goods: Service,
    pub coupon: Service,
    pub user: Service,
    pub order: Service,
    pub pay: Service,
    pub log: Service,
    pub points: Service,
    pub gateway_url: String,
    pub http: reqwest::Client,
    pub options: Options,
    /// The URL the order service calls for users (the proxy, if any).
    user_url_for_order: String,
    order_db_url: String,
    pay_db_url: String,
    initial_stock: BTreeMap<i64, i64>,
    initial_balance: BTreeMap<i64, i64>,
    _dbs: Vec<TestDatabase>,
}

impl Shop {
    /// Starts everything on databases of `kind`; `None` when PostgreSQL is
    /// not configured outside CI (the test is skipped).
    pub async fn start(kind: DbKind, options: Options) -> Option<Shop> {
        let mut dbs = Vec::new();
        // goods, coupon, user, order, pay, log, points.
        for _ in 0..7 {
            dbs.push(TestDatabase::create(kind).await?);
        }
        let cluster = Cluster::start().await;
        let namesrv = cluster.namesrv.addr.clone();

        let goods = Service::start_plain(&shop_goods::SERVICE, &dbs[0].url, &namesrv).await;
        let coupon = Service::start_plain(&shop_coupon::SERVICE, &dbs[1].url, &namesrv).await;
        let user = Service::start_plain(&shop_user::SERVICE, &dbs[2].url, &namesrv).await;
        let log = Service::start_plain(&shop_log::SERVICE, &dbs[5].url, &namesrv).await;
        let points = Service::start_plain(&shop_points::SERVICE, &dbs[6].url, &namesrv).await;

        let app = shop_gateway::SERVICE
            .start(shop_gateway::config_for_tests())
            .await
            .expect("gateway starts");
        let gateway_url = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped(std::future::pending()));

        let user_url_for_order = match options.user_fault {
            Some(fault) => FaultProxy::start(&user.url, fault).await.url,
            None => user.url.clone(),
        };
        let mut shop = Shop {
            goods,
            coupon,
            user,
            order: Service::placeholder(Db::connect(&dbs[3].url, 1).await.expect("order db")),
            pay: Service::placeholder(Db::connect(&dbs[4].url, 1).await.expect("pay db")),
            log,
            points,
            gateway_url,
            pay_db_url: dbs[4].url.clone(),
            cluster,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a client"),
            options,
            user_url_for_order,
            order_db_url: dbs[3].url.clone(),
            initial_stock: BTreeMap::new(),
            initial_balance: BTreeMap::new(),
            _dbs: dbs,
        };
        shop.order = shop.start_order(options.sweep_interval).await;

        // The pay service must know its own URL for the gateway's callback.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let pay_addr = probe.local_addr().expect("an address");
        drop(probe);
        let mut config = ServiceConfig::for_tests_with(
            &shop.pay_db_url,
            shop_pay::Config::for_tests(&shop.order.url),
        );
        config.http_addr = pay_addr;
        config.namesrv_addr = shop.cluster.namesrv.addr.clone();
        config.own.gateway_url = shop.gateway_url.clone();
        config.own.public_url = format!("http://{pay_addr}");
        let app = shop_pay::SERVICE.start(config).await.expect("pay starts");
        let db = app.state().db.clone();
        shop.pay = Service::spawn(app.port(), db, |rx| app.run_until_stopped(stopped(rx)));
        Some(shop)
    }

    /// Starts (another instance of) the order service on the order database.
    pub async fn start_order(&self, sweep_interval: Duration) -> Service {
        let mut config = shop_order::SERVICE.config_for_tests(&self.order_db_url);
        config.http_addr = "127.0.0.1:0".parse().expect("an address");
        config.namesrv_addr = self.cluster.namesrv.addr.clone();
        config.own.goods_url = self.goods.url.clone();
        config.own.coupon_url = self.coupon.url.clone();
        config.own.user_url = self.user_url_for_order.clone();
        config.own.saga_timeout = self.options.saga_timeout;
        config.own.call_timeout = self.options.call_timeout;
        config.own.sweep_interval = sweep_interval;
        let app = shop_order::SERVICE
            .start(config)
            .await
            .expect("order starts");
        let db = app.state().db.clone();
        Service::spawn(app.port(), db, |rx| app.run_until_stopped(stopped(rx)))
    }

    async fn post(&self, url: String, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("the service answers");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("a status");
        let value = response.json().await.unwrap_or(Value::Null);
        (status, value)
    }

    async fn get(&self, url: String) -> Value {
        self.http
            .get(url)
            .send()
            .await
            .expect("the service answers")
            .json()
            .await
            .expect("JSON")
    }

    pub async fn add_goods(&mut self, price: &str, stock: i64) -> i64 {
        let (status, body) = self
            .post(
                format!("{}/goods", self.goods.url),
                json!({"name": "widget", "price": price, "stock": stock}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_i64().expect("an id");
        self.initial_stock.insert(id, stock);
        id
    }

    pub async fn add_user(&mut self, balance: &str) -> i64 {
        let (status, body) = self
            .post(
                format!("{}/users", self.user.url),
                json!({"name": "alice", "balance": balance}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_i64().expect("an id");
        self.initial_balance.insert(id, cents(balance));
        id
    }

    pub async fn add_coupon(&self, user_id: i64, amount: &str) -> i64 {
        let (status, body) = self
            .post(
                format!("{}/coupons", self.coupon.url),
                json!({"user_id": user_id, "amount": amount}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_i64().expect("an id")
    }

    /// `POST /orders`: the status and the JSON answer.
    pub async fn place_order(&self, body: Value) -> (StatusCode, Value) {
        self.post(format!("{}/orders", self.order.url), body).await
    }

    pub async fn order(&self, id: &str) -> Value {
        self.get(format!("{}/orders/{id}", self.order.url)).await
    }

    pub async fn stock(&self, goods_id: i64) -> i64 {
        self.get(format!("{}/goods/{goods_id}", self.goods.url))
            .await["stock"]
            .as_i64()
            .expect("stock")
    }

    pub async fn balance(&self, user_id: i64) -> Decimal {
        self.get(format!("{}/users/{user_id}", self.user.url)).await["balance"]
            .as_str()
            .expect("balance")
            .parse()
            .expect("a decimal")
    }

    pub async fn coupon_status(&self, coupon_id: i64) -> String {
        self.get(format!("{}/coupons/{coupon_id}", self.coupon.url))
            .await["status"]
            .as_str()
            .expect("status")
            .to_owned()
    }

    /// Checks DESIGN.md's invariants against every database; returns what
    /// is violated (empty when they all hold).
    pub async fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        let orders: Vec<OrderRow> = sqlx::query_as(
            "SELECT id, user_id, goods_id, quantity, coupon_id, balance_used_cents, amount_to_pay_cents, status, created_at FROM orders",
        )
        .fetch_all(self.order.db.pool())
        .await
        .expect("orders");
        let live = |status: &str| status == "CONFIRMED" || status == "PAID";
        for (goods_id, initial) in &self.initial_stock {
            let held: i64 = orders
                .iter()
                .filter(|o| o.goods_id == *goods_id && live(&o.status))
                .map(|o| o.quantity)
                .sum();
            let current: i64 = sqlx::query_scalar("SELECT stock FROM goods WHERE id = $1")
                .bind(*goods_id)
                .fetch_one(self.goods.db.pool())
                .await
                .expect("stock");
            if *initial != current + held {
                out.push(format!("stock of goods {goods_id}: initial {initial} != current {current} + held {held}"));
            }
        }
        for (user_id, initial) in &self.initial_balance {
            let held: i64 = orders
                .iter()
                .filter(|o| o.user_id == *user_id && live(&o.status))
                .map(|o| o.balance_used_cents)
                .sum();
            let current: i64 = sqlx::query_scalar("SELECT balance_cents FROM users WHERE id = $1")
                .bind(*user_id)
                .fetch_one(self.user.db.pool())
                .await
                .expect("balance");
            if *initial != current + held {
                out.push(format!("balance of user {user_id}: initial {initial} != current {current} + held {held}"));
            }
        }
        let coupons: Vec<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT id, status, order_id FROM coupon")
                .fetch_all(self.coupon.db.pool())
                .await
                .expect("coupons");
        for (coupon_id, status, order_id) in &coupons {
            let holders: Vec<_> = orders
                .iter()
                .filter(|o| o.coupon_id == Some(*coupon_id) && live(&o.status))
                .collect();
            if holders.len() > 1 {
                out.push(format!(
                    "coupon {coupon_id} is held by {} live orders",
                    holders.len()
                ));
            }
            match (status.as_str(), holders.first()) {
                ("used", Some(o)) if order_id.as_deref() == Some(o.id.as_str()) => {}
                ("unused", None) => {}
                (s, h) => out.push(format!(
                    "coupon {coupon_id} is {s} (order {order_id:?}) but its live order is {:?}",
                    h.map(|o| &o.id)
                )),
            }
        }
        for order in orders.iter().filter(|o| o.status == "PAID") {
            let logs: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM payment_log WHERE order_id = $1")
                    .bind(&order.id)
                    .fetch_one(self.log.db.pool())
                    .await
                    .expect("payment log");
            if logs != 1 {
                out.push(format!("PAID order {} has {logs} payment logs", order.id));
            }
            let points: Vec<i64> =
                sqlx::query_scalar("SELECT points FROM points_ledger WHERE order_id = $1")
                    .bind(&order.id)
                    .fetch_all(self.points.db.pool())
                    .await
                    .expect("points ledger");
            let expected = order.amount_to_pay_cents / 100;
            if points != [expected] {
                out.push(format!(
                    "PAID order {} credited {points:?} points, expected [{expected}]",
                    order.id
                ));
            }
        }
        let limit = shop_common::now_ms() - (self.options.saga_timeout.as_millis() as i64 + 2_000);
        for o in orders
            .iter()
            .filter(|o| o.status == "PENDING" && o.created_at < limit)
        {
            out.push(format!("order {} is PENDING past the saga timeout", o.id));
        }
        out
    }

    /// Waits until the invariants hold (compensations are asynchronous);
    /// panics with what is still violated.
    pub async fn assert_invariants(&self) {
        let deadline = tokio::time::Instant::now() + EVENTUALLY;
        loop {
            let violations = self.violations().await;
            if violations.is_empty() {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("invariants violated:\n{}", violations.join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Creates a payment for an order and has the gateway pay it; returns
    /// the payment.
    pub async fn pay(&self, order_id: &str) -> Value {
        let (status, payment) = self
            .post(
                format!("{}/payments", self.pay.url),
                json!({"order_id": order_id}),
            )
            .await;
        assert!(status.is_success(), "{payment}");
        let (status, paid) = self
            .post(
                format!("{}/api/pay", self.gateway_url),
                json!({
                    "payment_id": payment["payment_id"],
                    "order_id": order_id,
                    "amount": payment["amount"],
                    "notify_url": format!("{}/payments/callback", self.pay.url),
                }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{paid}");
        assert_eq!(paid["accepted"], true, "{paid}");
        payment
    }

    /// The points a user has.
    pub async fn points_of(&self, user_id: i64) -> i64 {
        self.get(format!("{}/points/{user_id}", self.points.url))
            .await["points"]
            .as_i64()
            .expect("points")
    }

    pub async fn stop(mut self) {
        self.pay.stop().await;
        self.log.stop().await;
        self.points.stop().await;
        self.order.stop().await;
        self.goods.stop().await;
        self.coupon.stop().await;
        self.user.stop().await;
        self.cluster.stop().await;
    }
}

/// The columns of an order the invariants need.
#[derive(Debug, sqlx::FromRow)]
struct OrderRow {
    id: String,
    user_id: i64,
    goods_id: i64,
    quantity: i64,
    coupon_id: Option<i64>,
    balance_used_cents: i64,
    amount_to_pay_cents: i64,
    status: String,
    created_at: i64,
}

/// `"12.34"` in cents.
pub fn cents(amount: &str) -> i64 {
    shop_common::money::to_cents(amount.parse().expect("an amount")).expect("whole cents")
}

/// Polls `check` until it holds or [`EVENTUALLY`] passes.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Shared ownership for tests that race many orders.
pub type SharedShop = Arc<Shop>;
