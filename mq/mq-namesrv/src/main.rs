//! `mqnamesrv`: starts a name server.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mq_namesrv::{NameServer, NamesrvConfig};
use mq_remoting::shutdown_signal;
use telemetry::metrics::MetricsServer;
use tokio::net::TcpListener;

/// RocketMQ-compatible name server.
#[derive(Debug, Parser)]
#[command(name = "mqnamesrv", version)]
struct Args {
    /// Name server config properties file.
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
    /// Print all config items and exit.
    #[arg(short = 'p', long = "printConfigItem")]
    print_config: bool,
    /// Name server address list (accepted for compatibility; unused).
    #[arg(short = 'n', long = "namesrvAddr")]
    namesrv_addr: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mqnamesrv: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let (config, warnings) = match &args.config_file {
        Some(path) => {
            let loaded = NamesrvConfig::load(path)?;
            println!("load config properties file OK, {}", path.display());
            loaded
        }
        None => (NamesrvConfig::default(), Vec::new()),
    };
    if args.print_config {
        for warning in warnings {
            eprintln!("mqnamesrv: warning: {warning}");
        }
        print!("{config}");
        return Ok(());
    }
    let logging = config.logging();
    telemetry::logging::init(&logging)
        .with_context(|| format!("cannot log to {}", logging.dir.display()))?;
    for warning in warnings {
        eprintln!("mqnamesrv: warning: {warning}");
        tracing::warn!("{warning}");
    }
    if args.namesrv_addr.is_some() {
        tracing::info!("-n is ignored by the name server");
    }
    tracing::info!("effective configuration:\n{config}");
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: NamesrvConfig) -> anyhow::Result<()> {
    let ip: IpAddr = config
        .bind_address
        .parse()
        .with_context(|| format!("invalid bindAddress {}", config.bind_address))?;
    let addr = SocketAddr::new(ip, config.listen_port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener
        .local_addr()
        .context("cannot read the bound address")?;
    // Bound before serving, so a taken metrics port stops the start.
    let metrics_listener = if config.metrics_prom {
        Some(
            MetricsServer::bind(
                &config.metrics_prom_exporter_host,
                config.metrics_prom_exporter_port,
            )
            .await?,
        )
    } else {
        None
    };
    let server = NameServer::new(config)?;
    let stop = shutdown_signal();
    println!("The Name Server boot success. serializeType=JSON, address={bound}");
    let metrics = match metrics_listener {
        Some(listener) => {
            let mut registry = prometheus_client::registry::Registry::default();
            server.register_metrics(&mut registry);
            let metrics = MetricsServer::spawn(listener, registry)?;
            println!("The Name Server metrics are at {}", metrics.url());
            Some(metrics)
        }
        None => None,
    };
    server.serve(listener, stop).await;
    drop(metrics);
    tracing::info!("name server stopped");
    Ok(())
}
