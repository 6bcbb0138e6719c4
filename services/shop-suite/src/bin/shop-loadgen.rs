//! `shop-loadgen`: an order-flow load generator against a running shop.
//!
//! ```text
//! shop-loadgen --order http://127.0.0.1:8081 --goods http://127.0.0.1:8082 \
//!              --user http://127.0.0.1:8084 --pay http://127.0.0.1:8085 \
//!              --gateway http://127.0.0.1:8088 --points http://127.0.0.1:8087 \
//!              --concurrency 32 --seconds 20 --payments 200 \
//!              --secrets data/secrets.properties
//! ```
//!
//! Logs in as the shop's operator (its password from the all-in-one shop's
//! secrets file, or `SHOP_OPERATOR_PASSWORD`), seeds one goods item with
//! plenty of stock and one customer per worker (signed up, topped up by the
//! operator, logged in: each worker orders and pays with its own token),
//! then keeps `--concurrency` orders in flight for
//! `--seconds` and reports confirmed orders/s and placement latency
//! percentiles. Then it pays `--payments` of those orders through the
//! gateway, `--concurrency` at a time, and reports callback-to-fan-out
//! latency: from the gateway call until the order is PAID and the user's
//! points are credited.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser, Debug, Clone)]
#[command(name = "shop-loadgen", about = "Order-flow load generator")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    order: String,
    #[arg(long, default_value = "http://127.0.0.1:8082")]
    goods: String,
    #[arg(long, default_value = "http://127.0.0.1:8084")]
    user: String,
    #[arg(long, default_value = "http://127.0.0.1:8085")]
    pay: String,
    #[arg(long, default_value = "http://127.0.0.1:8087")]
    points: String,
    #[arg(long, default_value = "http://127.0.0.1:8088")]
    gateway: String,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// How many of the confirmed orders to pay afterwards.
    #[arg(long, default_value_t = 200)]
    payments: usize,
    /// The all-in-one shop's secrets file, for the operator's password
    /// (`SHOP_OPERATOR_PASSWORD` overrides it).
    #[arg(long, default_value = "data/secrets.properties")]
    secrets: std::path::PathBuf,
    /// The operator's login.
    #[arg(long, default_value = "ops")]
    operator: String,
}

/// The operator's password: `SHOP_OPERATOR_PASSWORD`, else the secrets file.
fn operator_password(args: &Args) -> Result<String> {
    if let Ok(password) = std::env::var("SHOP_OPERATOR_PASSWORD") {
        return Ok(password);
    }
    let text = std::fs::read_to_string(&args.secrets).with_context(|| {
        format!(
            "reading {} (or set SHOP_OPERATOR_PASSWORD)",
            args.secrets.display()
        )
    })?;
    let key = format!("login.{}=", args.operator);
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(str::to_owned)
        .with_context(|| format!("no {key} in {}", args.secrets.display()))
}

async fn log_in(
    http: &reqwest::Client,
    user_url: &str,
    login: &str,
    password: &str,
) -> Result<String> {
    let (status, answer) = post(
        http,
        None,
        format!("{user_url}/auth/login"),
        json!({"login": login, "password": password}),
    )
    .await?;
    if status != 200 {
        bail!("logging in as {login} failed: {answer}");
    }
    answer["token"]
        .as_str()
        .map(str::to_owned)
        .context("a token")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn post(
    http: &reqwest::Client,
    token: Option<&str>,
    url: String,
    body: Value,
) -> Result<(u16, Value)> {
    let mut request = http.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let operator = log_in(
        &http,
        &args.user,
        &args.operator,
        &operator_password(&args)?,
    )
    .await?;
    let (status, goods) = post(
        &http,
        Some(&operator),
        format!("{}/goods", args.goods),
        json!({"name": "load", "price": "9.99", "stock": 10_000_000}),
    )
    .await?;
    if status != 201 {
        bail!("creating goods failed: {goods}");
    }
    let goods_id = goods["id"].as_i64().context("goods id")?;
    // One customer per worker, each with its own token.
    let run = std::process::id();
    let mut users = Vec::new();
    for i in 0..args.concurrency {
        let login = format!("load-{run}-{i}");
        let password = format!("load-password-{run}-{i}");
        let (status, user) = post(
            &http,
            None,
            format!("{}/auth/signup", args.user),
            json!({"login": login, "password": password, "name": "load"}),
        )
        .await?;
        if status != 201 {
            bail!("signing up a customer failed: {user}");
        }
        let id = user["id"].as_i64().context("user id")?;
        let (status, topped) = post(
            &http,
            Some(&operator),
            format!("{}/users/{id}/balance/top-ups", args.user),
            json!({"amount": "100000.00", "reference": format!("load-{run}-{i}")}),
        )
        .await?;
        if status >= 300 {
            bail!("topping up a customer failed: {topped}");
        }
        users.push((id, log_in(&http, &args.user, &login, &password).await?));
    }

    // Phase 1: place orders.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let confirmed = Arc::new(Mutex::new(Vec::<(String, i64, String)>::new()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for (user, token) in users.clone() {
        let (http, args, stop, failed, latencies, confirmed) = (
            http.clone(),
            args.clone(),
            stop.clone(),
            failed.clone(),
            latencies.clone(),
            confirmed.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let body = json!({"goods_id": goods_id, "quantity": 1, "unit_price": "9.99", "balance": "1.00"});
                match post(&http, Some(&token), format!("{}/orders", args.order), body).await {
                    Ok((201, order)) => {
                        latencies.lock().expect("not poisoned").push(t.elapsed().as_secs_f64() * 1000.0);
                        confirmed
                            .lock()
                            .expect("not poisoned")
                            .push((order["id"].as_str().unwrap_or_default().to_owned(), user, token.clone()));
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for w in workers {
        let _ = w.await;
    }
    let mut lat = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    lat.sort_by(f64::total_cmp);
    println!(
        "orders concurrency={} confirmed={} failed={} orders/s={:.0} p50={:.1}ms p99={:.1}ms p999={:.1}ms",
        args.concurrency,
        lat.len(),
        failed.load(Ordering::Relaxed),
        lat.len() as f64 / elapsed,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999)
    );

    // Phase 2: pay some of them and time the fan-out.
    let orders: Vec<(String, i64, String)> = confirmed
        .lock()
        .expect("not poisoned")
        .iter()
        .take(args.payments)
        .cloned()
        .collect();
    let fanout = Arc::new(Mutex::new(Vec::<f64>::new()));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let mut tasks = Vec::new();
    for (order_id, user, token) in orders {
        let (http, args, fanout, permit) = (
            http.clone(),
            args.clone(),
            fanout.clone(),
            semaphore.clone().acquire_owned().await?,
        );
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let (_, payment) = post(
                &http,
                Some(&token),
                format!("{}/payments", args.pay),
                json!({"order_id": order_id}),
            )
            .await?;
            let points_before: i64 = http
                .get(format!("{}/points/{user}", args.points))
                .bearer_auth(&token)
                .send()
                .await?
                .json::<Value>()
                .await?["points"]
                .as_i64()
                .unwrap_or(0);
            let t = Instant::now();
            let body = json!({"payment_id": payment["payment_id"]});
            let (status, paid) =
                post(&http, None, format!("{}/api/pay", args.gateway), body).await?;
            if status != 200 || paid["accepted"] != true {
                bail!("payment refused: {paid}");
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let order: Value = http
                    .get(format!("{}/orders/{order_id}", args.order))
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .json()
                    .await?;
                let points: Value = http
                    .get(format!("{}/points/{user}", args.points))
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .json()
                    .await?;
                if order["status"] == "PAID"
                    && points["points"].as_i64().unwrap_or(0) > points_before
                {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("order {order_id} not fanned out within 30 s");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            fanout
                .lock()
                .expect("not poisoned")
                .push(t.elapsed().as_secs_f64() * 1000.0);
            Ok::<(), anyhow::Error>(())
        }));
    }
    let mut errors = 0;
    for t in tasks {
        if !matches!(t.await, Ok(Ok(()))) {
            errors += 1;
        }
    }
    let mut f = std::mem::take(&mut *fanout.lock().expect("not poisoned"));
    f.sort_by(f64::total_cmp);
    println!(
        "payments paid={} errors={errors} callback-to-fan-out p50={:.1}ms p99={:.1}ms max={:.1}ms",
        f.len(),
        percentile(&f, 0.5),
        percentile(&f, 0.99),
        f.last().copied().unwrap_or(0.0)
    );
    Ok(())
}
