//! `shop-points`: the points service's binary. Everything is in the library; this
//! reads the configuration, sets up logging and serves until Ctrl-C or
//! SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use shop_points::config::{Config, KEYS};
use shop_points::Application;

#[derive(Debug, Parser)]
#[command(
    name = "shop-points",
    version,
    about = "The shop's loyalty points, credited on every payment"
)]
struct Args {
    /// A `.properties` file (keys: http_addr, database_url,
    /// max_connections, namesrv_addr).
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
        namesrv_addr = %config.namesrv_addr,
        "effective configuration"
    );
    let app = Application::build(config)
        .await
        .context("starting the points service")?;
    tracing::info!(port = app.port(), "points service listening");
    app.run_until_stopped(shop_common::signal::shutdown())
        .await
        .context("serving HTTP")?;
    tracing::info!("points service stopped");
    Ok(())
}
