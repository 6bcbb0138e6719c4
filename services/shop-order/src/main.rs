//! `shop-order`: the order service's binary. Everything is in the library;
//! this reads the configuration, sets up logging and serves until Ctrl-C or
//! SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use shop_order::config::{Config, KEYS};
use shop_order::Application;

#[derive(Debug, Parser)]
#[command(name = "shop-order", version, about = "The shop's order service")]
struct Args {
    /// A `.properties` file (keys: see `shop_order::config::KEYS`).
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
    tracing::info!(
        http_addr = %config.http_addr,
        database_url = %shop_common::db::redact(&config.database_url),
        max_connections = config.max_connections,
        "effective configuration"
    );
    let app = Application::build(config)
        .await
        .context("starting the order service")?;
    tracing::info!(port = app.port(), "order service listening");
    app.run_until_stopped(shop_common::signal::shutdown())
        .await
        .context("serving HTTP")?;
    tracing::info!("order service stopped");
    Ok(())
}
