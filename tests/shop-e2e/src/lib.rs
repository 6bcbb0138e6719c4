//! The shop running in this process for end-to-end tests: a name server and
//! a broker (mq-testkit), the goods, coupon, user and order services each on
//! its own fresh database (SQLite or PostgreSQL), HTTP on port 0; seeding
//! helpers; a fault proxy that makes a service fail or stall; and the
//! invariants of DESIGN.md section 5, checked against every database.
//!
//! Authentication is on as in production: the services sign their calls
//! and events (test keys), every other service checks tokens with the user
//! service, the seeding goes through an operator's log-in, and each user
//! the tests add signs up, is topped up by the operator and logs in; its
//! requests carry its own token.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use mq_testkit::Cluster;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use shop_common::metrics::ShopMetrics;
use shop_common::service::{Extension, Sessions};
use shop_common::testing::TestDatabase;
use shop_common::{Db, DbKind};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod invariants;
mod proxy;

pub use proxy::{Fault, FaultProxy};

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
    /// name server `namesrv`, checking tokens at `user_url`.
    async fn start_plain<X: Extension<State = Db>>(
        service: &'static shop_common::service::Service<X>,
        database_url: &str,
        namesrv: &str,
        user_url: &str,
        metrics: &ShopMetrics,
    ) -> Service {
        let mut config = service.config_for_tests(database_url);
        config.namesrv_addr = namesrv.to_owned();
        config.metrics = Some(metrics.clone());
        config.sessions = sessions(user_url);
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

/// Tokens checked at the user service, as in production.
fn sessions(user_url: &str) -> Sessions {
    Sessions::Remote {
        url: user_url.to_owned(),
        cache_for: Duration::from_secs(1),
    }
}

/// The operator the tests log in as.
pub const OPERATOR: &str = "ops";
/// Its password.
pub const OPERATOR_PASSWORD: &str = "operator-password-of-the-tests";

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

/// A free port for the pay service, and a fake gateway that calls back
/// there; returns the port and the gateway's URL.
async fn start_gateway(
    dir: &std::path::Path,
    metrics: &ShopMetrics,
) -> (std::net::SocketAddr, String) {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let pay_addr = probe.local_addr().expect("an address");
    drop(probe);
    let mut gateway_config =
        shop_gateway::config_for_tests(&format!("http://{pay_addr}/payments/callback"), dir);
    gateway_config.metrics = Some(metrics.clone());
    let app = shop_gateway::SERVICE
        .start(gateway_config)
        .await
        .expect("gateway starts");
    let gateway_url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    (pay_addr, gateway_url)
}

/// The shop, with what was seeded so the invariants can be checked.
pub struct Shop {
    pub cluster: Cluster,
    /// The families every service records into, as in the all-in-one run
    /// (render them with `metrics.registry()`).
    pub metrics: ShopMetrics,
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
    /// The operator's token.
    pub operator: String,
    /// Each added user's token.
    tokens: std::sync::Mutex<BTreeMap<i64, String>>,
    _gateway_dir: tempfile::TempDir,
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
        // Check-backs every 300 ms (the test kit's), for a minute rather
        // than the kit's 15 checks (4.5 s): a half message must outlive the
        // restart of an order service that died mid-saga, as it does with
        // RocketMQ's defaults (15 checks a minute apart), however slow the
        // restart is on a loaded machine.
        let cluster = Cluster::start_with(|broker, _| broker.transaction_check_max = 200).await;
        let namesrv = cluster.namesrv.addr.clone();
        let metrics = ShopMetrics::new();

        let mut config = shop_user::SERVICE.config_for_tests(&dbs[2].url);
        config.namesrv_addr = namesrv.clone();
        config.metrics = Some(metrics.clone());
        let hash = shop_user::operators::hash_password(OPERATOR_PASSWORD).expect("a hash");
        config.own.operators =
            shop_user::operators::Operators::from_entries([(OPERATOR, hash.as_str())])
                .expect("the operator");
        let app = shop_user::SERVICE.start(config).await.expect("user starts");
        let user = Service::spawn(app.port(), app.state().clone(), |rx| {
            app.run_until_stopped(stopped(rx))
        });
        let goods = Service::start_plain(
            &shop_goods::SERVICE,
            &dbs[0].url,
            &namesrv,
            &user.url,
            &metrics,
        )
        .await;
        let coupon = Service::start_plain(
            &shop_coupon::SERVICE,
            &dbs[1].url,
            &namesrv,
            &user.url,
            &metrics,
        )
        .await;
        let log = Service::start_plain(
            &shop_log::SERVICE,
            &dbs[5].url,
            &namesrv,
            &user.url,
            &metrics,
        )
        .await;
        let points = Service::start_plain(
            &shop_points::SERVICE,
            &dbs[6].url,
            &namesrv,
            &user.url,
            &metrics,
        )
        .await;

        // The pay service must know its own URL for the gateway's callback,
        // and the gateway calls back only that URL: pay's port is picked
        // first (and picked again below if another process takes it).
        let gateway_dir = tempfile::tempdir().expect("a gateway folder");
        let (pay_addr, gateway_url) = start_gateway(gateway_dir.path(), &metrics).await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a client");
        let operator = log_in(&http, &user.url, OPERATOR, OPERATOR_PASSWORD).await;

        let user_url_for_order = match options.user_fault {
            Some(fault) => FaultProxy::start(&user.url, fault).await.url,
            None => user.url.clone(),
        };
        let mut shop = Shop {
            metrics,
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
            http,
            options,
            operator,
            tokens: std::sync::Mutex::new(BTreeMap::new()),
            _gateway_dir: gateway_dir,
            user_url_for_order,
            order_db_url: dbs[3].url.clone(),
            initial_stock: BTreeMap::new(),
            initial_balance: BTreeMap::new(),
            _dbs: dbs,
        };
        shop.order = shop.start_order(options.sweep_interval).await;

        let mut pay_addr = pay_addr;
        let mut attempts = 0;
        let app = loop {
            let mut config = shop_pay::config_for_tests(&shop.pay_db_url, &shop.order.url);
            config.sessions = sessions(&shop.user.url);
            config.metrics = Some(shop.metrics.clone());
            config.http_addr = pay_addr;
            config.namesrv_addr = shop.cluster.namesrv.addr.clone();
            config.own.gateway_url = shop.gateway_url.clone();
            config.own.public_url = format!("http://{pay_addr}");
            match shop_pay::SERVICE.start(config).await {
                Ok(app) => break app,
                // The probed port was taken meanwhile: a new one, and a
                // gateway that calls back there.
                Err(error) if attempts < 5 && format!("{error:?}").contains("AddrInUse") => {
                    attempts += 1;
                    (pay_addr, shop.gateway_url) =
                        start_gateway(shop._gateway_dir.path(), &shop.metrics).await;
                }
                Err(error) => panic!("pay starts: {error:?}"),
            }
        };
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
        config.sessions = sessions(&self.user.url);
        config.metrics = Some(self.metrics.clone());
        let app = shop_order::SERVICE
            .start(config)
            .await
            .expect("order starts");
        let db = app.state().db.clone();
        Service::spawn(app.port(), db, |rx| app.run_until_stopped(stopped(rx)))
    }

    /// `POST url` with `body`, as the holder of `token` (if any).
    pub async fn post_as(
        &self,
        token: Option<&str>,
        url: String,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut request = self.http.post(url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the service answers");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("a status");
        let value = response.json().await.unwrap_or(Value::Null);
        (status, value)
    }

    /// `GET url` as the holder of `token`: the status and the JSON answer.
    pub async fn get_as(&self, token: &str, url: String) -> (StatusCode, Value) {
        let response = self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("the service answers");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("a status");
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET url` as the operator, who may read everything.
    async fn get(&self, url: String) -> Value {
        let (status, value) = self.get_as(&self.operator, url.clone()).await;
        assert!(status.is_success(), "GET {url}: {status} {value}");
        value
    }

    /// The token of a user the tests added.
    ///
    /// # Panics
    /// For a user not added by [`Shop::add_user`].
    pub fn token_of(&self, user_id: i64) -> String {
        self.tokens.lock().expect("not poisoned")[&user_id].clone()
    }

    pub async fn add_goods(&mut self, price: &str, stock: i64) -> i64 {
        let (status, body) = self
            .post_as(
                Some(&self.operator),
                format!("{}/goods", self.goods.url),
                json!({"name": "widget", "price": price, "stock": stock}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_i64().expect("an id");
        self.initial_stock.insert(id, stock);
        id
    }

    /// A customer who signed up, was topped up with `balance` by the
    /// operator and logged in.
    pub async fn add_user(&mut self, balance: &str) -> i64 {
        let n = self.initial_balance.len() + 1;
        let login = format!("user-{n}");
        let password = format!("password-of-user-{n}");
        let (status, body) = self
            .post_as(
                None,
                format!("{}/auth/signup", self.user.url),
                json!({"login": login, "password": password, "name": "alice"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_i64().expect("an id");
        if cents(balance) > 0 {
            let (status, body) = self
                .post_as(
                    Some(&self.operator),
                    format!("{}/users/{id}/balance/top-ups", self.user.url),
                    json!({"amount": balance, "reference": format!("seed-{id}")}),
                )
                .await;
            assert!(status.is_success(), "{body}");
        }
        let token = log_in(&self.http, &self.user.url, &login, &password).await;
        self.tokens.lock().expect("not poisoned").insert(id, token);
        self.initial_balance.insert(id, cents(balance));
        id
    }

    pub async fn add_coupon(&self, user_id: i64, amount: &str) -> i64 {
        let (status, body) = self
            .post_as(
                Some(&self.operator),
                format!("{}/coupons", self.coupon.url),
                json!({"user_id": user_id, "amount": amount}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_i64().expect("an id")
    }

    /// `POST /orders` as the customer the body's `user_id` names: the
    /// status and the JSON answer.
    pub async fn place_order(&self, body: Value) -> (StatusCode, Value) {
        let token = body["user_id"].as_i64().map(|id| self.token_of(id));
        self.post_as(token.as_deref(), format!("{}/orders", self.order.url), body)
            .await
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

    /// Creates a payment for an order as its customer and has the gateway
    /// pay it; returns the payment.
    pub async fn pay(&self, order_id: &str) -> Value {
        let owner = self.order(order_id).await["user_id"]
            .as_i64()
            .expect("the order's user");
        let (status, payment) = self
            .post_as(
                Some(&self.token_of(owner)),
                format!("{}/payments", self.pay.url),
                json!({"order_id": order_id}),
            )
            .await;
        assert!(status.is_success(), "{payment}");
        let (status, paid) = self
            .post_as(
                None,
                format!("{}/api/pay", self.gateway_url),
                json!({"payment_id": payment["payment_id"]}),
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

/// Logs in at the user service; returns the bearer token.
pub async fn log_in(http: &reqwest::Client, user_url: &str, login: &str, password: &str) -> String {
    let answer: Value = http
        .post(format!("{user_url}/auth/login"))
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .expect("the user service answers")
        .json()
        .await
        .expect("JSON");
    answer["token"]
        .as_str()
        .unwrap_or_else(|| panic!("log-in of {login}: {answer}"))
        .to_owned()
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
