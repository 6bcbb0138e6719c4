//! `mqbroker`: RocketMQ's broker command line.
//!
//! ```text
//! mqbroker [-c broker.properties] [-n "ns1:9876;ns2:9876"] [-p | -m]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use mq_broker::config::{apply_properties, store_entries, BrokerConfig, MetricsExporterType};
use mq_broker::BrokerHandle;
use mq_remoting::shutdown_signal;
use mq_store::MessageStoreConfig;
use telemetry::metrics::MetricsServer;

#[derive(Parser, Debug)]
#[command(name = "mqbroker", about = "Start a RocketMQ-compatible broker")]
struct Args {
    /// Broker config file (RocketMQ .properties keys).
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
    /// Name server address list, e.g. '192.168.0.1:9876;192.168.0.2:9876'.
    #[arg(short = 'n', long = "namesrvAddr")]
    namesrv_addr: Option<String>,
    /// Print all config items and exit.
    #[arg(short = 'p', long = "printConfigItem")]
    print_config: bool,
    /// Print important config items and exit.
    #[arg(short = 'm', long = "printImportantConfig")]
    print_important: bool,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mqbroker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Applies defaults, then the file, then `-n`.
fn load(args: &Args) -> Result<(BrokerConfig, MessageStoreConfig)> {
    let mut broker = BrokerConfig::default();
    let mut store = MessageStoreConfig::default();
    if let Some(path) = &args.config_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let entries = mq_protocol::properties::parse(&text)
            .with_context(|| format!("config file {}", path.display()))?;
        let warnings = apply_properties(
            &entries,
            &path.display().to_string(),
            &mut [&mut broker, &mut store],
        )?;
        for warning in warnings {
            eprintln!("mqbroker: warning: {warning}");
        }
    }
    if let (Some(path), true) = (&args.config_file, broker.broker_config_path.is_empty()) {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        broker.broker_config_path = path.display().to_string();
    }
    if let Some(addr) = &args.namesrv_addr {
        broker.namesrv_addr = addr.clone();
    }
    broker
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid broker config")?;
    store.validate().context("invalid store config")?;
    Ok((broker, store))
}

fn run(args: Args) -> Result<ExitCode> {
    let (broker, store) = load(&args)?;
    if args.print_config || args.print_important {
        let important = [
            "brokerClusterName",
            "brokerName",
            "brokerId",
            "namesrvAddr",
            "listenPort",
            "brokerRole",
            "flushDiskType",
            "storePathRootDir",
        ];
        for (key, value) in broker.entries().into_iter().chain(store_entries(&store)) {
            if args.print_config || important.contains(&key) {
                println!("{key}={value}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let logging = broker.logging();
    telemetry::logging::init(&logging)
        .with_context(|| format!("cannot log to {}", logging.dir.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let name = broker.broker_name.clone();
        let namesrv = broker.namesrv_addr.clone();
        // Bound before the broker starts, so a taken port stops nothing.
        let metrics_listener = match broker.metrics_exporter_type {
            MetricsExporterType::Prom => Some(
                MetricsServer::bind(
                    &broker.metrics_prom_exporter_host,
                    broker.metrics_prom_exporter_port,
                )
                .await?,
            ),
            MetricsExporterType::Disable => None,
        };
        let handle = BrokerHandle::start(broker, store).await?;
        let stop = shutdown_signal();
        let metrics = match metrics_listener {
            Some(listener) => {
                let mut registry = prometheus_client::registry::Registry::default();
                handle.register_metrics(&mut registry);
                Some(MetricsServer::spawn(listener, registry)?)
            }
            None => None,
        };
        println!(
            "The broker[{name}, {}] boot success. serializeType=JSON and name server is {namesrv}",
            handle.addr()
        );
        println!(
            "The broker[{name}] replication address is {}",
            handle.ha_addr()
        );
        if let Some(metrics) = &metrics {
            println!("The broker[{name}] metrics are at {}", metrics.url());
        }
        stop.await;
        drop(metrics);
        handle.shutdown().await;
        println!("The broker[{name}] shut down cleanly");
        Ok(ExitCode::SUCCESS)
    })
}
