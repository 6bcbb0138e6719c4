//! `shop`: the whole shop in one process.
//!
//! Starts a name server, a broker (store under `<data>`/broker), the goods,
//! coupon, user, order, pay, log and points services on SQLite files under
//! `<data>`, the fake payment gateway, creates
//! the shop's topics, seeds demo data on the first run, prints every URL,
//! and on Ctrl-C (or SIGTERM) stops everything cleanly: the broker leaves no
//! `abort` file. A second run reuses the data.
//!
//! The name server and broker run with ACL on: every service signs with its
//! own account from `<data>/acl` ([`acl`]), which may publish only the
//! events the service owns and subscribe only to what it consumes.
//!
//! RocketMQ 5.x clients (Apache's gRPC SDKs) reach the broker through the
//! proxy served in-process (port 8181, `grpc-proxy` in the banner; 8081 is
//! the order service's), as RocketMQ 5's Local mode: the same accounts file
//! checks their signatures, and the proxy signs its own requests to the
//! broker with the broker's account.
//!
//! Metrics: every service records into one [`ShopMetrics`], registered in
//! one Prometheus registry with the broker's and the name server's, and
//! served on one loopback port (5557, RocketMQ's
//! `metricsPromExporterPort`), printed in the banner. Logs: [`logging`].
//!
//! The services check their callers: each signs its calls and events with
//! its own secret, trusts only the services that call it, and the demo
//! logins (an operator and two customers) have random passwords; all are
//! generated on the first run into `<data>/secrets.properties` ([`secrets`])
//! and printed in the banner.

mod acl;
mod secrets;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use mq_broker::{BrokerConfig, BrokerHandle};
use mq_client::{AdminClient, ClientConfig, TopicSpec};
use mq_namesrv::{NameServer, NamesrvConfig};
use mq_store::MessageStoreConfig;
use serde_json::json;
use shop_common::config::Secret;
use shop_common::events::{ORDER_CANCEL, PAY_SUCCESS};
use shop_common::metrics::ShopMetrics;
use shop_common::service::{Extension, Service, ServiceConfig, Sessions};
use shop_pay::events::PAY_REFUND;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

#[derive(Debug, Parser)]
#[command(
    name = "shop",
    version,
    about = "Run the whole shop: name server, broker and services"
)]
struct Args {
    /// Where the broker's store and the services' SQLite files live.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Added to every default port (9876, 10911, 8080-8088, 8181, 5557); 0 keeps them.
    /// With --random-ports every server binds a free port instead.
    #[arg(long, default_value_t = 0)]
    port_offset: u16,
    /// Bind every server to a free port (tests, several shops on one host).
    #[arg(long)]
    random_ports: bool,
    /// Do not add demo goods, users and coupons on the first run.
    #[arg(long)]
    no_seed: bool,
    /// Use PostgreSQL instead of SQLite files: a server URL such as
    /// `postgres://postgres@127.0.0.1:5432`; each service gets its own
    /// database `rocketshop_<service>`, created when missing.
    #[arg(long)]
    postgres: Option<String>,
}

/// Where the all-in-one logs: `<data>/logs/shop.log` gets every line, and
/// each part its own file (`namesrv.log`, `broker.log` with the store's and
/// the remoting lines, `console.log`, `order.log`, ...: the lines of its
/// crate), rolled daily and at 128 MiB like RocketMQ's, 10 kept. Lines
/// also go to stderr. The all-in-one keeps its clients' and the broker's
/// per-consumer lines at DEBUG for an operator's eye; RUST_LOG opens them.
fn logging(data: &Path) -> telemetry::logging::Logging {
    use telemetry::logging::{LogFile, Logging, Stderr};
    let mut files = vec![
        LogFile::all("shop"),
        LogFile::of("namesrv", &["mq_namesrv"]),
        LogFile::of("broker", &["mq_broker", "mq_store", "mq_remoting"]),
        LogFile::of("console", &["mq_console"]),
    ];
    for service in [
        "goods", "coupon", "user", "order", "pay", "gateway", "log", "points",
    ] {
        files.push(LogFile {
            name: service.to_owned(),
            targets: vec![format!("shop_{service}")],
        });
    }
    Logging {
        files,
        default_filter:
            "info,sqlx=warn,mq_remoting=warn,mq_client=warn,mq_broker::processor::consumer=warn"
                .to_owned(),
        stderr: Stderr::Always,
        ..Logging::single(&data.join("logs"), "shop")
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let logging = logging(&args.data);
    if let Err(e) = telemetry::logging::init(&logging) {
        eprintln!("shop: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shop: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shop: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The 5.x gRPC proxy's default port: RocketMQ's 8081 is the order
/// service's here.
const GRPC_PROXY_PORT: u16 = 8181;

fn port(args: &Args, default: u16) -> u16 {
    if args.random_ports {
        0
    } else {
        default.saturating_add(args.port_offset)
    }
}

/// The database URL of a service: a SQLite file under the data folder, or
/// its own database on the `--postgres` server.
async fn database(args: &Args, data: &Path, name: &str) -> Result<String> {
    let Some(server) = &args.postgres else {
        return Ok(format!(
            "sqlite://{}",
            data.join(format!("{name}.db")).display()
        ));
    };
    use sqlx::{Connection, Executor};
    let server = server.trim_end_matches('/');
    let database = format!("rocketshop_{name}");
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .with_context(|| format!("connecting to {}", shop_common::db::redact(server)))?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&database)
        .fetch_optional(&mut admin)
        .await?;
    if exists.is_none() {
        admin
            .execute(format!("CREATE DATABASE {database}").as_str())
            .await?;
    }
    Ok(format!("{server}/{database}"))
}

fn http_addr(args: &Args, default: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port(args, default)))
}

/// A concrete address for a service that must know its own URL before it
/// starts (pay tells the gateway where to call back): with random ports, a
/// free one picked now.
fn fixed_addr(args: &Args, default: u16) -> Result<SocketAddr> {
    let addr = http_addr(args, default);
    if addr.port() != 0 {
        return Ok(addr);
    }
    let probe = std::net::TcpListener::bind(addr).context("picking a free port")?;
    Ok(probe.local_addr()?)
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Starts the shop's services, each on its database in the data folder (or
/// on the PostgreSQL server), at the name server, and runs them until the
/// stop flag is set.
struct Launcher<'a> {
    args: &'a Args,
    data: &'a Path,
    namesrv: &'a str,
    accounts: &'a acl::Accounts,
    secrets: &'a secrets::Secrets,
    /// The user service, which checks every other service's tokens (empty
    /// until it runs).
    user_url: String,
    services: &'a mut JoinSet<std::io::Result<()>>,
    stop: &'a watch::Sender<bool>,
    /// What every service records into.
    metrics: &'a ShopMetrics,
}

impl Launcher<'_> {
    /// `service`'s configuration on its own database, at `default_port`
    /// (or a random port), with the name server and its secrets.
    async fn config<X: Extension>(
        &self,
        service: &'static Service<X>,
        default_port: u16,
    ) -> Result<ServiceConfig<X::Config>> {
        let config = service.config_for_tests(&database(self.args, self.data, service.name).await?);
        Ok(self.secure(service.name, default_port, config))
    }

    /// `config` of service `name` at `default_port` (or a random port), with
    /// the name server, its broker account, its signing key, the services
    /// it trusts and the user service checking its tokens.
    fn secure<C>(
        &self,
        name: &str,
        default_port: u16,
        mut config: ServiceConfig<C>,
    ) -> ServiceConfig<C> {
        config.http_addr = http_addr(self.args, default_port);
        config.metrics = Some(self.metrics.clone());
        config.namesrv_addr = self.namesrv.to_owned();
        config.mq_credentials = Some(self.accounts.service(name));
        config.service_key = Some(self.secrets.service_key(name));
        config.trusted = self.secrets.trusted_by(name);
        config.sessions = Sessions::Remote {
            url: self.user_url.clone(),
            cache_for: Duration::from_secs(1),
        };
        config
    }

    /// Starts `service` with `config` and runs it until the stop flag is
    /// set; returns its URL.
    async fn launch<X: Extension>(
        &mut self,
        service: &'static Service<X>,
        config: ServiceConfig<X::Config>,
    ) -> Result<String> {
        let app = service
            .start(config)
            .await
            .with_context(|| format!("starting the {} service", service.name))?;
        let url = format!("http://127.0.0.1:{}", app.port());
        self.services
            .spawn(app.run_until_stopped(stopped(self.stop.subscribe())));
        Ok(url)
    }

    /// [`Launcher::launch`] of a service with its own keys' defaults.
    async fn plain<X: Extension>(
        &mut self,
        service: &'static Service<X>,
        default_port: u16,
    ) -> Result<String> {
        let config = self.config(service, default_port).await?;
        self.launch(service, config).await
    }
}

async fn run(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create the data folder {}", args.data.display()))?;
    let data = std::fs::canonicalize(&args.data)?;
    let accounts = acl::Accounts::load_or_create(&data)?;
    let secrets = secrets::Secrets::load_or_create(&data)?;
    let operators = operators_file(&data, &secrets)?;
    let acl_file = accounts.file.display().to_string();
    let (stop, _) = watch::channel(false);

    // One registry for the whole process, served on one port once every
    // part has registered (below, after the services).
    let shop_metrics = ShopMetrics::new();
    let mut registry = prometheus_client::registry::Registry::default();
    shop_metrics.register(&mut registry);
    let metrics_listener = TcpListener::bind(("127.0.0.1", port(&args, 5557)))
        .await
        .context("binding the metrics port")?;
    let metrics_url = format!("http://{}/metrics", metrics_listener.local_addr()?);

    // The name server.
    let listener = TcpListener::bind(("127.0.0.1", port(&args, 9876)))
        .await
        .context("binding the name server")?;
    let namesrv = listener.local_addr()?.to_string();
    let namesrv_config = NamesrvConfig {
        kv_config_path: data.join("namesrv").join("kvConfig.json"),
        acl_enable: true,
        acl_file_path: acl_file.clone(),
        ..NamesrvConfig::default()
    };
    // The name server stops last, so the broker's (signed) unregistration
    // still reaches it.
    let (namesrv_stop, _) = watch::channel(false);
    let name_server = NameServer::new(namesrv_config).context("starting the name server")?;
    name_server.register_metrics(&mut registry);
    let namesrv_task = {
        let name_server = name_server.clone();
        let stop = stopped(namesrv_stop.subscribe());
        tokio::spawn(async move { name_server.serve(listener, stop).await })
    };

    // The broker.
    let broker_config = BrokerConfig {
        broker_name: "broker-a".into(),
        namesrv_addr: namesrv.clone(),
        listen_port: port(&args, 10911),
        bind_address: "127.0.0.1".into(),
        broker_ip1: "127.0.0.1".into(),
        broker_ip2: "127.0.0.1".into(),
        // The demo wants an abandoned order settled in seconds, not minutes.
        transaction_time_out: 3_000,
        transaction_check_interval: 5_000,
        acl_enable: true,
        acl_file_path: acl_file,
        access_key: accounts.get(acl::BROKER).access_key.clone(),
        secret_key: accounts.get(acl::BROKER).secret_key.clone(),
        ..BrokerConfig::default()
    };
    let mut store_config = MessageStoreConfig::with_root(data.join("broker"));
    // 64 MiB segments keep a laptop's disk use modest; production uses 1 GiB.
    store_config.maped_file_size_commit_log = 64 * 1024 * 1024;
    let broker = BrokerHandle::start(broker_config, store_config)
        .await
        .context("starting the broker")?;
    let broker_addr = broker.addr().to_string();
    broker.register_metrics(&mut registry);

    // The shop's topics, before any consumer looks for their routes.
    let admin = AdminClient::start(
        ClientConfig::new(namesrv.clone())
            .with_instance_name(shop_common::events::instance_name("shop-admin"))
            .with_credentials(accounts.get(acl::OPERATOR).clone()),
    )
    .await
    .context("starting the admin client")?;
    for topic in [ORDER_CANCEL, PAY_SUCCESS, PAY_REFUND] {
        admin
            .create_topic(&broker_addr, &TopicSpec::new(topic).with_queues(4, 4))
            .await
            .with_context(|| format!("creating topic {topic}"))?;
    }
    admin.shutdown().await;

    // The 5.x gRPC endpoint, checking 5.x clients against the same accounts.
    let proxy_config = mq_proxy::ProxyConfig {
        grpc_server_port: port(&args, GRPC_PROXY_PORT),
        namesrv_addr: namesrv.clone(),
        rocketmq_cluster_name: "DefaultCluster".into(),
        enable_acl: true,
        acl_file_path: accounts.file.display().to_string(),
        access_key: Some(accounts.get(acl::BROKER).access_key.clone()),
        secret_key: Some(mq_proxy::config::Secret(
            accounts.get(acl::BROKER).secret_key.clone(),
        )),
        ..mq_proxy::ProxyConfig::default()
    };
    let proxy = mq_proxy::Proxy::start_local(proxy_config, broker.in_process())
        .await
        .context("starting the 5.x gRPC proxy")?;
    let proxy_listener = proxy.bind().await.context("binding the 5.x gRPC proxy")?;
    let proxy_addr = proxy_listener.local_addr()?;
    let proxy_stop = stopped(stop.subscribe());
    let proxy_task = tokio::spawn(proxy.serve(proxy_listener, proxy_stop));

    let mut services = JoinSet::new();
    let mut launcher = Launcher {
        args: &args,
        data: &data,
        namesrv: &namesrv,
        accounts: &accounts,
        secrets: &secrets,
        user_url: String::new(),
        services: &mut services,
        stop: &stop,
        metrics: &shop_metrics,
    };
    let mut user_config = launcher.config(&shop_user::SERVICE, 8084).await?;
    user_config.own.operators = shop_user::operators::Operators::load(&operators)
        .with_context(|| format!("reading {}", operators.display()))?;
    let user_url = launcher.launch(&shop_user::SERVICE, user_config).await?;
    launcher.user_url = user_url.clone();
    let goods_url = launcher.plain(&shop_goods::SERVICE, 8082).await?;
    let coupon_url = launcher.plain(&shop_coupon::SERVICE, 8083).await?;

    let mut order_config = launcher.config(&shop_order::SERVICE, 8081).await?;
    order_config.own.goods_url = goods_url.clone();
    order_config.own.coupon_url = coupon_url.clone();
    order_config.own.user_url = user_url.clone();
    let order_url = launcher.launch(&shop_order::SERVICE, order_config).await?;

    // The gateway calls back only the pay service's registered URL, so
    // pay's address is fixed first.
    let pay_addr = fixed_addr(&args, 8085)?;
    let merchant = shop_common::auth::ServiceKey::new("shop", secrets.gateway_merchant_key())?;
    let mut gateway_config = shop_gateway::config_for_tests(
        &format!("http://{pay_addr}/payments/callback"),
        &data.join("gateway"),
    );
    gateway_config.http_addr = http_addr(&args, 8088);
    gateway_config.metrics = Some(shop_metrics.clone());
    gateway_config.own.gateway_secret = Secret::new(secrets.gateway_callback_secret());
    gateway_config.own.merchant = merchant.clone();
    gateway_config.own.callback_attempts = 5;
    gateway_config.own.callback_backoff = Duration::from_millis(200);
    let gateway_url = launcher
        .launch(&shop_gateway::SERVICE, gateway_config)
        .await?;

    let pay_database = database(&args, &data, "pay").await?;
    let mut pay_config = launcher.secure(
        "pay",
        8085,
        shop_pay::config_for_tests(&pay_database, &order_url),
    );
    pay_config.http_addr = pay_addr;
    pay_config.own.order_url = order_url.clone();
    pay_config.own.gateway_url = gateway_url.clone();
    pay_config.own.public_url = format!("http://{pay_addr}");
    pay_config.own.gateway_secret = Secret::new(secrets.gateway_callback_secret());
    pay_config.own.merchant = merchant;
    let pay_url = launcher.launch(&shop_pay::SERVICE, pay_config).await?;

    let log_url = launcher.plain(&shop_log::SERVICE, 8086).await?;
    let points_url = launcher.plain(&shop_points::SERVICE, 8087).await?;

    // The web console, as the operator: its log-in is the shop operator's,
    // and it administers the cluster with the operator's broker account.
    let console_listener = TcpListener::bind(("127.0.0.1", port(&args, 8080)))
        .await
        .context("binding the console")?;
    let console_url = format!("http://{}", console_listener.local_addr()?);
    let console_config = mq_console::ConsoleConfig::new(vec![namesrv.clone()])
        .with_users(mq_console::Users::Fixed(vec![mq_console::User::new(
            secrets::OPERATOR_LOGIN,
            secrets.password(secrets::OPERATOR_LOGIN),
            true,
        )]))
        .with_credentials(accounts.get(acl::OPERATOR).clone())
        // The shop pages read the services' operator API as the operator,
        // and the audit log is kept under the data folder.
        .with_data_dir(data.join("console"))
        .with_shop(mq_console::ShopConfig {
            order_url: order_url.clone(),
            goods_url: goods_url.clone(),
            coupon_url: coupon_url.clone(),
            user_url: user_url.clone(),
            pay_url: pay_url.clone(),
            log_url: log_url.clone(),
            points_url: points_url.clone(),
            login: secrets::OPERATOR_LOGIN.to_owned(),
            password: secrets.password(secrets::OPERATOR_LOGIN).to_owned(),
        });
    let console_stop = stopped(stop.subscribe());
    services.spawn(async move {
        mq_console::serve(console_listener, console_config, console_stop)
            .await
            .map_err(std::io::Error::other)
    });

    let registry = std::sync::Arc::new(registry);
    let metrics_stop = stopped(stop.subscribe());
    services.spawn(telemetry::metrics::serve(
        metrics_listener,
        registry,
        metrics_stop,
    ));

    if !args.no_seed {
        seed(&goods_url, &user_url, &coupon_url, &secrets)
            .await
            .context("seeding demo data")?;
    }

    println!("name server  {namesrv}");
    println!("broker       {broker_addr}");
    println!("grpc-proxy   {proxy_addr}   (RocketMQ 5.x SDKs, signed with an account of the accounts file)");
    println!("order        {order_url}");
    println!("goods        {goods_url}");
    println!("coupon       {coupon_url}");
    println!("user         {user_url}");
    println!("pay          {pay_url}");
    println!("log          {log_url}");
    println!("points       {points_url}");
    println!("gateway      {gateway_url}");
    println!("console      {console_url}");
    println!("metrics      {metrics_url}");
    println!("data         {}", data.display());
    println!("logs         {}", data.join("logs").display());
    println!("accounts     {}", accounts.file.display());
    println!(
        "mqadmin      ROCKETMQ_HOME={} mqadmin clusterList -n {namesrv}",
        accounts.home.display()
    );
    println!("secrets      {}", secrets.file.display());
    println!(
        "operator     {login} {password}   (POST {user_url}/auth/login for a token)",
        login = secrets::OPERATOR_LOGIN,
        password = secrets.password(secrets::OPERATOR_LOGIN)
    );
    let customers: Vec<String> = secrets::CUSTOMERS
        .iter()
        .map(|c| format!("{c} {}", secrets.password(c)))
        .collect();
    println!("customers    {}", customers.join(", "));
    println!("shop ready; Ctrl-C stops it");

    shop_common::signal::shutdown().await;
    tracing::info!("stopping the shop");
    let _ = stop.send(true);
    while let Some(done) = services.join_next().await {
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "a service stopped with an error");
        }
    }
    match proxy_task.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "the 5.x gRPC proxy stopped with an error"),
        Err(e) => tracing::warn!(error = %e, "the 5.x gRPC proxy task failed"),
        Ok(Ok(())) => {}
    }
    broker.shutdown().await;
    let _ = namesrv_stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), namesrv_task).await;
    println!("shop stopped");
    Ok(())
}

/// The user service's operators file: the demo operator with its generated
/// password, written on the first run (mode 0600).
fn operators_file(data: &Path, secrets: &secrets::Secrets) -> Result<PathBuf> {
    let path = data.join("operators.properties");
    if !path.exists() {
        let login = secrets::OPERATOR_LOGIN;
        let line = shop_user::operators::operator_line(login, secrets.password(login))
            .map_err(|e| anyhow::anyhow!("hashing the operator's password: {e}"))?;
        acl::write_private(
            &path,
            &format!(
                "# The shop's operators: login=<argon2id hash> (shop-user hash-password)\n{line}"
            ),
        )?;
    }
    Ok(path)
}

/// Logs in at the user service; returns the bearer token.
async fn log_in(
    http: &reqwest::Client,
    user_url: &str,
    login: &str,
    password: &str,
) -> Result<String> {
    let answer: serde_json::Value = http
        .post(format!("{user_url}/auth/login"))
        .json(&json!({"login": login, "password": password}))
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("logging in as {login}"))?
        .json()
        .await?;
    answer["token"]
        .as_str()
        .map(str::to_owned)
        .context("a token in the log-in answer")
}

/// Demo goods, customers (each with a balance and a 5.00 coupon), added
/// once (when there are no goods yet), as the operator would.
async fn seed(
    goods_url: &str,
    user_url: &str,
    coupon_url: &str,
    secrets: &secrets::Secrets,
) -> Result<()> {
    let http = reqwest::Client::new();
    let existing: serde_json::Value = http
        .get(format!("{goods_url}/goods"))
        .send()
        .await?
        .json()
        .await?;
    if existing.as_array().is_some_and(|a| !a.is_empty()) {
        return Ok(());
    }
    let operator = secrets::OPERATOR_LOGIN;
    let token = log_in(&http, user_url, operator, secrets.password(operator)).await?;
    for (name, price, stock) in [
        ("Rust mug", "12.50", 100),
        ("Crab plush", "24.00", 50),
        ("Ferris sticker pack", "3.99", 1000),
    ] {
        let body = json!({"name": name, "price": price, "stock": stock});
        http.post(format!("{goods_url}/goods"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
    }
    for (login, balance) in secrets::CUSTOMERS.iter().zip(["200.00", "50.00"]) {
        let created: serde_json::Value = http
            .post(format!("{user_url}/auth/signup"))
            .json(&json!({"login": login, "password": secrets.password(login), "name": login}))
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("signing up {login}"))?
            .json()
            .await?;
        let id = created["id"].as_i64().context("a user id")?;
        http.post(format!("{user_url}/users/{id}/balance/top-ups"))
            .bearer_auth(&token)
            .json(&json!({"amount": balance, "reference": format!("demo-{login}")}))
            .send()
            .await?
            .error_for_status()?;
        http.post(format!("{coupon_url}/coupons"))
            .bearer_auth(&token)
            .json(&json!({"user_id": id, "amount": "5.00"}))
            .send()
            .await?
            .error_for_status()?;
    }
    tracing::info!(
        "demo data added: 3 goods, customers alice and bob with a balance and a 5.00 coupon each"
    );
    Ok(())
}
