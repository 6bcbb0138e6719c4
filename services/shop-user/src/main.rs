//! `shop-user`: the user service's binary. Everything is in the library;
//! this reads the configuration, sets up logging and serves until Ctrl-C or
//! SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use shop_user::config::{Config, KEYS};
use shop_user::Application;

#[derive(Debug, Parser)]
#[command(
    name = "shop-user",
    version,
    about = "The shop's user and balance service"
)]
struct Args {
    /// A `.properties` file (keys: http_addr, database_url, max_connections).
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
        .context("starting the user service")?;
    tracing::info!(port = app.port(), "user service listening");
    app.run_until_stopped(shutdown_signal())
        .await
        .context("serving HTTP")?;
    tracing::info!("user service stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
