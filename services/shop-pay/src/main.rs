//! `shop-pay`: the pay service's binary. Everything is in the library; this
//! reads the configuration, sets up logging and serves until Ctrl-C or
//! SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use shop_pay::config::{Config, DEV_GATEWAY_SECRET, KEYS};
use shop_pay::Application;

#[derive(Debug, Parser)]
#[command(
    name = "shop-pay",
    version,
    about = "The shop's payment service (payments, the gateway's callback, PAY_SUCCESS)"
)]
struct Args {
    /// A `.properties` file (keys: http_addr, database_url, max_connections,
    /// namesrv_addr, order_url, gateway_url, public_url, gateway_secret,
    /// call_timeout_ms).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run(Args::parse()).await
}

async fn run(args: Args) -> anyhow::Result<()> {
    shop_common::telemetry::init("info,sqlx=warn");
    let settings = Config::settings(args.config.as_deref()).context("reading the configuration")?;
    for (key, source) in settings.unknown_keys(KEYS) {
        tracing::warn!(key, %source, "unknown configuration key, ignored");
    }
    let config = Config::from_settings(&settings).context("reading the configuration")?;
    // The gateway secret is never logged.
    tracing::info!(
        http_addr = %config.http_addr,
        database_url = %shop_common::db::redact(&config.database_url),
        max_connections = config.max_connections,
        namesrv_addr = %config.namesrv_addr,
        order_url = %config.order_url,
        gateway_url = %config.gateway_url,
        public_url = %config.public_url,
        call_timeout_ms = config.call_timeout.as_millis() as u64,
        "effective configuration"
    );
    if config.gateway_secret.expose() == DEV_GATEWAY_SECRET.as_bytes() {
        tracing::warn!("gateway_secret is the development default; set PAY_GATEWAY_SECRET");
    }
    if config.namesrv_addr.is_empty() {
        tracing::warn!("namesrv_addr is empty: paid callbacks will not publish PAY_SUCCESS");
    }
    let app = Application::build(config)
        .await
        .context("starting the pay service")?;
    tracing::info!(port = app.port(), "pay service listening");
    app.run_until_stopped(shop_common::signal::shutdown())
        .await
        .context("serving HTTP")?;
    tracing::info!("pay service stopped");
    Ok(())
}
