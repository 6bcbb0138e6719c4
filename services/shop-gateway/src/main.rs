//! `shop-gateway`: the fake payment gateway's binary. Everything is in the
//! library; this reads the configuration, sets up logging and serves until
//! Ctrl-C or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use shop_gateway::config::{Config, KEYS};
use shop_gateway::Application;
use shop_pay::config::DEV_GATEWAY_SECRET;

#[derive(Debug, Parser)]
#[command(
    name = "shop-gateway",
    version,
    about = "A fake third-party payment gateway for the shop's demo and tests"
)]
struct Args {
    /// A `.properties` file (keys: http_addr, gateway_secret,
    /// callback_attempts, callback_backoff_ms, call_timeout_ms).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run(Args::parse()).await
}

async fn run(args: Args) -> anyhow::Result<()> {
    shop_common::telemetry::init("info");
    let settings = Config::settings(args.config.as_deref()).context("reading the configuration")?;
    for (key, source) in settings.unknown_keys(KEYS) {
        tracing::warn!(key, %source, "unknown configuration key, ignored");
    }
    let config = Config::from_settings(&settings).context("reading the configuration")?;
    // The secret is never logged.
    tracing::info!(
        http_addr = %config.http_addr,
        callback_attempts = config.callback_attempts,
        callback_backoff_ms = config.callback_backoff.as_millis() as u64,
        call_timeout_ms = config.call_timeout.as_millis() as u64,
        "effective configuration"
    );
    if config.gateway_secret.expose() == DEV_GATEWAY_SECRET.as_bytes() {
        tracing::warn!("gateway_secret is the development default; set GATEWAY_GATEWAY_SECRET");
    }
    let app = Application::build(config)
        .await
        .context("starting the gateway")?;
    tracing::info!(port = app.port(), "gateway listening");
    app.run_until_stopped(shop_common::signal::shutdown())
        .await
        .context("serving HTTP")?;
    tracing::info!("gateway stopped");
    Ok(())
}
